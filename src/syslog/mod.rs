//! Syslog listeners (`--syslog-tcp`, `--syslog-udp`): sockets in, one frame per message, parsed
//! by `ingest::sources::syslog` and stored through the same `Pipeline` as every HTTP source.
//! - TCP ([`tcp`]): RFC 6587 octet counting and newline (or NUL) framing, told apart per frame.
//!   Backpressure instead of loss: while the ingest queue is full (or the database is down) a
//!   connection stops reading and retries the same lines, so the sender's socket buffer fills
//!   and the sender waits; nothing is dropped and memory stays bounded.
//! - UDP ([`udp`]): a datagram is a message. UDP cannot push back: lines gather into the next
//!   batch (up to 4 MiB) while earlier ones wait for their commit, and lines that cannot be
//!   queued are dropped and counted (`logmon_ingest_source_rows_total{source="syslog_udp",
//!   outcome="dropped"}`).
//!
//! Malformed lines are counted (`outcome="malformed"`) and logged with a sample at most every
//! 10 s per listener; they never stop a listener.
pub mod tcp;
pub mod udp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ingest::pipeline::Pipeline;
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct SyslogConfig {
    pub tcp: Option<SocketAddr>,
    pub udp: Option<SocketAddr>,
    /// Longest message; a longer frame is counted as malformed and skipped.
    pub max_message_bytes: usize,
    /// Most lines stored in one go (kept below the queue budget, or a batch could never fit).
    pub max_batch: usize,
    /// Open TCP connections; beyond it new connections wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig { tcp: None, udp: None, max_message_bytes: 64 * 1024, max_batch: 4096, max_connections: 1024 }
    }
}

/// What every listener shares.
pub(crate) struct Ctx {
    pub pipeline: Pipeline,
    pub metrics: Arc<Metrics>,
    pub cfg: SyslogConfig,
}

/// The running listeners, with the addresses they are bound to.
pub struct Listeners {
    pub tcp: Option<SocketAddr>,
    pub udp: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Listeners {
    /// Binds what `cfg` asks for (an address that cannot be bound is an error at start-up, not
    /// a silent gap) and serves until `stop` turns true.
    pub async fn start(
        cfg: SyslogConfig,
        pipeline: Pipeline,
        metrics: Arc<Metrics>,
        stop: watch::Receiver<bool>,
    ) -> Result<Listeners, String> {
        let ctx = Arc::new(Ctx { pipeline, metrics, cfg: cfg.clone() });
        let mut out = Listeners { tcp: None, udp: None, tasks: Vec::new() };
        if let Some(addr) = cfg.tcp {
            let l =
                tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on tcp {addr}: {e}"))?;
            let bound = l.local_addr().map_err(|e| e.to_string())?;
            tracing::info!(addr = %bound, "syslog listening on tcp {bound}");
            out.tcp = Some(bound);
            out.tasks.push(tokio::spawn(tcp::serve(l, ctx.clone(), stop.clone())));
        }
        if let Some(addr) = cfg.udp {
            let s = tokio::net::UdpSocket::bind(addr).await.map_err(|e| format!("cannot listen on udp {addr}: {e}"))?;
            let bound = s.local_addr().map_err(|e| e.to_string())?;
            tracing::info!(addr = %bound, "syslog listening on udp {bound}");
            out.udp = Some(bound);
            out.tasks.push(tokio::spawn(udp::serve(s, ctx.clone(), stop.clone())));
        }
        Ok(out)
    }

    /// Waits until every listener has stopped (after `stop`): in-flight lines are stored first.
    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Resolves once `stop` is true (the guard `wait_for` returns must not live across an await).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Logs a sample of what went wrong at most every 10 s, with how many went unlogged since.
pub(crate) struct Sampler {
    what: &'static str,
    last: std::sync::Mutex<Option<Instant>>,
    unlogged: AtomicU64,
}

impl Sampler {
    pub fn new(what: &'static str) -> Sampler {
        Sampler { what, last: std::sync::Mutex::new(None), unlogged: AtomicU64::new(0) }
    }

    pub fn note(&self, peer: &str, reason: &str, frame: &[u8]) {
        let mut last = self.last.lock().expect("sampler lock");
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(Instant::now());
        let sample: String = String::from_utf8_lossy(&frame[..frame.len().min(200)]).into_owned();
        tracing::warn!(
            peer,
            reason,
            sample,
            not_logged_since_last = self.unlogged.swap(0, Ordering::Relaxed),
            "{}",
            self.what
        );
    }
}
