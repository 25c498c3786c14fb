//! Cross-module tests of the message codecs: round trips, exact bodies and envelopes.

mod edits;
mod rejects;
mod samples;
mod schema_rules;

use std::collections::BTreeSet;

use super::*;
use samples::{finalize_transfer, prepare_transfer};

#[test]
fn samples_cover_every_type() {
    let incoming: BTreeSet<_> = samples::incoming()
        .iter()
        .map(|m| m.message_type())
        .collect();
    assert_eq!(incoming.len(), 23);
    assert_eq!(IncomingMessage::TYPES.len(), 23);
    let outgoing: BTreeSet<_> = samples::outgoing()
        .iter()
        .map(|m| m.message_type())
        .collect();
    assert_eq!(outgoing.len(), 16);
    assert_eq!(OutgoingMessage::TYPES.len(), 16);
}

#[test]
fn incoming_round_trip() {
    for m in samples::incoming() {
        let body = m.to_json();
        let decoded = decode_delivery(Some("application/json"), Some(m.message_type()), &body);
        assert_eq!(
            decoded.as_ref(),
            Ok(&m),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn outgoing_round_trip() {
    for m in samples::outgoing() {
        let body = m.to_json();
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(
            validate_outgoing(m.message_type(), &body).as_ref(),
            Ok(&m),
            "{text}"
        );
        match samples::internal_as_incoming(m.clone()) {
            // Internal messages are consumed by workers: the consumer must accept them.
            Some(expected) => {
                let decoded = decode(m.message_type(), &body).expect(&text);
                assert_eq!(decoded, expected);
                assert_eq!(decoded.sharding_key(), m.sharding_key());
            }
            // The worker never consumes its own SMP requests.
            None => assert!(matches!(
                decode(m.message_type(), &body),
                Err(DecodeError::UnknownType(_))
            )),
        }
    }
}

#[test]
fn prepare_transfer_body_is_byte_exact() {
    // The example of docs/messages.md#message-format.
    let body = OutgoingMessage::from(prepare_transfer()).to_json();
    let expected = r#"{"type":"PrepareTransfer","creditor_id":777,"debtor_id":666,"coordinator_type":"agent","coordinator_id":777,"coordinator_request_id":5,"min_locked_amount":0,"max_locked_amount":0,"recipient":"acc","final_interest_rate_ts":"9999-12-31T23:59:59+00:00","max_commit_delay":2147483647,"ts":"2024-05-01T12:00:00.123456+00:00"}"#;
    assert_eq!(String::from_utf8(body).unwrap(), expected);
}

#[test]
fn bodies_use_reference_field_order_and_formats() {
    let by_type = |t: &str| {
        let m = samples::outgoing()
            .into_iter()
            .find(|m| m.message_type() == t)
            .unwrap();
        String::from_utf8(m.to_json()).unwrap()
    };
    assert_eq!(
        by_type("ConfigureAccount"),
        r#"{"type":"ConfigureAccount","debtor_id":666,"creditor_id":124,"ts":"2024-05-01T12:00:00+00:00","seqnum":0,"negligible_amount":1.0000000150474662e+30,"config_data":"","config_flags":1}"#
    );
    assert_eq!(
        by_type("FinalizeTransfer"),
        r#"{"type":"FinalizeTransfer","creditor_id":888,"debtor_id":666,"transfer_id":124,"coordinator_type":"agent","coordinator_id":888,"coordinator_request_id":7890,"committed_amount":9000,"transfer_note_format":"-cXchge","transfer_note":"Trading session: 1\nBuyer: 3e7\nSeller: 378\n","ts":"2024-05-01T12:00:00.123456+00:00"}"#
    );
    assert_eq!(
        by_type("FetchDebtorInfo"),
        r#"{"type":"FetchDebtorInfo","iri":"https://example.com/666","debtor_id":666,"is_locator_fetch":true,"is_discovery_fetch":false,"forced_iri":null,"recursion_level":4,"ts":"2024-05-01T12:00:00.123456+00:00"}"#
    );
    assert_eq!(
        by_type("StoreDocument"),
        r#"{"type":"StoreDocument","debtor_info_locator":"https://example.com/666","debtor_id":666,"peg_debtor_info_locator":"https://example.com/777","peg_debtor_id":777,"peg_exchange_rate":3.25,"will_not_change_until":"2030-01-01T00:00:00+00:00","ts":"2024-05-01T12:00:00.123456+00:00"}"#
    );
    assert_eq!(
        by_type("CandidateOffer"),
        r#"{"type":"CandidateOffer","turn_id":1,"debtor_id":666,"creditor_id":777,"amount":-9223372036854775807,"account_creation_date":"2024-01-01","last_transfer_number":3,"ts":"2024-05-01T12:00:00.123456+00:00"}"#
    );
    assert_eq!(
        by_type("AccountIdResponse"),
        r#"{"type":"AccountIdResponse","collector_id":999,"turn_id":1,"debtor_id":666,"creditor_id":555,"is_dispatching":true,"account_id":"","account_id_version":-9223372036854775808,"ts":"2024-05-01T12:00:00.123456+00:00"}"#
    );
}

fn header(envelope: &MessageEnvelope, name: &str) -> Option<HeaderValue> {
    envelope
        .headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
}

#[test]
fn smp_envelopes() {
    let prepare = OutgoingMessage::from(prepare_transfer()).envelope();
    assert_eq!(prepare.exchange, "creditors_out");
    assert_eq!(prepare.routing_key, "00.00.00.00.00.00.02.9a");
    assert!(!prepare.mandatory);
    let names: Vec<_> = prepare.headers.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "message-type",
            "creditor-id",
            "debtor-id",
            "coordinator-id",
            "coordinator-type"
        ]
    );
    assert_eq!(
        header(&prepare, "message-type"),
        Some(HeaderValue::Str("PrepareTransfer".into()))
    );
    assert_eq!(
        header(&prepare, "coordinator-id"),
        Some(HeaderValue::Int(777))
    );
    assert_eq!(
        header(&prepare, "coordinator-type"),
        Some(HeaderValue::Str("agent".into()))
    );

    let finalize = OutgoingMessage::from(FinalizeTransfer {
        coordinator_id: 5,
        ..finalize_transfer()
    })
    .envelope();
    assert!(finalize.mandatory);
    assert_eq!(
        header(&finalize, "creditor-id"),
        Some(HeaderValue::Int(888))
    );
    assert_eq!(
        header(&finalize, "coordinator-id"),
        Some(HeaderValue::Int(5))
    );

    let configure = samples::outgoing().remove(0).envelope();
    assert_eq!(configure.message_type, "ConfigureAccount");
    assert!(!configure.mandatory);
    assert_eq!(configure.headers.len(), 3);
    assert_eq!(header(&configure, "debtor-id"), Some(HeaderValue::Int(666)));
    assert!(header(&configure, "coordinator-type").is_none());
}

#[test]
fn internal_envelopes() {
    for m in samples::outgoing().into_iter().filter(|m| !m.is_smp()) {
        let e = m.envelope();
        assert_eq!(e.exchange, "to_trade");
        assert_eq!(e.routing_key, m.sharding_key().routing_key());
        assert!(e.mandatory && e.persistent);
        assert_eq!(
            (e.app_id, e.content_type),
            ("swpt_trade", "application/json")
        );
        assert_eq!(e.message_type, m.message_type());
        assert_eq!(
            e.headers,
            vec![(
                "message-type",
                HeaderValue::Str(m.message_type().to_owned())
            )]
        );
        assert_eq!(e.body, m.to_json());
    }
    let revise = ReviseAccountLock {
        creditor_id: 123,
        debtor_id: 1,
        turn_id: 1,
        ts: samples::ts("2024-01-01T00:00:00Z"),
    };
    assert_eq!(
        OutgoingMessage::from(revise).routing_key(),
        "1.1.1.1.1.1.0.0.0.0.0.1.0.0.0.0.0.1.1.0.0.0.1.1"
    );
}

#[test]
fn outgoing_shard_guard() {
    let configure_for = |creditor_id| {
        OutgoingMessage::from(ConfigureAccount {
            debtor_id: 666,
            creditor_id,
            ts: samples::ts("2024-01-01T00:00:00Z"),
            seqnum: 0,
            negligible_amount: 0.0,
            config_data: String::new(),
            config_flags: 0,
        })
    };
    // Creditor 3 hashes to `0.1.…`, creditor 2 to `1.1.…`.
    let zero: ShardingRealm = "0.#".parse().unwrap();
    assert_eq!(
        configure_for(3).shard_guard(&zero, false),
        ShardGuard::Publish
    );
    assert_eq!(
        configure_for(2).shard_guard(&zero, false),
        ShardGuard::NotResponsible
    );
    assert_eq!(configure_for(2).shard_guard(&zero, true), ShardGuard::Skip);

    let zero_one: ShardingRealm = "0.1.#".parse().unwrap();
    let sibling = (0..)
        .find(|id| bin_routing_key(*id).starts_with("0.0."))
        .unwrap();
    assert_eq!(
        configure_for(sibling).shard_guard(&zero_one, true),
        ShardGuard::Skip
    );
    assert_eq!(
        configure_for(2).shard_guard(&zero_one, true),
        ShardGuard::NotResponsible
    );

    // Internal messages are never shard-checked on the way out.
    let needed = OutgoingMessage::from(NeededCollector {
        debtor_id: 2,
        ts: samples::ts("2024-01-01T00:00:00Z"),
    });
    assert_eq!(needed.shard_guard(&zero, false), ShardGuard::Publish);
}

#[test]
fn consumer_shard_check() {
    // The reference's shard-check test (docs/messages.md#shard-check).
    let zero: ShardingRealm = "0.#".parse().unwrap();
    let purge = |creditor_id: i64| {
        let body = format!(
            r#"{{"type":"AccountPurge","debtor_id":4294967296,"creditor_id":{creditor_id},"creation_date":"2098-12-31","ts":"2099-12-31T00:00:00+00:00"}}"#
        );
        decode("AccountPurge", body.as_bytes()).unwrap()
    };
    assert!(!purge(2).belongs_to(&zero));
    assert!(purge(3).belongs_to(&zero));
    assert_eq!(purge(3).sharding_key(), ShardingKey::Id(3));
}
