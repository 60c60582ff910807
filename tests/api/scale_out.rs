//! What running on Citus needs of logmon, tested on plain PostgreSQL (CI cannot run Citus; the
//! checks on a real coordinator and workers are in docs/citus.md and same_answers.rs).
use serde_json::json;

use crate::helpers::*;

/// Tables of the public schema that are not partitions (partitions follow `logs`).
async fn tables(c: &tokio_postgres::Client) -> Vec<String> {
    c.query(
        "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')
           AND NOT relispartition ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test]
async fn every_table_has_a_stated_placement_on_citus() {
    let db = fresh_db().await;
    let c = db.client().await;
    let placed: Vec<String> = c
        .query("SELECT table_name FROM table_placements() ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(placed, tables(&c).await, "a new table must say where it lives on Citus (sql/distribute_tables.sql)");
    let bad: i64 = c
        .query_one(
            "SELECT count(*) FROM table_placements()
              WHERE placement NOT IN ('distributed', 'reference', 'coordinator') OR coalesce(reason, '') = ''",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(bad, 0, "each placement is one of three, with its reason");
}

#[tokio::test]
async fn migrate_distribute_on_plain_postgresql_says_so_and_changes_nothing() {
    let db = fresh_db().await;
    let c = db.client().await;
    let before: String = c
        .query_one(
            "SELECT string_agg(relname || ':' || relkind::text, ',' ORDER BY relname) FROM pg_class
              WHERE relnamespace = 'public'::regnamespace AND NOT relispartition",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    for _ in 0..2 {
        let out = std::process::Command::new(BIN)
            .args(["--log-format", "json", "migrate", "--distribute", "--database-url", &db.url])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let log = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        let actions: Vec<String> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["fields"]["message"] == "placement")
            .map(|v| v["fields"]["action"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(actions.len(), tables(&c).await.len(), "one line per table: {log}");
        assert!(
            actions.iter().all(|a| a == "none: the citus extension is not installed"),
            "nothing is done without Citus: {actions:?}"
        );
    }
    let after: String = c
        .query_one(
            "SELECT string_agg(relname || ':' || relkind::text, ',' ORDER BY relname) FROM pg_class
              WHERE relnamespace = 'public'::regnamespace AND NOT relispartition",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after);
    // the writers keep plans made once per connection (only Citus needs them made per call)
    let modes: Vec<String> = c
        .query(
            "SELECT proname || ': ' || array_to_string(proconfig, ', ') FROM pg_proc
              WHERE proname IN ('append_rollup', 'record_patterns') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        modes,
        ["append_rollup: plan_cache_mode=force_generic_plan", "record_patterns: plan_cache_mode=force_generic_plan"]
    );
}

#[tokio::test]
async fn no_function_takes_its_search_path_from_the_session_and_security_definers_pin_theirs() {
    // Citus propagates functions to the workers and refuses `SET ... FROM CURRENT` for them.
    for entry in std::fs::read_dir(repo().join("sql")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap().to_lowercase();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("--").next().unwrap_or_default();
            assert!(!code.contains("from current"), "{}:{} uses SET ... FROM CURRENT", path.display(), n + 1);
        }
    }
    let db = fresh_db().await;
    let c = db.client().await;
    let unpinned: Vec<String> = c
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p
              WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
                AND NOT coalesce(p.proconfig @> ARRAY['search_path=public, pg_temp'], false)",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(unpinned.is_empty(), "SECURITY DEFINER functions without search_path = public, pg_temp: {unpinned:?}");
}

#[tokio::test]
async fn the_collector_writes_where_no_trigger_fires_and_each_row_is_counted_once() {
    // On Citus a session setting does not reach the shards, so the collector must not rely on one
    // to keep the logs triggers from counting its rows a second time: it COPYs into the partitions,
    // which carry no trigger, and writes its own deltas.
    let db = fresh_db().await;
    let c = db.client().await;
    let on_partitions: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_trigger t JOIN pg_inherits i ON i.inhrelid = t.tgrelid
              WHERE i.inhparent = 'logs'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(on_partitions, 0, "partitions of logs carry no trigger");
    let on_logs: i64 = c
        .query_one("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'logs'::regclass AND NOT tgisinternal", &[])
        .await
        .unwrap()
        .get(0);
    assert!(on_logs >= 3, "logs itself keeps its statement triggers for SQL writers");

    let app = spawn_collector(&db.url, &[]).await;
    let batch: Vec<_> = (0..300)
        .map(|i| {
            json!({"service": format!("svc-{}", i % 3), "level": if i % 7 == 0 { "ERROR" } else { "INFO" },
                        "message": format!("request {i} done"), "latency_ms": i})
        })
        .collect();
    assert_eq!(http().post(app.url("/logs")).json(&batch).send().await.unwrap().status(), 200);
    c.batch_execute("INSERT INTO logs (ts, service, level, message) SELECT now(), 'svc-0', 'INFO', 'sql ' || g FROM generate_series(1, 50) g")
        .await
        .unwrap();
    let r = c
        .query_one(
            "SELECT (SELECT count(*) FROM logs),
                    ((SELECT coalesce(sum(total), 0) FROM log_rollup_minute)
                     + (SELECT coalesce(sum(total), 0) FROM log_rollup WHERE NOT compacted))::bigint,
                    (SELECT coalesce(sum(count), 0) FROM log_pattern_counts)::bigint",
            &[],
        )
        .await
        .unwrap();
    let (raw, rollup, patterns): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
    assert_eq!(raw, 350);
    assert_eq!((rollup, patterns), (350, 350), "the rollup and pattern counts count each row once");
}
