//! From one item of any source ([`Item`]) to a [`LogRecord`], or to every reason it is not one.
//! Field names and aliases follow DESIGN §4; limits are set by the collector's flags.
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use super::error::ItemError;
use super::item::{Item, LEVEL_KEYS, MESSAGE_KEYS, TS_KEYS};
use super::record::{Attrs, Level, LogRecord};
use super::sources::json::kind;

#[derive(Debug, Clone)]
pub struct Limits {
    /// Characters.
    pub max_service_len: usize,
    /// Characters.
    pub max_message_len: usize,
    pub max_attrs_bytes: usize,
    pub max_latency_ms: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_service_len: 256,
            max_message_len: 32 * 1024,
            max_attrs_bytes: 64 * 1024,
            max_latency_ms: 86_400_000.0,
        }
    }
}

/// The `ts` values a row may have: outside it there is no partition (see accepted_ts_range()).
#[derive(Debug, Clone, Copy)]
pub struct TsRange {
    pub oldest: DateTime<Utc>,
    pub newest: DateTime<Utc>,
}

pub fn validate_item(
    index: usize,
    item: Item,
    limits: &Limits,
    range: TsRange,
    now: DateTime<Utc>,
) -> Result<LogRecord, Vec<ItemError>> {
    let f = match item {
        Item::Log(f) => f,
        Item::NotAnObject(kind) => {
            return Err(vec![ItemError::new(index, None, format!("expected a log object, got {kind}"))]);
        }
    };
    let mut errs = Vec::new();
    let mut err = |field: &str, msg: String| errs.push(ItemError::new(index, Some(field.to_string()), msg));

    let service = match f.service {
        None | Some(Value::Null) => {
            err("service", "is required".into());
            None
        }
        Some(Value::String(s)) => match check_text(&s, limits.max_service_len) {
            _ if s.trim().is_empty() => {
                err("service", "must not be empty".into());
                None
            }
            Err(m) => {
                err("service", m);
                None
            }
            Ok(()) => Some(s),
        },
        Some(v) => {
            err("service", format!("must be a string, got {}", kind(&v)));
            None
        }
    };

    let level = match alias(f.level, LEVEL_KEYS) {
        (k, None | Some(Value::Null)) => {
            err(k, "is required".into());
            None
        }
        (k, Some(Value::String(s))) => match Level::parse(&s) {
            Some(l) => Some(l),
            None if s.trim().is_empty() => {
                err(k, "must not be empty".into());
                None
            }
            None => {
                err(
                    k,
                    format!("unknown level {:?} (expected DEBUG, INFO, WARN, ERROR or FATAL, any case)", truncate(&s)),
                );
                None
            }
        },
        (k, Some(v)) => {
            err(k, format!("must be a string, got {}", kind(&v)));
            None
        }
    };

    let message = match alias(f.message, MESSAGE_KEYS) {
        (_, None | Some(Value::Null)) => None,
        (k, Some(Value::String(s))) => match check_text(&s, limits.max_message_len) {
            Ok(()) => Some(s),
            Err(m) => {
                err(k, m);
                None
            }
        },
        (k, Some(v)) => {
            err(k, format!("must be a string, got {}", kind(&v)));
            None
        }
    };

    let ts = match alias(f.ts, TS_KEYS) {
        (_, None | Some(Value::Null)) => Some(now),
        (_, Some(Value::String(s))) if s.is_empty() => Some(now),
        (k, Some(v)) => match parse_ts(&v) {
            Ok(t) if t < range.oldest => {
                err(k, format!("{t} is older than the retention window (oldest accepted: {})", range.oldest));
                None
            }
            Ok(t) if t > range.newest => {
                err(k, format!("{t} is too far in the future (newest accepted: {})", range.newest));
                None
            }
            Ok(t) => Some(t),
            Err(m) => {
                err(k, m);
                None
            }
        },
    };

    let status_code = match f.status_code {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(c) if (100..=599).contains(&c) => Some(c as i32),
            Some(c) => {
                err("status_code", format!("{c} is not an HTTP status code (100..599)"));
                None
            }
            None => {
                err("status_code", format!("must be an integer, got {n}"));
                None
            }
        },
        Some(v) => {
            err("status_code", format!("must be an integer, got {}", kind(&v)));
            None
        }
    };

    let latency_ms = match f.latency_ms {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 && x <= limits.max_latency_ms => Some(x),
            Some(x) if x < 0.0 => {
                err("latency_ms", format!("must not be negative, got {n}"));
                None
            }
            _ => {
                err("latency_ms", format!("{n} is out of range (0..{} ms)", limits.max_latency_ms));
                None
            }
        },
        Some(v) => {
            err("latency_ms", format!("must be a number, got {}", kind(&v)));
            None
        }
    };

    // Everything else is kept as attrs. An explicit "attrs" object is merged in, not nested.
    let mut attrs = match f.attrs {
        Some(Value::Object(m)) => m,
        Some(Value::Null) | None => Map::new(),
        Some(other) => {
            let mut m = Map::new();
            m.insert("attrs".into(), other);
            m
        }
    };
    if attrs.is_empty() {
        attrs = f.extra;
    } else {
        attrs.extend(f.extra);
    }
    let attrs = if attrs.is_empty() {
        None
    } else {
        // Serialized once: the text is what the size limit counts and what COPY sends.
        let attrs = Attrs::new(&attrs);
        // serde_json writes NUL only as \u0000: without that text there is none to look for
        if attrs.as_str().contains("\\u0000")
            && let Err(m) = check_json(&attrs.to_value(), "attrs")
        {
            errs.push(ItemError::new(index, Some(m.0), m.1));
        }
        let size = attrs.as_str().len();
        if size > limits.max_attrs_bytes {
            errs.push(ItemError::new(
                index,
                Some("attrs".into()),
                format!("extra fields take {size} bytes, more than the limit of {}", limits.max_attrs_bytes),
            ));
        }
        Some(attrs)
    };

    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(LogRecord {
        ts: ts.expect("checked"),
        service: service.expect("checked"),
        level: level.expect("checked"),
        status_code,
        latency_ms,
        message,
        attrs,
        pattern_id: None,
    })
}

/// The alias a value came under (the field its errors name), or the first one when absent.
fn alias(slot: Option<(&'static str, Value)>, keys: &'static [&'static str]) -> (&'static str, Option<Value>) {
    match slot {
        Some((k, v)) => (k, Some(v)),
        None => (keys[0], None),
    }
}

/// PostgreSQL text cannot hold NUL, and a row must stay small.
/// Lengths are in characters, as PostgreSQL's length() and the OpenAPI document count them.
fn check_text(s: &str, max: usize) -> Result<(), String> {
    if s.contains('\0') {
        return Err("contains a NUL character, which PostgreSQL text cannot store".into());
    }
    // a byte length within the limit is a character length within it: count only beyond
    if s.len() > max && s.chars().count() > max {
        return Err(format!("is {} characters long, more than the limit of {max}", s.chars().count()));
    }
    Ok(())
}

/// jsonb cannot hold NUL either, in keys or in strings.
fn check_json(v: &Value, path: &str) -> Result<(), (String, String)> {
    match v {
        Value::String(s) if s.contains('\0') => Err((path.to_string(), "contains a NUL character".into())),
        Value::Array(a) => a.iter().enumerate().try_for_each(|(i, x)| check_json(x, &format!("{path}[{i}]"))),
        Value::Object(m) => m.iter().try_for_each(|(k, x)| {
            let p = format!("{path}.{k}");
            if k.contains('\0') {
                return Err((p, "field name contains a NUL character".into()));
            }
            check_json(x, &p)
        }),
        _ => Ok(()),
    }
}

/// RFC 3339 (a missing offset means UTC), or epoch seconds / ms / µs / ns told apart by size.
pub fn parse_ts(v: &Value) -> Result<DateTime<Utc>, String> {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if let Ok(d) = DateTime::parse_from_rfc3339(t) {
                return Ok(d.with_timezone(&Utc));
            }
            for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
                if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
                    return Ok(Utc.from_utc_datetime(&n));
                }
            }
            if let Ok(x) = t.parse::<f64>() {
                return epoch(x);
            }
            Err(format!("cannot parse {:?} as a timestamp (RFC 3339 or epoch seconds/ms/ns)", truncate(t)))
        }
        Value::Number(n) => epoch(n.as_f64().unwrap_or(f64::NAN)),
        other => Err(format!("must be an RFC 3339 string or an epoch number, got {}", kind(other))),
    }
}

fn epoch(x: f64) -> Result<DateTime<Utc>, String> {
    if !x.is_finite() || x < 0.0 {
        return Err(format!("epoch timestamp {x} is out of range"));
    }
    let secs = if x < 1e11 {
        x
    } else if x < 1e14 {
        x / 1e3
    } else if x < 1e17 {
        x / 1e6
    } else {
        x / 1e9
    };
    let whole = secs.floor();
    let nanos = ((secs - whole) * 1e9).round().min(999_999_999.0) as u32;
    DateTime::from_timestamp(whole as i64, nanos).ok_or_else(|| format!("epoch timestamp {x} is out of range"))
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Every item validated: all records, or the errors of every invalid item (tests' shorthand for
/// what `Pipeline::store_all` does).
#[cfg(test)]
fn validate_batch(
    items: Vec<Item>,
    limits: &Limits,
    range: TsRange,
    now: DateTime<Utc>,
) -> Result<Vec<LogRecord>, Vec<ItemError>> {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match validate_item(index, item, limits, range, now) {
            Ok(r) => records.push(r),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() { Ok(records) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn range() -> TsRange {
        let now = Utc::now();
        TsRange { oldest: now - chrono::Duration::days(7), newest: now + chrono::Duration::days(1) }
    }

    fn one(v: Value) -> Result<LogRecord, Vec<ItemError>> {
        validate_item(0, Item::from_value(v), &Limits::default(), range(), Utc::now())
    }

    fn fields(v: Value) -> Vec<String> {
        one(v).unwrap_err().into_iter().map(|e| e.field.unwrap_or_default()).collect()
    }

    #[test]
    fn a_nul_anywhere_in_the_extra_fields_is_named_by_its_path_and_an_escaped_one_as_text_is_not_a_nul() {
        let base = json!({"service": "a", "level": "INFO"});
        let with = |extra: Value| {
            let mut v = base.clone();
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            v
        };
        assert_eq!(fields(with(json!({"req": {"path": ["ok", "x\u{0}y"]}}))), ["attrs.req.path[1]"]);
        assert_eq!(fields(with(json!({"attrs": {"k\u{0}": 1}}))), ["attrs.k\u{0}"]);
        let r = one(with(json!({"note": "\\u0000 is how JSON writes a NUL"}))).unwrap();
        assert_eq!(r.attrs.unwrap().to_value()["note"], "\\u0000 is how JSON writes a NUL");
    }

    #[test]
    fn the_original_collectors_item_is_accepted() {
        let r = one(
            json!({"service": "auth", "level": "error", "message": "boom", "latency_ms": 12.5, "status_code": 503}),
        )
        .unwrap();
        assert_eq!(r.level, Level::Error);
        assert_eq!(r.status_code, Some(503));
        assert_eq!(r.attrs, None);
    }

    #[test]
    fn shipper_aliases_map_to_columns_and_unknown_fields_to_attrs() {
        let r = one(json!({"service": "a", "severity": "Warning", "msg": "m", "@timestamp": "2026-11-24T01:02:03Z",
                           "host": "h1", "log": "second message alias goes to attrs"}))
        .unwrap();
        assert_eq!(r.level, Level::Warn);
        assert_eq!(r.message.as_deref(), Some("m"));
        assert_eq!(r.ts.to_rfc3339(), "2026-11-24T01:02:03+00:00");
        assert_eq!(
            r.attrs.map(|a| a.to_value()),
            Some(json!({"host": "h1", "log": "second message alias goes to attrs"}))
        );
    }

    #[test]
    fn epoch_seconds_millis_and_nanos_are_the_same_instant() {
        let s = parse_ts(&json!(1_764_000_000.5)).unwrap();
        assert_eq!(parse_ts(&json!(1_764_000_000_500u64)).unwrap(), s);
        assert_eq!(parse_ts(&json!(1_764_000_000_500_000_000u64)).unwrap(), s);
        assert_eq!(parse_ts(&json!("1764000000.5")).unwrap(), s);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let f = fields(json!({"level": "LOUD", "status_code": 700, "latency_ms": -1, "ts": "yesterday"}));
        assert_eq!(f, vec!["service", "level", "ts", "status_code", "latency_ms"]);
    }

    #[test]
    fn nul_bytes_are_refused_in_columns_and_in_attrs() {
        assert_eq!(fields(json!({"service": "a\u{0}b", "level": "INFO"})), vec!["service"]);
        assert_eq!(fields(json!({"service": "a", "level": "INFO", "x": {"y": "\u{0}"}})), vec!["attrs.x.y"]);
    }

    #[test]
    fn non_integer_status_and_absurd_ts_are_refused() {
        assert_eq!(fields(json!({"service": "a", "level": "INFO", "status_code": 200.5})), vec!["status_code"]);
        assert_eq!(fields(json!({"service": "a", "level": "INFO", "ts": "1970-01-01T00:00:00Z"})), vec!["ts"]);
        assert_eq!(fields(json!({"service": "a", "level": "INFO", "ts": "2999-01-01T00:00:00Z"})), vec!["ts"]);
    }

    #[test]
    fn missing_or_empty_ts_means_now() {
        let now = Utc::now();
        let item = Item::from_value(json!({"service": "a", "level": "INFO", "ts": ""}));
        let r = validate_item(0, item, &Limits::default(), range(), now);
        assert_eq!(r.unwrap().ts, now);
    }

    #[test]
    fn a_batch_with_one_bad_item_yields_only_that_items_errors() {
        let items = vec![json!({"service": "a", "level": "INFO"}), json!(42), json!({"service": "b", "level": "INFO"})];
        let items = items.into_iter().map(Item::from_value).collect();
        let errs = validate_batch(items, &Limits::default(), range(), Utc::now()).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].index, Some(1));
    }
}

/// Fuzzing the parser and validator with generated input (proptest): whatever arrives, they
/// answer without panicking, and whatever they accept satisfies the table's constraints.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::ingest::sources::json::{BodyFormat, items};
    use proptest::prelude::*;

    fn range() -> TsRange {
        let now = Utc::now();
        TsRange { oldest: now - chrono::Duration::days(7), newest: now + chrono::Duration::days(1) }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            ".{0,40}".prop_map(Value::from),
            prop_oneof![Just("INFO"), Just("error"), Just("2026-11-24T00:00:00Z"), Just(""), Just("\u{0}")]
                .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("service".to_string()),
                        Just("level".to_string()),
                        Just("ts".to_string()),
                        Just("latency_ms".to_string()),
                        Just("status_code".to_string()),
                        Just("msg".to_string()),
                        Just("date".to_string()),
                        Just("attrs".to_string()),
                        ".{0,8}"
                    ],
                    inner,
                    0..8
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn check(records: &[LogRecord], r: TsRange) {
        for rec in records {
            assert!(!rec.service.trim().is_empty() && !rec.service.contains('\0') && rec.service.len() <= 256);
            assert!(rec.latency_ms.is_none_or(|l| l.is_finite() && l >= 0.0));
            assert!(rec.status_code.is_none_or(|c| (100..=599).contains(&c)));
            assert!(rec.ts >= r.oldest && rec.ts <= r.newest);
            assert!(!rec.message.as_deref().unwrap_or("").contains('\0'));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512), nd in any::<bool>()) {
            let format = if nd { BodyFormat::NdJson } else { BodyFormat::Json };
            if let Ok(items) = items(format, &body) {
                let r = range();
                if let Ok(records) = validate_batch(items, &Limits::default(), r, Utc::now()) {
                    check(&records, r);
                }
            }
        }

        #[test]
        fn arbitrary_json_items_are_accepted_only_when_valid(v in prop::collection::vec(json_value(), 0..6)) {
            let r = range();
            let n = v.len();
            match validate_batch(v.into_iter().map(Item::from_value).collect(), &Limits::default(), r, Utc::now()) {
                Ok(records) => { prop_assert_eq!(records.len(), n); check(&records, r); }
                Err(errs) => prop_assert!(errs.iter().all(|e| e.index.is_some_and(|i| i < n) && !e.error.is_empty())),
            }
        }
    }
}
