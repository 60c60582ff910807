//! The rollup is exact: for any window, window_stats() equals count(*) over the committed raw rows
//! it covers (window_bounds()), whether rows came through the collector or straight from SQL,
//! compacted or not, and it reads no raw row to say so.
use serde_json::json;
use tokio_postgres::Client;

use crate::helpers::*;

/// Compares window_stats with raw counts for several windows, in one REPEATABLE READ snapshot.
async fn assert_exact(c: &mut Client) {
    let tx =
        c.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).start().await.unwrap();
    for (lo, hi) in [
        ("5 minutes", None),
        ("90 seconds", Some("10.5 seconds")),
        ("3 minutes 17.25 seconds", Some("1 minute 0.75 seconds")),
        ("30 minutes", Some("16 minutes 3.3 seconds")),
        ("2 hours", None),
    ] {
        let hi_expr = hi.map(|h| format!("now() - interval '{h}'")).unwrap_or("'infinity'::timestamptz".into());
        // the rows the window covers, as window_bounds() says (edges rounded to the rollup's resolution)
        let q = format!(
            "WITH w AS (SELECT * FROM window_bounds(now() - interval '{lo}', {hi_expr})),
                  a AS (SELECT service, total, errors, latency_count FROM window_stats(now() - interval '{lo}', {hi_expr})),
                  b AS (SELECT service, count(*) AS total, count(*) FILTER (WHERE level IN ('ERROR', 'FATAL')) AS errors,
                               count(latency_ms) AS latency_count
                          FROM logs, w WHERE ts >= w.lo_b AND ts < w.hi_b GROUP BY service)
             SELECT count(*) FROM a FULL JOIN b USING (service)
              WHERE a.total IS DISTINCT FROM b.total OR a.errors IS DISTINCT FROM b.errors
                 OR a.latency_count IS DISTINCT FROM b.latency_count"
        );
        let diff: i64 = tx.query_one(&q, &[]).await.unwrap().get(0);
        assert_eq!(diff, 0, "window ({lo}, {hi:?}] differs from raw counts");
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn rollup_equals_raw_counts_under_concurrent_http_and_sql_ingestion() {
    let db = fresh_db().await;
    let mut c = db.client().await;
    // old data: seconds older than an hour leave log_rollup, windows reaching there are read in minutes
    c.batch_execute(
        "UPDATE logmon_settings SET rollup_fine_retention = '1 hour';
         INSERT INTO logs (ts, service, level, latency_ms)
         SELECT now() - random() * interval '100 minutes', 'svc-' || (g % 3),
                CASE WHEN g % 7 = 0 THEN 'ERROR' ELSE 'INFO' END, CASE WHEN g % 5 <> 0 THEN random() * 2000 END
         FROM generate_series(1, 5000) g;
         SELECT compact_rollup();",
    )
    .await
    .unwrap();
    assert_exact(&mut c).await;

    let app = spawn_collector(&db.url, &[]).await;
    let mut senders = Vec::new();
    for s in 0..6 {
        let url = app.url("/logs");
        senders.push(tokio::spawn(async move {
            for round in 0..15 {
                let batch: Vec<_> = (0..50)
                    .map(|i| {
                        let age = ((s * 7919 + round * 104_729 + i * 15_485_863) % 400_000) as i64; // ms, up to ~6.7 min ago
                        json!({"service": format!("svc-{}", (s + i) % 4), "level": if i % 6 == 0 { "ERROR" } else { "INFO" },
                               "latency_ms": (i * 37 % 1500) as f64, "ts": (chrono::Utc::now() - chrono::Duration::milliseconds(age)).to_rfc3339()})
                    })
                    .collect();
                let r = http().post(&url).json(&batch).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    // a DBA backfills, deletes and compacts while the collector ingests
    let dba = {
        let url = db.url.clone();
        tokio::spawn(async move {
            let c = connect(&url).await;
            for _ in 0..10 {
                c.batch_execute(
                    "INSERT INTO logs (ts, service, level) SELECT now() - random() * interval '20 minutes', 'svc-1', 'WARN' FROM generate_series(1, 200);
                     DELETE FROM logs WHERE ctid IN (SELECT ctid FROM logs WHERE service = 'svc-2' LIMIT 20);
                     SELECT compact_rollup();",
                )
                .await
                .unwrap();
            }
        })
    };
    for _ in 0..5 {
        assert_exact(&mut c).await;
    }
    for s in senders {
        s.await.unwrap();
    }
    dba.await.unwrap();
    assert_exact(&mut c).await;
    c.batch_execute("SELECT compact_rollup()").await.unwrap();
    assert_exact(&mut c).await;
    let uncompacted: i64 =
        c.query_one("SELECT count(*) FROM log_rollup WHERE NOT compacted", &[]).await.unwrap().get(0);
    assert_eq!(uncompacted, 0);
}

#[tokio::test]
async fn late_rows_older_than_the_fine_seconds_leave_one_delta_per_minute_and_stay_exact() {
    let db = fresh_db().await;
    let mut c = db.client().await;
    c.batch_execute("UPDATE logmon_settings SET rollup_fine_retention = '1 hour'; SELECT compact_rollup();")
        .await
        .unwrap();
    // late arrivals 70..110 minutes old, where only minutes are kept: through HTTP and SQL
    let app = spawn_collector(&db.url, &[]).await;
    let batch: Vec<_> = (0..600)
        .map(|i| {
            let age = chrono::Duration::seconds(4200 + i * 4 + i % 3); // 70 min .. 110 min ago
            json!({"service": format!("svc-{}", i % 2), "level": if i % 5 == 0 { "ERROR" } else { "INFO" },
                   "latency_ms": (i * 13 % 900) as f64, "ts": (chrono::Utc::now() - age).to_rfc3339()})
        })
        .collect();
    assert_eq!(http().post(app.url("/logs")).json(&batch).send().await.unwrap().status(), 200);
    c.batch_execute(
        "INSERT INTO logs (ts, service, level) SELECT now() - interval '75 minutes' - g * interval '3 seconds', 'svc-2', 'WARN'
         FROM generate_series(1, 400) g",
    )
    .await
    .unwrap();
    let (deltas, not_minutes, service_minutes): (i64, i64, i64) = {
        let r = c
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE bucket <> date_trunc('minute', bucket)),
                        (SELECT count(DISTINCT (service, date_trunc('minute', ts))) FROM logs)
                   FROM log_rollup WHERE NOT compacted",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(not_minutes, 0, "deltas older than fine_since are whole minutes");
    assert_eq!(deltas, service_minutes, "one delta per (service, minute) of each write");
    assert_exact(&mut c).await;
    c.batch_execute("SELECT compact_rollup()").await.unwrap();
    assert_exact(&mut c).await;
}

#[tokio::test]
async fn service_stats_reports_what_was_ingested() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    let batch: Vec<_> = (0..100)
        .map(|i| json!({"service": "api", "level": if i < 10 { "ERROR" } else { "INFO" }, "latency_ms": i as f64 * 10.0}))
        .collect();
    assert_eq!(http().post(app.url("/logs")).json(&batch).send().await.unwrap().status(), 200);
    let c = db.client().await;
    let r = c
        .query_one("SELECT total, errors, error_rate, p50_ms, p95_ms FROM service_stats('5 minutes')", &[])
        .await
        .unwrap();
    let (total, errors, rate, p50, p95): (i64, i64, f64, f64, f64) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    assert_eq!((total, errors, rate), (100, 10, 0.1));
    // true p50 = 495 ms, p95 = 945 ms; histogram interpolation stays within its bucket
    assert!((400.0..=600.0).contains(&p50), "p50 {p50}");
    assert!((800.0..=1000.0).contains(&p95), "p95 {p95}");
}

#[tokio::test]
async fn the_partition_the_collector_copies_into_is_the_one_postgresql_routes_to() {
    let db = fresh_db().await;
    let c = db.client().await;
    for hours in [-150i64, -24, -1, 0, 1, 30, 70] {
        for secs in [0i64, 1, 1799, 3599] {
            let ts = chrono::DateTime::<chrono::Utc>::from_timestamp(
                (chrono::Utc::now().timestamp() / 3600 + hours) * 3600 + secs,
                0,
            )
            .unwrap();
            let holding: Option<String> = c.query_one("SELECT log_partition_holding($1)", &[&ts]).await.unwrap().get(0);
            let routed: String = c
                .query_one(
                    "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                      WHERE i.inhparent = 'logs'::regclass
                        AND $1 >= (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz
                        AND $1 <  (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz",
                    &[&ts],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(holding.as_deref(), Some(routed.as_str()), "{ts}");
        }
    }
    // an hour past the partitions made ahead has none yet
    let far = chrono::Utc::now() + chrono::Duration::days(30);
    let none: Option<String> = c.query_one("SELECT log_partition_holding($1)", &[&far]).await.unwrap().get(0);
    assert_eq!(none, None);
}

/// A role that may read the rollup but not one raw row: whatever it can compute reads no raw row.
async fn without_raw_rows(c: &Client) {
    c.batch_execute(
        "DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rollup_only') THEN CREATE ROLE rollup_only; END IF;
         END $$;
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO rollup_only;
         REVOKE SELECT ON logs FROM rollup_only;
         DO $$ DECLARE p regclass; BEGIN
            FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'logs'::regclass LOOP
                EXECUTE format('REVOKE ALL ON %s FROM rollup_only', p);
            END LOOP;
         END $$;",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn stats_and_detection_read_no_raw_rows_so_late_arrivals_cannot_slow_them() {
    let db = fresh_db().await;
    let mut c = db.client().await;
    // an hour of logs in random time order (late arrivals, backfills), through SQL and compacted
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, latency_ms)
         SELECT now() - random() * interval '1 hour', 'svc-' || (g % 3), CASE WHEN g % 9 = 0 THEN 'ERROR' ELSE 'INFO' END,
                random() * 900
         FROM generate_series(1, 20000) g;
         SELECT compact_rollup();
         INSERT INTO logs (ts, service, level) SELECT now() - random() * interval '10 minutes', 'svc-0', 'WARN'
         FROM generate_series(1, 500);",
    )
    .await
    .unwrap();
    without_raw_rows(&c).await;
    let tx = c.transaction().await.unwrap();
    tx.batch_execute("SET LOCAL ROLE rollup_only").await.unwrap();
    let denied = tx.query("SELECT count(*) FROM logs", &[]).await;
    assert!(denied.is_err(), "the role cannot read raw rows");
    drop(tx);
    // both in one transaction: the same now(), so the same window (the rows are spread over the
    // hour, and a second later a few have left the window)
    let tx = c.transaction().await.unwrap();
    let stats = "SELECT service, total FROM service_stats('15 minutes') ORDER BY service";
    let expected: Vec<(String, i64)> =
        tx.query(stats, &[]).await.unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(expected.len(), 3);
    tx.batch_execute("SET LOCAL ROLE rollup_only").await.unwrap();
    let got: Vec<(String, i64)> = tx.query(stats, &[]).await.unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, expected, "/stats's figures come from the rollup alone");
    let rules: i64 = tx.query_one("SELECT count(*) FROM evaluate_rules()", &[]).await.unwrap().get(0);
    assert!(rules >= 3 * 4, "every rule evaluated for every service without a raw row: {rules}");
    tx.query("SELECT * FROM service_timeseries('1 hour', '1 minute')", &[]).await.unwrap();
}

#[tokio::test]
async fn a_bulk_sql_write_leaves_no_pending_deltas_after_the_next_detection_tick() {
    let db = fresh_db().await;
    let mut c = db.client().await;
    // one statement over 2 hours of seconds for 3 services: one delta per (service, second) it
    // touched, thousands of them, which every window of every rule would otherwise add up
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, latency_ms)
         SELECT now() - (g % 7200) * interval '1 second' - interval '0.5 seconds', 'svc-' || (g % 3),
                CASE WHEN g % 11 = 0 THEN 'ERROR' ELSE 'INFO' END, g % 700
         FROM generate_series(1, 21600) g",
    )
    .await
    .unwrap();
    let pending = "SELECT count(*) FROM log_rollup WHERE NOT compacted";
    let before: i64 = c.query_one(pending, &[]).await.unwrap().get(0);
    assert!(before >= 5000, "the statement left {before} deltas");
    c.query("SELECT * FROM detect_incidents()", &[]).await.unwrap();
    let after: i64 = c.query_one(pending, &[]).await.unwrap().get(0);
    assert_eq!(after, 0, "the tick folded the deltas it would have read in every window");
    assert_exact(&mut c).await;

    // a few pending deltas (a collector's second) are read, not folded: folding costs more
    c.batch_execute("INSERT INTO logs (ts, service, level) SELECT now() - g * interval '1 second', 'svc-0', 'INFO' FROM generate_series(1, 10) g")
        .await
        .unwrap();
    c.query("SELECT * FROM detect_incidents()", &[]).await.unwrap();
    let few: i64 = c.query_one(pending, &[]).await.unwrap().get(0);
    assert_eq!(few, 10, "below the threshold the tick leaves compaction to its usual schedule");
    assert_exact(&mut c).await;
}

#[tokio::test]
async fn a_large_fold_leaves_the_rollup_analysed_a_collectors_second_leaves_it_to_autovacuum() {
    let db = fresh_db().await;
    let c = db.client().await;
    // autovacuum must not be the one that analyses the tables here
    c.batch_execute(
        "ALTER TABLE log_rollup SET (autovacuum_enabled = false);
         ALTER TABLE log_rollup_minute SET (autovacuum_enabled = false);",
    )
    .await
    .unwrap();
    let analysed = "SELECT count(DISTINCT tablename) FROM pg_stats
                     WHERE tablename IN ('log_rollup', 'log_rollup_minute') AND attname = 'bucket'";

    c.batch_execute("INSERT INTO logs (ts, service, level) SELECT now() - g * interval '1 second', 'svc-0', 'INFO' FROM generate_series(1, 10) g")
        .await
        .unwrap();
    c.query_one("SELECT compact_rollup()", &[]).await.unwrap();
    let after_small: i64 = c.query_one(analysed, &[]).await.unwrap().get(0);
    assert_eq!(after_small, 0, "a fold of a few rows must not run ANALYZE");

    // a bulk write by SQL: one delta per (service, second), 21,600 of them
    c.batch_execute(
        "INSERT INTO logs (ts, service, level, latency_ms)
         SELECT now() - (g % 7200) * interval '1 second' - interval '0.5 seconds', 'svc-' || (g % 3), 'INFO', g % 700
         FROM generate_series(1, 21600) g",
    )
    .await
    .unwrap();
    let merged: i64 = c.query_one("SELECT compact_rollup()", &[]).await.unwrap().get(0);
    assert!(merged >= 5000, "the fold wrote {merged} rows");
    let after_large: i64 = c.query_one(analysed, &[]).await.unwrap().get(0);
    assert_eq!(after_large, 2, "both rollup levels have statistics right after a large fold");
}
