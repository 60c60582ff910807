//! GET /: the dashboard, rendered by a real headless Chromium (Debian's `chromium`, installed by
//! scripts/test.sh): charts drawn from the last hour, the open incidents and active silences listed, and nothing a
//! log sender wrote executed as HTML. A screenshot is left in target/dashboard.png.
use std::process::Command;

use crate::helpers::*;

/// Headless Chromium with a throwaway profile; `what` is --dump-dom or --screenshot=PATH.
fn chromium(url: &str, what: &str) -> String {
    let profile = TempDir::new("chromium");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-quic",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,900",
            // lets the page's fetches and timers run before the DOM is taken
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path.display()))
        .arg(what)
        .arg(url)
        .output()
        .expect("chromium must be installed (scripts/test.sh installs it)");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_dashboard_draws_the_last_hour_per_service_and_lists_open_incidents() {
    let db = fresh_db().await;
    let c = db.client().await;
    // An hour of traffic for two services; checkout turns bad in the last ten minutes.
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, latency_ms)
         SELECT now() - s * interval '1 second', svc,
                CASE WHEN svc = 'checkout' AND s < 600 AND s % 3 = 0 THEN 'ERROR' ELSE 'INFO' END,
                CASE WHEN svc = 'checkout' AND s < 600 THEN 900 ELSE 40 + s % 20 END
         FROM generate_series(1, 3500, 7) s, unnest(ARRAY['checkout', 'search']) svc;
         INSERT INTO incidents (service, incident_type, severity, summary, created_at, last_seen_at,
                                window_start, window_end, observed, threshold, peak)
         VALUES ('checkout', 'ERROR_SPIKE', 'HIGH', 'errors <img src=x onerror=\"document.title=1\"> spiking',
                 now() - interval '8 minutes', now(), now() - interval '13 minutes', now(), 620, 500, 620);
         SELECT create_silence('[\"service=checkout\"]', now() + interval '1 hour', 'db <b>migration</b>', 'alice');",
    )
    .await
    .unwrap();
    let id: i64 = c.query_one("SELECT id FROM incidents", &[]).await.unwrap().get(0);
    let app = spawn_collector(&db.url, &[]).await;

    // as a browser asks for it (API clients get Elasticsearch's info document at GET /)
    let page =
        http().get(app.url("/")).header("accept", "text/html,application/xhtml+xml,*/*;q=0.8").send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    let outside = html.replace("http://www.w3.org/2000/svg", ""); // the SVG namespace is a name, not a fetch
    assert!(!outside.contains("http://") && !outside.contains("https://"), "self-contained: nothing from outside");
    assert!(!html.contains("<script src") && !html.contains("<link"), "self-contained: one file");

    let dom = chromium(&app.url("/"), "--dump-dom");
    assert!(dom.contains(r#"data-loaded="true""#), "the page loaded its data: {dom}");
    for chart in ["error-rate-chart", "latency-chart"] {
        let svg = section(&dom, &format!(r#"<svg id="{chart}""#), "</svg>");
        for service in ["checkout", "search"] {
            let path = tag_with(svg, &format!(r#"data-service="{service}""#));
            let d = section(path, " d=\"", "\"");
            assert!(d.matches('L').count() >= 30, "{chart}: a line for {service} across the hour, got d={d:?}");
        }
        assert!(svg.contains("incident-mark"), "{chart} marks when the incident began");
    }
    let services = section(&dom, r#"<table id="services">"#, "</table>");
    let checkout = section(services, r#"<tr data-service="checkout">"#, "</tr>");
    let search = section(services, r#"<tr data-service="search">"#, "</tr>");
    let p95 = |row: &str| -> f64 { cells(row)[5].parse().unwrap_or_else(|_| panic!("p95 cell of {row}")) };
    assert!(p95(checkout) > 800.0 && p95(search) < 100.0, "p95 of the last 5 minutes: {checkout} / {search}");
    let row = section(&dom, &format!(r#"data-incident-id="{id}">"#), "</tr>");
    assert!(row.contains("checkout") && row.contains("ERROR_SPIKE") && row.contains("HIGH"), "{row}");
    assert!(row.contains("errors &lt;img src=x"), "a summary is shown as text, never run as HTML: {row}");
    assert!(row.contains(r#"class="silenced""#), "the incident is marked silenced: {row}");
    let silences = section(&dom, r#"<table id="silences">"#, "</table>");
    assert!(
        silences.contains(r#"service="checkout""#)
            && silences.contains("alice")
            && silences.contains("db &lt;b&gt;migration"),
        "the active silence is listed, its comment as text: {silences}"
    );
    assert!(!dom.contains("<img"), "no element was injected");

    let shot = repo().join("target/dashboard.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&app.url("/"), &format!("--screenshot={}", shot.display()));
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real picture of the page");
}

/// The part of `s` from `start` up to the next `end`.
fn section<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s.find(start).unwrap_or_else(|| panic!("{start:?} not found in {s}")) + start.len();
    let len = s[from..].find(end).unwrap_or_else(|| panic!("{end:?} not found after {start:?}"));
    &s[from..from + len]
}

/// The whole start tag that carries `attr`.
fn tag_with<'a>(s: &'a str, attr: &str) -> &'a str {
    let at = s.find(attr).unwrap_or_else(|| panic!("{attr:?} not found in {s}"));
    let from = s[..at].rfind('<').expect("inside a tag");
    let to = at + s[at..].find('>').expect("tag ends");
    &s[from..=to]
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

/// The text of each <td> of a table row.
fn cells(row: &str) -> Vec<&str> {
    row.split("<td").skip(1).map(|c| c.split_once('>').unwrap().1.split('<').next().unwrap()).collect()
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
    let dom = chromium(&app.url("/"), "--dump-dom");
    assert!(dom.contains(r#"data-loaded="true""#), "the page loaded its data: {dom}");
    let table = section(&dom, r#"<table id="rules">"#, "</table>");

    // what the replay of the current rules over the last 7 days opens, per rule, asked in SQL
    let replayed = c
        .query(
            "SELECT r.id, r.name, (SELECT count(*) FROM backtest_rules(now() - interval '7 days') b WHERE b.rule_id = r.id)
             FROM detection_rules r ORDER BY r.id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(replayed.len(), 4, "the default rules");
    for r in &replayed {
        let (id, name, n): (i64, String, i64) = (r.get(0), r.get(1), r.get(2));
        let row = section(table, &format!(r#"data-rule-id="{id}">"#), "</tr>");
        let cells = cells(row);
        assert_eq!(cells[0], name);
        assert_eq!(cells[1], "every service");
        let opened = if name == "ERROR_SPIKE" { "1" } else { "0" };
        assert_eq!(cells[5], opened, "{name}: incidents opened in the last 7 days: {row}");
        assert_eq!(cells[6], n.to_string(), "{name}: what the replay opens: {row}");
        if name == "ERROR_SPIKE" || name == "NO_DATA" {
            assert!(n >= 1, "{name}: the replay sees the burst and the silence at the end");
        }
    }
}
