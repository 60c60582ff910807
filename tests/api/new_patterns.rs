//! The new_pattern rule (NEW_ERROR_PATTERN, MED): an ERROR/FATAL message template a service has
//! never used appears often enough. Calibrated on the generator's own traffic, replayed through
//! the collector with past timestamps and judged by detect_incidents(at) every 10 s, as a
//! detector would have: normal traffic after warm-up opens none; the `new-error` scenario opens
//! exactly one, for its service.
use chrono::{DateTime, Duration, DurationRound, Utc};
use logmon::generator::scenario::{Effect, Scenario, demo_schedule};
use logmon::generator::traffic::{Traffic, profiles};
use serde_json::Value;
use tokio_postgres::Client;

use crate::helpers::*;

/// `logmon up`'s generator: its rate, services and seed.
const RATE: f64 = 200.0;
const SERVICES: [&str; 3] = ["auth-service", "feed-service", "db-service"];

/// The generator's logs over [from, from + secs), stamped as they would have been sent, with the
/// scenarios (times relative to `origin`) in force.
fn generate(
    t: &mut Traffic,
    origin: DateTime<Utc>,
    from: DateTime<Utc>,
    secs: i64,
    scenarios: &[Scenario],
) -> Vec<Value> {
    let n = (secs as f64 * RATE) as i64;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let ts = from + Duration::microseconds((i as f64 * 1e6 / RATE) as i64);
        let since_origin = (ts - origin).to_std().unwrap();
        let active: Vec<&Scenario> =
            scenarios.iter().filter(|s| since_origin >= s.at && since_origin < s.at + s.duration).collect();
        if let Some(g) = t.next_generated(&active) {
            let mut v = g.to_json();
            v["ts"] = Value::String(ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
            out.push(v);
        }
    }
    out
}

async fn send(app: &Proc, logs: &[Value]) {
    for chunk in logs.chunks(2000) {
        let r = http().post(app.url("/logs")).json(&chunk).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
}

async fn tick(c: &Client, at: DateTime<Utc>) {
    c.execute("SELECT count(*) FROM detect_incidents($1)", &[&at]).await.unwrap();
}

/// (service, status, summary) of the NEW_ERROR_PATTERN incidents.
async fn new_pattern_incidents(c: &Client) -> Vec<(String, String, String)> {
    c.query("SELECT service, status, summary FROM incidents WHERE incident_type = 'NEW_ERROR_PATTERN' ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn normal_traffic_opens_no_new_error_pattern_and_the_new_error_scenario_opens_exactly_one() {
    let db = fresh_db().await;
    let c = db.client().await;
    let app = spawn_collector(&db.url, &[]).await;
    let services: Vec<String> = SERVICES.iter().map(|s| s.to_string()).collect();
    let mut traffic = Traffic::new(42, profiles(&services));
    // the demo's new-error scenario, 35 minutes into a history that starts 45 minutes ago
    let origin = Utc::now().duration_trunc(Duration::minutes(1)).unwrap() - Duration::minutes(45);
    let demo = demo_schedule(2)
        .into_iter()
        .find(|s| matches!(s.effect, Effect::NewError { .. }))
        .expect("the demo's new error");
    let scenario = Scenario { at: std::time::Duration::from_secs(35 * 60), ..demo };
    let scenarios = [scenario.clone()];

    // warm-up: the default rule's lookback (5 min) + baseline (15 min), and a little more
    send(&app, &generate(&mut traffic, origin, origin, 25 * 60, &scenarios)).await;
    // 10 minutes of normal traffic, judged every 10 s
    let normal_from = origin + Duration::minutes(25);
    send(&app, &generate(&mut traffic, origin, normal_from, 10 * 60, &scenarios)).await;
    for s in (0..=600).step_by(10) {
        tick(&c, normal_from + Duration::seconds(s)).await;
    }
    assert_eq!(new_pattern_incidents(&c).await, vec![], "normal traffic after warm-up");

    // the scenario, then normal traffic again up to now
    let from = origin + Duration::minutes(35);
    send(&app, &generate(&mut traffic, origin, from, 10 * 60, &scenarios)).await;
    for s in (10..=600).step_by(10) {
        tick(&c, from + Duration::seconds(s)).await;
    }
    let found = new_pattern_incidents(&c).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let (service, status, summary) = &found[0];
    assert_eq!(service, &scenario.service);
    assert_eq!(status, "resolved", "the pattern is no longer new one lookback after it appeared");
    let novel: String = c
        .query_one(
            "SELECT template FROM log_patterns WHERE service = $1 AND first_seen >= $2 AND first_seen < $3",
            &[service, &from, &(from + Duration::seconds(scenario.duration.as_secs() as i64))],
        )
        .await
        .unwrap()
        .get(0);
    assert!(summary.starts_with("New error pattern: \""), "{summary}");
    assert!(summary.contains(&novel), "{summary} names {novel}");

    // the replay (backtest_rules()) finds the same breaching steps as live evaluation did
    let breaching = |q: &'static str| {
        let c = &c;
        async move {
            let rows = c.query(q, &[&from]).await.unwrap();
            rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, DateTime<Utc>>(1))).collect::<Vec<_>>()
        }
    };
    let live = breaching(
        "SELECT e.service, t FROM generate_series($1::timestamptz, $1 + interval '10 minutes', interval '10 seconds') t,
                LATERAL evaluate_rules(t) e WHERE e.kind = 'new_pattern' AND e.breached ORDER BY 1, 2",
    )
    .await;
    let replayed = breaching(
        "SELECT service, at FROM replay_new_patterns($1::timestamptz, $1 + interval '10 minutes', interval '10 seconds',
                (SELECT array_agg(r ORDER BY r.id) FROM detection_rules r)) ORDER BY 1, 2",
    )
    .await;
    assert!(!live.is_empty());
    assert_eq!(replayed, live);

    // ...and backtest_rules() with the default rules (all five kinds) over the same period opens
    // the same NEW_ERROR_PATTERN incident, opened and resolved within one step of the live one
    let (opened, resolved): (DateTime<Utc>, DateTime<Utc>) = c
        .query_one("SELECT created_at, resolved_at FROM incidents WHERE incident_type = 'NEW_ERROR_PATTERN'", &[])
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    let backtest = c
        .query(
            "SELECT service, opened_at, resolved_at FROM backtest_rules($1::timestamptz, $1 + interval '10 minutes', interval '10 seconds')
             WHERE incident_type = 'NEW_ERROR_PATTERN'",
            &[&from],
        )
        .await
        .unwrap();
    assert_eq!(backtest.len(), 1, "{backtest:?}");
    let (b_service, b_opened, b_resolved): (String, DateTime<Utc>, Option<DateTime<Utc>>) =
        (backtest[0].get(0), backtest[0].get(1), backtest[0].get(2));
    assert_eq!(&b_service, service);
    let step = Duration::seconds(10);
    assert!((b_opened - opened).abs() <= step, "opened live at {opened}, replayed at {b_opened}");
    let b_resolved = b_resolved.expect("the replay resolves it too");
    assert!((b_resolved - resolved).abs() <= step, "resolved live at {resolved}, replayed at {b_resolved}");
}

/// Rows a DBA writes with SQL: `n` lines of `message` for `service`, spread over the minute
/// before `at`, at `level`.
async fn insert(c: &Client, service: &str, level: &str, message: &str, n: i32, at: DateTime<Utc>) {
    c.execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT $5::timestamptz - (g * interval '50 milliseconds'), $1, $2, format($3, g) FROM generate_series(1, $4) g",
        &[&service, &level, &message, &n, &at],
    )
    .await
    .unwrap();
}

/// A service with an hour of ordinary INFO and ERROR lines up to `at` - 10 min.
async fn history(c: &Client, service: &str, at: DateTime<Utc>) {
    for m in (10..70).step_by(5) {
        let t = at - Duration::minutes(m);
        insert(c, service, "INFO", "request %s served", 20, t).await;
        insert(c, service, "ERROR", "upstream %s timed out", 2, t).await;
    }
    c.execute("SELECT compact_patterns()", &[]).await.unwrap();
}

#[tokio::test]
async fn two_new_error_patterns_at_once_are_one_incident_naming_both() {
    let db = fresh_db().await;
    let c = db.client().await;
    let at = Utc::now() - Duration::minutes(1);
    history(&c, "checkout", at).await;
    insert(&c, "checkout", "ERROR", "payment provider %s refused the card", 12, at).await;
    insert(&c, "checkout", "FATAL", "ledger shard %s is read-only", 15, at).await;
    // a known error, however many, is not new
    insert(&c, "checkout", "ERROR", "upstream %s timed out", 40, at).await;
    c.execute("SELECT compact_patterns()", &[]).await.unwrap();
    tick(&c, at).await;
    let found = new_pattern_incidents(&c).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let summary = &found[0].2;
    assert!(summary.starts_with("2 new error patterns: "), "{summary}");
    assert!(summary.contains("\"ledger shard <*> is read-only\" (15 lines)"), "{summary}");
    assert!(summary.contains("\"payment provider <*> refused the card\" (12 lines)"), "{summary}");
    assert!(!summary.contains("timed out"), "{summary}");
}

#[tokio::test]
async fn a_new_pattern_fires_only_at_threshold_and_only_at_error_or_fatal() {
    let db = fresh_db().await;
    let c = db.client().await;
    let at = Utc::now() - Duration::minutes(1);
    history(&c, "checkout", at).await;
    insert(&c, "checkout", "ERROR", "payment provider %s refused the card", 9, at).await;
    insert(&c, "checkout", "WARN", "retry budget %s nearly spent", 50, at).await;
    let rows = c
        .query(
            "SELECT observed, breached FROM evaluate_rules($1) WHERE rule_name = 'NEW_ERROR_PATTERN' AND service = 'checkout'",
            &[&at],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].get::<_, f64>(0), rows[0].get::<_, bool>(1)), (9.0, false), "9 lines < threshold 10");
    insert(&c, "checkout", "ERROR", "payment provider %s refused the card", 1, at).await;
    let breached: bool = c
        .query_one(
            "SELECT breached FROM evaluate_rules($1) WHERE rule_name = 'NEW_ERROR_PATTERN' AND service = 'checkout'",
            &[&at],
        )
        .await
        .unwrap()
        .get(0);
    assert!(breached, "10 lines reach threshold 10");
}

#[tokio::test]
async fn a_service_still_learning_does_not_fire_new_error_pattern() {
    let db = fresh_db().await;
    let c = db.client().await;
    let at = Utc::now() - Duration::minutes(1);
    // installed 12 minutes ago: less than lookback (5 min) + baseline (15 min) of history
    for m in [12, 8, 4] {
        insert(&c, "fresh", "INFO", "request %s served", 20, at - Duration::minutes(m)).await;
    }
    insert(&c, "fresh", "ERROR", "cache %s warming failed", 30, at).await;
    tick(&c, at).await;
    assert_eq!(new_pattern_incidents(&c).await, vec![]);
    // the same lines from a service with an hour of history are new
    history(&c, "old", at).await;
    insert(&c, "old", "ERROR", "cache %s warming failed", 30, at).await;
    tick(&c, at).await;
    let found = new_pattern_incidents(&c).await;
    assert_eq!(found.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["old"]);
}
