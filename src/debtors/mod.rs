//! Debtor info documents: where the service learns, for each currency (debtor), its official
//! document locator and its peg, which the solver needs to price currencies (see
//! `docs/messages.md#debtor-info`).
//!
//! The handlers of `FetchDebtorInfo`, `DiscoverDebtor`, `ConfirmDebtor` and `StoreDocument`
//! (in `handlers`) keep the bookkeeping; this module fetches the scheduled documents over
//! HTTPS ([`fetch`]) and parses them ([`document`]).

pub mod document;
pub mod fetch;

/// A number of days (a `*_DAYS` setting, at most 100 years, see `docs/configuration.md`) as
/// a duration; negative values are allowed.
pub fn days(days: f64) -> chrono::Duration {
    // A float-to-integer cast saturates: no overflow, whatever the value.
    chrono::Duration::microseconds((days * 86_400e6) as i64)
}
