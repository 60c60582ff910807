//! Syslog messages (one frame, framing already undone by the listener) as `/logs` items:
//! RFC 5424, RFC 3164 and what real senders write in its name (rsyslog's traditional and
//! high-precision forward formats, `logger`, Python's `SysLogHandler` with no timestamp or host).
//!
//! | syslog | logmon |
//! |---|---|
//! | `APP-NAME` (5424) or `TAG` (3164), else the hostname, else the sender's address | `service` |
//! | severity: 0-2 (emerg, alert, crit) FATAL, 3 (err) ERROR, 4 WARN, 5-6 (notice, info) INFO, 7 DEBUG | `level` |
//! | `TIMESTAMP` (3164: local time of the collector, this year), `-` or none: arrival time | `ts` |
//! | `MSG` (a UTF-8 BOM and leading spaces dropped) | `message` |
//! | `hostname` (else the sender's address), `facility` (name), `procid`, `msgid`, `structured_data` (`{"id": {"param": "value"}}`) | `attrs` |
use chrono::{DateTime, Datelike, Local, NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value};

use crate::ingest::item::{Fields, Item};
use crate::ingest::record::Level;

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

pub fn level(severity: u8) -> Level {
    match severity {
        0..=2 => Level::Fatal,
        3 => Level::Error,
        4 => Level::Warn,
        5 | 6 => Level::Info,
        _ => Level::Debug,
    }
}

/// One message as a `/logs` item; `peer` (the sender's address) stands in for a missing
/// hostname. `Err` says why the frame is not syslog (the listener counts and samples it).
pub fn parse(frame: &[u8], peer: &str, now: DateTime<Utc>) -> Result<Item, String> {
    let end = frame.iter().rposition(|b| !matches!(b, b'\n' | b'\r' | b'\0')).map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&frame[..end]);
    let text = text.as_ref();
    if text.is_empty() {
        return Err("empty message".into());
    }
    let rest = text.strip_prefix('<').ok_or("does not start with <PRI>")?;
    let close = rest.find('>').filter(|i| (1..=3).contains(i)).ok_or("the <PRI> is not 1 to 3 digits in <>")?;
    let pri: u16 = rest[..close].parse().map_err(|_| format!("<{}> is not a number", &rest[..close]))?;
    if pri > 191 {
        return Err(format!("PRI {pri} is out of range (0..191)"));
    }
    let rest = &rest[close + 1..];
    let (facility, severity) = (FACILITIES[(pri / 8) as usize], (pri % 8) as u8);
    let msg = match rest.strip_prefix("1 ") {
        Some(after_version) => rfc5424(after_version)?,
        None => rfc3164(rest, now),
    };
    let mut attrs = Map::new();
    let hostname = msg.hostname.map(str::to_string).unwrap_or_else(|| peer.to_string());
    let service = msg.app.map(str::to_string).unwrap_or_else(|| hostname.clone());
    attrs.insert("hostname".into(), Value::String(hostname));
    attrs.insert("facility".into(), Value::String(facility.into()));
    if let Some(p) = msg.procid {
        attrs.insert("procid".into(), Value::String(p.into()));
    }
    if let Some(m) = msg.msgid {
        attrs.insert("msgid".into(), Value::String(m.into()));
    }
    if let Some(sd) = msg.structured_data {
        attrs.insert("structured_data".into(), Value::Object(sd));
    }
    Ok(Item::Log(Fields {
        service: Some(Value::String(service)),
        level: Some(("level", Value::String(level(severity).as_str().into()))),
        ts: msg.ts.map(|ts| ("ts", Value::String(ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))),
        // Senders differ in the spaces they put before the message (rsyslog keeps the one after
        // the tag in its msg property); none of them is content.
        message: Some(("message", Value::String(msg.message.trim_start_matches(' ').to_string()))),
        attrs: Some(Value::Object(attrs)),
        ..Fields::default()
    }))
}

struct Message<'a> {
    ts: Option<DateTime<Utc>>,
    hostname: Option<&'a str>,
    app: Option<&'a str>,
    procid: Option<&'a str>,
    msgid: Option<&'a str>,
    structured_data: Option<Map<String, Value>>,
    message: &'a str,
}

fn nil(field: &str) -> Option<&str> {
    (field != "-" && !field.is_empty()).then_some(field)
}

/// `TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA [SP MSG]`
fn rfc5424(s: &str) -> Result<Message<'_>, String> {
    let mut parts = s.splitn(6, ' ');
    let mut next = |what: &str| {
        parts.next().filter(|p| !p.is_empty()).ok_or_else(|| format!("RFC 5424 header ends before {what}"))
    };
    let ts = next("TIMESTAMP")?;
    let hostname = next("HOSTNAME")?;
    let app = next("APP-NAME")?;
    let procid = next("PROCID")?;
    let msgid = next("MSGID")?;
    let rest = parts.next().ok_or("RFC 5424 header ends before STRUCTURED-DATA")?;
    let ts = match ts {
        "-" => None,
        t => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| format!("RFC 5424 TIMESTAMP {t:?} is not RFC 3339"))?
                .with_timezone(&Utc),
        ),
    };
    let (structured_data, msg) = structured_data(rest)?;
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    Ok(Message {
        ts,
        hostname: nil(hostname),
        app: nil(app),
        procid: nil(procid),
        msgid: nil(msgid),
        structured_data,
        message: msg,
    })
}

/// SD-ID -> {PARAM-NAME: value}
type StructuredData = Map<String, Value>;

/// `-` or `[id param="value" ...]...`, then the message after one space.
fn structured_data(s: &str) -> Result<(Option<StructuredData>, &str), String> {
    if let Some(rest) = s.strip_prefix('-') {
        return Ok((None, rest.strip_prefix(' ').unwrap_or(rest)));
    }
    let mut sd = Map::new();
    let mut rest = s;
    while let Some(element) = rest.strip_prefix('[') {
        let id_end = element.find([' ', ']']).ok_or("STRUCTURED-DATA element is not closed")?;
        let id = &element[..id_end];
        if id.is_empty() {
            return Err("STRUCTURED-DATA element without an SD-ID".into());
        }
        let mut params = Map::new();
        let mut p = &element[id_end..];
        loop {
            p = p.trim_start_matches(' ');
            if let Some(after) = p.strip_prefix(']') {
                rest = after;
                break;
            }
            let eq = p.find('=').ok_or_else(|| format!("SD-PARAM of [{id}] has no ="))?;
            let name = &p[..eq];
            let quoted =
                p[eq + 1..].strip_prefix('"').ok_or_else(|| format!("SD-PARAM {name} of [{id}] is not quoted"))?;
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err(format!("SD-PARAM {name} of [{id}] is not closed")),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c @ ('"' | '\\' | ']'))) => value.push(c),
                        Some((_, c)) => {
                            value.push('\\');
                            value.push(c);
                        }
                        None => return Err(format!("SD-PARAM {name} of [{id}] is not closed")),
                    },
                    Some((_, c)) => value.push(c),
                }
            };
            params.insert(name.to_string(), Value::String(value));
            p = &quoted[end + 1..];
        }
        sd.insert(id.to_string(), Value::Object(params));
    }
    if sd.is_empty() {
        return Err("STRUCTURED-DATA must be - or [...]".into());
    }
    Ok((Some(sd), rest.strip_prefix(' ').unwrap_or(rest)))
}

/// RFC 3164 as written in practice: an optional timestamp (`Mmm dd hh:mm:ss` or RFC 3339), a
/// hostname only after a timestamp, then an optional `TAG[PID]:`. Never fails: whatever is
/// not a header is the message.
fn rfc3164(s: &str, now: DateTime<Utc>) -> Message<'_> {
    let mut rest = s;
    let mut ts = None;
    if let Some((t, after)) = bsd_timestamp(rest, now) {
        ts = Some(t);
        rest = after;
    } else if let Some((word, after)) = rest.split_once(' ')
        && let Ok(t) = DateTime::parse_from_rfc3339(word)
    {
        ts = Some(t.with_timezone(&Utc));
        rest = after;
    }
    let mut hostname = None;
    if ts.is_some()
        && let Some((word, after)) = rest.split_once(' ')
        && !word.is_empty()
        && !word.ends_with(':')
        && word.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
    {
        hostname = Some(word);
        rest = after;
    }
    let (app, procid, message) = match tag(rest) {
        Some((app, procid, after)) => (Some(app), procid, after.strip_prefix(' ').unwrap_or(after)),
        None => (None, None, rest),
    };
    Message { ts, hostname, app, procid, msgid: None, structured_data: None, message }
}

/// `name:` or `name[pid]:` at the start (at most 48 characters of name, as rsyslog reads it).
fn tag(s: &str) -> Option<(&str, Option<&str>, &str)> {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))).unwrap_or(s.len());
    if end == 0 || end > 48 {
        return None;
    }
    let (name, rest) = s.split_at(end);
    if let Some(after) = rest.strip_prefix(':') {
        return Some((name, None, after));
    }
    let inner = rest.strip_prefix('[')?;
    let close = inner.find(']')?;
    let after = inner[close + 1..].strip_prefix(':')?;
    Some((name, nil(&inner[..close]), after))
}

/// `Mmm dd hh:mm:ss ` (the day space-padded), in the collector's local time zone and the year
/// that puts it closest to now (a December line read in January is last year's).
fn bsd_timestamp(s: &str, now: DateTime<Utc>) -> Option<(DateTime<Utc>, &str)> {
    let head = s.get(..16)?;
    if head.as_bytes()[15] != b' ' {
        return None;
    }
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == &head[..3])? as u32
        + 1;
    let day: u32 = head[4..6].trim().parse().ok()?;
    let (h, m, sec) = (head[7..9].parse().ok()?, head[10..12].parse().ok()?, head[13..15].parse().ok()?);
    if &head[3..4] != " " || &head[9..10] != ":" || &head[12..13] != ":" {
        return None;
    }
    let local_now = now.with_timezone(&Local);
    let candidate = |year: i32| {
        let naive = NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(h, m, sec)?;
        Local.from_local_datetime(&naive).earliest().map(|t| t.with_timezone(&Utc))
    };
    let t = [local_now.year(), local_now.year() - 1, local_now.year() + 1]
        .into_iter()
        .filter_map(candidate)
        .min_by_key(|t| (*t - now).num_seconds().abs())?;
    Some((t, &s[16..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn p(s: &str) -> Value {
        parse(s.as_bytes(), "10.0.0.9", now()).unwrap().to_value()
    }

    #[test]
    fn rfc5424_with_structured_data_and_a_bom() {
        let v = p(
            "<165>1 2026-11-24T09:59:58.123456+01:00 web-1 checkout 4242 PAY [exampleSDID@32473 iut=\"3\" eventSource=\"App\\\"x\\]\"][meta seq=\"1\"] \u{feff}payment failed\n",
        );
        assert_eq!(
            v,
            json!({"service": "checkout", "level": "INFO", "ts": "2026-11-24T08:59:58.123456Z",
                   "message": "payment failed",
                   "attrs": {"hostname": "web-1", "facility": "local4", "procid": "4242", "msgid": "PAY",
                             "structured_data": {"exampleSDID@32473": {"iut": "3", "eventSource": "App\"x]"},
                                                 "meta": {"seq": "1"}}}})
        );
    }

    #[test]
    fn rfc5424_nil_values_fall_back_to_hostname_then_peer() {
        let v = p("<11>1 - host-a - - - - disk full");
        assert_eq!((v["service"].as_str(), v["level"].as_str(), v.get("ts")), (Some("host-a"), Some("ERROR"), None));
        assert_eq!(v["message"], "disk full");
        let v = p("<15>1 - - - - - -");
        assert_eq!((v["service"].as_str(), v["message"].as_str()), (Some("10.0.0.9"), Some("")));
        assert_eq!(v["attrs"]["hostname"], "10.0.0.9");
    }

    #[test]
    fn rfc3164_as_rsyslog_and_logger_write_it() {
        let v = p("<27>Nov 24 09:59:01 web-1 nginx[812]: upstream timed out");
        assert_eq!((v["service"].as_str(), v["level"].as_str()), (Some("nginx"), Some("ERROR")));
        assert_eq!(v["message"], "upstream timed out");
        assert_eq!(v["attrs"], json!({"hostname": "web-1", "facility": "daemon", "procid": "812"}));
        let local = Local.with_ymd_and_hms(2026, 11, 24, 9, 59, 1).unwrap().with_timezone(&Utc);
        assert_eq!(v["ts"], local.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));

        let v = p("<12>Nov  4 23:00:00 db kernel: oom");
        assert_eq!(
            (v["service"].as_str(), v["level"].as_str(), v["message"].as_str()),
            (Some("kernel"), Some("WARN"), Some("oom"))
        );
        // rsyslog's high-precision forward format
        let v = p("<14>2026-11-24T09:59:59.5+00:00 web-2 cron[1]: job ran");
        assert_eq!((v["service"].as_str(), v["ts"].as_str()), (Some("cron"), Some("2026-11-24T09:59:59.500000Z")));
        assert_eq!(v["attrs"]["hostname"], "web-2");
    }

    #[test]
    fn a_december_line_read_in_january_is_last_year() {
        let jan = DateTime::parse_from_rfc3339("2027-01-01T00:00:30Z").unwrap().with_timezone(&Utc);
        let v = parse(b"<14>Dec 31 23:59:50 h app: x", "p", jan).unwrap().to_value();
        assert!(
            v["ts"].as_str().unwrap().starts_with("2026-12-31") || v["ts"].as_str().unwrap().starts_with("2027-01-01"),
            "{v}"
        );
    }

    #[test]
    fn python_sysloghandler_sends_pri_tag_message_and_a_nul() {
        let v = parse(b"<11>billing: invoice 7 failed\0", "127.0.0.1", now()).unwrap().to_value();
        assert_eq!(
            v,
            json!({"service": "billing", "level": "ERROR", "message": "invoice 7 failed",
                   "attrs": {"hostname": "127.0.0.1", "facility": "user"}})
        );
        let v = p("<14>no tag at all here");
        assert_eq!((v["service"].as_str(), v["message"].as_str()), (Some("10.0.0.9"), Some("no tag at all here")));
    }

    #[test]
    fn severities_map_as_documented() {
        let levels: Vec<&str> = (0..8).map(|s| level(s).as_str()).collect();
        assert_eq!(levels, ["FATAL", "FATAL", "FATAL", "ERROR", "WARN", "INFO", "INFO", "DEBUG"]);
    }

    #[test]
    fn malformed_frames_say_why() {
        for (line, why) in [
            ("hello", "<PRI>"),
            ("<999>x", "out of range"),
            ("<abc>x", "not a number"),
            ("<>x", "1 to 3 digits"),
            ("<13>1 yesterday h a p m - x", "RFC 3339"),
            ("<13>1 - h a", "before"),
            ("<13>1 - h a p m [id x=\"1] msg", "not closed"),
            ("<13>1 - h a p m nonsense msg", "must be - or"),
            ("", "empty"),
        ] {
            let e = parse(line.as_bytes(), "p", now()).unwrap_err();
            assert!(e.contains(why), "{line:?}: {e}");
        }
    }
}
