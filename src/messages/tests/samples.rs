//! One realistic value of every message type, shared by the codec tests.

use chrono::{DateTime, NaiveDate, Utc};

use crate::messages::*;

pub fn ts(s: &str) -> DateTime<Utc> {
    parse_datetime(s).expect("valid test timestamp")
}

pub fn date(s: &str) -> NaiveDate {
    parse_date(s).expect("valid test date")
}

fn now() -> DateTime<Utc> {
    ts("2024-05-01T12:00:00.123456Z")
}

pub fn account_update() -> AccountUpdate {
    AccountUpdate {
        debtor_id: 666,
        creditor_id: 123,
        creation_date: date("2024-01-02"),
        last_change_ts: ts("2024-05-01T11:00:00Z"),
        last_change_seqnum: -5,
        principal: -1000,
        interest: 12.5,
        interest_rate: 5.0,
        last_interest_rate_change_ts: ts("1970-01-11T00:00:00Z"),
        last_config_ts: ts("2024-04-01T00:00:00Z"),
        last_config_seqnum: 7,
        negligible_amount: 1e30,
        config_flags: 1,
        config_data: "конфиг".to_owned(),
        account_id: "Account123".to_owned(),
        debtor_info_iri: "https://example.com/666".to_owned(),
        debtor_info_content_type: "application/vnd.swaptacular.coin-info+json".to_owned(),
        debtor_info_sha256: "ab".repeat(32),
        last_transfer_number: 42,
        last_transfer_committed_at: ts("2024-04-30T00:00:00.5Z"),
        demurrage_rate: -49.5,
        commit_period: 2_592_000,
        transfer_note_max_bytes: 500,
        ts: now(),
        ttl: 10000,
    }
}

pub fn account_transfer() -> AccountTransfer {
    AccountTransfer {
        debtor_id: 666,
        creditor_id: 777,
        creation_date: date("2024-01-02"),
        transfer_number: 5,
        coordinator_type: "agent".to_owned(),
        sender: "1234".to_owned(),
        recipient: "5678".to_owned(),
        acquired_amount: -80000,
        transfer_note_format: "-cXchge".to_owned(),
        transfer_note: "Trading session: 1\nBuyer: 3e7\nSeller: 378\n".to_owned(),
        committed_at: ts("2024-05-01T10:00:00Z"),
        principal: 1000,
        ts: now(),
        previous_transfer_number: 4,
    }
}

pub fn incoming() -> Vec<IncomingMessage> {
    use IncomingMessage as M;
    let finalized = FinalizedTransfer {
        debtor_id: 666,
        creditor_id: 999,
        coordinator_type: "agent".to_owned(),
        coordinator_id: 999,
        coordinator_request_id: 7,
        transfer_id: 12345,
        committed_amount: 981_760_000,
        status_code: "OK".to_owned(),
        total_locked_amount: 0,
        prepared_at: ts("2024-05-01T11:59:00Z"),
        ts: now(),
    };
    let mut v = vec![
        M::RejectedConfig(RejectedConfig {
            debtor_id: 666,
            creditor_id: 123,
            config_ts: ts("2024-05-01T11:00:00Z"),
            config_seqnum: 0,
            config_flags: 1,
            config_data: String::new(),
            negligible_amount: 1e30,
            rejection_code: "NO_CONNECTION_TO_DEBTOR".to_owned(),
            ts: now(),
        }),
        M::AccountUpdate(account_update()),
        M::AccountPurge(AccountPurge {
            debtor_id: 4294967296,
            creditor_id: 3,
            creation_date: date("2098-12-31"),
            ts: ts("2099-12-31T00:00:00+00:00"),
        }),
        M::AccountTransfer(account_transfer()),
        M::RejectedTransfer(RejectedTransfer {
            debtor_id: 666,
            creditor_id: 777,
            coordinator_type: "agent".to_owned(),
            coordinator_id: 777,
            coordinator_request_id: 7,
            status_code: "INSUFFICIENT_AVAILABLE_AMOUNT".to_owned(),
            total_locked_amount: 100,
            ts: now(),
        }),
        M::PreparedTransfer(PreparedTransfer {
            debtor_id: 666,
            creditor_id: 888,
            coordinator_type: "agent".to_owned(),
            coordinator_id: 888,
            coordinator_request_id: i64::MIN,
            transfer_id: 123,
            locked_amount: 10000,
            recipient: "TestCollectorAccount999".to_owned(),
            prepared_at: ts("2024-05-01T11:59:00Z"),
            demurrage_rate: -49.0,
            deadline: ts("2027-01-26T12:00:00Z"),
            final_interest_rate_ts: ts("9999-12-31T23:59:59Z"),
            ts: now(),
        }),
        M::FinalizedTransfer(finalized.clone()),
        M::FinalizedTransfer(FinalizedTransfer {
            committed_amount: 0,
            status_code: "TIMEOUT".to_owned(),
            ..finalized
        }),
        M::UpdatedLedger(UpdatedLedger {
            debtor_id: 666,
            creditor_id: -777,
            update_id: 123,
            account_id: "test_account".to_owned(),
            creation_date: date("2021-06-18"),
            principal: 10000,
            last_transfer_number: 0,
            ts: now(),
        }),
        M::UpdatedPolicy(UpdatedPolicy {
            debtor_id: 666,
            creditor_id: -777,
            update_id: 124,
            policy_name: Some("conservative".to_owned()),
            min_principal: i64::MIN,
            max_principal: i64::MAX,
            peg_exchange_rate: Some(3.25),
            peg_debtor_id: Some(777),
            ts: now(),
        }),
        M::UpdatedPolicy(UpdatedPolicy {
            debtor_id: 666,
            creditor_id: -777,
            update_id: 125,
            policy_name: None,
            min_principal: 0,
            max_principal: 0,
            peg_exchange_rate: None,
            peg_debtor_id: None,
            ts: now(),
        }),
        M::UpdatedFlags(UpdatedFlags {
            debtor_id: 666,
            creditor_id: -777,
            update_id: 1,
            config_flags: i32::MIN,
            ts: now(),
        }),
    ];
    v.extend(outgoing().into_iter().filter_map(internal_as_incoming));
    v
}

/// The same internal message, seen from the consuming side.
pub fn internal_as_incoming(m: OutgoingMessage) -> Option<IncomingMessage> {
    use IncomingMessage as I;
    use OutgoingMessage as O;
    Some(match m {
        O::ConfigureAccount(_) | O::PrepareTransfer(_) | O::FinalizeTransfer(_) => return None,
        O::FetchDebtorInfo(m) => I::FetchDebtorInfo(m),
        O::StoreDocument(m) => I::StoreDocument(m),
        O::DiscoverDebtor(m) => I::DiscoverDebtor(m),
        O::ConfirmDebtor(m) => I::ConfirmDebtor(m),
        O::ActivateCollector(m) => I::ActivateCollector(m),
        O::CandidateOffer(m) => I::CandidateOffer(m),
        O::NeededCollector(m) => I::NeededCollector(m),
        O::ReviseAccountLock(m) => I::ReviseAccountLock(m),
        O::TriggerTransfer(m) => I::TriggerTransfer(m),
        O::AccountIdRequest(m) => I::AccountIdRequest(m),
        O::AccountIdResponse(m) => I::AccountIdResponse(m),
        O::StartSending(m) => I::StartSending(m),
        O::StartDispatching(m) => I::StartDispatching(m),
    })
}

pub fn prepare_transfer() -> PrepareTransfer {
    PrepareTransfer {
        creditor_id: 777,
        debtor_id: 666,
        coordinator_request_id: 5,
        min_locked_amount: 0,
        max_locked_amount: 0,
        recipient: "acc".to_owned(),
        final_interest_rate_ts: ts("9999-12-31T23:59:59+00:00"),
        max_commit_delay: i32::MAX,
        ts: now(),
    }
}

pub fn finalize_transfer() -> FinalizeTransfer {
    FinalizeTransfer {
        creditor_id: 888,
        debtor_id: 666,
        transfer_id: 124,
        coordinator_id: 888,
        coordinator_request_id: 7890,
        committed_amount: 9000,
        transfer_note_format: "-cXchge".to_owned(),
        transfer_note: "Trading session: 1\nBuyer: 3e7\nSeller: 378\n".to_owned(),
        ts: now(),
    }
}

pub fn outgoing() -> Vec<OutgoingMessage> {
    use OutgoingMessage as M;
    vec![
        M::ConfigureAccount(ConfigureAccount {
            debtor_id: 666,
            creditor_id: 124,
            ts: ts("2024-05-01T12:00:00Z"),
            seqnum: 0,
            negligible_amount: f64::from(1e30_f32),
            config_data: String::new(),
            config_flags: 1,
        }),
        M::PrepareTransfer(prepare_transfer()),
        M::FinalizeTransfer(finalize_transfer()),
        M::FetchDebtorInfo(FetchDebtorInfo {
            iri: "https://example.com/666".to_owned(),
            debtor_id: 666,
            is_locator_fetch: true,
            is_discovery_fetch: false,
            forced_iri: None,
            recursion_level: 4,
            ts: now(),
        }),
        M::FetchDebtorInfo(FetchDebtorInfo {
            iri: "https://example.com/äöü".to_owned(),
            debtor_id: -1,
            is_locator_fetch: false,
            is_discovery_fetch: true,
            forced_iri: Some("https://example.com/777".to_owned()),
            recursion_level: i16::MAX,
            ts: now(),
        }),
        M::StoreDocument(StoreDocument {
            debtor_info_locator: "https://example.com/666".to_owned(),
            debtor_id: 666,
            peg_debtor_info_locator: Some("https://example.com/777".to_owned()),
            peg_debtor_id: Some(777),
            peg_exchange_rate: Some(3.25),
            will_not_change_until: Some(ts("2030-01-01T00:00:00Z")),
            ts: now(),
        }),
        M::StoreDocument(StoreDocument {
            debtor_info_locator: "https://example.com/999".to_owned(),
            debtor_id: 999,
            peg_debtor_info_locator: None,
            peg_debtor_id: None,
            peg_exchange_rate: None,
            will_not_change_until: None,
            ts: now(),
        }),
        M::DiscoverDebtor(DiscoverDebtor {
            debtor_id: 666,
            iri: "https://example.com/666".to_owned(),
            force_locator_refetch: true,
            ts: now(),
        }),
        M::ConfirmDebtor(ConfirmDebtor {
            debtor_id: 666,
            debtor_info_locator: "https://example.com/old-locator".to_owned(),
            ts: now(),
        }),
        M::ActivateCollector(ActivateCollector {
            debtor_id: 666,
            creditor_id: 123,
            account_id: "Account123".to_owned(),
            ts: now(),
        }),
        M::CandidateOffer(CandidateOffer {
            turn_id: 1,
            debtor_id: 666,
            creditor_id: 777,
            amount: -i64::MAX,
            account_creation_date: date("2024-01-01"),
            last_transfer_number: 3,
            ts: now(),
        }),
        M::NeededCollector(NeededCollector {
            debtor_id: 666,
            ts: now(),
        }),
        M::ReviseAccountLock(ReviseAccountLock {
            creditor_id: 777,
            debtor_id: 666,
            turn_id: 1,
            ts: now(),
        }),
        M::TriggerTransfer(TriggerTransfer {
            collector_id: 999,
            turn_id: 1,
            debtor_id: 666,
            creditor_id: 123,
            is_dispatching: true,
            ts: now(),
        }),
        M::AccountIdRequest(AccountIdRequest {
            collector_id: 999,
            turn_id: 1,
            debtor_id: 666,
            creditor_id: 123,
            is_dispatching: false,
            ts: now(),
        }),
        M::AccountIdResponse(AccountIdResponse {
            collector_id: 999,
            turn_id: 1,
            debtor_id: 666,
            creditor_id: 555,
            is_dispatching: true,
            account_id: String::new(),
            account_id_version: i64::MIN,
            ts: now(),
        }),
        M::StartSending(StartSending {
            collector_id: 999,
            turn_id: 1,
            debtor_id: 666,
            ts: now(),
        }),
        M::StartDispatching(StartDispatching {
            collector_id: 999,
            turn_id: -1,
            debtor_id: -666,
            ts: now(),
        }),
    ]
}
