//! Nothing acknowledged is lost: collector crashes, database restarts, two of everything at once,
//! and partition maintenance under load.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;

use crate::helpers::*;

const BATCH: i64 = 50;

/// What the load clients saw: tags of requests answered 200, and of requests sent but not 200.
#[derive(Default)]
struct Outcomes {
    acked: HashSet<String>,
    unanswered: HashSet<String>,
    statuses: HashMap<u16, usize>,
    slowest: Duration,
}

/// `clients` tasks send tagged batches round-robin to `urls` until `stop` is set.
fn load(
    urls: Vec<String>,
    clients: usize,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Outcomes>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|c| {
            let (urls, stop, out) = (urls.clone(), stop.clone(), out.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
                let mut seq = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let tag = format!("c{c}-r{seq}");
                    let url = &urls[seq % urls.len()];
                    seq += 1;
                    let body: Vec<_> = (0..BATCH)
                        .map(|i| json!({"service": format!("svc-{}", i % 3), "level": if i % 10 == 0 { "ERROR" } else { "INFO" }, "message": tag}))
                        .collect();
                    let started = Instant::now();
                    let r = client.post(format!("{url}/logs")).json(&body).send().await;
                    let took = started.elapsed();
                    let mut o = out.lock().await;
                    o.slowest = o.slowest.max(took);
                    match r {
                        Ok(r) => {
                            *o.statuses.entry(r.status().as_u16()).or_default() += 1;
                            if r.status() == 200 {
                                o.acked.insert(tag);
                            } else {
                                o.unanswered.insert(tag);
                            }
                        }
                        Err(_) => {
                            o.unanswered.insert(tag);
                        }
                    }
                    drop(o);
                    if took < Duration::from_millis(5) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            })
        })
        .collect()
}

/// Every acknowledged request fully stored; every other one fully stored or fully absent.
async fn assert_all_or_nothing(db_url: &str, o: &Outcomes) {
    let c = connect(db_url).await;
    let stored: HashMap<String, i64> = c
        .query("SELECT message, count(*) FROM logs WHERE message IS NOT NULL GROUP BY message", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(!o.acked.is_empty(), "the load made progress");
    for tag in &o.acked {
        assert_eq!(stored.get(tag).copied(), Some(BATCH), "acknowledged request {tag} is fully stored");
    }
    for tag in &o.unanswered {
        let n = stored.get(tag).copied().unwrap_or(0);
        assert!(n == 0 || n == BATCH, "unanswered request {tag} is half stored ({n} rows)");
    }
}

#[tokio::test]
async fn acked_rows_survive_a_collector_kill_9() {
    let db = fresh_db().await;
    let mut app = spawn_collector(&db.url, &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Outcomes::default()));
    let tasks = load(vec![app.base.clone()], 8, stop.clone(), out.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.kill9().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    // a new collector on the same database carries on
    let again = spawn_collector(&db.url, &[]).await;
    let r = http().post(again.url("/logs")).json(&json!({"service": "after", "level": "INFO"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_all_or_nothing(&db.url, &*out.lock().await).await;
}

#[tokio::test]
async fn a_database_restart_gives_503s_then_recovery_and_loses_nothing_acked() {
    let pg = PrivateCluster::start();
    let url = pg.migrated_url();
    let app = spawn_collector(&url, &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Outcomes::default()));
    let tasks = load(vec![app.base.clone()], 4, stop.clone(), out.clone());
    tokio::time::sleep(Duration::from_millis(800)).await;
    pg.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let health = http().get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 503, "/health reflects the outage");
    let acked_during_outage = out.lock().await.acked.len();
    pg.restart();
    // ingestion recovers by itself
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.lock().await.acked.len() < acked_during_outage + 20 {
        assert!(Instant::now() < deadline, "ingestion did not recover after the database came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let o = out.lock().await;
    assert!(o.statuses.get(&503).copied().unwrap_or(0) > 0, "requests during the outage got 503: {:?}", o.statuses);
    assert!(o.slowest < Duration::from_secs(15), "no request hung ({:?})", o.slowest);
    assert_eq!(http().get(app.url("/health")).send().await.unwrap().status(), 200);
    assert_all_or_nothing(&url, &o).await;
}

#[tokio::test]
async fn two_collectors_and_two_detectors_never_duplicate_and_keep_the_rollup_exact() {
    let db = fresh_db().await;
    let c = db.client().await;
    c.batch_execute("UPDATE detection_rules SET lookback = '10 seconds', threshold = 50 WHERE name = 'ERROR_SPIKE'")
        .await
        .unwrap();
    let a = spawn_collector(&db.url, &[]).await;
    let b = spawn_collector(&db.url, &[]).await;
    let _d1 = spawn(&["detector", "--database-url", &db.url, "--interval", "0.2", "--debounce-ms", "10"]);
    let _d2 = spawn(&["detector", "--database-url", &db.url, "--interval", "0.2", "--debounce-ms", "10"]);
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Outcomes::default()));
    let tasks = load(vec![a.base.clone(), b.base.clone()], 6, stop.clone(), out.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let dup: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT service, incident_type FROM incidents WHERE status <> 'resolved'
                                   GROUP BY 1, 2 HAVING count(*) > 1) d",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(dup, 0);
    let open: i64 =
        c.query_one("SELECT count(*) FROM incidents WHERE incident_type = 'ERROR_SPIKE'", &[]).await.unwrap().get(0);
    assert_eq!(open, 3, "one ERROR_SPIKE per service (each sends 10% errors), not one per detector");
    assert_eq!(rollup_disagreements(&c).await, 0, "rollup equals the raw rows");
    assert_all_or_nothing(&db.url, &*out.lock().await).await;
}

#[tokio::test]
async fn partition_maintenance_under_load_blocks_no_request() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Outcomes::default()));
    let tasks = load(vec![app.base.clone()], 4, stop.clone(), out.clone());
    let c = db.client().await;
    // an expired partition to drop, and more days to create, while ingestion runs
    c.batch_execute("SELECT ensure_partitions(now() - interval '20 days', now() - interval '20 days')").await.unwrap();
    for days in [5, 8, 12] {
        let started = Instant::now();
        c.execute("UPDATE logmon_settings SET premake_days = $1", &[&days]).await.unwrap();
        let rows = c.query("SELECT * FROM maintain_partitions()", &[]).await.unwrap();
        assert!(!rows.is_empty());
        assert!(started.elapsed() < Duration::from_secs(5), "maintenance waited {:?}", started.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let o = out.lock().await;
    assert!(o.unanswered.is_empty(), "every request succeeded during maintenance: {:?}", o.statuses);
    let ahead: i64 =
        c.query_one("SELECT count(*) FROM pg_inherits WHERE inhparent = 'logs'::regclass", &[]).await.unwrap().get(0);
    assert!(ahead >= 7 + 12, "partitions from the retention cutoff to 12 days ahead: {ahead}");
    assert_all_or_nothing(&db.url, &o).await;
}

#[tokio::test]
async fn one_batch_across_a_partition_boundary_lands_in_both_partitions() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let midnight = chrono::Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let before = (midnight - chrono::Duration::milliseconds(100)).to_rfc3339();
    let after = (midnight + chrono::Duration::milliseconds(100)).to_rfc3339();
    let body =
        json!([{"service": "edge", "level": "INFO", "ts": before}, {"service": "edge", "level": "INFO", "ts": after}]);
    assert_eq!(http().post(app.url("/logs")).json(&body).send().await.unwrap().status(), 200);
    let parts: Vec<String> = db
        .client()
        .await
        .query("SELECT tableoid::regclass::text FROM logs WHERE service = 'edge' ORDER BY ts", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(parts.len(), 2);
    assert_ne!(parts[0], parts[1], "{parts:?}");
}

/// Sends `signal` to a child process (by pid, with the system's kill).
fn signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("running").to_string();
    let ok = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success();
    assert!(ok, "kill -{signal} {pid}");
}

/// Waits for the process to end; None if it is still running after `limit` (a hang, not a slowness).
async fn exits_within(child: &mut tokio::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    tokio::time::timeout(limit, child.wait()).await.ok().map(|s| s.unwrap())
}

#[tokio::test]
async fn ctrl_c_stops_logmon_up_even_with_the_database_gone_and_says_what_it_dropped() {
    let pg = PrivateCluster::start();
    let url = pg.migrated_url();
    let port = free_port();
    let mut up = tokio::process::Command::new(BIN)
        .args([
            "up",
            "--database-url",
            &url,
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--rate",
            "2000",
            "--batch",
            "50",
        ])
        .args(["--scenario", "none", "--report-every", "1"])
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for_port(port).await;
    let c = connect(&url).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.query_one("SELECT count(*) FROM logs", &[]).await.unwrap().get::<_, i64>(0) == 0 {
        assert!(Instant::now() < deadline, "logmon up stored nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(c);
    pg.stop();
    tokio::time::sleep(Duration::from_secs(2)).await; // batches now pile up, unacknowledged
    signal(&up, "INT");
    let status = exits_within(&mut up, Duration::from_secs(30)).await;
    assert!(status.is_some(), "logmon up still running 30 s after SIGINT with the database gone");
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(up.stdout.as_mut().unwrap(), &mut out).await.unwrap();
    assert!(out.contains("were never acknowledged and were dropped at shutdown"), "{out}");
}

#[tokio::test]
async fn sigterm_stops_the_collector_and_the_detector_while_the_database_is_unreachable() {
    let pg = PrivateCluster::start();
    let url = pg.migrated_url();
    let port = free_port();
    let mut collector = spawn(&["collector", "--database-url", &url, "--listen", &format!("127.0.0.1:{port}")]);
    let mut detector = spawn(&["detector", "--database-url", &url, "--interval", "0.2"]);
    wait_for_port(port).await;
    pg.stop();
    // a request in flight while the database is gone
    let pending = tokio::spawn(
        http().post(format!("http://127.0.0.1:{port}/logs")).json(&json!({"service": "a", "level": "INFO"})).send(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(&collector, "TERM");
    signal(&detector, "TERM");
    assert!(exits_within(&mut collector, Duration::from_secs(30)).await.is_some(), "collector still running");
    assert!(exits_within(&mut detector, Duration::from_secs(30)).await.is_some(), "detector still running");
    let answered = pending.await.unwrap();
    assert!(answered.is_err() || answered.unwrap().status() == 503, "the in-flight request is refused, never 2xx");
}
