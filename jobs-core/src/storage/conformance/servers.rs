//! The servers table: heartbeat (upsert and renewal of the leases it holds), remove,
//! prune.

use super::*;

conformance!(
    heartbeat_upserts_the_server_row,
    heartbeat_renews_only_the_claims_it_holds,
    remove_and_prune_servers,
    a_job_no_server_registers_says_so_and_fails_when_old_enough,
    other_shape_is_a_live_other_server_that_runs_the_name_with_other_data,
);

fn server(id: &str, name: &str) -> ServerRow {
    ServerRow {
        id: id.to_owned(),
        name: name.to_owned(),
        host: "host-1".to_owned(),
        pid: 42,
        workers: 8,
        running: 0,
        started_at: at(-10),
        jobs: vec!["mail.send".to_owned()],
        shapes: [("mail.send".to_owned(), "00000000000000aa".to_owned())].into(),
        queues: ServerQueues {
            served: Some(vec!["mail".to_owned()]),
            limits: [("mail".to_owned(), 2)].into(),
            global_limits: [("mail".to_owned(), 5)].into(),
            rates: [("mail".to_owned(), "50/1m".to_owned())].into(),
        },
    }
}

/// A heartbeat of `server` at `now` holding `held` (`waiting` of them claimed ahead),
/// leases of `lease` seconds; → the claims it lost, sorted.
async fn beat<S: Storage>(
    s: &S,
    server: &ServerRow,
    held: &[Fence],
    waiting: &[JobId],
    now: DateTime<Utc>,
    lease: u64,
) -> Vec<Fence> {
    let lease = std::time::Duration::from_secs(lease);
    let mut lost = s
        .server_heartbeat(server, held, waiting, lease, off(now), now)
        .await
        .unwrap();
    lost.sort_by_key(|fence| (fence.id.as_uuid(), fence.token));
    lost
}

/// The ids of the jobs whose lease ran out by `now`, sorted.
async fn expired<S: Storage>(s: &S, now: DateTime<Utc>) -> Vec<JobId> {
    let mut ids: Vec<JobId> = s
        .jobs_expired(now, off(now), 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    ids.sort_by_key(JobId::as_uuid);
    ids
}

async fn heartbeat_upserts_the_server_row<S: Storage>(s: &S) {
    assert!(s.servers_list().await.unwrap().is_empty());
    beat(s, &server("s2", "beta"), &[], &[], at(0), 60).await;
    beat(s, &server("s1", "alpha"), &[], &[], at(0), 60).await;
    let again = ServerRow {
        running: 3,
        started_at: at(5),
        ..server("s2", "beta")
    };
    beat(s, &again, &[], &[], at(30), 60).await;
    let servers = s.servers_list().await.unwrap();
    let ids: Vec<&str> = servers.iter().map(|row| row.id.as_str()).collect();
    assert_eq!(ids, ["s1", "s2"], "one row per server, by name");
    let beta = &servers[1];
    assert_eq!((beta.name.as_str(), beta.host.as_str()), ("beta", "host-1"));
    assert_eq!((beta.pid, beta.workers, beta.running), (42, 8, 3));
    assert_eq!((beta.started_at, beta.heartbeat_at), (at(-10), at(30)));
    assert_eq!(servers[0].heartbeat_at, at(0));
    assert_eq!(
        beta.queues.as_ref(),
        Some(&server("s2", "beta").queues),
        "the queues it serves and their limits, as declared"
    );
}

async fn heartbeat_renews_only_the_claims_it_holds<S: Storage>(s: &S) {
    // Due one after the other, so that claims take them in order.
    let batch: Vec<NewJob> = (1..=7)
        .map(|n| NewJob {
            run_at: at(n - 10),
            ..job(id(n as u128), "leased")
        })
        .collect();
    s.jobs_insert(&batch).await.unwrap();
    s.jobs_claim(claim("a", at(1), 3)).await.unwrap(); // 1, 2, 3; leases at(61)
    s.jobs_claim(claim("b", at(1), 1)).await.unwrap(); // 4
    s.jobs_claim(claim("a", at(1), 3)).await.unwrap(); // 5, 6, 7
    s.jobs_complete(&[done(id(5), "a", 1, Outcome::Succeeded)])
        .await
        .unwrap();
    // Job 3 released and claimed again by "a": the first claim of it is lost.
    s.jobs_release("a", Some(&[fence(id(3), 1)]), at(2))
        .await
        .unwrap();
    let again = s.jobs_claim(claim("a", at(2), 1)).await.unwrap();
    assert_eq!((again[0].id, again[0].token), (id(3), 2));

    // Job 3 held twice, as when the heartbeat read the held set as its first claim
    // ended and the second began: only the first is lost.
    let held = [1, 2, 3, 4, 5, 99]
        .map(|n| fence(id(n), 1))
        .into_iter()
        .chain([fence(id(3), 2)])
        .collect::<Vec<_>>();
    let lost = beat(s, &server("a", "a"), &held, &[id(2)], at(50), 150).await;
    assert_eq!(
        lost,
        [3, 4, 5, 99].map(|n| fence(id(n), 1)),
        "claimed again, another server's, finished, gone"
    );
    // Only 1, 2 and 3 (its second claim) run until at(200); 6 and 7, owned but not
    // held, keep their lease.
    assert_eq!(expired(s, at(100)).await, [id(4), id(6), id(7)]);
    assert_eq!(
        expired(s, at(201)).await,
        [id(1), id(2), id(3), id(4), id(6), id(7)]
    );
    let waiting: Vec<(JobId, bool)> = s
        .jobs_expired(at(201), off(at(201)), 100)
        .await
        .unwrap()
        .iter()
        .filter(|e| [id(1), id(2)].contains(&e.id))
        .map(|e| (e.id, e.ahead))
        .collect();
    assert!(waiting.contains(&(id(1), false)) && waiting.contains(&(id(2), true)));
    // Job 2 started: the next heartbeat says so.
    beat(s, &server("a", "a"), &[fence(id(2), 1)], &[], at(60), 150).await;
    let two = s.jobs_expired(at(211), off(at(211)), 100).await.unwrap();
    assert!(two.iter().any(|e| e.id == id(2) && !e.ahead));

    // A job deleted while it runs stays held until its attempt has stopped.
    assert!(s.job_delete(id(1), at(70)).await.unwrap());
    let one = [fence(id(1), 1)];
    assert!(
        beat(s, &server("a", "a"), &one, &[], at(70), 150)
            .await
            .is_empty()
    );
    assert_eq!(
        s.jobs_stopped(&[fence(id(1), 2)]).await.unwrap(),
        0,
        "stale"
    );
    assert_eq!(s.jobs_stopped(&one).await.unwrap(), 1);
    assert_eq!(get(s, id(1)).await.owner, None);
    assert_eq!(
        beat(s, &server("a", "a"), &one, &[], at(80), 150).await,
        one
    );
    assert_eq!(state(s, id(5)).await, JobState::Succeeded);
}

async fn remove_and_prune_servers<S: Storage>(s: &S) {
    for (n, seconds) in [("s1", 0), ("s2", 10), ("s3", 20), ("s4", 30)] {
        beat(s, &server(n, n), &[], &[], at(seconds), 60).await;
    }
    s.server_remove("s3").await.unwrap();
    s.server_remove("unknown").await.unwrap();
    // Dead: heartbeat strictly before the cut-off.
    assert_eq!(s.servers_prune(at(10)).await.unwrap(), 1);
    let left: Vec<String> = s
        .servers_list()
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(left, ["s2", "s4"]);
    assert_eq!(s.servers_prune(at(10)).await.unwrap(), 0);
}

async fn a_job_no_server_registers_says_so_and_fails_when_old_enough<S: Storage>(s: &S) {
    let mut awaiting = job(id(4), "mail.send");
    awaiting.parent_id = Some(id(2));
    awaiting.on_failure = true;
    awaiting.state = JobState::Awaiting;
    s.jobs_insert(&[
        job(id(1), "mail.send"),
        NewJob {
            run_at: at(-100),
            priority: 3,
            ..job(id(2), "billing.new_invoice")
        },
        job(id(3), "billing.new_invoice"),
        awaiting,
        NewJob {
            run_at: at(-80),
            priority: -4,
            ..job(id(5), "billing.new_invoice")
        },
    ])
    .await
    .unwrap();
    // No server runs at all: nothing is said, nothing fails.
    assert!(!get(s, id(2)).await.waiting_for_server);
    assert_eq!(
        s.jobs_fail_unserved(at(0), at(0), "s1", "", 100)
            .await
            .unwrap(),
        0
    );

    beat(s, &server("s1", "old"), &[], &[], at(0), 60).await;
    let servers = s.servers_list().await.unwrap();
    assert_eq!(servers[0].jobs, Some(vec!["mail.send".to_owned()]));
    assert!(!get(s, id(1)).await.waiting_for_server);
    assert!(get(s, id(2)).await.waiting_for_server);

    // Only those due before the cut-off fail (of every priority), saying why.
    let note = " (it waited longer than fail_unserved_after, 1d)";
    assert_eq!(
        s.jobs_fail_unserved(at(-50), at(0), "s1", note, 100)
            .await
            .unwrap(),
        2
    );
    assert_eq!(get(s, id(5)).await.state, JobState::Failed);
    let failed = get(s, id(2)).await;
    let message = "no server registers `billing.new_invoice` (it waited longer than \
                   fail_unserved_after, 1d)";
    assert_eq!(failed.state, JobState::Failed);
    assert!(!failed.waiting_for_server);
    assert_eq!(failed.last_error.as_deref(), Some(message));
    let last = failed.history.last().unwrap();
    assert_eq!(
        (last.state, last.server.as_deref()),
        (JobState::Failed, Some("s1"))
    );
    assert_eq!(last.error.as_ref().unwrap().message, message);
    assert_eq!(
        get(s, id(4)).await.state,
        JobState::Enqueued,
        "on_failure runs"
    );
    assert_eq!(get(s, id(3)).await.state, JobState::Enqueued);

    // A server that registers it: it waits for that one, and never fails.
    let new = ServerRow {
        jobs: vec!["billing.new_invoice".to_owned()],
        ..server("s2", "new")
    };
    beat(s, &new, &[], &[], at(0), 60).await;
    assert!(!get(s, id(3)).await.waiting_for_server);
    assert_eq!(
        s.jobs_fail_unserved(at(100), at(100), "s1", "", 100)
            .await
            .unwrap(),
        0
    );
}

async fn other_shape_is_a_live_other_server_that_runs_the_name_with_other_data<S: Storage>(s: &S) {
    async fn other<S: Storage>(
        s: &S,
        shape: &str,
        alive_after: DateTime<Utc>,
    ) -> crate::Result<bool> {
        s.servers_other_shape("mail.send", shape, "s1", alive_after)
            .await
    }
    assert!(
        !other(s, "00000000000000aa", at(0)).await.unwrap(),
        "no servers"
    );
    // Itself does not count.
    beat(s, &server("s1", "me"), &[], &[], at(0), 60).await;
    assert!(!other(s, "00000000000000bb", at(0)).await.unwrap());
    // A replica of the same build.
    beat(s, &server("s2", "replica"), &[], &[], at(0), 60).await;
    assert!(!other(s, "00000000000000aa", at(0)).await.unwrap());
    // The same server seen from a build whose data differs.
    assert!(other(s, "00000000000000bb", at(0)).await.unwrap());
    // Not when its last heartbeat is too old.
    assert!(!other(s, "00000000000000bb", at(1)).await.unwrap());
    // A server of another build that does not run the name.
    s.server_remove("s2").await.unwrap();
    let elsewhere = ServerRow {
        jobs: vec!["report.build".to_owned()],
        shapes: [("report.build".to_owned(), "00000000000000cc".to_owned())].into(),
        ..server("s3", "reports")
    };
    beat(s, &elsewhere, &[], &[], at(0), 60).await;
    assert!(!other(s, "00000000000000bb", at(0)).await.unwrap());
    // A server of an older release says neither names nor shapes: it might.
    let older = ServerRow {
        jobs: vec!["mail.send".to_owned()],
        shapes: std::collections::BTreeMap::new(),
        ..server("s4", "older")
    };
    beat(s, &older, &[], &[], at(0), 60).await;
    assert!(other(s, "00000000000000aa", at(0)).await.unwrap());
}
