//! Retrying transactions that PostgreSQL aborted because of concurrency: serialization
//! failures (40001) and deadlocks (40P01), as the reference does
//! (docs/architecture.md#transactions-and-retries). A unique violation of a "check, then
//! insert" is retried too: the next run sees the other row.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error};

/// Whether PostgreSQL aborted the transaction because of a concurrent one: a serialization
/// failure (40001) or a deadlock (40P01, which the driver reports only by its message).
pub fn is_concurrency_failure(e: &Error) -> bool {
    match e {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

/// Whether a handler's transaction may succeed when run again: a concurrency failure, or a
/// unique violation (a concurrent insert of the same row, as the reference's
/// `retry_on_integrity_error`).
pub fn is_retryable(e: &Error) -> bool {
    is_concurrency_failure(e)
        || matches!(
            e,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
        )
}

/// Whether the database refused the data of a statement for good, so that running the same
/// transaction again with the same input cannot succeed: a constraint violation other than a
/// unique one, a value its column cannot hold (converted on our side, or refused by
/// PostgreSQL as a data exception, SQLSTATE class 22), or a row that cannot be read back.
///
/// Anything else — a lost connection, a timeout, a concurrency failure — says nothing about
/// the input and is not permanent.
pub fn is_permanent(e: &Error) -> bool {
    /// Messages of PostgreSQL's data exceptions (class 22) that input can cause; the driver
    /// reports these only by their message.
    const DATA_EXCEPTIONS: [&str; 9] = [
        "invalid byte sequence",
        "value too long",
        "out of range",
        "invalid input syntax",
        "invalid input value",
        "numeric field overflow",
        "character not in repertoire",
        "unsupported Unicode escape",
        "null character not permitted",
    ];
    match e {
        Error::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::NotNullViolation
            | DatabaseErrorKind::CheckViolation
            | DatabaseErrorKind::ForeignKeyViolation
            | DatabaseErrorKind::RestrictViolation
            | DatabaseErrorKind::ExclusionViolation => true,
            DatabaseErrorKind::Unknown => {
                let message = info.message();
                DATA_EXCEPTIONS.iter().any(|m| message.contains(m))
            }
            _ => false,
        },
        Error::SerializationError(_) | Error::DeserializationError(_) => true,
        _ => false,
    }
}

/// How a transaction that PostgreSQL aborted for a retryable reason is run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first run (so at most `max_retries + 1` runs).
    pub max_retries: u32,
    /// The longest pause between two runs.
    pub max_pause: Duration,
}

impl RetryPolicy {
    /// A message handler's transaction: 8 retries, pauses up to 10 s (the reference's
    /// consumer).
    pub const HANDLER: Self = Self {
        max_retries: 8,
        max_pause: Duration::from_secs(10),
    };
    /// A flush batch: 11 retries, pauses up to 1 s (the reference's flushers).
    pub const FLUSH: Self = Self {
        max_retries: 11,
        max_pause: Duration::from_secs(1),
    };
}

/// An error that may go away when the same transaction runs again.
pub trait Retryable {
    /// Whether running the transaction again may succeed.
    fn is_retryable(&self) -> bool;
}

impl Retryable for Error {
    fn is_retryable(&self) -> bool {
        is_retryable(self)
    }
}

/// Runs `attempt` (one whole transaction) until it succeeds, fails for a reason that is not
/// retryable, or has been retried `policy.max_retries` times; pauses grow as
/// [`retry_pause`] says. This is the only transaction-retry loop of the service.
///
/// # Errors
///
/// The last run's error.
pub async fn with_retries<T, E, F, Fut>(policy: RetryPolicy, mut attempt: F) -> Result<T, E>
where
    E: Retryable + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut failures = 0;
    loop {
        match attempt().await {
            Err(e) if e.is_retryable() && failures < policy.max_retries => {
                failures += 1;
                tracing::debug!("Retrying a transaction after: {e}");
                tokio::time::sleep(retry_pause(failures, policy.max_pause)).await;
            }
            result => return result,
        }
    }
}

/// The pause before retry number `failures` (1-based): none before the first retry, then
/// `min(max, 0.1 s · 2^(failures − 2))` times a random factor in [0.5, 1).
pub fn retry_pause(failures: u32, max: Duration) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let exponent = i32::try_from(failures - 2).unwrap_or(i32::MAX).min(64);
    let base = (0.1 * 2f64.powi(exponent)).min(max.as_secs_f64());
    Duration::from_secs_f64(base * (0.5 + 0.5 * rand::random::<f64>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Flaky(bool);

    impl std::fmt::Display for Flaky {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "flaky({})", self.0)
        }
    }

    impl Retryable for Flaky {
        fn is_retryable(&self) -> bool {
            self.0
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_retryable_errors_and_only_so_often() {
        let policy = RetryPolicy {
            max_retries: 3,
            max_pause: Duration::from_millis(10),
        };
        let mut runs = 0;
        let r: Result<(), _> = with_retries(policy, || {
            runs += 1;
            async { Err(Flaky(true)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(runs, 4);
        runs = 0;
        let r: Result<(), _> = with_retries(policy, || {
            runs += 1;
            async { Err(Flaky(false)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(runs, 1);
        runs = 0;
        let r = with_retries(policy, || {
            runs += 1;
            let n = runs;
            async move { if n < 3 { Err(Flaky(true)) } else { Ok(n) } }
        })
        .await;
        assert_eq!(r.ok(), Some(3));
    }

    #[test]
    fn pauses_grow_and_are_capped() {
        assert_eq!(retry_pause(1, Duration::from_secs(10)), Duration::ZERO);
        for n in 2..20 {
            let p = retry_pause(n, Duration::from_secs(10)).as_secs_f64();
            let base = (0.1 * 2f64.powi(n as i32 - 2)).min(10.0);
            assert!(p >= base * 0.5 && p < base, "{n}: {p}");
        }
    }
}
