//! `worker`: everything one shard's worker runs, in one process — for now the message
//! consumers (`PROTOCOL_BROKER_PROCESSES` × `PROTOCOL_BROKER_THREADS`) and the outbox flushers
//! (`FLUSH_PROCESSES`, every `FLUSH_PERIOD`). SIGTERM stops taking new messages, finishes what
//! is in flight (and the current flush pass), then exits 0.

use std::process::ExitCode;
use std::sync::Arc;

use super::flush::{FlushOptions, run_flushers};
use super::{ConsumeArgs, consume};
use crate::config::Config;
use crate::outbox::SignalKind;
use crate::{consumer, db};

/// Runs `worker`.
pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let stop = crate::shutdown::on_signals();
    let settings = consume::settings(&ConsumeArgs::default(), &config);
    let consumer_pool = consume::worker_pool(&config, &settings, "worker")?;
    let flush_pool = db::build_pool(&config.db.worker_url, config.db.engine_pool_size, "worker")?;
    let flush_options = FlushOptions {
        processes: config.processes.flush_processes,
        period: config.processes.flush_period,
        quit_early: false,
    };
    let config = Arc::new(config);
    let consuming = {
        let (config, stop) = (config.clone(), stop.clone());
        tokio::spawn(async move {
            if settings.processes > 0 {
                consumer::run(settings, config, consumer_pool, stop).await;
            }
        })
    };
    let flushing = run_flushers(
        &SignalKind::ALL,
        &flush_options,
        flush_pool,
        &config,
        stop.clone(),
    );
    let (consumed, flushed) = tokio::join!(consuming, flushing);
    consumed?;
    flushed?;
    Ok(ExitCode::SUCCESS)
}
