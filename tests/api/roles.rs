//! Least privilege: each logmon role can do its job through the real binaries, and nothing else.
use serde_json::json;

use crate::helpers::*;

/// A login role in the given groups, unique to this test (roles are cluster-wide).
async fn login_role(db: &TestDb, groups: &str) -> String {
    let name = format!("t_role_{:08x}", rand::random::<u32>());
    db.client().await.batch_execute(&format!("CREATE ROLE {name} LOGIN IN ROLE {groups}")).await.unwrap();
    name
}

fn url_as(db: &TestDb, user: &str) -> String {
    db.url.replacen("://postgres@", &format!("://{user}@"), 1)
}

#[tokio::test]
async fn a_collector_running_as_ingest_reader_operator_serves_every_endpoint() {
    let db = fresh_db().await;
    let role = login_role(&db, "logmon_ingest, logmon_reader, logmon_operator").await;
    let app = spawn_collector(&url_as(&db, &role), &[]).await;
    let batch: Vec<_> = (0..600).map(|_| json!({"service": "feed-service", "level": "ERROR"})).collect();
    assert_eq!(http().post(app.url("/logs")).json(&batch).send().await.unwrap().status(), 200);
    assert_eq!(http().get(app.url("/stats")).send().await.unwrap().status(), 200);
    db.client().await.batch_execute("SELECT * FROM detect_incidents()").await.unwrap();
    assert_eq!(http().get(app.url("/incidents")).send().await.unwrap().status(), 200);
    assert_eq!(http().post(app.url("/incidents/1/ack")).send().await.unwrap().status(), 200);
    assert_eq!(http().get(app.url("/metrics")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_detector_running_as_logmon_detector_detects() {
    let db = fresh_db().await;
    let role = login_role(&db, "logmon_detector").await;
    let c = connect(&url_as(&db, &role)).await;
    db.client()
        .await
        .batch_execute(
            "INSERT INTO logs (ts, service, level) SELECT now(), 'feed-service', 'ERROR' FROM generate_series(1, 600)",
        )
        .await
        .unwrap();
    let opened = c.query("SELECT * FROM detect_incidents()", &[]).await.unwrap();
    assert_eq!(opened.len(), 1);
    c.batch_execute("SELECT compact_rollup(); SELECT summarize_time_index(); SELECT * FROM maintain_partitions();")
        .await
        .unwrap();
}

#[tokio::test]
async fn each_role_is_refused_what_is_not_its_job() {
    let db = fresh_db().await;
    let reader = connect(&url_as(&db, &login_role(&db, "logmon_reader").await)).await;
    let ingest = connect(&url_as(&db, &login_role(&db, "logmon_ingest").await)).await;
    let detector = connect(&url_as(&db, &login_role(&db, "logmon_detector").await)).await;
    let denied = |r: Result<u64, tokio_postgres::Error>| {
        let e = r.expect_err("must be refused");
        assert_eq!(e.as_db_error().unwrap().code().code(), "42501", "{e:?}");
    };
    denied(reader.execute("INSERT INTO logs (ts, service, level) VALUES (now(), 'x', 'INFO')", &[]).await);
    denied(reader.execute("UPDATE detection_rules SET threshold = 1", &[]).await);
    denied(reader.execute("SELECT acknowledge_incident(1, 'me')", &[]).await);
    denied(ingest.execute("SELECT count(*) FROM incidents", &[]).await);
    denied(ingest.execute("DELETE FROM logs", &[]).await);
    denied(ingest.execute("UPDATE logmon_settings SET retention = '1 day'", &[]).await);
    denied(detector.execute("INSERT INTO logs (ts, service, level) VALUES (now(), 'x', 'INFO')", &[]).await);
    denied(detector.execute("UPDATE detection_rules SET threshold = 1", &[]).await);
    denied(detector.execute("DROP TABLE logs", &[]).await);
}
