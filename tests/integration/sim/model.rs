//! What a turn's transfers must do with the money, computed from the solver's results
//! (docs: worker spec §7.4–7.8), and the checks of the outcome against the authority's
//! ledger and the workers' tables.
//!
//! With zero interest the demurrage factor is exactly 1, so a transfer attempt of nominal
//! amount `n` commits `floor(n · (1 − TRANSFERS_AMOUNT_CUT))`; a collector sends with the
//! ratio of what it collected, and dispatches with the ratio of what it received.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use swpt_trade::transfers::{AGENT_TRANSFER_NOTE_FORMAT, NoteKind, TransferNote};

use super::{AttemptKey, Sim, TRANSIENT_TABLES};
use crate::handlers::count;

/// A result row: `(x, debtor_id, y, amount)`; what `x` and `y` are depends on the table.
#[derive(Debug, Clone, Copy, PartialEq, diesel::QueryableByName)]
pub struct Row {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub x: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub debtor_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub y: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub amount: i64,
}

/// The solver's results of a turn.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub turn_id: i32,
    /// `(creditor_id, debtor_id, collector_id, amount)`.
    pub takings: Vec<Row>,
    /// `(creditor_id, debtor_id, collector_id, amount)`.
    pub givings: Vec<Row>,
    /// `(collector_id, debtor_id, creditor_id, amount)`.
    pub collectings: Vec<Row>,
    /// `(from_collector_id, debtor_id, to_collector_id, amount)`.
    pub sendings: Vec<Row>,
    /// `(to_collector_id, debtor_id, from_collector_id, amount)`.
    pub receivings: Vec<Row>,
    /// `(collector_id, debtor_id, creditor_id, amount)`.
    pub dispatchings: Vec<Row>,
}

#[derive(diesel::QueryableByName)]
struct TurnId {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    turn_id: i32,
}

impl Results {
    /// The results of the only turn in phase 3.
    pub async fn load(conn: &mut AsyncPgConnection) -> Self {
        let TurnId { turn_id } = diesel::sql_query("SELECT turn_id FROM turn WHERE phase = 3")
            .get_result(conn)
            .await
            .expect("a turn in phase 3");
        async fn rows(conn: &mut AsyncPgConnection, sql: &str) -> Vec<Row> {
            diesel::sql_query(format!("{sql} ORDER BY 1, 2, 3"))
                .load(conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
        Self {
            turn_id,
            takings: rows(
                conn,
                "SELECT creditor_id AS x, debtor_id, collector_id AS y, amount FROM creditor_taking",
            )
            .await,
            givings: rows(
                conn,
                "SELECT creditor_id AS x, debtor_id, collector_id AS y, amount FROM creditor_giving",
            )
            .await,
            collectings: rows(
                conn,
                "SELECT collector_id AS x, debtor_id, creditor_id AS y, amount \
                 FROM collector_collecting",
            )
            .await,
            sendings: rows(
                conn,
                "SELECT from_collector_id AS x, debtor_id, to_collector_id AS y, amount \
                 FROM collector_sending",
            )
            .await,
            receivings: rows(
                conn,
                "SELECT to_collector_id AS x, debtor_id, from_collector_id AS y, amount \
                 FROM collector_receiving",
            )
            .await,
            dispatchings: rows(
                conn,
                "SELECT collector_id AS x, debtor_id, creditor_id AS y, amount \
                 FROM collector_dispatching",
            )
            .await,
        }
    }
}

/// A committed transfer as the authority's ledger shows it: `(debtor_id, from, to, note)`.
pub type CommitKey = (i64, i64, i64, String);

/// What the turn's transfers must be.
#[derive(Debug, Default)]
pub struct Expected {
    /// Every transfer that must be committed exactly once, with its amount.
    pub commits: BTreeMap<CommitKey, i64>,
    /// The nominal amount of every transfer attempt.
    pub nominals: BTreeMap<AttemptKey, f64>,
}

/// `floor(nominal · demurrage · (1 − cut))` with a demurrage of exactly 1 (no interest).
pub fn cut_amount(nominal: f64, cut: f64) -> i64 {
    (nominal * 1.0 * (1.0 - cut)).floor() as i64
}

fn note(turn_id: i32, kind: NoteKind, first_id: i64, second_id: i64) -> String {
    TransferNote {
        turn_id,
        kind,
        first_id,
        second_id,
    }
    .to_string()
}

impl Expected {
    /// The transfers of `r`, every seller paying in full, with the amount cut `cut`.
    pub fn of(r: &Results, cut: f64) -> Self {
        let turn = r.turn_id;
        let mut e = Self::default();
        // Sellers pay their collectors exactly what the solver took.
        for t in r.takings.iter().filter(|t| t.x != t.y) {
            e.commits.insert(
                (
                    t.debtor_id,
                    t.x,
                    t.y,
                    note(turn, NoteKind::Collecting, t.y, t.x),
                ),
                t.amount,
            );
        }
        // Per (collector, debtor): (to collect, to send, to receive, to dispatch).
        let mut status: BTreeMap<(i64, i64), [i64; 4]> = BTreeMap::new();
        for c in r.collectings.iter().filter(|c| c.x != c.y) {
            status.entry((c.x, c.debtor_id)).or_default()[0] += c.amount;
        }
        let sendings: Vec<&Row> = r.sendings.iter().filter(|s| s.amount > 1).collect();
        for s in &sendings {
            status.entry((s.x, s.debtor_id)).or_default()[1] += s.amount;
        }
        for s in r.receivings.iter().filter(|s| s.amount > 1) {
            status.entry((s.x, s.debtor_id)).or_default()[2] += s.amount;
        }
        let dispatchings: Vec<&Row> = r
            .dispatchings
            .iter()
            .filter(|d| d.amount > 1 && d.x != d.y)
            .collect();
        for d in &dispatchings {
            status.entry((d.x, d.debtor_id)).or_default()[3] += d.amount;
        }
        // Everything is collected, so every collector sends the whole planned amounts.
        let mut received: BTreeMap<(i64, i64), i64> = BTreeMap::new();
        for s in &sendings {
            let [to_collect, to_send, _, _] = status[&(s.x, s.debtor_id)];
            let collected = to_collect; // every seller paid in full
            let available = (to_send - (to_collect - collected)).max(0);
            let ratio = available as f64 / to_send as f64;
            let nominal = s.amount as f64 * ratio;
            if nominal < 1.0 {
                continue;
            }
            e.nominals
                .insert((s.x, turn, s.debtor_id, s.y, false), nominal);
            let amount = cut_amount(nominal, cut);
            if amount > 0 {
                e.commits.insert(
                    (
                        s.debtor_id,
                        s.x,
                        s.y,
                        note(turn, NoteKind::Sending, s.x, s.y),
                    ),
                    amount,
                );
                *received.entry((s.y, s.debtor_id)).or_default() += amount;
            }
        }
        for d in &dispatchings {
            let key = (d.x, d.debtor_id);
            let [_, _, to_receive, to_dispatch] = status[&key];
            let got = received.get(&key).copied().unwrap_or(0);
            let missing_received = (to_receive - got).max(0);
            let available = (to_dispatch - missing_received).max(0);
            let ratio = available as f64 / to_dispatch as f64;
            let nominal = d.amount as f64 * ratio;
            if nominal < 1.0 {
                continue;
            }
            e.nominals
                .insert((d.x, turn, d.debtor_id, d.y, true), nominal);
            let amount = cut_amount(nominal, cut);
            if amount > 0 {
                e.commits.insert(
                    (
                        d.debtor_id,
                        d.x,
                        d.y,
                        note(turn, NoteKind::Dispatching, d.x, d.y),
                    ),
                    amount,
                );
            }
        }
        e
    }

    /// The number of expected commits of a kind.
    pub fn count(&self, kind: NoteKind) -> usize {
        self.commits
            .keys()
            .filter(|k| TransferNote::parse(&k.3).is_some_and(|n| n.kind == kind))
            .count()
    }
}

/// Checks the money after a turn (see the module doc) and that nothing is left behind;
/// panics with every broken invariant. Returns the expectation, for further checks.
pub async fn check_money(sim: &Sim, r: &Results) -> Expected {
    let cut = sim.options.amount_cut;
    let expected = Expected::of(r, cut);
    let mut errors = String::new();
    let mut fail = |s: String| {
        errors.push_str(&s);
        errors.push('\n');
    };
    if r.takings.is_empty() || r.givings.is_empty() {
        fail(format!("the solver made no trade: {r:?}"));
    }

    // 1. Every planned transfer committed exactly once, with the planned amount; nothing else.
    let mut actual: BTreeMap<CommitKey, Vec<i64>> = BTreeMap::new();
    for c in &sim.aa.commits {
        if c.transfer_note_format != AGENT_TRANSFER_NOTE_FORMAT {
            fail(format!(
                "a commit with the note format {:?}: {c:?}",
                c.transfer_note_format
            ));
        }
        actual
            .entry((c.debtor_id, c.from, c.to, c.transfer_note.clone()))
            .or_default()
            .push(c.amount);
    }
    for (key, amount) in &expected.commits {
        match actual.get(key).map(Vec::as_slice) {
            None | Some([]) => fail(format!(
                "never committed: {amount} of {} from {} to {} ({:?})",
                key.0, key.1, key.2, key.3
            )),
            Some([a]) if a == amount => {}
            Some([a]) => fail(format!(
                "wrong amount: {a} instead of {amount} of {} from {} to {} ({:?})",
                key.0, key.1, key.2, key.3
            )),
            Some(many) => fail(format!(
                "committed {} times: {many:?} (planned {amount}) of {} from {} to {} ({:?})",
                many.len(),
                key.0,
                key.1,
                key.2,
                key.3
            )),
        }
    }
    for (key, amounts) in &actual {
        if !expected.commits.contains_key(key) {
            fail(format!(
                "unplanned commit(s) {amounts:?} of {} from {} to {} ({:?})",
                key.0, key.1, key.2, key.3
            ));
        }
    }

    // 2. The transfer attempts' nominal amounts follow the collected and received ratios.
    for (key, nominal) in &expected.nominals {
        match sim.nominals.get(key) {
            None => fail(format!(
                "no transfer attempt {key:?} (nominal {nominal}) was seen"
            )),
            Some(seen) if (seen - nominal).abs() > 1e-6 * nominal.max(1.0) => fail(format!(
                "transfer attempt {key:?}: nominal amount {seen}, expected {nominal}"
            )),
            Some(_) => {}
        }
    }
    for (key, seen) in &sim.nominals {
        if !expected.nominals.contains_key(key) {
            fail(format!(
                "unplanned transfer attempt {key:?} (nominal {seen})"
            ));
        }
    }

    // 3. Balances: sellers paid their takings, buyers got their givings less the cut,
    // collectors kept only the cut's remainders; no currency gained or lost money.
    let mut change: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for ((debtor_id, from, to, _), amount) in &expected.commits {
        *change.entry((*debtor_id, *from)).or_default() -= amount;
        *change.entry((*debtor_id, *to)).or_default() += amount;
    }
    for t in r.takings.iter().filter(|t| t.x != t.y) {
        let paid = sim.initial[&(t.debtor_id, t.x)] - sim.aa.account(t.debtor_id, t.x).principal;
        if paid != t.amount {
            fail(format!(
                "seller {} paid {paid} of {}, but the solver took {}",
                t.x, t.debtor_id, t.amount
            ));
        }
    }
    for g in &r.givings {
        let got = sim.aa.account(g.debtor_id, g.x).principal - sim.initial[&(g.debtor_id, g.x)];
        let planned = change.get(&(g.debtor_id, g.x)).copied().unwrap_or(0);
        if got != planned {
            fail(format!(
                "buyer {} received {got} of {}, expected {planned} (giving {} less the cut)",
                g.x, g.debtor_id, g.amount
            ));
        }
        let least = (g.amount as f64 * (1.0 - cut) * (1.0 - cut)).floor() as i64 - 2;
        if g.amount > 1 && !(least..=g.amount).contains(&got) {
            fail(format!(
                "buyer {} received {got} of {}, far from its giving {}",
                g.x, g.debtor_id, g.amount
            ));
        }
    }
    for c in &sim.collectors {
        let key = (c.debtor_id, c.collector_id);
        let gained = sim.aa.account(key.0, key.1).principal - sim.initial[&key];
        let planned = change.get(&key).copied().unwrap_or(0);
        if gained != planned || gained < 0 {
            fail(format!(
                "collector {} of {}: balance changed by {gained}, expected {planned} \
                 (only the cut's remainders)",
                c.collector_id, c.debtor_id
            ));
        }
    }
    for ((debtor_id, creditor_id), initial) in &sim.initial {
        let now = sim.aa.account(*debtor_id, *creditor_id).principal;
        let planned = change
            .get(&(*debtor_id, *creditor_id))
            .copied()
            .unwrap_or(0);
        if now - initial != planned {
            fail(format!(
                "account ({debtor_id}, {creditor_id}): {initial} → {now}, expected a change of \
                 {planned}"
            ));
        }
    }
    for (debtor_id, _, _) in super::CURRENCIES {
        let before: i128 = sim
            .initial
            .iter()
            .filter(|((d, _), _)| *d == debtor_id)
            .map(|(_, p)| i128::from(*p))
            .sum();
        let after = sim.aa.total(debtor_id);
        if before != after {
            fail(format!("currency {debtor_id}: total {before} → {after}"));
        }
    }

    // 4. Nothing stays locked at the authority.
    for t in sim.aa.open_transfers() {
        fail(format!("still open at the authority: {t:?}"));
    }
    for ((debtor_id, creditor_id), a) in sim.aa.accounts() {
        if a.locked != 0 {
            fail(format!(
                "account ({debtor_id}, {creditor_id}) still has {} locked",
                a.locked
            ));
        }
    }

    // 5. Nothing is left in the workers' tables, nor in transit.
    for (i, shard) in sim.shards.iter().enumerate() {
        let conn = &mut sim.shard_conn(i).await;
        for table in TRANSIENT_TABLES {
            let n = count(conn, table).await;
            if n != 0 {
                let rows = super::rows_as_json(conn, table).await;
                fail(format!("{}: {n} rows left in {table}: {rows:?}", shard.key));
            }
        }
        for kind in swpt_trade::outbox::SignalKind::ALL {
            let n = count(conn, kind.table_name()).await;
            if n != 0 {
                fail(format!(
                    "{}: {n} unsent rows in {}",
                    shard.key,
                    kind.table_name()
                ));
            }
        }
    }
    if sim.in_transit() != 0 || !sim.held().is_empty() {
        fail(format!(
            "{} messages in transit, {} held back",
            sim.in_transit(),
            sim.held().len()
        ));
    }

    if !errors.is_empty() {
        let mut report = String::new();
        let _ = writeln!(report, "the turn's money went wrong:\n{errors}");
        let _ = writeln!(report, "solver results: {r:#?}");
        let _ = writeln!(report, "authority commits: {:#?}", sim.aa.commits);
        let _ = writeln!(report, "{}", sim.dump().await);
        panic!("{report}");
    }
    expected
}
