//! Loki's push API (`POST /loki/api/v1/push`): from a `PushRequest` (protobuf in the snappy
//! block format, which Promtail, Alloy and the Loki clients send by default, or JSON) to one
//! `/logs`-shaped item per log line. Only the mapping lives here:
//!
//! | Loki | logmon |
//! |---|---|
//! | the first of the labels `service_name`, `service`, `app`, `job`, `container` (then the same keys of structured metadata), else `unknown_service` | `service` |
//! | a `level`, `detected_level` or `severity` label or structured metadata, else `level=` (logfmt) or `"level"` (JSON) in the line, else INFO | `level` |
//! | the entry's timestamp (0: arrival time) | `ts` |
//! | the line (trailing whitespace and newline trimmed) | `message` |
//! | a `status_code` / `latency_ms` label or structured metadata (numeric) | `status_code` / `latency_ms` |
//! | every other label and structured metadata (metadata wins on a name clash) | `attrs` |
//!
//! Labels are looked at before structured metadata for `service` and `level`; a metadata
//! `status_code` / `latency_ms` wins over a label of that name.
use serde_json::{Map, Value};

use crate::ingest::item::{Fields, Item};
use crate::ingest::record::Level;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `PushRequest` protobuf, snappy-compressed (block format).
    Protobuf,
    Json,
}

impl Encoding {
    /// As Loki decides: `application/json` is JSON, anything else (including no header) is
    /// snappy-compressed protobuf.
    pub fn from_content_type(ct: Option<&str>) -> Encoding {
        let essence = ct.and_then(|c| c.split(';').next()).unwrap_or("").trim().to_ascii_lowercase();
        if essence == "application/json" || essence.ends_with("+json") { Encoding::Json } else { Encoding::Protobuf }
    }
}

/// Loki's `logproto` messages (pkg/push/push.proto); only what a push carries.
pub mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamAdapter {
        /// Prometheus label syntax: `{app="checkout", env="prod"}`.
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EntryAdapter {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(string, tag = "2")]
        pub line: String,
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPairAdapter {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// google.protobuf.Timestamp
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

/// One stream of a push: its labels (or why they could not be read) and its entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// The labels as the sender wrote them, for error messages.
    pub selector: String,
    pub labels: Result<Vec<(String, String)>, String>,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Nanoseconds since the epoch; 0 = not given.
    pub nanos: i128,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

/// Decodes a push body (already un-gzipped). `limit` caps what snappy may expand to, checked
/// against the length the snappy header claims before anything is allocated.
pub fn decode(encoding: Encoding, body: &[u8], limit: usize) -> Result<Vec<Stream>, String> {
    match encoding {
        Encoding::Protobuf => {
            use prost::Message;
            let not_snappy = |e: snap::Error| {
                format!(
                    "body is not snappy-compressed protobuf ({e}); a JSON push needs Content-Type: application/json"
                )
            };
            let len = snap::raw::decompress_len(body).map_err(not_snappy)?;
            if len > limit {
                return Err(format!("decompressed body would be {len} bytes, over the limit of {limit}"));
            }
            let raw = snap::raw::Decoder::new().decompress_vec(body).map_err(not_snappy)?;
            let req = proto::PushRequest::decode(&raw[..])
                .map_err(|e| format!("body is not a protobuf logproto.PushRequest: {e}"))?;
            Ok(req.streams.into_iter().map(from_proto).collect())
        }
        Encoding::Json => {
            let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
            from_json(v)
        }
    }
}

fn from_proto(s: proto::StreamAdapter) -> Stream {
    let entries = s
        .entries
        .into_iter()
        .map(|e| Entry {
            nanos: e.timestamp.map_or(0, |t| t.seconds as i128 * 1_000_000_000 + t.nanos as i128),
            line: e.line,
            metadata: e.structured_metadata.into_iter().map(|l| (l.name, l.value)).collect(),
        })
        .collect();
    Stream { labels: parse_selector(&s.labels), selector: s.labels, entries }
}

/// Both JSON shapes Loki has accepted: `{"streams": [{"stream": {labels}, "values": [["<ns>",
/// "<line>", {metadata}]]}]}` (v1) and `{"streams": [{"labels": "{...}", "entries": [{"ts":
/// "<RFC 3339>", "line": "..."}]}]}` (the legacy push, which python-logging-loki's default
/// emitter still sends).
fn from_json(v: Value) -> Result<Vec<Stream>, String> {
    let Value::Object(mut root) = v else {
        return Err("expected a JSON object {\"streams\": [...]}".into());
    };
    let streams = match root.remove("streams") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err("\"streams\" must be an array".into()),
        None => return Err("missing \"streams\"".into()),
    };
    Ok(streams.into_iter().enumerate().map(|(i, s)| json_stream(i, s)).collect())
}

fn json_stream(i: usize, s: Value) -> Stream {
    let bad = |selector: String, why: String| Stream { selector, labels: Err(why), entries: Vec::new() };
    let Value::Object(mut s) = s else {
        return bad(format!("streams[{i}]"), "a stream must be an object".into());
    };
    let (selector, labels) = match (s.remove("stream"), s.remove("labels")) {
        (Some(Value::Object(m)), _) => {
            let labels: Result<Vec<_>, String> = m
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    other => Err(format!("label {k:?} must be a string, got {other}")),
                })
                .collect();
            let selector = match &labels {
                Ok(l) => selector_of(l),
                Err(_) => format!("streams[{i}]"),
            };
            (selector, labels)
        }
        (None, Some(Value::String(sel))) => (sel.clone(), parse_selector(&sel)),
        (None, None) => (format!("streams[{i}]"), Ok(Vec::new())),
        _ => return bad(format!("streams[{i}]"), "\"stream\" must be an object of labels".into()),
    };
    let mut entries = Vec::new();
    let mut problem = None;
    match (s.remove("values"), s.remove("entries")) {
        (Some(Value::Array(values)), _) => {
            for (j, v) in values.into_iter().enumerate() {
                match json_value(v) {
                    Ok(e) => entries.push(e),
                    Err(why) => {
                        problem = Some(format!("values[{j}]: {why}"));
                        break;
                    }
                }
            }
        }
        (None, Some(Value::Array(legacy))) => {
            for (j, v) in legacy.into_iter().enumerate() {
                match json_legacy_entry(v) {
                    Ok(e) => entries.push(e),
                    Err(why) => {
                        problem = Some(format!("entries[{j}]: {why}"));
                        break;
                    }
                }
            }
        }
        (None, None) => {}
        _ => problem = Some("\"values\" must be an array of [\"<unix epoch in ns>\", \"<line>\"]".into()),
    }
    match problem {
        Some(why) => bad(selector, why),
        None => Stream { selector, labels, entries },
    }
}

fn json_value(v: Value) -> Result<Entry, String> {
    let Value::Array(mut a) = v else {
        return Err("expected [\"<unix epoch in ns>\", \"<line>\"]".into());
    };
    if a.len() < 2 || a.len() > 3 {
        return Err(format!("expected 2 or 3 elements, got {}", a.len()));
    }
    let metadata = match a.get_mut(2).map(Value::take) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        Some(_) => return Err("structured metadata must be an object".into()),
    };
    let nanos = match &a[0] {
        Value::String(s) => s.trim().parse::<i128>().map_err(|_| format!("timestamp {s:?} is not an integer of ns"))?,
        Value::Number(n) => {
            n.as_i64().map(i128::from).ok_or_else(|| format!("timestamp {n} is not an integer of ns"))?
        }
        other => return Err(format!("timestamp must be a string of ns, got {other}")),
    };
    let line = match a[1].take() {
        Value::String(s) => s,
        other => return Err(format!("the line must be a string, got {other}")),
    };
    Ok(Entry { nanos, line, metadata })
}

fn json_legacy_entry(v: Value) -> Result<Entry, String> {
    let Value::Object(mut e) = v else { return Err("an entry must be an object {\"ts\", \"line\"}".into()) };
    let nanos = match e.remove("ts").or_else(|| e.remove("timestamp")) {
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .map(i128::from)
            .ok_or_else(|| format!("ts {s:?} is not an RFC 3339 timestamp"))?,
        None | Some(Value::Null) => 0,
        Some(other) => return Err(format!("ts must be an RFC 3339 string, got {other}")),
    };
    match e.remove("line") {
        Some(Value::String(line)) => Ok(Entry { nanos, line, metadata: Vec::new() }),
        _ => Err("\"line\" must be a string".into()),
    }
}

fn selector_of(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Prometheus label syntax, as Loki reads a stream's `labels`: `{name="value", ...}` with `\"`,
/// `\\` and `\n` escapes.
pub fn parse_selector(s: &str) -> Result<Vec<(String, String)>, String> {
    let err = |what: &str| format!("cannot parse labels {s:?}: {what}");
    let body = s.trim().strip_prefix('{').and_then(|b| b.strip_suffix('}')).ok_or_else(|| err("expected {...}"))?;
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':' || *c == '.') {
            name.push(c);
        }
        if name.is_empty() {
            return Err(err("a label name is missing or has invalid characters"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(err(&format!("expected = after {name}")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('"') {
            return Err(err(&format!("the value of {name} must be quoted")));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return Err(err(&format!("the value of {name} is not closed"))),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => return Err(err("a dangling \\")),
                },
                Some(c) => value.push(c),
            }
        }
        out.push((name, value));
    }
}

/// One line as a `/logs` item, with where it came from.
pub struct Line {
    pub stream: usize,
    pub entry: usize,
    pub item: Item,
}

const SERVICE_KEYS: &[&str] = &["service_name", "service", "app", "job", "container"];
const LEVEL_KEYS: &[&str] = &["level", "detected_level", "severity"];

/// Every entry of the streams whose labels could be read, and, for the others, why not
/// (stream index, reason).
pub fn items(streams: &[Stream]) -> (Vec<Line>, Vec<(usize, String)>) {
    let mut out = Vec::with_capacity(streams.iter().map(|s| s.entries.len()).sum());
    let mut bad = Vec::new();
    for (si, s) in streams.iter().enumerate() {
        let labels = match &s.labels {
            Ok(l) => l,
            Err(why) => {
                bad.push((si, why.clone()));
                continue;
            }
        };
        let base = Base::of(labels);
        for (ei, e) in s.entries.iter().enumerate() {
            out.push(Line { stream: si, entry: ei, item: Item::Log(item(&base, e)) });
        }
    }
    (out, bad)
}

/// What a stream's labels decide for every line of it, worked out once per stream.
struct Base {
    service: Option<Value>,
    level: Option<Level>,
    numbers: Vec<(&'static str, Value)>,
    /// The labels that did not become a field.
    attrs: Map<String, Value>,
}

impl Base {
    fn of(labels: &[(String, String)]) -> Base {
        let mut attrs: Map<String, Value> = labels.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        Base {
            service: take_service(&mut attrs),
            level: take_level(&mut attrs),
            numbers: take_numbers(&mut attrs),
            attrs,
        }
    }
}

fn take_service(m: &mut Map<String, Value>) -> Option<Value> {
    let k = SERVICE_KEYS.iter().find(|k| matches!(m.get(**k), Some(Value::String(s)) if !s.is_empty()))?;
    m.remove(*k)
}

fn take_level(m: &mut Map<String, Value>) -> Option<Level> {
    LEVEL_KEYS.iter().find_map(|k| {
        let l = m.get(*k).and_then(Value::as_str).and_then(Level::parse)?;
        m.remove(*k);
        Some(l)
    })
}

fn take_numbers(m: &mut Map<String, Value>) -> Vec<(&'static str, Value)> {
    let mut out = Vec::new();
    for k in ["status_code", "latency_ms"] {
        if let Some(Value::String(s)) = m.get(k)
            && let Some(n) = number(s)
        {
            m.remove(k);
            out.push((k, n));
        }
    }
    out
}

/// Labels decide service and level first, structured metadata after; metadata wins for
/// status_code / latency_ms and for attrs of the same name.
fn item(base: &Base, e: &Entry) -> Fields {
    let mut attrs = base.attrs.clone();
    let mut service = base.service.clone();
    let mut level = base.level;
    let mut numbers = base.numbers.clone();
    if !e.metadata.is_empty() {
        let mut meta: Map<String, Value> =
            e.metadata.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        if service.is_none() {
            service = take_service(&mut meta);
        }
        if level.is_none() {
            level = take_level(&mut meta);
        }
        for (k, n) in take_numbers(&mut meta) {
            numbers.retain(|(old, _)| *old != k);
            numbers.push((k, n));
        }
        attrs.extend(meta);
    }
    let level = level.or_else(|| level_in_line(&e.line)).unwrap_or(Level::Info);
    let mut f = Fields {
        service: Some(service.unwrap_or_else(|| Value::String("unknown_service".into()))),
        level: Some(("level", Value::String(level.as_str().into()))),
        ts: (e.nanos != 0).then(|| ("ts", timestamp(e.nanos))),
        // Shippers leave the line's newline on (the Docker driver) or pad it (winston-loki).
        message: Some(("message", Value::String(e.line.trim_end().to_string()))),
        attrs: (!attrs.is_empty()).then_some(Value::Object(attrs)),
        ..Fields::default()
    };
    for (k, n) in numbers {
        match k {
            "status_code" => f.status_code = Some(n),
            _ => f.latency_ms = Some(n),
        }
    }
    f
}

fn number(s: &str) -> Option<Value> {
    let s = s.trim();
    s.parse::<i64>()
        .ok()
        .map(Value::from)
        .or_else(|| s.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number))
}

/// RFC 3339 while it fits chrono; beyond that the raw number, which validation refuses as out
/// of range with its usual message.
fn timestamp(nanos: i128) -> Value {
    match i64::try_from(nanos) {
        Ok(n) => {
            Value::String(chrono::DateTime::from_timestamp_nanos(n).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        }
        Err(_) => Value::String(nanos.to_string()),
    }
}

/// `level=warn` (logfmt, anywhere as a whole key) or a JSON line's `"level"`.
fn level_in_line(line: &str) -> Option<Level> {
    let t = line.trim_start();
    if t.starts_with('{') {
        if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(t) {
            return ["level", "severity"].iter().find_map(|k| m.get(*k).and_then(Value::as_str).and_then(Level::parse));
        }
        return None;
    }
    let mut rest = line;
    while let Some(at) = rest.find("level=") {
        let whole_key = at == 0 || rest.as_bytes()[at - 1] == b' ';
        let value = &rest[at + 6..];
        if whole_key {
            let v = value
                .strip_prefix('"')
                .map_or_else(|| value.split(' ').next().unwrap_or(""), |q| q.split('"').next().unwrap_or(""));
            return Level::parse(v);
        }
        rest = value;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use serde_json::json;

    fn snappy_proto(req: &proto::PushRequest) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()).unwrap()
    }

    #[test]
    fn protobuf_with_snappy_maps_labels_metadata_and_the_line() {
        let req = proto::PushRequest {
            streams: vec![proto::StreamAdapter {
                labels: r#"{app="checkout", env="prod", level="error", note="a \"quoted\" \\ value"}"#.into(),
                entries: vec![proto::EntryAdapter {
                    timestamp: Some(proto::Timestamp { seconds: 1_700_000_000, nanos: 5 }),
                    line: "payment failed".into(),
                    structured_metadata: vec![
                        proto::LabelPairAdapter { name: "trace_id".into(), value: "abc".into() },
                        proto::LabelPairAdapter { name: "status_code".into(), value: "503".into() },
                    ],
                }],
                hash: 0,
            }],
        };
        let streams = decode(Encoding::Protobuf, &snappy_proto(&req), 1 << 20).unwrap();
        let (items, bad) = items(&streams);
        assert!(bad.is_empty());
        assert_eq!(
            items[0].item.to_value(),
            json!({"service": "checkout", "level": "ERROR", "ts": "2023-11-14T22:13:20.000000005Z",
                   "message": "payment failed", "status_code": 503,
                   "attrs": {"env": "prod", "note": "a \"quoted\" \\ value", "trace_id": "abc"}})
        );
    }

    #[test]
    fn json_v1_and_the_legacy_shape_both_decode() {
        let v1 = json!({"streams": [{"stream": {"job": "api", "host": "h1"},
            "values": [["1700000000000000000", "level=warn msg=\"slow\"", {"user": "u1"}],
                       ["1700000000000000001", "{\"level\": \"debug\", \"msg\": \"x\"}"]]}]});
        let streams = decode(Encoding::Json, v1.to_string().as_bytes(), 1 << 20).unwrap();
        let (got, _) = items(&streams);
        assert_eq!(got[0].item.to_value()["service"], "api");
        assert_eq!(got[0].item.to_value()["level"], "WARN", "logfmt level= in the line");
        assert_eq!(got[0].item.to_value()["attrs"], json!({"host": "h1", "user": "u1"}));
        assert_eq!(got[1].item.to_value()["level"], "DEBUG", "JSON level in the line");

        let legacy = json!({"streams": [{"labels": "{severity=\"critical\", logger=\"x\"}",
            "entries": [{"ts": "2023-11-14T22:13:20.5Z", "line": "boom"}]}]});
        let streams = decode(Encoding::Json, legacy.to_string().as_bytes(), 1 << 20).unwrap();
        let (got, _) = items(&streams);
        assert_eq!(
            got[0].item.to_value(),
            json!({"service": "unknown_service", "level": "FATAL", "ts": "2023-11-14T22:13:20.500000000Z",
                   "message": "boom", "attrs": {"logger": "x"}})
        );
    }

    #[test]
    fn service_label_order_is_service_name_service_app_job_container() {
        let labels = [("container", "c"), ("job", "j"), ("app", "a"), ("service", "s"), ("service_name", "sn")];
        for n in (1..=labels.len()).rev() {
            let l: Vec<(String, String)> = labels[..n].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let s = Stream {
                selector: String::new(),
                labels: Ok(l),
                entries: vec![Entry { nanos: 0, line: "x".into(), metadata: vec![] }],
            };
            let (items, _) = items(&[s]);
            assert_eq!(items[0].item.to_value()["service"], labels[n - 1].1);
            assert_eq!(items[0].item.to_value().get("ts"), None, "no timestamp: arrival time");
        }
    }

    #[test]
    fn labels_decide_service_and_level_before_structured_metadata() {
        let meta = |k: &str, v: &str| (k.to_string(), v.to_string());
        let s = Stream {
            selector: String::new(),
            labels: Ok(vec![meta("app", "from-label"), meta("latency_ms", "5")]),
            entries: vec![
                Entry {
                    nanos: 0,
                    line: "x".into(),
                    metadata: vec![meta("service_name", "from-meta"), meta("level", "warn"), meta("latency_ms", "7.5")],
                },
                Entry { nanos: 0, line: "level=error y".into(), metadata: vec![] },
            ],
        };
        let (got, _) = items(&[s]);
        assert_eq!(
            got[0].item.to_value(),
            json!({"service": "from-label", "level": "WARN", "message": "x", "latency_ms": 7.5,
                   "attrs": {"service_name": "from-meta"}})
        );
        assert_eq!(
            got[1].item.to_value(),
            json!({"service": "from-label", "level": "ERROR", "message": "level=error y", "latency_ms": 5})
        );
    }

    #[test]
    fn a_stream_with_unreadable_labels_is_reported_and_its_neighbours_kept() {
        let v = json!({"streams": [{"stream": {"app": 3}, "values": [["1", "x"]]},
                                   {"stream": {"app": "ok"}, "values": [["1", "y"]]},
                                   {"stream": {"app": "bad"}, "values": [["yesterday", "z"]]}]});
        let streams = decode(Encoding::Json, v.to_string().as_bytes(), 1 << 20).unwrap();
        let (items, bad) = items(&streams);
        assert_eq!(items.len(), 1);
        assert_eq!(bad.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 2]);
        assert!(bad[1].1.contains("values[0]") && bad[1].1.contains("yesterday"), "{bad:?}");
    }

    #[test]
    fn label_selectors_parse_with_escapes_and_refuse_garbage() {
        assert_eq!(
            parse_selector(r#"{a="1",b = "x\ny", c="q\"}"}"#).unwrap(),
            vec![("a".into(), "1".into()), ("b".into(), "x\ny".into()), ("c".into(), "q\"}".into())]
        );
        assert_eq!(parse_selector("{}").unwrap(), vec![]);
        assert!(parse_selector("app=x").is_err());
        assert!(parse_selector(r#"{app="x}"#).is_err());
        assert!(parse_selector(r#"{="x"}"#).is_err());
    }

    #[test]
    fn a_snappy_bomb_is_refused_before_it_is_expanded() {
        let big = snap::raw::Encoder::new().compress_vec(&vec![0u8; 1 << 20]).unwrap();
        let e = decode(Encoding::Protobuf, &big, 1000).unwrap_err();
        assert!(e.contains("over the limit"), "{e}");
        assert!(decode(Encoding::Protobuf, b"{\"streams\": []}", 1000).unwrap_err().contains("application/json"));
    }

    #[test]
    fn content_type_decides_like_loki() {
        assert_eq!(Encoding::from_content_type(Some("application/json; charset=utf-8")), Encoding::Json);
        assert_eq!(Encoding::from_content_type(Some("application/x-protobuf")), Encoding::Protobuf);
        assert_eq!(Encoding::from_content_type(None), Encoding::Protobuf);
    }
}
