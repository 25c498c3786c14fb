//! Storing a message in its outbox table, inside the caller's transaction.

use chrono::Utc;
use diesel::result::Error as DieselError;
use diesel::{ExpressionMethods as _, QueryResult, insert_into};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

use crate::db::worker::schema;
use crate::messages::OutgoingMessage;

/// Stores `message` as one row of its `*_signal` table; a flusher publishes it once the
/// caller's transaction has committed (docs/messages.md#the-outbox).
///
/// The message's `ts` becomes the row's `inserted_at`, which the flusher sends back as `ts`.
/// `ConfigureAccount` is the exception: its `ts` has a column of its own (part of the primary
/// key) and `inserted_at` is now.
///
/// # Errors
///
/// Any database error; a duplicate primary key (e.g. the same `CandidateOffer` twice) is a
/// `UniqueViolation`. A value its column cannot hold — a `CandidateOffer` `turn_id` outside
/// `smallint`, a `negligible_amount` outside `real` — is a `SerializationError`, never
/// truncated.
pub async fn emit(
    conn: &mut AsyncPgConnection,
    message: impl Into<OutgoingMessage>,
) -> QueryResult<()> {
    insert(conn, message.into()).await
}

fn out_of_range(what: &str, value: impl std::fmt::Display) -> DieselError {
    DieselError::SerializationError(format!("{what} {value} does not fit its column").into())
}

/// The `real` value of a `double`, refusing what PostgreSQL's `float8 → float4` cast refuses
/// (overflow to infinity, underflow to zero).
fn to_real(what: &str, value: f64) -> QueryResult<f32> {
    let real = value as f32;
    let overflow = real.is_infinite() && value.is_finite();
    let underflow = real == 0.0 && value != 0.0;
    if overflow || underflow {
        return Err(out_of_range(what, value));
    }
    Ok(real)
}

async fn insert(conn: &mut AsyncPgConnection, message: OutgoingMessage) -> QueryResult<()> {
    use OutgoingMessage as M;
    let inserted = match message {
        M::ConfigureAccount(m) => {
            use schema::configure_account_signal::dsl as t;
            let negligible_amount = to_real("negligible_amount", m.negligible_amount)?;
            insert_into(t::configure_account_signal)
                .values((
                    t::creditor_id.eq(m.creditor_id),
                    t::debtor_id.eq(m.debtor_id),
                    t::ts.eq(m.ts),
                    t::seqnum.eq(m.seqnum),
                    t::negligible_amount.eq(negligible_amount),
                    t::config_data.eq(m.config_data),
                    t::config_flags.eq(m.config_flags),
                    t::inserted_at.eq(Utc::now()),
                ))
                .execute(conn)
                .await
        }
        M::PrepareTransfer(m) => {
            use schema::prepare_transfer_signal::dsl as t;
            insert_into(t::prepare_transfer_signal)
                .values((
                    t::creditor_id.eq(m.creditor_id),
                    t::coordinator_request_id.eq(m.coordinator_request_id),
                    t::debtor_id.eq(m.debtor_id),
                    t::recipient.eq(m.recipient),
                    t::min_locked_amount.eq(m.min_locked_amount),
                    t::max_locked_amount.eq(m.max_locked_amount),
                    t::final_interest_rate_ts.eq(m.final_interest_rate_ts),
                    t::max_commit_delay.eq(m.max_commit_delay),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
        M::FinalizeTransfer(m) => {
            use schema::finalize_transfer_signal::dsl as t;
            insert_into(t::finalize_transfer_signal)
                .values((
                    t::creditor_id.eq(m.creditor_id),
                    t::debtor_id.eq(m.debtor_id),
                    t::transfer_id.eq(m.transfer_id),
                    t::coordinator_id.eq(m.coordinator_id),
                    t::coordinator_request_id.eq(m.coordinator_request_id),
                    t::committed_amount.eq(m.committed_amount),
                    t::transfer_note_format.eq(m.transfer_note_format),
                    t::transfer_note.eq(m.transfer_note),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
        M::FetchDebtorInfo(m) => {
            use schema::fetch_debtor_info_signal::dsl as t;
            insert_into(t::fetch_debtor_info_signal)
                .values((
                    t::iri.eq(m.iri),
                    t::debtor_id.eq(m.debtor_id),
                    t::is_locator_fetch.eq(m.is_locator_fetch),
                    t::is_discovery_fetch.eq(m.is_discovery_fetch),
                    t::forced_iri.eq(m.forced_iri),
                    t::recursion_level.eq(m.recursion_level),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
        M::StoreDocument(m) => {
            use schema::store_document_signal::dsl as t;
            insert_into(t::store_document_signal)
                .values((
                    t::debtor_info_locator.eq(m.debtor_info_locator),
                    t::debtor_id.eq(m.debtor_id),
                    t::peg_debtor_info_locator.eq(m.peg_debtor_info_locator),
                    t::peg_debtor_id.eq(m.peg_debtor_id),
                    t::peg_exchange_rate.eq(m.peg_exchange_rate),
                    t::will_not_change_until.eq(m.will_not_change_until),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
        M::DiscoverDebtor(m) => {
            use schema::discover_debtor_signal::dsl as t;
            insert_into(t::discover_debtor_signal)
                .values((
                    t::debtor_id.eq(m.debtor_id),
                    t::force_locator_refetch.eq(m.force_locator_refetch),
                    t::iri.eq(m.iri),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
        M::ConfirmDebtor(m) => {
            use schema::confirm_debtor_signal::dsl as t;
            insert_into(t::confirm_debtor_signal)
                .values((
                    t::debtor_id.eq(m.debtor_id),
                    t::debtor_info_locator.eq(m.debtor_info_locator),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
        M::ActivateCollector(m) => {
            use schema::activate_collector_signal::dsl as t;
            insert_into(t::activate_collector_signal)
                .values((
                    t::debtor_id.eq(m.debtor_id),
                    t::account_id.eq(m.account_id),
                    t::creditor_id.eq(m.creditor_id),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
        M::CandidateOffer(m) => {
            use schema::candidate_offer_signal::dsl as t;
            let turn_id =
                i16::try_from(m.turn_id).map_err(|_| out_of_range("turn_id", m.turn_id))?;
            insert_into(t::candidate_offer_signal)
                .values((
                    t::turn_id.eq(turn_id),
                    t::debtor_id.eq(m.debtor_id),
                    t::creditor_id.eq(m.creditor_id),
                    t::amount.eq(m.amount),
                    t::account_creation_date.eq(m.account_creation_date),
                    t::last_transfer_number.eq(m.last_transfer_number),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
        M::NeededCollector(m) => {
            use schema::needed_collector_signal::dsl as t;
            insert_into(t::needed_collector_signal)
                .values((t::debtor_id.eq(m.debtor_id), t::inserted_at.eq(m.ts)))
                .execute(conn)
                .await
        }
        M::ReviseAccountLock(m) => {
            use schema::revise_account_lock_signal::dsl as t;
            insert_into(t::revise_account_lock_signal)
                .values((
                    t::creditor_id.eq(m.creditor_id),
                    t::debtor_id.eq(m.debtor_id),
                    t::turn_id.eq(m.turn_id),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
        M::TriggerTransfer(m) => {
            use schema::trigger_transfer_signal::dsl as t;
            insert_into(t::trigger_transfer_signal)
                .values((
                    t::collector_id.eq(m.collector_id),
                    t::turn_id.eq(m.turn_id),
                    t::debtor_id.eq(m.debtor_id),
                    t::creditor_id.eq(m.creditor_id),
                    t::is_dispatching.eq(m.is_dispatching),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
        M::AccountIdRequest(m) => {
            use schema::account_id_request_signal::dsl as t;
            insert_into(t::account_id_request_signal)
                .values((
                    t::collector_id.eq(m.collector_id),
                    t::turn_id.eq(m.turn_id),
                    t::debtor_id.eq(m.debtor_id),
                    t::creditor_id.eq(m.creditor_id),
                    t::is_dispatching.eq(m.is_dispatching),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
        M::AccountIdResponse(m) => {
            use schema::account_id_response_signal::dsl as t;
            insert_into(t::account_id_response_signal)
                .values((
                    t::collector_id.eq(m.collector_id),
                    t::turn_id.eq(m.turn_id),
                    t::debtor_id.eq(m.debtor_id),
                    t::creditor_id.eq(m.creditor_id),
                    t::is_dispatching.eq(m.is_dispatching),
                    t::account_id.eq(m.account_id),
                    t::account_id_version.eq(m.account_id_version),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
        M::StartSending(m) => {
            use schema::start_sending_signal::dsl as t;
            insert_into(t::start_sending_signal)
                .values((
                    t::collector_id.eq(m.collector_id),
                    t::turn_id.eq(m.turn_id),
                    t::debtor_id.eq(m.debtor_id),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
        M::StartDispatching(m) => {
            use schema::start_dispatching_signal::dsl as t;
            insert_into(t::start_dispatching_signal)
                .values((
                    t::collector_id.eq(m.collector_id),
                    t::turn_id.eq(m.turn_id),
                    t::debtor_id.eq(m.debtor_id),
                    t::inserted_at.eq(m.ts),
                ))
                .execute(conn)
                .await
        }
    };
    inserted.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::to_real;

    #[test]
    fn reals_are_refused_rather_than_saturated() {
        assert_eq!(to_real("x", 1e30).unwrap(), 1e30_f32);
        assert_eq!(to_real("x", 0.0).unwrap(), 0.0);
        assert!(to_real("x", 1e39).is_err());
        assert!(to_real("x", 1e-50).is_err());
    }
}
