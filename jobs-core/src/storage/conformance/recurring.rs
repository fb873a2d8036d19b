//! Recurring jobs: the upsert (keeping `next_run_at`), disabling those gone from the code,
//! reads and switches, what is due, and `recurring_fire` with each of its outcomes.

use super::*;

conformance!(
    an_older_release_leaves_a_newer_releases_registration_alone,
    upsert_inserts_then_keeps_next_run_at,
    upsert_takes_next_run_at_of_a_changed_schedule_or_zone,
    upsert_reenables_only_jobs_that_had_left_the_code,
    disable_missing_spares_declared_and_api_jobs,
    get_list_delete_and_set_enabled,
    due_and_next_run_at_see_only_enabled_jobs,
    fire_creates_the_runs_and_advances,
    fire_that_lost_the_compare_and_set_changes_nothing,
    fire_skips_while_a_run_is_active,
    fire_dedupes_runs_by_id,
    fire_without_a_next_tick_disables,
    disable_missing_spares_other_applications,
    an_error_is_stored_until_the_job_fires,
);

fn recurring(id: &str, cron: &str, next: i64) -> NewRecurring {
    NewRecurring {
        id: id.to_owned(),
        schedule: Schedule::cron(cron).unwrap(),
        template: JobTemplate {
            name: "report".to_owned(),
            display_name: "Report".to_owned(),
            payload: r#"{"v":1}"#.to_owned(),
            max_retries: Some(2),
            labels: vec!["nightly".to_owned()],
        },
        missed: MissedTicks::RunOnce,
        allow_overlap: false,
        source: RecurringSource::Code,
        application: Some("app".to_owned()),
        next_run_at: at(next),
    }
}

/// A run of recurring job `rid` under id `n`.
fn run(n: u128, rid: &str) -> NewJob {
    NewJob {
        recurring_id: Some(rid.to_owned()),
        ..job(id(n), "report")
    }
}

/// Fires `rid`'s tick `expected` (seconds), moving it to `next`, with `runs`.
fn fire<'a>(rid: &'a str, expected: i64, next: Option<i64>, runs: &'a [NewJob]) -> FireRequest<'a> {
    FireRequest {
        id: rid,
        expected_next: at(expected),
        next: next.map(at),
        runs,
        allow_overlap: false,
        wait_for_active: false,
        now: at(expected + 1),
    }
}

/// Upserts the hourly `recurring(rid, …, next)` at `at(now)`.
async fn upsert<S: Storage>(s: &S, rid: &str, next: i64, now: i64) {
    s.recurring_upsert(&recurring(rid, "0 * * * *", next), at(now))
        .await
        .unwrap();
}

/// Registers `app` at no release, declaring only `ids` (as [`recurring`] makes them);
/// → how many of its rows it disabled.
async fn register_only<S: Storage>(s: &S, ids: &[&str], now: i64) -> u64 {
    let declared: Vec<NewRecurring> = ids
        .iter()
        .map(|id| recurring(id, "0 * * * *", 3600))
        .collect();
    match s
        .recurring_register("app", "", &declared, at(now))
        .await
        .unwrap()
    {
        Registration::Registered { disabled } => disabled,
        Registration::Newer(newer) => panic!("a newer release registered: {newer}"),
    }
}

/// A recurring job that must exist.
async fn stored_of<S: Storage>(s: &S, rid: &str) -> RecurringInfo {
    s.recurring_get(rid)
        .await
        .unwrap()
        .expect("recurring job exists")
}

/// What came of `request`.
async fn fired<S: Storage>(s: &S, request: FireRequest<'_>) -> Fired {
    s.recurring_fire(request).await.unwrap()
}

async fn runs_of<S: Storage>(s: &S) -> Vec<JobId> {
    let mut ids: Vec<JobId> = s
        .jobs_list(&JobQuery::default())
        .await
        .unwrap()
        .iter()
        .map(|job| job.id)
        .collect();
    ids.sort_by_key(JobId::as_uuid);
    ids
}

async fn upsert_inserts_then_keeps_next_run_at<S: Storage>(s: &S) {
    upsert(s, "r", 3600, 0).await;
    let stored = stored_of(s, "r").await;
    assert_eq!(
        (stored.schedule.as_str(), stored.zone.as_str()),
        ("0 * * * *", "UTC")
    );
    assert_eq!(
        (stored.job_name.as_str(), stored.display_name.as_str()),
        ("report", "Report")
    );
    assert_eq!(stored.payload, serde_json::json!({"v": 1}));
    assert_eq!(
        (stored.max_retries, stored.labels.as_slice()),
        (Some(2), &["nightly".to_owned()][..])
    );
    assert_eq!(
        (stored.missed, stored.allow_overlap),
        (MissedTicks::RunOnce, false)
    );
    assert_eq!(
        (stored.enabled, stored.source),
        (true, RecurringSource::Code)
    );
    assert_eq!((stored.next_run_at, stored.created_at), (at(3600), at(0)));
    assert_eq!((stored.last_run_at, stored.last_job_id), (None, None));
    // A server starting later, with the same schedule and a changed job.
    let mut again = recurring("r", "0 * * * *", 7200);
    again.template.payload = r#"{"v":2}"#.to_owned();
    again.allow_overlap = true;
    s.recurring_upsert(&again, at(5000)).await.unwrap();
    let stored = stored_of(s, "r").await;
    assert_eq!(stored.next_run_at, at(3600), "a missed tick is still seen");
    assert_eq!(stored.payload, serde_json::json!({"v": 2}));
    assert!(stored.allow_overlap);
    assert_eq!((stored.created_at, stored.updated_at), (at(0), at(5000)));
}

async fn upsert_takes_next_run_at_of_a_changed_schedule_or_zone<S: Storage>(s: &S) {
    upsert(s, "r", 3600, 0).await;
    s.recurring_upsert(&recurring("r", "30 * * * *", 1800), at(10))
        .await
        .unwrap();
    let stored = stored_of(s, "r").await;
    assert_eq!(
        (stored.schedule.as_str(), stored.next_run_at),
        ("30 * * * *", at(1800))
    );
    let zoned = NewRecurring {
        schedule: Schedule::cron_in("30 * * * *", "Europe/Paris").unwrap(),
        ..recurring("r", "30 * * * *", 900)
    };
    s.recurring_upsert(&zoned, at(20)).await.unwrap();
    let stored = stored_of(s, "r").await;
    assert_eq!(
        (stored.zone.as_str(), stored.next_run_at),
        ("Europe/Paris", at(900))
    );
}

async fn upsert_reenables_only_jobs_that_had_left_the_code<S: Storage>(s: &S) {
    for rid in ["gone", "off"] {
        upsert(s, rid, 3600, 0).await;
    }
    assert!(
        s.recurring_set_enabled("off", false, at(0), at(1))
            .await
            .unwrap()
    );
    assert_eq!(register_only(s, &["off"], 2).await, 1);
    let gone = stored_of(s, "gone").await;
    assert!(!gone.enabled);
    assert_eq!(gone.disabled_reason.as_deref(), Some(disabled::REMOVED));
    for rid in ["gone", "off"] {
        upsert(s, rid, 3600, 3).await;
    }
    let back = stored_of(s, "gone").await;
    assert_eq!((back.enabled, back.disabled_reason), (true, None));
    let off = stored_of(s, "off").await;
    assert!(!off.enabled, "a user's switch stays");
    assert_eq!(off.disabled_reason.as_deref(), Some(disabled::BY_USER));
}

async fn disable_missing_spares_declared_and_api_jobs<S: Storage>(s: &S) {
    let api = NewRecurring {
        source: RecurringSource::Api,
        ..recurring("api", "0 * * * *", 3600)
    };
    s.recurring_upsert(&api, at(0)).await.unwrap();
    for rid in ["a", "b", "c"] {
        upsert(s, rid, 3600, 0).await;
    }
    let declared = ["a", "c"];
    assert_eq!(register_only(s, &declared, 1).await, 1);
    let enabled: Vec<(String, bool)> = s
        .recurring_list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.enabled))
        .collect();
    let expected = [("a", true), ("api", true), ("b", false), ("c", true)];
    assert_eq!(enabled, expected.map(|(id, on)| (id.to_owned(), on)));
    assert_eq!(register_only(s, &declared, 2).await, 0);
    // No job declared at all: every code job goes.
    assert_eq!(register_only(s, &[], 3).await, 2);
    assert!(stored_of(s, "api").await.enabled);
}

async fn get_list_delete_and_set_enabled<S: Storage>(s: &S) {
    assert!(s.recurring_get("a").await.unwrap().is_none());
    for rid in ["b", "a"] {
        upsert(s, rid, 3600, 0).await;
    }
    let ids: Vec<String> = s
        .recurring_list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(
        s.recurring_set_enabled("a", false, at(0), at(10))
            .await
            .unwrap()
    );
    let off = stored_of(s, "a").await;
    assert_eq!((off.enabled, off.updated_at), (false, at(10)));
    assert_eq!(off.next_run_at, at(3600));
    assert!(
        s.recurring_set_enabled("a", true, at(7000), at(20))
            .await
            .unwrap()
    );
    let on = stored_of(s, "a").await;
    assert_eq!(
        (on.enabled, on.disabled_reason, on.next_run_at),
        (true, None, at(7000))
    );
    assert!(
        !s.recurring_set_enabled("z", true, at(0), at(20))
            .await
            .unwrap()
    );
    assert!(s.recurring_delete("a").await.unwrap());
    assert!(!s.recurring_delete("a").await.unwrap());
    assert!(s.recurring_get("a").await.unwrap().is_none());
    assert_eq!(s.recurring_list().await.unwrap().len(), 1);
}

async fn due_and_next_run_at_see_only_enabled_jobs<S: Storage>(s: &S) {
    assert_eq!(s.recurring_next_run_at().await.unwrap(), None);
    for (rid, next) in [("late", 300), ("soon", 100), ("off", 50), ("sooner", 200)] {
        upsert(s, rid, next, 0).await;
    }
    s.recurring_set_enabled("off", false, at(0), at(0))
        .await
        .unwrap();
    assert_eq!(s.recurring_next_run_at().await.unwrap(), Some(at(100)));
    let due: Vec<String> = s
        .recurring_due(at(200), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        due,
        ["soon", "sooner"],
        "due at or before now, earliest first"
    );
    let first = s.recurring_due(at(300), 1).await.unwrap();
    assert_eq!((first.len(), first[0].id.as_str()), (1, "soon"));
    assert!(s.recurring_due(at(99), 10).await.unwrap().is_empty());
}

async fn fire_creates_the_runs_and_advances<S: Storage>(s: &S) {
    upsert(s, "r", 100, 0).await;
    let runs = [run(1, "r"), run(2, "r")];
    assert_eq!(
        fired(s, fire("r", 100, Some(160), &runs)).await,
        Fired::Created
    );
    let stored = stored_of(s, "r").await;
    assert_eq!((stored.next_run_at, stored.enabled), (at(160), true));
    assert_eq!(
        (stored.last_run_at, stored.last_job_id),
        (Some(at(101)), Some(id(2)))
    );
    assert_eq!(runs_of(s).await, [id(1), id(2)]);
    // A plan without runs still advances.
    assert_eq!(
        fired(s, fire("r", 160, Some(220), &[])).await,
        Fired::Created
    );
    let stored = stored_of(s, "r").await;
    assert_eq!(
        (stored.next_run_at, stored.last_job_id),
        (at(220), Some(id(2)))
    );
}

async fn fire_that_lost_the_compare_and_set_changes_nothing<S: Storage>(s: &S) {
    upsert(s, "r", 100, 0).await;
    assert_eq!(
        fired(s, fire("r", 100, Some(160), &[run(1, "r")])).await,
        Fired::Created
    );
    s.jobs_claim(claim("a", at(101), 10)).await.unwrap();
    s.jobs_complete(&[done(id(1), "a", 1, Outcome::Succeeded)])
        .await
        .unwrap();
    // Another server, late, fires the same tick: lost, and no run is made.
    assert_eq!(
        fired(s, fire("r", 100, Some(170), &[run(2, "r")])).await,
        Fired::Lost
    );
    let stored = stored_of(s, "r").await;
    assert_eq!(
        (stored.next_run_at, stored.last_job_id),
        (at(160), Some(id(1)))
    );
    assert_eq!(runs_of(s).await, [id(1)]);
    // Neither fires a disabled job nor an unknown one.
    s.recurring_set_enabled("r", false, at(0), at(120))
        .await
        .unwrap();
    assert_eq!(
        fired(s, fire("r", 160, Some(220), &[run(3, "r")])).await,
        Fired::Lost
    );
    assert_eq!(
        fired(s, fire("x", 160, Some(220), &[run(4, "x")])).await,
        Fired::Lost
    );
    assert_eq!(runs_of(s).await, [id(1)]);
}

async fn fire_skips_while_a_run_is_active<S: Storage>(s: &S) {
    upsert(s, "r", 100, 0).await;
    s.jobs_insert(&[run(1, "r"), job(id(9), "unrelated")])
        .await
        .unwrap();
    assert_eq!(
        fired(s, fire("r", 100, Some(160), &[run(2, "r")])).await,
        Fired::SkippedOverlap
    );
    let stored = stored_of(s, "r").await;
    assert_eq!(
        (stored.next_run_at, stored.last_job_id),
        (at(160), None),
        "the tick advanced"
    );
    assert_eq!(runs_of(s).await, [id(1), id(9)]);
    // A catch-up tick waits for the active run instead: nothing changes.
    let runs = [run(2, "r")];
    let waiting = FireRequest {
        wait_for_active: true,
        ..fire("r", 160, Some(220), &runs)
    };
    assert_eq!(fired(s, waiting).await, Fired::Waiting);
    assert_eq!(stored_of(s, "r").await.next_run_at, at(160));
    assert_eq!(runs_of(s).await, [id(1), id(9)]);
    // Allowed to overlap: the run is made.
    let runs = [run(3, "r")];
    let overlap = FireRequest {
        allow_overlap: true,
        ..fire("r", 160, Some(220), &runs)
    };
    assert_eq!(fired(s, overlap).await, Fired::Created);
    // Once no run is active, the next tick runs.
    s.job_delete(id(1), at(200)).await.unwrap();
    s.jobs_claim(claim("a", at(200), 10)).await.unwrap();
    s.jobs_complete(&[done(id(3), "a", 1, Outcome::Succeeded)])
        .await
        .unwrap();
    assert_eq!(
        fired(s, fire("r", 220, Some(280), &[run(4, "r")])).await,
        Fired::Created
    );
    assert_eq!(runs_of(s).await, [id(1), id(3), id(4), id(9)]);
}

async fn fire_dedupes_runs_by_id<S: Storage>(s: &S) {
    upsert(s, "r", 100, 0).await;
    // The run of this tick exists already (another server fired it under the same id).
    s.jobs_insert(&[NewJob {
        state: JobState::Scheduled,
        run_at: at(500),
        ..run(1, "r")
    }])
    .await
    .unwrap();
    let runs = [run(1, "r"), run(2, "r")];
    let request = FireRequest {
        allow_overlap: true,
        ..fire("r", 100, Some(160), &runs)
    };
    assert_eq!(fired(s, request).await, Fired::Created);
    assert_eq!(runs_of(s).await, [id(1), id(2)]);
    let kept = get(s, id(1)).await;
    assert_eq!(
        (kept.state, kept.run_at, kept.history.len()),
        (JobState::Scheduled, at(500), 1)
    );
}

async fn fire_without_a_next_tick_disables<S: Storage>(s: &S) {
    upsert(s, "r", 100, 0).await;
    assert_eq!(
        fired(s, fire("r", 100, None, &[run(1, "r")])).await,
        Fired::Created
    );
    let stored = stored_of(s, "r").await;
    assert!(!stored.enabled);
    assert_eq!(stored.disabled_reason.as_deref(), Some(disabled::FINISHED));
    assert_eq!(stored.last_job_id, Some(id(1)));
    assert_eq!(runs_of(s).await, [id(1)]);
    assert_eq!(s.recurring_next_run_at().await.unwrap(), None);
}

async fn an_error_is_stored_until_the_job_fires<S: Storage>(s: &S) {
    upsert(s, "r", 100, 0).await;
    assert_eq!(stored_of(s, "r").await.error, None);
    let error = "this server cannot read its schedule: unknown zone `Mars/Olympus_Mons`";
    assert!(s.recurring_set_error("r", Some(error)).await.unwrap());
    assert!(!s.recurring_set_error("gone", Some(error)).await.unwrap());
    let stored = stored_of(s, "r").await;
    assert_eq!(stored.error.as_deref(), Some(error));
    assert_eq!((stored.next_run_at, stored.enabled), (at(100), true));
    assert_eq!(
        fired(s, fire("r", 100, Some(160), &[])).await,
        Fired::Created
    );
    assert_eq!(stored_of(s, "r").await.error, None);
}

async fn disable_missing_spares_other_applications<S: Storage>(s: &S) {
    upsert(s, "mine", 3600, 0).await;
    let theirs = NewRecurring {
        application: Some("billing".to_owned()),
        ..recurring("theirs", "0 * * * *", 3600)
    };
    s.recurring_upsert(&theirs, at(0)).await.unwrap();
    let legacy = NewRecurring {
        application: None,
        ..recurring("legacy", "0 * * * *", 3600)
    };
    s.recurring_upsert(&legacy, at(0)).await.unwrap();
    assert_eq!(
        stored_of(s, "theirs").await.application.as_deref(),
        Some("billing")
    );
    // Declaring nothing, `app` disables its own and the one without an owner.
    assert_eq!(register_only(s, &[], 1).await, 2);
    assert!(stored_of(s, "theirs").await.enabled);
    assert!(!stored_of(s, "mine").await.enabled);
    assert!(!stored_of(s, "legacy").await.enabled);
    // The application that declares it takes it back.
    let adopted = NewRecurring {
        application: Some("billing".to_owned()),
        ..recurring("legacy", "0 * * * *", 3600)
    };
    s.recurring_upsert(&adopted, at(2)).await.unwrap();
    let stored = stored_of(s, "legacy").await;
    assert_eq!(
        (stored.enabled, stored.application.as_deref()),
        (true, Some("billing"))
    );
}

async fn an_older_release_leaves_a_newer_releases_registration_alone<S: Storage>(s: &S) {
    let v2 = [
        recurring("daily", "0 9 * * *", 3600),
        recurring("new", "0 * * * *", 3600),
    ];
    assert_eq!(
        s.recurring_register("app", "2.0.0", &v2, at(0))
            .await
            .unwrap(),
        Registration::Registered { disabled: 0 }
    );
    // An old node restarts: its declarations would revert `daily` and drop `new`.
    let v1 = [recurring("daily", "0 8 * * *", 7200)];
    assert_eq!(
        s.recurring_register("app", "1.9.2", &v1, at(1))
            .await
            .unwrap(),
        Registration::Newer("2.0.0".to_owned())
    );
    assert_eq!(stored_of(s, "daily").await.schedule, "0 9 * * *");
    assert!(stored_of(s, "new").await.enabled);
    // Another application's registrations do not count.
    let theirs = [NewRecurring {
        application: Some("billing".to_owned()),
        ..recurring("billing-run", "0 * * * *", 3600)
    }];
    assert_eq!(
        s.recurring_register("billing", "0.1.0", &theirs, at(2))
            .await
            .unwrap(),
        Registration::Registered { disabled: 0 }
    );
    // The same release registers again, and a newer one takes over.
    assert_eq!(
        s.recurring_register("app", "2.0.0", &v2, at(3))
            .await
            .unwrap(),
        Registration::Registered { disabled: 0 }
    );
    assert_eq!(
        s.recurring_register("app", "2.1.0", &v1, at(4))
            .await
            .unwrap(),
        Registration::Registered { disabled: 1 }
    );
    assert_eq!(stored_of(s, "daily").await.schedule, "0 8 * * *");
    assert!(!stored_of(s, "new").await.enabled);
    assert!(stored_of(s, "billing-run").await.enabled);
}
