//! The data model and the SQL API as a DBA meets them in psql.
use crate::helpers::*;

async fn fingerprint(db: &TestDb) -> String {
    let c = db.client().await;
    let row = c
        .query_one(
            "SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
                SELECT 'fn:' || p.oid::regprocedure::text || md5(pg_get_functiondef(p.oid)) AS x
                  FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'
                -- not the hourly partitions of logs and their indexes: they follow the clock
                UNION ALL SELECT 'rel:' || c.relname || ':' || c.relkind::text FROM pg_class c
                  WHERE c.relnamespace = 'public'::regnamespace AND c.relname !~ '^logs_p[0-9]'
                UNION ALL SELECT 'trg:' || tgname || tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal
                UNION ALL SELECT 'mig:' || version::text FROM refinery_schema_history
                UNION ALL SELECT 'rule:' || name || threshold::text FROM detection_rules) s",
            &[],
        )
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test]
async fn migrate_twice_changes_nothing() {
    let db = fresh_db().await;
    let before = fingerprint(&db).await;
    for _ in 0..2 {
        let out = std::process::Command::new(BIN).args(["migrate", "--database-url", &db.url]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(fingerprint(&db).await, before);
}

#[tokio::test]
async fn logs_is_partitioned_with_a_partition_covering_now_and_days_ahead() {
    let db = fresh_db().await;
    let c = db.client().await;
    let kind: i8 =
        c.query_one("SELECT relkind::text::\"char\" FROM pg_class WHERE relname = 'logs'", &[]).await.unwrap().get(0);
    assert_eq!(kind as u8, b'p');
    for offset in ["0 hours", "3 days"] {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
                  WHERE i.inhparent = 'logs'::regclass
                    AND now() + $1::text::interval >= (regexp_match(pg_get_expr(p.relpartbound, p.oid), 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz
                    AND now() + $1::text::interval <  (regexp_match(pg_get_expr(p.relpartbound, p.oid), 'TO \\(''([^'']+)''\\)'))[1]::timestamptz",
                &[&offset],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 1, "exactly one partition covers now() + {offset}");
    }
}

/// An expired partition with a row (and so a rollup row) of service `old`, and partitions to make
/// 5 days ahead; returns the expired partition's name.
async fn an_expired_partition_and_days_to_make(c: &tokio_postgres::Client) -> String {
    c.batch_execute(
        "SELECT ensure_partitions(now() - interval '30 days', now() - interval '30 days');
         INSERT INTO logs (ts, service, level) VALUES (now() - interval '30 days', 'old', 'INFO');
         UPDATE logmon_settings SET premake_days = 5;",
    )
    .await
    .unwrap();
    c.query_one("SELECT tableoid::regclass::text FROM logs WHERE service = 'old'", &[]).await.unwrap().get(0)
}

/// What one maintain_partitions() call did: (action, partition).
async fn maintain(c: &tokio_postgres::Client) -> Vec<(String, String)> {
    let rows = c.query("SELECT action, partition_name FROM maintain_partitions()", &[]).await.unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

#[tokio::test]
async fn maintain_partitions_creates_ahead_and_drops_past_retention() {
    let db = fresh_db().await;
    let c = db.client().await;
    let expired = an_expired_partition_and_days_to_make(&c).await;
    let actions = maintain(&c).await;
    assert!(actions.contains(&("dropped".into(), expired)), "{actions:?}");
    assert!(actions.iter().any(|(a, _)| a == "dropped"), "{actions:?}");
    assert!(actions.iter().filter(|(a, _)| a == "created").count() >= 2, "{actions:?}");
    let left: i64 = c.query_one("SELECT count(*) FROM log_rollup WHERE service = 'old'", &[]).await.unwrap().get(0);
    assert_eq!(left, 0, "rollup rows of a dropped partition go with it");
    assert!(maintain(&c).await.is_empty(), "a second run has nothing to do");
}

#[tokio::test]
async fn an_expired_partition_a_query_holds_is_deferred_and_the_rest_of_maintenance_goes_on() {
    let db = fresh_db().await;
    let c = db.client().await;
    let expired = an_expired_partition_and_days_to_make(&c).await;
    // a reader in the middle of a long transaction over logs: dropping a partition needs logs
    // to itself, and every COPY and search would queue behind a DROP that waited for it
    let reader = db.client().await;
    reader.batch_execute("BEGIN; SELECT count(*) FROM logs").await.unwrap();
    let actions = maintain(&c).await;
    assert!(actions.contains(&("deferred".into(), expired.clone())), "{actions:?}");
    assert!(actions.iter().filter(|(a, _)| a == "created").count() >= 2, "creation goes on: {actions:?}");
    let kept: i64 = c
        .query_one("SELECT (SELECT count(*) FROM logs WHERE service = 'old') + (SELECT count(*) FROM log_rollup WHERE service = 'old')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 2, "the deferred partition keeps its row and its rollup row");
    reader.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        maintain(&c).await,
        vec![("dropped".to_string(), expired)],
        "the next run drops it, and has nothing else to do"
    );
    let left: i64 = c.query_one("SELECT count(*) FROM log_rollup WHERE service = 'old'", &[]).await.unwrap().get(0);
    assert_eq!(left, 0, "with its rollup rows");
}

#[tokio::test]
async fn default_rules_are_seeded() {
    let db = fresh_db().await;
    let c = db.client().await;
    let rows = c
        .query("SELECT name, severity, lookback::text FROM detection_rules WHERE service IS NULL ORDER BY name", &[])
        .await
        .unwrap();
    let rules: Vec<(String, String, String)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert!(rules.contains(&("ERROR_SPIKE".into(), "HIGH".into(), "00:05:00".into())), "{rules:?}");
    assert!(rules.contains(&("LATENCY_SPIKE".into(), "MED".into(), "00:05:00".into())), "{rules:?}");
}

#[tokio::test]
async fn a_second_unresolved_incident_for_the_same_service_and_type_is_refused() {
    let db = fresh_db().await;
    let c = db.client().await;
    let insert = "INSERT INTO incidents (service, incident_type, severity, summary, status, created_at, last_seen_at,
                                         resolved_at, window_start, window_end, observed, threshold, peak)
                  VALUES ('feed', 'ERROR_SPIKE', 'HIGH', 's', $1, now(), now(),
                          CASE WHEN $1 = 'resolved' THEN now() END, now(), now(), 1, 1, 1)";
    c.execute(insert, &[&"open"]).await.unwrap();
    let err = c.execute(insert, &[&"open"]).await.unwrap_err();
    assert_eq!(err.as_db_error().unwrap().constraint(), Some("incidents_one_unresolved"));
    let err = c.execute(insert, &[&"acknowledged"]).await.unwrap_err();
    assert_eq!(err.as_db_error().unwrap().constraint(), Some("incidents_one_unresolved"));
    // resolved ones do not count
    c.execute(insert, &[&"resolved"]).await.unwrap();
    c.execute("UPDATE incidents SET status = 'resolved', resolved_at = now() WHERE status = 'open'", &[])
        .await
        .unwrap();
    c.execute(insert, &[&"open"]).await.unwrap();
}

#[tokio::test]
async fn every_table_and_function_a_dba_touches_has_a_comment() {
    let db = fresh_db().await;
    let c = db.client().await;
    let missing: Vec<String> = c
        .query(
            "SELECT c.relname::text FROM pg_class c
              WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v')
                AND NOT c.relispartition AND c.relname <> 'refinery_schema_history'
                AND obj_description(c.oid, 'pg_class') IS NULL
             UNION ALL
             SELECT p.oid::regprocedure::text FROM pg_proc p
              WHERE p.pronamespace = 'public'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(missing.is_empty(), "no COMMENT ON: {missing:?}");
}

#[tokio::test]
async fn rust_and_sql_latency_buckets_agree() {
    let db = fresh_db().await;
    let c = db.client().await;
    let bounds: Vec<f64> = c.query_one("SELECT latency_bounds()", &[]).await.unwrap().get(0);
    assert_eq!(bounds, logmon::ingest::rollup::LATENCY_BOUNDS.to_vec());
}

#[tokio::test]
async fn a_migrate_into_a_pipe_prints_plain_text_without_notices() {
    let db = fresh_db().await;
    let c = connect(&url_for(&db.url, "postgres")).await;
    let name = format!("{}_fresh", db.name);
    c.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let out = std::process::Command::new(BIN)
        .args(["migrate", "--database-url", &url_for(&db.url, &name)])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("database is up to date"), "{err}");
    assert!(!err.contains('\u{1b}'), "no ANSI colour codes when stderr is not a terminal: {err:?}");
    assert!(!err.contains("NOTICE"), "a fresh migrate is quiet: {err}");
    c.batch_execute(&format!("DROP DATABASE {name}")).await.unwrap();
}
