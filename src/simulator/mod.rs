//! `swpt-trade simulate`: the service's peers, simulated, so that a local system trades
//! (README.md "Try it"):
//!
//! - an accounting authority of every currency ([`authority`]), answering the workers'
//!   `ConfigureAccount`, `PrepareTransfer` and `FinalizeTransfer` over RabbitMQ ([`bus`]);
//! - a Creditors Agent of `N` creditors ([`agent`]), whose trading policies are drawn again
//!   before every turn and whose ledgers follow every committed transfer;
//! - an HTTPS server of the currencies' debtor info documents, with a peg tree under the base
//!   currency ([`documents`]);
//! - an audit of every turn ([`audit`]), from the workers' revised account locks and the
//!   authority's ledger, printed as one line per turn.
//!
//! At start-up the simulator asks for the currencies' collector accounts the way the admin
//! API's `activate` endpoint will (a `NeededCollector` message per currency: the workers plan
//! and create the collectors, the authority opens them, the workers fetch the documents), and
//! reports "ready" when every currency has an active collector and a confirmed document; a
//! turn that starts after that trades.
//!
//! The simulator keeps its accounts in memory. Run again on the same databases, it opens the
//! collector accounts the solver database knows (with zero balances) and clears the live
//! trading policies it finds, so that old policies do not trade with accounts that no longer
//! exist; creditors whose account lock of an interrupted turn was never released stay out of
//! the trade (docs/turns.md#account-locks).

pub mod agent;
pub mod audit;
pub mod authority;
pub mod bus;
pub mod db;
pub mod documents;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::{FutureExt as _, StreamExt as _};
use lapin::options::{BasicAckOptions, BasicRejectOptions};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use self::agent::Agent;
use self::audit::Decision;
use self::authority::{Authority, Commit};
use self::bus::{Publication, Publisher};
use self::db::Databases;
use self::documents::Currencies;
use crate::messages::{CONTENT_TYPE_JSON, IncomingMessage, NeededCollector, OutgoingMessage};

/// How the simulation runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// RabbitMQ (`PROTOCOL_BROKER_URL`).
    pub broker_url: String,
    /// The solver database (`SOLVER_POSTGRES_URL`).
    pub solver_url: String,
    /// Every shard's database, for the audit.
    pub worker_urls: Vec<String>,
    /// Simulated creditors.
    pub creditors: usize,
    /// Simulated currencies, the base included.
    pub currencies: usize,
    /// Seeds the peg tree, the creditors' holdings and their policies.
    pub seed: u64,
    /// The port of the HTTPS document server (0: any free port).
    pub https_port: u16,
    /// The base currency's debtor ID; the others follow it.
    pub base_debtor_id: i64,
    /// `BASE_DEBTOR_INFO_LOCATOR`, when set: it must be the simulator's base locator.
    pub expected_base_locator: Option<String>,
    /// The first creditor ID.
    pub first_creditor_id: i64,
    /// `MIN_TRADE_AMOUNT`: the creditors' offers are a few times larger.
    pub min_trade_amount: i64,
    /// `TRANSFERS_AMOUNT_CUT`, for the audit.
    pub amount_cut: f64,
    /// The authority's interest rate, percent a year (−50 ≤ rate ≤ 0 is demurrage).
    pub interest_rate: f64,
    /// The `commit_period` the authority announces, seconds.
    pub commit_period: i32,
    /// `MIN_COLLECTOR_ID..=MAX_COLLECTOR_ID`.
    pub collector_ids: (i64, i64),
    /// The simulator's queue.
    pub queue: String,
    /// How often every collector account gets an `AccountUpdate` heartbeat.
    pub heartbeat_period: Duration,
    /// How long after its phase 3 began a turn's transfers may take before the audit fails.
    pub transfers_timeout: Duration,
    /// Stop after this many turns with trades have been audited.
    pub traded_turns: Option<usize>,
    /// Written (with the base locator) when the system is ready to trade.
    pub ready_file: Option<PathBuf>,
}

/// What the simulator reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// A line of progress or a warning.
    Note(String),
    /// Every currency has an active collector and a confirmed document.
    Ready,
    /// A turn's audit.
    Turn(TurnReport),
    /// Something outside a turn's audit went wrong (a failure).
    Failure(String),
}

/// One turn, as seen and audited.
#[derive(Debug, Clone, Default)]
pub struct TurnReport {
    pub turn_id: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub phase2_at: Option<DateTime<Utc>>,
    pub phase3_at: Option<DateTime<Utc>>,
    pub phase4_at: Option<DateTime<Utc>>,
    pub done_at: Option<DateTime<Utc>>,
    /// The most offers seen in the solver database during phase 2.
    pub sell_offers: i64,
    pub buy_offers: i64,
    /// In base-currency units.
    pub volume: f64,
    pub sellers: usize,
    pub buyers: usize,
    /// Commits of the turn at the authority.
    pub commits: usize,
    /// Whether the turn reached phase 4 and every transfer finished.
    pub finished: bool,
    /// Every difference the audit found.
    pub errors: Vec<String>,
}

fn seconds(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> String {
    match (from, to) {
        (Some(a), Some(b)) => format!("{:.1}s", (b - a).as_seconds_f64().max(0.0)),
        _ => "?".to_owned(),
    }
}

impl TurnReport {
    /// Whether anything was traded.
    pub fn traded(&self) -> bool {
        self.sellers + self.buyers > 0
    }

    /// The turn's line: `turn <id>: phase times; offers; traded; participants; audit`.
    pub fn line(&self) -> String {
        let audit = if self.errors.is_empty() {
            "audit ok".to_owned()
        } else {
            format!(
                "audit FAILED: {} difference{}: {}",
                self.errors.len(),
                if self.errors.len() == 1 { "" } else { "s" },
                self.errors.join("; ")
            )
        };
        format!(
            "turn {}: phase1 {}, phase2 {}, phase3 {}, transfers {}; offers {} sell + {} buy; \
             traded {:.0} base units; participants {} ({} sellers, {} buyers); {audit}",
            self.turn_id,
            seconds(self.started_at, self.phase2_at),
            seconds(self.phase2_at, self.phase3_at),
            seconds(self.phase3_at, self.phase4_at),
            seconds(self.phase3_at, self.done_at),
            self.sell_offers,
            self.buy_offers,
            self.volume,
            self.sellers + self.buyers,
            self.sellers,
            self.buyers,
        )
    }
}

/// What a finished run reports.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub turns: Vec<TurnReport>,
    /// Failures outside the turns' audits (invalid requests, lost messages, late commits).
    pub failures: Vec<String>,
    /// The base currency's locator and debtor ID.
    pub base_locator: String,
    pub base_debtor_id: i64,
}

impl Report {
    /// Whether every audit passed and nothing else failed.
    pub fn clean(&self) -> bool {
        self.failures.is_empty() && self.turns.iter().all(|t| t.errors.is_empty())
    }
}

/// Where the simulator's events go.
pub type EventSink = Box<dyn FnMut(&Event) + Send>;

/// What the tasks share.
struct Shared {
    aa: Authority,
    agent: Agent,
    /// Commits not yet audited.
    commits: Vec<Commit>,
}

/// Everything the simulator's tasks need.
struct Sim {
    settings: Settings,
    currencies: Arc<Currencies>,
    state: Arc<Mutex<Shared>>,
    publisher: Arc<Publisher>,
    events: std::sync::Mutex<EventSink>,
    failures: std::sync::Mutex<Vec<String>>,
}

impl Sim {
    fn emit(&self, event: Event) {
        if let Event::Failure(why) = &event {
            tracing::error!("{why}");
            self.failures
                .lock()
                .expect("not poisoned")
                .push(why.clone());
        }
        (self.events.lock().expect("not poisoned"))(&event);
    }

    async fn publish(&self, batch: &[Publication]) -> anyhow::Result<()> {
        let published = self.publisher.publish(batch).await?;
        if published.unroutable > 0 {
            self.emit(Event::Failure(format!(
                "{} messages had no route (is every worker's queue bound?)",
                published.unroutable
            )));
        }
        Ok(())
    }
}

/// Checks the settings, before any I/O.
fn check(settings: &Settings) -> anyhow::Result<()> {
    anyhow::ensure!(
        !settings.worker_urls.is_empty(),
        "give the database of every worker shard (--worker-db), for the audit"
    );
    anyhow::ensure!(
        (-50.0..=100.0).contains(&settings.interest_rate),
        "the interest rate must be between -50 and 100 percent a year, not {}",
        settings.interest_rate
    );
    anyhow::ensure!(
        settings.commit_period > 0,
        "the commit period must be positive"
    );
    let (min, max) = settings.collector_ids;
    let first = settings.first_creditor_id;
    let last = first.saturating_add(settings.creditors as i64);
    anyhow::ensure!(
        last < min || first > max,
        "the creditor IDs {first}..{last} overlap the collector IDs {min}..={max}"
    );
    Ok(())
}

/// Runs the simulation until `stop` is cancelled or `settings.traded_turns` traded turns are
/// audited; `events` gets every turn's report and every note as they come.
///
/// # Errors
///
/// Invalid settings, an unreachable database or broker, or a broken broker connection.
pub async fn run(
    settings: Settings,
    stop: CancellationToken,
    events: EventSink,
) -> anyhow::Result<Report> {
    check(&settings)?;
    let listener = documents::bind(settings.https_port).await?;
    let port = listener.local_addr()?.port();
    let currencies = Arc::new(Currencies::draw(
        settings.currencies,
        settings.base_debtor_id,
        settings.seed,
        port,
    )?);
    let base_locator = currencies.locator(settings.base_debtor_id);
    if let Some(expected) = &settings.expected_base_locator
        && *expected != base_locator
    {
        anyhow::bail!(
            "BASE_DEBTOR_INFO_LOCATOR is \"{expected}\", but the simulated base currency is at \
             \"{base_locator}\" (set BASE_DEBTOR_INFO_LOCATOR={base_locator} and \
             BASE_DEBTOR_ID={}, or use that port)",
            settings.base_debtor_id
        );
    }
    let docs_stop = stop.child_token();
    let server = documents::serve(listener, currencies.clone(), docs_stop.clone())?;
    let _stop_docs = docs_stop.drop_guard();

    let mut dbs = Databases::new(settings.solver_url.clone(), settings.worker_urls.clone());
    let last_old_turn = dbs
        .latest_turn()
        .await
        .context("cannot read the solver database (has `configure` run?)")?;
    let now = Utc::now();
    let mut aa = Authority::default();
    aa.answer_configurations = true;
    aa.interest_rate = settings.interest_rate;
    aa.demurrage_rate = settings.interest_rate.min(0.0);
    aa.commit_period = settings.commit_period;
    aa.debtor_info_iris = currencies.iris().into_iter().collect();
    let collectors = dbs.collectors().await?;
    for c in &collectors {
        let account_id = if c.account_id.is_empty() {
            c.collector_id.to_string()
        } else {
            c.account_id.clone()
        };
        aa.restore_configured_account(c.debtor_id, c.collector_id, &account_id, now);
    }
    let mut agent = Agent::new(
        currencies.clone(),
        settings.creditors,
        settings.first_creditor_id,
        settings.min_trade_amount,
        settings.seed,
    )?;
    let mut opening: Vec<Publication> = Vec::new();
    for p in dbs.live_policies().await? {
        opening.push(bus::from_agent(&agent.clear_policy(
            p.creditor_id,
            p.debtor_id,
            now,
        )));
    }
    let cleared = opening.len();
    opening.extend(
        agent
            .open_initial_accounts(&mut aa, now)
            .iter()
            .map(bus::from_agent),
    );
    for c in &currencies.list {
        let m = OutgoingMessage::NeededCollector(NeededCollector {
            debtor_id: c.debtor_id,
            ts: now,
        });
        opening.push(bus::from_service(&m));
    }

    let conn = crate::broker::connect(&settings.broker_url).await?;
    bus::declare(&conn, &settings.queue).await?;
    let publisher = Arc::new(Publisher::new(&conn).await?);
    let consumer = bus::consumer(&conn, &settings.queue, 2000).await?;
    let sim = Arc::new(Sim {
        settings: settings.clone(),
        currencies: currencies.clone(),
        state: Arc::new(Mutex::new(Shared {
            aa,
            agent,
            commits: Vec::new(),
        })),
        publisher,
        events: std::sync::Mutex::new(events),
        failures: std::sync::Mutex::new(Vec::new()),
    });
    sim.emit(Event::Note(format!(
        "simulating {} creditors over {} currencies (base {} at {base_locator}, documents on \
         port {}); {} collector accounts restored, {cleared} old policies cleared",
        settings.creditors,
        settings.currencies,
        settings.base_debtor_id,
        server.port,
        collectors.len(),
    )));
    sim.publish(&opening).await?;

    let tasks_stop = stop.child_token();
    let _stop_tasks = tasks_stop.clone().drop_guard();
    let consuming = tokio::spawn(consume(sim.clone(), consumer, tasks_stop.clone()));
    let beating = tokio::spawn(heartbeats(sim.clone(), tasks_stop.clone()));
    let mut watcher = Watcher::new(dbs, last_old_turn);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome: anyhow::Result<()> = loop {
        tokio::select! {
            () = stop.cancelled() => break Ok(()),
            _ = tick.tick() => {}
        }
        if consuming.is_finished() || beating.is_finished() {
            break Err(anyhow::anyhow!("a task of the simulator stopped"));
        }
        if let Err(e) = watcher.tick(&sim).await {
            sim.emit(Event::Note(format!("watching the turns: {e:#}")));
        }
        if let Some(n) = settings.traded_turns
            && watcher.reports.iter().filter(|r| r.traded()).count() >= n
        {
            break Ok(());
        }
    };
    tasks_stop.cancel();
    let consumed = consuming.await;
    let beaten = beating.await;
    let _ = conn.close(200, "bye".into()).await;
    // A task's own error first: it says why the simulation stopped.
    for task in [consumed, beaten] {
        task.context("a task of the simulator panicked")??;
    }
    outcome?;
    let failures = sim.failures.lock().expect("not poisoned").clone();
    Ok(Report {
        turns: watcher.reports,
        failures,
        base_locator,
        base_debtor_id: settings.base_debtor_id,
    })
}

/// Answers the workers' requests, as the accounting authority, in batches: each batch's
/// answers (and the agent's ledger updates) are confirmed by the broker before the batch's
/// deliveries are acknowledged.
async fn consume(
    sim: Arc<Sim>,
    mut consumer: lapin::Consumer,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            d = consumer.next() => d,
        };
        let Some(first) = first else {
            anyhow::bail!("RabbitMQ closed the simulator's consumer");
        };
        let mut batch = vec![first.context("a broken delivery")?];
        while batch.len() < 1000 {
            match consumer.next().now_or_never() {
                Some(Some(d)) => batch.push(d.context("a broken delivery")?),
                _ => break,
            }
        }
        let mut answers = Vec::new();
        let mut ledgers = Vec::new();
        let mut invalid = Vec::new();
        {
            let mut state = sim.state.lock().await;
            let now = Utc::now();
            for d in &batch {
                let content_type = d.properties.content_type().as_ref().map(|s| s.as_str());
                let message_type = d
                    .properties
                    .kind()
                    .as_ref()
                    .map_or("", |s| s.as_str())
                    .to_owned();
                let request = if content_type == Some(CONTENT_TYPE_JSON) {
                    crate::messages::validate_outgoing(&message_type, &d.data)
                        .map_err(|e| e.to_string())
                } else {
                    Err(format!("content type {content_type:?}"))
                };
                let request = match request {
                    Ok(m) if m.is_smp() => m,
                    Ok(m) => {
                        invalid.push((d.delivery_tag, format!("an internal {}", m.message_type())));
                        continue;
                    }
                    Err(e) => {
                        invalid.push((d.delivery_tag, format!("{message_type:?}: {e}")));
                        continue;
                    }
                };
                for answer in state.aa.handle(&request, now) {
                    if let IncomingMessage::AccountTransfer(t) = &answer
                        && let Some(ledger) = state.agent.ledger_update(t)
                    {
                        ledgers.push(bus::from_agent(&ledger));
                    }
                    answers.push(bus::from_authority(&answer));
                }
            }
            let commits = state.aa.drain_commits();
            state.commits.extend(commits);
        }
        answers.extend(ledgers);
        sim.publish(&answers).await?;
        let invalid_tags: Vec<u64> = invalid.iter().map(|(tag, _)| *tag).collect();
        for (_, why) in invalid {
            sim.emit(Event::Failure(format!(
                "an invalid request towards the accounting authority: {why}"
            )));
        }
        for d in &batch {
            if invalid_tags.contains(&d.delivery_tag) {
                d.acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await?;
            } else {
                d.acker.ack(BasicAckOptions { multiple: false }).await?;
            }
        }
    }
}

/// Sends the collector accounts' `AccountUpdate`s: after every change of a balance, and to
/// every one as a heartbeat every `heartbeat_period`. Also forgets the transfers finalized
/// more than an hour ago.
async fn heartbeats(sim: Arc<Sim>, stop: CancellationToken) -> anyhow::Result<()> {
    let mut last_beat = Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let beat = last_beat.elapsed() >= sim.settings.heartbeat_period;
        if beat {
            last_beat = Instant::now();
        }
        let updates: Vec<Publication> = {
            let mut state = sim.state.lock().await;
            let now = Utc::now();
            if beat {
                state
                    .aa
                    .forget_finalized_before(now - chrono::TimeDelta::hours(1));
            }
            state
                .aa
                .account_updates(now, beat)
                .iter()
                .map(bus::from_authority)
                .collect()
        };
        sim.publish(&updates).await?;
    }
}

/// A turn followed by the watcher.
struct Tracked {
    report: TurnReport,
    policies_drawn: bool,
    decisions: Option<Vec<Decision>>,
    phase3_seen: Option<Instant>,
    /// Since when every payment is seen and every shard is done with the turn.
    settled_since: Option<Instant>,
}

/// How long the audit waits, after every payment of a turn is seen and every shard is done
/// with it, for the turn's last prepared transfers to be dismissed.
const SETTLING: Duration = Duration::from_secs(15);

/// Follows the turns in the databases: draws the policies of each new turn, reads its
/// decisions, and audits it when its transfers are done.
struct Watcher {
    dbs: Databases,
    /// Turns up to this one existed before the simulator started: not followed.
    last_old_turn: i32,
    tracked: BTreeMap<i32, Tracked>,
    /// Turns audited (and their reports).
    reports: Vec<TurnReport>,
    ready: bool,
    last_readiness_check: Option<Instant>,
    last_progress: Option<Instant>,
}

impl Watcher {
    fn new(dbs: Databases, last_old_turn: i32) -> Self {
        Self {
            dbs,
            last_old_turn,
            tracked: BTreeMap::new(),
            reports: Vec::new(),
            ready: false,
            last_readiness_check: None,
            last_progress: None,
        }
    }

    fn audited(&self, turn_id: i32) -> bool {
        self.reports.iter().any(|r| r.turn_id == turn_id)
    }

    async fn tick(&mut self, sim: &Sim) -> anyhow::Result<()> {
        if !self.ready
            && self
                .last_readiness_check
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.last_readiness_check = Some(Instant::now());
            self.check_readiness(sim).await?;
        }
        let last_followed = self.reports.iter().map(|r| r.turn_id).max();
        let after = last_followed
            .unwrap_or(self.last_old_turn)
            .max(self.last_old_turn);
        for row in self.dbs.turns_after(after).await? {
            if self.audited(row.turn_id) {
                continue;
            }
            let tracked = self.tracked.entry(row.turn_id).or_insert_with(|| Tracked {
                report: TurnReport {
                    turn_id: row.turn_id,
                    started_at: Some(row.started_at),
                    ..TurnReport::default()
                },
                policies_drawn: false,
                decisions: None,
                phase3_seen: None,
                settled_since: None,
            });
            let now = Utc::now();
            if row.phase == 1 && !tracked.policies_drawn {
                tracked.policies_drawn = true;
                let (messages, trading) = {
                    let mut guard = sim.state.lock().await;
                    let state = &mut *guard;
                    state.agent.draw_policies(&mut state.aa, now)
                };
                let batch: Vec<Publication> = messages.iter().map(bus::from_agent).collect();
                sim.publish(&batch).await?;
                sim.emit(Event::Note(format!(
                    "turn {}: started; {trading} creditors want to trade ({} policy messages)",
                    row.turn_id,
                    messages.len()
                )));
            }
            if row.phase >= 2 && tracked.report.phase2_at.is_none() {
                tracked.report.phase2_at = Some(now);
            }
            if row.phase == 2 {
                let (sell, buy) = self.dbs.offers(row.turn_id).await?;
                tracked.report.sell_offers = tracked.report.sell_offers.max(sell);
                tracked.report.buy_offers = tracked.report.buy_offers.max(buy);
            }
            if row.phase >= 3 {
                tracked.report.phase3_at = row.collection_started_at.or(Some(now));
                tracked.phase3_seen.get_or_insert_with(Instant::now);
            }
            if row.phase >= 4 && tracked.report.phase4_at.is_none() {
                tracked.report.phase4_at = Some(now);
            }
        }
        let turn_ids: Vec<i32> = self.tracked.keys().copied().collect();
        for turn_id in turn_ids {
            self.follow(sim, turn_id).await?;
        }
        self.sweep_commits(sim).await;
        Ok(())
    }

    /// Drops the commits no audit will take: those of turns from before the simulator
    /// started, and of no turn; a commit of a turn already audited is a failure.
    async fn sweep_commits(&mut self, sim: &Sim) {
        let audited: std::collections::HashSet<i32> =
            self.reports.iter().map(|r| r.turn_id).collect();
        let late: Vec<Commit> = {
            let mut state = sim.state.lock().await;
            let (late, keep): (Vec<Commit>, Vec<Commit>) = std::mem::take(&mut state.commits)
                .into_iter()
                .filter(|c| audit::turn_of(c).is_some_and(|t| t > self.last_old_turn))
                .partition(|c| audit::turn_of(c).is_some_and(|t| audited.contains(&t)));
            state.commits = keep;
            late
        };
        for c in late {
            sim.emit(Event::Failure(format!(
                "a transfer of turn {} was committed after the turn's audit: {} of {} from {} \
                 to {}",
                audit::turn_of(&c).unwrap_or_default(),
                c.amount,
                c.debtor_id,
                c.from,
                c.to
            )));
        }
    }

    /// Reads the decisions of a turn in phase 3, then audits it when its transfers are done.
    async fn follow(&mut self, sim: &Sim, turn_id: i32) -> anyhow::Result<()> {
        let Some(tracked) = self.tracked.get(&turn_id) else {
            return Ok(());
        };
        let Some(phase3_seen) = tracked.phase3_seen else {
            return Ok(());
        };
        if tracked.decisions.is_none()
            && let Some(decisions) = self.dbs.decisions(turn_id).await?
        {
            if self.dbs.later_turn_reached(turn_id, 2).await? {
                return self.finish(
                    sim,
                    turn_id,
                    vec![
                        "the decisions were read after a later turn began its phase 2 (they \
                         may have been overwritten): not audited"
                            .to_owned(),
                    ],
                );
            }
            let tracked = self.tracked.get_mut(&turn_id).expect("tracked");
            tracked.report.sellers = decisions.iter().filter(|d| d.amount < 0).count();
            tracked.report.buyers = decisions.iter().filter(|d| d.amount > 0).count();
            tracked.report.volume = audit::volume(&decisions, &sim.currencies);
            tracked.decisions = Some(decisions);
        }
        let timed_out = phase3_seen.elapsed() > sim.settings.transfers_timeout;
        let tracked = &self.tracked[&turn_id];
        let Some(decisions) = tracked.decisions.clone() else {
            if timed_out {
                return self.finish(
                    sim,
                    turn_id,
                    vec![format!(
                        "the account locks were not all revised {}s after the turn was solved",
                        sim.settings.transfers_timeout.as_secs()
                    )],
                );
            }
            return Ok(());
        };
        let reached_phase4 = tracked.report.phase4_at.is_some();
        let (sellers, buyers) = {
            let state = sim.state.lock().await;
            audit::waiting(turn_id, &decisions, &state.commits)
        };
        let left = if sellers + buyers == 0 && reached_phase4 {
            self.dbs.unfinished_transfers(turn_id).await?
        } else {
            -1
        };
        if left == 0 {
            let collectors_idle = !self.dbs.later_turn_reached(turn_id, 3).await?;
            let (min, max) = sim.settings.collector_ids;
            let is_collector = |id| (min..=max).contains(&id);
            // The last dismissals (of the buyers' empty prepared transfers) are sent when the
            // workers see the payments: they are given a few seconds to arrive.
            let settled = self
                .tracked
                .get_mut(&turn_id)
                .expect("tracked")
                .settled_since
                .get_or_insert_with(Instant::now)
                .elapsed()
                >= SETTLING;
            if !settled {
                let state = sim.state.lock().await;
                let open = audit::check_open_transfers(
                    &decisions,
                    &state.aa,
                    is_collector,
                    collectors_idle,
                );
                if !open.is_empty() {
                    return Ok(());
                }
            }
            let errors = {
                let mut state = sim.state.lock().await;
                let (mine, others): (Vec<Commit>, Vec<Commit>) = std::mem::take(&mut state.commits)
                    .into_iter()
                    .partition(|c| audit::turn_of(c) == Some(turn_id));
                state.commits = others;
                let report = &mut self.tracked.get_mut(&turn_id).expect("tracked").report;
                report.commits = mine.len();
                report.done_at = Some(Utc::now());
                report.finished = true;
                let since_collection = Utc::now() - report.phase3_at.unwrap_or_else(Utc::now);
                let params = audit::Params {
                    amount_cut: sim.settings.amount_cut,
                    interest_rate: sim.settings.interest_rate,
                    since_collection,
                };
                let mut errors = audit::check_turn(turn_id, &decisions, &mine, params);
                errors.extend(audit::check_totals(&state.aa, &state.agent.issued));
                errors.extend(audit::check_open_transfers(
                    &decisions,
                    &state.aa,
                    is_collector,
                    collectors_idle,
                ));
                errors
            };
            return self.finish(sim, turn_id, errors);
        }
        if timed_out {
            let why = format!(
                "the transfers did not finish in {}s: {sellers} sellers not paid, {buyers} \
                 buyers not paid, {} dispatching statuses and transfer attempts left{}",
                sim.settings.transfers_timeout.as_secs(),
                if left < 0 {
                    "?".to_owned()
                } else {
                    left.to_string()
                },
                if reached_phase4 {
                    ""
                } else {
                    ", phase 4 not reached"
                }
            );
            return self.finish(sim, turn_id, vec![why]);
        }
        if self
            .last_progress
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(30))
            && phase3_seen.elapsed() >= Duration::from_secs(30)
        {
            self.last_progress = Some(Instant::now());
            sim.emit(Event::Note(format!(
                "turn {turn_id}: transfers in progress: {sellers} sellers and {buyers} buyers \
                 waiting"
            )));
        }
        Ok(())
    }

    fn finish(&mut self, sim: &Sim, turn_id: i32, errors: Vec<String>) -> anyhow::Result<()> {
        let mut tracked = self.tracked.remove(&turn_id).expect("tracked");
        tracked.report.errors.extend(errors);
        // Older turns that were never followed to the end are given up on.
        let older: Vec<i32> = self.tracked.range(..turn_id).map(|(id, _)| *id).collect();
        for id in older {
            let mut old = self.tracked.remove(&id).expect("tracked");
            old.report
                .errors
                .push("a later turn was audited first: not followed to the end".to_owned());
            sim.emit(Event::Turn(old.report.clone()));
            self.reports.push(old.report);
        }
        sim.emit(Event::Turn(tracked.report.clone()));
        self.reports.push(tracked.report);
        Ok(())
    }

    /// Ready when every currency has an active collector, and each shard stored its documents
    /// and confirmed its debtors' locators.
    async fn check_readiness(&mut self, sim: &Sim) -> anyhow::Result<()> {
        let ids: Vec<i64> = sim.currencies.list.iter().map(|c| c.debtor_id).collect();
        let n = ids.len() as i64;
        let active = self.dbs.currencies_with_active_collectors(&ids).await?;
        let (docs, claims) = self
            .dbs
            .documents(&format!("{}/currencies/", sim.currencies.origin))
            .await?;
        if active >= n && docs >= n && claims >= n {
            self.ready = true;
            if let Some(path) = &sim.settings.ready_file {
                std::fs::write(path, format!("{}\n", sim.currencies.locator(ids[0])))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            sim.emit(Event::Ready);
        } else if self
            .last_progress
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            self.last_progress = Some(Instant::now());
            sim.emit(Event::Note(format!(
                "getting ready: {active}/{n} currencies with an active collector, {docs}/{n} \
                 documents stored, {claims}/{n} locators confirmed"
            )));
        }
        Ok(())
    }
}
