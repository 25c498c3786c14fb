//! Handling batches of deliveries: decode, check, handle in one transaction, acknowledge.

use std::sync::Arc;

use chrono::Utc;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::{DbPool, retry};
use crate::handlers::{self, HandlerError};
use crate::messages::{IncomingMessage, decode_delivery};

/// Retries of a transaction that failed with a serialization error or a deadlock.
const MAX_RETRIES: u32 = 8;
/// The longest pause between two retries.
const MAX_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_secs(10);

/// A handler task.
pub(super) struct BatchHandler {
    pub config: Arc<Config>,
    pub pool: DbPool,
    pub batch_size: usize,
}

impl BatchHandler {
    /// Serves batches from `rx` until it closes; on a failure, cancels `failed` and returns it.
    pub async fn serve(
        self,
        rx: Arc<Mutex<mpsc::Receiver<Delivery>>>,
        failed: CancellationToken,
    ) -> anyhow::Result<()> {
        loop {
            let batch = {
                let mut rx = rx.lock().await;
                let Some(first) = rx.recv().await else {
                    return Ok(());
                };
                let mut batch = vec![first];
                while batch.len() < self.batch_size {
                    match rx.try_recv() {
                        Ok(d) => batch.push(d),
                        Err(_) => break,
                    }
                }
                batch
            };
            if let Err(e) = self.process(batch).await {
                failed.cancel();
                return Err(e);
            }
        }
    }

    /// Rejects what cannot be handled, handles the rest, acknowledges after the commit. A
    /// message of another shard is left unacknowledged, and makes the consumer restart once
    /// the others are done (the reference's fatal error, worker.md §12.4).
    pub async fn process(&self, batch: Vec<Delivery>) -> anyhow::Result<()> {
        let mut misrouted = None;
        let mut valid = Vec::with_capacity(batch.len());
        for delivery in batch {
            let props = &delivery.properties;
            let content_type = props.content_type().as_ref().map(|s| s.as_str());
            let message_type = props.kind().as_ref().map(|s| s.as_str());
            match decode_delivery(content_type, message_type, &delivery.data) {
                Err(e) => {
                    tracing::error!("{e}");
                    reject(&delivery).await;
                }
                Ok(m) if !m.belongs_to(&self.config.sharding_realm) => {
                    misrouted.get_or_insert_with(|| {
                        anyhow::anyhow!(
                            "The server is not responsible for this shard ({} message, routing key \"{}\").",
                            m.message_type(),
                            delivery.routing_key
                        )
                    });
                }
                Ok(m) if !handlers::has_handler(&m) => {
                    tracing::error!("no handler yet for {}", m.message_type());
                    reject(&delivery).await;
                }
                Ok(m) => valid.push((delivery, m)),
            }
        }
        self.handle_valid(valid).await?;
        misrouted.map_or(Ok(()), Err)
    }

    /// Handles decoded messages: all in one transaction, or one by one when that fails.
    async fn handle_valid(&self, valid: Vec<(Delivery, IncomingMessage)>) -> anyhow::Result<()> {
        if valid.is_empty() {
            return Ok(());
        }
        let messages: Vec<&IncomingMessage> = valid.iter().map(|(_, m)| m).collect();
        if valid.len() > 1 && self.transaction(&messages).await.is_ok() {
            futures::future::join_all(valid.iter().map(|(delivery, _)| ack(delivery))).await;
            return Ok(());
        }
        for (delivery, message) in &valid {
            self.handle_with_retries(message).await?;
            ack(delivery).await;
        }
        Ok(())
    }

    /// Handles one message in its own transaction, retrying concurrency failures.
    async fn handle_with_retries(&self, message: &IncomingMessage) -> anyhow::Result<()> {
        let mut failures = 0;
        loop {
            match self.transaction(&[message]).await {
                Ok(()) => return Ok(()),
                Err(HandlerError::Db(e)) if retry::is_retryable(&e) && failures < MAX_RETRIES => {
                    failures += 1;
                    tokio::time::sleep(retry::retry_pause(failures, MAX_RETRY_PAUSE)).await;
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)).map_err(|e| {
                        e.context(format!(
                            "handling a {} message failed",
                            message.message_type()
                        ))
                    });
                }
            }
        }
    }

    /// Runs the handlers of `messages` in one REPEATABLE READ transaction.
    async fn transaction(&self, messages: &[&IncomingMessage]) -> Result<(), HandlerError> {
        let mut conn =
            self.pool.get().await.map_err(|e| {
                HandlerError::Fatal(format!("cannot get a database connection: {e}"))
            })?;
        let now = Utc::now();
        let config = &self.config;
        conn.build_transaction()
            .repeatable_read()
            .run(async |conn| {
                for m in messages {
                    handlers::handle(conn, config, m, now).await?;
                }
                Ok::<(), HandlerError>(())
            })
            .await
    }
}

async fn ack(delivery: &Delivery) {
    if let Err(e) = delivery.acker.ack(BasicAckOptions::default()).await {
        // Committed but not acknowledged: the message comes again, and handlers are idempotent.
        tracing::warn!("Cannot acknowledge a message: {e}");
    }
}

async fn reject(delivery: &Delivery) {
    if let Err(e) = delivery
        .acker
        .reject(BasicRejectOptions { requeue: false })
        .await
    {
        tracing::warn!("Cannot reject a message: {e}");
    }
}
