//! The pattern id: the first 8 bytes of md5(template) read big-endian as a signed 64-bit
//! integer, which is exactly what PostgreSQL computes with
//! `('x' || left(md5(t), 16))::bit(64)::bigint` (see `pattern_id()` in sql/log_template.sql).
use md5::{Digest, Md5};

pub fn pattern_id(template: &str) -> i64 {
    let digest = Md5::digest(template.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("md5 has 16 bytes"))
}
