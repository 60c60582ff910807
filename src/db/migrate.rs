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
        embedded::migrations::runner().run_async(client).await.map_err(|e| DbError::Migration(e.to_string()))?;
    let applied_migrations = report.applied_migrations().iter().map(|m| m.to_string()).collect();

    let tx = client.transaction().await?;
    for (name, text) in SQL_FILES {
        tx.batch_execute(text).await.map_err(|e| DbError::SqlFile(name.to_string(), super::describe(&e)))?;
    }
    let rows = tx.query("SELECT partition_name FROM maintain_partitions() WHERE action = 'created'", &[]).await?;
    tx.commit().await?;
    Ok(MigrateReport {
        applied_migrations,
        sql_files: SQL_FILES.len(),
        partitions_created: rows.iter().map(|r| r.get(0)).collect(),
    })
}
