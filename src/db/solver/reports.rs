//! Turn reports (`turn_report`, our own table) and the admin API's reads of turns and
//! collector accounts (docs/turns.md#turn-reports).

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Double, Integer};
use diesel::{ExpressionMethods as _, JoinOnDsl as _};
use diesel::{OptionalExtension as _, QueryDsl as _, QueryResult, SelectableHelper as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use super::schema::{collector_account, turn, turn_report};
use super::turns::Turn;

/// A `turn_report` row.
#[derive(Debug, Clone, PartialEq, diesel::Queryable, diesel::Selectable, diesel::Insertable)]
#[diesel(table_name = turn_report, check_for_backend(Pg))]
pub struct TurnReport {
    /// The turn.
    pub turn_id: i32,
    /// When the solver committed the turn's results.
    pub solved_at: DateTime<Utc>,
    /// `flow` or `greedy`.
    pub matcher: String,
    /// Currencies of the turn.
    pub currencies: i32,
    /// Currencies confirmed by their debtors.
    pub confirmed_currencies: i32,
    /// Currencies with a price (confirmed and pegged to the base within reach).
    pub priced_currencies: i32,
    /// Sell offers.
    pub sell_offers: i64,
    /// The sell offers' value in base units.
    pub sell_volume: f64,
    /// Buy offers.
    pub buy_offers: i64,
    /// The buy offers' value in base units.
    pub buy_volume: f64,
    /// The value of everything traded, in base units.
    pub traded_volume: f64,
    /// The LP upper bound of the traded volume.
    pub lp_bound: f64,
    /// Creditors that give or take something.
    pub participants: i64,
    /// Trading cycles that moved tokens, when the matcher counts them.
    pub cycles: Option<i64>,
    /// Milliseconds of the solver engine.
    pub solve_ms: f64,
}

/// Offers of one currency: how many, and their total amount.
#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
pub struct OfferTotal {
    /// The currency.
    #[diesel(sql_type = BigInt)]
    pub debtor_id: i64,
    /// How many offers.
    #[diesel(sql_type = BigInt)]
    pub offers: i64,
    /// Their total amount, in the currency's units.
    #[diesel(sql_type = Double)]
    pub amount: f64,
}

/// Which offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `sell_offer`.
    Sell,
    /// `buy_offer`.
    Buy,
}

/// The turn's offers of one side, totalled by currency.
pub async fn offer_totals(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
    side: Side,
) -> QueryResult<Vec<OfferTotal>> {
    let table = match side {
        Side::Sell => "sell_offer",
        Side::Buy => "buy_offer",
    };
    diesel::sql_query(format!(
        "SELECT debtor_id, count(*) AS offers, sum(amount)::float8 AS amount \
         FROM {table} WHERE turn_id = $1 GROUP BY debtor_id"
    ))
    .bind::<Integer, _>(turn_id)
    .load(conn)
    .await
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The creditors that give or take something in the turn's results.
pub async fn participants(conn: &mut AsyncPgConnection, turn_id: i32) -> QueryResult<i64> {
    let count: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM (\
           SELECT creditor_id FROM creditor_taking WHERE turn_id = $1 \
           UNION SELECT creditor_id FROM creditor_giving WHERE turn_id = $1) AS c",
    )
    .bind::<Integer, _>(turn_id)
    .get_result(conn)
    .await?;
    Ok(count.n)
}

/// Stores a turn's report (replacing an older one of the same turn).
pub async fn insert_report(conn: &mut AsyncPgConnection, report: &TurnReport) -> QueryResult<()> {
    diesel::insert_into(turn_report::table)
        .values(report)
        .on_conflict(turn_report::turn_id)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// The latest `limit` turns, newest first, each with its report if it has one.
pub async fn recent_turns(
    conn: &mut AsyncPgConnection,
    limit: i64,
) -> QueryResult<Vec<(Turn, Option<TurnReport>)>> {
    turn::table
        .left_join(turn_report::table.on(turn_report::turn_id.eq(turn::turn_id)))
        .order(turn::turn_id.desc())
        .limit(limit)
        .select((Turn::as_select(), Option::<TurnReport>::as_select()))
        .load(conn)
        .await
}

/// One turn with its report, if the turn exists.
pub async fn turn_with_report(
    conn: &mut AsyncPgConnection,
    turn_id: i32,
) -> QueryResult<Option<(Turn, Option<TurnReport>)>> {
    turn::table
        .left_join(turn_report::table.on(turn_report::turn_id.eq(turn::turn_id)))
        .filter(turn::turn_id.eq(turn_id))
        .select((Turn::as_select(), Option::<TurnReport>::as_select()))
        .first(conn)
        .await
        .optional()
}

/// A `collector_account` row.
#[derive(Debug, Clone, PartialEq, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = collector_account, check_for_backend(Pg))]
pub struct CollectorAccountRow {
    /// The collector's creditor ID.
    pub collector_id: i64,
    /// The account ID the accounting authority gave (empty until then).
    pub account_id: String,
    /// 0 planned, 1 requested, 2 active, 3 disabled.
    pub status: i16,
    /// When the status last changed.
    pub latest_status_change_at: DateTime<Utc>,
}

/// The debtor's collector accounts, by collector ID.
pub async fn collector_accounts(
    conn: &mut AsyncPgConnection,
    debtor_id: i64,
) -> QueryResult<Vec<CollectorAccountRow>> {
    collector_account::table
        .filter(collector_account::debtor_id.eq(debtor_id))
        .order(collector_account::collector_id)
        .select(CollectorAccountRow::as_select())
        .load(conn)
        .await
}
