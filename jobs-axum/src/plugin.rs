//! Boot and shutdown: connect, start the worker server, serve the dashboard, and stop
//! it all gracefully when the app stops.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use jobs_core::{JobServer, JobServerBuilder, Jobs};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Error, JobsSettings, SettingsError, dashboard};

type AddState = Box<dyn FnOnce(JobServerBuilder) -> JobServerBuilder + Send>;

/// Configures a [`JobsPlugin`]: its settings and the state its jobs receive.
#[must_use = "a builder does nothing until `.start()` is awaited"]
pub struct JobsPluginBuilder {
    settings: JobsSettings,
    jobs: Option<Jobs>,
    states: Vec<AddState>,
}

impl fmt::Debug for JobsPluginBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobsPluginBuilder")
            .field("settings", &self.settings)
            .field("jobs", &self.jobs)
            .field("states", &self.states.len())
            .finish()
    }
}

impl JobsPluginBuilder {
    /// Makes `value` available to every job that takes a `State<T>` of its type, as
    /// `JobServerBuilder::state` does. Call once per type. The [`Jobs`] client is given
    /// to jobs without asking, so a job can enqueue the next one.
    pub fn state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.states
            .push(Box::new(move |server| server.state(value)));
        self
    }

    /// Uses this client (an existing pool, an injected clock) instead of connecting to
    /// `database_url`.
    pub fn jobs(mut self, jobs: Jobs) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Checks the settings, connects (running migrations), starts the worker server
    /// and the standalone dashboard as the settings ask.
    pub async fn start(self) -> Result<JobsPlugin, Error> {
        let settings = self.settings;
        settings.validate()?;
        let jobs = match self.jobs {
            Some(jobs) => jobs,
            None => Jobs::builder()
                .url(&settings.database_url)
                .connect_options(settings.connect_options())
                .connect()
                .await
                .map_err(Error::Connect)?,
        };
        // Bound before the server starts, so a busy port fails the boot with nothing
        // left running.
        let listener = if settings.dashboard.enabled {
            let addr = settings.dashboard.addr();
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::DashboardBind { addr, source })?;
            let addr = listener
                .local_addr()
                .map_err(|source| Error::DashboardBind { addr, source })?;
            Some((listener, addr))
        } else {
            None
        };
        // Before the server starts, so that its first figures reach the exporter.
        dashboard::install_exporter();
        let server = if settings.background_job_server.enabled {
            let builder = JobServer::builder(jobs.clone())
                .config(settings.server_config())
                .state(jobs.clone());
            let builder = self
                .states
                .into_iter()
                .fold(builder, |builder, add| add(builder));
            Some(builder.start().await.map_err(Error::Server)?)
        } else {
            tracing::info!("background_job_server.enabled is false: this process runs no jobs");
            None
        };

        let shutdown = CancellationToken::new();
        let live = dashboard::Live {
            metrics: server.as_ref().map(JobServer::metrics),
            stop: shutdown.clone(),
            clock: Some(jobs.clock().clone()),
        };
        // The dashboard reads through a pool of its own: open tabs over a big table
        // never take the connections the server claims and renews through.
        let dashboard_jobs =
            jobs.with_pool_of_its_own(settings.dashboard.pool_size, "jobs-dashboard");
        let dashboard_addr = listener.as_ref().map(|(_, addr)| *addr);
        let dashboard = listener.map(|(listener, addr)| {
            tracing::info!(
                "jobs dashboard at http://{addr}: {}",
                settings.dashboard.access()
            );
            let app = dashboard::router_with(&settings.dashboard, live.clone())
                .with_state(dashboard_jobs.clone());
            let stop = shutdown.clone().cancelled_owned();
            tokio::spawn(async move {
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                if let Err(error) = axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
                {
                    tracing::error!(%error, "the jobs dashboard stopped");
                }
            })
        });
        let stopped = tokio::spawn(stop_when_told(
            shutdown.clone(),
            server,
            dashboard,
            settings.background_job_server.shutdown_grace,
        ));
        Ok(JobsPlugin {
            jobs,
            dashboard_jobs,
            settings,
            live,
            dashboard_addr,
            shutdown,
            stopped: Some(stopped),
        })
    }
}

/// Waits for the shutdown signal, then stops the worker server (running jobs get the
/// grace period, the rest are released) and the dashboard, side by side.
async fn stop_when_told(
    shutdown: CancellationToken,
    server: Option<JobServer>,
    dashboard: Option<JoinHandle<()>>,
    grace: Duration,
) {
    shutdown.cancelled().await;
    tracing::info!("stopping jobs");
    let server = async {
        if let Some(server) = server {
            server.shutdown().await;
        }
    };
    let dashboard = async {
        if let Some(dashboard) = dashboard {
            // A browser may hold a connection open; it gets the grace period too.
            let abort = dashboard.abort_handle();
            if tokio::time::timeout(grace, dashboard).await.is_err() {
                abort.abort();
            }
        }
    };
    tokio::join!(server, dashboard);
}

/// The running plugin: the [`Jobs`] client, the worker server and the dashboard.
///
/// Stop it with [`shutdown`](Self::shutdown) once the app's server has returned. If it
/// is dropped instead, the shutdown is started in the background but nothing waits for
/// it, so jobs may be stopped mid-run when the runtime ends; they are rescued and run
/// again after `background_job_server.server_timeout`.
pub struct JobsPlugin {
    jobs: Jobs,
    /// The same database through a pool of its own (`dashboard.pool_size`).
    dashboard_jobs: Jobs,
    settings: JobsSettings,
    live: dashboard::Live,
    dashboard_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    stopped: Option<JoinHandle<()>>,
}

impl fmt::Debug for JobsPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobsPlugin")
            .field("jobs", &self.jobs)
            .field("settings", &self.settings)
            .field("dashboard_addr", &self.dashboard_addr)
            .field("shutting_down", &self.shutdown.is_cancelled())
            .finish()
    }
}

impl JobsPlugin {
    /// Starts building a plugin with these settings.
    pub fn builder(settings: JobsSettings) -> JobsPluginBuilder {
        JobsPluginBuilder {
            settings,
            jobs: None,
            states: Vec::new(),
        }
    }

    /// The client, for the app's state: handlers take it as `State<Jobs>`.
    pub fn jobs(&self) -> Jobs {
        self.jobs.clone()
    }

    /// A tower layer that puts the [`Jobs`] client into every request's extensions,
    /// for a router whose state type cannot change: its handlers take
    /// `Extension(jobs): Extension<Jobs>`. Cheap to clone, and starts nothing (the
    /// plugin has started the server already).
    ///
    /// ```rust,ignore
    /// let app = Router::new()
    ///     .route("/remind", post(remind)) // async fn remind(Extension(jobs): Extension<Jobs>, …)
    ///     .with_state(my_state)
    ///     .layer(plugin.layer());
    /// ```
    pub fn layer(&self) -> axum::Extension<Jobs> {
        axum::Extension(self.jobs.clone())
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &JobsSettings {
        &self.settings
    }

    /// Where the standalone dashboard listens (the port actually bound when
    /// `dashboard.port` is 0), if it is enabled.
    pub fn dashboard_addr(&self) -> Option<SocketAddr> {
        self.dashboard_addr
    }

    /// The dashboard's routes with this plugin's auth settings and its server's
    /// metrics, to nest into the app's own router
    /// (`.nest("/jobs", plugin.dashboard_router())`), typically with
    /// `dashboard.enabled = false`. It carries its own client, reading through a pool
    /// of its own (`dashboard.pool_size`), so it nests into a router of any state.
    ///
    /// Without credentials in the settings this is an error naming
    /// `dashboard.protected_upstream`, unless that setting says the app's own auth (or a
    /// proxy) stands in front of the dashboard, as [`dashboard::router`] says.
    pub fn dashboard_router<S>(&self) -> Result<Router<S>, SettingsError>
    where
        S: Clone + Send + Sync + 'static,
    {
        Ok(
            dashboard::nested::<Jobs>(&self.settings.dashboard, self.live.clone())?
                .with_state(self.dashboard_jobs.clone()),
        )
    }

    /// A future for `axum::serve(…).with_graceful_shutdown(…)`: it resolves on Ctrl-C,
    /// on SIGTERM (what `docker stop` and Kubernetes send) or on
    /// [`trigger_shutdown`](Self::trigger_shutdown), and starts stopping the jobs at
    /// once, side by side with the app's open requests.
    pub fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let shutdown = self.shutdown.clone();
        async move {
            tokio::select! {
                () = os_signal() => shutdown.cancel(),
                () = shutdown.cancelled() => {}
            }
        }
    }

    /// Makes every [`shutdown_signal`](Self::shutdown_signal) resolve and starts stopping
    /// the jobs: for apps with signal handling of their own, and for tests.
    pub fn trigger_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Stops gracefully and returns when done: the worker server claims nothing more,
    /// running jobs get `background_job_server.shutdown_grace` to finish, the rest are
    /// put back as `Enqueued` for the next server, and the dashboard closes.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(stopped) = self.stopped.take()
            && let Err(error) = stopped.await
        {
            tracing::error!(%error, "stopping jobs failed");
        }
    }
}

impl Drop for JobsPlugin {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Ctrl-C, or SIGTERM on Unix.
async fn os_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
