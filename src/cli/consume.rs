//! `consume_messages`: only the processes that consume SMP messages (see
//! `docs/operations.md#commands`).

use std::process::ExitCode;
use std::sync::Arc;

use super::ConsumeArgs;
use crate::config::{self, Config};
use crate::consumer::{self, ConsumerSettings};
use crate::db::{PoolSettings, WorkerPool};

/// The consumer settings: options first, then the environment (a `-p 0` counts as "not
/// given", like the reference). Counts given as options are bounded like the settings.
pub fn settings(args: &ConsumeArgs, config: &Config) -> anyhow::Result<ConsumerSettings> {
    let b = &config.broker;
    let processes = args.processes.filter(|&p| p > 0).unwrap_or(b.processes);
    let threads = args.threads.unwrap_or(b.threads);
    config::check_count("--processes", processes, config::MAX_PROCESSES)?;
    config::check_count("--threads", threads, config::MAX_THREADS)?;
    if threads == 0 {
        anyhow::bail!("the number of threads must be at least 1");
    }
    Ok(ConsumerSettings {
        url: args.url.clone().unwrap_or_else(|| b.url.clone()),
        queue: args.queue.clone().unwrap_or_else(|| b.queue.clone()),
        processes,
        threads,
        prefetch_count: args.prefetch_count.unwrap_or(b.prefetch_count),
        batch_size: b.batch_size,
        draining_mode: args.draining_mode,
    })
}

/// The worker database pool of a consumer: one connection per handler task, at least.
pub fn worker_pool(
    config: &Config,
    settings: &ConsumerSettings,
    command: &str,
) -> anyhow::Result<WorkerPool> {
    let size = match config.db.engine_pool_size {
        0 => 0,
        n => n.max((settings.processes * settings.threads) as usize),
    };
    WorkerPool::build(
        &config.db.worker_url,
        PoolSettings::from_config(config, size),
        command,
    )
}

/// Runs `consume_messages` until SIGTERM; in-flight messages are finished and acknowledged.
pub async fn run(args: ConsumeArgs, config: Config) -> anyhow::Result<ExitCode> {
    if args.prefetch_size.is_some_and(|s| s > 0) || config.broker.prefetch_size > 0 {
        tracing::warn!(
            "RabbitMQ does not support a prefetch size; PROTOCOL_BROKER_PREFETCH_SIZE is ignored."
        );
    }
    let settings = settings(&args, &config)?;
    let stop = crate::shutdown::on_signals();
    if settings.processes == 0 {
        tracing::info!("PROTOCOL_BROKER_PROCESSES is 0: consuming nothing.");
        stop.cancelled().await;
        return Ok(ExitCode::SUCCESS);
    }
    let pool = worker_pool(&config, &settings, "consume_messages")?;
    consumer::run(settings, Arc::new(config), pool, stop).await?;
    Ok(ExitCode::SUCCESS)
}
