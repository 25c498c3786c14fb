//! `simulate`: the service's peers — an accounting authority, a Creditors Agent and the
//! currencies' debtor info documents — simulated, with an audit of every turn
//! (`src/simulator/`, README.md "Try it"). Prints one line per turn; exits 0 when every audit
//! passed, 1 otherwise.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use crate::config::Config;
use crate::simulator::{self, Event, Settings};

/// `simulate` options.
#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// The database URL of a worker shard, for the audit; give every shard's.
    #[arg(long = "worker-db", value_name = "URL", required = true)]
    pub worker_dbs: Vec<String>,
    /// How many creditors trade.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub creditors: usize,
    /// How many currencies, the base currency included.
    #[arg(short = 'm', long, default_value_t = 5)]
    pub currencies: usize,
    /// Seeds the peg tree, the creditors' holdings and their trading policies.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The port of the HTTPS server of debtor info documents on 127.0.0.1 (0: any).
    #[arg(long, default_value_t = 18443)]
    pub https_port: u16,
    /// The base currency's debtor ID (default: BASE_DEBTOR_ID, or 1000); the other
    /// currencies' IDs follow it.
    #[arg(long)]
    pub base_debtor_id: Option<i64>,
    /// The first creditor ID; the creditors' IDs follow it.
    #[arg(long, default_value_t = 1)]
    pub first_creditor_id: i64,
    /// The accounting authority's interest rate, percent a year (negative: demurrage, at
    /// least -50).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub interest_rate: f64,
    /// The simulator's RabbitMQ queue (bound to `creditors_out` with `#`).
    #[arg(long, default_value = "swpt_trade_simulator")]
    pub queue: String,
    /// Seconds between two heartbeats of every collector account.
    #[arg(long, default_value_t = 60)]
    pub heartbeat_seconds: u64,
    /// Seconds a turn's transfers may take after it is solved before its audit fails.
    #[arg(long, default_value_t = 300)]
    pub transfers_timeout_seconds: u64,
    /// Stop after this many turns with trades have been audited.
    #[arg(long)]
    pub traded_turns: Option<usize>,
    /// A file to write (the base currency's locator) once every currency can be traded.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
}

/// The settings of `args` and `config`.
///
/// # Errors
///
/// A missing `SOLVER_POSTGRES_URL` or an invalid worker database URL.
pub fn settings(args: &SimulateArgs, config: &Config) -> anyhow::Result<Settings> {
    let solver_url = config
        .db
        .solver_url
        .clone()
        .context("SOLVER_POSTGRES_URL is not set: the simulator reads the turns there")?;
    let worker_urls = args
        .worker_dbs
        .iter()
        .map(|url| {
            crate::config::parse::parse_db_url(url)
                .map_err(|why| anyhow::anyhow!("--worker-db {url:?}: {why}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The authority's commit period must let every turn's transfers through
    // (docs/messages.md#account-updates): a day more than APP_TURN_MAX_COMMIT_PERIOD.
    let commit_period = (config.turn.max_commit_period + Duration::from_secs(86_400))
        .as_secs()
        .min(i32::MAX as u64) as i32;
    Ok(Settings {
        broker_url: config.broker.url.clone(),
        solver_url,
        worker_urls,
        creditors: args.creditors,
        currencies: args.currencies,
        seed: args.seed,
        https_port: args.https_port,
        base_debtor_id: args
            .base_debtor_id
            .or(config.turn.base_debtor_id)
            .unwrap_or(1000),
        expected_base_locator: config.turn.base_debtor_info_locator.clone(),
        first_creditor_id: args.first_creditor_id,
        min_trade_amount: config.turn.min_trade_amount,
        amount_cut: config.worker.transfers_amount_cut,
        interest_rate: args.interest_rate,
        commit_period,
        collector_ids: (
            config.worker.min_collector_id,
            config.worker.max_collector_id,
        ),
        queue: args.queue.clone(),
        heartbeat_period: Duration::from_secs(args.heartbeat_seconds.max(1)),
        transfers_timeout: Duration::from_secs(args.transfers_timeout_seconds.max(1)),
        traded_turns: args.traded_turns,
        ready_file: args.ready_file.clone(),
    })
}

fn print(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs `simulate` until SIGINT/SIGTERM (or `--traded-turns`).
pub async fn run(args: SimulateArgs, config: &Config) -> anyhow::Result<ExitCode> {
    let settings = settings(&args, config)?;
    let stop = crate::shutdown::on_signals();
    let events = Box::new(|event: &Event| match event {
        Event::Note(note) => print(&format!("simulate: {note}")),
        Event::Ready => print(
            "simulate: ready: every currency has an active collector account and a confirmed \
             document; the next turn trades",
        ),
        Event::Turn(report) => print(&report.line()),
        Event::Failure(why) => print(&format!("simulate: FAILURE: {why}")),
    });
    let report = simulator::run(settings, stop, events).await?;
    let failed = report.turns.iter().filter(|t| !t.errors.is_empty()).count();
    print(&format!(
        "simulate: {} turns audited, {} with trades, {failed} failed; {} other failures",
        report.turns.len(),
        report.turns.iter().filter(|t| t.traded()).count(),
        report.failures.len()
    ));
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
