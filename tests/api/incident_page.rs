//! The incident page, in a real browser: opened from the link a notification carries, it shows
//! what failed (status, rule, threshold, the service around it, the timeline), what the incident
//! is made of (its patterns against the hour before, new ones marked) and its lines; a pattern
//! filters the lines; Acknowledge asks for the admin token; a refused Resolve is explained and
//! offers a silence; all of it works by keyboard. The same URL still answers JSON to API clients.
use serde_json::Value;

use crate::browser::{Browser, View};
use crate::helpers::*;

/// An hour of normal traffic for checkout (orders, and a payments timeout every 2 minutes), then
/// four minutes of failure: "connection to db-N refused" (new) and payments timeouts (grown),
/// plus one line written to attack the page. Detection opens an ERROR_SPIKE incident (the timeouts
/// carry no latency, so that no latency incident opens beside it).
pub async fn checkout_incident(db: &TestDb) -> i64 {
    let c = db.client().await;
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, message, status_code, latency_ms)
         SELECT now() - interval '65 minutes' + s * interval '2 seconds', 'checkout', 'INFO',
                'order ' || s || ' placed in ' || (20 + s % 30) || ' ms', 200, 20 + s % 30
         FROM generate_series(0, 1949) s;
         INSERT INTO logs (ts, service, level, message, status_code)
         SELECT now() - interval '65 minutes' + s * interval '2 minutes', 'checkout', 'ERROR',
                'timeout calling payments after ' || (3000 + s) || ' ms', 504
         FROM generate_series(0, 27) s;
         INSERT INTO logs (ts, service, level, message, status_code, latency_ms)
         SELECT now() - interval '4 minutes' + s * interval '400 milliseconds', 'checkout', 'ERROR',
                'connection to db-' || (s % 8) || ' refused (attempt ' || (s % 5) || ')', 503, 5 + s % 10
         FROM generate_series(1, 400) s;
         INSERT INTO logs (ts, service, level, message, status_code)
         SELECT now() - interval '4 minutes' + s * interval '1 second', 'checkout', 'ERROR',
                'timeout calling payments after ' || (3000 + s) || ' ms', 504
         FROM generate_series(1, 200) s;",
    )
    .await
    .unwrap();
    c.execute(
        "INSERT INTO logs (ts, service, level, message, status_code, attrs) VALUES
         (now() - interval '30 seconds', 'checkout', 'ERROR', $1, 500, $2)",
        &[
            &HOSTILE,
            &serde_json::json!({"link": "javascript:window.pwned=4", "html": "<img src=x onerror=\"window.pwned=5\">"}),
        ],
    )
    .await
    .unwrap();
    let opened = c
        .query("SELECT incident_id, incident_type FROM detect_incidents() WHERE action = 'opened' ORDER BY 2", &[])
        .await
        .unwrap();
    // the refused connections are a message checkout never logged in its hour of history
    let types: Vec<String> = opened.iter().map(|r| r.get(1)).collect();
    assert_eq!(types, ["ERROR_SPIKE", "NEW_ERROR_PATTERN"]);
    opened[0].get(0)
}

/// A message written to run code if a page ever inserted log text as HTML.
pub const HOSTILE: &str =
    "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\"> see javascript:window.pwned=3";

/// The link the incident's first notification carries (a webhook's generatorURL), for a logmon
/// whose --public-url is `public_url`.
pub async fn notification_link(db: &TestDb, id: i64, public_url: &str) -> String {
    let c = db.client().await;
    let body: Value = c
        .query_one(
            "SELECT render_notification(o.id, 'webhook', $2) FROM notification_outbox o
             WHERE o.incident_id = $1 AND o.kind = 'firing'",
            &[&id, &public_url],
        )
        .await
        .unwrap()
        .get(0);
    body["alerts"][0]["generatorURL"].as_str().unwrap().to_string()
}

async fn incident_json(app: &Proc, id: i64) -> Value {
    http().get(app.url(&format!("/incidents/{id}"))).send().await.unwrap().json().await.unwrap()
}

/// The template SQL's log_template() gives a message (the collector gives the same).
pub async fn template(db: &TestDb, message: &str) -> String {
    db.client().await.query_one("SELECT log_template($1)", &[&message]).await.unwrap().get(0)
}

#[tokio::test]
async fn the_link_in_a_notification_opens_the_incident_page_with_its_patterns_and_lines() {
    let db = fresh_db().await;
    let id = checkout_incident(&db).await;
    let app = spawn_collector(&db.url, &[]).await;
    let link = notification_link(&db, id, &app.base).await;
    assert_eq!(link, app.url(&format!("/incidents/{id}")));

    // API clients still get JSON at that URL; browsers get the page; caches keep them apart
    let json = http().get(&link).send().await.unwrap();
    assert_eq!(json.headers()["content-type"], "application/json");
    assert_eq!(json.headers()["vary"], "accept");
    let api: Value = json.json().await.unwrap();
    assert_eq!(api["id"], id);
    let html = http().get(&link).header("accept", "text/html,application/xhtml+xml,*/*;q=0.8").send().await.unwrap();
    assert!(html.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(html.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));

    let mut b = Browser::open(&link, View::default()).await;
    b.loaded().await;
    assert_eq!(b.text("#title").await, format!("#{id} ERROR_SPIKE on checkout"));
    assert_eq!(b.text("#status").await, "open");
    let facts = b.text("#facts").await;
    assert!(facts.contains("against a threshold of 500"), "{facts}");
    assert!(facts.contains(api["details"]["rule"].as_str().unwrap()), "the rule: {facts}");

    // what it is made of: the page shows the API's patterns, the new one marked
    let refused = template(&db, "connection to db-1 refused (attempt 2)").await;
    let timeout = template(&db, "timeout calling payments after 3001 ms").await;
    for p in api["context"]["patterns"].as_array().unwrap() {
        let row = format!("#patterns tr[data-pattern=\"{}\"]", p["pattern_id"].as_str().unwrap());
        let text = b.text(&row).await;
        assert!(text.contains(p["template"].as_str().unwrap()), "{text}");
        assert!(text.contains(&format_count(p["count"].as_i64().unwrap())), "{text} / {p}");
        assert_eq!(text.contains("new"), p["new"] == true, "{text}");
    }
    let new_row = b.text("#patterns tbody tr:has(.new) a.tpl").await;
    assert_eq!(new_row, refused, "the new pattern is the connection failure");
    let old = b.text(&format!("#patterns tbody tr:has(a.tpl:text-is(\"{timeout}\"))")).await;
    assert!(!old.contains("new") && !old.contains("none"), "the timeouts have a baseline: {old}");

    // its first page of lines, newest first, every one an ERROR of checkout
    let lines = b.texts("#lines li.line summary").await;
    assert_eq!(lines.len(), 50, "a first page");
    assert!(lines.iter().all(|l| l.contains("ERROR") && l.contains("checkout")), "{lines:?}");
    assert!(b.count("#more:not([hidden])").await == 1, "more lines behind a Load more");
    let cursors = b.eval("[...document.querySelectorAll('#lines li.line')].map(li => li.dataset.cursor)").await;
    let first: Value =
        http().get(app.url(&format!("/incidents/{id}/logs?limit=50"))).send().await.unwrap().json().await.unwrap();
    let api_cursors: Vec<&Value> = first.as_array().unwrap().iter().map(|l| &l["cursor"]).collect();
    assert_eq!(
        cursors.as_array().unwrap().iter().collect::<Vec<_>>(),
        api_cursors,
        "the lines GET /incidents/{id}/logs gives"
    );

    // the service around it, the incident's span marked; the timeline
    b.wait("#error-rate-chart path[data-service=checkout]").await;
    assert_eq!(b.count("#error-rate-chart rect.span").await, 1);
    assert!(b.texts("#timeline li").await.iter().any(|e| e.contains("opened")));

    // "content drawn" is a mark on the page's navigation timing (scripts/bench.sh ui reads it)
    let drawn = b.eval("performance.getEntriesByName('logmon:content-drawn')[0].startTime").await;
    eprintln!("incident page content drawn {:.0} ms after navigation start", drawn.as_f64().unwrap());
    b.screenshot("incident-page").await;
    b.screenshot_view("incident-page-top").await;
    b.assert_clean(&app.base).await;
    b.close().await;
}

/// 12,345 as the page writes it (en-US).
fn format_count(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test]
async fn a_pattern_filters_the_incident_lines_and_back_shows_them_all() {
    let db = fresh_db().await;
    let id = checkout_incident(&db).await;
    let app = spawn_collector(&db.url, &[]).await;
    let mut b = Browser::open(&app.url(&format!("/incidents/{id}")), View::default()).await;
    b.loaded().await;
    let refused = template(&db, "connection to db-1 refused (attempt 2)").await;
    let pattern_id = b.attr("#patterns tbody tr:has(.new)", "data-pattern").await.unwrap();
    let all = b.texts("#lines li.line .msg").await;
    assert!(all.iter().any(|m| !m.starts_with("connection to")), "unfiltered, other lines too");

    b.click(&format!("#patterns a.tpl:text-is(\"{refused}\")")).await;
    b.wait_until(&format!("location.search === '?pattern={pattern_id}'")).await;
    b.wait_until(
        "[...document.querySelectorAll('#lines li.line .msg')].every(m => m.textContent.startsWith('connection to'))",
    )
    .await;
    assert_eq!(b.count("#lines li.line").await, 50);
    assert!(b.text("#lines-sub").await.contains(&refused));
    // the next page continues the same filter, without repeating a line
    b.click("#more").await;
    b.wait_until("document.querySelectorAll('#lines li.line').length === 100").await;
    let msgs = b.texts("#lines li.line .msg").await;
    assert!(msgs.iter().all(|m| m.starts_with("connection to")), "{msgs:?}");
    let cursors =
        b.eval("new Set([...document.querySelectorAll('#lines li.line')].map(li => li.dataset.cursor)).size").await;
    assert_eq!(cursors, 100);
    b.screenshot("incident-page-pattern").await;

    b.back().await;
    b.wait_until("location.search === ''").await;
    b.wait_until(
        "[...document.querySelectorAll('#lines li.line .msg')].some(m => !m.textContent.startsWith('connection to'))",
    )
    .await;
    assert!(b.count("#show-all:not([hidden])").await == 0);

    // a status code narrows them too
    b.click("#codes a[data-status='504']").await;
    b.wait_until("location.search === '?status_code=504'").await;
    b.wait_until("[...document.querySelectorAll('#lines li.line .code')].every(c => c.textContent === '504')").await;
    assert!(b.count("#lines li.line").await > 0);
    b.assert_clean(&app.base).await;
    b.close().await;
}

#[tokio::test]
async fn acknowledging_asks_for_the_admin_token_and_a_refused_resolve_is_explained() {
    let db = fresh_db().await;
    let id = checkout_incident(&db).await;
    let app = spawn_collector(&db.url, &["--admin-token", "s3cret-token"]).await;
    let mut b = Browser::open(&app.url(&format!("/incidents/{id}")), View::default()).await;
    b.loaded().await;
    b.fill("#who", "alice").await;
    b.click("#ack").await;
    // the server wants a token: the page asks for it, and the focus goes there
    b.wait("#auth").await;
    assert_eq!(b.eval("document.activeElement.id").await, "token");
    assert_eq!(incident_json(&app, id).await["status"], "open", "nothing happened without the token");
    b.fill("#token", "wrong").await;
    b.press("Enter").await;
    b.wait_until("document.getElementById('auth-why').textContent.includes('refused')").await;
    assert_eq!(incident_json(&app, id).await["status"], "open");
    b.fill("#token", "s3cret-token").await;
    b.press("Enter").await;
    b.wait_until("document.getElementById('status').textContent === 'acknowledged'").await;
    let inc = incident_json(&app, id).await;
    assert_eq!((inc["status"].as_str(), inc["acknowledged_by"].as_str()), (Some("acknowledged"), Some("alice")));
    assert!(b.text("#facts").await.contains("by alice"));
    b.wait_until("[...document.querySelectorAll('#timeline li')].some(li => li.dataset.event === 'acknowledged')")
        .await;
    assert!(b.eval("document.getElementById('ack').disabled").await == true);

    // the errors still arrive: resolving is refused (409), and the page says why and what to do
    b.click("#resolve").await;
    b.wait("#conflict").await;
    let why = b.text("#conflict").await;
    assert!(why.contains("cannot be resolved while its condition still holds"), "the server's reason: {why}");
    assert!(why.contains("silence"), "{why}");
    b.wait("#silence-offer").await;
    assert_eq!(incident_json(&app, id).await["status"], "acknowledged");
    b.screenshot("incident-page-resolve-refused").await;
    // ... and the silence it offers holds the incident's notifications
    b.click("#silence-form button[type=submit]").await;
    b.wait_until("document.getElementById('action-msg').textContent.startsWith('Silence ')").await;
    let inc = incident_json(&app, id).await;
    assert_eq!(inc["silenced_by"].as_array().unwrap().len(), 1, "{inc}");
    let silences: Value = http().get(app.url("/silences?state=active")).send().await.unwrap().json().await.unwrap();
    let s = &silences[0];
    assert_eq!(s["createdBy"], "alice");
    let matchers: Vec<String> = s["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}={}", m["name"].as_str().unwrap(), m["value"].as_str().unwrap()))
        .collect();
    assert_eq!(matchers, ["service=checkout", "incident_type=ERROR_SPIKE"]);
    b.wait("#badges .silenced").await;
    b.assert_clean(&app.base).await;
    b.close().await;
}

#[tokio::test]
async fn keyboard_alone_filters_by_a_pattern_and_acknowledges() {
    let db = fresh_db().await;
    let id = checkout_incident(&db).await;
    let app = spawn_collector(&db.url, &[]).await;
    let mut b = Browser::open(&app.url(&format!("/incidents/{id}")), View::default()).await;
    b.loaded().await;
    let refused = template(&db, "connection to db-1 refused (attempt 2)").await;
    // the first stop skips to the content, and focus is always visible
    b.press("Tab").await;
    assert_eq!(b.eval("document.activeElement.textContent").await, "Skip to content");
    let outline = b.eval("getComputedStyle(document.activeElement).outlineStyle").await;
    assert_ne!(outline, "none", "a visible focus ring");
    // Tab reaches the pattern; Enter filters
    let focused = tab_until(&mut b, &format!("document.activeElement.textContent === {refused:?}")).await;
    assert!(focused, "Tab reaches the pattern link");
    let ring = b.eval("getComputedStyle(document.activeElement).outlineWidth").await;
    assert_ne!(ring, "0px");
    b.press("Enter").await;
    b.wait_until("location.search.startsWith('?pattern=')").await;
    b.wait_until(
        "[...document.querySelectorAll('#lines li.line .msg')].every(m => m.textContent.startsWith('connection to'))",
    )
    .await;
    // a line opens with Enter
    assert!(tab_until(&mut b, "document.activeElement.tagName === 'SUMMARY'").await, "Tab reaches the lines");
    b.press("Enter").await;
    b.wait("#lines details[open] .more").await;
    // Shift+Tab back to Acknowledge, Enter acknowledges
    let mut found = false;
    for _ in 0..80 {
        b.press("Shift+Tab").await;
        if b.eval("document.activeElement.id").await == "ack" {
            found = true;
            break;
        }
    }
    assert!(found, "Shift+Tab reaches Acknowledge");
    b.press("Enter").await;
    b.wait_until("document.getElementById('status').textContent === 'acknowledged'").await;
    assert_eq!(incident_json(&app, id).await["status"], "acknowledged");
    b.assert_clean(&app.base).await;
    b.close().await;
}

/// Presses Tab until `expr` holds (at most 80 times).
pub async fn tab_until(b: &mut Browser, expr: &str) -> bool {
    for _ in 0..80 {
        b.press("Tab").await;
        if b.eval(expr).await == true {
            return true;
        }
    }
    false
}
