//! Response shapes. Timestamps are RFC 3339 with microseconds and an offset
//! (`2026-11-23T23:35:52.754551+00:00`), as the original API wrote them.
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use tokio_postgres::Row;

pub fn ts<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, false))
}

pub fn ts_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ts(t, s),
        None => s.serialize_none(),
    }
}

/// Columns every incident query selects, in `Incident::from_row` order.
pub const INCIDENT_COLUMNS: &str = "id, created_at, service, incident_type, severity, summary, window_start, window_end, \
     status, last_seen_at, resolved_at, acknowledged_at, acknowledged_by, resolved_by, observed, threshold, peak, rule_id, details, \
     CASE WHEN status = 'resolved' THEN '{}' ELSE silenced_by(service, incident_type, severity)::text[] END, \
     coalesce(breach_start, window_start)";

#[derive(Debug, Serialize)]
pub struct Incident {
    pub id: i64,
    #[serde(serialize_with = "ts")]
    pub created_at: DateTime<Utc>,
    pub service: String,
    pub incident_type: String,
    pub severity: String,
    pub summary: String,
    #[serde(serialize_with = "ts")]
    pub window_start: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub window_end: DateTime<Utc>,
    pub status: String,
    #[serde(serialize_with = "ts")]
    pub last_seen_at: DateTime<Utc>,
    #[serde(serialize_with = "ts_opt")]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ts_opt")]
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_by: Option<String>,
    pub observed: f64,
    pub threshold: f64,
    pub peak: f64,
    pub rule_id: Option<i64>,
    pub details: serde_json::Value,
    /// Ids of the active silences holding this (unresolved) incident's notifications.
    pub silenced_by: Vec<String>,
    /// Start of the window of the breach that opened the incident (window_start follows later
    /// evaluations): where the lines behind it (GET /incidents/{id}/logs) begin.
    #[serde(serialize_with = "ts")]
    pub breach_start: DateTime<Utc>,
}

impl Incident {
    pub fn from_row(r: &Row) -> Incident {
        Incident {
            id: r.get(0),
            created_at: r.get(1),
            service: r.get(2),
            incident_type: r.get(3),
            severity: r.get(4),
            summary: r.get(5),
            window_start: r.get(6),
            window_end: r.get(7),
            status: r.get(8),
            last_seen_at: r.get(9),
            resolved_at: r.get(10),
            acknowledged_at: r.get(11),
            acknowledged_by: r.get(12),
            resolved_by: r.get(13),
            observed: r.get(14),
            threshold: r.get(15),
            peak: r.get(16),
            rule_id: r.get(17),
            details: r.get(18),
            silenced_by: r.get(19),
            breach_start: r.get(20),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct IncidentEvent {
    pub id: i64,
    #[serde(serialize_with = "ts")]
    pub at: DateTime<Utc>,
    pub event: String,
    pub actor: String,
    pub details: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub struct ServiceStats {
    pub service: String,
    pub window_minutes: i64,
    pub total: i64,
    pub errors: i64,
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub avg_latency_ms: Option<f64>,
    pub max_latency_ms: Option<f64>,
}

/// A log line as GET /logs answers it: the keys a sender used, plus attrs, received_at, the
/// line's pattern (id as 16 hex digits, and template) and its cursor (to continue after it).
#[derive(Debug, Serialize)]
pub struct LogLine {
    #[serde(serialize_with = "ts")]
    pub ts: DateTime<Utc>,
    pub service: Option<String>,
    pub level: Option<String>,
    pub message: Option<String>,
    pub latency_ms: Option<f64>,
    pub status_code: Option<i32>,
    pub attrs: Option<serde_json::Value>,
    #[serde(serialize_with = "ts_opt")]
    pub received_at: Option<DateTime<Utc>>,
    pub pattern_id: Option<String>,
    pub pattern: Option<String>,
    pub cursor: String,
}

impl LogLine {
    /// From a row of `ts, service, level, message, latency_ms, status_code, attrs, received_at,
    /// pattern_id, pattern, cursor` (a log_line).
    pub fn from_row(r: &Row) -> LogLine {
        LogLine {
            ts: r.get(0),
            service: r.get(1),
            level: r.get(2),
            message: r.get(3),
            latency_ms: r.get(4),
            status_code: r.get(5),
            attrs: r.get(6),
            received_at: r.get(7),
            pattern_id: r.get::<_, Option<i64>>(8).map(super::search::format_pattern_id),
            pattern: r.get(9),
            cursor: r.get(10),
        }
    }
}
