//! What each incoming message does to the worker database (worker.md §3).
//!
//! A handler runs inside a transaction that the consumer opens (possibly together with other
//! messages); it writes its outgoing messages to the outbox in that same transaction. Every
//! handler is idempotent and tolerates reordering as the reference's does.

mod accounts;
mod policies;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use crate::config::Config;
use crate::messages::IncomingMessage;

/// Why a handler failed. The message is then not acknowledged, so the broker delivers it
/// again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// A database error (retryable ones are retried by the caller).
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    /// A broken expectation that no retry can fix (the reference's fatal errors, §12.4).
    #[error("{0}")]
    Fatal(String),
}

/// Whether a message type has a handler yet; other types are rejected to the dead-letter
/// queue with the log line `no handler yet for <type>`.
pub fn has_handler(message: &IncomingMessage) -> bool {
    matches!(
        message,
        IncomingMessage::RejectedConfig(_)
            | IncomingMessage::AccountUpdate(_)
            | IncomingMessage::AccountPurge(_)
            | IncomingMessage::UpdatedLedger(_)
            | IncomingMessage::UpdatedPolicy(_)
            | IncomingMessage::UpdatedFlags(_)
    )
}

/// Applies `message` within the caller's transaction; `now` is the handler's clock.
pub async fn handle(
    conn: &mut AsyncPgConnection,
    config: &Config,
    message: &IncomingMessage,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    match message {
        IncomingMessage::RejectedConfig(m) => {
            accounts::rejected_config(m);
            Ok(())
        }
        IncomingMessage::AccountUpdate(m) => accounts::account_update(conn, config, m, now).await,
        IncomingMessage::AccountPurge(m) => accounts::account_purge(conn, m).await,
        IncomingMessage::UpdatedLedger(m) => Ok(policies::updated_ledger(conn, m).await?),
        IncomingMessage::UpdatedPolicy(m) => Ok(policies::updated_policy(conn, m).await?),
        IncomingMessage::UpdatedFlags(m) => Ok(policies::updated_flags(conn, m).await?),
        other => Err(HandlerError::Fatal(format!(
            "no handler yet for {}",
            other.message_type()
        ))),
    }
}
