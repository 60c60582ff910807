//! The collector's half of `log_rollup`: per (service, second) deltas of a batch, computed in
//! memory and written by `record_rollup()` in the COPY's transaction.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::LogRecord;

/// Must equal `latency_bounds()` in sql/latency_bounds.sql (a test checks it against the database).
pub const LATENCY_BOUNDS: [f64; 15] =
    [5.0, 10.0, 25.0, 50.0, 100.0, 150.0, 250.0, 400.0, 600.0, 800.0, 1000.0, 1500.0, 2500.0, 5000.0, 10000.0];
pub const BUCKETS: usize = LATENCY_BOUNDS.len() + 1;

/// PostgreSQL's `width_bucket(x, latency_bounds())`: how many bounds are <= x.
pub fn bucket_of(latency_ms: f64) -> usize {
    LATENCY_BOUNDS.partition_point(|b| *b <= latency_ms)
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Delta {
    pub total: i64,
    pub errors: i64,
    pub latency_count: i64,
    pub latency_sum: f64,
    pub latency_max: Option<f64>,
    pub hist: [i64; BUCKETS],
}

/// Deltas keyed by service, then second, as the arrays `record_rollup()` takes. Nested so that a
/// row of a service already seen in the batch costs no String allocation.
#[derive(Debug, Default)]
pub struct Deltas(BTreeMap<String, BTreeMap<i64, Delta>>);

impl Deltas {
    pub fn add(&mut self, r: &LogRecord) {
        let seconds = match self.0.get_mut(r.service.as_str()) {
            Some(s) => s,
            None => self.0.entry(r.service.clone()).or_default(),
        };
        let d = seconds.entry(r.ts.timestamp()).or_default();
        d.total += 1;
        d.errors += r.level.is_error() as i64;
        if let Some(l) = r.latency_ms {
            d.latency_count += 1;
            d.latency_sum += l;
            d.latency_max = Some(d.latency_max.map_or(l, |m| m.max(l)));
            d.hist[bucket_of(l)] += 1;
        }
    }

    /// One request's deltas, computed on the request's task.
    pub fn of(rows: &[LogRecord]) -> Deltas {
        let mut d = Deltas::default();
        for r in rows {
            d.add(r);
        }
        d
    }

    /// Adds another batch's deltas (a request's, to the transaction's).
    pub fn merge(&mut self, other: &Deltas) {
        for (service, seconds) in &other.0 {
            let mine = match self.0.get_mut(service.as_str()) {
                Some(s) => s,
                None => self.0.entry(service.clone()).or_default(),
            };
            for (sec, o) in seconds {
                let d = mine.entry(*sec).or_default();
                d.total += o.total;
                d.errors += o.errors;
                d.latency_count += o.latency_count;
                d.latency_sum += o.latency_sum;
                d.latency_max = match (d.latency_max, o.latency_max) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                for (h, n) in d.hist.iter_mut().zip(o.hist.iter()) {
                    *h += n;
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn columns(&self) -> Columns {
        let mut c = Columns::default();
        for (service, sec, d) in self.0.iter().flat_map(|(s, m)| m.iter().map(move |(sec, d)| (s, sec, d))) {
            c.services.push(service.clone());
            c.buckets.push(DateTime::<Utc>::from_timestamp(*sec, 0).expect("validated ts"));
            c.totals.push(d.total);
            c.errors.push(d.errors);
            c.latency_counts.push(d.latency_count);
            c.latency_sums.push(d.latency_sum);
            c.latency_maxes.push(d.latency_max);
            c.hists.extend_from_slice(&d.hist);
        }
        c
    }
}

#[derive(Debug, Default)]
pub struct Columns {
    pub services: Vec<String>,
    pub buckets: Vec<DateTime<Utc>>,
    pub totals: Vec<i64>,
    pub errors: Vec<i64>,
    pub latency_counts: Vec<i64>,
    pub latency_sums: Vec<f64>,
    pub latency_maxes: Vec<Option<f64>>,
    pub hists: Vec<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_width_bucket_semantics() {
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(4.99), 0);
        assert_eq!(bucket_of(5.0), 1);
        assert_eq!(bucket_of(799.9), 9);
        assert_eq!(bucket_of(800.0), 10);
        assert_eq!(bucket_of(1e9), 15);
    }

    fn row(service: &str, second: i64, level: super::super::Level, latency_ms: Option<f64>) -> LogRecord {
        LogRecord {
            ts: DateTime::<Utc>::from_timestamp(second, 0).unwrap(),
            service: service.into(),
            level,
            status_code: None,
            latency_ms,
            message: None,
            attrs: None,
            pattern_id: None,
        }
    }

    #[test]
    fn merging_each_requests_deltas_gives_the_deltas_of_all_their_rows() {
        use super::super::Level::{Error, Info};
        let requests = [
            vec![row("a", 10, Info, Some(3.0)), row("a", 10, Error, None), row("b", 11, Info, Some(900.0))],
            vec![row("a", 10, Info, Some(7.5)), row("a", 12, Error, Some(12000.0))],
            vec![],
            vec![row("b", 11, Error, Some(0.5)), row("c", 10, Info, None)],
        ];
        let mut merged = Deltas::default();
        for r in &requests {
            merged.merge(&Deltas::of(r));
        }
        let all: Vec<LogRecord> = requests.concat();
        let whole = Deltas::of(&all);
        assert_eq!(merged.0, whole.0);
        let a10 = &merged.0["a"][&10];
        assert_eq!((a10.total, a10.errors, a10.latency_count, a10.latency_sum), (3, 1, 2, 10.5));
        assert_eq!(a10.latency_max, Some(7.5));
        assert_eq!(merged.0["c"][&10].latency_max, None);
        assert_eq!(merged.len(), 4);
    }
}
