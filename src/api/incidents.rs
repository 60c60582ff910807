//! GET /incidents, GET /incidents/{id} (JSON, or the incident's page for a browser), POST
//! /incidents/{id}/ack|resolve.
use serde_json::json;
use warp::reply::{Reply, Response};

use super::body::{actor, read_limited};
use super::error::ApiError;
use super::json::{INCIDENT_COLUMNS, Incident, IncidentEvent};
use super::params::{self, Query};
use super::{AppState, respond};

const STATUSES: &[&str] = &["open", "acknowledged", "resolved", "unresolved"];

pub async fn list(q: Query, state: AppState) -> Response {
    respond(list_inner(q, &state).await)
}

async fn list_inner(q: Query, state: &AppState) -> Result<Response, ApiError> {
    let limit = params::int_in(&q, "limit", 1..=1000, 20)?;
    let status = params::one_of(&q, "status", STATUSES)?;
    let service = params::text(&q, "service")?;
    let since = params::timestamp(&q, "since")?;
    let client = state.pool.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents
             WHERE ($1::text IS NULL OR status = $1 OR ($1 = 'unresolved' AND status <> 'resolved'))
               AND ($2::text IS NULL OR service = $2)
               AND ($3::timestamptz IS NULL OR created_at >= $3 OR last_seen_at >= $3)
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ))
        .await?;
    let rows = client.query(&stmt, &[&status, &service, &since, &limit]).await?;
    let incidents: Vec<Incident> = rows.iter().map(Incident::from_row).collect();
    Ok(warp::reply::json(&incidents).into_response())
}

/// The incident as JSON, or its page for a browser (the link notifications carry): the same URL
/// serves both, chosen by Accept (see pages::wants_html), and says so in `Vary`.
pub async fn get(id: i64, accept: Option<String>, state: AppState) -> Response {
    if super::pages::wants_html(accept.as_deref()) {
        return super::pages::incident();
    }
    let mut resp = respond(get_inner(id, &state).await);
    resp.headers_mut().insert("vary", warp::http::HeaderValue::from_static("accept"));
    resp
}

async fn get_inner(id: i64, state: &AppState) -> Result<Response, ApiError> {
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(&format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1")).await?;
    let row = client
        .query_opt(&stmt, &[&id])
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("incident {id} does not exist")))?;
    let events = client
        .prepare_cached("SELECT id, at, event, actor, details FROM incident_events WHERE incident_id = $1 ORDER BY id")
        .await?;
    let events: Vec<IncidentEvent> = client
        .query(&events, &[&id])
        .await?
        .iter()
        .map(|r| IncidentEvent { id: r.get(0), at: r.get(1), event: r.get(2), actor: r.get(3), details: r.get(4) })
        .collect();
    // what it is made of: top patterns against the hour before, status codes, sample lines
    let context: serde_json::Value =
        client.query_one(&client.prepare_cached("SELECT incident_context($1)").await?, &[&id]).await?.get(0);
    let mut body = serde_json::to_value(Incident::from_row(&row)).map_err(|e| ApiError::Internal(e.to_string()))?;
    body["events"] = json!(events);
    body["context"] = context;
    Ok(warp::reply::json(&body).into_response())
}

#[derive(Debug, Clone, Copy)]
pub enum Transition {
    Acknowledge,
    Resolve,
}

/// `body` is optional JSON `{"by": "..."}`: who did it, for the timeline.
pub async fn transition<S, B>(id: i64, action: Transition, body: S, state: AppState) -> Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send,
    B: bytes::Buf,
{
    let body = read_limited(body, 64 * 1024, state.limits.body_timeout).await;
    respond(match body {
        Ok(body) => transition_inner(id, action, body, &state).await,
        Err(e) => Err(e),
    })
}

async fn transition_inner(
    id: i64,
    action: Transition,
    body: bytes::Bytes,
    state: &AppState,
) -> Result<Response, ApiError> {
    let who = actor(&body)?;
    let function = match action {
        Transition::Acknowledge => "acknowledge_incident",
        Transition::Resolve => "resolve_incident",
    };
    let client = state.pool.get().await?;
    let stmt = client.prepare_cached(&format!("SELECT {INCIDENT_COLUMNS} FROM {function}($1, $2)")).await?;
    match client.query_one(&stmt, &[&id, &who]).await {
        Ok(row) => Ok(warp::reply::json(&Incident::from_row(&row)).into_response()),
        Err(e) => match e.as_db_error() {
            Some(d) if d.code().code() == "P0002" => Err(ApiError::NotFound(d.message().to_string())),
            // e.g. resolving while the condition holds: the hint says to create a silence
            Some(d) if d.code().code() == "55000" => Err(ApiError::Conflict(match d.hint() {
                Some(hint) => format!("{}. {hint}", d.message()),
                None => d.message().to_string(),
            })),
            _ => Err(e.into()),
        },
    }
}

pub fn routes(state: &AppState) -> super::Routes {
    use warp::Filter;
    let admin = super::auth::require(state.limits.admin_token.clone(), "incident lifecycle");
    let list =
        warp::path!("incidents").and(warp::get()).and(warp::query::<Query>()).and(super::with_state(state)).then(list);
    let one = warp::path("incidents").and(params::path_id("id"));
    let get = one
        .clone()
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::header::optional::<String>("accept"))
        .and(super::with_state(state))
        .then(get);
    let lines = one
        .clone()
        .and(warp::path("logs"))
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(warp::header::optional::<String>("accept"))
        .and(super::with_state(state))
        .then(|id, pairs, accept, state| {
            super::search::get(
                super::search::Source::Incident(id),
                format!("/incidents/{id}/logs"),
                pairs,
                accept,
                state,
            )
        });
    let ack = one
        .clone()
        .and(warp::path("ack"))
        .and(warp::path::end())
        .and(warp::post())
        .and(admin.clone())
        .map(|id| (id, Transition::Acknowledge))
        .untuple_one()
        .and(warp::body::stream())
        .and(super::with_state(state))
        .then(transition);
    let resolve = one
        .and(warp::path("resolve"))
        .and(warp::path::end())
        .and(warp::post())
        .and(admin)
        .map(|id| (id, Transition::Resolve))
        .untuple_one()
        .and(warp::body::stream())
        .and(super::with_state(state))
        .then(transition);
    list.or(get).unify().or(lines).unify().or(ack).unify().or(resolve).unify().boxed()
}
