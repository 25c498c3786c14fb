//! `solver` and `roll_turns`: the solver's turn loop (see `turns::solver`), every
//! `TURN_CHECK_INTERVAL`; `roll_worker_turns`: a worker's sub-phases (see `turns::worker`),
//! every `APP_ROLL_WORKER_TURNS_WAIT`. A failed iteration is logged and tried again after a
//! back-off pause; the turn stays where it was.

use std::process::ExitCode;

use super::{RollTurnsArgs, WaitArgs};
use crate::config::{Config, ConfigError, parse::parse_duration};
use crate::db::{PoolSettings, SolverPool, WorkerPool};
use crate::jobs::{Runner, Schedule};
use crate::turns::solver::{RollTurns, TurnSettings};
use crate::turns::worker::{RollWorkerTurns, WorkerTurnSettings};

/// Connections the turn loop uses at the most (its input is read on three at once).
const POOL_SIZE: usize = 4;

/// Runs the turn loop with `args` overriding the settings.
pub async fn run(args: RollTurnsArgs, config: &Config, command: &str) -> anyhow::Result<ExitCode> {
    let duration = |option: &str, value: &Option<String>, default| match value {
        Some(v) => parse_duration(v).map_err(|reason| ConfigError::new(option, v, reason)),
        None => Ok(default),
    };
    let mut settings = TurnSettings::from_config(config)?;
    settings.period = duration("--period", &args.period, settings.period)?;
    settings.period_offset = duration(
        "--period-offset",
        &args.period_offset,
        settings.period_offset,
    )?;
    let check_interval = duration(
        "--check-interval",
        &args.check_interval,
        config.turn.check_interval,
    )?;
    let pool = SolverPool::build(
        config.solver_url()?,
        PoolSettings::from_config(config, POOL_SIZE),
        command,
    )?;
    let runner = Runner::on_signals(config.processes.shutdown_timeout);
    // The recorder first, so that nothing the jobs count is lost.
    crate::prometheus::spawn_server(&runner, config.metrics_port);
    let mut schedule = Schedule::every(check_interval, args.quit_early);
    schedule.jitter = 0.0; // turns are scheduled by the clock, not spread out
    runner.spawn_job(RollTurns { pool, settings }, schedule);
    runner.wait().await?;
    Ok(ExitCode::SUCCESS)
}

/// The worker's turn rolling job and its schedule, from the options and the settings.
pub fn worker_job(
    args: &WaitArgs,
    config: &Config,
    command: &str,
) -> anyhow::Result<(RollWorkerTurns, Schedule)> {
    let wait = super::seconds_option("--wait", args.wait, config.turn.roll_worker_turns_wait)?;
    let job = RollWorkerTurns {
        solver: SolverPool::build(
            config.solver_url()?,
            PoolSettings::from_config(config, 2),
            command,
        )?,
        worker: WorkerPool::build(
            &config.db.worker_url,
            PoolSettings::from_config(config, 2),
            command,
        )?,
        realm: config.sharding_realm,
        settings: WorkerTurnSettings::from_config(config)?,
    };
    let mut schedule = Schedule::every(wait, args.quit_early);
    schedule.jitter = 0.0;
    Ok((job, schedule))
}

/// Runs `roll_worker_turns`.
pub async fn run_worker(
    args: WaitArgs,
    config: &Config,
    command: &str,
) -> anyhow::Result<ExitCode> {
    let (job, schedule) = worker_job(&args, config, command)?;
    let runner = Runner::on_signals(config.processes.shutdown_timeout);
    runner.spawn_job(job, schedule);
    runner.wait().await?;
    Ok(ExitCode::SUCCESS)
}
