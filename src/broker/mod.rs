//! RabbitMQ: connections, the topology the service needs, and publishing with publisher
//! confirms. This module and the outbox flushers are the only code that talks to the broker.

pub mod publisher;
pub mod topology;

use anyhow::Context as _;
use lapin::{Connection, ConnectionProperties};

/// Headers exchange where accounting authorities' messages for creditors arrive.
pub const CREDITORS_IN: &str = "creditors_in";
/// Topic exchange towards accounting authorities; keyed by the hex debtor ID.
pub const CREDITORS_OUT: &str = "creditors_out";
/// Topic exchange for every message a worker must process; keyed by the binary routing key.
pub const TO_TRADE: &str = "to_trade";
/// Alternate exchange of `creditors_out`; its bindings belong to the Creditors Agent.
pub const CA_LOOPBACK_FILTER: &str = "ca.loopback_filter";

/// Opens a connection to the broker at `url` (`amqp://` or `amqps://`).
pub async fn connect(url: &str) -> anyhow::Result<Connection> {
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("swpt-trade pid {}", std::process::id()).into());
    Connection::connect(url, properties)
        .await
        .context("cannot connect to RabbitMQ")
}
