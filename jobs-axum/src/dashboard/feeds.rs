//! Shared snapshots for live updates: one reader per topic, however many streams watch it.
//!
//! A topic (the counts, the servers, the queues, one page of the job list, one job…) is read by one
//! task about every 750 ms while at least one stream watches it, and the result is
//! published on a `watch` channel that every stream of that topic reads. Two hundred
//! open tabs on the overview cost the database one count per interval, not two hundred.
//! The task ends when its last watcher leaves, or when the dashboard stops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jobs_core::{BatchId, JobId, JobQuery, Jobs};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::api::{
    ApiError, batch_detail, job_detail, read_queues, read_recurring, read_servers, read_stats,
    read_throughput,
};
use super::metrics::count_snapshot_read;

/// How often a topic is read again, at least.
pub(super) const ROUND: Duration = Duration::from_millis(750);

/// How often throughput is read when no job changed state: often enough to roll the
/// chart over to the next minute.
const THROUGHPUT_EVERY: Duration = Duration::from_secs(10);

/// What a stream can watch, and what one reader shares.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Topic {
    Stats,
    Throughput,
    Servers,
    Recurring,
    Queues,
    /// A page of the job list.
    Jobs(ListPage),
    Job(JobId),
    /// A batch's progress and a page of its members.
    Batch(BatchId, ListPage),
}

impl Topic {
    /// The event it is sent as, and its label on the read counter.
    pub(super) fn event(&self) -> &'static str {
        match self {
            Topic::Stats => "stats",
            Topic::Throughput => "throughput",
            Topic::Servers => "servers",
            Topic::Recurring => "recurring",
            Topic::Queues => "queues",
            Topic::Jobs(_) => "jobs",
            Topic::Job(_) => "job",
            Topic::Batch(..) => "batch",
        }
    }
}

/// A page of the job list as a topic: its query, told apart by the query's `Debug`
/// text (equal queries, equal keys).
#[derive(Debug, Clone)]
pub(super) struct ListPage {
    key: String,
    query: JobQuery,
}

impl ListPage {
    pub(super) fn new(query: JobQuery) -> Self {
        Self {
            key: format!("{query:?}"),
            query,
        }
    }
}

impl PartialEq for ListPage {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for ListPage {}

impl std::hash::Hash for ListPage {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

/// The latest read of a topic: its JSON, or the message of the error that read got.
pub(super) type Snapshot = Result<Arc<str>, Arc<str>>;

type Published = Option<Snapshot>;

/// Every topic being read, shared by the streams of one dashboard.
#[derive(Debug, Clone, Default)]
pub(super) struct Feeds(Arc<Mutex<Topics>>);

/// The topics being read, and the generation the next feed gets.
#[derive(Debug, Default)]
struct Topics {
    feeds: HashMap<Topic, Feed>,
    next_generation: u64,
}

#[derive(Debug)]
struct Feed {
    sender: watch::Sender<Published>,
    /// Tells this feed from a later one of the same topic.
    generation: u64,
}

/// What a reader of a topic needs.
struct Reader {
    feeds: Feeds,
    jobs: Jobs,
    topic: Topic,
    sender: watch::Sender<Published>,
    generation: u64,
    stop: CancellationToken,
}

impl Feeds {
    /// A receiver of `topic`'s snapshots, marked changed so that the stream sends the
    /// latest one at once (if there is one yet). The topic's reader starts with its
    /// first watcher.
    pub(super) fn watch(
        &self,
        jobs: &Jobs,
        topic: Topic,
        stop: &CancellationToken,
    ) -> watch::Receiver<Published> {
        let mut topics = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(feed) = topics.feeds.get(&topic)
            && !stop.is_cancelled()
        {
            let mut receiver = feed.sender.subscribe();
            receiver.mark_changed();
            return receiver;
        }
        let (sender, receiver) = watch::channel(None);
        topics.next_generation += 1;
        let generation = topics.next_generation;
        topics.feeds.insert(
            topic.clone(),
            Feed {
                sender: sender.clone(),
                generation,
            },
        );
        drop(topics);
        let reader = Reader {
            feeds: self.clone(),
            jobs: jobs.clone(),
            topic,
            sender,
            generation,
            stop: stop.clone(),
        };
        tokio::spawn(reader.run());
        receiver
    }

    /// Forgets the feed of `topic` of `generation` if nobody watches it any more →
    /// whether its reader is to end.
    fn leave(&self, topic: &Topic, generation: u64, force: bool) -> bool {
        let mut topics = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(feed) = topics.feeds.get(topic) else {
            return true;
        };
        if feed.generation != generation {
            return true;
        }
        if !force && feed.sender.receiver_count() > 0 {
            return false;
        }
        topics.feeds.remove(topic);
        true
    }

    /// How many topics are being read (for tests).
    #[cfg(all(test, feature = "sqlite"))]
    fn len(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .feeds
            .len()
    }
}

impl Reader {
    async fn run(self) {
        // Throughput is read again when the counts change, or every ten seconds.
        let mut stats = matches!(self.topic, Topic::Throughput)
            .then(|| self.feeds.watch(&self.jobs, Topic::Stats, &self.stop));
        // What the last published snapshot is compared by, where not by its JSON.
        let mut last_key = None;
        loop {
            let started = Instant::now();
            let (snapshot, key) = self.read().await;
            count_snapshot_read(self.topic.event());
            let key_changed = key.is_none() || key != last_key;
            last_key = key;
            self.sender.send_if_modified(|published| {
                let modified = key_changed && published.as_ref() != Some(&snapshot);
                if modified {
                    *published = Some(snapshot);
                }
                modified
            });
            // A slow read (a huge table, a slow database) spaces the next ones out.
            let pause = ROUND.max(started.elapsed() * 2);
            let next = async {
                tokio::time::sleep(pause).await;
                if let Some(stats) = &mut stats {
                    let rest = THROUGHPUT_EVERY.saturating_sub(pause);
                    let _ = tokio::time::timeout(rest, stats.changed()).await;
                }
            };
            tokio::select! {
                () = self.stop.cancelled() => {
                    self.feeds.leave(&self.topic, self.generation, true);
                    return;
                }
                () = self.sender.closed() => {
                    if self.feeds.leave(&self.topic, self.generation, false) {
                        return;
                    }
                }
                () = next => {}
            }
        }
    }

    /// A snapshot of the topic, and what it is compared by where not by its JSON: the
    /// servers and unserved names without `now`, which changes every round.
    async fn read(&self) -> (Snapshot, Option<String>) {
        let jobs = &self.jobs;
        let read = match &self.topic {
            Topic::Stats => read_stats(jobs).await.map(|stats| (encode(&stats), None)),
            Topic::Throughput => read_throughput(jobs)
                .await
                .map(|points| (encode(&points), None)),
            Topic::Servers => read_servers(jobs).await.map(|servers| {
                let key = encode(&(&servers.items, &servers.unserved));
                (encode(&servers), Some(key))
            }),
            Topic::Recurring => read_recurring(jobs)
                .await
                .map(|recurring| (encode(&recurring), None)),
            Topic::Queues => read_queues(jobs)
                .await
                .map(|queues| (encode(&queues), None)),
            Topic::Jobs(page) => jobs
                .list(page.query.clone())
                .await
                .map(|page| (encode(&page), None))
                .map_err(ApiError::from),
            Topic::Job(id) => job_detail(jobs, *id).await.map(|job| (encode(&job), None)),
            Topic::Batch(id, page) => batch_detail(jobs, *id, page.query.clone())
                .await
                .map(|batch| (encode(&batch), None)),
        };
        match read {
            Ok((json, key)) => (Ok(json.into()), key),
            Err(error) => (Err(error.message().into()), None),
        }
    }
}

fn encode(data: &impl Serialize) -> String {
    serde_json::to_string(data).unwrap_or_else(|error| {
        serde_json::json!({ "error": format!("cannot encode: {error}") }).to_string()
    })
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    async fn jobs() -> (tempfile::TempDir, Jobs) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
        let jobs = Jobs::connect(&url).await.unwrap();
        (dir, jobs)
    }

    #[tokio::test]
    async fn watchers_of_a_topic_share_one_reader_that_ends_with_the_last() {
        let (_dir, jobs) = jobs().await;
        let feeds = Feeds::default();
        let stop = CancellationToken::new();
        let mut first = feeds.watch(&jobs, Topic::Stats, &stop);
        let mut second = feeds.watch(&jobs, Topic::Stats, &stop);
        assert_eq!(feeds.len(), 1, "one reader for one topic");
        first.changed().await.unwrap();
        second.changed().await.unwrap();
        assert_eq!(*first.borrow(), *second.borrow());
        assert!(matches!(&*first.borrow(), Some(Ok(json)) if json.contains("\"counts\"")));

        drop(first);
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), async {
            while feeds.len() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the reader ends with its last watcher");
        // A new watcher starts a new reader.
        let mut third = feeds.watch(&jobs, Topic::Stats, &stop);
        third.changed().await.unwrap();
        assert_eq!(feeds.len(), 1);
        stop.cancel();
        assert!(third.changed().await.is_err(), "the reader ends at stop");
    }
}
