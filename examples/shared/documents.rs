//! "Summarize, embed, notify": document analysis as jobs, each retried on its own, so a
//! model error in the embedding re-runs the embedding of one chunk only — not the
//! summary that was already paid for, nor the other chunks.
//!
//! Summarize → embed: the embed step hands the document's chunks to a batch, one job
//! per chunk, whose fan-in stores the embedding once every chunk is done, then waits
//! (durably, holding no worker) for a person to approve the analysis before it is
//! announced.
//!
//! The job names are pinned, so the `agent` and `document_agent` examples run each
//! other's stored jobs. The model is a fake that fails about 30 % of its calls
//! (deterministically, so every run of the example fails the same calls), so retries
//! show on the dashboard; its summary of [`DEMO_DOCUMENT`] fails exactly once.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::prelude::*;
use jobs::{BatchId, Jobs};
use serde::{Deserialize, Serialize};

/// The event a person's approval of an analysis sends, keyed by the waiting job's id.
pub(crate) const APPROVED: &str = "document-approved";

/// How long an analysis waits for its approval before it gives up, unannounced.
pub(crate) const APPROVAL_WINDOW: Duration = Duration::from_secs(48 * 3600);

/// The document of the `agent` example's first-start demo: the model fails its first
/// summary, and only that call, so the demo shows one failed attempt and its retry.
pub(crate) const DEMO_DOCUMENT: u64 = 1;

/// The documents the app knows, in memory.
#[derive(Clone)]
pub(crate) struct Documents {
    inner: Arc<Mutex<BTreeMap<u64, Document>>>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Document {
    id: u64,
    title: String,
    content: String,
    summary: Option<String>,
    embedding: Option<Vec<f32>>,
    /// The key of the approval its analysis waits for, while it waits.
    awaiting_approval: Option<String>,
    approved_by: Option<String>,
    analyzed: bool,
}

impl Documents {
    /// A few documents to analyze, with ids 1 to 5.
    pub(crate) fn with_samples() -> Self {
        let documents = Self {
            inner: Arc::default(),
        };
        for (title, content) in [
            (
                "Q3 board deck",
                "Revenue grew 18 % over Q2. Churn fell to 2.1 %. The board asks for a hiring plan for the platform team before the December meeting.",
            ),
            (
                "Incident 2026-11-02",
                "The EU database ran out of connections for 14 minutes. Job workers retried and caught up within the hour. No data was lost.",
            ),
            (
                "Customer interview: Acme",
                "Acme wants scheduled exports every Monday. They lost a weekly report after a deploy last quarter and noticed only when a customer asked.",
            ),
            (
                "Vendor contract renewal",
                "The LLM vendor raises prices 12 % from January. Rate limits double on the enterprise tier. Renewal is due by December 15.",
            ),
            (
                "Roadmap notes",
                "Continuations, durable steps and a dashboard with live updates are the next milestones. Agent tools follow.",
            ),
        ] {
            documents.add(title.to_owned(), content.to_owned());
        }
        documents
    }

    /// Stores a new document and returns its id.
    pub(crate) fn add(&self, title: String, content: String) -> u64 {
        let mut documents = self.inner.lock().unwrap();
        let id = documents.keys().next_back().map_or(1, |last| last + 1);
        documents.insert(
            id,
            Document {
                id,
                title,
                content,
                summary: None,
                embedding: None,
                awaiting_approval: None,
                approved_by: None,
                analyzed: false,
            },
        );
        id
    }

    pub(crate) fn get(&self, id: u64) -> Option<Document> {
        self.inner.lock().unwrap().get(&id).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Document> {
        self.inner.lock().unwrap().values().cloned().collect()
    }

    fn content(&self, id: u64) -> anyhow::Result<String> {
        self.get(id)
            .map(|document| document.content)
            .ok_or_else(|| anyhow::anyhow!("no document {id}"))
    }

    fn update(&self, id: u64, change: impl FnOnce(&mut Document)) {
        if let Some(document) = self.inner.lock().unwrap().get_mut(&id) {
            change(document);
        }
    }
}

/// A stand-in for an LLM API: slow, and it fails about 30 % of calls.
#[derive(Clone, Debug)]
pub(crate) struct FakeModel {
    failure_percent: u64,
    latency: Duration,
}

impl FakeModel {
    /// Fails about 30 % of calls and takes most of a second per call, like the real thing.
    pub(crate) fn flaky() -> Self {
        Self {
            failure_percent: 30,
            latency: Duration::from_millis(700),
        }
    }

    /// The same model answering at once: for tests, where the wait would only slow
    /// them down.
    #[allow(dead_code)] // used by the examples' tests, not by every example
    pub(crate) fn without_latency(self) -> Self {
        Self {
            latency: Duration::ZERO,
            ..self
        }
    }

    /// The first sentence of `text`.
    pub(crate) async fn summarize(
        &self,
        document_id: u64,
        attempt: u32,
        text: &str,
    ) -> Result<String, ModelError> {
        self.call("summarize", document_id, attempt).await?;
        let end = text.find(". ").map_or(text.len(), |at| at + 1);
        Ok(text[..end].to_owned())
    }

    /// A tiny "embedding" of chunk `chunk` of a document: letter frequencies folded
    /// into 8 dimensions.
    pub(crate) async fn embed(
        &self,
        document_id: u64,
        chunk: usize,
        attempt: u32,
        text: &str,
    ) -> Result<Vec<f32>, ModelError> {
        self.call(&format!("embed chunk {chunk}"), document_id, attempt)
            .await?;
        let mut vector = [0f32; 8];
        for byte in text.bytes().filter(u8::is_ascii_alphabetic) {
            vector[usize::from(byte.to_ascii_lowercase() - b'a') % 8] += 1.0;
        }
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1.0);
        Ok(vector.iter().map(|x| x / norm).collect())
    }

    /// Waits like a network call, then fails if this (operation, document, attempt)
    /// hashes into the failing share: pseudo-random, but the same every run. The demo
    /// document's first summary fails, and nothing else of it.
    async fn call(
        &self,
        operation: &str,
        document_id: u64,
        attempt: u32,
    ) -> Result<(), ModelError> {
        tokio::time::sleep(self.latency).await;
        let fails = if document_id == DEMO_DOCUMENT {
            operation == "summarize" && attempt == 1
        } else {
            let mut hasher = DefaultHasher::new();
            (operation, document_id, attempt).hash(&mut hasher);
            hasher.finish() % 100 < self.failure_percent
        };
        if fails {
            return Err(ModelError {
                operation: operation.to_owned(),
                cause: std::io::Error::other("503 Service Unavailable: the model is overloaded"),
            });
        }
        Ok(())
    }
}

/// A failed model call, with its cause, as the dashboard shows it.
#[derive(Debug)]
pub(crate) struct ModelError {
    operation: String,
    cause: std::io::Error,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the model call `{}` failed", self.operation)
    }
}

impl std::error::Error for ModelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// Starts the analysis of a document: summarize, then embed its chunks (a batch whose
/// fan-in stores the embedding and waits for the approval), each its own job that
/// starts once the one before it succeeded; the summary the first step returns is the
/// first chunk the second embeds. Returns the two steps' ids in order.
pub(crate) async fn analyze(jobs: &Jobs, document_id: u64) -> jobs::Result<Vec<JobId>> {
    jobs.enqueue(Summarize { document_id })
        .then(Embed { document_id })
        .await
}

#[job(
    name = "documents.summarize",
    retries = 5,
    display = "Summarize document {document_id}"
)]
pub(crate) async fn summarize(
    State(documents): State<Documents>,
    State(model): State<FakeModel>,
    ctx: JobContext,
    document_id: u64,
) -> anyhow::Result<String> {
    let content = documents.content(document_id)?;
    ctx.progress(1, 3).await;
    ctx.log()
        .info(format!("calling the model on {} bytes", content.len()));
    let summary = model
        .summarize(document_id, ctx.attempt(), &content)
        .await?;
    ctx.progress(2, 3).await;
    ctx.log().info(format!("summary: {summary}"));
    documents.update(document_id, |document| {
        document.summary = Some(summary.clone())
    });
    ctx.progress(3, 3).await;
    // The job's result: the next step receives it, a retry of it included.
    Ok(summary)
}

/// Hands the summary and each sentence of the document to a batch, one job per chunk,
/// with [`Publish`] as its fan-in; returns the batch's id.
#[job(
    name = "documents.embed",
    retries = 5,
    display = "Embed document {document_id}"
)]
pub(crate) async fn embed(
    State(documents): State<Documents>,
    ctx: JobContext,
    Parent(summary): Parent<String>,
    document_id: u64,
) -> anyhow::Result<BatchId> {
    let content = documents.content(document_id)?;
    let chunks: Vec<String> = std::iter::once(summary)
        .chain(content.split_inclusive(". ").map(|s| s.trim().to_owned()))
        .collect();
    let count = chunks.len();
    let jobs = ctx.jobs();
    // A step: a retry of this job finds the batch it stored, never makes a second one.
    let batch = ctx
        .step("embed in chunks", move || async move {
            let batch = jobs.batch().label(format!("document {document_id}"));
            let id = batch.id();
            let members = chunks
                .into_iter()
                .enumerate()
                .map(|(chunk, text)| EmbedChunk {
                    document_id,
                    chunk,
                    text,
                });
            batch
                .add_many(members)
                .then(Publish {
                    document_id,
                    batch: id,
                })
                .await
        })
        .await?;
    ctx.log()
        .info(format!("embedding {count} chunks in batch {batch}"));
    Ok(batch)
}

#[job(
    name = "documents.embed_chunk",
    retries = 5,
    display = "Embed chunk {chunk} of document {document_id}"
)]
pub(crate) async fn embed_chunk(
    State(model): State<FakeModel>,
    ctx: JobContext,
    document_id: u64,
    chunk: usize,
    text: String,
) -> anyhow::Result<Vec<f32>> {
    Ok(model
        .embed(document_id, chunk, ctx.attempt(), &text)
        .await?)
}

/// A person's approval of an analysis, sent by `POST /documents/{id}/approve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Approval {
    pub(crate) by: String,
}

/// How an analysis ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Publication {
    /// Approved, and announced.
    Announced(Approval),
    /// Nobody approved it within [`APPROVAL_WINDOW`]: not announced.
    Expired,
}

/// The batch's fan-in, once every chunk is embedded: stores the document's embedding
/// (the mean of its chunks'), then waits for a person's approval, holding no worker,
/// and announces the analysis; after [`APPROVAL_WINDOW`] without one it gives up,
/// saying so, and the analysis stays unannounced (analyze again to start over).
#[job(
    name = "documents.publish",
    retries = 5,
    display = "Publish the analysis of document {document_id}",
    labels = ["document-{document_id}"]
)]
pub(crate) async fn publish(
    State(documents): State<Documents>,
    ctx: JobContext,
    document_id: u64,
    batch: BatchId,
) -> anyhow::Result<Publication> {
    // A step: the run that resumes after the approval reads it from the store.
    let embedding = ctx
        .step("index", || async {
            let chunks = ctx.jobs().batch_results::<EmbedChunk>(batch).await?;
            Ok::<_, anyhow::Error>(mean(chunks.into_iter().map(|(_, vector)| vector)))
        })
        .await?;
    ctx.log().info("embedding stored; waiting for an approval");
    let key = ctx.id().to_string();
    documents.update(document_id, |document| {
        document.embedding = Some(embedding);
        document.awaiting_approval = Some(key.clone());
    });
    let approval = ctx
        .wait_for_event::<Approval>(APPROVED, &key, APPROVAL_WINDOW)
        .await?;
    documents.update(document_id, |document| document.awaiting_approval = None);
    let Some(approval) = approval else {
        println!("⌛ document {document_id}: nobody approved its analysis within 48 h");
        return Ok(Publication::Expired);
    };
    documents.update(document_id, |document| {
        document.approved_by = Some(approval.by.clone());
        document.analyzed = true;
    });
    if let Some(document) = documents.get(document_id) {
        println!(
            "✅ document {document_id} ({}) analyzed, approved by {}: {}",
            document.title,
            approval.by,
            document.summary.unwrap_or_default()
        );
    }
    Ok(Publication::Announced(approval))
}

/// The mean of `vectors`, component by component.
fn mean(vectors: impl Iterator<Item = Vec<f32>>) -> Vec<f32> {
    let mut sum = Vec::new();
    let mut count = 0f32;
    for vector in vectors {
        sum.resize(vector.len().max(sum.len()), 0.0);
        for (total, x) in sum.iter_mut().zip(vector) {
            *total += x;
        }
        count += 1.0;
    }
    sum.iter().map(|total| total / count.max(1.0)).collect()
}

/// `GET /documents`, `POST /documents`, `GET /documents/{id}`,
/// `POST /documents/{id}/analyze`, `POST /documents/{id}/approve`.
pub(crate) mod http {
    use axum::extract::{FromRef, Path, State};
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use jobs::{JobQuery, JobState, Jobs};
    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::{APPROVED, Approval, Document, Documents, analyze};

    /// The routes, for any app state that holds the `Jobs` client and the documents.
    pub(crate) fn routes<S>() -> Router<S>
    where
        Jobs: FromRef<S>,
        Documents: FromRef<S>,
        S: Clone + Send + Sync + 'static,
    {
        Router::new()
            .route("/documents", get(list).post(create))
            .route("/documents/{id}", get(one))
            .route("/documents/{id}/analyze", post(start_analysis))
            .route("/documents/{id}/approve", post(approve))
    }

    type Reply<T> = Result<(StatusCode, Json<T>), (StatusCode, Json<Value>)>;

    async fn list(State(documents): State<Documents>) -> Json<Vec<Document>> {
        Json(documents.all())
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NewDocument {
        title: String,
        content: String,
    }

    async fn create(
        State(documents): State<Documents>,
        Json(new): Json<NewDocument>,
    ) -> (StatusCode, Json<Value>) {
        let id = documents.add(new.title, new.content);
        (StatusCode::CREATED, Json(json!({ "id": id })))
    }

    async fn one(State(documents): State<Documents>, Path(id): Path<u64>) -> Reply<Document> {
        documents
            .get(id)
            .map(|document| (StatusCode::OK, Json(document)))
            .ok_or_else(|| not_found(id))
    }

    async fn start_analysis(
        State(jobs): State<Jobs>,
        State(documents): State<Documents>,
        Path(id): Path<u64>,
    ) -> Reply<Value> {
        if documents.get(id).is_none() {
            return Err(not_found(id));
        }
        match analyze(&jobs, id).await {
            Ok(steps) => Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "document_id": id, "job_id": steps[0], "steps": steps })),
            )),
            Err(error) => Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": error.to_string() })),
            )),
        }
    }

    /// `{"by": "ana"}`: approves the analysis that waits for it, which then announces
    /// it; 409 when none waits (not analyzed yet, or already approved or expired).
    /// The waiting job is found in the job store, not in this process's memory, so an
    /// approval after a restart still reaches it.
    async fn approve(
        State(jobs): State<Jobs>,
        State(documents): State<Documents>,
        Path(id): Path<u64>,
        Json(approval): Json<Approval>,
    ) -> Reply<Value> {
        documents.get(id).ok_or_else(|| not_found(id))?;
        let waiting = JobQuery::state(JobState::Scheduled)
            .name("documents.publish")
            .label(format!("document-{id}"))
            .limit(1);
        let page = jobs.list(waiting).await.map_err(|error| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": error.to_string() })),
            )
        })?;
        // Its wait's key is its id (see `publish`).
        let Some(key) = page.items.first().map(|job| job.id.to_string()) else {
            return Err((
                StatusCode::CONFLICT,
                Json(json!({ "error": format!("document {id} waits for no approval") })),
            ));
        };
        match jobs.send_event(APPROVED, &key, &approval).await {
            Ok(resumed) => Ok((
                StatusCode::OK,
                Json(json!({ "document_id": id, "resumed": resumed })),
            )),
            Err(error) => Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": error.to_string() })),
            )),
        }
    }

    fn not_found(id: u64) -> (StatusCode, Json<Value>) {
        (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no document {id}") })),
        )
    }
}
