//! `logmon migrate`: refinery migrations (tables, indexes) and then every `sql/` file (functions,
//! triggers, views) in one transaction. Both steps are idempotent, so running it twice is a no-op.
use tokio_postgres::Client;

use super::DbError;

mod embedded {
    refinery::embed_migrations!("migrations");
}

include!(concat!(env!("OUT_DIR"), "/sql_files.rs"));

/// Serialises concurrent `logmon migrate` runs (refinery has no migration lock of its own).
const MIGRATE_LOCK: i64 = 0x6c6f_676d_6f6e_0001;

pub async fn migrate(client: &mut Client) -> Result<MigrateReport, DbError> {
    // "... does not exist, skipping" from the idempotent DROP ... IF EXISTS is not news
    client.batch_execute("SET client_min_messages = warning").await?;
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK]).await?;
    let result = run(client).await;
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK]).await?;
    result
}

#[derive(Debug)]
pub struct MigrateReport {
    pub applied_migrations: Vec<String>,
    pub sql_files: usize,
    pub partitions_created: Vec<String>,
}

async fn run(client: &mut Client) -> Result<MigrateReport, DbError> {
    let report =
        embedded::migrations::runner().run_async(client).await.map_err(|e| DbError::Migration(with_causes(&e)))?;
    let applied_migrations = report.applied_migrations().iter().map(|m| m.to_string()).collect();

    let tx = client.transaction().await?;
    // On a Citus coordinator, Citus propagates each function to the workers (the logs triggers run
    // there), but in a transaction that has run a parallel command it stops doing so, silently,
    // unless the transaction is in sequential mode. The functions that read tables kept on the
    // coordinator stay there, as they should: Citus's warning about each is not news. No-op on
    // plain PostgreSQL.
    tx.batch_execute(
        "SELECT set_config('citus.multi_shard_modify_mode', 'sequential', true),
                set_config('citus.enable_unsupported_feature_messages', 'off', true)
         FROM pg_extension WHERE extname = 'citus'",
    )
    .await?;
    for (name, text) in SQL_FILES {
        tx.batch_execute(text).await.map_err(|e| DbError::SqlFile(name.to_string(), super::describe(&e)))?;
    }
    let rows = tx.query("SELECT partition_name FROM maintain_partitions() WHERE action = 'created'", &[]).await?;
    tx.commit().await?;
    analyze_rollup_state(client).await?;
    Ok(MigrateReport {
        applied_migrations,
        sql_files: SQL_FILES.len(),
        partitions_created: rows.iter().map(|r| r.get(0)).collect(),
    })
}

/// An error and its causes: refinery's own message ends in "db error", and the database's
/// message (what failed, and where) is in its source.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// What `distribute_tables()` did with one table.
#[derive(Debug)]
pub struct Placement {
    pub table: String,
    pub placement: String,
    pub action: String,
}

/// `logmon migrate --distribute`: places the tables on a Citus cluster (sql/distribute_tables.sql),
/// in a transaction of its own. On plain PostgreSQL every table reports that nothing was done.
pub async fn distribute(client: &mut Client, shard_count: Option<i32>) -> Result<Vec<Placement>, DbError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK]).await?;
    let rows = client.query("SELECT table_name, placement, action FROM distribute_tables($1)", &[&shard_count]).await;
    // rollup_state's copies on the nodes are new tables, never analyzed
    let analyzed = match &rows {
        Ok(_) => analyze_rollup_state(client).await,
        Err(_) => Ok(()),
    };
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK]).await?;
    analyzed?;
    Ok(rows?.iter().map(|r| Placement { table: r.get(0), placement: r.get(1), action: r.get(2) }).collect())
}

/// rollup_state holds one row, and window_stats() joins it with the rollup: the planner must know
/// (a table never analyzed is estimated at thousands of rows, which makes the join look costly
/// enough for a parallel plan; autovacuum would analyze it only after 50 updates, 50 minutes of
/// compaction). A statement of its own, after the migration's transaction: on a Citus
/// coordinator, ANALYZE of the reference table in that transaction reaches the coordinator's own
/// copy over a second connection, and the GRANTs that follow then deadlock with it (40P01 in
/// sql/grants.sql); in distribute_tables()' transaction Citus refuses it outright.
async fn analyze_rollup_state(client: &Client) -> Result<(), DbError> {
    client.batch_execute("ANALYZE rollup_state").await?;
    Ok(())
}
