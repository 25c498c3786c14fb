//! The transactional outbox (worker.md §4.1): a handler that decides to send a message calls
//! [`emit`], which stores it as one row of its `*_signal` table inside the handler's own
//! transaction. The flushers publish the rows later and delete them once the broker has
//! confirmed them, so a message is sent if and only if the decision was committed.

mod batch;
mod emit;
pub mod flush;
mod kind;
mod rows;

pub use batch::{LockedSignal, delete_locked, lock_batch};
pub use emit::emit;
pub use flush::{FlushError, FlushSettings, Flusher};
pub use kind::SignalKind;
