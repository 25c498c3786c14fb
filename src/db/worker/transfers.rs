//! A turn's money flow in a worker database (see `docs/turns.md#transfers`): the transfer
//! plans copied from the solver (`worker_collecting`, `worker_sending`, `worker_receiving`,
//! `worker_dispatching`), each collector's progress (`dispatching_status`) and its transfers
//! to other collectors and to buyers (`transfer_attempt`).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Timestamptz};
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, OptionalExtension as _, QueryDsl as _,
    QueryResult, SelectableHelper as _,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use super::schema::{
    dispatching_status, interest_rate_change, trading_policy, transfer_attempt, worker_account,
    worker_collecting, worker_dispatching, worker_receiving, worker_sending, worker_turn,
};
use crate::transfers::attempts::{AttemptState, DispatchingProgress};

/// The key of a collector's part of a turn in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, diesel::QueryableByName)]
pub struct StatusKey {
    #[diesel(sql_type = BigInt)]
    pub collector_id: i64,
    #[diesel(sql_type = Integer)]
    pub turn_id: i32,
    #[diesel(sql_type = BigInt)]
    pub debtor_id: i64,
}

// ---------------------------------------------------------------------------------------
// Incoming turn transfers (AccountTransfer)
// ---------------------------------------------------------------------------------------

/// The collector received a seller's payment: marks its collecting as collected (exactly
/// that amount, once). Returns whether a row was marked.
pub async fn mark_collected(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
    seller_id: i64,
    amount: i64,
) -> QueryResult<bool> {
    use worker_collecting::dsl as c;
    let n = diesel::update(
        worker_collecting::table
            .find((key.collector_id, key.turn_id, key.debtor_id, seller_id))
            .filter(c::amount.eq(amount).and(c::collected.eq(false))),
    )
    .set(c::collected.eq(true))
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// The collector's payment to another collector was committed: its sending is done.
pub async fn delete_sending(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
    to_collector_id: i64,
) -> QueryResult<bool> {
    let n = diesel::delete(worker_sending::table.find((
        key.collector_id,
        key.turn_id,
        key.debtor_id,
        to_collector_id,
    )))
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// The collector received another collector's payment: records the amount (once).
pub async fn set_received(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
    from_collector_id: i64,
    amount: i64,
) -> QueryResult<bool> {
    use worker_receiving::dsl as r;
    let n = diesel::update(
        worker_receiving::table
            .find((
                key.collector_id,
                key.turn_id,
                key.debtor_id,
                from_collector_id,
            ))
            .filter(r::received_amount.eq(0)),
    )
    .set(r::received_amount.eq(amount))
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// The collector's payment to a buyer was committed: its dispatching is done.
pub async fn delete_dispatching(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
    buyer_id: i64,
) -> QueryResult<bool> {
    let n = diesel::delete(worker_dispatching::table.find((
        key.collector_id,
        key.turn_id,
        key.debtor_id,
        buyer_id,
    )))
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// What an early turn transfer was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i16)]
pub enum EarlyKind {
    /// A seller's payment to its collector.
    Collecting = 0,
    /// Another collector's payment.
    Sending = 1,
}

/// Whether this shard has copied the turn's transfer plans (worker sub-phase 3/0 is done);
/// the turn's row is share-locked, so that the copy waits for this transaction.
pub async fn plans_copied(conn: &mut AsyncPgConnection, turn_id: i32) -> QueryResult<bool> {
    use worker_turn::dsl as w;
    let turn: Option<(i16, i16)> = worker_turn::table
        .find(turn_id)
        .select((w::phase, w::worker_turn_subphase))
        .for_share()
        .first(conn)
        .await
        .optional()?;
    Ok(turn.is_some_and(|(phase, subphase)| phase > 3 || (phase == 3 && subphase >= 5)))
}

/// Keeps a collector's receipt that arrived before the turn's plans were copied.
pub async fn insert_early_transfer(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
    kind: EarlyKind,
    other_id: i64,
    amount: i64,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO early_turn_transfer VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(key.collector_id)
    .bind::<Integer, _>(key.turn_id)
    .bind::<BigInt, _>(key.debtor_id)
    .bind::<diesel::sql_types::SmallInt, _>(kind as i16)
    .bind::<BigInt, _>(other_id)
    .bind::<BigInt, _>(amount)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies the turn's early receipts to the plans just copied (collectings marked collected,
/// receivings given their amount), then deletes them; returns how many plan rows changed.
pub async fn apply_early_transfers(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
) -> QueryResult<usize> {
    let collected = diesel::sql_query(
        "UPDATE worker_collecting c SET collected = true FROM early_turn_transfer e \
         WHERE e.turn_id = $1 AND e.kind = 0 AND c.collector_id = e.collector_id \
         AND c.turn_id = e.turn_id AND c.debtor_id = e.debtor_id AND c.creditor_id = e.other_id \
         AND c.amount = e.amount AND c.collected = false",
    )
    .bind::<Integer, _>(turn_id)
    .execute(conn)
    .await?;
    let received = diesel::sql_query(
        "UPDATE worker_receiving r SET received_amount = e.amount FROM early_turn_transfer e \
         WHERE e.turn_id = $1 AND e.kind = 1 AND r.to_collector_id = e.collector_id \
         AND r.turn_id = e.turn_id AND r.debtor_id = e.debtor_id \
         AND r.from_collector_id = e.other_id AND r.received_amount = 0",
    )
    .bind::<Integer, _>(turn_id)
    .execute(conn)
    .await?;
    diesel::sql_query("DELETE FROM early_turn_transfer WHERE turn_id = $1")
        .bind::<Integer, _>(turn_id)
        .execute(conn)
        .await?;
    Ok(collected + received)
}

// ---------------------------------------------------------------------------------------
// StartSending / StartDispatching
// ---------------------------------------------------------------------------------------

/// Which signal a collector's status waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `StartSending`: collecting is over, sending begins.
    Sending,
    /// `StartDispatching`: sending and receiving are over, dispatching begins.
    Dispatching,
}

/// The status of `key` if it waits for the `stage` signal (locked for an update), with the
/// turn's collection start; `None` when it does not wait (a repeated signal). The turn is
/// `None` when its row is missing.
pub async fn lock_awaiting_status(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
    stage: Stage,
) -> QueryResult<Option<(DispatchingProgress, Option<Option<DateTime<Utc>>>)>> {
    use dispatching_status::dsl as s;
    let columns = (
        s::amount_to_collect,
        s::total_collected_amount,
        s::amount_to_send,
        s::amount_to_receive,
        s::total_received_amount,
        s::amount_to_dispatch,
    );
    let found = dispatching_status::table
        .find((key.collector_id, key.turn_id, key.debtor_id))
        .filter(s::awaiting_signal_flag.eq(true));
    type Status = (i64, Option<i64>, i64, i64, Option<i64>, i64);
    let status: Option<Status> = match stage {
        Stage::Sending => {
            found
                .filter(s::started_sending.eq(false))
                .select(columns)
                .for_update()
                .first(conn)
                .await
        }
        Stage::Dispatching => {
            found
                .filter(s::all_sent.eq(true).and(s::started_dispatching.eq(false)))
                .select(columns)
                .for_update()
                .first(conn)
                .await
        }
    }
    .optional()?;
    let Some(status) = status else {
        return Ok(None);
    };
    let turn = worker_turn::table
        .find(key.turn_id)
        .select(worker_turn::collection_started_at)
        .first::<Option<DateTime<Utc>>>(conn)
        .await
        .optional()?;
    let progress = DispatchingProgress {
        amount_to_collect: status.0,
        total_collected_amount: status.1,
        amount_to_send: status.2,
        amount_to_receive: status.3,
        total_received_amount: status.4,
        amount_to_dispatch: status.5,
    };
    Ok(Some((progress, turn)))
}

/// Deletes the collector's collectings of `key` and returns their amounts.
pub async fn take_collectings(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
) -> QueryResult<Vec<i64>> {
    use worker_collecting::dsl as c;
    diesel::delete(
        worker_collecting::table.filter(
            c::collector_id
                .eq(key.collector_id)
                .and(c::turn_id.eq(key.turn_id))
                .and(c::debtor_id.eq(key.debtor_id)),
        ),
    )
    .returning(c::amount)
    .get_results(conn)
    .await
}

/// Deletes the collector's receivings of `key` and returns the received amounts.
pub async fn take_receivings(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
) -> QueryResult<Vec<i64>> {
    use worker_receiving::dsl as r;
    diesel::delete(
        worker_receiving::table.filter(
            r::to_collector_id
                .eq(key.collector_id)
                .and(r::turn_id.eq(key.turn_id))
                .and(r::debtor_id.eq(key.debtor_id)),
        ),
    )
    .returning(r::received_amount)
    .get_results(conn)
    .await
}

/// Records the collected total: sending has started.
pub async fn start_sending(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
    total_collected_amount: i64,
) -> QueryResult<()> {
    use dispatching_status::dsl as s;
    diesel::update(dispatching_status::table.find((key.collector_id, key.turn_id, key.debtor_id)))
        .set((
            s::total_collected_amount.eq(total_collected_amount),
            s::started_sending.eq(true),
            s::awaiting_signal_flag.eq(false),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the received total: dispatching has started.
pub async fn start_dispatching(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
    total_received_amount: i64,
) -> QueryResult<()> {
    use dispatching_status::dsl as s;
    diesel::update(dispatching_status::table.find((key.collector_id, key.turn_id, key.debtor_id)))
        .set((
            s::total_received_amount.eq(total_received_amount),
            s::started_dispatching.eq(true),
            s::awaiting_signal_flag.eq(false),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The planned transfers of `key` at `stage`: `(recipient, amount)` — to other collectors
/// (sending) or to buyers (dispatching).
pub async fn planned_transfers(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
    stage: Stage,
) -> QueryResult<Vec<(i64, i64)>> {
    match stage {
        Stage::Sending => {
            use worker_sending::dsl as t;
            worker_sending::table
                .filter(
                    t::from_collector_id
                        .eq(key.collector_id)
                        .and(t::turn_id.eq(key.turn_id))
                        .and(t::debtor_id.eq(key.debtor_id)),
                )
                .select((t::to_collector_id, t::amount))
                .load(conn)
                .await
        }
        Stage::Dispatching => {
            use worker_dispatching::dsl as t;
            worker_dispatching::table
                .filter(
                    t::collector_id
                        .eq(key.collector_id)
                        .and(t::turn_id.eq(key.turn_id))
                        .and(t::debtor_id.eq(key.debtor_id)),
                )
                .select((t::creditor_id, t::amount))
                .load(conn)
                .await
        }
    }
}

// ---------------------------------------------------------------------------------------
// Transfer attempts
// ---------------------------------------------------------------------------------------

/// The key of a transfer attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttemptKey {
    pub collector_id: i64,
    pub turn_id: i32,
    pub debtor_id: i64,
    /// The recipient: a buyer (dispatching) or another collector (sending).
    pub creditor_id: i64,
    pub is_dispatching: bool,
}

impl AttemptKey {
    /// The key of the attempt of `collector_id` to pay `creditor_id`.
    pub fn new(
        collector_id: i64,
        turn_id: i32,
        debtor_id: i64,
        creditor_id: i64,
        is_dispatching: bool,
    ) -> Self {
        Self {
            collector_id,
            turn_id,
            debtor_id,
            creditor_id,
            is_dispatching,
        }
    }

    fn tuple(self) -> (i64, i32, i64, i64, bool) {
        (
            self.collector_id,
            self.turn_id,
            self.debtor_id,
            self.creditor_id,
            self.is_dispatching,
        )
    }
}

/// A `transfer_attempt` row.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = transfer_attempt, check_for_backend(Pg))]
struct AttemptRow {
    collector_id: i64,
    turn_id: i32,
    debtor_id: i64,
    creditor_id: i64,
    is_dispatching: bool,
    nominal_amount: f64,
    collection_started_at: DateTime<Utc>,
    recipient: String,
    recipient_version: i64,
    rescheduled_for: Option<DateTime<Utc>>,
    attempted_at: Option<DateTime<Utc>>,
    coordinator_request_id: Option<i64>,
    final_interest_rate_ts: Option<DateTime<Utc>>,
    amount: Option<i64>,
    transfer_id: Option<i64>,
    finalized_at: Option<DateTime<Utc>>,
    failure_code: Option<i16>,
    backoff_counter: i16,
    fatal_error: Option<String>,
}

impl From<AttemptRow> for (AttemptKey, AttemptState) {
    fn from(r: AttemptRow) -> Self {
        (
            AttemptKey {
                collector_id: r.collector_id,
                turn_id: r.turn_id,
                debtor_id: r.debtor_id,
                creditor_id: r.creditor_id,
                is_dispatching: r.is_dispatching,
            },
            AttemptState {
                collection_started_at: r.collection_started_at,
                nominal_amount: r.nominal_amount,
                recipient: r.recipient,
                recipient_version: r.recipient_version,
                rescheduled_for: r.rescheduled_for,
                attempted_at: r.attempted_at,
                coordinator_request_id: r.coordinator_request_id,
                final_interest_rate_ts: r.final_interest_rate_ts,
                amount: r.amount,
                transfer_id: r.transfer_id,
                finalized_at: r.finalized_at,
                failure_code: r.failure_code,
                backoff_counter: r.backoff_counter,
                fatal_error: r.fatal_error,
            },
        )
    }
}

/// Inserts new attempts (recipient unknown, never tried) of `key`'s collector to
/// `(recipient, nominal amount)`; attempts that exist already are kept as they are.
pub async fn insert_attempts(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
    is_dispatching: bool,
    collection_started_at: DateTime<Utc>,
    now: DateTime<Utc>,
    transfers: &[(i64, f64)],
) -> QueryResult<usize> {
    use transfer_attempt::dsl as a;
    let rows: Vec<_> = transfers
        .iter()
        .map(|&(creditor_id, nominal_amount)| {
            (
                a::collector_id.eq(key.collector_id),
                a::turn_id.eq(key.turn_id),
                a::debtor_id.eq(key.debtor_id),
                a::creditor_id.eq(creditor_id),
                a::is_dispatching.eq(is_dispatching),
                a::nominal_amount.eq(nominal_amount),
                a::collection_started_at.eq(collection_started_at),
                a::inserted_at.eq(now),
                a::recipient.eq(""),
                a::recipient_version.eq(i64::MIN),
                a::backoff_counter.eq(0i16),
            )
        })
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    diesel::insert_into(transfer_attempt::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
}

/// The attempt of `key`, locked for an update.
pub async fn lock_attempt(
    conn: &mut AsyncPgConnection,
    key: AttemptKey,
) -> QueryResult<Option<AttemptState>> {
    let row = transfer_attempt::table
        .find(key.tuple())
        .select(AttemptRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|r| <(AttemptKey, AttemptState)>::from(r).1))
}

/// The attempt whose last try has this coordinator request, locked for an update.
pub async fn lock_attempt_of_request(
    conn: &mut AsyncPgConnection,
    collector_id: i64,
    coordinator_request_id: i64,
) -> QueryResult<Option<(AttemptKey, AttemptState)>> {
    use transfer_attempt::dsl as a;
    let row = transfer_attempt::table
        .filter(
            a::collector_id
                .eq(collector_id)
                .and(a::coordinator_request_id.eq(coordinator_request_id)),
        )
        .select(AttemptRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(Into::into))
}

/// Stores the state of the attempt of `key`.
pub async fn save_attempt(
    conn: &mut AsyncPgConnection,
    key: AttemptKey,
    s: &AttemptState,
) -> QueryResult<()> {
    use transfer_attempt::dsl as a;
    diesel::update(transfer_attempt::table.find(key.tuple()))
        .set((
            a::recipient.eq(&s.recipient),
            a::recipient_version.eq(s.recipient_version),
            a::rescheduled_for.eq(s.rescheduled_for),
            a::attempted_at.eq(s.attempted_at),
            a::coordinator_request_id.eq(s.coordinator_request_id),
            a::final_interest_rate_ts.eq(s.final_interest_rate_ts),
            a::amount.eq(s.amount),
            a::transfer_id.eq(s.transfer_id),
            a::finalized_at.eq(s.finalized_at),
            a::failure_code.eq(s.failure_code),
            a::backoff_counter.eq(s.backoff_counter),
            a::fatal_error.eq(&s.fatal_error),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes the attempt of `key` (it succeeded).
pub async fn delete_attempt(conn: &mut AsyncPgConnection, key: AttemptKey) -> QueryResult<()> {
    diesel::delete(transfer_attempt::table.find(key.tuple()))
        .execute(conn)
        .await?;
    Ok(())
}

/// The collector account's interest rate and its latest change, if the account is known.
pub async fn collector_interest_rate(
    conn: &mut AsyncPgConnection,
    collector_id: i64,
    debtor_id: i64,
) -> QueryResult<Option<(f64, DateTime<Utc>)>> {
    use worker_account::dsl as w;
    let row: Option<(f32, DateTime<Utc>)> = worker_account::table
        .find((collector_id, debtor_id))
        .select((w::interest_rate, w::last_interest_rate_change_ts))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(rate, ts)| (f64::from(rate), ts)))
}

/// The recorded interest-rate changes of the collector account, newest first.
pub async fn interest_rate_changes(
    conn: &mut AsyncPgConnection,
    collector_id: i64,
    debtor_id: i64,
) -> QueryResult<Vec<(DateTime<Utc>, f64)>> {
    use interest_rate_change::dsl as i;
    let rows: Vec<(DateTime<Utc>, f32)> = interest_rate_change::table
        .filter(
            i::creditor_id
                .eq(collector_id)
                .and(i::debtor_id.eq(debtor_id)),
        )
        .order(i::change_ts.desc())
        .select((i::change_ts, i::interest_rate))
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|(ts, r)| (ts, f64::from(r))).collect())
}

/// Attempts whose rescheduled time has come (up to `limit`, skipping rows other
/// transactions hold): their schedule is cleared and their keys returned.
pub async fn take_due_attempts(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<AttemptKey>> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        collector_id: i64,
        #[diesel(sql_type = Integer)]
        turn_id: i32,
        #[diesel(sql_type = BigInt)]
        debtor_id: i64,
        #[diesel(sql_type = BigInt)]
        creditor_id: i64,
        #[diesel(sql_type = Bool)]
        is_dispatching: bool,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "UPDATE transfer_attempt t SET rescheduled_for = NULL \
         FROM (SELECT collector_id, turn_id, debtor_id, creditor_id, is_dispatching \
               FROM transfer_attempt WHERE rescheduled_for <= $1 \
               LIMIT $2 FOR UPDATE SKIP LOCKED) d \
         WHERE (t.collector_id, t.turn_id, t.debtor_id, t.creditor_id, t.is_dispatching) \
             = (d.collector_id, d.turn_id, d.debtor_id, d.creditor_id, d.is_dispatching) \
         RETURNING t.collector_id, t.turn_id, t.debtor_id, t.creditor_id, t.is_dispatching",
    )
    .bind::<Timestamptz, _>(now)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            AttemptKey::new(
                r.collector_id,
                r.turn_id,
                r.debtor_id,
                r.creditor_id,
                r.is_dispatching,
            )
        })
        .collect())
}

// ---------------------------------------------------------------------------------------
// Account IDs
// ---------------------------------------------------------------------------------------

/// The customer's account ID and its version (the ledger update that reported it).
pub async fn policy_account_id(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
) -> QueryResult<Option<(String, i64)>> {
    use trading_policy::dsl as p;
    trading_policy::table
        .find((creditor_id, debtor_id))
        .select((p::account_id, p::latest_ledger_update_id))
        .first(conn)
        .await
        .optional()
}

/// A collector account's ID and its creation date, if the ID is known.
pub async fn collector_account_id(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    debtor_id: i64,
) -> QueryResult<Option<(String, NaiveDate)>> {
    use worker_account::dsl as w;
    worker_account::table
        .find((creditor_id, debtor_id))
        .filter(w::account_id.ne(""))
        .select((w::account_id, w::creation_date))
        .first(conn)
        .await
        .optional()
}

// ---------------------------------------------------------------------------------------
// roll_transfers: the dispatching-status state machine
// ---------------------------------------------------------------------------------------

/// A step of `roll_transfers` over the collectors' statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollStep {
    /// Everything collected (or given up): signal `StartSending`.
    ReadyToSend,
    /// Every sending committed (or given up): mark everything sent.
    AllSent,
    /// Everything sent and received: signal `StartDispatching`.
    ReadyToDispatch,
    /// Every dispatching committed (or given up): the status is deleted.
    Done,
}

impl RollStep {
    /// The steps in the order of a pass.
    pub const ALL: [RollStep; 4] = [
        Self::ReadyToSend,
        Self::AllSent,
        Self::ReadyToDispatch,
        Self::Done,
    ];

    /// The condition on `dispatching_status s` of the statuses ready for the step.
    fn predicate(self) -> &'static str {
        match self {
            Self::ReadyToSend => {
                "s.started_sending = false AND s.awaiting_signal_flag = false AND NOT EXISTS (\
                 SELECT 1 FROM worker_collecting c WHERE c.collector_id = s.collector_id \
                 AND c.turn_id = s.turn_id AND c.debtor_id = s.debtor_id AND c.collected = false)"
            }
            Self::AllSent => {
                "s.started_sending = true AND s.all_sent = false AND NOT EXISTS (\
                 SELECT 1 FROM worker_sending w WHERE w.from_collector_id = s.collector_id \
                 AND w.turn_id = s.turn_id AND w.debtor_id = s.debtor_id)"
            }
            Self::ReadyToDispatch => {
                "s.all_sent = true AND s.started_dispatching = false \
                 AND s.awaiting_signal_flag = false AND NOT EXISTS (\
                 SELECT 1 FROM worker_receiving r WHERE r.to_collector_id = s.collector_id \
                 AND r.turn_id = s.turn_id AND r.debtor_id = s.debtor_id \
                 AND r.received_amount = 0)"
            }
            Self::Done => {
                "s.started_dispatching = true AND NOT EXISTS (\
                 SELECT 1 FROM worker_dispatching d WHERE d.collector_id = s.collector_id \
                 AND d.turn_id = s.turn_id AND d.debtor_id = s.debtor_id)"
            }
        }
    }
}

/// Up to `limit` keys of statuses ready for `step`, after `after` in key order.
pub async fn ready_statuses(
    conn: &mut AsyncPgConnection,
    step: RollStep,
    after: Option<StatusKey>,
    limit: i64,
) -> QueryResult<Vec<StatusKey>> {
    let after = after.unwrap_or(StatusKey {
        collector_id: i64::MIN,
        turn_id: i32::MIN,
        debtor_id: i64::MIN,
    });
    let sql = format!(
        "SELECT s.collector_id, s.turn_id, s.debtor_id FROM dispatching_status s \
         WHERE (s.collector_id, s.turn_id, s.debtor_id) > ($1, $2, $3) AND {} \
         ORDER BY s.collector_id, s.turn_id, s.debtor_id LIMIT $4",
        step.predicate()
    );
    diesel::sql_query(sql)
        .bind::<BigInt, _>(after.collector_id)
        .bind::<Integer, _>(after.turn_id)
        .bind::<BigInt, _>(after.debtor_id)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await
}

/// Applies `step` to those of `keys` that are still ready for it (skipping rows other
/// transactions hold) and returns them.
pub async fn apply_step(
    conn: &mut AsyncPgConnection,
    step: RollStep,
    keys: &[StatusKey],
) -> QueryResult<Vec<StatusKey>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let action = match step {
        RollStep::ReadyToSend | RollStep::ReadyToDispatch => {
            "UPDATE dispatching_status t SET awaiting_signal_flag = true"
        }
        RollStep::AllSent => "UPDATE dispatching_status t SET all_sent = true",
        RollStep::Done => "DELETE FROM dispatching_status t",
    };
    let using = if step == RollStep::Done {
        "USING"
    } else {
        "FROM"
    };
    let sql = format!(
        "{action} {using} (SELECT s.collector_id, s.turn_id, s.debtor_id \
         FROM dispatching_status s \
         JOIN unnest($1, $2, $3) AS k(collector_id, turn_id, debtor_id) \
           ON (s.collector_id, s.turn_id, s.debtor_id) = (k.collector_id, k.turn_id, k.debtor_id) \
         WHERE {} FOR UPDATE OF s SKIP LOCKED) r \
         WHERE (t.collector_id, t.turn_id, t.debtor_id) = (r.collector_id, r.turn_id, r.debtor_id) \
         RETURNING t.collector_id, t.turn_id, t.debtor_id",
        step.predicate()
    );
    diesel::sql_query(sql)
        .bind::<Array<BigInt>, _>(keys.iter().map(|k| k.collector_id).collect::<Vec<_>>())
        .bind::<Array<Integer>, _>(keys.iter().map(|k| k.turn_id).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(keys.iter().map(|k| k.debtor_id).collect::<Vec<_>>())
        .load(conn)
        .await
}
