//! Unique jobs: an enqueue of the same arguments (or key) within the window returns the
//! first job's id and stores nothing, on either backend, from any number of clients at
//! once; after the window, or once the first job is in a state that does not count, a
//! new job is stored. `replace` gives a waiting duplicate the new time and arguments.

use std::time::Duration;

use crate::support::{Backend, Probe, setup, stored_jobs};
use jobs::prelude::*;
use jobs::{Clock, Enqueued, Unique, UniqueStates};

backend_tests!(
    same_arguments_within_the_window_return_the_first_job,
    arguments_in_another_order_are_the_same_arguments,
    different_arguments_make_another_job,
    after_the_window_a_new_job_is_stored,
    a_deleted_job_counts_only_with_every_state,
    a_key_template_makes_jobs_with_other_arguments_duplicates,
    replace_gives_a_scheduled_duplicate_the_new_time_and_arguments,
    replace_leaves_a_started_job_alone,
    an_enqueue_can_be_made_unique_or_not,
    enqueue_many_stores_each_key_once,
    a_chain_with_a_duplicate_first_job_stores_nothing,
    a_unique_job_in_the_callers_transaction,
    concurrent_enqueues_from_two_clients_create_one_job,
    concurrent_enqueues_on_callers_connections_create_one_job,
);

#[job(unique = "1h")]
async fn sync_account(account: u64) {
    let _ = account;
}

#[job(unique = "1h")]
async fn tag_items(tags: std::collections::HashMap<String, u32>) {
    let _ = tags;
}

#[job(unique = "10m", unique_key = "tenant-{tenant}", unique_states = "all")]
async fn rebuild_index(tenant: u64, reason: String) {
    let _ = (tenant, reason);
}

/// A debounce: one waiting digest per user, whatever it holds.
#[job(unique = "1h", unique_key = "{user}", unique_states = "incomplete")]
async fn send_digest(State(probe): State<Probe>, ctx: JobContext, user: u64, items: u32) {
    let _run = probe.start(ctx.id());
    let _ = (user, items);
}

#[job]
async fn note(text: String) {
    let _ = text;
}

async fn same_arguments_within_the_window_return_the_first_job(backend: Backend) {
    let (_db, clock, jobs, _probe) = setup(backend).await;
    let first = jobs
        .enqueue(SyncAccount { account: 7 })
        .outcome()
        .await
        .unwrap();
    let Enqueued::Created(id) = first else {
        panic!("the first enqueue stores a job: {first:?}");
    };
    clock.advance(Duration::from_secs(59 * 60));
    let again = jobs
        .enqueue(SyncAccount { account: 7 })
        .outcome()
        .await
        .unwrap();
    assert_eq!(again, Enqueued::Duplicate(id));
    assert!(again.is_duplicate());
    assert_eq!(jobs.enqueue(SyncAccount { account: 7 }).await.unwrap(), id);
    assert_eq!(stored_jobs(&jobs).await, 1);
}

async fn arguments_in_another_order_are_the_same_arguments(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    // A map's entries serialize in whatever order it holds them.
    let tags = |pairs: &[(&str, u32)]| TagItems {
        tags: pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
    };
    let pairs: Vec<(String, u32)> = (0..20).map(|n| (format!("tag{n}"), n)).collect();
    let forward: Vec<(&str, u32)> = pairs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let backward: Vec<(&str, u32)> = forward.iter().rev().copied().collect();
    let first = jobs.enqueue(tags(&forward)).await.unwrap();
    assert_eq!(jobs.enqueue(tags(&backward)).await.unwrap(), first);
    assert_eq!(stored_jobs(&jobs).await, 1);
}

async fn different_arguments_make_another_job(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    let seven = jobs.enqueue(SyncAccount { account: 7 }).await.unwrap();
    let eight = jobs.enqueue(SyncAccount { account: 8 }).await.unwrap();
    assert_ne!(seven, eight);
    assert_eq!(stored_jobs(&jobs).await, 2);
}

async fn after_the_window_a_new_job_is_stored(backend: Backend) {
    let (_db, clock, jobs, _probe) = setup(backend).await;
    let first = jobs.enqueue(SyncAccount { account: 7 }).await.unwrap();
    // The window counts from the first job's creation: an hour later it is over.
    clock.advance(Duration::from_secs(3600));
    let second = jobs
        .enqueue(SyncAccount { account: 7 })
        .outcome()
        .await
        .unwrap();
    assert!(
        matches!(second, Enqueued::Created(id) if id != first),
        "{second:?}"
    );
    // The new job holds the key for its own window.
    clock.advance(Duration::from_secs(1800));
    assert_eq!(
        jobs.enqueue(SyncAccount { account: 7 }).await.unwrap(),
        second.id()
    );
    assert_eq!(stored_jobs(&jobs).await, 2);
}

async fn a_deleted_job_counts_only_with_every_state(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    // By default a deleted (or failed) job lets the same arguments in again.
    let first = jobs.enqueue(SyncAccount { account: 7 }).await.unwrap();
    assert!(jobs.delete(first).await.unwrap());
    let second = jobs.enqueue(SyncAccount { account: 7 }).await.unwrap();
    assert_ne!(second, first);

    // `unique_states = "all"` counts it.
    let index = || RebuildIndex {
        tenant: 3,
        reason: "schema".into(),
    };
    let first = jobs.enqueue(index()).await.unwrap();
    assert!(jobs.delete(first).await.unwrap());
    assert_eq!(jobs.enqueue(index()).await.unwrap(), first);

    // And `incomplete` set on an enqueue counts only what has not finished.
    let incomplete = Unique::within(Duration::from_secs(600)).states(UniqueStates::Incomplete);
    let again = jobs.enqueue(index()).unique(incomplete).await.unwrap();
    assert_ne!(again, first);
    assert_eq!(stored_jobs(&jobs).await, 4);
}

async fn a_key_template_makes_jobs_with_other_arguments_duplicates(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    let first = jobs
        .enqueue(RebuildIndex {
            tenant: 3,
            reason: "schema".into(),
        })
        .await
        .unwrap();
    let same_tenant = jobs
        .enqueue(RebuildIndex {
            tenant: 3,
            reason: "a new field".into(),
        })
        .await
        .unwrap();
    let other_tenant = jobs
        .enqueue(RebuildIndex {
            tenant: 4,
            reason: "schema".into(),
        })
        .await
        .unwrap();
    assert_eq!(same_tenant, first);
    assert_ne!(other_tenant, first);
    assert_eq!(stored_jobs(&jobs).await, 2);
}

async fn replace_gives_a_scheduled_duplicate_the_new_time_and_arguments(backend: Backend) {
    let (_db, clock, jobs, _probe) = setup(backend).await;
    let digest = |items| SendDigest { user: 7, items };
    // A debounce: each change moves the one waiting digest on, with what it now holds.
    let first = jobs
        .enqueue(SendDigest { user: 7, items: 1 })
        .after(Duration::from_secs(300))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    // Without `replace`, the duplicate is left as it is.
    let kept = jobs
        .enqueue(digest(5))
        .after(Duration::from_secs(300))
        .outcome()
        .await
        .unwrap();
    assert_eq!(kept, Enqueued::Duplicate(first));
    assert_eq!(jobs.get(first).await.unwrap().payload["items"], 1);

    let replaced = jobs
        .enqueue(digest(2))
        .after(Duration::from_secs(300))
        .replace()
        .outcome()
        .await
        .unwrap();
    assert_eq!(replaced, Enqueued::Replaced(first));
    let info = jobs.get(first).await.unwrap();
    assert_eq!(info.payload["items"], 2);
    assert_eq!(info.state, JobState::Scheduled);
    assert_eq!(info.run_at, clock.now() + chrono::Duration::seconds(300));
    let last = info.history.last().unwrap();
    assert_eq!(last.state, JobState::Scheduled);
    assert!(
        last.error
            .as_ref()
            .is_some_and(|note| note.message.starts_with("replaced by an enqueue")),
        "{last:?}"
    );

    // Replaced to run now, it is enqueued.
    let now = jobs.enqueue(digest(3)).replace().await.unwrap();
    assert_eq!(now, first);
    let info = jobs.get(first).await.unwrap();
    assert_eq!((info.state, info.run_at), (JobState::Enqueued, clock.now()));
    assert_eq!(stored_jobs(&jobs).await, 1);
}

async fn replace_leaves_a_started_job_alone(backend: Backend) {
    let (_db, _clock, jobs, probe) = setup(backend).await;
    // Counting a success, unlike the job type's own `incomplete`.
    let unique = Unique::within(Duration::from_secs(3600));
    let first = jobs
        .enqueue(SendDigest { user: 7, items: 1 })
        .unique(unique)
        .await
        .unwrap();
    let ids = [first];
    crate::support::run_all_once(&jobs, &probe, &ids, 1).await;
    assert_eq!(jobs.get(first).await.unwrap().state, JobState::Succeeded);
    // A succeeded job counts by default, and a job that ran is never replaced.
    let again = jobs
        .enqueue(SendDigest { user: 7, items: 2 })
        .unique(unique)
        .replace()
        .outcome()
        .await
        .unwrap();
    assert_eq!(again, Enqueued::Duplicate(first));
    assert_eq!(jobs.get(first).await.unwrap().payload["items"], 1);
}

async fn an_enqueue_can_be_made_unique_or_not(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    let first = jobs.enqueue(SyncAccount { account: 7 }).await.unwrap();
    let forced = jobs
        .enqueue(SyncAccount { account: 7 })
        .not_unique()
        .await
        .unwrap();
    assert_ne!(forced, first);

    let note = || Note { text: "hi".into() };
    let a = jobs.enqueue(note()).await.unwrap();
    let b = jobs.enqueue(note()).await.unwrap();
    assert_ne!(a, b, "a job type that is not unique stores every enqueue");
    let c = jobs
        .enqueue(note())
        .unique_for(Duration::from_secs(60))
        .await
        .unwrap();
    let d = jobs
        .enqueue(note())
        .unique_for(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(c, d);
    assert_eq!(stored_jobs(&jobs).await, 5);
}

async fn enqueue_many_stores_each_key_once(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    let held = jobs.enqueue(SyncAccount { account: 1 }).await.unwrap();
    let ids = jobs
        .enqueue_many([1, 2, 2, 3, 1].map(|account| SyncAccount { account }))
        .await
        .unwrap();
    assert_eq!(ids[0], held);
    assert_eq!(ids[4], held);
    assert_eq!(ids[1], ids[2], "the batch's second 2 answers its first");
    assert_ne!(ids[1], ids[3]);
    assert_eq!(stored_jobs(&jobs).await, 3);
}

async fn a_chain_with_a_duplicate_first_job_stores_nothing(backend: Backend) {
    let (_db, _clock, jobs, _probe) = setup(backend).await;
    let chain = || {
        jobs.enqueue(SyncAccount { account: 7 })
            .then(SendDigest { user: 7, items: 1 })
    };
    let first = chain().await.unwrap();
    assert_eq!(stored_jobs(&jobs).await, 2);
    let again = chain().await.unwrap();
    assert_eq!(again, first, "the ids of the chain already stored");
    assert_eq!(stored_jobs(&jobs).await, 2);
}

async fn a_unique_job_in_the_callers_transaction(backend: Backend) {
    let (db, _clock, jobs, _probe) = setup(backend).await;
    let first = jobs.enqueue(SyncAccount { account: 7 }).await.unwrap();
    let id = match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
            let mut tx = pool.begin().await.unwrap();
            let id = jobs
                .enqueue(SyncAccount { account: 7 })
                .within(&mut tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            // And on a connection outside any transaction.
            let mut conn = pool.acquire().await.unwrap();
            let bare = jobs
                .enqueue(SyncAccount { account: 7 })
                .within(&mut *conn)
                .await
                .unwrap();
            assert_eq!(bare, id);
            id
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            let mut tx = pool.begin().await.unwrap();
            let id = jobs
                .enqueue(SyncAccount { account: 7 })
                .within(&mut tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            // And on a connection outside any transaction.
            let mut conn = pool.acquire().await.unwrap();
            let bare = jobs
                .enqueue(SyncAccount { account: 7 })
                .within(&mut *conn)
                .await
                .unwrap();
            assert_eq!(bare, id);
            id
        }
    };
    assert_eq!(id, first);
    assert_eq!(stored_jobs(&jobs).await, 1);
}

/// The acceptance: 100 enqueues of the same arguments at once, half through each of two
/// clients with pools of their own (two processes, to the database), create one job.
async fn concurrent_enqueues_from_two_clients_create_one_job(backend: Backend) {
    let (db, clock, jobs, _probe) = setup(backend).await;
    let other = db.jobs(&clock).await;
    let mut tasks = Vec::new();
    for n in 0..100 {
        let client = if n % 2 == 0 {
            jobs.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            client
                .enqueue(SyncAccount { account: 42 })
                .outcome()
                .await
                .unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let created: Vec<_> = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Enqueued::Created(_)))
        .collect();
    assert_eq!(created.len(), 1, "jobs created by 100 enqueues at once");
    let id = created[0].id();
    assert!(outcomes.iter().all(|outcome| outcome.id() == id));
    assert_eq!(stored_jobs(&jobs).await, 1);
}

/// The same through the application's own connections, outside any transaction: each
/// enqueue's check and insert are still one transaction.
async fn concurrent_enqueues_on_callers_connections_create_one_job(backend: Backend) {
    let (db, _clock, jobs, _probe) = setup(backend).await;
    let mut tasks = Vec::new();
    match db.backend {
        Backend::Sqlite => {
            let pools = [
                sqlx::SqlitePool::connect(&db.url).await.unwrap(),
                sqlx::SqlitePool::connect(&db.url).await.unwrap(),
            ];
            for n in 0..100 {
                let (jobs, pool) = (jobs.clone(), pools[n % 2].clone());
                tasks.push(tokio::spawn(async move {
                    let mut conn = pool.acquire().await.unwrap();
                    jobs.enqueue(SyncAccount { account: 42 })
                        .within(&mut *conn)
                        .await
                        .unwrap()
                }));
            }
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            let pools = [
                sqlx::PgPool::connect(&db.url).await.unwrap(),
                sqlx::PgPool::connect(&db.url).await.unwrap(),
            ];
            for n in 0..100 {
                let (jobs, pool) = (jobs.clone(), pools[n % 2].clone());
                tasks.push(tokio::spawn(async move {
                    let mut conn = pool.acquire().await.unwrap();
                    jobs.enqueue(SyncAccount { account: 42 })
                        .within(&mut *conn)
                        .await
                        .unwrap()
                }));
            }
        }
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    assert!(ids.iter().all(|id| *id == ids[0]));
    assert_eq!(stored_jobs(&jobs).await, 1);
}
