//! Pattern counts are exact, like the rollup, at both of their levels: log_pattern_counts per
//! (service, pattern, level, minute) and log_pattern_counts_10m per 10 minutes (plus the deltas
//! not folded yet) each equal count(*) over the raw rows, whoever wrote the rows, before and after
//! compaction, across retention drops and rebuilds; they are read through top_patterns() /
//! GET /patterns, which answers what a count over the raw rows answers for any window, lines
//! carry their pattern, and incidents their context.
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Value, json};
use tokio_postgres::Client;

use crate::helpers::*;

/// (service, pattern, level, bucket) rows of each level that disagree with the raw rows:
/// (minutes, 10-minute buckets); (0, 0) = exact. The 10-minute level is its merged rows plus the
/// deltas still pending, bucketed here on whole minutes :00, :10, ... of UTC hours.
pub async fn disagreements(c: &Client) -> (i64, i64) {
    let r = c
        .query_one(
            "WITH raw AS (SELECT service, coalesce(pattern_id, log_pattern_id(message)) AS pattern_id, level, ts
                          FROM logs WHERE message IS NOT NULL),
                  minutes AS (SELECT service, pattern_id, level, bucket, sum(count) AS n FROM log_pattern_counts
                              GROUP BY 1, 2, 3, 4 HAVING sum(count) <> 0),
                  raw_minutes AS (SELECT service, pattern_id, level, date_trunc('minute', ts) AS bucket, count(*) AS n
                                  FROM raw GROUP BY 1, 2, 3, 4),
                  tens AS (SELECT service, pattern_id, level, bucket, sum(count) AS n
                           FROM (SELECT service, pattern_id, level, bucket, count FROM log_pattern_counts_10m
                                 UNION ALL
                                 SELECT service, pattern_id, level,
                                        date_bin('10 minutes', bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00'), count
                                 FROM log_pattern_counts WHERE NOT compacted) x
                           GROUP BY 1, 2, 3, 4 HAVING sum(count) <> 0),
                  raw_tens AS (SELECT service, pattern_id, level,
                                      date_bin('10 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket, count(*) AS n
                               FROM raw GROUP BY 1, 2, 3, 4)
             SELECT (SELECT count(*) FROM minutes m FULL JOIN raw_minutes r USING (service, pattern_id, level, bucket)
                     WHERE m.n IS DISTINCT FROM r.n),
                    (SELECT count(*) FROM tens t FULL JOIN raw_tens r USING (service, pattern_id, level, bucket)
                     WHERE t.n IS DISTINCT FROM r.n)",
            &[],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

/// How many 10-minute buckets the merged 10-minute rows span (a test of both levels needs several).
async fn ten_minute_buckets(c: &Client) -> i64 {
    c.query_one("SELECT count(DISTINCT bucket) FROM log_pattern_counts_10m", &[]).await.unwrap().get(0)
}

/// `COPY logs FROM STDIN` (the SQL writers' bulk path, through the logs triggers) of rows `range`
/// spread over the last 50 minutes.
async fn copy_through_logs(c: &Client, range: std::ops::Range<i64>) {
    use futures_util::SinkExt;
    let mut rows = String::new();
    for j in range {
        let ts = Utc::now() - Duration::seconds(j * 15);
        let level = if j % 11 == 0 { "ERROR" } else { "DEBUG" };
        rows.push_str(&format!(
            "{}\tsvc-{}\t{level}\timported record r{j} from batch b{}\n",
            ts.to_rfc3339(),
            j % 3,
            j % 7
        ));
    }
    let sink = c.copy_in("COPY logs (ts, service, level, message) FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    sink.send(bytes::Bytes::from(rows)).await.unwrap();
    sink.finish().await.unwrap();
}

#[tokio::test]
async fn pattern_counts_equal_the_raw_rows_whoever_writes_them() {
    let db = fresh_db().await;
    let c = db.client().await;
    let app = spawn_collector(&db.url, &[]).await;
    // over the last 45 minutes: several 10-minute buckets, each with many minutes
    let batch: Vec<Value> = (0..300)
        .map(|i| {
            json!({"service": format!("svc-{}", i % 3), "level": if i % 7 == 0 { "ERROR" } else { "INFO" },
                   "message": format!("user u{} logged in from 10.0.{}.{}", i * 31, i % 9, i % 250),
                   "ts": (Utc::now() - Duration::seconds(i * 9)).to_rfc3339()})
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
    assert_eq!(disagreements(&c).await, (0, 0), "collector rows");
    // a DBA writes, changes and deletes rows with SQL
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT now() - g * interval '6 seconds', 'svc-' || (g % 4), 'WARN', 'disk /dev/sd' || chr(97 + g % 3) || ' at ' || g || '% full'
         FROM generate_series(1, 500) g;
         UPDATE logs SET level = 'ERROR' WHERE service = 'svc-3' AND ts > now() - interval '15 minutes';
         DELETE FROM logs WHERE ctid IN (SELECT ctid FROM logs WHERE service = 'svc-1' LIMIT 40);",
    )
    .await
    .unwrap();
    copy_through_logs(&c, 0..200).await;
    assert_eq!(disagreements(&c).await, (0, 0), "after SQL writes");
    c.batch_execute("SELECT compact_patterns()").await.unwrap();
    assert_eq!(disagreements(&c).await, (0, 0), "after compaction");
    let uncompacted: i64 =
        c.query_one("SELECT count(*) FROM log_pattern_counts WHERE NOT compacted", &[]).await.unwrap().get(0);
    assert_eq!(uncompacted, 0);
    assert!(ten_minute_buckets(&c).await >= 4, "the rows span several 10-minute buckets");
    // more writes on top of folded counts: deltas pending beside merged rows of both levels, and a
    // DELETE that empties some (service, pattern, level, 10 minutes) altogether
    copy_through_logs(&c, 200..300).await;
    c.batch_execute(
        "DELETE FROM logs WHERE service = 'svc-2' AND ts > now() - interval '20 minutes';
         UPDATE logs SET level = 'FATAL' WHERE service = 'svc-0' AND level = 'ERROR' AND ts < now() - interval '30 minutes';",
    )
    .await
    .unwrap();
    assert_eq!(disagreements(&c).await, (0, 0), "pending deltas beside folded counts");
    c.batch_execute("SELECT compact_patterns()").await.unwrap();
    assert_eq!(disagreements(&c).await, (0, 0), "after the second compaction");
    let emptied: i64 = c
        .query_one(
            "SELECT count(*) FROM log_pattern_counts_10m WHERE service = 'svc-2' AND bucket >= $1",
            &[&(Utc::now() - Duration::minutes(10))],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(emptied, 0, "a bucket whose lines were all deleted keeps no row");
    // TRUNCATE logs empties both levels
    c.batch_execute("BEGIN; TRUNCATE logs").await.unwrap();
    let left: i64 = c
        .query_one(
            "SELECT (SELECT count(*) FROM log_pattern_counts) + (SELECT count(*) FROM log_pattern_counts_10m)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(left, 0, "TRUNCATE logs leaves no pattern count");
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

#[tokio::test]
async fn both_levels_stay_exact_when_retention_drops_partitions_even_at_a_bound_inside_ten_minutes() {
    let db = fresh_db().await;
    let c = db.client().await;
    // The oldest hour kept is split at :23 (no hourly partition is, but a partition made by hand
    // may be): [h - 1 h, h + 23 min) goes, [h + 23 min, h + 1 h) stays, and the 10 minutes
    // h + 20 .. h + 30 lose their first three minutes. The hour before h goes whole.
    c.batch_execute(
        "DO $$
         DECLARE
             h timestamptz := date_trunc('hour', now() - interval '7 days');
         BEGIN
             PERFORM ensure_partitions(h - interval '2 hours', h - interval '2 hours');
             EXECUTE format('DROP TABLE IF EXISTS %I, %I', log_partition_for(h - interval '1 hour'), log_partition_for(h));
             EXECUTE format('CREATE TABLE logs_split_a PARTITION OF logs FOR VALUES FROM (%L) TO (%L)',
                            h - interval '1 hour', h + interval '23 minutes');
             EXECUTE format('CREATE TABLE %I PARTITION OF logs FOR VALUES FROM (%L) TO (%L)',
                            log_partition_for(h), h + interval '23 minutes', h + interval '1 hour');
             -- the cutoff (now() - retention) at h + 30 min, whatever the time of day
             UPDATE logmon_settings SET retention = now() - (h + interval '30 minutes');
             INSERT INTO logs (ts, service, level, message)
             SELECT h - interval '2 hours' + g * interval '20 seconds', 'svc-' || (g % 2),
                    CASE WHEN g % 5 = 0 THEN 'ERROR' ELSE 'INFO' END, 'job j' || g || ' finished in ' || g % 60 || ' s'
             FROM generate_series(0, 3 * 180 - 1) g;
             INSERT INTO logs (ts, service, level, message)
             SELECT now() - g * interval '30 seconds', 'svc-0', 'INFO', 'job j' || g || ' finished in 1 s'
             FROM generate_series(1, 100) g;
         END $$;
         SELECT compact_patterns();",
    )
    .await
    .unwrap();
    // a few deltas still pending on both sides of the split when the drop comes
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT date_trunc('hour', now() - interval '7 days') + g * interval '1 minute', 'svc-1', 'WARN', 'late line ' || g
         FROM generate_series(15, 40) g",
    )
    .await
    .unwrap();
    assert_eq!(disagreements(&c).await, (0, 0), "before the drop");
    let actions: Vec<(String, String)> = c
        .query("SELECT action, partition_name FROM maintain_partitions() WHERE action = 'dropped'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let names: Vec<String> = c
        .query(
            "SELECT log_partition_for(h - interval '2 hours'), log_partition_for(h)
             FROM date_trunc('hour', now() - interval '7 days') h",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .flat_map(|r| [r.get(0), r.get(1)])
        .collect();
    let dropped = |name: &str| actions.iter().any(|(_, p)| p == name);
    assert!(
        dropped("logs_split_a") && dropped(&names[0]),
        "the split hour's first part goes, and the hour before: {actions:?}"
    );
    assert!(!dropped(&names[1]), "the split hour's second part stays: {actions:?}");
    let kept: i64 = c
        .query_one(
            "SELECT count(*) FROM logs WHERE ts < date_trunc('hour', now() - interval '7 days') + interval '1 hour'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(kept > 0, "the rows of the split 10 minutes after the bound stay");
    assert_eq!(disagreements(&c).await, (0, 0), "after the drop");
    c.batch_execute("SELECT compact_patterns()").await.unwrap();
    assert_eq!(disagreements(&c).await, (0, 0), "after the drop, compacted");
}

#[tokio::test]
async fn rebuild_rollup_recounts_both_levels_for_rows_copied_straight_into_a_partition() {
    let db = fresh_db().await;
    let c = db.client().await;
    let t0 = (Utc::now() - Duration::hours(2)).duration_trunc(Duration::hours(1)).unwrap();
    // counted rows around the range (through logs, then folded, and some still pending), and rows
    // written straight into the partition (no trigger: not counted) from t0 + 13 min to t0 + 47 min
    c.execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT $1::timestamptz + g * interval '30 seconds', 'api', 'INFO', 'GET /items/' || g || ' 200'
         FROM generate_series(0, 119) g",
        &[&t0],
    )
    .await
    .unwrap();
    c.batch_execute("SELECT compact_patterns()").await.unwrap();
    c.execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT $1::timestamptz + g * interval '1 minute', 'api', 'ERROR', 'GET /items/' || g || ' 500'
         FROM generate_series(0, 59) g",
        &[&t0],
    )
    .await
    .unwrap();
    c.execute(
        &format!(
            "INSERT INTO {} (ts, service, level, message)
             SELECT $1::timestamptz + interval '13 minutes' + g * interval '5 seconds', 'api', 'WARN', 'slow query q' || g
             FROM generate_series(0, 34 * 12 - 1) g",
            c.query_one("SELECT log_partition_for($1)", &[&t0]).await.unwrap().get::<_, String>(0)
        ),
        &[&t0],
    )
    .await
    .unwrap();
    let (minutes, tens) = disagreements(&c).await;
    assert!(minutes > 0 && tens > 0, "rows written straight into a partition are not counted yet");
    // the range's edges fall inside 10-minute buckets that hold counted rows outside it
    c.execute(
        "SELECT rebuild_rollup($1::timestamptz + interval '13 minutes', $1::timestamptz + interval '47 minutes')",
        &[&t0],
    )
    .await
    .unwrap();
    assert_eq!(disagreements(&c).await, (0, 0), "after rebuild_rollup");
    c.batch_execute("SELECT compact_patterns()").await.unwrap();
    assert_eq!(disagreements(&c).await, (0, 0), "after rebuild_rollup, compacted");
}

/// What top_patterns() must answer, counted over the raw rows (`raw`, a temporary table of every
/// line with its pattern): per service and pattern, lines in [lo, hi) and in the window of the
/// same length before, levels in the window, share of the service's lines.
const RAW_TOP: &str = "
    WITH w AS (SELECT $3::timestamptz AS lo, $4::timestamptz AS hi, $3::timestamptz - ($4::timestamptz - $3::timestamptz) AS plo),
         counted AS (
             SELECT r.service, r.pattern_id, count(*) FILTER (WHERE r.ts >= w.lo) AS n,
                    count(*) FILTER (WHERE r.ts < w.lo) AS prev,
                    array_agg(DISTINCT r.level) FILTER (WHERE r.ts >= w.lo) AS levels
             FROM raw r, w
             WHERE r.ts >= w.plo AND r.ts < w.hi AND ($1::text IS NULL OR r.service = $1)
               AND r.level = ANY (coalesce($2::text[], '{DEBUG,INFO,WARN,ERROR,FATAL}'))
             GROUP BY 1, 2)
    SELECT service, pattern_id, n, prev, levels, round(n::numeric / sum(n) OVER (PARTITION BY service), 4)::float8
    FROM counted WHERE n > 0 ORDER BY service, n DESC, pattern_id";

type Top = Vec<(String, i64, i64, i64, Vec<String>, f64)>;

fn top_rows(rows: &[tokio_postgres::Row]) -> Top {
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))).collect()
}

#[tokio::test]
async fn top_patterns_answers_what_the_raw_rows_say_for_windows_with_edges_inside_ten_minutes() {
    let db = fresh_db().await;
    let c = db.client().await;
    let end = Utc::now().duration_trunc(Duration::minutes(1)).unwrap() - Duration::minutes(3);
    let start = end - Duration::hours(3);
    // three hours of three services: steady patterns, one at two levels, a sparse one and a burst
    c.execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT $1::timestamptz + g * interval '7 seconds', 'svc-' || (g % 3),
                CASE WHEN g % 10 < 6 THEN 'INFO' WHEN g % 10 < 8 THEN (ARRAY['DEBUG', 'INFO'])[1 + g / 10 % 2]
                     WHEN g % 10 = 8 THEN 'WARN' ELSE 'ERROR' END,
                CASE WHEN g % 10 < 6 THEN 'request ' || g || ' served in ' || g % 90 || ' ms'
                     WHEN g % 10 < 8 THEN 'cache miss for key k' || g
                     WHEN g % 10 = 8 THEN 'upstream u' || g % 4 || ' slow: ' || g % 500 || ' ms'
                     WHEN g / 10 % 13 = 0 THEN 'payment p' || g || ' refused'
                     ELSE 'retrying job j' || g END
         FROM generate_series(0, 3 * 3600 / 7) g",
        &[&start],
    )
    .await
    .unwrap();
    c.execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT $1::timestamptz - interval '47 minutes' + g * interval '2 seconds', 'svc-1', 'FATAL', 'disk d' || g % 3 || ' failed'
         FROM generate_series(0, 299) g",
        &[&end],
    )
    .await
    .unwrap();
    c.batch_execute("SELECT compact_patterns()").await.unwrap();
    // then deltas that stay pending: late lines anywhere in the three hours, and a DELETE
    c.execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT $1::timestamptz + g * interval '97 seconds', 'svc-' || (g % 3), 'WARN', 'upstream u' || g % 4 || ' slow: 1 ms'
         FROM generate_series(0, 110) g",
        &[&start],
    )
    .await
    .unwrap();
    c.execute(
        "DELETE FROM logs WHERE service = 'svc-2' AND message LIKE 'request%' AND ts >= $1::timestamptz - interval '64 minutes'
           AND ts < $1::timestamptz - interval '52 minutes'",
        &[&end],
    )
    .await
    .unwrap();
    assert!(ten_minute_buckets(&c).await >= 18, "three hours of 10-minute buckets");
    c.batch_execute(
        "CREATE TEMP TABLE raw AS
         SELECT service, coalesce(pattern_id, log_pattern_id(message)) AS pattern_id, level, ts FROM logs WHERE message IS NOT NULL",
    )
    .await
    .unwrap();
    // every position of `at` inside its 10 minutes, windows shorter and longer than 10 minutes
    let mut compared = 0;
    for k in 0..10 {
        let at = end - Duration::minutes(k) - Duration::seconds(17);
        let hi = at.duration_trunc(Duration::minutes(1)).unwrap() + Duration::minutes(1);
        for minutes in [1, 7, 13, 60, 95] {
            let lo = hi - Duration::minutes(minutes);
            let lookback = format!("{minutes} minutes");
            let want = top_rows(&c.query(RAW_TOP, &[&None::<String>, &None::<Vec<String>>, &lo, &hi]).await.unwrap());
            let got = top_rows(
                &c.query(
                    "SELECT service, pattern_id, count, previous, levels, share
                     FROM top_patterns(NULL, $1::text::interval, lim => 1000, at => $2)",
                    &[&lookback, &at],
                )
                .await
                .unwrap(),
            );
            assert!(!want.is_empty());
            assert_eq!(got, want, "top_patterns(NULL, '{lookback}', at => {at})");
            compared += 1;
        }
        // one service, a minimum level, a window given by its start
        let since: DateTime<Utc> = at - Duration::minutes(31 + 3 * k);
        let lo = since.duration_trunc(Duration::minutes(1)).unwrap();
        let want = top_rows(
            &c.query(RAW_TOP, &[&Some("svc-1"), &Some(vec!["WARN", "ERROR", "FATAL"]), &lo, &hi]).await.unwrap(),
        );
        let got = top_rows(
            &c.query(
                "SELECT service, pattern_id, count, previous, levels, share
                 FROM top_patterns('svc-1', level => 'WARN', lim => 1000, at => $1, since => $2)",
                &[&at, &since],
            )
            .await
            .unwrap(),
        );
        assert_eq!(got, want, "top_patterns('svc-1', level => 'WARN', at => {at}, since => {since})");
        compared += 1;
    }
    assert_eq!(compared, 60);
    // lim keeps the first of each service's ranking
    let at = end - Duration::seconds(17);
    let hi = at.duration_trunc(Duration::minutes(1)).unwrap() + Duration::minutes(1);
    let mut want = top_rows(
        &c.query(RAW_TOP, &[&None::<String>, &None::<Vec<String>>, &(hi - Duration::minutes(60)), &hi]).await.unwrap(),
    );
    let mut seen = std::collections::HashMap::new();
    want.retain(|r| {
        let n = seen.entry(r.0.clone()).or_insert(0);
        *n += 1;
        *n <= 2
    });
    let got = top_rows(
        &c.query(
            "SELECT service, pattern_id, count, previous, levels, share FROM top_patterns(NULL, '60 minutes', lim => 2, at => $1)",
            &[&at],
        )
        .await
        .unwrap(),
    );
    assert_eq!(got, want);
}
