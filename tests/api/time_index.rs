//! The time index after a burst: block ranges that autosummarize dropped (PostgreSQL queues at
//! most 256 requests for the whole cluster) match every search slice until something summarizes
//! them. summarize_time_index(), called by the detector's tick, does; these tests drop the
//! summaries by hand, as a full queue would, and look at how many heap pages a narrow slice reads.
use std::time::Duration;

use serde_json::Value;
use tokio_postgres::Client;

use crate::helpers::*;

/// Heap pages per block range of logs_ts_brin (migrations/V15__coarser_time_index.sql).
const PAGES_PER_RANGE: i64 = 64;

struct Burst {
    partition: String,
    index: String,
    /// The middle of the burst's time span, as text PostgreSQL reads back exactly.
    middle: String,
}

/// 60,000 time-ordered rows up to `at` (an SQL expression) in its hour's partition (about 14 block
/// ranges), with the partition's autovacuum off (a VACUUM would summarize them meanwhile) and
/// every summary dropped.
async fn burst_without_summaries(c: &Client, at: &str) -> Burst {
    let row = c
        .query_one(
            &format!(
                "SELECT log_partition_holding(a), greatest(date_trunc('hour', a AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                                                           a - interval '20 minutes'), a
                 FROM (SELECT {at} AS a) x"
            ),
            &[],
        )
        .await
        .unwrap();
    let (partition, lo, hi): (String, chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        (row.get(0), row.get(1), row.get(2));
    c.batch_execute(&format!("ALTER TABLE {partition} SET (autovacuum_enabled = off)")).await.unwrap();
    c.execute(
        "INSERT INTO logs (ts, service, level, message, latency_ms, attrs)
         SELECT $1::timestamptz + ($2::timestamptz - $1::timestamptz) * (g / 60000.0), 'svc-' || (g % 20), 'INFO',
                'request ' || g || ' handled for customer ' || (g % 977), g % 300,
                jsonb_build_object('host', 'node-' || (g % 8), 'path', '/api/v1/items/' || g)
         FROM generate_series(1, 60000) g",
        &[&lo, &hi],
    )
    .await
    .unwrap();
    let index: String = c
        .query_one(
            "SELECT i.inhrelid::regclass::text FROM pg_inherits i JOIN pg_index x ON x.indexrelid = i.inhrelid
             WHERE i.inhparent = 'logs_ts_brin'::regclass AND x.indrelid = $1::text::regclass",
            &[&partition],
        )
        .await
        .unwrap()
        .get(0);
    c.execute(
        "SELECT count(brin_desummarize_range($1::text::regclass, b * $2))
         FROM generate_series(0, pg_relation_size($3::text::regclass) / 8192 / $2) b",
        &[&index, &PAGES_PER_RANGE, &partition],
    )
    .await
    .unwrap();
    let middle: String = c
        .query_one("SELECT ($1::timestamptz + ($2::timestamptz - $1::timestamptz) / 2)::text", &[&lo, &hi])
        .await
        .unwrap()
        .get(0);
    Burst { partition, index, middle }
}

async fn heap_pages(c: &Client, partition: &str) -> i64 {
    c.query_one("SELECT pg_relation_size($1::text::regclass) / 8192", &[&partition]).await.unwrap().get(0)
}

/// How far summarize_time_index() has checked a partition (0: not at all).
async fn checked_below(c: &Client, partition: &str) -> i64 {
    c.query_opt("SELECT checked_below FROM time_index_progress WHERE partition_name = $1", &[&partition])
        .await
        .unwrap()
        .map_or(0, |r| r.get(0))
}

/// Asserts that `n`, what a call of summarize_time_index() returned, is every block range of the
/// burst's partition, its last, partial one too (an hour that is over), and that its progress
/// says so; then that the next call finds nothing left.
async fn assert_summarized_whole(c: &Client, b: &Burst, n: i64) {
    let pages = heap_pages(c, &b.partition).await;
    let ranges = (pages + PAGES_PER_RANGE - 1) / PAGES_PER_RANGE;
    assert_eq!(n, ranges, "an hour that is over is summarized whole, its last, partial range too ({pages} pages)");
    assert_eq!(checked_below(c, &b.partition).await, ranges * PAGES_PER_RANGE);
    let again: i64 = c.query_one("SELECT summarize_time_index()", &[]).await.unwrap().get(0);
    assert_eq!(again, 0, "and checked once");
}

/// Heap pages a 50 ms slice around the burst's middle reads through the time index (a BRIN
/// bitmap holds whole pages: all of them "lossy").
async fn pages_a_slice_reads(c: &Client, b: &Burst) -> i64 {
    c.batch_execute("SET enable_seqscan = off").await.unwrap();
    let plan: Value = c
        .query_one(
            &format!(
                "EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM {} WHERE ts >= '{}'::timestamptz
                 AND ts < '{}'::timestamptz + interval '50 milliseconds'",
                b.partition, b.middle, b.middle
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    c.batch_execute("RESET enable_seqscan").await.unwrap();
    fn find(node: &Value) -> Option<i64> {
        if node["Node Type"] == "Bitmap Heap Scan" {
            return node["Lossy Heap Blocks"].as_i64();
        }
        node["Plans"].as_array()?.iter().find_map(find)
    }
    find(&plan[0]["Plan"]).unwrap_or_else(|| panic!("a bitmap scan of the time index: {plan}"))
}

#[tokio::test]
async fn a_running_detector_summarizes_a_burst_so_a_narrow_slice_reads_only_its_block_ranges() {
    let db = fresh_db().await;
    let c = db.client().await;
    let b = burst_without_summaries(&c, "now()").await;
    let pages = heap_pages(&c, &b.partition).await;
    assert!(pages >= 10 * PAGES_PER_RANGE, "the burst fills at least 10 block ranges ({pages} pages)");
    let before = pages_a_slice_reads(&c, &b).await;
    assert!(before >= pages - PAGES_PER_RANGE, "without summaries a slice reads every page: {before} of {pages}");

    let _detector = spawn(&["detector", "--database-url", &db.url, "--interval", "0.2"]);
    let checked_up_to = (pages / PAGES_PER_RANGE - 2) * PAGES_PER_RANGE;
    let mut progress = 0;
    for _ in 0..300 {
        progress = checked_below(&c, &b.partition).await;
        if progress >= checked_up_to {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // (all of them, should the hour have ended meanwhile)
    assert!(progress >= checked_up_to, "the detector checked every full range but the last two: {progress}");

    let after = pages_a_slice_reads(&c, &b).await;
    // the slice's range (or two, at a boundary) and the three newest ranges left unsummarized
    assert!(after <= 5 * PAGES_PER_RANGE, "a summarized slice reads {after} pages (was {before} of {pages})");
}

#[tokio::test]
async fn summarizing_checks_each_range_once_and_leaves_the_ranges_still_filling() {
    let db = fresh_db().await;
    let c = db.client().await;
    let b = burst_without_summaries(&c, "now()").await;
    let full_ranges = heap_pages(&c, &b.partition).await / PAGES_PER_RANGE;

    // a VACUUM (or anyone) holding the partition: skipped after lock_timeout, no error, no progress
    let mut holder = db.client().await;
    let tx = holder.transaction().await.unwrap();
    tx.batch_execute(&format!("LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE", b.partition)).await.unwrap();
    let held: i64 = c.query_one("SELECT summarize_time_index()", &[]).await.unwrap().get(0);
    assert_eq!(held, 0);
    let rows: i64 = c.query_one("SELECT count(*) FROM time_index_progress", &[]).await.unwrap().get(0);
    assert_eq!(rows, 0, "no progress recorded for a partition it could not lock");
    tx.rollback().await.unwrap();

    let first: i64 =
        c.query_one("SELECT summarize_time_index(budget => interval '1 minute')", &[]).await.unwrap().get(0);
    assert_eq!(first, full_ranges - 2, "every full range but the last two");
    let again: i64 = c.query_one("SELECT summarize_time_index()", &[]).await.unwrap().get(0);
    assert_eq!(again, 0, "nothing new to summarize");

    let checked = checked_below(&c, &b.partition).await;
    assert_eq!(checked, (full_ranges - 2) * PAGES_PER_RANGE);
    let summarized = |block: i64| {
        let c = &c;
        let index = b.index.clone();
        async move {
            // brin_summarize_range() says whether the range had no summary (1) or had one (0)
            let n: i32 = c
                .query_one("SELECT brin_summarize_range($1::text::regclass, $2)", &[&index, &block])
                .await
                .unwrap()
                .get(0);
            n == 0
        }
    };
    assert!(summarized(checked - PAGES_PER_RANGE).await, "the last range checked has its summary");
    assert!(!summarized(checked).await, "the range after it was left to fill");
}

#[tokio::test]
async fn an_hour_that_is_over_is_summarized_whole_and_dropping_it_forgets_its_progress() {
    let db = fresh_db().await;
    let c = db.client().await;
    let b = burst_without_summaries(&c, "now() - interval '2 days'").await;
    let n: i64 = c
        .query_one(
            "SELECT summarize_time_index(now() - interval '2 days', now() - interval '2 days', interval '1 minute')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_summarized_whole(&c, &b, n).await;
    c.batch_execute("UPDATE logmon_settings SET retention = interval '1 day'").await.unwrap();
    let dropped: Vec<String> = c
        .query("SELECT partition_name FROM maintain_partitions() WHERE action = 'dropped'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(dropped.contains(&b.partition), "{} is past retention: dropped {dropped:?}", b.partition);
    let left: i64 = c.query_one("SELECT count(*) FROM time_index_progress", &[]).await.unwrap().get(0);
    assert_eq!(left, 0, "its progress went with it");
}

#[tokio::test]
async fn late_rows_that_grow_an_hour_checked_before_get_their_new_ranges_summarized() {
    let db = fresh_db().await;
    let c = db.client().await;
    let b = burst_without_summaries(&c, "now() - interval '3 hours'").await;
    // checked whole while it was recent (as the detector's ticks do), then out of the window
    c.execute(
        "SELECT summarize_time_index(now() - interval '3 hours', now() - interval '3 hours', interval '1 minute')",
        &[],
    )
    .await
    .unwrap();
    let before = checked_below(&c, &b.partition).await;
    // hours later, a shipper's backlog: 30,000 late rows of that hour, on new pages whose
    // summaries a full queue dropped
    c.execute(
        "INSERT INTO logs (ts, service, level, message, latency_ms)
         SELECT $1::text::timestamptz, 'svc-' || (g % 20), 'INFO', 'late request ' || g || ' handled for customer ' || (g % 977), g % 300
         FROM generate_series(1, 30000) g",
        &[&b.middle],
    )
    .await
    .unwrap();
    let pages = heap_pages(&c, &b.partition).await;
    c.execute(
        "SELECT count(brin_desummarize_range($1::text::regclass, blk)) FROM generate_series($2::bigint, $3::bigint, $4::bigint) blk",
        &[&b.index, &before, &pages, &PAGES_PER_RANGE],
    )
    .await
    .unwrap();
    let new_ranges = (pages + PAGES_PER_RANGE - 1) / PAGES_PER_RANGE - before / PAGES_PER_RANGE;
    assert!(new_ranges >= 3, "the late rows made new block ranges: {new_ranges}");

    // the detector's call, whose window is the last hour
    let n: i64 = c.query_one("SELECT summarize_time_index()", &[]).await.unwrap().get(0);
    assert_eq!(n, new_ranges, "the new ranges of an hour checked before are summarized");
    let checked = checked_below(&c, &b.partition).await;
    assert_eq!(checked, (pages + PAGES_PER_RANGE - 1) / PAGES_PER_RANGE * PAGES_PER_RANGE);
    let again: i64 = c.query_one("SELECT summarize_time_index()", &[]).await.unwrap().get(0);
    assert_eq!(again, 0, "and checked once");
}

#[tokio::test]
async fn an_hour_it_never_checked_is_summarized_whole_by_the_detectors_call() {
    let db = fresh_db().await;
    let c = db.client().await;
    // three hours ago, written while no detector ran (or backfilled by SQL): never in a window
    // summarize_time_index() looked at, and its summaries dropped as by a full queue
    let b = burst_without_summaries(&c, "now() - interval '3 hours'").await;
    assert_eq!(checked_below(&c, &b.partition).await, 0);

    // the detector's call, whose window is the last hour
    let n: i64 = c.query_one("SELECT summarize_time_index(budget => interval '1 minute')", &[]).await.unwrap().get(0);
    assert_summarized_whole(&c, &b, n).await;
    let read = pages_a_slice_reads(&c, &b).await;
    assert!(read <= 2 * PAGES_PER_RANGE, "a slice of it reads its own range(s): {read} pages");
}
