//! Messages from accounting authorities about collector accounts: `RejectedConfig`,
//! `AccountUpdate` and `AccountPurge` (docs/messages.md#handlers).

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;

use super::HandlerError;
use crate::config::Config;
use crate::db::worker::accounts as db;
use crate::messages::{
    AccountPurge, AccountUpdate, ActivateCollector, ConfigureAccount, DiscoverDebtor,
    RejectedConfig,
};
use crate::outbox;

/// `negligible_amount` of a discarded or a newly configured account.
pub const HUGE_NEGLIGIBLE_AMOUNT: f64 = 1e30;
/// Config flag: the account is scheduled for deletion.
pub const CONFIG_SCHEDULED_FOR_DELETION_FLAG: i32 = 1;
/// Tolerance when recognizing an already discarded account.
const EPS: f64 = 1e-5;

/// `RejectedConfig`: only logged.
pub fn rejected_config(m: &RejectedConfig) {
    tracing::warn!(
        creditor.id = m.creditor_id,
        debtor.id = m.debtor_id,
        rejection_code = m.rejection_code.as_str(),
        "Received RejectedConfig message for WorkerAccount(creditor_id={}, debtor_id={}).",
        m.creditor_id,
        m.debtor_id
    );
}

/// `a > b` for 32-bit sequence numbers that wrap around.
pub fn seqnum_after(a: i32, b: i32) -> bool {
    let d = a.wrapping_sub(b) as u32;
    d != 0 && d < 0x8000_0000
}

/// `AccountUpdate` (docs/messages.md#account-updates).
pub async fn account_update(
    conn: &mut AsyncPgConnection,
    config: &Config,
    m: &AccountUpdate,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let (creditor_id, debtor_id) = (m.creditor_id, m.debtor_id);
    let needed = db::is_needed(conn, creditor_id, debtor_id).await?;
    if needed {
        // Interest rates are recorded even from old or expired messages: none may be missed.
        record_interest_rate(conn, config, m, now).await?;
    }
    if (now - m.ts).num_microseconds().unwrap_or(i64::MAX) > i64::from(m.ttl) * 1_000_000 {
        return Ok(()); // expired
    }
    if !needed {
        discard_unneeded_account(conn, m, now).await?;
    }
    let iri = Some(m.debtor_info_iri.clone()).filter(|s| !s.is_empty());
    let stored = db::lock_account(conn, creditor_id, debtor_id).await?;
    let heartbeat = m.ts.min(now);
    let (must_activate, has_new_iri) = match stored {
        None if !needed => return Ok(()), // never create rows for accounts we did not ask for
        None => {
            db::insert_account(conn, m, iri.as_deref(), heartbeat).await?;
            (!m.account_id.is_empty(), true)
        }
        Some(s) => {
            if m.ts > s.last_heartbeat_ts {
                db::set_heartbeat(conn, creditor_id, debtor_id, heartbeat).await?;
            }
            let is_newer = (m.creation_date, m.last_change_ts)
                > (s.creation_date, s.last_change_ts)
                || ((m.creation_date, m.last_change_ts) == (s.creation_date, s.last_change_ts)
                    && seqnum_after(m.last_change_seqnum, s.last_change_seqnum));
            if !is_newer {
                return Ok(()); // an old message (or a heartbeat)
            }
            let account_id = if s.account_id.is_empty() {
                &m.account_id
            } else {
                &s.account_id
            };
            db::update_account(conn, m, iri.as_deref(), account_id).await?;
            (
                !m.account_id.is_empty() && s.account_id.is_empty(),
                iri != s.debtor_info_iri,
            )
        }
    };
    if must_activate {
        let signal = ActivateCollector {
            debtor_id,
            creditor_id,
            account_id: m.account_id.clone(),
            ts: now,
        };
        outbox::emit(conn, signal).await?;
    }
    if let Some(iri) = iri
        && needed
        && is_legible_for_trade(config, m)
        && !m.account_id.is_empty()
    {
        let signal = DiscoverDebtor {
            debtor_id,
            iri,
            force_locator_refetch: has_new_iri,
            ts: now,
        };
        outbox::emit(conn, signal).await?;
    }
    Ok(())
}

/// Whether the account's terms let it serve as a collector account.
fn is_legible_for_trade(config: &Config, m: &AccountUpdate) -> bool {
    m.demurrage_rate >= config.worker.min_demurrage_rate
        && f64::from(m.commit_period) >= config.turn.max_commit_period.as_secs_f64()
        && i64::from(m.transfer_note_max_bytes)
            >= i64::from(config.worker.min_transfer_note_max_bytes)
}

/// Asks the accounting authority to delete an account this worker does not need, unless the
/// message shows it is already scheduled for deletion.
async fn discard_unneeded_account(
    conn: &mut AsyncPgConnection,
    m: &AccountUpdate,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let already_discarded = m.config_flags & CONFIG_SCHEDULED_FOR_DELETION_FLAG != 0
        && m.negligible_amount >= (1.0 - EPS) * HUGE_NEGLIGIBLE_AMOUNT;
    if already_discarded {
        return Ok(());
    }
    let signal = ConfigureAccount {
        debtor_id: m.debtor_id,
        creditor_id: m.creditor_id,
        ts: now,
        seqnum: 0,
        negligible_amount: HUGE_NEGLIGIBLE_AMOUNT,
        config_data: String::new(),
        config_flags: CONFIG_SCHEDULED_FOR_DELETION_FLAG,
    };
    outbox::emit(conn, signal).await
}

/// Records the interest rate of the message unless that change is known, then compacts the
/// account's history (docs/messages.md#interest-rate-history).
async fn record_interest_rate(
    conn: &mut AsyncPgConnection,
    config: &Config,
    m: &AccountUpdate,
    now: DateTime<Utc>,
) -> QueryResult<()> {
    let (creditor_id, debtor_id) = (m.creditor_id, m.debtor_id);
    let rate = m.interest_rate as f32;
    let change_ts = m.last_interest_rate_change_ts;
    if !db::insert_interest_rate_change(conn, creditor_id, debtor_id, change_ts, rate).await? {
        return Ok(());
    }
    let period = config.worker.interest_rate_history_period;
    // Settings are bounded at start-up; should the subtraction still leave chrono's range,
    // every change counts as recent (nothing is deleted for want of a cutoff).
    let cutoff = chrono::Duration::from_std(period)
        .ok()
        .and_then(|p| now.checked_sub_signed(p))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let max_changes = usize::try_from(period.as_secs() / 86_400 / 3 + 30).unwrap_or(usize::MAX);
    let changes = db::lock_interest_rate_changes(conn, creditor_id, debtor_id).await?;
    let obsolete = obsolete_interest_rate_changes(&changes, cutoff, max_changes);
    db::delete_interest_rate_changes(conn, creditor_id, debtor_id, obsolete).await?;
    Ok(())
}

/// The changes (newest first in `changes`) that no longer matter: only the lowest among
/// the recent rates does, at most `max_changes` of them, and none older than the first one
/// before `cutoff`.
pub fn obsolete_interest_rate_changes(
    changes: &[(DateTime<Utc>, f32)],
    cutoff: DateTime<Utc>,
    max_changes: usize,
) -> Vec<DateTime<Utc>> {
    let mut lowest = f32::INFINITY;
    let mut obsolete = Vec::new();
    for (n, &(change_ts, rate)) in changes.iter().enumerate() {
        if rate < lowest && n < max_changes {
            lowest = rate;
        } else {
            obsolete.push(change_ts);
        }
        if change_ts < cutoff {
            lowest = -100.0;
        }
    }
    obsolete
}

/// `AccountPurge` (docs/messages.md#account-purges): deletes the account's record unless it
/// describes a newer incarnation of the account.
pub async fn account_purge(
    conn: &mut AsyncPgConnection,
    m: &AccountPurge,
) -> Result<(), HandlerError> {
    let needed = db::is_needed(conn, m.creditor_id, m.debtor_id).await?;
    let deleted =
        db::delete_account_created_until(conn, m.creditor_id, m.debtor_id, m.creation_date).await?;
    if needed && deleted > 0 {
        tracing::warn!(
            creditor.id = m.creditor_id,
            debtor.id = m.debtor_id,
            "A needed collector account has been purged."
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqnums_wrap_around() {
        assert!(seqnum_after(1, 0));
        assert!(!seqnum_after(0, 0));
        assert!(!seqnum_after(0, 1));
        assert!(seqnum_after(i32::MIN, i32::MAX));
        assert!(seqnum_after(5, -5));
        assert!(!seqnum_after(i32::MIN + 5, 4));
    }

    #[test]
    fn compaction_keeps_the_lowest_recent_rates() {
        let t = |d: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::days(d);
        // Newest first: 5.0 (day 100), 7.0 (day 90: superseded by the lower newer 5.0),
        // 3.0 (day 80), 1.0 (day 10, before the cutoff: kept), 0.5 (day 5: older, dropped).
        let changes = [
            (t(100), 5.0),
            (t(90), 7.0),
            (t(80), 3.0),
            (t(10), 1.0),
            (t(5), 0.5),
        ];
        assert_eq!(
            obsolete_interest_rate_changes(&changes, t(50), 90),
            vec![t(90), t(5)]
        );
        assert_eq!(
            obsolete_interest_rate_changes(&changes, t(50), 2),
            vec![t(90), t(80), t(10), t(5)]
        );
    }
}
