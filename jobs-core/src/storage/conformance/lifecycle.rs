//! Insert (dedupe, batches, fresh ids) and claim (what, in which order, how many, from
//! which queues, and never twice).

use chrono::Duration;

use super::*;

conformance!(
    insert_of_an_existing_id_is_a_no_op,
    insert_batch_stores_every_field,
    insert_batch_dedupes_each_row,
    insert_fresh_ids_with_a_given_one,
    claim_takes_only_due_runnable_jobs,
    claim_orders_by_priority_then_run_at,
    claim_respects_the_limit,
    claim_respects_queue_selectors,
    a_claim_of_some_queues_merges_them_in_claim_order,
    a_capped_claim_takes_only_the_room_left_by_every_owner,
    capped_claims_at_once_never_overshoot,
    claim_takes_only_the_names_it_is_given,
    claimed_job_is_processing_owned_and_leased,
    claim_never_takes_a_job_twice,
    claims_at_once_never_share_a_job,
    claim_returns_the_stored_trace_context,
);

async fn insert_of_an_existing_id_is_a_no_op<S: Storage>(s: &S) {
    let first = job(id(1), "first");
    s.jobs_insert(std::slice::from_ref(&first)).await.unwrap();
    let second = NewJob {
        payload: r#"{"second":true}"#.to_owned(),
        state: JobState::Scheduled,
        run_at: at(500),
        created_at: at(5),
        ..job(id(1), "second")
    };
    s.jobs_insert(&[second]).await.unwrap();
    let stored = get(s, id(1)).await;
    assert_eq!(stored.name, "first");
    assert_eq!(stored.payload, serde_json::json!({}));
    assert_eq!(stored.state, JobState::Enqueued);
    assert_eq!(stored.run_at, at(0));
    assert_eq!(
        stored.history.len(),
        1,
        "a deduped insert leaves no history"
    );
    assert_eq!(s.jobs_count().await.unwrap(), vec![(JobState::Enqueued, 1)]);
}

async fn insert_batch_stores_every_field<S: Storage>(s: &S) {
    let batch = vec![
        NewJob {
            payload: r#"{"n":1}"#.to_owned(),
            queue: "mail".to_owned(),
            priority: 7,
            max_retries: Some(3),
            labels: vec!["tenant:a".to_owned(), "vip".to_owned()],
            ..job(id(1), "one")
        },
        NewJob {
            state: JobState::Scheduled,
            run_at: at(300),
            created_at: at(2),
            recurring_id: Some("nightly".to_owned()),
            ..job(id(2), "two")
        },
        job(id(3), "three"),
    ];
    s.jobs_insert(&batch).await.unwrap();
    let one = get(s, id(1)).await;
    assert_eq!(
        (one.name.as_str(), one.display_name.as_str()),
        ("one", "one job")
    );
    assert_eq!(one.payload, serde_json::json!({"n": 1}));
    assert_eq!((one.queue.as_str(), one.priority), ("mail", 7));
    assert_eq!(one.max_retries, Some(3));
    assert_eq!(one.labels, ["tenant:a", "vip"]);
    assert_eq!(
        (one.state, one.attempt, one.owner),
        (JobState::Enqueued, 0, None)
    );
    let two = get(s, id(2)).await;
    assert_eq!((two.state, two.run_at), (JobState::Scheduled, at(300)));
    assert_eq!((two.created_at, two.updated_at), (at(2), at(2)));
    assert_eq!(two.history.len(), 1);
    let created = &two.history[0];
    assert_eq!(
        (created.state, created.at, created.attempt),
        (JobState::Scheduled, at(2), 0)
    );
    assert_eq!(state(s, id(3)).await, JobState::Enqueued);
}

async fn insert_batch_dedupes_each_row<S: Storage>(s: &S) {
    s.jobs_insert(&[job(id(1), "old")]).await.unwrap();
    s.jobs_insert(&[job(id(2), "new"), job(id(1), "again"), job(id(3), "new")])
        .await
        .unwrap();
    assert_eq!(get(s, id(1)).await.name, "old");
    assert_eq!(get(s, id(1)).await.history.len(), 1);
    assert_eq!(get(s, id(2)).await.name, "new");
    assert_eq!(get(s, id(3)).await.name, "new");
}

async fn insert_fresh_ids_with_a_given_one<S: Storage>(s: &S) {
    let fresh = |n| NewJob {
        fresh_id: true,
        unique: None,
        concurrency: None,
        ..job(id(n), "fresh")
    };
    s.jobs_insert(&[fresh(1), fresh(2), fresh(3)])
        .await
        .unwrap();
    s.jobs_insert(&[fresh(4)]).await.unwrap();
    // A batch that is not only fresh ids must still dedupe the given one.
    s.jobs_insert(&[fresh(5), job(id(1), "given")])
        .await
        .unwrap();
    s.jobs_insert(&[job(id(4), "given")]).await.unwrap();
    for n in 1..=5 {
        assert_eq!(get(s, id(n)).await.name, "fresh");
    }
    assert_eq!(s.jobs_count().await.unwrap(), vec![(JobState::Enqueued, 5)]);
}

async fn claim_takes_only_due_runnable_jobs<S: Storage>(s: &S) {
    s.jobs_insert(&[
        job(id(1), "enqueued"),
        NewJob {
            state: JobState::Scheduled,
            run_at: at(1),
            ..job(id(2), "scheduled due")
        },
        NewJob {
            state: JobState::Scheduled,
            run_at: at(2),
            ..job(id(3), "scheduled later")
        },
        NewJob {
            run_at: at(2),
            ..job(id(4), "enqueued later")
        },
        child(id(5), id(1), false),
        job(id(6), "deleted"),
    ])
    .await
    .unwrap();
    s.job_delete(id(6), at(0)).await.unwrap();
    let claimed = s.jobs_claim(claim("a", at(1), 100)).await.unwrap();
    assert_eq!(ids(&claimed), [id(1), id(2)]);
    // Processing and Awaiting rows are not runnable; the later ones are due at(2).
    let claimed = s.jobs_claim(claim("b", at(2), 100)).await.unwrap();
    assert_eq!(ids(&claimed), [id(3), id(4)]);
    assert_eq!(state(s, id(5)).await, JobState::Awaiting);
    assert_eq!(state(s, id(6)).await, JobState::Deleted);
}

async fn claim_orders_by_priority_then_run_at<S: Storage>(s: &S) {
    let with = |n, priority, run_at| NewJob {
        priority,
        run_at: at(run_at),
        ..job(id(n), "ordered")
    };
    // Inserted in an order that is neither the id, the priority nor the run_at order.
    s.jobs_insert(&[
        with(1, 0, -30),
        with(2, 5, -10),
        with(3, 1, -40),
        with(4, 5, -20),
        with(5, 0, -50),
    ])
    .await
    .unwrap();
    let mut order = Vec::new();
    for _ in 0..5 {
        let claimed = s.jobs_claim(claim("a", at(0), 1)).await.unwrap();
        assert_eq!(claimed.len(), 1);
        order.push(claimed[0].id);
    }
    assert_eq!(order, [id(4), id(2), id(3), id(5), id(1)]);
}

async fn claim_respects_the_limit<S: Storage>(s: &S) {
    let batch: Vec<NewJob> = (1..=7).map(|n| job(id(n), "many")).collect();
    s.jobs_insert(&batch).await.unwrap();
    assert_eq!(s.jobs_claim(claim("a", at(1), 3)).await.unwrap().len(), 3);
    assert_eq!(s.jobs_claim(claim("a", at(1), 3)).await.unwrap().len(), 3);
    assert_eq!(s.jobs_claim(claim("a", at(1), 3)).await.unwrap().len(), 1);
    assert!(s.jobs_claim(claim("a", at(1), 3)).await.unwrap().is_empty());
}

async fn claim_respects_queue_selectors<S: Storage>(s: &S) {
    let on = |n, queue: &str| NewJob {
        queue: queue.to_owned(),
        ..job(id(n), "queued")
    };
    s.jobs_insert(&[on(1, "a"), on(2, "b"), on(3, "c"), on(4, "a"), on(5, "d")])
        .await
        .unwrap();
    let only = ClaimRequest {
        queues: QueueSelector::Only("a"),
        ..claim("s", at(1), 100)
    };
    assert_eq!(ids(&s.jobs_claim(only).await.unwrap()), [id(1), id(4)]);
    let limited = ["b".to_owned(), "c".to_owned()];
    let except = ClaimRequest {
        queues: QueueSelector::AllExcept(&limited),
        ..claim("s", at(1), 100)
    };
    let claimed = s.jobs_claim(except).await.unwrap();
    assert_eq!(ids(&claimed), [id(5)]);
    assert_eq!(claimed[0].queue, "d");
    let served = ["c".to_owned(), "z".to_owned()];
    let among = ClaimRequest {
        queues: QueueSelector::Among(&served),
        ..claim("s", at(1), 100)
    };
    assert_eq!(ids(&s.jobs_claim(among).await.unwrap()), [id(3)]);
    assert_eq!(
        ids(&s.jobs_claim(claim("s", at(1), 100)).await.unwrap()),
        [id(2)]
    );
}

/// Some queues are read each on its own (see the claims' queue index) and merged: the
/// claim takes the first of all of them in claim order, none not due, none of another
/// name, and no more than its limit.
async fn a_claim_of_some_queues_merges_them_in_claim_order<S: Storage>(s: &S) {
    let on = |n, queue: &str, priority, run_at| NewJob {
        queue: queue.to_owned(),
        priority,
        run_at: at(run_at),
        ..job(id(n), "merged")
    };
    s.jobs_insert(&[
        on(1, "a", 0, -50),
        on(2, "b", 5, -10),
        on(3, "c", 1, -40),
        on(4, "a", 5, -20),
        on(5, "b", 0, -60),
        on(6, "c", 9, 30),
        on(7, "paused", 9, -90),
        NewJob {
            name: "other".to_owned(),
            ..on(8, "a", 9, -90)
        },
    ])
    .await
    .unwrap();
    let names = ["merged".to_owned()];
    let left_out = ["paused".to_owned()];
    let served = ["a".to_owned(), "b".to_owned(), "z".to_owned()];
    let some = |queues, limit| ClaimRequest {
        queues,
        names: Some(&names),
        ..claim("s", at(0), limit)
    };
    let claimed = s
        .jobs_claim(some(QueueSelector::AllExcept(&left_out), 3))
        .await
        .unwrap();
    assert_eq!(ids(&claimed), [id(2), id(3), id(4)]);
    let claimed = s
        .jobs_claim(some(QueueSelector::Among(&served), 100))
        .await
        .unwrap();
    assert_eq!(ids(&claimed), [id(1), id(5)]);
    // Of every queue but the paused one, only the job not yet due is left.
    assert!(
        s.jobs_claim(some(QueueSelector::AllExcept(&left_out), 100))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(state(s, id(6)).await, JobState::Enqueued);
    assert_eq!(state(s, id(7)).await, JobState::Enqueued);
    assert_eq!(state(s, id(8)).await, JobState::Enqueued);
}

/// A claim of `queue` by `owner`, at most `global` of it `Processing` afterwards.
fn capped<'a>(owner: &'a str, queue: &'a str, global: u32, limit: u32) -> ClaimRequest<'a> {
    ClaimRequest {
        queues: QueueSelector::Capped { queue, global },
        ..claim(owner, at(1), limit)
    }
}

async fn a_capped_claim_takes_only_the_room_left_by_every_owner<S: Storage>(s: &S) {
    let on = |n, queue: &str| NewJob {
        queue: queue.to_owned(),
        ..job(id(n), "capped")
    };
    let batch: Vec<NewJob> = (1..=6).map(|n| on(n, "pdf")).chain([on(7, "b")]).collect();
    s.jobs_insert(&batch).await.unwrap();
    let count = |claimed: Vec<ClaimedJob>| claimed.len();
    assert_eq!(
        count(s.jobs_claim(capped("one", "pdf", 3, 2)).await.unwrap()),
        2
    );
    let two = s.jobs_claim(capped("two", "pdf", 3, 5)).await.unwrap();
    assert_eq!(two.len(), 1, "the room another owner left");
    assert_eq!(
        count(s.jobs_claim(capped("two", "pdf", 3, 5)).await.unwrap()),
        0
    );
    // A lower limit than what runs claims nothing (never "no limit").
    assert_eq!(
        count(s.jobs_claim(capped("two", "pdf", 1, 5)).await.unwrap()),
        0
    );
    s.jobs_complete(&[done(two[0].id, "two", 1, Outcome::Succeeded)])
        .await
        .unwrap();
    assert_eq!(
        count(s.jobs_claim(capped("two", "pdf", 3, 5)).await.unwrap()),
        1
    );
    // An uncapped claim takes the rest.
    let rest = s.jobs_claim(claim("one", at(1), 100)).await.unwrap();
    assert_eq!(rest.len(), 3, "two of `pdf` and the one of `b`");
}

async fn capped_claims_at_once_never_overshoot<S: Storage>(s: &S) {
    let batch: Vec<NewJob> = (1..=40)
        .map(|n| NewJob {
            queue: "pdf".to_owned(),
            ..job(id(n), "capped")
        })
        .collect();
    s.jobs_insert(&batch).await.unwrap();
    let claims = ["a", "b", "c", "d"].map(|owner| s.jobs_claim(capped(owner, "pdf", 5, 4)));
    let [a, b, c, d] = claims;
    let (a, b, c, d) = tokio::join!(a, b, c, d);
    let claimed: usize = [a, b, c, d].into_iter().map(|c| c.unwrap().len()).sum();
    assert_eq!(claimed, 5, "sixteen asked for, five allowed");
}

async fn claim_takes_only_the_names_it_is_given<S: Storage>(s: &S) {
    s.jobs_insert(&[
        job(id(1), "billing.new_invoice"),
        job(id(2), "mail.send"),
        job(id(3), "report.build"),
        job(id(4), "mail.send"),
    ])
    .await
    .unwrap();
    let old = ["mail.send".to_owned(), "report.build".to_owned()];
    let request = ClaimRequest {
        names: Some(&old),
        ..claim("old", at(1), 100)
    };
    assert_eq!(
        ids(&s.jobs_claim(request).await.unwrap()),
        [id(2), id(3), id(4)]
    );
    // Left waiting, untouched, for a server that registers it.
    let info = s.job_get(id(1)).await.unwrap().unwrap();
    assert_eq!((info.state, info.attempt), (JobState::Enqueued, 0));
    let none: [String; 0] = [];
    let request = ClaimRequest {
        names: Some(&none),
        ..claim("empty", at(1), 100)
    };
    assert!(s.jobs_claim(request).await.unwrap().is_empty());
    let new = ["billing.new_invoice".to_owned(), "mail.send".to_owned()];
    let request = ClaimRequest {
        names: Some(&new),
        ..claim("new", at(1), 100)
    };
    assert_eq!(ids(&s.jobs_claim(request).await.unwrap()), [id(1)]);
}

async fn claimed_job_is_processing_owned_and_leased(s: &AnyStorage) {
    s.jobs_insert(&[NewJob {
        payload: r#"{"to":"x"}"#.to_owned(),
        queue: "mail".to_owned(),
        max_retries: Some(4),
        run_at: at(-5),
        ..job(id(1), "send")
    }])
    .await
    .unwrap();
    let request = ClaimRequest {
        lease_until: at(40),
        ..claim("server-a", at(1), 10)
    };
    let claimed = s.jobs_claim(request).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!((c.id, c.name.as_str(), c.attempt), (id(1), "send", 1));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&c.payload).unwrap(),
        serde_json::json!({"to": "x"})
    );
    assert_eq!(
        (c.max_retries, c.queue.as_str(), c.run_at),
        (Some(4), "mail", at(-5))
    );
    let stored = get(s, id(1)).await;
    assert_eq!(stored.state, JobState::Processing);
    assert_eq!(stored.owner.as_deref(), Some("server-a"));
    assert_eq!((stored.attempt, stored.updated_at), (1, at(1)));
    let last = stored.history.last().unwrap();
    assert_eq!(
        (last.state, last.at, last.attempt),
        (JobState::Processing, at(1), 1)
    );
    assert_eq!(last.server.as_deref(), Some("server-a"));
    assert_eq!((c.token, c.ahead), (1, false));
    // The lease is `lease_until`: expired strictly after it, not at it (on the
    // database's clock on PostgreSQL, to within the time a call takes).
    let (before, after) = if exact_leases(s) {
        (at(40), at(40) + Duration::microseconds(1))
    } else {
        (at(39), at(41))
    };
    assert!(
        s.jobs_expired(before, off(before), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.jobs_expired(after, off(after), 10).await.unwrap().len(),
        1
    );
}

async fn claim_never_takes_a_job_twice<S: Storage>(s: &S) {
    let batch: Vec<NewJob> = (1..=4).map(|n| job(id(n), "once")).collect();
    s.jobs_insert(&batch).await.unwrap();
    let first = s.jobs_claim(claim("a", at(1), 2)).await.unwrap();
    let second = s.jobs_claim(claim("b", at(2), 10)).await.unwrap();
    let third = s.jobs_claim(claim("c", at(3), 10)).await.unwrap();
    assert_eq!(first.len() + second.len(), 4);
    assert!(third.is_empty());
    for c in first.iter().chain(&second) {
        assert_eq!(c.attempt, 1);
        let owner = if first.iter().any(|f| f.id == c.id) {
            "a"
        } else {
            "b"
        };
        assert_eq!(get(s, c.id).await.owner.as_deref(), Some(owner));
    }
}

async fn claims_at_once_never_share_a_job<S: Storage>(s: &S) {
    let batch: Vec<NewJob> = (1..=200).map(|n| job(id(n), "race")).collect();
    s.jobs_insert(&batch).await.unwrap();
    let owners = ["a", "b", "c", "d"];
    let claims = owners.map(|owner| s.jobs_claim(claim(owner, at(1), 200)));
    let [a, b, c, d] = claims;
    let (a, b, c, d) = tokio::join!(a, b, c, d);
    let mut all: Vec<ClaimedJob> = [a, b, c, d].into_iter().flat_map(Result::unwrap).collect();
    assert!(all.iter().all(|c| c.attempt == 1), "a job claimed twice");
    assert_eq!(all.len(), 200, "as many claims as jobs");
    all.sort_by_key(|c| c.id.as_uuid());
    all.dedup_by_key(|c| c.id);
    assert_eq!(all.len(), 200, "every job claimed exactly once");
}

async fn claim_returns_the_stored_trace_context<S: Storage>(s: &S) {
    let traced = |n, context: Option<&str>| NewJob {
        trace_context: context.map(str::to_owned),
        ..job(id(n), "traced")
    };
    let context = r#"{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#;
    // One job alone and a batch: the backends insert them through different statements.
    s.jobs_insert(&[traced(1, Some(context))]).await.unwrap();
    s.jobs_insert(&[traced(2, Some(context)), traced(3, None)])
        .await
        .unwrap();
    let mut claimed = s.jobs_claim(claim("a", at(0), 10)).await.unwrap();
    claimed.sort_by_key(|job| job.id);
    let contexts: Vec<_> = claimed
        .iter()
        .map(|job| (job.id, job.trace_context.as_deref()))
        .collect();
    assert_eq!(
        contexts,
        [
            (id(1), Some(context)),
            (id(2), Some(context)),
            (id(3), None)
        ]
    );
}
