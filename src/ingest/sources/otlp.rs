//! OTLP/HTTP logs (`POST /v1/logs`): from an `ExportLogsServiceRequest` (protobuf or OTLP/JSON)
//! to one `/logs`-shaped JSON item per log record, so OTLP data goes through exactly the same
//! validation as everything else. Only the mapping lives here:
//!
//! | OTLP | logmon |
//! |---|---|
//! | resource attribute `service.name` (else `unknown_service`) | `service` |
//! | `severityNumber`, else `severityText`, else a `level` / `severity` / `log.level` attribute or body field, else INFO | `level` |
//! | `timeUnixNano` (else `observedTimeUnixNano`, else now) | `ts` |
//! | `body` (a string as is, anything else as compact JSON) | `message` |
//! | attribute `http.response.status_code` / `http.status_code` | `status_code` |
//! | attribute `latency_ms` / `duration_ms` (ms) or `http.server.request.duration` (s) | `latency_ms` |
//! | other resource and record attributes, `trace_id`, `span_id`, `event_name`, `otel.scope.name` | `attrs` |
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord as OtlpRecord;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::ingest::item::{Fields, Item};
use crate::ingest::record::Level;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The two encodings the OTLP/HTTP spec defines; anything else is a 415.
    pub fn from_content_type(ct: Option<&str>) -> Option<Encoding> {
        let essence = ct?.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Decodes the request; the error says what is wrong and, for JSON, where (a field path).
pub fn decode(encoding: Encoding, body: &[u8]) -> Result<ExportLogsServiceRequest, String> {
    match encoding {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(body)
            .map_err(|e| format!("body is not a protobuf ExportLogsServiceRequest: {e}")),
        Encoding::Json if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') => {
            Err("body is a JSON array, not an OTLP/JSON ExportLogsServiceRequest ({\"resourceLogs\": [...]}); \
             send plain JSON logs to POST /logs"
                .into())
        }
        Encoding::Json => {
            let value: Value = serde_json::from_slice(body).map_err(|e| match std::str::from_utf8(body) {
                Err(u) => {
                    format!("body is not valid UTF-8 (OTLP/JSON must be): invalid byte at offset {}", u.valid_up_to())
                }
                Ok(_) => format!("body is not an OTLP/JSON ExportLogsServiceRequest: invalid JSON: {e}"),
            })?;
            if let Some((path, key)) = protobuf_spelling(&value, String::new()) {
                return Err(format!(
                    "at {path}: {key:?} is the protobuf field name; OTLP/JSON spells it {:?} (lowerCamelCase)",
                    lower_camel(key)
                ));
            }
            serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                if path == "." {
                    format!("body is not an OTLP/JSON ExportLogsServiceRequest: {}", e.inner())
                } else {
                    format!("body is not an OTLP/JSON ExportLogsServiceRequest: at {path}: {}", e.inner())
                }
            })
        }
    }
}

/// The OTLP fields whose protobuf names (snake_case) differ from their OTLP/JSON names. The spec
/// has receivers ignore unknown fields, so `{"resource_logs": ...}` would decode as an empty
/// request and be answered 200 with nothing stored: these are refused instead, naming the field.
const PROTOBUF_NAMES: &[&str] = &[
    "resource_logs",
    "scope_logs",
    "log_records",
    "schema_url",
    "time_unix_nano",
    "observed_time_unix_nano",
    "severity_number",
    "severity_text",
    "dropped_attributes_count",
    "trace_id",
    "span_id",
    "event_name",
    "string_value",
    "bool_value",
    "int_value",
    "double_value",
    "array_value",
    "kvlist_value",
    "bytes_value",
];

/// The first key (and its path) spelled the protobuf way.
fn protobuf_spelling(v: &Value, path: String) -> Option<(String, &str)> {
    match v {
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            let here = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            if PROTOBUF_NAMES.contains(&k.as_str()) {
                return Some((here, k.as_str()));
            }
            protobuf_spelling(x, here)
        }),
        Value::Array(a) => a.iter().enumerate().find_map(|(i, x)| protobuf_spelling(x, format!("{path}[{i}]"))),
        _ => None,
    }
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut up = false;
    for c in snake.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// One log record as a `/logs` item, with where it came from in the request.
pub struct Record {
    /// e.g. `resourceLogs[0].scopeLogs[1].logRecords[7]`
    pub path: String,
    pub item: Item,
}

pub fn record_count(req: &ExportLogsServiceRequest) -> usize {
    req.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum()
}

pub fn items(req: ExportLogsServiceRequest) -> Vec<Record> {
    let mut out = Vec::with_capacity(record_count(&req));
    for (ri, rl) in req.resource_logs.into_iter().enumerate() {
        let mut resource = rl.resource.map(|r| attributes(r.attributes)).unwrap_or_default();
        let service = match resource.remove("service.name") {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => "unknown_service".to_string(),
        };
        for (si, sl) in rl.scope_logs.into_iter().enumerate() {
            let scope = sl.scope.map(|s| s.name).filter(|n| !n.is_empty());
            for (li, rec) in sl.log_records.into_iter().enumerate() {
                let item = Item::Log(item(&service, &resource, scope.as_deref(), rec));
                out.push(Record { path: format!("resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]"), item });
            }
        }
    }
    out
}

/// The OTLP name of a `/logs` field, for error messages about an OTLP record.
pub fn otlp_field(field: &str) -> String {
    let (head, rest) = field.split_once('.').map_or((field, ""), |(h, r)| (h, r));
    let head = match head {
        "service" => "resource.attributes[service.name]",
        "level" => "severityText",
        "ts" => "timeUnixNano",
        "message" => "body",
        "status_code" => "attributes[http.response.status_code]",
        "latency_ms" => "attributes[latency_ms]",
        "attrs" => "attributes",
        other => other,
    };
    if rest.is_empty() { head.to_string() } else { format!("{head}.{rest}") }
}

const STATUS_KEYS: &[&str] = &["http.response.status_code", "http.status_code"];
const LATENCY_MS_KEYS: &[&str] = &["latency_ms", "duration_ms"];
const LATENCY_S_KEYS: &[&str] = &["http.server.request.duration"];

fn item(service: &str, resource: &Map<String, Value>, scope: Option<&str>, rec: OtlpRecord) -> Fields {
    let mut attrs = resource.clone();
    if let Some(s) = scope {
        attrs.insert("otel.scope.name".into(), Value::String(s.to_string()));
    }
    attrs.extend(attributes(rec.attributes));

    let mut f = Fields { service: Some(Value::String(service.to_string())), ..Fields::default() };
    let body = rec.body.and_then(|b| b.value).map(any_to_json);
    let level = if rec.severity_number == 0 && rec.severity_text.is_empty() {
        // No OTLP severity: shippers that forward plain records (Fluent Bit, Vector) often carry
        // the application's own level as an attribute or a body field.
        level_field(&mut attrs, body.as_ref()).unwrap_or(Level::Info)
    } else {
        level(rec.severity_number, &rec.severity_text).unwrap_or_else(|| {
            attrs.insert("otel.severity_text".into(), Value::String(rec.severity_text.clone()));
            Level::Info
        })
    };
    f.level = Some(("level", Value::String(level.as_str().into())));
    let nanos = if rec.time_unix_nano != 0 { rec.time_unix_nano } else { rec.observed_time_unix_nano };
    if nanos != 0 {
        f.ts = Some(("ts", timestamp(nanos)));
    }
    f.message = match body {
        None => None,
        Some(Value::String(s)) => Some(("message", Value::String(s))),
        Some(other) => Some(("message", Value::String(other.to_string()))),
    };
    f.status_code = take_first(&mut attrs, STATUS_KEYS).map(numeric);
    if let Some(v) = take_first(&mut attrs, LATENCY_MS_KEYS) {
        f.latency_ms = Some(numeric(v));
    } else if let Some(v) = take_first(&mut attrs, LATENCY_S_KEYS) {
        let ms = match numeric(v) {
            Value::Number(n) => n.as_f64().and_then(|s| serde_json::Number::from_f64(s * 1000.0)).map(Value::Number),
            other => Some(other),
        };
        f.latency_ms = Some(ms.unwrap_or(Value::Null));
    }
    if !rec.trace_id.is_empty() && rec.trace_id.iter().any(|b| *b != 0) {
        attrs.insert("trace_id".into(), Value::String(hex(&rec.trace_id)));
    }
    if !rec.span_id.is_empty() && rec.span_id.iter().any(|b| *b != 0) {
        attrs.insert("span_id".into(), Value::String(hex(&rec.span_id)));
    }
    if !rec.event_name.is_empty() {
        attrs.insert("event_name".into(), Value::String(rec.event_name));
    }
    // Under "attrs", so an attribute called e.g. "message" stays an attribute.
    if !attrs.is_empty() {
        f.attrs = Some(Value::Object(attrs));
    }
    f
}

/// OTel's severity ranges (1-4 TRACE .. 21-24 FATAL); SeverityNumber 0 means "use the text".
/// `None`: neither says anything logmon knows; the caller keeps the text and stores INFO.
fn level(number: i32, text: &str) -> Option<Level> {
    match number {
        1..=8 => Some(Level::Debug),
        9..=12 => Some(Level::Info),
        13..=16 => Some(Level::Warn),
        17..=20 => Some(Level::Error),
        21..=24 => Some(Level::Fatal),
        _ if text.is_empty() => Some(Level::Info),
        _ => Level::parse(text).or_else(|| {
            let t = text.trim().to_ascii_lowercase();
            (t == "information" || t == "informational").then_some(Level::Info)
        }),
    }
}

const LEVEL_KEYS: &[&str] = &["level", "severity", "log.level"];

/// A level named by an attribute (taken out of attrs) or by a key of a structured body.
fn level_field(attrs: &mut Map<String, Value>, body: Option<&Value>) -> Option<Level> {
    for k in LEVEL_KEYS {
        if let Some(l) = attrs.get(*k).and_then(Value::as_str).and_then(Level::parse) {
            attrs.remove(*k);
            return Some(l);
        }
    }
    let fields = body?.as_object()?;
    LEVEL_KEYS.iter().find_map(|k| fields.get(*k).and_then(Value::as_str).and_then(Level::parse))
}

/// RFC 3339 with nanoseconds while it fits an i64; beyond that a number, which validation then
/// refuses as out of range with the usual message.
fn timestamp(nanos: u64) -> Value {
    match i64::try_from(nanos) {
        Ok(n) => {
            Value::String(chrono::DateTime::from_timestamp_nanos(n).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        }
        Err(_) => json!(nanos),
    }
}

fn take_first(attrs: &mut Map<String, Value>, keys: &[&str]) -> Option<Value> {
    keys.iter().find_map(|k| attrs.remove(*k))
}

/// Senders disagree on whether a status code is an int or a string; accept both.
fn numeric(v: Value) -> Value {
    match &v {
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .ok()
            .or_else(|| s.trim().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number))
            .unwrap_or(v),
        _ => v,
    }
}

/// Attributes as a JSON object; a repeated key keeps its last value.
fn attributes(kvs: Vec<KeyValue>) -> Map<String, Value> {
    kvs.into_iter().map(|kv| (kv.key, kv.value.and_then(|v| v.value).map_or(Value::Null, any_to_json))).collect()
}

fn any_to_json(v: any_value::Value) -> Value {
    use any_value::Value as V;
    match v {
        V::StringValue(s) => Value::String(s),
        V::BoolValue(b) => Value::Bool(b),
        V::IntValue(i) => Value::from(i),
        V::DoubleValue(d) => {
            serde_json::Number::from_f64(d).map_or_else(|| Value::String(d.to_string()), Value::Number)
        }
        V::ArrayValue(a) => {
            Value::Array(a.values.into_iter().map(|x: AnyValue| x.value.map_or(Value::Null, any_to_json)).collect())
        }
        V::KvlistValue(kv) => Value::Object(attributes(kv.values)),
        V::BytesValue(b) => Value::String(hex(&b)),
        #[allow(unreachable_patterns)]
        _ => Value::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_request(v: Value) -> ExportLogsServiceRequest {
        decode(Encoding::Json, v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn otlp_json_maps_onto_the_logs_fields_and_keeps_the_rest_as_attrs() {
        let req = json_request(json!({"resourceLogs": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "checkout"}},
                {"key": "host.name", "value": {"stringValue": "web-1"}}]},
            "scopeLogs": [{"scope": {"name": "app.http"}, "logRecords": [{
                "timeUnixNano": "1700000000123456789",
                "severityNumber": 17, "severityText": "Error",
                "body": {"stringValue": "payment failed"},
                "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                "attributes": [
                    {"key": "http.response.status_code", "value": {"intValue": "503"}},
                    {"key": "latency_ms", "value": {"doubleValue": 812.5}},
                    {"key": "message", "value": {"stringValue": "an attribute, not the body"}},
                    {"key": "retry", "value": {"boolValue": true}}]}]}]}]}));
        let items = items(req);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].path, "resourceLogs[0].scopeLogs[0].logRecords[0]");
        assert_eq!(
            items[0].item.to_value(),
            json!({"service": "checkout", "level": "ERROR", "ts": "2023-11-14T22:13:20.123456789Z",
                   "message": "payment failed", "status_code": 503, "latency_ms": 812.5,
                   "attrs": {"host.name": "web-1", "otel.scope.name": "app.http", "retry": true,
                             "message": "an attribute, not the body",
                             "trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174"}})
        );
    }

    #[test]
    fn severity_number_wins_then_text_then_info() {
        assert_eq!(level(1, ""), Some(Level::Debug));
        assert_eq!(level(13, "ERROR"), Some(Level::Warn));
        assert_eq!(level(21, ""), Some(Level::Fatal));
        assert_eq!(level(0, "warning"), Some(Level::Warn));
        assert_eq!(level(0, "Information"), Some(Level::Info));
        assert_eq!(level(0, ""), Some(Level::Info));
        assert_eq!(level(0, "chatty"), None);
    }

    #[test]
    fn missing_service_name_and_timestamp_follow_the_otel_defaults() {
        let req = json_request(json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"observedTimeUnixNano": "1700000000000000000", "body": {"kvlistValue": {"values": [
                {"key": "k", "value": {"intValue": 3}}]}}},
            {"severityText": "chatty"}]}]}]}));
        let items = items(req);
        assert_eq!(items[0].item.to_value()["service"], "unknown_service");
        assert_eq!(items[0].item.to_value()["ts"], "2023-11-14T22:13:20.000000000Z");
        assert_eq!(items[0].item.to_value()["message"], r#"{"k":3}"#);
        assert_eq!(items[1].item.to_value().get("ts"), None, "no timestamp at all: validation uses the arrival time");
        assert_eq!(items[1].item.to_value()["level"], "INFO");
        assert_eq!(items[1].item.to_value()["attrs"]["otel.severity_text"], "chatty");
    }

    #[test]
    fn without_an_otlp_severity_the_level_comes_from_an_attribute_or_the_body() {
        let req = json_request(json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"attributes": [{"key": "level", "value": {"stringValue": "error"}}]},
            {"body": {"kvlistValue": {"values": [{"key": "log.level", "value": {"stringValue": "warning"}},
                                                 {"key": "msg", "value": {"stringValue": "disk"}}]}}},
            {"severityNumber": 9, "attributes": [{"key": "level", "value": {"stringValue": "error"}}]}]}]}]}));
        let items = items(req);
        assert_eq!(items[0].item.to_value()["level"], "ERROR");
        assert_eq!(items[0].item.to_value().get("attrs"), None, "the attribute became the level");
        assert_eq!(items[1].item.to_value()["level"], "WARN");
        assert_eq!(items[2].item.to_value()["level"], "INFO", "an OTLP severity wins");
        assert_eq!(items[2].item.to_value()["attrs"]["level"], "error");
    }

    #[test]
    fn a_latency_in_seconds_is_converted_to_ms() {
        let req = json_request(json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [
            {"key": "http.server.request.duration", "value": {"doubleValue": 0.25}},
            {"key": "http.status_code", "value": {"stringValue": "404"}}]}]}]}]}));
        let v = &items(req)[0].item.to_value();
        assert_eq!((v["latency_ms"].as_f64(), v["status_code"].as_i64()), (Some(250.0), Some(404)));
    }

    #[test]
    fn protobuf_and_json_decode_to_the_same_request() {
        let v = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"timeUnixNano": "1700000000000000000", "severityNumber": 9, "body": {"stringValue": "hi"}}]}]}]});
        let from_json = json_request(v);
        let from_pb = decode(Encoding::Protobuf, &from_json.encode_to_vec()).unwrap();
        assert_eq!(from_pb, from_json);
    }

    #[test]
    fn a_malformed_json_request_says_where() {
        let e = decode(
            Encoding::Json,
            br#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "yesterday"}]}]}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano"), "{e}");
        assert!(decode(Encoding::Protobuf, b"\xff\xff\xff").is_err());
        let e = decode(Encoding::Json, br#" [{"service": "a", "level": "INFO"}]"#).unwrap_err();
        assert!(e.contains("POST /logs"), "a /logs body sent to /v1/logs gets a hint: {e}");
    }

    #[test]
    fn protobuf_field_names_in_otlp_json_are_refused_with_the_json_spelling() {
        let e = decode(Encoding::Json, br#"{"resource_logs": [{"scope_logs": [{"log_records": [{}]}]}]}"#).unwrap_err();
        assert!(e.contains("resource_logs") && e.contains("\"resourceLogs\""), "{e}");
        let e = decode(
            Encoding::Json,
            br#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severity_text": "ERROR"}]}]}]}"#,
        )
        .unwrap_err();
        assert!(e.contains("resourceLogs[0].scopeLogs[0].logRecords[0].severity_text"), "{e}");
        assert!(e.contains("\"severityText\""), "{e}");
        // a string value that happens to read like a field name is data, not a key
        assert!(decode(Encoding::Json, br#"{"resourceLogs": [{"schemaUrl": "resource_logs"}]}"#).is_ok());
    }

    #[test]
    fn invalid_utf8_is_named_as_such() {
        let e = decode(Encoding::Json, b"{\"resourceLogs\": \"\xff\"}").unwrap_err();
        assert!(e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn field_names_in_errors_are_translated_to_otlp() {
        assert_eq!(otlp_field("ts"), "timeUnixNano");
        assert_eq!(otlp_field("attrs.x.y"), "attributes.x.y");
    }
}
