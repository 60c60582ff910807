//! Pattern counts are exact, like the rollup: log_pattern_counts equals count(*) over the raw
//! rows per (service, pattern, level, minute), whoever wrote the rows; they are read through
//! top_patterns() / GET /patterns, lines carry their pattern, and incidents their context.
use chrono::{Duration, DurationRound, Utc};
use serde_json::{Value, json};
use tokio_postgres::Client;

use crate::helpers::*;

/// Rows of the counts table that disagree with the raw rows (0 = exact).
async fn disagreements(c: &Client) -> i64 {
    c.query_one(
        "WITH counted AS (SELECT service, pattern_id, level, bucket, sum(count) AS n FROM log_pattern_counts
                          GROUP BY 1, 2, 3, 4 HAVING sum(count) <> 0),
              raw AS (SELECT service, coalesce(pattern_id, log_pattern_id(message)) AS pattern_id, level,
                             date_trunc('minute', ts) AS bucket, count(*) AS n
                      FROM logs WHERE message IS NOT NULL GROUP BY 1, 2, 3, 4)
         SELECT count(*) FROM counted FULL JOIN raw USING (service, pattern_id, level, bucket)
         WHERE counted.n IS DISTINCT FROM raw.n",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn pattern_counts_equal_the_raw_rows_whoever_writes_them() {
    let db = fresh_db().await;
    let c = db.client().await;
    let app = spawn_collector(&db.url, &[]).await;
    let batch: Vec<Value> = (0..300)
        .map(|i| {
            json!({"service": format!("svc-{}", i % 3), "level": if i % 7 == 0 { "ERROR" } else { "INFO" },
                   "message": format!("user u{} logged in from 10.0.{}.{}", i * 31, i % 9, i % 250),
                   "ts": (Utc::now() - Duration::seconds(i % 400)).to_rfc3339()})
        })
        .collect();
    assert_eq!(http().post(app.url("/logs")).json(&batch).send().await.unwrap().status(), 200);
    // lines without a message have no pattern
    assert_eq!(
        http()
            .post(app.url("/logs"))
            .json(&json!({"service": "svc-0", "level": "INFO"}))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(disagreements(&c).await, 0, "collector rows");
    // a DBA writes, changes and deletes rows with SQL
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT now() - g * interval '1 second', 'svc-' || (g % 4), 'WARN', 'disk /dev/sd' || chr(97 + g % 3) || ' at ' || g || '% full'
         FROM generate_series(1, 500) g;
         UPDATE logs SET level = 'ERROR' WHERE service = 'svc-3' AND ts > now() - interval '100 seconds';
         DELETE FROM logs WHERE ctid IN (SELECT ctid FROM logs WHERE service = 'svc-1' LIMIT 40);",
    )
    .await
    .unwrap();
    assert_eq!(disagreements(&c).await, 0, "after SQL writes");
    c.batch_execute("SELECT compact_patterns()").await.unwrap();
    assert_eq!(disagreements(&c).await, 0, "after compaction");
    let uncompacted: i64 =
        c.query_one("SELECT count(*) FROM log_pattern_counts WHERE NOT compacted", &[]).await.unwrap().get(0);
    assert_eq!(uncompacted, 0);
    // the collector stored each line's pattern, the one SQL computes for it
    let differ: i64 = c
        .query_one("SELECT count(*) FROM logs WHERE pattern_id IS DISTINCT FROM log_pattern_id(message) AND pattern_id IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(differ, 0);
    // and the catalogue knows every pattern with its template
    let missing: i64 = c
        .query_one(
            "SELECT count(*) FROM (SELECT DISTINCT service, coalesce(pattern_id, log_pattern_id(message)) p FROM logs
                                   WHERE message IS NOT NULL) r
             WHERE NOT EXISTS (SELECT 1 FROM log_patterns lp WHERE lp.service = r.service AND lp.pattern_id = r.p)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(missing, 0);
    let r = c
        .query_one(
            "SELECT template, count(*) OVER () FROM log_patterns WHERE service = 'svc-0' AND template LIKE 'user%'",
            &[],
        )
        .await
        .unwrap();
    let (t, n): (String, i64) = (r.get(0), r.get(1));
    assert_eq!((t.as_str(), n), ("user <*> logged in from <*>", 1));
}

#[tokio::test]
async fn top_patterns_says_what_is_new_in_the_window_and_what_came_before() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = (Utc::now() - Duration::hours(2)).duration_trunc(Duration::minutes(1)).unwrap();
    c.execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT $1::timestamptz + g * interval '10 seconds', 'api', 'INFO', 'request ' || g || ' served in ' || g % 90 || 'ms'
         FROM generate_series(0, 359) g;
         ",
        &[&t0],
    )
    .await
    .unwrap();
    c.execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT $1::timestamptz + interval '55 minutes' + g * interval '10 seconds', 'api', 'ERROR',
                'payment provider p' || g || ' refused card'
         FROM generate_series(0, 29) g",
        &[&t0],
    )
    .await
    .unwrap();
    c.batch_execute("SELECT compact_patterns()").await.unwrap();
    let at = t0 + Duration::minutes(60);
    let rows = c
        .query("SELECT template, count, previous, new, share FROM top_patterns('api', '10 minutes', at => $1)", &[&at])
        .await
        .unwrap();
    let got: Vec<(String, i64, i64, bool)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    assert_eq!(
        got,
        vec![
            ("request <*> served in <*>".to_string(), 60, 60, false),
            ("payment provider <*> refused card".to_string(), 30, 0, true),
        ]
    );
    let share: f64 = rows[1].get(4);
    assert!((share - 30.0 / 90.0).abs() < 0.001, "{share}");
    // level is a minimum
    let errors: i64 = c
        .query_one("SELECT count(*) FROM top_patterns('api', '10 minutes', 'ERROR', at => $1)", &[&at])
        .await
        .unwrap()
        .get(0);
    assert_eq!(errors, 1);
}

#[tokio::test]
async fn lines_carry_their_pattern_and_get_patterns_links_to_them() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let batch: Vec<Value> = (0..120)
        .map(|i| {
            let message =
                if i % 4 == 0 { format!("cache miss for key k{i}") } else { format!("GET /items/{i} 200 in {i}ms") };
            json!({"service": "web", "level": "INFO", "message": message})
        })
        .collect();
    assert_eq!(http().post(app.url("/logs")).json(&batch).send().await.unwrap().status(), 200);
    let patterns: Vec<Value> =
        http().get(app.url("/patterns?service=web&window_minutes=5")).send().await.unwrap().json().await.unwrap();
    assert_eq!(patterns.len(), 2, "{patterns:?}");
    assert_eq!((patterns[0]["count"].as_i64(), patterns[0]["new"].as_bool()), (Some(90), Some(true)));
    assert_eq!(patterns[1]["template"], "cache miss for key <*>");
    let id = patterns[1]["pattern_id"].as_str().unwrap();
    assert_eq!(id.len(), 16);
    let lines: Vec<Value> =
        http().get(app.url(&format!("/logs?pattern={id}&limit=1000"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(lines.len(), 30);
    assert!(lines.iter().all(|l| l["pattern_id"] == id && l["pattern"] == "cache miss for key <*>"), "{:?}", lines[0]);
    // bad parameters name themselves
    let r = http().get(app.url("/patterns?window_minutes=0")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = http().get(app.url("/patterns?level=LOUD")).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn an_incident_shows_the_patterns_status_codes_and_lines_it_is_made_of() {
    let db = fresh_db().await;
    let c = db.client().await;
    // an hour of normal traffic with a few usual errors, then a burst of a new error
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, message, status_code)
         SELECT now() - interval '70 minutes' + g * interval '1 second', 'checkout',
                CASE WHEN g % 100 = 0 THEN 'ERROR' ELSE 'INFO' END,
                CASE WHEN g % 100 = 0 THEN 'retrying order o' || g ELSE 'order o' || g || ' placed' END,
                CASE WHEN g % 100 = 0 THEN 502 ELSE 200 END
         FROM generate_series(0, 3599) g;
         INSERT INTO logs (ts, service, level, message, status_code)
         SELECT now() - interval '9 minutes' + g * interval '500 milliseconds', 'checkout', 'ERROR',
                'connection to db-' || g % 3 || ' refused after ' || g % 50 || 'ms', 503
         FROM generate_series(0, 999) g;
         SELECT compact_patterns();
         INSERT INTO incidents (service, incident_type, severity, summary, created_at, last_seen_at, window_start,
                                window_end, breach_start, observed, threshold, peak, rule_id)
         SELECT 'checkout', 'ERROR_SPIKE', 'HIGH', 'burst', now() - interval '5 minutes', now(),
                now() - interval '10 minutes', now(), now() - interval '10 minutes', 1000, 500, 1000, id
         FROM detection_rules WHERE name = 'ERROR_SPIKE' AND service IS NULL;",
    )
    .await
    .unwrap();
    let app = spawn_collector(&db.url, &[]).await;
    let inc: Vec<Value> = http().get(app.url("/incidents")).send().await.unwrap().json().await.unwrap();
    let body: Value =
        http().get(app.url(&format!("/incidents/{}", inc[0]["id"]))).send().await.unwrap().json().await.unwrap();
    let ctx = &body["context"];
    let top = &ctx["patterns"][0];
    assert_eq!(top["template"], "connection to <*> refused after <*>", "{ctx}");
    assert_eq!((top["count"].as_i64(), top["new"].as_bool()), (Some(1000), Some(true)), "{ctx}");
    assert_eq!(ctx["status_codes"][0], json!({"status_code": 503, "count": 1000}), "{ctx}");
    assert_eq!(ctx["sample_lines"].as_array().unwrap().len(), 3);
    assert!(ctx["sample_lines"][0]["message"].as_str().unwrap().starts_with("connection to db-"));
}
