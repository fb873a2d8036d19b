//! What an operator does from the dashboard, through the client: requeue, delete and
//! search jobs, one at a time or by filter; see servers and throughput.

use jobs::Job;
use std::time::Duration;

use crate::support::{
    self, Backend, Probe, setup, start_time, test_server, wait_for_state, wait_until,
};
use jobs::prelude::*;
use jobs::{JobQuery, JobServer, Jobs};

backend_tests!(
    requeue_runs_a_failed_job_again,
    requeue_refuses_running_and_missing_jobs,
    requeue_and_delete_by_filter,
    search_matches_names_case_insensitively_and_literally,
    servers_and_throughput,
);

#[job(retries = 0, display = "Charge card {order}")]
async fn charge_card(
    State(probe): State<Probe>,
    ctx: JobContext,
    order: String,
) -> Result<(), String> {
    let _run = probe.start(ctx.id());
    if let Ok(permit) = probe.gate.try_acquire() {
        permit.forget();
        return Ok(());
    }
    Err(format!("card declined for {order}"))
}

async fn server(jobs: &Jobs, probe: &Probe) -> JobServer {
    test_server(jobs, probe)
        .server_timeout(Duration::from_secs(24 * 3600))
        .name("admin-test")
        .start()
        .await
        .unwrap()
}

async fn requeue_runs_a_failed_job_again(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let id = jobs
        .enqueue(ChargeCard {
            order: "A-1".into(),
        })
        .await
        .unwrap();
    let failed = wait_for_state(&jobs, id, JobState::Failed).await;
    assert_eq!(failed.attempt, 1);

    probe.gate.add_permits(1);
    assert!(jobs.requeue(id).await.unwrap());
    let info = wait_for_state(&jobs, id, JobState::Succeeded).await;
    server.shutdown().await;
    assert_eq!(info.attempt, 1, "attempts count from zero after a requeue");
    let states: Vec<_> = info.history.iter().map(|entry| entry.state).collect();
    assert_eq!(
        states,
        [
            JobState::Enqueued,
            JobState::Processing,
            JobState::Failed,
            JobState::Enqueued,
            JobState::Processing,
            JobState::Succeeded
        ]
    );
    assert_eq!(
        info.errors().next().unwrap().message,
        "card declined for A-1"
    );
}

async fn requeue_refuses_running_and_missing_jobs(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    assert!(!jobs.requeue(JobId::new()).await.unwrap());
    let id = jobs
        .enqueue(ChargeCard {
            order: "A-2".into(),
        })
        .await
        .unwrap();
    // An enqueued job may be requeued (a no-op move), a deleted one too.
    assert!(jobs.requeue(id).await.unwrap());
    jobs.delete(id).await.unwrap();
    assert!(jobs.requeue(id).await.unwrap());
    assert_eq!(jobs.get(id).await.unwrap().state, JobState::Enqueued);
    drop(probe);
}

async fn requeue_and_delete_by_filter(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let ids = jobs
        .enqueue_many((0..6).map(|n| ChargeCard {
            order: format!("B-{n}"),
        }))
        .await
        .unwrap();
    wait_until("all six fail", || async {
        jobs.count_by_state().await.unwrap() == [(JobState::Failed, 6)]
    })
    .await;
    probe.gate.add_permits(6);
    let requeued = jobs
        .requeue_matching(&JobQuery::state(JobState::Failed).search("b-1"))
        .await
        .unwrap();
    assert_eq!(requeued, 1, "only B-1 matches");
    wait_for_state(&jobs, ids[1], JobState::Succeeded).await;
    let requeued = jobs
        .requeue_matching(&JobQuery::state(JobState::Failed))
        .await
        .unwrap();
    assert_eq!(requeued, 5);
    wait_until("all succeed", || async {
        jobs.count_by_state().await.unwrap() == [(JobState::Succeeded, 6)]
    })
    .await;
    server.shutdown().await;

    let deleted = jobs
        .delete_matching(&JobQuery::default().name(<ChargeCard as Job>::DESCRIPTOR.name()))
        .await
        .unwrap();
    assert_eq!(deleted, 6);
    assert_eq!(
        jobs.count_by_state().await.unwrap(),
        [(JobState::Deleted, 6)]
    );
    assert_eq!(
        jobs.delete_matching(&JobQuery::default()).await.unwrap(),
        0,
        "already deleted"
    );
    let info = jobs.get(ids[0]).await.unwrap();
    assert_eq!(info.history.last().unwrap().state, JobState::Deleted);
}

async fn search_matches_names_case_insensitively_and_literally(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    for order in ["Invoice 100%", "invoice_2", "Refund 7"] {
        jobs.enqueue(ChargeCard {
            order: order.into(),
        })
        .await
        .unwrap();
    }
    let found = |text: &'static str| {
        let jobs = jobs.clone();
        async move {
            let mut names: Vec<_> = jobs
                .list(JobQuery::default().search(text))
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|job| job.display_name)
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(
        found("INVOICE").await,
        ["Charge card Invoice 100%", "Charge card invoice_2"]
    );
    assert_eq!(
        found("100%").await,
        ["Charge card Invoice 100%"],
        "% is literal"
    );
    assert_eq!(
        found("e_2").await,
        ["Charge card invoice_2"],
        "_ is literal"
    );
    assert_eq!(
        found("charge_card").await.len(),
        3,
        "the registered name matches too"
    );
    assert!(found("nothing like this").await.is_empty());
}

async fn servers_and_throughput(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    let server = server(&jobs, &probe).await;
    let servers = jobs.servers().await.unwrap();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0].name, "admin-test");
    assert_eq!(servers[0].id, server.id());
    assert_eq!(servers[0].pid, std::process::id());

    probe.gate.add_permits(3);
    let ids = jobs
        .enqueue_many((0..5).map(|n| ChargeCard {
            order: format!("C-{n}"),
        }))
        .await
        .unwrap();
    for id in ids {
        wait_for_job_final(&jobs, id).await;
    }
    let points = jobs.throughput(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(points.len(), 1, "all in one minute of the manual clock");
    assert_eq!((points[0].succeeded, points[0].failed), (3, 2));
    assert_eq!(points[0].minute, start_time());
    server.shutdown().await;
    assert!(
        jobs.servers().await.unwrap().is_empty(),
        "a stopped server removes its row"
    );
}

async fn wait_for_job_final(jobs: &Jobs, id: JobId) {
    support::wait_for_job(jobs, id, "is finished", |info| info.state.is_final()).await;
}
