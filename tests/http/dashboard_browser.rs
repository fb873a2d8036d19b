//! The dashboard in a real browser (headless Chromium over WebDriver), on each backend:
//! from the overview to a failed job, its error, a requeue seen succeeding live, a job
//! whose argument is a script shown as text, a recurring job triggered from its
//! page, the jobs an agent's tool call created, found by their labels, and a job that
//! panicked: where, and its backtrace folded.
//!
//! Without Chromium the test fails and says how to install it (.ci/run installs it).
//!
//! The first look: the `agent` example, started as a process on an empty database,
//! shows its demo (a reminder, a document analysis with a retry, the morning summary);
//! the screenshot of its jobs page is the README's `docs/dashboard.png`, and the
//! summary step's page shows its progress and the failed attempt before the retry.
//!
//! When a step fails, a screenshot is saved to `target/dashboard-screenshots/`; with
//! `JOBS_DASHBOARD_SCREENSHOTS=1` every step is saved there, at laptop and phone width.

use std::path::Path;
use std::time::Duration;

use crate::support::Backend;
use crate::support::browser::{Browser, Step, screenshot_dir};
use crate::support::dashboard::{Dashboard, Greet, Options, PANIC_FILE, PANIC_LINE, boot};
use crate::support::example_binary::{build_example, example_command, read_addresses};
use crate::support::http::Http;
use jobs::{JobId, ToolCatalog, ToolResult};
use serde_json::json;
use tokio::sync::Semaphore;

backend_tests!(a_failed_job_is_found_requeued_and_seen_succeeding);

/// While the database cannot be reached, every page says so, and that the server in the
/// plugin's process stopped its jobs; when it can again, the banner goes by itself.
/// PostgreSQL only: the test closes the database to connections and ends those open.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_shows_on_every_page_until_it_ends() {
    let _one = BROWSERS.acquire().await.unwrap();
    let dashboard = boot(Backend::Postgres, Options::default()).await;
    let id = dashboard.greet("Ada").await;
    dashboard.wait_for(id, "Succeeded").await;
    let browser = Browser::start(1366, 900)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let result = outage(&browser, &dashboard).await;
    // The database comes back whatever happened.
    reachable(&dashboard, true).await;
    if let Err(error) = result {
        let path = screenshot_dir().join("failed-outage.png");
        let saved = match browser.screenshot(&path).await {
            Ok(()) => format!("screenshot: {}", path.display()),
            Err(shot) => format!("no screenshot: {shot}"),
        };
        browser.quit().await;
        dashboard.stop().await;
        panic!("{error}\n{saved}");
    }
    browser.quit().await;
    dashboard.stop().await;
}

#[cfg(feature = "postgres")]
async fn outage(browser: &Browser, dashboard: &Dashboard) -> Step {
    const BANNER: &str = "document.getElementById('banner')";
    browser.goto(&dashboard.at("/")).await?;
    browser
        .wait_for(
            "the overview counts the job",
            "document.querySelector('.count-card[data-state=Succeeded] .n')?.textContent === '1'",
        )
        .await?;
    browser
        .wait_for("no banner while all is well", &format!("{BANNER}.hidden"))
        .await?;

    reachable(dashboard, false).await;
    browser
        .wait_for(
            "the banner says the database is unreachable",
            &format!("!{BANNER}.hidden && {BANNER}.textContent.includes('Database unreachable')"),
        )
        .await?;
    browser
        .wait_for(
            "the banner says the job server stopped its jobs",
            &format!(
                "{BANNER}.textContent.includes('Job server unhealthy') \
                 && {BANNER}.textContent.includes('cannot renew its leases')"
            ),
        )
        .await?;
    // A page opened during the outage is drawn, with the banner.
    browser.goto(&dashboard.at("/jobs")).await?;
    browser
        .wait_for(
            "the jobs page says the database is unreachable",
            &format!(
                "document.querySelector('#main h1')?.textContent === 'Jobs' \
                 && !{BANNER}.hidden && {BANNER}.textContent.includes('Database unreachable')"
            ),
        )
        .await?;

    reachable(dashboard, true).await;
    browser
        .wait_for(
            "the jobs are listed again",
            "document.querySelector('#jobs tr[data-id]') !== null",
        )
        .await?;
    browser
        .wait_for(
            "the banner goes once the server renews its leases again",
            &format!("{BANNER}.hidden"),
        )
        .await?;
    Ok(())
}

/// Opens the test's database to connections, or closes it and ends those open.
#[cfg(feature = "postgres")]
async fn reachable(dashboard: &Dashboard, open: bool) {
    use sqlx::Connection;
    let url = dashboard.database_url();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let admin = crate::support::pg_admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {open}"))
        .execute(&mut conn)
        .await
        .unwrap();
    if !open {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

/// One browser at a time: two Chromiums on a small machine make each other slow.
pub(crate) static BROWSERS: Semaphore = Semaphore::const_new(1);

const XSS: &str = "<script>alert(1)</script>";
const XSS_IMG: &str = "<img src=x onerror=\"window.__xss = 1\">";

/// What the scenario runs against.
struct Fixture {
    dashboard: Dashboard,
    failed: JobId,
    scripted: JobId,
    image: JobId,
    /// Created by a tool call for caller `u1`.
    called: JobId,
}

async fn a_failed_job_is_found_requeued_and_seen_succeeding(backend: Backend) {
    let _one = BROWSERS.acquire().await.unwrap();
    let dashboard = boot(backend, Options::default()).await;
    let failed = dashboard.summarize("Q3 deck").await;
    let scripted = dashboard.greet(XSS).await;
    let image = dashboard.greet(XSS_IMG).await;
    dashboard
        .jobs
        .recurring()
        .cron(
            "nightly-digest",
            "0 3 * * *",
            Greet {
                name: "digest".into(),
            },
        )
        .zone("Europe/Brussels")
        .await
        .unwrap();
    dashboard.wait_for(failed, "Failed").await;
    dashboard.wait_for(scripted, "Succeeded").await;
    dashboard.wait_for(image, "Succeeded").await;
    let called = ToolCatalog::new(dashboard.jobs.clone())
        .allow::<Greet>()
        .call_tool("run_greet", json!({"name": "from an agent"}), "u1")
        .await
        .unwrap();
    let ToolResult::Enqueued { job_id: called, .. } = called else {
        panic!("{called:?}")
    };
    dashboard.wait_for(called, "Succeeded").await;
    let fixture = Fixture {
        dashboard,
        failed,
        scripted,
        image,
        called,
    };

    let browser = Browser::start(1366, 900)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let name = format!("{backend:?}").to_lowercase();
    let result = scenario(&browser, &fixture, &name).await;
    if let Err(error) = result {
        let path = screenshot_dir().join(format!("failed-{name}.png"));
        let saved = match browser.screenshot(&path).await {
            Ok(()) => format!("screenshot: {}", path.display()),
            Err(shot) => format!("no screenshot: {shot}"),
        };
        browser.quit().await;
        fixture.dashboard.stop().await;
        panic!("{error}\n{saved}");
    }
    browser.quit().await;
    fixture.dashboard.stop().await;
}

async fn scenario(browser: &Browser, fixture: &Fixture, name: &str) -> Step {
    let dashboard = &fixture.dashboard;
    let failed = fixture.failed;

    // The overview counts the failure; its card leads to the failed jobs.
    browser.goto(&dashboard.at("/")).await?;
    browser
        .wait_for(
            "the overview counts one failed job",
            "document.querySelector('.count-card[data-state=Failed] .n')?.textContent === '1'",
        )
        .await?;
    browser
        .wait_for(
            "the throughput chart is drawn",
            "document.querySelector('#throughput svg .bar-succeeded')",
        )
        .await?;
    snap(browser, name, "overview").await?;
    browser.click(".count-card[data-state=Failed]").await?;
    let row = format!("#jobs tr[data-id='{failed}']");
    browser
        .wait_for(
            "the failed job is listed",
            &format!("document.querySelector(\"{row} .badge\")?.textContent === 'Failed'"),
        )
        .await?;
    snap(browser, name, "failed-jobs").await?;
    browser.click(&format!("{row} a")).await?;

    // Its page shows the error and every source of it.
    let error = browser.text("#last-error").await?;
    for part in [
        "could not summarize Q3 deck",
        "the model API timed out",
        "connection reset by peer",
    ] {
        if !error.contains(part) {
            return Err(format!("the error box lacks {part:?}: {error:?}"));
        }
    }
    snap(browser, name, "failed-job").await?;

    // Requeue: the page follows the job to Succeeded without a reload.
    dashboard.switch.turn_on();
    browser
        .script("window.__sameDocument = true; return true;", json!([]))
        .await?;
    browser.click("#requeue").await?;
    browser
        .wait_for(
            "the job is seen succeeding",
            "document.querySelector('#summary .badge')?.textContent === 'Succeeded' \
             && document.querySelector('#attempts [data-outcome=succeeded]')",
        )
        .await?;
    let same = browser
        .script("return window.__sameDocument === true;", json!([]))
        .await?;
    if same != json!(true) {
        return Err("the page reloaded: the update should come over SSE".into());
    }
    snap(browser, name, "requeued").await?;

    // Arguments and names that look like HTML are shown as text, and never run.
    for (id, text) in [(fixture.scripted, XSS), (fixture.image, XSS_IMG)] {
        browser.goto(&dashboard.at(&format!("/jobs/{id}"))).await?;
        let title = browser.text("h1").await?;
        if title != format!("Greet {text}") {
            return Err(format!("the title is {title:?}"));
        }
        let arguments = browser.text("#arguments").await?;
        let expected = serde_json::to_string_pretty(&json!({ "name": text })).unwrap();
        if arguments != expected {
            return Err(format!("the arguments show {arguments:?}"));
        }
        if let Some(dialog) = browser.dialog().await {
            return Err(format!("a dialog opened: {dialog:?}"));
        }
        let injected = browser
            .script(
                "return document.querySelectorAll('main script, main img').length > 0 \
                 || window.__xss !== undefined;",
                json!([]),
            )
            .await?;
        if injected != json!(false) {
            return Err(format!("markup from {text:?} became elements"));
        }
    }
    browser.goto(&dashboard.at("/jobs?search=greet")).await?;
    browser
        .wait_for(
            "the list shows the script as text",
            &format!(
                "[...document.querySelectorAll('#jobs .title')].some((n) => n.textContent === {})",
                json!(format!("Greet {XSS}"))
            ),
        )
        .await?;
    if let Some(dialog) = browser.dialog().await {
        return Err(format!("a dialog opened on the list: {dialog:?}"));
    }
    snap(browser, name, "escaped").await?;

    // A recurring job, triggered from its page; the run appears and succeeds live.
    browser.goto(&dashboard.at("/recurring-jobs")).await?;
    browser
        .click("#recurring tr[data-id='nightly-digest'] a")
        .await?;
    browser
        .wait_for(
            "the recurring job's page shows its schedule",
            "document.querySelector('#recurring-facts code')?.textContent === '0 3 * * *'",
        )
        .await?;
    snap(browser, name, "recurring-job").await?;
    browser.click("button[data-action=trigger]").await?;
    // The toast links to the new run; the runs table shows it, live, until it succeeds.
    browser
        .wait_for(
            "the triggered run is listed and succeeds",
            "(() => { \
               const link = document.querySelector('.toast a[href*=\"/jobs/\"]'); \
               if (!link) return false; \
               const id = link.getAttribute('href').split('/jobs/')[1]; \
               const row = document.querySelector(`#runs tr[data-id=\"${id}\"]`); \
               return row !== null && row.querySelector('.title').textContent === 'Greet digest' \
                 && row.querySelector('.badge').textContent === 'Succeeded'; \
             })()",
        )
        .await?;
    snap(browser, name, "recurring-triggered").await?;

    // Tool calls have a tab: only the job the agent's call created, with who asked;
    // its caller label leads to every job that caller's calls created.
    browser.goto(&dashboard.at("/")).await?;
    browser.click(".tabs a[data-page=tool-calls]").await?;
    let called = format!("#jobs tr[data-id='{}']", fixture.called);
    browser
        .wait_for(
            "the tool calls tab lists the agent's job alone",
            &format!(
                "document.querySelectorAll('#jobs tr[data-id]').length === 1 \
                 && document.querySelector(\"{called} .title\")?.textContent === 'Greet from an agent' \
                 && document.querySelector('.tabs a.active')?.dataset.page === 'tool-calls'"
            ),
        )
        .await?;
    snap(browser, name, "tool-calls").await?;
    browser
        .click(&format!("{called} a.pill.label[href$='label=caller%3Au1']"))
        .await?;
    browser
        .wait_for(
            "the caller's label lists the caller's jobs",
            &format!(
                "location.search === '?label=caller%3Au1' \
                 && document.querySelectorAll('#jobs tr[data-id]').length === 1 \
                 && document.querySelector(\"{called}\") !== null"
            ),
        )
        .await?;

    // A job that panics shows where, and its backtrace folded; the job came last, so
    // the overview above counted one failure.
    let panicked = dashboard.parse_invoice().await;
    dashboard.wait_for(panicked, "Failed").await;
    browser
        .goto(&dashboard.at(&format!("/jobs/{panicked}")))
        .await?;
    browser
        .wait_for(
            "the panic's backtrace is on the page, folded",
            "document.querySelector('#last-error details.backtrace') !== null \
             && !document.querySelector('#last-error details.backtrace').open",
        )
        .await?;
    let message = browser.text("#last-error .message").await?;
    let at = format!("panicked at {PANIC_FILE}:{PANIC_LINE}:");
    if !message.starts_with(&at) || !message.ends_with("the invoice has no total") {
        return Err(format!("the message does not say where: {message:?}"));
    }
    browser
        .click("#last-error details.backtrace summary")
        .await?;
    browser
        .wait_for(
            "the backtrace unfolds and names the job fn",
            "(() => { \
               const details = document.querySelector('#last-error details.backtrace'); \
               const pre = details.querySelector('pre'); \
               return details.open && pre.offsetHeight > 0 \
                 && pre.textContent.includes('parse_invoice'); \
             })()",
        )
        .await?;
    snap(browser, name, "panicked").await?;

    if wants_screenshots() {
        phone_screenshots(browser, fixture, name).await?;
    }
    Ok(())
}

fn wants_screenshots() -> bool {
    std::env::var_os("JOBS_DASHBOARD_SCREENSHOTS").is_some_and(|value| value == "1")
}

/// Saves a screenshot of this step when `JOBS_DASHBOARD_SCREENSHOTS=1`.
pub(crate) async fn snap(browser: &Browser, backend: &str, step: &str) -> Step {
    if !wants_screenshots() {
        return Ok(());
    }
    browser
        .screenshot(&screenshot_dir().join(format!("{backend}-{step}.png")))
        .await
}

async fn phone_screenshots(browser: &Browser, fixture: &Fixture, name: &str) -> Step {
    browser.resize(390, 844).await?;
    let pages = [
        ("phone-overview", "/".to_owned()),
        ("phone-jobs", "/jobs".to_owned()),
        ("phone-job", format!("/jobs/{}", fixture.failed)),
        ("phone-recurring", "/recurring-jobs".to_owned()),
        ("phone-queues", "/queues".to_owned()),
        ("phone-servers", "/servers".to_owned()),
    ];
    for (step, path) in pages {
        browser.goto(&fixture.dashboard.at(&path)).await?;
        browser
            .wait_for("the page is live", "document.querySelector('#live.on')")
            .await?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        snap(browser, name, step).await?;
    }
    Ok(())
}

/// What the demo's three scenarios show in the job list: the reminder, the summary step
/// of the document analysis (whose first attempt fails), and the run of the morning
/// summary.
const DEMO_SCENARIOS: [&str; 3] = [
    "Remind user 7: Review the Q3 deck",
    "Summarize document 1",
    "Summarize inbox",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_examples_first_look_shows_its_demo() {
    let binary = build_example("agent");
    let dir = tempfile::tempdir().unwrap();
    let mut child = example_command(&binary, dir.path())
        .env("PORT", "0")
        .env("JOBS__DASHBOARD__PORT", "0")
        .env_remove("DEMO")
        .spawn()
        .unwrap_or_else(|error| panic!("{}: {error}", binary.display()));
    let (_, dashboard) = read_addresses(&mut child).await;

    // Each scenario has its job; the summary step has failed once and run again.
    let jobs = wait_for_demo(&Http::new(), &dashboard).await;
    let summary = &jobs[DEMO_SCENARIOS[1]];
    assert_eq!(summary["attempt"], 2, "{summary:#}");

    let _one = BROWSERS.acquire().await.unwrap();
    let browser = Browser::start(1366, 900)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let result = first_look(&browser, &dashboard).await;
    if let Err(error) = result {
        let path = screenshot_dir().join("failed-first-look.png");
        let saved = match browser.screenshot(&path).await {
            Ok(()) => format!("screenshot: {}", path.display()),
            Err(shot) => format!("no screenshot: {shot}"),
        };
        browser.quit().await;
        panic!("{error}\n{saved}");
    }
    browser.quit().await;
    child.kill().await.unwrap();
}

/// The demo's jobs by display name, once the three scenarios each have one and the
/// analysis's summary has succeeded on its second attempt; panics after 30 s.
async fn wait_for_demo(
    http: &Http,
    dashboard: &str,
) -> std::collections::HashMap<String, serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = http.get(&format!("{dashboard}/api/jobs")).await.json();
        let jobs: std::collections::HashMap<String, serde_json::Value> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|job| {
                (
                    job["display_name"].as_str().unwrap().to_owned(),
                    job.clone(),
                )
            })
            .collect();
        let shown = DEMO_SCENARIOS.iter().all(|name| jobs.contains_key(*name));
        let retried = jobs
            .get(DEMO_SCENARIOS[1])
            .is_some_and(|job| job["state"] == "Succeeded");
        if shown && retried {
            return jobs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the demo did not show its three scenarios: {page:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn first_look(browser: &Browser, dashboard: &str) -> Step {
    browser.goto(&format!("{dashboard}/jobs")).await?;
    let scenarios = serde_json::to_string(&DEMO_SCENARIOS).unwrap();
    browser
        .wait_for(
            "the jobs page lists a job of each of the demo's scenarios",
            &format!(
                "{scenarios}.every((name) => [...document.querySelectorAll('#jobs .title')]\
                 .some((title) => title.textContent === name))"
            ),
        )
        .await?;
    browser
        .wait_for(
            "the summary step shows its second attempt",
            "[...document.querySelectorAll('#jobs tbody tr')].some((row) => \
             row.querySelector('.title')?.textContent === 'Summarize document 1' && \
             row.querySelector('td.num')?.textContent === '2')",
        )
        .await?;
    let page = browser.text("#jobs").await?;
    for name in DEMO_SCENARIOS {
        if !page.contains(name) {
            return Err(format!("the jobs page lacks {name:?}: {page:?}"));
        }
    }
    let readme_image = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard.png");
    browser.screenshot(&readme_image).await?;

    // The summary step's page: its progress bar, and the failed attempt before the one
    // that succeeded.
    browser
        .script(
            "[...document.querySelectorAll('#jobs .title a')]\
             .find((a) => a.textContent === 'Summarize document 1').id = 'demo-summary'; \
             return true;",
            json!([]),
        )
        .await?;
    browser.click("#demo-summary").await?;
    let progress = browser.text("#progress").await?;
    if !progress.contains("3 of 3") {
        return Err(format!("the progress card says {progress:?}"));
    }
    let attempts = browser.text("#attempts").await?;
    if !attempts.contains("the model call `summarize` failed") {
        return Err(format!(
            "the attempts lack the model's failure: {attempts:?}"
        ));
    }
    Ok(())
}
