//! Turn reports: the solver records a solved turn's figures in `turn_report`, and the admin
//! API shows them (`GET /trade/turns`, `GET /trade/turns/{turnId}`).

use std::time::Duration;

use chrono::Utc;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use reqwest::StatusCode;
use serde_json::Value;
use swpt_trade::db::solver::reports;
use swpt_trade::db::{Database, PoolSettings, SolverPool};
use swpt_trade::sharding::i16_hash;
use swpt_trade::turns::schedule::epoch;
use swpt_trade::turns::solver::{RollTurns, TurnSettings};

use crate::util::TestDb;
use crate::web_support::WebServer;

const BASE: i64 = 666;
const LOCATOR: &str = "https://example.com/666";

fn solver(db: &TestDb) -> RollTurns {
    let period = Duration::from_secs(86_400);
    let since_epoch = (Utc::now() - epoch()).to_std().unwrap();
    let offset = Duration::from_micros((since_epoch.as_micros() % period.as_micros()) as u64);
    RollTurns {
        pool: SolverPool::build(&db.url, PoolSettings::new(4), "test").unwrap(),
        settings: TurnSettings {
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
        },
    }
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql).execute(conn).await.unwrap();
}

/// A turn in phase 2 with three currencies (the base, 101 at 2 base units, 102 unconfirmed)
/// and offers that trade: creditor 1 sells 10000 base and buys 101, creditor 2 sells 3000 of
/// 101 and buys 8000 base.
async fn a_turn_with_offers(db: &TestDb, solver: &RollTurns) -> i32 {
    let conn = &mut db.connect().await;
    solver.iteration().await.unwrap();
    let turn_id = reports::recent_turns(conn, 1).await.unwrap()[0].0.turn_id;
    for (debtor, collector) in [(BASE, 1001), (101, 1011), (102, 1021)] {
        let hash = i16_hash(collector);
        exec(conn, &format!("INSERT INTO collector_account VALUES ({debtor}, {collector}, {hash}, 'acc{collector}', 2, now())")).await;
    }
    exec(
        conn,
        &format!(
            "INSERT INTO debtor_info VALUES ({turn_id}, '{LOCATOR}', {BASE}, NULL, NULL, NULL), \
         ({turn_id}, 'https://example.com/101', 101, '{LOCATOR}', {BASE}, 2.0), \
         ({turn_id}, 'https://example.com/102', 102, '{LOCATOR}', {BASE}, 0.5)"
        ),
    )
    .await;
    exec(
        conn,
        &format!(
            "INSERT INTO confirmed_debtor VALUES ({turn_id}, {BASE}, '{LOCATOR}'), \
         ({turn_id}, 101, 'https://example.com/101'), ({turn_id}, 102, 'https://example.com/other')"
        ),
    )
    .await;
    solver.iteration().await.unwrap(); // phase 2
    exec(conn, &format!(
        "INSERT INTO sell_offer VALUES ({turn_id}, 1, {BASE}, 10000, 1001), ({turn_id}, 2, 101, 3000, 1011)"
    )).await;
    exec(
        conn,
        &format!(
            "INSERT INTO buy_offer VALUES ({turn_id}, 1, 101, 5000), ({turn_id}, 2, {BASE}, 8000)"
        ),
    )
    .await;
    turn_id
}

#[tokio::test]
async fn a_solved_turn_has_its_report() {
    let db = TestDb::migrated(Database::Solver).await;
    let solver = solver(&db);
    let turn_id = a_turn_with_offers(&db, &solver).await;
    let conn = &mut db.connect().await;
    assert_eq!(
        reports::turn_with_report(conn, turn_id)
            .await
            .unwrap()
            .unwrap()
            .1,
        None
    );
    solver.iteration().await.unwrap(); // phase 3: solved
    let (turn, report) = reports::turn_with_report(conn, turn_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(turn.phase, 3);
    let report = report.expect("a report");
    assert_eq!(report.matcher, "flow");
    assert_eq!(
        (
            report.currencies,
            report.confirmed_currencies,
            report.priced_currencies
        ),
        (3, 2, 2)
    );
    assert_eq!((report.sell_offers, report.buy_offers), (2, 2));
    // 10000 base + 3000 × 2; 5000 × 2 + 8000 base.
    assert_eq!(report.sell_volume, 16_000.0);
    assert_eq!(report.buy_volume, 18_000.0);
    assert!(report.traded_volume > 0.0, "{report:?}");
    assert!(report.traded_volume <= report.lp_bound + 1e-6, "{report:?}");
    assert_eq!(report.participants, 2);
    assert!(report.cycles.unwrap() >= 1);
    assert!(report.solve_ms >= 0.0);
    let takings: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "(SELECT coalesce(sum(amount), 0)::bigint FROM creditor_taking WHERE turn_id = {turn_id})"
    )))
    .get_result(conn)
    .await
    .unwrap();
    assert!(takings > 0);

    // The admin API shows it.
    let server = WebServer::start(&[
        ("SOLVER_POSTGRES_URL", db.url.as_str()),
        ("APP_TRUST_USER_ID_HEADER", "true"),
    ])
    .await;
    let list: Value = reqwest::get(server.url("/trade/turns"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["type"], "TurnList");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let shown = &items[0];
    assert_eq!(shown["turnId"], turn_id);
    assert_eq!(shown["phase"], 3);
    assert_eq!(shown["phaseName"], "givingAndTaking");
    assert!(shown["collectionDeadline"].is_string());
    assert_eq!(shown["report"]["sellVolume"], 16_000.0);
    assert_eq!(shown["report"]["participants"], 2);
    assert_eq!(shown["report"]["tradedVolume"], report.traded_volume);
    let one: Value = reqwest::get(server.url(&format!("/trade/turns/{turn_id}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(&one, shown);
    for (path, status) in [
        ("/trade/turns/999", StatusCode::NOT_FOUND),
        ("/trade/turns/x", StatusCode::NOT_FOUND),
        ("/trade/turns?limit=0", StatusCode::UNPROCESSABLE_ENTITY),
        ("/trade/turns?limit=abc", StatusCode::UNPROCESSABLE_ENTITY),
        ("/trade/turns?limit=1001", StatusCode::UNPROCESSABLE_ENTITY),
        ("/trade/turns?limit=1", StatusCode::OK),
    ] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), status, "{path}");
    }
    let bad: Value = reqwest::get(server.url("/trade/turns?limit=abc"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        bad["errors"],
        serde_json::json!({"query": {"limit": ["Not a valid integer."]}})
    );
}
