//! Collector accounts on the real databases: `NeededCollector` plans them in the solver
//! database with the reference's deterministic IDs, `handle_pristine_collectors` asks the
//! accounting authority to create them, `ActivateCollector` records their account IDs.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, SmallInt, Text};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use swpt_trade::collectors::pristine::PristineCollectors;
use swpt_trade::consumer::Handlers;
use swpt_trade::db::{Database, PoolSettings, SolverPool, WorkerPool};
use swpt_trade::handlers;
use swpt_trade::messages::{ActivateCollector, IncomingMessage, NeededCollector};
use swpt_trade::sharding::i16_hash;

use crate::cli::run_binary;
use crate::handlers::count;
use crate::util::{TestDb, test_config};

/// The first collector IDs of debtor 666 in CPython's `random.Random(666)` sequence over the
/// default range: `[hex(r.randint(0x10000000000, 0x100000007ff)) for _ in range(3)]`.
const IDS_OF_666: [i64; 3] = [0x1000000074c, 0x10000000608, 0x100000006f3];

#[derive(QueryableByName, Debug, PartialEq)]
struct Collector {
    #[diesel(sql_type = BigInt)]
    debtor_id: i64,
    #[diesel(sql_type = BigInt)]
    collector_id: i64,
    #[diesel(sql_type = SmallInt)]
    collector_hash: i16,
    #[diesel(sql_type = Text)]
    account_id: String,
    #[diesel(sql_type = SmallInt)]
    status: i16,
}

async fn collectors(conn: &mut AsyncPgConnection) -> Vec<Collector> {
    diesel::sql_query(
        "SELECT debtor_id, collector_id, collector_hash, account_id, status \
         FROM collector_account ORDER BY debtor_id, collector_id",
    )
    .load(conn)
    .await
    .unwrap()
}

fn pristine(debtor_id: i64, collector_id: i64) -> Collector {
    Collector {
        debtor_id,
        collector_id,
        collector_hash: i16_hash(collector_id),
        account_id: String::new(),
        status: 0,
    }
}

struct Dbs {
    solver: TestDb,
    worker: TestDb,
}

impl Dbs {
    async fn new() -> Self {
        Self {
            solver: TestDb::migrated(Database::Solver).await,
            worker: TestDb::migrated(Database::Worker).await,
        }
    }

    fn context(&self, extra: &[(&str, &str)]) -> Handlers {
        let mut vars = vec![
            ("SOLVER_POSTGRES_URL", self.solver.url.as_str()),
            ("WORKER_POSTGRES_URL", self.worker.url.as_str()),
        ];
        vars.extend_from_slice(extra);
        Handlers::new(Arc::new(test_config(&vars)), "test").unwrap()
    }
}

async fn handle(conn: &mut AsyncPgConnection, context: &Handlers, m: IncomingMessage) {
    let handler = handlers::handler(&m);
    let now = Utc::now();
    conn.transaction(async |conn| handler.run(conn, context, now).await)
        .await
        .expect("handled");
}

fn needed(debtor_id: i64, ts: DateTime<Utc>) -> IncomingMessage {
    IncomingMessage::NeededCollector(NeededCollector { debtor_id, ts })
}

#[tokio::test]
async fn needed_collectors_are_planned_once_with_the_references_ids() {
    let dbs = Dbs::new().await;
    let context = dbs.context(&[("DEFAULT_NUMBER_OF_COLLECTOR_ACCOUNTS", "2")]);
    let worker = &mut dbs.worker.connect().await;
    let solver = &mut dbs.solver.connect().await;
    let ts = Utc::now();
    handle(worker, &context, needed(666, ts)).await;
    assert_eq!(
        collectors(solver).await,
        vec![pristine(666, IDS_OF_666[1]), pristine(666, IDS_OF_666[0])]
    );
    assert_eq!(
        count(worker, "recently_needed_collector WHERE debtor_id = 666").await,
        1
    );
    // Recently needed: nothing happens, even when a collector has gone.
    diesel::sql_query("DELETE FROM collector_account")
        .execute(solver)
        .await
        .unwrap();
    handle(worker, &context, needed(666, ts)).await;
    assert!(collectors(solver).await.is_empty());
}

#[tokio::test]
async fn a_disabled_collector_is_replaced_by_the_next_id_of_the_sequence() {
    let dbs = Dbs::new().await;
    let context = dbs.context(&[]);
    let worker = &mut dbs.worker.connect().await;
    let solver = &mut dbs.solver.connect().await;
    diesel::sql_query(format!(
        "INSERT INTO collector_account VALUES (666, {}, {}, 'x', 3, now())",
        IDS_OF_666[0],
        i16_hash(IDS_OF_666[0])
    ))
    .execute(solver)
    .await
    .unwrap();
    handle(worker, &context, needed(666, Utc::now())).await;
    let rows = collectors(solver).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], pristine(666, IDS_OF_666[1]));
    assert_eq!(rows[1].status, 3);
}

#[tokio::test]
async fn workers_racing_for_one_debtor_plan_the_same_collectors() {
    let dbs = Dbs::new().await;
    let context = dbs.context(&[("DEFAULT_NUMBER_OF_COLLECTOR_ACCOUNTS", "3")]);
    // Two workers (two worker databases would behave the same: the race is in the solver's).
    let other_worker = TestDb::migrated(Database::Worker).await;
    let mut first = dbs.worker.connect().await;
    let mut second = other_worker.connect().await;
    let ts = Utc::now();
    tokio::join!(
        handle(&mut first, &context, needed(666, ts)),
        handle(&mut second, &context, needed(666, ts)),
    );
    let solver = &mut dbs.solver.connect().await;
    let mut expected: Vec<Collector> = IDS_OF_666.iter().map(|&id| pristine(666, id)).collect();
    expected.sort_by_key(|c| c.collector_id);
    assert_eq!(collectors(solver).await, expected);
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Configure {
    #[diesel(sql_type = BigInt)]
    creditor_id: i64,
    #[diesel(sql_type = BigInt)]
    debtor_id: i64,
    #[diesel(sql_type = diesel::sql_types::Float4)]
    negligible_amount: f32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    config_flags: i32,
}

async fn configure_signals(conn: &mut AsyncPgConnection) -> Vec<Configure> {
    diesel::sql_query(
        "SELECT creditor_id, debtor_id, negligible_amount, config_flags \
         FROM configure_account_signal ORDER BY creditor_id",
    )
    .load(conn)
    .await
    .unwrap()
}

fn job(dbs: &Dbs, realm: &str, max_count: u32) -> PristineCollectors {
    PristineCollectors {
        solver: SolverPool::build(&dbs.solver.url, PoolSettings::new(2), "test").unwrap(),
        worker: WorkerPool::build(&dbs.worker.url, PoolSettings::new(2), "test").unwrap(),
        realm: realm.parse().unwrap(),
        max_count,
        threads: 2,
        max_postponement: Duration::from_secs(7 * 86_400),
    }
}

#[tokio::test]
async fn pristine_collectors_of_the_shard_are_requested_once() {
    let dbs = Dbs::new().await;
    let solver = &mut dbs.solver.connect().await;
    let worker = &mut dbs.worker.connect().await;
    // Five debtors' collectors: those of realm 0.# are this shard's.
    let context = dbs.context(&[]);
    for debtor_id in 1..=5 {
        handle(worker, &context, needed(debtor_id, Utc::now())).await;
    }
    let planned = collectors(solver).await;
    let realm: swpt_trade::sharding::ShardingRealm = "0.#".parse().unwrap();
    let mine: Vec<&Collector> = planned
        .iter()
        .filter(|c| realm.contains_id(c.collector_id))
        .collect();
    assert!(
        !mine.is_empty() && mine.len() < planned.len(),
        "a mixed set: {planned:?}"
    );

    // Batches of 1 row: the pass goes on while batches are full.
    let n = job(&dbs, "0.#", 1).run_pass().await.unwrap();
    assert_eq!(n, mine.len());
    let mut expected: Vec<Configure> = mine
        .iter()
        .map(|c| Configure {
            creditor_id: c.collector_id,
            debtor_id: c.debtor_id,
            negligible_amount: 1e30,
            config_flags: 0,
        })
        .collect();
    expected.sort_by_key(|c| c.creditor_id);
    assert_eq!(configure_signals(worker).await, expected);
    assert_eq!(
        count(worker, "needed_worker_account").await,
        mine.len() as i64
    );
    for c in collectors(solver).await {
        let requested = realm.contains_id(c.collector_id);
        assert_eq!(c.status, if requested { 1 } else { 0 }, "{c:?}");
    }
    // Nothing is pristine any more in this shard: a second pass sends nothing.
    assert_eq!(job(&dbs, "0.#", 100).run_pass().await.unwrap(), 0);
    assert_eq!(configure_signals(worker).await.len(), expected.len());
}

#[tokio::test]
async fn an_unanswered_request_is_sent_again_only_after_the_postponement() {
    let dbs = Dbs::new().await;
    let worker = &mut dbs.worker.connect().await;
    let solver = &mut dbs.solver.connect().await;
    let context = dbs.context(&[]);
    handle(worker, &context, needed(666, Utc::now())).await;
    assert_eq!(job(&dbs, "#", 10).run_pass().await.unwrap(), 1);
    // As if the solver's status change had been lost (a crash between the transactions).
    diesel::sql_query("UPDATE collector_account SET status = 0")
        .execute(solver)
        .await
        .unwrap();
    assert_eq!(job(&dbs, "#", 10).run_pass().await.unwrap(), 1);
    assert_eq!(configure_signals(worker).await.len(), 1, "not yet overdue");
    diesel::sql_query("UPDATE collector_account SET status = 0")
        .execute(solver)
        .await
        .unwrap();
    diesel::sql_query("UPDATE needed_worker_account SET configured_at = now() - interval '8 days'")
        .execute(worker)
        .await
        .unwrap();
    assert_eq!(job(&dbs, "#", 10).run_pass().await.unwrap(), 1);
    assert_eq!(
        configure_signals(worker).await.len(),
        2,
        "overdue: sent again"
    );
}

#[tokio::test]
async fn activate_collector_records_the_account_id() {
    let dbs = Dbs::new().await;
    let worker = &mut dbs.worker.connect().await;
    let solver = &mut dbs.solver.connect().await;
    let context = dbs.context(&[]);
    handle(worker, &context, needed(666, Utc::now())).await;
    let activate = |account_id: &str| {
        IncomingMessage::ActivateCollector(ActivateCollector {
            debtor_id: 666,
            creditor_id: IDS_OF_666[0],
            account_id: account_id.into(),
            ts: Utc::now(),
        })
    };
    handle(worker, &context, activate("acc-1")).await;
    let rows = collectors(solver).await;
    assert_eq!((rows[0].status, rows[0].account_id.as_str()), (2, "acc-1"));
    // Already active: a late or repeated message changes nothing.
    handle(worker, &context, activate("acc-2")).await;
    assert_eq!(collectors(solver).await[0].account_id, "acc-1");
}

#[tokio::test]
async fn the_command_runs_a_pass_and_fails_without_a_solver_database() {
    let dbs = Dbs::new().await;
    let vars = [
        ("SOLVER_POSTGRES_URL", dbs.solver.url.as_str()),
        ("WORKER_POSTGRES_URL", dbs.worker.url.as_str()),
    ];
    let out = run_binary(&["handle_pristine_collectors", "--quit-early"], &vars);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let unreachable = [
        (
            "SOLVER_POSTGRES_URL",
            "postgresql://postgres@127.0.0.1:1/nowhere",
        ),
        ("WORKER_POSTGRES_URL", dbs.worker.url.as_str()),
        ("APP_DB_ACQUIRE_TIMEOUT_SECONDS", "2"),
    ];
    let out = run_binary(
        &["handle_pristine_collectors", "--quit-early"],
        &unreachable,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = run_binary(&["handle_pristine_collectors", "--quit-early"], &vars[1..]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "SOLVER_POSTGRES_URL is required: {out:?}"
    );
}
