//! A turn's money flow (see `docs/turns.md#transfers`): the turn's `AccountTransfer`s mark
//! collectings, sendings, receivings and dispatchings done and release account locks;
//! `StartSending`/`StartDispatching` turn a collector's plans into transfer attempts;
//! `AccountIdRequest`/`AccountIdResponse` find an attempt's recipient; `TriggerTransfer`,
//! `PreparedTransfer`, `RejectedTransfer` and `FinalizedTransfer` drive the attempts.

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;

use super::HandlerError;
use super::locks::{self, Dismissal, check_agent, dismiss};
use crate::config::Config;
use crate::db::worker::locks as lock_db;
use crate::db::worker::transfers::{self as db, AttemptKey, EarlyKind, Stage, StatusKey};
use crate::messages::{
    AccountIdRequest, AccountIdResponse, AccountTransfer, FinalizedTransfer, PrepareTransfer,
    PreparedTransfer, RejectedTransfer, TriggerTransfer,
};
use crate::outbox;
use crate::transfers::attempts::{
    Action, AttemptSettings, AttemptState, contained_sum, demurrage_info, scaled_transfers,
};
use crate::transfers::{
    AGENT_TRANSFER_NOTE_FORMAT, NoteKind, TransferNote, collector_trade_position,
};

/// The attempt that a `TriggerTransfer` or `AccountIdResponse` names.
macro_rules! attempt_key {
    ($m:expr) => {
        AttemptKey::new(
            $m.collector_id,
            $m.turn_id,
            $m.debtor_id,
            $m.creditor_id,
            $m.is_dispatching,
        )
    };
}

/// The settings of transfer attempts.
fn attempt_settings(config: &Config) -> AttemptSettings {
    AttemptSettings {
        healthy_max_commit_delay: config.worker.transfers_healthy_max_commit_delay,
        amount_cut: config.worker.transfers_amount_cut,
    }
}

/// `AccountTransfer`: a committed transfer of one of this shard's accounts. Only this
/// service's turn transfers count (coordinator `agent`, note format `-cXchge`, a note that
/// names the account as the party that paid or was paid); every change is made at most once,
/// and a transfer whose plan row is not (or no longer) here changes nothing.
pub async fn account_transfer(
    conn: &mut AsyncPgConnection,
    config: &Config,
    m: &AccountTransfer,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    if m.coordinator_type != crate::messages::AGENT_COORDINATOR_TYPE {
        return Ok(());
    }
    if m.transfer_note_format != AGENT_TRANSFER_NOTE_FORMAT {
        tracing::warn!(
            "Unexpected transfer note format: {:?} (creditor {}, debtor {}, transfer {}).",
            m.transfer_note_format,
            m.creditor_id,
            m.debtor_id,
            m.transfer_number
        );
        return Ok(());
    }
    let note = match TransferNote::parse(&m.transfer_note) {
        Some(note) if note.fits(m.creditor_id, m.acquired_amount) => note,
        _ => {
            tracing::warn!(
                "Invalid transfer note: {:?} (creditor {}, debtor {}, transfer {}, amount {}).",
                m.transfer_note,
                m.creditor_id,
                m.debtor_id,
                m.transfer_number,
                m.acquired_amount
            );
            return Ok(());
        }
    };
    let is_collector =
        (config.worker.min_collector_id..=config.worker.max_collector_id).contains(&m.creditor_id);
    let position = if is_collector {
        collector_trade_position()
    } else {
        (m.creation_date, m.transfer_number)
    };
    let key = StatusKey {
        collector_id: m.creditor_id,
        turn_id: note.turn_id,
        debtor_id: m.debtor_id,
    };
    let paid = m.acquired_amount < 0;
    match (note.kind, paid) {
        (NoteKind::Collecting, true) => {
            lock_db::release_seller_lock(
                conn,
                m.creditor_id,
                m.debtor_id,
                note.turn_id,
                m.acquired_amount,
                position,
                now,
            )
            .await?;
        }
        (NoteKind::Collecting, false) => {
            if !db::mark_collected(conn, key, note.second_id, m.acquired_amount).await? {
                keep_if_early(conn, key, EarlyKind::Collecting, note.second_id, m, now).await?;
            }
        }
        (NoteKind::Sending, true) => {
            db::delete_sending(conn, key, note.second_id).await?;
        }
        (NoteKind::Sending, false) => {
            if !db::set_received(conn, key, note.first_id, m.acquired_amount).await? {
                keep_if_early(conn, key, EarlyKind::Sending, note.first_id, m, now).await?;
            }
        }
        (NoteKind::Dispatching, true) => {
            db::delete_dispatching(conn, key, note.second_id).await?;
        }
        (NoteKind::Dispatching, false) => {
            let released = lock_db::release_buyer_lock(
                conn,
                m.creditor_id,
                m.debtor_id,
                note.turn_id,
                position,
                now,
            )
            .await?;
            if let Some(lock) = released
                && !lock.is_self_lock()
                && let Some(transfer_id) = lock.transfer_id
            {
                // The buyer was paid: its empty prepared transfer is not needed any more.
                let dismissal = Dismissal {
                    creditor_id: m.creditor_id,
                    debtor_id: m.debtor_id,
                    transfer_id,
                    coordinator_id: m.creditor_id,
                    coordinator_request_id: lock.coordinator_request_id,
                };
                dismiss(conn, dismissal, now).await?;
            }
        }
    }
    Ok(())
}

/// A collector's receipt that matched no plan row: if this shard has not copied the turn's
/// plans yet (shards copy them independently), it is kept until the copy applies it; unlike
/// the reference, which loses such a receipt (docs/turns.md#early-transfers).
async fn keep_if_early(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
    kind: EarlyKind,
    other_id: i64,
    m: &AccountTransfer,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    if !db::plans_copied(conn, key.turn_id).await? {
        db::insert_early_transfer(conn, key, kind, other_id, m.acquired_amount, now).await?;
    }
    Ok(())
}

/// `PreparedTransfer`: through the account lock or the transfer attempt that asked for it;
/// a transfer nothing asked for (any more) is dismissed, so that nothing stays locked.
pub async fn prepared_transfer(
    conn: &mut AsyncPgConnection,
    config: &Config,
    m: &PreparedTransfer,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    check_agent(&m.coordinator_type)?;
    if locks::prepared_through_lock(conn, config, m, now).await? {
        return Ok(());
    }
    if let Some((key, mut attempt)) =
        db::lock_attempt_of_request(conn, m.coordinator_id, m.coordinator_request_id).await?
        && key.debtor_id == m.debtor_id
        && key.collector_id == m.creditor_id
        && attempt.failure_code.is_none()
    {
        if attempt.transfer_id.is_none() {
            metrics::counter!("swpt_trade_transfer_attempts_total", "outcome" => "prepared")
                .increment(1);
            attempt.transfer_id = Some(m.transfer_id);
            attempt.finalized_at = Some(now);
            db::save_attempt(conn, key, &attempt).await?;
        }
        if attempt.transfer_id == Some(m.transfer_id) {
            // Committed every time it is prepared: a lost commit is sent again.
            let kind = if key.is_dispatching {
                NoteKind::Dispatching
            } else {
                NoteKind::Sending
            };
            let note = TransferNote {
                turn_id: key.turn_id,
                kind,
                first_id: key.collector_id,
                second_id: key.creditor_id,
            };
            let amount = attempt.amount.ok_or_else(|| {
                HandlerError::Fatal(format!("transfer attempt {key:?} prepared without amount"))
            })?;
            locks::commit(conn, Dismissal::of_prepared(m), amount, note, now).await?;
            return Ok(());
        }
    }
    dismiss(conn, Dismissal::of_prepared(m), now).await
}

/// `RejectedTransfer`: through the account lock or the transfer attempt that asked for it;
/// an attempt still waiting for its preparation fails with the status code.
pub async fn rejected_transfer(
    conn: &mut AsyncPgConnection,
    config: &Config,
    m: &RejectedTransfer,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    check_agent(&m.coordinator_type)?;
    if locks::rejected_through_lock(conn, m).await? {
        return Ok(());
    }
    if let Some((key, mut attempt)) =
        db::lock_attempt_of_request(conn, m.coordinator_id, m.coordinator_request_id).await?
        && attempt.transfer_id.is_none()
        && attempt.failure_code.is_none()
    {
        fail_attempt(conn, config, key, &mut attempt, &m.status_code, now).await?;
    }
    Ok(())
}

/// `FinalizedTransfer`: the end of an attempt's committed transfer — deleted when the whole
/// amount was committed, otherwise failed with the status code.
pub async fn finalized_transfer(
    conn: &mut AsyncPgConnection,
    config: &Config,
    m: &FinalizedTransfer,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    check_agent(&m.coordinator_type)?;
    let Some((key, mut attempt)) =
        db::lock_attempt_of_request(conn, m.coordinator_id, m.coordinator_request_id).await?
    else {
        return Ok(());
    };
    let expected = key.debtor_id == m.debtor_id
        && key.collector_id == m.creditor_id
        && attempt.transfer_id == Some(m.transfer_id)
        && attempt.failure_code.is_none()
        && attempt.finalized_at.is_some();
    if !expected {
        return Ok(());
    }
    if m.status_code == "OK" && Some(m.committed_amount) == attempt.amount {
        metrics::counter!("swpt_trade_transfer_attempts_total", "outcome" => "committed")
            .increment(1);
        db::delete_attempt(conn, key).await?;
        return Ok(());
    }
    let status = if m.committed_amount != 0 {
        tracing::error!(
            "Unexpected committed amount {} of transfer attempt {key:?} (expected {:?}).",
            m.committed_amount,
            attempt.amount
        );
        "UNEXPECTED_COMMITTED_AMOUNT"
    } else {
        m.status_code.as_str()
    };
    fail_attempt(conn, config, key, &mut attempt, status, now).await
}

async fn fail_attempt(
    conn: &mut AsyncPgConnection,
    config: &Config,
    key: AttemptKey,
    attempt: &mut AttemptState,
    status_code: &str,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let action = attempt.fail(status_code, &attempt_settings(config), now);
    metrics::counter!("swpt_trade_transfer_attempts_total", "outcome" => "failed").increment(1);
    db::save_attempt(conn, key, attempt).await?;
    act(conn, key, action, attempt, now).await
}

/// Sends what a rule asked for.
async fn act(
    conn: &mut AsyncPgConnection,
    key: AttemptKey,
    action: Action,
    attempt: &AttemptState,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    match action {
        Action::None => {}
        Action::RequestAccountId => {
            outbox::emit(conn, account_id_request(key, now)).await?;
        }
        Action::Prepare {
            coordinator_request_id,
            final_interest_rate_ts,
            max_commit_delay,
            ..
        } => {
            outbox::emit(
                conn,
                PrepareTransfer {
                    creditor_id: key.collector_id,
                    debtor_id: key.debtor_id,
                    coordinator_request_id,
                    min_locked_amount: 0,
                    max_locked_amount: 0,
                    recipient: attempt.recipient.clone(),
                    final_interest_rate_ts,
                    max_commit_delay,
                    ts: now,
                },
            )
            .await?;
        }
    }
    Ok(())
}

fn account_id_request(key: AttemptKey, now: DateTime<Utc>) -> AccountIdRequest {
    AccountIdRequest {
        collector_id: key.collector_id,
        turn_id: key.turn_id,
        debtor_id: key.debtor_id,
        creditor_id: key.creditor_id,
        is_dispatching: key.is_dispatching,
        ts: now,
    }
}

/// Tries the attempt if it can be tried (see `AttemptState::trigger`) and stores it.
async fn trigger_if_possible(
    conn: &mut AsyncPgConnection,
    config: &Config,
    key: AttemptKey,
    attempt: &mut AttemptState,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    if !attempt.can_be_triggered() {
        return Ok(());
    }
    let account = db::collector_interest_rate(conn, key.collector_id, key.debtor_id).await?;
    let changes = if account.is_some() {
        db::interest_rate_changes(conn, key.collector_id, key.debtor_id).await?
    } else {
        Vec::new()
    };
    let info = demurrage_info(account, changes, attempt.collection_started_at);
    let request_id = lock_db::next_coordinator_request_id(conn).await?;
    let action = attempt.trigger(info, request_id, &attempt_settings(config), now);
    db::save_attempt(conn, key, attempt).await?;
    act(conn, key, action, attempt, now).await
}

/// `TriggerTransfer`: tries the attempt again after its back-off pause.
pub async fn trigger_transfer(
    conn: &mut AsyncPgConnection,
    config: &Config,
    m: &TriggerTransfer,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let key = attempt_key!(m);
    if let Some(mut attempt) = db::lock_attempt(conn, key).await? {
        trigger_if_possible(conn, config, key, &mut attempt, now).await?;
    }
    Ok(())
}

/// `AccountIdRequest` (on the recipient's shard): answers with the recipient's account ID —
/// a customer's from its trading policy, a collector's from its account — and its version;
/// an empty ID when the account is unknown here.
pub async fn account_id_request_handler(
    conn: &mut AsyncPgConnection,
    m: &AccountIdRequest,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let (account_id, account_id_version) =
        match db::policy_account_id(conn, m.creditor_id, m.debtor_id).await? {
            Some(found) => found,
            None => match db::collector_account_id(conn, m.creditor_id, m.debtor_id).await? {
                Some((account_id, creation_date)) => {
                    let (date0, _) = collector_trade_position();
                    (account_id, (creation_date - date0).num_days())
                }
                None => (String::new(), i64::MIN),
            },
        };
    outbox::emit(
        conn,
        AccountIdResponse {
            collector_id: m.collector_id,
            turn_id: m.turn_id,
            debtor_id: m.debtor_id,
            creditor_id: m.creditor_id,
            is_dispatching: m.is_dispatching,
            account_id,
            account_id_version,
            ts: now,
        },
    )
    .await?;
    Ok(())
}

/// `AccountIdResponse` (on the collector's shard): an attempt that needs its recipient takes
/// a newer account ID and is tried at once.
pub async fn account_id_response(
    conn: &mut AsyncPgConnection,
    config: &Config,
    m: &AccountIdResponse,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let key = attempt_key!(m);
    let Some(mut attempt) = db::lock_attempt(conn, key).await? else {
        return Ok(());
    };
    if !attempt.needs_recipient() || attempt.recipient_version >= m.account_id_version {
        return Ok(());
    }
    let changed = attempt.set_recipient(&m.account_id, m.account_id_version);
    db::save_attempt(conn, key, &attempt).await?;
    if changed {
        trigger_if_possible(conn, config, key, &mut attempt, now).await?;
    }
    Ok(())
}

/// `StartSending` and `StartDispatching`: the collector's collecting (resp. sending and
/// receiving) is over; its planned transfers to other collectors (resp. to buyers) become
/// transfer attempts, scaled down to what actually arrived, and their recipients' account
/// IDs are asked for.
pub async fn start_stage(
    conn: &mut AsyncPgConnection,
    key: StatusKey,
    stage: Stage,
    now: DateTime<Utc>,
) -> Result<(), HandlerError> {
    let Some((mut progress, turn)) = db::lock_awaiting_status(conn, key, stage).await? else {
        return Ok(());
    };
    let Some(Some(collection_started_at)) = turn else {
        return Err(HandlerError::Fatal(format!(
            "dispatching status {key:?} without its turn's collection start"
        )));
    };
    let (available, total) = match stage {
        Stage::Sending => {
            let total_collected = contained_sum(db::take_collectings(conn, key).await?);
            db::start_sending(conn, key, total_collected).await?;
            progress.total_collected_amount = Some(total_collected);
            (progress.available_to_send(), progress.amount_to_send)
        }
        Stage::Dispatching => {
            let total_received = contained_sum(db::take_receivings(conn, key).await?);
            db::start_dispatching(conn, key, total_received).await?;
            progress.total_received_amount = Some(total_received);
            (
                progress.available_to_dispatch(),
                progress.amount_to_dispatch,
            )
        }
    };
    let planned = db::planned_transfers(conn, key, stage).await?;
    let transfers = scaled_transfers(planned, available, total);
    let is_dispatching = stage == Stage::Dispatching;
    db::insert_attempts(
        conn,
        key,
        is_dispatching,
        collection_started_at,
        now,
        &transfers,
    )
    .await?;
    for &(creditor_id, _) in &transfers {
        let attempt = AttemptKey::new(
            key.collector_id,
            key.turn_id,
            key.debtor_id,
            creditor_id,
            is_dispatching,
        );
        outbox::emit(conn, account_id_request(attempt, now)).await?;
    }
    Ok(())
}

/// The status key of a `StartSending` or `StartDispatching` message.
pub fn status_key(collector_id: i64, turn_id: i32, debtor_id: i64) -> StatusKey {
    StatusKey {
        collector_id,
        turn_id,
        debtor_id,
    }
}
