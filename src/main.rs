use clap::Parser;
use logmon::cli::{Cli, Command, RulesCommand};
use logmon::{collector, db, detector, generator, rules, shutdown_signal, telemetry, up};

/// Every ingested row allocates (its fields, its attrs map, its share of the COPY buffer), and
/// requests are freed on other threads than they were parsed on: glibc's malloc and free took
/// about 30% of the collector's CPU at 1,000-row requests (perf). mimalloc's per-thread heaps
/// make that a few percent.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Migrate(args) => migrate(&args.db.database_url, args.distribute, args.shard_count).await,
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

async fn migrate(url: &str, distribute: bool, shard_count: Option<i32>) -> logmon::Result {
    let mut client = db::connect(url).await?;
    let report = db::migrate::migrate(&mut client).await?;
    tracing::info!(
        applied = ?report.applied_migrations,
        sql_files = report.sql_files,
        partitions_created = report.partitions_created.len(),
        "database is up to date"
    );
    if distribute {
        for p in db::migrate::distribute(&mut client, shard_count).await? {
            tracing::info!(table = %p.table, placement = %p.placement, action = %p.action, "placement");
        }
    }
    Ok(())
}
