//! POST /_bulk and POST /{index}/_bulk: Elasticsearch's bulk API, from the official
//! elasticsearch Python client (helpers.bulk) and rsyslog's omelasticsearch, and by hand; plus
//! GET / and HEAD /, which Elasticsearch clients probe and browsers open.
use serde_json::{Value, json};

use crate::helpers::*;
use crate::shippers::*;

#[tokio::test]
async fn the_official_python_client_bulk_indexes_ecs_documents_and_one_bad_document_costs_only_itself() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let (ok, out) = run_script(&python(), "es_python.py", &[&app.base, "py-es"]);
    assert!(ok, "the elasticsearch client failed: {out}");
    let result = last_json(&out);
    assert_eq!(result["info"], "8.17.0", "es.info() accepted logmon as Elasticsearch: {out}");
    assert_eq!(result["ok"], 7, "{out}");
    let errors = result["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{out}");
    assert_eq!(errors[0]["index"]["status"], 400);
    let reason = errors[0]["index"]["error"]["reason"].as_str().unwrap();
    assert!(reason.contains("[http.response.status_code]") && reason.contains("999"), "{reason}");

    assert_eq!(levels(&db, "py-es").await, counts(&[("ERROR", 5), ("INFO", 1), ("WARN", 1)]));
    let c = db.client().await;
    let info = c
        .query_one(
            "SELECT message, status_code, latency_ms, attrs FROM logs WHERE service = 'py-es' AND level = 'INFO'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(info.get::<_, String>(0), "GET /cart");
    assert_eq!(info.get::<_, Option<i32>>(1), Some(200));
    assert_eq!(info.get::<_, Option<f64>>(2), Some(12.5), "event.duration is in ns");
    assert_eq!(
        info.get::<_, Value>(3),
        json!({"_index": "logs-app", "log": {"logger": "http"}, "user": {"id": "u-17"}}),
        "what was not mapped stays, nested as sent"
    );
    let warn: Option<f64> = c
        .query_one("SELECT latency_ms FROM logs WHERE service = 'py-es' AND level = 'WARN'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(warn, Some(950.0), "dotted ECS names work as well as nested ones");
    let errs: i64 = c
        .query_one("SELECT count(*) FROM logs WHERE service = 'py-es' AND status_code = 503 AND attrs ? 'attempt'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(errs, 5);
}

#[tokio::test]
async fn rsyslog_omelasticsearch_ships_to_the_bulk_endpoint() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let rsyslog = Rsyslog::start(&format!(
        r#"module(load="omelasticsearch")
template(name="logmon-es" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host.name" name="hostname" format="jsonf")
  property(outname="service.name" name="programname" format="jsonf")
  property(outname="log.level" name="syslogseverity-text" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}}
action(type="omelasticsearch" server="127.0.0.1" serverport="{port}" template="logmon-es"
       searchIndex="syslog" bulkmode="on" action.resumeInterval="1")"#,
        port = app.port
    ));
    rsyslog.log("billing", "user.err", "invoice 7 failed");
    rsyslog.log("billing", "user.warning", "invoice 8 slow");
    rsyslog.log("billing", "user.info", "invoice 9 sent");
    rsyslog.log("billing", "user.crit", "ledger unreachable");
    let n = wait_for_count(&db, "SELECT count(*) FROM logs WHERE service = 'billing'", 4).await;
    assert_eq!(n, 4, "rsyslog's four messages arrive");
    assert_eq!(levels(&db, "billing").await, counts(&[("ERROR", 1), ("FATAL", 1), ("INFO", 1), ("WARN", 1)]));
    let r = db
        .client()
        .await
        .query_one("SELECT message, attrs->>'_index', attrs->>'host.name' FROM logs WHERE service = 'billing' AND level = 'ERROR'", &[])
        .await
        .unwrap();
    assert_eq!(r.get::<_, String>(0).trim(), "invoice 7 failed");
    assert_eq!(r.get::<_, String>(1), "syslog", "the index name is kept");
    assert!(!r.get::<_, String>(2).is_empty(), "host.name is kept, dotted as sent");
}

#[tokio::test]
async fn rsyslog_omelasticsearch_resumes_once_logmon_is_up_and_loses_nothing() {
    let db = fresh_db().await;
    let port = free_port();
    // rsyslog first, pointing at a logmon that is not there yet
    let rsyslog = Rsyslog::start(&format!(
        r#"module(load="omelasticsearch")
template(name="logmon-es" type="list" option.jsonf="on") {{
  property(outname="service.name" name="programname" format="jsonf")
  property(outname="message" name="msg" position.from="2" format="jsonf")
}}
action(type="omelasticsearch" server="127.0.0.1" serverport="{port}" template="logmon-es" searchIndex="syslog"
       bulkmode="on" action.resumeInterval="1" action.resumeRetryCount="-1")"#
    ));
    rsyslog.log("resumer", "user.err", "sent while logmon was down");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let listen = format!("127.0.0.1:{port}");
    let _app = spawn(&["collector", "--database-url", &db.url, "--listen", &listen]);
    wait_for_port(port).await;
    rsyslog.log("resumer", "user.info", "sent once logmon was up");
    // (rsyslog calls GET /_cat/health when it resumes the suspended action)
    let n = wait_for_count(&db, "SELECT count(*) FROM logs WHERE service = 'resumer'", 2).await;
    assert_eq!(n, 2, "both messages arrive, the one rsyslog held while logmon was down included");
    let messages: Vec<String> = db
        .client()
        .await
        .query("SELECT message FROM logs WHERE service = 'resumer' ORDER BY message", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(messages, ["sent once logmon was up", "sent while logmon was down"]);
}

async fn bulk(app: &Proc, path: &str, body: String) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = http().post(app.url(path)).header("content-type", "application/x-ndjson").body(body).send().await.unwrap();
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, r.json().await.unwrap(), h)
}

#[tokio::test]
async fn bulk_answers_item_by_item_in_request_order() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let body = [
        json!({"index": {"_id": "a"}}),
        json!({"message": "stored", "level": "error"}),
        json!({"create": {"_index": "other"}}),
        json!({"message": "stored too", "service": "svc"}),
        json!({"delete": {"_id": "a"}}),
        json!({"index": {}}),
        json!({"message": "bad", "@timestamp": "not a time"}),
    ]
    .iter()
    .map(|l| format!("{l}\n"))
    .collect::<String>();
    let (status, resp, headers) = bulk(&app, "/web/_bulk", body).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-elastic-product"], "Elasticsearch");
    assert_eq!(resp["errors"], true);
    let items = resp["items"].as_array().unwrap();
    let summary: Vec<(String, u64)> = items
        .iter()
        .map(|i| {
            let (action, r) = i.as_object().unwrap().iter().next().unwrap();
            (action.clone(), r["status"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(summary, [("index".into(), 201), ("create".into(), 201), ("delete".into(), 400), ("index".into(), 400)]);
    assert_eq!(items[0]["index"]["_id"], "a");
    assert_eq!(items[0]["index"]["result"], "created");
    assert_eq!(items[3]["index"]["error"]["type"], "document_parsing_exception");
    assert!(items[3]["index"]["error"]["reason"].as_str().unwrap().contains("[@timestamp]"), "{resp}");
    let rows: Vec<(String, String, String)> = db
        .client()
        .await
        .query("SELECT service, level, attrs->>'_index' FROM logs ORDER BY message", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        [("web".into(), "ERROR".into(), "web".into()), ("svc".into(), "INFO".into(), "other".into())],
        "no service field: the index is the service; no level: INFO"
    );

    let (status, resp, _) = bulk(&app, "/_bulk", "{\"upsert\": {}}\n{}\n".into()).await;
    assert_eq!(status, 400);
    assert_eq!(resp["status"], 400);
    assert_eq!(resp["error"]["type"], "illegal_argument_exception");
    assert!(resp["error"]["reason"].as_str().unwrap().contains("[upsert]"), "{resp}");
}

#[tokio::test]
async fn overload_is_an_elasticsearch_rejection_with_retry_after() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &["--max-queued-rows", "2"]).await;
    let body = (0..3).map(|i| format!("{{\"index\":{{}}}}\n{{\"message\":\"m{i}\"}}\n")).collect::<String>();
    let (status, resp, headers) = bulk(&app, "/busy/_bulk", body).await;
    assert_eq!(status, 503);
    assert!(headers.get("retry-after").is_some());
    assert_eq!(resp["error"]["type"], "es_rejected_execution_exception");
}

#[tokio::test]
async fn get_slash_is_elasticsearch_for_clients_and_the_dashboard_for_browsers() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let r = http().get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-elastic-product"], "Elasticsearch");
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["version"]["number"], "8.17.0");
    assert_eq!(info["tagline"], "You Know, for Search");

    let r = http().head(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the clients' ping");
    assert_eq!(r.headers()["x-elastic-product"], "Elasticsearch");

    let r =
        http().get(app.url("/")).header("accept", "text/html,application/xhtml+xml,*/*;q=0.8").send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("<html"));
}
