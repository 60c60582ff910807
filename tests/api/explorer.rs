//! The log explorer, in a real browser: GET /logs's filters as a form whose state is the URL
//! (shared links repeat the search; Back returns to the previous one), pages through the cursor,
//! the patterns of the same window, an NDJSON download of the search, and a live mode that
//! follows new lines, rests while the tab is hidden and never keeps more than its bound.
use serde_json::{Value, json};

use crate::browser::{Browser, View};
use crate::helpers::*;
use crate::incident_page::template;

/// Half an hour of "api" (requests, cache timeouts, upstream 503s) and "web" lines.
async fn api_logs(db: &TestDb) {
    db.client()
        .await
        .batch_execute(
            "INSERT INTO logs (ts, service, level, message, status_code, latency_ms, attrs)
             SELECT now() - interval '30 minutes' + s * interval '6 seconds', 'api', 'INFO',
                    'GET /items/' || s || ' answered in ' || (10 + s % 40) || ' ms', 200, 10 + s % 40,
                    jsonb_build_object('region', CASE WHEN s % 2 = 0 THEN 'eu' ELSE 'us' END)
             FROM generate_series(1, 290) s;
             INSERT INTO logs (ts, service, level, message, status_code, latency_ms)
             SELECT now() - interval '30 minutes' + s * interval '14 seconds', 'api', 'ERROR',
                    'timeout reading from cache-' || (s % 4) || ' after ' || (900 + s) || ' ms', 504, 900 + s
             FROM generate_series(1, 120) s;
             INSERT INTO logs (ts, service, level, message, status_code, latency_ms)
             SELECT now() - interval '30 minutes' + s * interval '21 seconds', 'api', 'ERROR',
                    'upstream payments answered 503', 503, 40
             FROM generate_series(1, 80) s;
             INSERT INTO logs (ts, service, level, message)
             SELECT now() - interval '20 minutes' + s * interval '20 seconds', 'web', 'ERROR', 'page render failed'
             FROM generate_series(1, 50) s;",
        )
        .await
        .unwrap();
}

async fn scalar(db: &TestDb, sql: &str) -> i64 {
    db.client().await.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn the_explorer_keeps_its_search_in_the_url_pages_through_the_cursor_and_downloads_it() {
    let db = fresh_db().await;
    api_logs(&db).await;
    let app = spawn_collector(&db.url, &[]).await;
    let mut b = Browser::open(&app.url("/explore?service=api&level=ERROR&since=1h"), View::default()).await;
    b.loaded().await;
    // the URL fills the form
    assert_eq!(b.eval("document.getElementById('f-service').value").await, "api");
    assert_eq!(b.eval("document.getElementById('f-level').value").await, "ERROR");
    assert_eq!(b.eval("document.getElementById('f-since').value").await, "1h");
    // a first page, newest first, then the rest through the cursor
    let errors = scalar(&db, "SELECT count(*) FROM logs WHERE service = 'api' AND level = 'ERROR'").await as usize;
    assert_eq!(b.count("#lines li.line").await, 100);
    let ts: Value = b.eval("[...document.querySelectorAll('#lines time')].map(t => Date.parse(t.dateTime))").await;
    let ts: Vec<f64> = ts.as_array().unwrap().iter().map(|t| t.as_f64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let mut shown = b.count("#lines li.line").await;
    while b.count("#more:not([hidden])").await == 1 {
        b.click("#more").await;
        b.wait_until(&format!(
            "document.querySelectorAll('#lines li.line').length > {shown} || document.getElementById('more').hidden"
        ))
        .await;
        shown = b.count("#lines li.line").await;
    }
    assert_eq!(b.count("#lines li.line").await, errors, "every ERROR line of api, once");
    let distinct =
        b.eval("new Set([...document.querySelectorAll('#lines li.line')].map(li => li.dataset.cursor)).size").await;
    assert_eq!(distinct, errors);
    let summaries = b.texts("#lines li.line summary").await;
    assert!(summaries.iter().all(|s| s.contains("ERROR") && s.contains("api")), "only what was asked");

    // a new search is a new URL; Back returns to the previous search
    b.fill("#f-q", "timeout").await;
    b.click("#query button[type=submit]").await;
    b.wait_until("new URLSearchParams(location.search).get('q') === 'timeout'").await;
    b.wait_until("[...document.querySelectorAll('#lines li.line .msg')].every(m => m.textContent.includes('timeout'))")
        .await;
    b.back().await;
    b.wait_until("!new URLSearchParams(location.search).has('q')").await;
    b.wait_until("[...document.querySelectorAll('#lines li.line .msg')].some(m => m.textContent.includes('upstream'))")
        .await;
    assert_eq!(b.eval("document.getElementById('f-q').value").await, "");

    // the patterns of the same window, counted exactly, each a filter
    let timeout_tpl = template(&db, "timeout reading from cache-1 after 901 ms").await;
    let upstream_tpl = template(&db, "upstream payments answered 503").await;
    let rows = b.texts("#patterns tbody tr").await;
    for (tpl, n) in [
        (timeout_tpl.as_str(), "SELECT count(*) FROM logs WHERE service = 'api' AND message LIKE 'timeout%'"),
        (upstream_tpl.as_str(), "SELECT count(*) FROM logs WHERE service = 'api' AND message LIKE 'upstream%'"),
    ] {
        let n = scalar(&db, n).await;
        assert!(rows.iter().any(|r| r.contains(tpl) && r.contains(&n.to_string())), "{tpl} x{n} in {rows:?}");
    }
    b.click(&format!("#patterns a.tpl:text-is(\"{timeout_tpl}\")")).await;
    b.wait_until("new URLSearchParams(location.search).has('pattern')").await;
    b.wait_until(
        "[...document.querySelectorAll('#lines li.line .msg')].every(m => m.textContent.startsWith('timeout reading'))",
    )
    .await;
    let pattern = b.eval("new URLSearchParams(location.search).get('pattern')").await;
    b.screenshot("explorer").await;
    b.screenshot_view("explorer-top").await;

    // the search as NDJSON: every matching line (not just the pages shown)
    let file = b.download("#download").await;
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let expected = scalar(&db, "SELECT count(*) FROM logs WHERE service = 'api' AND message LIKE 'timeout%'").await;
    assert_eq!(lines.len() as i64, expected);
    assert!(lines.iter().all(|l| l["pattern_id"] == pattern && l["level"] == "ERROR"), "{}", lines[0]);
    b.wait_until("document.getElementById('download-state').textContent.startsWith('downloaded')").await;
    let _ = std::fs::remove_file(file);
    b.assert_clean(&app.base).await;
    b.close().await;
}

/// Sends lines to the collector (ts of now, a microsecond apart, so their order is known).
async fn send(app: &Proc, service: &str, messages: &[String]) {
    let now = chrono::Utc::now();
    let items: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let ts = now + chrono::Duration::microseconds(i as i64);
            json!({"service": service, "level": "INFO", "message": m, "ts": ts.to_rfc3339()})
        })
        .collect();
    let r = http().post(app.url("/logs")).json(&items).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn live_mode_follows_new_lines_rests_while_hidden_and_keeps_a_bounded_list() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    send(&app, "live", &(1..=5).map(|i| format!("earlier line {i}")).collect::<Vec<_>>()).await;
    let mut b = Browser::open(&app.url("/explore?service=live"), View::default()).await;
    b.loaded().await;
    assert_eq!(b.count("#lines li.line").await, 5);
    b.click("#live").await;
    assert_eq!(b.attr("#live", "aria-pressed").await.as_deref(), Some("true"));

    send(&app, "live", &["live line 1".into(), "live line 2".into(), "live line 3".into()]).await;
    b.wait_until("document.querySelector('#lines li.line .msg').textContent === 'live line 3'").await;
    let top: Vec<String> = b.texts("#lines li.line .msg").await.into_iter().take(4).collect();
    assert_eq!(top, ["live line 3", "live line 2", "live line 1", "earlier line 5"], "new lines on top, newest first");

    // a hidden tab asks nothing; shown again, it catches up
    b.eval(
        "Object.defineProperty(document, 'hidden', {value: true, configurable: true});
         Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
         document.dispatchEvent(new Event('visibilitychange'))",
    )
    .await;
    b.wait_until("document.getElementById('live-state').textContent.includes('paused')").await;
    let asked = |e: &crate::browser::Events| e.requests.iter().filter(|r| r.contains("/logs?")).count();
    let before = asked(&b.events().await);
    send(&app, "live", &["sent while hidden".into()]).await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await; // two and a half poll intervals
    assert_eq!(asked(&b.events().await), before, "no request while hidden");
    assert_ne!(b.text("#lines li.line .msg").await, "sent while hidden");
    b.eval(
        "delete document.hidden; delete document.visibilityState;
         document.dispatchEvent(new Event('visibilitychange'))",
    )
    .await;
    b.wait_until("document.querySelector('#lines li.line .msg').textContent === 'sent while hidden'").await;

    // bursts faster than the page shows: it skips (and says so) and never holds more than its bound
    let max: usize = b.attr("#lines", "data-max").await.unwrap().parse().unwrap();
    for burst in 0..6 {
        let msgs: Vec<String> = (0..300).map(|i| format!("burst {burst} line {i}")).collect();
        send(&app, "live", &msgs).await;
        b.wait_until(&format!(
            "document.querySelector('#lines li.line .msg').textContent === 'burst {burst} line 299'"
        ))
        .await;
        assert!(b.count("#lines li.line").await <= max);
    }
    assert_eq!(b.count("#lines li.line").await, max, "full, and bounded");
    assert!(b.count("#lines li.marker").await >= 1, "the skipped lines are said");
    assert!(b.text("#lines li.marker").await.contains("skipped"));
    b.screenshot_view("explorer-live").await;
    b.click("#live").await;
    assert_eq!(b.attr("#live", "aria-pressed").await.as_deref(), Some("false"));
    b.assert_clean(&app.base).await;
    b.close().await;
}
