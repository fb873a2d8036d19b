//! What every example does around its own routes: logs, and serving the app until
//! Ctrl-C or SIGTERM, then stopping the jobs gracefully.

use axum::Router;
use jobs::axum::JobsPlugin;
use tokio::net::TcpListener;

/// Logs to stderr; `RUST_LOG` picks the levels (default: `info`).
pub(crate) fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Serves `routes` on `127.0.0.1:$PORT` (default 3000) until Ctrl-C or SIGTERM, then
/// stops the jobs: running ones get the grace period to finish, the rest are put back
/// for the next start.
pub(crate) async fn serve(plugin: JobsPlugin, routes: Router) -> anyhow::Result<()> {
    let listener = listen(&plugin).await?;
    axum::serve(listener, routes)
        .with_graceful_shutdown(plugin.shutdown_signal())
        .await?;
    plugin.shutdown().await;
    Ok(())
}

/// Listens on `127.0.0.1:$PORT` (default 3000) and prints where the app and the
/// dashboard are.
async fn listen(plugin: &JobsPlugin) -> anyhow::Result<TcpListener> {
    let port = match std::env::var("PORT") {
        Ok(port) => port
            .parse::<u16>()
            .map_err(|_| anyhow::anyhow!("PORT: expected a port number, got {port:?}"))?,
        Err(_) => 3000,
    };
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|error| anyhow::anyhow!("PORT: cannot listen on 127.0.0.1:{port}: {error}"))?;
    println!("app:       http://{}", listener.local_addr()?);
    if let Some(addr) = plugin.dashboard_addr() {
        println!("dashboard: http://{addr}");
    }
    Ok(listener)
}
