//! A dedicated LISTEN connection. Notifications are folded into a one-slot channel: the detector
//! only needs to know "something new arrived", however many transactions said so.
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::DbError;

/// A LISTENing connection: `wakeups` yields once per burst of notifications and closes when the
/// connection is lost. Dropping the listener closes the connection.
pub struct Listener {
    _client: tokio_postgres::Client,
    pub wakeups: mpsc::Receiver<()>,
}

pub async fn listen(url: &str, channel: &str) -> Result<Listener, DbError> {
    let cfg = super::parse_config(url)?;
    // Not pooled: a pool's connection task drops notifications (FIELD-NOTES).
    let (client, mut conn) = cfg.connect(NoTls).await?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(msg) = messages.next().await {
            match msg {
                Ok(AsyncMessage::Notification(_)) => {
                    let _ = tx.try_send(());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "LISTEN connection ended");
                    break;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {channel}")).await?;
    Ok(Listener { _client: client, wakeups: rx })
}
