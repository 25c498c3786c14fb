//! A whole turn on one solver database and two worker shards (`0.#` and `1.#`): each worker
//! sends its shard's debtor infos and offers, the solver solves, each worker copies only its
//! rows, and the turn is done only after both deleted theirs. Sub-phases interrupted between
//! their solver commit and their worker commit run again without duplicates.

use std::time::Duration;

use chrono::Utc;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use swpt_trade::consumer::Handlers;
use swpt_trade::db::{Database, PoolSettings, SolverPool, WorkerPool};
use swpt_trade::handlers;
use swpt_trade::messages::{AccountTransfer, IncomingMessage};
use swpt_trade::sharding::{ShardingRealm, i16_hash};
use swpt_trade::transfers::TransferNote;
use swpt_trade::turns::solver::RollTurns;
use swpt_trade::turns::worker::{RollWorkerTurns, WorkerTurnSettings};

use crate::handlers::count;

#[derive(diesel::QueryableByName)]
struct Taking {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    turn_id: i32,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    amount: i64,
}

/// Handles `m` on the worker database `db`, as the consumer does.
async fn handle(db: &TestDb, m: IncomingMessage) {
    let config = test_config(&[("WORKER_POSTGRES_URL", db.url.as_str())]);
    let context = Handlers::new(std::sync::Arc::new(config), "test").unwrap();
    let handler = handlers::handler(&m);
    db.connect()
        .await
        .transaction(async |conn| handler.run(conn, &context, Utc::now()).await)
        .await
        .expect("handled");
}
use crate::util::{TestDb, test_config};

const BASE: i64 = 666;
const OTHER: i64 = 101;
const BASE_LOCATOR: &str = "https://example.com/666";
const OTHER_LOCATOR: &str = "https://example.com/101";

fn realm(key: &str) -> ShardingRealm {
    key.parse().unwrap()
}

/// The first ID from `from` on that `key`'s shard owns.
fn id_in(key: &str, from: i64) -> i64 {
    (from..).find(|&id| realm(key).contains_id(id)).unwrap()
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

struct Network {
    solver_db: TestDb,
    shards: Vec<(String, TestDb)>,
    solver: RollTurns,
    workers: Vec<RollWorkerTurns>,
}

impl Network {
    async fn new() -> Self {
        let solver_db = TestDb::migrated(Database::Solver).await;
        let mut shards = Vec::new();
        for key in ["0.#", "1.#"] {
            shards.push((key.to_string(), TestDb::migrated(Database::Worker).await));
        }
        let solver = crate::sim::day_turns(&solver_db.url);
        let workers = shards
            .iter()
            .map(|(key, db)| RollWorkerTurns {
                solver: SolverPool::build(&solver_db.url, PoolSettings::new(2), "test").unwrap(),
                worker: WorkerPool::build(&db.url, PoolSettings::new(2), "test").unwrap(),
                realm: realm(key),
                settings: WorkerTurnSettings {
                    phase_cushion_period: Duration::from_secs(300),
                    collecting_slack: Duration::from_secs(60 * 86_400),
                    sending_slack: Duration::from_secs(150 * 86_400),
                    dispatching_slack: Duration::from_secs(180 * 86_400),
                },
            })
            .collect();
        Self {
            solver_db,
            shards,
            solver,
            workers,
        }
    }

    async fn workers_roll(&self) {
        for w in &self.workers {
            w.iteration().await.unwrap();
        }
    }

    async fn solver_conn(&self) -> AsyncPgConnection {
        self.solver_db.connect().await
    }

    async fn phase(&self) -> i64 {
        let conn = &mut self.solver_conn().await;
        for phase in 1..=4 {
            if count(conn, &format!("turn WHERE phase = {phase}")).await == 1 {
                return phase;
            }
        }
        panic!("no turn")
    }

    /// Makes the current phase's deadline pass.
    async fn deadline_passes(&self) {
        exec(
            &mut self.solver_conn().await,
            "UPDATE turn SET phase_deadline = now() - interval '1 second' WHERE phase < 3",
        )
        .await;
    }
}

/// The worker-side state both shards start from; each shard keeps only its part.
async fn seed_workers(net: &Network, a: i64, b: i64) {
    for (_, db) in &net.shards {
        let conn = &mut db.connect().await;
        exec(
            conn,
            &format!(
                "INSERT INTO debtor_info_document VALUES \
             ('{BASE_LOCATOR}', {BASE}, NULL, NULL, NULL, NULL, now()), \
             ('{OTHER_LOCATOR}', {OTHER}, '{BASE_LOCATOR}', {BASE}, 2.0, NULL, now())"
            ),
        )
        .await;
        exec(conn, &format!(
            "INSERT INTO debtor_locator_claim VALUES \
             ({BASE}, '{BASE_LOCATOR}', now(), now(), NULL), ({OTHER}, '{OTHER_LOCATOR}', now(), now(), NULL)"
        ))
        .await;
        // Creditor a sells 10 000 of the base and buys 5 000 of OTHER (worth 10 000 base);
        // creditor b sells 5 000 of OTHER and buys 10 000 of the base.
        for (creditor, debtor, principal, min, max, peg) in [
            (a, BASE, 10_000, 0, 0, "NULL, NULL"),
            (a, OTHER, 0, 5_000, 5_000, "666, 2.0"),
            (b, OTHER, 5_000, 0, 0, "666, 2.0"),
            (b, BASE, 0, 10_000, 10_000, "NULL, NULL"),
        ] {
            exec(conn, &format!(
                "INSERT INTO trading_policy VALUES ({creditor}, {debtor}, 1, now(), 'acc{creditor}', \
                 '2024-01-01', {principal}, 3, 1, now(), 'p', {min}, {max}, {peg}, 1, now(), 0, false)"
            ))
            .await;
        }
    }
}

#[tokio::test]
async fn a_turn_runs_through_two_worker_shards() {
    let net = Network::new().await;
    let (a, b) = (id_in("0.#", 1), id_in("1.#", 1));
    let base_collector = id_in("0.#", 5000);
    let other_collector = id_in("1.#", 5000);
    {
        let conn = &mut net.solver_conn().await;
        for (debtor, collector) in [(BASE, base_collector), (OTHER, other_collector)] {
            exec(conn, &format!(
                "INSERT INTO collector_account VALUES ({debtor}, {collector}, {}, 'c{collector}', 2, now())",
                i16_hash(collector)
            ))
            .await;
        }
    }
    seed_workers(&net, a, b).await;

    // Phase 1: each worker sends its shard's debtor infos and confirmations, once.
    net.solver.iteration().await.unwrap();
    net.workers_roll().await;
    {
        let conn = &mut net.solver_conn().await;
        assert_eq!(count(conn, "debtor_info").await, 2);
        assert_eq!(count(conn, "confirmed_debtor").await, 2);
    }
    // A crash after the solver commit, before the worker's: the sub-phase runs again.
    exec(
        &mut net.shards[0].1.connect().await,
        "UPDATE worker_turn SET worker_turn_subphase = 0",
    )
    .await;
    exec(
        &mut net.shards[1].1.connect().await,
        "UPDATE worker_turn SET worker_turn_subphase = 0",
    )
    .await;
    net.workers_roll().await;
    {
        let conn = &mut net.solver_conn().await;
        assert_eq!(count(conn, "debtor_info").await, 2, "no duplicates");
        for (_, db) in &net.shards {
            let w = &mut db.connect().await;
            assert_eq!(
                count(w, "worker_turn WHERE worker_turn_subphase = 10").await,
                1
            );
        }
    }

    // Phase 2: currencies; each worker makes candidate offers for its own creditor.
    net.deadline_passes().await;
    net.solver.iteration().await.unwrap();
    assert_eq!(net.phase().await, 2);
    net.workers_roll().await;
    for ((key, db), creditor) in net.shards.iter().zip([a, b]) {
        let w = &mut db.connect().await;
        assert_eq!(
            count(
                w,
                &format!("candidate_offer_signal WHERE creditor_id = {creditor}")
            )
            .await,
            2,
            "{key}"
        );
        assert_eq!(
            count(w, "candidate_offer_signal").await,
            2,
            "{key}: only its creditor"
        );
        assert_eq!(count(w, "active_collector").await, 2);
        assert_eq!(count(w, "needed_collector_signal").await, 0);
        assert_eq!(
            count(
                w,
                "worker_turn WHERE phase = 2 AND worker_turn_subphase = 5"
            )
            .await,
            1
        );
    }
    // The accounting authorities prepared the locks (what CandidateOffer starts).
    for ((_, db), (creditor, sells, buys)) in
        net.shards.iter().zip([(a, BASE, OTHER), (b, OTHER, BASE)])
    {
        let w = &mut db.connect().await;
        let (sell_amount, buy_amount, sell_collector) = if creditor == a {
            (10_000, 5_000, base_collector)
        } else {
            (5_000, 10_000, other_collector)
        };
        exec(w, &format!(
            "INSERT INTO account_lock (creditor_id, debtor_id, turn_id, collector_id, initiated_at, \
             amount, transfer_id, has_been_revised) VALUES \
             ({creditor}, {sells}, (SELECT turn_id FROM worker_turn), {sell_collector}, now(), -{sell_amount}, 1, false), \
             ({creditor}, {buys}, (SELECT turn_id FROM worker_turn), {sell_collector}, now(), {buy_amount}, 2, false)"
        ))
        .await;
    }
    // 2/5 waits until the deadline is less than the cushion away.
    net.workers_roll().await;
    {
        let conn = &mut net.solver_conn().await;
        assert_eq!(count(conn, "sell_offer").await, 0, "not before the cushion");
        exec(
            conn,
            "UPDATE turn SET phase_deadline = now() + interval '1 minute'",
        )
        .await;
    }
    for (_, db) in &net.shards {
        exec(
            &mut db.connect().await,
            "UPDATE worker_turn SET phase_deadline = now() + interval '1 minute', \
             started_at = now() - interval '1 hour'",
        )
        .await;
    }
    net.workers_roll().await;
    {
        let conn = &mut net.solver_conn().await;
        assert_eq!(count(conn, "sell_offer").await, 2);
        assert_eq!(count(conn, "buy_offer").await, 2);
    }
    // A crash after 2/5's solver commit, before the worker's: run again, no duplicates.
    for (_, db) in &net.shards {
        exec(
            &mut db.connect().await,
            "UPDATE worker_turn SET worker_turn_subphase = 5",
        )
        .await;
    }
    net.workers_roll().await;
    {
        let conn = &mut net.solver_conn().await;
        assert_eq!(count(conn, "sell_offer").await, 2, "no duplicates");
        assert_eq!(count(conn, "buy_offer").await, 2, "no duplicates");
        for (_, db) in &net.shards {
            let w = &mut db.connect().await;
            assert_eq!(
                count(w, "worker_turn WHERE worker_turn_subphase = 10").await,
                1
            );
        }
    }

    // Phase 3: solved; each worker copies its shard's rows, then deletes them.
    net.deadline_passes().await;
    net.solver.iteration().await.unwrap();
    assert_eq!(net.phase().await, 3);
    {
        let conn = &mut net.solver_conn().await;
        assert_eq!(count(conn, "creditor_taking").await, 2);
        assert_eq!(count(conn, "creditor_giving").await, 2);
    }
    // The seller's payment reaches the collector's shard before that shard copied the plans
    // (shards copy them independently): it is kept, and applied by the copy.
    let turn_id = {
        let conn = &mut net.solver_conn().await;
        diesel::sql_query(format!(
            "SELECT turn_id, amount FROM creditor_taking WHERE creditor_id = {a} AND debtor_id = {BASE}"
        ))
        .get_result::<Taking>(conn)
        .await
        .unwrap()
    };
    let early = AccountTransfer {
        debtor_id: BASE,
        creditor_id: base_collector,
        creation_date: chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        transfer_number: 1,
        coordinator_type: "agent".into(),
        sender: "s".into(),
        recipient: "r".into(),
        acquired_amount: turn_id.amount,
        transfer_note_format: "-cXchge".into(),
        transfer_note: TransferNote::collecting(turn_id.turn_id, base_collector, a).to_string(),
        committed_at: Utc::now(),
        principal: turn_id.amount,
        previous_transfer_number: 0,
        ts: Utc::now(),
    };
    for _ in 0..2 {
        handle(&net.shards[0].1, early.clone().into()).await;
    }
    assert_eq!(
        count(&mut net.shards[0].1.connect().await, "early_turn_transfer").await,
        1
    );
    net.workers_roll().await; // mirror phase 3 and run 3/0
    {
        let w = &mut net.shards[0].1.connect().await;
        assert_eq!(count(w, "early_turn_transfer").await, 0, "applied");
        assert_eq!(
            count(
                w,
                &format!("worker_collecting WHERE creditor_id = {a} AND collected")
            )
            .await,
            1,
            "the early payment counts as collected"
        );
    }
    // Once the plans are copied, a repeated payment is not kept again.
    handle(&net.shards[0].1, early.into()).await;
    assert_eq!(
        count(&mut net.shards[0].1.connect().await, "early_turn_transfer").await,
        0
    );
    for ((key, db), creditor) in net.shards.iter().zip([a, b]) {
        let w = &mut db.connect().await;
        assert_eq!(
            count(
                w,
                &format!("creditor_participation WHERE creditor_id = {creditor}")
            )
            .await,
            2,
            "{key}"
        );
        assert_eq!(
            count(w, "creditor_participation").await,
            2,
            "{key}: only its creditor"
        );
        assert_eq!(count(w, "worker_collecting").await, 1, "{key}");
        assert_eq!(count(w, "worker_dispatching").await, 1, "{key}");
        assert_eq!(count(w, "dispatching_status").await, 1, "{key}");
        assert_eq!(count(w, "revise_account_lock_signal").await, 2, "{key}");
    }
    // Only the first shard has deleted its rows: the turn is not done.
    net.workers[0].iteration().await.unwrap();
    net.solver.iteration().await.unwrap();
    assert_eq!(net.phase().await, 3);
    {
        let conn = &mut net.solver_conn().await;
        assert_eq!(count(conn, "creditor_taking").await, 1);
    }
    // A crash after 3/5's solver commit, before the worker's: running it again is harmless.
    exec(
        &mut net.shards[0].1.connect().await,
        "UPDATE worker_turn SET worker_turn_subphase = 5",
    )
    .await;
    net.workers[0].iteration().await.unwrap();
    net.workers[1].iteration().await.unwrap();
    net.solver.iteration().await.unwrap();
    assert_eq!(net.phase().await, 4);
    // Phase 4 is phase 3 for the workers: nothing more to do.
    net.workers_roll().await;
    for (_, db) in &net.shards {
        let w = &mut db.connect().await;
        assert_eq!(
            count(
                w,
                "worker_turn WHERE phase = 3 AND worker_turn_subphase = 10"
            )
            .await,
            1
        );
        assert_eq!(count(w, "creditor_participation").await, 2, "copied once");
    }
}
