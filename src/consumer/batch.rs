//! Handling batches of deliveries: decode, check, handle in one transaction, acknowledge.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::Utc;
use futures::FutureExt as _;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::HandleMessages;
use crate::db::WorkerPool;
use crate::db::retry::{self, RetryPolicy};
use crate::handlers::HandlerError;
use crate::messages::{IncomingMessage, ShardingRealm, decode_delivery};

/// How many times a message may fail for good (a permanent database error, or a panic of its
/// handler) before it is dead-lettered.
pub const MAX_POISON_FAILURES: u32 = 3;

/// How long a handler task that has seen a message of another shard goes on handling the
/// deliveries that keep arriving before the consumer restarts.
const MISROUTED_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// A message of another shard: never acknowledged, it makes the consumer restart (the
/// reference's fatal error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Misrouted(String);

/// A handler task.
pub(super) struct BatchHandler<H> {
    pub handler: Arc<H>,
    pub realm: ShardingRealm,
    pub pool: WorkerPool,
    pub batch_size: usize,
}

/// How handling one message ended.
enum Failure {
    /// It may succeed later (the database is unreachable, a concurrency failure persisted…):
    /// the message is left unacknowledged, and the consumer starts again.
    Transient(anyhow::Error),
    /// It can never succeed: a permanent database error or a panic.
    Permanent(String),
}

impl<H: HandleMessages> BatchHandler<H> {
    /// Serves batches from `rx` until it closes; on a failure, cancels `failed` and returns it.
    pub async fn serve(
        self,
        rx: Arc<Mutex<mpsc::Receiver<Delivery>>>,
        failed: CancellationToken,
    ) -> anyhow::Result<()> {
        // A message of another shard fails the consumer, but only once the deliveries that are
        // already here have been handled: the restart would otherwise send them back too.
        let mut misrouted: Option<anyhow::Error> = None;
        loop {
            let batch = {
                let mut rx = rx.lock().await;
                let next = match misrouted {
                    None => rx.recv().await,
                    Some(_) => tokio::time::timeout(MISROUTED_GRACE, rx.recv())
                        .await
                        .unwrap_or(None),
                };
                let Some(first) = next else {
                    if let Some(e) = misrouted {
                        failed.cancel();
                        return Err(e);
                    }
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
            let outcome = AssertUnwindSafe(self.process(batch)).catch_unwind().await;
            let result = outcome.unwrap_or_else(|payload| {
                let message = crate::jobs::panic_message(&*payload);
                Err(anyhow::anyhow!("a handler task panicked: {message}"))
            });
            match result {
                Ok(()) => {}
                Err(e) if e.downcast_ref::<Misrouted>().is_some() => {
                    tracing::error!("{e}");
                    misrouted.get_or_insert(e);
                }
                Err(e) => {
                    failed.cancel();
                    return Err(e);
                }
            }
        }
    }

    /// Rejects what cannot be handled, handles the rest, acknowledges after the commit. A
    /// message of another shard is left unacknowledged, and makes the consumer restart once
    /// the others are done (the reference's fatal error for a misrouted message).
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
                    metrics::counter!("swpt_trade_messages_dead_lettered_total", "type" => "invalid").increment(1);
                    reject(&delivery).await;
                }
                Ok(m) if !m.belongs_to(&self.realm) => {
                    misrouted.get_or_insert_with(|| {
                        anyhow::Error::new(Misrouted(format!(
                            "The server is not responsible for this shard ({} message, routing key \"{}\").",
                            m.message_type(),
                            delivery.routing_key
                        )))
                    });
                }
                Ok(m) => {
                    metrics::counter!("swpt_trade_messages_consumed_total", "type" => m.message_type()).increment(1);
                    valid.push((delivery, m));
                }
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
        if valid.len() > 1 {
            let messages: Vec<&IncomingMessage> = valid.iter().map(|(_, m)| m).collect();
            let together = AssertUnwindSafe(self.transaction(&messages))
                .catch_unwind()
                .await;
            if matches!(together, Ok(Ok(()))) {
                futures::future::join_all(valid.iter().map(|(delivery, _)| ack(delivery))).await;
                valid.iter().for_each(|(_, m)| metrics::counter!("swpt_trade_messages_handled_total", "type" => m.message_type()).increment(1));
                return Ok(());
            }
        }
        for (delivery, message) in &valid {
            self.handle_one(delivery, message).await?;
        }
        Ok(())
    }

    /// Handles one message in its own transactions: acknowledged after a success,
    /// dead-lettered after [`MAX_POISON_FAILURES`] permanent failures, left unacknowledged
    /// (an error) after a transient one.
    async fn handle_one(
        &self,
        delivery: &Delivery,
        message: &IncomingMessage,
    ) -> anyhow::Result<()> {
        let message_type = message.message_type();
        let mut failures = 0;
        loop {
            match self.handle_with_retries(message).await {
                Ok(()) => {
                    ack(delivery).await;
                    metrics::counter!("swpt_trade_messages_handled_total", "type" => message_type)
                        .increment(1);
                    return Ok(());
                }
                Err(Failure::Transient(e)) => {
                    return Err(e.context(format!("handling a {message_type} message failed")));
                }
                Err(Failure::Permanent(reason)) => {
                    failures += 1;
                    if failures >= MAX_POISON_FAILURES {
                        tracing::error!(
                            "Dead-lettering a {message_type} message that failed {failures} times: {reason}"
                        );
                        reject(delivery).await;
                        metrics::counter!("swpt_trade_messages_dead_lettered_total", "type" => message_type).increment(1);
                        return Ok(());
                    }
                    tracing::warn!(
                        "Handling a {message_type} message failed ({failures} of {MAX_POISON_FAILURES}): {reason}"
                    );
                }
            }
        }
    }

    /// One message, in its own transaction, retrying concurrency failures.
    async fn handle_with_retries(&self, message: &IncomingMessage) -> Result<(), Failure> {
        let one = [message];
        let attempt = retry::with_retries(RetryPolicy::HANDLER, || self.transaction(&one));
        match AssertUnwindSafe(attempt).catch_unwind().await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(Failure::Permanent(e.to_string())),
            Ok(Err(e)) => Err(Failure::Transient(e.into())),
            Err(payload) => Err(Failure::Permanent(format!(
                "the handler panicked: {}",
                crate::jobs::panic_message(&*payload)
            ))),
        }
    }

    /// Runs the handlers of `messages` in one REPEATABLE READ transaction.
    async fn transaction(&self, messages: &[&IncomingMessage]) -> Result<(), HandlerError> {
        let mut conn = self.pool.get().await?;
        let now = Utc::now();
        let handler = &self.handler;
        conn.build_transaction()
            .repeatable_read()
            .run(async |conn| {
                for m in messages {
                    handler.handle(conn, m, now).await?;
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
