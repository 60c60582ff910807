//! The collector's half of the pattern counts: per (service, pattern, level, minute) deltas of a
//! batch, and the catalogue rows of patterns this writer has not written before, as the arrays
//! `record_patterns()` takes (sql/record_patterns.sql).
use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use super::LogRecord;

/// Patterns a writer knows are in the catalogue already. Only a shortcut: a pattern missing
/// here is offered again (`ON CONFLICT DO NOTHING`), so it never changes what is stored.
#[derive(Default)]
pub struct Known(HashSet<(String, i64)>);

impl Known {
    /// More patterns than any service mix has: past this the set starts over.
    const MAX: usize = 100_000;
}

#[derive(Default)]
pub struct PatternDeltas {
    counts: BTreeMap<(String, i64, &'static str, i64), i64>,
    /// (service, pattern) -> (example message, first ts) of patterns not in `Known`
    new: BTreeMap<(String, i64), (String, DateTime<Utc>)>,
}

impl PatternDeltas {
    pub fn add(&mut self, r: &LogRecord, known: &Known) {
        let (Some(id), Some(message)) = (r.pattern_id, r.message.as_deref()) else { return };
        let minute = r.ts.timestamp().div_euclid(60) * 60;
        *self.counts.entry((r.service.clone(), id, r.level.as_str(), minute)).or_default() += 1;
        let key = (r.service.clone(), id);
        if !known.0.contains(&key) {
            let e = self.new.entry(key).or_insert_with(|| (message.to_string(), r.ts));
            if r.ts < e.1 {
                e.1 = r.ts;
            }
        }
    }

    /// The arguments of `record_patterns()`.
    pub fn columns(&self) -> PatternColumns {
        let mut c = PatternColumns::default();
        for ((service, id, level, minute), n) in &self.counts {
            c.services.push(service.clone());
            c.ids.push(*id);
            c.levels.push(level.to_string());
            c.buckets.push(DateTime::<Utc>::from_timestamp(*minute, 0).expect("validated ts"));
            c.counts.push(*n);
        }
        for ((service, id), (example, first)) in &self.new {
            c.new_services.push(service.clone());
            c.new_ids.push(*id);
            c.new_templates.push(crate::pattern::template(example));
            c.new_examples.push(example.chars().take(1000).collect());
            c.new_first.push(*first);
        }
        c
    }

    /// After the batch committed: its new patterns are in the catalogue.
    pub fn remember(self, known: &mut Known) {
        if known.0.len() + self.new.len() > Known::MAX {
            known.0.clear();
        }
        known.0.extend(self.new.into_keys());
    }
}

#[derive(Debug, Default)]
pub struct PatternColumns {
    pub services: Vec<String>,
    pub ids: Vec<i64>,
    pub levels: Vec<String>,
    pub buckets: Vec<DateTime<Utc>>,
    pub counts: Vec<i64>,
    pub new_services: Vec<String>,
    pub new_ids: Vec<i64>,
    pub new_templates: Vec<String>,
    pub new_examples: Vec<String>,
    pub new_first: Vec<DateTime<Utc>>,
}
