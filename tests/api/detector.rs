//! The `logmon detector` process: reacts to new data, and outlives database outages.
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

async fn wait_for_incident(url: &str, within: Duration) -> Option<(String, String)> {
    let c = connect(url).await;
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(r) = c.query_opt("SELECT service, incident_type FROM incidents LIMIT 1", &[]).await.unwrap() {
            return Some((r.get(0), r.get(1)));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn the_detector_wakes_on_new_data_without_waiting_for_its_interval() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    // An interval far longer than the test: only the NOTIFY from ingestion can wake it.
    let _detector = spawn(&["detector", "--database-url", &db.url, "--interval", "300"]);
    tokio::time::sleep(Duration::from_millis(500)).await; // its first tick and LISTEN
    let burst: Vec<_> =
        (0..600).map(|i| json!({"service": "feed-service", "level": "ERROR", "message": format!("e{i}")})).collect();
    assert_eq!(http().post(app.url("/logs")).json(&burst).send().await.unwrap().status(), 200);
    let got = wait_for_incident(&db.url, Duration::from_secs(30)).await;
    assert_eq!(got, Some(("feed-service".into(), "ERROR_SPIKE".into())));
}

#[tokio::test]
async fn the_detector_keeps_running_through_a_database_restart() {
    let pg = PrivateCluster::start();
    let url = pg.migrated_url();
    let mut detector = spawn(&["detector", "--database-url", &url, "--interval", "0.2"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(detector.try_wait().unwrap().is_none(), "the detector must not exit while the database is down");
    pg.restart();
    let c = connect(&url).await;
    c.batch_execute(
        "INSERT INTO logs (ts, service, level) SELECT now() - interval '10 seconds', 'feed-service', 'ERROR' FROM generate_series(1, 600)",
    )
    .await
    .unwrap();
    let got = wait_for_incident(&url, Duration::from_secs(60)).await;
    assert_eq!(got, Some(("feed-service".into(), "ERROR_SPIKE".into())));
    let beats: i64 = c.query_one("SELECT max(ticks) FROM detector_heartbeat", &[]).await.unwrap().get(0);
    assert!(beats > 0);
}
