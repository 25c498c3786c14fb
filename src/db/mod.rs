//! The two PostgreSQL databases: the solver's (one for the whole system) and this worker's
//! shard. Query code takes `&mut AsyncPgConnection`, so it composes inside a caller's
//! transaction.

pub mod migrate;
pub mod retry;
pub mod solver;
pub mod worker;

use anyhow::Context as _;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::Pool;

/// A pool of connections to one database.
pub type DbPool = Pool<AsyncPgConnection>;

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

/// Builds a connection pool; connections are opened lazily. A `max_size` of 0 means no fixed
/// limit.
pub fn build_pool(url: &str, max_size: usize, command: &str) -> anyhow::Result<DbPool> {
    let url = with_application_name(url, command)?;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
    let size = if max_size == 0 {
        UNLIMITED_POOL_SIZE
    } else {
        max_size
    };
    Pool::builder(manager)
        .max_size(size)
        .build()
        .context("cannot build the database pool")
}
