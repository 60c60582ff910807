//! Detection as specified in DESIGN §2-3: rules, lifecycle and concurrency, driven with explicit
//! timestamps (`detect_incidents(at)`), never with sleeps.
use chrono::{DateTime, Duration, DurationRound, Utc};
use tokio_postgres::Client;

use crate::helpers::*;

/// A minute boundary three hours ago: far enough for windows on both sides, inside retention.
fn t0() -> DateTime<Utc> {
    (Utc::now() - Duration::hours(3)).duration_trunc(Duration::minutes(1)).unwrap()
}

fn at(t0: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    t0 + Duration::seconds(secs)
}

/// `per_sec` logs per second for `service` over [from, from + secs), `error_permille` of them ERROR.
async fn load(
    c: &Client,
    service: &str,
    from: DateTime<Utc>,
    secs: i64,
    per_sec: i64,
    error_permille: i64,
    latency_ms: f64,
) {
    c.execute(
        "INSERT INTO logs (ts, service, level, latency_ms)
         SELECT $1::timestamptz + make_interval(secs => g::float8 / $3), $2,
                CASE WHEN g % 1000 < $4::bigint THEN 'ERROR' ELSE 'INFO' END, $5
         FROM generate_series(0, $6::bigint - 1) g",
        &[&from, &service, &(per_sec as f64), &error_permille, &latency_ms, &(secs * per_sec)],
    )
    .await
    .unwrap();
}

/// Normal traffic (2/s, 0.5% errors, 80 ms) for services over [t0 - 1h, t0 + 10 min).
async fn normal(c: &Client, t0: DateTime<Utc>, services: &[&str]) {
    for s in services {
        load(c, s, t0 - Duration::hours(1), 4200, 2, 5, 80.0).await;
    }
}

/// (action, service, incident_type, severity, summary) of one tick.
async fn detect(c: &Client, when: DateTime<Utc>) -> Vec<(String, String, String, String, String)> {
    c.query("SELECT action, service, incident_type, severity, summary FROM detect_incidents($1)", &[&when])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

fn actions(v: &[(String, String, String, String, String)]) -> Vec<(&str, &str, &str)> {
    v.iter().map(|(a, s, t, _, _)| (a.as_str(), s.as_str(), t.as_str())).collect()
}

async fn scalar(c: &Client, q: &str) -> i64 {
    c.query_one(q, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn an_error_burst_opens_one_high_incident_which_resolves_after_the_burst() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    normal(&c, t0, &["feed-service", "auth-service"]).await;
    assert!(detect(&c, at(t0, -60)).await.is_empty(), "normal traffic opens nothing");
    load(&c, "feed-service", t0, 30, 20, 1000, 80.0).await; // 600 errors in 30 s

    let opened = detect(&c, at(t0, 30)).await;
    assert_eq!(actions(&opened), vec![("opened", "feed-service", "ERROR_SPIKE")]);
    let (_, _, _, severity, summary) = &opened[0];
    assert_eq!(severity, "HIGH");
    assert!(summary.starts_with("ERROR spike: 60") && summary.ends_with(" errors in last 5 min"), "{summary}");

    // the breach continues: no new incident; still one unresolved
    detect(&c, at(t0, 60)).await;
    detect(&c, at(t0, 120)).await;
    assert_eq!(scalar(&c, "SELECT count(*) FROM incidents").await, 1);

    // the 5-minute window has passed the burst: recovering, not yet resolved
    assert!(detect(&c, at(t0, 331)).await.is_empty());
    let state: String = c.query_one("SELECT status FROM incidents", &[]).await.unwrap().get(0);
    assert_eq!(state, "open");
    // clear for resolve_after (1 min): resolved
    assert_eq!(actions(&detect(&c, at(t0, 392)).await), vec![("resolved", "feed-service", "ERROR_SPIKE")]);
    let r = c.query_one("SELECT resolved_at = $1, last_seen_at <= $1 FROM incidents", &[&at(t0, 392)]).await.unwrap();
    assert!(r.get::<_, bool>(0) && r.get::<_, bool>(1));
    // timeline and outbox, written with the changes
    assert_eq!(scalar(&c, "SELECT count(*) FROM incident_events WHERE event IN ('opened', 'resolved')").await, 2);
    let kinds: Vec<String> = c
        .query("SELECT kind FROM notification_outbox ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, vec!["firing", "resolved"]);

    // a new burst after resolution opens a new incident
    load(&c, "feed-service", at(t0, 420), 30, 20, 1000, 80.0).await;
    assert_eq!(actions(&detect(&c, at(t0, 450)).await), vec![("opened", "feed-service", "ERROR_SPIKE")]);
    assert_eq!(scalar(&c, "SELECT count(DISTINCT id) FROM incidents").await, 2);
}

#[tokio::test]
async fn a_breach_must_hold_for_pending_for_before_it_opens() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    c.batch_execute(
        "UPDATE detection_rules SET pending_for = '30 seconds' WHERE name = 'ERROR_SPIKE';
                     UPDATE detection_rules SET enabled = false WHERE name = 'ERROR_RATE';",
    )
    .await
    .unwrap();
    normal(&c, t0, &["feed-service"]).await;
    load(&c, "feed-service", at(t0, -30), 30, 20, 1000, 80.0).await;
    assert!(detect(&c, t0).await.is_empty(), "pending");
    let pending: i64 = scalar(&c, "SELECT count(*) FROM alert_state WHERE pending_since IS NOT NULL").await;
    assert_eq!(pending, 1);
    assert!(detect(&c, at(t0, 20)).await.is_empty(), "still pending");
    assert_eq!(actions(&detect(&c, at(t0, 31)).await), vec![("opened", "feed-service", "ERROR_SPIKE")]);
}

#[tokio::test]
async fn a_stronger_rule_escalates_and_an_acknowledged_incident_is_not_renotified() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    c.batch_execute(
        "INSERT INTO detection_rules (name, kind, incident_type, lookback, threshold, severity)
         VALUES ('ERROR_SPIKE_CRITICAL', 'error_count', 'ERROR_SPIKE', '5 minutes', 2000, 'CRITICAL')",
    )
    .await
    .unwrap();
    normal(&c, t0, &["feed-service"]).await;
    load(&c, "feed-service", t0, 30, 20, 1000, 80.0).await;
    assert_eq!(actions(&detect(&c, at(t0, 30)).await), vec![("opened", "feed-service", "ERROR_SPIKE")]);
    let id: i64 = scalar(&c, "SELECT id FROM incidents").await;
    let acked =
        c.query_one("SELECT status, acknowledged_by FROM acknowledge_incident($1, 'alice')", &[&id]).await.unwrap();
    assert_eq!((acked.get::<_, String>(0), acked.get::<_, String>(1)), ("acknowledged".into(), "alice".into()));

    load(&c, "feed-service", at(t0, 30), 60, 40, 1000, 80.0).await; // 2400 more errors
    let esc = detect(&c, at(t0, 90)).await;
    assert_eq!(actions(&esc), vec![("escalated", "feed-service", "ERROR_SPIKE")]);
    assert_eq!(esc[0].3, "CRITICAL");
    let status: String = c.query_one("SELECT status FROM incidents WHERE id = $1", &[&id]).await.unwrap().get(0);
    assert_eq!(status, "acknowledged", "acknowledged incidents keep updating");
    let kinds: Vec<String> = c
        .query("SELECT kind FROM notification_outbox ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, vec!["firing"], "no re-notification while acknowledged");

    let resolved: String = c.query_one("SELECT status FROM resolve_incident($1, 'bob')", &[&id]).await.unwrap().get(0);
    assert_eq!(resolved, "resolved");
    let err = c.query("SELECT * FROM acknowledge_incident($1, 'x')", &[&id]).await.unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "55000");
    let err = c.query("SELECT * FROM resolve_incident(999999, 'x')", &[]).await.unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "P0002");
    let events: Vec<String> = c
        .query("SELECT event FROM incident_events WHERE incident_id = $1 ORDER BY id", &[&id])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(events, vec!["opened", "acknowledged", "escalated", "resolved"]);
}

#[tokio::test]
async fn a_rule_row_for_one_service_overrides_the_default() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    c.batch_execute(
        "INSERT INTO detection_rules (name, kind, incident_type, service, lookback, threshold, severity, enabled)
         SELECT name, kind, incident_type, 'feed-service', lookback, threshold, severity, false
         FROM detection_rules WHERE name IN ('ERROR_SPIKE', 'ERROR_RATE')",
    )
    .await
    .unwrap();
    normal(&c, t0, &["feed-service", "auth-service"]).await;
    load(&c, "feed-service", t0, 30, 20, 1000, 80.0).await;
    load(&c, "auth-service", t0, 30, 20, 1000, 80.0).await;
    assert_eq!(actions(&detect(&c, at(t0, 30)).await), vec![("opened", "auth-service", "ERROR_SPIKE")]);
}

#[tokio::test]
async fn degraded_latency_opens_a_med_latency_spike() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    normal(&c, t0, &["db-service", "feed-service"]).await;
    load(&c, "db-service", t0, 120, 5, 0, 1500.0).await;
    let got = detect(&c, at(t0, 120)).await;
    assert_eq!(actions(&got), vec![("opened", "db-service", "LATENCY_SPIKE")]);
    assert_eq!(got[0].3, "MED");
    assert!(got[0].4.starts_with("Latency spike: p95=") && got[0].4.ends_with("ms in last 5 min"), "{}", got[0].4);
}

#[tokio::test]
async fn an_error_rate_far_above_the_services_own_baseline_opens_an_incident() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    // 5/s with 1% errors for an hour, then one minute at 10%: 30 errors a minute, far below the
    // ERROR_SPIKE count, far above this service's normal.
    load(&c, "pay-service", t0 - Duration::hours(1), 3600, 5, 10, 50.0).await;
    load(&c, "pay-service", t0, 60, 5, 100, 50.0).await;
    load(&c, "pay-service", at(t0, 60), 300, 5, 10, 50.0).await;
    assert!(detect(&c, at(t0, 50)).await.is_empty(), "pending_for 10 s");
    let got = detect(&c, at(t0, 61)).await;
    assert_eq!(actions(&got), vec![("opened", "pay-service", "ERROR_SPIKE")]);
    assert!(got[0].4.starts_with("Error rate spike: "), "{}", got[0].4);
    let rule: String = c
        .query_one("SELECT r.name FROM incidents i JOIN detection_rules r ON r.id = i.rule_id", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rule, "ERROR_RATE");
}

#[tokio::test]
async fn low_traffic_cannot_fire_the_error_rate_rule() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    load(&c, "tiny-service", t0 - Duration::hours(1), 3600, 1, 0, 50.0).await;
    load(&c, "tiny-service", t0, 60, 1, 500, 50.0).await; // 50% errors, but 60 events < min_events
    for s in [10, 30, 61] {
        assert!(detect(&c, at(t0, s)).await.is_empty());
    }
}

#[tokio::test]
async fn a_service_that_goes_silent_opens_no_data_and_resolves_when_it_returns() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    load(&c, "auth-service", t0 - Duration::hours(1), 3600, 2, 0, 50.0).await;
    load(&c, "feed-service", t0 - Duration::hours(1), 4200, 2, 0, 50.0).await;
    assert!(detect(&c, at(t0, 30)).await.is_empty());
    assert_eq!(actions(&detect(&c, at(t0, 61)).await), vec![("opened", "auth-service", "NO_DATA")]);
    // still silent two hours later: still the same incident, not resolved
    assert!(detect(&c, at(t0, 7200)).await.iter().all(|a| a.0 != "resolved" && a.0 != "opened"));
    load(&c, "auth-service", at(t0, 7200), 60, 2, 0, 50.0).await;
    assert!(detect(&c, at(t0, 7201)).await.is_empty(), "recovering");
    assert_eq!(actions(&detect(&c, at(t0, 7232)).await), vec![("resolved", "auth-service", "NO_DATA")]);
}

#[tokio::test]
async fn a_one_off_sender_is_not_a_service_that_went_silent() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    // one POST of 50,000 rows (a batch job, a backfill, a test with curl), then nothing
    load(&c, "batch-job", t0 - Duration::minutes(30), 1, 50_000, 0, 50.0).await;
    // a sender of logs in 20 of the last 60 minutes only (every third minute)
    for m in (0..60).step_by(3) {
        load(&c, "cron-ish", t0 - Duration::minutes(60 - m), 5, 40, 0, 50.0).await;
    }
    // a regular sender that stops at t0
    load(&c, "auth-service", t0 - Duration::hours(1), 3600, 2, 0, 50.0).await;
    let opened = detect(&c, at(t0, 61)).await;
    assert_eq!(actions(&opened), vec![("opened", "auth-service", "NO_DATA")], "only the regular sender pages");
    assert!(opened[0].4.contains("in 60 of its 60 minutes"), "{}", opened[0].4);
    // the rule's threshold is the share of the baseline's minutes a regular sender fills: tunable
    c.batch_execute("UPDATE detection_rules SET threshold = 0.3 WHERE name = 'NO_DATA'").await.unwrap();
    assert_eq!(actions(&detect(&c, at(t0, 62)).await), vec![("opened", "cron-ish", "NO_DATA")]);
    let refused = c.batch_execute("UPDATE detection_rules SET threshold = 2 WHERE name = 'NO_DATA'").await;
    assert!(refused.is_err(), "a share above 1 is refused by the table's constraint");
}

#[tokio::test]
async fn concurrent_detectors_never_duplicate_an_incident() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    normal(&c, t0, &["feed-service", "auth-service", "db-service"]).await;
    for s in ["feed-service", "auth-service", "db-service"] {
        load(&c, s, t0, 30, 20, 1000, 80.0).await;
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = db.url.clone();
        tasks.push(tokio::spawn(async move {
            let c = connect(&url).await;
            let mut opened = 0;
            for i in 0..10 {
                opened += detect(&c, at(t0, 30 + i)).await.iter().filter(|a| a.0 == "opened").count();
            }
            opened
        }));
    }
    let mut opened = 0;
    for t in tasks {
        opened += t.await.unwrap();
    }
    assert_eq!(opened, 3, "one opening per service across all detectors");
    assert_eq!(scalar(&c, "SELECT count(*) FROM incidents").await, 3);
}

#[tokio::test]
async fn a_dba_tuning_a_threshold_changes_the_next_evaluation() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    normal(&c, t0, &["feed-service"]).await;
    load(&c, "feed-service", t0, 30, 4, 1000, 80.0).await; // 120 errors: below the default 500
    c.batch_execute("UPDATE detection_rules SET enabled = false WHERE name = 'ERROR_RATE'").await.unwrap();
    assert!(detect(&c, at(t0, 30)).await.is_empty());
    c.batch_execute("UPDATE detection_rules SET threshold = 100 WHERE name = 'ERROR_SPIKE'").await.unwrap();
    assert_eq!(actions(&detect(&c, at(t0, 31)).await), vec![("opened", "feed-service", "ERROR_SPIKE")]);
}

#[tokio::test]
async fn a_resolved_incident_keeps_the_summary_of_its_peak_with_the_value_it_closed_at() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    c.batch_execute("UPDATE detection_rules SET enabled = false WHERE name = 'ERROR_RATE'").await.unwrap();
    normal(&c, t0, &["feed-service"]).await;
    load(&c, "feed-service", t0, 30, 20, 1000, 80.0).await; // 600 errors in 30 s
    load(&c, "feed-service", at(t0, 60), 30, 20, 1000, 80.0).await; // 600 more a minute later
    detect(&c, at(t0, 30)).await;
    detect(&c, at(t0, 90)).await; // the peak: about 1200 errors in the window
    detect(&c, at(t0, 330)).await; // the first burst has left the window: about 600
    let (summary, peak): (String, f64) =
        c.query_one("SELECT summary, peak FROM incidents", &[]).await.map(|r| (r.get(0), r.get(1))).unwrap();
    assert!(peak >= 1200.0, "{peak}");
    assert!(summary.starts_with(&format!("ERROR spike: {peak} errors")), "the summary is the peak's: {summary}");

    // clear since 391 s (both bursts out of the window), resolved a minute later
    detect(&c, at(t0, 391)).await;
    assert_eq!(actions(&detect(&c, at(t0, 452)).await), vec![("resolved", "feed-service", "ERROR_SPIKE")]);
    let (summary, observed, closing): (String, f64, f64) = c
        .query_one("SELECT summary, observed, (details ->> 'closing_observed')::float8 FROM incidents", &[])
        .await
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .unwrap();
    assert!(closing < 500.0 && observed == closing, "it closed below the threshold: {closing}");
    assert_eq!(
        summary,
        format!("ERROR spike: {peak} errors in last 5 min; resolved at {closing} (threshold 500)"),
        "not the last reading above the threshold"
    );
}

#[tokio::test]
async fn evaluate_rules_shows_the_statistic_each_rule_compares_and_a_summary_only_when_it_breaches() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    // pay-service: 1% errors for an hour, then a minute at 10% (the error-rate rule breaches);
    // quiet-service: steady, and no latency at all
    load(&c, "pay-service", t0 - Duration::hours(1), 3600, 5, 10, 50.0).await;
    load(&c, "pay-service", t0, 60, 5, 100, 50.0).await;
    c.execute(
        "INSERT INTO logs (ts, service, level)
         SELECT $1::timestamptz + make_interval(secs => g::float8 / 2), 'quiet-service', 'INFO'
         FROM generate_series(0, 2 * 3660 - 1) g",
        &[&(t0 - Duration::hours(1))],
    )
    .await
    .unwrap();
    let rows = c
        .query("SELECT service, rule_name, observed, rate, breached, summary FROM evaluate_rules($1)", &[&at(t0, 60)])
        .await
        .unwrap();
    let row = |service: &str, rule: &str| {
        let r = rows
            .iter()
            .find(|r| r.get::<_, String>(0) == service && r.get::<_, String>(1) == rule)
            .unwrap_or_else(|| panic!("no row for {service} {rule}"));
        (r.get::<_, Option<f64>>(2), r.get::<_, Option<f64>>(3), r.get::<_, bool>(4), r.get::<_, Option<String>>(5))
    };

    // the error-rate rule compares a z-score with its threshold of 8, and shows the rate beside it
    let (z, rate, breached, summary) = row("pay-service", "ERROR_RATE");
    let (z, rate, summary) = (z.unwrap(), rate.unwrap(), summary.unwrap());
    assert!(breached && z >= 8.0, "z = {z}");
    let minute: f64 = c
        .query_one(
            "SELECT round(avg((level = 'ERROR')::int), 4)::float8 FROM logs
             WHERE service = 'pay-service' AND ts >= $1 AND ts < $1 + interval '1 minute'",
            &[&t0],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rate, minute, "the error rate of the last minute, apart");
    let pct = format!("Error rate spike: {}% errors in last 1 min", (1000.0 * minute).round() / 10.0);
    assert!(summary.starts_with(&pct) && summary.ends_with(&format!("z={z})")), "{summary}");

    // rows that do not breach say nothing
    for (service, rule) in [("pay-service", "ERROR_SPIKE"), ("pay-service", "NO_DATA"), ("quiet-service", "NO_DATA")] {
        let (observed, _, breached, summary) = row(service, rule);
        assert!(!breached && summary.is_none(), "{service} {rule}: {summary:?}");
        assert!(observed.unwrap() > 0.0, "{service} {rule}: what it counted: {observed:?}");
    }
    // no latency: nothing to compare, and no "p95=ms"
    let (p95, _, breached, summary) = row("quiet-service", "LATENCY_SPIKE");
    assert_eq!((p95, breached, summary), (None, false, None));
    assert_eq!(row("pay-service", "LATENCY_SPIKE").0, Some(50.0), "p95 of 50 ms latencies");
}

#[tokio::test]
async fn a_service_that_logs_only_errors_does_not_stop_detection_for_the_others() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = t0();
    // an hour of nothing but errors (the error rate's baseline is 100%)...
    load(&c, "errors-only", t0 - Duration::hours(1), 4200, 2, 1000, 80.0).await;
    // ...next to a service whose errors spike
    normal(&c, t0, &["auth-service"]).await;
    load(&c, "auth-service", t0, 60, 20, 500, 80.0).await;
    let opened = detect(&c, at(t0, 60)).await;
    assert!(actions(&opened).contains(&("opened", "auth-service", "ERROR_SPIKE")), "{opened:?}");
    let z: Option<f64> = c
        .query_one(
            "SELECT observed FROM evaluate_rules($1) WHERE service = 'errors-only' AND rule_name = 'ERROR_RATE'",
            &[&at(t0, 60)],
        )
        .await
        .unwrap()
        .get(0);
    assert!(z.is_some_and(f64::is_finite), "{z:?}");
}
