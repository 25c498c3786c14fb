//! `scan_<table>` and `scan_all`: the worker's table scanners (see
//! `docs/operations.md#table-scanners`). The scanners themselves are services of
//! `scanners`.

use std::process::ExitCode;

use super::ScanArgs;
use crate::config::Config;
use crate::db::{PoolSettings, WorkerPool};
use crate::jobs::{OnFailure, Runner};
use crate::scanners::{self, Scan, Scanner};

/// Connections of a single scanner (it uses one at a time).
const SINGLE_POOL_SIZE: usize = 2;

/// Runs one scanner until a stop signal (or for 11 passes with `--quit-early`, when a failure
/// ends the command with a non-zero status; otherwise a failed scanner starts again after a
/// back-off).
pub async fn run_one(
    scan: Scan,
    args: ScanArgs,
    config: &Config,
    command: &str,
) -> anyhow::Result<ExitCode> {
    let pool = WorkerPool::build(
        &config.db.worker_url,
        PoolSettings::from_config(config, SINGLE_POOL_SIZE),
        command,
    )?;
    let scanner = Scanner::new(scan, config, pool, args.days, args.quit_early)?;
    let on_failure = if args.quit_early {
        OnFailure::Exit
    } else {
        OnFailure::Restart
    };
    let runner = Runner::on_signals(config.processes.shutdown_timeout);
    scanners::spawn(&runner, scanner, on_failure);
    runner.wait().await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs all 15 scanners until a stop signal; a failed scanner starts again after a back-off.
pub async fn run_all(config: &Config, command: &str) -> anyhow::Result<ExitCode> {
    let pool = WorkerPool::build(
        &config.db.worker_url,
        PoolSettings::from_config(config, scanners::POOL_SIZE),
        command,
    )?;
    let runner = Runner::on_signals(config.processes.shutdown_timeout);
    scanners::spawn_all(&runner, config, &pool)?;
    runner.wait().await?;
    Ok(ExitCode::SUCCESS)
}
