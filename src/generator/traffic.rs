//! What one simulated request log looks like: per-service long-tailed latency, status codes by
//! level, and the scenario effects. Deterministic for a given seed.
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use super::scenario::{Effect, Scenario};

/// Per-service normal behaviour. Calibrated with the default rules: at 1,000 logs/s over three
/// services no rule fires; each scenario fires exactly one incident.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    /// Median latency; latencies are log-normal around it (sigma 0.6) plus a rare slow tail.
    pub median_ms: f64,
    pub error_rate: f64,
    pub warn_rate: f64,
}

pub fn profiles(services: &[String]) -> Vec<Profile> {
    services
        .iter()
        .map(|s| {
            let median_ms = match s.as_str() {
                "auth-service" => 40.0,
                "feed-service" => 80.0,
                "db-service" => 120.0,
                _ => 60.0,
            };
            Profile { name: s.clone(), median_ms, error_rate: 0.002, warn_rate: 0.03 }
        })
        .collect()
}

pub struct Traffic {
    rng: StdRng,
    profiles: Vec<Profile>,
    next: usize,
}

impl Traffic {
    pub fn new(seed: u64, profiles: Vec<Profile>) -> Traffic {
        Traffic { rng: StdRng::seed_from_u64(seed), profiles, next: 0 }
    }

    /// The next log, or None if its service is in an outage (the slot is skipped).
    pub fn next_log(&mut self, active: &[&Scenario]) -> Option<Value> {
        let p = &self.profiles[self.next % self.profiles.len()];
        self.next += 1;
        let mut error_rate = p.error_rate;
        let mut factor = 1.0;
        for s in active.iter().filter(|s| s.service == p.name) {
            match s.effect {
                Effect::Outage => return None,
                Effect::ErrorBurst { error_rate: r } => error_rate = error_rate.max(r),
                Effect::Latency { factor: f } => factor *= f,
            }
        }
        let z = normal(&mut self.rng);
        let tail = if self.rng.random_bool(0.005) { 8.0 } else { 1.0 };
        let latency = (p.median_ms * (0.6 * z).exp() * tail * factor * 100.0).round() / 100.0;
        let roll: f64 = self.rng.random();
        let (level, status, message) = if roll < error_rate {
            ("ERROR", [500, 502, 503, 504][self.rng.random_range(0..4)], "upstream call failed")
        } else if roll < error_rate + p.warn_rate {
            ("WARN", [404, 409, 429][self.rng.random_range(0..3)], "request rejected")
        } else {
            ("INFO", [200, 200, 200, 201, 204][self.rng.random_range(0..5)], "request handled")
        };
        Some(json!({
            "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "service": p.name,
            "level": level,
            "message": message,
            "latency_ms": latency,
            "status_code": status,
            "request_id": format!("{:016x}", self.rng.random::<u64>()),
        }))
    }
}

/// Standard normal variate (Box-Muller), so no extra crate is needed for one distribution.
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seed: u64, n: usize) -> Vec<Value> {
        let mut t = Traffic::new(seed, profiles(&["db-service".to_string()]));
        (0..n).filter_map(|_| t.next_log(&[])).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_logs() {
        let strip = |v: Vec<Value>| v.into_iter().map(|mut l| l.as_object_mut().unwrap().remove("ts")).count();
        let (a, b) = (sample(7, 50), sample(7, 50));
        assert_eq!(
            a.iter().map(|l| (&l["latency_ms"], &l["level"], &l["request_id"])).collect::<Vec<_>>(),
            b.iter().map(|l| (&l["latency_ms"], &l["level"], &l["request_id"])).collect::<Vec<_>>()
        );
        assert_eq!(strip(a), 50);
    }

    #[test]
    fn normal_db_latency_p95_stays_below_the_latency_rule_and_x5_crosses_it() {
        let mut lat: Vec<f64> = sample(1, 20_000).iter().map(|l| l["latency_ms"].as_f64().unwrap()).collect();
        lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let p95 = lat[lat.len() * 95 / 100];
        assert!(p95 < 500.0, "normal p95 {p95}");
        assert!(p95 * 5.0 > 800.0, "degraded p95 {}", p95 * 5.0);
    }
}
