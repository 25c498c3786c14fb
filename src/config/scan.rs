//! Settings of the table scanners (`APP_<T>_SCAN_DAYS`, `…_BLOCKS_PER_QUERY`,
//! `…_BEAT_MILLISECS`; docs/configuration.md#table-scanners).

use std::collections::BTreeMap;

use super::env::{ConfigError, EnvReader};
use super::parse;

/// One scanner's pace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanSettings {
    /// Target duration of one full pass over the table, in days.
    pub days: f64,
    /// Pages read per query.
    pub blocks_per_query: u32,
    /// Length of one beat, in milliseconds.
    pub beat_millisecs: u32,
}

/// The table groups with a scanner, their default pass length in days, and whether the
/// reference parses that setting as an integer (its default is an `int`).
pub const SCAN_TABLES: [(&str, f64, bool); 15] = [
    ("DEBTOR_INFO_DOCUMENTS", 7.0, false),
    ("DEBTOR_LOCATOR_CLAIMS", 1.0, false),
    ("TRADING_POLICIES", 7.0, false),
    ("WORKER_ACCOUNTS", 7.0, false),
    ("INTEREST_RATE_CHANGES", 7.0, true),
    ("NEEDED_WORKER_ACCOUNTS", 7.0, false),
    ("RECENTLY_NEEDED_COLLECTORS", 7.0, false),
    ("ACCOUNT_LOCKS", 7.0, false),
    ("CREDITOR_PARTICIPATIONS", 7.0, false),
    ("DISPATCHING_STATUSES", 7.0, false),
    ("WORKER_COLLECTINGS", 3.0, false),
    ("WORKER_SENDINGS", 1.0, false),
    ("WORKER_RECEIVINGS", 1.0, false),
    ("WORKER_DISPATCHINGS", 7.0, false),
    ("TRANSFER_ATTEMPTS", 7.0, true),
];

/// Reads the settings of every scanner.
pub fn read_scans(
    env: &EnvReader<'_>,
) -> Result<BTreeMap<&'static str, ScanSettings>, ConfigError> {
    let mut scans = BTreeMap::new();
    for (group, default_days, integer_days) in SCAN_TABLES {
        let days_var = format!("APP_{group}_SCAN_DAYS");
        let days = if integer_days {
            env.parsed(&days_var, default_days, |v| {
                parse::parse_count_in::<u32>(v, 0, super::MAX_DATE_OFFSET_DAYS as u64)
                    .map(f64::from)
            })?
        } else {
            env.days(&days_var, default_days)?
        };
        let settings = ScanSettings {
            days,
            blocks_per_query: env.positive(&format!("APP_{group}_SCAN_BLOCKS_PER_QUERY"), 40)?,
            beat_millisecs: env.positive(&format!("APP_{group}_SCAN_BEAT_MILLISECS"), 100)?,
        };
        scans.insert(group, settings);
    }
    Ok(scans)
}
