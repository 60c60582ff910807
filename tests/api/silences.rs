//! Silences and maintenance windows: they hold notifications, never detection, and when they end
//! the receivers hear the current state. Time is explicit (detect_incidents(at), and silences
//! evaluated at `at`); the end-to-end tests run the real detector, amtool and Alertmanager.
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use serde_json::{Value, json};
use tokio_postgres::Client;

use crate::alertmanager::Alertmanager;
use crate::helpers::*;
use crate::receiver::Receiver;

const TARGET: &str = "webhook:receiver#1";

/// A minute boundary three hours ago, as in the detection tests.
fn t0() -> DateTime<Utc> {
    (Utc::now() - chrono::Duration::hours(3)).duration_trunc(chrono::Duration::minutes(1)).unwrap()
}

fn at(t0: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    t0 + chrono::Duration::seconds(secs)
}

/// Only the fixed-count ERROR_SPIKE rule, so each burst is exactly one incident.
async fn error_spike_only(c: &Client) {
    c.batch_execute("UPDATE detection_rules SET enabled = (name = 'ERROR_SPIKE')").await.unwrap();
}

/// 600 ERROR logs for `service` over the 30 s from `from`: an ERROR_SPIKE at `from` + 30 s.
async fn burst(c: &Client, service: &str, from: DateTime<Utc>) {
    c.execute(
        "INSERT INTO logs (ts, service, level) SELECT $1::timestamptz + g * interval '50 milliseconds', $2, 'ERROR'
         FROM generate_series(0, 599) g",
        &[&from, &service],
    )
    .await
    .unwrap();
}

/// (action, service) of one detection tick at `when`.
async fn detect(c: &Client, when: DateTime<Utc>) -> Vec<(String, String)> {
    c.query("SELECT action, service FROM detect_incidents($1) WHERE action <> 'updated'", &[&when])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// One notifier pass for TARGET: claims what is due and reports each as delivered. Returns
/// (service, kind) of what went out.
async fn notify(c: &Client) -> Vec<(String, String)> {
    let rows = c
        .query(
            // (not joined with notification_outbox: this statement's snapshot cannot see the rows
            // claim_notifications() itself writes when a silence ends)
            "SELECT n.delivery_id, i.service, n.kind
             FROM claim_notifications(ARRAY[$1]) n JOIN incidents i ON i.id = n.incident_id
             ORDER BY n.delivery_id",
            &[&TARGET],
        )
        .await
        .unwrap();
    let mut sent = Vec::new();
    for r in rows {
        c.execute("SELECT record_delivery($1, 200)", &[&r.get::<_, i64>(0)]).await.unwrap();
        sent.push((r.get(1), r.get(2)));
    }
    sent
}

async fn create_silence(c: &Client, matchers: &str, comment: &str) -> String {
    c.query_one(
        "SELECT id::text FROM create_silence($1::text::jsonb, now() + interval '2 hours', $2, 'alice')",
        &[&matchers, &comment],
    )
    .await
    .unwrap()
    .get(0)
}

async fn incident_id(c: &Client, service: &str) -> i64 {
    c.query_one("SELECT max(id) FROM incidents WHERE service = $1", &[&service]).await.unwrap().get(0)
}

/// (event, details) of an incident's timeline.
async fn timeline(c: &Client, id: i64) -> Vec<(String, Value)> {
    c.query("SELECT event, details FROM incident_events WHERE incident_id = $1 ORDER BY id", &[&id])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[tokio::test]
async fn a_silence_holds_notifications_but_not_detection() {
    let db = fresh_db().await;
    let c = db.client().await;
    error_spike_only(&c).await;
    let sid = create_silence(&c, r#"["service=checkout"]"#, "deploy 1.4").await;
    let t0 = t0();
    burst(&c, "checkout", t0).await;
    burst(&c, "search", t0).await;

    // detection goes on: both incidents open
    let mut opened = detect(&c, at(t0, 30)).await;
    opened.sort();
    assert_eq!(opened, pairs(&[("opened", "checkout"), ("opened", "search")]));
    // ... but only the unsilenced one is told
    assert_eq!(notify(&c).await, pairs(&[("search", "firing")]));
    assert!(notify(&c).await.is_empty(), "nothing held comes out later while the silence lasts");

    let checkout = incident_id(&c, "checkout").await;
    let r = c
        .query_one(
            "SELECT status, silence_id::text, (SELECT count(*) FROM notification_deliveries d WHERE d.outbox_id = o.id)
             FROM notification_outbox o WHERE incident_id = $1",
            &[&checkout],
        )
        .await
        .unwrap();
    assert_eq!((r.get::<_, String>(0), r.get::<_, String>(1), r.get::<_, i64>(2)), ("silenced".into(), sid.clone(), 0));
    let events = timeline(&c, checkout).await;
    assert_eq!(events.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), ["opened", "silenced"]);
    assert_eq!(events[1].1["silence_id"], sid);
    assert_eq!(events[1].1["kind"], "firing");
    let actor: String = c
        .query_one("SELECT actor FROM incident_events WHERE incident_id = $1 AND event = 'silenced'", &[&checkout])
        .await
        .unwrap()
        .get(0);
    assert_eq!(actor, "alice", "the timeline says whose silence held it");

    // the API shows the incident, open, with the silence holding it; /metrics still counts it
    let app = spawn_collector(&db.url, &[]).await;
    let list: Value = http().get(app.url("/incidents")).send().await.unwrap().json().await.unwrap();
    let silenced: Vec<(&str, &str, Value)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["service"].as_str().unwrap(), i["status"].as_str().unwrap(), i["silenced_by"].clone()))
        .collect();
    assert!(silenced.contains(&("checkout", "open", json!([sid]))), "{silenced:?}");
    assert!(silenced.contains(&("search", "open", json!([]))), "{silenced:?}");
    let one: Value = http().get(app.url(&format!("/incidents/{checkout}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(one["silenced_by"], json!([sid]));
    assert!(one["events"].as_array().unwrap().iter().any(|e| e["event"] == "silenced"));
    let metrics = http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("logmon_open_incidents{") && l.contains("checkout") && l.ends_with(" 1")),
        "{metrics}"
    );
}

#[tokio::test]
async fn when_a_silence_ends_receivers_hear_the_current_state_of_what_it_held() {
    let db = fresh_db().await;
    let c = db.client().await;
    error_spike_only(&c).await;
    let t0 = t0();
    // a: breaches throughout; d: fires, then recovers while silenced;
    // b: opens while silenced and stays; e: opens and resolves while silenced
    for (service, bursts) in [("a", &[0, 300][..]), ("d", &[0]), ("b", &[100, 300]), ("e", &[100])] {
        for s in bursts {
            burst(&c, service, at(t0, *s)).await;
        }
    }
    detect(&c, at(t0, 30)).await;
    let mut before = notify(&c).await;
    before.sort();
    assert_eq!(before, pairs(&[("a", "firing"), ("d", "firing")]));

    let sid = create_silence(&c, r#"["service=~\"a|b|d|e\""]"#, "maintenance").await;
    for secs in [130, 331, 392, 431, 492] {
        detect(&c, at(t0, secs)).await;
        assert!(notify(&c).await.is_empty(), "held at t0 + {secs} s");
    }
    let statuses: Vec<(String, String)> = c
        .query("SELECT service, status FROM incidents ORDER BY service", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(statuses, pairs(&[("a", "open"), ("b", "open"), ("d", "resolved"), ("e", "resolved")]));

    c.execute("SELECT expire_silence($1::text::uuid, 'bob')", &[&sid]).await.unwrap();
    let mut after = notify(&c).await;
    after.sort();
    assert_eq!(after, pairs(&[("a", "firing"), ("b", "firing"), ("d", "resolved")]), "e opened and resolved inside");
    assert!(notify(&c).await.is_empty(), "told once");

    // the re-notification says why it comes now; e stays in the history with its timeline
    let body: Value = c
        .query_one(
            "SELECT render_notification(o.id, 'webhook', 'http://logmon.test') FROM notification_outbox o
             JOIN incidents i ON i.id = o.incident_id WHERE i.service = 'b' AND o.status <> 'silenced'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(body["status"], "firing");
    assert_eq!(body["logmon"]["after_silence"], sid);
    let e = incident_id(&c, "e").await;
    let events: Vec<String> = timeline(&c, e).await.into_iter().map(|x| x.0).collect();
    assert_eq!(events, ["opened", "silenced", "resolved", "silenced", "silence_ended"]);
    let ended = timeline(&c, e).await.pop().unwrap().1;
    assert_eq!((ended["silence_id"].as_str(), ended["notified"].is_null()), (Some(sid.as_str()), true));
}

#[tokio::test]
async fn an_escalation_held_by_a_silence_is_notified_at_the_new_severity_and_ends_the_old_alert() {
    let db = fresh_db().await;
    let c = db.client().await;
    error_spike_only(&c).await;
    c.batch_execute(
        "INSERT INTO detection_rules (name, kind, incident_type, lookback, threshold, severity)
         VALUES ('ERROR_SPIKE_CRITICAL', 'error_count', 'ERROR_SPIKE', '5 minutes', 1000, 'CRITICAL')",
    )
    .await
    .unwrap();
    let t0 = t0();
    burst(&c, "pay", t0).await;
    detect(&c, at(t0, 30)).await;
    assert_eq!(notify(&c).await, pairs(&[("pay", "firing")]));
    let sid = create_silence(&c, r#"["service=pay"]"#, "migration").await;
    burst(&c, "pay", at(t0, 30)).await;
    assert_eq!(detect(&c, at(t0, 60)).await, pairs(&[("escalated", "pay")]));
    assert!(notify(&c).await.is_empty());
    // a DBA ends it with an UPDATE rather than expire_silence(): released all the same
    c.execute("UPDATE silences SET ends_at = now() WHERE id = $1::text::uuid", &[&sid]).await.unwrap();
    assert_eq!(notify(&c).await, pairs(&[("pay", "firing")]));
    let alerts: Value = c
        .query_one(
            "SELECT render_notification(max(id), 'alertmanager', 'http://logmon.test') FROM notification_outbox",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let severities: Vec<&str> =
        alerts.as_array().unwrap().iter().map(|a| a["labels"]["severity"].as_str().unwrap()).collect();
    assert_eq!(severities, ["critical", "high"], "the alert at the severity Alertmanager last had is ended");
}

#[tokio::test]
async fn a_silence_created_a_moment_before_a_notification_is_due_is_honoured() {
    let db = fresh_db().await;
    let c = db.client().await;
    error_spike_only(&c).await;
    let t0 = t0();
    burst(&c, "checkout", t0).await;
    burst(&c, "search", t0).await;
    detect(&c, at(t0, 30)).await; // both notifications are written now, before any silence
    let sid = create_silence(&c, r#"["service=checkout"]"#, "just in time").await;
    assert_eq!(notify(&c).await, pairs(&[("search", "firing")]), "decided when claimed, not when written");

    // a delivery that failed before the silence is held when its retry comes due
    c.execute("SELECT expire_silence($1::text::uuid)", &[&sid]).await.unwrap();
    let claimed = c.query("SELECT delivery_id FROM claim_notifications(ARRAY[$1])", &[&TARGET]).await.unwrap();
    assert_eq!(claimed.len(), 1, "checkout's state, now that the silence is over");
    let delivery: i64 = claimed[0].get(0);
    c.execute("SELECT record_delivery($1, 503)", &[&delivery]).await.unwrap();
    let sid = create_silence(&c, r#"["service=checkout"]"#, "again").await;
    c.execute("UPDATE notification_deliveries SET next_attempt_at = now() WHERE id = $1", &[&delivery]).await.unwrap();
    assert!(notify(&c).await.is_empty());
    let r = c
        .query_one(
            "SELECT d.status, d.last_error, o.status FROM notification_deliveries d
             JOIN notification_outbox o ON o.id = d.outbox_id WHERE d.id = $1",
            &[&delivery],
        )
        .await
        .unwrap();
    assert_eq!((r.get::<_, String>(0), r.get::<_, String>(2)), ("silenced".into(), "silenced".into()));
    assert!(r.get::<_, String>(1).contains(&sid));
    let held = timeline(&c, incident_id(&c, "checkout").await).await;
    let last = held.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1["silence_id"].as_str(), last.1["target"].as_str()),
        ("silenced", Some(sid.as_str()), Some(TARGET))
    );
}

#[tokio::test]
async fn a_weekly_window_follows_daylight_saving_time() {
    let db = fresh_db().await;
    let c = db.client().await;
    let sid: String = c
        .query_one(
            "SELECT id::text FROM create_silence('[\"service=db\"]', weekdays => '{sunday}', start_time => '02:00',
                                                  end_time => '04:00', time_zone => 'Europe/Berlin', comment => 'weekly')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let state = |t: &'static str| {
        let c = &c;
        let sid = sid.clone();
        async move {
            let s: String = c
                .query_one(
                    "SELECT silence_state(s, $2::text::timestamptz) FROM silences s WHERE id = $1::text::uuid",
                    &[&sid, &t],
                )
                .await
                .unwrap()
                .get(0);
            s
        }
    };
    // Clocks go forward on 2027-03-28 at 02:00 CET: 02:00-04:00 on the wall is one hour.
    assert_eq!(state("2027-03-28T00:59:59Z").await, "pending");
    assert_eq!(state("2027-03-28T01:00:00Z").await, "active"); // the wall jumps 01:59:59 -> 03:00
    assert_eq!(state("2027-03-28T01:59:59Z").await, "active");
    assert_eq!(state("2027-03-28T02:00:00Z").await, "pending"); // 04:00 CEST
    // Clocks go back on 2027-10-31 at 03:00 CEST: 02:00-03:00 happens twice; the window is three hours.
    assert_eq!(state("2027-10-30T23:59:59Z").await, "pending");
    assert_eq!(state("2027-10-31T00:00:00Z").await, "active"); // 02:00 CEST, the first time
    assert_eq!(state("2027-10-31T01:30:00Z").await, "active"); // 02:30 CET, the second time
    assert_eq!(state("2027-10-31T02:59:59Z").await, "active");
    assert_eq!(state("2027-10-31T03:00:00Z").await, "pending"); // 04:00 CET
    // an ordinary summer Sunday, and a Monday
    assert_eq!(state("2027-07-04T00:00:00Z").await, "active");
    assert_eq!(state("2027-07-05T00:30:00Z").await, "pending");

    let window = |t: &'static str| {
        let c = &c;
        let sid = sid.clone();
        async move {
            let r = c
                .query_one(
                    "SELECT w.window_start, w.window_end FROM silences s, silence_window(s, $2::text::timestamptz) w
                     WHERE s.id = $1::text::uuid",
                    &[&sid, &t],
                )
                .await
                .unwrap();
            (r.get::<_, DateTime<Utc>>(0).to_rfc3339(), r.get::<_, DateTime<Utc>>(1).to_rfc3339())
        }
    };
    assert_eq!(
        window("2027-03-27T12:00:00Z").await,
        ("2027-03-28T01:00:00+00:00".into(), "2027-03-28T02:00:00+00:00".into())
    );
    assert_eq!(
        window("2027-10-30T12:00:00Z").await,
        ("2027-10-31T00:00:00+00:00".into(), "2027-10-31T03:00:00+00:00".into())
    );

    // A window that runs past midnight belongs to the day it starts: Saturday 22:00 to Sunday 02:00.
    let night: String = c
        .query_one(
            "SELECT id::text FROM create_silence('[\"service=batch\"]', weekdays => '{saturday}', start_time => '22:00',
                                                  end_time => '02:00', time_zone => 'Europe/Berlin')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    for (t, want) in [
        ("2027-10-30T19:59:59Z", "pending"), // Saturday 21:59:59 CEST
        ("2027-10-30T20:00:00Z", "active"),  // Saturday 22:00 CEST
        ("2027-10-30T23:30:00Z", "active"),  // Sunday 01:30 CEST
        ("2027-10-31T00:00:00Z", "pending"), // Sunday 02:00 CEST, the first time
        ("2027-10-31T21:30:00Z", "pending"), // Sunday 22:30 CET: not a Saturday
    ] {
        let got: String = c
            .query_one(
                "SELECT silence_state(s, $2::text::timestamptz) FROM silences s WHERE id = $1::text::uuid",
                &[&night, &t],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(got, want, "at {t}");
    }

    // What the window holds is released when the wall clock leaves it, not when UTC says 04:00 CEST.
    c.batch_execute(
        "INSERT INTO incidents (service, incident_type, severity, summary, created_at, last_seen_at,
                                window_start, window_end, observed, threshold, peak)
         VALUES ('db', 'LATENCY_SPIKE', 'MED', 'slow', now(), now(), now(), now(), 900, 800, 900);",
    )
    .await
    .unwrap();
    let held: i64 = c
        .query_one("SELECT hold_silenced_notifications(ARRAY[$1], '2027-10-31T00:30:00Z')", &[&TARGET])
        .await
        .unwrap()
        .get(0);
    assert_eq!(held, 0, "no notification was pending, but the incident is held");
    let release = |t: &'static str| {
        let c = &c;
        async move {
            c.query("SELECT notified FROM release_silenced_incidents($1::text::timestamptz)", &[&t])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, Option<String>>(0))
                .collect::<Vec<_>>()
        }
    };
    assert!(release("2027-10-31T01:30:00Z").await.is_empty(), "02:30 the second time is still inside");
    assert_eq!(release("2027-10-31T03:00:00Z").await, [Some("firing".to_string())]);
}

#[tokio::test]
async fn a_silence_releases_what_it_held_when_its_end_passes() {
    let db = fresh_db().await;
    let c = db.client().await;
    error_spike_only(&c).await;
    let t0 = t0();
    let sid = create_silence(&c, r#"["service=checkout"]"#, "two hours").await;
    burst(&c, "checkout", t0).await;
    detect(&c, at(t0, 30)).await;
    let ends: DateTime<Utc> =
        c.query_one("SELECT ends_at FROM silences WHERE id = $1::text::uuid", &[&sid]).await.unwrap().get(0);
    let hold = "SELECT hold_silenced_notifications(ARRAY['webhook:receiver#1'], $1)";
    let held: i64 = c.query_one(hold, &[&Utc::now()]).await.unwrap().get(0);
    assert_eq!(held, 1, "the firing");
    let release = "SELECT incident_id, notified FROM release_silenced_incidents($1)";
    let before_end = ends - chrono::Duration::seconds(1);
    assert!(c.query(release, &[&before_end]).await.unwrap().is_empty());
    let rows = c.query(release, &[&ends]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, Option<String>>(1).as_deref(), Some("firing"));
    let kinds: Vec<(String, String)> = c
        .query("SELECT kind, status FROM notification_outbox ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(kinds, pairs(&[("firing", "silenced"), ("firing", "pending")]));
}

#[tokio::test]
async fn several_detectors_release_an_ended_silence_once() {
    let db = fresh_db().await;
    let c = db.client().await;
    error_spike_only(&c).await;
    let t0 = t0();
    let sid = create_silence(&c, r#"["service=~\"s.*\""]"#, "maintenance").await;
    for s in ["s1", "s2", "s3"] {
        burst(&c, s, t0).await;
    }
    detect(&c, at(t0, 30)).await;
    assert!(notify(&c).await.is_empty());
    c.execute("SELECT expire_silence($1::text::uuid)", &[&sid]).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = db.url.clone();
        tasks.push(tokio::spawn(async move {
            let c = connect(&url).await;
            let mut sent = Vec::new();
            for _ in 0..5 {
                sent.extend(notify(&c).await);
            }
            sent
        }));
    }
    let mut sent = Vec::new();
    for t in tasks {
        sent.extend(t.await.unwrap());
    }
    sent.sort();
    assert_eq!(sent, pairs(&[("s1", "firing"), ("s2", "firing"), ("s3", "firing")]));
    let ended: i64 =
        c.query_one("SELECT count(*) FROM incident_events WHERE event = 'silence_ended'", &[]).await.unwrap().get(0);
    assert_eq!(ended, 3);
}

#[tokio::test]
async fn resolving_an_incident_whose_condition_still_holds_is_refused_and_points_to_a_silence() {
    let db = fresh_db().await;
    let c = db.client().await;
    error_spike_only(&c).await;
    c.batch_execute(
        "INSERT INTO logs (ts, service, level) SELECT now() - interval '10 seconds', 'checkout', 'ERROR' FROM generate_series(1, 600);
         SELECT * FROM detect_incidents();",
    )
    .await
    .unwrap();
    let id = incident_id(&c, "checkout").await;
    let err = c.query("SELECT * FROM resolve_incident($1, 'alice')", &[&id]).await.unwrap_err();
    let e = err.as_db_error().unwrap();
    assert_eq!(e.code().code(), "55000");
    assert!(e.message().contains("condition still holds"), "{}", e.message());
    assert!(e.hint().unwrap().contains("create_silence"), "{:?}", e.hint());

    let app = spawn_collector(&db.url, &[]).await;
    let resolve = || http().post(app.url(&format!("/incidents/{id}/resolve"))).send();
    let r = resolve().await.unwrap();
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains("POST /silences") && msg.contains(r#"service="checkout""#), "{msg}");
    // a silence quiets notifications, not detection: still refused
    create_silence(&c, r#"["service=checkout"]"#, "known issue").await;
    assert_eq!(resolve().await.unwrap().status(), 409);
    assert_eq!(detect(&c, Utc::now()).await, [], "and nothing new opened meanwhile");

    // once the condition is clear, a person may close it early, and it stays closed
    c.batch_execute("UPDATE detection_rules SET threshold = 10000 WHERE name = 'ERROR_SPIKE'").await.unwrap();
    let r = resolve().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "resolved");
    assert!(detect(&c, Utc::now()).await.is_empty());
    assert_eq!(c.query_one("SELECT count(*) FROM incidents", &[]).await.unwrap().get::<_, i64>(0), 1);
}

async fn send(
    app: &Proc,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let mut rq = http().request(method, app.url(path));
    if let Some(b) = body {
        rq = rq.json(&b);
    }
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    let r = rq.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

#[tokio::test]
async fn the_silences_api_refuses_bad_silences_naming_the_field_and_expires_by_delete() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &["--admin-token", "s3cret"]).await;
    let ok = json!({"matchers": [{"name": "service", "value": "checkout", "isRegex": false}],
                    "endsAt": "2099-01-01T00:00:00Z", "createdBy": "alice", "comment": "deploy"});
    let (s, _) = send(&app, reqwest::Method::POST, "/silences", Some(ok.clone()), None).await;
    assert_eq!(s, 401, "creating a silence needs the admin token");
    let token = Some("s3cret");
    let with = |patch: Value| {
        let mut b = ok.clone();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (body, field) in [
        (with(json!({"matchers": [{"name": "host", "value": "a", "isRegex": false}]})), "matchers[0].name"),
        (with(json!({"matchers": [{"name": "service", "value": "a(b", "isRegex": true}]})), "matchers[0].value"),
        (with(json!({"matchers": [{"name": "service", "value": ".*", "isRegex": true}]})), "matchers"),
        (with(json!({"matchers": []})), "matchers"),
        (with(json!({"startsAt": "2099-02-01T00:00:00Z"})), "endsAt"),
        (with(json!({"endsAt": "2001-01-01T00:00:00Z"})), "endsAt"),
        (with(json!({"endsAt": "tomorrow"})), "endsAt"),
        (with(json!({"createdBy": ""})), "createdBy"),
        (
            with(json!({"recurrence": {"startTime": "02:00", "endTime": "04:00", "timeZone": "Mars/Olympus"}})),
            "recurrence.timeZone",
        ),
        (
            with(
                json!({"recurrence": {"weekdays": ["sunday", "funday"], "startTime": "02:00", "endTime": "04:00", "timeZone": "UTC"}}),
            ),
            "recurrence.weekdays[1]",
        ),
        (
            with(json!({"recurrence": {"startTime": "2am", "endTime": "04:00", "timeZone": "UTC"}})),
            "recurrence.startTime",
        ),
        (
            with(json!({"recurrence": {"startTime": "02:00", "endTime": "02:00", "timeZone": "UTC"}})),
            "recurrence.endTime",
        ),
        (with(json!({"comment": 42})), "comment"),
    ] {
        let (s, b) = send(&app, reqwest::Method::POST, "/silences", Some(body.clone()), token).await;
        assert_eq!(s, 400, "{body}: {b}");
        assert_eq!(b["details"][0]["field"], field, "{body}: {b}");
    }
    // Alertmanager's paths answer errors as Alertmanager does: a JSON string
    let bad = with(json!({"matchers": [{"name": "host", "value": "a", "isRegex": false}]}));
    let (s, b) = send(&app, reqwest::Method::POST, "/api/v2/silences", Some(bad), token).await;
    assert_eq!(s, 400);
    assert!(b.as_str().unwrap().contains("matchers[0].name"), "{b}");

    let (s, created) = send(&app, reqwest::Method::POST, "/silences", Some(ok.clone()), token).await;
    assert_eq!(s, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["silenceID"], id.as_str());
    assert_eq!(created["status"]["state"], "active");
    assert_eq!(created["window"]["endsAt"], "2099-01-01T00:00:00.000000+00:00");
    let (_, weekly) = send(
        &app,
        reqwest::Method::POST,
        "/silences",
        Some(json!({"matchers": ["service=~\"db-.*\""], "createdBy": "dba", "comment": "weekly vacuum",
                    "recurrence": {"weekdays": ["saturday:sunday"], "startTime": "22:00", "endTime": "02:00",
                                   "timeZone": "Europe/Berlin"}})),
        token,
    )
    .await;
    assert_eq!(
        weekly["recurrence"],
        json!({"weekdays": ["saturday", "sunday"], "startTime": "22:00",
                                            "endTime": "02:00", "timeZone": "Europe/Berlin"})
    );
    assert_eq!(weekly["endsAt"], "9999-12-31T23:59:59.999999+00:00", "no end date");
    assert!(weekly["window"]["startsAt"].is_string(), "its current or next window: {weekly}");

    // Alertmanager's update: POST with the id of an existing silence replaces it
    let (s, replaced) = send(
        &app,
        reqwest::Method::POST,
        "/api/v2/silences",
        Some(with(json!({"id": id, "comment": "deploy, longer"}))),
        token,
    )
    .await;
    assert_eq!(s, 200, "{replaced}");
    let (_, old) = send(&app, reqwest::Method::GET, &format!("/silences/{id}"), None, None).await;
    assert_eq!((old["status"]["state"].as_str(), &old["replacedBy"]), (Some("expired"), &replaced["id"]));
    let id = replaced["id"].as_str().unwrap().to_string();
    let unknown = with(json!({"id": "00000000-0000-0000-0000-000000000000"}));
    assert_eq!(send(&app, reqwest::Method::POST, "/silences", Some(unknown), token).await.0, 404);

    let (_, active) = send(&app, reqwest::Method::GET, "/silences?state=active", None, None).await;
    assert_eq!(active.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect::<Vec<_>>(), [id.as_str()]);
    let (_, all) = send(&app, reqwest::Method::GET, "/api/v2/silences", None, None).await;
    assert_eq!(all.as_array().unwrap().len(), 3, "the replaced one is kept");
    let (_, filtered) =
        send(&app, reqwest::Method::GET, "/api/v2/silences?filter=service%3D%22checkout%22", None, None).await;
    let states: Vec<&str> =
        filtered.as_array().unwrap().iter().map(|s| s["status"]["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["active", "expired"], "the replaced one too, as Alertmanager answers; not the db one");
    let (s, one) = send(&app, reqwest::Method::GET, &format!("/api/v2/silence/{id}"), None, None).await;
    assert_eq!((s, one["comment"].as_str()), (200, Some("deploy, longer")));
    let (s, b) = send(&app, reqwest::Method::GET, "/silences?state=asleep", None, None).await;
    assert_eq!((s, b["details"][0]["field"].as_str()), (400, Some("state")));

    let (s, _) = send(&app, reqwest::Method::DELETE, &format!("/silences/{id}"), None, None).await;
    assert_eq!(s, 401);
    let (s, gone) =
        send(&app, reqwest::Method::DELETE, &format!("/silences/{id}"), Some(json!({"by": "bob"})), token).await;
    assert_eq!(s, 200);
    assert_eq!((gone["status"]["state"].as_str(), gone["expiredBy"].as_str()), (Some("expired"), Some("bob")));
    let (s, kept) = send(&app, reqwest::Method::GET, &format!("/silences/{id}"), None, None).await;
    assert_eq!((s, kept["status"]["state"].as_str()), (200, Some("expired")), "the row is kept");
    let (s, _) =
        send(&app, reqwest::Method::DELETE, "/silences/00000000-0000-0000-0000-000000000000", None, token).await;
    assert_eq!(s, 404);
    let (s, _) = send(&app, reqwest::Method::GET, "/silences/not-a-silence", None, None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_preview_shows_what_a_silence_would_hold_now_and_would_have_held_this_week() {
    let db = fresh_db().await;
    let c = db.client().await;
    error_spike_only(&c).await;
    let t0 = t0();
    for s in ["db-main", "db-replica", "checkout"] {
        burst(&c, s, t0).await;
    }
    detect(&c, at(t0, 30)).await;
    c.batch_execute(
        "UPDATE detection_rules SET enabled = false;
         SELECT * FROM resolve_incident((SELECT id FROM incidents WHERE service = 'db-replica'), 'x');",
    )
    .await
    .unwrap();
    let app = spawn_collector(&db.url, &[]).await;
    let body = json!({"matchers": ["service=~\"db-.*\""], "endsAt": "2099-01-01T00:00:00Z", "createdBy": "dba"});
    let (s, p) = send(&app, reqwest::Method::POST, "/silences/preview", Some(body), None).await;
    assert_eq!(s, 200, "{p}");
    let services = |k: &str| {
        let mut v: Vec<String> =
            p[k].as_array().unwrap().iter().map(|i| i["service"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(services("now"), ["db-main"]);
    assert_eq!(services("last_7_days"), ["db-main", "db-replica"]);
    let (n,): (i64,) = (c.query_one("SELECT count(*) FROM silences", &[]).await.unwrap().get(0),);
    assert_eq!(n, 0, "a preview writes nothing");
    let (s, b) =
        send(&app, reqwest::Method::POST, "/silences/preview", Some(json!({"matchers": ["nope"]})), None).await;
    assert_eq!((s, b["details"][0]["field"].as_str()), (400, Some("matchers[0]")));
}

/// amtool with its config in a directory of its own (it reads $HOME/.config/prometheus/amtool.yml).
struct Amtool {
    dir: TempDir,
    url: String,
}

impl Amtool {
    fn new(url: String, token: &str) -> Amtool {
        let dir = TempDir::new("amtool");
        std::fs::write(dir.path.join("http.yml"), format!("authorization:\n  type: Bearer\n  credentials: {token}\n"))
            .unwrap();
        Amtool { dir, url }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("amtool")
            .arg(format!("--alertmanager.url={}", self.url))
            .arg(format!("--http.config.file={}", self.dir.path.join("http.yml").display()))
            .args(args)
            .env("HOME", &self.dir.path)
            .output()
            .expect("amtool must be installed (Debian's prometheus-alertmanager; scripts/test.sh installs it)");
        assert!(
            out.status.success(),
            "amtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

#[tokio::test]
async fn amtool_adds_queries_and_expires_logmon_silences() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &["--admin-token", "s3cret"]).await;
    let amtool = Amtool::new(app.base.clone(), "s3cret");
    let id = amtool.run(&[
        "silence",
        "add",
        "service=checkout",
        "severity=~high|critical",
        "-a",
        "alice",
        "-c",
        "deploy",
        "-d",
        "2h",
    ]);
    let id = id.trim().to_string();
    let other = amtool.run(&["silence", "add", "ERROR_SPIKE", "-a", "bob", "-c", "noisy rule"]);
    let other = other.trim().to_string();

    let listed: Value = serde_json::from_str(&amtool.run(&["silence", "query", "-o", "json"])).unwrap();
    let mut ids: Vec<&str> = listed.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut want = vec![id.as_str(), other.as_str()];
    want.sort();
    assert_eq!(ids, want);
    let mine = listed.as_array().unwrap().iter().find(|s| s["id"] == id.as_str()).unwrap();
    assert_eq!(mine["createdBy"], "alice");
    assert_eq!(
        mine["matchers"][1],
        json!({"name": "severity", "value": "high|critical", "isRegex": true, "isEqual": true})
    );
    // a query by matcher, as Alertmanager filters
    assert_eq!(amtool.run(&["silence", "query", "-q", "service=checkout"]).trim(), id);
    assert_eq!(amtool.run(&["silence", "query", "-q", "alertname=ERROR_SPIKE"]).trim(), other);

    // the silences amtool made are logmon's: they hold what they match
    let c = db.client().await;
    let held: Vec<String> =
        c.query_one("SELECT silenced_by('checkout', 'LATENCY_SPIKE', 'HIGH')::text[]", &[]).await.unwrap().get(0);
    assert_eq!(held, std::slice::from_ref(&id));
    let held: Vec<String> =
        c.query_one("SELECT silenced_by('checkout', 'LATENCY_SPIKE', 'MED')::text[]", &[]).await.unwrap().get(0);
    assert!(held.is_empty(), "severity=~high|critical does not match MED");

    amtool.run(&["silence", "expire", &id]);
    assert_eq!(amtool.run(&["silence", "query", "-q"]).trim(), other);
    assert_eq!(amtool.run(&["silence", "query", "-q", "--expired"]).trim(), id);
    let state: String = c
        .query_one("SELECT silence_state(s) || ' ' || expired_by FROM silences s WHERE id = $1::text::uuid", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "expired api");
}

/// The incident's timeline, once it has `event`.
async fn wait_for_event(c: &Client, service: &str, event: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(r) = c
            .query_opt(
                "SELECT i.id FROM incidents i JOIN incident_events e ON e.incident_id = i.id
                 WHERE i.service = $1 AND e.event = $2 LIMIT 1",
                &[&service, &event],
            )
            .await
            .unwrap()
        {
            return r.get(0);
        }
        assert!(Instant::now() < deadline, "no {event} event for {service}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn errors_now(c: &Client, service: &str) {
    c.execute(
        "INSERT INTO logs (ts, service, level) SELECT now() - interval '10 seconds', $1, 'ERROR' FROM generate_series(1, 600)",
        &[&service],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_detector_holds_a_silenced_incident_and_pages_when_the_silence_is_deleted() {
    let db = fresh_db().await;
    let c = db.client().await;
    error_spike_only(&c).await;
    let app = spawn_collector(&db.url, &[]).await;
    let rx = Receiver::start(|_, _| (200, None)).await;
    let (s, silence) = send(
        &app,
        reqwest::Method::POST,
        "/silences",
        Some(json!({"matchers": ["service=checkout"], "endsAt": "2099-01-01T00:00:00Z", "createdBy": "alice"})),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let sid = silence["id"].as_str().unwrap();
    let _detector =
        spawn(&["detector", "--database-url", &db.url, "--interval", "0.2", "--webhook-url", &rx.url("/hook")]);
    errors_now(&c, "checkout").await;
    errors_now(&c, "search").await;
    wait_for_event(&c, "checkout", "silenced").await;
    rx.wait_until("search is paged", |r| !r.received("/hook").is_empty()).await;
    let told: Vec<String> = rx
        .received("/hook")
        .iter()
        .map(|x| x.body["alerts"][0]["labels"]["service"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(told, ["search"]);

    let (s, _) = send(&app, reqwest::Method::DELETE, &format!("/silences/{sid}"), None, None).await;
    assert_eq!(s, 200);
    rx.wait_until("checkout is paged once the silence is gone", |r| r.received("/hook").len() == 2).await;
    let last = rx.received("/hook").pop().unwrap();
    assert_eq!(last.body["alerts"][0]["labels"]["service"], "checkout");
    assert_eq!(last.body["status"], "firing");
    assert_eq!(last.body["logmon"]["after_silence"], sid);
}

#[tokio::test]
async fn logmon_silences_keep_alerts_out_of_alertmanager_whose_own_silences_still_work() {
    let db = fresh_db().await;
    let c = db.client().await;
    error_spike_only(&c).await;
    let am = Alertmanager::start().await;
    create_silence(&c, r#"["service=quiet"]"#, "logmon silence").await;
    // Alertmanager's own silence, made with amtool against Alertmanager itself
    let amtool = Amtool::new(am.base.clone(), "unused");
    amtool.run(&["silence", "add", "service=loud", "-c", "Alertmanager silence"]);
    let _detector =
        spawn(&["detector", "--database-url", &db.url, "--interval", "0.2", "--alertmanager-url", &am.base]);
    errors_now(&c, "quiet").await;
    errors_now(&c, "loud").await;
    let quiet = wait_for_event(&c, "quiet", "silenced").await;
    let loud = wait_for_event(&c, "loud", "notified").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let alert = loop {
        if let Some(a) = am.alerts_for(loud).await.pop() {
            break a;
        }
        assert!(Instant::now() < deadline, "the loud alert never reached Alertmanager");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(alert["status"]["state"], "suppressed", "Alertmanager applies its own silence: {alert}");
    assert_eq!(alert["status"]["silencedBy"].as_array().unwrap().len(), 1);
    assert!(am.alerts_for(quiet).await.is_empty(), "logmon never posted the silenced incident");
    // ... nor does its every-minute re-post of live alerts
    let reposted: Value = c.query_one("SELECT alertmanager_alerts('http://logmon.test')", &[]).await.unwrap().get(0);
    let services: Vec<&str> =
        reposted.as_array().unwrap().iter().map(|a| a["labels"]["service"].as_str().unwrap()).collect();
    assert_eq!(services, ["loud"]);
}

#[tokio::test]
async fn operators_manage_silences_and_the_detector_role_applies_them() {
    let db = fresh_db().await;
    let admin = db.client().await;
    error_spike_only(&admin).await;
    let role = |groups: &str| {
        let name = format!("t_role_{:08x}", rand::random::<u32>());
        (name.clone(), format!("CREATE ROLE {name} LOGIN IN ROLE {groups}"))
    };
    let (operator, sql) = role("logmon_ingest, logmon_reader, logmon_operator");
    admin.batch_execute(&sql).await.unwrap();
    let (detector, sql) = role("logmon_detector");
    admin.batch_execute(&sql).await.unwrap();
    let as_role = |r: &str| db.url.replacen("://postgres@", &format!("://{r}@"), 1);

    let app = spawn_collector(&as_role(&operator), &[]).await;
    let (s, created) = send(
        &app,
        reqwest::Method::POST,
        "/silences",
        Some(json!({"matchers": ["service=checkout"], "endsAt": "2099-01-01T00:00:00Z", "createdBy": "ops"})),
        None,
    )
    .await;
    assert_eq!(s, 200, "{created}");
    let t0 = t0();
    burst(&admin, "checkout", t0).await;
    detect(&admin, at(t0, 30)).await;
    let det = connect(&as_role(&detector)).await;
    assert!(notify(&det).await.is_empty(), "held, by the detector's own role");
    let (s, _) =
        send(&app, reqwest::Method::DELETE, &format!("/silences/{}", created["id"].as_str().unwrap()), None, None)
            .await;
    assert_eq!(s, 200);
    assert_eq!(notify(&det).await, pairs(&[("checkout", "firing")]));
    let reader = connect(&as_role(&operator)).await;
    let err = reader.execute("DELETE FROM silences", &[]).await.unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501", "the row is kept: nobody but the owner deletes");
}
