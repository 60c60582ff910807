//! The real shipper programs the source tests send with: the Python and Node client libraries
//! installed by scripts/test.sh under .data/, rsyslogd run as a private non-daemon, and
//! util-linux's logger. Each fails loudly when missing.
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// The venv with python-logging-loki and elasticsearch (LOGMON_SHIPPERS_PYTHON overrides).
pub fn python() -> String {
    let py = std::env::var("LOGMON_SHIPPERS_PYTHON")
        .unwrap_or_else(|_| repo().join(".data/shippers-venv/bin/python").to_string_lossy().into_owned());
    assert!(
        std::path::Path::new(&py).exists(),
        "{py} is missing: scripts/test.sh installs python-logging-loki and elasticsearch there (pip, in a venv)"
    );
    py
}

/// Runs a script of tests/shippers/ with `program` (python or node); (success, stdout+stderr).
pub fn run_script(program: &str, script: &str, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(program);
    cmd.arg(repo().join("tests/shippers").join(script)).args(args);
    if std::env::var_os("LOGMON_NODE_MODULES").is_none() {
        cmd.env("LOGMON_NODE_MODULES", repo().join(".data/node/node_modules"));
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("run {program} {script}: {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The JSON line a script printed last.
pub fn last_json(out: &str) -> serde_json::Value {
    let line = out.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON line in: {out}"));
    serde_json::from_str(line).unwrap()
}

/// util-linux's logger.
pub fn logger(args: &[&str]) {
    let out = Command::new("logger").args(args).output().expect("logger (util-linux) must be installed");
    assert!(out.status.success(), "logger {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// rsyslogd in the foreground with a private config, pid file, work directory and input socket
/// (imuxsock on a socket of its own, fed with `logger -u`). Stopped when dropped.
pub struct Rsyslog {
    child: std::process::Child,
    pub socket: PathBuf,
    _dir: TempDir,
}

impl Rsyslog {
    /// `actions` is rsyslog RainerScript: the templates and output actions under test.
    pub fn start(actions: &str) -> Rsyslog {
        let dir = TempDir::new("rsyslog");
        let work = dir.path.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let socket = dir.path.join("in.sock");
        let conf = dir.path.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\")\n\
                 module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
                 input(type=\"imuxsock\" Socket=\"{socket}\" CreatePath=\"on\")\n{actions}\n",
                work = work.display(),
                socket = socket.display()
            ),
        )
        .unwrap();
        let check =
            Command::new("rsyslogd").args(["-N1", "-f"]).arg(&conf).output().expect("rsyslogd must be installed");
        assert!(check.status.success(), "rsyslog config refused: {}", String::from_utf8_lossy(&check.stderr));
        let child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.path.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start rsyslogd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "rsyslogd did not create its input socket");
            std::thread::sleep(Duration::from_millis(50));
        }
        Rsyslog { child, socket, _dir: dir }
    }

    /// One message into rsyslog, as a local program would log it.
    pub fn log(&self, tag: &str, priority: &str, message: &str) {
        logger(&["-u", self.socket.to_str().unwrap(), "-t", tag, "-p", priority, message]);
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `sql` (a single bigint) until it returns `want` or 30 s pass; returns the last value.
pub async fn wait_for_count(db: &TestDb, sql: &str, want: i64) -> i64 {
    let c = db.client().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = c.query_one(sql, &[]).await.unwrap().get(0);
        if n == want || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `(level, count)` of a service's rows, ordered by level.
pub async fn levels(db: &TestDb, service: &str) -> Vec<(String, i64)> {
    let rows = db
        .client()
        .await
        .query("SELECT level, count(*) FROM logs WHERE service = $1 GROUP BY level ORDER BY level", &[&service])
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

pub fn counts(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(l, n)| (l.to_string(), *n)).collect()
}

/// One sample of /metrics, e.g. `logmon_ingest_source_rows_total{outcome="stored",source="loki"}`
/// (0 when absent).
pub async fn metric(app: &Proc, series: &str) -> f64 {
    let text = http().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}
