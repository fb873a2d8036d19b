//! Unique jobs against a model: any arguments (maps whose entries come in any order,
//! holding any JSON), enqueued, deleted and moved in time in any order, give exactly the
//! jobs a model of the rule gives. The rule: an enqueue returns the job that holds its
//! arguments' key when that job was created less than the window ago and is not deleted;
//! otherwise it stores a new job, which holds the key from then on.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jobs::prelude::*;
use jobs::{Clock, Enqueued};
use proptest::prelude::*;
use serde_json::Value;

use crate::support::{Backend, setup, stored_jobs};
use crate::{cases, json_value, runtime, text};

const WINDOW_SECS: i64 = 3600;

#[job(unique = "1h")]
async fn index_document(fields: HashMap<String, Value>) {
    let _ = fields;
}

#[derive(Debug, Clone)]
enum Op {
    /// Enqueue the arguments of this index.
    Enqueue(usize),
    /// Delete the job that holds the key of the arguments of this index, if any.
    Delete(usize),
    /// Move the clock on by this many seconds.
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize).prop_map(Op::Enqueue),
        1 => (0..3usize).prop_map(Op::Delete),
        2 => (0..2 * WINDOW_SECS as u64).prop_map(Op::Advance),
    ]
}

fn arguments() -> impl Strategy<Value = BTreeMap<String, Value>> {
    prop::collection::btree_map(text(), json_value(), 0..4)
}

/// A new map of the same entries: a `HashMap` of its own iterates (and serializes) in
/// an order of its own.
fn fresh(entries: &BTreeMap<String, Value>) -> IndexDocument {
    IndexDocument {
        fields: entries
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    }
}

proptest! {
    #![proptest_config(cases(24))]

    #[test]
    fn enqueues_of_unique_jobs_follow_the_rule(
        args in prop::collection::vec(arguments(), 3),
        ops in prop::collection::vec(op(), 1..24),
    ) {
        let runtime = runtime();
        runtime.block_on(async {
            let (_db, clock, jobs, _probe) = setup(Backend::Sqlite).await;
            // The model: per key (the arguments in one order), its holder, when it was
            // created, and whether it was deleted.
            let mut holders: HashMap<String, (JobId, chrono::DateTime<chrono::Utc>, bool)> =
                HashMap::new();
            let key = |i: usize| serde_json::to_string(&args[i]).unwrap();
            let mut created = 0u64;
            for op in &ops {
                match *op {
                    Op::Enqueue(i) => {
                        let outcome = jobs.enqueue(fresh(&args[i])).outcome().await.unwrap();
                        let now = clock.now();
                        let held = holders.get(&key(i)).filter(|(_, at, deleted)| {
                            !deleted && now < *at + chrono::Duration::seconds(WINDOW_SECS)
                        });
                        match held {
                            Some((holder, _, _)) => {
                                assert_eq!(outcome, Enqueued::Duplicate(*holder), "{op:?}");
                            }
                            None => {
                                let Enqueued::Created(id) = outcome else {
                                    panic!("{op:?} should store a job: {outcome:?}");
                                };
                                created += 1;
                                holders.insert(key(i), (id, now, false));
                            }
                        }
                    }
                    Op::Delete(i) => {
                        if let Some((holder, _, deleted)) = holders.get_mut(&key(i)) {
                            jobs.delete(*holder).await.unwrap();
                            *deleted = true;
                        }
                    }
                    Op::Advance(secs) => clock.advance(Duration::from_secs(secs)),
                }
            }
            assert_eq!(stored_jobs(&jobs).await, created);
        });
    }
}
