//! The command line: one subcommand per documented command of the service, with the
//! reference's snake_case names. `main.rs` only calls [`main`].

mod args;
pub mod await_migrations;
pub mod broker_admin;
pub mod configure;
pub mod consume;
pub mod fetch;
pub mod flush;
pub mod pristine;
pub mod scan;
pub mod simulate;
pub mod transfers;
pub mod turns;
pub mod verify_shard;
pub mod worker;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

pub use args::*;

use crate::config::Config;
use crate::telemetry::{self, LogSettings};

/// Swaptacular "Circular Trade": automated currency exchanges through trading turns.
#[derive(Debug, Parser)]
#[command(name = "swpt-trade", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Runs the command line and returns the process's exit status.
pub fn main() -> ExitCode {
    let (cli, name) = parse_command_line();
    // Every log line of the process carries the name: it lives as long as the process.
    let name: &'static str = Box::leak(name.into_boxed_str());
    let log_settings = match LogSettings::from_env() {
        Ok(s) => s,
        Err(e) => return config_error(name, &e),
    };
    // `solve_offline` prints its JSON summary on stdout: its log lines go to stderr.
    let output = if matches!(cli.command, Command::SolveOffline(_)) {
        telemetry::Output::Stderr
    } else {
        telemetry::Output::Stdout
    };
    telemetry::init_to(log_settings, name, output);
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return config_error(name, &e),
    };
    install_panic_hook();
    match run(cli.command, config, name) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!(
                "{name}: {}",
                crate::config::mask_urls_in_text(&format!("{e:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

/// Parses the command line (exiting with clap's usage error when it is wrong) and returns
/// the command with its name as clap defines it.
fn parse_command_line() -> (Cli, String) {
    let matches = Cli::command().get_matches();
    let name = matches.subcommand_name().unwrap_or("swpt-trade").to_owned();
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => (cli, name),
        Err(e) => e.exit(),
    }
}

/// Logs panics as errors (escaped like every log line) before the default hook prints them:
/// a panicking task is restarted or ends the process, and either way its reason is in the log.
fn install_panic_hook() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let reason = crate::jobs::panic_message(info.payload());
        let location = info
            .location()
            .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        tracing::error!("A task panicked{location}: {reason}");
        default_hook(info);
    }));
}

fn config_error(name: &str, e: &crate::config::ConfigError) -> ExitCode {
    eprintln!("{name}: {e}");
    ExitCode::FAILURE
}

/// A seconds option (`-w`, `-t`…): its value as a duration, or `default` when not given.
///
/// # Errors
///
/// A negative, infinite or NaN value, named with the option.
pub(crate) fn seconds_option(
    name: &str,
    seconds: Option<f64>,
    default: std::time::Duration,
) -> anyhow::Result<std::time::Duration> {
    use anyhow::Context as _;
    match seconds {
        Some(s) => std::time::Duration::try_from_secs_f64(s)
            .with_context(|| format!("invalid {name} value: {s}")),
        None => Ok(default),
    }
}

/// Builds a multi-threaded tokio runtime for a command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(command: Command, config: Config, name: &str) -> anyhow::Result<ExitCode> {
    use crate::outbox::SignalKind as K;
    let flush = |kinds: &[K], args| runtime()?.block_on(flush::run(kinds, args, &config, name));
    use crate::scanners::Scan as S;
    let scan_one = |scan, args| runtime()?.block_on(scan::run_one(scan, args, &config, name));
    match command {
        Command::Configure(args) => runtime()?.block_on(configure::run(args, &config)),
        Command::AwaitMigrations => runtime()?.block_on(await_migrations::run(&config)),
        Command::Worker => runtime()?.block_on(worker::run(config)),
        Command::Solver => {
            let args = RollTurnsArgs::default();
            runtime()?.block_on(turns::run(args, &config, name))
        }
        Command::RollTurns(args) => runtime()?.block_on(turns::run(args, &config, name)),
        Command::RollWorkerTurns(args) => {
            runtime()?.block_on(turns::run_worker(args, &config, name))
        }
        Command::ConsumeMessages(args) => runtime()?.block_on(consume::run(args, config)),
        Command::FlushAll(a) => flush(&K::ALL, a),
        Command::FlushConfigureAccounts(a) => flush(&[K::ConfigureAccount], a),
        Command::FlushPrepareTransfers(a) => flush(&[K::PrepareTransfer], a),
        Command::FlushFinalizeTransfers(a) => flush(&[K::FinalizeTransfer], a),
        Command::FlushFetchDebtorInfos(a) => flush(&[K::FetchDebtorInfo], a),
        Command::FlushStoreDocuments(a) => flush(&[K::StoreDocument], a),
        Command::FlushDiscoverDebtors(a) => flush(&[K::DiscoverDebtor], a),
        Command::FlushConfirmDebtors(a) => flush(&[K::ConfirmDebtor], a),
        Command::FlushActivateCollectors(a) => flush(&[K::ActivateCollector], a),
        Command::FlushCandidateOffers(a) => flush(&[K::CandidateOffer], a),
        Command::FlushNeededCollectors(a) => flush(&[K::NeededCollector], a),
        Command::FlushReviseAccountLocks(a) => flush(&[K::ReviseAccountLock], a),
        Command::FlushTriggerTransfers(a) => flush(&[K::TriggerTransfer], a),
        Command::FlushAccountIdRequests(a) => flush(&[K::AccountIdRequest], a),
        Command::FlushAccountIdResponses(a) => flush(&[K::AccountIdResponse], a),
        Command::Subscribe(args) => runtime()?.block_on(broker_admin::subscribe(args, &config)),
        Command::Unsubscribe(args) => runtime()?.block_on(broker_admin::unsubscribe(args, &config)),
        Command::DeleteQueue(args) => {
            runtime()?.block_on(broker_admin::delete_queue(args, &config))
        }
        Command::HandlePristineCollectors(args) => {
            runtime()?.block_on(pristine::run(args, &config, name))
        }
        Command::VerifyShardContent => runtime()?.block_on(verify_shard::run(&config)),
        Command::ScanDebtorInfoDocuments(a) => scan_one(S::DebtorInfoDocuments, a),
        Command::ScanDebtorLocatorClaims(a) => scan_one(S::DebtorLocatorClaims, a),
        Command::ScanTradingPolicies(a) => scan_one(S::TradingPolicies, a),
        Command::ScanWorkerAccounts(a) => scan_one(S::WorkerAccounts, a),
        Command::ScanInterestRateChanges(a) => scan_one(S::InterestRateChanges, a),
        Command::ScanNeededWorkerAccounts(a) => scan_one(S::NeededWorkerAccounts, a),
        Command::ScanRecentlyNeededCollectors(a) => scan_one(S::RecentlyNeededCollectors, a),
        Command::ScanAccountLocks(a) => scan_one(S::AccountLocks, a),
        Command::ScanCreditorParticipations(a) => scan_one(S::CreditorParticipations, a),
        Command::ScanDispatchingStatuses(a) => scan_one(S::DispatchingStatuses, a),
        Command::ScanWorkerCollectings(a) => scan_one(S::WorkerCollectings, a),
        Command::ScanWorkerSendings(a) => scan_one(S::WorkerSendings, a),
        Command::ScanWorkerReceivings(a) => scan_one(S::WorkerReceivings, a),
        Command::ScanWorkerDispatchings(a) => scan_one(S::WorkerDispatchings, a),
        Command::ScanTransferAttempts(a) => scan_one(S::TransferAttempts, a),
        Command::ScanAll => runtime()?.block_on(scan::run_all(&config, name)),
        Command::SolveOffline(args) => crate::offline::run(&args).map(|()| ExitCode::SUCCESS),
        Command::FetchDebtorInfos(args) => runtime()?.block_on(fetch::run(args, &config, name)),
        Command::RollTransfers(args) => {
            runtime()?.block_on(transfers::run_roll(args, &config, name))
        }
        Command::TriggerTransfers(args) => {
            runtime()?.block_on(transfers::run_trigger(args, &config, name))
        }
        Command::Simulate(args) => runtime()?.block_on(simulate::run(args, &config)),
        Command::Webserver => runtime()?
            .block_on(crate::web::run(config, name))
            .map(|()| ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn verify_cli() {
        // clap's own consistency checks of the command-line definition.
        super::Cli::command().debug_assert();
    }
}
