//! A turn's transfers (see `docs/turns.md#transfers`): the transfer notes that name them, the
//! demurrage a locked or collected amount may suffer and the rules of transfer attempts (pure,
//! no I/O), and the worker's two transfer jobs — `roll_transfers` ([`RollTransfers`]) and
//! `trigger_transfers` ([`TriggerTransfers`]).

pub mod attempts;
pub mod demurrage;
pub mod notes;
mod rolling;
mod triggering;

pub use demurrage::{contained_ceil, demurrage};
pub use notes::{AGENT_TRANSFER_NOTE_FORMAT, NoteKind, TransferNote};
pub use rolling::RollTransfers;
pub use triggering::TriggerTransfers;

use chrono::NaiveDate;

/// The ledger position (account creation date, last transfer number) recorded when a
/// collector account's lock is released: collectors have no ledger of their own, so the
/// position is a made-up (1970-01-01, 0).
pub fn collector_trade_position() -> (NaiveDate, i64) {
    (NaiveDate::from_ymd_opt(1970, 1, 1).unwrap(), 0)
}
