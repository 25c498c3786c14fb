//! The solver's turn loop on a real solver database: a turn starts on schedule, gets its
//! currencies in phase 2, is solved into the six result tables in phase 3, and is done (phase 4)
//! once the workers took their rows.

use std::time::Duration;

use chrono::Utc;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Integer, SmallInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use swpt_trade::db::solver::turns as db;
use swpt_trade::db::{Database, PoolSettings, SolverPool};
use swpt_trade::sharding::i16_hash;
use swpt_trade::solver::{
    BuyOffer, CollectorAccount, CurrencyInfo, SellOffer, TurnInput, TurnParams,
};
use swpt_trade::turns::schedule::epoch;
use swpt_trade::turns::solver::{RollTurns, TurnSettings};

use crate::handlers::count;
use crate::util::TestDb;

const BASE: i64 = 666;
const LOCATOR: &str = "https://example.com/666";

/// Settings under which a turn is due now (a starting point was just now) and phases 1 and 2
/// end at once.
fn settings() -> TurnSettings {
    let period = Duration::from_secs(86_400);
    let since_epoch = (Utc::now() - epoch()).to_std().unwrap();
    let offset = Duration::from_micros((since_epoch.as_micros() % period.as_micros()) as u64);
    TurnSettings {
        period,
        period_offset: offset,
        phase1_duration: Duration::ZERO,
        phase2_duration: Duration::ZERO,
        max_commit_period: Duration::from_secs(30 * 86_400),
        base_debtor_info_locator: LOCATOR.into(),
        base_debtor_id: BASE,
        max_distance_to_base: 10,
        min_trade_amount: 1000,
        matcher: Default::default(),
    }
}

fn solver(db: &TestDb) -> RollTurns {
    RollTurns {
        pool: SolverPool::build(&db.url, PoolSettings::new(4), "test").unwrap(),
        settings: settings(),
    }
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql).execute(conn).await.unwrap();
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Phase {
    #[diesel(sql_type = Integer)]
    turn_id: i32,
    #[diesel(sql_type = SmallInt)]
    phase: i16,
}

async fn turns(conn: &mut AsyncPgConnection) -> Vec<Phase> {
    diesel::sql_query("SELECT turn_id, phase FROM turn ORDER BY turn_id")
        .load(conn)
        .await
        .unwrap()
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Currency {
    #[diesel(sql_type = Text)]
    debtor_info_locator: String,
    #[diesel(sql_type = BigInt)]
    debtor_id: i64,
    #[diesel(sql_type = Bool)]
    is_confirmed: bool,
}

/// Three currencies: the base, and two pegged to it (one of them unconfirmed: its debtor
/// confirmed another locator); all with an active collector.
async fn phase1_inputs(conn: &mut AsyncPgConnection, turn_id: i32) {
    for (debtor, collector) in [(BASE, 1001), (101, 1011), (102, 1021)] {
        exec(
            conn,
            &format!(
                "INSERT INTO collector_account VALUES ({debtor}, {collector}, {}, 'acc{collector}', 2, now())",
                i16_hash(collector)
            ),
        )
        .await;
    }
    exec(
        conn,
        &format!(
            "INSERT INTO debtor_info VALUES \
         ({turn_id}, '{LOCATOR}', {BASE}, NULL, NULL, NULL), \
         ({turn_id}, 'https://example.com/101', 101, '{LOCATOR}', {BASE}, 2.0), \
         ({turn_id}, 'https://example.com/102', 102, '{LOCATOR}', {BASE}, 0.5)"
        ),
    )
    .await;
    exec(
        conn,
        &format!(
            "INSERT INTO confirmed_debtor VALUES \
         ({turn_id}, {BASE}, '{LOCATOR}'), ({turn_id}, 101, 'https://example.com/101'), \
         ({turn_id}, 102, 'https://example.com/other')"
        ),
    )
    .await;
}

#[tokio::test]
async fn a_turn_goes_from_start_to_done() {
    let db = TestDb::migrated(Database::Solver).await;
    let conn = &mut db.connect().await;
    let solver = solver(&db);

    // Phase 1: a new turn (nothing advances in the iteration that creates it).
    solver.iteration().await.unwrap();
    let started = turns(conn).await;
    assert_eq!(started.len(), 1);
    let turn_id = started[0].turn_id;
    assert_eq!(started[0].phase, 1);
    // No second turn while this one is unfinished.
    phase1_inputs(conn, turn_id).await;

    // Phase 2: currency_info from debtor_info + confirmed_debtor; the inputs are gone.
    solver.iteration().await.unwrap();
    assert_eq!(turns(conn).await, vec![Phase { turn_id, phase: 2 }]);
    let currencies: Vec<Currency> = diesel::sql_query(
        "SELECT debtor_info_locator, debtor_id, is_confirmed FROM currency_info ORDER BY debtor_id",
    )
    .load(conn)
    .await
    .unwrap();
    assert_eq!(
        currencies,
        vec![
            Currency {
                debtor_info_locator: "https://example.com/101".into(),
                debtor_id: 101,
                is_confirmed: true
            },
            Currency {
                debtor_info_locator: "https://example.com/102".into(),
                debtor_id: 102,
                is_confirmed: false
            },
            Currency {
                debtor_info_locator: LOCATOR.into(),
                debtor_id: BASE,
                is_confirmed: true
            },
        ]
    );
    assert_eq!(count(conn, "debtor_info").await, 0);
    assert_eq!(count(conn, "confirmed_debtor").await, 0);

    // Offers: creditor 1 sells 666 and buys 101; creditor 2 sells 101 and buys 666.
    exec(conn, &format!(
        "INSERT INTO sell_offer VALUES ({turn_id}, 1, {BASE}, 10000, 1001), ({turn_id}, 2, 101, 3000, 1011)"
    ))
    .await;
    exec(
        conn,
        &format!(
            "INSERT INTO buy_offer VALUES ({turn_id}, 1, 101, 5000), ({turn_id}, 2, {BASE}, 8000)"
        ),
    )
    .await;
    let expected = swpt_trade::solver::solve(&TurnInput {
        params: TurnParams {
            turn_id,
            base_debtor_info_locator: LOCATOR.into(),
            base_debtor_id: BASE,
            max_distance_to_base: 10,
            min_trade_amount: 1000,
        },
        currencies: vec![
            CurrencyInfo {
                debtor_info_locator: LOCATOR.into(),
                debtor_id: BASE,
                peg_debtor_info_locator: None,
                peg_debtor_id: None,
                peg_exchange_rate: None,
                is_confirmed: true,
            },
            CurrencyInfo {
                debtor_info_locator: "https://example.com/101".into(),
                debtor_id: 101,
                peg_debtor_info_locator: Some(LOCATOR.into()),
                peg_debtor_id: Some(BASE),
                peg_exchange_rate: Some(2.0),
                is_confirmed: true,
            },
            CurrencyInfo {
                debtor_info_locator: "https://example.com/102".into(),
                debtor_id: 102,
                peg_debtor_info_locator: Some(LOCATOR.into()),
                peg_debtor_id: Some(BASE),
                peg_exchange_rate: Some(0.5),
                is_confirmed: false,
            },
        ],
        collectors: vec![
            CollectorAccount {
                debtor_id: BASE,
                collector_id: 1001,
            },
            CollectorAccount {
                debtor_id: 101,
                collector_id: 1011,
            },
            CollectorAccount {
                debtor_id: 102,
                collector_id: 1021,
            },
        ],
        sell_offers: vec![
            SellOffer {
                creditor_id: 1,
                debtor_id: BASE,
                amount: 10000,
                collector_id: 1001,
            },
            SellOffer {
                creditor_id: 2,
                debtor_id: 101,
                amount: 3000,
                collector_id: 1011,
            },
        ],
        buy_offers: vec![
            BuyOffer {
                creditor_id: 1,
                debtor_id: 101,
                amount: 5000,
            },
            BuyOffer {
                creditor_id: 2,
                debtor_id: BASE,
                amount: 8000,
            },
        ],
    })
    .unwrap();
    assert!(
        !expected.rows.creditor_taking.is_empty(),
        "the offers make a cycle"
    );

    // Phase 3: the six result tables are the engine's output; the phase-2 data is gone.
    solver.iteration().await.unwrap();
    assert_eq!(turns(conn).await, vec![Phase { turn_id, phase: 3 }]);
    let stored = result_rows(conn).await;
    assert_eq!(stored, engine_rows(&expected.rows));
    for table in ["currency_info", "sell_offer", "buy_offer"] {
        assert_eq!(count(conn, table).await, 0, "{table}");
    }
    let collection: Vec<Phase> = diesel::sql_query(
        "SELECT turn_id, phase FROM turn \
         WHERE collection_started_at BETWEEN now() - interval '1 minute' AND now() \
         AND collection_deadline > now() + interval '29 days' AND phase_deadline IS NULL",
    )
    .load(conn)
    .await
    .unwrap();
    assert_eq!(collection.len(), 1);

    // Not done while the workers have result rows to take; done once they took them.
    solver.iteration().await.unwrap();
    assert_eq!(turns(conn).await[0].phase, 3);
    for table in [
        "creditor_taking",
        "collector_collecting",
        "collector_sending",
        "collector_receiving",
        "collector_dispatching",
        "creditor_giving",
    ] {
        exec(conn, &format!("DELETE FROM {table}")).await;
    }
    solver.iteration().await.unwrap();
    assert_eq!(turns(conn).await[0].phase, 4);
}

#[tokio::test]
async fn a_result_computed_for_a_turn_advanced_elsewhere_is_discarded() {
    let db = TestDb::migrated(Database::Solver).await;
    let conn = &mut db.connect().await;
    let solver = solver(&db);
    solver.iteration().await.unwrap();
    let turn_id = turns(conn).await[0].turn_id;
    phase1_inputs(conn, turn_id).await;
    solver.iteration().await.unwrap();
    exec(conn, &format!(
        "INSERT INTO sell_offer VALUES ({turn_id}, 1, {BASE}, 10000, 1001), ({turn_id}, 2, 101, 3000, 1011)"
    ))
    .await;
    exec(
        conn,
        &format!(
            "INSERT INTO buy_offer VALUES ({turn_id}, 1, 101, 5000), ({turn_id}, 2, {BASE}, 8000)"
        ),
    )
    .await;
    let mut db_conn = solver.pool.get().await.unwrap();
    let turn = db::unfinished_turns(&mut db_conn).await.unwrap().remove(0);
    // Another solver takes the turn to phase 3 first.
    exec(
        conn,
        &format!("UPDATE turn SET phase = 3, phase_deadline = NULL, collection_started_at = now() WHERE turn_id = {turn_id}"),
    )
    .await;
    assert!(
        !solver.advance_to_phase3(&turn).await.unwrap(),
        "the turn was advanced elsewhere"
    );
    assert_eq!(count(conn, "creditor_taking").await, 0);
    assert_eq!(count(conn, "sell_offer").await, 2, "nothing was committed");
}

#[tokio::test]
async fn no_turn_starts_outside_the_first_half_of_a_period() {
    let db = TestDb::migrated(Database::Solver).await;
    let conn = &mut db.connect().await;
    let mut solver = solver(&db);
    // The starting point was 13 hours ago: in the second half of the day.
    let day = Duration::from_secs(86_400);
    let shifted = (solver.settings.period_offset + Duration::from_secs(11 * 3600)).as_micros()
        % day.as_micros();
    solver.settings.period_offset = Duration::from_micros(shifted as u64);
    solver.iteration().await.unwrap();
    assert!(turns(conn).await.is_empty());
    solver.settings.period = Duration::ZERO;
    solver.iteration().await.unwrap();
    assert!(turns(conn).await.is_empty());
}

#[derive(QueryableByName, Debug, PartialEq, Clone, Copy)]
struct Row6 {
    #[diesel(sql_type = BigInt)]
    a: i64,
    #[diesel(sql_type = BigInt)]
    b: i64,
    #[diesel(sql_type = BigInt)]
    c: i64,
    #[diesel(sql_type = BigInt)]
    d: i64,
    #[diesel(sql_type = BigInt)]
    e: i64,
    #[diesel(sql_type = BigInt)]
    f: i64,
}

/// Every result table as rows of six integers in column order, sorted.
async fn result_rows(conn: &mut AsyncPgConnection) -> Vec<Vec<Row6>> {
    let mut all = Vec::new();
    for (table, columns) in RESULT_COLUMNS {
        let select: Vec<String> = columns
            .iter()
            .zip(["a", "b", "c", "d", "e", "f"])
            .map(|(c, alias)| format!("{c}::int8 AS {alias}"))
            .collect();
        let rows: Vec<Row6> = diesel::sql_query(format!(
            "SELECT {} FROM {table} ORDER BY 1, 2, 3, 4, 5, 6",
            select.join(", ")
        ))
        .load(conn)
        .await
        .unwrap();
        all.push(rows);
    }
    all
}

const RESULT_COLUMNS: [(&str, [&str; 6]); 6] = [
    (
        "creditor_taking",
        [
            "turn_id",
            "creditor_id",
            "debtor_id",
            "creditor_hash",
            "amount",
            "collector_id",
        ],
    ),
    (
        "collector_collecting",
        [
            "turn_id",
            "debtor_id",
            "creditor_id",
            "amount",
            "collector_id",
            "collector_hash",
        ],
    ),
    (
        "collector_sending",
        [
            "turn_id",
            "debtor_id",
            "from_collector_id",
            "to_collector_id",
            "from_collector_hash",
            "amount",
        ],
    ),
    (
        "collector_receiving",
        [
            "turn_id",
            "debtor_id",
            "to_collector_id",
            "from_collector_id",
            "to_collector_hash",
            "amount",
        ],
    ),
    (
        "collector_dispatching",
        [
            "turn_id",
            "debtor_id",
            "creditor_id",
            "amount",
            "collector_id",
            "collector_hash",
        ],
    ),
    (
        "creditor_giving",
        [
            "turn_id",
            "creditor_id",
            "debtor_id",
            "creditor_hash",
            "amount",
            "collector_id",
        ],
    ),
];

/// The engine's rows in the same shape as [`result_rows`].
fn engine_rows(rows: &swpt_trade::solver::ResultRows) -> Vec<Vec<Row6>> {
    let r = |v: [i64; 6]| Row6 {
        a: v[0],
        b: v[1],
        c: v[2],
        d: v[3],
        e: v[4],
        f: v[5],
    };
    let mut all = vec![
        rows.creditor_taking
            .iter()
            .map(|x| {
                r([
                    x.turn_id.into(),
                    x.creditor_id,
                    x.debtor_id,
                    x.creditor_hash.into(),
                    x.amount,
                    x.collector_id,
                ])
            })
            .collect::<Vec<_>>(),
        rows.collector_collecting
            .iter()
            .map(|x| {
                r([
                    x.turn_id.into(),
                    x.debtor_id,
                    x.creditor_id,
                    x.amount,
                    x.collector_id,
                    x.collector_hash.into(),
                ])
            })
            .collect(),
        rows.collector_sending
            .iter()
            .map(|x| {
                r([
                    x.turn_id.into(),
                    x.debtor_id,
                    x.from_collector_id,
                    x.to_collector_id,
                    x.from_collector_hash.into(),
                    x.amount,
                ])
            })
            .collect(),
        rows.collector_receiving
            .iter()
            .map(|x| {
                r([
                    x.turn_id.into(),
                    x.debtor_id,
                    x.to_collector_id,
                    x.from_collector_id,
                    x.to_collector_hash.into(),
                    x.amount,
                ])
            })
            .collect(),
        rows.collector_dispatching
            .iter()
            .map(|x| {
                r([
                    x.turn_id.into(),
                    x.debtor_id,
                    x.creditor_id,
                    x.amount,
                    x.collector_id,
                    x.collector_hash.into(),
                ])
            })
            .collect(),
        rows.creditor_giving
            .iter()
            .map(|x| {
                r([
                    x.turn_id.into(),
                    x.creditor_id,
                    x.debtor_id,
                    x.creditor_hash.into(),
                    x.amount,
                    x.collector_id,
                ])
            })
            .collect(),
    ];
    for t in &mut all {
        t.sort_by_key(|x| (x.a, x.b, x.c, x.d, x.e, x.f));
    }
    all
}

#[tokio::test]
async fn the_roll_turns_command_starts_a_turn_and_the_solver_needs_its_settings() {
    let db = TestDb::migrated(Database::Solver).await;
    let s = settings();
    let offset = format!("{}s", s.period_offset.as_secs_f64());
    let vars = [
        ("SOLVER_POSTGRES_URL", db.url.as_str()),
        ("BASE_DEBTOR_INFO_LOCATOR", LOCATOR),
        ("BASE_DEBTOR_ID", "666"),
    ];
    let out = crate::cli::run_binary(&["roll_turns", "-o", &offset, "--quit-early"], &vars);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(turns(&mut db.connect().await).await.len(), 1);
    // Without the base currency no turn could ever start: the solver refuses to run.
    let out = crate::cli::run_binary(&["solver"], &vars[..1]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("BASE_DEBTOR_INFO_LOCATOR is not set"));
    let out = crate::cli::run_binary(&["roll_turns", "-p", "1 m", "--quit-early"], &vars);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--period"));
}

#[derive(QueryableByName, Debug, PartialEq, PartialOrd, Eq, Ord)]
struct Leg {
    #[diesel(sql_type = BigInt)]
    creditor_id: i64,
    #[diesel(sql_type = BigInt)]
    debtor_id: i64,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = BigInt)]
    collector_id: i64,
}

async fn legs(conn: &mut AsyncPgConnection, sql: &str) -> Vec<Leg> {
    let mut legs: Vec<Leg> = diesel::sql_query(sql).load(conn).await.unwrap();
    legs.sort();
    legs
}

/// The reference's end-to-end case of phase 2 → 3 (`test_try_to_advance_turn_to_phase3`):
/// base 101 and 102 pegged to it at 2; three collectors; two sellers of 101, one of 102. The
/// turn's minimum trade amount is 1000 instead of the reference's 5000: here every leg moves
/// at least the minimum (docs/turns.md#guarantees-and-differences-from-the-reference), and
/// the legs of 2500 and 3000 tokens of 102 would be below 5000; the rows are the reference's.
#[tokio::test]
async fn the_references_phase3_case_gives_its_exact_rows() {
    let db = TestDb::migrated(Database::Solver).await;
    let conn = &mut db.connect().await;
    let mut solver = solver(&db);
    solver.settings.base_debtor_info_locator = "https://example.com/101".into();
    solver.settings.base_debtor_id = 101;
    exec(
        conn,
        "INSERT INTO turn (started_at, base_debtor_info_locator, base_debtor_id, \
         max_distance_to_base, min_trade_amount, phase, phase_deadline, collection_deadline) \
         VALUES (now(), 'https://example.com/101', 101, 5, 1000, 2, now() - interval '1 second', \
         now() + interval '30 days')",
    )
    .await;
    let turn_id = turns(conn).await[0].turn_id;
    exec(
        conn,
        &format!(
            "INSERT INTO currency_info VALUES \
             ({turn_id}, 'https://example.com/101', 101, NULL, NULL, NULL, true), \
             ({turn_id}, 'https://example.com/102', 102, 'https://example.com/101', 101, 2.0, true)"
        ),
    )
    .await;
    for (debtor, collector) in [(101, 997), (101, 998), (102, 999)] {
        exec(
            conn,
            &format!(
                "INSERT INTO collector_account VALUES ({debtor}, {collector}, {}, 'c{collector}', 2, now())",
                i16_hash(collector)
            ),
        )
        .await;
    }
    exec(
        conn,
        &format!(
            "INSERT INTO sell_offer VALUES ({turn_id}, 1, 101, 5000, 997), \
             ({turn_id}, 2, 101, 6000, 998), ({turn_id}, 3, 102, 10000, 999)"
        ),
    )
    .await;
    exec(
        conn,
        &format!(
            "INSERT INTO buy_offer VALUES ({turn_id}, 1, 102, 20000), ({turn_id}, 2, 102, 20000), \
             ({turn_id}, 3, 101, 30000)"
        ),
    )
    .await;
    solver.iteration().await.unwrap();
    assert_eq!(turns(conn).await, vec![Phase { turn_id, phase: 3 }]);
    assert_eq!(
        count(
            conn,
            "turn WHERE phase_deadline IS NULL AND collection_started_at IS NOT NULL"
        )
        .await,
        1
    );
    for table in ["currency_info", "sell_offer", "buy_offer"] {
        assert_eq!(count(conn, table).await, 0, "{table} deleted");
    }
    let leg = |creditor_id, debtor_id, amount, collector_id| Leg {
        creditor_id,
        debtor_id,
        amount,
        collector_id,
    };
    let takings = vec![
        leg(1, 101, 5000, 997),
        leg(2, 101, 6000, 998),
        leg(3, 102, 5500, 999),
    ];
    assert_eq!(
        legs(
            conn,
            "SELECT creditor_id, debtor_id, amount, collector_id FROM creditor_taking"
        )
        .await,
        takings
    );
    assert_eq!(
        legs(
            conn,
            "SELECT creditor_id, debtor_id, amount, collector_id FROM collector_collecting"
        )
        .await,
        takings
    );
    let givings = legs(
        conn,
        "SELECT creditor_id, debtor_id, amount, collector_id FROM creditor_giving",
    )
    .await;
    let c = givings
        .iter()
        .find(|g| g.creditor_id == 3)
        .expect("3 is given 101")
        .collector_id;
    assert!(c == 997 || c == 998, "{c}");
    let expected_givings = vec![
        leg(1, 102, 2500, 999),
        leg(2, 102, 3000, 999),
        leg(3, 101, 11000, c),
    ];
    assert_eq!(givings, expected_givings);
    assert_eq!(
        legs(
            conn,
            "SELECT creditor_id, debtor_id, amount, collector_id FROM collector_dispatching"
        )
        .await,
        expected_givings
    );
    let (from, to, amount) = if c == 997 {
        (998, 997, 6000)
    } else {
        (997, 998, 5000)
    };
    assert_eq!(
        legs(
            conn,
            "SELECT from_collector_id AS creditor_id, debtor_id, amount, \
             to_collector_id AS collector_id FROM collector_sending"
        )
        .await,
        vec![leg(from, 101, amount, to)]
    );
    assert_eq!(
        legs(
            conn,
            "SELECT from_collector_id AS creditor_id, debtor_id, amount, \
             to_collector_id AS collector_id FROM collector_receiving"
        )
        .await,
        vec![leg(from, 101, amount, to)]
    );
    // Every hash column is the hash of its ID.
    #[derive(QueryableByName)]
    struct Hashed {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = SmallInt)]
        hash: i16,
    }
    for (table, id, hash) in [
        ("creditor_taking", "creditor_id", "creditor_hash"),
        ("creditor_giving", "creditor_id", "creditor_hash"),
        ("collector_collecting", "collector_id", "collector_hash"),
        ("collector_dispatching", "collector_id", "collector_hash"),
        (
            "collector_sending",
            "from_collector_id",
            "from_collector_hash",
        ),
        (
            "collector_receiving",
            "to_collector_id",
            "to_collector_hash",
        ),
    ] {
        let rows: Vec<Hashed> =
            diesel::sql_query(format!("SELECT {id} AS id, {hash} AS hash FROM {table}"))
                .load(conn)
                .await
                .unwrap();
        assert!(!rows.is_empty(), "{table}");
        for r in rows {
            assert_eq!(r.hash, i16_hash(r.id), "{table}: {}", r.id);
        }
    }
}
