//! The read API (GET /incidents, /incidents/{id}, /stats), lifecycle endpoints, /metrics and the
//! OpenAPI document, over real HTTP.
use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::*;

async fn get(app: &Proc, path: &str) -> (u16, Value) {
    let r = http().get(app.url(path)).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

async fn post(app: &Proc, path: &str, body: &str) -> (u16, Value) {
    let r = http().post(app.url(path)).body(body.to_string()).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

/// Three incidents: feed (open), auth (open), db (resolved), opened by detect_incidents().
async fn seed_incidents(db: &TestDb) {
    let c = db.client().await;
    c.batch_execute(
        "INSERT INTO logs (ts, service, level) SELECT now() - interval '20 seconds', s, 'ERROR'
           FROM unnest(ARRAY['feed-service', 'auth-service', 'db-service']) s, generate_series(1, 600);
         SELECT * FROM detect_incidents();
         -- resolving by hand is refused while the condition holds: switch it off for a moment
         UPDATE detection_rules SET enabled = false;
         SELECT * FROM resolve_incident((SELECT id FROM incidents WHERE service = 'db-service'), 'seed');
         UPDATE detection_rules SET enabled = true;",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn incidents_are_a_bare_array_newest_first_with_the_original_keys() {
    let db = fresh_db().await;
    seed_incidents(&db).await;
    let app = spawn_collector(&db.url, &[]).await;
    let (s, body) = get(&app, "/incidents").await;
    assert_eq!(s, 200);
    let items = body.as_array().unwrap();
    assert_eq!(items.len(), 3);
    for key in
        ["created_at", "service", "incident_type", "severity", "summary", "window_start", "window_end", "id", "status"]
    {
        assert!(items.iter().all(|i| i.get(key).is_some()), "every item has {key}");
    }
    let created: Vec<&str> = items.iter().map(|i| i["created_at"].as_str().unwrap()).collect();
    let mut sorted = created.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(created, sorted, "newest first");
    let ts = created[0];
    assert!(ts.ends_with("+00:00") && ts.len() == "2026-11-23T23:35:52.754551+00:00".len(), "{ts}");

    let (_, one) = get(&app, "/incidents?limit=1").await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    let (_, open) = get(&app, "/incidents?status=open").await;
    assert_eq!(open.as_array().unwrap().len(), 2);
    let (_, feed) = get(&app, "/incidents?service=feed-service").await;
    assert_eq!(feed[0]["service"], "feed-service");
    let (_, future) = get(&app, "/incidents?since=2999-01-01T00:00:00Z").await;
    assert_eq!(future, json!([]));
}

#[tokio::test]
async fn bad_query_parameters_get_400_json_naming_the_parameter() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    for (path, param) in [
        ("/incidents?limit=0", "limit"),
        ("/incidents?limit=1001", "limit"),
        ("/incidents?limit=ten", "limit"),
        ("/incidents?status=burning", "status"),
        ("/incidents?since=yesterday", "since"),
        ("/incidents?service=", "service"),
        ("/stats?window_minutes=0", "window_minutes"),
        ("/stats?window_minutes=10081", "window_minutes"),
        ("/stats?window_minutes=5.5", "window_minutes"),
        ("/stats?window_minutes=%27%3B%20DROP%20TABLE%20logs%3B--", "window_minutes"),
    ] {
        let (s, b) = get(&app, path).await;
        assert_eq!(s, 400, "{path}: {b}");
        assert_eq!(b["details"][0]["field"], param, "{path}: {b}");
    }
    let (s, b) = get(&app, "/incidents/not-a-number").await;
    assert_eq!((s, &b["details"][0]["field"]), (400, &serde_json::json!("id")), "{b}");
    assert!(b["error"].as_str().unwrap().contains("must be an integer"), "{b}");
}

#[tokio::test]
async fn an_incident_shows_its_timeline_and_moves_through_ack_and_resolve() {
    let db = fresh_db().await;
    seed_incidents(&db).await;
    let app = spawn_collector(&db.url, &[]).await;
    let (_, list) = get(&app, "/incidents?service=feed-service").await;
    let id = list[0]["id"].as_i64().unwrap();

    let (s, acked) = post(&app, &format!("/incidents/{id}/ack"), r#"{"by": "alice"}"#).await;
    assert_eq!(s, 200);
    assert_eq!((acked["status"].as_str(), acked["acknowledged_by"].as_str()), (Some("acknowledged"), Some("alice")));
    // its errors still count: resolving is refused until they no longer do
    assert_eq!(post(&app, &format!("/incidents/{id}/resolve"), "").await.0, 409);
    db.client().await.batch_execute("UPDATE detection_rules SET enabled = false").await.unwrap();
    let (s, resolved) = post(&app, &format!("/incidents/{id}/resolve"), "").await;
    assert_eq!(s, 200);
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(post(&app, &format!("/incidents/{id}/ack"), "").await.0, 409);
    assert_eq!(post(&app, &format!("/incidents/{id}/resolve"), "").await.0, 409);
    assert_eq!(post(&app, "/incidents/987654/ack", "").await.0, 404);
    assert_eq!(post(&app, &format!("/incidents/{id}/ack"), "{not json").await.0, 400);

    let (s, one) = get(&app, &format!("/incidents/{id}")).await;
    assert_eq!(s, 200);
    let events: Vec<&str> = one["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, vec!["opened", "acknowledged", "resolved"]);
    assert_eq!(get(&app, "/incidents/987654").await.0, 404);
}

#[tokio::test]
async fn stats_equal_count_star_over_raw_rows_for_the_window() {
    let db = fresh_db().await;
    let c = db.client().await;
    // rows well inside and well outside the 5-minute window, so the comparison does not race the clock
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, latency_ms)
         SELECT now() - interval '30 seconds' - (g % 200) * interval '1 second', 'svc-' || (g % 3),
                CASE WHEN g % 10 = 0 THEN 'ERROR' ELSE 'INFO' END, g % 700
           FROM generate_series(1, 3000) g;
         INSERT INTO logs (ts, service, level) SELECT now() - interval '7 minutes', 'svc-0', 'ERROR' FROM generate_series(1, 500);",
    )
    .await
    .unwrap();
    let app = spawn_collector(&db.url, &[]).await;
    let (s, body) = get(&app, "/stats?window_minutes=5").await;
    assert_eq!(s, 200);
    let raw = c
        .query(
            "SELECT service, count(*), count(*) FILTER (WHERE level IN ('ERROR', 'FATAL')) FROM logs
              WHERE ts > now() - interval '5 minutes' GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let want: Vec<Value> =
        raw.iter().map(|r| json!([r.get::<_, String>(0), r.get::<_, i64>(1), r.get::<_, i64>(2), 5])).collect();
    let got: Vec<Value> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|i| json!([i["service"], i["total"], i["errors"], i["window_minutes"]]))
        .collect();
    assert_eq!(got, want);
    assert!(body[0]["error_rate"].as_f64().is_some() && body[0]["p95_ms"].as_f64().is_some());
    let (_, wide) = get(&app, "/stats?window_minutes=10").await;
    assert_eq!(wide.as_array().unwrap().iter().find(|i| i["service"] == "svc-0").unwrap()["errors"], 600);
}

#[tokio::test]
async fn metrics_pass_promtool_and_report_ingest_and_open_incidents() {
    let db = fresh_db().await;
    seed_incidents(&db).await;
    let app = spawn_collector(&db.url, &[]).await;
    let r = http().post(app.url("/logs")).json(&json!([{"service": "a", "level": "INFO"}])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let _ = http().post(app.url("/logs")).json(&json!([{"level": "INFO"}])).send().await.unwrap();
    let text = http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"logmon_ingest_rows_total{outcome="committed"} 1"#), "{text}");
    assert!(text.contains(r#"logmon_ingest_requests_total{outcome="rejected"} 1"#), "{text}");
    assert!(
        text.contains(r#"logmon_open_incidents{service="feed-service",incident_type="ERROR_SPIKE",severity="HIGH"} 1"#),
        "{text}"
    );
    assert!(!text.contains(r#"service="db-service""#), "resolved incidents are not open: {text}");

    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed by scripts/test.sh (Debian package prometheus)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_the_server_answers() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let (s, doc) = get(&app, "/openapi.json").await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| ops.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), p.clone())))
        .collect();
    let served: BTreeSet<(String, String)> =
        logmon::api::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, served);
    // ... and ROUTES is what the server really serves: each answers, none with "no such endpoint"
    for (method, path) in logmon::api::ROUTES {
        let url = app.url(&path.replace("{id}", "1"));
        let r = match *method {
            "GET" => http().get(url).send().await.unwrap(),
            "HEAD" => http().head(url).send().await.unwrap(),
            "PUT" => http().put(url).header("content-type", "application/json").body("[]").send().await.unwrap(),
            "DELETE" => http().delete(url).send().await.unwrap(),
            "PATCH" => http().patch(url).header("content-type", "application/json").body("{}").send().await.unwrap(),
            _ => http().post(url).header("content-type", "application/json").body("[]").send().await.unwrap(),
        };
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert!(!body.contains("no such endpoint") && status != 405, "{method} {path}: {status} {body}");
    }
    // the route table and the filters of every resource's routes() stay in step
    let src: String = std::fs::read_dir(repo().join("src/api"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let filters = src.matches("warp::path!(").count() + src.matches("warp::path::end()").count();
    assert_eq!(filters, logmon::api::ROUTES.len());
}
