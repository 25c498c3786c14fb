//! Phase 2 → 3 of a turn through the solver's turn loop, on the real solver database: the
//! turn's currencies, the active collectors and the offers are read, solved, and the six result
//! tables are committed with the new phase (`RollTurns::advance_to_phase3`, what the `solver`
//! command runs).
//!
//! Run: `cargo bench --bench turn_phase3` (needs the local PostgreSQL, as `scripts/services.sh`
//! sets up; `TEST_DATABASE_URL` works as for the tests). `TURN_BENCH_SIZES=100000,1000000`
//! (the default) chooses the offer counts, `TURN_BENCH_MATCHER=greedy` (or `flow`) the matcher. For each size it prints the time of the phase
//! change, of the solver engine alone on the same input, the floor of writing the same rows
//! (`COPY FROM` of the six tables, with psql), and the peak memory of the process during the
//! phase change and during the engine alone.

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use swpt_trade::db::bulk::{Column, insert_all};
use swpt_trade::db::solver::turns as db;
use swpt_trade::db::{Database, PoolSettings, SolverPool, migrate};
use swpt_trade::offline::memory;
use swpt_trade::sharding::i16_hash;
use swpt_trade::solver::testgen::{GenParams, random_turn};
use swpt_trade::solver::{MatcherKind, TurnInput, solve_without_bound};
use swpt_trade::turns::solver::{RollTurns, TurnSettings};

const DB_NAME: &str = "swpt_bench_turn";
const RESULT_TABLES: [&str; 6] = [
    "creditor_taking",
    "collector_collecting",
    "collector_sending",
    "collector_receiving",
    "collector_dispatching",
    "creditor_giving",
];

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into())
}

fn db_url() -> String {
    let mut url = url::Url::parse(&admin_url()).unwrap();
    url.set_path(DB_NAME);
    url.into()
}

async fn admin(sql: &str) {
    let mut conn = AsyncPgConnection::establish(&admin_url()).await.unwrap();
    diesel::sql_query(sql).execute(&mut conn).await.unwrap();
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql).execute(conn).await.unwrap();
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([db_url().as_str(), "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Stores the turn's input as the workers would have: currencies, collectors, offers.
async fn store_input(conn: &mut AsyncPgConnection, input: &TurnInput) {
    let p = &input.params;
    exec(
        conn,
        &format!(
            "INSERT INTO turn VALUES ({}, now() - interval '1 hour', '{}', {}, {}, {}, 2, \
         now() - interval '1 second', NULL, now() + interval '30 days')",
            p.turn_id,
            p.base_debtor_info_locator,
            p.base_debtor_id,
            p.max_distance_to_base,
            p.min_trade_amount
        ),
    )
    .await;
    let names = [
        "turn_id",
        "debtor_info_locator",
        "debtor_id",
        "peg_debtor_info_locator",
        "peg_debtor_id",
        "peg_exchange_rate",
        "is_confirmed",
    ];
    insert_all(conn, "currency_info", &names, &input.currencies, |c| {
        vec![
            Column::I32(vec![p.turn_id; c.len()]),
            Column::Text(c.iter().map(|x| x.debtor_info_locator.clone()).collect()),
            Column::I64(c.iter().map(|x| x.debtor_id).collect()),
            Column::OptText(
                c.iter()
                    .map(|x| x.peg_debtor_info_locator.clone())
                    .collect(),
            ),
            Column::OptI64(c.iter().map(|x| x.peg_debtor_id).collect()),
            Column::OptF64(c.iter().map(|x| x.peg_exchange_rate).collect()),
            Column::Bool(c.iter().map(|x| x.is_confirmed).collect()),
        ]
    })
    .await
    .unwrap();
    let names = [
        "debtor_id",
        "collector_id",
        "collector_hash",
        "account_id",
        "status",
        "latest_status_change_at",
    ];
    insert_all(conn, "collector_account", &names, &input.collectors, |c| {
        vec![
            Column::I64(c.iter().map(|x| x.debtor_id).collect()),
            Column::I64(c.iter().map(|x| x.collector_id).collect()),
            Column::I16(c.iter().map(|x| i16_hash(x.collector_id)).collect()),
            Column::Text(c.iter().map(|x| format!("c{}", x.collector_id)).collect()),
            Column::I16(vec![2; c.len()]),
            Column::Timestamptz(vec![Utc::now(); c.len()]),
        ]
    })
    .await
    .unwrap();
    db::insert_sell_offers(conn, p.turn_id, &input.sell_offers)
        .await
        .unwrap();
    db::insert_buy_offers(conn, p.turn_id, &input.buy_offers)
        .await
        .unwrap();
    exec(conn, "ANALYZE").await;
}

/// The time `COPY FROM` takes to write the six tables' rows of the turn into empty copies.
fn copy_floor() -> Duration {
    let dir = std::env::temp_dir();
    let mut files = Vec::new();
    for table in RESULT_TABLES {
        let file = dir.join(format!("{DB_NAME}_{table}.copy"));
        psql(&format!("\\copy {table} TO '{}'", file.display()));
        psql(&format!(
            "CREATE TABLE floor_{table} (LIKE {table} INCLUDING ALL)"
        ));
        files.push((table, file));
    }
    let started = Instant::now();
    for (table, file) in &files {
        psql(&format!("\\copy floor_{table} FROM '{}'", file.display()));
    }
    let floor = started.elapsed();
    for (_, file) in files {
        let _ = std::fs::remove_file(file);
    }
    floor
}

/// The matcher of `TURN_BENCH_MATCHER` (`flow` or `greedy`; the default matcher otherwise).
fn bench_matcher() -> MatcherKind {
    std::env::var("TURN_BENCH_MATCHER")
        .ok()
        .and_then(|m| MatcherKind::parse(&m))
        .unwrap_or_default()
}

fn main() {
    // The turn loop's log line splits the phase change into loading, solving and committing.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .init();
    let sizes: Vec<usize> = std::env::var("TURN_BENCH_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for n in sizes {
        let input = random_turn(&GenParams::bench(n));
        memory::reset_peak();
        let base = memory::peak_bytes();
        let started = Instant::now();
        let alone = solve_without_bound(&input, bench_matcher().matcher().as_mut()).unwrap();
        let engine = started.elapsed();
        let engine_peak = memory::peak_bytes().saturating_sub(base);
        let rows: usize = [
            alone.rows.creditor_taking.len(),
            alone.rows.collector_collecting.len(),
            alone.rows.collector_sending.len(),
            alone.rows.collector_receiving.len(),
            alone.rows.collector_dispatching.len(),
            alone.rows.creditor_giving.len(),
        ]
        .iter()
        .sum();
        drop(alone);
        let (phase, phase_peak) = rt.block_on(async {
            admin(&format!("DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")).await;
            admin(&format!("CREATE DATABASE {DB_NAME}")).await;
            migrate::migrate(Database::Solver, &db_url()).await.unwrap();
            let mut conn = AsyncPgConnection::establish(&db_url()).await.unwrap();
            store_input(&mut conn, &input).await;
            let solver = RollTurns {
                pool: SolverPool::build(&db_url(), PoolSettings::new(4), "bench").unwrap(),
                settings: TurnSettings {
                    period: Duration::from_secs(86_400),
                    period_offset: Duration::ZERO,
                    phase1_duration: Duration::ZERO,
                    phase2_duration: Duration::ZERO,
                    max_commit_period: Duration::from_secs(30 * 86_400),
                    base_debtor_info_locator: input.params.base_debtor_info_locator.clone(),
                    base_debtor_id: input.params.base_debtor_id,
                    max_distance_to_base: input.params.max_distance_to_base,
                    min_trade_amount: input.params.min_trade_amount,
                    matcher: bench_matcher(),
                },
            };
            let turn = {
                let mut c = solver.pool.get().await.unwrap();
                db::unfinished_turns(&mut c).await.unwrap().remove(0)
            };
            memory::reset_peak();
            let base = memory::peak_bytes();
            let started = Instant::now();
            solver.advance_to_phase3(&turn).await.unwrap();
            let phase = started.elapsed();
            let peak = memory::peak_bytes().saturating_sub(base);
            (phase, peak)
        });
        let floor = copy_floor();
        println!(
            "turn_phase3 offers={n} result_rows={rows} phase_2_to_3={:.3}s engine_alone={:.3}s \
             copy_floor={:.3}s ratio_to_copy_floor={:.2} peak_phase={}MiB peak_engine={}MiB",
            phase.as_secs_f64(),
            engine.as_secs_f64(),
            floor.as_secs_f64(),
            phase.as_secs_f64() / floor.as_secs_f64().max(1e-9),
            phase_peak >> 20,
            engine_peak >> 20,
        );
        rt.block_on(admin(&format!(
            "DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"
        )));
    }
}
