//! Trading turns (see `docs/turns.md`): the solver's turn loop ([`solver`]) and when turns
//! start ([`schedule`]).

pub mod report;
pub mod schedule;
pub mod solver;
pub mod worker;

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

/// `at + d`, checked: settings are bounded at start-up, so this fails only on a broken clock
/// or a corrupt row.
pub(crate) fn after(at: DateTime<Utc>, d: Duration) -> anyhow::Result<DateTime<Utc>> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .with_context(|| format!("{at} + {d:?} is out of range"))
}
