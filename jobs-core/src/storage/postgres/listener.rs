//! Wake-ups across processes: PostgreSQL `LISTEN` on two channels, one which every insert
//! of jobs notifies in its own transaction (so the signal is sent only when the jobs
//! exist), one which every delete notifies (so a server stops a deleted job's attempt at
//! once).
//!
//! One background task per storage holds a dedicated connection, outside the main pool so
//! it never takes a slot the application counts on. Each notification bumps the `watch`
//! counter of its channel, which servers wait on. When the connection drops, the task
//! reconnects with back-off and bumps both counters once listening again: notifications
//! sent in between are lost, and the servers must look for what they announced.

use std::sync::OnceLock;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The channel jobs are announced on. Notifications never leave their database, so one
/// name serves every database on a cluster; within a database, `jobs_channel` (migration
/// 21) adds the schema's name to it outside `public`. Statements notify
/// `jobs_channel(CHANNEL)`, and the listener asks it which names to listen on.
pub(super) const CHANNEL: &str = "jobs_enqueued";

/// The channel deletions are announced on (through `jobs_channel` too).
pub(super) const DELETIONS: &str = "jobs_deleted";

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(10);

/// The listener of one storage (shared by its clones), started on first use.
#[derive(Debug)]
pub(super) struct Wakeups {
    /// The main pool's, for the listener's own connection.
    options: PgConnectOptions,
    counters: OnceLock<Counters>,
    stop: CancellationToken,
}

/// One counter per channel.
#[derive(Debug, Clone)]
struct Counters {
    enqueued: watch::Sender<u64>,
    deleted: watch::Sender<u64>,
}

impl Wakeups {
    pub(super) fn new(pool: &PgPool) -> Self {
        Self {
            options: (*pool.connect_options()).clone(),
            counters: OnceLock::new(),
            stop: CancellationToken::new(),
        }
    }

    /// A receiver that changes whenever jobs may have been enqueued by any process.
    /// Starts the listener task on the first call, so it needs a tokio runtime.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.counters().enqueued.subscribe()
    }

    /// A receiver that changes whenever jobs may have been deleted by any process.
    /// Starts the listener task on the first call, so it needs a tokio runtime.
    pub(super) fn subscribe_deletions(&self) -> watch::Receiver<u64> {
        self.counters().deleted.subscribe()
    }

    fn counters(&self) -> &Counters {
        self.counters.get_or_init(|| {
            let counters = Counters {
                enqueued: watch::channel(0).0,
                deleted: watch::channel(0).0,
            };
            tokio::spawn(listen(
                self.listener_pool(),
                counters.clone(),
                self.stop.clone(),
            ));
            counters
        })
    }

    /// A pool of one connection, for the listener alone.
    fn listener_pool(&self) -> PgPool {
        // Named apart from the pool's connections, so it is easy to tell in pg_stat_activity.
        let name = format!(
            "{} listener",
            self.options.get_application_name().unwrap_or("jobs")
        );
        let options = self.options.clone().application_name(&name);
        PgPoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options)
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn listen(pool: PgPool, counter: Counters, stop: CancellationToken) {
    let mut retry = FIRST_RETRY;
    loop {
        let error = tokio::select! {
            () = stop.cancelled() => return,
            error = session(&pool, &counter, &mut retry) => error,
        };
        match error {
            Some(error) => {
                tracing::warn!(%error, retry_in = ?retry, "lost the LISTEN connection for job wake-ups")
            }
            None => {
                tracing::warn!(retry_in = ?retry, "the LISTEN connection for job wake-ups closed")
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// Listens until the connection fails; returns the error, if there was one.
async fn session(pool: &PgPool, counter: &Counters, retry: &mut Duration) -> Option<sqlx::Error> {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(error) => return Some(error),
    };
    // Reconnecting is this task's job, with back-off, not the listener's.
    listener.eager_reconnect(false);
    // The channels of the schema the tables are in (see `jobs_channel`).
    let names: Result<(String, String), _> =
        sqlx::query_as("SELECT jobs_channel($1), jobs_channel($2)")
            .bind(CHANNEL)
            .bind(DELETIONS)
            .fetch_one(&mut listener)
            .await;
    let (enqueued, deleted) = match names {
        Ok(names) => names,
        Err(error) => return Some(error),
    };
    if let Err(error) = listener
        .listen_all([enqueued.as_str(), deleted.as_str()])
        .await
    {
        return Some(error);
    }
    *retry = FIRST_RETRY;
    bump(&counter.enqueued);
    bump(&counter.deleted);
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) if notification.channel() == deleted => bump(&counter.deleted),
            Ok(Some(_)) => bump(&counter.enqueued),
            Ok(None) => return None,
            Err(error) => return Some(error),
        }
    }
}

fn bump(counter: &watch::Sender<u64>) {
    counter.send_modify(|n| *n = n.wrapping_add(1));
}
