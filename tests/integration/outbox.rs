//! The outbox: `emit` stores every signal type, and the flushers publish and delete them.

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use swpt_trade::db::Database;
use swpt_trade::db::worker::outbox::lock_batch;
use swpt_trade::messages::*;
use swpt_trade::outbox::{SignalKind, emit};

use crate::util::TestDb;

pub fn ts(micros: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
        + chrono::Duration::microseconds(micros.into())
}

/// One message of each of the 16 types, in the flushing order.
pub fn one_of_each() -> Vec<OutgoingMessage> {
    let date = NaiveDate::from_ymd_opt(2023, 1, 31).unwrap();
    vec![
        ConfigureAccount {
            debtor_id: 666,
            creditor_id: 777,
            ts: ts(1),
            seqnum: 3,
            negligible_amount: 1e30,
            config_data: "{\"k\":\"ü\"}".into(),
            config_flags: 1,
        }
        .into(),
        PrepareTransfer {
            creditor_id: 777,
            debtor_id: 666,
            coordinator_request_id: 5,
            min_locked_amount: 0,
            max_locked_amount: 10,
            recipient: "acc".into(),
            final_interest_rate_ts: Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            max_commit_delay: i32::MAX,
            ts: ts(123_456),
        }
        .into(),
        FinalizeTransfer {
            creditor_id: 777,
            debtor_id: 666,
            transfer_id: 9,
            coordinator_id: 777,
            coordinator_request_id: 5,
            committed_amount: 100,
            transfer_note_format: "-cXchge".into(),
            transfer_note: "note".into(),
            ts: ts(3),
        }
        .into(),
        FetchDebtorInfo {
            iri: "https://example.com/iri".into(),
            debtor_id: 666,
            is_locator_fetch: true,
            is_discovery_fetch: false,
            forced_iri: None,
            recursion_level: 2,
            ts: ts(4),
        }
        .into(),
        StoreDocument {
            debtor_info_locator: "https://example.com/test".into(),
            debtor_id: 666,
            peg_debtor_info_locator: Some("https://example.com/peg".into()),
            peg_debtor_id: Some(-5),
            peg_exchange_rate: Some(2.5),
            will_not_change_until: Some(ts(7)),
            ts: ts(5),
        }
        .into(),
        DiscoverDebtor {
            debtor_id: 666,
            iri: "https://example.com/iri".into(),
            force_locator_refetch: true,
            ts: ts(6),
        }
        .into(),
        ConfirmDebtor {
            debtor_id: 666,
            debtor_info_locator: "https://example.com/test".into(),
            ts: ts(7),
        }
        .into(),
        ActivateCollector {
            debtor_id: 666,
            creditor_id: 123,
            account_id: "collector-acc".into(),
            ts: ts(8),
        }
        .into(),
        CandidateOffer {
            turn_id: 32_000,
            debtor_id: 666,
            creditor_id: 123,
            amount: -1000,
            account_creation_date: date,
            last_transfer_number: 4,
            ts: ts(9),
        }
        .into(),
        NeededCollector {
            debtor_id: -123,
            ts: ts(10),
        }
        .into(),
        ReviseAccountLock {
            creditor_id: 123,
            debtor_id: 666,
            turn_id: 70_000,
            ts: ts(11),
        }
        .into(),
        TriggerTransfer {
            collector_id: 4_294_967_296,
            turn_id: 2,
            debtor_id: 666,
            creditor_id: 123,
            is_dispatching: true,
            ts: ts(12),
        }
        .into(),
        AccountIdRequest {
            collector_id: 4_294_967_296,
            turn_id: 2,
            debtor_id: 666,
            creditor_id: 123,
            is_dispatching: false,
            ts: ts(13),
        }
        .into(),
        AccountIdResponse {
            collector_id: 4_294_967_296,
            turn_id: 2,
            debtor_id: 666,
            creditor_id: 123,
            is_dispatching: false,
            account_id: "acc123".into(),
            account_id_version: 1,
            ts: ts(14),
        }
        .into(),
        StartSending {
            collector_id: 4_294_967_296,
            turn_id: 2,
            debtor_id: 666,
            ts: ts(15),
        }
        .into(),
        StartDispatching {
            collector_id: 4_294_967_296,
            turn_id: 2,
            debtor_id: 666,
            ts: ts(16),
        }
        .into(),
    ]
}

/// Emits `messages` in one transaction.
pub async fn emit_all(conn: &mut AsyncPgConnection, messages: &[OutgoingMessage]) {
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        for m in messages {
            emit(conn, m.clone()).await?;
        }
        Ok(())
    })
    .await
    .expect("emit the messages");
}

/// Every message still waiting in `kind`'s table.
pub async fn pending(conn: &mut AsyncPgConnection, kind: SignalKind) -> Vec<OutgoingMessage> {
    let rows = lock_batch(conn, kind, i64::MAX)
        .await
        .expect("read the outbox");
    rows.into_iter().map(|r| r.message).collect()
}

#[tokio::test]
async fn emit_stores_every_type_and_reads_back_the_same_message() {
    let db = TestDb::migrated(Database::Worker).await;
    let mut conn = db.connect().await;
    let messages = one_of_each();
    emit_all(&mut conn, &messages).await;
    for (kind, message) in SignalKind::ALL.into_iter().zip(&messages) {
        assert_eq!(SignalKind::of(message), kind);
        assert_eq!(
            pending(&mut conn, kind).await,
            vec![message.clone()],
            "{kind}"
        );
        let body = String::from_utf8(message.to_json()).unwrap();
        validate_outgoing(kind.message_type(), body.as_bytes()).expect("a valid body");
    }
    let OutgoingMessage::ConfigureAccount(ca) =
        &pending(&mut conn, SignalKind::ConfigureAccount).await[0]
    else {
        unreachable!()
    };
    assert_eq!(
        ca.negligible_amount, 1e30,
        "the real column reads back as 1e30"
    );
    let body = String::from_utf8(messages[0].to_json()).unwrap();
    assert!(body.contains("\"negligible_amount\":1e+30"), "{body}");
}

#[tokio::test]
async fn emit_refuses_values_its_column_cannot_hold() {
    let db = TestDb::migrated(Database::Worker).await;
    let mut conn = db.connect().await;
    let OutgoingMessage::CandidateOffer(mut offer) = one_of_each().remove(8) else {
        unreachable!()
    };
    offer.turn_id = 40_000;
    let err = emit(&mut conn, offer).await.unwrap_err();
    assert!(
        matches!(err, diesel::result::Error::SerializationError(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("turn_id 40000"), "{err}");
    assert!(
        pending(&mut conn, SignalKind::CandidateOffer)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn emit_rolls_back_with_the_callers_transaction() {
    let db = TestDb::migrated(Database::Worker).await;
    let mut conn = db.connect().await;
    let messages = one_of_each();
    let result = conn
        .transaction::<(), diesel::result::Error, _>(async |conn| {
            emit(conn, messages[9].clone()).await?;
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(result.is_err());
    assert!(
        pending(&mut conn, SignalKind::NeededCollector)
            .await
            .is_empty()
    );
}
