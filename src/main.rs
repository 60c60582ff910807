use clap::Parser;
use logmon::cli::{Cli, Command, RulesCommand};
use logmon::{collector, db, detector, generator, rules, shutdown_signal, telemetry, up};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Migrate(args) => migrate(&args.database_url).await,
        Command::Collector(args) => collector::run(args.config(), shutdown_signal()).await,
        Command::Detector(args) => match args.config() {
            Ok(cfg) => detector::run(cfg, shutdown_signal()).await,
            Err(e) => Err(e.into()),
        },
        Command::Generator(args) => match args.traffic.config(args.url.clone()) {
            Ok(cfg) => generator::run(cfg, shutdown_signal()).await.and_then(|s| {
                if s.failed > 0 {
                    Err(format!("{} logs were refused by the collector", s.failed).into())
                } else {
                    Ok(())
                }
            }),
            Err(e) => Err(e.into()),
        },
        Command::Up(args) => up::run(*args).await,
        Command::Rules(RulesCommand::List(args)) => rules::list(&args.database_url).await,
        Command::Rules(RulesCommand::Backtest(args)) => rules::backtest(&args).await,
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
