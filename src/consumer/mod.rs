//! Consuming SMP messages (see `docs/messages.md#incoming-messages`).
//!
//! Each consumer "process" is a task with its own connection and channel; its deliveries go
//! to a bounded work queue served by `threads` handler tasks. A handler task takes the
//! deliveries that are ready (up to a batch size), rejects the malformed ones to the
//! dead-letter queue, handles the rest in one REPEATABLE READ transaction and acknowledges
//! them after the commit; when that transaction fails, it handles them one by one, retrying
//! serialization failures. A message that the database refuses for good, or whose handler
//! panics, is tried [`MAX_POISON_FAILURES`] times and then dead-lettered, so that the
//! messages behind it are handled. A message that fails for any other reason is not
//! acknowledged: the consumer closes its connection (the broker delivers the message again)
//! and the [`Runner`] starts it again after a back-off pause.

mod batch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use futures::StreamExt as _;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

pub use batch::MAX_POISON_FAILURES;

use crate::config::Config;
use crate::db::WorkerPool;
use crate::handlers::{self, HandlerError};
use crate::jobs::{OnFailure, Runner};
use crate::messages::{IncomingMessage, ShardingRealm};

/// How a consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// The broker's URL.
    pub url: String,
    /// The queue to consume from.
    pub queue: String,
    /// Concurrent consumers, each with its own connection.
    pub processes: u32,
    /// Concurrent handler tasks per consumer.
    pub threads: u32,
    /// `basic.qos` prefetch count (raised to `threads × batch_size` when lower).
    pub prefetch_count: u16,
    /// The most messages handled in one transaction.
    pub batch_size: u16,
    /// Pause consuming now and then, so that the queue can be deleted (see
    /// `docs/operations.md#draining-a-queue`).
    pub draining_mode: bool,
}

impl ConsumerSettings {
    /// The prefetch count asked from the broker: enough for every handler task to fill a
    /// batch while the previous one commits.
    pub fn effective_prefetch(&self) -> u16 {
        let batches = 2 * u32::from(self.batch_size.max(1)) * self.threads.max(1);
        self.prefetch_count
            .max(u16::try_from(batches).unwrap_or(u16::MAX))
    }
}

/// What the consumer does with a valid message of its shard. [`Handlers`] is the service's;
/// tests may wrap it.
pub trait HandleMessages: Send + Sync + 'static {
    /// Applies `message` within the caller's transaction.
    fn handle(
        &self,
        conn: &mut AsyncPgConnection,
        message: &IncomingMessage,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// The service's handlers ([`handlers::handler`]) with what they need.
pub type Handlers = handlers::Context;

impl HandleMessages for Handlers {
    async fn handle(
        &self,
        conn: &mut AsyncPgConnection,
        message: &IncomingMessage,
        now: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        handlers::handler(message).run(conn, self, now).await
    }
}

/// Spawns `settings.processes` consumers on `runner`, each a service that reconnects with
/// back-off after a failure (a lost connection, a message it could not handle, a panic).
pub fn spawn<H: HandleMessages>(
    runner: &Runner,
    settings: ConsumerSettings,
    realm: ShardingRealm,
    handler: Arc<H>,
    pool: WorkerPool,
) {
    tracing::info!(
        "Spawning {} consumers of \"{}\".",
        settings.processes,
        settings.queue
    );
    for n in 0..settings.processes {
        let (settings, handler, pool) = (settings.clone(), handler.clone(), pool.clone());
        runner.spawn_service(format!("Consumer {n}"), OnFailure::Restart, move |stop| {
            let (settings, handler, pool) = (settings.clone(), handler.clone(), pool.clone());
            async move {
                consume(n, &settings, realm, handler, &pool, &stop).await?;
                tracing::info!("Consumer {n} stopped processing messages.");
                Ok(())
            }
        });
    }
}

/// Runs `settings.processes` consumers with the service's handlers until `stop` is cancelled
/// (then waits at most `APP_SHUTDOWN_TIMEOUT` for the messages in flight).
///
/// # Errors
///
/// When the messages in flight could not be finished in time.
pub async fn run(
    settings: ConsumerSettings,
    config: Arc<Config>,
    pool: WorkerPool,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let runner = Runner::new(&stop, config.processes.shutdown_timeout);
    let realm = config.sharding_realm;
    let handlers = Handlers::new(config, "consume_messages")?;
    spawn(&runner, settings, realm, Arc::new(handlers), pool);
    runner.wait().await
}

/// Consumes on one connection until `stop` (Ok) or a failure (Err).
async fn consume<H: HandleMessages>(
    n: u32,
    settings: &ConsumerSettings,
    realm: ShardingRealm,
    handler: Arc<H>,
    pool: &WorkerPool,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let conn = crate::broker::connect(&settings.url).await?;
    let channel = conn.create_channel().await?;
    channel
        .basic_qos(
            settings.effective_prefetch(),
            BasicQosOptions { global: false },
        )
        .await?;
    tracing::info!("Consumer {n} started processing messages.");
    // Every prefetched delivery can wait in the work queue, so that batches fill up.
    let capacity = usize::from(settings.effective_prefetch()).max(1);
    let (tx, rx) = mpsc::channel(capacity);
    let rx = Arc::new(Mutex::new(rx));
    let failed = CancellationToken::new();
    let handlers: Vec<_> = (0..settings.threads.max(1))
        .map(|_| {
            let worker = batch::BatchHandler {
                handler: handler.clone(),
                realm,
                pool: pool.clone(),
                batch_size: usize::from(settings.batch_size.max(1)),
            };
            let (rx, failed) = (rx.clone(), failed.clone());
            tokio::spawn(async move { worker.serve(rx, failed).await })
        })
        .collect();
    let dispatched = dispatch(&channel, settings, tx, stop, &failed).await;
    let mut outcome = dispatched;
    for h in handlers {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => outcome = outcome.and(Err(e)),
            Err(e) => outcome = outcome.and(Err(anyhow!("a handler task failed: {e}"))),
        }
    }
    if outcome.is_err() || failed.is_cancelled() {
        // Unacknowledged deliveries go back to the queue when the connection closes.
        let _ = conn.close(200, "consumer failure".into()).await;
        return outcome.and(Err(anyhow!("a message could not be handled")));
    }
    let _ = conn.close(200, "stopped".into()).await;
    Ok(())
}

async fn start_consuming(channel: &Channel, queue: &str) -> anyhow::Result<Consumer> {
    channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("cannot consume from \"{queue}\""))
}

/// Feeds deliveries to the handler tasks until `stop` or `failed`; in draining mode it also
/// pauses consuming whenever the queue has been idle for a while.
async fn dispatch(
    channel: &Channel,
    settings: &ConsumerSettings,
    tx: mpsc::Sender<lapin::message::Delivery>,
    stop: &CancellationToken,
    failed: &CancellationToken,
) -> anyhow::Result<()> {
    let mut consumer = start_consuming(channel, &settings.queue).await?;
    let mut drain_pause = Duration::from_secs(15);
    let mut idle_ticks = 0u64;
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => break,
            () = failed.cancelled() => break,
            next = tokio::time::timeout(Duration::from_secs(1), consumer.next()) => next,
        };
        match next {
            Ok(Some(Ok(delivery))) => {
                idle_ticks = 0;
                if tx.send(delivery).await.is_err() {
                    break; // every handler task has ended
                }
            }
            Ok(Some(Err(e))) => return Err(e).context("the broker connection failed"),
            Ok(None) => return Err(anyhow!("the broker cancelled the consumer")),
            Err(_) => {
                idle_ticks += 1;
                if settings.draining_mode && idle_ticks > 1 + drain_pause.as_secs() / 20 {
                    channel
                        .basic_cancel(consumer.tag(), BasicCancelOptions::default())
                        .await?;
                    drain(drain_pause, stop).await;
                    if stop.is_cancelled() {
                        return Ok(());
                    }
                    drain_pause = (drain_pause * 2).min(Duration::from_secs(3600));
                    consumer = start_consuming(channel, &settings.queue).await?;
                    idle_ticks = 0;
                }
            }
        }
    }
    let _ = channel
        .basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .await;
    if stop.is_cancelled() && !failed.is_cancelled() {
        // A stop finishes what the broker has already handed over (unless the handlers
        // failed), rather than leaving it to be delivered again: the stream yields those
        // deliveries, then ends once the cancellation is confirmed.
        while let Ok(Some(Ok(delivery))) =
            tokio::time::timeout(Duration::from_secs(1), consumer.next()).await
        {
            if tx.send(delivery).await.is_err() {
                break;
            }
        }
    }
    Ok(())
}

/// The consumer-free window of draining mode: until `now + (now mod pause)` (Unix seconds).
async fn drain(pause: Duration, stop: &CancellationToken) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let window = Duration::from_secs(now.as_secs() % pause.as_secs().max(1));
    tracing::info!("Draining mode: not consuming for {window:?}.");
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(window) => {}
    }
}
