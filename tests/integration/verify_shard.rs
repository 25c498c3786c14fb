//! `verify_shard_content` on a worker database (docs/operations.md#verifying-shard-content).

use diesel_async::RunQueryDsl as _;
use swpt_trade::db::Database;

use crate::cli::run_binary;
use crate::util::TestDb;

fn verify(db: &TestDb, realm: &str) -> Option<i32> {
    run_binary(
        &["verify_shard_content"],
        &[
            ("WORKER_POSTGRES_URL", db.url.as_str()),
            ("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", realm),
            ("APP_VERIFY_SHARD_YIELD_PER", "1"),
            ("APP_VERIFY_SHARD_SLEEP_SECONDS", "0"),
        ],
    )
    .status
    .code()
}

#[tokio::test]
async fn verify_shard_content_finds_records_of_other_shards() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    assert_eq!(verify(&db, "1.#"), Some(0), "an empty database is fine");
    diesel::sql_query(
        "INSERT INTO debtor_info_document (debtor_info_locator, debtor_id, fetched_at) \
         VALUES ('https://example.com/666', 666, now())",
    )
    .execute(conn)
    .await
    .unwrap();
    // The reference's own example: this locator belongs to 0.#, not to 1.#.
    assert_eq!(verify(&db, "0.#"), Some(0));
    assert_eq!(verify(&db, "1.#"), Some(1));
    // Creditor 3 belongs to 0.#, creditor 2 does not (several rows: several chunks).
    diesel::sql_query("INSERT INTO needed_worker_account VALUES (3, 1, now()), (3, 2, now())")
        .execute(conn)
        .await
        .unwrap();
    assert_eq!(verify(&db, "0.#"), Some(0));
    diesel::sql_query("INSERT INTO needed_worker_account VALUES (2, 1, now())")
        .execute(conn)
        .await
        .unwrap();
    assert_eq!(verify(&db, "0.#"), Some(1));
    assert_eq!(verify(&db, "#"), Some(0), "one shard holds everything");
}
