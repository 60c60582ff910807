//! Failure scenarios: `KIND:SERVICE[:key=value...]`, e.g.
//!   error-burst:feed-service:at=60s:for=30s[:rate=0.5]
//!   latency:db-service:at=3m:for=1m:x5
//!   outage:auth-service:at=5m:for=90s
//!   new-error:auth-service:at=2m:for=5m[:rate=0.001]
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// This fraction of the service's logs become ERROR with a 5xx status.
    ErrorBurst { error_rate: f64 },
    /// Latencies are multiplied by this factor.
    Latency { factor: f64 },
    /// The service sends nothing.
    Outage,
    /// This fraction of the service's logs (on top of its normal errors) is a new kind of
    /// ERROR, with a message template normal traffic never produces. The default, 0.1%, lifts a
    /// 0.2% error rate to 0.3%: visible, yet far from the error-rate and error-count rules, so
    /// the new template is what there is to notice.
    NewError { rate: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub service: String,
    pub effect: Effect,
    pub at: Duration,
    pub duration: Duration,
}

impl Scenario {
    pub fn active(&self, elapsed: Duration) -> bool {
        elapsed >= self.at && elapsed < self.at + self.duration
    }

    pub fn label(&self) -> String {
        let kind = match self.effect {
            Effect::ErrorBurst { error_rate } => format!("error-burst({:.0}%)", error_rate * 100.0),
            Effect::Latency { factor } => format!("latency(x{factor})"),
            Effect::Outage => "outage".into(),
            Effect::NewError { rate } => format!("new-error({:.1}%)", rate * 100.0),
        };
        format!("{kind} on {}", self.service)
    }

    pub fn parse(s: &str) -> Result<Scenario, String> {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() < 2 {
            return Err(format!(
                "scenario {s:?}: expected KIND:SERVICE[:at=..][:for=..], e.g. error-burst:feed-service:at=60s:for=30s"
            ));
        }
        let (kind, service) = (parts[0], parts[1]);
        if service.is_empty() {
            return Err(format!("scenario {s:?}: the service is empty"));
        }
        let mut at = Duration::from_secs(60);
        let mut duration = Duration::from_secs(30);
        let mut rate = None;
        let mut factor = 5.0;
        for p in &parts[2..] {
            if let Some(v) = p.strip_prefix("at=") {
                at = parse_duration(v).map_err(|e| format!("scenario {s:?}: at: {e}"))?;
            } else if let Some(v) = p.strip_prefix("for=") {
                duration = parse_duration(v).map_err(|e| format!("scenario {s:?}: for: {e}"))?;
            } else if let Some(v) = p.strip_prefix("rate=") {
                rate = Some(
                    v.parse()
                        .ok()
                        .filter(|r: &f64| (0.0..=1.0).contains(r))
                        .ok_or(format!("scenario {s:?}: rate must be 0..1"))?,
                );
            } else if let Some(v) = p.strip_prefix('x') {
                factor = v
                    .parse()
                    .ok()
                    .filter(|f: &f64| *f > 0.0)
                    .ok_or(format!("scenario {s:?}: x must be a positive factor"))?;
            } else {
                return Err(format!("scenario {s:?}: unknown part {p:?}"));
            }
        }
        let effect = match kind {
            "error-burst" => Effect::ErrorBurst { error_rate: rate.unwrap_or(0.5) },
            "latency" => Effect::Latency { factor },
            "outage" => Effect::Outage,
            "new-error" => Effect::NewError { rate: rate.unwrap_or(0.001) },
            other => {
                return Err(format!(
                    "scenario {s:?}: unknown kind {other:?} (error-burst, latency, outage, new-error)"
                ));
            }
        };
        Ok(Scenario { service: service.to_string(), effect, at, duration })
    }
}

/// `90s`, `5m`, `1h`, `1500ms`, or plain seconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let (num, unit) = v.find(|c: char| c.is_ascii_alphabetic()).map(|i| v.split_at(i)).unwrap_or((v, "s"));
    let n: f64 = num.parse().map_err(|_| format!("{v:?} is not a duration like 30s, 5m, 1h"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{v:?}: unknown unit {unit:?}")),
    };
    if !(0.0..=86_400.0 * 7.0).contains(&secs) {
        return Err(format!("{v:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// What `logmon up` shows when no scenario is given: a burst of errors, slow responses and an
/// outage every 10 minutes; and once, in the third cycle (20 minutes in: NEW_ERROR_PATTERN
/// learns a service's messages for its lookback + baseline first), an error nobody saw before.
/// A new error is new once: later cycles would repeat a message logmon already knows.
pub fn demo_schedule(cycle: u32) -> Vec<Scenario> {
    let base = Duration::from_secs(600 * cycle as u64);
    let mut kinds = vec![
        "error-burst:feed-service:at=45s:for=30s",
        "latency:db-service:at=240s:for=60s:x5",
        "outage:auth-service:at=420s:for=90s",
    ];
    if cycle == 2 {
        kinds.push("new-error:db-service:at=330s:for=3m:rate=0.003");
    }
    kinds
        .iter()
        .map(|s| {
            let mut sc = Scenario::parse(s).expect("valid demo scenario");
            sc.at += base;
            sc
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_with_defaults_and_options() {
        let s = Scenario::parse("latency:db-service:at=3m:for=1m:x5").unwrap();
        assert_eq!(s.effect, Effect::Latency { factor: 5.0 });
        assert_eq!((s.at, s.duration), (Duration::from_secs(180), Duration::from_secs(60)));
        let s = Scenario::parse("error-burst:feed-service:rate=0.9").unwrap();
        assert_eq!(s.effect, Effect::ErrorBurst { error_rate: 0.9 });
        assert!(s.active(Duration::from_secs(70)) && !s.active(Duration::from_secs(90)));
        let s = Scenario::parse("new-error:auth-service:at=2m:for=5m").unwrap();
        assert_eq!(s.effect, Effect::NewError { rate: 0.001 });
        assert_eq!((s.at, s.duration), (Duration::from_secs(120), Duration::from_secs(300)));
        assert_eq!(Scenario::parse("new-error:a:rate=0.01").unwrap().effect, Effect::NewError { rate: 0.01 });
    }

    #[test]
    fn bad_scenarios_say_what_is_wrong() {
        assert!(Scenario::parse("flood:feed").unwrap_err().contains("unknown kind"));
        assert!(Scenario::parse("outage").unwrap_err().contains("expected KIND:SERVICE"));
        assert!(Scenario::parse("outage:a:at=soon").unwrap_err().contains("at:"));
        assert!(Scenario::parse("error-burst:a:rate=2").unwrap_err().contains("rate"));
    }
}
