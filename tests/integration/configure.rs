//! `configure` and `await_migrations` against real databases.

use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use swpt_trade::cli::configure::migrate_with_retries;
use swpt_trade::db::{Database, migrate};

use crate::cli::run_binary;
use crate::util::TestDb;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Value {
    #[diesel(sql_type = Text)]
    v: String,
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let row: Count = diesel::sql_query(sql)
        .get_result(&mut db.connect().await)
        .await
        .unwrap();
    row.n
}

async fn table_count(db: &TestDb) -> i64 {
    count(
        db,
        "SELECT count(*) AS n FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name NOT IN \
         ('alembic_version', '__diesel_schema_migrations')",
    )
    .await
}

/// A digest of every column, constraint and index, to show that a second run changed nothing.
async fn schema_fingerprint(db: &TestDb) -> String {
    let row: Value = diesel::sql_query(
        "SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) AS v FROM ( \
           SELECT table_name || '.' || column_name || ':' || data_type || is_nullable AS x \
             FROM information_schema.columns WHERE table_schema = 'public' \
           UNION ALL SELECT conname || pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE connamespace = 'public'::regnamespace \
           UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' \
           UNION ALL SELECT version || '' FROM __diesel_schema_migrations \
           UNION ALL SELECT version_num FROM alembic_version) s",
    )
    .get_result(&mut db.connect().await)
    .await
    .unwrap();
    row.v
}

fn db_vars<'a>(solver: &'a TestDb, worker: &'a TestDb) -> [(&'static str, &'a str); 2] {
    [
        ("SOLVER_POSTGRES_URL", solver.url.as_str()),
        ("WORKER_POSTGRES_URL", worker.url.as_str()),
    ]
}

#[tokio::test]
async fn configure_creates_both_schemas_and_is_idempotent() {
    let (solver, worker) = (TestDb::empty().await, TestDb::empty().await);
    let out = run_binary(&["configure"], &db_vars(&solver, &worker));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The reference's 13, and `turn_report` (docs/turns.md#turn-reports).
    assert_eq!(table_count(&solver).await, 14);
    // The reference's 34, and `early_turn_transfer` (docs/turns.md#early-transfers).
    assert_eq!(table_count(&worker).await, 35);
    let alembic = "SELECT count(*) AS n FROM alembic_version WHERE version_num = '88cd664f51a3'";
    assert_eq!(count(&solver, alembic).await, 1);
    assert_eq!(count(&worker, alembic).await, 1);

    let before = (
        schema_fingerprint(&solver).await,
        schema_fingerprint(&worker).await,
    );
    let out = run_binary(&["configure"], &db_vars(&solver, &worker));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Applied 0 migration(s)"));
    let after = (
        schema_fingerprint(&solver).await,
        schema_fingerprint(&worker).await,
    );
    assert_eq!(before, after);
}

#[tokio::test]
async fn configure_solver_leaves_the_worker_database_alone() {
    let (solver, worker) = (TestDb::empty().await, TestDb::empty().await);
    let out = run_binary(&["configure", "solver"], &db_vars(&solver, &worker));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(table_count(&solver).await, 14);
    let all_tables =
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'";
    assert_eq!(count(&worker, all_tables).await, 0);

    let out = run_binary(&["configure", "worker"], &db_vars(&solver, &worker));
    assert!(out.status.success());
    assert_eq!(table_count(&worker).await, 35);
}

#[tokio::test]
async fn migrations_run_up_then_down_then_up() {
    for db in [Database::Solver, Database::Worker] {
        let test_db = TestDb::migrated(db).await;
        let fingerprint = schema_fingerprint(&test_db).await;
        let dir = format!("{}/migrations/{}", env!("CARGO_MANIFEST_DIR"), db.name());
        let mut migrations: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        migrations.sort();
        let mut conn = test_db.connect().await;
        // Newest first, as diesel reverts them.
        for migration in migrations.iter().rev() {
            let down = std::fs::read_to_string(migration.join("down.sql")).unwrap();
            diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, &down)
                .await
                .unwrap();
        }
        diesel::sql_query("DELETE FROM __diesel_schema_migrations")
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            table_count(&test_db).await,
            0,
            "{} down.sql drops every table",
            db.name()
        );
        migrate::migrate(db, &test_db.url).await.unwrap();
        assert_eq!(schema_fingerprint(&test_db).await, fingerprint);
    }
}

#[tokio::test]
async fn concurrent_configure_runs_wait_for_each_other() {
    let db = TestDb::empty().await;
    let runs = (0..4).map(|_| migrate::migrate(Database::Worker, &db.url));
    let results = futures::future::join_all(runs).await;
    let applied: usize = results.into_iter().map(|r| r.unwrap().len()).sum();
    let migrations = std::fs::read_dir(format!("{}/migrations/worker", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .count();
    assert_eq!(
        applied, migrations,
        "exactly one run applies the migrations"
    );
    assert_eq!(table_count(&db).await, 35);
}

#[tokio::test]
async fn configure_retries_until_the_database_appears() {
    let db = TestDb::empty().await;
    let mut missing = url::Url::parse(&db.url).unwrap();
    let name = format!("{}_late", db.name);
    missing.set_path(&name);
    let admin = db.url.clone();
    let create_later = async move {
        // The scenario itself: the database appears only after the first attempts failed.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut conn =
            <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&admin)
                .await
                .unwrap();
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    };
    // Pauses that add up to far more than the 300 ms: creating a database can take a while
    // when many tests run; the retries end as soon as it exists.
    let backoff = [100, 200, 400, 800, 1600, 3200].map(Duration::from_millis);
    let (result, ()) = tokio::join!(
        migrate_with_retries(Database::Solver, missing.as_str(), &backoff),
        create_later
    );
    assert_eq!(
        result.unwrap().len(),
        Database::Solver.migration_versions().len()
    );
    let mut conn = db.connect().await;
    diesel::sql_query(format!("DROP DATABASE {}_late WITH (FORCE)", db.name))
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn configure_gives_up_on_an_unreachable_database() {
    let backoff = [Duration::from_millis(10), Duration::from_millis(20)];
    let started = std::time::Instant::now();
    let err = migrate_with_retries(
        Database::Worker,
        "postgresql://postgres@127.0.0.1:1/none",
        &backoff,
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot upgrade the worker database"),
        "{err:#}"
    );
    assert!(started.elapsed() >= Duration::from_millis(30));

    let out = run_binary(
        &["configure", "worker"],
        &[(
            "WORKER_POSTGRES_URL",
            "postgresql://postgres@127.0.0.1:1/none",
        )],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot upgrade the worker database"));
}

#[tokio::test]
async fn a_schema_made_by_the_reference_is_adopted_not_recreated() {
    let db = TestDb::empty().await;
    let mut conn = db.connect().await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut conn,
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY); \
         INSERT INTO alembic_version VALUES ('88cd664f51a3');",
    )
    .await
    .unwrap();
    // Only our migrations after the reference's schema run (the turn reports' table).
    assert_eq!(
        migrate::migrate(Database::Solver, &db.url).await.unwrap(),
        Database::Solver.migration_versions()[1..]
    );
    assert_eq!(
        table_count(&db).await,
        1,
        "the initial migration was recorded, not run"
    );
    assert!(
        migrate::pending_migrations(Database::Solver, &db.url)
            .await
            .unwrap()
            .is_empty()
    );

    let old = TestDb::empty().await;
    diesel_async::SimpleAsyncConnection::batch_execute(
        &mut old.connect().await,
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY); \
         INSERT INTO alembic_version VALUES ('dcb810823e04');",
    )
    .await
    .unwrap();
    let err = migrate::migrate(Database::Worker, &old.url)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("dcb810823e04"), "{err:#}");
}

#[tokio::test]
async fn await_migrations_returns_once_both_databases_are_migrated() {
    let (solver, worker) = (TestDb::empty().await, TestDb::empty().await);
    let targets = vec![
        (Database::Worker, worker.url.clone()),
        (Database::Solver, solver.url.clone()),
    ];
    assert_eq!(
        migrate::pending_migrations(Database::Solver, &solver.url)
            .await
            .unwrap()
            .len(),
        Database::Solver.migration_versions().len()
    );
    let waiter = tokio::spawn(async move {
        swpt_trade::cli::await_migrations::wait_until_migrated(&targets, Duration::from_millis(50))
            .await;
    });
    // Something that must not happen (the waiter returning) for four polling intervals.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "nothing is migrated yet");
    migrate::migrate(Database::Worker, &worker.url)
        .await
        .unwrap();
    // Again something that must not happen, for four polling intervals.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !waiter.is_finished(),
        "the solver database is not migrated yet"
    );
    migrate::migrate(Database::Solver, &solver.url)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();

    let out = run_binary(&["await_migrations"], &db_vars(&solver, &worker));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Awaiting database migrations"));
}

/// A digest of the rows of `tables`, to compare states.
pub async fn table_digest(db: &TestDb, tables: &[&str]) -> String {
    let mut digest = String::new();
    for table in tables {
        let row: Value = diesel::sql_query(format!(
            "SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') AS v FROM {table} t"
        ))
        .get_result(&mut db.connect().await)
        .await
        .unwrap();
        digest.push_str(&row.v);
    }
    digest
}
