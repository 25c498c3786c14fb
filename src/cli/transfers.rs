//! `roll_transfers` (see `transfers::RollTransfers`, every `-w` seconds or
//! `TRANSFERS_HEALTHY_MAX_COMMIT_DELAY / 12`) and `trigger_transfers` (see
//! `transfers::TriggerTransfers`: `-p` jobs or `TRIGGER_TRANSFERS_PROCESSES`, every `-w` or
//! `TRIGGER_TRANSFERS_PERIOD` seconds).

use std::process::ExitCode;

use super::{PeriodicArgs, RollTransfersArgs, seconds_option};
use crate::config::{self, Config};
use crate::db::{PoolSettings, WorkerPool};
use crate::jobs::{Runner, Schedule};
use crate::transfers::{RollTransfers, TriggerTransfers};

/// The `roll_transfers` job and its schedule.
pub fn roll_job(
    args: &RollTransfersArgs,
    config: &Config,
    command: &str,
) -> anyhow::Result<(RollTransfers, Schedule)> {
    let default_wait = config.worker.transfers_healthy_max_commit_delay / 12;
    let wait = seconds_option("--wait", args.wait, default_wait)?;
    let pool = WorkerPool::build(
        &config.db.worker_url,
        PoolSettings::from_config(config, 2),
        command,
    )?;
    let job = RollTransfers {
        pool,
        realm: config.sharding_realm,
    };
    Ok((job, Schedule::every(wait, args.quit_early)))
}

/// The `trigger_transfers` jobs (none for 0 processes) and their schedule.
pub fn trigger_jobs(
    args: &PeriodicArgs,
    config: &Config,
    command: &str,
) -> anyhow::Result<(Vec<TriggerTransfers>, Schedule)> {
    let processes = args
        .processes
        .unwrap_or(config.processes.trigger_transfers_processes);
    config::check_count("--processes", processes, config::MAX_PROCESSES)?;
    let period = seconds_option(
        "--wait",
        args.wait,
        config.processes.trigger_transfers_period,
    )?;
    let pool = WorkerPool::build(
        &config.db.worker_url,
        PoolSettings::from_config(config, processes.max(1) as usize),
        command,
    )?;
    let jobs = (0..processes)
        .map(|_| TriggerTransfers {
            pool: pool.clone(),
            burst_count: config.processes.rescheduled_transfers_burst_count,
        })
        .collect();
    Ok((jobs, Schedule::every(period, args.quit_early)))
}

/// Spawns the `roll_transfers` and `trigger_transfers` jobs of the `worker` (every option from
/// the settings).
pub fn spawn(runner: &Runner, config: &Config, command: &str) -> anyhow::Result<()> {
    let (job, schedule) = roll_job(&RollTransfersArgs::default(), config, command)?;
    runner.spawn_job(job, schedule);
    let (jobs, schedule) = trigger_jobs(&PeriodicArgs::default(), config, command)?;
    for job in jobs {
        runner.spawn_job(job, schedule.clone());
    }
    Ok(())
}

/// Runs `roll_transfers`.
pub async fn run_roll(
    args: RollTransfersArgs,
    config: &Config,
    command: &str,
) -> anyhow::Result<ExitCode> {
    let (job, schedule) = roll_job(&args, config, command)?;
    tracing::info!("Started rolling transfers.");
    let runner = Runner::on_signals(config.processes.shutdown_timeout);
    runner.spawn_job(job, schedule);
    runner.wait().await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `trigger_transfers`.
pub async fn run_trigger(
    args: PeriodicArgs,
    config: &Config,
    command: &str,
) -> anyhow::Result<ExitCode> {
    let (jobs, schedule) = trigger_jobs(&args, config, command)?;
    tracing::info!("Started triggering transfer attempts.");
    let runner = Runner::on_signals(config.processes.shutdown_timeout);
    for job in jobs {
        runner.spawn_job(job, schedule.clone());
    }
    runner.wait().await?;
    Ok(ExitCode::SUCCESS)
}
