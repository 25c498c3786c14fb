//! The embedded schema migrations of both databases, applied by `configure` under an advisory
//! lock, and the check `await_migrations` polls.
//!
//! Each database also keeps the reference's Alembic bookkeeping table `alembic_version` at the
//! reference's head revision, so the Python tooling sees an up-to-date schema. A database that
//! the Python implementation created (it has `alembic_version` at that head, but no diesel
//! bookkeeping) is adopted: its initial migration is recorded as applied instead of run.

use anyhow::{Context as _, anyhow, bail};
use diesel::connection::SimpleConnection as _;
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{Connection as _, QueryableByName};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::Database;

/// The solver database's migrations.
pub const SOLVER_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/solver");
/// The worker database's migrations.
pub const WORKER_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/worker");

/// The reference's Alembic head revision, which our initial migrations reproduce.
pub const ALEMBIC_HEAD: &str = "88cd664f51a3";

/// The key of the session-level advisory lock that serializes concurrent `configure` runs.
const MIGRATION_LOCK_KEY: i64 = 0x7377_7074_5f74_7264; // "swpt_trd"

type SyncConnection = AsyncConnectionWrapper<AsyncPgConnection>;

impl Database {
    /// The embedded migrations of this database.
    pub fn migrations(self) -> EmbeddedMigrations {
        match self {
            Self::Solver => SOLVER_MIGRATIONS,
            Self::Worker => WORKER_MIGRATIONS,
        }
    }

    /// The versions of the embedded migrations, oldest first.
    pub fn migration_versions(self) -> Vec<String> {
        let source = self.migrations();
        let migrations = diesel::migration::MigrationSource::<Pg>::migrations(&source)
            .expect("embedded migrations are readable");
        migrations
            .iter()
            .map(|m| m.name().version().to_string())
            .collect()
    }
}

/// Applies the pending migrations of `db` at `url` and returns the versions applied.
pub async fn migrate(db: Database, url: &str) -> anyhow::Result<Vec<String>> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || migrate_blocking(db, &url)).await?
}

fn migrate_blocking(db: Database, url: &str) -> anyhow::Result<Vec<String>> {
    let mut conn = SyncConnection::establish(url)
        .with_context(|| format!("cannot connect to the {} database", db.name()))?;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
    let result = adopt_reference_schema(&mut conn, db).and_then(|()| {
        let applied = conn
            .run_pending_migrations(db.migrations())
            .map_err(|e| anyhow!("migrating the {} database failed: {e}", db.name()))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    });
    // Closing the session would release the lock too; unlock explicitly all the same.
    let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
    result
}

#[derive(QueryableByName)]
struct Bookkeeping {
    #[diesel(sql_type = Nullable<Text>)]
    alembic: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    diesel: Option<String>,
}

#[derive(QueryableByName)]
struct AlembicRow {
    #[diesel(sql_type = Text)]
    version_num: String,
}

/// Records the initial migration as applied when the Python implementation already created
/// the schema at its head revision; refuses a Python schema at any other revision.
fn adopt_reference_schema(conn: &mut SyncConnection, db: Database) -> anyhow::Result<()> {
    use diesel::RunQueryDsl as _;
    let tables: Bookkeeping = diesel::sql_query(
        "SELECT to_regclass('alembic_version')::text AS alembic, \
                to_regclass('__diesel_schema_migrations')::text AS diesel",
    )
    .get_result(conn)?;
    if tables.alembic.is_none() || tables.diesel.is_some() {
        return Ok(());
    }
    let rows: Vec<AlembicRow> =
        diesel::sql_query("SELECT version_num::text AS version_num FROM alembic_version")
            .load(conn)?;
    match rows.as_slice() {
        [row] if row.version_num == ALEMBIC_HEAD => {}
        _ => bail!(
            "the {} database was created by the reference implementation at revision {:?}; \
             upgrade it to {ALEMBIC_HEAD} with the reference first",
            db.name(),
            rows.iter()
                .map(|r| r.version_num.as_str())
                .collect::<Vec<_>>()
        ),
    }
    let initial = db
        .migration_versions()
        .into_iter()
        .next()
        .expect("an initial migration");
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (\
            version VARCHAR(50) PRIMARY KEY NOT NULL, \
            run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    )?;
    diesel::sql_query("INSERT INTO __diesel_schema_migrations (version) VALUES ($1)")
        .bind::<Text, _>(&initial)
        .execute(conn)?;
    tracing::warn!(
        database = db.name(),
        "Adopted a schema created by the reference implementation at revision {ALEMBIC_HEAD}."
    );
    Ok(())
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The embedded migrations that have not been applied to `db` at `url` yet. Read-only.
pub async fn pending_migrations(db: Database, url: &str) -> anyhow::Result<Vec<String>> {
    use diesel_async::{AsyncConnection as _, RunQueryDsl as _};
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .with_context(|| format!("cannot connect to the {} database", db.name()))?;
    let exists: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_class \
         WHERE oid = to_regclass('__diesel_schema_migrations')",
    )
    .get_result(&mut conn)
    .await?;
    let applied: Vec<String> = if exists.n == 0 {
        Vec::new()
    } else {
        diesel::sql_query("SELECT version::text AS version FROM __diesel_schema_migrations")
            .load::<Version>(&mut conn)
            .await?
            .into_iter()
            .map(|v| v.version)
            .collect()
    };
    Ok(db
        .migration_versions()
        .into_iter()
        .filter(|v| !applied.contains(v))
        .collect())
}
