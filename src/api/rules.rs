//! Detection rules over HTTP: GET /rules (overrides marked, incidents each opened in the last 7
//! days), POST /rules/backtest (replay the current or candidate rules over a past period), and with
//! the admin token POST /rules, PATCH /rules/{id}, DELETE /rules/{id}; GET /rules/{id}/history is
//! the audit (rule_changes). The rules themselves live in SQL: check_rules() checks a rule as the
//! table would, create_rule()/update_rule()/delete_rule() write it and name the person for the
//! audit, backtest_rules() replays. This module checks JSON types (intervals are seconds) and maps
//! SQL's refusals to a 400 naming the field, 404 or 409.
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::body::read_limited;
use super::error::{ApiError, ItemError};
use super::json::{ts, ts_opt};
use super::params::{self, Query};
use super::{AppState, respond};

const BODY_LIMIT: usize = 256 * 1024;
/// Most incidents one backtest answer lists (the counts cover all of them).
const BACKTEST_MAX: usize = 1000;

/// The JSON type each field of a rule takes over HTTP (SQL checks the values).
#[derive(Clone, Copy)]
enum Field {
    Text,
    NullableText,
    Seconds,
    Number,
    Integer,
    Bool,
}

const FIELDS: &[(&str, Field)] = &[
    ("name", Field::Text),
    ("kind", Field::Text),
    ("incident_type", Field::Text),
    ("service", Field::NullableText),
    ("lookback", Field::Seconds),
    ("threshold", Field::Number),
    ("min_events", Field::Integer),
    ("baseline", Field::Seconds),
    ("severity", Field::Text),
    ("pending_for", Field::Seconds),
    ("resolve_after", Field::Seconds),
    ("enabled", Field::Bool),
    ("description", Field::NullableText),
];

fn invalid(field: &str, error: impl Into<String>) -> ApiError {
    invalid_in("rule", field, error)
}

/// A 400 naming the field: "invalid rule: threshold: ...", "invalid backtest: since: ...".
fn invalid_in(what: &str, field: &str, error: impl Into<String>) -> ApiError {
    let error = error.into();
    ApiError::BadRequest {
        message: format!("invalid {what}: {field}: {error}"),
        details: vec![ItemError { index: None, field: Some(field.to_string()), error }],
    }
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(invalid("body", format!("must be a JSON object, got {}", type_name(&other)))),
        Err(e) => Err(invalid("body", format!("invalid JSON: {e}"))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A rule (or the fields of one to change) as SQL takes it: the known fields, each of its JSON
/// type; `extra` names the other keys the caller allows (and keeps out of the rule).
fn rule_fields(obj: &Map<String, Value>, path: &str, extra: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let at = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    let mut out = Map::new();
    for (k, v) in obj {
        if extra.contains(&k.as_str()) {
            continue;
        }
        let Some((_, kind)) = FIELDS.iter().find(|(name, _)| name == k) else {
            let known: Vec<&str> = FIELDS.iter().map(|(n, _)| *n).chain(extra.iter().copied()).collect();
            return Err(invalid(&at(k), format!("unknown field (a rule has {})", known.join(", "))));
        };
        let ok = match (kind, v) {
            (Field::Text | Field::NullableText, Value::String(s)) => {
                if s.contains('\0') {
                    return Err(invalid(&at(k), "must not contain NUL characters"));
                }
                true
            }
            (Field::NullableText, Value::Null) => true,
            (Field::Seconds | Field::Number, Value::Number(_)) => true,
            (Field::Integer, Value::Number(n)) => n.is_i64(),
            (Field::Bool, Value::Bool(_)) => true,
            _ => false,
        };
        if !ok {
            let want = match kind {
                Field::Text => "a string",
                Field::NullableText => "a string or null",
                Field::Seconds => "a number of seconds",
                Field::Number => "a number",
                Field::Integer => "an integer",
                Field::Bool => "true or false",
            };
            return Err(invalid(&at(k), format!("must be {want}, got {}", type_name(v))));
        }
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

/// Who made a change: `by` in the body, else "api".
fn by(obj: &Map<String, Value>) -> Result<String, ApiError> {
    match obj.get("by") {
        None | Some(Value::Null) => Ok("api".to_string()),
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 256 && !s.contains('\0') => Ok(s.clone()),
        Some(_) => Err(invalid("by", "must be a non-empty string of at most 256 characters")),
    }
}

/// SQL's refusals: 22023 names the field in COLUMN (400), 23505 is a rule that exists (409),
/// P0002 an unknown id (404).
fn sql_error(what: &'static str) -> impl Fn(tokio_postgres::Error) -> ApiError {
    move |e| sql_refusal(what, e)
}

fn sql_refusal(what: &str, e: tokio_postgres::Error) -> ApiError {
    match e.as_db_error() {
        Some(d) if d.code().code() == "22023" => {
            let field = d.column().unwrap_or("body");
            let msg = d.message();
            invalid_in(what, field, msg.strip_prefix(&format!("{field}: ")).unwrap_or(msg))
        }
        Some(d) if d.code().code() == "23505" => ApiError::Conflict(format!(
            "a rule with this name already exists for this service ({})",
            d.detail().unwrap_or(d.message())
        )),
        Some(d) if d.code().code() == "P0002" => ApiError::NotFound(d.message().to_string()),
        _ => e.into(),
    }
}

fn json_reply(status: StatusCode, v: &impl Serialize) -> Response {
    warp::reply::with_status(warp::reply::json(v), status).into_response()
}

pub async fn list(state: AppState) -> Response {
    respond(list_inner(&state).await)
}

async fn list_inner(state: &AppState) -> Result<Response, ApiError> {
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT rule_json(l.rule) || jsonb_build_object('overrides', l.overrides, 'overridden_for', l.overridden_for,
                                                           'opened_7d', l.opened_7d)
             FROM list_rules() l",
        )
        .await?;
    let rules: Vec<Value> = client.query(&stmt, &[]).await?.iter().map(|r| r.get(0)).collect();
    Ok(json_reply(StatusCode::OK, &rules))
}

async fn body<S, B>(stream: S, state: &AppState) -> Result<bytes::Bytes, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send,
    B: bytes::Buf,
{
    read_limited(stream, BODY_LIMIT, state.limits.body_timeout).await
}

pub async fn create<S, B>(stream: S, state: AppState) -> Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send,
    B: bytes::Buf,
{
    respond(async { create_inner(&body(stream, &state).await?, &state).await }.await)
}

async fn create_inner(body: &[u8], state: &AppState) -> Result<Response, ApiError> {
    let obj = parse_object(body)?;
    let who = by(&obj)?;
    let rule = Value::Object(rule_fields(&obj, "", &["by"])?);
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached("SELECT rule_json(r) FROM create_rule($1, $2) r").await?;
    let row = client.query_one(&stmt, &[&rule, &who]).await.map_err(sql_error("rule"))?;
    Ok(json_reply(
        StatusCode::CREATED,
        &row.try_get::<_, Value>(0).map_err(|e| ApiError::Internal(format!("rule: {e}")))?,
    ))
}

pub async fn update<S, B>(id: i64, stream: S, state: AppState) -> Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send,
    B: bytes::Buf,
{
    respond(async { update_inner(id, &body(stream, &state).await?, &state).await }.await)
}

async fn update_inner(id: i64, body: &[u8], state: &AppState) -> Result<Response, ApiError> {
    let obj = parse_object(body)?;
    let who = by(&obj)?;
    let changes = Value::Object(rule_fields(&obj, "", &["by"])?);
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached("SELECT rule_json(r) FROM update_rule($1, $2, $3) r").await?;
    let row = client.query_one(&stmt, &[&id, &changes, &who]).await.map_err(sql_error("rule"))?;
    Ok(json_reply(StatusCode::OK, &row.try_get::<_, Value>(0).map_err(|e| ApiError::Internal(format!("rule: {e}")))?))
}

pub async fn delete<S, B>(id: i64, stream: S, state: AppState) -> Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send,
    B: bytes::Buf,
{
    respond(async { delete_inner(id, &body(stream, &state).await?, &state).await }.await)
}

async fn delete_inner(id: i64, body: &[u8], state: &AppState) -> Result<Response, ApiError> {
    // the body is optional: {"by": "alice"}
    let who = if body.iter().all(u8::is_ascii_whitespace) { "api".to_string() } else { by(&parse_object(body)?)? };
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached("SELECT rule_json(r) FROM delete_rule($1, $2) r").await?;
    let row = client.query_one(&stmt, &[&id, &who]).await.map_err(sql_error("rule"))?;
    Ok(json_reply(StatusCode::OK, &row.try_get::<_, Value>(0).map_err(|e| ApiError::Internal(format!("rule: {e}")))?))
}

#[derive(Debug, Serialize)]
struct Change {
    id: i64,
    #[serde(serialize_with = "ts")]
    at: DateTime<Utc>,
    rule_id: i64,
    action: String,
    actor: String,
    source: String,
    db_user: String,
    old: Option<Value>,
    new: Option<Value>,
}

pub async fn history(id: i64, q: Query, state: AppState) -> Response {
    respond(history_inner(id, q, &state).await)
}

async fn history_inner(id: i64, q: Query, state: &AppState) -> Result<Response, ApiError> {
    let limit = params::int_in(&q, "limit", 1..=1000, 100)?;
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT c.id, c.at, c.rule_id, c.action, c.actor, c.source, c.db_user,
                    CASE WHEN c.old_row IS NOT NULL THEN rule_json(jsonb_populate_record(NULL::detection_rules, c.old_row)) END,
                    CASE WHEN c.new_row IS NOT NULL THEN rule_json(jsonb_populate_record(NULL::detection_rules, c.new_row)) END
             FROM rule_changes c WHERE c.rule_id = $1 ORDER BY c.id DESC LIMIT $2",
        )
        .await?;
    let rows = client.query(&stmt, &[&id, &limit]).await?;
    if rows.is_empty() {
        let exists = client.query_opt("SELECT 1 FROM detection_rules WHERE id = $1", &[&id]).await?.is_some();
        if !exists {
            return Err(ApiError::NotFound(format!("rule {id} does not exist and has no history")));
        }
    }
    let changes: Vec<Change> = rows
        .iter()
        .map(|r| Change {
            id: r.get(0),
            at: r.get(1),
            rule_id: r.get(2),
            action: r.get(3),
            actor: r.get(4),
            source: r.get(5),
            db_user: r.get(6),
            old: r.get(7),
            new: r.get(8),
        })
        .collect();
    Ok(json_reply(StatusCode::OK, &changes))
}

/// A point in time: RFC 3339, or a duration before now such as 90m, 24h, 7d.
fn instant(field: &str, v: &Value, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let Value::String(s) = v else {
        return Err(invalid_in(
            "backtest",
            field,
            format!("must be an RFC 3339 time or a duration like 7d, got {}", type_name(v)),
        ));
    };
    if let Some(d) = crate::cli::parse_ago(s) {
        return Ok(now - d);
    }
    DateTime::parse_from_rfc3339(s.trim()).map(|d| d.with_timezone(&Utc)).map_err(|_| {
        invalid_in("backtest", field, format!("must be an RFC 3339 time or a duration like 30m, 24h, 7d, got {s:?}"))
    })
}

/// The body of POST /rules/backtest, checked.
struct BacktestIn {
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    step_s: Option<f64>,
    rules: Option<Value>,
}

fn parse_backtest(body: &[u8], now: DateTime<Utc>) -> Result<BacktestIn, ApiError> {
    let obj = parse_object(body)?;
    for k in obj.keys() {
        if !["since", "until", "step", "rules"].contains(&k.as_str()) {
            return Err(invalid_in("backtest", k, "unknown field (a backtest has since, until, step, rules)"));
        }
    }
    let since = instant("since", obj.get("since").ok_or_else(|| invalid_in("backtest", "since", "is required"))?, now)?;
    let until = obj.get("until").filter(|v| !v.is_null()).map(|v| instant("until", v, now)).transpose()?;
    let step_s = match obj.get("step") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some_and(|s| (1..=86_400).contains(&s)) => n.as_f64(),
        Some(v) => {
            return Err(invalid_in(
                "backtest",
                "step",
                format!("must be a whole number of seconds, 1 to 86400, got {v}"),
            ));
        }
    };
    let rules = match obj.get("rules") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            if items.len() > 100 {
                return Err(invalid_in("backtest", "rules", format!("at most 100 rules, got {}", items.len())));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let path = format!("rules[{i}]");
                let Value::Object(m) = item else {
                    return Err(invalid_in(
                        "backtest",
                        &path,
                        format!("must be an object (a rule), got {}", type_name(item)),
                    ));
                };
                let mut rule = rule_fields(m, &path, &["id"])?;
                match m.get("id") {
                    None | Some(Value::Null) => {}
                    Some(Value::Number(n)) if n.is_i64() => {
                        rule.insert("id".into(), Value::Number(n.clone()));
                    }
                    Some(v) => {
                        return Err(invalid_in(
                            "backtest",
                            &format!("{path}.id"),
                            format!("must be an integer, got {v}"),
                        ));
                    }
                }
                out.push(Value::Object(rule));
            }
            Some(Value::Array(out))
        }
        Some(v) => {
            return Err(invalid_in("backtest", "rules", format!("must be an array of rules, got {}", type_name(v))));
        }
    };
    Ok(BacktestIn { since, until, step_s, rules })
}

/// One incident of a replay.
#[derive(Debug, Serialize)]
pub struct ReplayedIncident {
    pub service: String,
    pub incident_type: String,
    pub severity: String,
    #[serde(serialize_with = "ts")]
    pub opened_at: DateTime<Utc>,
    #[serde(serialize_with = "ts_opt")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub rule_id: Option<i64>,
    pub rule_name: String,
    pub observed: f64,
    pub peak: f64,
    pub threshold: f64,
}

/// The period a backtest replays, as backtest_period() settles it.
#[derive(Debug, Serialize)]
pub struct Period {
    #[serde(serialize_with = "ts")]
    pub first_step: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub last_step: DateTime<Utc>,
    pub step: f64,
    pub resolution: f64,
}

/// Replays `rules` (None: the current ones) over the period, in the caller's transaction (one
/// snapshot, one now()). Shared by the API and `logmon rules backtest`.
pub async fn backtest(
    client: &tokio_postgres::Transaction<'_>,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    step_s: Option<f64>,
    rules: Option<&Value>,
) -> Result<(Period, Vec<ReplayedIncident>), tokio_postgres::Error> {
    let p = client
        .query_one(
            "SELECT first_at, last_at, date_part('epoch', every), date_part('epoch', res)
             FROM backtest_period($1, coalesce($2, now()), make_interval(secs => $3), $4)",
            &[&since, &until, &step_s, &rules],
        )
        .await?;
    let period = Period { first_step: p.get(0), last_step: p.get(1), step: p.get(2), resolution: p.get(3) };
    let rows = client
        .query(
            "SELECT service, incident_type, severity, opened_at, resolved_at, rule_id, rule_name, observed, peak, threshold
             FROM backtest_rules($1, coalesce($2, now()), make_interval(secs => $3), $4)
             ORDER BY opened_at, service, incident_type",
            &[&since, &until, &step_s, &rules],
        )
        .await?;
    let incidents = rows
        .iter()
        .map(|r| ReplayedIncident {
            service: r.get(0),
            incident_type: r.get(1),
            severity: r.get(2),
            opened_at: r.get(3),
            resolved_at: r.get(4),
            rule_id: r.get(5),
            rule_name: r.get(6),
            observed: r.get(7),
            peak: r.get(8),
            threshold: r.get(9),
        })
        .collect();
    Ok((period, incidents))
}

pub async fn run_backtest<S, B>(stream: S, state: AppState) -> Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send,
    B: bytes::Buf,
{
    respond(async { backtest_inner(&body(stream, &state).await?, &state).await }.await)
}

async fn backtest_inner(body: &[u8], state: &AppState) -> Result<Response, ApiError> {
    let b = parse_backtest(body, Utc::now())?;
    let mut client = state.pool.get().await?;
    let tx = client.build_transaction().read_only(true).isolation_level(tokio_postgres::IsolationLevel::RepeatableRead);
    let tx = tx.start().await?;
    let (period, incidents) =
        backtest(&tx, b.since, b.until, b.step_s, b.rules.as_ref()).await.map_err(sql_error("backtest"))?;
    tx.commit().await?;
    // per rule that opened them (overrides share their default row's name, not its id)
    let mut by_rule: Vec<(Option<i64>, String, usize)> = Vec::new();
    for i in &incidents {
        match by_rule.iter_mut().find(|(id, n, _)| *id == i.rule_id && *n == i.rule_name) {
            Some((_, _, c)) => *c += 1,
            None => by_rule.push((i.rule_id, i.rule_name.clone(), 1)),
        }
    }
    by_rule.sort_by(|a, b| (&a.1, a.0).cmp(&(&b.1, b.0)));
    let count = incidents.len();
    let truncated = count > BACKTEST_MAX;
    let listed: Vec<&ReplayedIncident> = incidents.iter().take(BACKTEST_MAX).collect();
    Ok(json_reply(
        StatusCode::OK,
        &json!({
            "period": period,
            "count": count,
            "truncated": truncated,
            "by_rule": by_rule
                .iter()
                .map(|(id, n, c)| json!({"rule_id": id, "rule_name": n, "incidents": c}))
                .collect::<Vec<_>>(),
            "incidents": listed,
        }),
    ))
}

pub fn routes(state: &AppState) -> super::Routes {
    use warp::Filter;
    let admin = super::auth::require(state.limits.admin_token.clone(), "rule changes");
    let r_list = warp::path!("rules").and(warp::get()).and(super::with_state(state)).then(list);
    let r_create = warp::path!("rules")
        .and(warp::post())
        .and(admin.clone())
        .and(warp::body::stream())
        .and(super::with_state(state))
        .then(create);
    let r_backtest = warp::path!("rules" / "backtest")
        .and(warp::post())
        .and(warp::body::stream())
        .and(super::with_state(state))
        .then(run_backtest);
    // /rules/backtest is its own resource, not a rule id (a GET of it is a 405, not a 400)
    let not_backtest =
        |id: String| async move { if id == "backtest" { Err(warp::reject::not_found()) } else { Ok(id) } };
    let one = warp::path("rules")
        .and(warp::path::peek())
        .and_then(move |p: warp::path::Peek| not_backtest(p.segments().next().unwrap_or_default().to_string()))
        .map(|_| ())
        .untuple_one()
        .and(params::path_id("id"));
    let r_update = one
        .clone()
        .and(warp::path::end())
        .and(warp::patch())
        .and(admin.clone())
        .and(warp::body::stream())
        .and(super::with_state(state))
        .then(update);
    let r_delete = one
        .clone()
        .and(warp::path::end())
        .and(warp::delete())
        .and(admin)
        .and(warp::body::stream())
        .and(super::with_state(state))
        .then(delete);
    let r_history = one
        .and(warp::path("history"))
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::query::<Query>())
        .and(super::with_state(state))
        .then(history);
    r_list
        .or(r_create)
        .unify()
        .or(r_backtest)
        .unify()
        .or(r_update)
        .unify()
        .or(r_delete)
        .unify()
        .or(r_history)
        .unify()
        .boxed()
}
