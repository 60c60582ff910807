//! The replay (backtest_rules()): the incidents it finds are those live detection finds when it
//! evaluates at the same instants, at either resolution of the rollup and across the edge between
//! them; it writes nothing; a what-if rule set is checked as the table checks rules. Parity with a
//! live detector fed by the real generator is in `a_replay_of_generated_failures_finds_what_the_live_detector_found`.
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Value, json};
use tokio_postgres::Client;

use crate::helpers::*;

/// (service, incident_type, severity, opened_at, resolved_at, opening rule, peak, observed at opening)
type Found = (String, String, String, DateTime<Utc>, Option<DateTime<Utc>>, String, f64, f64);
/// (service, incident_type, severity, opened_at, resolved_at)
type Opened = (String, String, String, DateTime<Utc>, Option<DateTime<Utc>>);

/// Four services, 2 logs/s (0.5% errors, 80-120 ms) from t0 - 70 min to t0 + 14 min, and a failure
/// each: `a` an error burst (1200 errors, 1:00-2:00), `b` latency x20 (3:00-5:00), `c` silent
/// (6:00-9:00), `d` a burst of its error rate (30% for 40 s at 2:30: far fewer errors than `a`).
async fn load_failures(c: &Client, t0: DateTime<Utc>) {
    c.execute(
        "CREATE FUNCTION pg_temp.load(t timestamptz, svc text, secs int, per_sec int, err_permille int, lat float8)
         RETURNS void LANGUAGE sql AS $$
             INSERT INTO logs (ts, service, level, latency_ms)
             SELECT t + make_interval(secs => g::float8 / per_sec), svc,
                    CASE WHEN (g * 7919) % 1000 < err_permille THEN 'ERROR' ELSE 'INFO' END, lat * (1 + (g % 5) * 0.1)
             FROM generate_series(0, secs * per_sec - 1) g $$",
        &[],
    )
    .await
    .unwrap();
    c.execute(
        "SELECT pg_temp.load($1::timestamptz - interval '70 min', s, 84 * 60, 2, 5, 80) FROM unnest(ARRAY['a', 'b', 'd']) s",
        &[&t0],
    )
    .await
    .unwrap();
    c.batch_execute(&format!(
        "SELECT pg_temp.load('{t0}'::timestamptz - interval '70 min', 'c', 76 * 60, 2, 5, 80);
         SELECT pg_temp.load('{t0}'::timestamptz + interval '9 min', 'c', 5 * 60, 2, 5, 80);
         SELECT pg_temp.load('{t0}'::timestamptz + interval '1 min', 'a', 60, 20, 1000, 80);
         SELECT pg_temp.load('{t0}'::timestamptz + interval '3 min', 'b', 120, 5, 5, 1600);
         SELECT pg_temp.load('{t0}'::timestamptz + interval '150 s', 'd', 40, 10, 300, 80);",
        t0 = t0.to_rfc3339()
    ))
    .await
    .unwrap();
}

/// Rules beyond the defaults, so that the replay has every part of the lifecycle to get right: a
/// stronger rule of the same type (escalation) and a per-service override with a pending_for.
async fn richer_rules(c: &Client) {
    c.batch_execute(
        "INSERT INTO detection_rules (name, kind, incident_type, lookback, threshold, severity)
         VALUES ('ERROR_SPIKE_CRITICAL', 'error_count', 'ERROR_SPIKE', '5 minutes', 1000, 'CRITICAL');
         INSERT INTO detection_rules (name, kind, incident_type, service, lookback, threshold, severity, pending_for)
         VALUES ('ERROR_SPIKE', 'error_count', 'ERROR_SPIKE', 'd', '5 minutes', 100, 'HIGH', '20 seconds');",
    )
    .await
    .unwrap();
}

const FOUND: &str = "service, incident_type, severity, opened_at, resolved_at, rule_name, peak, observed";

async fn replay(c: &Client, from: DateTime<Utc>, to: DateTime<Utc>, step: &str) -> Vec<Found> {
    c.query(
        &format!("SELECT {FOUND} FROM backtest_rules($1, $2, $3::text::interval) ORDER BY opened_at, service"),
        &[&from, &to, &step],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)))
    .collect()
}

/// Live detection at every `step` from `from` to `to` (in a transaction rolled back afterwards),
/// and the incidents it left: severity as escalated, the rule and reading that opened each.
async fn live(c: &mut Client, from: DateTime<Utc>, to: DateTime<Utc>, step: &str) -> Vec<Found> {
    let tx = c.transaction().await.unwrap();
    tx.execute(
        "SELECT count(*) FROM generate_series($1::timestamptz, $2, $3::text::interval) t, LATERAL detect_incidents(t)",
        &[&from, &to, &step],
    )
    .await
    .unwrap();
    let found = tx
        .query(
            "SELECT i.service, i.incident_type, i.severity, i.created_at, i.resolved_at, i.details ->> 'opened_by', i.peak,
                    (SELECT (e.details ->> 'observed')::float8 FROM incident_events e
                     WHERE e.incident_id = i.id AND e.event = 'opened')
             FROM incidents i ORDER BY i.created_at, i.service",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6), r.get(7)))
        .collect();
    tx.rollback().await.unwrap();
    found
}

fn t0() -> DateTime<Utc> {
    (Utc::now() - Duration::minutes(100)).duration_trunc(Duration::minutes(1)).unwrap()
}

#[tokio::test]
async fn a_replay_at_one_second_steps_finds_exactly_what_detection_finds_at_the_same_instants() {
    let db = fresh_db().await;
    let mut c = db.client().await;
    let t0 = t0();
    load_failures(&c, t0).await;
    richer_rules(&c).await;
    let (from, to) = (t0, t0 + Duration::minutes(12));

    let expected = live(&mut c, from, to, "3 seconds").await;
    let kinds: Vec<(&str, &str, &str)> = expected.iter().map(|f| (f.0.as_str(), f.1.as_str(), f.2.as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("a", "ERROR_SPIKE", "CRITICAL"),
            ("d", "ERROR_SPIKE", "HIGH"),
            ("b", "LATENCY_SPIKE", "MED"),
            ("c", "NO_DATA", "HIGH")
        ],
        "each failure opened one incident (a's escalated, d's through its own rule): {expected:?}"
    );
    assert!(expected.iter().all(|f| f.4.is_some()), "and each resolved: {expected:?}");

    assert_eq!(replay(&c, from, to, "3 seconds").await, expected);
}

#[tokio::test]
async fn a_replay_at_one_minute_steps_reads_the_minute_level_and_finds_what_detection_finds_each_minute() {
    let db = fresh_db().await;
    let mut c = db.client().await;
    let t0 = t0();
    load_failures(&c, t0).await;
    richer_rules(&c).await;
    // fold everything into the minute level, as the detector does
    c.execute("SELECT compact_rollup()", &[]).await.unwrap();
    let pending: i64 = c.query_one("SELECT count(*) FROM log_rollup WHERE NOT compacted", &[]).await.unwrap().get(0);
    assert_eq!(pending, 0);
    let (from, to) = (t0, t0 + Duration::minutes(12));

    let expected = live(&mut c, from, to, "1 minute").await;
    assert_eq!(expected.len(), 4, "{expected:?}");
    assert_eq!(replay(&c, from, to, "1 minute").await, expected);
}

#[tokio::test]
async fn windows_reaching_past_the_per_second_retention_are_read_in_whole_minutes_by_both() {
    let db = fresh_db().await;
    let mut c = db.client().await;
    // the failures straddle fine_since: seconds before it are gone, their minutes remain
    let t0 = (Utc::now() - Duration::minutes(68)).duration_trunc(Duration::minutes(1)).unwrap();
    load_failures(&c, t0).await;
    c.batch_execute("UPDATE logmon_settings SET rollup_fine_retention = '1 hour'; SELECT compact_rollup();")
        .await
        .unwrap();
    let fine: DateTime<Utc> = c.query_one("SELECT fine_since FROM rollup_state", &[]).await.unwrap().get(0);
    let (from, to) = (t0, t0 + Duration::minutes(12));
    assert!(from < fine && fine < to, "the period straddles fine_since ({fine})");

    let expected = live(&mut c, from, to, "3 seconds").await;
    assert_eq!(expected.len(), 4, "{expected:?}");
    assert_eq!(replay(&c, from, to, "3 seconds").await, expected);
}

#[tokio::test]
async fn a_replay_writes_nothing_and_runs_in_a_read_only_transaction() {
    let db = fresh_db().await;
    let mut c = db.client().await;
    let t0 = t0();
    load_failures(&c, t0).await;
    let tx = c.build_transaction().read_only(true).start().await.unwrap();
    let n: i64 = tx
        .query_one("SELECT count(*) FROM backtest_rules($1, $2)", &[&t0, &(t0 + Duration::minutes(12))])
        .await
        .unwrap()
        .get(0);
    tx.commit().await.unwrap();
    assert_eq!(n, 4);
    for table in ["incidents", "incident_events", "alert_state", "notification_outbox", "rule_changes"] {
        let rows: i64 = c.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
        assert_eq!(rows, 0, "{table}");
    }
    // a reader may replay too (no write grant needed)
    let role = format!("t_role_{:08x}", rand::random::<u32>());
    c.batch_execute(&format!("CREATE ROLE {role} LOGIN IN ROLE logmon_reader")).await.unwrap();
    let reader = connect(&db.url.replacen("://postgres@", &format!("://{role}@"), 1)).await;
    let n: i64 = reader
        .query_one("SELECT count(*) FROM backtest_rules($1, $2)", &[&t0, &(t0 + Duration::minutes(12))])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 4);
}

#[tokio::test]
async fn what_if_rules_replace_the_rule_set_for_the_replay_only() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    load_failures(&c, t0).await;
    let (from, to) = (t0, t0 + Duration::minutes(12));
    // d's burst (about 120 errors) is no ERROR_SPIKE at 500, and is one at 100 without ERROR_RATE
    let candidate = "SELECT jsonb_agg(to_jsonb(r) || CASE r.name WHEN 'ERROR_SPIKE' THEN '{\"threshold\": 100}'::jsonb
                                                              WHEN 'ERROR_RATE' THEN '{\"enabled\": false}'::jsonb
                                                              ELSE '{}'::jsonb END)
                     FROM detection_rules r";
    let rows = c
        .query(
            &format!(
                "SELECT service, rule_name, threshold FROM backtest_rules($1, $2, rules => ({candidate}))
                 WHERE incident_type = 'ERROR_SPIKE' ORDER BY service"
            ),
            &[&from, &to],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, f64)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(got, [("a".into(), "ERROR_SPIKE".into(), 100.0), ("d".into(), "ERROR_SPIKE".into(), 100.0)]);
    // the rules themselves did not change, and nothing was recorded as a change
    let threshold: f64 =
        c.query_one("SELECT threshold FROM detection_rules WHERE name = 'ERROR_SPIKE'", &[]).await.unwrap().get(0);
    assert_eq!(threshold, 500.0);
    let changes: i64 = c.query_one("SELECT count(*) FROM rule_changes", &[]).await.unwrap().get(0);
    assert_eq!(changes, 0);
    // and rules written by hand from scratch take the table's defaults
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM backtest_rules($1, $2, rules => '[{\"name\": \"BURST\", \"kind\": \"error_count\",
                 \"incident_type\": \"ERROR_SPIKE\", \"lookback\": \"5 minutes\", \"threshold\": 1000, \"severity\": \"LOW\"}]')",
            &[&from, &to],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "only a's burst crosses 1000");
}

#[tokio::test]
async fn candidate_rules_are_refused_as_the_table_refuses_them_naming_the_field() {
    let db = fresh_db().await;
    let c = db.client().await;
    let ok = json!({"name": "X", "kind": "error_count", "incident_type": "X", "lookback": 60, "threshold": 1, "severity": "LOW"});
    // a valid rule, then one named Y with `changes`
    let with = |changes: Value| {
        let mut second = ok.clone();
        second["name"] = json!("Y");
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                second.as_object_mut().unwrap().remove(k);
            } else {
                second[k] = v.clone();
            }
        }
        json!([ok, second]).to_string()
    };
    let cases = [
        (with(json!({"kind": "no_data", "threshold": 3})), "rules[1].threshold"),
        (with(json!({"treshold": 3})), "rules[1].treshold"),
        (with(json!({"lookback": "soon"})), "rules[1].lookback"),
        (with(json!({"lookback": 5})), "rules[1].lookback"),
        (with(json!({"severity": "URGENT"})), "rules[1].severity"),
        (with(json!({"service": ""})), "rules[1].service"),
        (with(json!({"incident_type": null})), "rules[1].incident_type"),
        (with(json!({"name": "X"})), "rules[1]"),
        (json!({"name": "X"}).to_string(), "rules"),
    ];
    for (rules, field) in cases {
        let e = c
            .query("SELECT * FROM backtest_rules(now() - interval '1 hour', rules => $1::text::jsonb)", &[&rules])
            .await
            .expect_err(&rules);
        let d = e.as_db_error().unwrap();
        assert_eq!((d.code().code(), d.column()), ("22023", Some(field)), "{rules}: {}", d.message());
    }
}

#[tokio::test]
async fn the_default_step_is_the_rollups_resolution_and_a_too_fine_one_is_raised_to_minutes() {
    let db = fresh_db().await;
    let c = db.client().await;
    let period = |since: &str, step: Option<&str>| {
        let c = &c;
        let since = since.to_string();
        let step = step.map(str::to_string);
        async move {
            let r = c
                .query_one(
                    "SELECT date_part('epoch', every), date_part('epoch', res)
                     FROM backtest_period(now() - $1::text::interval, now(), $2::text::interval)",
                    &[&since, &step],
                )
                .await
                .unwrap();
            (r.get::<_, f64>(0), r.get::<_, f64>(1))
        }
    };
    assert_eq!(period("1 hour", None).await, (1.0, 1.0), "within rollup_fine_retention: seconds");
    assert_eq!(period("2 days", None).await, (60.0, 60.0), "older: minutes");
    assert_eq!(period("1 hour", Some("10 seconds")).await, (10.0, 1.0));
    assert_eq!(period("2 days", Some("1 second")).await, (60.0, 60.0), "20,000 one-second buckets at most");
    assert_eq!(period("1 hour", Some("5 minutes")).await, (300.0, 60.0));
    let e = c.query("SELECT * FROM backtest_period(now() + interval '1 hour')", &[]).await.unwrap_err();
    assert_eq!(e.as_db_error().unwrap().column(), Some("since"));
    let e = c
        .query("SELECT * FROM backtest_period(now() - interval '1 hour', step => '1.5 seconds')", &[])
        .await
        .unwrap_err();
    assert_eq!(e.as_db_error().unwrap().column(), Some("step"));
}

#[tokio::test]
async fn a_replay_of_generated_failures_finds_what_the_live_detector_found() {
    let db = fresh_db().await;
    let c = db.client().await;
    // Windows of seconds, so that a whole lifecycle fits in a minute.
    c.batch_execute(
        "UPDATE detection_rules SET lookback = '10 seconds', threshold = 100, resolve_after = '3 seconds'
          WHERE name = 'ERROR_SPIKE';
         UPDATE detection_rules SET lookback = '10 seconds', threshold = 800, min_events = 20, resolve_after = '3 seconds'
          WHERE name = 'LATENCY_SPIKE';
         UPDATE detection_rules SET lookback = '10 seconds', baseline = '1 minute', min_events = 50, resolve_after = '3 seconds'
          WHERE name = 'NO_DATA';
         UPDATE detection_rules SET enabled = false WHERE name = 'ERROR_RATE';",
    )
    .await
    .unwrap();
    let app = spawn_collector(&db.url, &[]).await;
    let _detector = spawn(&["detector", "--database-url", &db.url, "--interval", "0.2"]);
    let mut generator = spawn(&[
        "generator",
        "--url",
        &app.base,
        "--rate",
        "300",
        "--batch",
        "30",
        "--seed",
        "11",
        "--duration",
        "80s",
        "--report-every",
        "5",
        "--scenario",
        "error-burst:feed-service:at=8s:for=5s;latency:db-service:at=25s:for=8s:x10;outage:auth-service:at=45s:for=14s",
    ]);
    // until every failure has come and gone (the generator still runs, so no one is silent at the end)
    let deadline = Instant::now() + StdDuration::from_secs(75);
    loop {
        let done: i64 = c
            .query_one(
                "SELECT count(DISTINCT incident_type) FROM incidents
                 WHERE status = 'resolved' AND resolved_at < now() - interval '3 seconds'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if done == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the three failures did not all open and resolve");
        tokio::time::sleep(StdDuration::from_millis(250)).await;
    }
    let until: DateTime<Utc> = c.query_one("SELECT now()", &[]).await.unwrap().get(0);
    let since: DateTime<Utc> = c.query_one("SELECT min(ts) FROM logs", &[]).await.unwrap().get(0);
    let live: Vec<Opened> = c
        .query(
            "SELECT service, incident_type, severity, created_at, resolved_at FROM incidents ORDER BY created_at",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let step = 1.0;
    let replayed: Vec<Opened> = c
        .query(
            "SELECT service, incident_type, severity, opened_at, resolved_at
             FROM backtest_rules($1, $2, make_interval(secs => $3)) ORDER BY opened_at",
            &[&since, &until, &step],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let _ = generator.kill().await;

    let what = |v: &[Opened]| -> Vec<(String, String, String)> {
        v.iter().map(|x| (x.0.clone(), x.1.clone(), x.2.clone())).collect()
    };
    assert_eq!(
        what(&live),
        [
            ("feed-service".to_string(), "ERROR_SPIKE".to_string(), "HIGH".to_string()),
            ("db-service".into(), "LATENCY_SPIKE".into(), "MED".into()),
            ("auth-service".into(), "NO_DATA".into(), "HIGH".into())
        ],
        "one incident per failure, live"
    );
    assert_eq!(what(&replayed), what(&live), "the same incidents, replayed: {replayed:?}");
    // each within one step of the live one: live detection at an instant t reads the window up to
    // the next whole second, what the replay reads at that second; the replay reports the second
    let close = |a: DateTime<Utc>, b: DateTime<Utc>| (a - b).num_milliseconds().abs() as f64 <= step * 1000.0;
    for (l, r) in live.iter().zip(&replayed) {
        assert!(close(l.3, r.3), "opened live at {} and replayed at {}: {live:?} {replayed:?}", l.3, r.3);
        let (lr, rr) = (l.4.expect("resolved live"), r.4.expect("resolved in the replay"));
        assert!(close(lr, rr), "resolved live at {lr} and replayed at {rr}: {live:?} {replayed:?}");
    }
}
