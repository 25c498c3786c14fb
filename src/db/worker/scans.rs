//! The table scanners' queries (docs/operations.md#table-scanners): the planner's row estimate
//! and page count of a table, the rows of a range of pages, and the deletion of candidate rows
//! re-selected by primary key with `FOR UPDATE SKIP LOCKED`.
//!
//! Every scanned table is described by a [`ScannedTable`]: its primary key (whose first column
//! is also the row's sharding key) and the condition that makes a row stale. Rows travel from
//! the read to the deletion as the JSON array of their primary key, built and parsed by
//! PostgreSQL, so that every key column (timestamps included) comes back exactly.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz};
use diesel::{QueryResult, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

/// A table that a scanner reads, with what makes one of its rows deletable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScannedTable {
    /// The table's name.
    pub table: &'static str,
    /// The primary key's columns with their SQL types, in the key's order. The first column
    /// is the sharding key: an ID (`bigint`) or a debtor-info locator (`text`).
    pub key: &'static [(&'static str, &'static str)],
    /// The SQL condition under which a row is stale and is deleted, over the table's
    /// columns and the two cutoff timestamps `cutoff_1` and `cutoff_2`; `None` for a table
    /// whose scanner only deletes a split shard's left-overs.
    pub stale: Option<&'static str>,
}

impl ScannedTable {
    /// Whether the sharding key is a string (a debtor-info locator) rather than an ID.
    pub fn has_text_key(&self) -> bool {
        self.key.first().is_some_and(|(_, ty)| *ty == "text")
    }

    fn key_list(&self, prefix: &str) -> String {
        let columns: Vec<String> = self
            .key
            .iter()
            .map(|(column, _)| format!("{prefix}{column}"))
            .collect();
        columns.join(", ")
    }

    fn key_casts(&self) -> String {
        let casts: Vec<String> = self
            .key
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| format!("(e->>{i})::{ty}"))
            .collect();
        casts.join(", ")
    }

    fn sharding_column(&self) -> &'static str {
        self.key.first().map_or("NULL", |(column, _)| column)
    }
}

const STALE_DEBTOR_INFO_DOCUMENT: &str = "fetched_at < cutoff_1";
const STALE_DEBTOR_LOCATOR_CLAIM: &str = "(latest_locator_fetch_at IS NOT NULL \
     AND latest_locator_fetch_at < cutoff_1) \
     OR (latest_locator_fetch_at IS NULL AND latest_discovery_fetch_at < cutoff_2)";
/// A policy that holds only the defaults of every column (docs/messages.md#trading-policies)
/// and has had no update of any kind since `cutoff_1`.
const STALE_TRADING_POLICY: &str = "(account_id = '' OR account_id_is_obsolete) \
     AND creation_date = DATE '1970-01-01' AND principal = 0 AND last_transfer_number = 0 \
     AND policy_name IS NULL AND min_principal = '-9223372036854775808'::bigint \
     AND max_principal = '9223372036854775807'::bigint AND peg_debtor_id IS NULL \
     AND peg_exchange_rate IS NULL AND config_flags = 0 \
     AND latest_ledger_update_ts < cutoff_1 AND latest_policy_update_ts < cutoff_1 \
     AND latest_flags_update_ts < cutoff_1";
const STALE_WORKER_ACCOUNT: &str = "last_heartbeat_ts < cutoff_1";
const STALE_RECENTLY_NEEDED_COLLECTOR: &str = "needed_at < cutoff_1";
const STALE_ACCOUNT_LOCK: &str =
    "initiated_at < cutoff_1 OR (released_at IS NOT NULL AND released_at < cutoff_2)";
const STALE_WORKER_COLLECTING: &str = "purge_after < cutoff_1 AND collected = false";
const STALE_PURGED: &str = "purge_after < cutoff_1";
const STALE_WORKER_RECEIVING: &str = "purge_after < cutoff_1 AND received_amount = 0";
const STALE_TRANSFER_ATTEMPT: &str = "collection_started_at < cutoff_1";

/// `debtor_info_document`, sharded by its locator.
pub const DEBTOR_INFO_DOCUMENT: ScannedTable = ScannedTable {
    table: "debtor_info_document",
    key: &[("debtor_info_locator", "text")],
    stale: Some(STALE_DEBTOR_INFO_DOCUMENT),
};
/// `debtor_locator_claim`.
pub const DEBTOR_LOCATOR_CLAIM: ScannedTable = ScannedTable {
    table: "debtor_locator_claim",
    key: &[("debtor_id", "bigint")],
    stale: Some(STALE_DEBTOR_LOCATOR_CLAIM),
};
/// `trading_policy`.
pub const TRADING_POLICY: ScannedTable = ScannedTable {
    table: "trading_policy",
    key: &[("creditor_id", "bigint"), ("debtor_id", "bigint")],
    stale: Some(STALE_TRADING_POLICY),
};
/// `worker_account`.
pub const WORKER_ACCOUNT: ScannedTable = ScannedTable {
    table: "worker_account",
    key: &[("creditor_id", "bigint"), ("debtor_id", "bigint")],
    stale: Some(STALE_WORKER_ACCOUNT),
};
/// `interest_rate_change` (only a split shard's left-overs are deleted).
pub const INTEREST_RATE_CHANGE: ScannedTable = ScannedTable {
    table: "interest_rate_change",
    key: &[
        ("creditor_id", "bigint"),
        ("debtor_id", "bigint"),
        ("change_ts", "timestamptz"),
    ],
    stale: None,
};
/// `needed_worker_account` (only a split shard's left-overs are deleted).
pub const NEEDED_WORKER_ACCOUNT: ScannedTable = ScannedTable {
    table: "needed_worker_account",
    key: &[("creditor_id", "bigint"), ("debtor_id", "bigint")],
    stale: None,
};
/// `recently_needed_collector`.
pub const RECENTLY_NEEDED_COLLECTOR: ScannedTable = ScannedTable {
    table: "recently_needed_collector",
    key: &[("debtor_id", "bigint")],
    stale: Some(STALE_RECENTLY_NEEDED_COLLECTOR),
};
/// `account_lock`.
pub const ACCOUNT_LOCK: ScannedTable = ScannedTable {
    table: "account_lock",
    key: &[("creditor_id", "bigint"), ("debtor_id", "bigint")],
    stale: Some(STALE_ACCOUNT_LOCK),
};
/// `creditor_participation` (only a split shard's left-overs are deleted).
pub const CREDITOR_PARTICIPATION: ScannedTable = ScannedTable {
    table: "creditor_participation",
    key: &[
        ("creditor_id", "bigint"),
        ("debtor_id", "bigint"),
        ("turn_id", "integer"),
    ],
    stale: None,
};
/// `dispatching_status` (only a split shard's left-overs are deleted).
pub const DISPATCHING_STATUS: ScannedTable = ScannedTable {
    table: "dispatching_status",
    key: &[
        ("collector_id", "bigint"),
        ("turn_id", "integer"),
        ("debtor_id", "bigint"),
    ],
    stale: None,
};
/// `worker_collecting`.
pub const WORKER_COLLECTING: ScannedTable = ScannedTable {
    table: "worker_collecting",
    key: &[
        ("collector_id", "bigint"),
        ("turn_id", "integer"),
        ("debtor_id", "bigint"),
        ("creditor_id", "bigint"),
    ],
    stale: Some(STALE_WORKER_COLLECTING),
};
/// `worker_sending`.
pub const WORKER_SENDING: ScannedTable = ScannedTable {
    table: "worker_sending",
    key: &[
        ("from_collector_id", "bigint"),
        ("turn_id", "integer"),
        ("debtor_id", "bigint"),
        ("to_collector_id", "bigint"),
    ],
    stale: Some(STALE_PURGED),
};
/// `worker_receiving`.
pub const WORKER_RECEIVING: ScannedTable = ScannedTable {
    table: "worker_receiving",
    key: &[
        ("to_collector_id", "bigint"),
        ("turn_id", "integer"),
        ("debtor_id", "bigint"),
        ("from_collector_id", "bigint"),
    ],
    stale: Some(STALE_WORKER_RECEIVING),
};
/// `worker_dispatching`.
pub const WORKER_DISPATCHING: ScannedTable = ScannedTable {
    table: "worker_dispatching",
    key: &[
        ("collector_id", "bigint"),
        ("turn_id", "integer"),
        ("debtor_id", "bigint"),
        ("creditor_id", "bigint"),
    ],
    stale: Some(STALE_PURGED),
};
/// `transfer_attempt`.
pub const TRANSFER_ATTEMPT: ScannedTable = ScannedTable {
    table: "transfer_attempt",
    key: &[
        ("collector_id", "bigint"),
        ("turn_id", "integer"),
        ("debtor_id", "bigint"),
        ("creditor_id", "bigint"),
        ("is_dispatching", "boolean"),
    ],
    stale: Some(STALE_TRANSFER_ATTEMPT),
};

/// The two cutoff timestamps a stale condition compares with (`None` where unused).
pub type Cutoffs = [Option<DateTime<Utc>>; 2];

/// One row as a scanner sees it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ScannedRow {
    /// The sharding key, when it is an ID.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub key_id: Option<i64>,
    /// The sharding key, when it is a string.
    #[diesel(sql_type = Nullable<Text>)]
    pub key_text: Option<String>,
    /// The primary key as a JSON array (PostgreSQL's rendering).
    #[diesel(sql_type = Text)]
    pub pk: String,
    /// Whether the row was stale at the cutoffs of the read.
    #[diesel(sql_type = Bool)]
    pub stale: bool,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The planner's estimate of the number of rows of `table` (`pg_class.reltuples`; 0 when it
/// has none yet).
pub async fn row_estimate(conn: &mut AsyncPgConnection, table: &ScannedTable) -> QueryResult<u64> {
    let row: Count = diesel::sql_query(
        "SELECT reltuples::bigint AS n FROM pg_catalog.pg_class WHERE oid = $1::regclass",
    )
    .bind::<Text, _>(table.table)
    .get_result(conn)
    .await?;
    Ok(u64::try_from(row.n).unwrap_or(0))
}

/// The number of pages of `table`.
pub async fn page_count(conn: &mut AsyncPgConnection, table: &ScannedTable) -> QueryResult<u64> {
    let row: Count = diesel::sql_query(
        "SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::int)::bigint AS n",
    )
    .bind::<Text, _>(table.table)
    .get_result(conn)
    .await?;
    Ok(u64::try_from(row.n).unwrap_or(0))
}

/// The rows of pages `start..end` of `table`, each with its staleness at `cutoffs`.
pub async fn rows_in_pages(
    conn: &mut AsyncPgConnection,
    table: &ScannedTable,
    (start, end): (u32, u32),
    cutoffs: Cutoffs,
) -> QueryResult<Vec<ScannedRow>> {
    let column = table.sharding_column();
    let (key_id, key_text) = if table.has_text_key() {
        ("NULL::bigint".to_owned(), format!("t.{column}::text"))
    } else {
        (format!("t.{column}"), "NULL::text".to_owned())
    };
    // Table and column names and conditions are the constants above, never input.
    let sql = format!(
        "WITH cutoffs AS (SELECT $3::timestamptz AS cutoff_1, $4::timestamptz AS cutoff_2) \
         SELECT {key_id} AS key_id, {key_text} AS key_text, \
                json_build_array({pk})::text AS pk, coalesce(({stale}), false) AS stale \
         FROM {table} AS t, cutoffs \
         WHERE t.ctid >= $1::tid AND t.ctid < $2::tid",
        pk = table.key_list("t."),
        stale = table.stale.unwrap_or("false"),
        table = table.table,
    );
    diesel::sql_query(sql)
        .bind::<Text, _>(format!("({start},0)"))
        .bind::<Text, _>(format!("({end},0)"))
        .bind::<Nullable<Timestamptz>, _>(cutoffs[0])
        .bind::<Nullable<Timestamptz>, _>(cutoffs[1])
        .load(conn)
        .await
}

/// Which rows a deletion may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Every row whose key is given (a split shard's left-overs).
    Any,
    /// Only rows that are still stale at the cutoffs.
    Stale,
}

/// Deletes the rows of `table` whose primary keys (as [`ScannedRow::pk`]) are given, that are
/// not locked by another transaction and, for [`Deletion::Stale`], that are stale at
/// `cutoffs`. Returns the number of rows deleted.
pub async fn delete_rows(
    conn: &mut AsyncPgConnection,
    table: &ScannedTable,
    pks: &[&str],
    deletion: Deletion,
    cutoffs: Cutoffs,
) -> QueryResult<usize> {
    if pks.is_empty() {
        return Ok(0);
    }
    let condition = match deletion {
        Deletion::Any => "true",
        Deletion::Stale => table.stale.unwrap_or("false"),
    };
    // Table and column names and conditions are the constants above, never input.
    let sql = format!(
        "WITH cutoffs AS (SELECT $2::timestamptz AS cutoff_1, $3::timestamptz AS cutoff_2) \
         DELETE FROM {table} WHERE ({key}) IN ( \
             SELECT {t_key} FROM {table} AS t, cutoffs \
             WHERE ({t_key}) IN (SELECT {casts} FROM jsonb_array_elements($1::jsonb) AS e) \
               AND coalesce(({condition}), false) \
             FOR UPDATE OF t SKIP LOCKED)",
        table = table.table,
        key = table.key_list(""),
        t_key = table.key_list("t."),
        casts = table.key_casts(),
    );
    let json = format!("[{}]", pks.join(","));
    diesel::sql_query(sql)
        .bind::<Text, _>(json)
        .bind::<Nullable<Timestamptz>, _>(cutoffs[0])
        .bind::<Nullable<Timestamptz>, _>(cutoffs[1])
        .execute(conn)
        .await
}
