//! Fault injection shared by the fault tests (`tests/faults`, which include this file)
//! and `jobs-bench soak`: a TCP proxy in front of PostgreSQL that passes, blackholes or
//! resets connections on command, and an execution log that records when every
//! execution of a job started and ended, on one clock for every process of the host.
//!
//! # The proxy
//!
//! [`FaultProxy::start`] listens on `127.0.0.1:<free port>` and forwards each connection
//! to the upstream address. Its [`Mode`]:
//!
//! - [`Mode::Pass`] forwards bytes both ways.
//! - [`Mode::Blackhole`] stops forwarding in both directions without closing anything:
//!   open connections hang as on a network partition, new connections are accepted but
//!   not forwarded until the mode changes.
//! - [`Mode::Reset`] closes every connection with a TCP reset (`SO_LINGER` 0) and resets
//!   new ones at once, until the mode changes.
//!
//! An upstream that refuses (a stopped server) resets the client's connection.
//!
//! # The execution log
//!
//! A job calls [`ExecutionLog::start`] first thing and keeps the returned guard until it
//! ends: the guard writes the end when dropped, so an execution whose future the server
//! drops (deletion, timeout, self-fencing) ends there too. Lines are appended to one
//! file by every process with `CLOCK_MONOTONIC`, which all processes of a host share;
//! an execution whose process was killed never ends, and [`overlaps`] lets it end at the
//! kill.

// Shared by two crates: what one of them does not use is dead there, and items are `pub`
// for the tests to re-export.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a [`FaultProxy`] does with its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Forward nothing, close nothing.
    Blackhole,
    /// Reset every connection, old and new.
    Reset,
}

/// A TCP proxy in front of one upstream address; see the module documentation.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` on a free port of 127.0.0.1, passing.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let mode = Arc::new(watch::channel(Mode::Pass).0);
        let accept = tokio::spawn(accept(listener, upstream, Arc::clone(&mode)));
        Ok(Self { addr, mode, accept })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` (a `postgres://` URL) with its host and port replaced by the proxy's.
    pub fn url(&self, url: &str) -> String {
        with_address(url, self.addr)
    }

    /// Switches to `mode`, at once for every connection.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// The mode in force.
    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.mode.send_replace(Mode::Reset);
    }
}

/// `url` with the host and port of its authority replaced by `addr` (user and password
/// kept).
pub fn with_address(url: &str, addr: SocketAddr) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        panic!("not a URL: {url}");
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let user = match authority.rsplit_once('@') {
        Some((user, _)) => format!("{user}@"),
        None => String::new(),
    };
    format!("{scheme}://{user}{addr}{path}")
}

/// The host and port of a `postgres://` URL, resolved.
pub fn address_of(url: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    host.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("cannot resolve {host}"))
}

async fn accept(listener: TcpListener, upstream: SocketAddr, mode: Arc<watch::Sender<Mode>>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors, say: try again shortly rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = client.set_nodelay(true);
        tokio::spawn(forward(client, upstream, mode.subscribe()));
    }
}

/// Closes `stream` with a reset rather than a FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Waits until the mode lets bytes through; `Err` when it is (or becomes) `Reset`.
async fn passing(mode: &mut watch::Receiver<Mode>) -> Result<(), ()> {
    loop {
        match *mode.borrow_and_update() {
            Mode::Pass => return Ok(()),
            Mode::Reset => return Err(()),
            Mode::Blackhole => {}
        }
        if mode.changed().await.is_err() {
            return Err(());
        }
    }
}

async fn forward(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    // A connection accepted while blackholed waits; one accepted while resetting is reset.
    if passing(&mut mode).await.is_err() {
        return reset(client);
    }
    let mut server = match TcpStream::connect(upstream).await {
        Ok(server) => server,
        Err(_) => return reset(client),
    };
    let _ = server.set_nodelay(true);
    let mut client = client;
    let was_reset = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let mut reset_mode = mode.clone();
        tokio::select! {
            _ = pump(client_read, server_write, mode.clone()) => false,
            _ = pump(server_read, client_write, mode.clone()) => false,
            _ = reset_mode.wait_for(|mode| *mode == Mode::Reset) => true,
        }
    };
    if was_reset || *mode.borrow() == Mode::Reset {
        reset(client);
        reset(server);
    }
}

/// Copies `from` to `to` while the mode lets bytes through; bytes read when a blackhole
/// starts are held until it ends.
async fn pump(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    mut mode: watch::Receiver<Mode>,
) -> Result<(), ()> {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        passing(&mut mode).await?;
        let read = from.read(&mut buffer).await.map_err(drop)?;
        if read == 0 {
            return Ok(());
        }
        passing(&mut mode).await?;
        to.write_all(&buffer[..read]).await.map_err(drop)?;
    }
}

/// The environment variable naming the execution log's file, for child processes.
pub const EXECUTION_LOG: &str = "JOBS_EXECUTION_LOG";

/// Nanoseconds on `CLOCK_MONOTONIC`: one clock for every process of the host, never
/// stepped.
pub fn monotonic_ns() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(now.tv_sec).expect("monotonic seconds") * 1_000_000_000
        + u64::try_from(now.tv_nsec).expect("monotonic nanoseconds")
}

/// An append-only file of execution starts and ends, shared by processes.
#[derive(Debug, Clone)]
pub struct ExecutionLog {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

static NEXT_EXECUTION: AtomicU64 = AtomicU64::new(0);

impl ExecutionLog {
    /// Opens (creating) the log at `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_owned();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(Self {
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// The log named by [`EXECUTION_LOG`] in the environment.
    pub fn from_env() -> Self {
        let path = std::env::var(EXECUTION_LOG).expect("an execution log is given");
        Self::open(path).expect("open the execution log")
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records that attempt `attempt` of job `job` (of kind `kind`, one word) starts in
    /// this process; the guard records its end when dropped.
    pub fn start(&self, job: uuid::Uuid, attempt: u32, kind: &str) -> Execution {
        let key = format!(
            "{}:{}",
            std::process::id(),
            NEXT_EXECUTION.fetch_add(1, Ordering::Relaxed)
        );
        self.line(&format!(
            "S {key} {job} {attempt} {kind} {}",
            monotonic_ns()
        ));
        Execution {
            log: self.clone(),
            key,
        }
    }

    /// Appends a free-form mark (`M <word> <ns>`), e.g. when a fault began.
    pub fn mark(&self, word: &str) {
        self.line(&format!("M {word} {}", monotonic_ns()));
    }

    fn line(&self, line: &str) {
        let mut file = self.file.lock().expect("log lock");
        // One write per line: appends of a few bytes from many processes do not mix.
        file.write_all(format!("{line}\n").as_bytes())
            .expect("write the execution log");
    }

    /// Every execution recorded so far, in order of start.
    pub fn runs(&self) -> Vec<Run> {
        read_runs(&self.path).expect("read the execution log")
    }

    /// The marks recorded so far: word and time.
    pub fn marks(&self) -> Vec<(String, u64)> {
        let text = std::fs::read_to_string(&self.path).expect("read the execution log");
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split(' ');
                (fields.next()? == "M").then_some(())?;
                Some((fields.next()?.to_owned(), fields.next()?.parse().ok()?))
            })
            .collect()
    }
}

/// One execution in progress; dropping it records its end.
#[derive(Debug)]
pub struct Execution {
    log: ExecutionLog,
    key: String,
}

impl Drop for Execution {
    fn drop(&mut self) {
        self.log.line(&format!("E {} {}", self.key, monotonic_ns()));
    }
}

/// One execution of a job, as the log has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The job.
    pub job: uuid::Uuid,
    /// Its attempt, as the job saw it.
    pub attempt: u32,
    /// The kind the job gave.
    pub kind: String,
    /// The process it ran in.
    pub pid: u32,
    /// When it started (monotonic nanoseconds).
    pub start: u64,
    /// When it ended, if it did.
    pub end: Option<u64>,
}

/// Reads the executions recorded at `path`, in order of start.
pub fn read_runs(path: &Path) -> io::Result<Vec<Run>> {
    let text = std::fs::read_to_string(path)?;
    let mut runs: Vec<Run> = Vec::new();
    let mut by_key: HashMap<&str, usize> = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["S", key, job, attempt, kind, at] => {
                let (Ok(job), Ok(attempt), Ok(start)) = (job.parse(), attempt.parse(), at.parse())
                else {
                    continue;
                };
                let pid = key
                    .split(':')
                    .next()
                    .and_then(|pid| pid.parse().ok())
                    .unwrap_or(0);
                by_key.insert(key, runs.len());
                runs.push(Run {
                    job,
                    attempt,
                    kind: (*kind).to_owned(),
                    pid,
                    start,
                    end: None,
                });
            }
            ["E", key, at] => {
                if let (Some(&index), Ok(end)) = (by_key.get(key), at.parse()) {
                    runs[index].end = Some(end);
                }
            }
            _ => {}
        }
    }
    runs.sort_by_key(|run| run.start);
    Ok(runs)
}

/// Two executions of one job that ran at the same time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// The job.
    pub job: uuid::Uuid,
    /// The earlier execution: attempt and process.
    pub first: (u32, u32),
    /// The later one, which started before the earlier ended.
    pub second: (u32, u32),
    /// How long they overlapped, in milliseconds (so far, if both still run).
    pub millis: u64,
}

/// Every pair of executions of one job that overlap in time. An execution that never
/// ended ends at its process's time in `killed` (a SIGKILL), else it is still running.
pub fn overlaps(runs: &[Run], killed: &HashMap<u32, u64>) -> Vec<Overlap> {
    let mut by_job: HashMap<uuid::Uuid, Vec<&Run>> = HashMap::new();
    for run in runs {
        by_job.entry(run.job).or_default().push(run);
    }
    let end = |run: &Run| {
        run.end
            .or_else(|| killed.get(&run.pid).copied())
            .unwrap_or(u64::MAX)
    };
    let now = monotonic_ns();
    let mut found = Vec::new();
    for (job, mut runs) in by_job {
        runs.sort_by_key(|run| run.start);
        for (i, earlier) in runs.iter().enumerate() {
            for later in &runs[i + 1..] {
                let earlier_end = end(earlier);
                if later.start < earlier_end {
                    found.push(Overlap {
                        job,
                        first: (earlier.attempt, earlier.pid),
                        second: (later.attempt, later.pid),
                        millis: earlier_end
                            .min(end(later))
                            .min(now)
                            .saturating_sub(later.start)
                            / 1_000_000,
                    });
                }
            }
        }
    }
    found
}
