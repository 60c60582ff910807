//! Notifications out: the detector delivers the outbox to webhook receivers, Slack-style hooks
//! and a real Prometheus Alertmanager, retrying what may be retried and nothing else.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::alertmanager::Alertmanager;
use crate::helpers::*;
use crate::receiver::{Received, Receiver};

/// Retries in milliseconds, so the tests see several attempts quickly.
async fn fast_retries(db: &TestDb) {
    db.client()
        .await
        .batch_execute(
            "UPDATE logmon_settings SET notify_backoff_base = '100 milliseconds', notify_backoff_max = '400 milliseconds'",
        )
        .await
        .unwrap();
}

/// 600 errors in the last minute: ERROR_SPIKE opens on the detector's next tick.
async fn error_burst(db: &TestDb, service: &str) {
    db.client()
        .await
        .execute(
            "INSERT INTO logs (ts, service, level, message)
             SELECT now() - interval '10 seconds', $1, 'ERROR', 'boom' FROM generate_series(1, 600)",
            &[&service],
        )
        .await
        .unwrap();
}

/// The incident's id, once open. Detection is then switched off, so the burst, still in the
/// window, cannot open a second incident after the test resolves this one.
async fn wait_for_incident(db: &TestDb, service: &str) -> i64 {
    let c = db.client().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(r) = c.query_opt("SELECT id FROM incidents WHERE service = $1", &[&service]).await.unwrap() {
            c.execute("UPDATE detection_rules SET enabled = false", &[]).await.unwrap();
            return r.get(0);
        }
        assert!(Instant::now() < deadline, "no incident for {service}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An open incident written straight into the table, with its 'opened' notification (what
/// detect_incidents() would write), for tests of what happens to the notification next.
async fn open_incident(c: &tokio_postgres::Client, service: &str) -> i64 {
    let id: i64 = c
        .query_one(
            "INSERT INTO incidents (service, incident_type, severity, summary, created_at, last_seen_at,
                                    window_start, window_end, observed, threshold, peak)
             VALUES ($1, 'ERROR_SPIKE', 'HIGH', 'test incident', now(), now(), now(), now(), 1, 1, 1)
             RETURNING id",
            &[&service],
        )
        .await
        .unwrap()
        .get(0);
    c.execute("SELECT record_incident_change(i, 'opened', 'test', now()) FROM incidents i WHERE id = $1", &[&id])
        .await
        .unwrap();
    id
}

/// Two open incidents, services `a` then `b`; returns their ids.
async fn two_incidents(c: &tokio_postgres::Client) -> (i64, i64) {
    (open_incident(c, "a").await, open_incident(c, "b").await)
}

/// Runs `sql` (one text column) until `ok` holds for its value, and returns that value.
async fn poll_sql(c: &tokio_postgres::Client, sql: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v: String = c.query_one(sql, &[]).await.unwrap().get(0);
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}; last value {v:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resolves the incident (unless the detector, seeing its rule disabled, already did).
async fn resolve(db: &TestDb, id: i64) {
    let c = db.client().await;
    c.execute("SELECT resolve_incident($1, 'on-call') FROM incidents WHERE id = $1 AND status <> 'resolved'", &[&id])
        .await
        .unwrap();
}

fn detector(db: &TestDb, targets: &[&str]) -> tokio::process::Child {
    let mut args =
        vec!["detector", "--database-url", &db.url, "--interval", "0.2", "--public-url", "http://logmon.test"];
    args.extend_from_slice(targets);
    spawn(&args)
}

#[tokio::test]
async fn a_webhook_that_fails_then_recovers_gets_every_notification_once_and_in_order() {
    let db = fresh_db().await;
    fast_retries(&db).await;
    // The webhook answers 503 three times (and 500 once more later), then accepts.
    let rx = Receiver::start(|path, n| match (path, n) {
        ("/hook", 0..=2) | ("/hook", 4) => (503, None),
        _ => (200, None),
    })
    .await;
    let _detector = detector(&db, &["--webhook-url", &rx.url("/hook"), "--slack-webhook-url", &rx.url("/slack")]);
    error_burst(&db, "checkout").await;
    let id = wait_for_incident(&db, "checkout").await;
    rx.wait_until("the firing notification is accepted", |r| r.received("/hook").iter().any(|x| x.answered == 200))
        .await;
    resolve(&db, id).await;
    rx.wait_until("the resolved notification is accepted", |r| {
        r.received("/hook").iter().filter(|x| x.answered == 200).count() == 2
            && r.received("/slack").iter().filter(|x| x.answered == 200).count() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await; // anything doubled would arrive by now

    let hook = rx.received("/hook");
    let accepted: Vec<&Received> = hook.iter().filter(|x| x.answered == 200).collect();
    assert_eq!(accepted.len(), 2, "nothing doubled: {hook:#?}");
    let statuses: Vec<&str> = accepted.iter().map(|x| x.body["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["firing", "resolved"], "nothing lost, in order");
    let mut keys: HashMap<&str, usize> = HashMap::new();
    for x in &hook {
        *keys.entry(x.key.as_deref().expect("every attempt carries an Idempotency-Key")).or_default() += 1;
    }
    assert_eq!(keys.len(), 2, "retries repeat the key of their notification: {keys:?}");
    assert_eq!(hook.len(), 6, "four failed attempts, two accepted");

    // Alertmanager's webhook v4 shape
    let (firing, resolved) = (&accepted[0].body, &accepted[1].body);
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["receiver"], "logmon");
    let alert = &firing["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["alertname"], "ERROR_SPIKE");
    assert_eq!(alert["labels"]["service"], "checkout");
    assert_eq!(alert["labels"]["severity"], "high");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(alert["generatorURL"], format!("http://logmon.test/incidents/{id}"));
    assert!(alert["annotations"]["summary"].as_str().unwrap().contains("error"), "{alert}");
    assert_eq!(resolved["alerts"][0]["fingerprint"], alert["fingerprint"], "one alert, firing then resolved");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");

    let slack: Vec<String> = rx
        .received("/slack")
        .iter()
        .map(|x| x.body["text"].as_str().expect("Slack body is {\"text\": ...}").to_string())
        .collect();
    assert!(slack[0].contains("[FIRING] HIGH ERROR_SPIKE") && slack[0].contains("`checkout`"), "{slack:?}");
    assert!(slack[1].contains("[RESOLVED]"), "{slack:?}");

    // ... and SQL says so
    let c = db.client().await;
    let rows = c
        .query(
            "SELECT d.target, o.kind, d.status, d.attempts FROM notification_deliveries d
             JOIN notification_outbox o ON o.id = d.outbox_id ORDER BY d.target, o.id",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, i32)> = rows
        .iter()
        .map(|r| (format!("{}/{}", &r.get::<_, String>(0)[..5], r.get::<_, String>(1)), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        got,
        [
            ("slack/firing".to_string(), "delivered".to_string(), 1),
            ("slack/resolved".into(), "delivered".into(), 1),
            ("webho/firing".into(), "delivered".into(), 4),
            ("webho/resolved".into(), "delivered".into(), 2),
        ]
    );
    let outbox: Vec<String> =
        c.query("SELECT status FROM notification_outbox", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(outbox, ["delivered", "delivered"]);
    let notified: i64 = c
        .query_one("SELECT count(*) FROM incident_events WHERE incident_id = $1 AND event = 'notified'", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(notified, 4, "the timeline shows each delivery");
}

#[tokio::test]
async fn a_4xx_is_never_retried_and_a_429_is_retried_no_sooner_than_its_retry_after() {
    let db = fresh_db().await;
    fast_retries(&db).await;
    let rx = Receiver::start(|path, n| match (path, n) {
        ("/gone", _) => (404, None),
        ("/busy", 0) => (429, Some(1)),
        _ => (200, None),
    })
    .await;
    let _detector = detector(&db, &["--webhook-url", &rx.url("/gone"), "--webhook-url", &rx.url("/busy")]);
    error_burst(&db, "search").await;
    let id = wait_for_incident(&db, "search").await;
    rx.wait_until("the throttled hook accepts", |r| r.received("/busy").iter().any(|x| x.answered == 200)).await;
    tokio::time::sleep(Duration::from_millis(800)).await; // time for a (wrong) retry of the 404

    assert_eq!(rx.received("/gone").len(), 1, "a 404 is final");
    let busy = rx.received("/busy");
    assert_eq!(busy.len(), 2);
    assert!(busy[1].at - busy[0].at >= Duration::from_millis(950), "Retry-After: 1 was honoured");

    let c = db.client().await;
    let r = c
        .query_one(
            "SELECT status, attempts, last_http_status, last_error FROM notification_deliveries
             WHERE target LIKE 'webhook:%' AND last_http_status = 404",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((r.get::<_, String>(0), r.get::<_, i32>(1)), ("failed".into(), 1));
    assert!(r.get::<_, String>(3).contains("not retried"));
    let outbox: String = c.query_one("SELECT status FROM notification_outbox", &[]).await.unwrap().get(0);
    assert_eq!(outbox, "failed", "the outbox row shows that a target never got it");
    let failed: i64 = c
        .query_one(
            "SELECT count(*) FROM incident_events WHERE incident_id = $1 AND event = 'notification_failed'",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(failed, 1);

    let app = spawn_collector(&db.url, &[]).await;
    let metrics = http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let line = metrics.lines().find(|l| l.starts_with("logmon_notifications_undelivered{")).unwrap_or_default();
    assert!(line.contains(r#"status="failed""#) && line.ends_with(" 1"), "on-call can alert on it: {line:?}");
}

#[tokio::test]
async fn notifications_written_before_any_target_was_configured_expire_instead_of_flooding() {
    let db = fresh_db().await;
    let rx = Receiver::start(|_, _| (200, None)).await;
    let c = db.client().await;
    // An old incident whose notification nobody delivered (no detector had targets then).
    error_burst(&db, "legacy").await;
    let plain = detector(&db, &[]);
    let id = wait_for_incident(&db, "legacy").await;
    drop(plain);
    c.execute("UPDATE notification_outbox SET created_at = now() - interval '2 hours'", &[]).await.unwrap();
    let _detector = detector(&db, &["--webhook-url", &rx.url("/hook")]);
    resolve(&db, id).await;
    rx.wait_until("the fresh notification arrives", |r| !r.received("/hook").is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got: Vec<String> =
        rx.received("/hook").iter().map(|x| x.body["logmon"]["event"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, ["resolved"]);
    let statuses: Vec<String> = c
        .query("SELECT status FROM notification_outbox WHERE incident_id = $1 ORDER BY id", &[&id])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(statuses, ["expired", "delivered"]);
}

#[tokio::test]
async fn an_incident_fires_in_a_real_alertmanager_and_resolves_there() {
    let db = fresh_db().await;
    let am = Alertmanager::start().await;
    let _detector = detector(&db, &["--alertmanager-url", &am.base]);
    error_burst(&db, "payments").await;
    let id = wait_for_incident(&db, "payments").await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let alert = loop {
        if let Some(a) = am.alerts_for(id).await.pop() {
            break a;
        }
        assert!(Instant::now() < deadline, "the alert never appeared in Alertmanager");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(alert["labels"]["alertname"], "ERROR_SPIKE");
    assert_eq!(alert["labels"]["service"], "payments");
    assert_eq!(alert["labels"]["severity"], "high");
    assert_eq!(alert["status"]["state"], "active");
    assert_eq!(alert["generatorURL"], format!("http://logmon.test/incidents/{id}"));

    resolve(&db, id).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !am.alerts_for(id).await.is_empty() {
        assert!(Instant::now() < deadline, "the alert was never resolved in Alertmanager");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // the detector records the delivery once Alertmanager has answered: shortly after the alert left it
    let c = db.client().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered: i64 = c
            .query_one(
                "SELECT count(*) FROM notification_deliveries WHERE status = 'delivered' AND target LIKE 'alertmanager:%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if delivered == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "firing and resolved are both recorded as delivered: {delivered}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_detectors_with_the_same_targets_deliver_each_notification_once() {
    let db = fresh_db().await;
    let rx = Receiver::start(|_, _| (200, None)).await;
    let _a = detector(&db, &["--webhook-url", &rx.url("/hook")]);
    let _b = detector(&db, &["--webhook-url", &rx.url("/hook")]);
    error_burst(&db, "twins").await;
    let id = wait_for_incident(&db, "twins").await;
    resolve(&db, id).await;
    rx.wait_until("both notifications arrive", |r| r.received("/hook").len() >= 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events: Vec<String> =
        rx.received("/hook").iter().map(|x| x.body["logmon"]["event"].as_str().unwrap().to_string()).collect();
    assert_eq!(events, ["firing", "resolved"]);
}

#[tokio::test]
async fn a_delivery_whose_detector_died_is_handed_out_again_with_the_same_key_after_its_lease() {
    let db = fresh_db().await;
    let c = db.client().await;
    open_incident(&c, "s").await;
    let claim =
        "SELECT delivery_id, attempt, idempotency_key FROM claim_notifications(ARRAY['webhook:x#1'], 10, '1 second')";
    let first = c.query(claim, &[]).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(c.query(claim, &[]).await.unwrap().is_empty(), "leased: nobody else gets it meanwhile");
    // the claimer dies without calling record_delivery(); its lease runs out
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = c.query(claim, &[]).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].get::<_, i64>(0), first[0].get::<_, i64>(0));
    assert_eq!(again[0].get::<_, i32>(1), 2, "the attempt is counted");
    assert_eq!(again[0].get::<_, String>(2), first[0].get::<_, String>(2), "same idempotency key");
}

#[tokio::test]
async fn a_notification_that_cannot_be_rendered_fails_alone() {
    let db = fresh_db().await;
    let c = db.client().await;
    two_incidents(&c).await;
    c.batch_execute(
        "UPDATE notification_outbox SET payload = '{\"id\": \"not a number\"}' WHERE incident_id = (SELECT min(id) FROM incidents);
         UPDATE logmon_settings SET notify_max_attempts = 1;",
    )
    .await
    .unwrap();
    let rx = Receiver::start(|_, _| (200, None)).await;
    let _detector = detector(&db, &["--webhook-url", &rx.url("/hook")]);
    rx.wait_until("the healthy notification arrives", |r| !r.received("/hook").is_empty()).await;
    assert_eq!(rx.received("/hook")[0].body["alerts"][0]["labels"]["service"], "b");
    let outcome = poll_sql(
        &c,
        "SELECT d.status || ': ' || coalesce(d.last_error, '') FROM notification_deliveries d
         JOIN notification_outbox o ON o.id = d.outbox_id JOIN incidents i ON i.id = o.incident_id
         WHERE i.service = 'a' AND o.kind = 'firing'",
        "the broken notification has failed",
        |v| v.starts_with("failed"),
    )
    .await;
    assert!(outcome.contains("render_notification failed"), "{outcome}");
}

#[tokio::test]
async fn an_escalation_ends_the_alertmanager_alert_at_the_old_severity() {
    let db = fresh_db().await;
    let c = db.client().await;
    two_incidents(&c).await;
    // a delivery was recorded in between: it carries no severity and must not hide the old one
    c.batch_execute(
        "INSERT INTO incident_events (incident_id, at, event, actor) SELECT min(id), now(), 'notified', 'webhook:x' FROM incidents;
         UPDATE incidents SET severity = 'CRITICAL' WHERE id = (SELECT min(id) FROM incidents);
         SELECT record_incident_change(i, 'escalated', 'detector', now()) FROM incidents i WHERE id = (SELECT min(id) FROM incidents);",
    )
    .await
    .unwrap();
    let alerts: Value = c
        .query_one(
            "SELECT render_notification(id, 'alertmanager', 'http://logmon.test') FROM notification_outbox WHERE kind = 'escalated'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let severities: Vec<&str> =
        alerts.as_array().unwrap().iter().map(|a| a["labels"]["severity"].as_str().unwrap()).collect();
    assert_eq!(severities, ["critical", "high"]);
    let ended = chrono::DateTime::parse_from_rfc3339(alerts[1]["endsAt"].as_str().unwrap()).unwrap();
    assert!(ended <= chrono::Utc::now() + chrono::Duration::seconds(1), "the old-severity alert ends now");
    let live = chrono::DateTime::parse_from_rfc3339(alerts[0]["endsAt"].as_str().unwrap()).unwrap();
    assert!(live > chrono::Utc::now() + chrono::Duration::minutes(4), "the new one stays up until re-sent");

    // a webhook receiver keeps tracking one alert: same fingerprint at the new severity
    let fingerprints: Vec<String> = c
        .query(
            "SELECT render_notification(o.id, 'webhook', 'http://logmon.test') #>> '{alerts,0,fingerprint}'
             FROM notification_outbox o WHERE o.incident_id = (SELECT min(id) FROM incidents) ORDER BY o.id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(fingerprints.len(), 2);
    assert_eq!(fingerprints[0], fingerprints[1]);
}

#[tokio::test]
async fn slack_text_escapes_what_log_senders_wrote() {
    let db = fresh_db().await;
    let c = db.client().await;
    open_incident(&c, "<!channel> & co").await;
    let text: String = c
        .query_one(
            "SELECT render_notification(id, 'slack', 'http://logmon.test') ->> 'text' FROM notification_outbox",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(text.contains("`&lt;!channel&gt; &amp; co`"), "{text}");
    assert!(!text.contains("<!channel>"), "no @channel ping from a service name: {text}");
}

#[tokio::test]
async fn a_secret_webhook_url_never_reaches_the_database_even_when_delivery_fails() {
    let db = fresh_db().await;
    let c = db.client().await;
    two_incidents(&c).await;
    let closed = format!("http://127.0.0.1:{}/services/T0/B0/TOPSECRET", free_port());
    let _detector = detector(&db, &["--slack-webhook-url", &closed]);
    poll_sql(
        &c,
        "SELECT count(*)::text FROM notification_deliveries WHERE last_error IS NOT NULL",
        "a failed attempt is recorded",
        |n| n != "0",
    )
    .await;
    let leaked: i64 = c
        .query_one(
            "SELECT count(*) FROM notification_deliveries WHERE target LIKE '%TOPSECRET%' OR last_error LIKE '%TOPSECRET%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leaked, 0);
}

#[tokio::test]
async fn settled_notifications_past_retention_are_pruned_and_pending_ones_kept() {
    let db = fresh_db().await;
    let c = db.client().await;
    two_incidents(&c).await;
    c.batch_execute(
        "UPDATE notification_outbox SET created_at = now() - interval '30 days';
         UPDATE notification_outbox SET status = 'delivered' WHERE incident_id = (SELECT min(id) FROM incidents);",
    )
    .await
    .unwrap();
    let pruned: i64 = c.query_one("SELECT prune_notifications()", &[]).await.unwrap().get(0);
    assert_eq!(pruned, 1);
    let left: Vec<String> =
        c.query("SELECT status FROM notification_outbox", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(left, ["pending"]);
}

#[tokio::test]
async fn notifications_survive_a_database_restart_nothing_lost_nothing_doubled() {
    let pg = PrivateCluster::start();
    let url = pg.migrated_url();
    let c = connect(&url).await;
    c.batch_execute(
        "UPDATE logmon_settings SET notify_backoff_base = '100 milliseconds', notify_backoff_max = '400 milliseconds';",
    )
    .await
    .unwrap();
    two_incidents(&c).await;
    // the receiver is down at first, so retries are pending when the database goes away
    let rx = Receiver::start(|_, n| if n < 2 { (503, None) } else { (200, None) }).await;
    let _detector =
        spawn(&["detector", "--database-url", &url, "--interval", "0.2", "--webhook-url", &rx.url("/hook")]);
    rx.wait_until("a first, failed attempt", |r| !r.received("/hook").is_empty()).await;
    pg.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.restart();

    let c = connect(&url).await;
    poll_sql(
        &c,
        "SELECT count(*)::text FROM notification_outbox WHERE status <> 'delivered'",
        "every notification is delivered",
        |n| n == "0",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut accepted: Vec<String> =
        rx.received("/hook").iter().filter(|x| x.answered == 200).map(|x| x.key.clone().unwrap()).collect();
    accepted.sort();
    let mut written: Vec<String> = c
        .query("SELECT idempotency_key FROM notification_outbox", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    written.sort();
    assert_eq!(accepted, written, "every notification accepted exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_arrives_while_the_database_is_down_is_recorded_when_it_is_back_not_sent_again() {
    let pg = std::sync::Arc::new(PrivateCluster::start());
    let url = pg.migrated_url();
    open_incident(&connect(&url).await, "a").await;
    // The receiver takes the database down before it answers its first request: the detector
    // holds a 200 it cannot record. Sending it again would page twice; it must wait for the
    // database and record it (the lease keeps the delivery its own for a minute meanwhile).
    let down = pg.clone();
    let rx = Receiver::start(move |_, n| {
        if n == 0 {
            down.stop();
        }
        (200, None)
    })
    .await;
    let _detector =
        spawn(&["detector", "--database-url", &url, "--interval", "0.2", "--webhook-url", &rx.url("/hook")]);
    rx.wait_until("the first delivery", |r| !r.received("/hook").is_empty()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.restart();

    let c = connect(&url).await;
    poll_sql(
        &c,
        "SELECT count(*)::text FROM notification_deliveries WHERE status = 'delivered' AND attempts = 1",
        "the first answer recorded",
        |n| n != "0",
    )
    .await;
    let first = rx.received("/hook")[0].key.clone().unwrap();
    let times = rx.received("/hook").iter().filter(|r| r.key.as_deref() == Some(first.as_str())).count();
    assert_eq!(times, 1, "the notification the receiver accepted was not sent again");
}

#[tokio::test]
async fn deliveries_to_a_target_removed_from_the_configuration_fail_instead_of_waiting_forever() {
    let db = fresh_db().await;
    let c = db.client().await;
    two_incidents(&c).await;
    let claim = |targets: &'static str| format!("SELECT count(*) FROM claim_notifications(ARRAY[{targets}]::text[])");
    let n: i64 = c.query_one(&claim("'webhook:old#1', 'webhook:new#2'"), &[]).await.unwrap().get(0);
    assert_eq!(n, 4);
    c.batch_execute(
        "SELECT record_delivery(id, 200) FROM notification_deliveries WHERE target = 'webhook:new#2';
         UPDATE notification_deliveries SET next_attempt_at = now() - interval '2 hours' WHERE target = 'webhook:old#1';",
    )
    .await
    .unwrap();
    // the old target is gone from every detector's flags
    let n: i64 = c.query_one(&claim("'webhook:new#2'"), &[]).await.unwrap().get(0);
    assert_eq!(n, 0);
    let rows = c
        .query("SELECT d.status, d.last_error, o.status FROM notification_deliveries d JOIN notification_outbox o ON o.id = d.outbox_id WHERE d.target = 'webhook:old#1'", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert_eq!(r.get::<_, String>(0), "failed");
        assert!(r.get::<_, String>(1).contains("no longer configured"));
        assert_eq!(r.get::<_, String>(2), "failed", "the outbox row says a target never got it");
    }
    let events: i64 = c
        .query_one("SELECT count(*) FROM incident_events WHERE event = 'notification_failed'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(events, 2, "and so do the timelines");
}

#[tokio::test]
async fn alertmanager_is_told_who_acknowledged_an_incident_on_the_next_resend() {
    let db = fresh_db().await;
    let c = db.client().await;
    two_incidents(&c).await;
    c.batch_execute("SELECT acknowledge_incident(min(id), 'alice') FROM incidents").await.unwrap();
    let alerts: Value = c.query_one("SELECT alertmanager_alerts('http://logmon.test')", &[]).await.unwrap().get(0);
    let annotations: Vec<(&str, Option<&str>)> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["annotations"]["status"].as_str().unwrap(), a["annotations"]["acknowledged_by"].as_str()))
        .collect();
    assert_eq!(annotations, [("acknowledged", Some("alice")), ("open", None)]);
}

/// The delay record_delivery() sets after a failed attempt number `attempt`, in seconds.
async fn retry_delay(c: &tokio_postgres::Client, id: i64, attempt: i32, http: i32, retry_after: Option<f64>) -> f64 {
    c.execute("UPDATE notification_deliveries SET attempts = $2, status = 'pending' WHERE id = $1", &[&id, &attempt])
        .await
        .unwrap();
    // one transaction: now() is the same instant in record_delivery() and in the difference
    c.batch_execute("BEGIN").await.unwrap();
    let status: String = c
        .query_one("SELECT record_delivery($1, $2, NULL, make_interval(secs => $3))", &[&id, &http, &retry_after])
        .await
        .unwrap()
        .get(0);
    assert_eq!(status, "pending");
    let d: f64 = c
        .query_one(
            "SELECT extract(epoch FROM next_attempt_at - now())::float8 FROM notification_deliveries WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    c.batch_execute("COMMIT").await.unwrap();
    d
}

#[tokio::test]
async fn a_failed_delivery_is_retried_after_one_second_then_doubling_up_to_the_cap() {
    let db = fresh_db().await;
    let c = db.client().await;
    let incident = open_incident(&c, "checkout").await;
    let id: i64 = c
        .query_one(
            "INSERT INTO notification_deliveries (outbox_id, incident_id, target)
             SELECT id, incident_id, 'webhook:receiver#1' FROM notification_outbox WHERE incident_id = $1 RETURNING id",
            &[&incident],
        )
        .await
        .unwrap()
        .get(0);
    // defaults: base 1 s, cap 5 min, +-20% jitter; no Retry-After
    for attempt in 1..=12 {
        let expected = f64::min(2f64.powi(attempt - 1), 300.0);
        let got = retry_delay(&c, id, attempt, 503, None).await;
        let (lo, hi) = (f64::min(expected * 0.8, 300.0), f64::min(expected * 1.2, 300.0));
        assert!(got >= lo - 1e-6 && got <= hi + 1e-6, "attempt {attempt}: waited {got} s, expected {lo}..{hi} s");
    }
    // no answer at all and 429 follow the same schedule
    assert!(retry_delay(&c, id, 1, 429, None).await <= 1.2);
    // a Retry-After is honoured as a minimum, and capped
    let got = retry_delay(&c, id, 1, 503, Some(30.0)).await;
    assert!((30.0..=30.001).contains(&got), "Retry-After: 30 waited {got} s");
    let got = retry_delay(&c, id, 1, 503, Some(3600.0)).await;
    assert!((299.999..=300.001).contains(&got), "Retry-After: 3600 is capped at notify_backoff_max, waited {got} s");
}

#[tokio::test]
async fn notifications_carry_the_top_patterns_and_sample_lines_escaped_for_each_receiver() {
    let db = fresh_db().await;
    let c = db.client().await;
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT now() - interval '20 seconds' + g * interval '10 milliseconds', 'checkout', 'ERROR',
                CASE WHEN g % 3 = 0 THEN 'card <!channel> declined for order o' || g
                     ELSE 'gateway g' || g % 4 || ' timed out after ' || g || 'ms' END
         FROM generate_series(1, 600) g;
         SELECT compact_patterns();",
    )
    .await
    .unwrap();
    let id = open_incident(&c, "checkout").await;
    c.execute("UPDATE incidents SET breach_start = now() - interval '1 minute' WHERE id = $1", &[&id]).await.unwrap();
    let render = |format: &'static str| {
        let c = &c;
        async move {
            let v: Value = c
                .query_one(
                    "SELECT render_notification(id, $1, 'http://logmon.test') FROM notification_outbox WHERE incident_id = $2",
                    &[&format, &id],
                )
                .await
                .unwrap()
                .get(0);
            v
        }
    };
    let webhook = render("webhook").await;
    let notes = &webhook["alerts"][0]["annotations"];
    let top = notes["top_patterns"].as_str().unwrap();
    assert_eq!(top.lines().next(), Some("400x gateway <*> timed out after <*> (new)"), "{top}");
    assert!(top.contains("200x card <!channel> declined for order <*> (new)"), "{top}");
    assert_eq!(notes["sample_lines"].as_str().unwrap().lines().count(), 3);
    assert_eq!(webhook["logmon"]["context"]["patterns"][0]["count"], 400, "the structured context too");
    let am = render("alertmanager").await;
    assert_eq!(am[0]["annotations"]["top_patterns"], notes["top_patterns"], "Alertmanager annotations are strings");
    let slack = render("slack").await["text"].as_str().unwrap().to_string();
    assert!(slack.contains("*Top patterns*"), "{slack}");
    assert!(slack.contains("card &lt;!channel&gt; declined for order &lt;*&gt;"), "{slack}");
    assert!(!slack.contains("<!channel>"), "no ping from a log line: {slack}");
}
