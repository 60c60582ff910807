//! Investigating: GET /logs and GET /incidents/{id}/logs, and their SQL twins search_logs() and
//! incident_logs(). Each filter, pages that neither lose nor repeat a line while logs arrive, the
//! export and its cap, the time budget, hostile parameters, and who may search.
use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::*;

async fn get(app: &Proc, path: &str) -> (u16, Value, reqwest::header::HeaderMap) {
    let r = http().get(app.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, r.json().await.unwrap(), headers)
}

fn lines(v: &Value) -> Vec<&Value> {
    v.as_array().expect("a bare array").iter().collect()
}

/// The path and query of a Link rel="next" header.
fn next_link(h: &reqwest::header::HeaderMap) -> Option<String> {
    let link = h.get("link")?.to_str().unwrap();
    let url = link.strip_prefix('<')?.split_once(">; rel=\"next\"")?.0;
    Some(url.to_string())
}

/// 3 services, 1200 lines over the last 10 minutes, newest last; every 10th an ERROR with a 503.
async fn seed(db: &TestDb) {
    db.client()
        .await
        .batch_execute(
            "INSERT INTO logs (ts, service, level, message, status_code, latency_ms, attrs)
             SELECT now() - interval '10 minutes' + g * interval '500 milliseconds', 'svc-' || (g % 3),
                    CASE WHEN g % 10 = 0 THEN 'ERROR' WHEN g % 10 = 1 THEN 'WARN' ELSE 'INFO' END,
                    CASE WHEN g % 10 = 0 THEN 'upstream timeout after ' || g || ' ms' ELSE 'request ' || g || ' handled' END,
                    CASE WHEN g % 10 = 0 THEN 503 WHEN g % 10 = 1 THEN 404 ELSE 200 END, g % 700,
                    jsonb_build_object('host', 'node-' || (g % 4), 'shard', g % 2)
             FROM generate_series(1, 1200) g",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn each_filter_narrows_the_lines_newest_first() {
    let db = fresh_db().await;
    seed(&db).await;
    let app = spawn_collector(&db.url, &[]).await;

    let (s, all, _) = get(&app, "/logs?limit=1000").await;
    assert_eq!(s, 200);
    let all = lines(&all);
    assert_eq!(all.len(), 1000, "default window (15 min) holds all 1200; limit caps the page");
    let ts: Vec<&str> = all.iter().map(|l| l["ts"].as_str().unwrap()).collect();
    let mut sorted = ts.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ts, sorted, "newest first");
    for key in ["ts", "service", "level", "message", "latency_ms", "status_code", "attrs", "received_at", "pattern_id"]
    {
        assert!(all[0].get(key).is_some(), "each line has {key}: {}", all[0]);
    }

    for (query, check) in [
        ("service=svc-1", Box::new(|l: &Value| l["service"] == "svc-1") as Box<dyn Fn(&Value) -> bool>),
        ("service=svc-1&service=svc-2", Box::new(|l: &Value| l["service"] != "svc-0")),
        ("level=WARN", Box::new(|l: &Value| l["level"] == "WARN" || l["level"] == "ERROR")),
        ("level=error&service=svc-0", Box::new(|l: &Value| l["level"] == "ERROR" && l["service"] == "svc-0")),
        ("q=TIMEOUT", Box::new(|l: &Value| l["message"].as_str().unwrap().contains("timeout"))),
        ("status_code=4xx", Box::new(|l: &Value| l["status_code"] == 404)),
        ("status_code=503", Box::new(|l: &Value| l["status_code"] == 503)),
        ("min_latency_ms=600", Box::new(|l: &Value| l["latency_ms"].as_f64().unwrap() >= 600.0)),
        ("attr.host=node-2&attr.shard=0", Box::new(|l: &Value| l["attrs"] == json!({"host": "node-2", "shard": 0}))),
    ] {
        let (s, v, _) = get(&app, &format!("/logs?{query}&limit=1000")).await;
        assert_eq!(s, 200, "{query}: {v}");
        let got = lines(&v);
        assert!(!got.is_empty(), "{query} finds lines");
        assert!(got.iter().all(|l| check(l)), "{query}: every line matches");
        let expected = all.iter().filter(|l| check(l)).count();
        assert!(got.len() >= expected, "{query}: {} lines, at least the {expected} of the first page", got.len());
    }
    // order=asc: oldest first; until/since narrow the window (relative or RFC 3339)
    let (_, v, _) = get(&app, "/logs?order=asc&limit=5").await;
    let first: Vec<&str> = lines(&v).iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert_eq!(
        first,
        ["request 1 handled", "request 2 handled", "request 3 handled", "request 4 handled", "request 5 handled"]
    );
    let (_, v, _) = get(&app, "/logs?since=2m&limit=1000").await;
    assert!((230..=250).contains(&lines(&v).len()), "two minutes hold ~240 lines: {}", lines(&v).len());
}

#[tokio::test]
async fn like_wildcards_and_sql_are_plain_text_in_q() {
    let db = fresh_db().await;
    db.client()
        .await
        .batch_execute(
            "INSERT INTO logs (ts, service, level, message) VALUES
               (now(), 'a', 'INFO', 'discount 50%_off today'), (now(), 'a', 'INFO', 'discount 50 percent off'),
               (now(), 'a', 'INFO', $$it's '; DROP TABLE logs; --$$)",
        )
        .await
        .unwrap();
    let app = spawn_collector(&db.url, &[]).await;
    let (_, v, _) = get(&app, "/logs?q=50%25_off").await;
    assert_eq!(lines(&v).len(), 1, "% and _ are characters, not wildcards: {v}");
    let (_, v, _) = get(&app, "/logs?q=%27%3B%20DROP%20TABLE%20logs%3B%20--").await;
    assert_eq!(lines(&v).len(), 1, "{v}");
    let (_, v, _) = get(&app, "/logs?q=%25").await;
    assert_eq!(lines(&v).len(), 1);
}

#[tokio::test]
async fn pages_follow_the_link_without_losing_or_repeating_a_line_while_logs_arrive() {
    let db = fresh_db().await;
    seed(&db).await;
    let app = spawn_collector(&db.url, &[]).await;
    // keep ingesting while paging: new lines are after the first page's `until`
    let url = app.url("/logs");
    let ingest = tokio::spawn(async move {
        for i in 0..30 {
            let batch: Vec<Value> = (0..20)
                .map(|j| json!({"service": "svc-1", "level": "INFO", "message": format!("new {i}-{j}")}))
                .collect();
            assert_eq!(http().post(&url).json(&batch).send().await.unwrap().status(), 200);
        }
    });
    let mut seen = HashSet::new();
    let mut path = "/logs?service=svc-1&limit=37".to_string();
    let mut pages = 0;
    loop {
        let (s, v, h) = get(&app, &path).await;
        assert_eq!(s, 200, "{v}");
        for l in lines(&v) {
            let m = l["message"].as_str().unwrap().to_string();
            assert!(!m.starts_with("new "), "a line that arrived after the first page: {m}");
            assert!(seen.insert(m.clone()), "line repeated across pages: {m}");
        }
        pages += 1;
        match next_link(&h) {
            Some(next) => path = next,
            None => break,
        }
    }
    ingest.await.unwrap();
    assert_eq!(seen.len(), 400, "every svc-1 line of the window, once");
    assert_eq!(pages, 11, "400 lines at 37 a page");
    // the same pages oldest first
    let (_, v, _) = get(&app, "/logs?service=svc-1&order=asc&limit=400&until=30s").await;
    assert!(lines(&v).len() >= 300);
}

#[tokio::test]
async fn an_ndjson_export_streams_every_line_up_to_the_cap_and_says_when_it_stopped() {
    let db = fresh_db().await;
    seed(&db).await;
    let app = spawn_collector(&db.url, &["--max-export-rows", "1100"]).await;
    let r = http().get(app.url("/logs?level=INFO")).header("accept", "application/x-ndjson").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    let rows: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1101, "1100 lines, then the line that says the export was capped");
    let last = rows.last().unwrap();
    assert_eq!(last["truncated"], true, "{last}");
    assert_eq!(last["exported"], 1100);
    let next = last["next"].as_str().unwrap();
    let (_, rest, _) = get(&app, &next.replace("limit=100", "limit=1000")).await;
    assert_eq!(lines(&rest).len(), 100, "the next link continues where the export stopped");
    // under the cap: every line, no marker
    let r = http().get(app.url("/logs?level=WARN")).header("accept", "application/x-ndjson").send().await.unwrap();
    let text = r.text().await.unwrap();
    assert_eq!(text.lines().count(), 240);
    assert!(text.lines().all(|l| !l.contains("\"truncated\"")));
}

#[tokio::test]
async fn a_search_out_of_budget_answers_what_it_found_and_a_cursor_to_continue() {
    let db = fresh_db().await;
    seed(&db).await;
    let c = db.client().await;
    c.batch_execute("SELECT compact_rollup()").await.unwrap(); // slices are sized from the rollup's minutes
    // a filter that matches nothing scans the whole window; a 1 µs budget stops it after a slice
    let rows = c
        .query(
            "SELECT level, message, cursor FROM search_logs(q => 'no such text', since => now() - interval '1 hour',
                                                             budget => interval '1 microsecond')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "only the marker line");
    assert_eq!(rows[0].get::<_, Option<String>>(0), None, "a NULL level marks 'budget spent'");
    let cursor: String = rows[0].get(2);
    // continuing from the marker with a real budget finishes the walk
    let rest = c
        .query(
            "SELECT count(*) FROM search_logs(q => 'no such text', since => now() - interval '1 hour', after => $1)",
            &[&cursor],
        )
        .await
        .unwrap();
    assert_eq!(rest[0].get::<_, i64>(0), 0);
    // over HTTP the marker becomes a Link and a header, not a line
    c.batch_execute("UPDATE logmon_settings SET search_budget = '100 milliseconds'").await.unwrap();
    let app = spawn_collector(&db.url, &[]).await;
    let (s, v, h) = get(&app, "/logs?q=handled&since=1h&limit=1000").await;
    assert_eq!(s, 200);
    assert!(lines(&v).iter().all(|l| l["level"].is_string()), "no marker line in the JSON");
    if h.get("logmon-search").is_some() {
        assert!(next_link(&h).is_some(), "an incomplete page links to where the scan continues");
    }
}

#[tokio::test]
async fn a_silent_stretch_costs_no_slice_the_first_one_starts_at_the_rollups_newest_row() {
    let db = fresh_db().await;
    let c = db.client().await;
    // svc-a sent one line a second from 40 to 30 minutes ago, then nothing; svc-b kept sending;
    // svc-c sent 5 hours ago only, before the rollup's fine seconds (kept 3 hours: minutes remain)
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT now() - interval '40 minutes' + g * interval '1 second', 'svc-a', 'INFO', 'a ' || g
         FROM generate_series(0, 599) g;
         INSERT INTO logs (ts, service, level, message)
         SELECT now() - g * interval '1 second', 'svc-b', 'INFO', 'b ' || g FROM generate_series(1, 2400) g;
         INSERT INTO logs (ts, service, level, message)
         SELECT now() - interval '5 hours' + g * interval '1 second', 'svc-c', 'INFO', 'c ' || g
         FROM generate_series(0, 299) g;
         SELECT compact_rollup();",
    )
    .await
    .unwrap();
    // A budget of 1 us lets exactly one slice run: the lines come back only if that slice starts
    // where the service's rows are, not at the end of the window (the newest 100 seconds of a
    // window would hold none of them).
    for (service, since, newest_first) in
        [("svc-a", "1 hour", true), ("svc-a", "1 hour", false), ("svc-c", "6 hours", true), ("svc-c", "6 hours", false)]
    {
        let got: Vec<String> = c
            .query(
                "SELECT message FROM search_logs(service => $1, since => now() - $2::text::interval, lim => 20,
                                                 newest_first => $3, budget => interval '1 microsecond')",
                &[&service, &since, &newest_first],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
            .collect();
        let order = if newest_first { "DESC" } else { "ASC" };
        let want: Vec<String> = c
            .query(
                &format!(
                    "SELECT message FROM logs WHERE service = $1 AND ts >= now() - $2::text::interval
                     ORDER BY ts {order} LIMIT 20"
                ),
                &[&service, &since],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(got, want, "{service}, last {since}, newest first: {newest_first}");
    }
    // nothing at all in the window (svc-c's rows are 5 hours old; the first slice would be an
    // hour of the 4): no slice, so no marker either
    let none = c
        .query(
            "SELECT * FROM search_logs(service => 'svc-c', since => now() - interval '4 hours',
                                       budget => interval '1 microsecond')",
            &[],
        )
        .await
        .unwrap();
    assert!(none.is_empty(), "a window the rollup says is empty returns nothing: {} lines", none.len());
}

#[tokio::test]
async fn late_lines_still_pending_as_a_minute_delta_are_found_from_anywhere_in_their_minute() {
    let db = fresh_db().await;
    let c = db.client().await;
    // compaction moves rollup_state.fine_since to 3 hours ago; rows older than that, written
    // afterwards (a late shipper), leave one delta per (service, minute) until the next fold,
    // bucketed at the minute's start, not at their second
    c.batch_execute("SELECT compact_rollup()").await.unwrap();
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT date_trunc('minute', now() - interval '5 hours') + interval '40 seconds' + g * interval '100 milliseconds',
                'late', 'INFO', 'late ' || g
         FROM generate_series(0, 49) g",
    )
    .await
    .unwrap();
    let minute = "date_trunc('minute', now() - interval '5 hours')";
    for (since, until, newest_first) in [
        ("0 seconds", "60 seconds", true),
        ("20 seconds", "59 seconds", true),
        ("20 seconds", "59 seconds", false),
        ("0 seconds", "60 seconds", false),
    ] {
        let n: i64 = c
            .query_one(
                &format!(
                    "SELECT count(*) FROM search_logs(service => 'late', since => {minute} + interval '{since}',
                                                      until => {minute} + interval '{until}', lim => 1000,
                                                      newest_first => {newest_first}) WHERE level IS NOT NULL"
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 50, "[{since}, {until}) of the minute, newest first: {newest_first}");
    }
}

#[tokio::test]
async fn bad_parameters_get_a_400_naming_the_parameter() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let long_q = "x".repeat(60_000); // about the longest URL an HTTP client builds
    for (query, field) in [
        ("level=LOUD", "level"),
        ("status_code=9xx", "status_code"),
        ("status_code=abc", "status_code"),
        ("since=1h&until=2h", "until"),
        ("since=yesterday", "since"),
        ("since=99999999999d", "since"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("order=sideways", "order"),
        ("min_latency_ms=-1", "min_latency_ms"),
        ("pattern=xyz", "pattern"),
        ("cursor=not-a-cursor", "cursor"),
        ("colour=red", "colour"),
        ("service=", "service"),
    ] {
        let (s, v, _) = get(&app, &format!("/logs?{query}")).await;
        assert_eq!(s, 400, "{query}: {v}");
        assert_eq!(v["details"][0]["field"], field, "{query}: {v}");
    }
    let (s, v, _) = get(&app, &format!("/logs?q={long_q}")).await;
    assert_eq!((s, &v["details"][0]["field"]), (400, &json!("q")), "a 60 kB q is refused, naming q");
    // a 1 MB query string is refused by the server before any handler runs, and it keeps serving
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let request = format!("GET /logs?q={} HTTP/1.1\r\nHost: x\r\n\r\n", "x".repeat(1_000_000));
    let _ = tokio::io::AsyncWriteExt::write_all(&mut raw, request.as_bytes()).await;
    let mut answer = vec![0u8; 64];
    let n = tokio::io::AsyncReadExt::read(&mut raw, &mut answer).await.unwrap_or(0);
    let first = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(n == 0 || first.starts_with("HTTP/1.1 4"), "a 1 MB request line: {first:?}");
    assert_eq!(get(&app, "/logs?limit=1").await.0, 200);
    // an absurd but valid range is answered quickly from what exists
    let (s, v, _) = get(&app, "/logs?since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00Z").await;
    assert_eq!((s, lines(&v).len()), (200, 0));
}

/// An incident of `kind` for svc-0 over the seeded window, written the way detect_incidents() does.
async fn incident(db: &TestDb, incident_type: &str, rule: &str, threshold: f64) -> i64 {
    db.client()
        .await
        .query_one(
            "INSERT INTO incidents (service, incident_type, severity, summary, created_at, last_seen_at, window_start,
                                    window_end, breach_start, observed, threshold, peak, rule_id)
             SELECT 'svc-0', $1, 'HIGH', 'test', now() - interval '2 minutes', now(), now() - interval '7 minutes',
                    now(), now() - interval '8 minutes', 1, $3, 1, r.id
             FROM detection_rules r WHERE r.name = $2 AND r.service IS NULL
             RETURNING id",
            &[&incident_type, &rule, &threshold],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn an_incidents_lines_are_what_its_rule_counts_from_the_start_of_its_breach() {
    let db = fresh_db().await;
    seed(&db).await;
    let app = spawn_collector(&db.url, &[]).await;
    let errors = incident(&db, "ERROR_SPIKE", "ERROR_SPIKE", 500.0).await;
    let (s, v, _) = get(&app, &format!("/incidents/{errors}/logs?limit=1000")).await;
    assert_eq!(s, 200, "{v}");
    let got = lines(&v);
    assert!(got.iter().all(|l| l["service"] == "svc-0" && l["level"] == "ERROR"), "{v}");
    // the breach started 8 minutes ago: 8 min x 2 lines/s / 3 services / 10 = 32 error lines
    assert!((30..=34).contains(&got.len()), "{}", got.len());

    let slow = incident(&db, "LATENCY_SPIKE", "LATENCY_SPIKE", 600.0).await;
    let (_, v, _) = get(&app, &format!("/incidents/{slow}/logs?limit=1000")).await;
    assert!(!lines(&v).is_empty() && lines(&v).iter().all(|l| l["latency_ms"].as_f64().unwrap() >= 600.0));

    // NO_DATA: the last lines before the silence (which began at the breach's start)
    let silent = incident(&db, "NO_DATA", "NO_DATA", 0.5).await;
    let (_, v, h) = get(&app, &format!("/incidents/{silent}/logs?limit=5")).await;
    // the next page spans the incident's window too: its link pins no since/until of its own
    let next = next_link(&h).expect("a next page");
    assert!(next.starts_with(&format!("/incidents/{silent}/logs?")) && !next.contains("since="), "{next}");
    let start: chrono::DateTime<chrono::Utc> = db
        .client()
        .await
        .query_one("SELECT breach_start FROM incidents WHERE id = $1", &[&silent])
        .await
        .unwrap()
        .get(0);
    assert_eq!(lines(&v).len(), 5);
    for l in lines(&v) {
        let ts = chrono::DateTime::parse_from_rfc3339(l["ts"].as_str().unwrap()).unwrap();
        assert!(ts < start, "before the silence: {ts} < {start}");
    }
    // the same from psql
    let n: i64 =
        db.client().await.query_one("SELECT count(*) FROM incident_logs($1, 1000)", &[&errors]).await.unwrap().get(0);
    assert_eq!(n as usize, got.len());
    let (s, v, _) = get(&app, "/incidents/999999/logs").await;
    assert_eq!(s, 404, "{v}");
    // its service and window are the incident's: a filter that would move them is refused, not ignored
    for param in ["since=-1h", "until=now", "service=other", "level=INFO"] {
        let (s, v, _) = get(&app, &format!("/incidents/{errors}/logs?{param}")).await;
        assert_eq!(s, 400, "{param}: {v}");
        let name = param.split('=').next().unwrap();
        assert_eq!(v["details"][0]["field"], name, "{param}: {v}");
    }
}

#[tokio::test]
async fn the_reader_role_may_search_and_nothing_else_is_granted() {
    let db = fresh_db().await;
    seed(&db).await;
    let c = db.client().await;
    c.batch_execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'search_reader') THEN
            CREATE ROLE search_reader IN ROLE logmon_reader; END IF;
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'search_writer') THEN
            CREATE ROLE search_writer IN ROLE logmon_ingest; END IF; END $$;",
    )
    .await
    .unwrap();
    let reader: i64 = {
        c.batch_execute("SET ROLE search_reader").await.unwrap();
        let n = c.query_one("SELECT count(*) FROM search_logs(lim => 10)", &[]).await.unwrap().get(0);
        c.batch_execute("RESET ROLE").await.unwrap();
        n
    };
    assert_eq!(reader, 10);
    c.batch_execute("SET ROLE search_writer").await.unwrap();
    assert!(c.query("SELECT * FROM search_logs(lim => 10)", &[]).await.is_err(), "the ingest role cannot search");
    c.batch_execute("RESET ROLE").await.unwrap();
}
