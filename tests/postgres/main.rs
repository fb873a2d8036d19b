//! What only PostgreSQL has: many nodes migrating one database at once, servers in
//! separate processes sharing it, and wake-ups through `LISTEN`/`NOTIFY`.

#![cfg(feature = "postgres")]

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod batches;
mod concurrency_keys;
mod drain;
mod durable;
mod global_limit;
mod key_rate_limit;
mod migrations;
mod multiprocess;
mod otel;
mod rate_limit;
mod rolling_deploy;
mod schemas;
mod wakeup;
