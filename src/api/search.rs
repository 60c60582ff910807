//! GET /logs and GET /incidents/{id}/logs: log search over HTTP. The SQL twins search_logs() and
//! incident_logs() do the searching (one definition, callable from psql); this module parses the
//! query string, pages with a `Link: <...>; rel="next"` header (RFC 8288), and streams NDJSON
//! exports (`Accept: application/x-ndjson`), bounded by `--max-export-rows`.
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Map, Value};
use warp::http::{HeaderValue, StatusCode};
use warp::reply::{Reply, Response};

use super::AppState;
use super::error::ApiError;
use super::json::LogLine;
use crate::ingest::error::ItemError;

/// One search, as GET /logs's parameters describe it (absolute times: a cursor's next page must
/// read the same window whatever "now" has become).
#[derive(Debug, Clone)]
pub struct Search {
    pub services: Vec<String>,
    pub level: Option<String>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub q: Option<String>,
    pub status_code: Option<String>,
    pub min_latency_ms: Option<f64>,
    pub attrs: Map<String, Value>,
    pub pattern: Option<i64>,
    pub limit: i32,
    pub newest_first: bool,
    pub cursor: Option<String>,
}

/// Where the lines come from: any logs, or an incident's.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    All,
    Incident(i64),
}

fn bad(param: &str, msg: impl Into<String>) -> ApiError {
    let msg = msg.into();
    ApiError::BadRequest {
        message: format!("invalid query parameter {param}: {msg}"),
        details: vec![ItemError { index: None, field: Some(param.to_string()), error: msg }],
    }
}

/// An RFC 3339 timestamp, or a time relative to `now` such as `15m`, `2h`, `1d`, `90s`.
fn when(param: &str, raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    let (num, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: i64 = num.parse().ok().filter(|n| *n <= 3650 * 86_400).ok_or_else(|| {
        bad(param, format!("must be RFC 3339 (2026-11-24T06:00:00Z) or relative (15m, 2h, 1d), got {:?}", trunc(raw)))
    })?;
    let d = match unit {
        "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return Err(bad(param, format!("unknown unit {:?} (use s, m, h or d)", trunc(unit)))),
    };
    Ok(now - d)
}

fn trunc(s: &str) -> String {
    s.chars().take(40).collect()
}

impl Search {
    pub fn parse(pairs: &[(String, String)], now: DateTime<Utc>) -> Result<Search, ApiError> {
        let mut s = Search {
            services: Vec::new(),
            level: None,
            since: now - Duration::minutes(15),
            until: now,
            q: None,
            status_code: None,
            min_latency_ms: None,
            attrs: Map::new(),
            pattern: None,
            limit: 100,
            newest_first: true,
            cursor: None,
        };
        for (k, v) in pairs {
            if v.contains('\0') {
                return Err(bad(k, "must not contain NUL"));
            }
            match k.as_str() {
                "service" if v.is_empty() || v.chars().count() > 256 => {
                    return Err(bad(k, "must be 1 to 256 characters"));
                }
                "service" => s.services.push(v.clone()),
                "level" => s.level = Some(v.clone()),
                "since" => s.since = when(k, v, now)?,
                "until" => s.until = when(k, v, now)?,
                "q" if v.chars().count() > 1000 => return Err(bad(k, "at most 1000 characters")),
                "q" if !v.is_empty() => s.q = Some(v.clone()),
                "q" => {}
                "status_code" => s.status_code = Some(v.clone()),
                "min_latency_ms" => {
                    let x: f64 =
                        v.parse().ok().filter(|x: &f64| x.is_finite() && *x >= 0.0).ok_or_else(|| {
                            bad(k, format!("must be a number of milliseconds >= 0, got {:?}", trunc(v)))
                        })?;
                    s.min_latency_ms = Some(x);
                }
                "pattern" => {
                    s.pattern =
                        Some(parse_pattern_id(v).ok_or_else(|| {
                            bad(k, format!("must be a pattern id (16 hex digits), got {:?}", trunc(v)))
                        })?)
                }
                "limit" => {
                    s.limit =
                        v.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                            bad(k, format!("must be an integer between 1 and 1000, got {:?}", trunc(v)))
                        })?
                }
                "order" => {
                    s.newest_first = match v.as_str() {
                        "desc" => true,
                        "asc" => false,
                        _ => return Err(bad(k, format!("must be desc or asc, got {:?}", trunc(v)))),
                    }
                }
                "cursor" => s.cursor = Some(v.clone()),
                key => match key.strip_prefix("attr.") {
                    Some(name) if !name.is_empty() && name.len() <= 256 => {
                        s.attrs.insert(name.to_string(), Value::String(v.clone()));
                    }
                    _ => {
                        return Err(bad(
                            key,
                            "unknown parameter (service, level, since, until, q, status_code, min_latency_ms, \
                             attr.KEY, pattern, limit, order, cursor)",
                        ));
                    }
                },
            }
        }
        Ok(s)
    }

    /// The query string of the page after the one whose last line has `cursor`. An incident's
    /// lines span the incident's own window, so its links carry no since/until.
    fn next_query(&self, source: Source, cursor: &str) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for svc in &self.services {
            q.append_pair("service", svc);
        }
        if let Some(l) = &self.level {
            q.append_pair("level", l);
        }
        if let Source::All = source {
            q.append_pair("since", &self.since.to_rfc3339_opts(SecondsFormat::Micros, true));
            q.append_pair("until", &self.until.to_rfc3339_opts(SecondsFormat::Micros, true));
        }
        for (k, v) in [("q", &self.q), ("status_code", &self.status_code)] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        if let Some(x) = self.min_latency_ms {
            q.append_pair("min_latency_ms", &x.to_string());
        }
        for (k, v) in &self.attrs {
            q.append_pair(&format!("attr.{k}"), v.as_str().unwrap_or_default());
        }
        if let Some(p) = self.pattern {
            q.append_pair("pattern", &format_pattern_id(p));
        }
        q.append_pair("limit", &self.limit.to_string());
        q.append_pair("order", if self.newest_first { "desc" } else { "asc" });
        q.append_pair("cursor", cursor);
        q.finish()
    }
}

/// Pattern ids travel as 16 hex digits: a JSON number could not carry 64 bits into a browser.
pub fn format_pattern_id(id: i64) -> String {
    format!("{:016x}", id as u64)
}

pub fn parse_pattern_id(s: &str) -> Option<i64> {
    let well_formed = s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    well_formed.then(|| u64::from_str_radix(s, 16).ok().map(|u| u as i64)).flatten()
}

/// One page: the lines, and the cursor of the page after it (if there may be one).
struct Page {
    lines: Vec<LogLine>,
    next: Option<String>,
    /// The search budget ran out before the page was full.
    incomplete: bool,
}

async fn page(state: &AppState, source: Source, s: &Search, limit: i32) -> Result<Page, ApiError> {
    let client = state.pool.get().await?;
    let attrs = (!s.attrs.is_empty()).then(|| Value::Object(s.attrs.clone()));
    let rows = match source {
        Source::All => {
            let stmt = client
                .prepare_cached(
                    "SELECT ts, service, level, message, latency_ms, status_code, attrs, received_at, pattern_id, pattern, cursor
                     FROM search_logs(services => $1, level => $2, since => $3, until => $4, q => $5, status_code => $6,
                                      min_latency_ms => $7, attrs => $8, pattern => $9, lim => $10,
                                      newest_first => $11, after => $12)",
                )
                .await?;
            let services = (!s.services.is_empty()).then_some(&s.services);
            client
                .query(
                    &stmt,
                    &[
                        &services,
                        &s.level,
                        &s.since,
                        &s.until,
                        &s.q,
                        &s.status_code,
                        &s.min_latency_ms,
                        &attrs,
                        &s.pattern,
                        &limit,
                        &s.newest_first,
                        &s.cursor,
                    ],
                )
                .await
        }
        Source::Incident(id) => {
            let stmt = client
                .prepare_cached(
                    "SELECT ts, service, level, message, latency_ms, status_code, attrs, received_at, pattern_id, pattern, cursor
                     FROM incident_logs($1, lim => $2, after => $3, q => $4, status_code => $5, min_latency_ms => $6,
                                        attrs => $7, pattern => $8, newest_first => $9)",
                )
                .await?;
            client
                .query(
                    &stmt,
                    &[&id, &limit, &s.cursor, &s.q, &s.status_code, &s.min_latency_ms, &attrs, &s.pattern, &s.newest_first],
                )
                .await
        }
    }
    .map_err(|e| match e.as_db_error() {
        Some(d) if d.code().code() == "P0002" => ApiError::NotFound(d.message().to_string()),
        _ => ApiError::from(e),
    })?;
    let mut lines: Vec<LogLine> = rows.iter().map(LogLine::from_row).collect();
    // a line without a level is search_logs()'s "budget spent here" marker, not a log line
    let incomplete = lines.last().is_some_and(|l| l.level.is_none());
    let next = if incomplete {
        lines.pop().map(|l| l.cursor)
    } else if lines.len() == limit as usize {
        lines.last().map(|l| l.cursor.clone())
    } else {
        None
    };
    Ok(Page { lines, next, incomplete })
}

/// GET /logs and GET /incidents/{id}/logs: a JSON page, or an NDJSON export.
pub async fn get(
    source: Source,
    path: String,
    pairs: Vec<(String, String)>,
    accept: Option<String>,
    state: AppState,
) -> Response {
    // An incident's lines are its service's over its own window: a filter that would narrow
    // neither is refused rather than silently ignored (a reader would trust a window it did not get).
    if let (Source::Incident(_), Some((k, _))) =
        (source, pairs.iter().find(|(k, _)| matches!(k.as_str(), "service" | "level" | "since" | "until")))
    {
        return bad(
            k,
            "does not apply to an incident's lines (its service, from its first breach to its end); \
             use GET /logs to search other services or times",
        )
        .into_response();
    }
    let search = match Search::parse(&pairs, Utc::now()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let ndjson =
        accept.as_deref().is_some_and(|a| a.contains("application/x-ndjson") || a.contains("application/ndjson"));
    if ndjson {
        return export(source, path, search, state).await;
    }
    match page(&state, source, &search, search.limit).await {
        Err(e) => e.into_response(),
        Ok(p) => {
            let mut resp = warp::reply::json(&p.lines).into_response();
            if let Some(cursor) = &p.next {
                let link = format!("<{}?{}>; rel=\"next\"", path, search.next_query(source, cursor));
                if let Ok(v) = HeaderValue::from_str(&link) {
                    resp.headers_mut().insert("link", v);
                }
            }
            if p.incomplete {
                resp.headers_mut().insert(
                    "logmon-search",
                    HeaderValue::from_static("incomplete: the search budget ran out; the next link continues"),
                );
            }
            resp
        }
    }
}

/// Every matching line as NDJSON, page after page, up to --max-export-rows; a capped export ends
/// with a line that says so and where to continue. The first page is fetched before answering,
/// so a bad query is still a 400.
async fn export(source: Source, path: String, mut search: Search, state: AppState) -> Response {
    const PAGE: i32 = 1000;
    let max = state.limits.max_export_rows;
    let first = match page(&state, source, &search, PAGE.min(max.max(1) as i32)).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut sent = 0usize;
        let mut current = first;
        loop {
            let mut chunk = Vec::with_capacity(current.lines.len() * 256);
            for line in &current.lines {
                if sent == max {
                    break;
                }
                serde_json::to_writer(&mut chunk, line).expect("a log line serializes");
                chunk.push(b'\n');
                sent += 1;
            }
            if tx.send(Ok(chunk.into())).await.is_err() {
                return; // the client went away
            }
            let Some(cursor) = current.next.take() else { return };
            if sent >= max {
                let last = serde_json::json!({
                    "truncated": true,
                    "exported": sent,
                    "reason": format!("--max-export-rows is {max}"),
                    "next": format!("{}?{}", path, search.next_query(source, &cursor)),
                });
                let _ = tx.send(Ok(format!("{last}\n").into())).await;
                return;
            }
            search.cursor = Some(cursor);
            let want = PAGE.min((max - sent) as i32);
            current = match page(&state, source, &search, want).await {
                Ok(p) => p,
                Err(e) => {
                    let line = serde_json::json!({"error": e.to_string(), "exported": sent});
                    let _ = tx.send(Ok(format!("{line}\n").into())).await;
                    return;
                }
            };
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut resp = warp::reply::stream(body).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/x-ndjson"));
    resp.headers_mut().insert("logmon-max-export-rows", max.into());
    *resp.status_mut() = StatusCode::OK;
    resp
}
