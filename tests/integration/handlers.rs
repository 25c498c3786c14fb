//! The handlers of the first slice, called directly on a worker database (the reference's
//! handler tests for docs/messages.md#handlers).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use swpt_trade::config::Config;
use swpt_trade::db::Database;
use swpt_trade::db::worker::schema::{
    configure_account_signal, discover_debtor_signal, needed_worker_account, trading_policy,
    worker_account,
};
use swpt_trade::handlers;
use swpt_trade::messages::{
    AccountPurge, AccountUpdate, IncomingMessage, UpdatedFlags, UpdatedLedger, UpdatedPolicy,
};

use crate::util::{TestDb, test_config};

fn ts0() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

fn date0() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
}

/// An `AccountUpdate` of a legible collector account (commit period 31 days).
pub fn account_update(creditor_id: i64, debtor_id: i64, now: DateTime<Utc>) -> AccountUpdate {
    AccountUpdate {
        debtor_id,
        creditor_id,
        creation_date: date0(),
        last_change_ts: now,
        last_change_seqnum: 1,
        principal: 1000,
        interest: 12.5,
        interest_rate: 5.0,
        last_interest_rate_change_ts: ts0() + Duration::days(10),
        last_config_ts: ts0(),
        last_config_seqnum: 0,
        negligible_amount: 0.0,
        config_flags: 0,
        config_data: String::new(),
        account_id: String::new(),
        debtor_info_iri: String::new(),
        debtor_info_content_type: String::new(),
        debtor_info_sha256: String::new(),
        last_transfer_number: 3,
        last_transfer_committed_at: ts0(),
        demurrage_rate: -10.0,
        commit_period: 31 * 86_400,
        transfer_note_max_bytes: 500,
        ts: now,
        ttl: 10_000,
    }
}

async fn handle(
    conn: &mut AsyncPgConnection,
    config: &Config,
    m: IncomingMessage,
    now: DateTime<Utc>,
) {
    let handler = handlers::handler(&m);
    let context = handlers::Context {
        config: std::sync::Arc::new(config.clone()),
        solver: None,
    };
    conn.transaction(async |conn| handler.run(conn, &context, now).await)
        .await
        .expect("handled");
}

async fn mark_needed(conn: &mut AsyncPgConnection, creditor_id: i64, debtor_id: i64) {
    diesel::insert_into(needed_worker_account::table)
        .values((
            needed_worker_account::creditor_id.eq(creditor_id),
            needed_worker_account::debtor_id.eq(debtor_id),
            needed_worker_account::configured_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await
        .unwrap();
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The number of rows of a table.
pub async fn count(conn: &mut AsyncPgConnection, table: &str) -> i64 {
    let c: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result(conn)
        .await
        .unwrap();
    c.n
}

#[tokio::test]
async fn account_update_follows_the_reference_cases() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    let config = test_config(&[]);
    let now = micros(Utc::now());
    mark_needed(conn, 123, 666).await;

    // First time, needed (case 8): the row is created, the collector activated and the
    // debtor discovered; the interest rate is recorded.
    let mut first = account_update(123, 666, now - Duration::hours(1));
    first.account_id = "Account123".into();
    first.debtor_info_iri = "https://example.com/666".into();
    first.ts = now;
    first.last_interest_rate_change_ts = now - Duration::days(10);
    handle(
        conn,
        &config,
        IncomingMessage::AccountUpdate(first.clone()),
        now,
    )
    .await;
    let (account_id, heartbeat): (String, DateTime<Utc>) = worker_account::table
        .find((123, 666))
        .select((
            worker_account::account_id,
            worker_account::last_heartbeat_ts,
        ))
        .first(conn)
        .await
        .unwrap();
    assert_eq!(account_id, "Account123");
    assert_eq!(heartbeat.timestamp_micros(), now.timestamp_micros());
    assert_eq!(count(conn, "activate_collector_signal").await, 1);
    let (iri, force): (String, bool) = discover_debtor_signal::table
        .select((
            discover_debtor_signal::iri,
            discover_debtor_signal::force_locator_refetch,
        ))
        .first(conn)
        .await
        .unwrap();
    assert_eq!((iri.as_str(), force), ("https://example.com/666", true));
    assert_eq!(count(conn, "interest_rate_change").await, 1);

    // An old event (case 4): nothing changes but a new interest rate is recorded.
    let mut old = account_update(123, 666, now - Duration::hours(2));
    old.last_change_seqnum = 0;
    old.interest_rate = 7.0;
    old.last_interest_rate_change_ts = now - Duration::days(5);
    handle(conn, &config, IncomingMessage::AccountUpdate(old), now).await;
    let principal: i64 = worker_account::table
        .find((123, 666))
        .select(worker_account::principal)
        .first(conn)
        .await
        .unwrap();
    assert_eq!(principal, 1000);
    assert_eq!(
        count(conn, "interest_rate_change").await,
        2,
        "a newer, higher rate is kept"
    );
    assert_eq!(count(conn, "activate_collector_signal").await, 1);

    // A rate change older than the history period: only the first one before the cutoff
    // stays (the lowest recent rate is all that matters).
    let mut ancient = account_update(123, 666, now - Duration::hours(3));
    ancient.interest_rate = 1.0;
    ancient.last_interest_rate_change_ts = now - Duration::days(400);
    handle(
        conn,
        &config,
        IncomingMessage::AccountUpdate(ancient.clone()),
        now,
    )
    .await;
    ancient.last_interest_rate_change_ts = now - Duration::days(500);
    handle(conn, &config, IncomingMessage::AccountUpdate(ancient), now).await;
    let kept: Vec<f32> = swpt_trade::db::worker::schema::interest_rate_change::table
        .select(swpt_trade::db::worker::schema::interest_rate_change::interest_rate)
        .order(swpt_trade::db::worker::schema::interest_rate_change::change_ts.desc())
        .load(conn)
        .await
        .unwrap();
    assert_eq!(kept, vec![7.0, 5.0, 1.0]);

    // An expired message (case 5): nothing.
    let mut expired = account_update(123, 666, now);
    expired.ts = now - Duration::seconds(11_000);
    expired.last_change_seqnum = 5;
    expired.principal = 5;
    handle(conn, &config, IncomingMessage::AccountUpdate(expired), now).await;
    let principal: i64 = worker_account::table
        .find((123, 666))
        .select(worker_account::principal)
        .first(conn)
        .await
        .unwrap();
    assert_eq!(principal, 1000);

    // A newer event (case 6): the row is updated, the account ID is kept, the debtor is
    // discovered again without forcing a refetch (same IRI); no second activation.
    let mut fresh = first.clone();
    fresh.last_change_ts = now;
    fresh.last_change_seqnum = 2;
    fresh.principal = 2000;
    fresh.account_id = "Other".into();
    handle(
        conn,
        &config,
        IncomingMessage::AccountUpdate(fresh.clone()),
        now,
    )
    .await;
    let (principal, account_id): (i64, String) = worker_account::table
        .find((123, 666))
        .select((worker_account::principal, worker_account::account_id))
        .first(conn)
        .await
        .unwrap();
    assert_eq!((principal, account_id.as_str()), (2000, "Account123"));
    assert_eq!(count(conn, "activate_collector_signal").await, 1);
    let forces: Vec<bool> = discover_debtor_signal::table
        .select(discover_debtor_signal::force_locator_refetch)
        .order(discover_debtor_signal::signal_id)
        .load(conn)
        .await
        .unwrap();
    assert_eq!(forces, vec![true, false]);

    // The same message again (a duplicate) changes nothing.
    handle(conn, &config, IncomingMessage::AccountUpdate(fresh), now).await;
    assert_eq!(count(conn, "discover_debtor_signal").await, 2);
    assert_eq!(count(conn, "configure_account_signal").await, 0);
}

#[tokio::test]
async fn unneeded_accounts_are_discarded_never_created() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    let config = test_config(&[]);
    let now = micros(Utc::now());
    let mut m = account_update(124, 666, now);
    m.account_id = "Account124".into();
    m.debtor_info_iri = "https://example.com/666".into();
    // Flags of the account's own, but not "scheduled for deletion" (bit 0).
    m.config_flags = 6;
    m.negligible_amount = 1e30;
    handle(
        conn,
        &config,
        IncomingMessage::AccountUpdate(m.clone()),
        now,
    )
    .await;
    assert_eq!(
        count(conn, "worker_account").await,
        0,
        "no row for an unneeded account"
    );
    // The reference's discarding: ts = now, seqnum 0, negligible amount 1e30, no config data,
    // and flags 0 | 1 (the default flags and "scheduled for deletion", not the account's).
    type Signal = (i64, i64, DateTime<Utc>, i32, f32, String, i32);
    let signals: Vec<Signal> = configure_account_signal::table
        .select((
            configure_account_signal::creditor_id,
            configure_account_signal::debtor_id,
            configure_account_signal::ts,
            configure_account_signal::seqnum,
            configure_account_signal::negligible_amount,
            configure_account_signal::config_data,
            configure_account_signal::config_flags,
        ))
        .load(conn)
        .await
        .unwrap();
    assert_eq!(signals, [(124, 666, now, 0, 1e30, String::new(), 1)]);
    assert_eq!(count(conn, "activate_collector_signal").await, 0);
    assert_eq!(count(conn, "discover_debtor_signal").await, 0);
    assert_eq!(count(conn, "interest_rate_change").await, 0);

    // Already scheduled for deletion: nothing more is sent.
    m.config_flags = 1;
    m.negligible_amount = 1e30;
    handle(conn, &config, IncomingMessage::AccountUpdate(m), now).await;
    assert_eq!(count(conn, "configure_account_signal").await, 1);
}

#[tokio::test]
async fn account_purge_deletes_only_older_incarnations() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    let config = test_config(&[]);
    let now = micros(Utc::now());
    mark_needed(conn, 123, 666).await;
    let mut m = account_update(123, 666, now);
    m.creation_date = date0() + Duration::days(5);
    handle(conn, &config, IncomingMessage::AccountUpdate(m), now).await;
    assert_eq!(count(conn, "worker_account").await, 1);
    let purge = |d: i64| AccountPurge {
        debtor_id: 666,
        creditor_id: 123,
        creation_date: date0() + Duration::days(d),
        ts: now,
    };
    handle(conn, &config, IncomingMessage::AccountPurge(purge(4)), now).await;
    assert_eq!(
        count(conn, "worker_account").await,
        1,
        "an older purge keeps the newer account"
    );
    handle(conn, &config, IncomingMessage::AccountPurge(purge(5)), now).await;
    assert_eq!(count(conn, "worker_account").await, 0);
    handle(conn, &config, IncomingMessage::AccountPurge(purge(5)), now).await;
    assert_eq!(
        count(conn, "needed_worker_account").await,
        1,
        "needed accounts stay needed"
    );
}

fn ledger(update_id: i64, account_id: &str, principal: i64) -> UpdatedLedger {
    UpdatedLedger {
        debtor_id: 666,
        creditor_id: -777,
        update_id,
        account_id: account_id.into(),
        creation_date: NaiveDate::from_ymd_opt(2021, 6, 18).unwrap(),
        principal,
        last_transfer_number: 2,
        ts: Utc::now(),
    }
}

fn policy(update_id: i64, name: Option<&str>, peg: Option<(f64, i64)>) -> UpdatedPolicy {
    UpdatedPolicy {
        debtor_id: 666,
        creditor_id: -777,
        update_id,
        policy_name: name.map(Into::into),
        min_principal: 100,
        max_principal: 5000,
        peg_exchange_rate: peg.map(|p| p.0),
        peg_debtor_id: peg.map(|p| p.1),
        ts: Utc::now(),
    }
}

fn flags(update_id: i64, config_flags: i32) -> UpdatedFlags {
    UpdatedFlags {
        debtor_id: 666,
        creditor_id: -777,
        update_id,
        config_flags,
        ts: Utc::now(),
    }
}

#[tokio::test]
async fn trading_policy_updates_apply_in_update_id_order() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    let config = test_config(&[]);
    let now = micros(Utc::now());
    let row = async |conn: &mut AsyncPgConnection| -> (i64, String, bool, i64, Option<String>, Option<i64>, i32) {
        trading_policy::table
            .find((-777, 666))
            .select((
                trading_policy::latest_ledger_update_id,
                trading_policy::account_id,
                trading_policy::account_id_is_obsolete,
                trading_policy::principal,
                trading_policy::policy_name,
                trading_policy::peg_debtor_id,
                trading_policy::config_flags,
            ))
            .first(conn)
            .await
            .unwrap()
    };
    // Case 10: the first message creates the row with the other families' defaults.
    handle(
        conn,
        &config,
        IncomingMessage::UpdatedLedger(ledger(123, "test_account", 10_000)),
        now,
    )
    .await;
    assert_eq!(
        row(conn).await,
        (123, "test_account".into(), false, 10_000, None, None, 0)
    );
    let (min, max): (i64, i64) = trading_policy::table
        .find((-777, 666))
        .select((trading_policy::min_principal, trading_policy::max_principal))
        .first(conn)
        .await
        .unwrap();
    assert_eq!((min, max), (i64::MIN, i64::MAX));
    handle(
        conn,
        &config,
        IncomingMessage::UpdatedLedger(ledger(122, "older", 1)),
        now,
    )
    .await;
    assert_eq!(row(conn).await.3, 10_000, "an older update is ignored");
    handle(
        conn,
        &config,
        IncomingMessage::UpdatedLedger(ledger(124, "new_account_id", 20_000)),
        now,
    )
    .await;
    assert_eq!(
        row(conn).await,
        (124, "new_account_id".into(), false, 20_000, None, None, 0)
    );
    handle(
        conn,
        &config,
        IncomingMessage::UpdatedLedger(ledger(125, "", 20_000)),
        now,
    )
    .await;
    assert_eq!(
        row(conn).await.1,
        "new_account_id",
        "the old account ID is kept"
    );
    assert!(row(conn).await.2, "but marked obsolete");

    handle(
        conn,
        &config,
        IncomingMessage::UpdatedPolicy(policy(123, Some("conservative"), Some((2.0, 1)))),
        now,
    )
    .await;
    assert_eq!(
        (row(conn).await.4, row(conn).await.5),
        (Some("conservative".into()), Some(1))
    );
    handle(
        conn,
        &config,
        IncomingMessage::UpdatedPolicy(policy(122, Some("older"), None)),
        now,
    )
    .await;
    assert_eq!(row(conn).await.4, Some("conservative".into()));
    handle(
        conn,
        &config,
        IncomingMessage::UpdatedPolicy(policy(124, None, None)),
        now,
    )
    .await;
    assert_eq!((row(conn).await.4, row(conn).await.5), (None, None));

    handle(
        conn,
        &config,
        IncomingMessage::UpdatedFlags(flags(123, 7890)),
        now,
    )
    .await;
    handle(
        conn,
        &config,
        IncomingMessage::UpdatedFlags(flags(123, 4567)),
        now,
    )
    .await;
    assert_eq!(
        row(conn).await.6,
        7890,
        "the same update_id is not applied twice"
    );
    handle(
        conn,
        &config,
        IncomingMessage::UpdatedFlags(flags(124, 4567)),
        now,
    )
    .await;
    assert_eq!(row(conn).await.6, 4567);
    assert_eq!(row(conn).await.0, 125, "other families are untouched");
}

/// `t` without its sub-microsecond part, as timestamps travel in messages and in PostgreSQL.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
}
