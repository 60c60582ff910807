//! Group commit: requests from many connections share transactions, yet each answer counts only
//! its own rows, every acknowledged row is stored once with its rollup and pattern deltas, and a
//! request the database refuses fails alone.
use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use tokio_postgres::Client;

use crate::helpers::*;
use crate::pattern_counts::disagreements as pattern_disagreements;

/// `n` rows tagged `tag` (the message), some an hour back when `old` (another partition).
fn rows(tag: &str, n: usize, old: bool) -> Value {
    let now = Utc::now();
    Value::Array(
        (0..n)
            .map(|i| {
                let ts = if old && i % 2 == 1 { now - chrono::Duration::minutes(65) } else { now };
                json!({"service": format!("svc-{}", i % 3), "level": if i % 5 == 0 { "ERROR" } else { "INFO" },
                       "message": tag, "latency_ms": i as f64 * 3.5, "ts": ts.to_rfc3339(), "host": "h1"})
            })
            .collect(),
    )
}

/// The transaction ids that wrote the rows tagged `tag`.
async fn writers_of(c: &Client, tag: &str) -> HashSet<String> {
    c.query("SELECT DISTINCT xmin::text FROM logs WHERE message = $1", &[&tag])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn requests_from_many_connections_share_transactions_and_each_answer_counts_its_own_rows() {
    let db = fresh_db().await;
    let app = spawn_collector(&db.url, &[]).await;
    // 16 senders, each sending its next request as soon as the last is answered (as shippers do),
    // each request a different number of rows, some with rows in the previous hour's partition
    let mut tasks = Vec::new();
    for sender in 0..16 {
        let url = app.url("/logs");
        tasks.push(tokio::spawn(async move {
            let client = http();
            let mut sent = Vec::new();
            for round in 0..12 {
                let tag = format!("s{sender}-r{round}");
                let n = 1 + (sender * 7 + round * 3) % 40;
                let r = client.post(&url).json(&rows(&tag, n, (sender + round) % 4 == 0)).send().await.unwrap();
                assert_eq!(r.status(), 200, "{tag}");
                let answer: Value = r.json().await.unwrap();
                assert_eq!(answer, json!({"ingested": n}), "{tag}: the answer counts this request's rows only");
                sent.push((tag, n));
            }
            sent
        }));
    }
    let mut sent = Vec::new();
    for t in tasks {
        sent.extend(t.await.unwrap());
    }
    let c = db.client().await;
    let stored: std::collections::HashMap<String, i64> = c
        .query("SELECT message, count(*) FROM logs GROUP BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (tag, n) in &sent {
        assert_eq!(stored.get(tag).copied(), Some(*n as i64), "{tag} stored once, every row");
    }
    assert_eq!(stored.len(), sent.len());
    // each request in one transaction, and fewer transactions than requests
    let mut transactions = HashSet::new();
    for (tag, _) in &sent {
        let w = writers_of(&c, tag).await;
        assert_eq!(w.len(), 1, "{tag} was written by one transaction");
        transactions.extend(w);
    }
    assert!(transactions.len() < sent.len(), "{} transactions for {} requests", transactions.len(), sent.len());
    assert_eq!(rollup_disagreements(&c).await, 0, "the rollup equals the raw rows (deltas pending)");
    assert_eq!(pattern_disagreements(&c).await, (0, 0), "so do both levels of pattern counts");
    c.execute("SELECT compact_rollup(), compact_patterns()", &[]).await.unwrap();
    assert_eq!(rollup_disagreements(&c).await, 0, "and after compaction");
    assert_eq!(pattern_disagreements(&c).await, (0, 0));
    // the check sees one histogram count off
    c.batch_execute(
        "BEGIN; UPDATE log_rollup_minute SET h3 = h3 + 1 WHERE ctid = (SELECT min(ctid) FROM log_rollup_minute)",
    )
    .await
    .unwrap();
    assert_eq!(rollup_disagreements(&c).await, 1);
    c.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn the_senders_a_commit_answered_share_the_next_transaction() {
    let db = fresh_db().await;
    // one writer; a generous follow-up window, so that the test does not depend on speed
    let app = spawn_collector(&db.url, &["--writers", "1", "--linger-ms", "1000", "--follow-up-ms", "10000"]).await;
    let post = |tag: &'static str| {
        let url = app.url("/logs");
        async move { http().post(url).json(&rows(tag, 3, false)).send().await.unwrap().status().as_u16() }
    };
    // two senders answered by one commit (the linger gathers them)...
    let (a, b) = tokio::join!(post("first-a"), post("first-b"));
    assert_eq!((a, b), (200, 200));
    let c = db.client().await;
    assert_eq!(writers_of(&c, "first-a").await, writers_of(&c, "first-b").await);
    // ...so the next small batch waits for two requests, not only the first to come back
    let second_a = tokio::spawn(post("second-a"));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!second_a.is_finished(), "the first request back waits for the other sender");
    assert_eq!(post("second-b").await, 200);
    assert_eq!(second_a.await.unwrap(), 200);
    let (wa, wb) = (writers_of(&c, "second-a").await, writers_of(&c, "second-b").await);
    assert_eq!(wa.len(), 1);
    assert_eq!(wa, wb, "both senders' rows committed in one transaction");
}

#[tokio::test]
async fn rows_the_database_refuses_mid_copy_fail_only_their_request() {
    let db = fresh_db().await;
    let c = db.client().await;
    // a rule the validator does not know: the COPY itself fails on a "poison" row
    c.batch_execute("ALTER TABLE logs ADD CONSTRAINT no_poison CHECK (service <> 'poison')").await.unwrap();
    // one writer that gathers for a while: the ten requests share a transaction, which fails
    let app = spawn_collector(&db.url, &["--writers", "1", "--linger-ms", "500"]).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let url = app.url("/logs");
        tasks.push(tokio::spawn(async move {
            let tag = format!("req-{i}");
            let mut body = rows(&tag, 4, i % 3 == 0);
            if i == 6 {
                body.as_array_mut().unwrap()[2]["service"] = json!("poison");
            }
            let r = http().post(url).json(&body).send().await.unwrap();
            (i, r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    for t in tasks {
        let (i, status, body) = t.await.unwrap();
        let tag = format!("req-{i}");
        let stored: i64 = c.query_one("SELECT count(*) FROM logs WHERE message = $1", &[&tag]).await.unwrap().get(0);
        if i == 6 {
            assert_eq!(status, 400, "{body}");
            assert!(body["error"].as_str().unwrap().contains("no_poison"), "the answer says why: {body}");
            assert_eq!(stored, 0, "none of the refused request's rows");
        } else {
            assert_eq!((status, stored), (200, 4), "{tag}: {body}");
        }
    }
    c.execute("SELECT compact_rollup(), compact_patterns()", &[]).await.unwrap();
    assert_eq!(rollup_disagreements(&c).await, 0, "no rollup delta of the refused rows, none twice");
    assert_eq!(pattern_disagreements(&c).await, (0, 0), "nor pattern count");
}
