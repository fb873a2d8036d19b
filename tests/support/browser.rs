//! A small WebDriver client for browser tests: headless Chromium driven by
//! `chromedriver` (both from Debian's `chromium` and `chromium-driver` packages) over
//! HTTP, with the hyper client the other tests use. No browser crate: the few commands
//! needed (navigate, run a script, click, read an alert, take a screenshot) are plain
//! JSON requests.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use axum::http::Method;
use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::http::Http;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "chromedriver";
/// How long a wait for the page lasts before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

/// The result of a browser step: a message saying what was expected, on failure.
pub type Step<T = ()> = Result<T, String>;

/// One headless Chromium, with its own fresh profile.
pub struct Browser {
    /// `http://127.0.0.1:<port>/session/<id>`
    session: String,
    http: Http,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser window of `width` × `height`.
    pub async fn start(width: u32, height: u32) -> Step<Self> {
        if !Path::new(CHROMIUM).exists() {
            return Err(format!(
                "the browser tests need headless Chromium at {CHROMIUM}: install it with \
                 `apt-get install -y chromium chromium-driver` (.ci/run does)"
            ));
        }
        let mut driver = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| {
                format!(
                    "cannot start `{CHROMEDRIVER}` ({error}): install it with \
                     `apt-get install -y chromium-driver` (.ci/run does)"
                )
            })?;
        let port = driver_port(&mut driver).await?;
        let profile = tempfile::tempdir().map_err(|error| error.to_string())?;
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--hide-scrollbars".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},{height}"),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            // Dialogs stay open, so a test can see that none was opened.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }}});
        let http = Http::new();
        let base = format!("http://127.0.0.1:{port}");
        let created = command(
            &http,
            Method::POST,
            &format!("{base}/session"),
            Some(capabilities),
        )
        .await
        .map_err(|error| format!("chromedriver did not start Chromium: {error}"))?;
        let id = created["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {created}"))?;
        Ok(Self {
            session: format!("{base}/session/{id}"),
            http,
            driver,
            _profile: profile,
        })
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Step<Value> {
        command(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    pub async fn goto(&self, url: &str) -> Step {
        self.send(Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    /// Runs `body` as a function in the page; `arguments[i]` are `args`.
    pub async fn script(&self, body: &str, args: Value) -> Step<Value> {
        self.send(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": body, "args": args })),
        )
        .await
    }

    /// Polls the JavaScript `condition` until it is true; fails saying `what`.
    pub async fn wait_for(&self, what: &str, condition: &str) -> Step {
        let script = format!("return Boolean({condition});");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut last = Value::Null;
        while tokio::time::Instant::now() < deadline {
            match self.script(&script, json!([])).await {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(value) => last = value,
                Err(error) => last = Value::String(error),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "timed out waiting until {what} (`{condition}` was {last})"
        ))
    }

    /// The text of the first element matching `css`, once there is one.
    pub async fn text(&self, css: &str) -> Step<String> {
        self.wait_for(
            &format!("`{css}` is on the page"),
            &format!("document.querySelector({})", json!(css)),
        )
        .await?;
        let text = self
            .script(
                "const node = document.querySelector(arguments[0]); \
                 return node ? node.textContent : null;",
                json!([css]),
            )
            .await?;
        text.as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("`{css}` went away"))
    }

    /// Clicks the first element matching `css` as a user would, retrying while the
    /// page redraws it.
    pub async fn click(&self, css: &str) -> Step {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let attempt = async {
                let found = self
                    .send(
                        Method::POST,
                        "/element",
                        Some(json!({ "using": "css selector", "value": css })),
                    )
                    .await?;
                let element = found
                    .as_object()
                    .and_then(|object| object.values().next())
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("no element id in {found}"))?
                    .to_owned();
                self.send(
                    Method::POST,
                    &format!("/element/{element}/click"),
                    Some(json!({})),
                )
                .await
            };
            match attempt.await {
                Ok(_) => return Ok(()),
                Err(error) if tokio::time::Instant::now() >= deadline => {
                    return Err(format!("cannot click `{css}`: {error}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The text of an open alert, confirm or prompt dialog, if there is one.
    pub async fn dialog(&self) -> Option<String> {
        self.send(Method::GET, "/alert/text", None)
            .await
            .ok()
            .map(|text| text.as_str().unwrap_or_default().to_owned())
    }

    /// Accepts the confirm dialog that is open or opens within the test's patience,
    /// as a user clicking OK; → its text.
    pub async fn accept_dialog(&self) -> Step<String> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(text) = self.dialog().await {
                self.send(Method::POST, "/alert/accept", Some(json!({})))
                    .await?;
                return Ok(text);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err("no dialog opened".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn resize(&self, width: u32, height: u32) -> Step {
        self.send(
            Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await
        .map(drop)
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) -> Step {
        let png = self.send(Method::GET, "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .map_err(|error| error.to_string())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|error| error.to_string())?;
        }
        std::fs::write(path, png).map_err(|error| format!("{}: {error}", path.display()))
    }

    /// Closes the browser and its driver.
    pub async fn quit(mut self) {
        let _ = self.send(Method::DELETE, "", None).await;
        let _ = self.driver.kill().await;
    }
}

/// Where screenshots go: `target/dashboard-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("dashboard-screenshots")
}

/// Reads chromedriver's "started successfully on port N." line.
async fn driver_port(driver: &mut Child) -> Step<u16> {
    let stdout = driver.stdout.take().ok_or("chromedriver has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let read = async {
        while let Some(line) = lines.next_line().await.map_err(|error| error.to_string())? {
            if let Some(rest) = line.split("on port ").nth(1) {
                let port = rest.trim_end_matches('.').trim();
                if line.contains("started successfully") {
                    return port
                        .parse()
                        .map_err(|_| format!("no port in chromedriver's line {line:?}"));
                }
            }
        }
        Err("chromedriver exited before it listened".to_owned())
    };
    let port = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .map_err(|_| "chromedriver did not start within 20 s".to_owned())??;
    // Keep draining its output, so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(port)
}

/// One WebDriver command: its `value`, or the driver's error message.
async fn command(http: &Http, method: Method, url: &str, body: Option<Value>) -> Step<Value> {
    let reply = http
        .try_send(method.clone(), url, body)
        .await
        .map_err(|error| format!("{method} {url}: {error}"))?;
    let mut json: Value = serde_json::from_str(&reply.body)
        .map_err(|error| format!("{method} {url}: not JSON ({error}): {}", reply.body))?;
    let value = json["value"].take();
    if reply.status.is_success() {
        Ok(value)
    } else {
        Err(format!(
            "{}: {}",
            value["error"].as_str().unwrap_or("error"),
            value["message"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
        ))
    }
}
