//! The worker's side of trading turns (see `docs/turns.md#worker-sub-phases`): `worker_turn`
//! (its mirror of the solver's turns, with a sub-phase counter), what the sub-phases read
//! (debtor info documents, confirmed locators, trading policies, account locks) and write
//! (candidate offers, active collectors, needed collectors, the turn's transfer plans and
//! dispatching statuses, lock revisions).

use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::{
    BoolExpressionMethods as _, ExpressionMethods as _, OptionalExtension as _, QueryDsl as _,
    QueryResult, SelectableHelper as _,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use super::schema::{
    account_lock, debtor_info_document, debtor_locator_claim, trading_policy, worker_turn,
};
use crate::db::bulk::{Column, insert_all};
use crate::db::solver::turns::{DebtorInfo, Turn};

/// The sub-phase value of a worker that is done with the turn's phase.
pub const SUBPHASE_DONE: i16 = 10;

/// A `worker_turn` row.
#[derive(Debug, Clone, PartialEq, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = worker_turn, check_for_backend(Pg))]
pub struct WorkerTurn {
    /// The solver's turn ID.
    pub turn_id: i32,
    /// When the turn started.
    pub started_at: DateTime<Utc>,
    /// The base currency's locator.
    pub base_debtor_info_locator: String,
    /// The base currency's debtor.
    pub base_debtor_id: i64,
    /// How far from the base a currency may be pegged.
    pub max_distance_to_base: i16,
    /// The smallest amount that changes hands.
    pub min_trade_amount: i64,
    /// 1 to 3 (the solver's 4 is 3 here).
    pub phase: i16,
    /// The end of phases 1 and 2.
    pub phase_deadline: Option<DateTime<Utc>>,
    /// When phase 3 started.
    pub collection_started_at: Option<DateTime<Utc>>,
    /// The deadline of the turn's transfers.
    pub collection_deadline: Option<DateTime<Utc>>,
    /// 0 to 10 within the phase.
    pub worker_turn_subphase: i16,
}

/// Mirrors the solver's turn: inserts it, or moves it to a later phase (sub-phase 0);
/// nothing when it is there already. The solver's phase 4 is phase 3 without deadline.
pub async fn mirror_turn(conn: &mut AsyncPgConnection, turn: &Turn) -> QueryResult<()> {
    use worker_turn::dsl as w;
    let (phase, deadline) = if turn.phase >= 4 {
        (3, None)
    } else {
        (turn.phase, turn.phase_deadline)
    };
    let existing: Option<i16> = worker_turn::table
        .find(turn.turn_id)
        .select(w::phase)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    match existing {
        None => {
            diesel::insert_into(worker_turn::table)
                .values((
                    w::turn_id.eq(turn.turn_id),
                    w::started_at.eq(turn.started_at),
                    w::base_debtor_info_locator.eq(&turn.base_debtor_info_locator),
                    w::base_debtor_id.eq(turn.base_debtor_id),
                    w::max_distance_to_base.eq(turn.max_distance_to_base),
                    w::min_trade_amount.eq(turn.min_trade_amount),
                    w::phase.eq(phase),
                    w::phase_deadline.eq(deadline),
                    w::collection_started_at.eq(turn.collection_started_at),
                    w::collection_deadline.eq(turn.collection_deadline),
                    w::worker_turn_subphase.eq(0),
                ))
                .execute(conn)
                .await?;
        }
        Some(stored) if stored < phase => {
            diesel::update(worker_turn::table.find(turn.turn_id))
                .set((
                    w::phase.eq(phase),
                    w::phase_deadline.eq(deadline),
                    w::collection_started_at.eq(turn.collection_started_at),
                    w::collection_deadline.eq(turn.collection_deadline),
                    w::worker_turn_subphase.eq(0),
                ))
                .execute(conn)
                .await?;
        }
        Some(_) => {}
    }
    Ok(())
}

/// IDs of the worker turns before phase 3.
pub async fn unfinished_turn_ids(conn: &mut AsyncPgConnection) -> QueryResult<Vec<i32>> {
    worker_turn::table
        .filter(worker_turn::phase.lt(3))
        .select(worker_turn::turn_id)
        .load(conn)
        .await
}

/// The worker turns whose sub-phase is not done.
pub async fn pending_turns(conn: &mut AsyncPgConnection) -> QueryResult<Vec<WorkerTurn>> {
    worker_turn::table
        .filter(worker_turn::worker_turn_subphase.lt(SUBPHASE_DONE))
        .order(worker_turn::turn_id)
        .select(WorkerTurn::as_select())
        .load(conn)
        .await
}

/// Locks the worker turn if it is still at `(phase, subphase)`; `false` when it moved on.
pub async fn lock_turn_at(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    phase: i16,
    subphase: i16,
) -> QueryResult<bool> {
    use worker_turn::dsl as w;
    let found: Option<i32> = worker_turn::table
        .filter(
            w::turn_id
                .eq(turn_id)
                .and(w::phase.eq(phase))
                .and(w::worker_turn_subphase.eq(subphase)),
        )
        .select(w::turn_id)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}

/// Sets the worker turn's sub-phase.
pub async fn set_subphase(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    subphase: i16,
) -> QueryResult<()> {
    diesel::update(worker_turn::table.find(turn_id))
        .set(worker_turn::worker_turn_subphase.eq(subphase))
        .execute(conn)
        .await?;
    Ok(())
}

/// Every stored debtor info document.
pub async fn debtor_info_documents(conn: &mut AsyncPgConnection) -> QueryResult<Vec<DebtorInfo>> {
    use debtor_info_document::dsl as d;
    type Row = (String, i64, Option<String>, Option<i64>, Option<f64>);
    let rows: Vec<Row> = debtor_info_document::table
        .select((
            d::debtor_info_locator,
            d::debtor_id,
            d::peg_debtor_info_locator,
            d::peg_debtor_id,
            d::peg_exchange_rate,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(locator, debtor_id, peg_locator, peg_id, rate)| DebtorInfo {
                debtor_info_locator: locator,
                debtor_id,
                peg_debtor_info_locator: peg_locator,
                peg_debtor_id: peg_id,
                peg_exchange_rate: rate,
            },
        )
        .collect())
}

/// The confirmed locators: `(debtor_id, debtor_info_locator)`.
pub async fn confirmed_locators(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(i64, String)>> {
    use debtor_locator_claim::dsl as c;
    let rows: Vec<(i64, Option<String>)> = debtor_locator_claim::table
        .filter(c::debtor_info_locator.is_not_null())
        .select((c::debtor_id, c::debtor_info_locator))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, locator)| Some((id, locator?)))
        .collect())
}

/// The columns of a trading policy a bid is made of.
#[derive(Debug, Clone, PartialEq, diesel::Queryable)]
pub struct PolicyRow {
    /// The creditor.
    pub creditor_id: i64,
    /// The currency.
    pub debtor_id: i64,
    /// `account_id` (empty: no account).
    pub account_id: String,
    /// The account was deleted.
    pub account_id_is_obsolete: bool,
    /// The account's creation date.
    pub creation_date: NaiveDate,
    /// The account's principal.
    pub principal: i64,
    /// The account's latest transfer number.
    pub last_transfer_number: i64,
    /// The policy's name (none: no policy).
    pub policy_name: Option<String>,
    /// The least principal the creditor wants.
    pub min_principal: i64,
    /// The most principal the creditor wants.
    pub max_principal: i64,
    /// The currency the creditor pegs this one to, if any.
    pub peg_debtor_id: Option<i64>,
    /// The peg's exchange rate, if any.
    pub peg_exchange_rate: Option<f64>,
    /// Flags (bit 0: scheduled for deletion).
    pub config_flags: i32,
}

/// Up to `limit` trading policies after `after` (`(creditor_id, debtor_id)`), in that order.
pub async fn policies_after(
    conn: &mut AsyncPgConnection,
    after: Option<(i64, i64)>,
    limit: i64,
) -> QueryResult<Vec<PolicyRow>> {
    use trading_policy::dsl as t;
    let mut query = trading_policy::table
        .select((
            t::creditor_id,
            t::debtor_id,
            t::account_id,
            t::account_id_is_obsolete,
            t::creation_date,
            t::principal,
            t::last_transfer_number,
            t::policy_name,
            t::min_principal,
            t::max_principal,
            t::peg_debtor_id,
            t::peg_exchange_rate,
            t::config_flags,
        ))
        .order((t::creditor_id, t::debtor_id))
        .limit(limit)
        .into_boxed();
    if let Some((c, d)) = after {
        // `creditor_id >= c` bounds the index scan: with the OR alone, every page would scan
        // the index from its start (quadratic in the number of policies).
        query = query.filter(t::creditor_id.ge(c)).filter(
            t::creditor_id
                .gt(c)
                .or(t::creditor_id.eq(c).and(t::debtor_id.gt(d))),
        );
    }
    query.load(conn).await
}

/// A candidate offer of the turn, for `candidate_offer_signal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CandidateOfferRow {
    /// The creditor.
    pub creditor_id: i64,
    /// The currency.
    pub debtor_id: i64,
    /// Tokens to buy (> 0) or to sell (< 0).
    pub amount: i64,
    /// The account's creation date.
    pub account_creation_date: NaiveDate,
    /// The account's latest transfer number.
    pub last_transfer_number: i64,
}

/// Inserts candidate offers into the outbox (`candidate_offer_signal`). The table's `turn_id`
/// is a `smallint`, as in the reference's schema.
pub async fn insert_candidate_offers(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    now: DateTime<Utc>,
    rows: &[CandidateOfferRow],
) -> QueryResult<usize> {
    let turn_id = i16::try_from(turn_id).map_err(|_| {
        diesel::result::Error::SerializationError(
            format!("turn_id {turn_id} does not fit candidate_offer_signal.turn_id").into(),
        )
    })?;
    let names = [
        "turn_id",
        "debtor_id",
        "creditor_id",
        "amount",
        "account_creation_date",
        "last_transfer_number",
        "inserted_at",
    ];
    insert_all(conn, "candidate_offer_signal", &names, rows, |chunk| {
        vec![
            Column::I16(vec![turn_id; chunk.len()]),
            Column::I64(chunk.iter().map(|r| r.debtor_id).collect()),
            Column::I64(chunk.iter().map(|r| r.creditor_id).collect()),
            Column::I64(chunk.iter().map(|r| r.amount).collect()),
            Column::Date(chunk.iter().map(|r| r.account_creation_date).collect()),
            Column::I64(chunk.iter().map(|r| r.last_transfer_number).collect()),
            Column::Timestamptz(vec![now; chunk.len()]),
        ]
    })
    .await
}

/// Replaces every `active_collector` row with `rows` (`(debtor_id, collector_id, account_id)`).
pub async fn replace_active_collectors(
    conn: &mut AsyncPgConnection,
    rows: &[(i64, i64, String)],
) -> QueryResult<()> {
    diesel::sql_query("LOCK TABLE active_collector IN SHARE ROW EXCLUSIVE MODE")
        .execute(conn)
        .await?;
    diesel::sql_query("DELETE FROM active_collector")
        .execute(conn)
        .await?;
    let names = ["debtor_id", "collector_id", "account_id"];
    insert_all(conn, "active_collector", &names, rows, |chunk| {
        vec![
            Column::I64(chunk.iter().map(|r| r.0).collect()),
            Column::I64(chunk.iter().map(|r| r.1).collect()),
            Column::Text(chunk.iter().map(|r| r.2.clone()).collect()),
        ]
    })
    .await?;
    Ok(())
}

/// Inserts `NeededCollector` messages for `debtor_ids` into the outbox.
pub async fn insert_needed_collectors(
    conn: &mut AsyncPgConnection,
    debtor_ids: &[i64],
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    insert_all(
        conn,
        "needed_collector_signal",
        &["debtor_id", "inserted_at"],
        debtor_ids,
        |chunk| {
            vec![
                Column::I64(chunk.to_vec()),
                Column::Timestamptz(vec![now; chunk.len()]),
            ]
        },
    )
    .await
}

/// The turn's prepared, unfinalized, unreleased account locks:
/// `(creditor_id, debtor_id, amount, collector_id)`.
pub async fn prepared_locks(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
) -> QueryResult<Vec<(i64, i64, i64, i64)>> {
    use account_lock::dsl as l;
    account_lock::table
        .filter(
            l::turn_id
                .eq(turn_id)
                .and(l::released_at.is_null())
                .and(l::transfer_id.is_not_null())
                .and(l::finalized_at.is_null()),
        )
        .select((l::creditor_id, l::debtor_id, l::amount, l::collector_id))
        .load(conn)
        .await
}

/// One row of a turn's transfer plan in the worker: `(collector_id, debtor_id, other_id,
/// amount)` where `other_id` is the creditor, or the other collector for sendings and
/// receivings.
pub type PlanRow = (i64, i64, i64, i64);

/// Inserts plan rows into `table` (`worker_collecting`, `worker_sending`, `worker_receiving`
/// or `worker_dispatching`) with `purge_after`.
pub async fn insert_plan(
    conn: &mut AsyncPgConnection,
    table: &'static str,
    turn_id: i32,
    purge_after: DateTime<Utc>,
    rows: &[PlanRow],
) -> QueryResult<usize> {
    let names: &[&str] = match table {
        "worker_collecting" => &[
            "collector_id",
            "turn_id",
            "debtor_id",
            "creditor_id",
            "amount",
            "collected",
            "purge_after",
        ],
        "worker_sending" => &[
            "from_collector_id",
            "turn_id",
            "debtor_id",
            "to_collector_id",
            "amount",
            "purge_after",
        ],
        "worker_receiving" => &[
            "to_collector_id",
            "turn_id",
            "debtor_id",
            "from_collector_id",
            "expected_amount",
            "received_amount",
            "purge_after",
        ],
        _ => &[
            "collector_id",
            "turn_id",
            "debtor_id",
            "creditor_id",
            "amount",
            "purge_after",
        ],
    };
    insert_all(conn, table, names, rows, |chunk| {
        let n = chunk.len();
        let mut columns = vec![
            Column::I64(chunk.iter().map(|r| r.0).collect()),
            Column::I32(vec![turn_id; n]),
            Column::I64(chunk.iter().map(|r| r.1).collect()),
            Column::I64(chunk.iter().map(|r| r.2).collect()),
            Column::I64(chunk.iter().map(|r| r.3).collect()),
        ];
        match table {
            "worker_collecting" => columns.push(Column::Bool(vec![false; n])),
            "worker_receiving" => columns.push(Column::I64(vec![0; n])),
            _ => {}
        }
        columns.push(Column::Timestamptz(vec![purge_after; n]));
        columns
    })
    .await
}

/// Inserts `creditor_participation` rows `(creditor_id, debtor_id, amount, collector_id)`.
pub async fn insert_participations(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    rows: &[(i64, i64, i64, i64)],
) -> QueryResult<usize> {
    let names = [
        "creditor_id",
        "debtor_id",
        "turn_id",
        "amount",
        "collector_id",
    ];
    insert_all(conn, "creditor_participation", &names, rows, |chunk| {
        vec![
            Column::I64(chunk.iter().map(|r| r.0).collect()),
            Column::I64(chunk.iter().map(|r| r.1).collect()),
            Column::I32(vec![turn_id; chunk.len()]),
            Column::I64(chunk.iter().map(|r| r.2).collect()),
            Column::I64(chunk.iter().map(|r| r.3).collect()),
        ]
    })
    .await
}

/// The amounts a collector moves in a turn's currency, for `dispatching_status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchingAmounts {
    /// Sum of its collectings.
    pub amount_to_collect: i64,
    /// Sum of its sendings.
    pub amount_to_send: i64,
    /// Sum of its receivings.
    pub amount_to_receive: i64,
    /// Number of its receivings.
    pub number_to_receive: i32,
    /// Sum of its dispatchings.
    pub amount_to_dispatch: i64,
}

/// Inserts `dispatching_status` rows: `((collector_id, debtor_id), amounts)`.
pub async fn insert_dispatching_statuses(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    now: DateTime<Utc>,
    rows: &[((i64, i64), DispatchingAmounts)],
) -> QueryResult<usize> {
    let names = [
        "collector_id",
        "turn_id",
        "debtor_id",
        "inserted_at",
        "amount_to_collect",
        "amount_to_send",
        "amount_to_receive",
        "number_to_receive",
        "amount_to_dispatch",
        "started_sending",
        "all_sent",
        "all_received",
        "started_dispatching",
        "awaiting_signal_flag",
    ];
    insert_all(conn, "dispatching_status", &names, rows, |chunk| {
        vec![
            Column::I64(chunk.iter().map(|r| r.0.0).collect()),
            Column::I32(vec![turn_id; chunk.len()]),
            Column::I64(chunk.iter().map(|r| r.0.1).collect()),
            Column::Timestamptz(vec![now; chunk.len()]),
            Column::I64(chunk.iter().map(|r| r.1.amount_to_collect).collect()),
            Column::I64(chunk.iter().map(|r| r.1.amount_to_send).collect()),
            Column::I64(chunk.iter().map(|r| r.1.amount_to_receive).collect()),
            Column::I32(chunk.iter().map(|r| r.1.number_to_receive).collect()),
            Column::I64(chunk.iter().map(|r| r.1.amount_to_dispatch).collect()),
            Column::Bool(vec![false; chunk.len()]),
            Column::Bool(vec![false; chunk.len()]),
            Column::Bool(vec![false; chunk.len()]),
            Column::Bool(vec![false; chunk.len()]),
            Column::Bool(vec![false; chunk.len()]),
        ]
    })
    .await
}

/// The creditors of the turn's account locks: `(creditor_id, debtor_id)`.
pub async fn locks_of_turn(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
) -> QueryResult<Vec<(i64, i64)>> {
    use account_lock::dsl as l;
    account_lock::table
        .filter(l::turn_id.eq(turn_id))
        .select((l::creditor_id, l::debtor_id))
        .load(conn)
        .await
}

/// Inserts `ReviseAccountLock` messages for `(creditor_id, debtor_id)` into the outbox.
pub async fn insert_lock_revisions(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    now: DateTime<Utc>,
    rows: &[(i64, i64)],
) -> QueryResult<usize> {
    let names = ["creditor_id", "debtor_id", "turn_id", "inserted_at"];
    insert_all(conn, "revise_account_lock_signal", &names, rows, |chunk| {
        vec![
            Column::I64(chunk.iter().map(|r| r.0).collect()),
            Column::I64(chunk.iter().map(|r| r.1).collect()),
            Column::I32(vec![turn_id; chunk.len()]),
            Column::Timestamptz(vec![now; chunk.len()]),
        ]
    })
    .await
}
