//! GET /health follows the database: 200 while it answers, 503 with a JSON reason while it is
//! down, and 200 again once it is back, without restarting the collector.
use std::time::{Duration, Instant};

use crate::helpers::*;

async fn health(app: &Proc) -> (u16, serde_json::Value) {
    let r = http().get(app.url("/health")).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn wait_status(app: &Proc, want: u16) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, body) = health(app).await;
        if s == want {
            return body;
        }
        assert!(Instant::now() < deadline, "health stayed {s} ({body}), wanted {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn health_is_ok_with_a_database() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let (s, body) = health(&app).await;
    assert_eq!(s, 200);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn health_turns_503_when_the_database_stops_and_recovers_when_it_returns() {
    let pg = PrivateCluster::start();
    let url = pg.migrated_url();
    let app = spawn_collector(&url, &[]).await;
    assert_eq!(wait_status(&app, 200).await["database"], "ok");

    pg.stop();
    let body = wait_status(&app, 503).await;
    assert_eq!(body["status"], "unavailable");
    assert!(body["error"].as_str().unwrap().contains("database"), "{body}");

    pg.restart();
    wait_status(&app, 200).await;
}
