//! Trading policies (`trading_policy`), written by `UpdatedLedger`, `UpdatedPolicy` and
//! `UpdatedFlags` from the Creditors Agent (see `docs/messages.md#trading-policies`): each
//! family updates its columns of the row only when its `update_id` is newer than the stored
//! one; a missing row is created with this family's values and the defaults of the other
//! families.
//!
//! Each is one `INSERT … ON CONFLICT DO UPDATE … WHERE` statement: the row is locked and
//! compared atomically, and under REPEATABLE READ a concurrent insert makes the transaction
//! fail with a serialization error, which the caller retries.

use std::sync::LazyLock;

use diesel::sql_types::{BigInt, Date, Double, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use crate::messages::{UpdatedFlags, UpdatedLedger, UpdatedPolicy};

/// The defaults of every `trading_policy` column, for the columns a family does not set.
const DEFAULTS: &str = "0, 'epoch', '', false, '1970-01-01', 0, 0, \
                        0, 'epoch', NULL, -9223372036854775808, 9223372036854775807, NULL, NULL, \
                        0, 'epoch', 0";

const COLUMNS: &str = "latest_ledger_update_id, latest_ledger_update_ts, account_id, \
                       account_id_is_obsolete, creation_date, principal, last_transfer_number, \
                       latest_policy_update_id, latest_policy_update_ts, policy_name, \
                       min_principal, max_principal, peg_debtor_id, peg_exchange_rate, \
                       latest_flags_update_id, latest_flags_update_ts, config_flags";

/// The `INSERT` of a new row whose values are `DEFAULTS` except the `family` columns, which
/// take the given placeholders; on conflict, `update` runs when `newer` holds.
fn upsert_sql(family: &[(&str, &str)], update: &str, newer: &str) -> String {
    let columns: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
    let defaults = split_defaults();
    let values: Vec<String> = columns
        .iter()
        .zip(defaults)
        .map(|(c, d)| {
            family
                .iter()
                .find(|(f, _)| f == c)
                .map_or(d, |(_, v)| v.to_string())
        })
        .collect();
    format!(
        "INSERT INTO trading_policy (creditor_id, debtor_id, {COLUMNS}) VALUES ($1, $2, {}) \
         ON CONFLICT (creditor_id, debtor_id) DO UPDATE SET {update} WHERE {newer}",
        values.join(", ")
    )
}

/// `DEFAULTS` split into one SQL literal per column.
fn split_defaults() -> Vec<String> {
    DEFAULTS.split(", ").map(|s| s.trim().to_string()).collect()
}

/// The upsert of `UpdatedLedger`.
static LEDGER_SQL: LazyLock<String> = LazyLock::new(|| {
    upsert_sql(
        &[
            ("latest_ledger_update_id", "$3"),
            ("latest_ledger_update_ts", "$4"),
            ("account_id", "$5"),
            ("creation_date", "$6"),
            ("principal", "$7"),
            ("last_transfer_number", "$8"),
        ],
        "latest_ledger_update_id = EXCLUDED.latest_ledger_update_id, \
         latest_ledger_update_ts = EXCLUDED.latest_ledger_update_ts, \
         creation_date = EXCLUDED.creation_date, principal = EXCLUDED.principal, \
         last_transfer_number = EXCLUDED.last_transfer_number, \
         account_id = CASE WHEN EXCLUDED.account_id <> '' THEN EXCLUDED.account_id \
                      ELSE trading_policy.account_id END, \
         account_id_is_obsolete = (EXCLUDED.account_id = '')",
        "trading_policy.latest_ledger_update_id < EXCLUDED.latest_ledger_update_id",
    )
});

/// The upsert of `UpdatedPolicy`.
static POLICY_SQL: LazyLock<String> = LazyLock::new(|| {
    upsert_sql(
        &[
            ("latest_policy_update_id", "$3"),
            ("latest_policy_update_ts", "$4"),
            ("policy_name", "$5"),
            ("min_principal", "$6"),
            ("max_principal", "$7"),
            ("peg_debtor_id", "$8"),
            ("peg_exchange_rate", "$9"),
        ],
        "latest_policy_update_id = EXCLUDED.latest_policy_update_id, \
         latest_policy_update_ts = EXCLUDED.latest_policy_update_ts, \
         policy_name = EXCLUDED.policy_name, min_principal = EXCLUDED.min_principal, \
         max_principal = EXCLUDED.max_principal, peg_debtor_id = EXCLUDED.peg_debtor_id, \
         peg_exchange_rate = EXCLUDED.peg_exchange_rate",
        "trading_policy.latest_policy_update_id < EXCLUDED.latest_policy_update_id",
    )
});

/// The upsert of `UpdatedFlags`.
static FLAGS_SQL: LazyLock<String> = LazyLock::new(|| {
    upsert_sql(
        &[
            ("latest_flags_update_id", "$3"),
            ("latest_flags_update_ts", "$4"),
            ("config_flags", "$5"),
        ],
        "latest_flags_update_id = EXCLUDED.latest_flags_update_id, \
         latest_flags_update_ts = EXCLUDED.latest_flags_update_ts, \
         config_flags = EXCLUDED.config_flags",
        "trading_policy.latest_flags_update_id < EXCLUDED.latest_flags_update_id",
    )
});

/// Applies an `UpdatedLedger`. An empty `account_id` keeps the old one but marks it obsolete,
/// so that transfers can still reach an account its owner deleted.
pub async fn updated_ledger(
    conn: &mut AsyncPgConnection,
    m: &UpdatedLedger,
) -> diesel::QueryResult<()> {
    diesel::sql_query(LEDGER_SQL.as_str())
        .bind::<BigInt, _>(m.creditor_id)
        .bind::<BigInt, _>(m.debtor_id)
        .bind::<BigInt, _>(m.update_id)
        .bind::<Timestamptz, _>(m.ts)
        .bind::<Text, _>(&m.account_id)
        .bind::<Date, _>(m.creation_date)
        .bind::<BigInt, _>(m.principal)
        .bind::<BigInt, _>(m.last_transfer_number)
        .execute(conn)
        .await?;
    Ok(())
}

/// Applies an `UpdatedPolicy`.
pub async fn updated_policy(
    conn: &mut AsyncPgConnection,
    m: &UpdatedPolicy,
) -> diesel::QueryResult<()> {
    diesel::sql_query(POLICY_SQL.as_str())
        .bind::<BigInt, _>(m.creditor_id)
        .bind::<BigInt, _>(m.debtor_id)
        .bind::<BigInt, _>(m.update_id)
        .bind::<Timestamptz, _>(m.ts)
        .bind::<Nullable<Text>, _>(m.policy_name.as_deref())
        .bind::<BigInt, _>(m.min_principal)
        .bind::<BigInt, _>(m.max_principal)
        .bind::<Nullable<BigInt>, _>(m.peg_debtor_id)
        .bind::<Nullable<Double>, _>(m.peg_exchange_rate)
        .execute(conn)
        .await?;
    Ok(())
}

/// Applies an `UpdatedFlags`.
pub async fn updated_flags(
    conn: &mut AsyncPgConnection,
    m: &UpdatedFlags,
) -> diesel::QueryResult<()> {
    diesel::sql_query(FLAGS_SQL.as_str())
        .bind::<BigInt, _>(m.creditor_id)
        .bind::<BigInt, _>(m.debtor_id)
        .bind::<BigInt, _>(m.update_id)
        .bind::<Timestamptz, _>(m.ts)
        .bind::<Integer, _>(m.config_flags)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_column_has_a_default() {
        assert_eq!(
            super::COLUMNS.split(',').count(),
            super::split_defaults().len()
        );
    }
}
