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
    pub attrs: Option<serde_json::Value>,
    /// The message's pattern (`crate::pattern`); None without a message.
    pub pattern_id: Option<i64>,
}
