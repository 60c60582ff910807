//! Elasticsearch's bulk API (`POST /_bulk`, `POST /{index}/_bulk`): NDJSON pairs of an action
//! line and a document, each document mapped to one `/logs`-shaped item. Only the mapping lives
//! here (Elastic Common Schema names, dotted or nested, then the aliases `/logs` knows):
//!
//! | document | logmon |
//! |---|---|
//! | `service.name`, else `service` (a string), else `app`, else the index name | `service` |
//! | `log.level`, else `level`, else `severity`, else INFO | `level` |
//! | `@timestamp`, else `timestamp`, `ts`, `time`, `date` (else arrival time) | `ts` |
//! | `message`, else `msg`, else `log` (a string) | `message` |
//! | `http.response.status_code`, else `status_code` | `status_code` |
//! | `event.duration` (ns), else `latency_ms`, `duration_ms` (ms) | `latency_ms` |
//! | the index (`_index` of the action, else the one in the path) as `_index`, and every other field | `attrs` |
use serde_json::{Map, Value};

use crate::ingest::item::{Fields, Item};
use crate::ingest::record::Level;

/// The four bulk actions; logmon stores documents, so only `index` and `create` take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Index,
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// One operation of a bulk request, in request order.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub action: Action,
    pub index: String,
    /// The `_id` the sender gave, if any.
    pub id: Option<String>,
    /// The document as a `/logs` item, or why it is not one (an ES error type and reason).
    pub doc: Result<Item, DocError>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DocError {
    /// e.g. `document_parsing_exception`, as Elasticsearch names its errors.
    pub kind: &'static str,
    pub reason: String,
}

/// A request that cannot be read at all (Elasticsearch answers these with a top-level 400).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkError {
    pub kind: &'static str,
    pub reason: String,
}

/// What an action line says about its document (other keys, e.g. `_type`, `pipeline`, are
/// ignored).
#[derive(serde::Deserialize)]
struct Params {
    #[serde(rename = "_index")]
    index: Option<String>,
    #[serde(rename = "_id")]
    id: Option<Id>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(i64),
}

/// Reads the NDJSON body. An unreadable action line fails the whole request (the pairs after
/// it cannot be told apart); an unreadable document fails only its own item.
pub fn parse(body: &[u8], path_index: Option<&str>) -> Result<Vec<Op>, BulkError> {
    let mut ops = Vec::new();
    let mut lines = body.split(|b| *b == b'\n').enumerate().filter(|(_, l)| !l.trim_ascii().is_empty());
    while let Some((n, line)) = lines.next() {
        let line_no = n + 1;
        let malformed = |why: String| BulkError {
            kind: "illegal_argument_exception",
            reason: format!("Malformed action/metadata line [{line_no}], {why}"),
        };
        // Typed, not a serde_json tree: action lines are half of what a bulk request holds.
        let meta: std::collections::BTreeMap<String, Params> =
            serde_json::from_slice(line).map_err(|e| malformed(format!("expected {{\"action\": {{...}}}}: {e}")))?;
        let Some((name, params)) = meta.into_iter().next() else {
            return Err(malformed("expected an action, found an empty object".into()));
        };
        let action = match name.as_str() {
            "index" => Action::Index,
            "create" => Action::Create,
            "update" => Action::Update,
            "delete" => Action::Delete,
            other => {
                return Err(malformed(format!("expected one of [create, delete, index, update] but found [{other}]")));
            }
        };
        let index = match params.index.or_else(|| path_index.map(str::to_string)) {
            Some(i) => i,
            None => {
                return Err(BulkError {
                    kind: "action_request_validation_exception",
                    reason: format!("Validation Failed: 1: index is missing for the action on line [{line_no}];"),
                });
            }
        };
        let id = params.id.map(|v| match v {
            Id::Text(s) => s,
            Id::Number(n) => n.to_string(),
        });
        let doc = match action {
            Action::Delete => Err(DocError {
                kind: "illegal_argument_exception",
                reason: "logmon keeps logs until retention drops them; delete is not supported".into(),
            }),
            _ => {
                let Some((_, source)) = lines.next() else {
                    return Err(BulkError {
                        kind: "illegal_argument_exception",
                        reason: format!("The bulk request's action on line [{line_no}] has no document after it"),
                    });
                };
                if action == Action::Update {
                    Err(DocError {
                        kind: "illegal_argument_exception",
                        reason: "logmon stores log documents as sent; update is not supported (use index or create)"
                            .into(),
                    })
                } else {
                    match serde_json::from_slice::<Value>(source) {
                        Ok(Value::Object(m)) => Ok(item(m, &index)),
                        Ok(other) => Err(DocError {
                            kind: "document_parsing_exception",
                            reason: format!(
                                "[1:1] the document must be a JSON object, got {}",
                                super::json::kind(&other)
                            ),
                        }),
                        Err(e) => Err(DocError {
                            kind: "document_parsing_exception",
                            reason: format!("[{}:{}] failed to parse: {e}", e.line(), e.column()),
                        }),
                    }
                }
            }
        };
        ops.push(Op { action, index, id, doc });
    }
    Ok(ops)
}

const SERVICE: &[&str] = &["service.name", "service", "app"];
const LEVEL: &[&str] = &["log.level", "level", "severity"];
const TS: &[&str] = &["@timestamp", "timestamp", "ts", "time", "date"];
const MESSAGE: &[&str] = &["message", "msg", "log"];
const STATUS: &[&str] = &["http.response.status_code", "status_code"];
const LATENCY_MS: &[&str] = &["latency_ms", "duration_ms"];

fn item(mut doc: Map<String, Value>, index: &str) -> Item {
    let mut f = Fields::default();
    let service = take_string(&mut doc, SERVICE).unwrap_or_else(|| index.to_string());
    f.service = Some(Value::String(service));
    let level = match take_string(&mut doc, LEVEL) {
        None => Level::Info,
        Some(l) => Level::parse(&l).unwrap_or_else(|| {
            // an unknown level is kept, not refused: one odd document must not bounce
            doc.insert("log.level".into(), Value::String(l));
            Level::Info
        }),
    };
    f.level = Some(("level", Value::String(level.as_str().into())));
    f.ts = TS.iter().find_map(|k| take(&mut doc, k)).map(|ts| ("ts", ts));
    f.message = take_string(&mut doc, MESSAGE).map(|m| ("message", Value::String(m)));
    f.status_code = STATUS.iter().find_map(|k| take(&mut doc, k)).map(numeric);
    if let Some(ns) = take(&mut doc, "event.duration") {
        let ms = match numeric(ns) {
            Value::Number(n) => n.as_f64().and_then(|x| serde_json::Number::from_f64(x / 1e6)).map(Value::Number),
            other => Some(other),
        };
        f.latency_ms = Some(ms.unwrap_or(Value::Null));
    } else if let Some(ms) = LATENCY_MS.iter().find_map(|k| take(&mut doc, k)) {
        f.latency_ms = Some(numeric(ms));
    }
    doc.insert("_index".into(), Value::String(index.to_string()));
    f.attrs = Some(Value::Object(doc));
    Item::Log(f)
}

/// A field by its ECS name, written either dotted (`"log.level": ...`) or nested (`"log":
/// {"level": ...}`); taken out of the document, and an object left empty goes with it.
fn take(doc: &mut Map<String, Value>, path: &str) -> Option<Value> {
    if let Some(v) = doc.remove(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    let Some(Value::Object(inner)) = doc.get_mut(head) else { return None };
    let v = take(inner, rest)?;
    if inner.is_empty() {
        doc.remove(head);
    }
    Some(v)
}

/// The first of `paths` holding a non-empty string (other values stay in the document).
fn take_string(doc: &mut Map<String, Value>, paths: &[&str]) -> Option<String> {
    for p in paths {
        if matches!(peek(doc, p), Some(Value::String(s)) if !s.is_empty()) {
            return take(doc, p).and_then(|v| v.as_str().map(str::to_string));
        }
    }
    None
}

fn peek<'a>(doc: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = doc.get(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    peek(doc.get(head)?.as_object()?, rest)
}

/// Shippers send numbers as strings as often as not.
fn numeric(v: Value) -> Value {
    match &v {
        Value::String(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .map(Value::from)
                .ok()
                .or_else(|| t.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number))
                .unwrap_or(v)
        }
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ndjson(lines: &[Value]) -> Vec<u8> {
        lines.iter().map(|l| format!("{l}\n")).collect::<String>().into_bytes()
    }

    #[test]
    fn ecs_documents_map_nested_or_dotted_and_keep_the_rest() {
        let body = ndjson(&[
            json!({"index": {"_index": "logs-checkout", "_id": "a1"}}),
            json!({"@timestamp": "2026-11-24T10:00:00.000Z", "message": "payment failed",
                   "log": {"level": "error", "logger": "pay"}, "service": {"name": "checkout", "version": "1.2"},
                   "http": {"response": {"status_code": 503}}, "event": {"duration": 12_500_000}, "user": "u1"}),
            json!({"create": {}}),
            json!({"log.level": "warning", "service.name": "search", "msg": "slow", "status_code": "404"}),
        ]);
        let ops = parse(&body, Some("default-index")).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(
            (ops[0].action, ops[0].index.as_str(), ops[0].id.as_deref()),
            (Action::Index, "logs-checkout", Some("a1"))
        );
        assert_eq!(
            ops[0].doc.as_ref().unwrap().to_value(),
            json!({"service": "checkout", "level": "ERROR", "ts": "2026-11-24T10:00:00.000Z",
                    "message": "payment failed", "status_code": 503, "latency_ms": 12.5,
                    "attrs": {"log": {"logger": "pay"}, "service": {"version": "1.2"}, "user": "u1",
                              "_index": "logs-checkout"}})
        );
        assert_eq!(ops[1].index, "default-index", "the index of the path when the action names none");
        assert_eq!(
            ops[1].doc.as_ref().unwrap().to_value(),
            json!({"service": "search", "level": "WARN", "message": "slow", "status_code": 404,
                    "attrs": {"_index": "default-index"}})
        );
    }

    #[test]
    fn without_a_service_field_the_index_is_the_service_and_the_level_is_info() {
        let ops =
            parse(&ndjson(&[json!({"index": {}}), json!({"message": "m", "level": "chatty"})]), Some("nginx")).unwrap();
        let doc = ops[0].doc.as_ref().unwrap().to_value();
        assert_eq!((doc["service"].as_str(), doc["level"].as_str()), (Some("nginx"), Some("INFO")));
        assert_eq!(doc["attrs"]["log.level"], "chatty", "an unknown level is kept");
    }

    #[test]
    fn a_bad_document_fails_its_item_and_a_bad_action_line_fails_the_request() {
        let body = b"{\"index\":{\"_index\":\"a\"}}\n{not json\n{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"update\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"doc\":{}}\n{\"index\":{\"_index\":\"a\"}}\n[1]\n";
        let ops = parse(body, None).unwrap();
        let kinds: Vec<_> = ops.iter().map(|o| (o.action, o.doc.as_ref().err().map(|e| e.kind))).collect();
        assert_eq!(
            kinds,
            [
                (Action::Index, Some("document_parsing_exception")),
                (Action::Delete, Some("illegal_argument_exception")),
                (Action::Update, Some("illegal_argument_exception")),
                (Action::Index, Some("document_parsing_exception")),
            ]
        );
        let e = parse(b"{\"upsert\":{}}\n{}\n", Some("a")).unwrap_err();
        assert!(e.reason.contains("[upsert]"), "{e:?}");
        let e = parse(b"{\"index\":{}}\n{}\n", None).unwrap_err();
        assert_eq!(e.kind, "action_request_validation_exception");
        assert!(parse(b"not json\n", Some("a")).is_err());
    }
}
