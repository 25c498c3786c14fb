//! `worker`: everything one shard's worker runs, in one process under one [`Runner`]: the
//! message consumers (`PROTOCOL_BROKER_PROCESSES` × `PROTOCOL_BROKER_THREADS`), the
//! outbox flushers (`FLUSH_PROCESSES`, every `FLUSH_PERIOD`), the debtor-info fetchers
//! (`HTTP_FETCH_PROCESSES`, every `HTTP_FETCH_PERIOD`), the 15 table scanners,
//! `roll_transfers` (every `TRANSFERS_HEALTHY_MAX_COMMIT_DELAY / 12`), `trigger_transfers`
//! (`TRIGGER_TRANSFERS_PROCESSES`, every `TRIGGER_TRANSFERS_PERIOD`), and with
//! `SOLVER_POSTGRES_URL` `handle_pristine_collectors` (every
//! `HANDLE_PRISTINE_COLLECTORS_PERIOD`) and `roll_worker_turns` (every
//! `APP_ROLL_WORKER_TURNS_WAIT`). SIGTERM stops taking new
//! messages, finishes what is in flight (and the current flush pass) within
//! `APP_SHUTDOWN_TIMEOUT`, then exits 0.

use std::process::ExitCode;
use std::sync::Arc;

use super::{ConsumeArgs, consume};
use crate::config::Config;
use crate::consumer::{self, Handlers};
use crate::db::{PoolSettings, WorkerPool};
use crate::jobs::Runner;
use crate::outbox::{self, FlushOptions, SignalKind};

/// Runs `worker`.
pub async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let settings = consume::settings(&ConsumeArgs::default(), &config)?;
    let consumer_pool = consume::worker_pool(&config, &settings, "worker")?;
    let flush_pool = WorkerPool::build(
        &config.db.worker_url,
        PoolSettings::from_config(&config, config.db.engine_pool_size),
        "worker",
    )?;
    let flush_options = FlushOptions {
        processes: config.processes.flush_processes,
        period: config.processes.flush_period,
        quit_early: false,
    };
    let runner = Runner::on_signals(config.processes.shutdown_timeout);
    // The recorder first: messages consumed before it is installed would not be counted.
    crate::prometheus::spawn_server(&runner, config.metrics_port);
    let config = Arc::new(config);
    let realm = config.sharding_realm;
    let handlers = Arc::new(Handlers::new(config.clone(), "worker")?);
    consumer::spawn(&runner, settings, realm, handlers, consumer_pool);
    outbox::spawn_flushers(
        &runner,
        &SignalKind::ALL,
        &flush_options,
        &flush_pool,
        &config,
    );
    super::fetch::spawn(&runner, &super::FetchArgs::default(), &config, "worker")?;
    let scan_pool = WorkerPool::build(
        &config.db.worker_url,
        PoolSettings::from_config(&config, crate::scanners::POOL_SIZE),
        "worker",
    )?;
    crate::scanners::spawn_all(&runner, &config, &scan_pool)?;
    super::transfers::spawn(&runner, &config, "worker")?;
    if config.db.solver_url.is_some() {
        let args = super::PristineArgs::default();
        let (job, schedule) = super::pristine::job(&args, &config, "worker")?;
        runner.spawn_job(job, schedule);
        let (job, schedule) =
            super::turns::worker_job(&super::WaitArgs::default(), &config, "worker")?;
        runner.spawn_job(job, schedule);
    } else {
        tracing::warn!(
            "SOLVER_POSTGRES_URL is not set: no turns are rolled and no collector accounts \
             are requested."
        );
    }
    runner.wait().await?;
    Ok(ExitCode::SUCCESS)
}
