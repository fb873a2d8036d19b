//! The schema of each backend as an ordered list of embedded SQL scripts.
//!
//! `jobs` keeps its own version table (`jobs_migration`) instead of sqlx's
//! `_sqlx_migrations`, because it often shares a database with the application's own
//! sqlx migrations, whose versions would collide with ours.

/// One schema step: applied once, in order, inside a transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) sql: &'static str,
}

#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        description: "jobs, events, servers",
        sql: include_str!("../../migrations/sqlite/0001_jobs.sql"),
    },
    Migration {
        version: 2,
        description: "recurring jobs",
        sql: include_str!("../../migrations/sqlite/0002_recurring.sql"),
    },
    Migration {
        version: 3,
        description: "dashboard indexes",
        sql: include_str!("../../migrations/sqlite/0003_dashboard.sql"),
    },
    Migration {
        version: 4,
        description: "continuations, steps, logs, progress, labels",
        sql: include_str!("../../migrations/sqlite/0004_steps.sql"),
    },
    Migration {
        version: 5,
        description: "labels of recurring runs",
        sql: include_str!("../../migrations/sqlite/0005_recurring_labels.sql"),
    },
    Migration {
        version: 6,
        description: "creation and claim history written by triggers",
        sql: include_str!("../../migrations/sqlite/0006_history_triggers.sql"),
    },
];

#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        description: "jobs, events, servers",
        sql: include_str!("../../migrations/postgres/0001_jobs.sql"),
    },
    Migration {
        version: 2,
        description: "recurring jobs",
        sql: include_str!("../../migrations/postgres/0002_recurring.sql"),
    },
    Migration {
        version: 3,
        description: "dashboard indexes",
        sql: include_str!("../../migrations/postgres/0003_dashboard.sql"),
    },
    Migration {
        version: 4,
        description: "continuations, steps, logs, progress, labels",
        sql: include_str!("../../migrations/postgres/0004_steps.sql"),
    },
    Migration {
        version: 5,
        description: "owner index that also finds the row",
        sql: include_str!("../../migrations/postgres/0005_owner_index.sql"),
    },
    Migration {
        version: 6,
        description: "labels of recurring runs",
        sql: include_str!("../../migrations/postgres/0006_recurring_labels.sql"),
    },
    Migration {
        version: 7,
        description: "one key for history rows",
        sql: include_str!("../../migrations/postgres/0007_event_key.sql"),
    },
];
