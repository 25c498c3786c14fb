//! The outbox tables (the 16 `*_signal` tables, see `docs/messages.md#outgoing-messages`):
//! storing a message inside the caller's transaction, locking a batch of rows for a flusher,
//! and deleting exactly the rows it published.

mod batch;
mod emit;
mod rows;

pub use batch::{LockedSignal, delete_locked, lock_batch};
pub use emit::emit;
