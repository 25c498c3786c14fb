//! `handle_pristine_collectors`: options of the job that requests this shard's planned
//! collector accounts (see `collectors::pristine`). A failed pass ends the command with a
//! non-zero status, so that a supervisor restarts it.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::PristineArgs;
use crate::collectors::pristine::PristineCollectors;
use crate::config::{self, Config};
use crate::db::{PoolSettings, SolverPool, WorkerPool};
use crate::jobs::{OnFailure, Runner, Schedule};

/// The job and its schedule, from the options and the settings.
pub fn job(
    args: &PristineArgs,
    config: &Config,
    command: &str,
) -> anyhow::Result<(PristineCollectors, Schedule)> {
    let threads = args
        .threads
        .filter(|&t| t > 0)
        .unwrap_or(config.processes.handle_pristine_collectors_threads);
    config::check_count("--threads", threads, config::MAX_THREADS)?;
    let period = super::seconds_option(
        "--wait",
        args.wait,
        config.processes.handle_pristine_collectors_period,
    )?;
    let pool_size = threads as usize + 1;
    let solver = SolverPool::build(
        config.solver_url()?,
        PoolSettings::from_config(config, pool_size),
        command,
    )?;
    let worker = WorkerPool::build(
        &config.db.worker_url,
        PoolSettings::from_config(config, pool_size),
        command,
    )?;
    let max_postponement =
        Duration::try_from_secs_f64(config.worker.extreme_message_delay_days * 86_400.0)
            .context("invalid APP_EXTREME_MESSAGE_DELAY_DAYS")?;
    let job = PristineCollectors {
        solver,
        worker,
        realm: config.sharding_realm,
        max_count: config.processes.handle_pristine_collectors_max_count,
        threads,
        max_postponement,
    };
    Ok((job, Schedule::every(period, args.quit_early)))
}

/// Runs `handle_pristine_collectors` until a stop signal (or one pass with `--quit-early`).
pub async fn run(args: PristineArgs, config: &Config, command: &str) -> anyhow::Result<ExitCode> {
    let (job, mut schedule) = job(&args, config, command)?;
    schedule.on_failure = OnFailure::Exit;
    let runner = Runner::on_signals(config.processes.shutdown_timeout);
    runner.spawn_job(job, schedule);
    runner.wait().await?;
    Ok(ExitCode::SUCCESS)
}
