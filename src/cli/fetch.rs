//! `fetch_debtor_infos`: options of the debtor-info fetchers (see `debtors::fetch` and
//! `docs/messages.md#debtor-info`).

use std::process::ExitCode;

use super::{FetchArgs, seconds_option};
use crate::config::{self, Config};
use crate::db::{PoolSettings, WorkerPool};
use crate::debtors::fetch::{FetchJob, FetchSettings, Fetcher};
use crate::jobs::{Runner, Schedule};

/// The fetcher jobs (`-p`, or `HTTP_FETCH_PROCESSES`; 0 gives none) and their schedule
/// (every `-w` or `HTTP_FETCH_PERIOD` seconds), with `-c` and `-t` or their settings.
///
/// # Errors
///
/// An option out of its range, a malformed database URL, an HTTPS client that cannot be
/// built.
pub fn jobs(
    args: &FetchArgs,
    config: &Config,
    command: &str,
) -> anyhow::Result<(Vec<FetchJob>, Schedule)> {
    let processes = args
        .processes
        .unwrap_or(config.processes.http_fetch_processes);
    config::check_count("--processes", processes, config::MAX_PROCESSES)?;
    let mut settings = FetchSettings::from_config(config);
    if let Some(connections) = args.connections {
        if connections == 0 {
            anyhow::bail!("invalid --connections value: 0 (must be positive)");
        }
        settings.connections =
            config::check_count("--connections", connections, config::MAX_CONNECTIONS)?;
    }
    if let Some(seconds) = args.timeout {
        settings.timeout = seconds_option("--timeout", Some(seconds), settings.timeout)?;
    }
    if settings.timeout.is_zero() {
        anyhow::bail!("the HTTP fetch timeout must be positive (HTTP_FETCH_TIMEOUT, --timeout)");
    }
    let period = seconds_option("--wait", args.wait, config.processes.http_fetch_period)?;
    let pool = WorkerPool::build(
        &config.db.worker_url,
        PoolSettings::from_config(config, processes.max(1) as usize),
        command,
    )?;
    let jobs = (0..processes)
        .map(|number| {
            Ok(FetchJob {
                fetcher: Fetcher::new(pool.clone(), settings.clone())?,
                number,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((jobs, Schedule::every(period, args.quit_early)))
}

/// Spawns the fetcher jobs of `args` (see [`jobs`]) on `runner`: what `fetch_debtor_infos`
/// runs, and what `worker` runs with `FetchArgs::default()` (every option from the settings).
///
/// # Errors
///
/// As [`jobs`].
pub fn spawn(
    runner: &Runner,
    args: &FetchArgs,
    config: &Config,
    command: &str,
) -> anyhow::Result<()> {
    let (jobs, schedule) = jobs(args, config, command)?;
    tracing::info!("Started fetching debtor info documents.");
    for job in jobs {
        runner.spawn_job(job, schedule.clone());
    }
    Ok(())
}

/// Runs `fetch_debtor_infos` until a stop signal (or one pass per fetcher with
/// `--quit-early`). With 0 processes it idles until a stop signal.
pub async fn run(args: FetchArgs, config: &Config, command: &str) -> anyhow::Result<ExitCode> {
    let runner = Runner::on_signals(config.processes.shutdown_timeout);
    spawn(&runner, &args, config, command)?;
    runner.wait().await?;
    Ok(ExitCode::SUCCESS)
}
