//! The same answers from one PostgreSQL and from a Citus cluster. One scenario writes a fixed data
//! set through every write path (the collector's JSON and OTLP endpoints; SQL INSERT, COPY,
//! UPDATE and DELETE through `logs`) and asks every read and detection path (windows, rules,
//! a detection walk that opens and resolves incidents, replays of the rules with backtest_rules(),
//! replay_new_patterns() and POST /rules/backtest, patterns, search with its cursors, an
//! incident's lines and context, time series, the HTTP reads). Times are relative to the
//! scenario's anchor, so two runs, on two databases, at two moments, give the same document.
//!
//! On the CI's PostgreSQL it runs on a fresh database and checks the answers against the raw
//! rows. Pointed at any other empty, migrated database (a Citus coordinator after
//! `logmon migrate --distribute`), the ignored test writes the document to a file to compare:
//!
//! ```sh
//! LOGMON_COMPARE_URL=postgres://...@coordinator/logsdb LOGMON_COMPARE_OUT=citus.json \
//!   cargo test --test api same_answers::answers_of_the_database_at -- --ignored --nocapture
//! LOGMON_COMPARE_URL=postgres://...@single-node/logsdb LOGMON_COMPARE_OUT=one-node.json \
//!   cargo test --test api same_answers::answers_of_the_database_at -- --ignored --nocapture
//! diff one-node.json citus.json && echo same answers
//! ```
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Duration, DurationRound, Utc};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use tokio_postgres::Client;

use crate::helpers::*;

const SERVICES: [&str; 6] = ["api", "auth-service", "billing", "db-service", "feed-service", "search"];
/// Seconds of collector traffic before the anchor.
const SPAN: i64 = 960;
const PER_SECOND: i64 = 8;

/// The scenario's clock: every time it writes or asks about is `anchor + seconds`.
#[derive(Clone, Copy)]
struct Clock {
    anchor: DateTime<Utc>,
}

impl Clock {
    fn now() -> Clock {
        // a whole minute, a minute ago: the data ends before the run starts
        let anchor = Utc::now().duration_trunc(Duration::minutes(1)).unwrap() - Duration::minutes(1);
        Clock { anchor }
    }
    fn at(&self, seconds: f64) -> DateTime<Utc> {
        self.anchor + Duration::microseconds((seconds * 1e6).round() as i64)
    }
}

/// One collector row, all of it a function of (second, index, service): the same rows every run.
fn collector_row(c: Clock, s: i64, i: i64, k: usize) -> Value {
    let service = SERVICES[k];
    let n = s * PER_SECOND + i;
    let t = -(SPAN as f64) + s as f64 + i as f64 * 0.117 + k as f64 * 0.013;
    let minute = s / 60;
    let burst = service == "feed-service" && (6..9).contains(&minute);
    let slow = service == "db-service" && (11..13).contains(&minute);
    // a message search has never logged, at ERROR, in its 13th minute: a new error pattern
    let quota = service == "search" && minute == 12 && n % 60 == 11;
    let error = if burst { n % 2 == 0 } else { n % 50 == 7 };
    let latency = (20 + (n * 37) % 200) * if slow { 10 } else { 1 };
    let (level, status, message) = if quota {
        ("ERROR", 507, format!("disk quota exceeded on volume v{}", n % 5))
    } else if error {
        if n % 3 == 0 {
            ("ERROR", 503, format!("connection to db-{} refused", n % 4))
        } else {
            ("ERROR", 500, format!("upstream timeout after {latency} ms"))
        }
    } else if n % 13 == 0 {
        ("WARN", 200, format!("cache miss for key k{}", n % 97))
    } else if n % 5 == 0 {
        ("INFO", 200, format!("user u-{} logged in", n % 31))
    } else {
        ("INFO", 200, format!("GET /items/{} 200 in {latency} ms", n % 1000))
    };
    json!({
        "ts": c.at(t).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "service": service, "level": level, "message": message, "latency_ms": latency, "status_code": status,
        "region": if n % 3 == 0 { "eu" } else { "us" }, "user": format!("u-{}", n % 31),
    })
}

async fn post(url: &str, body: &Value) {
    let r = http().post(url).json(body).send().await.unwrap();
    assert!(r.status().is_success(), "POST {url}: {} {}", r.status(), r.text().await.unwrap());
}

/// Writes the data set through every write path.
async fn write(c: Clock, app: &Proc, db: &Client) {
    // the collector, JSON: 16 minutes of 6 services, 8 rows a second each, in requests of 480 rows
    let mut batch = Vec::new();
    for s in 0..SPAN {
        for i in 0..PER_SECOND {
            for k in 0..SERVICES.len() {
                batch.push(collector_row(c, s, i, k));
            }
        }
        if batch.len() >= 480 {
            post(&app.url("/logs"), &Value::Array(std::mem::take(&mut batch))).await;
        }
    }
    if !batch.is_empty() {
        post(&app.url("/logs"), &Value::Array(batch)).await;
    }
    // the collector, OTLP/JSON: 300 records of checkout
    let records: Vec<Value> = (0..300)
        .map(|j| {
            let t = c.at(-(SPAN as f64) + j as f64 * 3.1);
            let error = j % 3 == 0;
            json!({"timeUnixNano": t.timestamp_nanos_opt().unwrap().to_string(),
                   "severityNumber": if error { 17 } else { 9 },
                   "body": {"stringValue": if error { format!("payment {} declined by bank", j % 7) } else { format!("order {j} paid") }},
                   "attributes": [{"key": "http.response.status_code", "value": {"intValue": if error { "502" } else { "200" }}},
                                  {"key": "latency_ms", "value": {"doubleValue": (j * 7 % 900) as f64}}]})
        })
        .collect();
    post(
        &app.url("/v1/logs"),
        &json!({"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
                                  "scopeLogs": [{"logRecords": records}]}]}),
    )
    .await;

    // compaction between the writers: reads meet both folded and pending deltas
    db.batch_execute("SELECT compact_rollup(), compact_patterns()").await.unwrap();

    // SQL writers through logs: INSERT ... SELECT, INSERT of 40 lines of one instant (40 services),
    // COPY, UPDATE (level, latency), DELETE
    db.execute(
        "INSERT INTO logs (ts, service, level, message, latency_ms, status_code)
         SELECT $1::timestamptz + g * interval '200 milliseconds', 'batch-job', CASE WHEN g % 10 = 0 THEN 'ERROR' ELSE 'INFO' END,
                'processed chunk ' || g, g % 300, 200
         FROM generate_series(0, 599) g",
        &[&c.at(-840.0)],
    )
    .await
    .unwrap();
    db.execute(
        "INSERT INTO logs (ts, service, level, message)
         SELECT $1, 'tie-' || lpad(g::text, 2, '0'), 'INFO', 'same instant ' || g FROM generate_series(1, 40) g",
        &[&c.at(-660.876544)],
    )
    .await
    .unwrap();
    let mut copy = String::new();
    for j in 0..500 {
        copy.push_str(&format!(
            "{}\timporter\t{}\timported record {}\t{}\n",
            c.at(-(SPAN as f64) + 30.0 + j as f64 * 1.7).to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            if j % 25 == 0 { "FATAL" } else { "DEBUG" },
            j,
            j % 50
        ));
    }
    let sink = db.copy_in("COPY logs (ts, service, level, message, latency_ms) FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    use futures_util::SinkExt;
    sink.send(bytes::Bytes::from(copy)).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 500);
    db.execute(
        "UPDATE logs SET level = 'ERROR' WHERE service = 'billing' AND ts >= $1 AND ts < $2",
        &[&c.at(-780.0), &c.at(-750.0)],
    )
    .await
    .unwrap();
    db.execute(
        "UPDATE logs SET latency_ms = latency_ms * 2 + 1 WHERE service = 'search' AND ts >= $1 AND ts < $2",
        &[&c.at(-500.0), &c.at(-480.0)],
    )
    .await
    .unwrap();
    db.execute("DELETE FROM logs WHERE service = 'api' AND ts >= $1 AND ts < $2", &[&c.at(-900.0), &c.at(-880.0)])
        .await
        .unwrap();
}

/// Every service's rollup and pattern counts equal the raw rows (total, errors, latencies,
/// histogram, lines per pattern), and so does every window, compacted or not.
async fn assert_rollup_is_raw(c: Clock, db: &Client, when: &str) {
    let rollup = "SELECT service, total, errors, latency_count, latency_sum,
                         ARRAY[h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15] AS h
                  FROM log_rollup_minute
                  UNION ALL
                  SELECT service, total, errors, latency_count, latency_sum,
                         ARRAY[h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13, h14, h15]
                  FROM log_rollup WHERE NOT compacted";
    let diff: i64 = db
        .query_one(
            &format!(
                "WITH raw AS (SELECT service, count(*) AS total, count(*) FILTER (WHERE level IN ('ERROR', 'FATAL')) AS errors,
                                     count(latency_ms) AS lc, coalesce(sum(latency_ms), 0) AS ls
                              FROM logs GROUP BY service),
                      ru AS (SELECT service, sum(total) AS total, sum(errors) AS errors, sum(latency_count) AS lc,
                                    sum(latency_sum) AS ls
                             FROM ({rollup}) x GROUP BY service HAVING sum(total) <> 0)
                 SELECT count(*) FROM raw FULL JOIN ru USING (service)
                 WHERE raw.total IS DISTINCT FROM ru.total OR raw.errors IS DISTINCT FROM ru.errors
                    OR raw.lc IS DISTINCT FROM ru.lc OR raw.ls IS DISTINCT FROM ru.ls"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(diff, 0, "{when}: the rollup differs from the raw rows in {diff} service(s)");
    let diff: i64 = db
        .query_one(
            &format!(
                "WITH raw AS (SELECT service, width_bucket(latency_ms, latency_bounds()) AS b, count(*) AS n
                              FROM logs WHERE latency_ms IS NOT NULL GROUP BY 1, 2),
                      ru AS (SELECT x.service, u.b - 1 AS b, sum(u.n) AS n
                             FROM ({rollup}) x, unnest(x.h) WITH ORDINALITY AS u(n, b)
                             GROUP BY 1, 2 HAVING sum(u.n) <> 0)
                 SELECT count(*) FROM raw FULL JOIN ru USING (service, b) WHERE raw.n IS DISTINCT FROM ru.n"
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(diff, 0, "{when}: the latency histograms differ from the raw rows in {diff} (service, bucket)");
    let (minutes, tens) = crate::pattern_counts::disagreements(db).await;
    assert_eq!(
        minutes, 0,
        "{when}: pattern counts differ from the raw rows in {minutes} (service, pattern, level, minute)"
    );
    assert_eq!(
        tens, 0,
        "{when}: 10-minute pattern counts (and pending deltas) differ from the raw rows in {tens} rows"
    );
    for (lo, hi) in windows() {
        let diff: i64 = db
            .query_one(
                "WITH w AS (SELECT * FROM window_bounds($1::timestamptz, coalesce($2::timestamptz, 'infinity'))),
                      a AS (SELECT service, total, errors, latency_count, latency_sum
                            FROM window_stats($1::timestamptz, coalesce($2::timestamptz, 'infinity'))),
                      b AS (SELECT service, count(*) AS total, count(*) FILTER (WHERE level IN ('ERROR', 'FATAL')) AS errors,
                                   count(latency_ms) AS latency_count, coalesce(sum(latency_ms), 0) AS latency_sum
                            FROM logs, w WHERE ts >= w.lo_b AND ts < w.hi_b GROUP BY service)
                 SELECT count(*) FROM a FULL JOIN b USING (service)
                 WHERE a.total IS DISTINCT FROM b.total OR a.errors IS DISTINCT FROM b.errors
                    OR a.latency_count IS DISTINCT FROM b.latency_count OR a.latency_sum IS DISTINCT FROM b.latency_sum",
                &[&c.at(lo), &hi.map(|h| c.at(h))],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(diff, 0, "{when}: window ({lo}, {hi:?}) differs from the raw rows");
    }
}

fn windows() -> Vec<(f64, Option<f64>)> {
    vec![(-960.0, Some(0.0)), (-600.5, Some(-420.25)), (-300.0, Some(0.0)), (-61.3, Some(-1.7)), (-2000.0, None)]
}

/// One query's rows as JSON (the query returns one jsonb column per row).
async fn rows(db: &Client, sql: &str, params: &[&(dyn postgres_types::ToSql + Sync)]) -> Value {
    Value::Array(
        db.query(sql, params).await.unwrap_or_else(|e| panic!("{sql}: {e:?}")).iter().map(|r| r.get(0)).collect(),
    )
}

/// A search's lines, page after page (its cursors, which name shards, are not part of the answer).
async fn search_all(db: &Client, args: &str, params: &[&(dyn postgres_types::ToSql + Sync)], page: i32) -> Vec<Value> {
    let mut lines = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let sql = format!(
            "SELECT jsonb_build_object('t', extract(epoch FROM ts - $1), 'service', service, 'level', level,
                                       'message', message, 'latency_ms', latency_ms, 'status_code', status_code,
                                       'pattern', pattern), cursor
             FROM search_logs({args}, lim => $2, after => $3)"
        );
        let mut p: Vec<&(dyn postgres_types::ToSql + Sync)> = vec![params[0], &page, &after];
        p.extend_from_slice(&params[1..]);
        let got = db.query(&sql, &p).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        let Some(last) = got.last() else { break };
        after = Some(last.get(1));
        for r in &got {
            let line: Value = r.get(0);
            // a budget marker carries no line, only where to continue
            if !line["level"].is_null() {
                lines.push(line);
            }
        }
        assert!(lines.len() < 200_000, "search {args} does not end");
    }
    lines
}

/// Long lists enter the document as their length, a digest and their first lines.
fn summary(lines: &[Value]) -> Value {
    let mut h = Md5::new();
    for l in lines {
        h.update(l.to_string().as_bytes());
        h.update(b"\n");
    }
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    json!({"lines": lines.len(), "md5": digest, "first": lines.iter().take(5).collect::<Vec<_>>()})
}

/// What-if rules for the replays: an escalation (HIGH, then CRITICAL at more errors), a per-service
/// override with a pending_for, shorter baselines, and a new_pattern rule that learns a service in
/// 5 minutes, as the one scenario() adds to the stored rules (NEW_ERROR_PATTERN needs 20, longer
/// than the data). Intervals in seconds, as POST /rules/backtest takes them.
fn what_if_rules() -> Value {
    json!([
        {"name": "ERROR_SPIKE", "kind": "error_count", "incident_type": "ERROR_SPIKE", "lookback": 300, "baseline": 600,
         "threshold": 200, "severity": "HIGH"},
        {"name": "ERROR_SPIKE_CRITICAL", "kind": "error_count", "incident_type": "ERROR_SPIKE", "lookback": 300,
         "baseline": 600, "threshold": 600, "severity": "CRITICAL", "resolve_after": 30},
        {"name": "ERROR_SPIKE", "kind": "error_count", "incident_type": "ERROR_SPIKE", "service": "billing", "lookback": 60,
         "baseline": 600, "threshold": 100, "severity": "MED", "pending_for": 20},
        {"name": "LATENCY_SPIKE", "kind": "latency_p95", "incident_type": "LATENCY_SPIKE", "lookback": 120, "baseline": 600,
         "threshold": 800, "min_events": 50, "severity": "MED"},
        {"name": "NO_DATA", "kind": "no_data", "incident_type": "NO_DATA", "lookback": 60, "baseline": 600, "threshold": 0.5,
         "min_events": 100, "severity": "HIGH", "resolve_after": 30},
        {"name": "NEW_ERROR_PATTERN_FAST", "kind": "new_pattern", "incident_type": "NEW_ERROR_PATTERN", "lookback": 120,
         "baseline": 300, "threshold": 5, "severity": "LOW"}
    ])
}

/// An RFC 3339 time of an answer as seconds from the anchor (null stays null).
fn relative(c: Clock, v: &Value) -> Value {
    match v.as_str() {
        Some(s) => {
            let t = DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
            json!((t - c.anchor).num_microseconds().unwrap() as f64 / 1e6)
        }
        None => v.clone(),
    }
}

/// The replays (backtest_rules(), replay_new_patterns(), POST /rules/backtest): a week at 1-minute
/// steps and the last hour at 1-second steps with the stored rules, the last hour at 1 and 5
/// seconds with what_if_rules(), and its new patterns at both resolutions. The
/// week starts where the retention does at the moment of the run (backtest_period() holds it
/// there), so only what depends on the data enters the document: the incidents, the steps at
/// which new patterns breach, and the period's last step.
async fn replays(
    c: Clock,
    app: &Proc,
    db: &Client,
    doc: &mut BTreeMap<String, Value>,
    timings: &mut BTreeMap<&'static str, f64>,
) {
    let a = &c.anchor;
    let what_if = what_if_rules();
    let week = -7.0 * 86400.0;
    let cases: [(&'static str, f64, &str, Option<&Value>); 4] = [
        ("backtest_rules(week, 1 minute)", week, "1 minute", None),
        ("backtest_rules(last hour, 1 second)", -3600.0, "1 second", None),
        ("backtest_rules(what-if, last hour, 1 second)", -3600.0, "1 second", Some(&what_if)),
        ("backtest_rules(what-if, last hour, 5 seconds)", -3600.0, "5 seconds", Some(&what_if)),
    ];
    for (name, since, step, rules) in cases {
        let started = Instant::now();
        let found = rows(
            db,
            "SELECT jsonb_build_object('service', service, 'type', incident_type, 'severity', severity,
                                       'opened', extract(epoch FROM opened_at - $1), 'resolved', extract(epoch FROM resolved_at - $1),
                                       'rule_id', rule_id, 'rule', rule_name, 'observed', round(observed::numeric, 4),
                                       'peak', round(peak::numeric, 4), 'threshold', threshold)
             FROM backtest_rules($2, $1, $3::text::interval, $4) ORDER BY opened_at, service, incident_type",
            &[a, &c.at(since), &step, &rules],
        )
        .await;
        timings.insert(name, started.elapsed().as_secs_f64() * 1000.0);
        doc.insert(name.into(), found);
    }
    let cases: [(&str, f64, &str, Option<&Value>); 3] = [
        ("replay_new_patterns(last hour, 1 second)", -3600.0, "1 second", None),
        ("replay_new_patterns(what-if, week, 1 minute)", week, "1 minute", Some(&what_if)),
        ("replay_new_patterns(what-if, last hour, 1 second)", -3600.0, "1 second", Some(&what_if)),
    ];
    for (name, since, step, rules) in cases {
        let found = rows(
            db,
            "SELECT jsonb_build_object('service', n.service, 'type', n.incident_type, 'at', extract(epoch FROM n.at - $1),
                                       'ord', n.ord, 'rule_id', n.rule_id, 'rule', n.rule_name, 'severity', n.severity,
                                       'threshold', n.threshold, 'observed', n.observed)
             FROM backtest_period($2, $1, $3::text::interval, $4) p,
                  replay_new_patterns(p.first_at, p.last_at, p.every,
                                      CASE WHEN $4::jsonb IS NULL THEN (SELECT array_agg(r ORDER BY r.id) FROM detection_rules r)
                                           ELSE (SELECT array_agg(r) FROM check_rules($4) r) END) n
             ORDER BY n.service, n.at, n.ord",
            &[a, &c.at(since), &step, &rules],
        )
        .await;
        doc.insert(name.into(), found);
    }
    // over HTTP, the what-if rules every 5 seconds (the API's read-only transaction)
    let rfc = |t: f64| c.at(t).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let name = "POST /rules/backtest (what-if, last hour, 5 seconds)";
    let body = json!({"since": rfc(-3600.0), "until": rfc(0.0), "step": 5, "rules": what_if});
    let started = Instant::now();
    let r = http().post(app.url("/rules/backtest")).json(&body).send().await.unwrap();
    let status = r.status();
    let mut v: Value = r.json().await.unwrap();
    timings.insert(name, started.elapsed().as_secs_f64() * 1000.0);
    assert_eq!(status, 200, "{name}: {v}");
    for k in ["first_step", "last_step"] {
        v["period"][k] = relative(c, &v["period"][k]);
    }
    for i in v["incidents"].as_array_mut().unwrap() {
        for k in ["opened_at", "resolved_at"] {
            i[k] = relative(c, &i[k]);
        }
    }
    doc.insert(name.into(), v);
}

/// The answers of every read and detection path, times relative to the anchor.
async fn ask(c: Clock, app: &Proc, db: &Client) -> BTreeMap<String, Value> {
    let a = &c.anchor;
    let mut doc = BTreeMap::new();
    let mut timings: BTreeMap<&'static str, f64> = BTreeMap::new();

    for (lo, hi) in windows() {
        let hi_ts = hi.map(|h| c.at(h));
        doc.insert(
            format!("window_stats({lo}, {hi:?})"),
            rows(
                db,
                "SELECT to_jsonb(w) FROM window_stats($1::timestamptz, coalesce($2::timestamptz, 'infinity')) w ORDER BY w.service",
                &[&c.at(lo), &hi_ts],
            )
            .await,
        );
    }
    doc.insert(
        "active_minutes".into(),
        rows(db, "SELECT to_jsonb(x) FROM active_minutes($1, $2) x ORDER BY x.service", &[&c.at(-960.0), a]).await,
    );
    for t in [-600.0, -420.0, -300.0, -120.0, 0.0] {
        doc.insert(
            format!("evaluate_rules({t})"),
            rows(
                db,
                "SELECT jsonb_build_object('rule', rule_name, 'service', service, 'observed', round(observed::numeric, 4),
                                           'events', events, 'breached', breached, 'summary', summary,
                                           'window', jsonb_build_array(extract(epoch FROM window_start - $2),
                                                                       extract(epoch FROM window_end - $2)))
                 FROM evaluate_rules($1) ORDER BY service, rule_name",
                &[&c.at(t), a],
            )
            .await,
        );
    }

    // detection, tick by tick, from the first minute to four minutes past the data
    let mut changes = Vec::new();
    let mut ticks = Vec::new();
    let mut t = -900.0;
    while t <= 240.0 {
        let started = Instant::now();
        for r in db
            .query(
                "SELECT action, service, incident_type, severity, incident_id FROM detect_incidents($1) ORDER BY incident_id, action",
                &[&c.at(t)],
            )
            .await
            .unwrap()
        {
            let (action, service, kind, severity, id): (String, String, String, String, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            changes.push(json!([t, action, service, kind, severity, id]));
        }
        ticks.push(started.elapsed().as_secs_f64() * 1000.0);
        t += 5.0;
    }
    ticks.sort_by(f64::total_cmp);
    timings.insert("detect_incidents tick p50 ms", ticks[ticks.len() / 2]);
    doc.insert("detection".into(), Value::Array(changes));
    let incidents = rows(
        db,
        "SELECT jsonb_build_object('id', id, 'service', service, 'type', incident_type, 'severity', severity, 'status', status,
                                   'created', extract(epoch FROM created_at - $1), 'resolved', extract(epoch FROM resolved_at - $1),
                                   'window', jsonb_build_array(extract(epoch FROM window_start - $1), extract(epoch FROM window_end - $1)),
                                   'breach_start', extract(epoch FROM breach_start - $1),
                                   'observed', round(observed::numeric, 4), 'peak', round(peak::numeric, 4), 'summary', summary)
         FROM incidents ORDER BY id",
        &[a],
    )
    .await;
    let ids: Vec<i64> = incidents.as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    doc.insert("incidents".into(), incidents);
    doc.insert(
        "incident_events".into(),
        rows(
            db,
            "SELECT jsonb_build_array(incident_id, event, extract(epoch FROM at - $1)) FROM incident_events ORDER BY id",
            &[a],
        )
        .await,
    );
    for id in &ids {
        doc.insert(
            format!("incident_logs({id})"),
            rows(
                db,
                "SELECT jsonb_build_object('t', extract(epoch FROM ts - $2), 'service', service, 'level', level, 'message', message)
                 FROM incident_logs($1, 50)",
                &[id, a],
            )
            .await,
        );
        doc.insert(
            format!("incident_context({id})"),
            rows(
                db,
                "SELECT jsonb_build_object('patterns', x -> 'patterns', 'status_codes', x -> 'status_codes',
                                           'lines_considered', x -> 'lines_considered',
                                           'samples', (SELECT jsonb_agg(l - 'ts') FROM jsonb_array_elements(x -> 'sample_lines') l))
                 FROM incident_context($1) x",
                &[id],
            )
            .await,
        );
    }

    replays(c, app, db, &mut doc, &mut timings).await;

    doc.insert(
        "top_patterns(all, 16 min)".into(),
        rows(
            db,
            "SELECT jsonb_build_object('service', service, 'pattern_id', pattern_id, 'template', template, 'levels', levels,
                                       'count', count, 'share', share, 'previous', previous, 'new', new,
                                       'first_seen', extract(epoch FROM first_seen - $1), 'last_seen', extract(epoch FROM last_seen - $1))
             FROM top_patterns(at => $1, since => $2)",
            &[a, &c.at(-960.0)],
        )
        .await,
    );
    doc.insert(
        "top_patterns(feed-service, ERROR, 5 min at -360)".into(),
        rows(
            db,
            "SELECT jsonb_build_object('pattern_id', pattern_id, 'template', template, 'count', count, 'share', share,
                                       'previous', previous, 'new', new)
             FROM top_patterns('feed-service', '5 minutes', 'ERROR', 10, $1)",
            &[&c.at(-360.0)],
        )
        .await,
    );
    doc.insert(
        "service_timeseries".into(),
        rows(
            db,
            "SELECT jsonb_build_object('service', service, 't', extract(epoch FROM bucket - $1), 'total', total, 'errors', errors,
                                       'error_rate', error_rate, 'p95_ms', p95_ms)
             FROM service_timeseries('1 hour', '1 minute')",
            &[a],
        )
        .await,
    );
    doc.insert(
        "service_stats(1 hour)".into(),
        rows(db, "SELECT to_jsonb(s) FROM service_stats('1 hour') s", &[]).await,
    );

    // search: every line of the window page by page, both orders; the partial index's path; filters
    let (lo, hi) = (c.at(-2000.0), c.at(10.0));
    let started = Instant::now();
    let all = search_all(db, "since => $4, until => $5", &[a, &lo, &hi], 997).await;
    timings.insert("search every line, pages of 997, ms", started.elapsed().as_secs_f64() * 1000.0);
    let oldest = search_all(db, "since => $4, until => $5, newest_first => false", &[a, &lo, &hi], 1000).await;
    let mut reversed = oldest.clone();
    reversed.reverse();
    assert_eq!(all, reversed, "oldest first is newest first reversed");
    let raw: i64 = db.query_one("SELECT count(*) FROM logs", &[]).await.unwrap().get(0);
    if all.len() as i64 != raw {
        // Seen once under a full, loaded test run (47,271 of 47,360 lines, the same ones in both
        // orders) and not reproduced since: say which lines, where they are stored and where in
        // the window, so that the next failure tells more than a count.
        let seen: HashSet<String> =
            all.iter().map(|l| format!("{}|{:.3}", l["service"].as_str().unwrap(), l["t"].as_f64().unwrap())).collect();
        let stored = db
            .query(
                "SELECT service, extract(epoch FROM ts - $1)::float8, message, tableoid::regclass::text, ctid::text
                 FROM logs ORDER BY ts",
                &[a],
            )
            .await
            .unwrap();
        let missing: Vec<String> = stored
            .iter()
            .filter(|r| !seen.contains(&format!("{}|{:.3}", r.get::<_, String>(0), r.get::<_, f64>(1))))
            .map(|r| {
                let (service, t, message, partition, ctid): (String, f64, Option<String>, String, String) =
                    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
                format!("{service} t={t:.3} {partition} {ctid} {message:?}")
            })
            .collect();
        eprintln!("{} lines not returned (window {lo} .. {hi}), the first 40:", missing.len());
        for m in missing.iter().take(40) {
            eprintln!("  {m}");
        }
    }
    assert_eq!(all.len() as i64, raw, "paging through every line returns each line once");
    doc.insert("search: every line".into(), summary(&all));
    let searches: [(&str, &str); 7] = [
        (
            "errors of feed-service (partial index)",
            "service => 'feed-service', level => 'ERROR', since => $4, until => $5",
        ),
        ("q=refused status 5xx", "q => 'refused', status_code => '5xx', since => $4, until => $5"),
        (
            "attrs region=eu, min latency 1000",
            "attrs => '{\"region\": \"eu\"}', min_latency_ms => 1000, since => $4, until => $5",
        ),
        ("WARN and above of two services", "services => '{api,search}', level => 'WARN', since => $4, until => $5"),
        ("a pattern", "pattern => log_pattern_id('connection to db-1 refused'), since => $4, until => $5"),
        ("one instant, 40 services", "q => 'same instant', since => $4, until => $5"),
        ("SQL-loaded lines", "services => '{batch-job,importer}', since => $4, until => $5"),
    ];
    for (name, args) in searches {
        let page = if name.starts_with("one instant") { 1 } else { 37 };
        let lines = search_all(db, args, &[a, &lo, &hi], page).await;
        doc.insert(format!("search: {name}"), summary(&lines));
    }
    // a search out of budget at every slice goes on from its markers to the same lines
    let budgeted = search_all(
        db,
        "since => $4, until => $5, services => '{checkout}', budget => '1 microsecond'",
        &[a, &lo, &hi],
        50,
    )
    .await;
    let whole = search_all(db, "since => $4, until => $5, services => '{checkout}'", &[a, &lo, &hi], 50).await;
    assert_eq!(budgeted, whole, "markers continue where the search stopped");
    doc.insert("search: checkout, out of budget at every slice".into(), summary(&budgeted));

    // the HTTP reads (bodies without what depends on the moment of the run)
    let get = |path: &str| {
        let url = app.url(path);
        async move { http().get(&url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let started = Instant::now();
    doc.insert("GET /stats?window_minutes=120".into(), get("/stats?window_minutes=120").await);
    timings.insert("GET /stats ms", started.elapsed().as_secs_f64() * 1000.0);
    let mut patterns = get("/patterns?window_minutes=120&limit=5").await;
    for p in patterns.as_array_mut().unwrap() {
        for k in ["until", "first_seen", "last_seen"] {
            p.as_object_mut().unwrap().remove(k);
        }
    }
    doc.insert("GET /patterns".into(), patterns);
    let since = c.at(-2000.0).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut lines = get(&format!("/logs?service=checkout&level=ERROR&limit=20&since={since}")).await;
    for l in lines.as_array_mut().unwrap() {
        let o = l.as_object_mut().unwrap();
        o.remove("cursor");
        o.remove("received_at");
        let ts = DateTime::parse_from_rfc3339(o.remove("ts").unwrap().as_str().unwrap()).unwrap();
        o.insert("t".into(), json!((ts.with_timezone(&Utc) - c.anchor).num_microseconds().unwrap() as f64 / 1e6));
    }
    doc.insert("GET /logs".into(), lines);
    let incidents: Vec<Value> = get("/incidents?limit=100")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|i| json!([i["id"], i["service"], i["incident_type"], i["severity"], i["status"], i["summary"]]))
        .collect();
    doc.insert("GET /incidents".into(), Value::Array(incidents));

    eprintln!("timings on this database: {}", json!(timings));
    doc
}

/// The whole scenario on the database at `url` (empty and migrated; distributed or not).
async fn scenario(url: &str) -> BTreeMap<String, Value> {
    let c = Clock::now();
    let db = connect(url).await;
    let existing: i64 = db.query_one("SELECT count(*) FROM logs", &[]).await.unwrap().get(0);
    assert_eq!(existing, 0, "the scenario needs an empty database (migrated, distributed or not)");
    let app = spawn_collector(url, &[]).await;
    write(c, &app, &db).await;
    assert_rollup_is_raw(c, &db, "after the writes").await;
    // TRUNCATE logs empties the rollup too (rolled back)
    db.batch_execute("BEGIN; TRUNCATE logs").await.unwrap();
    let left: i64 = db
        .query_one(
            "SELECT (SELECT count(*) FROM log_rollup) + (SELECT count(*) FROM log_rollup_minute)
                    + (SELECT count(*) FROM log_pattern_counts) + (SELECT count(*) FROM log_pattern_counts_10m)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    db.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(left, 0, "TRUNCATE logs leaves no rollup row or pattern count");
    // everything folded: what is read no longer depends on when compaction ran
    db.batch_execute("SELECT compact_rollup(), compact_patterns()").await.unwrap();
    assert_rollup_is_raw(c, &db, "compacted").await;
    // partition upkeep (on Citus: partitions made distributed, dropped with their shards)
    db.query("SELECT * FROM maintain_partitions()", &[]).await.unwrap();
    // a new_pattern rule that learns a service in 5 minutes: the stored NEW_ERROR_PATTERN needs 20,
    // longer than the data, so without it live detection would never judge a new pattern
    db.execute(
        "INSERT INTO detection_rules (name, kind, incident_type, lookback, baseline, threshold, severity)
         VALUES ('NEW_ERROR_PATTERN_FAST', 'new_pattern', 'NEW_ERROR_PATTERN', '2 minutes', '5 minutes', 5, 'LOW')",
        &[],
    )
    .await
    .unwrap();
    ask(c, &app, &db).await
}

#[tokio::test]
async fn every_read_and_detection_path_answers_what_the_raw_rows_say() {
    let db = fresh_db().await;
    let doc = scenario(&db.url).await;
    // what the data set was made to show
    let detection = doc["detection"].as_array().unwrap();
    let opened: Vec<(&str, &str)> = detection
        .iter()
        .filter(|c| c[1] == "opened")
        .map(|c| (c[2].as_str().unwrap(), c[3].as_str().unwrap()))
        .collect();
    assert!(opened.contains(&("feed-service", "ERROR_SPIKE")), "the error burst opens an incident: {opened:?}");
    assert!(opened.contains(&("db-service", "LATENCY_SPIKE")), "the slow minutes open an incident: {opened:?}");
    assert!(opened.contains(&("search", "NEW_ERROR_PATTERN")), "the new error opens an incident: {opened:?}");
    for i in doc["incidents"].as_array().unwrap() {
        assert_eq!(i["status"], "resolved", "every incident resolves after its failure: {i}");
    }
    let ties = &doc["search: one instant, 40 services"];
    assert_eq!(ties["lines"], 40, "lines of one instant are each paged once: {ties}");
    assert_eq!(doc["search: SQL-loaded lines"]["lines"], 1100, "INSERT and COPY through logs are searchable");

    // the replays find the failures the detection walk found, and what the what-if rules were made for
    let replayed = |key: &str| -> Vec<(String, String, String, String)> {
        let s = |v: &Value| v.as_str().unwrap().to_string();
        doc[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (s(&i["service"]), s(&i["type"]), s(&i["severity"]), s(&i["rule"])))
            .collect()
    };
    for key in ["backtest_rules(week, 1 minute)", "backtest_rules(last hour, 1 second)"] {
        let found: Vec<(String, String)> = replayed(key).into_iter().map(|f| (f.0, f.1)).collect();
        for failure in [("feed-service", "ERROR_SPIKE"), ("db-service", "LATENCY_SPIKE")] {
            assert!(found.contains(&(failure.0.into(), failure.1.into())), "{key} finds {failure:?}: {found:?}");
        }
    }
    let what_if = replayed("backtest_rules(what-if, last hour, 1 second)");
    for expected in [
        ("feed-service", "ERROR_SPIKE", "CRITICAL", "ERROR_SPIKE"), // opened at HIGH, escalated
        ("billing", "ERROR_SPIKE", "MED", "ERROR_SPIKE"),           // the per-service override
        ("search", "NEW_ERROR_PATTERN", "LOW", "NEW_ERROR_PATTERN_FAST"),
    ] {
        let e = (expected.0.to_string(), expected.1.to_string(), expected.2.to_string(), expected.3.to_string());
        assert!(what_if.contains(&e), "the what-if replay finds {expected:?}: {what_if:?}");
    }
    let new_steps = doc["replay_new_patterns(what-if, last hour, 1 second)"].as_array().unwrap();
    assert!(!new_steps.is_empty(), "the what-if new_pattern rule breaches at some steps");
    assert!(new_steps.iter().all(|n| n["service"] == "search"), "only search logged a new error: {new_steps:?}");
    let stored: Vec<&Value> = doc["replay_new_patterns(last hour, 1 second)"].as_array().unwrap().iter().collect();
    assert!(
        !stored.is_empty() && stored.iter().all(|n| n["rule"] == "NEW_ERROR_PATTERN_FAST"),
        "of the stored rules, the fast-learning one finds the new pattern, NEW_ERROR_PATTERN is still learning: {stored:?}"
    );
    // over HTTP, the same replay as in SQL
    let opened = |v: &Value, keys: [&str; 5]| -> Vec<Value> {
        v.as_array().unwrap().iter().map(|i| json!(keys.map(|k| i[k].clone()))).collect()
    };
    assert_eq!(
        opened(
            &doc["POST /rules/backtest (what-if, last hour, 5 seconds)"]["incidents"],
            ["service", "incident_type", "severity", "opened_at", "resolved_at"]
        ),
        opened(
            &doc["backtest_rules(what-if, last hour, 5 seconds)"],
            ["service", "type", "severity", "opened", "resolved"]
        ),
        "POST /rules/backtest answers what backtest_rules() answers"
    );
}

#[tokio::test]
#[ignore = "runs against the database at LOGMON_COMPARE_URL (e.g. a Citus coordinator) and writes LOGMON_COMPARE_OUT"]
async fn answers_of_the_database_at_logmon_compare_url() {
    let url = std::env::var("LOGMON_COMPARE_URL").expect("LOGMON_COMPARE_URL: an empty, migrated database");
    let out = std::env::var("LOGMON_COMPARE_OUT").expect("LOGMON_COMPARE_OUT: where to write the answers");
    let doc = scenario(&url).await;
    std::fs::write(&out, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    eprintln!("answers of {} written to {out}", url.split('@').next_back().unwrap_or(&url));
}
