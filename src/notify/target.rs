//! Where notifications go. A target's name is what SQL sees (notification_deliveries.target):
//! kind, host and a hash of the full URL, never the URL itself, which for Slack is the secret.
use reqwest::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Alertmanager webhook v4 body: receivers written for Alertmanager work unchanged.
    Webhook,
    /// Slack incoming webhook (or anything that takes `{"text": ...}`).
    Slack,
    /// Prometheus Alertmanager's API: POST /api/v2/alerts.
    Alertmanager,
}

impl Kind {
    /// The `target_format` of render_notification().
    pub fn format(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Slack => "slack",
            Kind::Alertmanager => "alertmanager",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub kind: Kind,
    /// Where the POST goes.
    pub url: Url,
    pub name: String,
}

impl Target {
    /// For Alertmanager, `url` is its base URL (http://am:9093); the API path is added.
    pub fn new(kind: Kind, url: &str) -> Result<Target, String> {
        let mut parsed = Url::parse(url.trim()).map_err(|e| format!("{} URL {url:?}: {e}", kind.format()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{} URL {url:?}: only http and https are supported", kind.format()));
        }
        if kind == Kind::Alertmanager && !parsed.path().ends_with("/api/v2/alerts") {
            let path = format!("{}/api/v2/alerts", parsed.path().trim_end_matches('/'));
            parsed.set_path(&path);
        }
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => return Err(format!("{} URL {url:?} has no host", kind.format())),
        };
        let name = format!("{}:{host}#{:08x}", kind.format(), fnv1a(parsed.as_str().as_bytes()) as u32);
        Ok(Target { kind, url: parsed, name })
    }
}

/// A stable, dependency-free hash: it only has to tell two URLs on one host apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slack_target_name_hides_the_secret_path() {
        let t = Target::new(Kind::Slack, "https://hooks.slack.com/services/T000/B000/XXXXSECRET").unwrap();
        assert!(t.name.starts_with("slack:hooks.slack.com#"), "{}", t.name);
        assert!(!t.name.contains("SECRET"));
    }

    #[test]
    fn two_webhooks_on_one_host_get_different_names() {
        let a = Target::new(Kind::Webhook, "http://127.0.0.1:9000/a").unwrap();
        let b = Target::new(Kind::Webhook, "http://127.0.0.1:9000/b").unwrap();
        assert_ne!(a.name, b.name);
        assert_eq!(a.name, Target::new(Kind::Webhook, "http://127.0.0.1:9000/a").unwrap().name);
    }

    #[test]
    fn an_alertmanager_base_url_gets_the_api_path() {
        for base in ["http://am:9093", "http://am:9093/", "http://am:9093/api/v2/alerts"] {
            assert_eq!(Target::new(Kind::Alertmanager, base).unwrap().url.as_str(), "http://am:9093/api/v2/alerts");
        }
        assert_eq!(
            Target::new(Kind::Alertmanager, "http://proxy/am").unwrap().url.as_str(),
            "http://proxy/am/api/v2/alerts"
        );
    }

    #[test]
    fn non_http_urls_are_refused() {
        assert!(Target::new(Kind::Webhook, "ftp://x/y").is_err());
        assert!(Target::new(Kind::Webhook, "not a url").is_err());
    }
}
