//! What every source hands to validation: one log item with the fields logmon keeps in columns
//! in their own slots, and everything else for `attrs`. Sources fill it directly (`/logs` while
//! parsing, see `sources::json`), so no JSON object is built only for the validator to take it
//! apart again; `validate` then checks every slot the same way whatever the source.
//!
//! The meaning is that of a `/logs` JSON object (DESIGN §4): a column's first alias present wins,
//! even when its value is null; the aliases after it stay attributes; an `attrs` object is merged
//! into the attributes and the other keys win over its members; a repeated key keeps its last value.
use serde_json::{Map, Value};

use super::sources::json::kind;

/// The keys `level`, `message` and `ts` are read from, in order of precedence.
pub const LEVEL_KEYS: &[&str] = &["level", "severity"];
pub const MESSAGE_KEYS: &[&str] = &["message", "msg", "log"];
pub const TS_KEYS: &[&str] = &["ts", "timestamp", "@timestamp", "time", "date"];

/// One item as a source delivered it, before validation.
// Not boxed: nearly every item is a `Log`, and a box would cost an allocation per item.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Log(Fields),
    /// Not a JSON object (`/logs` only): what it was instead, e.g. "a number".
    NotAnObject(&'static str),
}

/// A log item's fields, each as sent. A column slot holds the key its value came under (the
/// name validation errors give) and the value; `None` = no such key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    pub service: Option<Value>,
    pub level: Option<(&'static str, Value)>,
    pub message: Option<(&'static str, Value)>,
    pub ts: Option<(&'static str, Value)>,
    pub status_code: Option<Value>,
    pub latency_ms: Option<Value>,
    /// The value of an `attrs` key: its members become attributes when it is an object.
    pub attrs: Option<Value>,
    /// Every other key, including the aliases that lost to an earlier one.
    pub extra: Map<String, Value>,
}

impl Item {
    /// A parsed JSON value as a `/logs` item.
    pub fn from_value(v: Value) -> Item {
        match v {
            Value::Object(m) => {
                let mut b = FieldsBuilder::default();
                for (k, v) in m {
                    b.put(Key::of_owned(k), v);
                }
                Item::Log(b.finish())
            }
            other => Item::NotAnObject(kind(&other)),
        }
    }

    /// The item as the `/logs` JSON object it stands for (tests and diagnostics).
    pub fn to_value(&self) -> Value {
        match self {
            Item::Log(f) => f.to_value(),
            Item::NotAnObject(k) => Value::String(format!("<{k}>")),
        }
    }
}

impl Fields {
    /// The `/logs` JSON object these fields stand for.
    pub fn to_value(&self) -> Value {
        let mut obj = self.extra.clone();
        let mut put = |k: &str, v: &Option<Value>| {
            if let Some(v) = v {
                obj.insert(k.to_string(), v.clone());
            }
        };
        put("service", &self.service);
        put("status_code", &self.status_code);
        put("latency_ms", &self.latency_ms);
        put("attrs", &self.attrs);
        for (k, v) in [&self.level, &self.message, &self.ts].into_iter().flatten() {
            obj.insert(k.to_string(), v.clone());
        }
        Value::Object(obj)
    }
}

/// A key of a `/logs` object, told apart without allocating for the ones logmon knows.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    Service,
    /// Index into [`LEVEL_KEYS`].
    Level(usize),
    Message(usize),
    Ts(usize),
    StatusCode,
    LatencyMs,
    Attrs,
    Other(String),
}

impl Key {
    /// Spelled out, not looked up in the alias lists: this runs for every key of every item.
    /// A test checks it against the lists.
    fn known(k: &str) -> Option<Key> {
        Some(match k {
            "service" => Key::Service,
            "level" => Key::Level(0),
            "severity" => Key::Level(1),
            "message" => Key::Message(0),
            "msg" => Key::Message(1),
            "log" => Key::Message(2),
            "ts" => Key::Ts(0),
            "timestamp" => Key::Ts(1),
            "@timestamp" => Key::Ts(2),
            "time" => Key::Ts(3),
            "date" => Key::Ts(4),
            "status_code" => Key::StatusCode,
            "latency_ms" => Key::LatencyMs,
            "attrs" => Key::Attrs,
            _ => return None,
        })
    }

    pub fn of(k: &str) -> Key {
        Key::known(k).unwrap_or_else(|| Key::Other(k.to_string()))
    }

    pub fn of_owned(k: String) -> Key {
        Key::known(&k).unwrap_or(Key::Other(k))
    }
}

/// Collects an object's keys in any order, then resolves the aliases.
#[derive(Default)]
pub struct FieldsBuilder {
    service: Option<Value>,
    level: [Option<Value>; LEVEL_KEYS.len()],
    message: [Option<Value>; MESSAGE_KEYS.len()],
    ts: [Option<Value>; TS_KEYS.len()],
    status_code: Option<Value>,
    latency_ms: Option<Value>,
    attrs: Option<Value>,
    extra: Map<String, Value>,
}

impl FieldsBuilder {
    /// A repeated key replaces its earlier value, as in a JSON object parsed into a map.
    pub fn put(&mut self, key: Key, v: Value) {
        let slot = match key {
            Key::Service => &mut self.service,
            Key::Level(i) => &mut self.level[i],
            Key::Message(i) => &mut self.message[i],
            Key::Ts(i) => &mut self.ts[i],
            Key::StatusCode => &mut self.status_code,
            Key::LatencyMs => &mut self.latency_ms,
            Key::Attrs => &mut self.attrs,
            Key::Other(k) => {
                self.extra.insert(k, v);
                return;
            }
        };
        *slot = Some(v);
    }

    pub fn finish(mut self) -> Fields {
        let level = first(&mut self.level, LEVEL_KEYS, &mut self.extra);
        let message = first(&mut self.message, MESSAGE_KEYS, &mut self.extra);
        let ts = first(&mut self.ts, TS_KEYS, &mut self.extra);
        Fields {
            service: self.service,
            level,
            message,
            ts,
            status_code: self.status_code,
            latency_ms: self.latency_ms,
            attrs: self.attrs,
            extra: self.extra,
        }
    }
}

/// The first alias present; the later ones go to `extra`.
fn first(
    slots: &mut [Option<Value>],
    keys: &'static [&'static str],
    extra: &mut Map<String, Value>,
) -> Option<(&'static str, Value)> {
    let mut won = None;
    for (slot, key) in slots.iter_mut().zip(keys) {
        if let Some(v) = slot.take() {
            if won.is_none() {
                won = Some((*key, v));
            } else {
                extra.insert(key.to_string(), v);
            }
        }
    }
    won
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        match Item::from_value(v) {
            Item::Log(f) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_first_alias_present_wins_even_when_null_and_the_others_are_attributes() {
        let f = fields(json!({"severity": "warn", "level": null, "log": "l", "msg": "m", "date": 1, "time": 2}));
        assert_eq!(f.level, Some(("level", Value::Null)));
        assert_eq!(f.message, Some(("msg", json!("m"))));
        assert_eq!(f.ts, Some(("time", json!(2))));
        assert_eq!(f.extra, json!({"severity": "warn", "log": "l", "date": 1}).as_object().unwrap().clone());
    }

    #[test]
    fn keys_follow_the_alias_lists() {
        for (keys, key) in [
            (LEVEL_KEYS, Key::Level as fn(usize) -> Key),
            (MESSAGE_KEYS, Key::Message as fn(usize) -> Key),
            (TS_KEYS, Key::Ts as fn(usize) -> Key),
        ] {
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(Key::of(k), key(i), "{k}");
            }
        }
        assert_eq!(Key::of("Level"), Key::Other("Level".into()));
    }

    #[test]
    fn an_item_renders_back_as_the_object_it_was() {
        let v = json!({"service": "a", "severity": "INFO", "msg": "m", "@timestamp": "t", "status_code": 200,
                       "latency_ms": 1.5, "attrs": {"x": 1}, "host": "h", "log": "second alias"});
        assert_eq!(Item::from_value(v.clone()).to_value(), v);
        assert_eq!(Item::from_value(json!([1])), Item::NotAnObject("an array"));
    }
}
