//! The HTML pages and their assets.
//!
//! Every page is the same small HTML document; the script reads the path and draws the
//! page from the JSON API, then keeps it current over `/api/events`. The script, the
//! style sheet and the icon are files of this crate, compiled into the binary. Their
//! URLs carry a hash of their content, so browsers may keep them for good.

use std::sync::LazyLock;

use axum::Extension;
use axum::extract::NestedPath;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::html::Escaped;

const INDEX: &str = include_str!("assets/index.html");
const STYLE: &str = include_str!("assets/app.css");
const ICON: &str = include_str!("assets/icon.svg");
/// One script, from one file per page and the helpers they share, in a function of
/// its own so that none of their names shadows one of the browser's (`history`…).
const SCRIPT: &str = concat!(
    "(() => {\n",
    include_str!("assets/js/core.js"),
    include_str!("assets/js/overview.js"),
    include_str!("assets/js/jobs.js"),
    include_str!("assets/js/job.js"),
    include_str!("assets/js/batch.js"),
    include_str!("assets/js/recurring.js"),
    include_str!("assets/js/queues.js"),
    include_str!("assets/js/servers.js"),
    include_str!("assets/js/main.js"),
    "})();\n",
);

/// A hash of every asset: a new binary with other assets gets other URLs.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let hash = [STYLE, ICON, SCRIPT]
        .iter()
        .flat_map(|asset| asset.bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{hash:016x}")
});

/// Any page: the document that loads the script.
pub(super) async fn page(nested: Option<Extension<NestedPath>>) -> Html<String> {
    // Absolute URLs under the nest path, so pages work at `/jobs` as at `/jobs/x/y`.
    let base = nested
        .as_ref()
        .map_or("", |Extension(path)| path.as_str().trim_end_matches('/'));
    Html(
        INDEX
            .replace("{{base}}", &Escaped(base).to_string())
            .replace("{{version}}", &VERSION),
    )
}

pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub(super) async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}
