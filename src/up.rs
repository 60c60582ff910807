//! `logmon up`: migrate, then collector + detector + generator in one process, for local use.
//! Ctrl-C (or SIGTERM) stops all three; the data stays in the database.
use std::time::Duration;

use tokio::sync::watch;

use crate::cli::UpArgs;
use crate::{collector, db, detector, generator};

pub async fn run(args: UpArgs) -> crate::Result {
    let url = args.collector.db.database_url.clone();
    let mut client = db::connect(&url).await?;
    db::migrate::migrate(&mut client).await?;
    drop(client);

    // Two stop signals: the generator stops first (so that it can flush what the collector can
    // still take), then the collector and the detector.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let (stop_gen_tx, stop_gen_rx) = watch::channel(false);
    let generator_stopped = move || {
        let mut rx = stop_gen_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let collector = tokio::spawn(collector::run(args.collector.config(), stopped()));
    let detector_cfg = detector::DetectorConfig {
        database_url: url.clone(),
        interval: Duration::from_secs(5),
        debounce: Duration::from_millis(100),
        maintenance_interval: Duration::from_secs(3600),
        notify: args.notify.config(Some(args.collector.listen))?,
    };
    let detector = tokio::spawn(detector::run(detector_cfg, stopped()));

    let base = crate::cli::local_url(args.collector.listen);
    println!();
    println!("logmon is up");
    println!("  overview    {base}/");
    println!("  explorer    {base}/explore");
    println!("  incidents   curl -s {base}/incidents");
    println!("  stats       curl -s '{base}/stats?window_minutes=5'");
    println!("  health      curl -s {base}/health");
    println!("  OTLP logs   OTEL_EXPORTER_OTLP_LOGS_ENDPOINT={base}/v1/logs");
    println!("  Loki push   {base}/loki/api/v1/push");
    println!("  ES bulk     {base}/_bulk");
    if let Some(a) = args.collector.syslog_tcp {
        println!("  syslog tcp  logger -n {} -P {} -T -t myapp hello", a.ip(), a.port());
    }
    if let Some(a) = args.collector.syslog_udp {
        println!("  syslog udp  logger -n {} -P {} -d -t myapp hello", a.ip(), a.port());
    }
    println!("  metrics     curl -s {base}/metrics");
    println!("  API doc     {base}/openapi.json");
    println!("  psql        psql '{}'", redact_password(&url));
    println!("  stop        Ctrl-C (data is kept)");
    println!();

    let generator = if args.no_generator {
        None
    } else {
        let cfg = args.traffic.config(base.clone())?;
        Some(tokio::spawn(generator::run(cfg, generator_stopped())))
    };
    crate::shutdown_signal().await;
    let _ = stop_gen_tx.send(true);
    if let Some(g) = generator {
        g.await??;
    }
    let _ = stop_tx.send(true);
    detector.await??;
    collector.await??;
    Ok(())
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`: URLs get printed, passwords must not.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_printed_urls() {
        assert_eq!(super::redact_password("postgres://app:s3cret@db:5432/logsdb"), "postgres://app:***@db:5432/logsdb");
        assert_eq!(super::redact_password("postgres://postgres@127.0.0.1:5/x"), "postgres://postgres@127.0.0.1:5/x");
    }
}
