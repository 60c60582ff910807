//! The overview (GET /), in a real browser: error rate and p95 per service over a window the
//! viewer picks, axes scaled to the data with round ticks in one unit, every service with when it
//! last sent logs, the last 24 hours of incidents (resolved ones kept and marked), patterns and
//! silences, each linking to its page; times in the viewer's zone with UTC on hover; nothing a
//! log sender wrote runs as HTML; and GET /timeseries, the charts' data.
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::browser::{Browser, View};
use crate::helpers::*;

/// checkout and search for an hour (checkout failing for the last ten minutes: 25% errors and
/// 900 ms, with a new message), the usual messages seen 3 hours ago too, batch silent for 40 minutes, an open incident (a summary written to attack the page)
/// under a silence, one resolved 2 hours ago and one resolved 30 hours ago. Returns the ids.
async fn an_hour_of_three_services(db: &TestDb) -> (i64, i64, i64) {
    let c = db.client().await;
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, latency_ms, message)
         SELECT now() - s * interval '1 second', svc,
                CASE WHEN svc = 'checkout' AND s < 600 AND s % 4 = 0 THEN 'ERROR' ELSE 'INFO' END,
                CASE WHEN svc = 'checkout' AND s < 600 THEN 900 ELSE 40 + s % 20 END,
                CASE WHEN svc = 'checkout' AND s < 600 AND s % 4 = 0 THEN 'card declined for order ' || s
                     ELSE svc || ' step ' || s || ' ok' END
         FROM generate_series(1, 3500, 7) s, unnest(ARRAY['checkout', 'search']) svc;
         INSERT INTO logs (ts, service, level, message)
         SELECT now() - interval '3 hours' - s * interval '1 second', svc, 'INFO', svc || ' step ' || s || ' ok'
         FROM generate_series(1, 10) s, unnest(ARRAY['checkout', 'search']) svc;
         INSERT INTO logs (ts, service, level, message)
         SELECT now() - interval '40 minutes' - s * interval '4 seconds', 'batch', 'INFO', 'row ' || s || ' exported'
         FROM generate_series(1, 300) s;
         SELECT compact_rollup(); SELECT compact_patterns();
         SELECT create_silence('[\"service=checkout\"]', now() + interval '1 hour', 'db <b>migration</b>', 'alice');",
    )
    .await
    .unwrap();
    let insert = "INSERT INTO incidents (service, incident_type, severity, summary, status, created_at, last_seen_at, resolved_at,
                                         window_start, window_end, observed, threshold, peak)
                  VALUES ($1, $2, $3, $4, $5, now() - $6::text::interval, now() - $7::text::interval,
                          CASE WHEN $5 = 'resolved' THEN now() - $7::text::interval END,
                          now() - $6::text::interval - interval '5 minutes', now() - $7::text::interval, 620, 500, 620)
                  RETURNING id";
    let mut ids = vec![];
    for (svc, kind, sev, summary, status, opened, last) in [
        (
            "checkout",
            "ERROR_SPIKE",
            "HIGH",
            "errors <img src=x onerror=\"document.title=1\"> spiking",
            "open",
            "8 minutes",
            "0 minutes",
        ),
        ("search", "LATENCY_SPIKE", "MED", "p95 over 800 ms", "resolved", "150 minutes", "120 minutes"),
        ("search", "ERROR_SPIKE", "HIGH", "an old one", "resolved", "31 hours", "30 hours"),
    ] {
        let id: i64 =
            c.query_one(insert, &[&svc, &kind, &sev, &summary, &status, &opened, &last]).await.unwrap().get(0);
        ids.push(id);
    }
    (ids[0], ids[1], ids[2])
}

/// The y axis's tick labels: numbers in one unit, evenly spaced by a round step.
fn assert_round_ticks(labels: &[String]) {
    let unit = labels.last().unwrap().trim_start_matches(|c: char| c.is_ascii_digit() || c == '.').to_string();
    let values: Vec<f64> = labels
        .iter()
        .map(|l| {
            let n = l.strip_suffix(unit.as_str()).unwrap_or(l);
            assert!(l == "0" || l == "0%" || l.ends_with(unit.as_str()), "one unit on every tick: {labels:?}");
            n.trim().parse::<f64>().unwrap_or_else(|_| panic!("a number: {l:?} in {labels:?}"))
        })
        .collect();
    let step = values[1] - values[0];
    assert!(values.windows(2).all(|w| ((w[1] - w[0]) - step).abs() < 1e-9), "evenly spaced: {labels:?}");
    let mantissa = step / 10f64.powf(step.log10().floor());
    assert!([1.0, 2.0, 2.5, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-9), "a round step: {labels:?}");
}

/// `t` as the page writes it for a viewer in Asia/Kolkata (UTC+05:30, no daylight saving).
fn kolkata(t: DateTime<Utc>) -> String {
    let local = t + Duration::minutes(330);
    let today = (Utc::now() + Duration::minutes(330)).date_naive();
    if local.date_naive() == today {
        local.format("%H:%M:%S").to_string()
    } else {
        local.format("%b %-d %H:%M:%S").to_string()
    }
}

#[tokio::test]
async fn the_overview_draws_each_service_keeps_a_day_of_incidents_and_links_to_their_pages() {
    let db = fresh_db().await;
    let (open, resolved, old) = an_hour_of_three_services(&db).await;
    let app = spawn_collector(&db.url, &[]).await;

    let page = http().get(app.url("/")).header("accept", "text/html").send().await.unwrap();
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(!html.contains("http://") && !html.contains("https://"), "nothing from outside");
    assert!(!html.contains("<script>") && !html.contains("<style>"), "no inline script or style");
    let handlers = html.split('<').filter(|tag| {
        let inside = tag.split('>').next().unwrap_or_default();
        inside.split_whitespace().any(|a| a.starts_with("on") && a.contains('='))
    });
    assert_eq!(handlers.count(), 0, "no inline event handler");

    let mut b = Browser::open(&app.url("/"), View::default()).await;
    b.loaded().await;
    assert_eq!(
        b.attr("#windows a[aria-current=true]", "data-window").await.as_deref(),
        Some("1h"),
        "an hour of data: 1 h"
    );
    for chart in ["error-rate-chart", "latency-chart"] {
        for service in ["checkout", "search"] {
            let d = b.attr(&format!("#{chart} path[data-service={service}]"), "d").await.unwrap();
            assert!(d.matches('L').count() >= 30, "{chart}: a line for {service} across the hour: {d}");
        }
        assert!(b.count(&format!("#{chart} a.span-link")).await >= 1, "{chart} marks the open incident");
    }
    // the error-rate axis follows the data (25% errors: not 110%), in round steps
    let points: Vec<Value> =
        http().get(app.url("/timeseries?window_minutes=60")).send().await.unwrap().json().await.unwrap();
    let max = points.iter().map(|p| p["error_rate"].as_f64().unwrap() * 100.0).fold(0.0, f64::max);
    let top: f64 = b.attr("#error-rate-chart", "data-top").await.unwrap().parse().unwrap();
    assert!(top >= max && top <= max * 1.5, "axis top {top}% for a {max}% peak");
    assert_round_ticks(&b.texts("#error-rate-chart text.ytick").await);
    assert_round_ticks(&b.texts("#latency-chart text.ytick").await);

    // every service of the day, with when it last sent: batch has been silent for 40 minutes
    let batch = b.texts("#services tr[data-service=batch] td").await;
    let minutes: i64 = batch[1]
        .strip_prefix("silent ")
        .and_then(|s| s.strip_suffix(" min ago"))
        .unwrap_or_default()
        .parse()
        .unwrap_or(-1);
    assert!((38..=40).contains(&minutes), "batch last sent 40 minutes ago, to the minute: {batch:?}");
    assert_eq!(b.count("#services tr[data-service=batch] td.stale").await, 1);
    assert_eq!(batch[2], "0", "no logs in the last 5 minutes");
    assert_eq!(b.texts("#services tr[data-service=checkout] td").await[1], "now");
    let p95 = |row: Vec<String>| -> f64 {
        let v = &row[6];
        match v.split_once(' ') {
            Some((n, "s")) => n.parse::<f64>().unwrap() * 1000.0,
            Some((n, "ms")) => n.parse().unwrap(),
            _ => panic!("p95 cell {v:?}"),
        }
    };
    assert!(p95(b.texts("#services tr[data-service=checkout] td").await) > 800.0);
    assert!(p95(b.texts("#services tr[data-service=search] td").await) < 100.0);

    // the day's incidents: unresolved first, resolved ones kept and marked, older ones gone
    let rows: Value =
        b.eval("[...document.querySelectorAll('#incidents tbody tr')].map(r => Number(r.dataset.incidentId))").await;
    assert_eq!(
        rows,
        serde_json::json!([open, resolved]),
        "the open one, then the one resolved 2 h ago; not the one of yesterday ({old})"
    );
    let row = b.text(&format!("#incidents tr[data-incident-id='{open}']")).await;
    assert!(row.contains("open") && row.contains("silenced") && row.contains("HIGH"), "{row}");
    assert!(row.contains("errors <img src=x onerror=\"document.title=1\"> spiking"), "a summary is text: {row}");
    assert!(
        b.attr(&format!("#incidents tr[data-incident-id='{resolved}']"), "class").await.unwrap().contains("resolved")
    );
    // opened: the viewer's clock, UTC on hover
    let created: DateTime<Utc> =
        db.client().await.query_one("SELECT created_at FROM incidents WHERE id = $1", &[&open]).await.unwrap().get(0);
    let cell = format!("#incidents tr[data-incident-id='{open}'] time");
    assert_eq!(b.text(&cell).await, kolkata(created));
    let utc = b.attr(&cell, "title").await.unwrap();
    assert_eq!(utc, format!("{} UTC", created.format("%Y-%m-%d %H:%M:%S%.3f")));
    assert!(b.text("#tz").await.contains("UTC+05:30"));

    // patterns: the new one marked, each a link to the explorer; services too
    let declined = b.attr("#patterns tr:has(.new) a.tpl", "href").await.unwrap();
    assert!(declined.starts_with("/explore?service=checkout&pattern="), "{declined}");
    assert!(b.text("#patterns tr:has(.new) a.tpl").await.starts_with("card declined for order"));
    assert_eq!(
        b.attr("#services tr[data-service=checkout] a", "href").await.as_deref(),
        Some("/explore?service=checkout&since=15m")
    );
    assert!(b.text("#silences").await.contains("db <b>migration</b>"), "a comment is text");
    assert_eq!(b.eval("document.querySelectorAll('img').length + (document.title === '1' ? 100 : 0)").await, 0);
    b.screenshot("overview").await;

    // the window: 15 minutes shows the last 15 minutes
    b.click("#windows a[data-window='15m']").await;
    b.loaded().await;
    b.wait_until("document.querySelector('#windows a[aria-current=true]')?.dataset.window === '15m'").await;
    assert!(b.url().await.ends_with("/?window=15m"));
    let span = b
        .eval("(() => { const t = [...document.querySelectorAll('#error-rate-chart text.xtick title')].map(x => Date.parse(x.textContent.replace(' UTC', 'Z').replace(' ', 'T'))); return (Math.max(...t) - Math.min(...t)) / 60000; })()")
        .await;
    assert!(span.as_f64().unwrap() <= 15.0, "ticks over at most 15 minutes: {span}");
    // 24 hours: the resolved incident is still drawn
    b.click("#windows a[data-window='24h']").await;
    b.loaded().await;
    b.wait(&format!("#error-rate-chart a.span-link[aria-label^='#{resolved} ']")).await;

    // an incident's link opens its page (not JSON)
    b.click(&format!("#incidents tr[data-incident-id='{open}'] a[aria-label='incident {open}']")).await;
    b.loaded().await;
    assert_eq!(b.text("#title").await, format!("#{open} ERROR_SPIKE on checkout"));
    b.assert_clean(&app.base).await;
    b.close().await;
}

#[tokio::test]
async fn timeseries_gives_per_service_points_per_step_and_refuses_bad_parameters() {
    let db = fresh_db().await;
    db.client()
        .await
        .batch_execute(
            "INSERT INTO logs (ts, service, level, latency_ms)
             SELECT date_trunc('minute', now()) - interval '2 minutes' + i * interval '1 second', 'ts-svc',
                    CASE WHEN i <= 3 THEN 'ERROR' ELSE 'INFO' END, 100
             FROM generate_series(1, 10) i",
        )
        .await
        .unwrap();
    let app = spawn_collector(&db.url, &[]).await;
    let points: serde_json::Value =
        http().get(app.url("/timeseries?window_minutes=10")).send().await.unwrap().json().await.unwrap();
    let p = &points.as_array().unwrap()[..];
    assert_eq!(p.len(), 1, "{points}");
    let minute: chrono::DateTime<chrono::Utc> =
        db.client().await.query_one("SELECT date_trunc('minute', min(ts)) FROM logs", &[]).await.unwrap().get(0);
    let ts = chrono::DateTime::parse_from_rfc3339(p[0]["ts"].as_str().unwrap()).unwrap();
    assert_eq!(ts, minute, "a point is labelled with the start of its step");
    assert_eq!(
        (p[0]["service"].as_str(), p[0]["total"].as_i64(), p[0]["errors"].as_i64()),
        (Some("ts-svc"), Some(10), Some(3))
    );
    assert_eq!(p[0]["error_rate"].as_f64(), Some(0.3));
    assert_eq!(p[0]["p95_ms"].as_f64(), Some(100.0));

    for (query, field) in [("step_minutes=0", "step_minutes"), ("window_minutes=abc", "window_minutes")] {
        let r = http().get(app.url(&format!("/timeseries?{query}"))).send().await.unwrap();
        assert_eq!(r.status(), 400);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["details"][0]["field"], field, "{body}");
    }
    // more than 2000 steps: the step is raised to fit, and the answer says which step it used
    let r = http().get(app.url("/timeseries?window_minutes=10080&step_minutes=1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["logmon-step-minutes"], "6");
    let p: Vec<serde_json::Value> = r.json().await.unwrap();
    let ts = chrono::DateTime::parse_from_rfc3339(p[0]["ts"].as_str().unwrap()).unwrap();
    assert_eq!(ts.timestamp() % 360, 0, "points at 6-minute steps: {}", p[0]);
}

#[tokio::test]
async fn the_rules_view_lists_each_rule_with_the_incidents_it_opened_and_what_a_replay_opens() {
    let db = fresh_db().await;
    let c = db.client().await;
    // Two hours of steady traffic ending an hour ago, with a minute of 1,200 errors in the middle;
    // and the incidents ERROR_SPIKE opened, one a day ago and one before the last 7 days.
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, latency_ms)
         SELECT now() - interval '1 hour' - s * interval '1 second', 'checkout', 'INFO', 40 + s % 20
         FROM generate_series(1, 7200) s;
         INSERT INTO logs (ts, service, level)
         SELECT now() - interval '2 hours' + s * interval '50 milliseconds', 'checkout', 'ERROR'
         FROM generate_series(1, 1200) s;
         INSERT INTO incidents (service, incident_type, severity, summary, created_at, last_seen_at, window_start,
                                window_end, observed, threshold, peak, rule_id, status, resolved_at)
         SELECT 'checkout', 'ERROR_SPIKE', 'HIGH', 'ERROR spike', now() - d, now() - d, now() - d, now() - d,
                600, 500, 600, r.id, 'resolved', now() - d + interval '5 minutes'
         FROM detection_rules r, unnest(ARRAY[interval '1 day', interval '9 days']) d WHERE r.name = 'ERROR_SPIKE';",
    )
    .await
    .unwrap();
    let app = spawn_collector(&db.url, &[]).await;
    let mut b = Browser::open(&app.url("/"), View::default()).await;
    b.loaded().await;

    // what the replay of the current rules over the last 7 days opens, per rule, asked in SQL
    let replayed = c
        .query(
            "SELECT r.id, r.name, (SELECT count(*) FROM backtest_rules(now() - interval '7 days') b WHERE b.rule_id = r.id)
             FROM detection_rules r ORDER BY r.id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(replayed.len(), 5, "the default rules");
    assert_eq!(b.count("#rules tbody tr[data-rule-id]").await, 5, "a row per rule");
    for r in &replayed {
        let (id, name, n): (i64, String, i64) = (r.get(0), r.get(1), r.get(2));
        let cells = b.texts(&format!("#rules tr[data-rule-id='{id}'] td")).await;
        assert_eq!(cells[0], name);
        assert_eq!(cells[1], "every service");
        let opened = if name == "ERROR_SPIKE" { "1" } else { "0" };
        assert_eq!(cells[5], opened, "{name}: incidents opened in the last 7 days: {cells:?}");
        assert_eq!(cells[6], n.to_string(), "{name}: what the replay opens: {cells:?}");
        if name == "ERROR_SPIKE" || name == "NO_DATA" {
            assert!(n >= 1, "{name}: the replay sees the burst and the silence at the end");
        }
    }
    b.screenshot("overview-rules").await;
    b.assert_clean(&app.base).await;
    b.close().await;
}
