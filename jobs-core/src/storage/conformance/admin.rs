//! What the dashboard asks: requeue (one, or matching), counts, throughput, when the next
//! job is due, and pruning of old rows.

use super::*;

conformance!(
    requeue_moves_only_jobs_not_running_nor_awaiting,
    requeue_matching_follows_the_filters,
    count_by_state,
    waiting_counts_due_unclaimed_jobs_per_queue,
    counts_by_queue_leave_out_finished_and_awaiting_jobs,
    throughput_counts_finished_attempts_per_minute,
    next_run_at_is_the_earliest_runnable_job,
    prune_removes_only_old_succeeded_and_deleted_jobs,
    prune_takes_at_most_its_limit_lowest_ids_first,
    pauses_are_set_updated_listed_and_cleared,
);

async fn pauses_are_set_updated_listed_and_cleared<S: Storage>(s: &S) {
    use crate::{PauseKind, Paused};
    assert!(s.pauses_list().await.unwrap().is_empty());
    s.pause_set(PauseKind::Job, "billing.send", "ana", at(1))
        .await
        .unwrap();
    s.pause_set(PauseKind::Queue, "email", "bo", at(2))
        .await
        .unwrap();
    // Paused again: who and when are updated, still one row.
    s.pause_set(PauseKind::Queue, "email", "cy", at(3))
        .await
        .unwrap();
    // The same name as a queue and as a job are two pauses.
    s.pause_set(PauseKind::Queue, "billing.send", "di", at(4))
        .await
        .unwrap();
    let listed: Vec<(PauseKind, String, String, DateTime<Utc>)> = s
        .pauses_list()
        .await
        .unwrap()
        .into_iter()
        .map(
            |Paused {
                 kind, name, by, at, ..
             }| (kind, name, by, at),
        )
        .collect();
    assert_eq!(
        listed,
        [
            (PauseKind::Queue, "billing.send".into(), "di".into(), at(4)),
            (PauseKind::Queue, "email".into(), "cy".into(), at(3)),
            (PauseKind::Job, "billing.send".into(), "ana".into(), at(1)),
        ],
        "queues first, then by name"
    );
    assert!(s.pause_clear(PauseKind::Queue, "email").await.unwrap());
    assert!(!s.pause_clear(PauseKind::Queue, "email").await.unwrap());
    assert!(!s.pause_clear(PauseKind::Job, "email").await.unwrap());
    assert_eq!(s.pauses_list().await.unwrap().len(), 2);
}

/// One job in each state: 1 Scheduled, 2 Enqueued, 3 Processing, 4 Succeeded, 5 Failed
/// (attempt 1), 6 Deleted, 7 Awaiting.
async fn one_of_each<S: Storage>(s: &S) {
    s.jobs_insert(&[
        job(id(3), "processing"),
        job(id(4), "succeeded"),
        job(id(5), "failed"),
    ])
    .await
    .unwrap();
    s.jobs_claim(claim("a", at(1), 10)).await.unwrap();
    let failed = Outcome::Failed {
        failure: Failure::new("no"),
    };
    s.jobs_complete(&[
        done(id(4), "a", 1, Outcome::Succeeded),
        done(id(5), "a", 1, failed),
    ])
    .await
    .unwrap();
    s.jobs_insert(&[
        NewJob {
            state: JobState::Scheduled,
            run_at: at(500),
            ..job(id(1), "scheduled")
        },
        job(id(2), "enqueued"),
        job(id(6), "deleted"),
        child(id(7), id(3), false),
    ])
    .await
    .unwrap();
    s.job_delete(id(6), at(2)).await.unwrap();
}

async fn requeue_moves_only_jobs_not_running_nor_awaiting<S: Storage>(s: &S) {
    one_of_each(s).await;
    for n in [1, 2, 4, 5, 6] {
        assert_eq!(
            s.job_requeue(id(n), at(50), off(at(50))).await.unwrap(),
            Requeue::Requeued,
            "job {n}"
        );
        let requeued = get(s, id(n)).await;
        assert_eq!(requeued.state, JobState::Enqueued, "job {n}");
        assert_eq!((requeued.attempt, requeued.owner), (0, None), "job {n}");
        assert_eq!((requeued.run_at, requeued.updated_at), (at(50), at(50)));
        let last = requeued.history.last().unwrap();
        assert_eq!((last.state, last.at), (JobState::Enqueued, at(50)));
    }
    let requeue = |n| s.job_requeue(id(n), at(50), off(at(50)));
    assert_eq!(
        requeue(3).await.unwrap(),
        Requeue::NotRequeueable(JobState::Processing)
    );
    assert_eq!(
        requeue(7).await.unwrap(),
        Requeue::NotRequeueable(JobState::Awaiting)
    );
    assert_eq!(requeue(99).await.unwrap(), Requeue::NotFound);
    let running = get(s, id(3)).await;
    assert_eq!((running.state, running.attempt), (JobState::Processing, 1));
    assert_eq!(running.owner.as_deref(), Some("a"));
    assert_eq!(state(s, id(7)).await, JobState::Awaiting);
}

async fn requeue_matching_follows_the_filters<S: Storage>(s: &S) {
    one_of_each(s).await;
    let all = JobQuery::default();
    // Every job but the running and the awaiting one.
    assert_eq!(
        s.jobs_requeue_matching(&all, at(50), off(at(50)))
            .await
            .unwrap(),
        5
    );
    assert_eq!(state(s, id(3)).await, JobState::Processing);
    assert_eq!(state(s, id(7)).await, JobState::Awaiting);
    assert_eq!(get(s, id(5)).await.attempt, 0);
    let claimed = s.jobs_claim(claim("a", at(50), 10)).await.unwrap();
    // A requeue keeps the token: job 4 was claimed before, the others were not.
    let failed = |n| Completion {
        token: claimed.iter().find(|c| c.id == id(n)).unwrap().token,
        ..done(
            id(n),
            "a",
            1,
            Outcome::Failed {
                failure: Failure::new("no"),
            },
        )
    };
    assert_eq!(failed(4).token, 2);
    s.jobs_complete(&[failed(1), failed(2), failed(4)])
        .await
        .unwrap();
    let query = JobQuery {
        name: Some("scheduled".to_owned()),
        ..JobQuery::state(JobState::Failed)
    };
    assert_eq!(
        s.jobs_requeue_matching(&query, at(60), off(at(60)))
            .await
            .unwrap(),
        1
    );
    assert_eq!(state(s, id(1)).await, JobState::Enqueued);
    assert_eq!(state(s, id(2)).await, JobState::Failed);
    assert_eq!(state(s, id(4)).await, JobState::Failed);
}

async fn count_by_state<S: Storage>(s: &S) {
    assert!(s.jobs_count().await.unwrap().is_empty());
    one_of_each(s).await;
    s.jobs_insert(&[job(id(8), "enqueued")]).await.unwrap();
    let mut counts = s.jobs_count().await.unwrap();
    counts.sort_by_key(|(state, _)| state.as_str());
    let mut expected = vec![
        (JobState::Awaiting, 1),
        (JobState::Deleted, 1),
        (JobState::Enqueued, 2),
        (JobState::Failed, 1),
        (JobState::Processing, 1),
        (JobState::Scheduled, 1),
        (JobState::Succeeded, 1),
    ];
    expected.sort_by_key(|(state, _)| state.as_str());
    assert_eq!(counts, expected);
}

async fn waiting_counts_due_unclaimed_jobs_per_queue<S: Storage>(s: &S) {
    assert!(
        s.jobs_waiting(at(1000), WaitingBy::Queue)
            .await
            .unwrap()
            .is_empty()
    );
    // Enqueued 2 (due at 0) and Scheduled 1 (due at 500) wait in "default"; the others
    // run, ended, or await their parent.
    one_of_each(s).await;
    s.jobs_insert(&[
        NewJob {
            queue: "mail".to_owned(),
            run_at: at(20),
            ..job(id(8), "mail")
        },
        NewJob {
            queue: "mail".to_owned(),
            run_at: at(30),
            ..job(id(9), "mail")
        },
    ])
    .await
    .unwrap();
    let waiting = |key: &str, waiting, oldest_due| Waiting {
        key: key.to_owned(),
        waiting,
        oldest_due,
    };
    let by_queue = async |now| s.jobs_waiting(now, WaitingBy::Queue).await.unwrap();
    assert_eq!(
        by_queue(at(100)).await,
        [waiting("default", 1, at(0)), waiting("mail", 2, at(20))],
        "the scheduled job is not due yet"
    );
    assert_eq!(
        by_queue(at(500)).await,
        [waiting("default", 2, at(0)), waiting("mail", 2, at(20))]
    );
    // By name: `one_of_each` names its jobs after their state.
    let by_name = s.jobs_waiting(at(500), WaitingBy::Name).await.unwrap();
    assert_eq!(
        by_name.iter().map(|w| w.key.as_str()).collect::<Vec<_>>(),
        ["enqueued", "mail", "scheduled"],
        "{by_name:?}"
    );
    assert_eq!(by_name[1], waiting("mail", 2, at(20)));
}

async fn counts_by_queue_leave_out_finished_and_awaiting_jobs<S: Storage>(s: &S) {
    assert!(s.jobs_count_by_queue(at(100)).await.unwrap().is_empty());
    // In "default": one job in each state (Scheduled due at 500).
    one_of_each(s).await;
    // In "mail": two enqueued, one scheduled at 300; "done" has only finished jobs.
    let in_queue = |n: u128, queue: &str, state, run_at| NewJob {
        queue: queue.to_owned(),
        state,
        run_at,
        ..job(id(n), queue)
    };
    s.jobs_insert(&[
        in_queue(8, "mail", JobState::Enqueued, at(20)),
        in_queue(9, "mail", JobState::Enqueued, at(30)),
        in_queue(10, "mail", JobState::Scheduled, at(300)),
        in_queue(11, "done", JobState::Enqueued, at(0)),
    ])
    .await
    .unwrap();
    s.job_delete(id(11), at(3)).await.unwrap();
    let counts = |queue: &str, waiting, scheduled, running, failed| QueueCounts {
        queue: queue.to_owned(),
        waiting,
        scheduled,
        running,
        failed,
    };
    assert_eq!(
        s.jobs_count_by_queue(at(100)).await.unwrap(),
        [counts("default", 1, 1, 1, 1), counts("mail", 2, 1, 0, 0)],
        "succeeded, deleted and awaiting jobs are not counted"
    );
    assert_eq!(
        s.jobs_count_by_queue(at(500)).await.unwrap(),
        [counts("default", 2, 0, 1, 1), counts("mail", 3, 0, 0, 0)],
        "a scheduled job whose time came waits"
    );
}

async fn throughput_counts_finished_attempts_per_minute<S: Storage>(s: &S) {
    let batch: Vec<NewJob> = (1..=5).map(|n| job(id(n), "counted")).collect();
    insert_and_claim(s, &batch, "a").await;
    let finish = |n, seconds, outcome| Completion {
        at: at(seconds),
        ..done(id(n), "a", 1, outcome)
    };
    let failure = || Failure::new("no");
    s.jobs_complete(&[
        finish(1, 10, Outcome::Succeeded),
        finish(
            2,
            70,
            Outcome::Retry {
                at: at(500),
                failure: failure(),
            },
        ),
        finish(3, 75, Outcome::Failed { failure: failure() }),
        finish(4, 190, Outcome::Succeeded),
    ])
    .await
    .unwrap();
    // A release is no finished attempt.
    s.jobs_release("a", Some(&[fence(id(5), 1)]), at(80))
        .await
        .unwrap();
    let points = s.jobs_throughput(at(0)).await.unwrap();
    let points: Vec<_> = points
        .iter()
        .map(|p| (p.minute, p.succeeded, p.failed))
        .collect();
    // Minute 12:02 had none and is left out.
    assert_eq!(points, [(at(0), 1, 0), (at(60), 0, 2), (at(180), 1, 0)]);
    let later = s.jobs_throughput(at(60)).await.unwrap();
    assert_eq!(later.len(), 2);
    assert_eq!(later[0].minute, at(60));
}

async fn next_run_at_is_the_earliest_runnable_job<S: Storage>(s: &S) {
    assert_eq!(s.jobs_next_run_at().await.unwrap(), None);
    s.jobs_insert(&[
        NewJob {
            run_at: at(-100),
            ..job(id(1), "running")
        },
        NewJob {
            state: JobState::Awaiting,
            run_at: at(-50),
            ..child(id(2), id(1), false)
        },
    ])
    .await
    .unwrap();
    s.jobs_claim(claim("a", at(0), 1)).await.unwrap();
    assert_eq!(s.jobs_next_run_at().await.unwrap(), None);
    s.jobs_insert(&[
        NewJob {
            state: JobState::Scheduled,
            run_at: at(300),
            ..job(id(3), "later")
        },
        NewJob {
            run_at: at(200),
            ..job(id(4), "sooner")
        },
    ])
    .await
    .unwrap();
    assert_eq!(s.jobs_next_run_at().await.unwrap(), Some(at(200)));
    s.job_delete(id(4), at(1)).await.unwrap();
    assert_eq!(s.jobs_next_run_at().await.unwrap(), Some(at(300)));
    // The earliest of every priority, not the first in claim order.
    s.jobs_insert(&[
        NewJob {
            priority: 5,
            run_at: at(400),
            ..job(id(5), "urgent")
        },
        NewJob {
            priority: -3,
            run_at: at(250),
            ..job(id(6), "low")
        },
        NewJob {
            priority: -3,
            run_at: at(260),
            ..job(id(7), "low")
        },
    ])
    .await
    .unwrap();
    assert_eq!(s.jobs_next_run_at().await.unwrap(), Some(at(250)));
    s.job_delete(id(6), at(2)).await.unwrap();
    assert_eq!(s.jobs_next_run_at().await.unwrap(), Some(at(260)));
}

async fn prune_removes_only_old_succeeded_and_deleted_jobs<S: Storage>(s: &S) {
    let batch: Vec<NewJob> = (1..=5).map(|n| job(id(n), "old")).collect();
    insert_and_claim(s, &batch, "a").await;
    let finish = |n, seconds, outcome| Completion {
        at: at(seconds),
        ..done(id(n), "a", 1, outcome)
    };
    // Written while job 1 runs.
    s.step_put(fence(id(1), 1), "step", "1", at(5))
        .await
        .unwrap();
    let line = LogLine {
        job_id: id(1),
        token: 1,
        at: at(5),
        attempt: 1,
        level: LogLevel::Info,
        message: "hello".to_owned(),
    };
    s.logs_insert(&[line]).await.unwrap();
    s.jobs_complete(&[
        finish(1, 10, Outcome::Succeeded),
        finish(
            2,
            10,
            Outcome::Failed {
                failure: Failure::new("no"),
            },
        ),
        finish(3, 100, Outcome::Succeeded),
    ])
    .await
    .unwrap();
    s.job_delete(id(4), at(20)).await.unwrap();
    assert!(s.step_get(id(1), "step").await.unwrap().is_some());
    // Succeeded before 50: job 1; deleted before 15: none.
    assert_eq!(s.jobs_prune(at(50), at(15), 100).await.unwrap(), 1);
    assert!(s.job_get(id(1)).await.unwrap().is_none());
    assert_eq!(s.step_get(id(1), "step").await.unwrap(), None);
    // Its history, logs and steps went with it: the id can be used again afresh.
    s.jobs_insert(&[job(id(1), "new")]).await.unwrap();
    let reused = get(s, id(1)).await;
    assert_eq!((reused.history.len(), reused.logs.len()), (1, 0));
    assert_eq!(s.jobs_prune(at(50), at(25), 100).await.unwrap(), 1);
    assert!(s.job_get(id(4)).await.unwrap().is_none());
    for n in [1, 2, 3, 5] {
        assert!(s.job_get(id(n)).await.unwrap().is_some(), "job {n}");
    }
    assert_eq!(s.jobs_prune(at(50), at(25), 100).await.unwrap(), 0);
}

async fn prune_takes_at_most_its_limit_lowest_ids_first<S: Storage>(s: &S) {
    let batch: Vec<NewJob> = (1..=5).map(|n| job(id(n), "old")).collect();
    insert_and_claim(s, &batch, "a").await;
    let succeeded: Vec<Completion> = (1..=5)
        .map(|n| Completion {
            at: at(10),
            ..done(id(n), "a", 1, Outcome::Succeeded)
        })
        .collect();
    s.jobs_complete(&succeeded).await.unwrap();
    assert_eq!(s.jobs_prune(at(50), at(50), 2).await.unwrap(), 2);
    let left: Vec<bool> = futures_util::future::join_all((1..=5).map(|n| s.job_get(id(n))))
        .await
        .into_iter()
        .map(|job| job.unwrap().is_some())
        .collect();
    assert_eq!(left, [false, false, true, true, true]);
    assert_eq!(s.jobs_prune(at(50), at(50), 2).await.unwrap(), 2);
    assert_eq!(s.jobs_prune(at(50), at(50), 2).await.unwrap(), 1);
    assert_eq!(s.jobs_prune(at(50), at(50), 2).await.unwrap(), 0);
}
