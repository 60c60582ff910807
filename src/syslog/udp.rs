//! Syslog over UDP: one datagram, one message. UDP cannot make a sender wait, so what cannot be
//! held is dropped and counted, never buffered without bound: up to `IN_FLIGHT` batches are being
//! stored at once, and while they are, the datagrams that arrive gather into the next batch (up to
//! `max_batch` lines or `BATCH_BYTES`, which then goes as soon as one of them is done). Only
//! datagrams beyond that one full batch are dropped. (Dropping whatever arrived while four batches
//! waited for their commits lost 5 of 9 lines Python's SysLogHandler sent one by one when the
//! machine was busy.)
//!
//! Memory is bounded in bytes, not only in lines: a batch closes at `BATCH_BYTES` of datagrams
//! (4,096 lines of up to 64 KiB each would be 256 MiB a batch, 1.3 GB for five), and a batch in
//! flight keeps its parsed lines, not its datagrams. At most five batches of 4 MiB (and one
//! datagram) are held: about 20 MiB of datagrams and their parsed lines.
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, watch};

use super::{Ctx, Sampler};
use crate::ingest::sources::syslog;

const SOURCE: &str = "syslog_udp";
/// Batches being validated or waiting for their commit at once.
const IN_FLIGHT: usize = 4;
/// Datagram bytes a batch gathers at most (it closes at the first datagram that reaches it).
pub const BATCH_BYTES: usize = 4 << 20;

type Datagram = (Bytes, SocketAddr);

pub(crate) async fn serve(socket: UdpSocket, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let malformed = Arc::new(Sampler::new("malformed syslog datagram (counted, skipped)"));
    let dropped = Arc::new(Sampler::new("syslog datagrams dropped: the ingest queue could not take them (counted)"));
    let mut buf = vec![0u8; 65_536];
    // the next batch, gathered while the batches in flight are stored
    let mut next = Gathering::default();
    loop {
        tokio::select! {
            biased;
            _ = super::stopped(&mut stop) => break,
            permit = in_flight.clone().acquire_owned(), if !next.is_empty() => {
                let permit = permit.expect("the semaphore is never closed");
                let batch = std::mem::take(&mut next).lines;
                let (ctx, malformed, dropped) = (ctx.clone(), malformed.clone(), dropped.clone());
                tokio::spawn(async move {
                    store(&ctx, batch, &malformed, &dropped).await;
                    drop(permit);
                });
            }
            r = socket.recv_from(&mut buf) => {
                match r {
                    Ok((n, peer)) => take(&ctx, &mut next, &buf[..n], peer, &dropped),
                    // e.g. ICMP port unreachable reported on Linux; the socket is still fine
                    Err(e) => tracing::debug!(error = %e, "syslog udp receive failed"),
                }
                // what else has arrived, without waiting, until the batch is full (so that a
                // flood does not keep the loop from handing the batch on)
                while !next.is_full(&ctx) {
                    let Ok((n, peer)) = socket.try_recv_from(&mut buf) else { break };
                    take(&ctx, &mut next, &buf[..n], peer, &dropped);
                }
            }
        }
    }
    // store what was gathered, then let the batches in flight finish before reporting stopped
    if !next.is_empty() {
        let _permit = in_flight.clone().acquire_owned().await;
        store(&ctx, next.lines, &malformed, &dropped).await;
    }
    let _ = in_flight.acquire_many(IN_FLIGHT as u32).await;
}

/// The datagrams of the next batch, and their bytes.
#[derive(Default)]
struct Gathering {
    lines: Vec<Datagram>,
    bytes: usize,
}

impl Gathering {
    fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn is_full(&self, ctx: &Ctx) -> bool {
        self.lines.len() >= ctx.cfg.max_batch || self.bytes >= BATCH_BYTES
    }
}

/// Adds a datagram to the next batch, or drops and counts it when that batch is full.
fn take(ctx: &Ctx, next: &mut Gathering, frame: &[u8], peer: SocketAddr, dropped: &Sampler) {
    if !next.is_full(ctx) {
        next.bytes += frame.len();
        next.lines.push((Bytes::copy_from_slice(frame), peer));
    } else {
        ctx.metrics.source_rows(SOURCE, "dropped", 1);
        dropped.note(&peer.ip().to_string(), "the next batch is full while others wait for their commit", frame);
    }
}

async fn store(ctx: &Ctx, batch: Vec<Datagram>, malformed: &Sampler, dropped: &Sampler) {
    let now = chrono::Utc::now();
    let mut items = Vec::with_capacity(batch.len());
    // the datagrams go once parsed: a batch waiting for its commit holds its lines once
    let first = batch.first().cloned();
    for (frame, peer) in batch {
        let peer = peer.ip().to_string();
        match syslog::parse(&frame, &peer, now) {
            Ok(v) => items.push(v),
            Err(why) => {
                ctx.metrics.source_rows(SOURCE, "malformed", 1);
                malformed.note(&peer, &why, &frame);
            }
        }
    }
    let n = items.len() as u64;
    match ctx.pipeline.store_valid(items).await {
        Ok(outcome) => {
            ctx.metrics.source_rows(SOURCE, "stored", outcome.stored);
            ctx.metrics.source_rows(SOURCE, "rejected", outcome.rejected.len() as u64);
            if let Some(r) = outcome.rejected.first() {
                tracing::warn!(rejected = outcome.rejected.len(), first = ?r.errors, "syslog datagrams refused by validation");
            }
        }
        Err(e) => {
            ctx.metrics.source_rows(SOURCE, "dropped", n);
            if let Some((frame, peer)) = first {
                dropped.note(&peer.ip().to_string(), &e.to_string(), &frame);
            }
        }
    }
}
