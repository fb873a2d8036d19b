//! The behaviour suite: every test runs against SQLite and (with the `postgres` feature)
//! PostgreSQL, each on a database of its own, with a manual clock.

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod admin;
mod agent_tools;
mod batch_chains;
mod batch_prune;
mod batches;
mod concurrency_keys;
mod connect_options;
mod deploy;
mod flow;
mod key_rates;
mod leases;
mod lifecycle;
mod multistep;
mod pause;
mod prefetch;
mod prune;
mod rates;
mod recurring;
mod recurring_errors;
mod restart;
mod storage_text;
mod tracing_spans;
mod transactional;
mod unique;
mod version_skew;
