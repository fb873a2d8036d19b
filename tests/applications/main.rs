//! Two applications on one PostgreSQL database, in real processes: one binary deployed
//! as two services (`crm` and `billing`), each declaring `#[recurring]` jobs the other
//! does not, each restarted five times. A binary of its own, because its schedules
//! fire every second and would run in every other test's database.

#![cfg(feature = "postgres")]

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod restarts;
