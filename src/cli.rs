//! Command line: every flag has a `LOGMON_<FLAG>` environment fallback, except the database,
//! which is `--database-url` / `DATABASE_URL` (DESIGN §1).
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(name = "logmon", version, about = "Log ingestion and incident detection on PostgreSQL")]
pub struct Cli {
    /// Log output format of this process.
    #[arg(long, global = true, env = "LOGMON_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the schema (migrations/), then re-apply every sql/ file. Idempotent.
    Migrate(MigrateArgs),
    /// Serve the HTTP API: POST /logs, GET /health, ...
    Collector(CollectorArgs),
    /// Run detection: detect_incidents() on new data and every --interval; partition upkeep;
    /// notification delivery.
    Detector(DetectorArgs),
    /// Send synthetic traffic with scheduled failure scenarios to a collector.
    Generator(GeneratorArgs),
    /// Everything in one process for local use: migrate, collector, detector and generator.
    Up(Box<UpArgs>),
    /// Detection rules: list them, or replay them over past traffic before changing them.
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// The detection rules, per-service overrides marked, with the incidents each opened in the
    /// last 7 days.
    List(DbArgs),
    /// Replays detection over past traffic (from the rollup; writes nothing) and prints the
    /// incidents the rules would have opened; with --set, before and after the change, and the
    /// difference.
    Backtest(BacktestArgs),
}

#[derive(Debug, Args, Clone)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Start of the period: a duration before now (30m, 24h, 7d) or an RFC 3339 time.
    #[arg(long)]
    pub since: String,
    /// End of the period (default now): a duration before now or an RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    /// Time between evaluations (1s, 10s, 1m, 5m; default: the rollup's resolution for the period,
    /// 1 s within its fine retention, else 1 min).
    #[arg(long, value_parser = parse_step)]
    pub step: Option<u32>,
    /// A change to try, repeatable: RULE.field=value (every row of that name) or
    /// RULE@SERVICE.field=value (that service's override, made from the default row if missing),
    /// e.g. ERROR_SPIKE.threshold=300, LATENCY_SPIKE.lookback=10m, NO_DATA@batch.enabled=false.
    #[arg(long = "set")]
    pub changes: Vec<String>,
    /// Lists the incidents of both runs, not just the difference.
    #[arg(long)]
    pub all: bool,
}

/// A duration before now, as the API and the CLI take it: 30s, 90m, 24h, 7d.
pub fn parse_ago(v: &str) -> Option<chrono::Duration> {
    let v = v.trim();
    let unit = v.chars().last()?;
    let n: i64 = v[..v.len() - unit.len_utf8()].parse().ok().filter(|n| (1..=999_999).contains(n))?;
    match unit {
        's' => Some(chrono::Duration::seconds(n)),
        'm' => Some(chrono::Duration::minutes(n)),
        'h' => Some(chrono::Duration::hours(n)),
        'd' => Some(chrono::Duration::days(n)),
        _ => None,
    }
}

fn parse_step(v: &str) -> Result<u32, String> {
    let d = parse_ago(v).or_else(|| v.parse::<i64>().ok().map(chrono::Duration::seconds));
    match d.map(|d| d.num_seconds()) {
        Some(s) if (1..=86_400).contains(&s) => Ok(s as u32),
        _ => Err(format!("{v:?} is not a step like 1s, 10s, 1m (1 second to 1 day)")),
    }
}

#[derive(Debug, Args, Clone)]
pub struct GeneratorArgs {
    /// The collector's base URL.
    #[arg(long, env = "LOGMON_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[command(flatten)]
    pub traffic: TrafficArgs,
}

#[derive(Debug, Args, Clone)]
pub struct TrafficArgs {
    /// Logs per second, all services together.
    #[arg(long, env = "LOGMON_RATE", default_value_t = 200.0)]
    pub rate: f64,
    /// Logs per request (the original generator sent 30).
    #[arg(long, env = "LOGMON_BATCH", default_value_t = 30)]
    pub batch: usize,
    /// Simulated services, comma-separated.
    #[arg(
        long,
        env = "LOGMON_SERVICES",
        value_delimiter = ',',
        default_value = "auth-service,feed-service,db-service"
    )]
    pub services: Vec<String>,
    /// Seed of the random traffic: the same seed gives the same logs.
    #[arg(long, env = "LOGMON_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Stop after this long (e.g. 90s, 10m); default: run until Ctrl-C.
    #[arg(long, env = "LOGMON_DURATION", value_parser = crate::generator::scenario::parse_duration)]
    pub duration: Option<Duration>,
    /// A failure scenario, repeatable: error-burst:SERVICE:at=60s:for=30s[:rate=0.5],
    /// new-error:SERVICE:at=..:for=..[:rate=0.001] (a novel error message),
    /// latency:SERVICE:at=..:for=..:x5, outage:SERVICE:at=..:for=... Without any, a demo schedule
    /// (one of each every 10 minutes) runs; `--scenario none` sends normal traffic only.
    #[arg(long = "scenario", env = "LOGMON_SCENARIO", value_delimiter = ';')]
    pub scenarios: Vec<String>,
    /// Concurrent requests in flight.
    #[arg(long, env = "LOGMON_SENDERS", default_value_t = 4)]
    pub senders: usize,
    /// Seconds between progress lines.
    #[arg(long, env = "LOGMON_REPORT_EVERY", default_value_t = 5)]
    pub report_every: u64,
}

impl TrafficArgs {
    pub fn config(&self, url: String) -> Result<crate::generator::GeneratorConfig, String> {
        let none = self.scenarios.iter().any(|s| s == "none");
        let scenarios = self
            .scenarios
            .iter()
            .filter(|s| *s != "none")
            .map(|s| crate::generator::scenario::Scenario::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::generator::GeneratorConfig {
            url,
            rate: self.rate,
            batch: self.batch,
            services: self.services.clone(),
            seed: self.seed,
            duration: self.duration,
            demo: scenarios.is_empty() && !none,
            scenarios,
            senders: self.senders,
            report_every: Duration::from_secs(self.report_every.max(1)),
        })
    }
}

#[derive(Debug, Args, Clone)]
pub struct UpArgs {
    #[command(flatten)]
    pub collector: CollectorArgs,
    #[command(flatten)]
    pub traffic: TrafficArgs,
    #[command(flatten)]
    pub notify: NotifyArgs,
    /// Do not run the generator (collector and detector only).
    #[arg(long, env = "LOGMON_NO_GENERATOR")]
    pub no_generator: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DetectorArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Seconds between detection ticks when no new data arrives.
    #[arg(long, env = "LOGMON_INTERVAL", default_value_t = 5.0)]
    pub interval: f64,
    /// Milliseconds to gather a burst of new-data notifications before a tick.
    #[arg(long, env = "LOGMON_DEBOUNCE_MS", default_value_t = 100)]
    pub debounce_ms: u64,
    /// Seconds between maintain_partitions() runs.
    #[arg(long, env = "LOGMON_MAINTENANCE_INTERVAL", default_value_t = 3600)]
    pub maintenance_interval: u64,
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// Where the detector delivers notifications (none: it leaves the outbox alone). URLs may hold
/// secrets (a Slack webhook's path is one), so --help never shows their env values.
#[derive(Debug, Args, Clone, Default)]
pub struct NotifyArgs {
    /// Webhook receiver getting Alertmanager's webhook v4 body (repeatable; env: comma-separated).
    #[arg(long = "webhook-url", env = "LOGMON_WEBHOOK_URL", value_delimiter = ',', hide_env_values = true)]
    pub webhook_urls: Vec<String>,
    /// Slack incoming webhook (or any receiver of {"text": ...}).
    #[arg(long = "slack-webhook-url", env = "LOGMON_SLACK_WEBHOOK_URL", value_delimiter = ',', hide_env_values = true)]
    pub slack_webhook_urls: Vec<String>,
    /// Prometheus Alertmanager base URL, e.g. http://alertmanager:9093 (repeatable, for an HA pair).
    #[arg(long = "alertmanager-url", env = "LOGMON_ALERTMANAGER_URL", value_delimiter = ',', hide_env_values = true)]
    pub alertmanager_urls: Vec<String>,
    /// logmon's URL as people reach it, for links in notifications (default: what `logmon up`
    /// listens on; http://127.0.0.1:8080 for a detector on its own).
    #[arg(long, env = "LOGMON_PUBLIC_URL")]
    pub public_url: Option<String>,
}

impl NotifyArgs {
    /// `listen`: where this process's collector listens, if it runs one (`logmon up`).
    pub fn config(&self, listen: Option<SocketAddr>) -> Result<crate::notify::NotifyConfig, String> {
        use crate::notify::{Kind, Target};
        let urls = [
            (Kind::Webhook, &self.webhook_urls),
            (Kind::Slack, &self.slack_webhook_urls),
            (Kind::Alertmanager, &self.alertmanager_urls),
        ];
        let targets = urls
            .into_iter()
            .flat_map(|(kind, list)| list.iter().filter(|u| !u.trim().is_empty()).map(move |u| Target::new(kind, u)))
            .collect::<Result<Vec<_>, _>>()?;
        let public_url = match (&self.public_url, listen) {
            (Some(u), _) => u.clone(),
            (None, Some(addr)) => local_url(addr),
            (None, None) => "http://127.0.0.1:8080".to_string(),
        };
        Ok(crate::notify::NotifyConfig::new(targets, public_url))
    }
}

impl DetectorArgs {
    pub fn config(&self) -> Result<crate::detector::DetectorConfig, String> {
        Ok(crate::detector::DetectorConfig {
            database_url: self.db.database_url.clone(),
            interval: Duration::from_secs_f64(self.interval.max(0.05)),
            debounce: Duration::from_millis(self.debounce_ms),
            maintenance_interval: Duration::from_secs(self.maintenance_interval.max(1)),
            notify: self.notify.config(None)?,
        })
    }
}

#[derive(Debug, Args, Clone)]
pub struct DbArgs {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
}

#[derive(Debug, Args, Clone)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// On a Citus coordinator, then distribute logs and the per-service tables by service
    /// (distribute_tables()); the other tables stay on the coordinator. Idempotent; changes nothing
    /// on plain PostgreSQL.
    #[arg(long, env = "LOGMON_DISTRIBUTE")]
    pub distribute: bool,
    /// Shards of logs when it is distributed now (default: Citus's citus.shard_count).
    #[arg(long, env = "LOGMON_SHARD_COUNT", requires = "distribute", value_parser = clap::value_parser!(i32).range(1..=64000))]
    pub shard_count: Option<i32>,
}

#[derive(Debug, Args, Clone)]
pub struct CollectorArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Address to listen on.
    #[arg(long, env = "LOGMON_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Database connections for API reads (the ingest writers have their own).
    #[arg(long, env = "LOGMON_POOL_SIZE", default_value_t = 8)]
    pub pool_size: usize,
    /// Group-commit writer tasks (each one database connection).
    #[arg(long, env = "LOGMON_WRITERS", default_value_t = 3)]
    pub writers: usize,
    /// Rows accepted but not yet committed before new requests get 503 + Retry-After.
    #[arg(long, env = "LOGMON_MAX_QUEUED_ROWS", default_value_t = 200_000)]
    pub max_queued_rows: usize,
    /// Most rows in one group-commit transaction.
    #[arg(long, env = "LOGMON_MAX_BATCH_ROWS", default_value_t = 20_000)]
    pub max_batch_rows: usize,
    /// Batches of at least this many rows are committed in parallel (one per writer); smaller
    /// ones one at a time, each gathering the requests that arrive while the previous commits.
    #[arg(long, env = "LOGMON_PARALLEL_MIN_ROWS", default_value_t = 1_000)]
    pub parallel_min_rows: usize,
    /// Milliseconds a writer waits for more requests before committing a small batch.
    #[arg(long, env = "LOGMON_LINGER_MS", default_value_t = 0)]
    pub linger_ms: u64,
    /// Milliseconds after a small commit's answers during which the next small batch waits for
    /// those senders to send again, so that they share its transaction: fewer transactions, for a
    /// database short of CPU (0 = never).
    #[arg(long, env = "LOGMON_FOLLOW_UP_MS", default_value_t = 0)]
    pub follow_up_ms: u64,
    /// Largest request body in bytes, measured after decompression.
    #[arg(long, env = "LOGMON_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most log items in one request.
    #[arg(long, env = "LOGMON_MAX_ITEMS", default_value_t = 50_000)]
    pub max_items: usize,
    /// Seconds a client may take to send a request body.
    #[arg(long, env = "LOGMON_BODY_TIMEOUT", default_value_t = 30)]
    pub body_timeout: u64,
    /// Most lines one NDJSON export of GET /logs streams (a capped export says so in its last line).
    #[arg(long, env = "LOGMON_MAX_EXPORT_ROWS", default_value_t = 100_000)]
    pub max_export_rows: usize,
    /// Seconds a client may take to send a request's headers.
    #[arg(long, env = "LOGMON_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,
    /// Most open client connections; beyond it, new connections wait in the listen backlog.
    #[arg(long, env = "LOGMON_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Bearer token required by POST /logs (default: none required).
    #[arg(long, env = "LOGMON_INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<String>,
    /// Bearer token required by POST /incidents/{id}/ack and /resolve (default: none required).
    #[arg(long, env = "LOGMON_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Accept syslog over TCP on this address (RFC 5424 / 3164, octet-counted or newline
    /// framing), e.g. 0.0.0.0:6514. Default: off.
    #[arg(long, env = "LOGMON_SYSLOG_TCP")]
    pub syslog_tcp: Option<SocketAddr>,
    /// Accept syslog over UDP on this address, e.g. 0.0.0.0:5514. Default: off.
    #[arg(long, env = "LOGMON_SYSLOG_UDP")]
    pub syslog_udp: Option<SocketAddr>,
}

impl CollectorArgs {
    pub fn config(&self) -> crate::collector::CollectorConfig {
        crate::collector::CollectorConfig {
            database_url: self.db.database_url.clone(),
            listen: self.listen,
            pool_size: self.pool_size,
            batcher: crate::ingest::batcher::BatcherConfig {
                writers: self.writers,
                max_queued_rows: self.max_queued_rows,
                max_batch_rows: self.max_batch_rows,
                linger: Duration::from_millis(self.linger_ms),
                parallel_min_rows: self.parallel_min_rows,
                follow_up: Duration::from_millis(self.follow_up_ms),
            },
            limits: crate::api::ApiLimits {
                max_body_bytes: self.max_body_bytes,
                body_timeout: Duration::from_secs(self.body_timeout),
                max_export_rows: self.max_export_rows.max(1),
                ingest_token: self.ingest_token.as_deref().filter(|t| !t.is_empty()).map(crate::api::auth::Secret::new),
                admin_token: self.admin_token.as_deref().filter(|t| !t.is_empty()).map(crate::api::auth::Secret::new),
            },
            ingest: crate::ingest::pipeline::IngestLimits { max_items: self.max_items, fields: Default::default() },
            server: crate::api::server::ServerLimits {
                max_connections: self.max_connections,
                header_timeout: Duration::from_secs(self.header_timeout.max(1)),
            },
            syslog: crate::syslog::SyslogConfig {
                tcp: self.syslog_tcp,
                udp: self.syslog_udp,
                // a batch must fit the queue budget and the item limit, or it could never be stored
                max_batch: 4096.min(self.max_queued_rows).min(self.max_items).max(1),
                max_connections: self.max_connections,
                ..Default::default()
            },
        }
    }
}

/// A URL for an address the collector listens on; a wildcard address means "this machine".
pub fn local_url(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_before_now_are_a_number_and_a_unit() {
        assert_eq!(parse_ago("7d"), Some(chrono::Duration::days(7)));
        assert_eq!(parse_ago("90m"), Some(chrono::Duration::minutes(90)));
        assert_eq!(parse_ago("24h"), Some(chrono::Duration::hours(24)));
        assert_eq!(parse_ago("30s"), Some(chrono::Duration::seconds(30)));
        for bad in ["0d", "7", "d", "7w", "-1h", "1.5h", "", "7dd"] {
            assert_eq!(parse_ago(bad), None, "{bad}");
        }
        assert_eq!(parse_step("1m"), Ok(60));
        assert_eq!(parse_step("15"), Ok(15));
        assert!(parse_step("2d").is_err());
    }

    #[test]
    fn the_public_url_follows_listen_unless_set() {
        let args = NotifyArgs::default();
        let cfg = args.config(Some("127.0.0.1:9090".parse().unwrap())).unwrap();
        assert_eq!(cfg.public_url, "http://127.0.0.1:9090");
        assert_eq!(args.config(Some("0.0.0.0:80".parse().unwrap())).unwrap().public_url, "http://127.0.0.1:80");
        assert_eq!(args.config(None).unwrap().public_url, "http://127.0.0.1:8080");
        let set = NotifyArgs { public_url: Some("https://logmon.example.com".into()), ..NotifyArgs::default() };
        assert_eq!(
            set.config(Some("127.0.0.1:9090".parse().unwrap())).unwrap().public_url,
            "https://logmon.example.com"
        );
    }
}
