//! GET /metrics: this process's counters plus what the database knows (open incidents,
//! undelivered notifications, detector heartbeats), read at scrape time so that every collector
//! reports the same truth.
use warp::http::header::CONTENT_TYPE;
use warp::reply::{Reply, Response};

use super::error::ApiError;
use super::{AppState, respond};
use crate::metrics::{DeliveryLabels, IncidentLabels, Instance};

pub async fn get(state: AppState) -> Response {
    respond(inner(&state).await)
}

async fn inner(state: &AppState) -> Result<Response, ApiError> {
    let m = &state.metrics;
    let _one_at_a_time = m.scrape.lock().await;
    m.queued_rows.set(state.pipeline.batcher().queued_rows() as i64);
    let client = state.pool.get().await?;
    let open = client
        .query(
            "SELECT service, incident_type, severity, count(*) FROM incidents WHERE status <> 'resolved' GROUP BY 1, 2, 3",
            &[],
        )
        .await?;
    m.open_incidents.clear();
    for r in open {
        let labels = IncidentLabels { service: r.get(0), incident_type: r.get(1), severity: r.get(2) };
        m.open_incidents.get_or_create(&labels).set(r.get::<_, i64>(3));
    }
    let undelivered = client
        .query(
            "SELECT target, status, count(*) FROM notification_deliveries WHERE status IN ('pending', 'failed') GROUP BY 1, 2",
            &[],
        )
        .await?;
    m.undelivered_notifications.clear();
    for r in undelivered {
        let labels = DeliveryLabels { target: r.get(0), status: r.get(1) };
        m.undelivered_notifications.get_or_create(&labels).set(r.get::<_, i64>(2));
    }
    let beats = client
        .query(
            "SELECT instance, extract(epoch FROM last_success_at)::float8, last_duration_ms / 1000.0
             FROM detector_heartbeat WHERE last_tick_at > now() - interval '1 hour'",
            &[],
        )
        .await?;
    m.detector_last_success.clear();
    m.detector_tick_seconds.clear();
    for r in beats {
        let labels = Instance { instance: r.get(0) };
        if let Some(t) = r.get::<_, Option<f64>>(1) {
            m.detector_last_success.get_or_create(&labels).set(t);
        }
        if let Some(d) = r.get::<_, Option<f64>>(2) {
            m.detector_tick_seconds.get_or_create(&labels).set(d);
        }
    }
    let mut resp = m.encode().into_response();
    resp.headers_mut().insert(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8".parse().expect("static header"));
    Ok(resp)
}

pub fn routes(state: &AppState) -> super::Routes {
    use warp::Filter;
    warp::path!("metrics").and(warp::get()).and(super::with_state(state)).then(get).boxed()
}
