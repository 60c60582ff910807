//! The validated log row: what `logs` stores. Invalid data cannot be represented here.
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    /// Case-insensitive, with the spellings common shippers and loggers use.
    pub fn parse(s: &str) -> Option<Level> {
        let up = s.trim().to_ascii_uppercase();
        Some(match up.as_str() {
            "DEBUG" | "TRACE" => Level::Debug,
            "INFO" | "NOTICE" => Level::Info,
            "WARN" | "WARNING" => Level::Warn,
            "ERROR" | "ERR" => Level::Error,
            "FATAL" | "CRITICAL" | "CRIT" | "PANIC" | "EMERG" | "ALERT" => Level::Fatal,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }

    /// What detection counts as an error (DESIGN: ERROR and FATAL).
    pub fn is_error(self) -> bool {
        matches!(self, Level::Error | Level::Fatal)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub ts: DateTime<Utc>,
    pub service: String,
    pub level: Level,
    pub status_code: Option<i32>,
    pub latency_ms: Option<f64>,
    pub message: Option<String>,
    pub attrs: Option<Attrs>,
    /// The message's pattern (`crate::pattern`); None without a message.
    pub pattern_id: Option<i64>,
}

/// A row's extra fields as JSON text (an object), serialized once by validation: its length is
/// what the size limit counts, and it is what COPY sends as `jsonb`.
#[derive(Debug, Clone, PartialEq)]
pub struct Attrs(String);

impl Attrs {
    pub fn new(fields: &serde_json::Map<String, serde_json::Value>) -> Attrs {
        Attrs(serde_json::to_string(fields).expect("a JSON object with string keys serializes"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).expect("serialized from a JSON object")
    }
}

impl std::fmt::Display for Attrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl postgres_types::ToSql for Attrs {
    fn to_sql(
        &self,
        ty: &postgres_types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres_types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // jsonb's binary form is a version byte (1) and the text; json's is the text
        if *ty == postgres_types::Type::JSONB {
            out.extend_from_slice(&[1]);
        }
        out.extend_from_slice(self.0.as_bytes());
        Ok(postgres_types::IsNull::No)
    }

    postgres_types::accepts!(JSON, JSONB);
    postgres_types::to_sql_checked!();
}
