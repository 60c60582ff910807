//! Syslog over TCP: RFC 6587 framing and backpressure (see the module above).
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{Ctx, Sampler};
use crate::ingest::error::IngestError;
use crate::ingest::sources::syslog;

const SOURCE: &str = "syslog_tcp";
/// How much a connection reads ahead of what it has stored.
const READ_AHEAD: usize = 1024 * 1024;
/// After a stop, how long a connection keeps retrying lines the database cannot take yet.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub(crate) async fn serve(listener: TcpListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(ctx.cfg.max_connections.max(1)));
    let malformed = Arc::new(Sampler::new("malformed syslog line over TCP (counted, skipped)"));
    let mut conns = JoinSet::new();
    loop {
        let slot = tokio::select! {
            _ = super::stopped(&mut stop) => break,
            slot = slots.clone().acquire_owned() => slot.expect("semaphore never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = super::stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "syslog tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (ctx, stop, malformed) = (ctx.clone(), stop.clone(), malformed.clone());
        conns.spawn(async move {
            connection(stream, peer, &ctx, stop, &malformed).await;
            drop(slot);
        });
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: &Ctx,
    mut stop: watch::Receiver<bool>,
    malformed: &Sampler,
) {
    let peer_s = peer.ip().to_string();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut framer = Framer::new(ctx.cfg.max_message_bytes);
    let mut frames: Vec<Bytes> = Vec::new();
    let mut eof = false;
    while !eof {
        buf.reserve(64 * 1024);
        let n = tokio::select! {
            _ = super::stopped(&mut stop) => break,
            n = stream.read_buf(&mut buf) => n,
        };
        match n {
            Ok(0) => eof = true,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(%peer, error = %e, "syslog tcp connection failed");
                eof = true;
            }
        }
        // Take what else has already arrived, so one connection stores big batches.
        while !eof && buf.len() < READ_AHEAD {
            buf.reserve(64 * 1024);
            match stream.try_read_buf(&mut buf) {
                Ok(0) => eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => eof = true,
            }
        }
        while let Some(frame) = framer.next(&mut buf, eof) {
            match frame {
                Ok(f) => frames.push(f),
                Err(why) => {
                    ctx.metrics.source_rows(SOURCE, "malformed", 1);
                    malformed.note(&peer_s, &why, b"");
                }
            }
            if frames.len() >= ctx.cfg.max_batch {
                store(ctx, &frames, &peer_s, &stop, malformed).await;
                frames.clear();
            }
        }
        if !frames.is_empty() {
            store(ctx, &frames, &peer_s, &stop, malformed).await;
            frames.clear();
        }
    }
}

/// Stores `frames`, waiting while the queue is full or the database is down: the connection
/// reads nothing meanwhile, which is the backpressure.
async fn store(ctx: &Ctx, frames: &[Bytes], peer: &str, stop: &watch::Receiver<bool>, malformed: &Sampler) {
    let mut wait = Duration::from_millis(10);
    let mut first = true;
    let mut stopping_since: Option<Instant> = None;
    loop {
        let now = chrono::Utc::now();
        let mut items = Vec::with_capacity(frames.len());
        for f in frames {
            match syslog::parse(f, peer, now) {
                Ok(v) => items.push(v),
                Err(why) if first => {
                    ctx.metrics.source_rows(SOURCE, "malformed", 1);
                    malformed.note(peer, &why, f);
                }
                Err(_) => {}
            }
        }
        first = false;
        match ctx.pipeline.store_valid(items).await {
            Ok(outcome) => {
                ctx.metrics.source_rows(SOURCE, "stored", outcome.stored);
                ctx.metrics.source_rows(SOURCE, "rejected", outcome.rejected.len() as u64);
                if let Some(r) = outcome.rejected.first() {
                    tracing::warn!(peer, rejected = outcome.rejected.len(), first = ?r.errors, "syslog lines refused by validation");
                }
                return;
            }
            Err(e @ (IngestError::Overloaded(_) | IngestError::Unavailable(_))) => {
                if *stop.borrow() && stopping_since.get_or_insert_with(Instant::now).elapsed() > STOP_GRACE {
                    tracing::error!(peer, lines = frames.len(), error = %e, "shutting down: syslog lines not stored");
                    return;
                }
                ctx.metrics.source_rows(SOURCE, "deferred", frames.len() as u64);
                tracing::debug!(peer, error = %e, "syslog tcp: waiting for the ingest queue");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(500));
            }
            Err(e) => {
                ctx.metrics.source_rows(SOURCE, "rejected", frames.len() as u64);
                tracing::warn!(peer, lines = frames.len(), error = %e, "syslog lines not stored");
                return;
            }
        }
    }
}

/// RFC 6587 framing, decided per frame: `LEN SP MSG` (octet counting) when a frame starts with
/// a digit (a syslog message itself starts with `<`), else up to LF (non-transparent framing)
/// or NUL (what Python's SysLogHandler ends its TCP messages with).
pub struct Framer {
    max: usize,
    /// Bytes of an over-long octet-counted frame still to skip.
    skip: usize,
    /// Skipping the rest of an over-long line.
    discard_line: bool,
}

impl Framer {
    pub fn new(max: usize) -> Framer {
        Framer { max, skip: 0, discard_line: false }
    }

    /// The next complete frame in `buf` (consumed), `Err` for one that had to be skipped, or
    /// `None` until more bytes arrive. At `eof` an unterminated last line is a frame.
    pub fn next(&mut self, buf: &mut BytesMut, eof: bool) -> Option<Result<Bytes, String>> {
        if self.skip > 0 {
            let n = self.skip.min(buf.len());
            buf.advance(n);
            self.skip -= n;
            if self.skip > 0 {
                return None;
            }
        }
        if self.discard_line {
            match buf.iter().position(|b| matches!(b, b'\n' | b'\0')) {
                Some(i) => {
                    buf.advance(i + 1);
                    self.discard_line = false;
                }
                None => {
                    buf.clear();
                    return None;
                }
            }
        }
        let lead = buf.iter().position(|b| !matches!(b, b'\n' | b'\r' | b'\0' | b' ')).unwrap_or(buf.len());
        buf.advance(lead);
        if buf.is_empty() {
            return None;
        }
        if buf[0].is_ascii_digit() {
            let digits = buf.iter().take(11).position(|b| !b.is_ascii_digit());
            match digits {
                None if buf.len() < 11 && !eof => return None,
                Some(d) if buf[d] == b' ' => {
                    let len: usize = std::str::from_utf8(&buf[..d]).ok()?.parse().ok()?;
                    if len > self.max {
                        buf.advance(d + 1);
                        self.skip = len;
                        return Some(Err(format!(
                            "an octet-counted frame of {len} bytes exceeds the limit of {}",
                            self.max
                        )));
                    }
                    if buf.len() < d + 1 + len {
                        if eof {
                            buf.clear();
                            return Some(Err(format!(
                                "the connection closed inside an octet-counted frame of {len} bytes"
                            )));
                        }
                        return None;
                    }
                    buf.advance(d + 1);
                    return Some(Ok(buf.split_to(len).freeze()));
                }
                // digits not followed by a space: not octet counting after all
                _ => {}
            }
        }
        match buf.iter().position(|b| matches!(b, b'\n' | b'\0')) {
            Some(i) => {
                let line = buf.split_to(i).freeze();
                buf.advance(1);
                if line.len() > self.max {
                    return Some(Err(format!("a line of {} bytes exceeds the limit of {}", line.len(), self.max)));
                }
                Some(Ok(line))
            }
            None if buf.len() > self.max => {
                buf.clear();
                self.discard_line = true;
                Some(Err(format!("a line longer than the limit of {} bytes", self.max)))
            }
            None if eof => Some(Ok(buf.split().freeze())),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[&[u8]], max: usize) -> Vec<Result<String, String>> {
        let mut f = Framer::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for (i, chunk) in input.iter().enumerate() {
            buf.extend_from_slice(chunk);
            let eof = i + 1 == input.len();
            while let Some(x) = f.next(&mut buf, eof) {
                out.push(x.map(|b| String::from_utf8(b.to_vec()).unwrap()));
            }
        }
        out
    }

    #[test]
    fn octet_counting_and_newlines_mix_and_split_anywhere() {
        let got =
            frames(&[b"12 <13>1 - a b", b"c\n<14>plain line\n<11>py: x\0", b"4 <1>x8 <1>1 2 3", b"\n<13>last"], 1000);
        let ok: Vec<String> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(ok, ["<13>1 - a bc", "<14>plain line", "<11>py: x", "<1>x", "<1>1 2 3", "<13>last"]);
    }

    #[test]
    fn oversized_frames_are_skipped_and_the_stream_goes_on() {
        let got = frames(&[b"20 <13>0123456789abcdef", b"<14>next\n<13>", b"a-very-long-line-indeed\n<14>ok\n"], 12);
        assert!(got[0].as_ref().unwrap_err().contains("20 bytes"));
        assert_eq!(got[1].as_deref(), Ok("<14>next"));
        assert!(got[2].is_err(), "{got:?}");
        assert_eq!(got.last().unwrap().as_deref(), Ok("<14>ok"));
    }

    #[test]
    fn a_connection_closing_inside_a_counted_frame_loses_only_that_frame() {
        let got = frames(&[b"<14>a\n", b"30 <13>cut short"], 1000);
        assert_eq!(got[0].as_deref(), Ok("<14>a"));
        assert!(got[1].as_ref().unwrap_err().contains("closed"));
    }
}
