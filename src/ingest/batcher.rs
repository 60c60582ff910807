//! Group commit. HTTP handlers submit their validated records and wait; writer tasks take
//! everything queued (up to `max_rows`), store it in one transaction, and answer every request
//! in it only after COMMIT. Memory is bounded by a row budget: a request that does not fit is
//! refused at once (503 + Retry-After), never queued.
//!
//! Writers work in parallel only on big batches. A transaction costs the database a fixed amount
//! (BEGIN, COPY set-up, the rollup and pattern inserts, the WAL flush at COMMIT) besides its rows,
//! so a second writer committing a few dozen rows while the first commits costs more than it
//! saves: at most one small transaction (< `parallel_min_rows`) commits at a time, and the next
//! small batch keeps gathering requests until it is done. Measured with 30-row requests over 16
//! connections: one small transaction at a time stored ~1.6x the rows/s of three.
//!
//! With `follow_up` set, a small batch, once its turn comes, also waits (at most `follow_up`
//! after the answers) for as many requests as the previous small commit acknowledged: senders
//! that keep a fixed number of requests in flight (shippers, SDK exporters, load tools) send the
//! next one as soon as one is answered. Without the wait, those senders and the ones that queued
//! during the commit form two groups that commit in turn; with it, they share one transaction and
//! one WAL flush. Which is faster depends on the machine (30-row requests over 16 connections,
//! here): the two groups overlap one group's round trip to its senders with the other's commit,
//! ~1.2x the rows/s of one group on an idle machine; one group makes half the transactions
//! (~2,100 instead of ~3,700 per million rows) and ~15% less database CPU per row, ~1.2x the
//! rows/s of two groups when the CPU is saturated. Off by default: `scripts/bench.sh ingest`'s
//! case (c) stored 149-155k rows/s with 2 ms against 188-192k without (two alternated pairs).
//!
//! While a small batch waits (for its turn, then for follow-ups) its writer already has a
//! transaction with a COPY open, and sends each request's rows as it arrives
//! (`copy_sink::Open`): the database parses them meanwhile instead of after the batch closes. The
//! COPY is held open only on the writer's own connection and only for those bounded waits (one
//! commit, then `follow_up`), so it stalls nothing else (FIELD-NOTES warns against a COPY left
//! open on a shared connection). If anything fails before COMMIT, nothing of the transaction is
//! stored and the batch is written again the ordinary way, with its per-request retries.
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use super::LogRecord;
use super::copy_sink::{CopySink, Encoded, Open, SinkError};
use super::error::IngestError;
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct BatcherConfig {
    /// Writer tasks, each with its own connection: while one commits, another copies.
    pub writers: usize,
    /// Rows accepted but not yet committed, across all requests (the memory bound).
    pub max_queued_rows: usize,
    /// Most rows per transaction.
    pub max_batch_rows: usize,
    /// How long a writer waits for more requests before writing a small batch (0 = never).
    pub linger: Duration,
    /// Batches this big are committed alongside others; smaller ones one at a time.
    pub parallel_min_rows: usize,
    /// How long after a small commit's answers the next small batch waits for those senders to
    /// send again (0 = never).
    pub follow_up: Duration,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        BatcherConfig {
            writers: 3,
            max_queued_rows: 200_000,
            max_batch_rows: 20_000,
            linger: Duration::ZERO,
            parallel_min_rows: 1_000,
            follow_up: Duration::ZERO,
        }
    }
}

struct Job {
    rows: Encoded,
    /// When it was queued: senders answered before it cannot be the ones it stands for.
    queued: Instant,
    done: oneshot::Sender<Result<u64, IngestError>>,
    _budget: OwnedSemaphorePermit,
}

#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::UnboundedSender<Job>,
    budget: Arc<Semaphore>,
    max_queued_rows: usize,
}

impl Batcher {
    pub fn start(database_url: String, cfg: BatcherConfig, metrics: Arc<Metrics>) -> Batcher {
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        let small = Arc::new(Small::default());
        for _ in 0..cfg.writers.max(1) {
            tokio::spawn(writer(database_url.clone(), rx.clone(), small.clone(), cfg.clone(), metrics.clone()));
        }
        Batcher {
            queue: tx,
            budget: Arc::new(Semaphore::new(cfg.max_queued_rows)),
            max_queued_rows: cfg.max_queued_rows,
        }
    }

    /// Rows accepted and not yet committed.
    pub fn queued_rows(&self) -> usize {
        self.max_queued_rows - self.budget.available_permits()
    }

    /// Stores `records`; returns once they are committed (or failed).
    pub async fn submit(&self, records: Vec<LogRecord>) -> Result<u64, IngestError> {
        if records.is_empty() {
            return Ok(0);
        }
        let n = u32::try_from(records.len()).unwrap_or(u32::MAX);
        let budget =
            self.budget.clone().try_acquire_many_owned(n).map_err(|_| IngestError::Overloaded(self.queued_rows()))?;
        // encoded here, on the request's task: requests run in parallel, commits one at a time
        let rows = Encoded::new(records).map_err(|e| IngestError::Rejected(e.to_string()))?;
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Job { rows, done, queued: Instant::now(), _budget: budget })
            .map_err(|_| IngestError::Unavailable("ingest writers stopped".into()))?;
        wait.await.unwrap_or_else(|_| Err(IngestError::Unavailable("ingest writer stopped".into())))
    }
}

/// The one small transaction in flight, and what the last one answered.
struct Small {
    turn: Arc<Semaphore>,
    /// When the last small commit answered its requests, and how many it acknowledged.
    answered: std::sync::Mutex<Option<(Instant, usize)>>,
}

impl Default for Small {
    fn default() -> Self {
        Small { turn: Arc::new(Semaphore::new(1)), answered: std::sync::Mutex::new(None) }
    }
}

async fn writer(
    url: String,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
    small: Arc<Small>,
    cfg: BatcherConfig,
    metrics: Arc<Metrics>,
) {
    let mut sink: Option<CopySink> = None;
    // After a failed connect, requests are refused at once (503) until the next attempt is due:
    // a database outage costs one connect attempt (and one log line) per interval, not per request.
    let mut next_connect = Instant::now();
    let mut last_error = String::new();
    let small_below = cfg.parallel_min_rows.min(cfg.max_batch_rows);
    loop {
        let mut queue = rx.lock().await;
        let Some(first) = queue.recv().await else { return };
        let mut batch = Gathered { rows: first.rows.len(), jobs: vec![first] };
        let deadline = Instant::now() + cfg.linger;
        while batch.rows < cfg.max_batch_rows {
            let next = match queue.try_recv() {
                Ok(j) => Some(j),
                Err(_) if cfg.linger.is_zero() => None,
                Err(_) => tokio::time::timeout_at(deadline, queue.recv()).await.ok().flatten(),
            };
            let Some(j) = next else { break };
            batch.push(j);
        }
        let mut turn = None;
        let mut open = None;
        if batch.rows < small_below {
            // The rows go into an open COPY at once, so that the database copies them while the
            // batch waits: for its turn, then for follow-ups. Without a connection, or if the
            // COPY cannot start, they are written at commit instead.
            if let Some(s) = sink.as_ref().filter(|s| !s.is_closed())
                && let Some(hour) = batch.jobs[0].rows.first_hour()
            {
                match s.open(hour).await {
                    Ok(mut o) => {
                        o.send(&batch.since(0)).await;
                        open = Some(o);
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot open a COPY early; writing at commit"),
                }
            }
            // A small batch waits (still gathering, the queue still held) while another small
            // one commits, unless it grows big meanwhile.
            let acquire = small.turn.clone().acquire_owned();
            tokio::pin!(acquire);
            while batch.rows < small_below {
                tokio::select! {
                    biased;
                    permit = &mut acquire => {
                        turn = Some(permit.expect("the semaphore is never closed"));
                        break;
                    }
                    next = queue.recv() => match next {
                        Some(j) => {
                            batch.push(j);
                            batch.send_last(&mut open, 1).await;
                        }
                        None => break,
                    },
                }
            }
            let before = batch.jobs.len();
            while batch.rows < cfg.max_batch_rows {
                let Ok(j) = queue.try_recv() else { break };
                batch.push(j);
            }
            batch.send_last(&mut open, batch.jobs.len() - before).await;
            // The senders the last small commit answered: wait for as many requests queued
            // after their answers as there were answers, for at most `follow_up` after them.
            let answered = if turn.is_some() { small.answered.lock().expect("answered").take() } else { None };
            if let Some((at, n)) = answered.filter(|_| !cfg.follow_up.is_zero()) {
                let deadline = at + cfg.follow_up;
                let mut back = batch.jobs.iter().filter(|j| j.queued >= at).count();
                while back < n && batch.rows < small_below {
                    let Ok(Some(j)) = tokio::time::timeout_at(deadline, queue.recv()).await else { break };
                    batch.push(j);
                    batch.send_last(&mut open, 1).await;
                    back += 1;
                }
            }
        }
        drop(queue);
        let answered = match open {
            Some(open) => {
                let started = Instant::now();
                let result = open.commit(&batch.since(0)).await;
                let jobs = batch.jobs;
                match result {
                    Ok(_) => {
                        metrics.observe_commit(batch.rows, started.elapsed(), true);
                        answer(jobs)
                    }
                    Err(e) => {
                        // Nothing of it was stored: write it again the usual way, which retries
                        // per request or after creating a missing partition.
                        tracing::debug!(error = %e, "early COPY failed; writing its batch again");
                        commit(sink.as_ref().expect("connected"), jobs, &metrics).await
                    }
                }
            }
            None => {
                if sink.as_ref().is_none_or(|s| s.is_closed()) {
                    let connected = if Instant::now() < next_connect {
                        Err(last_error.clone())
                    } else {
                        CopySink::connect(&url).await.map_err(|e| {
                            tracing::warn!(error = %e, "ingest writer cannot connect; refusing requests for 500 ms");
                            next_connect = Instant::now() + std::time::Duration::from_millis(500);
                            last_error = e.to_string();
                            last_error.clone()
                        })
                    };
                    sink = match connected {
                        Ok(s) => Some(s),
                        Err(e) => {
                            let err = IngestError::Unavailable(e);
                            for j in batch.jobs {
                                let _ = j.done.send(Err(err.clone()));
                            }
                            continue;
                        }
                    };
                }
                commit(sink.as_ref().expect("connected"), batch.jobs, &metrics).await
            }
        };
        if turn.is_some() {
            // published before the turn passes on (`turn` drops below)
            *small.answered.lock().expect("answered") = Some((Instant::now(), answered));
        }
        drop(turn);
    }
}

/// The jobs of a batch being gathered.
struct Gathered {
    jobs: Vec<Job>,
    rows: usize,
}

impl Gathered {
    fn push(&mut self, j: Job) {
        self.rows += j.rows.len();
        self.jobs.push(j);
    }

    fn since(&self, from: usize) -> Vec<&Encoded> {
        self.jobs[from..].iter().map(|j| &j.rows).collect()
    }

    /// Sends the last `n` jobs' rows into the open COPY, if there is one.
    async fn send_last(&self, open: &mut Option<Open<'_>>, n: usize) {
        if let Some(o) = open.as_mut()
            && n > 0
        {
            o.send(&self.since(self.jobs.len() - n)).await;
        }
    }
}

/// Acknowledges every job of a committed batch; returns how many.
fn answer(jobs: Vec<Job>) -> usize {
    let acknowledged = jobs.len();
    for j in jobs {
        let n = j.rows.len() as u64;
        let _ = j.done.send(Ok(n));
    }
    acknowledged
}

/// Writes jobs in one transaction and answers each. If the database refuses the data, each job is
/// retried alone, so one bad request cannot fail its neighbours. Returns how many it acknowledged.
async fn commit(sink: &CopySink, jobs: Vec<Job>, metrics: &Metrics) -> usize {
    let started = Instant::now();
    let result = write_with_partition_retry(sink, &jobs).await;
    let rows: usize = jobs.iter().map(|j| j.rows.len()).sum();
    metrics.observe_commit(rows, started.elapsed(), result.is_ok());
    match result {
        Ok(_) => answer(jobs),
        Err(SinkError::Data(msg)) if jobs.len() > 1 => {
            tracing::warn!(error = %msg, jobs = jobs.len(), "batch refused; retrying its requests one by one");
            let mut acknowledged = 0;
            for j in jobs {
                acknowledged += Box::pin(commit(sink, vec![j], metrics)).await;
            }
            acknowledged
        }
        Err(e) => {
            let err = match e {
                SinkError::Data(m) => IngestError::Rejected(m),
                other => {
                    tracing::error!(error = %other, rows, "ingest transaction failed");
                    IngestError::Unavailable(other.to_string())
                }
            };
            for j in jobs {
                let _ = j.done.send(Err(err.clone()));
            }
            0
        }
    }
}

async fn write_with_partition_retry(sink: &CopySink, jobs: &[Job]) -> Result<u64, SinkError> {
    let batches: Vec<&Encoded> = jobs.iter().map(|j| &j.rows).collect();
    match sink.write(&batches).await {
        Err(SinkError::NoPartition(m)) => {
            tracing::warn!(error = %m, "a row had no partition; running maintain_partitions() and retrying");
            sink.ensure_partitions().await?;
            sink.write(&batches).await
        }
        other => other,
    }
}
