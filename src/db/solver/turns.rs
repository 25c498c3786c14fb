//! Trading turns in the solver database: the `turn` table, the phase-1 and phase-2 inputs the
//! workers write, and the six phase-3 result tables (see `docs/turns.md#phases`).

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::sql_types::Int4;
use diesel::{
    ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, QueryResult,
    SelectableHelper as _,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use super::schema::{buy_offer, collector_account, currency_info, sell_offer, turn};
use crate::solver::rows::ResultRows;
use crate::solver::{BuyOffer, CollectorAccount, CurrencyInfo, SellOffer};

/// A `turn` row.
#[derive(Debug, Clone, PartialEq, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = turn, check_for_backend(Pg))]
pub struct Turn {
    /// `turn_id`.
    pub turn_id: i32,
    /// When the turn started.
    pub started_at: DateTime<Utc>,
    /// The base currency's debtor info locator.
    pub base_debtor_info_locator: String,
    /// The base currency's debtor ID.
    pub base_debtor_id: i64,
    /// How far from the base a tradable currency may be pegged.
    pub max_distance_to_base: i16,
    /// The smallest amount that changes hands.
    pub min_trade_amount: i64,
    /// 1 to 4.
    pub phase: i16,
    /// When phases 1 and 2 end.
    pub phase_deadline: Option<DateTime<Utc>>,
    /// When phase 3 started.
    pub collection_started_at: Option<DateTime<Utc>>,
    /// The deadline of the turn's transfers.
    pub collection_deadline: Option<DateTime<Utc>>,
}

/// A new turn's values.
#[derive(Debug, Clone, diesel::Insertable)]
#[diesel(table_name = turn)]
pub struct NewTurn<'a> {
    /// When the turn starts (now).
    pub started_at: DateTime<Utc>,
    /// `BASE_DEBTOR_INFO_LOCATOR`.
    pub base_debtor_info_locator: &'a str,
    /// `BASE_DEBTOR_ID`.
    pub base_debtor_id: i64,
    /// `MAX_DISTANCE_TO_BASE`.
    pub max_distance_to_base: i16,
    /// `MIN_TRADE_AMOUNT`.
    pub min_trade_amount: i64,
    /// 1.
    pub phase: i16,
    /// `started_at + TURN_PHASE1_DURATION`.
    pub phase_deadline: Option<DateTime<Utc>>,
}

/// Locks the `turn` table against concurrent turn creation (`SHARE ROW EXCLUSIVE`).
pub async fn lock_turn_table(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    diesel::sql_query("LOCK TABLE turn IN SHARE ROW EXCLUSIVE MODE")
        .execute(conn)
        .await?;
    Ok(())
}

/// Every turn with `phase < 4`.
pub async fn unfinished_turns(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Turn>> {
    turn::table
        .filter(turn::phase.lt(4))
        .order(turn::turn_id)
        .select(Turn::as_select())
        .load(conn)
        .await
}

/// The turns whose IDs are given (any phase).
pub async fn turns_by_id(conn: &mut AsyncPgConnection, ids: &[i32]) -> QueryResult<Vec<Turn>> {
    turn::table
        .filter(turn::turn_id.eq_any(ids))
        .order(turn::turn_id)
        .select(Turn::as_select())
        .load(conn)
        .await
}

/// When the latest turn started, if any turn exists.
pub async fn latest_started_at(conn: &mut AsyncPgConnection) -> QueryResult<Option<DateTime<Utc>>> {
    turn::table
        .select(turn::started_at)
        .order(turn::started_at.desc())
        .first(conn)
        .await
        .optional()
}

/// Inserts a new turn.
pub async fn insert_turn(conn: &mut AsyncPgConnection, new: &NewTurn<'_>) -> QueryResult<Turn> {
    diesel::insert_into(turn::table)
        .values(new)
        .returning(Turn::as_returning())
        .get_result(conn)
        .await
        .inspect(|_| {
            metrics::counter!("swpt_trade_turn_phase_changes_total", "phase" => "1").increment(1)
        })
}

/// The turn, locked for update until the transaction ends.
pub async fn lock_turn(conn: &mut AsyncPgConnection, turn_id: i32) -> QueryResult<Option<Turn>> {
    turn::table
        .find(turn_id)
        .select(Turn::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Builds the turn's `currency_info` from its `debtor_info` rows: a currency is confirmed when
/// its debtor confirmed this very locator for this turn and it has an active collector.
/// Returns the number of currencies.
pub async fn build_currency_info(conn: &mut AsyncPgConnection, turn_id: i32) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO currency_info (turn_id, debtor_info_locator, debtor_id, \
             peg_debtor_info_locator, peg_debtor_id, peg_exchange_rate, is_confirmed) \
         SELECT di.turn_id, di.debtor_info_locator, di.debtor_id, di.peg_debtor_info_locator, \
             di.peg_debtor_id, di.peg_exchange_rate, ad.turn_id IS NOT NULL \
         FROM debtor_info di \
         LEFT OUTER JOIN ( \
             SELECT DISTINCT cd.turn_id, cd.debtor_id, cd.debtor_info_locator \
             FROM confirmed_debtor cd \
             JOIN collector_account ca ON ca.debtor_id = cd.debtor_id AND ca.status = 2 \
             WHERE cd.turn_id = $1 \
         ) ad ON ad.turn_id = di.turn_id AND ad.debtor_id = di.debtor_id \
             AND ad.debtor_info_locator = di.debtor_info_locator \
         WHERE di.turn_id = $1",
    )
    .bind::<Int4, _>(turn_id)
    .execute(conn)
    .await
}

/// Sets the turn's phase and deadlines.
pub async fn set_phase(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    phase: i16,
    phase_deadline: Option<DateTime<Utc>>,
) -> QueryResult<()> {
    diesel::update(turn::table.find(turn_id))
        .set((
            turn::phase.eq(phase),
            turn::phase_deadline.eq(phase_deadline),
        ))
        .execute(conn)
        .await?;
    metrics::counter!("swpt_trade_turn_phase_changes_total", "phase" => phase.to_string())
        .increment(1);
    Ok(())
}

/// Phase 2: the offers are gathered until `phase_deadline`; the turn's transfers must be
/// done by `collection_deadline`.
pub async fn enter_phase2(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    phase_deadline: DateTime<Utc>,
    collection_deadline: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(turn::table.find(turn_id))
        .set((
            turn::phase.eq(2),
            turn::phase_deadline.eq(phase_deadline),
            turn::collection_deadline.eq(collection_deadline),
        ))
        .execute(conn)
        .await?;
    metrics::counter!("swpt_trade_turn_phase_changes_total", "phase" => "2").increment(1);
    Ok(())
}

/// Deletes the phase-1 inputs (`debtor_info`, `confirmed_debtor`) of every turn past phase 1,
/// including rows that late workers inserted after the transition.
pub async fn delete_phase1_inputs(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    for table in ["debtor_info", "confirmed_debtor"] {
        diesel::sql_query(format!(
            "DELETE FROM {table} USING turn WHERE {table}.turn_id = turn.turn_id AND turn.phase >= 2"
        ))
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Deletes the phase-2 data (`currency_info`, `sell_offer`, `buy_offer`) of every turn past
/// phase 2.
pub async fn delete_phase2_inputs(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    for table in ["currency_info", "sell_offer", "buy_offer"] {
        diesel::sql_query(format!(
            "DELETE FROM {table} USING turn WHERE {table}.turn_id = turn.turn_id AND turn.phase >= 3"
        ))
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// The turn's currencies.
pub async fn currencies(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
) -> QueryResult<Vec<CurrencyInfo>> {
    use currency_info::dsl as c;
    type Row = (String, i64, Option<String>, Option<i64>, Option<f64>, bool);
    let rows: Vec<Row> = currency_info::table
        .filter(c::turn_id.eq(turn_id))
        .select((
            c::debtor_info_locator,
            c::debtor_id,
            c::peg_debtor_info_locator,
            c::peg_debtor_id,
            c::peg_exchange_rate,
            c::is_confirmed,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(locator, debtor_id, peg_locator, peg_id, rate, is_confirmed)| CurrencyInfo {
                debtor_info_locator: locator,
                debtor_id,
                peg_debtor_info_locator: peg_locator,
                peg_debtor_id: peg_id,
                peg_exchange_rate: rate,
                is_confirmed,
            },
        )
        .collect())
}

/// Every active (`status = 2`) collector account.
pub async fn active_collectors(conn: &mut AsyncPgConnection) -> QueryResult<Vec<CollectorAccount>> {
    let rows: Vec<(i64, i64)> = collector_account::table
        .filter(collector_account::status.eq(super::collectors::STATUS_ACTIVE))
        .select((
            collector_account::debtor_id,
            collector_account::collector_id,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(debtor_id, collector_id)| CollectorAccount {
            debtor_id,
            collector_id,
        })
        .collect())
}

/// The turn's sell offers.
pub async fn sell_offers(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
) -> QueryResult<Vec<SellOffer>> {
    use sell_offer::dsl as s;
    let rows: Vec<(i64, i64, i64, i64)> = sell_offer::table
        .filter(s::turn_id.eq(turn_id))
        .select((s::creditor_id, s::debtor_id, s::amount, s::collector_id))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(creditor_id, debtor_id, amount, collector_id)| SellOffer {
            creditor_id,
            debtor_id,
            amount,
            collector_id,
        })
        .collect())
}

/// The turn's buy offers.
pub async fn buy_offers(conn: &mut AsyncPgConnection, turn_id: i32) -> QueryResult<Vec<BuyOffer>> {
    use buy_offer::dsl as b;
    let rows: Vec<(i64, i64, i64)> = buy_offer::table
        .filter(b::turn_id.eq(turn_id))
        .select((b::creditor_id, b::debtor_id, b::amount))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(creditor_id, debtor_id, amount)| BuyOffer {
            creditor_id,
            debtor_id,
            amount,
        })
        .collect())
}

/// Whether any of the six result tables still has rows of the turn.
pub async fn has_result_rows(conn: &mut AsyncPgConnection, turn_id: i32) -> QueryResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    for table in [
        "collector_dispatching",
        "collector_receiving",
        "collector_sending",
        "collector_collecting",
        "creditor_giving",
        "creditor_taking",
    ] {
        let row: Found = diesel::sql_query(format!(
            "SELECT EXISTS (SELECT 1 FROM {table} WHERE turn_id = $1) AS found"
        ))
        .bind::<Int4, _>(turn_id)
        .get_result(conn)
        .await?;
        if row.found {
            return Ok(true);
        }
    }
    Ok(false)
}

// What the workers read from and write to the solver database in their turn sub-phases.

/// A debtor info document a worker knows of, for the turn's `debtor_info`.
#[derive(Debug, Clone, PartialEq)]
pub struct DebtorInfo {
    /// The document's locator.
    pub debtor_info_locator: String,
    /// The debtor.
    pub debtor_id: i64,
    /// The peg's locator, if any.
    pub peg_debtor_info_locator: Option<String>,
    /// The peg's debtor, if any.
    pub peg_debtor_id: Option<i64>,
    /// The peg's exchange rate, if any.
    pub peg_exchange_rate: Option<f64>,
}

/// Inserts the turn's `debtor_info` rows.
pub async fn insert_debtor_infos(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    rows: &[DebtorInfo],
) -> QueryResult<usize> {
    use crate::db::bulk::{Column, insert_all};
    let names = [
        "turn_id",
        "debtor_info_locator",
        "debtor_id",
        "peg_debtor_info_locator",
        "peg_debtor_id",
        "peg_exchange_rate",
    ];
    insert_all(conn, "debtor_info", &names, rows, |chunk| {
        vec![
            Column::I32(vec![turn_id; chunk.len()]),
            Column::Text(
                chunk
                    .iter()
                    .map(|r| r.debtor_info_locator.clone())
                    .collect(),
            ),
            Column::I64(chunk.iter().map(|r| r.debtor_id).collect()),
            Column::OptText(
                chunk
                    .iter()
                    .map(|r| r.peg_debtor_info_locator.clone())
                    .collect(),
            ),
            Column::OptI64(chunk.iter().map(|r| r.peg_debtor_id).collect()),
            Column::OptF64(chunk.iter().map(|r| r.peg_exchange_rate).collect()),
        ]
    })
    .await
}

/// Inserts the turn's `confirmed_debtor` rows `(debtor_id, locator)`.
pub async fn insert_confirmed_debtors(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    rows: &[(i64, String)],
) -> QueryResult<usize> {
    use crate::db::bulk::{Column, insert_all};
    let names = ["turn_id", "debtor_id", "debtor_info_locator"];
    insert_all(conn, "confirmed_debtor", &names, rows, |chunk| {
        vec![
            Column::I32(vec![turn_id; chunk.len()]),
            Column::I64(chunk.iter().map(|r| r.0).collect()),
            Column::Text(chunk.iter().map(|r| r.1.clone()).collect()),
        ]
    })
    .await
}

/// Collector accounts that are not disabled: `(debtor_id, collector_id, account_id, status)`.
pub async fn live_collectors(
    conn: &mut AsyncPgConnection,
) -> QueryResult<Vec<(i64, i64, String, i16)>> {
    use collector_account::dsl as c;
    collector_account::table
        .filter(c::status.lt(super::collectors::STATUS_DISABLED))
        .select((c::debtor_id, c::collector_id, c::account_id, c::status))
        .load(conn)
        .await
}

/// Inserts the turn's sell offers of one worker.
pub async fn insert_sell_offers(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    rows: &[SellOffer],
) -> QueryResult<usize> {
    use crate::db::bulk::{Column, insert_all};
    let names = [
        "turn_id",
        "creditor_id",
        "debtor_id",
        "amount",
        "collector_id",
    ];
    insert_all(conn, "sell_offer", &names, rows, |chunk| {
        vec![
            Column::I32(vec![turn_id; chunk.len()]),
            Column::I64(chunk.iter().map(|r| r.creditor_id).collect()),
            Column::I64(chunk.iter().map(|r| r.debtor_id).collect()),
            Column::I64(chunk.iter().map(|r| r.amount).collect()),
            Column::I64(chunk.iter().map(|r| r.collector_id).collect()),
        ]
    })
    .await
}

/// Inserts the turn's buy offers of one worker.
pub async fn insert_buy_offers(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    rows: &[BuyOffer],
) -> QueryResult<usize> {
    use crate::db::bulk::{Column, insert_all};
    let names = ["turn_id", "creditor_id", "debtor_id", "amount"];
    insert_all(conn, "buy_offer", &names, rows, |chunk| {
        vec![
            Column::I32(vec![turn_id; chunk.len()]),
            Column::I64(chunk.iter().map(|r| r.creditor_id).collect()),
            Column::I64(chunk.iter().map(|r| r.debtor_id).collect()),
            Column::I64(chunk.iter().map(|r| r.amount).collect()),
        ]
    })
    .await
}

/// The six result tables with the hash column each worker's share is selected by.
pub const RESULT_TABLES_BY_HASH: [(&str, &str); 6] = [
    ("creditor_taking", "creditor_hash"),
    ("creditor_giving", "creditor_hash"),
    ("collector_collecting", "collector_hash"),
    ("collector_dispatching", "collector_hash"),
    ("collector_sending", "from_collector_hash"),
    ("collector_receiving", "to_collector_hash"),
];

/// A result row of one shard, in the columns the worker copies:
/// `(debtor_id, creditor_or_peer_id, amount, collector_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::QueryableByName)]
pub struct ShardRow {
    /// The currency.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub debtor_id: i64,
    /// The creditor (takings, givings, collectings, dispatchings) or the other collector
    /// (sendings: the receiver; receivings: the sender).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub other_id: i64,
    /// The amount.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub amount: i64,
    /// The collector (sendings: the sender; receivings: the receiver).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub collector_id: i64,
}

/// The turn's rows of `table` (one of [`RESULT_TABLES_BY_HASH`]) that belong to the shard
/// with the hash filter `(mask, prefix)`.
pub async fn shard_results(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    table: &str,
    (mask, prefix): (i16, i16),
) -> QueryResult<Vec<ShardRow>> {
    let (hash, other, collector) = match table {
        "collector_sending" => (
            "from_collector_hash",
            "to_collector_id",
            "from_collector_id",
        ),
        "collector_receiving" => ("to_collector_hash", "from_collector_id", "to_collector_id"),
        "creditor_taking" | "creditor_giving" => ("creditor_hash", "creditor_id", "collector_id"),
        _ => ("collector_hash", "creditor_id", "collector_id"),
    };
    diesel::sql_query(format!(
        "SELECT debtor_id, {other} AS other_id, amount, {collector} AS collector_id FROM {table} \
         WHERE turn_id = $1 AND {hash} & $2 = $3"
    ))
    .bind::<Int4, _>(turn_id)
    .bind::<diesel::sql_types::Int2, _>(mask)
    .bind::<diesel::sql_types::Int2, _>(prefix)
    .load(conn)
    .await
}

/// Deletes the turn's rows of the shard with the hash filter `(mask, prefix)` from the six
/// result tables.
pub async fn delete_shard_results(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    (mask, prefix): (i16, i16),
) -> QueryResult<usize> {
    let mut deleted = 0;
    for (table, hash) in RESULT_TABLES_BY_HASH {
        deleted += diesel::sql_query(format!(
            "DELETE FROM {table} WHERE turn_id = $1 AND {hash} & $2 = $3"
        ))
        .bind::<Int4, _>(turn_id)
        .bind::<diesel::sql_types::Int2, _>(mask)
        .bind::<diesel::sql_types::Int2, _>(prefix)
        .execute(conn)
        .await?;
    }
    Ok(deleted)
}

/// Phase 2 → 3 on a plain client, in one transaction: locks the turn, writes the six result
/// tables with binary `COPY` (faster than `INSERT` for a large turn) and enters phase 3 with
/// the collection starting at `now`. `false` (and nothing written) when the turn is not in
/// phase 2 any more.
pub async fn commit_phase3(
    client: &mut tokio_postgres::Client,
    turn_id: i32,
    rows: &ResultRows,
    now: DateTime<Utc>,
) -> Result<bool, tokio_postgres::Error> {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::{ToSql, Type};

    let tx = client.transaction().await?;
    let phase: Option<i16> = tx
        .query_opt(
            "SELECT phase FROM turn WHERE turn_id = $1 FOR UPDATE",
            &[&turn_id],
        )
        .await?
        .map(|row| row.get(0));
    if phase != Some(2) {
        return Ok(false);
    }
    // Rows are written in the order of each table's primary key, so that the index grows at
    // its end instead of at random places (the engine orders takings and givings by currency,
    // their keys start with the creditor).
    macro_rules! copy {
        ($rows:expr, $table:literal, [$($field:ident: $t:ident),*]) => {
            copy!($rows.iter(), $rows.is_empty(), $table, [$($field: $t),*])
        };
        ($iter:expr, $empty:expr, $table:literal, [$($field:ident: $t:ident),*]) => {
            if !$empty {
                let columns = [$(stringify!($field)),*].join(", ");
                let statement =
                    format!("COPY {} ({columns}) FROM STDIN (FORMAT binary)", $table);
                let sink = tx.copy_in(&statement).await?;
                let writer = BinaryCopyInWriter::new(sink, &[$(Type::$t),*]);
                futures::pin_mut!(writer);
                for r in $iter {
                    writer.as_mut().write(&[$(&r.$field as &(dyn ToSql + Sync)),*]).await?;
                }
                writer.finish().await?;
            }
        };
    }
    let by_creditor = |keys: Vec<(i64, i64, usize)>| {
        let mut keys = keys;
        keys.sort_unstable();
        keys.into_iter().map(|(_, _, i)| i)
    };
    let takings = by_creditor(
        rows.creditor_taking
            .iter()
            .enumerate()
            .map(|(i, r)| (r.creditor_id, r.debtor_id, i))
            .collect(),
    );
    let givings = by_creditor(
        rows.creditor_giving
            .iter()
            .enumerate()
            .map(|(i, r)| (r.creditor_id, r.debtor_id, i))
            .collect(),
    );
    copy!(takings.map(|i| &rows.creditor_taking[i]), rows.creditor_taking.is_empty(), "creditor_taking",
        [turn_id: INT4, creditor_id: INT8, debtor_id: INT8, creditor_hash: INT2, amount: INT8, collector_id: INT8]);
    copy!(rows.collector_collecting, "collector_collecting",
        [turn_id: INT4, debtor_id: INT8, creditor_id: INT8, amount: INT8, collector_id: INT8, collector_hash: INT2]);
    copy!(rows.collector_sending, "collector_sending",
        [turn_id: INT4, debtor_id: INT8, from_collector_id: INT8, to_collector_id: INT8, from_collector_hash: INT2, amount: INT8]);
    copy!(rows.collector_receiving, "collector_receiving",
        [turn_id: INT4, debtor_id: INT8, to_collector_id: INT8, from_collector_id: INT8, to_collector_hash: INT2, amount: INT8]);
    copy!(rows.collector_dispatching, "collector_dispatching",
        [turn_id: INT4, debtor_id: INT8, creditor_id: INT8, amount: INT8, collector_id: INT8, collector_hash: INT2]);
    copy!(givings.map(|i| &rows.creditor_giving[i]), rows.creditor_giving.is_empty(), "creditor_giving",
        [turn_id: INT4, creditor_id: INT8, debtor_id: INT8, creditor_hash: INT2, amount: INT8, collector_id: INT8]);
    // The timestamp as microseconds since the epoch: exact, and no chrono support needed.
    let micros = now.timestamp_micros();
    tokio_postgres::Transaction::execute(
        &tx,
        "UPDATE turn SET phase = 3, phase_deadline = NULL, \
         collection_started_at = 'epoch'::timestamptz + $2::bigint * interval '1 microsecond' \
         WHERE turn_id = $1",
        &[&turn_id as &(dyn ToSql + Sync), &micros],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
