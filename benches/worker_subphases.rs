//! A worker's two heaviest turn sub-phases on real databases, through
//! `RollWorkerTurns::iteration` (what `roll_worker_turns` runs):
//!
//! - 2/0 with N trading policies: the policies are read in pages, bid, and become candidate
//!   offers (N/2 sell and N/2 buy, over 100 currencies pegged to the base);
//! - 3/0 with N result rows of the shard: N/4 takings and collectings, N/4 givings and
//!   dispatchings, copied into the worker's plans with their dispatching statuses, and N/2
//!   account locks revised.
//!
//! Run: `cargo bench --bench worker_subphases` (needs the local PostgreSQL, as
//! `scripts/services.sh` sets up; `TEST_DATABASE_URL` works as for the tests).
//! `WORKER_BENCH_SIZES=100000,1000000` (the default) chooses N. For each size it prints the
//! time of each sub-phase and its time per row, so that linear scaling shows as a constant.

use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use swpt_trade::db::{Database, PoolSettings, SolverPool, WorkerPool, migrate};
use swpt_trade::turns::worker::{RollWorkerTurns, WorkerTurnSettings};

const SOLVER_DB: &str = "swpt_bench_subphases_solver";
const WORKER_DB: &str = "swpt_bench_subphases_worker";
const BASE: i64 = 1;
const CURRENCIES: i64 = 100;

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into())
}

fn db_url(name: &str) -> String {
    let mut url = url::Url::parse(&admin_url()).unwrap();
    url.set_path(name);
    url.into()
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn fresh(name: &str, db: Database) -> AsyncPgConnection {
    let mut admin = AsyncPgConnection::establish(&admin_url()).await.unwrap();
    exec(
        &mut admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await;
    exec(&mut admin, &format!("CREATE DATABASE {name}")).await;
    migrate::migrate(db, &db_url(name)).await.unwrap();
    AsyncPgConnection::establish(&db_url(name)).await.unwrap()
}

fn locator(debtor_id: i64) -> String {
    format!("https://example.com/{debtor_id}")
}

/// A solver turn in phase 2 with 100 confirmed currencies (1 is the base, the others pegged
/// to it 1:1), each with an active collector; and N trading policies on the worker: creditor
/// c sells 1000 tokens of currency 1 + c mod 100 and buys 1000 of the next one, both pegged
/// to the base 1:1 as the creditor sees it.
async fn setup_phase2(solver: &mut AsyncPgConnection, worker: &mut AsyncPgConnection, n: i64) {
    exec(
        solver,
        &format!(
            "INSERT INTO turn VALUES (1, now() - interval '1 hour', '{}', {BASE}, 10, 1, 2, \
             now() + interval '1 hour', NULL, now() + interval '30 days')",
            locator(BASE)
        ),
    )
    .await;
    exec(
        solver,
        &format!(
            "INSERT INTO currency_info \
             SELECT 1, 'https://example.com/' || d, d, \
                 CASE WHEN d = {BASE} THEN NULL ELSE 'https://example.com/{BASE}' END, \
                 CASE WHEN d = {BASE} THEN NULL ELSE {BASE} END, \
                 CASE WHEN d = {BASE} THEN NULL ELSE 1.0 END, true \
             FROM generate_series(1, {CURRENCIES}) d"
        ),
    )
    .await;
    exec(
        solver,
        &format!(
            "INSERT INTO collector_account \
             SELECT d, 1000000 + d, 0, 'collector' || d, 2, now() \
             FROM generate_series(1, {CURRENCIES}) d"
        ),
    )
    .await;
    exec(
        worker,
        &format!(
            "INSERT INTO trading_policy (creditor_id, debtor_id, latest_ledger_update_id, \
             latest_ledger_update_ts, account_id, account_id_is_obsolete, creation_date, \
             principal, last_transfer_number, latest_policy_update_id, latest_policy_update_ts, \
             policy_name, min_principal, max_principal, peg_debtor_id, peg_exchange_rate, \
             latest_flags_update_id, latest_flags_update_ts, config_flags) \
             SELECT i / 2, d, 1, now(), 'account' || i, false, '2024-01-01', \
                 CASE WHEN i % 2 = 0 THEN 1000 ELSE 0 END, 1, 1, now(), 'conservative', \
                 CASE WHEN i % 2 = 0 THEN 0 ELSE 1000 END, \
                 CASE WHEN i % 2 = 0 THEN 0 ELSE 1000 END, \
                 CASE WHEN d = {BASE} THEN NULL ELSE {BASE} END, \
                 CASE WHEN d = {BASE} THEN NULL ELSE 1.0 END, 1, now(), 0 \
             FROM generate_series(0, {n} - 1) i, \
                 LATERAL (SELECT 1 + (i / 2 + i % 2) % {CURRENCIES} AS d) c"
        ),
    )
    .await;
    exec(worker, "ANALYZE").await;
}

/// The turn solved: N/4 takings (with their collectings) and N/4 givings (with their
/// dispatchings) for the creditors of the policies, all with collector 1000000 + currency,
/// and the account locks of those creditors.
async fn setup_phase3(solver: &mut AsyncPgConnection, worker: &mut AsyncPgConnection, n: i64) {
    let quarter = n / 4;
    exec(
        solver,
        "UPDATE turn SET phase = 3, phase_deadline = NULL, collection_started_at = now()",
    )
    .await;
    for (table, columns, first) in [
        (
            "creditor_taking",
            "1, i, 1 + i % 100, 0, 1000, 1000000 + 1 + i % 100",
            0,
        ),
        (
            "collector_collecting",
            "1, 1 + i % 100, i, 1000, 1000000 + 1 + i % 100, 0",
            0,
        ),
        (
            "creditor_giving",
            "1, i, 1 + i % 100, 0, 1000, 1000000 + 1 + i % 100",
            1,
        ),
        (
            "collector_dispatching",
            "1, 1 + i % 100, i, 1000, 1000000 + 1 + i % 100, 0",
            1,
        ),
    ] {
        exec(
            solver,
            &format!(
                "INSERT INTO {table} SELECT {columns} \
                 FROM generate_series(0, {quarter} - 1) k, LATERAL (SELECT 2 * k + {first} AS i) x"
            ),
        )
        .await;
    }
    exec(
        worker,
        &format!(
            "INSERT INTO account_lock (creditor_id, debtor_id, turn_id, collector_id, \
             initiated_at, coordinator_request_id, amount, transfer_id, has_been_revised) \
             SELECT i, 1 + i % 100, 1, 1000000 + 1 + i % 100, now(), i, \
                 CASE WHEN i % 2 = 0 THEN -1000 ELSE 1000 END, i, false \
             FROM generate_series(0, 2 * {quarter} - 1) i"
        ),
    )
    .await;
    exec(solver, "ANALYZE").await;
    exec(worker, "ANALYZE").await;
}

async fn count(conn: &mut AsyncPgConnection, table: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let c: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result(conn)
        .await
        .unwrap();
    c.n
}

async fn run(n: i64) {
    let mut solver = fresh(SOLVER_DB, Database::Solver).await;
    let mut worker = fresh(WORKER_DB, Database::Worker).await;
    setup_phase2(&mut solver, &mut worker, n).await;
    let roll = RollWorkerTurns {
        solver: SolverPool::build(&db_url(SOLVER_DB), PoolSettings::new(2), "bench").unwrap(),
        worker: WorkerPool::build(&db_url(WORKER_DB), PoolSettings::new(2), "bench").unwrap(),
        realm: "#".parse().unwrap(),
        settings: WorkerTurnSettings {
            phase_cushion_period: Duration::from_secs(60),
            collecting_slack: Duration::from_secs(86_400),
            sending_slack: Duration::from_secs(86_400),
            dispatching_slack: Duration::from_secs(86_400),
        },
    };
    let started = Instant::now();
    roll.iteration().await.unwrap(); // mirrors the turn and runs 2/0
    let phase2 = started.elapsed();
    let offers = count(&mut worker, "candidate_offer_signal").await;
    assert_eq!(offers, n, "every policy makes a candidate offer");

    setup_phase3(&mut solver, &mut worker, n).await;
    let started = Instant::now();
    roll.iteration().await.unwrap(); // mirrors phase 3 and runs 3/0
    let phase3 = started.elapsed();
    let plans = count(&mut worker, "worker_collecting").await
        + count(&mut worker, "worker_dispatching").await;
    assert_eq!(plans, n / 2, "every taking and giving is copied");
    let revisions = count(&mut worker, "revise_account_lock_signal").await;
    assert_eq!(revisions, n / 2);
    println!(
        "worker_subphases n={n} phase_2_0={:.3}s ({:.2}us/policy) phase_3_0={:.3}s \
         ({:.2}us/result row, {} plan rows, {revisions} lock revisions)",
        phase2.as_secs_f64(),
        phase2.as_secs_f64() * 1e6 / n as f64,
        phase3.as_secs_f64(),
        phase3.as_secs_f64() * 1e6 / n as f64,
        plans,
    );
    drop((solver, worker));
    let mut admin = AsyncPgConnection::establish(&admin_url()).await.unwrap();
    for name in [SOLVER_DB, WORKER_DB] {
        exec(
            &mut admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await;
    }
}

fn main() {
    let sizes: Vec<i64> = std::env::var("WORKER_BENCH_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for n in sizes {
        rt.block_on(run(n));
    }
}
