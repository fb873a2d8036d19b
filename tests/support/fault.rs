//! The fault-injection harness: the proxy and the execution log shared with
//! `jobs-bench soak` ([`proxy`]), a PostgreSQL server of the test's own that it stops and
//! starts ([`OwnPostgres`]), and a SQLite write lock held from another connection.

#![allow(dead_code, unreachable_pub, unused_imports)]

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tokio::time::Instant;

#[path = "../../jobs-bench/src/fault.rs"]
pub mod proxy;

pub use proxy::{ExecutionLog, FaultProxy, Mode, Run, monotonic_ns, overlaps};

/// The fault tests run one at a time: each starts several processes with short
/// timeouts, and two at once on a small machine would measure the machine.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `timeout`.
pub async fn wait_within<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; a race with other processes is
/// possible but unlikely).
pub fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A PostgreSQL server of the test's own: a cluster in a temporary directory (trust
/// auth, a free port on 127.0.0.1, its socket in the directory), run as the `postgres`
/// OS user when the test runs as root. Stopped and removed when dropped.
pub struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl OwnPostgres {
    /// Creates the cluster and starts it.
    pub fn start() -> Self {
        let bin = postgres_bin();
        let dir = tempfile::Builder::new()
            .prefix("jobs-own-pg-")
            .tempdir()
            .expect("temp dir");
        if running_as_root() {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster's directory");
        }
        let server = Self {
            bin,
            port: free_port(),
            dir,
        };
        server.run(
            "initdb",
            &[
                "-D",
                &server.data().display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        server.start_again();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &self.dir.path().join("log").display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the server like a crash (`-m immediate`: no checkpoint, clients cut off).
    pub fn crash(&self) {
        self.stop("immediate");
    }

    /// Stops the server with `mode` (`fast`, `immediate`).
    pub fn stop(&self, mode: &str) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                mode,
                "-w",
                "stop",
            ],
        );
    }

    /// Runs `program` of the server's binaries as the `postgres` OS user.
    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = as_postgres(&program);
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|error| panic!("{}: {error}", program.display()));
        assert!(
            output.status.success(),
            "{} {args:?}: {}\n{}{}",
            program.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .args(["-D", &self.data().display().to_string()])
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// A command running `program` as the `postgres` OS user when this process is root.
fn as_postgres(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The newest installed PostgreSQL's binaries (`/usr/lib/postgresql/<version>/bin`), or
/// the directory of `pg_ctl` on the `PATH`.
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let output = Command::new("sh")
        .args(["-c", "command -v pg_ctl"])
        .output()
        .expect("look for pg_ctl");
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        !path.is_empty(),
        "no PostgreSQL binaries (initdb, pg_ctl) found"
    );
    Path::new(&path)
        .parent()
        .expect("pg_ctl's directory")
        .to_owned()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Holds SQLite's write lock on the database at `url` (`BEGIN IMMEDIATE` on a connection
/// of its own) for `hold`, then commits.
pub async fn hold_sqlite_write_lock(url: &str, hold: Duration) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(url)
        .await
        .expect("lock holder connects");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .expect("take the write lock");
    tokio::time::sleep(hold).await;
    sqlx::query("COMMIT")
        .execute(&mut conn)
        .await
        .expect("release the write lock");
}

/// Whether another connection holds the write lock of the SQLite database at `url`.
pub async fn sqlite_write_locked(url: &str) -> bool {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(url)
        .expect("SQLite URL")
        .busy_timeout(Duration::ZERO)
        .connect()
        .await
        .expect("probe connects");
    match sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await {
        Ok(_) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
            false
        }
        Err(_) => true,
    }
}
