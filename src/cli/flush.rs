//! `flush_all` and the `flush_<kind>` commands: options of the outbox flushers (see
//! `docs/operations.md#commands`). The flushers themselves are jobs of `outbox::flush`.

use std::process::ExitCode;

use super::FlushArgs;
use crate::config::Config;
use crate::db::{PoolSettings, WorkerPool};
use crate::outbox::{FlushOptions, SignalKind, run_flushers};

/// Runs a flush command: the flushers of `kinds` until a stop signal (or one pass each with
/// `--quit-early`). With 0 processes it idles until a stop signal.
pub async fn run(
    kinds: &[SignalKind],
    args: FlushArgs,
    config: &Config,
    command: &str,
) -> anyhow::Result<ExitCode> {
    let period = super::seconds_option("--wait", args.wait, config.processes.flush_period)?;
    let processes = args.processes.unwrap_or(config.processes.flush_processes);
    crate::config::check_count("--processes", processes, crate::config::MAX_PROCESSES)?;
    let options = FlushOptions {
        processes,
        period,
        quit_early: args.quit_early,
    };
    let settings = PoolSettings::from_config(config, config.db.engine_pool_size);
    let pool = WorkerPool::build(&config.db.worker_url, settings, command)?;
    let stop = crate::shutdown::on_signals();
    run_flushers(kinds, &options, pool, config, stop).await?;
    Ok(ExitCode::SUCCESS)
}
