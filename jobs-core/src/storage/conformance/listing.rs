//! `jobs_list`: keyset pages, newest id first, and its filters.

use super::*;

conformance!(
    pages_cover_every_job_once_newest_first,
    pages_follow_the_filters,
    list_filters_by_state_name_label_and_search,
    a_label_search_follows_the_stored_labels,
    summary_carries_the_row,
);

/// Pages through `query` `limit` jobs at a time, to the end.
async fn all_pages<S: Storage>(s: &S, query: JobQuery, limit: u32) -> Vec<Vec<JobId>> {
    let mut pages = Vec::new();
    let mut after = None;
    for _ in 0..100 {
        let page = s
            .jobs_list(&JobQuery {
                after,
                limit,
                ..query.clone()
            })
            .await
            .unwrap();
        if page.is_empty() {
            return pages;
        }
        assert!(page.len() <= limit as usize);
        after = page.last().map(|job| job.id);
        pages.push(page.iter().map(|job| job.id).collect());
    }
    panic!("paging never ends: {pages:?}");
}

async fn pages_cover_every_job_once_newest_first<S: Storage>(s: &S) {
    // Inserted out of id order, in two batches.
    let (a, b): (Vec<u128>, Vec<u128>) =
        (1..=23).map(|n| (n * 7) % 23 + 1).partition(|n| n % 2 == 0);
    for part in [a, b] {
        let batch: Vec<NewJob> = part.iter().map(|&n| job(id(n), "paged")).collect();
        s.jobs_insert(&batch).await.unwrap();
    }
    let pages = all_pages(s, JobQuery::default(), 5).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [5, 5, 5, 5, 3]
    );
    let seen: Vec<JobId> = pages.concat();
    let expected: Vec<JobId> = (1..=23).rev().map(id).collect();
    assert_eq!(seen, expected);
    // A page after the oldest id is empty; one after an id not stored continues below it.
    let after = |after, limit| JobQuery {
        after: Some(after),
        limit,
        ..JobQuery::default()
    };
    assert!(s.jobs_list(&after(id(1), 5)).await.unwrap().is_empty());
    let below: Vec<JobId> = s
        .jobs_list(&after(id(100), 2))
        .await
        .unwrap()
        .iter()
        .map(|job| job.id)
        .collect();
    assert_eq!(below, [id(23), id(22)]);
}

async fn pages_follow_the_filters<S: Storage>(s: &S) {
    let batch: Vec<NewJob> = (1..=20)
        .map(|n| job(id(n), if n % 3 == 0 { "third" } else { "other" }))
        .collect();
    s.jobs_insert(&batch).await.unwrap();
    let query = JobQuery {
        name: Some("third".to_owned()),
        ..JobQuery::default()
    };
    let pages = all_pages(s, query, 2).await;
    assert_eq!(pages.len(), 3);
    let expected: Vec<JobId> = [18, 15, 12, 9, 6, 3].map(id).to_vec();
    assert_eq!(pages.concat(), expected);
}

async fn list_filters_by_state_name_label_and_search<S: Storage>(s: &S) {
    let labelled = |n, name: &str, display: &str, labels: &[&str]| NewJob {
        display_name: display.to_owned(),
        labels: labels.iter().map(|label| (*label).to_owned()).collect(),
        ..job(id(n), name)
    };
    s.jobs_insert(&[
        labelled(1, "email", "Send Welcome", &["vip"]),
        labelled(2, "email", "Send 100% off", &["vip2", "tenant:a"]),
        labelled(3, "report", "Monthly_report", &["a vip"]),
        labelled(4, "resize", "Resize image", &["tenant:a"]),
        labelled(5, "emails", "Digest", &[]),
    ])
    .await
    .unwrap();
    s.jobs_claim(claim("a", at(1), 1)).await.unwrap(); // id 1
    let list = |query: JobQuery| async move {
        let mut ids: Vec<JobId> = s
            .jobs_list(&query)
            .await
            .unwrap()
            .iter()
            .map(|job| job.id)
            .collect();
        ids.sort_by_key(JobId::as_uuid);
        ids
    };
    let by = |f: fn(&mut JobQuery)| {
        let mut query = JobQuery::default();
        f(&mut query);
        query
    };
    assert_eq!(list(JobQuery::state(JobState::Processing)).await, [id(1)]);
    assert_eq!(list(JobQuery::state(JobState::Enqueued)).await.len(), 4);
    let name = by(|q| q.name = Some("email".to_owned()));
    assert_eq!(list(name).await, [id(1), id(2)]);
    let label = by(|q| q.label = Some("vip".to_owned()));
    assert_eq!(list(label).await, [id(1)], "a label matches whole");
    let label = by(|q| q.label = Some("tenant:a".to_owned()));
    assert_eq!(list(label).await, [id(2), id(4)]);
    let search = by(|q| q.search = Some("SEND".to_owned()));
    assert_eq!(list(search).await, [id(1), id(2)], "any case, display name");
    let search = by(|q| q.search = Some("esiz".to_owned()));
    assert_eq!(list(search).await, [id(4)]);
    let search = by(|q| q.search = Some("emails".to_owned()));
    assert_eq!(list(search).await, [id(5)], "registered name");
    let search = by(|q| q.search = Some("0%".to_owned()));
    assert_eq!(list(search).await, [id(2)], "`%` is literal");
    let search = by(|q| q.search = Some("y_r".to_owned()));
    assert_eq!(list(search).await, [id(3)], "`_` is literal");
    let both = by(|q| {
        q.state = Some(JobState::Enqueued);
        q.name = Some("email".to_owned());
    });
    assert_eq!(list(both).await, [id(2)]);
}

async fn summary_carries_the_row<S: Storage>(s: &S) {
    s.jobs_insert(&[NewJob {
        queue: "mail".to_owned(),
        labels: vec!["x".to_owned()],
        created_at: at(-5),
        ..job(id(1), "summed")
    }])
    .await
    .unwrap();
    s.jobs_claim(claim("a", at(1), 1)).await.unwrap();
    s.progress_update(&[ProgressUpdate {
        job_id: id(1),
        token: 1,
        done: 3,
        total: 8,
    }])
    .await
    .unwrap();
    let page = s.jobs_list(&JobQuery::default()).await.unwrap();
    let row = &page[0];
    assert_eq!(
        (row.id, row.name.as_str(), row.display_name.as_str()),
        (id(1), "summed", "summed job")
    );
    assert_eq!(
        (row.state, row.queue.as_str(), row.attempt),
        (JobState::Processing, "mail", 1)
    );
    assert_eq!(
        (row.run_at, row.created_at, row.updated_at),
        (at(0), at(-5), at(1))
    );
    assert_eq!(row.labels, ["x"]);
    let progress = row.progress.expect("progress");
    assert_eq!((progress.done, progress.total), (3, 8));
}

/// The search by label reads each job's labels as stored now: a label matches whole and
/// in its case; labels a unique job's replacement changed and those of a pruned job
/// whose id comes back are not found.
async fn a_label_search_follows_the_stored_labels<S: Storage>(s: &S) {
    let labelled = |n, labels: &[&str]| NewJob {
        labels: labels.iter().map(|label| (*label).to_owned()).collect(),
        ..job(id(n), "labelled")
    };
    let by_label = |label: &str| {
        let query = JobQuery::default().label(label);
        async move {
            let page = s.jobs_list(&query).await.unwrap();
            page.iter().map(|job| job.id).collect::<Vec<_>>()
        }
    };
    s.jobs_insert(&[
        labelled(1, &["Tenant:A"]),
        labelled(2, &["tenant:a", "tenant:a"]),
        labelled(3, &["gone"]),
    ])
    .await
    .unwrap();
    assert_eq!(by_label("tenant:a").await, [id(2)], "in its case, once");
    assert_eq!(by_label("Tenant:A").await, [id(1)]);

    // A never-claimed unique job replaced with other labels.
    let unique = |job_id, labels: &[&str], replace| NewJob {
        labels: labels.iter().map(|label| (*label).to_owned()).collect(),
        unique: Some(crate::storage::UniqueClaim {
            key: Uuid::from_u128(7),
            until: at(100),
            states: crate::UniqueStates::Successful,
            replace,
        }),
        ..job(id(job_id), "unique")
    };
    s.jobs_admit(&[unique(10, &["before"], false)])
        .await
        .unwrap();
    s.jobs_admit(&[unique(11, &["after"], true)]).await.unwrap();
    assert_eq!(by_label("before").await, []);
    assert_eq!(by_label("after").await, [id(10)]);

    // Deleted, pruned, and its id stored again without labels.
    s.job_delete(id(3), at(20)).await.unwrap();
    assert_eq!(s.jobs_prune(at(50), at(25), 100).await.unwrap(), 1);
    s.jobs_insert(&[job(id(3), "again")]).await.unwrap();
    assert_eq!(by_label("gone").await, []);
}
