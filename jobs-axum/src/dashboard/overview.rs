//! `GET /`: the overview page, server-rendered HTML with its own CSS, no scripts and
//! nothing loaded from elsewhere.

use std::fmt::Write;

use axum::Extension;
use axum::extract::{NestedPath, State};
use axum::response::{Html, IntoResponse, Response};
use jobs_core::{JobQuery, JobState, JobSummary, Jobs, registered_jobs};

use super::api::{ApiError, Stats, read_stats};
use super::html::Escaped;

/// How many of the latest jobs the page lists.
const LATEST: u32 = 20;

pub(super) async fn page(
    State(jobs): State<Jobs>,
    nested: Option<Extension<NestedPath>>,
) -> Response {
    // Links are absolute, so they work whether the page is at `/jobs` or `/jobs/`.
    let base = nested
        .as_ref()
        .map_or("", |Extension(path)| path.as_str().trim_end_matches('/'));
    match read(&jobs).await {
        Ok((stats, latest)) => {
            Html(render(&Escaped(base).to_string(), &stats, &latest)).into_response()
        }
        Err(error) => (
            error.status(),
            Html(layout(
                "jobs — error",
                &format!("<p class=\"error\">{}</p>", Escaped(error.message())),
            )),
        )
            .into_response(),
    }
}

async fn read(jobs: &Jobs) -> Result<(Stats, Vec<JobSummary>), ApiError> {
    let stats = read_stats(jobs).await?;
    let latest = jobs.list(JobQuery::default().limit(LATEST)).await?.items;
    Ok((stats, latest))
}

fn render(base: &str, stats: &Stats, latest: &[JobSummary]) -> String {
    let mut body = String::new();
    body.push_str("<section><h2>Jobs by state</h2><ul class=\"counts\">");
    for (state, count) in &stats.counts {
        let _ = write!(
            body,
            "<li class=\"state {class}\"><a href=\"{base}/api/jobs?state={state}\">\
             <span class=\"count\">{count}</span><span class=\"label\">{state}</span></a></li>",
            class = state_class(*state),
        );
    }
    let _ = write!(
        body,
        "</ul><p class=\"muted\">{total} jobs in all. JSON: <a href=\"{base}/api/stats\">stats</a>, \
         <a href=\"{base}/api/jobs\">jobs</a>.</p></section>",
        total = stats.total,
    );

    let names = registered_jobs();
    let _ = write!(
        body,
        "<section><h2>Registered jobs <span class=\"muted\">({})</span></h2>",
        names.len()
    );
    if names.is_empty() {
        body.push_str(
            "<p class=\"error\">No <code>#[job]</code> is registered in this binary, so this \
             server can run none.</p>",
        );
    } else {
        body.push_str("<ul class=\"names\">");
        for name in names {
            let _ = write!(body, "<li><code>{}</code></li>", Escaped(name));
        }
        body.push_str("</ul>");
    }
    body.push_str("</section>");

    body.push_str("<section><h2>Latest jobs</h2>");
    if latest.is_empty() {
        body.push_str("<p class=\"muted\">No jobs yet.</p>");
    } else {
        body.push_str(
            "<table><thead><tr><th>Job</th><th>State</th><th>Attempt</th>\
             <th>Runs at</th><th>Updated</th></tr></thead><tbody>",
        );
        for job in latest {
            let _ = write!(
                body,
                "<tr><td><a href=\"{base}/api/jobs/{id}\">{display}</a>\
                 <div class=\"muted\"><code>{name}</code></div></td>\
                 <td><span class=\"badge {class}\">{state}</span></td><td>{attempt}</td>\
                 <td>{run_at}</td><td>{updated}</td></tr>",
                id = job.id,
                display = Escaped(&job.display_name),
                name = Escaped(&job.name),
                class = state_class(job.state),
                state = job.state,
                attempt = job.attempt,
                run_at = job.run_at.format("%Y-%m-%d %H:%M:%S UTC"),
                updated = job.updated_at.format("%Y-%m-%d %H:%M:%S UTC"),
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</section>");
    layout("jobs — overview", &body)
}

fn state_class(state: JobState) -> &'static str {
    match state {
        JobState::Awaiting => "awaiting",
        JobState::Scheduled => "scheduled",
        JobState::Enqueued => "enqueued",
        JobState::Processing => "processing",
        JobState::Succeeded => "succeeded",
        JobState::Failed => "failed",
        JobState::Deleted => "deleted",
    }
}

/// The page around `body`; it refreshes itself every 5 seconds.
fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"5\"><title>{title}</title>\
         <style>{STYLE}</style></head><body><header><h1>jobs</h1>\
         <span class=\"muted\">dashboard</span></header><main>{body}</main></body></html>",
        title = Escaped(title),
    )
}

const STYLE: &str = "
:root { --fg: #1d232a; --muted: #67717d; --line: #e3e7eb; --bg: #f6f7f9; --card: #fff;
  font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; color: var(--fg); background: var(--bg); }
body { margin: 0; }
header { display: flex; align-items: baseline; gap: .75rem; padding: 1rem 2rem; background: #1d232a; color: #fff; }
header h1 { margin: 0; font-size: 1.4rem; }
header .muted { color: #aab3bd; }
main { padding: 1rem 2rem 3rem; max-width: 72rem; }
h2 { font-size: 1.05rem; margin: 1.5rem 0 .75rem; }
a { color: inherit; }
code { font-family: ui-monospace, 'SF Mono', Menlo, monospace; font-size: .85em; }
.muted { color: var(--muted); font-weight: normal; }
.error { color: #b42318; }
.counts { display: grid; grid-template-columns: repeat(auto-fill, minmax(8.5rem, 1fr)); gap: .75rem; padding: 0; margin: 0; list-style: none; }
.counts a { display: flex; flex-direction: column; padding: .8rem 1rem; background: var(--card); border: 1px solid var(--line);
  border-left: 4px solid var(--accent, var(--line)); border-radius: 6px; text-decoration: none; }
.count { font-size: 1.6rem; font-weight: 600; }
.label { color: var(--muted); font-size: .85rem; }
.names { columns: 2 18rem; padding-left: 1.2rem; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 6px; }
th, td { text-align: left; padding: .5rem .75rem; border-bottom: 1px solid var(--line); vertical-align: top; font-size: .9rem; }
th { color: var(--muted); font-weight: 600; font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; }
.badge { display: inline-block; padding: .1rem .5rem; border-radius: 999px; font-size: .8rem; color: #fff; background: var(--accent, #67717d); }
.awaiting { --accent: #8a63d2; } .scheduled { --accent: #2f6fdb; } .enqueued { --accent: #0e8a8a; }
.processing { --accent: #d98a00; } .succeeded { --accent: #1f8f4e; } .failed { --accent: #c62828; } .deleted { --accent: #67717d; }
";
