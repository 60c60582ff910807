//! A real Prometheus Alertmanager for the notification tests (installed by scripts/test.sh).
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

/// A real Prometheus Alertmanager (Debian's prometheus-alertmanager), on a free port.
pub struct Alertmanager {
    pub base: String,
    _child: tokio::process::Child,
    _dir: TempDir,
}

impl Alertmanager {
    pub async fn start() -> Alertmanager {
        let dir = TempDir::new("alertmanager");
        let config = dir.path.join("alertmanager.yml");
        std::fs::write(&config, "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n").unwrap();
        let port = free_port();
        let child = tokio::process::Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus-alertmanager must be installed (scripts/test.sh installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http().get(format!("{base}/-/ready")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "Alertmanager did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Alertmanager { base, _child: child, _dir: dir }
    }

    /// The active alerts for one incident.
    pub async fn alerts_for(&self, incident_id: i64) -> Vec<Value> {
        let all: Vec<Value> =
            http().get(format!("{}/api/v2/alerts", self.base)).send().await.unwrap().json().await.unwrap();
        let id = incident_id.to_string();
        all.into_iter().filter(|a| a["labels"]["incident_id"].as_str() == Some(id.as_str())).collect()
    }
}
