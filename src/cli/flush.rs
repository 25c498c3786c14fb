//! `flush_all` and the `flush_<kind>` commands: the outbox flushers (operations.md §2.5, §3.5).
//!
//! The reference forks `FLUSH_PROCESSES` processes; here each "process" is a tokio task with
//! its own broker connection, sharing one database pool. Unlike the reference, a failing
//! flusher does not take the command down: it logs the error and starts again after a
//! back-off (its rows stay in the outbox), and SIGTERM/SIGINT/SIGHUP end the command with
//! status 0 once each flusher has finished its current pass.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::{Command, FlushArgs};
use crate::config::Config;
use crate::db::{self, DbPool};
use crate::outbox::{FlushError, FlushSettings, Flusher, SignalKind};

/// The first pause after a failed pass; it doubles up to [`MAX_ERROR_PAUSE`].
pub const MIN_ERROR_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause after failed passes.
pub const MAX_ERROR_PAUSE: Duration = Duration::from_secs(60);

/// How the flushers run.
#[derive(Debug, Clone)]
pub struct FlushOptions {
    /// How many flushers run at the same time (`FLUSH_PROCESSES`).
    pub processes: u32,
    /// The shortest time from the start of one pass to the start of the next (`FLUSH_PERIOD`).
    pub period: Duration,
    /// Run one pass, then stop; a failed pass is then an error instead of being retried.
    pub quit_early: bool,
}

/// The signal kinds and options of a flush command, or the command itself if it is not one.
pub fn flush_command(command: Command) -> Result<(Vec<SignalKind>, FlushArgs), Command> {
    use SignalKind as K;
    let (kind, args) = match command {
        Command::FlushAll(args) => return Ok((SignalKind::ALL.to_vec(), args)),
        Command::FlushConfigureAccounts(a) => (K::ConfigureAccount, a),
        Command::FlushPrepareTransfers(a) => (K::PrepareTransfer, a),
        Command::FlushFinalizeTransfers(a) => (K::FinalizeTransfer, a),
        Command::FlushFetchDebtorInfos(a) => (K::FetchDebtorInfo, a),
        Command::FlushStoreDocuments(a) => (K::StoreDocument, a),
        Command::FlushDiscoverDebtors(a) => (K::DiscoverDebtor, a),
        Command::FlushConfirmDebtors(a) => (K::ConfirmDebtor, a),
        Command::FlushActivateCollectors(a) => (K::ActivateCollector, a),
        Command::FlushCandidateOffers(a) => (K::CandidateOffer, a),
        Command::FlushNeededCollectors(a) => (K::NeededCollector, a),
        Command::FlushReviseAccountLocks(a) => (K::ReviseAccountLock, a),
        Command::FlushTriggerTransfers(a) => (K::TriggerTransfer, a),
        Command::FlushAccountIdRequests(a) => (K::AccountIdRequest, a),
        Command::FlushAccountIdResponses(a) => (K::AccountIdResponse, a),
        other => return Err(other),
    };
    Ok((vec![kind], args))
}

/// Runs a flush command: `processes` flushers until a stop signal (or one pass each with
/// `--quit-early`). With 0 processes it idles until a stop signal.
pub async fn run(
    kinds: Vec<SignalKind>,
    args: FlushArgs,
    config: &Config,
    command: &str,
) -> anyhow::Result<ExitCode> {
    let period = match args.wait {
        Some(seconds) => Duration::try_from_secs_f64(seconds)
            .with_context(|| format!("invalid --wait value: {seconds}"))?,
        None => config.processes.flush_period,
    };
    let options = FlushOptions {
        processes: args.processes.unwrap_or(config.processes.flush_processes),
        period,
        quit_early: args.quit_early,
    };
    let stop = crate::shutdown::on_signals();
    if options.processes == 0 {
        log_started(&kinds);
        stop.cancelled().await;
        return Ok(ExitCode::SUCCESS);
    }
    let pool = db::build_pool(&config.db.worker_url, config.db.engine_pool_size, command)?;
    run_flushers(&kinds, &options, pool, config, stop).await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `options.processes` flushers of `kinds` until `stop` is cancelled; a flusher that is
/// in a pass finishes it first.
///
/// # Errors
///
/// With `quit_early`, the first failed pass (after every flusher has ended); without it,
/// only a flusher task that panicked.
pub async fn run_flushers(
    kinds: &[SignalKind],
    options: &FlushOptions,
    pool: DbPool,
    config: &Config,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    log_started(kinds);
    let kinds: Arc<[SignalKind]> = kinds.into();
    let settings = FlushSettings::from_config(config);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..options.processes {
        let flusher = Flusher::new(pool.clone(), &config.broker.url, settings.clone());
        let task = flusher_loop(flusher, kinds.clone(), options.clone(), stop.clone());
        tasks.spawn(task);
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined
            .context("a flusher task panicked")
            .and_then(|r| r.context("cannot send pending signals"));
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn log_started(kinds: &[SignalKind]) {
    let names: Vec<&str> = kinds.iter().map(|k| k.class_name()).collect();
    tracing::info!("Started flushing {}.", names.join(", "));
}

/// One flusher: a pass every `period` until `stop`; a failed pass is logged and followed by
/// a growing pause (or, with `quit_early`, returned).
async fn flusher_loop(
    mut flusher: Flusher,
    kinds: Arc<[SignalKind]>,
    options: FlushOptions,
    stop: CancellationToken,
) -> Result<(), FlushError> {
    let mut error_pause = MIN_ERROR_PAUSE;
    while !stop.is_cancelled() {
        let started = Instant::now();
        let pause = match flusher.flush(&kinds).await {
            Ok(_) => {
                error_pause = MIN_ERROR_PAUSE;
                options.period.saturating_sub(started.elapsed())
            }
            Err(e) => {
                tracing::error!(error = %e, "Caught error while sending pending signals.");
                if options.quit_early {
                    return Err(e);
                }
                let pause = error_pause;
                error_pause = (error_pause * 2).min(MAX_ERROR_PAUSE);
                pause
            }
        };
        if options.quit_early {
            break;
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
    Ok(())
}
