//! Syslog over UDP: one datagram, one message. UDP cannot make a sender wait, so a batch that
//! cannot be queued (queue full, database down, too many batches in flight) is dropped and
//! counted, never buffered without bound.
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

pub(crate) async fn serve(socket: UdpSocket, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    let malformed = Arc::new(Sampler::new("malformed syslog datagram (counted, skipped)"));
    let dropped = Arc::new(Sampler::new("syslog datagrams dropped: the ingest queue could not take them (counted)"));
    let mut buf = vec![0u8; 65_536];
    loop {
        let first = tokio::select! {
            _ = super::stopped(&mut stop) => break,
            r = socket.recv_from(&mut buf) => r,
        };
        let mut batch: Vec<(Bytes, SocketAddr)> = Vec::new();
        match first {
            Ok((n, peer)) => batch.push((Bytes::copy_from_slice(&buf[..n]), peer)),
            Err(e) => {
                // e.g. ICMP port unreachable reported on Linux; the socket is still fine
                tracing::debug!(error = %e, "syslog udp receive failed");
                continue;
            }
        }
        while batch.len() < ctx.cfg.max_batch {
            match socket.try_recv_from(&mut buf) {
                Ok((n, peer)) => batch.push((Bytes::copy_from_slice(&buf[..n]), peer)),
                Err(_) => break,
            }
        }
        match in_flight.clone().try_acquire_owned() {
            Ok(permit) => {
                let (ctx, malformed, dropped) = (ctx.clone(), malformed.clone(), dropped.clone());
                tokio::spawn(async move {
                    store(&ctx, batch, &malformed, &dropped).await;
                    drop(permit);
                });
            }
            Err(_) => {
                ctx.metrics.source_rows(SOURCE, "dropped", batch.len() as u64);
                dropped.note(&batch[0].1.ip().to_string(), "too many batches in flight", &batch[0].0);
            }
        }
    }
    // let the batches in flight finish before reporting stopped
    let _ = in_flight.acquire_many(IN_FLIGHT as u32).await;
}

async fn store(ctx: &Ctx, batch: Vec<(Bytes, SocketAddr)>, malformed: &Sampler, dropped: &Sampler) {
    let now = chrono::Utc::now();
    let mut items = Vec::with_capacity(batch.len());
    for (frame, peer) in &batch {
        let peer = peer.ip().to_string();
        match syslog::parse(frame, &peer, now) {
            Ok(v) => items.push(v),
            Err(why) => {
                ctx.metrics.source_rows(SOURCE, "malformed", 1);
                malformed.note(&peer, &why, frame);
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
            dropped.note(&batch[0].1.ip().to_string(), &e.to_string(), &batch[0].0);
        }
    }
}
