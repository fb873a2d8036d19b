//! A small HTTP/1.1 client for the axum tests, on hyper-util's client (hyper is in the
//! tree already through axum, so this adds no heavy dependency).

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// An answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.body))
    }
}

/// An answer as it came over the wire: its body's bytes, not decoded.
#[derive(Debug)]
pub struct RawReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    /// The value of an `Authorization` header sent with every request.
    authorization: Option<String>,
    /// Other headers sent with every request.
    headers: Vec<(String, String)>,
}

impl Http {
    pub fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            authorization: None,
            headers: Vec::new(),
        }
    }

    /// The same client, sending `Authorization: <value>`.
    pub fn with_authorization(&self, value: &str) -> Self {
        Self {
            authorization: Some(value.to_owned()),
            ..self.clone()
        }
    }

    /// The same client, sending `name: value` too.
    pub fn with_header(&self, name: &str, value: &str) -> Self {
        let mut client = self.clone();
        client.headers.push((name.to_owned(), value.to_owned()));
        client
    }

    pub async fn get(&self, url: &str) -> Reply {
        self.send(Method::GET, url, None).await
    }

    /// Polls a job's JSON at `url` (the dashboard's `/api/jobs/{id}`) until its state
    /// is `state`, and returns it; panics after 20 s.
    pub async fn wait_for_job_state(&self, url: &str, state: &str) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let job = self.get(url).await.json();
            if job["state"] == state {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {url} to be {state}: {job:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn post(&self, url: &str, json: serde_json::Value) -> Reply {
        self.send(Method::POST, url, Some(json)).await
    }

    pub async fn delete(&self, url: &str) -> Reply {
        self.send(Method::DELETE, url, None).await
    }

    /// Sends `body` as is (no JSON, no content type) and returns the answer's raw bytes.
    pub async fn raw(&self, method: Method, url: &str, body: Bytes) -> RawReply {
        let mut request = Request::builder().method(method.clone()).uri(url);
        if let Some(value) = &self.authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(body)).expect("a valid request");
        let response = tokio::time::timeout(Duration::from_secs(20), self.client.request(request))
            .await
            .unwrap_or_else(|_| panic!("{method} {url}: no answer within 20 s"))
            .unwrap_or_else(|error| panic!("{method} {url}: {error}"));
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .unwrap_or_else(|error| panic!("{method} {url}: {error}"))
            .to_bytes();
        RawReply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn send(&self, method: Method, url: &str, json: Option<serde_json::Value>) -> Reply {
        self.try_send(method.clone(), url, json)
            .await
            .unwrap_or_else(|error| panic!("{method} {url}: {error}"))
    }

    pub async fn try_send(
        &self,
        method: Method,
        url: &str,
        json: Option<serde_json::Value>,
    ) -> Result<Reply, Box<dyn std::error::Error + Send + Sync>> {
        let mut request = Request::builder().method(method).uri(url);
        if let Some(value) = &self.authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let body = match json {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(json.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let response = tokio::time::timeout(
            Duration::from_secs(20),
            self.client.request(request.body(body)?),
        )
        .await??;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(body.to_vec())?,
        })
    }
}
