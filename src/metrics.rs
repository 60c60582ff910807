//! Prometheus metrics of this process (GET /metrics). Values that live in the database (open
//! incidents) are read at scrape time by the handler, not cached here.
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: String,
}

/// Rows per front end: `source` is json, otlp, loki, es_bulk, syslog_tcp or syslog_udp;
/// `outcome` is stored, rejected (refused by validation), malformed (not readable as the
/// protocol), dropped (UDP lines that could not be queued) or deferred (TCP lines that waited
/// for room in the queue, counted per wait; they are stored later, not lost).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceOutcome {
    pub source: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Instance {
    pub instance: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub target: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IncidentLabels {
    pub service: String,
    pub incident_type: String,
    pub severity: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub ingest_requests: Family<Outcome, Counter>,
    pub ingest_rows: Family<Outcome, Counter>,
    pub source_rows: Family<SourceOutcome, Counter>,
    pub ingest_bytes: Counter,
    pub batch_rows: Histogram,
    pub commit_seconds: Histogram,
    pub queued_rows: Gauge,
    pub open_incidents: Family<IncidentLabels, Gauge>,
    pub undelivered_notifications: Family<DeliveryLabels, Gauge>,
    pub detector_tick_seconds: Family<Instance, Gauge<f64, AtomicU64>>,
    pub detector_last_success: Family<Instance, Gauge<f64, AtomicU64>>,
    /// Serialises scrapes: the database-backed families are cleared and refilled per scrape.
    pub scrape: tokio::sync::Mutex<()>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("logmon");
        let m = Metrics {
            ingest_requests: Family::default(),
            ingest_rows: Family::default(),
            source_rows: Family::default(),
            ingest_bytes: Counter::default(),
            batch_rows: Histogram::new(exponential_buckets(1.0, 4.0, 9)),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            queued_rows: Gauge::default(),
            open_incidents: Family::default(),
            undelivered_notifications: Family::default(),
            detector_tick_seconds: Family::default(),
            detector_last_success: Family::default(),
            scrape: tokio::sync::Mutex::new(()),
            registry: Registry::default(),
        };
        registry.register("ingest_requests", "Log ingestion requests by outcome", m.ingest_requests.clone());
        registry.register("ingest_rows", "Log rows by outcome (committed, rejected, failed)", m.ingest_rows.clone());
        registry.register(
            "ingest_source_rows",
            "Log rows per front end (source) and outcome (stored, rejected, malformed, dropped, deferred)",
            m.source_rows.clone(),
        );
        registry.register("ingest_bytes", "Request body bytes received on ingest endpoints", m.ingest_bytes.clone());
        registry.register("ingest_batch_rows", "Rows per group-commit transaction", m.batch_rows.clone());
        registry.register("ingest_commit_seconds", "Duration of group-commit transactions", m.commit_seconds.clone());
        registry.register("ingest_queued_rows", "Rows accepted and waiting for their commit", m.queued_rows.clone());
        registry.register(
            "open_incidents",
            "Unresolved incidents (from the database at scrape time)",
            m.open_incidents.clone(),
        );
        registry.register(
            "notifications_undelivered",
            "Notification deliveries still pending (retrying) or failed, per target (from notification_deliveries)",
            m.undelivered_notifications.clone(),
        );
        registry.register(
            "detector_last_tick_duration_seconds",
            "Duration of each detector's last detect_incidents() tick (from detector_heartbeat)",
            m.detector_tick_seconds.clone(),
        );
        registry.register(
            "detector_last_success_timestamp_seconds",
            "Unix time of each detector's last successful tick (from detector_heartbeat)",
            m.detector_last_success.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn observe_commit(&self, rows: usize, took: Duration, ok: bool) {
        self.batch_rows.observe(rows as f64);
        self.commit_seconds.observe(took.as_secs_f64());
        let outcome = if ok { "committed" } else { "failed" };
        self.ingest_rows.get_or_create(&Outcome { outcome: outcome.into() }).inc_by(rows as u64);
    }

    /// Rows refused by validation.
    pub fn rejected_rows(&self, rows: usize) {
        if rows > 0 {
            self.ingest_rows.get_or_create(&Outcome { outcome: "rejected".into() }).inc_by(rows as u64);
        }
    }

    /// Rows of one front end: what it stored, and what it could not.
    pub fn source_rows(&self, source: &'static str, outcome: &'static str, rows: u64) {
        if rows > 0 {
            self.source_rows.get_or_create(&SourceOutcome { source, outcome }).inc_by(rows);
        }
    }

    pub fn request(&self, outcome: &str) {
        self.ingest_requests.get_or_create(&Outcome { outcome: outcome.into() }).inc();
    }

    /// The Prometheus text format (0.0.4), which every scraper and promtool read. prometheus-client
    /// writes OpenMetrics, where a counter's HELP/TYPE name lacks the `_total` its samples carry;
    /// this renames those lines and drops the OpenMetrics-only `# EOF` / `# UNIT` lines.
    pub fn encode(&self) -> String {
        let mut om = String::new();
        prometheus_client::encoding::text::encode(&mut om, &self.registry).expect("writing to a String");
        openmetrics_to_prometheus(&om)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn openmetrics_to_prometheus(om: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        om.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn counter_metadata_gets_the_total_suffix_of_its_samples() {
        let om = "# HELP x_requests Reqs.\n# TYPE x_requests counter\nx_requests_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n# EOF\n";
        let text = super::openmetrics_to_prometheus(om);
        assert_eq!(
            text,
            "# HELP x_requests_total Reqs.\n# TYPE x_requests_total counter\nx_requests_total 3\n# HELP g G.\n# TYPE g gauge\ng 1\n"
        );
    }
}
