//! Silences and maintenance windows: GET/POST /silences, GET/DELETE /silences/{id}, POST
//! /silences/preview, and the same resource as Alertmanager's API v2 (GET/POST /api/v2/silences,
//! GET/DELETE /api/v2/silence/{id}), so that `amtool silence add|query|expire` works against
//! logmon. The rules (matchers, regexes, times, time zones), the state and the matching are SQL
//! (check_silence(), create_silence(), silence_state(), silenced_by()): this module maps JSON to
//! them, and their errors to a 400 naming the field.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value, json};
use warp::reply::{Reply, Response};

use super::body::{actor, read_limited};
use super::error::{ApiError, ItemError};
use super::json::{INCIDENT_COLUMNS, Incident, ts, ts_opt};
use super::params::{self, Query};
use super::{AppState, respond};

const BODY_LIMIT: usize = 64 * 1024;
const STATES: &[&str] = &["pending", "active", "expired"];
const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

/// A silence's columns, in `Silence::from_row` order, from `silences s, LATERAL silence_window(s) w`.
const SILENCE_COLUMNS: &str = "s.id::text, silence_state(s), s.updated_at, s.matchers, s.starts_at, \
     nullif(s.ends_at, 'infinity'), s.created_by, s.comment, s.created_at, s.weekdays, \
     to_char(s.start_time, 'HH24:MI'), to_char(s.end_time, 'HH24:MI'), s.time_zone, w.window_start, w.window_end, \
     s.expired_by, s.replaced_by::text";

/// Alertmanager's GettableSilence, plus logmon's recurrence, current/next window and audit.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Silence {
    id: String,
    status: Status,
    #[serde(serialize_with = "ts")]
    updated_at: DateTime<Utc>,
    matchers: Value,
    #[serde(serialize_with = "ts")]
    starts_at: DateTime<Utc>,
    /// Alertmanager clients need a time here: a series without an end date says 9999-12-31.
    #[serde(serialize_with = "ends_at")]
    ends_at: Option<DateTime<Utc>>,
    created_by: String,
    comment: String,
    #[serde(serialize_with = "ts")]
    created_at: DateTime<Utc>,
    recurrence: Option<Recurrence>,
    window: Option<Window>,
    expired_by: Option<String>,
    replaced_by: Option<String>,
}

#[derive(Debug, Serialize)]
struct Status {
    state: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Recurrence {
    weekdays: Vec<&'static str>,
    start_time: String,
    end_time: String,
    time_zone: String,
}

/// The stretch during which the silence is active now, or its next one.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Window {
    #[serde(serialize_with = "ts")]
    starts_at: DateTime<Utc>,
    #[serde(serialize_with = "ts_opt")]
    ends_at: Option<DateTime<Utc>>,
}

fn ends_at<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ts(t, s),
        None => s.serialize_str("9999-12-31T23:59:59.999999+00:00"),
    }
}

impl Silence {
    fn from_row(r: &tokio_postgres::Row) -> Silence {
        let weekdays: Option<Vec<i16>> = r.get(9);
        let recurrence = weekdays.map(|days| Recurrence {
            weekdays: days.iter().filter_map(|d| WEEKDAYS.get((*d as usize).wrapping_sub(1)).copied()).collect(),
            start_time: r.get(10),
            end_time: r.get(11),
            time_zone: r.get(12),
        });
        let window_start: Option<DateTime<Utc>> = r.get(13);
        Silence {
            id: r.get(0),
            status: Status { state: r.get(1) },
            updated_at: r.get(2),
            matchers: r.get(3),
            starts_at: r.get(4),
            ends_at: r.get(5),
            created_by: r.get(6),
            comment: r.get(7),
            created_at: r.get(8),
            recurrence,
            window: window_start.map(|starts_at| Window { starts_at, ends_at: r.get(14) }),
            expired_by: r.get(15),
            replaced_by: r.get(16),
        }
    }
}

/// The body of POST /silences: Alertmanager's PostableSilence plus `recurrence`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SilenceIn {
    id: Option<String>,
    matchers: Option<Value>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    created_by: Option<String>,
    comment: Option<String>,
    recurrence: Option<RecurrenceIn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecurrenceIn {
    weekdays: Option<Vec<String>>,
    start_time: Option<String>,
    end_time: Option<String>,
    time_zone: Option<String>,
}

/// A checked body, as the parameters of create_silence() / check_silence() ($1..$9).
struct NewSilence {
    replaces: Option<String>,
    matchers: Option<Value>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    created_by: Option<String>,
    comment: Option<String>,
    weekdays: Option<Vec<String>>,
    start_time: Option<String>,
    end_time: Option<String>,
    time_zone: Option<String>,
}

fn invalid(field: &str, error: impl Into<String>) -> ApiError {
    let error = error.into();
    ApiError::BadRequest {
        message: format!("invalid silence: {field}: {error}"),
        details: vec![ItemError { index: None, field: Some(field.to_string()), error }],
    }
}

fn parse_body(body: &[u8]) -> Result<NewSilence, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let s: SilenceIn = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_string() } else { path };
        invalid(&field, e.into_inner().to_string())
    })?;
    let time = |field: &str, v: Option<String>| -> Result<Option<DateTime<Utc>>, ApiError> {
        v.map(|raw| {
            DateTime::parse_from_rfc3339(raw.trim()).map(|d| d.with_timezone(&Utc)).map_err(|e| {
                invalid(field, format!("must be an RFC 3339 time like 2026-11-24T06:00:00Z ({e}), got {raw:?}"))
            })
        })
        .transpose()
    };
    if let Some(id) = &s.id
        && !is_uuid(id)
    {
        return Err(invalid("id", format!("must be a silence id (a UUID), got {id:?}")));
    }
    let r = s.recurrence;
    let (weekdays, start_time, end_time, time_zone) = match r {
        Some(r) => (
            r.weekdays,
            clock("recurrence.startTime", r.start_time)?,
            clock("recurrence.endTime", r.end_time)?,
            r.time_zone,
        ),
        None => (None, None, None, None),
    };
    Ok(NewSilence {
        replaces: s.id.filter(|id| !id.is_empty()),
        matchers: s.matchers,
        starts_at: time("startsAt", s.starts_at)?,
        ends_at: time("endsAt", s.ends_at)?,
        created_by: s.created_by,
        comment: s.comment,
        weekdays,
        start_time,
        end_time,
        time_zone,
    })
}

/// A wall-clock time "HH:MM" (00:00 .. 24:00), checked here so that SQL's time cast never fails.
fn clock(field: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(raw) = v else { return Ok(None) };
    let ok = raw.len() == 5
        && raw.as_bytes()[2] == b':'
        && match (raw[..2].parse::<u32>(), raw[3..].parse::<u32>()) {
            (Ok(h), Ok(m)) => (h < 24 && m < 60) || (h == 24 && m == 0),
            _ => false,
        };
    if ok {
        Ok(Some(raw))
    } else {
        Err(invalid(field, format!("must be a time of day HH:MM (00:00 .. 24:00), got {raw:?}")))
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// SQL's refusals: 22023 names the field in COLUMN (400), P0002 is an unknown id (404).
fn sql_error(e: tokio_postgres::Error, field: &str) -> ApiError {
    match e.as_db_error() {
        Some(d) if d.code().code() == "22023" => {
            let field = d.column().unwrap_or(field);
            let msg = d.message();
            invalid(field, msg.strip_prefix(&format!("{field}: ")).unwrap_or(msg))
        }
        Some(d) if d.code().code() == "P0002" => ApiError::NotFound(d.message().to_string()),
        _ => e.into(),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("silence {id:?} does not exist"))
}

/// logmon's paths answer errors as logmon does; Alertmanager's (/api/v2) as Alertmanager does, a
/// bare JSON string, since that is what its clients decode and print (amtool shows it).
#[derive(Debug, Clone, Copy)]
pub enum Flavor {
    Logmon,
    Alertmanager,
}

fn reply(flavor: Flavor, result: Result<Response, ApiError>) -> Response {
    match (flavor, result) {
        (Flavor::Alertmanager, Err(e)) => {
            let mut resp = warp::reply::with_status(warp::reply::json(&e.to_string()), e.status()).into_response();
            if let Some(s) = e.retry_after() {
                resp.headers_mut().insert("retry-after", s.into());
            }
            resp
        }
        (_, result) => respond(result),
    }
}

pub async fn list(flavor: Flavor, pairs: Vec<(String, String)>, state: AppState) -> Response {
    reply(flavor, list_inner(pairs, &state).await)
}

async fn list_inner(pairs: Vec<(String, String)>, state: &AppState) -> Result<Response, ApiError> {
    // Alertmanager repeats `filter` (one matcher each); the other parameters are single.
    let filters: Vec<String> = pairs.iter().filter(|(k, _)| k == "filter").map(|(_, v)| v.clone()).collect();
    let q: Query = pairs.into_iter().filter(|(k, _)| k != "filter").collect();
    let limit = params::int_in(&q, "limit", 1..=1000, 100)?;
    let wanted = params::one_of(&q, "state", STATES)?;
    let filters = (!filters.is_empty()).then_some(filters);
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "WITH f AS (SELECT jsonb_agg(parse_matcher(x)) AS m FROM unnest($2::text[]) x)
             SELECT {SILENCE_COLUMNS} FROM f, silences s, LATERAL silence_window(s) w
             WHERE ($1::text IS NULL OR silence_state(s) = $1)
               AND (f.m IS NULL OR silence_matches_filter(s.matchers, f.m))
             ORDER BY CASE silence_state(s) WHEN 'active' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END,
                      s.created_at DESC, s.id
             LIMIT $3"
        ))
        .await?;
    let rows = client.query(&stmt, &[&wanted, &filters, &limit]).await.map_err(|e| sql_error(e, "filter"))?;
    let silences: Vec<Silence> = rows.iter().map(Silence::from_row).collect();
    Ok(warp::reply::json(&silences).into_response())
}

pub async fn get(flavor: Flavor, id: String, state: AppState) -> Response {
    reply(flavor, get_inner(&id, &state).await)
}

async fn get_inner(id: &str, state: &AppState) -> Result<Response, ApiError> {
    if !is_uuid(id) {
        return Err(not_found(id));
    }
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {SILENCE_COLUMNS} FROM silences s, LATERAL silence_window(s) w WHERE s.id = $1::text::uuid"
        ))
        .await?;
    let row = client.query_opt(&stmt, &[&id]).await?.ok_or_else(|| not_found(id))?;
    Ok(warp::reply::json(&Silence::from_row(&row)).into_response())
}

pub async fn create<S, B>(flavor: Flavor, body: S, state: AppState) -> Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send,
    B: bytes::Buf,
{
    let body = read_limited(body, BODY_LIMIT, state.limits.body_timeout).await;
    reply(
        flavor,
        match body {
            Ok(body) => create_inner(&body, &state).await,
            Err(e) => Err(e),
        },
    )
}

async fn create_inner(body: &[u8], state: &AppState) -> Result<Response, ApiError> {
    let s = parse_body(body)?;
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {SILENCE_COLUMNS}
             FROM create_silence($1, $2, $3, $4, $5, $6, $7::text::time, $8::text::time, $9, $10::text::uuid) s,
                  LATERAL silence_window(s) w"
        ))
        .await?;
    let row = client
        .query_one(
            &stmt,
            &[
                &s.matchers,
                &s.ends_at,
                &s.comment,
                &s.created_by,
                &s.starts_at,
                &s.weekdays,
                &s.start_time,
                &s.end_time,
                &s.time_zone,
                &s.replaces,
            ],
        )
        .await
        .map_err(|e| sql_error(e, "body"))?;
    let silence = Silence::from_row(&row);
    let mut out = serde_json::to_value(&silence).map_err(|e| ApiError::Internal(e.to_string()))?;
    // Alertmanager's answer is {"silenceID": ...}; amtool prints it.
    out["silenceID"] = json!(silence.id);
    Ok(warp::reply::json(&out).into_response())
}

pub async fn expire<S, B>(flavor: Flavor, id: String, body: S, state: AppState) -> Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send,
    B: bytes::Buf,
{
    let body = read_limited(body, BODY_LIMIT, state.limits.body_timeout).await;
    reply(
        flavor,
        match body {
            Ok(body) => expire_inner(&id, &body, &state).await,
            Err(e) => Err(e),
        },
    )
}

async fn expire_inner(id: &str, body: &[u8], state: &AppState) -> Result<Response, ApiError> {
    let who = actor(body)?;
    if !is_uuid(id) {
        return Err(not_found(id));
    }
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {SILENCE_COLUMNS} FROM expire_silence($1::text::uuid, $2) s, LATERAL silence_window(s) w"
        ))
        .await?;
    let row = client.query_one(&stmt, &[&id, &who]).await.map_err(|e| sql_error(e, "id"))?;
    Ok(warp::reply::json(&Silence::from_row(&row)).into_response())
}

pub async fn preview<S, B>(body: S, state: AppState) -> Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send,
    B: bytes::Buf,
{
    let body = read_limited(body, BODY_LIMIT, state.limits.body_timeout).await;
    respond(match body {
        Ok(body) => preview_inner(&body, &state).await,
        Err(e) => Err(e),
    })
}

/// Most incidents in each list of a preview.
const PREVIEW_MAX: usize = 1000;

async fn preview_inner(body: &[u8], state: &AppState) -> Result<Response, ApiError> {
    let s = parse_body(body)?;
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {INCIDENT_COLUMNS}, p.unresolved AS preview_unresolved, p.recent AS preview_recent
             FROM (SELECT x.* FROM check_silence($1, $5, $2, $4, $3, $6, $7::text::time, $8::text::time, $9) s,
                                   LATERAL preview_silence(s) x) p
             JOIN incidents ON incidents.id = p.incident_id
             ORDER BY created_at DESC, id DESC LIMIT {}",
            2 * PREVIEW_MAX
        ))
        .await?;
    // check_silence() needs a creator; a preview has none yet
    let created_by = s.created_by.clone().or(Some("preview".to_string()));
    let rows = client
        .query(
            &stmt,
            &[
                &s.matchers,
                &s.ends_at,
                &s.comment,
                &created_by,
                &s.starts_at,
                &s.weekdays,
                &s.start_time,
                &s.end_time,
                &s.time_zone,
            ],
        )
        .await
        .map_err(|e| sql_error(e, "body"))?;
    let (mut now, mut recent) = (Vec::new(), Vec::new());
    for r in &rows {
        let (unresolved, in_lookback): (bool, bool) = (r.get("preview_unresolved"), r.get("preview_recent"));
        if unresolved && now.len() < PREVIEW_MAX {
            now.push(Incident::from_row(r));
        }
        if in_lookback && recent.len() < PREVIEW_MAX {
            recent.push(Incident::from_row(r));
        }
    }
    Ok(warp::reply::json(&json!({"now": now, "last_7_days": recent})).into_response())
}

pub fn routes(state: &AppState) -> super::Routes {
    use warp::Filter;
    let admin = super::auth::require(state.limits.admin_token.clone(), "silences");
    let body = || warp::body::stream();
    let query = || warp::query::<Vec<(String, String)>>();
    let logmon = || warp::any().map(|| Flavor::Logmon);
    let am = || warp::any().map(|| Flavor::Alertmanager);
    let r_list =
        warp::path!("silences").and(warp::get()).and(logmon()).and(query()).and(super::with_state(state)).then(list);
    let r_create = warp::path!("silences")
        .and(warp::post())
        .and(admin.clone())
        .and(logmon())
        .and(body())
        .and(super::with_state(state))
        .then(create);
    let r_preview =
        warp::path!("silences" / "preview").and(warp::post()).and(body()).and(super::with_state(state)).then(preview);
    // /silences/preview is its own resource, not a silence id (a GET of it is a 405, not a 404)
    let not_preview = |id: String| async move { if id == "preview" { Err(warp::reject::not_found()) } else { Ok(id) } };
    let r_get = warp::path!("silences" / String)
        .and_then(not_preview)
        .and(warp::get())
        .and(logmon())
        .and(super::with_state(state))
        .then(|id, flavor, state| get(flavor, id, state));
    let r_expire = warp::path!("silences" / String)
        .and_then(not_preview)
        .and(warp::delete())
        .and(admin.clone())
        .and(logmon())
        .and(body())
        .and(super::with_state(state))
        .then(|id, flavor, body, state| expire(flavor, id, body, state));
    // Alertmanager's API v2 spelling of the same resource (note the singular /silence/{id}).
    let am_list = warp::path!("api" / "v2" / "silences")
        .and(warp::get())
        .and(am())
        .and(query())
        .and(super::with_state(state))
        .then(list);
    let am_create = warp::path!("api" / "v2" / "silences")
        .and(warp::post())
        .and(admin.clone())
        .and(am())
        .and(body())
        .and(super::with_state(state))
        .then(create);
    let am_get = warp::path!("api" / "v2" / "silence" / String)
        .and(warp::get())
        .and(am())
        .and(super::with_state(state))
        .then(|id, flavor, state| get(flavor, id, state));
    let am_expire = warp::path!("api" / "v2" / "silence" / String)
        .and(warp::delete())
        .and(admin)
        .and(am())
        .and(body())
        .and(super::with_state(state))
        .then(|id, flavor, body, state| expire(flavor, id, body, state));
    r_list
        .or(r_create)
        .unify()
        .or(r_preview)
        .unify()
        .or(r_get)
        .unify()
        .or(r_expire)
        .unify()
        .or(am_list)
        .unify()
        .or(am_create)
        .unify()
        .or(am_get)
        .unify()
        .or(am_expire)
        .unify()
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_times_are_hh_mm_up_to_24_00() {
        for ok in ["00:00", "02:30", "23:59", "24:00"] {
            assert_eq!(clock("t", Some(ok.into())).unwrap().as_deref(), Some(ok));
        }
        for bad in ["24:01", "2:00", "02:60", "02-00", "noon", "02:00:00", ""] {
            assert!(clock("t", Some(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_uuids_are_silence_ids() {
        assert!(is_uuid("0b6f2a51-43c0-4cc6-a127-8be3b722aca2"));
        assert!(!is_uuid("0b6f2a51-43c0-4cc6-a127-8be3b722aca"));
        assert!(!is_uuid("0b6f2a51x43c0-4cc6-a127-8be3b722aca2"));
        assert!(!is_uuid("1"));
    }
}
