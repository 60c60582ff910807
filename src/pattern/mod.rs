//! Message templates ("patterns"): a log message with its variable parts replaced by `<*>`,
//! and a stable 64-bit id of that template. Deterministic and stateless: any process, and
//! PostgreSQL's `log_template()` / `log_pattern_id()` (sql/log_template.sql), give a message
//! the same template and id. The rules are in `scan.rs`.
//!
//! - `template(message)` / `template_into(message, &mut buf)`: the template;
//! - `pattern_id(template)`: its id, the first 8 bytes of md5(template), big-endian, signed;
//! - `extract(message)`: both, as a `Pattern`;
//! - `Extractor::extract(&mut self, message)`: both, for a hot loop (reused buffers, an exact
//!   memo of recent templates' ids);
//! - `merge_similar(templates, min_values)`: the optional later merge step over a catalogue of
//!   templates (`merge.rs`), not part of a message's pattern.
//!
//! A template reads a message's first `MAX_CHARS` (4096) characters; newlines are spaces like
//! any whitespace. A missing message has no pattern (SQL: `log_pattern_id(NULL)` is NULL); an
//! empty one has the template `""`. Cost: a few hundred ns per line (`scripts/bench.sh patterns`).
//! The SQL twin costs tens of µs per row: right for rows a DBA writes, not for every COPY row.
mod accuracy;
pub mod corpus;
mod extractor;
mod id;
mod merge;
mod scan;

pub use accuracy::grouping_accuracy;
pub use extractor::Extractor;
pub use id::pattern_id;
pub use merge::merge_similar;
pub use scan::{MAX_CHARS, WILDCARD, WORD_LISTS, template, template_into, template_with};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub id: i64,
    pub template: String,
}

pub fn extract(message: &str) -> Pattern {
    let template = template(message);
    Pattern { id: pattern_id(&template), template }
}

#[cfg(test)]
mod tests;
