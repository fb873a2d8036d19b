//! Open dashboards on a big table: a drain of no-op jobs with many live-update streams
//! open (tabs on the overview) and without, and how often the streams' topics are read
//! from the store while they are open.
//!
//! The table is filled as for the list figure, every job finished (succeeded, failed or
//! deleted), with the library's own triggers. The dashboard is the plugin's, on a port
//! of its own, reading through its own pool; the drain runs on a client and server of
//! its own, as in the drain figure. The drains run without, with, then without the
//! streams again: the machine's speed drifts, so the streams' run is compared with the
//! mean of the two around it.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use jobs::axum::{JobsPlugin, JobsSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::db::{Client, Raw, Scratch};
use crate::stats::rate;
use crate::work::{self, Noop};
use crate::{enqueue, list};

/// What one tab of the overview watches (the counts are always sent).
const OVERVIEW: &str = "/api/events?topics=throughput,servers,jobs&state=Failed&limit=10";

/// The topics an overview stream watches: stats, throughput, servers, jobs.
pub(crate) const TOPICS: usize = 4;

/// How often the dashboard reads a watched topic, at least.
const ROUND: Duration = Duration::from_millis(750);

/// The fewest rounds the reads are counted over.
const MIN_ROUNDS: u32 = 8;

/// What the figure measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    /// Jobs per second without streams: the mean of the runs before and after.
    pub(crate) without: f64,
    /// Jobs per second with the streams open.
    pub(crate) with: f64,
    /// Reads of the store for live updates per round while the streams were open.
    pub(crate) reads_per_round: f64,
    /// How long filling the table took.
    pub(crate) load: Duration,
}

/// Fills a table of `rows` finished jobs, then drains `n` no-op jobs with `workers`
/// workers, without and with `streams` open live-update streams.
pub(crate) async fn run(
    scratch: &Scratch,
    rows: usize,
    streams: usize,
    n: usize,
    workers: usize,
) -> Result<Measured> {
    scratch.migrate().await?;
    let mut raw = Raw::connect(scratch.url()).await?;
    let started = Instant::now();
    list::fill_finished(&mut raw, rows).await?;
    let load = started.elapsed();
    raw.close().await?;

    let mut settings = JobsSettings::default();
    settings.database_url = scratch.url().to_owned();
    settings.dashboard.port = 0;
    settings.dashboard.max_event_streams = streams.max(1);
    settings.background_job_server.enabled = false;
    let plugin = JobsPlugin::builder(settings).start().await?;
    let addr = plugin
        .dashboard_addr()
        .context("the plugin serves a dashboard")?
        .to_string();

    let before = drain(scratch, n, workers).await?;
    eprintln!("   without streams: {before:.0} jobs/s");
    let reads = snapshot_reads(&addr).await?;
    let since = Instant::now();
    let mut open = JoinSet::new();
    for _ in 0..streams {
        let stream = Stream::open(&addr).await?;
        open.spawn(stream.read_on());
    }
    // Every stream has had its first events before the drain starts.
    tokio::time::sleep(ROUND * 2).await;
    let with = drain(scratch, n, workers).await?;
    // The reads are counted over several rounds however short the drain.
    tokio::time::sleep((ROUND * MIN_ROUNDS).saturating_sub(since.elapsed())).await;
    let reads = snapshot_reads(&addr).await? - reads;
    let rounds = since.elapsed().as_secs_f64() / ROUND.as_secs_f64();
    ensure!(
        open.len() == streams,
        "{} streams ended during the drain",
        streams - open.len()
    );
    open.abort_all();
    eprintln!("   with {streams} streams: {with:.0} jobs/s, {reads} reads in {rounds:.1} rounds");
    let after = drain(scratch, n, workers).await?;
    eprintln!("   without streams again: {after:.0} jobs/s");
    plugin.shutdown().await;
    Ok(Measured {
        without: f64::midpoint(before, after),
        with,
        reads_per_round: reads / rounds,
        load,
    })
}

/// Drains `n` no-op jobs enqueued beforehand → jobs per second.
async fn drain(scratch: &Scratch, n: usize, workers: usize) -> Result<f64> {
    let filler = Client::open(scratch, None).await?;
    enqueue::backlog(&filler.jobs, n, |n| Noop { n }).await?;
    filler.close().await;
    let client = Client::open(scratch, None).await?;
    let mut probe = Raw::connect(scratch.url()).await?;
    let (server, elapsed) =
        work::serve_until_done(client.jobs.clone(), workers, n, &mut probe).await?;
    server.shutdown().await;
    client.close().await;
    probe.close().await?;
    Ok(rate(n, elapsed))
}

/// One open live-update stream, read and thrown away as a browser tab would.
struct Stream(TcpStream);

impl Stream {
    async fn open(addr: &str) -> Result<Self> {
        let mut socket = TcpStream::connect(addr).await?;
        socket
            .write_all(
                format!(
                    "GET {OVERVIEW} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
                )
                .as_bytes(),
            )
            .await?;
        let mut head = [0; 12];
        socket.read_exact(&mut head).await?;
        if &head != b"HTTP/1.1 200" {
            bail!(
                "the event stream answered {:?}",
                String::from_utf8_lossy(&head)
            );
        }
        Ok(Self(socket))
    }

    /// Reads until the dashboard ends the stream.
    async fn read_on(mut self) {
        let mut buffer = vec![0; 16 * 1024];
        while matches!(self.0.read(&mut buffer).await, Ok(read) if read > 0) {}
    }
}

/// The dashboard's reads for live updates so far, from its `/metrics`.
async fn snapshot_reads(addr: &str) -> Result<f64> {
    let mut socket = TcpStream::connect(addr).await?;
    socket
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await?;
    Ok(answer
        .lines()
        .filter(|line| line.starts_with("jobs_dashboard_snapshot_reads_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}
