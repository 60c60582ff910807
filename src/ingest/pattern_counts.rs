//! The collector's half of the pattern counts: per (service, pattern, level, minute) deltas of a
//! batch, and the catalogue rows of patterns this writer has not written before, as the arrays
//! `record_patterns()` takes (sql/record_patterns.sql).
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::LogRecord;

/// Patterns a writer knows are in the catalogue already, by service. Only a shortcut: a pattern
/// missing here is offered again (`ON CONFLICT DO NOTHING`), so it never changes what is stored.
/// Ordered maps: a lookup per row compares a few service names instead of hashing each one.
#[derive(Default)]
pub struct Known {
    ids: BTreeMap<String, BTreeSet<i64>>,
    len: usize,
}

impl Known {
    /// More patterns than any service mix has: past this the set starts over.
    const MAX: usize = 100_000;

    fn contains(&self, service: &str, id: i64) -> bool {
        self.ids.get(service).is_some_and(|s| s.contains(&id))
    }
}

/// Keyed by service first, so that a row of a service already seen allocates nothing.
#[derive(Debug, Default)]
pub struct PatternDeltas {
    /// service -> (pattern, level, minute) -> count
    counts: BTreeMap<String, BTreeMap<(i64, &'static str, i64), i64>>,
    /// service -> pattern -> (example message, first ts) of patterns not in `Known`
    new: BTreeMap<String, BTreeMap<i64, (String, DateTime<Utc>)>>,
}

impl PatternDeltas {
    pub fn add(&mut self, r: &LogRecord, known: &Known) {
        let (Some(id), Some(message)) = (r.pattern_id, r.message.as_deref()) else { return };
        let minute = r.ts.timestamp().div_euclid(60) * 60;
        *by_service(&mut self.counts, &r.service).entry((id, r.level.as_str(), minute)).or_default() += 1;
        if !known.contains(&r.service, id) {
            let e = by_service(&mut self.new, &r.service).entry(id).or_insert_with(|| (message.to_string(), r.ts));
            if r.ts < e.1 {
                e.1 = r.ts;
            }
        }
    }

    /// One request's deltas, every pattern offered as new (with its example and first ts):
    /// computed on the request's task, so that the rows themselves need not wait in the queue.
    pub fn of(rows: &[LogRecord]) -> PatternDeltas {
        let (mut d, none) = (PatternDeltas::default(), Known::default());
        for r in rows {
            d.add(r, &none);
        }
        d
    }

    /// Adds a request's deltas (`of()`); its patterns in `known` are not offered again.
    pub fn merge(&mut self, other: &PatternDeltas, known: &Known) {
        for (service, counts) in &other.counts {
            let mine = by_service(&mut self.counts, service);
            for (key, n) in counts {
                *mine.entry(*key).or_default() += n;
            }
        }
        for (service, new) in &other.new {
            for (id, (example, first)) in new {
                if known.contains(service, *id) {
                    continue;
                }
                let e = by_service(&mut self.new, service).entry(*id).or_insert_with(|| (example.clone(), *first));
                if *first < e.1 {
                    e.1 = *first;
                }
            }
        }
    }

    /// The arguments of `record_patterns()`.
    pub fn columns(&self) -> PatternColumns {
        let mut c = PatternColumns::default();
        for (service, counts) in &self.counts {
            for ((id, level, minute), n) in counts {
                c.services.push(service.clone());
                c.ids.push(*id);
                c.levels.push(level.to_string());
                c.buckets.push(DateTime::<Utc>::from_timestamp(*minute, 0).expect("validated ts"));
                c.counts.push(*n);
            }
        }
        for (service, new) in &self.new {
            for (id, (example, first)) in new {
                c.new_services.push(service.clone());
                c.new_ids.push(*id);
                c.new_templates.push(crate::pattern::template(example));
                c.new_examples.push(example.chars().take(1000).collect());
                c.new_first.push(*first);
            }
        }
        c
    }

    /// After the batch committed: its new patterns are in the catalogue.
    pub fn remember(self, known: &mut Known) {
        let n: usize = self.new.values().map(BTreeMap::len).sum();
        if known.len + n > Known::MAX {
            *known = Known::default();
        }
        for (service, new) in self.new {
            let ids = known.ids.entry(service).or_default();
            for id in new.into_keys() {
                known.len += ids.insert(id) as usize;
            }
        }
    }
}

/// The map of `service`, made on first use (the only allocation of a service's first row).
fn by_service<'a, V: Default>(m: &'a mut BTreeMap<String, V>, service: &str) -> &'a mut V {
    if !m.contains_key(service) {
        m.insert(service.to_string(), V::default());
    }
    m.get_mut(service).expect("just inserted")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Level;

    fn row(service: &str, second: i64, pattern: i64, message: &str) -> LogRecord {
        LogRecord {
            ts: DateTime::<Utc>::from_timestamp(second, 0).unwrap(),
            service: service.into(),
            level: Level::Error,
            status_code: None,
            latency_ms: None,
            message: Some(message.into()),
            attrs: None,
            pattern_id: Some(pattern),
        }
    }

    #[test]
    fn merged_requests_count_every_row_and_offer_only_patterns_the_writer_does_not_know() {
        let mut known = Known::default();
        PatternDeltas::of(&[row("a", 0, 7, "known one")]).remember(&mut known);
        let requests = [
            vec![row("a", 120, 1, "first seen here"), row("a", 130, 7, "known two")],
            vec![row("a", 60, 1, "seen earlier, later in the batch"), row("b", 5, 1, "other service")],
        ];
        let mut merged = PatternDeltas::default();
        for r in &requests {
            merged.merge(&PatternDeltas::of(r), &known);
        }
        let c = merged.columns();
        let counts: Vec<(String, i64, i64)> =
            c.services.iter().zip(&c.ids).zip(&c.counts).map(|((s, i), n)| (s.clone(), *i, *n)).collect();
        assert_eq!(counts, [("a".into(), 1, 1), ("a".into(), 1, 1), ("a".into(), 7, 1), ("b".into(), 1, 1)]);
        let new: Vec<(String, i64, String, i64)> = (0..c.new_ids.len())
            .map(|k| (c.new_services[k].clone(), c.new_ids[k], c.new_examples[k].clone(), c.new_first[k].timestamp()))
            .collect();
        // pattern 7 of a is known: not offered; pattern 1 of a keeps the batch's first example and
        // its earliest ts
        assert_eq!(new, [("a".into(), 1, "first seen here".into(), 60), ("b".into(), 1, "other service".into(), 5)]);
    }
}
