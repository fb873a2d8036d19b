//! The schema of each backend: its scripts in order, each applied once (see the module
//! above). A new script is appended with the next version of its backend; a script
//! that builds indexes on a table that may be big is one of its own, marked
//! `concurrent` on PostgreSQL.

use super::Migration;

#[cfg(feature = "sqlite")]
pub(super) const SQLITE_SCRIPTS: &[Migration] = &[
    Migration {
        version: 1,
        description: "jobs, events, servers",
        sql: include_str!("../../../migrations/sqlite/0001_jobs.sql"),
        concurrent: false,
    },
    Migration {
        version: 2,
        description: "recurring jobs",
        sql: include_str!("../../../migrations/sqlite/0002_recurring.sql"),
        concurrent: false,
    },
    Migration {
        version: 3,
        description: "dashboard indexes",
        sql: include_str!("../../../migrations/sqlite/0003_dashboard.sql"),
        concurrent: false,
    },
    Migration {
        version: 4,
        description: "continuations, steps, logs, progress, labels",
        sql: include_str!("../../../migrations/sqlite/0004_steps.sql"),
        concurrent: false,
    },
    Migration {
        version: 5,
        description: "labels of recurring runs",
        sql: include_str!("../../../migrations/sqlite/0005_recurring_labels.sql"),
        concurrent: false,
    },
    Migration {
        version: 6,
        description: "creation and claim history written by triggers",
        sql: include_str!("../../../migrations/sqlite/0006_history_triggers.sql"),
        concurrent: false,
    },
    Migration {
        version: 7,
        description: "fencing tokens, jobs claimed ahead, rescues",
        sql: include_str!("../../../migrations/sqlite/0007_fence.sql"),
        concurrent: false,
    },
    Migration {
        version: 8,
        description: "trace context of the enqueue",
        sql: include_str!("../../../migrations/sqlite/0008_trace_context.sql"),
        concurrent: false,
    },
    Migration {
        version: 9,
        description: "backtraces of failed attempts",
        sql: include_str!("../../../migrations/sqlite/0009_backtrace.sql"),
        concurrent: false,
    },
    Migration {
        version: 10,
        description: "results of succeeded jobs",
        sql: include_str!("../../../migrations/sqlite/0010_result.sql"),
        concurrent: false,
    },
    Migration {
        version: 11,
        description: "server job names, recurring errors and owners",
        sql: include_str!("../../../migrations/sqlite/0011_rolling_deploys.sql"),
        concurrent: false,
    },
    Migration {
        version: 12,
        description: "paused queues and job names",
        sql: include_str!("../../../migrations/sqlite/0012_pause.sql"),
        concurrent: false,
    },
    Migration {
        version: 13,
        description: "callers of agent tool calls",
        sql: include_str!("../../../migrations/sqlite/0013_tool_callers.sql"),
        concurrent: false,
    },
    Migration {
        version: 14,
        description: "events sent to jobs, and the jobs waiting for them",
        sql: include_str!("../../../migrations/sqlite/0014_signals.sql"),
        concurrent: false,
    },
    Migration {
        version: 15,
        description: "an index for the count of a capped queue's claims",
        sql: include_str!("../../../migrations/sqlite/0015_queue_caps.sql"),
        concurrent: false,
    },
    Migration {
        version: 16,
        description: "unique jobs: the holder of each key",
        sql: include_str!("../../../migrations/sqlite/0016_unique.sql"),
        concurrent: false,
    },
    Migration {
        version: 17,
        description: "the queues each server serves and their limits",
        sql: include_str!("../../../migrations/sqlite/0017_server_queues.sql"),
        concurrent: false,
    },
    Migration {
        version: 18,
        description: "the shape of each job's data a server's build declares",
        sql: include_str!("../../../migrations/sqlite/0018_server_shapes.sql"),
        concurrent: false,
    },
    Migration {
        version: 19,
        description: "what a build needs to work on the schema",
        sql: include_str!("../../../migrations/sqlite/0019_schema_compat.sql"),
        concurrent: false,
    },
    Migration {
        version: 20,
        description: "batches: members, their counts and the fan-in",
        sql: include_str!("../../../migrations/sqlite/0020_batches.sql"),
        concurrent: false,
    },
    Migration {
        version: 21,
        description: "concurrency keys: partitioned limits",
        sql: include_str!("../../../migrations/sqlite/0021_concurrency_keys.sql"),
        concurrent: false,
    },
    Migration {
        version: 22,
        description: "the newest release of each application that registered",
        sql: include_str!("../../../migrations/sqlite/0022_applications.sql"),
        concurrent: false,
    },
    Migration {
        version: 23,
        description: "rate limits: the starts of each scope",
        sql: include_str!("../../../migrations/sqlite/0023_rates.sql"),
        concurrent: false,
    },
    Migration {
        version: 24,
        description: "batches by their fan-in jobs, for the prune",
        sql: include_str!("../../../migrations/sqlite/0024_batch_fan_in_indexes.sql"),
        concurrent: false,
    },
    Migration {
        version: 26,
        description: "each label of each job, for the search by label",
        sql: include_str!("../../../migrations/sqlite/0026_job_labels.sql"),
        concurrent: false,
    },
];

#[cfg(feature = "postgres")]
pub(super) const POSTGRES_SCRIPTS: &[Migration] = &[
    Migration {
        version: 1,
        description: "jobs, events, servers",
        sql: include_str!("../../../migrations/postgres/0001_jobs.sql"),
        concurrent: false,
    },
    Migration {
        version: 2,
        description: "recurring jobs",
        sql: include_str!("../../../migrations/postgres/0002_recurring.sql"),
        concurrent: false,
    },
    Migration {
        version: 3,
        description: "dashboard indexes",
        sql: include_str!("../../../migrations/postgres/0003_dashboard.sql"),
        concurrent: false,
    },
    Migration {
        version: 4,
        description: "continuations, steps, logs, progress, labels",
        sql: include_str!("../../../migrations/postgres/0004_steps.sql"),
        concurrent: false,
    },
    Migration {
        version: 5,
        description: "owner index that also finds the row",
        sql: include_str!("../../../migrations/postgres/0005_owner_index.sql"),
        concurrent: false,
    },
    Migration {
        version: 6,
        description: "labels of recurring runs",
        sql: include_str!("../../../migrations/postgres/0006_recurring_labels.sql"),
        concurrent: false,
    },
    Migration {
        version: 7,
        description: "one key for history rows",
        sql: include_str!("../../../migrations/postgres/0007_event_key.sql"),
        concurrent: false,
    },
    Migration {
        version: 8,
        description: "fencing tokens, jobs claimed ahead, rescues",
        sql: include_str!("../../../migrations/postgres/0008_fence.sql"),
        concurrent: false,
    },
    Migration {
        version: 9,
        description: "trace context of the enqueue",
        sql: include_str!("../../../migrations/postgres/0009_trace_context.sql"),
        concurrent: false,
    },
    Migration {
        version: 10,
        description: "backtraces of failed attempts",
        sql: include_str!("../../../migrations/postgres/0010_backtrace.sql"),
        concurrent: false,
    },
    Migration {
        version: 11,
        description: "results of succeeded jobs",
        sql: include_str!("../../../migrations/postgres/0011_result.sql"),
        concurrent: false,
    },
    Migration {
        version: 12,
        description: "server job names, recurring errors and owners",
        sql: include_str!("../../../migrations/postgres/0012_rolling_deploys.sql"),
        concurrent: false,
    },
    Migration {
        version: 13,
        description: "paused queues and job names",
        sql: include_str!("../../../migrations/postgres/0013_pause.sql"),
        concurrent: false,
    },
    Migration {
        version: 14,
        description: "callers of agent tool calls",
        sql: include_str!("../../../migrations/postgres/0014_tool_callers.sql"),
        concurrent: false,
    },
    Migration {
        version: 15,
        description: "a claim plan that holds on big tables",
        sql: include_str!("../../../migrations/postgres/0015_claim_plan.sql"),
        concurrent: false,
    },
    Migration {
        version: 16,
        description: "events sent to jobs, and the jobs waiting for them",
        sql: include_str!("../../../migrations/postgres/0016_signals.sql"),
        concurrent: false,
    },
    Migration {
        version: 17,
        description: "claims of a queue with a cluster-wide limit",
        sql: include_str!("../../../migrations/postgres/0017_queue_caps.sql"),
        concurrent: false,
    },
    Migration {
        version: 18,
        description: "unique jobs: the holder of each key",
        sql: include_str!("../../../migrations/postgres/0018_unique.sql"),
        concurrent: false,
    },
    Migration {
        version: 19,
        description: "the queues each server serves and their limits",
        sql: include_str!("../../../migrations/postgres/0019_server_queues.sql"),
        concurrent: false,
    },
    Migration {
        version: 20,
        description: "the shape of each job's data a server's build declares",
        sql: include_str!("../../../migrations/postgres/0020_server_shapes.sql"),
        concurrent: false,
    },
    Migration {
        version: 21,
        description: "wake-up channels named by the schema the tables are in",
        sql: include_str!("../../../migrations/postgres/0021_schema_channels.sql"),
        concurrent: false,
    },
    Migration {
        version: 22,
        description: "what a build needs to work on the schema",
        sql: include_str!("../../../migrations/postgres/0022_schema_compat.sql"),
        concurrent: false,
    },
    Migration {
        version: 23,
        description: "batches: members, their counts and the fan-in",
        sql: include_str!("../../../migrations/postgres/0023_batches.sql"),
        concurrent: false,
    },
    Migration {
        version: 24,
        description: "concurrency keys: partitioned limits",
        sql: include_str!("../../../migrations/postgres/0024_concurrency_keys.sql"),
        concurrent: false,
    },
    Migration {
        version: 25,
        description: "the newest release of each application that registered",
        sql: include_str!("../../../migrations/postgres/0025_applications.sql"),
        concurrent: false,
    },
    Migration {
        version: 26,
        description: "the index of a batch's members, built concurrently",
        sql: include_str!("../../../migrations/postgres/0026_batch_index.sql"),
        concurrent: true,
    },
    Migration {
        version: 27,
        description: "the indexes of partitioned limits, built concurrently",
        sql: include_str!("../../../migrations/postgres/0027_concurrency_key_indexes.sql"),
        concurrent: true,
    },
    Migration {
        version: 28,
        description: "rate limits: the starts of each scope",
        sql: include_str!("../../../migrations/postgres/0028_rates.sql"),
        concurrent: false,
    },
    Migration {
        version: 29,
        description: "batches by their then job, built concurrently",
        sql: include_str!("../../../migrations/postgres/0029_batch_then_index.sql"),
        concurrent: true,
    },
    Migration {
        version: 30,
        description: "batches by their on_failure job, built concurrently",
        sql: include_str!("../../../migrations/postgres/0030_batch_on_failure_index.sql"),
        concurrent: true,
    },
    Migration {
        version: 33,
        description: "each label of each job, for the search by label",
        sql: include_str!("../../../migrations/postgres/0033_job_labels.sql"),
        concurrent: false,
    },
    Migration {
        version: 34,
        description: "the labels of the jobs stored before, added outside a transaction",
        sql: include_str!("../../../migrations/postgres/0034_job_labels_backfill.sql"),
        concurrent: true,
    },
];
