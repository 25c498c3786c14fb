//! Publishing batches of messages with publisher confirms
//! (docs/messages.md#publishing-with-confirms).
//!
//! A batch succeeds only when the broker has confirmed every message; a negative
//! acknowledgement, or a mandatory message returned as unroutable, fails the whole batch, so
//! that the caller keeps its outbox rows and sends them again later (at-least-once).

use lapin::Confirmation;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection};

use crate::messages::{HeaderValue, MessageEnvelope};

/// Why a batch was not (entirely) confirmed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The broker could not be reached, or the connection broke.
    #[error("RabbitMQ connection error: {0}")]
    Connection(#[from] lapin::Error),
    /// The broker refused a message.
    #[error("received nack for a {0} message")]
    Nack(&'static str),
    /// A mandatory message had no route (e.g. no queue bound for its routing key).
    #[error(
        "returned messages: a {message_type} message to \"{exchange}\" with routing key \"{routing_key}\" has no route"
    )]
    Returned {
        /// The message's type.
        message_type: &'static str,
        /// The exchange it was published to.
        exchange: &'static str,
        /// Its routing key.
        routing_key: String,
    },
}

/// A lazily opened connection and confirm-mode channel, reused across batches.
pub struct Publisher {
    url: String,
    conn: Option<(Connection, Channel)>,
}

impl Publisher {
    /// A publisher for the broker at `url`; nothing is opened until the first batch.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            conn: None,
        }
    }

    async fn channel(&mut self) -> Result<&Channel, lapin::Error> {
        let usable = self
            .conn
            .as_ref()
            .is_some_and(|(c, ch)| c.status().connected() && ch.status().connected());
        if !usable {
            let conn =
                Connection::connect(&self.url, lapin::ConnectionProperties::default()).await?;
            let channel = conn.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            self.conn = Some((conn, channel));
        }
        Ok(&self.conn.as_ref().expect("just opened").1)
    }

    /// Publishes `batch` and waits until the broker has confirmed every message. When the
    /// connection breaks, the batch is sent once more on a fresh connection.
    pub async fn publish_batch(&mut self, batch: &[MessageEnvelope]) -> Result<(), PublishError> {
        match self.try_publish(batch).await {
            Err(PublishError::Connection(e)) => {
                tracing::warn!("Publishing failed ({e}); retrying on a fresh connection.");
                self.conn = None;
                self.try_publish(batch).await
            }
            other => other,
        }
    }

    async fn try_publish(&mut self, batch: &[MessageEnvelope]) -> Result<(), PublishError> {
        if batch.is_empty() {
            return Ok(());
        }
        let channel = self.channel().await?;
        let mut confirms = Vec::with_capacity(batch.len());
        for envelope in batch {
            let options = BasicPublishOptions {
                mandatory: envelope.mandatory,
                immediate: false,
            };
            let confirm = channel
                .basic_publish(
                    envelope.exchange.into(),
                    envelope.routing_key.as_str().into(),
                    options,
                    &envelope.body,
                    properties(envelope),
                )
                .await?;
            confirms.push(confirm);
        }
        let results = futures::future::join_all(confirms).await;
        for (envelope, result) in batch.iter().zip(results) {
            match result? {
                Confirmation::Ack(None) => {}
                Confirmation::Ack(Some(_)) => {
                    return Err(PublishError::Returned {
                        message_type: envelope.message_type,
                        exchange: envelope.exchange,
                        routing_key: envelope.routing_key.clone(),
                    });
                }
                Confirmation::Nack(_) | Confirmation::NotRequested => {
                    return Err(PublishError::Nack(envelope.message_type));
                }
            }
        }
        Ok(())
    }
}

/// The AMQP properties of an envelope: persistent, `app_id`, `content_type`, `type` and the
/// headers (integers that fit in i32 as `I`, larger ones as 64-bit, like the reference).
pub fn properties(envelope: &MessageEnvelope) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (name, value) in &envelope.headers {
        let value = match value {
            HeaderValue::Str(s) => AMQPValue::LongString(s.as_str().into()),
            HeaderValue::Int(n) => match i32::try_from(*n) {
                Ok(small) => AMQPValue::LongInt(small),
                Err(_) => AMQPValue::LongLongInt(*n),
            },
        };
        headers.insert(ShortString::from(*name), value);
    }
    BasicProperties::default()
        .with_delivery_mode(if envelope.persistent { 2 } else { 1 })
        .with_app_id(envelope.app_id.into())
        .with_content_type(envelope.content_type.into())
        .with_type(envelope.message_type.into())
        .with_headers(headers)
}
