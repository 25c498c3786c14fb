//! An in-process, deterministic network simulator: one solver database and two worker shards
//! (`0.#` and `1.#`) on real PostgreSQL databases, driven through whole trading turns by the
//! real turn loops, handlers and transfer jobs, with money kept by a stand-in accounting
//! authority ([`authority::Authority`], `swpt_trade::simulator`'s, the one `swpt-trade
//! simulate` runs). No broker: [`Sim::pump`] moves the outbox rows of every shard to their
//! receivers — SMP requests to the authority, internal messages to the shard whose realm owns
//! them, the authority's answers to the shard of their creditor — each handled in its own
//! transaction, as the consumer does.
//!
//! Faults ([`Options`]): every message delivered twice, deliveries shuffled by a seeded RNG,
//! selected messages held back and delivered late ([`Sim::hold_if`], [`Sim::release_held`]),
//! handler transactions rolled back after running and delivered again later (a killed
//! worker), and the authority rejecting transfer requests ([`Authority`]'s knobs).

pub mod model;

pub use swpt_trade::simulator::authority;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use rand::SeedableRng as _;
use rand::seq::SliceRandom as _;
use rand_chacha::ChaCha8Rng;
use swpt_trade::db::worker::outbox::{delete_locked, lock_batch};
use swpt_trade::db::{Database, PoolSettings, SolverPool, WorkerPool};
use swpt_trade::handlers::{self, HandlerError};
use swpt_trade::messages::{
    IncomingMessage, OutgoingMessage, ShardGuard, decode, validate_outgoing,
};
use swpt_trade::outbox::SignalKind;
use swpt_trade::sharding::{ShardingRealm, i16_hash};
use swpt_trade::transfers::{RollTransfers, TriggerTransfers};
use swpt_trade::turns::schedule::epoch;
use swpt_trade::turns::solver::{RollTurns, TurnSettings};
use swpt_trade::turns::worker::{RollWorkerTurns, WorkerTurnSettings};

pub use authority::Authority;
pub use model::{Results, check_money};

use crate::handlers::count;
use crate::util::{TestDb, test_config};

/// The base currency, and two currencies pegged to it.
pub const BASE: i64 = 666;
pub const OTHER: i64 = 101;
pub const THIRD: i64 = 303;
pub const BASE_LOCATOR: &str = "https://example.com/666";

/// The solver's turn loop on `solver_url`, with daily turns the first of which starts now,
/// hour-long phases 1 and 2, the base currency `BASE` and a minimum trade of 1000.
pub fn day_turns(solver_url: &str) -> RollTurns {
    let period = Duration::from_secs(86_400);
    let since = (Utc::now() - epoch()).to_std().unwrap();
    let offset = Duration::from_micros((since.as_micros() % period.as_micros()) as u64);
    RollTurns {
        pool: SolverPool::build(solver_url, PoolSettings::new(4), "test").unwrap(),
        settings: TurnSettings {
            period,
            period_offset: offset,
            phase1_duration: Duration::from_secs(3600),
            phase2_duration: Duration::from_secs(3600),
            max_commit_period: Duration::from_secs(30 * 86_400),
            base_debtor_info_locator: BASE_LOCATOR.into(),
            base_debtor_id: BASE,
            max_distance_to_base: 10,
            min_trade_amount: 1000,
            matcher: Default::default(),
        },
    }
}
pub const OTHER_LOCATOR: &str = "https://example.com/101";
pub const THIRD_LOCATOR: &str = "https://example.com/303";
/// The currencies, with their pegs to the base: `(debtor_id, locator, exchange rate)`.
pub const CURRENCIES: [(i64, &str, Option<f64>); 3] = [
    (BASE, BASE_LOCATOR, None),
    (OTHER, OTHER_LOCATOR, Some(2.0)),
    (THIRD, THIRD_LOCATOR, Some(0.5)),
];
/// The shards' routing keys.
pub const SHARD_KEYS: [&str; 2] = ["0.#", "1.#"];
/// Creation date and last transfer number of every customer account.
pub const CUSTOMER_LEDGER: (&str, i64) = ("2024-01-01", 3);

/// Everything that can go wrong in transit.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seeds the shuffling.
    pub seed: u64,
    /// Deliver each round's messages in a random order.
    pub shuffle: bool,
    /// Deliver every message (and every answer of the authority) a second time,
    /// `duplicate_delay` rounds later.
    pub duplicate: bool,
    /// How many delivery rounds a second copy waits (at least 1).
    pub duplicate_delay: u32,
    /// Every n-th delivery to a shard runs its handler, rolls the transaction back, and is
    /// delivered again in the next round.
    pub interrupt_every: Option<usize>,
    /// `TRANSFERS_AMOUNT_CUT`.
    pub amount_cut: f64,
    /// Make every rescheduled transfer attempt due at once (the back-off passes).
    pub expedite_backoff: bool,
    /// The collectors' balances at the authority when the turn starts.
    pub collector_balance: i64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 1,
            shuffle: false,
            duplicate: false,
            duplicate_delay: 1,
            interrupt_every: None,
            amount_cut: 1e-5,
            expedite_backoff: false,
            collector_balance: 0,
        }
    }
}

/// A message on its way.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// An SMP request to the accounting authority.
    Authority(OutgoingMessage),
    /// A message to the shard with this index.
    Shard(usize, IncomingMessage),
}

/// A customer's trading policy: it sells down to `max_principal` or buys up to
/// `min_principal`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub debtor_id: i64,
    pub principal: i64,
    pub min_principal: i64,
    pub max_principal: i64,
}

/// A customer account holder.
#[derive(Debug, Clone)]
pub struct Customer {
    pub creditor_id: i64,
    pub shard: usize,
    pub policies: Vec<Policy>,
}

/// A collector account.
#[derive(Debug, Clone)]
pub struct Collector {
    pub collector_id: i64,
    pub debtor_id: i64,
    pub shard: usize,
    /// Whether sellers lock their accounts with this collector (see [`Sim::phase2`]).
    pub takes_sellers: bool,
}

impl Collector {
    pub fn account_id(&self) -> String {
        format!("c{}", self.collector_id)
    }
}

/// One worker shard.
pub struct Shard {
    pub key: &'static str,
    pub realm: ShardingRealm,
    pub db: TestDb,
    pub pool: WorkerPool,
    pub context: handlers::Context,
    pub turns: RollWorkerTurns,
    pub roll: RollTransfers,
    pub trigger: TriggerTransfers,
}

/// A transfer attempt's key: `(collector_id, turn_id, debtor_id, creditor_id, is_dispatching)`.
pub type AttemptKey = (i64, i32, i64, i64, bool);

/// What happened in transit.
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages handled by a shard (committed), by type.
    pub handled: BTreeMap<&'static str, usize>,
    /// Handler transactions rolled back on purpose.
    pub interrupted: usize,
    /// Second copies sent.
    pub duplicated: usize,
}

type HoldRule = Box<dyn FnMut(&Delivery) -> bool>;

/// The simulated network.
pub struct Sim {
    pub options: Options,
    pub solver_db: TestDb,
    pub solver: RollTurns,
    pub shards: Vec<Shard>,
    pub aa: Authority,
    pub customers: Vec<Customer>,
    pub collectors: Vec<Collector>,
    /// Every account's principal at the authority when the simulation started.
    pub initial: BTreeMap<(i64, i64), i64>,
    pub stats: Stats,
    /// The nominal amount of every transfer attempt, as first seen.
    pub nominals: BTreeMap<AttemptKey, f64>,
    queue: Vec<Delivery>,
    /// Deliveries waiting for that many more rounds.
    later: Vec<(u32, Delivery)>,
    held: Vec<Delivery>,
    hold: Option<HoldRule>,
    rng: ChaCha8Rng,
    shard_deliveries: usize,
}

/// The first ID from `from` on that `key`'s shard owns.
pub fn id_in(key: &str, from: i64) -> i64 {
    let realm: ShardingRealm = key.parse().unwrap();
    (from..).find(|&id| realm.contains_id(id)).unwrap()
}

pub async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[derive(diesel::QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    j: String,
}

/// Every row of `table` (with an optional `WHERE …`), as JSON text.
pub async fn rows_as_json(conn: &mut AsyncPgConnection, table_and_filter: &str) -> Vec<String> {
    let (table, filter) = match table_and_filter.split_once(" WHERE ") {
        Some((t, f)) => (t, format!(" WHERE {f}")),
        None => (table_and_filter, String::new()),
    };
    let rows: Vec<JsonRow> = diesel::sql_query(format!(
        "SELECT row_to_json(t)::text AS j FROM {table} t{filter}"
    ))
    .load(conn)
    .await
    .unwrap_or_else(|e| panic!("{table}: {e}"));
    rows.into_iter().map(|r| r.j).collect()
}

#[derive(diesel::QueryableByName)]
struct AttemptRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    collector_id: i64,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    turn_id: i32,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    debtor_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    creditor_id: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    is_dispatching: bool,
    #[diesel(sql_type = diesel::sql_types::Double)]
    nominal_amount: f64,
}

/// Why a handler did not commit.
#[derive(Debug)]
enum RunError {
    Handler(HandlerError),
    Interrupted,
}

impl From<diesel::result::Error> for RunError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Handler(e.into())
    }
}

/// The worker tables that must be empty once a turn's transfers are done.
pub const TRANSIENT_TABLES: [&str; 8] = [
    "transfer_attempt",
    "dispatching_status",
    "worker_collecting",
    "worker_sending",
    "worker_receiving",
    "worker_dispatching",
    "creditor_participation",
    "account_lock WHERE released_at IS NULL",
];

/// The standard market: three customers on each shard, each selling one currency and buying
/// another of the same value.
fn standard_customers() -> Vec<Customer> {
    let policy = |debtor_id, principal, min_principal, max_principal| Policy {
        debtor_id,
        principal,
        min_principal,
        max_principal,
    };
    let sell = |debtor_id, amount| policy(debtor_id, amount, 0, 0);
    let buy = |debtor_id, amount| policy(debtor_id, 0, amount, amount);
    vec![
        Customer {
            creditor_id: id_in("0.#", 1),
            shard: 0,
            policies: vec![sell(BASE, 10_000), buy(OTHER, 5_000)],
        },
        Customer {
            creditor_id: id_in("1.#", 1),
            shard: 1,
            // Has 500 already, buys 10 000.
            policies: vec![sell(OTHER, 5_000), policy(BASE, 500, 10_500, 10_500)],
        },
        Customer {
            creditor_id: id_in("0.#", 100),
            shard: 0,
            policies: vec![sell(OTHER, 3_000), buy(BASE, 6_000)],
        },
        Customer {
            creditor_id: id_in("1.#", 100),
            shard: 1,
            // Has 7 000, keeps 1 000.
            policies: vec![policy(BASE, 7_000, 0, 1_000), buy(OTHER, 3_000)],
        },
        Customer {
            creditor_id: id_in("0.#", 200),
            shard: 0,
            policies: vec![sell(THIRD, 8_000), buy(BASE, 4_000)],
        },
        Customer {
            creditor_id: id_in("1.#", 200),
            shard: 1,
            policies: vec![sell(BASE, 4_000), buy(THIRD, 8_000)],
        },
    ]
}

/// Two collectors per currency, one on each shard; sellers use the one named first.
fn standard_collectors() -> Vec<Collector> {
    let mut collectors = Vec::new();
    for (k, (debtor_id, _, _)) in CURRENCIES.iter().enumerate() {
        // Sellers of the base and the third currency go to shard 0, of the other to shard 1.
        let sellers_shard = usize::from(*debtor_id == OTHER);
        for (shard, key) in SHARD_KEYS.iter().enumerate() {
            let from = authority::MIN_COLLECTOR_ID + 100 * k as i64;
            collectors.push(Collector {
                collector_id: id_in(key, from),
                debtor_id: *debtor_id,
                shard,
                takes_sellers: shard == sellers_shard,
            });
        }
    }
    collectors
}

impl Sim {
    /// Fresh databases seeded with the standard market.
    pub async fn new(options: Options) -> Self {
        Self::with_market(options, standard_customers(), standard_collectors()).await
    }

    /// Fresh databases seeded with these customers and collectors.
    pub async fn with_market(
        options: Options,
        customers: Vec<Customer>,
        collectors: Vec<Collector>,
    ) -> Self {
        let solver_db = TestDb::migrated(Database::Solver).await;
        let solver = day_turns(&solver_db.url);
        let cut = options.amount_cut.to_string();
        let mut shards = Vec::new();
        for key in SHARD_KEYS {
            let db = TestDb::migrated(Database::Worker).await;
            let realm: ShardingRealm = key.parse().unwrap();
            let config = test_config(&[
                ("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", key),
                ("WORKER_POSTGRES_URL", db.url.as_str()),
                ("SOLVER_POSTGRES_URL", solver_db.url.as_str()),
                ("TRANSFERS_HEALTHY_MAX_COMMIT_DELAY", "2h"),
                ("TRANSFERS_AMOUNT_CUT", cut.as_str()),
            ]);
            assert_eq!(config.sharding_realm, realm);
            let pool = WorkerPool::build(&db.url, PoolSettings::new(3), "test").unwrap();
            let solver_pool =
                SolverPool::build(&solver_db.url, PoolSettings::new(2), "test").unwrap();
            let context = handlers::Context {
                config: Arc::new(config),
                solver: Some(solver_pool.clone()),
            };
            shards.push(Shard {
                key,
                realm,
                turns: RollWorkerTurns {
                    solver: solver_pool,
                    worker: pool.clone(),
                    realm,
                    settings: WorkerTurnSettings {
                        phase_cushion_period: Duration::from_secs(300),
                        collecting_slack: Duration::from_secs(60 * 86_400),
                        sending_slack: Duration::from_secs(150 * 86_400),
                        dispatching_slack: Duration::from_secs(180 * 86_400),
                    },
                },
                roll: RollTransfers {
                    pool: pool.clone(),
                    realm,
                },
                trigger: TriggerTransfers {
                    pool: pool.clone(),
                    burst_count: 1000,
                },
                db,
                pool,
                context,
            });
        }
        let rng = ChaCha8Rng::seed_from_u64(options.seed);
        let mut sim = Self {
            options,
            solver_db,
            solver,
            shards,
            aa: Authority::default(),
            customers,
            collectors,
            initial: BTreeMap::new(),
            stats: Stats::default(),
            nominals: BTreeMap::new(),
            queue: Vec::new(),
            later: Vec::new(),
            held: Vec::new(),
            hold: None,
            rng,
            shard_deliveries: 0,
        };
        sim.seed().await;
        sim
    }

    /// Seeds the databases and the authority.
    async fn seed(&mut self) {
        let (creation_date, last_transfer_number) = CUSTOMER_LEDGER;
        let date = NaiveDate::parse_from_str(creation_date, "%Y-%m-%d").unwrap();
        // Solver: the collectors are active.
        {
            let conn = &mut self.solver_db.connect().await;
            for c in &self.collectors {
                exec(
                    conn,
                    &format!(
                        "INSERT INTO collector_account VALUES ({}, {}, {}, '{}', 2, now())",
                        c.debtor_id,
                        c.collector_id,
                        i16_hash(c.collector_id),
                        c.account_id()
                    ),
                )
                .await;
            }
        }
        for (i, shard) in self.shards.iter().enumerate() {
            let conn = &mut shard.db.connect().await;
            // Every shard knows every currency; each sends the solver its own part.
            for (debtor_id, locator, peg) in CURRENCIES {
                let peg = match peg {
                    Some(rate) => format!("'{BASE_LOCATOR}', {BASE}, {rate:?}"),
                    None => "NULL, NULL, NULL".into(),
                };
                exec(
                    conn,
                    &format!(
                        "INSERT INTO debtor_info_document VALUES \
                         ('{locator}', {debtor_id}, {peg}, NULL, now())"
                    ),
                )
                .await;
                exec(
                    conn,
                    &format!(
                        "INSERT INTO debtor_locator_claim VALUES \
                         ({debtor_id}, '{locator}', now(), now(), NULL)"
                    ),
                )
                .await;
            }
            for customer in self.customers.iter().filter(|c| c.shard == i) {
                for p in &customer.policies {
                    let peg = match CURRENCIES.iter().find(|c| c.0 == p.debtor_id).unwrap().2 {
                        Some(rate) => format!("{BASE}, {rate:?}"),
                        None => "NULL, NULL".into(),
                    };
                    exec(
                        conn,
                        &format!(
                            "INSERT INTO trading_policy (creditor_id, debtor_id, \
                             latest_ledger_update_id, latest_ledger_update_ts, account_id, \
                             creation_date, principal, last_transfer_number, \
                             latest_policy_update_id, latest_policy_update_ts, policy_name, \
                             min_principal, max_principal, peg_debtor_id, peg_exchange_rate, \
                             latest_flags_update_id, latest_flags_update_ts, config_flags, \
                             account_id_is_obsolete) VALUES ({}, {}, 1, now(), 'acc{}', \
                             '{creation_date}', {}, {last_transfer_number}, 1, now(), 'p', {}, \
                             {}, {peg}, 1, now(), 0, false)",
                            customer.creditor_id,
                            p.debtor_id,
                            customer.creditor_id,
                            p.principal,
                            p.min_principal,
                            p.max_principal
                        ),
                    )
                    .await;
                }
            }
            // The collectors' own accounts, as their `AccountUpdate`s left them: no interest.
            for c in self.collectors.iter().filter(|c| c.shard == i) {
                exec(
                    conn,
                    &format!(
                        "INSERT INTO needed_worker_account (creditor_id, debtor_id, configured_at) \
                         VALUES ({}, {}, now())",
                        c.collector_id, c.debtor_id
                    ),
                )
                .await;
                exec(
                    conn,
                    &format!(
                        "INSERT INTO worker_account (creditor_id, debtor_id, creation_date, \
                         last_change_ts, last_change_seqnum, principal, interest, interest_rate, \
                         last_interest_rate_change_ts, config_flags, account_id, debtor_info_iri, \
                         last_transfer_number, last_transfer_committed_at, demurrage_rate, \
                         commit_period, transfer_note_max_bytes, last_heartbeat_ts) VALUES \
                         ({}, {}, '{creation_date}', now(), 1, {}, 0.0, 0.0, \
                         '2020-01-01T00:00:00Z', 0, '{}', NULL, 0, now(), -50.0, {}, 500, now())",
                        c.collector_id,
                        c.debtor_id,
                        self.options.collector_balance,
                        c.account_id(),
                        31 * 86_400
                    ),
                )
                .await;
            }
        }
        for customer in &self.customers {
            for p in &customer.policies {
                self.aa.open_account(
                    p.debtor_id,
                    customer.creditor_id,
                    &format!("acc{}", customer.creditor_id),
                    p.principal,
                    date,
                    last_transfer_number,
                );
            }
        }
        for c in &self.collectors {
            self.aa.open_account(
                c.debtor_id,
                c.collector_id,
                &c.account_id(),
                self.options.collector_balance,
                date,
                0,
            );
        }
        self.initial = self
            .aa
            .accounts()
            .iter()
            .map(|(k, a)| (*k, a.principal))
            .collect();
    }

    pub async fn solver_conn(&self) -> AsyncPgConnection {
        self.solver_db.connect().await
    }

    pub async fn shard_conn(&self, i: usize) -> AsyncPgConnection {
        self.shards[i].db.connect().await
    }

    /// The number of rows of `table` (with an optional `WHERE …`) summed over both shards.
    pub async fn count_all(&self, table: &str) -> i64 {
        let mut n = 0;
        for i in 0..self.shards.len() {
            n += count(&mut self.shard_conn(i).await, table).await;
        }
        n
    }

    /// The phase of the solver's only turn.
    pub async fn phase(&self) -> i64 {
        let conn = &mut self.solver_conn().await;
        for phase in 1..=4 {
            if count(conn, &format!("turn WHERE phase = {phase}")).await == 1 {
                return phase;
            }
        }
        panic!("no turn")
    }

    /// Makes the current phase's deadline pass.
    pub async fn deadline_passes(&self) {
        exec(
            &mut self.solver_conn().await,
            "UPDATE turn SET phase_deadline = now() - interval '1 second' WHERE phase < 3",
        )
        .await;
    }

    /// One iteration of both workers' turn loops.
    pub async fn workers_roll(&self) {
        for shard in &self.shards {
            shard
                .turns
                .iteration()
                .await
                .unwrap_or_else(|e| panic!("roll_worker_turns on {}: {e:#}", shard.key));
        }
    }

    // ----------------------------------------------------------------------------------------
    // The message bus.

    /// Holds back every message `rule` selects until [`Sim::release_held`].
    pub fn hold_if(&mut self, rule: impl FnMut(&Delivery) -> bool + 'static) {
        self.hold = Some(Box::new(rule));
    }

    /// The messages held back so far.
    pub fn held(&self) -> &[Delivery] {
        &self.held
    }

    /// Stops holding messages back; the held ones are delivered by the next [`Sim::pump`].
    pub fn release_held(&mut self) {
        self.hold = None;
        let held = std::mem::take(&mut self.held);
        for d in held {
            self.enqueue(d);
        }
    }

    fn enqueue(&mut self, d: Delivery) {
        if let Some(rule) = &mut self.hold
            && rule(&d)
        {
            self.held.push(d);
            return;
        }
        if self.options.duplicate {
            self.stats.duplicated += 1;
            self.later
                .push((self.options.duplicate_delay.max(1), d.clone()));
        }
        self.queue.push(d);
    }

    /// The shard whose realm owns `m`.
    fn shard_of(&self, m: &IncomingMessage) -> usize {
        self.shards
            .iter()
            .position(|s| m.belongs_to(&s.realm))
            .unwrap_or_else(|| panic!("no shard owns {m:?}"))
    }

    /// Takes every outbox row of every shard (one transaction per shard, as a flusher).
    async fn flush(&mut self) -> usize {
        let mut flushed = Vec::new();
        for (i, shard) in self.shards.iter().enumerate() {
            let mut conn = shard.pool.get().await.expect("a worker connection");
            let messages: Vec<OutgoingMessage> = conn
                .transaction(async |conn| {
                    let mut all = Vec::new();
                    for kind in SignalKind::ALL {
                        let rows = lock_batch(conn, kind, 1_000_000).await?;
                        delete_locked(conn, kind, &rows).await?;
                        all.extend(rows.into_iter().map(|r| r.message));
                    }
                    Ok::<_, diesel::result::Error>(all)
                })
                .await
                .unwrap_or_else(|e| panic!("flushing {}: {e}", shard.key));
            flushed.extend(messages.into_iter().map(|m| (i, m)));
        }
        let n = flushed.len();
        for (i, m) in flushed {
            self.route(i, m);
        }
        n
    }

    /// Sends a flushed message where the broker would, checking it as its receiver would.
    fn route(&mut self, from: usize, m: OutgoingMessage) {
        let body = m.to_json();
        if m.is_smp() {
            assert_eq!(
                m.shard_guard(&self.shards[from].realm, false),
                ShardGuard::Publish,
                "shard {} emitted an SMP request of another shard: {m:?}",
                self.shards[from].key
            );
            let m = validate_outgoing(m.message_type(), &body).unwrap_or_else(|e| {
                panic!(
                    "invalid {} from {}: {e}\n{}",
                    m.message_type(),
                    self.shards[from].key,
                    String::from_utf8_lossy(&body)
                )
            });
            self.enqueue(Delivery::Authority(m));
        } else {
            let m = decode(m.message_type(), &body).unwrap_or_else(|e| {
                panic!(
                    "invalid {} from {}: {e}\n{}",
                    m.message_type(),
                    self.shards[from].key,
                    String::from_utf8_lossy(&body)
                )
            });
            let to = self.shard_of(&m);
            self.enqueue(Delivery::Shard(to, m));
        }
    }

    /// Moves messages until none moves; returns how many were delivered.
    pub async fn pump(&mut self) -> usize {
        let mut delivered = 0;
        loop {
            self.flush().await;
            for (wait, d) in std::mem::take(&mut self.later) {
                if wait <= 1 {
                    self.queue.push(d);
                } else {
                    self.later.push((wait - 1, d));
                }
            }
            if self.queue.is_empty() && self.later.is_empty() {
                return delivered;
            }
            let mut batch = std::mem::take(&mut self.queue);
            if self.options.shuffle {
                batch.shuffle(&mut self.rng);
            }
            for d in batch {
                delivered += 1;
                self.deliver(d).await;
            }
            assert!(
                delivered < 50_000,
                "messages keep moving: a livelock? handled so far: {:?}",
                self.stats.handled
            );
        }
    }

    async fn deliver(&mut self, d: Delivery) {
        match d {
            Delivery::Authority(m) => {
                for reply in self.aa.handle(&m, Utc::now()) {
                    let body = reply.to_json();
                    let reply = decode(reply.message_type(), &body).unwrap_or_else(|e| {
                        panic!(
                            "the authority sent an invalid {}: {e}\n{}",
                            reply.message_type(),
                            String::from_utf8_lossy(&body)
                        )
                    });
                    let to = self.shard_of(&reply);
                    self.enqueue(Delivery::Shard(to, reply));
                }
            }
            Delivery::Shard(i, m) => {
                self.shard_deliveries += 1;
                let interrupt = self
                    .options
                    .interrupt_every
                    .is_some_and(|k| self.shard_deliveries.is_multiple_of(k));
                match self.run_handler(i, &m, interrupt).await {
                    Ok(()) => {
                        *self.stats.handled.entry(m.message_type()).or_default() += 1;
                        if matches!(
                            m,
                            IncomingMessage::StartSending(_) | IncomingMessage::StartDispatching(_)
                        ) {
                            self.record_nominals(i).await;
                        }
                    }
                    Err(RunError::Interrupted) => {
                        self.stats.interrupted += 1;
                        self.later.push((1, Delivery::Shard(i, m)));
                    }
                    Err(RunError::Handler(e)) => panic!(
                        "{} failed on shard {}: {e}\n{m:?}",
                        m.message_type(),
                        self.shards[i].key
                    ),
                }
            }
        }
    }

    /// Runs `m`'s handler on shard `i` in a REPEATABLE READ transaction, rolled back when
    /// `interrupt`.
    async fn run_handler(
        &self,
        i: usize,
        m: &IncomingMessage,
        interrupt: bool,
    ) -> Result<(), RunError> {
        let shard = &self.shards[i];
        assert!(
            m.belongs_to(&shard.realm),
            "{m:?} delivered to the wrong shard"
        );
        let handler = handlers::handler(m);
        let mut conn = shard.pool.get().await.expect("a worker connection");
        let context = &shard.context;
        conn.build_transaction()
            .repeatable_read()
            .run(async |conn| {
                handler
                    .run(conn, context, Utc::now())
                    .await
                    .map_err(RunError::Handler)?;
                if interrupt {
                    Err(RunError::Interrupted)
                } else {
                    Ok(())
                }
            })
            .await
    }

    /// Records the nominal amounts of shard `i`'s transfer attempts not seen before.
    async fn record_nominals(&mut self, i: usize) {
        let mut conn = self.shards[i].pool.get().await.unwrap();
        let rows: Vec<AttemptRow> = diesel::sql_query(
            "SELECT collector_id, turn_id, debtor_id, creditor_id, is_dispatching, \
             nominal_amount FROM transfer_attempt",
        )
        .load(&mut *conn)
        .await
        .unwrap();
        for r in rows {
            self.nominals
                .entry((
                    r.collector_id,
                    r.turn_id,
                    r.debtor_id,
                    r.creditor_id,
                    r.is_dispatching,
                ))
                .or_insert(r.nominal_amount);
        }
    }

    /// Whether nothing is in transit (held messages aside).
    pub fn in_transit(&self) -> usize {
        self.queue.len() + self.later.len()
    }

    // ----------------------------------------------------------------------------------------
    // A turn.

    /// Runs a whole turn; returns the solver's results.
    pub async fn run_turn(&mut self) -> Results {
        self.phase1().await;
        self.phase2().await;
        let results = self.phase3().await;
        self.transfers().await;
        self.finish_turn().await;
        results
    }

    /// Phase 1: a turn starts; the workers send their shards' debtor infos; phase 2 starts.
    pub async fn phase1(&mut self) {
        self.solver.iteration().await.unwrap();
        assert_eq!(self.phase().await, 1);
        self.workers_roll().await;
        self.deadline_passes().await;
        self.solver.iteration().await.unwrap();
        assert_eq!(self.phase().await, 2, "phase 2 after the deadline");
    }

    /// Phase 2: candidate offers lock the accounts (through the authority), and the prepared
    /// locks become the solver's offers.
    pub async fn phase2(&mut self) {
        self.workers_roll().await; // 2/0: candidate offers
        // Sellers lock their accounts with one chosen collector per currency, so that the
        // turn is reproducible; buyers get either collector from the solver.
        let others: Vec<String> = self
            .collectors
            .iter()
            .filter(|c| !c.takes_sellers)
            .map(|c| c.collector_id.to_string())
            .collect();
        for i in 0..self.shards.len() {
            let conn = &mut self.shard_conn(i).await;
            assert_eq!(
                count(conn, "active_collector").await,
                self.collectors.len() as i64,
                "{}: every collector is active",
                self.shards[i].key
            );
            exec(
                conn,
                &format!(
                    "DELETE FROM active_collector WHERE collector_id IN ({})",
                    others.join(", ")
                ),
            )
            .await;
        }
        self.pump().await;
        // 2/5 runs only near the phase-2 deadline.
        exec(
            &mut self.solver_conn().await,
            "UPDATE turn SET phase_deadline = now() + interval '1 minute'",
        )
        .await;
        for i in 0..self.shards.len() {
            exec(
                &mut self.shard_conn(i).await,
                "UPDATE worker_turn SET phase_deadline = now() + interval '1 minute', \
                 started_at = now() - interval '1 hour'",
            )
            .await;
        }
        self.workers_roll().await;
        for i in 0..self.shards.len() {
            assert_eq!(
                count(
                    &mut self.shard_conn(i).await,
                    "worker_turn WHERE phase = 2 AND worker_turn_subphase = 10"
                )
                .await,
                1,
                "{}: offers sent",
                self.shards[i].key
            );
        }
    }

    /// Phase 3: the solver solves; the workers copy their results and revise their locks
    /// (sellers' transfers to the collectors are committed). Returns the solver's results,
    /// read before the workers delete them.
    pub async fn phase3(&mut self) -> Results {
        self.deadline_passes().await;
        self.solver.iteration().await.unwrap();
        assert_eq!(self.phase().await, 3, "solved");
        let results = Results::load(&mut self.solver_conn().await).await;
        self.workers_roll().await; // 3/0
        for i in 0..self.shards.len() {
            assert_eq!(
                count(
                    &mut self.shard_conn(i).await,
                    "worker_turn WHERE phase = 3 AND worker_turn_subphase = 5"
                )
                .await,
                1,
                "{}: results copied",
                self.shards[i].key
            );
        }
        self.pump().await;
        results
    }

    /// Runs the transfer jobs and the bus until every dispatching status and transfer
    /// attempt is gone; panics with the remaining state when nothing moves any more.
    pub async fn transfers(&mut self) {
        let mut idle_rounds = 0;
        for _ in 0..200 {
            let mut activity = self.pump().await;
            for shard in &self.shards {
                shard
                    .roll
                    .run_pass()
                    .await
                    .unwrap_or_else(|e| panic!("roll_transfers on {}: {e:#}", shard.key));
            }
            activity += self.pump().await;
            if self.options.expedite_backoff {
                for i in 0..self.shards.len() {
                    exec(
                        &mut self.shard_conn(i).await,
                        "UPDATE transfer_attempt SET rescheduled_for = now() - interval '1 second' \
                         WHERE rescheduled_for > now()",
                    )
                    .await;
                }
            }
            for shard in &self.shards {
                activity += shard
                    .trigger
                    .run_pass()
                    .await
                    .unwrap_or_else(|e| panic!("trigger_transfers on {}: {e:#}", shard.key));
            }
            activity += self.pump().await;
            if self.count_all("dispatching_status").await == 0
                && self.count_all("transfer_attempt").await == 0
                && self.in_transit() == 0
            {
                return;
            }
            idle_rounds = if activity == 0 { idle_rounds + 1 } else { 0 };
            if idle_rounds >= 3 {
                panic!(
                    "the transfers are stuck: nothing moves, yet not everything is done\n{}",
                    self.dump().await
                );
            }
        }
        panic!(
            "the transfers did not finish in 200 rounds\n{}",
            self.dump().await
        );
    }

    /// Phase 3/5 and phase 4: the workers delete their results; the turn is done.
    pub async fn finish_turn(&mut self) {
        self.workers_roll().await; // 3/5
        self.solver.iteration().await.unwrap();
        assert_eq!(self.phase().await, 4, "the turn is done");
    }

    /// The state of the transfers, for a failure message.
    pub async fn dump(&self) -> String {
        let mut out = String::new();
        for (i, shard) in self.shards.iter().enumerate() {
            let conn = &mut self.shard_conn(i).await;
            for table in TRANSIENT_TABLES {
                let rows = rows_as_json(conn, table).await;
                if !rows.is_empty() {
                    let _ = writeln!(out, "{} {table}:", shard.key);
                    for r in rows {
                        let _ = writeln!(out, "  {r}");
                    }
                }
            }
        }
        let _ = writeln!(out, "held back: {}", self.held.len());
        let _ = writeln!(out, "handled: {:?}", self.stats.handled);
        let _ = writeln!(out, "authority received: {:?}", self.aa.received);
        let _ = writeln!(out, "authority rejections: {:?}", self.aa.rejections);
        for t in self.aa.open_transfers() {
            let _ = writeln!(out, "open at the authority: {t:?}");
        }
        out
    }
}
