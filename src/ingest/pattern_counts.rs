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
#[derive(Default)]
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
