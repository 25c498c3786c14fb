//! The exchanges, queues and bindings a worker needs, declared with exactly the reference's
//! names, types and arguments (docs/messages.md#rabbitmq-topology), so that a broker set up by
//! either implementation works with the other.

use std::time::Duration;

use anyhow::Context as _;
use lapin::options::{
    ExchangeBindOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Connection, ExchangeKind};

use super::{CA_LOOPBACK_FILTER, CREDITORS_IN, CREDITORS_OUT, TO_TRADE};

/// The name of a queue's dead-letter queue.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.XQ")
}

fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(ShortString::from(*k), v.clone());
    }
    t
}

fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// How every exchange of the service is declared.
pub(crate) const DURABLE_EXCHANGE: ExchangeDeclareOptions = ExchangeDeclareOptions {
    passive: false,
    durable: true,
    auto_delete: false,
    internal: false,
    nowait: false,
};
const DURABLE_QUEUE: QueueDeclareOptions = QueueDeclareOptions {
    passive: false,
    durable: true,
    exclusive: false,
    auto_delete: false,
    nowait: false,
};

/// Declares the exchanges, `queue`, its dead-letter queue and the bindings, in the
/// reference's order. Idempotent; objects that exist with other arguments make it fail.
pub async fn subscribe(conn: &Connection, queue: &str, routing_key: &str) -> anyhow::Result<()> {
    let ch = conn.create_channel().await?;
    ch.exchange_declare(
        CREDITORS_IN.into(),
        ExchangeKind::Headers,
        DURABLE_EXCHANGE,
        FieldTable::default(),
    )
    .await
    .with_context(|| format!("cannot declare the \"{CREDITORS_IN}\" exchange"))?;
    ch.exchange_declare(
        CA_LOOPBACK_FILTER.into(),
        ExchangeKind::Headers,
        DURABLE_EXCHANGE,
        FieldTable::default(),
    )
    .await
    .with_context(|| format!("cannot declare the \"{CA_LOOPBACK_FILTER}\" exchange"))?;
    let alternate = table(&[("alternate-exchange", long_string(CA_LOOPBACK_FILTER))]);
    ch.exchange_declare(
        CREDITORS_OUT.into(),
        ExchangeKind::Topic,
        DURABLE_EXCHANGE,
        alternate,
    )
    .await
    .with_context(|| format!("cannot declare the \"{CREDITORS_OUT}\" exchange"))?;
    ch.exchange_declare(
        TO_TRADE.into(),
        ExchangeKind::Topic,
        DURABLE_EXCHANGE,
        FieldTable::default(),
    )
    .await
    .with_context(|| format!("cannot declare the \"{TO_TRADE}\" exchange"))?;

    let ca_trade = table(&[
        ("x-match", long_string("all")),
        ("ca-trade", AMQPValue::Boolean(true)),
    ]);
    ch.exchange_bind(
        TO_TRADE.into(),
        CREDITORS_IN.into(),
        "".into(),
        ExchangeBindOptions::default(),
        ca_trade,
    )
    .await
    .context("cannot bind the creditors_in exchange to to_trade")?;
    tracing::info!("Created a binding from \"{CREDITORS_IN}\" to the \"{TO_TRADE}\" exchange.");

    let dlq = dead_letter_queue(queue);
    ch.queue_declare(dlq.as_str().into(), DURABLE_QUEUE, FieldTable::default())
        .await
        .with_context(|| format!("cannot declare the \"{dlq}\" queue"))?;
    tracing::info!("Declared \"{dlq}\" dead-letter queue.");

    let dead_lettering = table(&[
        ("x-dead-letter-exchange", long_string("")),
        ("x-dead-letter-routing-key", long_string(&dlq)),
    ]);
    ch.queue_declare(queue.into(), DURABLE_QUEUE, dead_lettering)
        .await
        .with_context(|| format!("cannot declare the \"{queue}\" queue"))?;
    tracing::info!("Declared \"{queue}\" queue.");

    ch.queue_bind(
        queue.into(),
        TO_TRADE.into(),
        routing_key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .with_context(|| format!("cannot bind \"{queue}\" to \"{TO_TRADE}\""))?;
    tracing::info!(
        "Created a binding from \"{TO_TRADE}\" to \"{queue}\" with routing key \"{routing_key}\"."
    );
    ch.close(200, "done".into()).await?;
    Ok(())
}

/// Removes the binding from `to_trade` to `queue` with `routing_key`; nothing else.
pub async fn unsubscribe(conn: &Connection, queue: &str, routing_key: &str) -> anyhow::Result<()> {
    let ch = conn.create_channel().await?;
    ch.queue_unbind(
        queue.into(),
        TO_TRADE.into(),
        routing_key.into(),
        FieldTable::default(),
    )
    .await
    .with_context(|| format!("cannot remove the binding from \"{TO_TRADE}\" to \"{queue}\""))?;
    tracing::info!(
        "Removed binding from \"{TO_TRADE}\" to \"{queue}\" with routing key \"{routing_key}\"."
    );
    ch.close(200, "done".into()).await?;
    Ok(())
}

/// How often `delete_queue` checks whether the queue is empty.
pub const DELETE_QUEUE_POLL: Duration = Duration::from_secs(3);

/// Waits until `queue` has no ready messages, then deletes it (its dead-letter queue stays).
/// A queue that does not exist counts as deleted.
pub async fn delete_queue(conn: &Connection, queue: &str, poll: Duration) -> anyhow::Result<()> {
    loop {
        let ch = conn.create_channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..DURABLE_QUEUE
        };
        match ch
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
        {
            Err(e) if is_not_found(&e) => {
                tracing::info!("Queue \"{queue}\" does not exist.");
                return Ok(());
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot inspect the \"{queue}\" queue"));
            }
            Ok(q) if q.message_count() == 0 => {
                ch.queue_delete(queue.into(), QueueDeleteOptions::default())
                    .await
                    .with_context(|| format!("cannot delete the \"{queue}\" queue"))?;
                tracing::info!("Deleted \"{queue}\" queue.");
                let _ = ch.close(200, "done".into()).await;
                return Ok(());
            }
            Ok(q) => {
                tracing::info!(
                    "Queue \"{queue}\" still has {} messages; waiting.",
                    q.message_count()
                );
                let _ = ch.close(200, "done".into()).await;
            }
        }
        tokio::time::sleep(poll).await;
    }
}

/// Whether a channel error is the broker's 404 NOT_FOUND.
fn is_not_found(e: &lapin::Error) -> bool {
    e.to_string().contains("NOT_FOUND") || e.to_string().contains("404")
}
