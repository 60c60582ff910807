#![allow(dead_code)] // helpers serve every test module; not all use all of them
//! Test harness: a fresh database per test, created from a template that the real
//! `logmon migrate` built once per schema version, and the real `logmon` binary on a free port.
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tokio::sync::OnceCell;
use tokio_postgres::{Client, NoTls};

pub const BIN: &str = env!("CARGO_BIN_EXE_logmon");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn base_url() -> String {
    std::env::var("DATABASE_URL").expect("DATABASE_URL is not set: run the tests with scripts/test.sh")
}

/// `url` with its database name replaced.
pub fn url_for(url: &str, db: &str) -> String {
    let (head, _) = url.rsplit_once('/').expect("DATABASE_URL has a database name");
    let query = url.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    format!("{head}/{db}{query}")
}

pub async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
    tokio::spawn(conn);
    client
}

fn schema_hash() -> u64 {
    let mut h = DefaultHasher::new();
    for dir in ["migrations", "sql"] {
        let mut files: Vec<_> = std::fs::read_dir(repo().join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            f.file_name().hash(&mut h);
            std::fs::read(&f).unwrap().hash(&mut h);
        }
    }
    h.finish()
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// The hour (seconds since the epoch / 3600) before the template's partitions were last made.
static TEMPLATE_HOUR: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

fn current_hour() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(3600)
}

/// The migrated template database, built once per schema version (and shared between test runs).
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("logmon_tpl_{:016x}", schema_hash());
            TEMPLATE_HOUR.store(current_hour(), std::sync::atomic::Ordering::Relaxed);
            let admin = connect(&base_url()).await;
            admin.execute("SELECT pg_advisory_lock(7245)", &[]).await.unwrap();
            let exists =
                admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await.unwrap().is_some();
            if !exists {
                let building = format!("{name}_building");
                admin.batch_execute(&format!("DROP DATABASE IF EXISTS {building}")).await.unwrap();
                admin.batch_execute(&format!("CREATE DATABASE {building}")).await.unwrap();
                let out = std::process::Command::new(BIN)
                    .args(["migrate", "--database-url", &url_for(&base_url(), &building)])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "logmon migrate failed: {}", String::from_utf8_lossy(&out.stderr));
                admin.batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}")).await.unwrap();
                admin.batch_execute(&format!("ALTER DATABASE {name} WITH is_template true")).await.unwrap();
            } else {
                // A template kept from an earlier run has the hourly partitions of its own day:
                // bring them up to now, as the collector's maintenance would.
                let tpl = connect(&url_for(&base_url(), &name)).await;
                tpl.batch_execute("SELECT maintain_partitions()").await.unwrap();
            }
            // Databases of earlier runs (each test makes one) would fill the disk: drop those no
            // one is connected to. A run in progress holds connections to its own.
            let stale = admin
                .query(
                    "SELECT d.datname FROM pg_database d WHERE d.datname LIKE 't\\_%'
                       AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
                    &[],
                )
                .await
                .unwrap();
            for row in stale {
                let db: String = row.get(0);
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).await;
            }
            admin.execute("SELECT pg_advisory_unlock(7245)", &[]).await.unwrap();
            name
        })
        .await
}

pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }
}

/// A fresh, migrated database of its own for one test.
pub async fn fresh_db() -> TestDb {
    let tpl = template().await;
    let name = format!("t_{:016x}", rand::random::<u64>());
    let admin = connect(&base_url()).await;
    // CREATE DATABASE ... TEMPLATE fails while anyone else copies the same template: retry briefly.
    let mut tries = 0;
    loop {
        match admin.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {tpl}")).await {
            Ok(()) => break,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("create test database: {e}"),
        }
    }
    let db = TestDb { url: url_for(&base_url(), &name), name };
    // Partitions follow the clock: a run that crosses an hour boundary copies a template made in
    // the hour before, which lacks the partition of `premake_days` ahead. Bring the copy up to
    // now, as the collector's maintenance would (tests asserting partitions failed without it).
    if current_hour() != TEMPLATE_HOUR.load(std::sync::atomic::Ordering::Relaxed) {
        db.client().await.batch_execute("SELECT maintain_partitions()").await.unwrap();
    }
    db
}

/// A TCP port nothing listens on, never handed out before in this test run. Two probes in a row
/// can get the same port from the kernel once the first probe's socket is closed: a collector
/// given one for syslog and one for HTTP then found its HTTP port taken by its own syslog listener.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// The real `logmon` binary running a long-lived subcommand; killed when dropped.
pub struct Proc {
    pub child: Child,
    pub base: String,
    pub port: u16,
}

impl Proc {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGKILL, no goodbye: for crash tests.
    pub async fn kill9(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Starts `logmon collector` on a free port against `db_url` and waits until it accepts.
pub async fn spawn_collector(db_url: &str, extra: &[&str]) -> Proc {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["collector", "--database-url", db_url, "--listen", &listen];
    args.extend_from_slice(extra);
    let child = spawn(&args);
    wait_for_port(port).await;
    Proc { child, base: format!("http://{listen}"), port }
}

pub fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn logmon")
}

pub async fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "logmon did not listen on {port} within 20s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// A private PostgreSQL cluster of one test's own (scripts/pg.sh with its own data dir), for
/// tests that stop or restart the database. Stopped when dropped.
pub struct PrivateCluster {
    dir: PathBuf,
}

impl PrivateCluster {
    pub fn start() -> PrivateCluster {
        let dir = repo().join("target").join(format!("pg-{:08x}", rand::random::<u32>()));
        let c = PrivateCluster { dir };
        c.pg("start");
        c
    }

    fn pg(&self, cmd: &str) -> String {
        let out = std::process::Command::new(repo().join("scripts/pg.sh"))
            .arg(cmd)
            .env("LOGMON_PG_DIR", &self.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "pg.sh {cmd}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn url(&self) -> String {
        self.pg("url")
    }
    pub fn stop(&self) {
        self.pg("stop");
    }
    pub fn restart(&self) {
        self.pg("start");
    }

    /// A migrated database on this cluster.
    pub fn migrated_url(&self) -> String {
        let url = self.url();
        let out = std::process::Command::new(BIN).args(["migrate", "--database-url", &url]).output().unwrap();
        assert!(out.status.success(), "migrate: {}", String::from_utf8_lossy(&out.stderr));
        url
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(repo().join("scripts/pg.sh"))
            .arg("stop")
            .env("LOGMON_PG_DIR", &self.dir)
            .output();
        let target = std::fs::read_link(&self.dir).ok();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.dir);
        if let Some(t) = target {
            let _ = std::fs::remove_dir_all(Path::new(&t));
        }
    }
}

/// A directory under target/ that is removed when dropped.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = repo().join("target/test-tmp").join(format!("{prefix}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Services whose rollup (`window_stats()` over all time, pending deltas included) disagrees with
/// the raw rows: row and error counts, latency count, sum (to 1e-9, floats summed in another
/// order) and max, and the 16 histogram buckets. 0 = exact.
pub async fn rollup_disagreements(c: &Client) -> i64 {
    c.query_one(
        "WITH raw AS (SELECT service, count(*) AS total, count(*) FILTER (WHERE level IN ('ERROR', 'FATAL')) AS errors,
                             count(latency_ms) AS lc, coalesce(sum(latency_ms), 0) AS ls, max(latency_ms) AS lm
                      FROM logs GROUP BY service),
              per_bucket AS (SELECT service, width_bucket(latency_ms, latency_bounds()) AS b, count(*) AS n
                             FROM logs WHERE latency_ms IS NOT NULL GROUP BY 1, 2),
              raw_hist AS (SELECT r.service, array_agg(coalesce(p.n, 0) ORDER BY g) AS hist
                           FROM raw r CROSS JOIN generate_series(0, 15) g
                           LEFT JOIN per_bucket p ON p.service = r.service AND p.b = g GROUP BY r.service)
         SELECT count(*) FROM (SELECT * FROM window_stats('-infinity') WHERE total <> 0) w
         FULL JOIN raw r USING (service) LEFT JOIN raw_hist h USING (service)
         WHERE w.total IS DISTINCT FROM r.total OR w.errors IS DISTINCT FROM r.errors
            OR w.latency_count IS DISTINCT FROM r.lc OR w.latency_max IS DISTINCT FROM r.lm
            OR abs(coalesce(w.latency_sum, 0) - r.ls) > 1e-9 * greatest(1, abs(r.ls))
            OR w.hist IS DISTINCT FROM h.hist",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}
