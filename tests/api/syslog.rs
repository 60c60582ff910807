//! Syslog over TCP and UDP (`--syslog-tcp`, `--syslog-udp`): from util-linux's logger, Python's
//! SysLogHandler and rsyslog's omfwd, and by hand (malformed lines, backpressure).
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use logmon::syslog::udp;

use crate::helpers::*;
use crate::shippers::*;

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Syslog {
    app: Proc,
    tcp: u16,
    udp: u16,
}

async fn spawn_with_syslog(db: &TestDb, extra: &[&str]) -> Syslog {
    let (tcp, udp) = (free_port(), free_udp_port());
    let (t, u) = (format!("127.0.0.1:{tcp}"), format!("127.0.0.1:{udp}"));
    let mut args = vec!["--syslog-tcp", &t, "--syslog-udp", &u];
    args.extend_from_slice(extra);
    Syslog { app: spawn_collector(&db.url, &args).await, tcp, udp }
}

async fn row(db: &TestDb, service: &str, message: &str) -> (String, Value) {
    let r = db
        .client()
        .await
        .query_one("SELECT level, attrs FROM logs WHERE service = $1 AND message = $2", &[&service, &message])
        .await
        .unwrap_or_else(|e| panic!("no row {service}/{message}: {e}"));
    (r.get(0), r.get(1))
}

#[tokio::test]
async fn logger_sends_rfc5424_and_rfc3164_over_tcp_both_framings_and_udp() {
    let db = fresh_db().await;
    let s = spawn_with_syslog(&db, &[]).await;
    let (tcp, udp) = (s.tcp.to_string(), s.udp.to_string());
    let base = ["-n", "127.0.0.1"];
    // RFC 5424 (logger's default on the network), newline framing over TCP
    logger(
        &[
            &base[..],
            &[
                "-P",
                &tcp,
                "-T",
                "-t",
                "checkout",
                "-p",
                "local0.err",
                "--msgid",
                "PAY",
                "--sd-id",
                "order@32473",
                "--sd-param",
                "id=\"42\"",
                "payment failed",
            ],
        ]
        .concat(),
    );
    // octet counting
    logger(
        &[&base[..], &["-P", &tcp, "-T", "--octet-count", "-t", "checkout", "-p", "local0.warning", "slow provider"]]
            .concat(),
    );
    // RFC 3164 with a pid, over UDP
    logger(&[&base[..], &["-P", &udp, "-d", "--rfc3164", "-i", "-t", "cron", "-p", "cron.info", "job ran"]].concat());
    let n = wait_for_count(&db, "SELECT count(*) FROM logs", 3).await;
    assert_eq!(n, 3);

    let (level, attrs) = row(&db, "checkout", "payment failed").await;
    assert_eq!(level, "ERROR");
    assert_eq!(attrs["facility"], "local0");
    assert_eq!(attrs["msgid"], "PAY");
    assert_eq!(attrs["structured_data"]["order@32473"], json!({"id": "42"}));
    assert!(attrs["hostname"].is_string() && attrs["procid"].is_null(), "{attrs}");
    assert_eq!(row(&db, "checkout", "slow provider").await.0, "WARN");
    let (level, attrs) = row(&db, "cron", "job ran").await;
    assert_eq!(level, "INFO");
    assert!(attrs["procid"].as_str().unwrap().parse::<u32>().is_ok(), "TAG[PID]: {attrs}");
    assert_eq!(attrs["facility"], "cron");
    let age: f64 = db
        .client()
        .await
        .query_one("SELECT max(abs(extract(epoch FROM now() - ts)))::float8 FROM logs", &[])
        .await
        .unwrap()
        .get(0);
    assert!(age < 300.0, "the messages' own timestamps are kept ({age} s off)");
}

#[tokio::test]
async fn python_sysloghandler_over_tcp_and_udp() {
    let db = fresh_db().await;
    let s = spawn_with_syslog(&db, &[]).await;
    let py = python();
    for (proto, port, service) in [("tcp", s.tcp, "py-tcp"), ("udp", s.udp, "py-udp")] {
        let (ok, out) = run_script(&py, "syslog_python.py", &["127.0.0.1", &port.to_string(), proto, service]);
        assert!(ok, "{out}");
        let n = wait_for_count(&db, &format!("SELECT count(*) FROM logs WHERE service = '{service}'"), 9).await;
        assert_eq!(n, 9, "{proto}");
        assert_eq!(
            levels(&db, service).await,
            counts(&[("DEBUG", 1), ("ERROR", 5), ("FATAL", 1), ("INFO", 1), ("WARN", 1)]),
            "{proto}: severities as Python maps its levels (critical is 2, FATAL)"
        );
        let (_, attrs) = row(&db, service, "payment failed attempt 3").await;
        assert_eq!(
            attrs,
            json!({"hostname": "127.0.0.1", "facility": "local3"}),
            "no host in the message: the sender's address"
        );
    }
}

/// A collector with syslog listeners whose every COPY waits: `holder` holds `logs` locked (in a
/// transaction it rolls back to let them go), so the first batches cannot commit. And a socket
/// to send UDP lines from, each followed by a pause (one by one, as a service logs).
struct LockedUdp {
    db: TestDb,
    s: Syslog,
    holder: tokio_postgres::Client,
    sock: tokio::net::UdpSocket,
}

impl LockedUdp {
    async fn start() -> LockedUdp {
        let db = fresh_db().await;
        let s = spawn_with_syslog(&db, &[]).await;
        let holder = db.client().await;
        holder.batch_execute("BEGIN; LOCK TABLE logs IN SHARE MODE").await.unwrap();
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        LockedUdp { db, s, holder, sock }
    }

    async fn send(&self, line: &str, pause_ms: u64) {
        self.sock.send_to(line.as_bytes(), ("127.0.0.1", self.s.udp)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
    }

    async fn unlock(&self) {
        self.holder.batch_execute("ROLLBACK").await.unwrap();
    }
}

#[tokio::test]
async fn udp_lines_that_arrive_while_batches_wait_for_their_commit_are_stored_not_dropped() {
    let u = LockedUdp::start().await;
    for i in 0..20 {
        // one by one: each would otherwise become a batch of its own
        u.send(&format!("<14>1 - h trickle - - - line {i}"), 30).await;
    }
    u.unlock().await;
    let db = &u.db;
    let n = wait_for_count(db, "SELECT count(*) FROM logs WHERE service = 'trickle'", 20).await;
    assert_eq!(n, 20, "lines gathered into the next batch while four waited, none dropped");
}

#[tokio::test]
async fn udp_gathers_at_most_a_batchs_bytes_while_batches_wait_and_counts_what_it_drops() {
    let u = LockedUdp::start().await;
    // four small lines, one by one: four batches wait for their commit
    for i in 0..4 {
        u.send(&format!("<14>1 - h lead - - - line {i}"), 50).await;
    }
    // then 300 lines of 30,000 bytes (9 MB), paced so that the kernel's socket buffer keeps up:
    // the next batch takes 4 MiB of them (140), the rest is dropped and counted
    let big = "x".repeat(30_000);
    for i in 0..300 {
        u.send(&format!("<14>1 - h big - - - {i} {big}"), 2).await;
    }
    let dropped_metric = r#"logmon_ingest_source_rows_total{source="syslog_udp",outcome="dropped"}"#;
    let dropped = metric(&u.s.app, dropped_metric).await;
    u.unlock().await;
    let db = &u.db;
    let lead = wait_for_count(db, "SELECT count(*) FROM logs WHERE service = 'lead'", 4).await;
    assert_eq!(lead, 4, "the four batches that waited are stored");
    let gathered = (udp::BATCH_BYTES / 30_000 + 1) as i64;
    let stored = wait_for_count(db, "SELECT count(*) FROM logs WHERE service = 'big'", gathered).await;
    assert!(
        (gathered - 1..=gathered).contains(&stored),
        "one batch of at most {} bytes gathered while four waited: {stored} lines of 30,000 bytes stored",
        udp::BATCH_BYTES
    );
    assert!(dropped >= 1.0, "the lines beyond it are dropped and counted: {dropped}");
    assert_eq!(metric(&u.s.app, dropped_metric).await, dropped, "nothing stored later was counted as dropped");
}

#[tokio::test]
async fn rsyslog_forwards_over_tcp_octet_counted_and_newline_framed_and_over_udp() {
    let db = fresh_db().await;
    let s = spawn_with_syslog(&db, &[]).await;
    let rsyslog = Rsyslog::start(&format!(
        r#"if $programname == 'api' then action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
if $programname == 'worker' then action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" template="RSYSLOG_ForwardFormat")
if $programname == 'edge' then action(type="omfwd" target="127.0.0.1" port="{udp}" protocol="udp" template="RSYSLOG_TraditionalForwardFormat")"#,
        tcp = s.tcp,
        udp = s.udp
    ));
    for (tag, why) in [
        ("api", "RFC 5424, octet counting"),
        ("worker", "3164 with RFC 3339 time, newlines"),
        ("edge", "3164 over UDP"),
    ] {
        rsyslog.log(tag, "daemon.err", &format!("failed: {why}"));
        rsyslog.log(tag, "daemon.notice", &format!("ok: {why}"));
    }
    let n = wait_for_count(&db, "SELECT count(*) FROM logs", 6).await;
    assert_eq!(n, 6);
    for (tag, why) in [
        ("api", "RFC 5424, octet counting"),
        ("worker", "3164 with RFC 3339 time, newlines"),
        ("edge", "3164 over UDP"),
    ] {
        let (level, attrs) = row(&db, tag, &format!("failed: {why}")).await;
        assert_eq!(level, "ERROR", "{tag}");
        assert_eq!(attrs["facility"], "daemon", "{tag}");
        assert!(attrs["hostname"].is_string(), "{tag}: {attrs}");
        assert_eq!(row(&db, tag, &format!("ok: {why}")).await.0, "INFO", "{tag}: notice is INFO");
    }
    let tcp = metric(&s.app, r#"logmon_ingest_source_rows_total{source="syslog_tcp",outcome="stored"}"#).await;
    let udp = metric(&s.app, r#"logmon_ingest_source_rows_total{source="syslog_udp",outcome="stored"}"#).await;
    assert_eq!((tcp, udp), (4.0, 2.0), "per-source counts in /metrics");
}

#[tokio::test]
async fn malformed_lines_are_counted_and_the_listeners_keep_serving() {
    let db = fresh_db().await;
    let s = spawn_with_syslog(&db, &[]).await;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", s.tcp)).await.unwrap();
    conn.write_all(
        b"no pri here\n<999>out of range\n<13>1 not-a-time h a - - - x\n\xff\xfe\n<11>app: after the garbage\n",
    )
    .await
    .unwrap();
    conn.shutdown().await.unwrap();
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(b"garbage datagram", ("127.0.0.1", s.udp)).await.unwrap();
    udp.send_to(b"<12>app: udp still fine", ("127.0.0.1", s.udp)).await.unwrap();
    assert_eq!(wait_for_count(&db, "SELECT count(*) FROM logs WHERE service = 'app'", 2).await, 2);
    assert_eq!(
        metric(&s.app, r#"logmon_ingest_source_rows_total{source="syslog_tcp",outcome="malformed"}"#).await,
        4.0
    );
    assert_eq!(
        metric(&s.app, r#"logmon_ingest_source_rows_total{source="syslog_udp",outcome="malformed"}"#).await,
        1.0
    );
}

#[tokio::test]
async fn a_full_queue_slows_tcp_senders_down_and_loses_no_line() {
    let db = fresh_db().await;
    // a queue of 100 rows for 4 connections sending 5,000 lines each: they must take turns
    let s = spawn_with_syslog(&db, &["--max-queued-rows", "100", "--writers", "1"]).await;
    let mut senders = Vec::new();
    for c in 0..4 {
        let port = s.tcp;
        senders.push(tokio::spawn(async move {
            let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let mut buf = Vec::new();
            for i in 0..5000 {
                let line = format!("<14>1 - host conn{c} - - - line {i}");
                buf.extend_from_slice(format!("{} {line}", line.len()).as_bytes());
            }
            conn.write_all(&buf).await.unwrap();
            conn.shutdown().await.unwrap();
        }));
    }
    for t in senders {
        t.await.unwrap();
    }
    let n = wait_for_count(&db, "SELECT count(*) FROM logs", 20_000).await;
    assert_eq!(n, 20_000, "every line sent is stored");
    let distinct: i64 =
        db.client().await.query_one("SELECT count(DISTINCT (service, message)) FROM logs", &[]).await.unwrap().get(0);
    assert_eq!(distinct, 20_000, "each exactly once");
    let deferred = metric(&s.app, r#"logmon_ingest_source_rows_total{source="syslog_tcp",outcome="deferred"}"#).await;
    assert!(deferred > 0.0, "the queue was full at times, so connections waited");
    assert_eq!(metric(&s.app, r#"logmon_ingest_source_rows_total{source="syslog_tcp",outcome="dropped"}"#).await, 0.0);
}

#[tokio::test]
async fn sigterm_stops_the_collector_with_syslog_connections_open_after_storing_what_arrived() {
    let db = fresh_db().await;
    let mut s = spawn_with_syslog(&db, &[]).await;
    let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", s.tcp)).await.unwrap();
    idle.write_all(b"<14>1 - h stopper - - - before the stop\n").await.unwrap();
    assert_eq!(wait_for_count(&db, "SELECT count(*) FROM logs WHERE service = 'stopper'", 1).await, 1);
    let pid = s.app.child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    // a hang guard, not a performance threshold: an open syslog connection must not keep it alive
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), s.app.child.wait())
        .await
        .expect("the collector exits on SIGTERM although a syslog connection is still open")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", s.tcp)).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn while_the_database_is_down_tcp_lines_wait_and_are_stored_and_udp_lines_are_dropped_and_counted() {
    let cluster = PrivateCluster::start();
    let url = cluster.migrated_url();
    let (tcp, udp) = (free_port(), free_udp_port());
    let (t, u) = (format!("127.0.0.1:{tcp}"), format!("127.0.0.1:{udp}"));
    let app = spawn_collector(&url, &["--syslog-tcp", &t, "--syslog-udp", &u]).await;
    cluster.stop();

    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", tcp)).await.unwrap();
    for i in 0..3 {
        conn.write_all(format!("<11>1 - h waiter - - - tcp line {i}\n").as_bytes()).await.unwrap();
    }
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..3 {
        sock.send_to(format!("<11>1 - h dropper - - - udp line {i}").as_bytes(), ("127.0.0.1", udp)).await.unwrap();
    }
    // the UDP batch meets the stopped database (a refused connection fails at once)
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    cluster.restart();

    let db = TestDb { name: String::new(), url: url.clone() };
    assert_eq!(
        wait_for_count(&db, "SELECT count(*) FROM logs WHERE service = 'waiter'", 3).await,
        3,
        "TCP lost nothing"
    );
    let n: i64 =
        db.client().await.query_one("SELECT count(*) FROM logs WHERE service = 'dropper'", &[]).await.unwrap().get(0);
    assert_eq!(n, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let dropped = loop {
        // /metrics reads the database too; it answers again once the pool reconnects
        assert!(std::time::Instant::now() < deadline, "/metrics did not recover after the database came back");
        let r = http().get(app.url("/metrics")).send().await.unwrap();
        if r.status() == 200 {
            let text = r.text().await.unwrap();
            let series = r#"logmon_ingest_source_rows_total{source="syslog_udp",outcome="dropped"} "#;
            break text.lines().find_map(|l| l.strip_prefix(series)).map_or(0.0, |v| v.trim().parse::<f64>().unwrap());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(dropped, 3.0, "UDP could not wait: its lines are dropped and counted");
}
