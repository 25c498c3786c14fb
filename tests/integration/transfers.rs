//! A turn's transfers on one worker database (docs/turns.md#transfers): the turn's
//! `AccountTransfer`s, `StartSending`/`StartDispatching`, `AccountIdRequest`/`Response`,
//! transfer attempts through `TriggerTransfer`, `PreparedTransfer`, `RejectedTransfer` and
//! `FinalizedTransfer`, and the `roll_transfers` and `trigger_transfers` passes — the
//! reference's test cases, with duplicates.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone as _, Utc};
use diesel::sql_types::{BigInt, Nullable, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use swpt_trade::consumer::Handlers;
use swpt_trade::db::worker::outbox::lock_batch;
use swpt_trade::db::{Database, PoolSettings, WorkerPool};
use swpt_trade::handlers;
use swpt_trade::messages::{
    AccountIdRequest, AccountIdResponse, AccountTransfer, FinalizedTransfer, IncomingMessage,
    OutgoingMessage, PreparedTransfer, RejectedTransfer, TriggerTransfer,
};
use swpt_trade::outbox::SignalKind;
use swpt_trade::transfers::{NoteKind, RollTransfers, TransferNote, TriggerTransfers};

use crate::handlers::count;
use crate::util::{TestDb, test_config};

const DEBTOR: i64 = 666;
const COLLECTOR: i64 = 999;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap() + Duration::microseconds(123_456)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

struct Worker {
    db: TestDb,
    conn: AsyncPgConnection,
    context: Handlers,
}

impl Worker {
    /// A fresh worker database; collector IDs are 900…1000, `H` is 3 hours and the amount cut
    /// 1e-8 (the reference's fixture).
    async fn new() -> Self {
        let db = TestDb::migrated(Database::Worker).await;
        let mut conn = db.connect().await;
        let vars = [
            ("WORKER_POSTGRES_URL", db.url.as_str()),
            ("MIN_COLLECTOR_ID", "900"),
            ("MAX_COLLECTOR_ID", "1000"),
            ("TRANSFERS_HEALTHY_MAX_COMMIT_DELAY", "3h"),
            ("TRANSFERS_AMOUNT_CUT", "1e-8"),
        ];
        let context = Handlers::new(Arc::new(test_config(&vars)), "test").unwrap();
        exec(
            &mut conn,
            &format!(
                "INSERT INTO worker_turn VALUES (1, '{s}', 'https://example.com/666', {DEBTOR}, 10, \
                 1000, 3, NULL, '{c}', '{d}', 10)",
                s = now() - Duration::days(31),
                c = now() - Duration::days(30),
                d = now() + Duration::days(1),
            ),
        )
        .await;
        Self { db, conn, context }
    }

    async fn handle(&mut self, m: impl Into<IncomingMessage>) {
        let m = m.into();
        let handler = handlers::handler(&m);
        let context = &self.context;
        self.conn
            .transaction(async |conn| handler.run(conn, context, now()).await)
            .await
            .expect("handled");
    }

    async fn exec(&mut self, sql: &str) {
        exec(&mut self.conn, sql).await;
    }

    async fn count(&mut self, what: &str) -> i64 {
        count(&mut self.conn, what).await
    }

    /// The outbox's messages of `kind`, without removing them.
    async fn sent(&mut self, kind: SignalKind) -> Vec<OutgoingMessage> {
        let rows = self
            .conn
            .transaction(async |conn| lock_batch(conn, kind, 1000).await)
            .await
            .unwrap();
        rows.into_iter().map(|r| r.message).collect()
    }

    async fn clear_outbox(&mut self) {
        for kind in SignalKind::ALL {
            self.exec(&format!("DELETE FROM {}", kind.table_name()))
                .await;
        }
    }

    async fn attempt(&mut self, creditor_id: i64) -> Attempt {
        diesel::sql_query(
            "SELECT recipient, recipient_version, amount, coordinator_request_id, transfer_id, \
             failure_code, backoff_counter, rescheduled_for, fatal_error \
             FROM transfer_attempt WHERE creditor_id = $1",
        )
        .bind::<BigInt, _>(creditor_id)
        .get_result(&mut self.conn)
        .await
        .unwrap()
    }

    fn pool(&self) -> WorkerPool {
        WorkerPool::build(&self.db.url, PoolSettings::new(2), "test").unwrap()
    }
}

#[derive(Debug, diesel::QueryableByName)]
struct Attempt {
    #[diesel(sql_type = Text)]
    recipient: String,
    #[diesel(sql_type = BigInt)]
    recipient_version: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    amount: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    coordinator_request_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    transfer_id: Option<i64>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    failure_code: Option<i16>,
    #[diesel(sql_type = SmallInt)]
    backoff_counter: i16,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    rescheduled_for: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    fatal_error: Option<String>,
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn account_transfer(creditor_id: i64, amount: i64, note: TransferNote) -> AccountTransfer {
    AccountTransfer {
        debtor_id: DEBTOR,
        creditor_id,
        creation_date: date(2020, 1, 1),
        transfer_number: 7890,
        coordinator_type: "agent".into(),
        sender: "s".into(),
        recipient: "r".into(),
        acquired_amount: amount,
        transfer_note_format: "-cXchge".into(),
        transfer_note: note.to_string(),
        committed_at: now(),
        principal: 100_000,
        previous_transfer_number: 7889,
        ts: now(),
    }
}

fn note(kind: NoteKind, first_id: i64, second_id: i64) -> TransferNote {
    TransferNote {
        turn_id: 1,
        kind,
        first_id,
        second_id,
    }
}

#[tokio::test]
async fn account_transfers_release_locks_once() {
    let mut w = Worker::new().await;
    // A seller's finalized lock, a collector's, and a buyer's prepared lock.
    w.exec(&format!(
        "INSERT INTO account_lock VALUES \
         (777, {DEBTOR}, 1, {COLLECTOR}, '{n}', 1, -80000, 123, '{n}', NULL, NULL, NULL, true), \
         (950, {DEBTOR}, 1, {COLLECTOR}, '{n}', 2, -80000, 124, '{n}', NULL, NULL, NULL, true), \
         (778, {DEBTOR}, 1, {COLLECTOR}, '{n}', 56789, 80000, 125, NULL, NULL, NULL, NULL, true)",
        n = now()
    ))
    .await;
    for _ in 0..2 {
        w.handle(account_transfer(
            777,
            -80000,
            note(NoteKind::Collecting, COLLECTOR, 777),
        ))
        .await;
        w.handle(account_transfer(
            950,
            -80000,
            note(NoteKind::Collecting, COLLECTOR, 950),
        ))
        .await;
        w.handle(account_transfer(
            778,
            80000,
            note(NoteKind::Dispatching, COLLECTOR, 778),
        ))
        .await;
    }
    assert_eq!(
        w.count(
            "account_lock WHERE creditor_id = 777 AND released_at IS NOT NULL \
             AND account_creation_date = '2020-01-01' AND account_last_transfer_number = 7890"
        )
        .await,
        1
    );
    assert_eq!(
        w.count(
            "account_lock WHERE creditor_id = 950 AND released_at IS NOT NULL \
             AND account_creation_date = '1970-01-01' AND account_last_transfer_number = 0"
        )
        .await,
        1,
        "a collector's position is made up"
    );
    assert_eq!(
        w.count(
            "account_lock WHERE creditor_id = 778 AND released_at IS NOT NULL \
             AND finalized_at IS NOT NULL"
        )
        .await,
        1
    );
    let finalizes = w.sent(SignalKind::FinalizeTransfer).await;
    assert_eq!(finalizes.len(), 1, "the buyer's transfer is dismissed once");
    let OutgoingMessage::FinalizeTransfer(f) = &finalizes[0] else {
        panic!()
    };
    assert_eq!(
        (
            f.creditor_id,
            f.transfer_id,
            f.coordinator_id,
            f.coordinator_request_id,
            f.committed_amount
        ),
        (778, 125, 778, 56789, 0)
    );

    // A wrong amount, a foreign coordinator, another note format or a note naming another
    // account change nothing.
    w.exec(&format!(
        "INSERT INTO account_lock VALUES \
         (779, {DEBTOR}, 1, {COLLECTOR}, '{n}', 3, -80000, 126, '{n}', NULL, NULL, NULL, true)",
        n = now()
    ))
    .await;
    let collecting = note(NoteKind::Collecting, COLLECTOR, 779);
    w.handle(account_transfer(779, -79999, collecting)).await;
    let mut other = account_transfer(779, -80000, collecting);
    other.coordinator_type = "direct".into();
    w.handle(other).await;
    let mut other = account_transfer(779, -80000, collecting);
    other.transfer_note_format = "other".into();
    w.handle(other).await;
    w.handle(account_transfer(
        779,
        -80000,
        note(NoteKind::Collecting, COLLECTOR, 780),
    ))
    .await;
    assert_eq!(
        w.count("account_lock WHERE creditor_id = 779 AND released_at IS NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn account_id_requests_answer_from_policies_then_collector_accounts() {
    let mut w = Worker::new().await;
    w.exec(
        "INSERT INTO trading_policy VALUES (666, 1, 123, now(), 'account1', '2024-01-01', 0, 0, \
         1, now(), NULL, 0, 0, NULL, NULL, 1, now(), 0, false)",
    )
    .await;
    w.exec(
        "INSERT INTO worker_account (creditor_id, debtor_id, creation_date, last_change_ts, \
         last_change_seqnum, principal, interest, interest_rate, last_interest_rate_change_ts, \
         config_flags, account_id, debtor_info_iri, last_transfer_number, \
         last_transfer_committed_at, demurrage_rate, commit_period, transfer_note_max_bytes, \
         last_heartbeat_ts) VALUES (999, 1, '1970-01-06', now(), 0, 0, 0, 0, now(), 0, \
         'account2', NULL, 0, now(), 0, 0, 500, now())",
    )
    .await;
    for creditor_id in [666, 999, 555] {
        w.handle(AccountIdRequest {
            collector_id: 321,
            turn_id: 1,
            debtor_id: 1,
            creditor_id,
            is_dispatching: true,
            ts: now(),
        })
        .await;
    }
    let mut answers: Vec<(i64, String, i64)> = w
        .sent(SignalKind::AccountIdResponse)
        .await
        .into_iter()
        .map(|m| match m {
            OutgoingMessage::AccountIdResponse(r) => {
                assert_eq!((r.collector_id, r.turn_id, r.debtor_id), (321, 1, 1));
                (r.creditor_id, r.account_id, r.account_id_version)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    answers.sort();
    assert_eq!(
        answers,
        vec![
            (555, String::new(), i64::MIN),
            (666, "account1".into(), 123),
            (999, "account2".into(), 5),
        ]
    );
}

/// The reference's collector: interest rate 5 now, -20 ten days ago, -10 a thousand days ago;
/// an attempt to dispatch a nominal 1e9 to buyer 123, the collection started 30 days ago.
async fn attempt_fixture(w: &mut Worker) {
    w.exec(&format!(
        "INSERT INTO worker_account (creditor_id, debtor_id, creation_date, last_change_ts, \
         last_change_seqnum, principal, interest, interest_rate, last_interest_rate_change_ts, \
         config_flags, account_id, debtor_info_iri, last_transfer_number, \
         last_transfer_committed_at, demurrage_rate, commit_period, transfer_note_max_bytes, \
         last_heartbeat_ts) VALUES ({COLLECTOR}, {DEBTOR}, '1970-01-01', now(), 0, 0, 0, 5.0, \
         '{n}', 0, 'collector', NULL, 0, now(), 0, 0, 500, now())",
        n = now()
    ))
    .await;
    w.exec(&format!(
        "INSERT INTO interest_rate_change VALUES ({COLLECTOR}, {DEBTOR}, '{a}', -20.0), \
         ({COLLECTOR}, {DEBTOR}, '{b}', -10.0)",
        a = now() - Duration::days(10),
        b = now() - Duration::days(1000),
    ))
    .await;
    w.exec(&format!(
        "INSERT INTO transfer_attempt (collector_id, turn_id, debtor_id, creditor_id, \
         is_dispatching, nominal_amount, collection_started_at, inserted_at, recipient, \
         recipient_version, backoff_counter) VALUES ({COLLECTOR}, 1, {DEBTOR}, 123, true, 1e9, \
         '{c}', now(), '', -9223372036854775808, 0)",
        c = now() - Duration::days(30)
    ))
    .await;
}

fn id_response(account_id: &str, version: i64) -> AccountIdResponse {
    AccountIdResponse {
        collector_id: COLLECTOR,
        turn_id: 1,
        debtor_id: DEBTOR,
        creditor_id: 123,
        is_dispatching: true,
        account_id: account_id.into(),
        account_id_version: version,
        ts: now(),
    }
}

fn prepared(crid: i64, transfer_id: i64) -> PreparedTransfer {
    PreparedTransfer {
        debtor_id: DEBTOR,
        creditor_id: COLLECTOR,
        coordinator_type: "agent".into(),
        coordinator_id: COLLECTOR,
        coordinator_request_id: crid,
        transfer_id,
        locked_amount: 0,
        recipient: "account123".into(),
        prepared_at: now(),
        demurrage_rate: -10.0,
        deadline: now() + Duration::days(1000),
        final_interest_rate_ts: now(),
        ts: now(),
    }
}

fn finalized(crid: i64, transfer_id: i64, committed: i64, status: &str) -> FinalizedTransfer {
    FinalizedTransfer {
        debtor_id: DEBTOR,
        creditor_id: COLLECTOR,
        coordinator_type: "agent".into(),
        coordinator_id: COLLECTOR,
        coordinator_request_id: crid,
        transfer_id,
        committed_amount: committed,
        status_code: status.into(),
        total_locked_amount: 0,
        prepared_at: now(),
        ts: now(),
    }
}

#[tokio::test]
async fn a_transfer_attempt_is_prepared_committed_and_deleted() {
    let mut w = Worker::new().await;
    attempt_fixture(&mut w).await;
    // An older or equal version changes nothing after this one.
    w.handle(id_response("account123", 1)).await;
    w.handle(id_response("account999", 1)).await;
    let a = w.attempt(123).await;
    assert_eq!(
        (a.recipient.as_str(), a.recipient_version),
        ("account123", 1)
    );
    let amount = a.amount.expect("tried");
    assert!(
        (981_700_000..981_800_000).contains(&amount),
        "-20 % over 30 days 3 hours 10 minutes, less 1e-8: {amount}"
    );
    let prepares = w.sent(SignalKind::PrepareTransfer).await;
    assert_eq!(prepares.len(), 1);
    let OutgoingMessage::PrepareTransfer(p) = &prepares[0] else {
        panic!()
    };
    assert_eq!(
        (
            p.creditor_id,
            p.debtor_id,
            p.recipient.as_str(),
            p.min_locked_amount,
            p.max_locked_amount,
            p.max_commit_delay
        ),
        (COLLECTOR, DEBTOR, "account123", 0, 0, 10_800)
    );
    assert_eq!(p.final_interest_rate_ts, now() + Duration::seconds(2));
    let crid = a.coordinator_request_id.unwrap();
    assert_eq!(p.coordinator_request_id, crid);

    // Prepared (twice): committed each time with the dispatching note.
    w.handle(prepared(crid, 12345)).await;
    w.handle(prepared(crid, 12345)).await;
    let finalizes = w.sent(SignalKind::FinalizeTransfer).await;
    assert_eq!(finalizes.len(), 2);
    for f in &finalizes {
        let OutgoingMessage::FinalizeTransfer(f) = f else {
            panic!()
        };
        assert_eq!((f.transfer_id, f.committed_amount), (12345, amount));
        assert_eq!(
            f.transfer_note,
            "Trading session: 1\nSeller: 3e7\nBuyer: 7b\n"
        );
    }
    // Another transfer of the same request is dismissed; the attempt keeps its own.
    w.handle(prepared(crid, 999)).await;
    let finalizes = w.sent(SignalKind::FinalizeTransfer).await;
    assert_eq!(finalizes.len(), 3);
    assert!(finalizes.iter().any(|f| matches!(
        f,
        OutgoingMessage::FinalizeTransfer(f) if f.transfer_id == 999 && f.committed_amount == 0
    )));
    assert_eq!(w.attempt(123).await.transfer_id, Some(12345));
    // A finalization of another transfer is ignored; the right one deletes the attempt.
    w.handle(finalized(crid, 999, 0, "OK")).await;
    assert_eq!(w.count("transfer_attempt").await, 1);
    w.handle(finalized(crid, 12345, amount, "OK")).await;
    assert_eq!(w.count("transfer_attempt").await, 0);
}

#[tokio::test]
async fn failed_attempts_are_rescheduled_or_given_up() {
    for (status, code, counter, asks) in [
        ("TIMEOUT", 1, 101, false),
        ("NEWER_INTEREST_RATE", 2, 100, false),
        ("RECIPIENT_IS_UNREACHABLE", 3, 101, true),
        ("INSUFFICIENT_AVAILABLE_AMOUNT", 4, 101, false),
        ("FATAL_ERROR", 0, 100, false),
    ] {
        for rejected in [false, true] {
            let mut w = Worker::new().await;
            attempt_fixture(&mut w).await;
            w.handle(id_response("account123", 1)).await;
            w.exec("UPDATE transfer_attempt SET backoff_counter = 100")
                .await;
            let crid = w.attempt(123).await.coordinator_request_id.unwrap();
            if rejected {
                w.handle(RejectedTransfer {
                    debtor_id: DEBTOR,
                    creditor_id: COLLECTOR,
                    coordinator_type: "agent".into(),
                    coordinator_id: COLLECTOR,
                    coordinator_request_id: crid,
                    status_code: status.into(),
                    total_locked_amount: 0,
                    ts: now(),
                })
                .await;
            } else {
                w.handle(prepared(crid, 12345)).await;
                w.handle(finalized(crid, 12345, 0, status)).await;
            }
            let a = w.attempt(123).await;
            let case = format!("{status}, rejected: {rejected}");
            assert_eq!(a.failure_code, Some(code), "{case}");
            assert_eq!(a.backoff_counter, counter, "{case}");
            assert_eq!(a.rescheduled_for.is_some(), code != 0, "{case}");
            assert_eq!(a.fatal_error.is_some(), status == "FATAL_ERROR", "{case}");
            let requests = w.sent(SignalKind::AccountIdRequest).await.len();
            assert_eq!(requests == 1, asks, "{case}");
        }
    }
}

#[tokio::test]
async fn an_unreachable_recipient_is_asked_for_again() {
    let mut w = Worker::new().await;
    attempt_fixture(&mut w).await;
    w.handle(id_response("account123", 1)).await;
    let crid = w.attempt(123).await.coordinator_request_id.unwrap();
    w.handle(prepared(crid, 12345)).await;
    w.handle(finalized(crid, 12345, 0, "RECIPIENT_IS_UNREACHABLE"))
        .await;
    w.clear_outbox().await;
    // The back-off passed: the trigger asks for the account ID, without preparing.
    w.exec("UPDATE transfer_attempt SET rescheduled_for = NULL")
        .await;
    let trigger = TriggerTransfer {
        collector_id: COLLECTOR,
        turn_id: 1,
        debtor_id: DEBTOR,
        creditor_id: 123,
        is_dispatching: true,
        ts: now(),
    };
    w.handle(trigger.clone()).await;
    assert_eq!(w.sent(SignalKind::PrepareTransfer).await.len(), 0);
    assert_eq!(w.sent(SignalKind::AccountIdRequest).await.len(), 1);
    let a = w.attempt(123).await;
    assert_eq!(a.failure_code, Some(3));
    assert!(a.rescheduled_for.is_some());
    // A new account ID: taken, the failure code reset; the attempt still waits.
    w.handle(id_response("account123new", 2)).await;
    let a = w.attempt(123).await;
    assert_eq!(
        (a.recipient.as_str(), a.recipient_version, a.failure_code),
        ("account123new", 2, Some(0))
    );
    assert!(a.rescheduled_for.is_some());
    // Its time comes: trigger_transfers sends a TriggerTransfer, which prepares the transfer.
    w.exec("UPDATE transfer_attempt SET rescheduled_for = now() - interval '1 minute'")
        .await;
    let triggered = TriggerTransfers {
        pool: w.pool(),
        burst_count: 1,
    }
    .run_pass()
    .await
    .unwrap();
    assert_eq!(triggered, 1);
    assert_eq!(w.sent(SignalKind::TriggerTransfer).await.len(), 1);
    assert_eq!(w.attempt(123).await.rescheduled_for, None);
    w.handle(trigger).await;
    let prepares = w.sent(SignalKind::PrepareTransfer).await;
    assert_eq!(prepares.len(), 1);
    assert!(matches!(
        &prepares[0],
        OutgoingMessage::PrepareTransfer(p) if p.recipient == "account123new"
    ));
    assert_eq!(w.attempt(123).await.failure_code, None);
}

#[tokio::test]
async fn without_the_collector_account_the_attempt_waits() {
    let mut w = Worker::new().await;
    attempt_fixture(&mut w).await;
    w.exec("DELETE FROM worker_account").await;
    w.handle(id_response("account123", 1)).await;
    let a = w.attempt(123).await;
    assert_eq!(a.coordinator_request_id, None, "not tried");
    assert_eq!(a.rescheduled_for, Some(now() + Duration::hours(3)));
    assert_eq!(w.sent(SignalKind::PrepareTransfer).await.len(), 0);
}

#[tokio::test]
async fn collectors_move_from_collecting_to_sending_to_dispatching() {
    let mut w = Worker::new().await;
    let purge = now() + Duration::days(100);
    // Collector 999 collects 10 000 (8 000 + 2 000), sends 3 000 to collector 888 and
    // dispatches 7 000; collector 997 receives 5 000 from two collectors (999 and 3 996
    // arrived) and dispatches 12 000.
    w.exec(&format!(
        "INSERT INTO dispatching_status (collector_id, turn_id, debtor_id, inserted_at, \
         amount_to_collect, amount_to_send, amount_to_receive, number_to_receive, \
         amount_to_dispatch, started_sending, all_sent, all_received, started_dispatching, \
         awaiting_signal_flag) VALUES \
         (999, 1, {DEBTOR}, now(), 10000, 3000, 0, 0, 7000, false, false, false, false, false), \
         (997, 1, {DEBTOR}, now(), 0, 0, 5000, 2, 12000, false, false, false, false, false)"
    ))
    .await;
    w.exec(&format!(
        "INSERT INTO worker_collecting VALUES (999, 1, {DEBTOR}, 1, 8000, false, '{purge}'), \
         (999, 1, {DEBTOR}, 2, 2000, false, '{purge}')"
    ))
    .await;
    w.exec(&format!(
        "INSERT INTO worker_sending VALUES (999, 1, {DEBTOR}, 888, 3000, '{purge}')"
    ))
    .await;
    w.exec(&format!(
        "INSERT INTO worker_receiving VALUES (997, 1, {DEBTOR}, 995, 1000, 0, '{purge}'), \
         (997, 1, {DEBTOR}, 996, 4000, 0, '{purge}')"
    ))
    .await;
    w.exec(&format!(
        "INSERT INTO worker_dispatching VALUES (999, 1, {DEBTOR}, 5, 7000, '{purge}'), \
         (997, 1, {DEBTOR}, 123, 12000, '{purge}')"
    ))
    .await;
    let roll = RollTransfers {
        pool: w.pool(),
        realm: "#".parse().unwrap(),
    };

    // 999 has not collected yet; 997 has nothing to collect or send: it is all sent, but its
    // receivings have not arrived.
    roll.run_pass().await.unwrap();
    roll.run_pass().await.unwrap();
    assert_eq!(w.sent(SignalKind::StartSending).await.len(), 1);
    assert_eq!(
        w.count("dispatching_status WHERE collector_id = 997 AND awaiting_signal_flag")
            .await,
        1,
        "997 waits for its StartSending"
    );
    for (seller, amount) in [(1, 8000), (2, 2000), (1, 8000)] {
        w.handle(account_transfer(
            999,
            amount,
            note(NoteKind::Collecting, 999, seller),
        ))
        .await;
    }
    assert_eq!(w.count("worker_collecting WHERE collected").await, 2);
    roll.run_pass().await.unwrap();
    let starts = w.sent(SignalKind::StartSending).await;
    assert_eq!(starts.len(), 2, "one more, for 999");
    w.clear_outbox().await;
    for start in starts {
        let OutgoingMessage::StartSending(m) = start else {
            panic!()
        };
        // Handled twice: the second time changes nothing.
        w.handle(m.clone()).await;
        w.handle(m).await;
    }
    assert_eq!(
        w.count(
            "dispatching_status WHERE collector_id = 999 AND total_collected_amount = 10000 \
             AND started_sending AND NOT awaiting_signal_flag"
        )
        .await,
        1
    );
    assert_eq!(w.count("worker_collecting").await, 0);
    assert_eq!(
        w.count(
            "transfer_attempt WHERE collector_id = 999 AND creditor_id = 888 \
             AND NOT is_dispatching AND nominal_amount = 3000 AND recipient = '' \
             AND recipient_version = -9223372036854775808"
        )
        .await,
        1
    );
    assert_eq!(w.sent(SignalKind::AccountIdRequest).await.len(), 1);

    // 999's sending is committed (its outgoing AccountTransfer); 997 receives 999 and 3 996.
    w.handle(account_transfer(
        999,
        -3000,
        TransferNote {
            turn_id: 1,
            kind: NoteKind::Sending,
            first_id: 999,
            second_id: 888,
        },
    ))
    .await;
    assert_eq!(w.count("worker_sending").await, 0);
    for (from, amount) in [(995, 999), (996, 3996), (996, 5)] {
        w.handle(account_transfer(
            997,
            amount,
            TransferNote {
                turn_id: 1,
                kind: NoteKind::Sending,
                first_id: from,
                second_id: 997,
            },
        ))
        .await;
    }
    w.clear_outbox().await;
    roll.run_pass().await.unwrap();
    let starts = w.sent(SignalKind::StartDispatching).await;
    assert_eq!(starts.len(), 2);
    for start in starts {
        let OutgoingMessage::StartDispatching(m) = start else {
            panic!()
        };
        w.handle(m.clone()).await;
        w.handle(m).await;
    }
    assert_eq!(
        w.count(
            "dispatching_status WHERE collector_id = 997 AND total_received_amount = 4995 \
             AND started_dispatching"
        )
        .await,
        1
    );
    assert_eq!(
        w.count(
            "transfer_attempt WHERE collector_id = 997 AND creditor_id = 123 AND is_dispatching \
             AND nominal_amount = 11995"
        )
        .await,
        1,
        "12 000 less the 5 not received"
    );
    assert_eq!(
        w.count(
            "transfer_attempt WHERE collector_id = 999 AND creditor_id = 5 AND is_dispatching \
             AND nominal_amount = 7000"
        )
        .await,
        1
    );
    // Dispatched: 999's buyer is paid; 999's status is done, 997's is not.
    w.handle(account_transfer(
        999,
        -7000,
        note(NoteKind::Dispatching, 999, 5),
    ))
    .await;
    roll.run_pass().await.unwrap();
    assert_eq!(w.count("dispatching_status").await, 1);
    assert_eq!(
        w.count("dispatching_status WHERE collector_id = 997").await,
        1
    );

    // Another shard's statuses are left alone.
    let realm: swpt_trade::sharding::ShardingRealm = "1.#".parse().unwrap();
    let ours = (1..).find(|&id| realm.contains_id(id)).unwrap();
    let theirs = (1..).find(|&id| !realm.contains_id(id)).unwrap();
    let foreign = RollTransfers {
        pool: w.pool(),
        realm,
    };
    w.exec(&format!(
        "INSERT INTO dispatching_status (collector_id, turn_id, debtor_id, inserted_at, \
         amount_to_collect, amount_to_send, amount_to_receive, number_to_receive, \
         amount_to_dispatch, started_sending, all_sent, all_received, started_dispatching, \
         awaiting_signal_flag) VALUES \
         ({ours}, 1, {DEBTOR}, now(), 0, 0, 0, 0, 0, false, false, false, false, false), \
         ({theirs}, 1, {DEBTOR}, now(), 0, 0, 0, 0, 0, false, false, false, false, false)"
    ))
    .await;
    w.clear_outbox().await;
    foreign.run_pass().await.unwrap();
    let started: Vec<i64> = w
        .sent(SignalKind::StartSending)
        .await
        .into_iter()
        .map(|m| match m {
            OutgoingMessage::StartSending(m) => m.collector_id,
            _ => panic!(),
        })
        .collect();
    assert_eq!(started, vec![ours]);
}

#[tokio::test]
async fn trigger_transfers_sends_only_due_attempts() {
    let mut w = Worker::new().await;
    attempt_fixture(&mut w).await;
    w.exec(&format!(
        "INSERT INTO transfer_attempt (collector_id, turn_id, debtor_id, creditor_id, \
         is_dispatching, nominal_amount, collection_started_at, inserted_at, recipient, \
         recipient_version, backoff_counter, rescheduled_for) VALUES \
         ({COLLECTOR}, 1, {DEBTOR}, 124, true, 1e9, now(), now(), '', 0, 0, now() - interval '10 minutes'), \
         ({COLLECTOR}, 1, {DEBTOR}, 125, true, 1e9, now(), now(), '', 0, 0, now() + interval '10 minutes')"
    ))
    .await;
    let job = TriggerTransfers {
        pool: w.pool(),
        burst_count: 5000,
    };
    assert_eq!(job.run_pass().await.unwrap(), 1);
    assert_eq!(job.run_pass().await.unwrap(), 0);
    let sent = w.sent(SignalKind::TriggerTransfer).await;
    assert!(matches!(
        &sent[..],
        [OutgoingMessage::TriggerTransfer(t)] if t.creditor_id == 124 && t.is_dispatching
    ));
    assert_eq!(
        w.count("transfer_attempt WHERE rescheduled_for IS NOT NULL")
            .await,
        1
    );
}
