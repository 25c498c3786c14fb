//! The subcommands and their options. Option names and short flags follow the reference's
//! `flask swpt_trade …` commands; an omitted option falls back to its environment variable.

use clap::{Args, Subcommand};

use crate::db::Database;

/// Every command of the service.
#[derive(Debug, Subcommand)]
#[command(rename_all = "snake_case")]
pub enum Command {
    /// Starts the solver server, which runs the trading turns. Run exactly one.
    Solver,
    /// Runs the solver's turn loop: starts turns and advances their phases.
    RollTurns(RollTurnsArgs),
    /// Runs this worker's part of the trading turns (its sub-phases).
    RollWorkerTurns(WaitArgs),
    /// Runs this worker's transfers of solved turns (collecting, sending, dispatching).
    RollTransfers(RollTransfersArgs),
    /// Starts a worker server for one database shard (all its processes). Run exactly one per
    /// worker database.
    Worker,
    /// Starts an admin API web server. Run as many as you like.
    Webserver,
    /// Initializes (migrates) the solver's and the worker's databases; safe to run again.
    Configure(ConfigureArgs),
    /// Blocks until both databases are at the latest migration known to this binary.
    AwaitMigrations,
    /// Starts only the processes that consume SMP messages from RabbitMQ.
    ConsumeMessages(ConsumeArgs),
    /// Sends every kind of outgoing message from the database to RabbitMQ.
    FlushAll(FlushArgs),
    /// Sends outgoing ConfigureAccount messages.
    FlushConfigureAccounts(FlushArgs),
    /// Sends outgoing PrepareTransfer messages.
    FlushPrepareTransfers(FlushArgs),
    /// Sends outgoing FinalizeTransfer messages.
    FlushFinalizeTransfers(FlushArgs),
    /// Sends outgoing FetchDebtorInfo messages.
    FlushFetchDebtorInfos(FlushArgs),
    /// Sends outgoing StoreDocument messages.
    FlushStoreDocuments(FlushArgs),
    /// Sends outgoing DiscoverDebtor messages.
    FlushDiscoverDebtors(FlushArgs),
    /// Sends outgoing ConfirmDebtor messages.
    FlushConfirmDebtors(FlushArgs),
    /// Sends outgoing ActivateCollector messages.
    FlushActivateCollectors(FlushArgs),
    /// Sends outgoing CandidateOffer messages.
    FlushCandidateOffers(FlushArgs),
    /// Sends outgoing NeededCollector messages.
    FlushNeededCollectors(FlushArgs),
    /// Sends outgoing ReviseAccountLock messages.
    FlushReviseAccountLocks(FlushArgs),
    /// Sends outgoing TriggerTransfer messages.
    FlushTriggerTransfers(FlushArgs),
    /// Sends outgoing AccountIdRequest messages.
    FlushAccountIdRequests(FlushArgs),
    /// Sends outgoing AccountIdResponse messages.
    FlushAccountIdResponses(FlushArgs),
    /// Starts processes that perform the scheduled HTTP fetches of debtor info documents.
    FetchDebtorInfos(FetchArgs),
    /// Starts processes that trigger the scheduled transfer attempts.
    TriggerTransfers(PeriodicArgs),
    /// Asks the accounting authorities to create this shard's planned collector accounts.
    HandlePristineCollectors(PristineArgs),
    /// Declares this worker's RabbitMQ queue and subscribes it to incoming messages.
    Subscribe(BrokerArgs),
    /// Unsubscribes this worker's RabbitMQ queue from incoming messages.
    Unsubscribe(BrokerArgs),
    /// Waits until this worker's RabbitMQ queue is empty, then deletes it.
    DeleteQueue(QueueArgs),
    /// Verifies that the worker database holds only records of this worker's shard.
    VerifyShardContent,
    /// Starts a process that garbage collects stale debtor info documents.
    ScanDebtorInfoDocuments(ScanArgs),
    /// Starts a process that garbage collects stale debtor locator claims.
    ScanDebtorLocatorClaims(ScanArgs),
    /// Starts a process that garbage collects useless trading policies.
    ScanTradingPolicies(ScanArgs),
    /// Starts a process that garbage collects worker accounts.
    ScanWorkerAccounts(ScanArgs),
    /// Starts a process that garbage collects stale interest rate changes.
    ScanInterestRateChanges(ScanArgs),
    /// Starts a process that garbage collects needed worker accounts.
    ScanNeededWorkerAccounts(ScanArgs),
    /// Starts a process that garbage collects recently needed collector records.
    ScanRecentlyNeededCollectors(ScanArgs),
    /// Starts a process that garbage collects account lock records.
    ScanAccountLocks(ScanArgs),
    /// Starts a process that garbage collects creditor participation records.
    ScanCreditorParticipations(ScanArgs),
    /// Starts a process that garbage collects dispatching status records.
    ScanDispatchingStatuses(ScanArgs),
    /// Starts a process that garbage collects worker collecting records.
    ScanWorkerCollectings(ScanArgs),
    /// Starts a process that garbage collects worker sending records.
    ScanWorkerSendings(ScanArgs),
    /// Starts a process that garbage collects worker receiving records.
    ScanWorkerReceivings(ScanArgs),
    /// Starts a process that garbage collects worker dispatching records.
    ScanWorkerDispatchings(ScanArgs),
    /// Starts a process that garbage collects transfer attempt records.
    ScanTransferAttempts(ScanArgs),
    /// Starts all 15 table scanners in one process.
    ScanAll,
    /// Solves one trading turn from CSV files and writes the six result tables as CSV files.
    SolveOffline(crate::offline::SolveOfflineArgs),
    /// Simulates the service's peers — an accounting authority, a Creditors Agent and the
    /// currencies' debtor info documents — and audits every turn (not for production).
    Simulate(super::simulate::SimulateArgs),
}

/// `configure [solver|worker]`.
#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// Initialize only this database (both when omitted).
    #[arg(value_enum)]
    pub database: Option<Database>,
}

/// Options of `consume_messages` (the default: every setting from the environment).
#[derive(Debug, Default, Args)]
pub struct ConsumeArgs {
    /// The RabbitMQ URL (PROTOCOL_BROKER_URL).
    #[arg(short = 'u', long)]
    pub url: Option<String>,
    /// The queue to consume from (PROTOCOL_BROKER_QUEUE).
    #[arg(short = 'q', long)]
    pub queue: Option<String>,
    /// Number of consumer processes (PROTOCOL_BROKER_PROCESSES); 0 means "not given".
    #[arg(short = 'p', long)]
    pub processes: Option<u32>,
    /// Concurrent handlers per process (PROTOCOL_BROKER_THREADS).
    #[arg(short = 't', long)]
    pub threads: Option<u32>,
    /// Prefetch size in bytes (PROTOCOL_BROKER_PREFETCH_SIZE).
    #[arg(short = 's', long)]
    pub prefetch_size: Option<u32>,
    /// Prefetch count (PROTOCOL_BROKER_PREFETCH_COUNT).
    #[arg(short = 'c', long)]
    pub prefetch_count: Option<u16>,
    /// Pause consuming periodically, so that the queue can be deleted safely.
    #[arg(long)]
    pub draining_mode: bool,
}

/// Options of `flush_all` and the `flush_*` commands.
#[derive(Debug, Args)]
pub struct FlushArgs {
    /// Number of flushing processes (FLUSH_PROCESSES); 0 makes the command idle.
    #[arg(short = 'p', long)]
    pub processes: Option<u32>,
    /// Seconds between two flushes (FLUSH_PERIOD).
    #[arg(short = 'w', long)]
    pub wait: Option<f64>,
    /// Flush once, then exit (for tests).
    #[arg(long)]
    pub quit_early: bool,
}

/// Options of `fetch_debtor_infos` (the default: every setting from the environment).
#[derive(Debug, Default, Args)]
pub struct FetchArgs {
    /// Number of fetching processes (HTTP_FETCH_PROCESSES); 0 makes the command idle.
    #[arg(short = 'p', long)]
    pub processes: Option<u32>,
    /// Parallel HTTP connections per process (HTTP_FETCH_CONNECTIONS).
    #[arg(short = 'c', long)]
    pub connections: Option<u32>,
    /// Seconds to wait for a response (HTTP_FETCH_TIMEOUT).
    #[arg(short = 't', long)]
    pub timeout: Option<f64>,
    /// Seconds between two queries for due fetches (HTTP_FETCH_PERIOD).
    #[arg(short = 'w', long)]
    pub wait: Option<f64>,
    /// Run once, then exit (for tests).
    #[arg(long)]
    pub quit_early: bool,
}

/// Options of `trigger_transfers`.
#[derive(Debug, Default, Args)]
pub struct PeriodicArgs {
    /// Number of processes (TRIGGER_TRANSFERS_PROCESSES); 0 makes the command idle.
    #[arg(short = 'p', long)]
    pub processes: Option<u32>,
    /// Seconds between two queries (TRIGGER_TRANSFERS_PERIOD).
    #[arg(short = 'w', long)]
    pub wait: Option<f64>,
    /// Run once, then exit (for tests).
    #[arg(long)]
    pub quit_early: bool,
}

/// Options of `roll_turns`.
#[derive(Debug, Default, Args)]
pub struct RollTurnsArgs {
    /// The distance between turn starting points, e.g. `1d` (TURN_PERIOD).
    #[arg(short = 'p', long)]
    pub period: Option<String>,
    /// The offset of the starting points from 2024-01-01 00:00 UTC (TURN_PERIOD_OFFSET).
    #[arg(short = 'o', long)]
    pub period_offset: Option<String>,
    /// How often turns are checked, e.g. `60s` (TURN_CHECK_INTERVAL).
    #[arg(short = 'c', long)]
    pub check_interval: Option<String>,
    /// Run one iteration, then exit (for tests).
    #[arg(long)]
    pub quit_early: bool,
}

/// Options of `roll_worker_turns`.
#[derive(Debug, Default, Args)]
pub struct WaitArgs {
    /// Seconds between two iterations (APP_ROLL_WORKER_TURNS_WAIT).
    #[arg(short = 'w', long)]
    pub wait: Option<f64>,
    /// Run one iteration, then exit (for tests).
    #[arg(long)]
    pub quit_early: bool,
}

/// Options of `roll_transfers`.
#[derive(Debug, Default, Args)]
pub struct RollTransfersArgs {
    /// Seconds between two passes (default: TRANSFERS_HEALTHY_MAX_COMMIT_DELAY / 12).
    #[arg(short = 'w', long)]
    pub wait: Option<f64>,
    /// Run one pass, then exit (for tests).
    #[arg(long)]
    pub quit_early: bool,
}

/// Options of `handle_pristine_collectors`.
#[derive(Debug, Default, Args)]
pub struct PristineArgs {
    /// Collectors handled at the same time (HANDLE_PRISTINE_COLLECTORS_THREADS); 0 means
    /// "not given".
    #[arg(short = 't', long)]
    pub threads: Option<u32>,
    /// Seconds between two queries for pristine collectors (HANDLE_PRISTINE_COLLECTORS_PERIOD).
    #[arg(short = 'w', long)]
    pub wait: Option<f64>,
    /// Run once, then exit (for tests).
    #[arg(long)]
    pub quit_early: bool,
}

/// Options of `subscribe` and `unsubscribe`.
#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// The RabbitMQ URL (PROTOCOL_BROKER_URL).
    #[arg(short = 'u', long)]
    pub url: Option<String>,
    /// The queue (PROTOCOL_BROKER_QUEUE).
    #[arg(short = 'q', long)]
    pub queue: Option<String>,
    /// The binding key (PROTOCOL_BROKER_QUEUE_ROUTING_KEY).
    #[arg(short = 'k', long)]
    pub queue_routing_key: Option<String>,
}

/// Options of `delete_queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// The RabbitMQ URL (PROTOCOL_BROKER_URL).
    #[arg(short = 'u', long)]
    pub url: Option<String>,
    /// The queue (PROTOCOL_BROKER_QUEUE).
    #[arg(short = 'q', long)]
    pub queue: Option<String>,
}

/// Options of the `scan_*` commands (all but `scan_all`).
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The intended duration of one pass over the table, in days (APP_<TABLE>_SCAN_DAYS when
    /// omitted or 0).
    #[arg(short = 'd', long)]
    pub days: Option<f64>,
    /// Exit after 11 passes over the table (for tests).
    #[arg(long)]
    pub quit_early: bool,
}
