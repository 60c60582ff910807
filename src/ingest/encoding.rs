//! `Content-Encoding`: undo gzip with a cap on what it may produce (gzip bombs). Shared by every
//! HTTP source.
use std::io::Read;

use super::error::IngestError;

/// The body as sent, decompressed; never more than `limit` bytes.
pub fn decompress(encoding: Option<&str>, body: bytes::Bytes, limit: usize) -> Result<bytes::Bytes, IngestError> {
    let enc = encoding.map(|e| e.trim().to_ascii_lowercase());
    match enc.as_deref() {
        // An empty header is read as identity: the original collector ignored the header, and
        // what worked there works here.
        None | Some("") | Some("identity") => Ok(body),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::with_capacity((body.len() * 4).min(limit));
            let mut dec = flate2::read::MultiGzDecoder::new(&body[..]).take(limit as u64 + 1);
            dec.read_to_end(&mut out).map_err(|e| IngestError::body(format!("body is not valid gzip: {e}")))?;
            if out.len() > limit {
                return Err(IngestError::TooLarge(format!("decompressed body exceeds the limit of {limit} bytes")));
            }
            Ok(out.into())
        }
        Some(other) => {
            Err(IngestError::Unsupported(format!("Content-Encoding {other:?} is not supported (use gzip or identity)")))
        }
    }
}
