//! The queues page in a real browser (headless Chromium, see `dashboard_browser`), on
//! each backend: a queue with a waiting job, paused with a click (after the
//! confirmation), its badge saying who paused it, then resumed; the limits and the rate
//! a server declares, and the job the rate holds back, on the queues and the servers
//! pages; the banner of the job name no server runs, on the servers page.

use crate::dashboard_browser::{BROWSERS, snap};
use crate::support::browser::{Browser, Step, screenshot_dir};
use crate::support::dashboard::{CallModel, Dashboard, Greet, Options, boot};
use crate::support::{Backend, test_server};

backend_tests!(a_queue_is_paused_and_resumed_from_its_page);

async fn a_queue_is_paused_and_resumed_from_its_page(backend: Backend) {
    let _one = BROWSERS.acquire().await.unwrap();
    // The only server claims from `email` alone, and runs no greeting: the job of
    // `default` waits, so that queue shows one waiting job throughout, and its name no
    // server registers.
    let dashboard = boot(backend, Options::no_server()).await;
    let server = test_server(&dashboard.jobs, &dashboard.probe)
        .name("mailer")
        .queues(["email"])
        .queue_limit("email", 2)
        .global_queue_limit("email", 3)
        .queue_rate("email", "1/1h".parse().unwrap())
        .only_jobs([
            <CallModel as jobs::Job>::DESCRIPTOR.name(),
            <crate::dashboard_queues::SendEmail as jobs::Job>::DESCRIPTOR.name(),
        ])
        .start()
        .await
        .unwrap();
    dashboard.greet("Ada").await;
    // Two emails: one starts, the other waits for the rate.
    for user in [1, 2] {
        dashboard
            .jobs
            .enqueue(crate::dashboard_queues::SendEmail { user })
            .await
            .unwrap();
    }
    let browser = Browser::start(1366, 900)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let name = format!("{backend:?}").to_lowercase();
    let result = scenario(&browser, &dashboard, &name).await;
    if let Err(error) = result {
        let path = screenshot_dir().join(format!("failed-queues-{name}.png"));
        let saved = match browser.screenshot(&path).await {
            Ok(()) => format!("screenshot: {}", path.display()),
            Err(shot) => format!("no screenshot: {shot}"),
        };
        browser.quit().await;
        server.shutdown().await;
        dashboard.stop().await;
        panic!("{error}\n{saved}");
    }
    browser.quit().await;
    server.shutdown().await;
    dashboard.stop().await;
}

async fn scenario(browser: &Browser, dashboard: &Dashboard, name: &str) -> Step {
    const ROW: &str = "#queues tr[data-queue='default']";
    browser.goto(&dashboard.at("/queues")).await?;
    browser
        .wait_for(
            "the queue is listed with its waiting job, running",
            &format!(
                "document.querySelector(\"{ROW} td[data-label=Waiting]\")?.textContent === '1' \
                 && document.querySelector(\"{ROW} .pill.on\")?.textContent === 'Running' \
                 && document.querySelector('.tabs a.active')?.dataset.page === 'queues'"
            ),
        )
        .await?;

    browser
        .click(&format!("{ROW} button[data-action=pause]"))
        .await?;
    let asked = browser.accept_dialog().await?;
    if !asked.contains("Pause the queue default on every server?") {
        return Err(format!("the confirmation says {asked:?}"));
    }
    browser
        .wait_for(
            "the queue shows its Paused badge, by the dashboard",
            &format!(
                "document.querySelector(\"{ROW} .pill.paused\")?.textContent === 'Paused' \
                 && document.querySelector(\"{ROW} .paused-by\")?.textContent === 'dashboard' \
                 && document.querySelector(\"{ROW} button[data-action=resume]\") !== null"
            ),
        )
        .await?;
    snap(browser, name, "queue-paused").await?;
    let paused = dashboard.jobs.paused().await.map_err(|e| e.to_string())?;
    if paused.len() != 1 || paused[0].name != "default" || paused[0].by != "dashboard" {
        return Err(format!("stored pauses: {paused:?}"));
    }

    browser
        .click(&format!("{ROW} button[data-action=resume]"))
        .await?;
    browser
        .wait_for(
            "the queue runs again",
            &format!(
                "document.querySelector(\"{ROW} .pill.on\")?.textContent === 'Running' \
                 && document.querySelector(\"{ROW} .pill.paused\") === null \
                 && document.querySelector(\"{ROW} button[data-action=pause]\") !== null"
            ),
        )
        .await?;
    let paused = dashboard.jobs.paused().await.map_err(|e| e.to_string())?;
    if !paused.is_empty() {
        return Err(format!("still paused: {paused:?}"));
    }

    // The queue the server serves, with the limits and the rate it declares, and the
    // job the rate holds back, here and on its row.
    const EMAIL: &str = "#queues tr[data-queue='email']";
    browser
        .wait_for(
            "one email waits for the rate",
            &format!(
                "document.querySelector(\"{EMAIL} .rate-limited\")?.textContent === \
                 '1 rate-limited'"
            ),
        )
        .await?;
    let limits = browser
        .text(&format!("{EMAIL} td[data-label=Limits]"))
        .await?;
    if limits != "3 at once across the cluster1/1h starts across the cluster2 at once on mailer" {
        return Err(format!("the limits of email read {limits:?}"));
    }
    snap(browser, name, "queue-rate").await?;
    browser.click(".tabs a[data-page=servers]").await?;
    let queues = browser.text("#servers td[data-label=Queues]").await?;
    if queues != "emailemail: 2 at once here, 3 across the cluster, 1/1h starts across the cluster"
    {
        return Err(format!("the server's queues read {queues:?}"));
    }
    let greet = <Greet as jobs::Job>::DESCRIPTOR.name();
    browser
        .wait_for(
            "the banner names the job name no server registers",
            &format!(
                "document.querySelector('#unserved .message')?.textContent\
                 .startsWith('No server registers `{greet}`: 1 job waiting, due since ')"
            ),
        )
        .await?;
    snap(browser, name, "server-queues").await?;
    Ok(())
}
