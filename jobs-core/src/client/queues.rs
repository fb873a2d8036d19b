//! The queues as the dashboard shows them: each queue's unfinished jobs by state,
//! whether it is paused, the limits and rates the servers declare for it, and how many
//! of its jobs wait because its rate is used up.

use std::collections::{BTreeMap, BTreeSet};

use super::Jobs;
use crate::job::info::{PauseKind, QueueInfo, QueueLimit, QueuePause};
use crate::storage::{AdminStore, RateStore, counted_for, queue_scope};
use crate::{Rate, Result};

impl Jobs {
    /// Every queue known: those with jobs `Enqueued`, `Scheduled`, `Processing` or
    /// `Failed`, those paused, and those a server's row names (the queues it serves
    /// with `queues([…])`, or limits with `queue_limit` / `global_queue_limit` /
    /// `queue_rate`); by name. A queue whose jobs all finished and that nothing names
    /// is not listed.
    ///
    /// The counts read only the jobs in those states, through the index on the state,
    /// so a table of millions of succeeded jobs costs nothing here. A queue with a rate
    /// reads its starts within the window (one indexed read per rated queue): while
    /// they have reached the rate's count, its waiting jobs are `rate_limited`.
    pub async fn queues(&self) -> Result<Vec<QueueInfo>> {
        let storage = &self.inner.storage;
        let counts = storage.jobs_count_by_queue(self.now()).await?;
        let pauses = storage.pauses_list().await?;
        let servers = storage.servers_list().await?;
        let mut queues: BTreeMap<String, QueueInfo> = BTreeMap::new();
        for count in counts {
            let info = queue(&mut queues, &count.queue);
            info.waiting = count.waiting;
            info.scheduled = count.scheduled;
            info.running = count.running;
            info.failed = count.failed;
        }
        for pause in pauses.into_iter().filter(|p| p.kind == PauseKind::Queue) {
            queue(&mut queues, &pause.name).paused = Some(QueuePause {
                by: pause.by,
                at: pause.at,
            });
        }
        // Servers come by name, so each queue's limits do too. The strictest rate a
        // server declares for a queue decides whether it is used up.
        let mut rates: BTreeMap<String, Rate> = BTreeMap::new();
        for server in servers {
            let Some(declared) = server.queues else {
                continue;
            };
            for served in declared.served.iter().flatten() {
                queue(&mut queues, served);
            }
            let limited: BTreeSet<&String> = declared
                .limits
                .keys()
                .chain(declared.global_limits.keys())
                .chain(declared.rates.keys())
                .collect();
            for limited in limited {
                let rate = declared.rates.get(limited);
                if let Some(parsed) = rate.and_then(|rate| rate.parse::<Rate>().ok()) {
                    let strictest = rates.entry(limited.clone()).or_insert(parsed);
                    let per_second =
                        |rate: &Rate| f64::from(rate.count) / rate.period.as_secs_f64();
                    if per_second(&parsed) < per_second(strictest) {
                        *strictest = parsed;
                    }
                }
                queue(&mut queues, limited).limits.push(QueueLimit {
                    server: server.name.clone(),
                    server_id: server.id.clone(),
                    local: declared.limits.get(limited).copied(),
                    global: declared.global_limits.get(limited).copied(),
                    rate: rate.cloned(),
                });
            }
        }
        for (name, rate) in rates {
            let info = queue(&mut queues, &name);
            if info.waiting == 0 {
                continue;
            }
            let since = self.now() - counted_for(rate);
            let window = storage.rate_window(&queue_scope(&name), since).await?;
            if window.started >= u64::from(rate.count) {
                info.rate_limited = info.waiting;
            }
        }
        Ok(queues.into_values().collect())
    }
}

/// The entry of `name`, added with nothing counted if it is new.
fn queue<'a>(queues: &'a mut BTreeMap<String, QueueInfo>, name: &str) -> &'a mut QueueInfo {
    queues.entry(name.to_owned()).or_insert_with(|| QueueInfo {
        queue: name.to_owned(),
        waiting: 0,
        scheduled: 0,
        running: 0,
        failed: 0,
        paused: None,
        limits: Vec::new(),
        rate_limited: 0,
    })
}
