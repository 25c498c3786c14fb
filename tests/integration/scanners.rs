//! The table scanners on a real worker database (docs/operations.md#table-scanners): which
//! rows each one deletes and which it keeps, the parent-shard cleanup of a split shard, a
//! prompt stop, and the `scan_*` commands.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use swpt_trade::db::{Database, PoolSettings, WorkerPool};
use swpt_trade::jobs::{OnFailure, Runner};
use swpt_trade::scanners::{self, Scan, Scanner};
use swpt_trade::sharding::ShardingRealm;
use tokio_util::sync::CancellationToken;

use crate::cli::run_binary;
use crate::util::{TestDb, test_config};

/// One pass in about 0.17 s: 11 passes (`--quit-early`) in about 2 s.
const TINY_DAYS: f64 = 0.000_002;

async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut AsyncPgConnection, table: &str, condition: &str) -> i64 {
    let sql = format!("SELECT count(*) AS n FROM {table} WHERE {condition}");
    let c: Count = diesel::sql_query(&sql)
        .get_result(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    c.n
}

/// Runs `scans` with `--quit-early` (11 passes each) on `db` with the settings `vars`, all
/// at once, and waits for them.
async fn run_scanners(db: &TestDb, vars: &[(&str, &str)], scans: &[Scan]) {
    let mut all = vec![("WORKER_POSTGRES_URL", db.url.as_str())];
    all.extend_from_slice(vars);
    let config = test_config(&all);
    let pool = WorkerPool::build(&db.url, PoolSettings::new(4), "test").unwrap();
    let stop = CancellationToken::new();
    let runner = Runner::new(&stop, Duration::from_secs(10));
    for &scan in scans {
        let scanner = Scanner::new(scan, &config, pool.clone(), Some(TINY_DAYS), true).unwrap();
        scanners::spawn(&runner, scanner, OnFailure::Exit);
    }
    tokio::time::timeout(Duration::from_secs(60), runner.wait())
        .await
        .expect("the scanners end after 11 passes")
        .expect("no scanner fails");
}

/// An ID whose hash is (`inside`) or is not in `realm`, the first from `from` up.
fn id_in(realm: &str, inside: bool, from: i64) -> i64 {
    let realm: ShardingRealm = realm.parse().unwrap();
    (from..from + 10_000)
        .find(|&id| realm.contains_id(id) == inside)
        .unwrap()
}

/// A debtor-info locator whose hash is (`inside`) or is not in `realm`.
fn locator_in(realm: &str, inside: bool, tag: &str) -> String {
    let realm: ShardingRealm = realm.parse().unwrap();
    (0..10_000)
        .map(|i| format!("https://example.com/{tag}/{i}"))
        .find(|s| realm.contains_str(s) == inside)
        .unwrap()
}

/// A worker account of collector `creditor_id` whose last heartbeat was `heartbeat`.
fn worker_account(creditor_id: i64, debtor_id: i64, heartbeat: &str) -> String {
    format!(
        "INSERT INTO worker_account (creditor_id, debtor_id, creation_date, last_change_ts, \
         last_change_seqnum, principal, interest, interest_rate, last_interest_rate_change_ts, \
         config_flags, account_id, last_transfer_number, last_transfer_committed_at, \
         demurrage_rate, commit_period, transfer_note_max_bytes, last_heartbeat_ts) VALUES \
         ({creditor_id}, {debtor_id}, '2020-01-01', now(), 0, 0, 0, 0, now(), 0, '', 0, now(), \
         -50, 1000, 500, {heartbeat})"
    )
}

/// A trading policy with the given `principal` (0 = every default) whose three update
/// timestamps are `ts`.
fn trading_policy(creditor_id: i64, debtor_id: i64, principal: i64, ts: &str) -> String {
    format!(
        "INSERT INTO trading_policy (creditor_id, debtor_id, latest_ledger_update_id, \
         latest_ledger_update_ts, account_id, account_id_is_obsolete, creation_date, principal, \
         last_transfer_number, latest_policy_update_id, latest_policy_update_ts, policy_name, \
         min_principal, max_principal, peg_debtor_id, peg_exchange_rate, \
         latest_flags_update_id, latest_flags_update_ts, config_flags) VALUES \
         ({creditor_id}, {debtor_id}, 1, {ts}, '', false, '1970-01-01', {principal}, 0, 1, {ts}, \
         NULL, -9223372036854775808, 9223372036854775807, NULL, NULL, 1, {ts}, 0)"
    )
}

fn dispatching_status(collector_id: i64, turn_id: i32) -> String {
    format!(
        "INSERT INTO dispatching_status (collector_id, turn_id, debtor_id, inserted_at, \
         amount_to_collect, amount_to_send, started_sending, all_sent, amount_to_receive, \
         number_to_receive, all_received, amount_to_dispatch, started_dispatching, \
         awaiting_signal_flag) VALUES ({collector_id}, {turn_id}, 1, now(), 0, 0, false, false, \
         0, 0, false, 0, false, false)"
    )
}

fn transfer_attempt(collector_id: i64, turn_id: i32, collection_started_at: &str) -> String {
    format!(
        "INSERT INTO transfer_attempt (collector_id, turn_id, debtor_id, creditor_id, \
         is_dispatching, nominal_amount, collection_started_at, inserted_at, recipient, \
         recipient_version, backoff_counter) VALUES ({collector_id}, {turn_id}, 1, 2, true, 100, \
         {collection_started_at}, now(), '', 0, 0)"
    )
}

fn account_lock(creditor_id: i64, debtor_id: i64, initiated_at: &str, released_at: &str) -> String {
    if released_at == "NULL" {
        format!(
            "INSERT INTO account_lock (creditor_id, debtor_id, turn_id, collector_id, \
             initiated_at, amount, has_been_revised) VALUES \
             ({creditor_id}, {debtor_id}, 1, 999, {initiated_at}, 10, false)"
        )
    } else {
        format!(
            "INSERT INTO account_lock (creditor_id, debtor_id, turn_id, collector_id, \
             initiated_at, amount, transfer_id, finalized_at, released_at, \
             account_creation_date, account_last_transfer_number, has_been_revised) VALUES \
             ({creditor_id}, {debtor_id}, 1, 999, {initiated_at}, 10, 5, {released_at}, \
             {released_at}, '2020-01-01', 3, true)"
        )
    }
}

fn days_ago(days: u32) -> String {
    format!("now() - interval '{days} days'")
}

#[tokio::test]
async fn each_scanner_deletes_its_stale_rows_and_keeps_the_others() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    let old = days_ago(3000);
    let future = "now() + interval '1 day'";
    // Defaults: locator claims expire after 45 days, debtor infos after 7; heartbeats after
    // 365; locks after 365, released locks after 30; useless policies after 30 + 180 + 7 =
    // 217 days; transfer attempts after 30 + max(150, 180) = 210 days. Debtor 1 marks the
    // rows to delete, debtor 2 those to keep.
    let rows = [
        // debtor_info_document
        format!(
            "INSERT INTO debtor_info_document (debtor_info_locator, debtor_id, fetched_at) \
             VALUES ('https://example.com/old', 1, {})",
            days_ago(46)
        ),
        format!(
            "INSERT INTO debtor_info_document (debtor_info_locator, debtor_id, fetched_at) \
             VALUES ('https://example.com/new', 2, {})",
            days_ago(44)
        ),
        // debtor_locator_claim: deleted 101 (locator fetched long ago) and 102 (no locator,
        // discovered long ago); kept 201 (locator fetched recently, discovered long ago) and
        // 202 (no locator, discovered recently).
        format!(
            "INSERT INTO debtor_locator_claim (debtor_id, debtor_info_locator, \
             latest_locator_fetch_at, latest_discovery_fetch_at) VALUES \
             (101, 'https://example.com/1', {}, now()), \
             (201, 'https://example.com/2', {}, {old})",
            days_ago(46),
            days_ago(44)
        ),
        format!(
            "INSERT INTO debtor_locator_claim (debtor_id, latest_discovery_fetch_at) VALUES \
             (102, {}), (202, {})",
            days_ago(8),
            days_ago(6)
        ),
        // trading_policy: deleted when useless and not updated for 217 days.
        trading_policy(10, 1, 0, &days_ago(218)),
        trading_policy(11, 2, 0, &days_ago(216)),
        trading_policy(12, 2, 5, &old),
        // worker_account
        worker_account(10, 1, &days_ago(366)),
        worker_account(11, 2, &days_ago(364)),
        // recently_needed_collector
        format!(
            "INSERT INTO recently_needed_collector (debtor_id, needed_at) VALUES \
             (101, {}), (201, {})",
            days_ago(46),
            days_ago(44)
        ),
        // account_lock
        account_lock(10, 1, &days_ago(366), "NULL"),
        account_lock(11, 1, "now()", &days_ago(31)),
        account_lock(12, 2, &days_ago(364), "NULL"),
        account_lock(13, 2, "now()", &days_ago(29)),
        // worker_collecting: deleted when past purge_after and not collected.
        format!(
            "INSERT INTO worker_collecting (collector_id, turn_id, debtor_id, creditor_id, \
             amount, collected, purge_after) VALUES \
             (10, 1, 1, 99, 5, false, {old}), (11, 1, 2, 99, 5, true, {old}), \
             (12, 1, 2, 99, 5, false, {future})"
        ),
        // worker_sending
        format!(
            "INSERT INTO worker_sending (from_collector_id, turn_id, debtor_id, to_collector_id, \
             amount, purge_after) VALUES (10, 1, 1, 99, 5, {old}), (11, 1, 2, 99, 5, {future})"
        ),
        // worker_receiving: deleted when past purge_after and nothing received.
        format!(
            "INSERT INTO worker_receiving (to_collector_id, turn_id, debtor_id, \
             from_collector_id, expected_amount, received_amount, purge_after) VALUES \
             (10, 1, 1, 99, 5, 0, {old}), (11, 1, 2, 99, 5, 3, {old}), \
             (12, 1, 2, 99, 5, 0, {future})"
        ),
        // worker_dispatching
        format!(
            "INSERT INTO worker_dispatching (collector_id, turn_id, debtor_id, creditor_id, \
             amount, purge_after) VALUES (10, 1, 1, 99, 5, {old}), (11, 1, 2, 99, 5, {future})"
        ),
        // transfer_attempt (debtor 1 in all of them: told apart by turn).
        transfer_attempt(10, 1, &days_ago(211)),
        transfer_attempt(10, 2, &days_ago(209)),
        // The parent-only tables keep everything while DELETE_PARENT_SHARD_RECORDS is off.
        "INSERT INTO interest_rate_change VALUES (10, 2, '2000-01-01', 1.5)".to_owned(),
        "INSERT INTO needed_worker_account VALUES (10, 2, '2000-01-01')".to_owned(),
        "INSERT INTO creditor_participation VALUES (10, 2, 1, 5, 99)".to_owned(),
        dispatching_status(10, 1),
    ];
    for sql in &rows {
        exec(conn, sql).await;
    }
    // A realm with a single bit: the foreign rows above stay (no parent cleanup).
    run_scanners(
        &db,
        &[("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", "1.#")],
        &Scan::ALL,
    )
    .await;

    let deleted_and_kept = [
        ("debtor_info_document", "debtor_id = 1", "debtor_id = 2", 1),
        (
            "debtor_locator_claim",
            "debtor_id < 200",
            "debtor_id > 200",
            2,
        ),
        ("trading_policy", "debtor_id = 1", "debtor_id = 2", 2),
        ("worker_account", "debtor_id = 1", "debtor_id = 2", 1),
        (
            "recently_needed_collector",
            "debtor_id < 200",
            "debtor_id > 200",
            1,
        ),
        ("account_lock", "debtor_id = 1", "debtor_id = 2", 2),
        ("worker_collecting", "debtor_id = 1", "debtor_id = 2", 2),
        ("worker_sending", "debtor_id = 1", "debtor_id = 2", 1),
        ("worker_receiving", "debtor_id = 1", "debtor_id = 2", 2),
        ("worker_dispatching", "debtor_id = 1", "debtor_id = 2", 1),
        ("transfer_attempt", "turn_id = 1", "turn_id = 2", 1),
        ("interest_rate_change", "debtor_id = 1", "debtor_id = 2", 1),
        ("needed_worker_account", "debtor_id = 1", "debtor_id = 2", 1),
        (
            "creditor_participation",
            "debtor_id = 1",
            "debtor_id = 2",
            1,
        ),
        ("dispatching_status", "false", "true", 1),
    ];
    for (table, deleted, kept, n_kept) in deleted_and_kept {
        assert_eq!(count(conn, table, deleted).await, 0, "{table}: {deleted}");
        assert_eq!(count(conn, table, kept).await, n_kept, "{table}: {kept}");
    }
}

/// Fresh rows (that only the parent-shard cleanup may delete) of every scanned table: one of
/// each per key in `ids` (debtor 1 for the first, 2 for the second) and per locator.
fn fresh_rows_of_every_table(
    ours: i64,
    theirs: i64,
    our_locator: &str,
    their_locator: &str,
) -> Vec<String> {
    let future = "now() + interval '1 day'";
    let mut rows = vec![];
    for (key, debtor) in [(ours, 1), (theirs, 2)] {
        rows.extend([
            format!(
                "INSERT INTO debtor_locator_claim (debtor_id, latest_discovery_fetch_at) \
                 VALUES ({key}, now())"
            ),
            trading_policy(key, debtor, 5, "now()"),
            worker_account(key, debtor, "now()"),
            format!("INSERT INTO interest_rate_change VALUES ({key}, {debtor}, now(), 1.5)"),
            format!("INSERT INTO needed_worker_account VALUES ({key}, {debtor}, now())"),
            format!("INSERT INTO recently_needed_collector VALUES ({key}, now())"),
            account_lock(key, debtor, "now()", "NULL"),
            format!("INSERT INTO creditor_participation VALUES ({key}, {debtor}, 1, 5, 99)"),
            dispatching_status(key, debtor as i32),
            format!(
                "INSERT INTO worker_collecting VALUES ({key}, 1, {debtor}, 99, 5, false, {future})"
            ),
            format!("INSERT INTO worker_sending VALUES ({key}, 1, {debtor}, 99, 5, {future})"),
            format!("INSERT INTO worker_receiving VALUES ({key}, 1, {debtor}, 99, 5, 0, {future})"),
            format!("INSERT INTO worker_dispatching VALUES ({key}, 1, {debtor}, 99, 5, {future})"),
            transfer_attempt(key, debtor as i32, "now()"),
        ]);
    }
    for (locator, debtor) in [(our_locator, 1), (their_locator, 2)] {
        rows.push(format!(
            "INSERT INTO debtor_info_document (debtor_info_locator, debtor_id, fetched_at) \
             VALUES ('{locator}', {debtor}, now())"
        ));
    }
    rows
}

#[tokio::test]
async fn with_delete_parent_shard_records_the_siblings_rows_go_and_ours_stay() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    // This shard is 1.#, split from #: rows of 0.# are the sibling's. Every row is fresh,
    // so only the parent cleanup can delete it.
    let ours = id_in("1.#", true, 1_000);
    let theirs = id_in("1.#", false, 1_000);
    let our_locator = locator_in("1.#", true, "doc");
    let their_locator = locator_in("1.#", false, "doc");
    let rows = fresh_rows_of_every_table(ours, theirs, &our_locator, &their_locator);
    for sql in &rows {
        exec(conn, sql).await;
    }
    run_scanners(
        &db,
        &[
            ("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", "1.#"),
            ("DELETE_PARENT_SHARD_RECORDS", "true"),
        ],
        &Scan::ALL,
    )
    .await;
    for scan in Scan::ALL {
        let table = scan.table();
        let column = table.key[0].0;
        let (our, their) = if table.has_text_key() {
            (format!("'{our_locator}'"), format!("'{their_locator}'"))
        } else {
            (ours.to_string(), theirs.to_string())
        };
        let name = table.table;
        assert_eq!(
            count(conn, name, &format!("{column} = {their}")).await,
            0,
            "{name}"
        );
        assert_eq!(
            count(conn, name, &format!("{column} = {our}")).await,
            1,
            "{name}"
        );
    }
}

#[tokio::test]
async fn rows_outside_the_parent_shard_are_not_the_scanners_business() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    // This shard is 1.0.#, split from 1.#: 1.1.# is the sibling; 0.# is neither.
    let ours = id_in("1.0.#", true, 1_000);
    let sibling = id_in("1.1.#", true, 1_000);
    let stranger = id_in("1.#", false, 1_000);
    for (key, debtor) in [(ours, 1), (sibling, 2), (stranger, 3)] {
        exec(
            conn,
            &format!("INSERT INTO needed_worker_account VALUES ({key}, {debtor}, now())"),
        )
        .await;
    }
    run_scanners(
        &db,
        &[
            ("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", "1.0.#"),
            ("DELETE_PARENT_SHARD_RECORDS", "true"),
        ],
        &[Scan::NeededWorkerAccounts],
    )
    .await;
    assert_eq!(
        count(conn, "needed_worker_account", "debtor_id = 1").await,
        1
    );
    assert_eq!(
        count(conn, "needed_worker_account", "debtor_id = 2").await,
        0
    );
    assert_eq!(
        count(conn, "needed_worker_account", "debtor_id = 3").await,
        1
    );
}

#[tokio::test]
async fn a_scanner_stops_at_once_in_the_middle_of_its_rhythm() {
    let db = TestDb::migrated(Database::Worker).await;
    let config = test_config(&[("WORKER_POSTGRES_URL", db.url.as_str())]);
    let pool = WorkerPool::build(&db.url, PoolSettings::new(2), "test").unwrap();
    let stop = CancellationToken::new();
    let runner = Runner::new(&stop, Duration::from_secs(10));
    // A pass of 7 days sleeps about 1.4 days after each beat.
    let scanner = Scanner::new(Scan::WorkerSendings, &config, pool, None, false).unwrap();
    scanners::spawn(&runner, scanner, OnFailure::Restart);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    let started = std::time::Instant::now();
    runner.wait().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn scan_commands_run_their_passes_and_exit_zero() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    exec(
        conn,
        "INSERT INTO worker_sending VALUES (10, 1, 1, 99, 5, now() - interval '1 day'), \
         (11, 1, 2, 99, 5, now() + interval '1 day')",
    )
    .await;
    let vars = [
        ("WORKER_POSTGRES_URL", db.url.as_str()),
        ("APP_LOG_LEVEL", "info"),
    ];
    let days = TINY_DAYS.to_string();
    let out = run_binary(
        &["scan_worker_sendings", "--days", &days, "--quit-early"],
        &vars,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("Started worker sending records scanner."),
        "{stdout}"
    );
    assert_eq!(count(conn, "worker_sending", "debtor_id = 1").await, 0);
    assert_eq!(count(conn, "worker_sending", "debtor_id = 2").await, 1);

    // A parent-only scanner has nothing to do without DELETE_PARENT_SHARD_RECORDS.
    let out = run_binary(
        &["scan_interest_rate_changes", "-d", &days, "--quit-early"],
        &vars,
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Started interest rate changes scanner.")
    );

    // A pass of 0 days is refused.
    let out = run_binary(
        &["scan_account_locks", "--quit-early"],
        &[
            ("WORKER_POSTGRES_URL", db.url.as_str()),
            ("APP_ACCOUNT_LOCKS_SCAN_DAYS", "0"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn scan_all_starts_the_15_scanners_and_stops_on_sigterm() {
    use tokio::io::AsyncBufReadExt as _;

    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    exec(
        conn,
        "INSERT INTO worker_dispatching VALUES (10, 1, 1, 99, 5, now() - interval '1 day')",
    )
    .await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_swpt-trade"))
        .arg("scan_all")
        .env_clear()
        .env("WORKER_POSTGRES_URL", &db.url)
        .env("APP_LOG_LEVEL", "info")
        // One pass in about 0.17 s: the stale row goes within the first pass.
        .env("APP_WORKER_DISPATCHINGS_SCAN_DAYS", TINY_DAYS.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start swpt-trade");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut started = std::collections::HashSet::new();
    let read_lines = async {
        while let Ok(Some(line)) = stdout.next_line().await {
            if let Some(i) = line.find("Started ") {
                started.insert(line[i..].to_owned());
                if started.len() == Scan::ALL.len() {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read_lines)
        .await
        .expect("every scanner starts");
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    for scan in Scan::ALL {
        let line = format!("Started {} scanner.", scan.description());
        assert!(started.contains(&line), "{line} in {started:?}");
    }
    let deleted = crate::util::wait_for(10, async || {
        count(conn, "worker_dispatching", "true").await == 0
    })
    .await;
    assert!(deleted, "the stale row is deleted");
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("exits promptly")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// A shard split end to end (docs/operations.md#sharding): the parent `#` is copied into
/// two databases; each child runs with `DELETE_PARENT_SHARD_RECORDS=true`, its scanners
/// delete the sibling's rows, its transfer roller leaves the sibling's collectors alone, and
/// `verify_shard_content` passes on both.
#[tokio::test]
async fn a_split_shard_keeps_only_its_own_rows_in_each_child() {
    let parent = TestDb::migrated(Database::Worker).await;
    let left = id_in("0.#", true, 1_000);
    let right = id_in("1.#", true, 1_000);
    let left_locator = locator_in("0.#", true, "doc");
    let right_locator = locator_in("1.#", true, "doc");
    {
        let conn = &mut parent.connect().await;
        for sql in fresh_rows_of_every_table(left, right, &left_locator, &right_locator) {
            exec(conn, &sql).await;
        }
    }
    let children = [
        ("0.#", TestDb::copy_of(&parent).await, left),
        ("1.#", TestDb::copy_of(&parent).await, right),
    ];
    let verify = |db: &TestDb, key: &str| {
        run_binary(
            &["verify_shard_content"],
            &[
                ("WORKER_POSTGRES_URL", db.url.as_str()),
                ("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", key),
                ("APP_VERIFY_SHARD_SLEEP_SECONDS", "0"),
            ],
        )
        .status
        .code()
    };
    for (key, db, own) in &children {
        assert_eq!(
            verify(db, key),
            Some(1),
            "{key}: the sibling's rows are there"
        );
        let vars = [
            ("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", *key),
            ("DELETE_PARENT_SHARD_RECORDS", "true"),
        ];
        // The roller signals only its own collector's status (both are ready to send).
        exec(
            &mut db.connect().await,
            "UPDATE worker_collecting SET collected = true",
        )
        .await;
        let pool = WorkerPool::build(&db.url, PoolSettings::new(2), "test").unwrap();
        swpt_trade::transfers::RollTransfers {
            pool,
            realm: key.parse().unwrap(),
        }
        .run_pass()
        .await
        .unwrap();
        let conn = &mut db.connect().await;
        assert_eq!(
            count(
                conn,
                "start_sending_signal",
                &format!("collector_id = {own}")
            )
            .await,
            1,
            "{key}"
        );
        assert_eq!(
            count(conn, "start_sending_signal", "true").await,
            1,
            "{key}"
        );
        run_scanners(db, &vars, &Scan::ALL).await;
        assert_eq!(
            verify(db, key),
            Some(0),
            "{key}: only its own rows are left"
        );
        for scan in Scan::ALL {
            let name = scan.table().table;
            assert_eq!(count(conn, name, "true").await, 1, "{key}: {name}");
        }
    }
}
