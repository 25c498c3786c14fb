//! The two PostgreSQL databases: the solver's (one for the whole system) and this worker's
//! shard. Query code takes `&mut AsyncPgConnection`, so it composes inside a caller's
//! transaction.

pub mod bulk;
pub mod migrate;
pub mod retry;
pub mod solver;
pub mod worker;

use std::marker::PhantomData;
use std::time::Duration;

use anyhow::Context as _;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::{Object, Pool};

/// A connection taken from a [`DbPool`]; it dereferences to `AsyncPgConnection`.
///
/// When it is dropped in the middle of a transaction — its task panicked, or its future was
/// cancelled — it is closed instead of going back to the pool: an idle pooled connection
/// would otherwise keep the transaction, and its row locks, open until the pool next looked
/// at it, blocking every other transaction that touches those rows.
pub struct PooledConnection(Option<Object<AsyncPgConnection>>);

impl std::ops::Deref for PooledConnection {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        self.0.as_deref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        self.0.as_deref_mut().expect("present until dropped")
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        use diesel_async::pooled_connection::PoolableConnection as _;
        if let Some(mut object) = self.0.take()
            && object.is_broken()
        {
            // Detached from the pool and dropped: the server rolls the transaction back.
            drop(Object::take(object));
        }
    }
}

/// The pool size used for "no fixed limit" (`SOLVER_CLIENT_POOL_SIZE=0`): the server's
/// `max_connections` is then the only bound.
pub const UNLIMITED_POOL_SIZE: usize = 10_000;

/// Which of the two databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Database {
    /// The solver's database.
    Solver,
    /// This worker's database.
    Worker,
}

impl Database {
    /// `solver` or `worker`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Solver => "solver",
            Self::Worker => "worker",
        }
    }
}

/// Marks a pool as one of the two databases, so that a query of one cannot be handed a
/// connection to the other.
pub trait DatabaseKind: Send + Sync + 'static {
    /// The database.
    const DATABASE: Database;
}

/// The solver database (one for the whole system).
#[derive(Debug, Clone, Copy)]
pub struct SolverDb;

/// This worker's database (one per shard).
#[derive(Debug, Clone, Copy)]
pub struct WorkerDb;

impl DatabaseKind for SolverDb {
    const DATABASE: Database = Database::Solver;
}

impl DatabaseKind for WorkerDb {
    const DATABASE: Database = Database::Worker;
}

/// A pool of connections to the solver database.
pub type SolverPool = DbPool<SolverDb>;
/// A pool of connections to this worker's database.
pub type WorkerPool = DbPool<WorkerDb>;

/// How a pool is sized and how long its users wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// The most connections open at once; 0 means no fixed limit.
    pub max_size: usize,
    /// How long [`DbPool::get`] waits for a connection (`APP_DB_ACQUIRE_TIMEOUT_SECONDS`).
    pub acquire_timeout: Duration,
    /// PostgreSQL's `statement_timeout` on every connection of the pool; `None` for none
    /// (`APP_DB_STATEMENT_TIMEOUT_SECONDS`).
    pub statement_timeout: Option<Duration>,
}

impl PoolSettings {
    /// The default acquire timeout (`APP_DB_ACQUIRE_TIMEOUT_SECONDS`).
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
    /// The default statement timeout (`APP_DB_STATEMENT_TIMEOUT_SECONDS`).
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);

    /// `max_size` connections at the most, with the default timeouts.
    pub fn new(max_size: usize) -> Self {
        Self {
            max_size,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: Some(Self::DEFAULT_STATEMENT_TIMEOUT),
        }
    }

    /// The settings of `config`, with `max_size` connections at the most.
    pub fn from_config(config: &crate::config::Config, max_size: usize) -> Self {
        Self {
            max_size,
            acquire_timeout: config.db.acquire_timeout,
            statement_timeout: config.db.statement_timeout,
        }
    }
}

/// No connection could be had from a pool: the database is unreachable, refuses the
/// connection, or every connection stayed busy for the whole acquire timeout.
#[derive(Debug, thiserror::Error)]
#[error("cannot get a connection to the {database} database: {reason}")]
pub struct Unavailable {
    /// `solver` or `worker`.
    pub database: &'static str,
    /// What went wrong (never a password).
    pub reason: String,
}

/// A pool of connections to one database, opened lazily.
pub struct DbPool<D: DatabaseKind> {
    pool: Pool<AsyncPgConnection>,
    /// The URL the pool's connections use (for [`DbPool::raw_client`]).
    url: String,
    acquire_timeout: Duration,
    kind: PhantomData<D>,
}

impl<D: DatabaseKind> Clone for DbPool<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            url: self.url.clone(),
            acquire_timeout: self.acquire_timeout,
            kind: PhantomData,
        }
    }
}

impl<D: DatabaseKind> std::fmt::Debug for DbPool<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbPool")
            .field("database", &D::DATABASE.name())
            .field("status", &self.pool.status())
            .finish()
    }
}

impl<D: DatabaseKind> DbPool<D> {
    /// A pool for the database at `url`; `command` names the connections in
    /// `pg_stat_activity`. Nothing is opened yet.
    pub fn build(url: &str, settings: PoolSettings, command: &str) -> anyhow::Result<Self> {
        let mut url = with_application_name(url, command)?;
        if let Some(timeout) = settings.statement_timeout {
            url = with_statement_timeout(&url, timeout)?;
        }
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url.clone());
        let size = match settings.max_size {
            0 => UNLIMITED_POOL_SIZE,
            n => n,
        };
        let pool = Pool::builder(manager)
            .max_size(size)
            .build()
            .context("cannot build the database pool")?;
        Ok(Self {
            pool,
            url,
            acquire_timeout: settings.acquire_timeout,
            kind: PhantomData,
        })
    }

    /// A connection, waiting at most the acquire timeout.
    ///
    /// # Errors
    ///
    /// [`Unavailable`] when no connection could be had in time.
    pub async fn get(&self) -> Result<PooledConnection, Unavailable> {
        let unavailable = |reason: String| Unavailable {
            database: D::DATABASE.name(),
            reason,
        };
        match tokio::time::timeout(self.acquire_timeout, self.pool.get()).await {
            Ok(Ok(conn)) => Ok(PooledConnection(Some(conn))),
            Ok(Err(e)) => Err(unavailable(crate::config::mask_url(&e.to_string()))),
            Err(_) => Err(unavailable(format!(
                "no connection within {:?}",
                self.acquire_timeout
            ))),
        }
    }
}

impl<D: DatabaseKind> DbPool<D> {
    /// A connection of its own (not pooled) as a plain `tokio_postgres` client, for what
    /// diesel cannot do (binary `COPY`); it closes when the client is dropped.
    ///
    /// # Errors
    ///
    /// [`Unavailable`] when no connection could be made within the acquire timeout.
    pub async fn raw_client(&self) -> Result<tokio_postgres::Client, Unavailable> {
        let unavailable = |reason: String| Unavailable {
            database: D::DATABASE.name(),
            reason,
        };
        let connect = tokio_postgres::connect(&self.url, tokio_postgres::NoTls);
        let (client, connection) = match tokio::time::timeout(self.acquire_timeout, connect).await {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(unavailable(crate::config::mask_url(&e.to_string()))),
            Err(_) => {
                return Err(unavailable(format!(
                    "no connection within {:?}",
                    self.acquire_timeout
                )));
            }
        };
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!("database connection closed: {e}");
            }
        });
        Ok(client)
    }
}

/// Adds `application_name=swpt-trade:<command>` to a `postgresql://` URL (unless it has one),
/// so that `pg_stat_activity` shows who holds each connection.
pub fn with_application_name(url: &str, command: &str) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url).context("malformed database URL")?;
    if !parsed.query_pairs().any(|(k, _)| k == "application_name") {
        parsed
            .query_pairs_mut()
            .append_pair("application_name", &format!("swpt-trade:{command}"));
    }
    Ok(parsed.into())
}

/// Adds `-c statement_timeout=<ms>` to the URL's `options` (the server-side setting of every
/// connection opened with it). The query is written with `%20` for spaces: the PostgreSQL
/// driver does not read `+` as a space.
fn with_statement_timeout(url: &str, timeout: Duration) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url).context("malformed database URL")?;
    let mut options = None;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in parsed.query_pairs() {
        if k == "options" {
            options = Some(v.into_owned());
        } else {
            pairs.push((k.into_owned(), v.into_owned()));
        }
    }
    let setting = format!("-c statement_timeout={}", timeout.as_millis().max(1));
    let options = match options {
        Some(o) if !o.trim().is_empty() => format!("{o} {setting}"),
        _ => setting,
    };
    pairs.push(("options".into(), options));
    let encode = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    parsed.set_query(Some(&query.join("&")));
    Ok(parsed.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_timeout_goes_into_the_options() {
        let url = with_statement_timeout(
            "postgresql://u@h/db?application_name=x",
            Duration::from_secs(600),
        )
        .unwrap();
        assert_eq!(
            url,
            "postgresql://u@h/db?application_name=x&options=-c%20statement_timeout%3D600000"
        );
        let url = with_statement_timeout(
            "postgresql://u@h/db?options=-c%20work_mem%3D4MB",
            Duration::from_millis(1500),
        )
        .unwrap();
        assert_eq!(
            url,
            "postgresql://u@h/db?options=-c%20work_mem%3D4MB%20-c%20statement_timeout%3D1500"
        );
    }
}
