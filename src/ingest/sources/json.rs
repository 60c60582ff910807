//! `POST /logs` bodies: a JSON array of log objects (the original collector's format), one
//! object, or NDJSON. Turns bytes into [`Item`]s while parsing (no JSON tree is built for an
//! object, only for the values of its keys); what a log looks like is `validate`'s business.
use std::fmt;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::ingest::error::{IngestError, ItemError};
use crate::ingest::item::{Fields, FieldsBuilder, Item, Key};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// A JSON array of objects, or a single object.
    Json,
    /// One JSON object per line.
    NdJson,
}

impl BodyFormat {
    /// `None` = a content type logmon does not read (415). A missing content type is read as JSON,
    /// as the original collector did.
    pub fn from_content_type(ct: Option<&str>) -> Option<BodyFormat> {
        let Some(ct) = ct else {
            return Some(BodyFormat::Json);
        };
        let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/json" | "text/json" | "" => Some(BodyFormat::Json),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines" => Some(BodyFormat::NdJson),
            e if e.ends_with("+json") => Some(BodyFormat::Json),
            _ => None,
        }
    }
}

/// Most per-line errors reported for one NDJSON body; the rest are counted in a last entry.
const MAX_LINE_ERRORS: usize = 100;

/// The items of a body. Syntax errors name the item (NDJSON line) or the position in the body.
/// A JSON body that turns out to be NDJSON (one object per line, sent with a JSON content type,
/// as several shippers do) is read as NDJSON. Parsed exactly as into a `serde_json::Value` and
/// then [`Item::from_value`] (a property test holds the two together).
pub fn items(format: BodyFormat, body: &[u8]) -> Result<Vec<Item>, IngestError> {
    match format {
        BodyFormat::Json => match parse::<Body>(body) {
            Ok(Body::Items(items)) => Ok(items),
            Ok(Body::Other(kind)) => {
                Err(IngestError::body(format!("expected a JSON array of log objects or one log object, got {kind}")))
            }
            Err(_) if looks_like_ndjson(body) => ndjson(body),
            Err(e) => Err(IngestError::body(json_error(body, &e))),
        },
        BodyFormat::NdJson => ndjson(body),
    }
}

/// serde_json checks that every string it reads is UTF-8; checking the whole text once is
/// cheaper. Text that is not UTF-8 is read as before, so it fails with the same error.
fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// A `/logs` JSON body: the items of an array, one object, or what it was instead.
enum Body {
    Items(Vec<Item>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Body, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Body;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON array of log objects or one log object")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Item>()? {
                    items.push(item);
                }
                Ok(Body::Items(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Body, A::Error> {
                Ok(Body::Items(vec![Item::Log(fields(map)?)]))
            }
            fn visit_unit<E>(self) -> Result<Body, E> {
                Ok(Body::Other("null"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Body, E> {
                Ok(Body::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Body, E> {
                Ok(Body::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Body, E> {
                Ok(Body::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Body, E> {
                Ok(Body::Other("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Body, E> {
                Ok(Body::Other("a string"))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Item, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Item;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a log object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item, A::Error> {
                Ok(Item::Log(fields(map)?))
            }
            // read in full, as into a Value, so that what is refused is refused alike
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
                while seq.next_element::<Value>()?.is_some() {}
                Ok(Item::NotAnObject("an array"))
            }
            fn visit_unit<E>(self) -> Result<Item, E> {
                Ok(Item::NotAnObject("null"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Item, E> {
                Ok(Item::NotAnObject("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Item, E> {
                Ok(Item::NotAnObject("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Item, E> {
                Ok(Item::NotAnObject("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Item, E> {
                Ok(Item::NotAnObject("a number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<Item, E> {
                Ok(Item::NotAnObject("a string"))
            }
        }
        d.deserialize_any(V)
    }
}

/// One log object's keys straight into their slots; only the values are JSON trees.
fn fields<'de, A: MapAccess<'de>>(mut map: A) -> Result<Fields, A::Error> {
    let mut b = FieldsBuilder::default();
    while let Some(key) = map.next_key_seed(KeySeed)? {
        b.put(key, map.next_value::<Value>()?);
    }
    Ok(b.finish())
}

/// A key, allocated only when logmon does not know it.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E>(self, k: &str) -> Result<Key, E> {
                Ok(Key::of(k))
            }
            fn visit_string<E>(self, k: String) -> Result<Key, E> {
                Ok(Key::of_owned(k))
            }
        }
        d.deserialize_str(V)
    }
}

/// Non-empty NDJSON lines in `body`: how many items a refused NDJSON body held.
pub fn line_count(body: &[u8]) -> usize {
    body.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count()
}

fn ndjson(body: &[u8]) -> Result<Vec<Item>, IngestError> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut bad = 0usize;
    let mut item = 0usize;
    for (n, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse::<Item>(line) {
            Ok(v) => out.push(v),
            Err(e) => {
                bad += 1;
                if errors.len() < MAX_LINE_ERRORS {
                    errors.push(ItemError::new(item, None, format!("line {}: {}", n + 1, json_error(line, &e))));
                }
            }
        }
        item += 1;
    }
    if bad > errors.len() {
        errors.push(ItemError::body(format!("and {} more unreadable lines", bad - errors.len())));
    }
    if errors.is_empty() { Ok(out) } else { Err(IngestError::Invalid(errors)) }
}

/// serde_json's message, except for bytes that are not UTF-8, which it reports as a syntax error
/// at a position that does not say so.
fn json_error(text: &[u8], e: &serde_json::Error) -> String {
    match std::str::from_utf8(text) {
        Err(u) => format!("not valid UTF-8 (JSON text must be UTF-8): invalid byte at offset {}", u.valid_up_to()),
        Ok(_) => format!("invalid JSON: {e}"),
    }
}

/// Two or more lines, each starting with `{`: NDJSON sent as application/json.
fn looks_like_ndjson(body: &[u8]) -> bool {
    let mut lines = body.split(|b| *b == b'\n').map(|l| l.trim_ascii()).filter(|l| !l.is_empty());
    let mut n = 0;
    for l in lines.by_ref() {
        if !l.starts_with(b"{") {
            return false;
        }
        n += 1;
    }
    n >= 2
}

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The parser above builds items while reading; it must read every body exactly as parsing it
/// into `serde_json::Value`s and then taking each object apart would (how `/logs` read bodies
/// before): the same items, the same errors.
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// `items` as it was: a `Value` tree first.
    fn through_values(format: BodyFormat, body: &[u8]) -> Result<Vec<Item>, IngestError> {
        let line = |l: &[u8]| serde_json::from_slice::<Value>(l).map(Item::from_value);
        match format {
            BodyFormat::Json => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Array(items)) => Ok(items.into_iter().map(Item::from_value).collect()),
                Ok(v @ Value::Object(_)) => Ok(vec![Item::from_value(v)]),
                Ok(other) => Err(IngestError::body(format!(
                    "expected a JSON array of log objects or one log object, got {}",
                    kind(&other)
                ))),
                Err(_) if looks_like_ndjson(body) => ndjson_with(body, line),
                Err(e) => Err(IngestError::body(json_error(body, &e))),
            },
            BodyFormat::NdJson => ndjson_with(body, line),
        }
    }

    fn ndjson_with(
        body: &[u8],
        parse_line: impl Fn(&[u8]) -> serde_json::Result<Item>,
    ) -> Result<Vec<Item>, IngestError> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let mut bad = 0usize;
        let mut item = 0usize;
        for (n, line) in body.split(|b| *b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match parse_line(line) {
                Ok(v) => out.push(v),
                Err(e) => {
                    bad += 1;
                    if errors.len() < MAX_LINE_ERRORS {
                        errors.push(ItemError::new(item, None, format!("line {}: {}", n + 1, json_error(line, &e))));
                    }
                }
            }
            item += 1;
        }
        if bad > errors.len() {
            errors.push(ItemError::body(format!("and {} more unreadable lines", bad - errors.len())));
        }
        if errors.is_empty() { Ok(out) } else { Err(IngestError::Invalid(errors)) }
    }

    fn same(format: BodyFormat, body: &[u8]) -> Result<(), TestCaseError> {
        let got = format!("{:?}", items(format, body));
        let want = format!("{:?}", through_values(format, body));
        prop_assert_eq!(got, want, "body {:?}", String::from_utf8_lossy(body));
        Ok(())
    }

    /// Keys a log object has, with the aliases and their clashes, and any others.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "service",
                "level",
                "severity",
                "message",
                "msg",
                "log",
                "ts",
                "timestamp",
                "@timestamp",
                "time",
                "date",
                "status_code",
                "latency_ms",
                "attrs",
                "le\\u0076el",
                "host",
            ])
            .prop_map(str::to_string),
            "[a-z@._\\\\\"\u{e9}]{0,6}".prop_map(|k| k.replace('\\', "\\\\").replace('"', "\\\"")),
        ]
    }

    fn value_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| f.to_string()),
            Just("1e999".to_string()),
            Just("-0".to_string()),
            ".{0,12}".prop_map(|s| Value::String(s).to_string()),
            prop::sample::select(vec!["\"INFO\"", "\"\"", "\"\\u0000\"", "\"2026-11-24T00:00:00Z\"", "\"a\\nb\""])
                .prop_map(str::to_string),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((key(), inner), 0..7).prop_map(|kv| {
                    let members: Vec<String> = kv.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn bodies_read_as_through_json_values(items in prop::collection::vec(value_text(), 0..5), array in any::<bool>()) {
            let body = if array { format!("[{}]", items.join(",")) } else { items.join("\n") };
            same(BodyFormat::Json, body.as_bytes())?;
            same(BodyFormat::NdJson, body.as_bytes())?;
        }

        #[test]
        fn broken_bodies_fail_as_through_json_values(body in value_text(), cut in any::<prop::sample::Index>(),
                                                     junk in prop::sample::select(vec!["", "}", ",", "\u{ff}", "\"", " x"])) {
            let at = cut.index(body.len() + 1);
            let mut bytes = body.as_bytes()[..at].to_vec();
            bytes.extend_from_slice(junk.as_bytes());
            bytes.extend_from_slice(&body.as_bytes()[at..]);
            same(BodyFormat::Json, &bytes)?;
            same(BodyFormat::NdJson, &bytes)?;
        }

        #[test]
        fn arbitrary_bytes_read_as_through_json_values(body in prop::collection::vec(any::<u8>(), 0..256)) {
            same(BodyFormat::Json, &body)?;
            same(BodyFormat::NdJson, &body)?;
        }
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_and_aliases_resolve_after_the_whole_object() {
        let body = br#"[{"severity": "warn", "service": "a", "service": "b", "level": 1, "level": "error", "attrs": {"x": 1}, "x": 2}]"#;
        let got = items(BodyFormat::Json, body).unwrap();
        assert_eq!(
            got[0].to_value(),
            json!({"service": "b", "level": "error", "severity": "warn", "attrs": {"x": 1}, "x": 2})
        );
        let Item::Log(f) = &got[0] else { panic!() };
        assert_eq!(f.level, Some(("level", json!("error"))));
    }
}
