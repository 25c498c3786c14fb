//! Pure helpers of a turn's transfers (see `docs/turns.md#transfers`): the transfer notes
//! that name a turn's transfers, and the demurrage a locked or collected amount may suffer.
//! No I/O; the handlers of account locks and transfer attempts use them.

pub mod demurrage;
pub mod notes;

pub use demurrage::{contained_ceil, demurrage};
pub use notes::{AGENT_TRANSFER_NOTE_FORMAT, NoteKind, TransferNote};

use chrono::NaiveDate;

/// The ledger position (account creation date, last transfer number) recorded when a
/// collector account's lock is released: collectors have no ledger of their own, so the
/// position is a made-up (1970-01-01, 0).
pub fn collector_trade_position() -> (NaiveDate, i64) {
    (NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(), 0)
}
