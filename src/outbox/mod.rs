//! The transactional outbox (see `docs/messages.md#outgoing-messages`): a handler that decides
//! to send a message calls [`emit`], which stores it as one row of its `*_signal` table inside
//! the handler's own transaction. The flushers publish the rows later and delete them once the
//! broker has confirmed them, so a message is sent if and only if the decision was committed.

pub mod flush;
mod kind;

pub use crate::db::worker::outbox::emit;
pub use flush::{
    FlushError, FlushJob, FlushOptions, FlushSettings, Flusher, run_flushers, spawn_flushers,
};
pub use kind::SignalKind;
