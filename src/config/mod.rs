//! The service's settings, read once from the environment at start-up.
//!
//! Every variable of the reference is here with the same name, default and parsing rule
//! (docs/configuration.md); `.env.example` lists them with their meaning. A value that cannot
//! be parsed, or that fails a start-up sanity check (docs/configuration.md#start-up-checks),
//! stops the command before any I/O.

mod env;
mod mask;
pub mod parse;
pub mod pyliteral;
mod scan;

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Duration;

pub use env::{ConfigError, EnvReader};
pub use mask::{mask_url, mask_urls_in_text};
pub use scan::{SCAN_TABLES, ScanSettings};

use crate::outbox::SignalKind;
use crate::sharding::ShardingRealm;

/// Default `MIN_COLLECTOR_ID`.
pub const DEFAULT_MIN_COLLECTOR_ID: &str = "0x0000010000000000";
/// Default `MAX_COLLECTOR_ID`.
pub const DEFAULT_MAX_COLLECTOR_ID: &str = "0x00000100000007ff";
/// Default `WORKER_POSTGRES_URL`: a valid placeholder, so solver-only setups need not set it.
pub const DEFAULT_WORKER_POSTGRES_URL: &str = "postgresql+psycopg://localhost/postgres";

// Upper bounds of the counts that size tasks, connections, pools and batches, checked at
// start-up so that a typo cannot exhaust memory, file descriptors or the broker.

/// The most processes of one kind (`PROTOCOL_BROKER_PROCESSES`, `FLUSH_PROCESSES`,
/// `HTTP_FETCH_PROCESSES`, `TRIGGER_TRANSFERS_PROCESSES`, `WEBSERVER_PROCESSES`, `-p`).
pub const MAX_PROCESSES: u32 = 64;
/// The most threads (concurrent tasks) per process (`PROTOCOL_BROKER_THREADS`,
/// `HANDLE_PRISTINE_COLLECTORS_THREADS`, `WEBSERVER_THREADS`, `-t`).
pub const MAX_THREADS: u32 = 1024;
/// The most parallel HTTP connections per process (`HTTP_FETCH_CONNECTIONS`, `-c`).
pub const MAX_CONNECTIONS: u32 = 10_000;
/// The largest database pool (`SOLVER_CLIENT_POOL_SIZE`, `pool_size` of
/// `SQLALCHEMY_ENGINE_OPTIONS`).
pub const MAX_POOL_SIZE: usize = 1000;
/// The largest `PROTOCOL_BROKER_PREFETCH_COUNT`.
pub const MAX_PREFETCH_COUNT: u16 = 10_000;
/// The largest `APP_CONSUMER_BATCH_SIZE` (messages in one transaction).
pub const MAX_CONSUMER_BATCH_SIZE: u16 = 10_000;
/// The largest `*_BURST_COUNT` (rows in one batch).
pub const MAX_BURST_COUNT: u32 = 1_000_000;
/// The most rows one query fetches (`APP_VERIFY_SHARD_YIELD_PER`,
/// `APP_HANDLE_PRISTINE_COLLECTORS_MAX_COUNT`).
pub const MAX_ROWS_PER_QUERY: u32 = 1_000_000;
/// The longest period that is added to or subtracted from a date (100 years): durations
/// such as `APP_INTEREST_RATE_HISTORY_PERIOD` and the `*_DAYS` settings, so that date
/// arithmetic cannot overflow.
pub const MAX_DATE_OFFSET_DAYS: f64 = 36_500.0;
/// The longest timeout in seconds (one day): `APP_DB_ACQUIRE_TIMEOUT_SECONDS`,
/// `APP_SHUTDOWN_TIMEOUT`.
pub const MAX_TIMEOUT_SECS: f64 = 86_400.0;
/// The largest `TOKEN_INTROSPECTION_CACHE_MAX_COST` (bytes of cached introspection results).
pub const MAX_TOKEN_CACHE_COST: u64 = 10_000_000_000;
/// The longest `APP_DB_STATEMENT_TIMEOUT_SECONDS`: PostgreSQL's `statement_timeout` is a
/// number of milliseconds that fits in 32 bits.
pub const MAX_STATEMENT_TIMEOUT_SECS: f64 = 2_147_483.647;

/// Checks a count that is given on the command line (`-p`, `-t`, `-c`…) against the bound of
/// the setting it replaces (e.g. [`MAX_PROCESSES`]); the error names `name` (the option)
/// and reads like a setting's.
pub fn check_count<T>(name: &str, value: T, max: T) -> Result<T, ConfigError>
where
    T: PartialOrd + Display + Copy,
{
    if value > max {
        return Err(ConfigError::new(
            name,
            &value.to_string(),
            format!("too large: must be at most {max}"),
        ));
    }
    Ok(value)
}

/// Rows per flush batch for each kind of outbox signal (`APP_*_BURST_COUNT`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BurstCounts([u32; SignalKind::ALL.len()]);

impl BurstCounts {
    /// The reference's default for every kind.
    pub const DEFAULT: u32 = 10_000;

    /// `n` rows for every kind.
    pub fn uniform(n: u32) -> Self {
        Self([n; SignalKind::ALL.len()])
    }

    /// Rows per batch for `kind`.
    pub fn get(&self, kind: SignalKind) -> u32 {
        self.0[kind as usize]
    }

    /// Sets the rows per batch for `kind`.
    pub fn set(&mut self, kind: SignalKind, n: u32) {
        self.0[kind as usize] = n;
    }
}

impl std::fmt::Debug for BurstCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(
                SignalKind::ALL
                    .iter()
                    .map(|&k| (k.class_name(), self.get(k))),
            )
            .finish()
    }
}

/// Database settings.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// `SOLVER_POSTGRES_URL`, as a `postgresql://` URL; `None` when unset or empty.
    pub solver_url: Option<String>,
    /// `SOLVER_CLIENT_POOL_SIZE`: `None` when unset, `Some(0)` for no fixed limit.
    pub solver_pool_size: Option<usize>,
    /// `WORKER_POSTGRES_URL`, as a `postgresql://` URL.
    pub worker_url: String,
    /// The `pool_size` of `SQLALCHEMY_ENGINE_OPTIONS` (0 = no fixed limit).
    pub engine_pool_size: usize,
    /// `APP_DB_ACQUIRE_TIMEOUT_SECONDS`: how long a task waits for a pooled connection.
    pub acquire_timeout: Duration,
    /// `APP_DB_STATEMENT_TIMEOUT_SECONDS`: the `statement_timeout` of pooled connections
    /// (`None` for 0, no limit).
    pub statement_timeout: Option<Duration>,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs may hold passwords: never print them.
        f.debug_struct("DatabaseConfig")
            .field("solver_pool_size", &self.solver_pool_size)
            .field("engine_pool_size", &self.engine_pool_size)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish_non_exhaustive()
    }
}

/// RabbitMQ settings (`PROTOCOL_BROKER_*`).
#[derive(Clone)]
pub struct BrokerConfig {
    /// `PROTOCOL_BROKER_URL`.
    pub url: String,
    /// `PROTOCOL_BROKER_QUEUE`.
    pub queue: String,
    /// `PROTOCOL_BROKER_QUEUE_ROUTING_KEY`, verbatim (also the binding key).
    pub queue_routing_key: String,
    /// `PROTOCOL_BROKER_PROCESSES` (0 = consume nothing).
    pub processes: u32,
    /// `PROTOCOL_BROKER_THREADS`.
    pub threads: u32,
    /// `PROTOCOL_BROKER_PREFETCH_SIZE` in bytes (0 = no limit).
    pub prefetch_size: u32,
    /// `PROTOCOL_BROKER_PREFETCH_COUNT`.
    pub prefetch_count: u16,
    /// `APP_CONSUMER_BATCH_SIZE`: the most messages handled in one transaction (1 = one by
    /// one, as the reference).
    pub batch_size: u16,
}

impl std::fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("queue", &self.queue)
            .field("queue_routing_key", &self.queue_routing_key)
            .field("processes", &self.processes)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

/// Parses `APP_SOLVER_MATCHER`: `flow` or `greedy`.
pub fn parse_matcher(value: &str) -> Result<crate::solver::MatcherKind, String> {
    crate::solver::MatcherKind::parse(value).ok_or_else(|| "expected flow or greedy".to_string())
}

/// The solver's turn schedule and trading parameters.
#[derive(Clone)]
pub struct TurnConfig {
    /// `TURN_PERIOD`.
    pub period: Duration,
    /// `TURN_PERIOD_OFFSET`.
    pub period_offset: Duration,
    /// `TURN_CHECK_INTERVAL`.
    pub check_interval: Duration,
    /// `TURN_PHASE1_DURATION`.
    pub phase1_duration: Duration,
    /// `TURN_PHASE2_DURATION`.
    pub phase2_duration: Duration,
    /// `BASE_DEBTOR_INFO_LOCATOR`.
    pub base_debtor_info_locator: Option<String>,
    /// `BASE_DEBTOR_ID`.
    pub base_debtor_id: Option<i64>,
    /// `MAX_DISTANCE_TO_BASE`.
    pub max_distance_to_base: i16,
    /// `MIN_TRADE_AMOUNT`.
    pub min_trade_amount: i64,
    /// `APP_TURN_MAX_COMMIT_PERIOD`.
    pub max_commit_period: Duration,
    /// `APP_TURN_PHASE_CUSHION_PERIOD`.
    pub phase_cushion_period: Duration,
    /// `APP_ROLL_WORKER_TURNS_WAIT`.
    pub roll_worker_turns_wait: Duration,
    /// `APP_SOLVER_MATCHER`: which matcher solves a turn (`flow` or `greedy`).
    pub matcher: crate::solver::MatcherKind,
}

impl std::fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnConfig")
            .field("period", &self.period)
            .field("period_offset", &self.period_offset)
            .field("check_interval", &self.check_interval)
            .field("phase1_duration", &self.phase1_duration)
            .field("phase2_duration", &self.phase2_duration)
            .field(
                "base_debtor_info_locator",
                &self.base_debtor_info_locator.as_deref().map(mask_url),
            )
            .field("base_debtor_id", &self.base_debtor_id)
            .field("max_distance_to_base", &self.max_distance_to_base)
            .field("min_trade_amount", &self.min_trade_amount)
            .field("max_commit_period", &self.max_commit_period)
            .field("phase_cushion_period", &self.phase_cushion_period)
            .field("roll_worker_turns_wait", &self.roll_worker_turns_wait)
            .field("matcher", &self.matcher)
            .finish()
    }
}

/// Periodic worker processes: how many, and how often (docs/configuration.md#worker-processes).
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// `FLUSH_PROCESSES`.
    pub flush_processes: u32,
    /// `FLUSH_PERIOD`.
    pub flush_period: Duration,
    /// `HTTP_FETCH_PROCESSES`.
    pub http_fetch_processes: u32,
    /// `HTTP_FETCH_PERIOD`.
    pub http_fetch_period: Duration,
    /// `HTTP_FETCH_CONNECTIONS`.
    pub http_fetch_connections: u32,
    /// `HTTP_FETCH_TIMEOUT`.
    pub http_fetch_timeout: Duration,
    /// `TRIGGER_TRANSFERS_PROCESSES`.
    pub trigger_transfers_processes: u32,
    /// `TRIGGER_TRANSFERS_PERIOD`.
    pub trigger_transfers_period: Duration,
    /// `HANDLE_PRISTINE_COLLECTORS_THREADS`.
    pub handle_pristine_collectors_threads: u32,
    /// `HANDLE_PRISTINE_COLLECTORS_PERIOD`.
    pub handle_pristine_collectors_period: Duration,
    /// `APP_HANDLE_PRISTINE_COLLECTORS_MAX_COUNT`.
    pub handle_pristine_collectors_max_count: u32,
    /// Rows per flush batch, by signal kind (`APP_*_BURST_COUNT`).
    pub flush_burst_counts: BurstCounts,
    /// `APP_DEBTOR_INFO_FETCH_BURST_COUNT`.
    pub debtor_info_fetch_burst_count: u32,
    /// `APP_RESCHEDULED_TRANSFERS_BURST_COUNT`.
    pub rescheduled_transfers_burst_count: u32,
    /// `APP_VERIFY_SHARD_YIELD_PER`.
    pub verify_shard_yield_per: u32,
    /// `APP_VERIFY_SHARD_SLEEP_SECONDS`.
    pub verify_shard_sleep: Duration,
    /// `APP_SHUTDOWN_TIMEOUT`: how long a process waits after SIGTERM for its tasks to
    /// finish their current work.
    pub shutdown_timeout: Duration,
}

impl ProcessConfig {
    /// Rows per flush batch for `kind` (`kind.burst_count_var()`).
    pub fn burst_count(&self, kind: SignalKind) -> u32 {
        self.flush_burst_counts.get(kind)
    }
}

/// Collector accounts, transfers and debtor info documents
/// (docs/configuration.md#collector-accounts-and-transfers).
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// `MIN_COLLECTOR_ID`.
    pub min_collector_id: i64,
    /// `MAX_COLLECTOR_ID`.
    pub max_collector_id: i64,
    /// `DEFAULT_NUMBER_OF_COLLECTOR_ACCOUNTS`.
    pub default_number_of_collector_accounts: u32,
    /// `TRANSFERS_HEALTHY_MAX_COMMIT_DELAY`.
    pub transfers_healthy_max_commit_delay: Duration,
    /// `TRANSFERS_AMOUNT_CUT`.
    pub transfers_amount_cut: f64,
    /// `DELETE_PARENT_SHARD_RECORDS`.
    pub delete_parent_shard_records: bool,
    /// `APP_VERIFY_SSL_CERTS`.
    pub verify_ssl_certs: bool,
    /// `APP_INTEREST_RATE_HISTORY_PERIOD`.
    pub interest_rate_history_period: Duration,
    /// `APP_MIN_DEMURRAGE_RATE` (percent per year).
    pub min_demurrage_rate: f64,
    /// `APP_MIN_TRANSFER_NOTE_MAX_BYTES`.
    pub min_transfer_note_max_bytes: u32,
    /// `APP_ACCOUNT_LOCK_MAX_DAYS`.
    pub account_lock_max_days: f64,
    /// `APP_RELEASED_ACCOUNT_LOCK_MAX_DAYS`.
    pub released_account_lock_max_days: f64,
    /// `APP_LOCATOR_CLAIM_EXPIRY_DAYS`.
    pub locator_claim_expiry_days: f64,
    /// `APP_DEBTOR_INFO_EXPIRY_DAYS`.
    pub debtor_info_expiry_days: f64,
    /// `APP_EXTREME_MESSAGE_DELAY_DAYS`.
    pub extreme_message_delay_days: f64,
    /// `APP_MAX_HEARTBEAT_DELAY_DAYS`.
    pub max_heartbeat_delay_days: f64,
    /// `APP_WORKER_COLLECTING_SLACK_DAYS`.
    pub collecting_slack_days: f64,
    /// `APP_WORKER_SENDING_SLACK_DAYS`.
    pub sending_slack_days: f64,
    /// `APP_WORKER_DISPATCHING_SLACK_DAYS`.
    pub dispatching_slack_days: f64,
}

/// The admin API.
#[derive(Clone)]
pub struct WebConfig {
    /// `OAUTH2_INTROSPECT_URL`.
    pub oauth2_introspect_url: Option<String>,
    /// `OAUTH2_SUPERUSER_USERNAME`.
    pub oauth2_superuser_username: String,
    /// `OAUTH2_SUPERVISOR_USERNAME`.
    pub oauth2_supervisor_username: String,
    /// `APP_SUPERUSER_SUBJECT_REGEX` (empty: derived from the superuser's name).
    pub superuser_subject_regex: String,
    /// `APP_SUPERVISOR_SUBJECT_REGEX` (empty: derived from the supervisor's name).
    pub supervisor_subject_regex: String,
    /// `APP_CREDITOR_SUBJECT_REGEX`.
    pub creditor_subject_regex: String,
    /// `APP_ENABLE_CORS`.
    pub enable_cors: bool,
    /// `WEBSERVER_PROCESSES`.
    pub processes: u32,
    /// `WEBSERVER_THREADS`.
    pub threads: u32,
    /// `WEBSERVER_PORT`.
    pub port: u16,
    /// `APP_WEBSERVER_LISTEN_ADDRESS`: the address the admin API listens on (default
    /// `0.0.0.0`, every interface, as the reference's container does).
    pub listen_address: std::net::IpAddr,
    /// `API_TITLE`.
    pub api_title: String,
    /// `API_VERSION`.
    pub api_version: String,
    /// `APP_TRUST_USER_ID_HEADER`: a trusted proxy in front authenticates every request and
    /// passes the caller in `X-Swpt-User-Id`, so the webserver introspects no tokens.
    pub trust_user_id_header: bool,
    /// `TOKEN_INTROSPECTION_CACHE_MAX_COST`: the introspection cache's size, in bytes of
    /// cached results.
    pub token_cache_max_cost: u64,
    /// `APP_TOKEN_INTROSPECTION_TIMEOUT_SECONDS`: how long one introspection request may take.
    pub introspection_timeout: Duration,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field(
                "oauth2_introspect_url",
                &self.oauth2_introspect_url.as_deref().map(mask_url),
            )
            .field("oauth2_superuser_username", &self.oauth2_superuser_username)
            .field(
                "oauth2_supervisor_username",
                &self.oauth2_supervisor_username,
            )
            .field("superuser_subject_regex", &self.superuser_subject_regex)
            .field("supervisor_subject_regex", &self.supervisor_subject_regex)
            .field("creditor_subject_regex", &self.creditor_subject_regex)
            .field("enable_cors", &self.enable_cors)
            .field("processes", &self.processes)
            .field("threads", &self.threads)
            .field("port", &self.port)
            .field("listen_address", &self.listen_address)
            .field("api_title", &self.api_title)
            .field("api_version", &self.api_version)
            .field("trust_user_id_header", &self.trust_user_id_header)
            .field("token_cache_max_cost", &self.token_cache_max_cost)
            .field("introspection_timeout", &self.introspection_timeout)
            .finish()
    }
}

/// Every setting of the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// Databases.
    pub db: DatabaseConfig,
    /// RabbitMQ.
    pub broker: BrokerConfig,
    /// This worker's shard, from `PROTOCOL_BROKER_QUEUE_ROUTING_KEY`.
    pub sharding_realm: ShardingRealm,
    /// Turns.
    pub turn: TurnConfig,
    /// Periodic processes.
    pub processes: ProcessConfig,
    /// Worker business settings.
    pub worker: WorkerConfig,
    /// Table scanners, by table group (e.g. `TRADING_POLICIES`).
    pub scans: BTreeMap<&'static str, ScanSettings>,
    /// Admin API.
    pub web: WebConfig,
    /// `SETUP_RABBITMQ_BINDINGS` equals `yes`.
    pub setup_rabbitmq_bindings: bool,
    /// `APP_METRICS_PORT`: the port on which `solver` and `worker` serve `/metrics` (none
    /// when unset or empty).
    pub metrics_port: Option<u16>,
}

impl Config {
    /// Reads the settings from the process environment; a value that is not valid UTF-8 is
    /// an error naming its variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let lookup = |k: &str| std::env::var_os(k);
        Self::from_reader(&EnvReader::from_os(&lookup))
    }

    /// Reads the settings through `lookup` and runs the start-up sanity checks.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_reader(&EnvReader::new(lookup))
    }

    /// Reads the settings through `env` and runs the start-up sanity checks.
    pub fn from_reader(env: &EnvReader<'_>) -> Result<Self, ConfigError> {
        let broker = read_broker(env)?;
        let sharding_realm: ShardingRealm = broker.queue_routing_key.parse().map_err(|_| {
            ConfigError::new(
                "PROTOCOL_BROKER_QUEUE_ROUTING_KEY",
                &broker.queue_routing_key,
                "invalid routing key",
            )
        })?;
        let config = Self {
            db: read_db(env)?,
            broker,
            sharding_realm,
            turn: read_turn(env)?,
            processes: read_processes(env)?,
            worker: read_worker(env)?,
            scans: scan::read_scans(env)?,
            web: read_web(env)?,
            setup_rabbitmq_bindings: env.raw("SETUP_RABBITMQ_BINDINGS")?.as_deref() == Some("yes"),
            metrics_port: match env.raw("APP_METRICS_PORT")? {
                Some(v) if !v.is_empty() => Some(
                    parse::parse_count_in(&v, 1, u16::MAX.into())
                        .map_err(|r| ConfigError::new("APP_METRICS_PORT", &v, r))?,
                ),
                _ => None,
            },
        };
        config.check_sanity(env)?;
        Ok(config)
    }

    /// The reference's start-up sanity checks (docs/configuration.md#start-up-checks).
    fn check_sanity(&self, env: &EnvReader<'_>) -> Result<(), ConfigError> {
        let fail = |var: &str, default: &str, reason: &str| -> Result<(), ConfigError> {
            Err(ConfigError::new(var, &env.string(var, default)?, reason))
        };
        let w = &self.worker;
        let (min, max) = (w.min_collector_id, w.max_collector_id);
        if min == 0 || max == 0 || (min < 0) != (max < 0) || min > max {
            let value = format!(
                "{}..{}",
                env.string("MIN_COLLECTOR_ID", DEFAULT_MIN_COLLECTOR_ID)?,
                env.string("MAX_COLLECTOR_ID", DEFAULT_MAX_COLLECTOR_ID)?
            );
            let reason = "Invalid values for MIN_COLLECTOR_ID and MAX_COLLECTOR_ID: they must be \
                          non-zero, of the same sign, and MIN_COLLECTOR_ID <= MAX_COLLECTOR_ID";
            return Err(ConfigError::new(
                "MIN_COLLECTOR_ID/MAX_COLLECTOR_ID",
                &value,
                reason,
            ));
        }
        if !(1e-10..=0.1).contains(&w.transfers_amount_cut) {
            return fail(
                "TRANSFERS_AMOUNT_CUT",
                "1e-5",
                "must be between 1e-10 and 0.1",
            );
        }
        if self.sharding_realm.bit_count() > 16 {
            return fail(
                "PROTOCOL_BROKER_QUEUE_ROUTING_KEY",
                "#",
                "too many shards: at most 16 routing-key bits are allowed",
            );
        }
        if self.turn.min_trade_amount < 10 {
            return fail("MIN_TRADE_AMOUNT", "1000", "too small: must be at least 10");
        }
        if w.locator_claim_expiry_days < 30.0 {
            return fail(
                "APP_LOCATOR_CLAIM_EXPIRY_DAYS",
                "45",
                "too small: must be at least 30",
            );
        }
        if w.debtor_info_expiry_days < 1.0 {
            return fail(
                "APP_DEBTOR_INFO_EXPIRY_DAYS",
                "7",
                "too small: must be at least 1",
            );
        }
        if w.locator_claim_expiry_days < 5.0 * w.debtor_info_expiry_days {
            return fail(
                "APP_LOCATOR_CLAIM_EXPIRY_DAYS",
                "45",
                "too small: must be at least 5 times APP_DEBTOR_INFO_EXPIRY_DAYS",
            );
        }
        if w.interest_rate_history_period < self.turn.max_commit_period {
            return fail(
                "APP_INTEREST_RATE_HISTORY_PERIOD",
                "180d",
                "must not be smaller than APP_TURN_MAX_COMMIT_PERIOD",
            );
        }
        Ok(())
    }

    /// The solver database URL, or an error naming the variable when it is not set.
    pub fn solver_url(&self) -> anyhow::Result<&str> {
        self.db
            .solver_url
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("SOLVER_POSTGRES_URL is not set"))
    }
}

fn read_db(env: &EnvReader<'_>) -> Result<DatabaseConfig, ConfigError> {
    let solver_url = match env.raw("SOLVER_POSTGRES_URL")? {
        Some(v) if !v.is_empty() => Some(
            parse::parse_db_url(&v).map_err(|r| ConfigError::new("SOLVER_POSTGRES_URL", &v, r))?,
        ),
        _ => None,
    };
    let worker_raw = env.string("WORKER_POSTGRES_URL", DEFAULT_WORKER_POSTGRES_URL)?;
    let worker_url = parse::parse_db_url(&worker_raw)
        .map_err(|r| ConfigError::new("WORKER_POSTGRES_URL", &worker_raw, r))?;
    let max_pool = MAX_POOL_SIZE as u64;
    Ok(DatabaseConfig {
        solver_url,
        solver_pool_size: env.optional("SOLVER_CLIENT_POOL_SIZE", |v| {
            parse::parse_count_in(v, 0, max_pool)
        })?,
        worker_url,
        engine_pool_size: env.parsed("SQLALCHEMY_ENGINE_OPTIONS", 0, parse_engine_pool_size)?,
        acquire_timeout: env.parsed(
            "APP_DB_ACQUIRE_TIMEOUT_SECONDS",
            Duration::from_secs(30),
            |v| match parse::parse_seconds_in(v, 0.0, MAX_TIMEOUT_SECS)? {
                Duration::ZERO => Err("must be greater than 0".into()),
                d => Ok(d),
            },
        )?,
        statement_timeout: env.parsed(
            "APP_DB_STATEMENT_TIMEOUT_SECONDS",
            Some(Duration::from_secs(600)),
            parse_statement_timeout,
        )?,
    })
}

/// Reads `APP_DB_STATEMENT_TIMEOUT_SECONDS`: 0 is no limit, anything else is at least one
/// millisecond (PostgreSQL's unit, where 0 would mean no limit).
fn parse_statement_timeout(s: &str) -> Result<Option<Duration>, String> {
    match parse::parse_seconds_in(s, 0.0, MAX_STATEMENT_TIMEOUT_SECS)? {
        Duration::ZERO => Ok(None),
        d if d < Duration::from_millis(1) => Err("must be 0 or at least 0.001".into()),
        d => Ok(Some(d)),
    }
}

/// Reads the `pool_size` of a `SQLALCHEMY_ENGINE_OPTIONS` JSON object (0 when absent).
fn parse_engine_pool_size(s: &str) -> Result<usize, String> {
    let v: serde_json::Value =
        serde_json::from_str(s).map_err(|_| format!("Invalid JSON configuration value: {s}"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| format!("Invalid JSON configuration value: {s}"))?;
    match obj.get("pool_size") {
        None => Ok(0),
        Some(n) => match n.as_u64() {
            Some(n) if n > MAX_POOL_SIZE as u64 => Err(format!(
                "pool_size too large: must be at most {MAX_POOL_SIZE}"
            )),
            Some(n) => usize::try_from(n).map_err(|_| "pool_size out of range".into()),
            None => Err("pool_size must be a non-negative integer".into()),
        },
    }
}

fn read_broker(env: &EnvReader<'_>) -> Result<BrokerConfig, ConfigError> {
    Ok(BrokerConfig {
        url: env.parsed(
            "PROTOCOL_BROKER_URL",
            "amqp://guest:guest@localhost:5672".into(),
            parse::parse_amqp_url,
        )?,
        queue: env.string("PROTOCOL_BROKER_QUEUE", "swpt_trade")?,
        queue_routing_key: env.string("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", "#")?,
        processes: env.count_at_most("PROTOCOL_BROKER_PROCESSES", 1, MAX_PROCESSES.into())?,
        threads: env.positive_at_most("PROTOCOL_BROKER_THREADS", 1, MAX_THREADS.into())?,
        prefetch_size: env.count("PROTOCOL_BROKER_PREFETCH_SIZE", 0)?,
        prefetch_count: env.count_at_most(
            "PROTOCOL_BROKER_PREFETCH_COUNT",
            1,
            MAX_PREFETCH_COUNT.into(),
        )?,
        batch_size: env.positive_at_most(
            "APP_CONSUMER_BATCH_SIZE",
            100,
            MAX_CONSUMER_BATCH_SIZE.into(),
        )?,
    })
}

fn read_turn(env: &EnvReader<'_>) -> Result<TurnConfig, ConfigError> {
    Ok(TurnConfig {
        period: env.date_offset("TURN_PERIOD", "1d")?,
        period_offset: env.date_offset("TURN_PERIOD_OFFSET", "2h")?,
        check_interval: env.date_offset("TURN_CHECK_INTERVAL", "60s")?,
        phase1_duration: env.date_offset("TURN_PHASE1_DURATION", "10m")?,
        phase2_duration: env.date_offset("TURN_PHASE2_DURATION", "1h")?,
        base_debtor_info_locator: env.raw("BASE_DEBTOR_INFO_LOCATOR")?,
        base_debtor_id: env.optional("BASE_DEBTOR_ID", parse::parse_id)?,
        max_distance_to_base: env.positive("MAX_DISTANCE_TO_BASE", 10)?,
        min_trade_amount: env.parsed("MIN_TRADE_AMOUNT", 1000, parse::parse_int)?,
        max_commit_period: env.date_offset("APP_TURN_MAX_COMMIT_PERIOD", "30d")?,
        phase_cushion_period: env.date_offset("APP_TURN_PHASE_CUSHION_PERIOD", "5m")?,
        roll_worker_turns_wait: env.seconds("APP_ROLL_WORKER_TURNS_WAIT", 60.0)?,
        matcher: env.parsed(
            "APP_SOLVER_MATCHER",
            crate::solver::MatcherKind::default(),
            parse_matcher,
        )?,
    })
}

fn read_processes(env: &EnvReader<'_>) -> Result<ProcessConfig, ConfigError> {
    let burst =
        |var: &str, default: u32| env.positive_at_most(var, default, MAX_BURST_COUNT.into());
    let mut flush_burst_counts = BurstCounts::uniform(BurstCounts::DEFAULT);
    for kind in SignalKind::ALL {
        flush_burst_counts.set(kind, burst(kind.burst_count_var(), BurstCounts::DEFAULT)?);
    }
    let processes = |var: &str| env.count_at_most(var, 1, MAX_PROCESSES.into());
    let rows =
        |var: &str, default: u32| env.positive_at_most(var, default, MAX_ROWS_PER_QUERY.into());
    Ok(ProcessConfig {
        flush_processes: processes("FLUSH_PROCESSES")?,
        flush_period: env.seconds("FLUSH_PERIOD", 2.0)?,
        http_fetch_processes: processes("HTTP_FETCH_PROCESSES")?,
        http_fetch_period: env.seconds("HTTP_FETCH_PERIOD", 5.0)?,
        http_fetch_connections: env.positive_at_most(
            "HTTP_FETCH_CONNECTIONS",
            100,
            MAX_CONNECTIONS.into(),
        )?,
        http_fetch_timeout: env.seconds("HTTP_FETCH_TIMEOUT", 10.0)?,
        trigger_transfers_processes: processes("TRIGGER_TRANSFERS_PROCESSES")?,
        trigger_transfers_period: env.seconds("TRIGGER_TRANSFERS_PERIOD", 5.0)?,
        handle_pristine_collectors_threads: env.count_at_most(
            "HANDLE_PRISTINE_COLLECTORS_THREADS",
            1,
            MAX_THREADS.into(),
        )?,
        handle_pristine_collectors_period: env
            .seconds("HANDLE_PRISTINE_COLLECTORS_PERIOD", 60.0)?,
        handle_pristine_collectors_max_count: rows(
            "APP_HANDLE_PRISTINE_COLLECTORS_MAX_COUNT",
            100_000,
        )?,
        flush_burst_counts,
        debtor_info_fetch_burst_count: burst("APP_DEBTOR_INFO_FETCH_BURST_COUNT", 2000)?,
        rescheduled_transfers_burst_count: burst("APP_RESCHEDULED_TRANSFERS_BURST_COUNT", 5000)?,
        verify_shard_yield_per: rows("APP_VERIFY_SHARD_YIELD_PER", 10_000)?,
        verify_shard_sleep: env.seconds("APP_VERIFY_SHARD_SLEEP_SECONDS", 0.005)?,
        shutdown_timeout: env.parsed("APP_SHUTDOWN_TIMEOUT", Duration::from_secs(30), |v| {
            parse::parse_seconds_in(v, 0.0, MAX_TIMEOUT_SECS)
        })?,
    })
}

fn read_worker(env: &EnvReader<'_>) -> Result<WorkerConfig, ConfigError> {
    let id = |var: &str, default: &str| {
        env.parsed(
            var,
            parse::parse_id(default).expect("valid default"),
            parse::parse_id,
        )
    };
    Ok(WorkerConfig {
        min_collector_id: id("MIN_COLLECTOR_ID", DEFAULT_MIN_COLLECTOR_ID)?,
        max_collector_id: id("MAX_COLLECTOR_ID", DEFAULT_MAX_COLLECTOR_ID)?,
        default_number_of_collector_accounts: env
            .positive("DEFAULT_NUMBER_OF_COLLECTOR_ACCOUNTS", 1)?,
        transfers_healthy_max_commit_delay: env
            .date_offset("TRANSFERS_HEALTHY_MAX_COMMIT_DELAY", "2h")?,
        transfers_amount_cut: env.float("TRANSFERS_AMOUNT_CUT", 1e-5)?,
        delete_parent_shard_records: env.bool("DELETE_PARENT_SHARD_RECORDS", false)?,
        verify_ssl_certs: env.bool("APP_VERIFY_SSL_CERTS", true)?,
        interest_rate_history_period: env
            .date_offset("APP_INTEREST_RATE_HISTORY_PERIOD", "180d")?,
        min_demurrage_rate: env.float("APP_MIN_DEMURRAGE_RATE", -50.0)?,
        min_transfer_note_max_bytes: env.count("APP_MIN_TRANSFER_NOTE_MAX_BYTES", 80)?,
        account_lock_max_days: env.days("APP_ACCOUNT_LOCK_MAX_DAYS", 365.0)?,
        released_account_lock_max_days: env.days("APP_RELEASED_ACCOUNT_LOCK_MAX_DAYS", 30.0)?,
        locator_claim_expiry_days: env.days("APP_LOCATOR_CLAIM_EXPIRY_DAYS", 45.0)?,
        debtor_info_expiry_days: env.days("APP_DEBTOR_INFO_EXPIRY_DAYS", 7.0)?,
        extreme_message_delay_days: env.days("APP_EXTREME_MESSAGE_DELAY_DAYS", 7.0)?,
        max_heartbeat_delay_days: env.days("APP_MAX_HEARTBEAT_DELAY_DAYS", 365.0)?,
        collecting_slack_days: env.days("APP_WORKER_COLLECTING_SLACK_DAYS", 60.0)?,
        sending_slack_days: env.days("APP_WORKER_SENDING_SLACK_DAYS", 150.0)?,
        dispatching_slack_days: env.days("APP_WORKER_DISPATCHING_SLACK_DAYS", 180.0)?,
    })
}

fn read_web(env: &EnvReader<'_>) -> Result<WebConfig, ConfigError> {
    Ok(WebConfig {
        oauth2_introspect_url: match env.raw("OAUTH2_INTROSPECT_URL")? {
            Some(v) if !v.is_empty() => Some(
                parse_http_url(&v).map_err(|r| ConfigError::new("OAUTH2_INTROSPECT_URL", &v, r))?,
            ),
            _ => None,
        },
        oauth2_superuser_username: env
            .string("OAUTH2_SUPERUSER_USERNAME", "creditors-superuser")?,
        oauth2_supervisor_username: env
            .string("OAUTH2_SUPERVISOR_USERNAME", "creditors-supervisor")?,
        superuser_subject_regex: env.string("APP_SUPERUSER_SUBJECT_REGEX", "")?,
        supervisor_subject_regex: env.string("APP_SUPERVISOR_SUBJECT_REGEX", "")?,
        creditor_subject_regex: env.string("APP_CREDITOR_SUBJECT_REGEX", "^creditors:([0-9]+)$")?,
        enable_cors: env.bool("APP_ENABLE_CORS", false)?,
        processes: env.positive_at_most("WEBSERVER_PROCESSES", 1, MAX_PROCESSES.into())?,
        threads: env.positive_at_most("WEBSERVER_THREADS", 3, MAX_THREADS.into())?,
        port: env.count("WEBSERVER_PORT", 8080)?,
        listen_address: {
            let value = env.string("APP_WEBSERVER_LISTEN_ADDRESS", "0.0.0.0")?;
            value.parse().map_err(|_| {
                ConfigError::new(
                    "APP_WEBSERVER_LISTEN_ADDRESS",
                    &value,
                    "must be an IP address, e.g. 0.0.0.0 or 127.0.0.1",
                )
            })?
        },
        api_title: env.string("API_TITLE", "Trade API")?,
        api_version: env.string("API_VERSION", "v1")?,
        trust_user_id_header: env.bool("APP_TRUST_USER_ID_HEADER", false)?,
        token_cache_max_cost: env.positive_at_most(
            "TOKEN_INTROSPECTION_CACHE_MAX_COST",
            10_000_000,
            MAX_TOKEN_CACHE_COST,
        )?,
        introspection_timeout: env.parsed(
            "APP_TOKEN_INTROSPECTION_TIMEOUT_SECONDS",
            Duration::from_secs(5),
            |v| match parse::parse_seconds_in(v, 0.0, MAX_TIMEOUT_SECS)? {
                Duration::ZERO => Err("must be greater than 0".into()),
                d => Ok(d),
            },
        )?,
    })
}

/// An `http://` or `https://` URL with a host (`OAUTH2_INTROSPECT_URL`).
fn parse_http_url(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("expected an http:// or https:// URL".into());
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests;
