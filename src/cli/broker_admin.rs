//! `subscribe`, `unsubscribe` and `delete_queue` (docs/operations.md#broker-administration).

use std::process::ExitCode;

use anyhow::Context as _;

use super::{BrokerArgs, QueueArgs};
use crate::broker::{self, topology};
use crate::config::Config;
use crate::sharding::ShardingRealm;

/// The URL, queue and binding key of a broker command: options first, then settings.
fn resolve(args: &BrokerArgs, config: &Config) -> anyhow::Result<(String, String, String)> {
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| config.broker.url.clone());
    let queue = args
        .queue
        .clone()
        .unwrap_or_else(|| config.broker.queue.clone());
    let key = args
        .queue_routing_key
        .clone()
        .unwrap_or_else(|| config.broker.queue_routing_key.clone());
    key.parse::<ShardingRealm>()
        .with_context(|| format!("invalid queue routing key {key:?}"))?;
    Ok((url, queue, key))
}

/// Runs `subscribe`.
pub async fn subscribe(args: BrokerArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let (url, queue, key) = resolve(&args, config)?;
    let conn = broker::connect(&url).await?;
    topology::subscribe(&conn, &queue, &key).await?;
    let _ = conn.close(200, "done".into()).await;
    Ok(ExitCode::SUCCESS)
}

/// Runs `unsubscribe`.
pub async fn unsubscribe(args: BrokerArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let (url, queue, key) = resolve(&args, config)?;
    let conn = broker::connect(&url).await?;
    topology::unsubscribe(&conn, &queue, &key).await?;
    let _ = conn.close(200, "done".into()).await;
    Ok(ExitCode::SUCCESS)
}

/// Runs `delete_queue`.
pub async fn delete_queue(args: QueueArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let url = args.url.unwrap_or_else(|| config.broker.url.clone());
    let queue = args.queue.unwrap_or_else(|| config.broker.queue.clone());
    let conn = broker::connect(&url).await?;
    topology::delete_queue(&conn, &queue, topology::DELETE_QUEUE_POLL).await?;
    let _ = conn.close(200, "done".into()).await;
    Ok(ExitCode::SUCCESS)
}
