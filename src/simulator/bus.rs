//! The simulator on RabbitMQ (docs/messages.md#rabbitmq-topology): it consumes what the
//! workers publish towards accounting authorities from a queue of its own bound to
//! `creditors_out` with `#`, and publishes, with publisher confirms,
//!
//! - the authority's answers to `creditors_in`, with the header `ca-trade: true` (the
//!   exchange-to-exchange binding takes them to `to_trade`) and the binary routing key of
//!   the creditor, as an accounting authority's gateway does;
//! - the Creditors Agent's messages to `to_trade`, keyed by the creditor;
//! - `NeededCollector` messages (the crate's own envelope) to `to_trade`.

use anyhow::Context as _;
use lapin::options::{
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ExchangeKind};

use crate::broker::topology::DURABLE_EXCHANGE;
use crate::broker::{CA_LOOPBACK_FILTER, CREDITORS_IN, CREDITORS_OUT, TO_TRADE};
use crate::messages::{CONTENT_TYPE_JSON, IncomingMessage, OutgoingMessage};

/// The `app_id` of the accounting authority's messages.
pub const AUTHORITY_APP_ID: &str = "swpt_accounts";
/// The `app_id` of the Creditors Agent's messages.
pub const AGENT_APP_ID: &str = "swpt_creditors";

/// A message ready to publish.
#[derive(Debug, Clone)]
pub struct Publication {
    pub exchange: &'static str,
    pub routing_key: String,
    pub message_type: &'static str,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
}

fn headers(entries: Vec<(&'static str, AMQPValue)>) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in entries {
        table.insert(ShortString::from(name), value);
    }
    table
}

fn int(n: i64) -> AMQPValue {
    match i32::try_from(n) {
        Ok(small) => AMQPValue::LongInt(small),
        Err(_) => AMQPValue::LongLongInt(n),
    }
}

fn properties(app_id: &str, message_type: &str, headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_app_id(app_id.into())
        .with_content_type(CONTENT_TYPE_JSON.into())
        .with_type(message_type.into())
        .with_headers(headers)
}

/// An accounting authority's message to a creditor (an SMP message from the authority).
pub fn from_authority(m: &IncomingMessage) -> Publication {
    let (creditor_id, debtor_id, coordinator) = match m {
        IncomingMessage::AccountUpdate(m) => (m.creditor_id, m.debtor_id, None),
        IncomingMessage::AccountTransfer(m) => (m.creditor_id, m.debtor_id, None),
        IncomingMessage::PreparedTransfer(m) => (
            m.creditor_id,
            m.debtor_id,
            Some((m.coordinator_id, m.coordinator_type.clone())),
        ),
        IncomingMessage::RejectedTransfer(m) => (
            m.creditor_id,
            m.debtor_id,
            Some((m.coordinator_id, m.coordinator_type.clone())),
        ),
        IncomingMessage::FinalizedTransfer(m) => (
            m.creditor_id,
            m.debtor_id,
            Some((m.coordinator_id, m.coordinator_type.clone())),
        ),
        IncomingMessage::RejectedConfig(m) => (m.creditor_id, m.debtor_id, None),
        IncomingMessage::AccountPurge(m) => (m.creditor_id, m.debtor_id, None),
        other => panic!(
            "{} is not an accounting authority's message",
            other.message_type()
        ),
    };
    let message_type = m.message_type();
    let mut entries = vec![
        ("message-type", AMQPValue::LongString(message_type.into())),
        ("debtor-id", int(debtor_id)),
        ("creditor-id", int(creditor_id)),
    ];
    if let Some((coordinator_id, coordinator_type)) = coordinator {
        entries.push(("coordinator-id", int(coordinator_id)));
        entries.push((
            "coordinator-type",
            AMQPValue::LongString(coordinator_type.as_str().into()),
        ));
    }
    entries.push(("ca-trade", AMQPValue::Boolean(true)));
    Publication {
        exchange: CREDITORS_IN,
        routing_key: m.sharding_key().routing_key(),
        message_type,
        properties: properties(AUTHORITY_APP_ID, message_type, headers(entries)),
        body: m.to_json(),
    }
}

/// A Creditors Agent's message (`UpdatedLedger`, `UpdatedPolicy`, `UpdatedFlags`).
pub fn from_agent(m: &IncomingMessage) -> Publication {
    let message_type = m.message_type();
    let entries = vec![("message-type", AMQPValue::LongString(message_type.into()))];
    Publication {
        exchange: TO_TRADE,
        routing_key: m.sharding_key().routing_key(),
        message_type,
        properties: properties(AGENT_APP_ID, message_type, headers(entries)),
        body: m.to_json(),
    }
}

/// A message of the service itself, with the crate's envelope.
pub fn from_service(m: &OutgoingMessage) -> Publication {
    let envelope = m.envelope();
    Publication {
        exchange: envelope.exchange,
        routing_key: envelope.routing_key.clone(),
        message_type: envelope.message_type,
        properties: crate::broker::publisher::properties(&envelope),
        body: envelope.body,
    }
}

/// Declares the service's exchanges (with the arguments `configure` uses, so either may come
/// first) and the simulator's queue, bound to `creditors_out` with `#`. The queue is deleted
/// when the simulator disconnects.
pub async fn declare(conn: &Connection, queue: &str) -> anyhow::Result<()> {
    let ch = conn.create_channel().await?;
    for (name, kind, args) in [
        (CREDITORS_IN, ExchangeKind::Headers, FieldTable::default()),
        (
            CA_LOOPBACK_FILTER,
            ExchangeKind::Headers,
            FieldTable::default(),
        ),
        (
            CREDITORS_OUT,
            ExchangeKind::Topic,
            headers(vec![(
                "alternate-exchange",
                AMQPValue::LongString(CA_LOOPBACK_FILTER.into()),
            )]),
        ),
        (TO_TRADE, ExchangeKind::Topic, FieldTable::default()),
    ] {
        ch.exchange_declare(name.into(), kind, DURABLE_EXCHANGE, args)
            .await
            .with_context(|| format!("cannot declare the \"{name}\" exchange"))?;
    }
    let options = QueueDeclareOptions {
        passive: false,
        durable: false,
        exclusive: false,
        auto_delete: true,
        nowait: false,
    };
    ch.queue_declare(queue.into(), options, FieldTable::default())
        .await
        .with_context(|| format!("cannot declare the queue \"{queue}\""))?;
    ch.queue_bind(
        queue.into(),
        CREDITORS_OUT.into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .with_context(|| format!("cannot bind the queue \"{queue}\" to \"{CREDITORS_OUT}\""))?;
    let _ = ch.close(200, "declared".into()).await;
    Ok(())
}

/// A channel for consuming `queue`, `prefetch` deliveries at a time.
pub async fn consumer(
    conn: &Connection,
    queue: &str,
    prefetch: u16,
) -> anyhow::Result<lapin::Consumer> {
    let ch = conn.create_channel().await?;
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let consumer = ch
        .basic_consume(
            queue.into(),
            "swpt-trade-simulate".into(),
            lapin::options::BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("cannot consume the queue \"{queue}\""))?;
    Ok(consumer)
}

/// Publishes with publisher confirms on a channel of its own.
pub struct Publisher {
    channel: Channel,
}

/// What came back from a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Confirmed messages.
    pub confirmed: usize,
    /// Messages nothing routed (mandatory, returned): lost, and counted as failures.
    pub unroutable: usize,
}

impl Publisher {
    /// A confirm-mode channel of `conn`.
    pub async fn new(conn: &Connection) -> anyhow::Result<Self> {
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self { channel })
    }

    /// Publishes `batch` (every message mandatory) and waits for every confirmation.
    ///
    /// # Errors
    ///
    /// A broken connection, or a negative acknowledgement.
    pub async fn publish(&self, batch: &[Publication]) -> anyhow::Result<Published> {
        let mut result = Published::default();
        for chunk in batch.chunks(2000) {
            let mut confirms = Vec::with_capacity(chunk.len());
            for p in chunk {
                let confirm = self
                    .channel
                    .basic_publish(
                        p.exchange.into(),
                        p.routing_key.as_str().into(),
                        BasicPublishOptions {
                            mandatory: true,
                            immediate: false,
                        },
                        &p.body,
                        p.properties.clone(),
                    )
                    .await
                    .context("cannot publish")?;
                confirms.push(confirm);
            }
            for (p, confirm) in chunk.iter().zip(futures::future::join_all(confirms).await) {
                match confirm.context("no publisher confirmation")? {
                    Confirmation::Ack(None) => result.confirmed += 1,
                    Confirmation::Ack(Some(_)) => {
                        tracing::error!(
                            "A {} message to \"{}\" with routing key \"{}\" has no route: lost.",
                            p.message_type,
                            p.exchange,
                            p.routing_key
                        );
                        result.unroutable += 1;
                    }
                    Confirmation::Nack(_) | Confirmation::NotRequested => {
                        anyhow::bail!("RabbitMQ refused a {} message", p.message_type)
                    }
                }
            }
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone as _, Utc};

    use super::*;
    use crate::messages::{PreparedTransfer, decode_delivery};

    #[test]
    fn authority_messages_carry_the_ca_trade_header_and_the_creditors_routing_key() {
        let ts = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        let m = IncomingMessage::PreparedTransfer(PreparedTransfer {
            debtor_id: 666,
            creditor_id: 123,
            coordinator_type: "agent".into(),
            coordinator_id: 123,
            coordinator_request_id: 5,
            transfer_id: 7,
            locked_amount: 100,
            recipient: "x".into(),
            prepared_at: ts,
            demurrage_rate: 0.0,
            deadline: ts,
            final_interest_rate_ts: ts,
            ts,
        });
        let p = from_authority(&m);
        assert_eq!(p.exchange, "creditors_in");
        assert_eq!(
            p.routing_key,
            "1.1.1.1.1.1.0.0.0.0.0.1.0.0.0.0.0.1.1.0.0.0.1.1"
        );
        let headers = p.properties.headers().clone().unwrap();
        let get = |k: &str| headers.inner().get(&ShortString::from(k)).cloned();
        assert_eq!(get("ca-trade"), Some(AMQPValue::Boolean(true)));
        assert_eq!(get("creditor-id"), Some(AMQPValue::LongInt(123)));
        assert_eq!(get("coordinator-id"), Some(AMQPValue::LongInt(123)));
        assert_eq!(
            get("message-type"),
            Some(AMQPValue::LongString("PreparedTransfer".into()))
        );
        assert_eq!(
            p.properties.app_id().as_ref().map(|s| s.as_str()),
            Some("swpt_accounts")
        );
        // What the worker's consumer decodes is the message itself.
        let decoded = decode_delivery(
            p.properties.content_type().as_ref().map(|s| s.as_str()),
            p.properties.kind().as_ref().map(|s| s.as_str()),
            &p.body,
        )
        .unwrap();
        assert_eq!(decoded, m);
    }
}
