//! "Summarize, embed, notify": document analysis as three jobs, each retried on its
//! own, so a model error in the embedding step re-runs the embedding only — not the
//! summary that was already paid for.
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

use jobs::Jobs;
use jobs::prelude::*;
use serde::Serialize;

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

    /// A tiny "embedding": letter frequencies folded into 8 dimensions.
    pub(crate) async fn embed(
        &self,
        document_id: u64,
        attempt: u32,
        text: &str,
    ) -> Result<Vec<f32>, ModelError> {
        self.call("embed", document_id, attempt).await?;
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

/// Starts the analysis of a document: summarize → embed → announce, each step its own
/// job that starts once the one before it succeeded; the summary the first step returns
/// is what the second embeds. Returns the steps' ids in order.
pub(crate) async fn analyze(jobs: &Jobs, document_id: u64) -> jobs::Result<Vec<JobId>> {
    jobs.enqueue(Summarize { document_id })
        .then(Embed { document_id })
        .then(AnnounceComplete { document_id })
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

#[job(
    name = "documents.embed",
    retries = 5,
    display = "Embed document {document_id}"
)]
pub(crate) async fn embed(
    State(documents): State<Documents>,
    State(model): State<FakeModel>,
    ctx: JobContext,
    Parent(summary): Parent<String>,
    document_id: u64,
) -> anyhow::Result<()> {
    ctx.log().info("embedding the summary");
    let embedding = model.embed(document_id, ctx.attempt(), &summary).await?;
    ctx.progress(1, 2).await;
    documents.update(document_id, |document| document.embedding = Some(embedding));
    ctx.progress(2, 2).await;
    Ok(())
}

#[job(
    name = "documents.announce_complete",
    retries = 5,
    display = "Notify analysis complete for {document_id}"
)]
pub(crate) async fn announce_complete(State(documents): State<Documents>, document_id: u64) {
    documents.update(document_id, |document| document.analyzed = true);
    if let Some(document) = documents.get(document_id) {
        println!(
            "✅ document {document_id} ({}) analyzed: {}",
            document.title,
            document.summary.unwrap_or_default()
        );
    }
}

/// `GET /documents`, `POST /documents`, `GET /documents/{id}`,
/// `POST /documents/{id}/analyze`.
pub(crate) mod http {
    use axum::extract::{FromRef, Path, State};
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use jobs::Jobs;
    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::{Document, Documents, analyze};

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

    fn not_found(id: u64) -> (StatusCode, Json<Value>) {
        (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no document {id}") })),
        )
    }
}
