//! Account locks (see `docs/turns.md#account-locks`): `CandidateOffer` initiates a lock and
//! asks the accounting authority to prepare a transfer; `PreparedTransfer` and
//! `RejectedTransfer` answer it; `ReviseAccountLock` applies the solver's decision in phase 3;
//! the turn's `AccountTransfer`s release it.

use chrono::{DateTime, TimeZone as _, Utc};
use diesel_async::AsyncPgConnection;
use rand::seq::IndexedRandom as _;

use super::HandlerError;
use crate::config::Config;
use crate::db::worker::locks::{self as db, InitiatedLock, Settlement};
use crate::messages::{
    AGENT_COORDINATOR_TYPE, CandidateOffer, FinalizeTransfer, PrepareTransfer, PreparedTransfer,
    RejectedTransfer, ReviseAccountLock,
};
use crate::outbox;
use crate::transfers::{
    AGENT_TRANSFER_NOTE_FORMAT, TransferNote, collector_trade_position, contained_ceil, demurrage,
};

/// The "no deadline" of a `PrepareTransfer`, and of a turn without a collection deadline.
fn t_infinity() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap()
}

/// `CandidateOffer`: while the worker is at phase 2, sub-phase 5 of the turn, locks the
/// account unless a lock is still in force, with a random active collector of the currency,
/// and asks the accounting authority to prepare a transfer to that collector — locking
/// nothing for a buyer, and for a seller enough to cover the offer after the worst
/// demurrage until the collection deadline. A self-lock (the account is the collector)
/// prepares nothing.
pub async fn candidate_offer(
    conn: &mut AsyncPgConnection,
    config: &Config,
    m: &CandidateOffer,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let Some((min_trade_amount, collection_deadline)) =
        db::share_offer_turn(conn, m.turn_id).await?
    else {
        return Ok(());
    };
    let existing = db::lock_account_lock(conn, m.creditor_id, m.debtor_id).await?;
    if let Some(lock) = &existing
        && lock.is_in_force(m.account_creation_date, m.last_transfer_number)
    {
        return Ok(());
    }
    let collectors = db::active_collectors(conn, m.debtor_id).await?;
    let Some((collector_id, account_id)) = collectors.choose(&mut rand::rng()).cloned() else {
        return Ok(());
    };
    let (min_locked_amount, max_locked_amount) = if m.amount > 0 {
        (0, 0)
    } else {
        let Some(deadline) = collection_deadline else {
            return Err(HandlerError::Fatal(format!(
                "turn {} is in phase 2 without a collection deadline",
                m.turn_id
            )));
        };
        let worst = demurrage(config.worker.min_demurrage_rate, deadline - now);
        if worst.is_nan() || worst <= 0.0 || min_trade_amount <= 0 {
            return Err(HandlerError::Fatal(format!(
                "no amount can be locked for turn {} (demurrage factor {worst}, \
                 minimum trade amount {min_trade_amount})",
                m.turn_id
            )));
        }
        (
            contained_ceil(min_trade_amount as f64 / worst),
            contained_ceil((-m.amount) as f64 / worst),
        )
    };
    if max_locked_amount < min_locked_amount {
        return Ok(());
    }
    let coordinator_request_id = db::next_coordinator_request_id(conn).await?;
    let is_self_lock = m.creditor_id == collector_id;
    let lock = InitiatedLock {
        creditor_id: m.creditor_id,
        debtor_id: m.debtor_id,
        turn_id: m.turn_id,
        collector_id,
        initiated_at: now,
        coordinator_request_id,
        amount: m.amount,
        // A collector would pay itself: the whole amount counts as prepared, with a made-up
        // transfer ID.
        transfer_id: is_self_lock.then_some(0),
    };
    if existing.is_some() {
        db::reinitiate_lock(conn, &lock).await?;
    } else {
        db::insert_lock(conn, &lock).await?;
    }
    if !is_self_lock {
        outbox::emit(
            conn,
            PrepareTransfer {
                creditor_id: m.creditor_id,
                debtor_id: m.debtor_id,
                coordinator_request_id,
                min_locked_amount,
                max_locked_amount,
                recipient: account_id,
                final_interest_rate_ts: t_infinity(),
                max_commit_delay: i32::MAX,
                ts: now,
            },
        )
        .await?;
    }
    Ok(())
}

/// `RejectedTransfer` through the lock that asked for the transfer: the lock is deleted if
/// still initiated (and of the same account). Returns whether a lock asked for it.
pub(super) async fn rejected_through_lock(
    conn: &mut AsyncPgConnection,
    m: &RejectedTransfer,
) -> Result<bool, HandlerError> {
    let Some(lock) = db::lock_of_request(conn, m.coordinator_id, m.coordinator_request_id).await?
    else {
        return Ok(false);
    };
    if lock.is_initiated() && lock.debtor_id == m.debtor_id && lock.creditor_id == m.creditor_id {
        db::delete_lock(conn, lock.creditor_id, lock.debtor_id).await?;
    }
    Ok(true)
}

/// `PreparedTransfer` through the lock that asked for it — an initiated lock becomes
/// prepared (a seller's amount is what the locked amount is worth after the worst demurrage
/// until the collection deadline), or is deleted when the deadline or the demurrage rate is
/// unacceptable; a settled seller lock sends its commit again. Any other prepared transfer
/// of the lock's request is dismissed (committed amount 0), so that nothing stays locked.
/// Returns whether a lock asked for the transfer.
pub(super) async fn prepared_through_lock(
    conn: &mut AsyncPgConnection,
    config: &Config,
    m: &PreparedTransfer,
    now: DateTime<Utc>,
) -> Result<bool, HandlerError> {
    let found =
        db::lock_of_request_with_deadline(conn, m.coordinator_id, m.coordinator_request_id).await?;
    let Some((lock, collection_deadline)) = found else {
        return Ok(false);
    };
    if lock.debtor_id == m.debtor_id && lock.creditor_id == m.creditor_id {
        if lock.is_initiated() {
            let min_deadline = collection_deadline.unwrap_or_else(t_infinity);
            if m.deadline < min_deadline || m.demurrage_rate < config.worker.min_demurrage_rate {
                db::delete_lock(conn, lock.creditor_id, lock.debtor_id).await?;
            } else {
                let amount = if lock.amount <= 0 {
                    // A seller trades at most what the locked amount is still worth.
                    let worst = demurrage(m.demurrage_rate, min_deadline - lock.initiated_at);
                    let worth = (m.locked_amount as f64 * worst).floor() as i128;
                    i128::from(lock.amount).max(-worth) as i64
                } else {
                    lock.amount
                };
                db::set_prepared(
                    conn,
                    lock.creditor_id,
                    lock.debtor_id,
                    m.transfer_id,
                    amount,
                )
                .await?;
                return Ok(true);
            }
        } else if lock.is_prepared() {
            if lock.transfer_id == Some(m.transfer_id) {
                return Ok(true);
            }
        } else if lock.transfer_id == Some(m.transfer_id) && lock.amount < 0 {
            // Settled: the seller's commit may have been lost; send it again.
            let note = TransferNote::collecting(lock.turn_id, lock.collector_id, m.creditor_id);
            commit(conn, Dismissal::of_prepared(m), -lock.amount, note, now).await?;
            return Ok(true);
        }
    }
    dismiss(conn, Dismissal::of_prepared(m), now).await?;
    Ok(true)
}

/// `ReviseAccountLock`: applies the solver's decision for the account to its lock of the
/// turn — a seller commits the decided amount to its collector, a buyer keeps its (empty)
/// prepared transfer open until paid, a collector trading with itself is released at once,
/// and a lock without a decision is dismissed and deleted. The decision is deleted.
pub async fn revise_account_lock(
    conn: &mut AsyncPgConnection,
    m: &ReviseAccountLock,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let (creditor_id, debtor_id, turn_id) = (m.creditor_id, m.debtor_id, m.turn_id);
    let participation = db::lock_participation(conn, creditor_id, debtor_id, turn_id).await?;
    let lock = db::lock_unrevised_lock(conn, creditor_id, debtor_id, turn_id).await?;
    if let Some(lock) = lock {
        let dismissal = lock
            .transfer_id
            .filter(|_| !lock.is_self_lock())
            .map(|transfer_id| Dismissal {
                creditor_id,
                debtor_id,
                transfer_id,
                coordinator_id: creditor_id,
                coordinator_request_id: lock.coordinator_request_id,
            });
        match participation {
            Some((amount, collector_id)) => {
                let broken = |what: &str| {
                    HandlerError::Fatal(format!(
                        "account lock ({creditor_id}, {debtor_id}) of turn {turn_id}: {what} \
                         (lock amount {}, transfer {:?}, collector {}; participation {amount} \
                         via {collector_id})",
                        lock.amount, lock.transfer_id, lock.collector_id
                    ))
                };
                let (a, l) = (i128::from(amount), i128::from(lock.amount));
                let Some(transfer_id) = lock.transfer_id else {
                    return Err(broken("a participation without a prepared transfer"));
                };
                if !(0 < a.abs() && a.abs() <= l.abs() && l.abs() < (a + l).abs()) {
                    return Err(broken("the participation does not fit the lock"));
                }
                let settlement = if creditor_id == collector_id {
                    // The collector would pay itself: nothing to transfer.
                    if let Some(d) = dismissal {
                        dismiss(conn, d, now).await?;
                    }
                    let (date, number) = collector_trade_position();
                    Settlement::Released(now, date, number)
                } else if amount < 0 {
                    if lock.is_self_lock() || lock.collector_id != collector_id {
                        return Err(broken("a seller's collector differs from the lock's"));
                    }
                    let note = TransferNote::collecting(turn_id, lock.collector_id, creditor_id);
                    let prepared = Dismissal {
                        creditor_id,
                        debtor_id,
                        transfer_id,
                        coordinator_id: creditor_id,
                        coordinator_request_id: lock.coordinator_request_id,
                    };
                    commit(conn, prepared, -amount, note, now).await?;
                    Settlement::Finalized(now)
                } else {
                    // A buyer: its prepared transfer stays open, so that the account cannot
                    // be deleted before it is paid.
                    if amount <= 1 {
                        return Err(broken("a buyer's amount below 2"));
                    }
                    Settlement::None
                };
                db::set_revised(conn, creditor_id, debtor_id, amount, settlement).await?;
            }
            None => {
                if let Some(d) = dismissal {
                    dismiss(conn, d, now).await?;
                }
                db::delete_lock(conn, creditor_id, debtor_id).await?;
            }
        }
    }
    if participation.is_some() {
        db::delete_participation(conn, creditor_id, debtor_id, turn_id).await?;
    }
    Ok(())
}

/// A prepared transfer to commit or to give up.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dismissal {
    pub creditor_id: i64,
    pub debtor_id: i64,
    pub transfer_id: i64,
    pub coordinator_id: i64,
    pub coordinator_request_id: i64,
}

impl Dismissal {
    /// The transfer of a `PreparedTransfer` message.
    pub fn of_prepared(m: &PreparedTransfer) -> Self {
        Self {
            creditor_id: m.creditor_id,
            debtor_id: m.debtor_id,
            transfer_id: m.transfer_id,
            coordinator_id: m.coordinator_id,
            coordinator_request_id: m.coordinator_request_id,
        }
    }
}

/// Gives up a prepared transfer: `FinalizeTransfer` with committed amount 0 and no note.
pub(super) async fn dismiss(
    conn: &mut AsyncPgConnection,
    d: Dismissal,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    finalize(conn, d, 0, String::new(), String::new(), now).await
}

/// Commits a prepared transfer: `FinalizeTransfer` of `amount` with the turn's `note`.
pub(super) async fn commit(
    conn: &mut AsyncPgConnection,
    d: Dismissal,
    amount: i64,
    note: TransferNote,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let format = AGENT_TRANSFER_NOTE_FORMAT.to_owned();
    finalize(conn, d, amount, format, note.to_string(), now).await
}

async fn finalize(
    conn: &mut AsyncPgConnection,
    d: Dismissal,
    committed_amount: i64,
    transfer_note_format: String,
    transfer_note: String,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let message = FinalizeTransfer {
        creditor_id: d.creditor_id,
        debtor_id: d.debtor_id,
        transfer_id: d.transfer_id,
        coordinator_id: d.coordinator_id,
        coordinator_request_id: d.coordinator_request_id,
        committed_amount,
        transfer_note_format,
        transfer_note,
        ts: now,
    };
    outbox::emit(conn, message).await?;
    Ok(())
}

/// Transfers of other coordinators never reach this service's queues; one that does is a
/// broken expectation.
pub(super) fn check_agent(coordinator_type: &str) -> Result<(), HandlerError> {
    if coordinator_type == AGENT_COORDINATOR_TYPE {
        Ok(())
    } else {
        Err(HandlerError::Fatal(format!(
            "Unexpected coordinator type: \"{coordinator_type}\""
        )))
    }
}
