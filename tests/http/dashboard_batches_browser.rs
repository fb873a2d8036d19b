//! The batch page in a real browser (headless Chromium, see `dashboard_browser`), on
//! each backend: a batch with a failed member shows its progress (done, failed,
//! total) and its members; a member's page links to it; Delete deletes it as one.

use crate::dashboard_browser::{BROWSERS, snap};
use crate::support::browser::{Browser, Step, screenshot_dir};
use crate::support::dashboard::{Dashboard, Greet, Options, ParseInvoice, boot};
use crate::support::{Backend, wait_for_state};
use jobs::{BatchId, JobState};

backend_tests!(a_batch_page_shows_its_progress_and_deletes_it_as_one);

async fn a_batch_page_shows_its_progress_and_deletes_it_as_one(backend: Backend) {
    let _one = BROWSERS.acquire().await.unwrap();
    let dashboard = boot(backend, Options::default()).await;
    let batch = dashboard.jobs.batch().label("greetings");
    let id = batch.id();
    batch
        .add_many(["Ada", "Grace"].map(|name| Greet { name: name.into() }))
        .add(ParseInvoice {})
        .then(Greet {
            name: "everyone".into(),
        })
        .on_failure(Greet { name: "ops".into() })
        .await
        .unwrap();
    let status = dashboard.jobs.batch_status(id).await.unwrap();
    wait_for_state(
        &dashboard.jobs,
        status.on_failure_id.unwrap(),
        JobState::Succeeded,
    )
    .await;
    let browser = Browser::start(1366, 900)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let name = format!("{backend:?}").to_lowercase();
    let result = scenario(&browser, &dashboard, id, &name).await;
    if let Err(error) = result {
        let path = screenshot_dir().join(format!("failed-batch-{name}.png"));
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

async fn scenario(browser: &Browser, dashboard: &Dashboard, id: BatchId, name: &str) -> Step {
    browser
        .goto(&dashboard.at(&format!("/batches/{id}")))
        .await?;
    browser
        .wait_for(
            "the batch shows its progress and its three members",
            "document.querySelector('#batch-progress .progress-label span')?.textContent \
                 === '3 of 3 · 1 failed' \
             && document.querySelectorAll('#members tbody tr[data-id]').length === 3 \
             && document.querySelector('#then') !== null \
             && document.querySelector('h1')?.textContent === 'greetings'",
        )
        .await?;
    snap(browser, name, "batch").await?;

    browser.click("#members tbody tr[data-id] a").await?;
    browser
        .wait_for(
            "a member's page links to its batch",
            &format!("document.querySelector('#batch')?.textContent === '{id}'"),
        )
        .await?;
    browser.click("#batch").await?;
    browser
        .wait_for(
            "back on the batch page",
            "document.querySelectorAll('#members tbody tr[data-id]').length === 3",
        )
        .await?;

    browser.click("#delete").await?;
    let asked = browser.accept_dialog().await?;
    if !asked.contains("Delete this batch?") {
        return Err(format!("the confirmation says {asked:?}"));
    }
    browser
        .wait_for(
            "every member is deleted",
            "[...document.querySelectorAll('#batch-counts dt')].some((term) => \
                 term.textContent === 'Deleted' && term.nextSibling.textContent === '3')",
        )
        .await?;
    let status = dashboard
        .jobs
        .batch_status(id)
        .await
        .map_err(|error| error.to_string())?;
    if status.deleted != 3 {
        return Err(format!("stored: {status:?}"));
    }
    Ok(())
}
