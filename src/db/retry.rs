//! Retrying transactions that PostgreSQL aborted because of concurrency: serialization
//! failures (40001) and deadlocks (40P01), as the reference does (worker.md §0.2). A unique
//! violation of a "check, then insert" is retried too: the next run sees the other row.

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

/// The pause before retry number `failures` (1-based): none before the first retry, then
/// `min(max, 0.1 s · 2^(failures − 2))` times a random factor in [0.5, 1).
pub fn retry_pause(failures: u32, max: Duration) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let base = (0.1 * 2f64.powi(failures as i32 - 2)).min(max.as_secs_f64());
    Duration::from_secs_f64(base * (0.5 + 0.5 * jitter()))
}

/// A number in [0, 1) that differs between calls and processes (not for cryptography).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

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
