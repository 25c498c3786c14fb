//! Pure helpers of a turn's transfers (see `docs/turns.md#transfers`): the transfer notes
//! that name a turn's transfers, and the demurrage a locked or collected amount may suffer.
//! No I/O; the handlers of account locks and transfer attempts use them.

pub mod demurrage;
pub mod notes;

pub use demurrage::{contained_ceil, demurrage};
pub use notes::{AGENT_TRANSFER_NOTE_FORMAT, NoteKind, TransferNote};
