use clap::Parser;
use logmon::cli::{Cli, Command};
use logmon::{collector, db, detector, shutdown_signal, telemetry};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Migrate(args) => migrate(&args.database_url).await,
        Command::Collector(args) => collector::run(args.config(), shutdown_signal()).await,
        Command::Detector(args) => detector::run(args.config(), shutdown_signal()).await,
    };
    if let Err(e) = result {
        tracing::error!("{e}");
        eprintln!("logmon: {e}");
        std::process::exit(1);
    }
}

async fn migrate(url: &str) -> logmon::Result {
    let mut client = db::connect(url).await?;
    let report = db::migrate::migrate(&mut client).await?;
    tracing::info!(
        applied = ?report.applied_migrations,
        sql_files = report.sql_files,
        partitions_created = report.partitions_created.len(),
        "database is up to date"
    );
    Ok(())
}
