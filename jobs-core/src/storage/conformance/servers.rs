//! The servers table: heartbeat (upsert and lease extension), remove, prune.

use chrono::Duration;

use super::*;

conformance!(
    heartbeat_upserts_the_server_row,
    heartbeat_extends_the_leases_of_its_running_jobs,
    remove_and_prune_servers,
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
    }
}

async fn heartbeat_upserts_the_server_row<S: Storage>(s: &S) {
    assert!(s.servers_list().await.unwrap().is_empty());
    s.server_heartbeat(&server("s2", "beta"), at(0), at(60))
        .await
        .unwrap();
    s.server_heartbeat(&server("s1", "alpha"), at(0), at(60))
        .await
        .unwrap();
    let again = ServerRow {
        running: 3,
        started_at: at(5),
        ..server("s2", "beta")
    };
    s.server_heartbeat(&again, at(30), at(90)).await.unwrap();
    let servers = s.servers_list().await.unwrap();
    let ids: Vec<&str> = servers.iter().map(|row| row.id.as_str()).collect();
    assert_eq!(ids, ["s1", "s2"], "one row per server, by name");
    let beta = &servers[1];
    assert_eq!((beta.name.as_str(), beta.host.as_str()), ("beta", "host-1"));
    assert_eq!((beta.pid, beta.workers, beta.running), (42, 8, 3));
    assert_eq!((beta.started_at, beta.heartbeat_at), (at(-10), at(30)));
    assert_eq!(servers[0].heartbeat_at, at(0));
}

async fn heartbeat_extends_the_leases_of_its_running_jobs<S: Storage>(s: &S) {
    let batch: Vec<NewJob> = (1..=4).map(|n| job(id(n), "leased")).collect();
    s.jobs_insert(&batch).await.unwrap();
    s.jobs_claim(claim("a", at(1), 2)).await.unwrap(); // ids 1, 2; lease at(61)
    s.jobs_claim(claim("b", at(1), 1)).await.unwrap(); // id 3
    s.jobs_claim(claim("a", at(1), 1)).await.unwrap(); // id 4 …
    s.jobs_complete(&[done(id(4), "a", 1, Outcome::Succeeded)])
        .await
        .unwrap(); // … finished.
    s.server_heartbeat(&server("a", "a"), at(50), at(200))
        .await
        .unwrap();
    let expired: Vec<JobId> = s
        .jobs_expired(at(100), 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(expired, [id(3)]);
    let mut late: Vec<JobId> = s
        .jobs_expired(at(200) + Duration::seconds(1), 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    late.sort_by_key(JobId::as_uuid);
    assert_eq!(late, [id(1), id(2), id(3)]);
    assert_eq!(state(s, id(4)).await, JobState::Succeeded);
}

async fn remove_and_prune_servers<S: Storage>(s: &S) {
    for (n, beat) in [("s1", 0), ("s2", 10), ("s3", 20), ("s4", 30)] {
        s.server_heartbeat(&server(n, n), at(beat), at(beat + 60))
            .await
            .unwrap();
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
