//! `Extractor`: template and id of message after message, for a hot loop (the ingest path). It
//! reuses its buffers and remembers the ids of recent templates, so a row costs the template scan
//! and a hash lookup, not an md5. The memo cannot change a result: a hit compares the whole
//! template, and an id is a function of its template.
use super::{pattern_id, template_with};

/// Slots of the id memo (a power of two): more than the templates a service mix has at a time.
const SLOTS: usize = 512;
/// Templates longer than this are not remembered (they are rare, and would pin memory).
const MAX_REMEMBERED: usize = 256;

#[derive(Default)]
struct Slot {
    hash: u64,
    id: i64,
    template: String,
}

pub struct Extractor {
    out: String,
    scratch: String,
    memo: Vec<Slot>,
}

impl Default for Extractor {
    fn default() -> Self {
        Extractor::new()
    }
}

impl Extractor {
    pub fn new() -> Extractor {
        Extractor { out: String::new(), scratch: String::new(), memo: (0..SLOTS).map(|_| Slot::default()).collect() }
    }

    /// The id and template of `message`; the template borrows the extractor until the next call.
    pub fn extract(&mut self, message: &str) -> (i64, &str) {
        template_with(message, &mut self.out, &mut self.scratch);
        let t = self.out.as_str();
        if t.len() > MAX_REMEMBERED {
            return (pattern_id(t), t);
        }
        let hash = fast_hash(t.as_bytes());
        let slot = &mut self.memo[hash as usize & (SLOTS - 1)];
        if slot.hash != hash || slot.template != t {
            slot.hash = hash;
            slot.id = pattern_id(t);
            slot.template.clear();
            slot.template.push_str(t);
        }
        (slot.id, t)
    }
}

/// A quick 64-bit mix of 8-byte words, good enough to spread templates over the memo's slots.
fn fast_hash(b: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = b.len() as u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().expect("8 bytes"))).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::extract;

    #[test]
    fn the_extractor_gives_what_extract_gives_whatever_it_remembers() {
        let mut x = Extractor::new();
        // Many templates through few slots: collisions and evictions must not change an id.
        let messages: Vec<String> = (0..5000)
            .map(|i| match i % 4 {
                0 => format!("user u{i} logged in"),
                1 => format!("event kind{} happened", i % 1500),
                2 => format!("{} {}", "x".repeat(i % 300), i),
                _ => format!("job {} finished in {i} ms", ["a", "b", "c"][i % 3]),
            })
            .collect();
        for round in 0..2 {
            for m in &messages {
                let p = extract(m);
                assert_eq!(x.extract(m), (p.id, p.template.as_str()), "round {round}: {m:?}");
            }
        }
    }
}
