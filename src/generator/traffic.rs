//! What one simulated request log looks like: per-service long-tailed latency, status codes by
//! level, a message from the service's catalogue (`messages.rs`), and the scenario effects.
//! Deterministic for a given seed.
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use super::messages::{Catalogue, Level};
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
    /// Message texts come from their own stream: the level, status and latency draws above are
    /// exactly the ones this generator made before its messages varied (detection defaults are
    /// calibrated on them).
    text_rng: StdRng,
    profiles: Vec<Profile>,
    next: usize,
}

/// One generated log, before it becomes JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub service: String,
    pub level: &'static str,
    pub status: u16,
    pub latency_ms: f64,
    pub message: String,
    /// The template the message was made from (see `messages.rs`): a true group label.
    pub template_key: &'static str,
    pub request_id: String,
}

impl Generated {
    pub fn to_json(&self) -> Value {
        json!({
            "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "service": self.service,
            "level": self.level,
            "message": self.message,
            "latency_ms": self.latency_ms,
            "status_code": self.status,
            "request_id": self.request_id,
        })
    }
}

impl Traffic {
    pub fn new(seed: u64, profiles: Vec<Profile>) -> Traffic {
        Traffic {
            rng: StdRng::seed_from_u64(seed),
            text_rng: StdRng::seed_from_u64(seed ^ 0x6d65_7373_6167_6573),
            profiles,
            next: 0,
        }
    }

    /// The next log, or None if its service is in an outage (the slot is skipped).
    pub fn next_log(&mut self, active: &[&Scenario]) -> Option<Value> {
        self.next_generated(active).map(|g| g.to_json())
    }

    /// The next log as a record, or None if its service is in an outage.
    pub fn next_generated(&mut self, active: &[&Scenario]) -> Option<Generated> {
        let p = &self.profiles[self.next % self.profiles.len()];
        self.next += 1;
        let mut error_rate = p.error_rate;
        let mut novel_rate = 0.0;
        let mut factor = 1.0;
        for s in active.iter().filter(|s| s.service == p.name) {
            match s.effect {
                Effect::Outage => return None,
                Effect::ErrorBurst { error_rate: r } => error_rate = error_rate.max(r),
                Effect::Latency { factor: f } => factor *= f,
                Effect::NewError { rate } => novel_rate += rate,
            }
        }
        let z = normal(&mut self.rng);
        let tail = if self.rng.random_bool(0.005) { 8.0 } else { 1.0 };
        let latency = (p.median_ms * (0.6 * z).exp() * tail * factor * 100.0).round() / 100.0;
        let roll: f64 = self.rng.random();
        let (level, status, kind) = if roll < error_rate {
            ("ERROR", [500, 502, 503, 504][self.rng.random_range(0..4)], Level::Error)
        } else if roll < error_rate + novel_rate {
            ("ERROR", [500, 502, 503, 504][self.rng.random_range(0..4)], Level::NovelError)
        } else if roll < error_rate + novel_rate + p.warn_rate {
            ("WARN", [404, 409, 429][self.rng.random_range(0..3)], Level::Warn)
        } else {
            ("INFO", [200, 200, 200, 201, 204][self.rng.random_range(0..5)], Level::Info)
        };
        let request_id = format!("{:016x}", self.rng.random::<u64>());
        let (template_key, message) = Catalogue::for_service(&p.name).message(kind, &mut self.text_rng);
        Some(Generated {
            service: p.name.clone(),
            level,
            status,
            latency_ms: latency,
            message,
            template_key,
            request_id,
        })
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
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::pattern;

    fn sample(seed: u64, n: usize) -> Vec<Value> {
        let mut t = Traffic::new(seed, profiles(&["db-service".to_string()]));
        (0..n).filter_map(|_| t.next_log(&[])).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_logs() {
        let records = |seed| {
            let mut t = Traffic::new(seed, profiles(&["db-service".to_string(), "auth-service".to_string()]));
            (0..200).filter_map(|_| t.next_generated(&[])).collect::<Vec<_>>()
        };
        assert_eq!(records(7), records(7));
        assert_ne!(records(7), records(8));
        let strip = |v: Vec<Value>| v.into_iter().map(|mut l| l.as_object_mut().unwrap().remove("ts")).count();
        assert_eq!(strip(sample(7, 50)), 50);
    }

    /// The draws of the generator before its messages varied, kept here as the reference:
    /// detection defaults are calibrated on exactly these levels, statuses and latencies.
    fn calibrated_draws(seed: u64, p: &Profile, n: usize) -> Vec<(&'static str, u16, f64, String)> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let z = normal(&mut rng);
                let tail = if rng.random_bool(0.005) { 8.0 } else { 1.0 };
                let latency = (p.median_ms * (0.6 * z).exp() * tail * 100.0).round() / 100.0;
                let roll: f64 = rng.random();
                let (level, status) = if roll < p.error_rate {
                    ("ERROR", [500, 502, 503, 504][rng.random_range(0..4)])
                } else if roll < p.error_rate + p.warn_rate {
                    ("WARN", [404, 409, 429][rng.random_range(0..3)])
                } else {
                    ("INFO", [200, 200, 200, 201, 204][rng.random_range(0..5)])
                };
                (level, status, latency, format!("{:016x}", rng.random::<u64>()))
            })
            .collect()
    }

    #[test]
    fn messages_leave_the_calibrated_level_status_and_latency_draws_untouched() {
        let p = profiles(&["feed-service".to_string()]);
        let mut t = Traffic::new(11, p.clone());
        let got: Vec<_> = (0..20_000)
            .map(|_| t.next_generated(&[]).unwrap())
            .map(|g| (g.level, g.status, g.latency_ms, g.request_id))
            .collect();
        assert_eq!(got, calibrated_draws(11, &p[0], 20_000));
    }

    /// An hour of traffic from every catalogue, at 20 logs/s: (template key, template) pairs.
    fn an_hour(seed: u64, active: &[&Scenario]) -> Vec<(&'static str, String)> {
        let services = ["auth-service", "feed-service", "db-service", "billing"].map(String::from);
        let mut t = Traffic::new(seed, profiles(&services));
        (0..20 * 3600)
            .filter_map(|_| t.next_generated(active))
            .map(|g| (g.template_key, pattern::template(&g.message)))
            .collect()
    }

    #[test]
    fn an_hour_of_traffic_has_one_template_per_message_kind_however_many_ids_it_carries() {
        let hour = an_hour(3, &[]);
        let mut by_key: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (key, template) in &hour {
            by_key.entry(key).or_default().insert(template);
        }
        // Every kind seen maps to exactly one template: user names, ids, hosts and durations
        // never leak into a template, so the number of patterns cannot grow with time.
        let leaks: Vec<_> = by_key.iter().filter(|(_, t)| t.len() > 1).collect();
        assert!(leaks.is_empty(), "message kinds with several templates: {leaks:#?}");
        let distinct: BTreeSet<&str> = hour.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(distinct.len(), by_key.len(), "two kinds share a template");
        let kinds: usize = ["auth-service", "feed-service", "db-service", "billing"]
            .iter()
            .map(|s| Catalogue::for_service(s).normal_keys().count())
            .sum();
        assert!(
            distinct.len() <= kinds && distinct.len() >= kinds - 4,
            "{} templates for {kinds} kinds",
            distinct.len()
        );
        // Flat: the second half of the hour adds no template the first half did not have
        // (every kind but the rarest errors shows up within minutes).
        let first: BTreeSet<&str> = hour[..hour.len() / 2].iter().map(|(_, t)| t.as_str()).collect();
        let second: BTreeSet<&str> = hour[hour.len() / 2..].iter().map(|(_, t)| t.as_str()).collect();
        assert!(
            second.difference(&first).count() <= 1,
            "new templates late in the hour: {:?}",
            second.difference(&first)
        );
    }

    #[test]
    fn the_new_error_scenario_brings_a_template_normal_traffic_never_has() {
        let normal: BTreeSet<String> = an_hour(5, &[]).into_iter().map(|(_, t)| t).collect();
        for service in ["auth-service", "feed-service", "db-service", "billing"] {
            let scenario = Scenario::parse(&format!("new-error:{service}:at=0s:for=1h:rate=0.05")).unwrap();
            let during = an_hour(5, &[&scenario]);
            let novel: BTreeSet<&str> = during
                .iter()
                .filter(|(k, _)| *k == Catalogue::for_service(service).novel.key)
                .map(|(_, t)| t.as_str())
                .collect();
            assert_eq!(novel.len(), 1, "{service}: the new error is one template: {novel:?}");
            assert!(
                normal.iter().all(|t| !novel.contains(t.as_str())),
                "{service}: the new error's template occurs in normal traffic"
            );
        }
    }

    #[test]
    fn the_new_error_scenario_lifts_the_error_rate_a_little_on_its_service_only() {
        let p = profiles(&["auth-service".to_string(), "db-service".to_string()]);
        let scenario = Scenario::parse("new-error:auth-service").unwrap();
        let mut t = Traffic::new(9, p);
        let logs: Vec<Generated> = (0..400_000).filter_map(|_| t.next_generated(&[&scenario])).collect();
        let share = |service: &str, f: &dyn Fn(&Generated) -> bool| {
            let of: Vec<_> = logs.iter().filter(|g| g.service == service).collect();
            of.iter().filter(|g| f(g)).count() as f64 / of.len() as f64
        };
        let novel = Catalogue::for_service("auth-service").novel.key;
        let auth_errors = share("auth-service", &|g| g.level == "ERROR");
        let auth_novel = share("auth-service", &|g| g.template_key == novel);
        let db_errors = share("db-service", &|g| g.level == "ERROR");
        // 0.2% normal errors plus 0.1% new ones (binomial noise at 200k logs: ~0.01%).
        assert!((0.0025..0.0035).contains(&auth_errors), "auth-service error rate {auth_errors}");
        assert!((0.0007..0.0013).contains(&auth_novel), "new error share {auth_novel}");
        assert!((0.0015..0.0025).contains(&db_errors), "db-service error rate {db_errors}");
        assert!(
            logs.iter().filter(|g| g.template_key == novel).all(|g| g.service == "auth-service" && g.level == "ERROR")
        );
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
