//! `consume_messages`: only the processes that consume SMP messages (operations.md §3.4).

use std::process::ExitCode;
use std::sync::Arc;

use super::ConsumeArgs;
use crate::config::Config;
use crate::consumer::{self, ConsumerSettings};
use crate::db;

/// The consumer settings: options first, then the environment (a `-p 0` counts as "not
/// given", like the reference).
pub fn settings(args: &ConsumeArgs, config: &Config) -> ConsumerSettings {
    let b = &config.broker;
    ConsumerSettings {
        url: args.url.clone().unwrap_or_else(|| b.url.clone()),
        queue: args.queue.clone().unwrap_or_else(|| b.queue.clone()),
        processes: args.processes.filter(|&p| p > 0).unwrap_or(b.processes),
        threads: args.threads.unwrap_or(b.threads),
        prefetch_count: args.prefetch_count.unwrap_or(b.prefetch_count),
        batch_size: b.batch_size,
        draining_mode: args.draining_mode,
    }
}

/// The worker database pool of a consumer: one connection per handler task, at least.
pub fn worker_pool(
    config: &Config,
    settings: &ConsumerSettings,
    command: &str,
) -> anyhow::Result<db::DbPool> {
    let size = match config.db.engine_pool_size {
        0 => 0,
        n => n.max((settings.processes * settings.threads) as usize),
    };
    db::build_pool(&config.db.worker_url, size, command)
}

/// Runs `consume_messages` until SIGTERM; in-flight messages are finished and acknowledged.
pub async fn run(args: ConsumeArgs, config: Config) -> anyhow::Result<ExitCode> {
    let stop = crate::shutdown::on_signals();
    if args.prefetch_size.is_some_and(|s| s > 0) || config.broker.prefetch_size > 0 {
        tracing::warn!(
            "RabbitMQ does not support a prefetch size; PROTOCOL_BROKER_PREFETCH_SIZE is ignored."
        );
    }
    let settings = settings(&args, &config);
    if settings.threads == 0 {
        anyhow::bail!("the number of threads must be at least 1");
    }
    if settings.processes == 0 {
        tracing::info!("PROTOCOL_BROKER_PROCESSES is 0: consuming nothing.");
        stop.cancelled().await;
        return Ok(ExitCode::SUCCESS);
    }
    let pool = worker_pool(&config, &settings, "consume_messages")?;
    consumer::run(settings, Arc::new(config), pool, stop).await;
    Ok(ExitCode::SUCCESS)
}
