//! Account locks on a worker database (docs/turns.md#account-locks): `CandidateOffer`,
//! `PreparedTransfer`, `RejectedTransfer` and `ReviseAccountLock`, with the reference's test
//! cases, duplicates and reordering.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, TimeZone as _, Utc};
use diesel::{ExpressionMethods as _, QueryDsl as _, SelectableHelper as _};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use swpt_trade::consumer::Handlers;
use swpt_trade::db::Database;
use swpt_trade::db::worker::locks::{self as locks_db, AccountLock};
use swpt_trade::db::worker::schema::{
    account_lock, active_collector, creditor_participation, finalize_transfer_signal,
    prepare_transfer_signal, worker_turn,
};
use swpt_trade::handlers::{self, HandlerError};
use swpt_trade::messages::{
    CandidateOffer, IncomingMessage, PreparedTransfer, RejectedTransfer, ReviseAccountLock,
};
use swpt_trade::transfers::{collector_trade_position, demurrage};

use crate::util::{TestDb, test_config};

const DEBTOR: i64 = 666;
const COLLECTOR: i64 = 999;
const COLLECTOR_ACCOUNT: &str = "TestCollectorAccount999";

/// The handlers' clock (microseconds, as PostgreSQL stores them).
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap() + Duration::microseconds(123_456)
}

fn t_infinity() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

struct Worker {
    _db: TestDb,
    conn: AsyncPgConnection,
    context: Handlers,
}

impl Worker {
    /// A fresh worker database with the reference's fixture: turn 1 at phase 2, sub-phase 5,
    /// collection deadline in 30 days, minimum trade 1000; collector 999 of debtor 666.
    async fn new() -> Self {
        let db = TestDb::migrated(Database::Worker).await;
        let mut conn = db.connect().await;
        let vars = [("WORKER_POSTGRES_URL", db.url.as_str())];
        let context = Handlers::new(Arc::new(test_config(&vars)), "test").unwrap();
        insert_turn(&mut conn, 1, 2, 5).await;
        insert_collector(&mut conn, DEBTOR, COLLECTOR, COLLECTOR_ACCOUNT).await;
        Self {
            _db: db,
            conn,
            context,
        }
    }

    async fn try_handle(&mut self, m: IncomingMessage) -> Result<(), HandlerError> {
        let handler = handlers::handler(&m);
        let context = &self.context;
        self.conn
            .transaction(async |conn| handler.run(conn, context, now()).await)
            .await
    }

    async fn handle(&mut self, m: IncomingMessage) {
        self.try_handle(m).await.expect("handled");
    }

    /// Handles `m` twice: the second time must change nothing.
    async fn handle_twice(&mut self, m: IncomingMessage) {
        self.handle(m.clone()).await;
        let once = self.state().await;
        self.handle(m).await;
        assert_eq!(self.state().await, once, "a duplicate changed the state");
    }

    async fn state(&mut self) -> State {
        let conn = &mut self.conn;
        State {
            locks: locks(conn).await,
            prepares: prepares(conn).await,
            finalizes: finalizes(conn).await,
            participations: participations(conn).await,
        }
    }

    async fn lock(&mut self, creditor_id: i64) -> AccountLock {
        account_lock::table
            .find((creditor_id, DEBTOR))
            .select(AccountLock::as_select())
            .first(&mut self.conn)
            .await
            .unwrap()
    }
}

async fn insert_turn(conn: &mut AsyncPgConnection, turn_id: i32, phase: i16, subphase: i16) {
    use worker_turn::dsl as w;
    diesel::insert_into(worker_turn::table)
        .values((
            w::turn_id.eq(turn_id),
            w::started_at.eq(now() - Duration::hours(1)),
            w::base_debtor_info_locator.eq("https://example.com/666"),
            w::base_debtor_id.eq(DEBTOR),
            w::max_distance_to_base.eq(10),
            w::min_trade_amount.eq(1000),
            w::phase.eq(phase),
            w::phase_deadline.eq(Some(now() + Duration::hours(10))),
            w::collection_started_at.eq((phase >= 3).then(|| now() - Duration::hours(1))),
            w::collection_deadline.eq(Some(now() + Duration::days(30))),
            w::worker_turn_subphase.eq(subphase),
        ))
        .execute(conn)
        .await
        .unwrap();
}

async fn insert_collector(conn: &mut AsyncPgConnection, debtor_id: i64, id: i64, account: &str) {
    use active_collector::dsl as a;
    diesel::insert_into(active_collector::table)
        .values((
            a::debtor_id.eq(debtor_id),
            a::collector_id.eq(id),
            a::account_id.eq(account),
        ))
        .execute(conn)
        .await
        .unwrap();
}

async fn insert_lock(conn: &mut AsyncPgConnection, l: &AccountLock) {
    use account_lock::dsl as a;
    diesel::insert_into(account_lock::table)
        .values((
            a::creditor_id.eq(l.creditor_id),
            a::debtor_id.eq(l.debtor_id),
            a::turn_id.eq(l.turn_id),
            a::collector_id.eq(l.collector_id),
            a::initiated_at.eq(l.initiated_at),
            a::coordinator_request_id.eq(l.coordinator_request_id),
            a::amount.eq(l.amount),
            a::transfer_id.eq(l.transfer_id),
            a::finalized_at.eq(l.finalized_at),
            a::released_at.eq(l.released_at),
            a::account_creation_date.eq(l.account_creation_date),
            a::account_last_transfer_number.eq(l.account_last_transfer_number),
            a::has_been_revised.eq(l.has_been_revised),
        ))
        .execute(conn)
        .await
        .unwrap();
}

async fn insert_participation(
    conn: &mut AsyncPgConnection,
    creditor_id: i64,
    amount: i64,
    collector_id: i64,
) {
    use creditor_participation::dsl as p;
    diesel::insert_into(creditor_participation::table)
        .values((
            p::creditor_id.eq(creditor_id),
            p::debtor_id.eq(DEBTOR),
            p::turn_id.eq(1),
            p::amount.eq(amount),
            p::collector_id.eq(collector_id),
        ))
        .execute(conn)
        .await
        .unwrap();
}

/// A lock of turn 1 with collector 999, request ID 7890, neither settled nor revised.
fn lock(creditor_id: i64, amount: i64, transfer_id: Option<i64>) -> AccountLock {
    AccountLock {
        creditor_id,
        debtor_id: DEBTOR,
        turn_id: 1,
        collector_id: COLLECTOR,
        initiated_at: now() - Duration::hours(2),
        coordinator_request_id: 7890,
        amount,
        transfer_id,
        finalized_at: None,
        released_at: None,
        account_creation_date: None,
        account_last_transfer_number: None,
        has_been_revised: false,
    }
}

#[derive(Debug, Clone, PartialEq)]
struct State {
    locks: Vec<AccountLock>,
    prepares: Vec<Prepare>,
    finalizes: Vec<Finalize>,
    participations: Vec<(i64, i64, i32, i64, i64)>,
}

/// A `prepare_transfer_signal` row.
#[derive(Debug, Clone, PartialEq, diesel::Queryable)]
struct Prepare {
    creditor_id: i64,
    coordinator_request_id: i64,
    debtor_id: i64,
    recipient: String,
    min_locked_amount: i64,
    max_locked_amount: i64,
    final_interest_rate_ts: DateTime<Utc>,
    max_commit_delay: i32,
    inserted_at: DateTime<Utc>,
}

/// A `finalize_transfer_signal` row (without its serial ID).
#[derive(Debug, Clone, PartialEq, diesel::Queryable)]
struct Finalize {
    creditor_id: i64,
    debtor_id: i64,
    transfer_id: i64,
    coordinator_id: i64,
    coordinator_request_id: i64,
    committed_amount: i64,
    transfer_note_format: String,
    transfer_note: String,
    inserted_at: DateTime<Utc>,
}

/// The `PrepareTransfer` a lock of collector 999 sends.
fn prepare(creditor_id: i64, crid: i64, min: i64, max: i64) -> Prepare {
    Prepare {
        creditor_id,
        coordinator_request_id: crid,
        debtor_id: DEBTOR,
        recipient: COLLECTOR_ACCOUNT.to_owned(),
        min_locked_amount: min,
        max_locked_amount: max,
        final_interest_rate_ts: t_infinity(),
        max_commit_delay: i32::MAX,
        inserted_at: now(),
    }
}

/// A dismissal: `FinalizeTransfer` with committed amount 0 and no note.
fn dismissal(creditor_id: i64, debtor_id: i64, transfer_id: i64, crid: i64) -> Finalize {
    Finalize {
        creditor_id,
        debtor_id,
        transfer_id,
        coordinator_id: creditor_id,
        coordinator_request_id: crid,
        committed_amount: 0,
        transfer_note_format: String::new(),
        transfer_note: String::new(),
        inserted_at: now(),
    }
}

/// A seller's commit to its collector, with the collecting note.
fn commit(creditor_id: i64, transfer_id: i64, crid: i64, amount: i64, note: &str) -> Finalize {
    Finalize {
        creditor_id,
        debtor_id: DEBTOR,
        transfer_id,
        coordinator_id: creditor_id,
        coordinator_request_id: crid,
        committed_amount: amount,
        transfer_note_format: "-cXchge".to_owned(),
        transfer_note: note.to_owned(),
        inserted_at: now(),
    }
}

async fn locks(conn: &mut AsyncPgConnection) -> Vec<AccountLock> {
    account_lock::table
        .order((account_lock::creditor_id, account_lock::debtor_id))
        .select(AccountLock::as_select())
        .load(conn)
        .await
        .unwrap()
}

async fn prepares(conn: &mut AsyncPgConnection) -> Vec<Prepare> {
    use prepare_transfer_signal::dsl as p;
    prepare_transfer_signal::table
        .order((p::creditor_id, p::coordinator_request_id))
        .select((
            p::creditor_id,
            p::coordinator_request_id,
            p::debtor_id,
            p::recipient,
            p::min_locked_amount,
            p::max_locked_amount,
            p::final_interest_rate_ts,
            p::max_commit_delay,
            p::inserted_at,
        ))
        .load(conn)
        .await
        .unwrap()
}

async fn finalizes(conn: &mut AsyncPgConnection) -> Vec<Finalize> {
    use finalize_transfer_signal::dsl as f;
    finalize_transfer_signal::table
        .order(f::signal_id)
        .select((
            f::creditor_id,
            f::debtor_id,
            f::transfer_id,
            f::coordinator_id,
            f::coordinator_request_id,
            f::committed_amount,
            f::transfer_note_format,
            f::transfer_note,
            f::inserted_at,
        ))
        .load(conn)
        .await
        .unwrap()
}

async fn participations(conn: &mut AsyncPgConnection) -> Vec<(i64, i64, i32, i64, i64)> {
    use creditor_participation::dsl as p;
    creditor_participation::table
        .order((p::creditor_id, p::debtor_id, p::turn_id))
        .select((
            p::creditor_id,
            p::debtor_id,
            p::turn_id,
            p::amount,
            p::collector_id,
        ))
        .load(conn)
        .await
        .unwrap()
}

/// A candidate offer of debtor 666 from the ledger snapshot (2024-01-01, 1234).
fn offer(turn_id: i32, creditor_id: i64, amount: i64) -> IncomingMessage {
    offer_of(turn_id, creditor_id, DEBTOR, amount, date(2024, 1, 1), 1234)
}

fn offer_of(
    turn_id: i32,
    creditor_id: i64,
    debtor_id: i64,
    amount: i64,
    account_creation_date: NaiveDate,
    last_transfer_number: i64,
) -> IncomingMessage {
    IncomingMessage::CandidateOffer(CandidateOffer {
        turn_id,
        debtor_id,
        creditor_id,
        amount,
        account_creation_date,
        last_transfer_number,
        ts: now(),
    })
}

/// The reference's `PreparedTransfer` fields.
struct Prepared {
    creditor_id: i64,
    debtor_id: i64,
    coordinator_id: i64,
    crid: i64,
    transfer_id: i64,
    locked_amount: i64,
    demurrage_rate: f64,
    deadline: DateTime<Utc>,
}

impl Prepared {
    /// The seller 888's transfer 123: 10000 locked at -49 %, deadline in 1000 days.
    fn of_888(crid: i64) -> Self {
        Self {
            creditor_id: 888,
            debtor_id: DEBTOR,
            coordinator_id: 888,
            crid,
            transfer_id: 123,
            locked_amount: 10000,
            demurrage_rate: -49.0,
            deadline: now() + Duration::days(1000),
        }
    }

    fn message(&self) -> IncomingMessage {
        self.message_of("agent")
    }

    fn message_of(&self, coordinator_type: &str) -> IncomingMessage {
        IncomingMessage::PreparedTransfer(PreparedTransfer {
            debtor_id: self.debtor_id,
            creditor_id: self.creditor_id,
            coordinator_type: coordinator_type.to_owned(),
            coordinator_id: self.coordinator_id,
            coordinator_request_id: self.crid,
            transfer_id: self.transfer_id,
            locked_amount: self.locked_amount,
            recipient: COLLECTOR_ACCOUNT.to_owned(),
            prepared_at: now(),
            demurrage_rate: self.demurrage_rate,
            deadline: self.deadline,
            final_interest_rate_ts: now(),
            ts: now(),
        })
    }
}

fn rejected(
    creditor_id: i64,
    debtor_id: i64,
    crid: i64,
    coordinator_type: &str,
) -> IncomingMessage {
    IncomingMessage::RejectedTransfer(RejectedTransfer {
        debtor_id,
        creditor_id,
        coordinator_type: coordinator_type.to_owned(),
        coordinator_id: creditor_id,
        coordinator_request_id: crid,
        status_code: "TEST".to_owned(),
        total_locked_amount: 0,
        ts: now(),
    })
}

fn revise(creditor_id: i64) -> IncomingMessage {
    IncomingMessage::ReviseAccountLock(ReviseAccountLock {
        creditor_id,
        debtor_id: DEBTOR,
        turn_id: 1,
        ts: now(),
    })
}

/// The lock an offer just initiated (its request ID comes from the sequence).
fn initiated(creditor_id: i64, amount: i64, crid: i64, transfer_id: Option<i64>) -> AccountLock {
    AccountLock {
        initiated_at: now(),
        coordinator_request_id: crid,
        ..lock(creditor_id, amount, transfer_id)
    }
}

#[tokio::test]
async fn candidate_offers_lock_accounts_as_the_reference_does() {
    let mut w = Worker::new().await;
    insert_turn(&mut w.conn, 2, 2, 5).await;

    // A buyer: nothing locked, a PrepareTransfer to the collector's account.
    w.handle_twice(offer(1, 777, 20000)).await;
    let buyer = w.lock(777).await;
    assert_eq!(
        buyer,
        initiated(777, 20000, buyer.coordinator_request_id, None)
    );
    let state = w.state().await;
    assert_eq!(
        state.prepares,
        vec![prepare(777, buyer.coordinator_request_id, 0, 0)]
    );

    // The lock is in force: an offer of another turn is ignored.
    w.handle(offer(2, 777, 30000)).await;
    assert_eq!(w.state().await, state);

    // A currency without active collectors: ignored.
    w.handle(offer_of(1, 777, 12345, 30000, date(2024, 1, 1), 1234))
        .await;
    assert_eq!(w.state().await, state);

    // A seller: enough locked to cover the offer after 30 days at -50 %.
    w.handle_twice(offer(1, 888, -30000)).await;
    let seller = w.lock(888).await;
    assert_eq!(
        seller,
        initiated(888, -30000, seller.coordinator_request_id, None)
    );
    assert_ne!(seller.coordinator_request_id, buyer.coordinator_request_id);
    assert_eq!(
        w.state().await.prepares,
        vec![
            prepare(777, buyer.coordinator_request_id, 0, 0),
            prepare(888, seller.coordinator_request_id, 1059, 31758),
        ]
    );

    // A collector trading its own surplus: a self-lock, prepared with the made-up transfer
    // 0, and no message.
    w.handle_twice(offer(1, COLLECTOR, -50000)).await;
    let own = w.lock(COLLECTOR).await;
    assert_eq!(
        own,
        initiated(COLLECTOR, -50000, own.coordinator_request_id, Some(0))
    );
    let state = w.state().await;
    assert_eq!(state.prepares.len(), 2);
    assert!(state.finalizes.is_empty());
}

#[tokio::test]
async fn candidate_offers_lock_only_at_phase_2_subphase_5() {
    let mut w = Worker::new().await;
    insert_turn(&mut w.conn, 3, 2, 0).await;
    insert_turn(&mut w.conn, 4, 2, 10).await;
    insert_turn(&mut w.conn, 5, 3, 0).await;
    insert_turn(&mut w.conn, 6, 1, 5).await;
    let empty = w.state().await;
    for turn_id in [3, 4, 5, 6, 7] {
        w.handle(offer(turn_id, 777, 20000)).await;
        w.handle(offer(turn_id, 888, -20000)).await;
    }
    assert_eq!(w.state().await, empty);
}

#[tokio::test]
async fn a_released_lock_blocks_offers_until_the_snapshot_includes_its_release() {
    let mut w = Worker::new().await;
    let released = AccountLock {
        turn_id: 0,
        transfer_id: Some(123),
        finalized_at: Some(now() - Duration::days(1)),
        released_at: Some(now() - Duration::days(1)),
        account_creation_date: Some(date(2024, 1, 1)),
        account_last_transfer_number: Some(1234),
        has_been_revised: true,
        ..lock(777, 80000, Some(123))
    };
    insert_lock(&mut w.conn, &released).await;
    let before = w.state().await;
    // An older snapshot (same account, earlier transfer number) does not see the release.
    w.handle(offer_of(1, 777, DEBTOR, 20000, date(2024, 1, 1), 1233))
        .await;
    // Neither does a snapshot of an older account.
    w.handle(offer_of(1, 777, DEBTOR, 20000, date(2023, 12, 31), 9999))
        .await;
    assert_eq!(w.state().await, before);
    // A snapshot that includes the releasing transfer: the lock is initiated anew.
    w.handle(offer_of(1, 777, DEBTOR, 20000, date(2024, 1, 1), 1234))
        .await;
    let renewed = w.lock(777).await;
    assert_ne!(renewed.coordinator_request_id, 7890);
    assert_eq!(
        renewed,
        initiated(777, 20000, renewed.coordinator_request_id, None)
    );
    assert_eq!(
        w.state().await.prepares,
        vec![prepare(777, renewed.coordinator_request_id, 0, 0)]
    );

    // The reference's case: a lock released at (2000-01-01, 12345) and an offer from
    // (2024-01-01, 1234) of a newer account.
    let old = AccountLock {
        creditor_id: 778,
        account_creation_date: Some(date(2000, 1, 1)),
        account_last_transfer_number: Some(12345),
        coordinator_request_id: 7891,
        ..released
    };
    insert_lock(&mut w.conn, &old).await;
    w.handle(offer(1, 778, 20000)).await;
    let renewed = w.lock(778).await;
    assert_eq!(
        renewed,
        initiated(778, 20000, renewed.coordinator_request_id, None)
    );
}

#[tokio::test]
async fn a_candidate_offer_picks_a_random_active_collector() {
    let mut w = Worker::new().await;
    insert_collector(&mut w.conn, DEBTOR, 998, "TestCollectorAccount998").await;
    for creditor_id in 1000..1040 {
        w.handle(offer(1, creditor_id, 20000)).await;
    }
    let state = w.state().await;
    assert_eq!(state.locks.len(), 40);
    for (lock, prepare) in state.locks.iter().zip(&state.prepares) {
        assert_eq!(prepare.coordinator_request_id, lock.coordinator_request_id);
        assert_eq!(
            prepare.recipient,
            format!("TestCollectorAccount{}", lock.collector_id)
        );
    }
    for collector_id in [998, COLLECTOR] {
        assert!(
            state.locks.iter().any(|l| l.collector_id == collector_id),
            "collector {collector_id} was never chosen"
        );
    }
}

#[tokio::test]
async fn a_rejected_transfer_deletes_only_an_initiated_lock() {
    let mut w = Worker::new().await;
    w.handle(offer(1, 888, -30000)).await;
    let crid = w.lock(888).await.coordinator_request_id;
    let before = w.state().await;
    // Unknown request, another debtor, another creditor with the same coordinator: nothing.
    w.handle(rejected(888, DEBTOR, crid + 1000, "agent")).await;
    w.handle(rejected(888, 1666, crid, "agent")).await;
    let mut other_creditor = rejected(888, DEBTOR, crid, "agent");
    if let IncomingMessage::RejectedTransfer(m) = &mut other_creditor {
        m.creditor_id = 1888;
    }
    w.handle(other_creditor).await;
    assert_eq!(w.state().await, before);

    w.handle_twice(rejected(888, DEBTOR, crid, "agent")).await;
    assert!(w.state().await.locks.is_empty());

    // A prepared lock stays (a late rejection after the PreparedTransfer).
    w.handle(offer(1, 888, -30000)).await;
    let crid = w.lock(888).await.coordinator_request_id;
    w.handle(Prepared::of_888(crid).message()).await;
    let prepared = w.state().await;
    w.handle(rejected(888, DEBTOR, crid, "agent")).await;
    assert_eq!(w.state().await, prepared);
}

#[tokio::test]
async fn a_prepared_transfer_prepares_a_sell_lock() {
    let mut w = Worker::new().await;
    w.handle(offer(1, 888, -30000)).await;
    let initiated_lock = w.lock(888).await;
    let crid = initiated_lock.coordinator_request_id;

    // Another debtor or another creditor than the lock's: dismissed with the message's IDs.
    let wrong_debtor = Prepared {
        debtor_id: 1666,
        ..Prepared::of_888(crid)
    };
    w.handle(wrong_debtor.message()).await;
    let wrong_creditor = Prepared {
        creditor_id: 1888,
        ..Prepared::of_888(crid)
    };
    w.handle(wrong_creditor.message()).await;
    let state = w.state().await;
    assert_eq!(state.locks, vec![initiated_lock.clone()]);
    let mut wrong_creditor_dismissal = dismissal(1888, DEBTOR, 123, crid);
    wrong_creditor_dismissal.coordinator_id = 888;
    assert_eq!(
        state.finalizes,
        vec![dismissal(888, 1666, 123, crid), wrong_creditor_dismissal]
    );
    diesel::delete(finalize_transfer_signal::table)
        .execute(&mut w.conn)
        .await
        .unwrap();

    // Prepared: the amount is what 10000 locked are worth after 30 days at -49 %.
    w.handle_twice(Prepared::of_888(crid).message()).await;
    let worth = (10000.0 * demurrage(-49.0, Duration::days(30))).floor() as i64;
    assert_eq!(worth, 9461);
    let prepared_lock = AccountLock {
        transfer_id: Some(123),
        amount: -9461,
        ..initiated_lock
    };
    let state = w.state().await;
    assert_eq!(state.locks, vec![prepared_lock.clone()]);
    assert!(state.finalizes.is_empty());

    // Another transfer for the same request: dismissed, the lock unchanged.
    let other = Prepared {
        transfer_id: 124,
        ..Prepared::of_888(crid)
    };
    w.handle(other.message()).await;
    let state = w.state().await;
    assert_eq!(state.locks, vec![prepared_lock]);
    assert_eq!(state.finalizes, vec![dismissal(888, DEBTOR, 124, crid)]);
}

#[tokio::test]
async fn a_sell_lock_never_trades_more_than_its_offer() {
    let mut w = Worker::new().await;
    w.handle(offer(1, 888, -30000)).await;
    let crid = w.lock(888).await.coordinator_request_id;
    let generous = Prepared {
        locked_amount: 40000,
        ..Prepared::of_888(crid)
    };
    w.handle(generous.message()).await;
    assert_eq!(w.lock(888).await.amount, -30000);
}

#[tokio::test]
async fn a_prepared_transfer_keeps_a_buy_locks_amount() {
    let mut w = Worker::new().await;
    w.handle(offer(1, 888, 50000)).await;
    let initiated_lock = w.lock(888).await;
    let zero = Prepared {
        locked_amount: 0,
        ..Prepared::of_888(initiated_lock.coordinator_request_id)
    };
    w.handle_twice(zero.message()).await;
    let state = w.state().await;
    assert_eq!(
        state.locks,
        vec![AccountLock {
            transfer_id: Some(123),
            ..initiated_lock
        }]
    );
    assert!(state.finalizes.is_empty());
}

#[tokio::test]
async fn a_prepared_transfer_with_a_low_rate_or_an_early_deadline_is_dismissed() {
    let mut w = Worker::new().await;
    for (creditor_id, rate, deadline) in [
        (888, -80.0, now() + Duration::days(1000)),
        (889, -49.0, now() + Duration::days(1)),
        (
            890,
            -49.0,
            now() + Duration::days(30) - Duration::microseconds(1),
        ),
    ] {
        w.handle(offer(1, creditor_id, -30000)).await;
        let crid = w.lock(creditor_id).await.coordinator_request_id;
        let m = Prepared {
            creditor_id,
            coordinator_id: creditor_id,
            demurrage_rate: rate,
            deadline,
            ..Prepared::of_888(crid)
        };
        w.handle(m.message()).await;
        let state = w.state().await;
        assert!(state.locks.is_empty(), "{creditor_id}");
        assert_eq!(
            state.finalizes,
            vec![dismissal(creditor_id, DEBTOR, 123, crid)]
        );
        diesel::delete(finalize_transfer_signal::table)
            .execute(&mut w.conn)
            .await
            .unwrap();
    }
    // The deadline may be the collection deadline itself, and the rate the minimum.
    w.handle(offer(1, 891, -30000)).await;
    let crid = w.lock(891).await.coordinator_request_id;
    let m = Prepared {
        creditor_id: 891,
        coordinator_id: 891,
        demurrage_rate: -50.0,
        deadline: now() + Duration::days(30),
        ..Prepared::of_888(crid)
    };
    w.handle(m.message()).await;
    assert_eq!(w.lock(891).await.transfer_id, Some(123));
    assert!(w.state().await.finalizes.is_empty());
}

#[tokio::test]
async fn an_unknown_prepared_transfer_is_dismissed() {
    let mut w = Worker::new().await;
    // No lock with this request ID.
    w.handle(Prepared::of_888(12345).message()).await;
    // A lock whose turn the worker does not know (any more).
    let orphan = AccountLock {
        turn_id: 77,
        ..lock(888, -30000, None)
    };
    insert_lock(&mut w.conn, &orphan).await;
    w.handle(Prepared::of_888(7890).message()).await;
    let state = w.state().await;
    assert_eq!(state.locks, vec![orphan]);
    assert_eq!(
        state.finalizes,
        vec![
            dismissal(888, DEBTOR, 123, 12345),
            dismissal(888, DEBTOR, 123, 7890)
        ]
    );
}

#[tokio::test]
async fn a_settled_sell_lock_sends_its_commit_again() {
    let mut w = Worker::new().await;
    let committed = AccountLock {
        creditor_id: 888,
        finalized_at: Some(now() - Duration::minutes(1)),
        has_been_revised: true,
        ..lock(888, -9000, Some(123))
    };
    insert_lock(&mut w.conn, &committed).await;
    let note = "Trading session: 1\nBuyer: 3e7\nSeller: 378\n";
    w.handle(Prepared::of_888(7890).message()).await;
    w.handle(Prepared::of_888(7890).message()).await;
    let state = w.state().await;
    assert_eq!(state.locks, vec![committed.clone()]);
    let expected = commit(888, 123, 7890, 9000, note);
    assert_eq!(state.finalizes, vec![expected.clone(), expected]);

    // Another transfer of the settled lock: dismissed.
    let other = Prepared {
        transfer_id: 124,
        ..Prepared::of_888(7890)
    };
    w.handle(other.message()).await;
    assert_eq!(
        w.state().await.finalizes.last(),
        Some(&dismissal(888, DEBTOR, 124, 7890))
    );

    // A settled lock that committed nothing (amount 0): its transfer is dismissed.
    let mut w = Worker::new().await;
    let dismissed = AccountLock {
        finalized_at: Some(now() - Duration::minutes(1)),
        ..lock(888, 0, Some(123))
    };
    insert_lock(&mut w.conn, &dismissed).await;
    w.handle(Prepared::of_888(7890).message()).await;
    let state = w.state().await;
    assert_eq!(state.locks, vec![dismissed]);
    assert_eq!(state.finalizes, vec![dismissal(888, DEBTOR, 123, 7890)]);
}

#[tokio::test]
async fn transfers_of_other_coordinators_are_fatal() {
    let mut w = Worker::new().await;
    w.handle(offer(1, 888, -30000)).await;
    let crid = w.lock(888).await.coordinator_request_id;
    let before = w.state().await;
    for m in [
        Prepared::of_888(crid).message_of("direct"),
        rejected(888, DEBTOR, crid, "issuing"),
    ] {
        let result = w.try_handle(m).await;
        assert!(
            matches!(&result, Err(HandlerError::Fatal(e)) if e.contains("Unexpected coordinator type")),
            "{result:?}"
        );
    }
    assert_eq!(w.state().await, before);
}

#[tokio::test]
async fn revising_a_seller_commits_the_decided_amount() {
    let mut w = Worker::new().await;
    insert_lock(&mut w.conn, &lock(777, -80000, Some(123))).await;
    insert_participation(&mut w.conn, 777, -50000, COLLECTOR).await;
    w.handle_twice(revise(777)).await;
    let state = w.state().await;
    assert_eq!(
        state.locks,
        vec![AccountLock {
            amount: -50000,
            finalized_at: Some(now()),
            has_been_revised: true,
            ..lock(777, -80000, Some(123))
        }]
    );
    assert_eq!(
        state.finalizes,
        vec![commit(
            777,
            123,
            7890,
            50000,
            "Trading session: 1\nBuyer: 3e7\nSeller: 309\n"
        )]
    );
    assert!(state.participations.is_empty());

    // Its PreparedTransfer again (e.g. redelivered): the same commit once more.
    let again = Prepared {
        creditor_id: 777,
        coordinator_id: 777,
        ..Prepared::of_888(7890)
    };
    w.handle(again.message()).await;
    let finalizes = w.state().await.finalizes;
    assert_eq!(finalizes.len(), 2);
    assert_eq!(finalizes[0], finalizes[1]);
}

#[tokio::test]
async fn revising_a_buyer_keeps_its_prepared_transfer_open() {
    let mut w = Worker::new().await;
    insert_lock(&mut w.conn, &lock(777, 80000, Some(123))).await;
    insert_participation(&mut w.conn, 777, 50000, COLLECTOR).await;
    w.handle_twice(revise(777)).await;
    let state = w.state().await;
    assert_eq!(
        state.locks,
        vec![AccountLock {
            amount: 50000,
            has_been_revised: true,
            ..lock(777, 80000, Some(123))
        }]
    );
    assert!(state.finalizes.is_empty());
    assert!(state.participations.is_empty());
}

#[tokio::test]
async fn revising_a_lock_without_participation_dismisses_and_deletes_it() {
    for amount in [80000, -80000] {
        for transfer_id in [None, Some(123)] {
            let mut w = Worker::new().await;
            insert_lock(&mut w.conn, &lock(777, amount, transfer_id)).await;
            w.handle_twice(revise(777)).await;
            let state = w.state().await;
            assert!(state.locks.is_empty());
            let expected: Vec<Finalize> = transfer_id
                .map(|id| dismissal(777, DEBTOR, id, 7890))
                .into_iter()
                .collect();
            assert_eq!(state.finalizes, expected, "{amount} {transfer_id:?}");
        }
    }
    // A self-lock has nothing to dismiss.
    let mut w = Worker::new().await;
    insert_lock(&mut w.conn, &lock(COLLECTOR, -80000, Some(0))).await;
    w.handle(revise(COLLECTOR)).await;
    let state = w.state().await;
    assert!(state.locks.is_empty() && state.finalizes.is_empty());
}

#[tokio::test]
async fn revising_a_collectors_trade_with_itself_releases_the_lock() {
    for amount in [80000, -80000] {
        let mut w = Worker::new().await;
        insert_lock(&mut w.conn, &lock(COLLECTOR, amount, Some(123))).await;
        insert_participation(&mut w.conn, COLLECTOR, amount, COLLECTOR).await;
        w.handle_twice(revise(COLLECTOR)).await;
        let state = w.state().await;
        assert_eq!(
            state.locks,
            vec![AccountLock {
                finalized_at: Some(now()),
                released_at: Some(now()),
                account_creation_date: Some(date(1970, 1, 1)),
                account_last_transfer_number: Some(0),
                has_been_revised: true,
                ..lock(COLLECTOR, amount, Some(123))
            }]
        );
        assert!(state.finalizes.is_empty());
        assert!(state.participations.is_empty());
    }

    // A collector's buyer lock placed with another collector: the solver made the collector
    // its own counterparty, so its prepared transfer is dismissed and the lock released.
    let mut w = Worker::new().await;
    let elsewhere = AccountLock {
        collector_id: 998,
        ..lock(COLLECTOR, 80000, Some(123))
    };
    insert_lock(&mut w.conn, &elsewhere).await;
    insert_participation(&mut w.conn, COLLECTOR, 50000, COLLECTOR).await;
    w.handle_twice(revise(COLLECTOR)).await;
    let state = w.state().await;
    assert_eq!(
        state.locks,
        vec![AccountLock {
            amount: 50000,
            finalized_at: Some(now()),
            released_at: Some(now()),
            account_creation_date: Some(date(1970, 1, 1)),
            account_last_transfer_number: Some(0),
            has_been_revised: true,
            ..elsewhere
        }]
    );
    assert_eq!(
        state.finalizes,
        vec![dismissal(COLLECTOR, DEBTOR, 123, 7890)]
    );
}

#[tokio::test]
async fn revising_other_turns_or_settled_locks_changes_nothing_but_the_participation() {
    let mut w = Worker::new().await;
    // A lock of turn 2, and a finalized lock: not this turn's revision.
    let other_turn = AccountLock {
        turn_id: 2,
        ..lock(777, -80000, Some(123))
    };
    let finalized = AccountLock {
        coordinator_request_id: 7891,
        finalized_at: Some(now() - Duration::minutes(1)),
        ..lock(778, -80000, Some(124))
    };
    insert_lock(&mut w.conn, &other_turn).await;
    insert_lock(&mut w.conn, &finalized).await;
    insert_participation(&mut w.conn, 777, -50000, COLLECTOR).await;
    insert_participation(&mut w.conn, 778, -50000, COLLECTOR).await;
    // No lock at all.
    insert_participation(&mut w.conn, 779, -50000, COLLECTOR).await;
    for creditor_id in [777, 778, 779] {
        w.handle(revise(creditor_id)).await;
    }
    let state = w.state().await;
    assert_eq!(state.locks, vec![other_turn, finalized]);
    assert!(state.finalizes.is_empty());
    assert!(state.participations.is_empty());
}

#[tokio::test]
async fn a_participation_that_does_not_fit_its_lock_is_fatal() {
    for (lock_amount, transfer_id, participation) in [
        (-80000, Some(123), -90000),
        (-80000, Some(123), 50000),
        (80000, Some(123), -50000),
        (-80000, None, -50000),
    ] {
        let mut w = Worker::new().await;
        insert_lock(&mut w.conn, &lock(777, lock_amount, transfer_id)).await;
        insert_participation(&mut w.conn, 777, participation, COLLECTOR).await;
        let before = w.state().await;
        let result = w.try_handle(revise(777)).await;
        assert!(
            matches!(result, Err(HandlerError::Fatal(_))),
            "{lock_amount} {participation}: {result:?}"
        );
        assert_eq!(w.state().await, before);
    }
    // A seller whose decided collector is not its lock's.
    let mut w = Worker::new().await;
    insert_lock(&mut w.conn, &lock(777, -80000, Some(123))).await;
    insert_participation(&mut w.conn, 777, -50000, 998).await;
    let result = w.try_handle(revise(777)).await;
    assert!(matches!(result, Err(HandlerError::Fatal(_))), "{result:?}");
}

#[tokio::test]
async fn reordered_messages_leave_nothing_locked() {
    let mut w = Worker::new().await;
    w.handle(offer(1, 888, -30000)).await;
    let crid = w.lock(888).await.coordinator_request_id;
    // The turn was solved before the PreparedTransfer came: no participation, and the
    // initiated lock is deleted without a message ...
    w.handle(revise(888)).await;
    let state = w.state().await;
    assert!(state.locks.is_empty() && state.finalizes.is_empty());
    // ... then the late PreparedTransfer finds no lock and is dismissed, and the late
    // duplicate of the offer finds the turn past phase 2, sub-phase 5.
    w.handle(Prepared::of_888(crid).message()).await;
    diesel::update(worker_turn::table.find(1))
        .set((
            worker_turn::phase.eq(3),
            worker_turn::worker_turn_subphase.eq(0),
            worker_turn::collection_started_at.eq(Some(now())),
        ))
        .execute(&mut w.conn)
        .await
        .unwrap();
    w.handle(offer(1, 888, -30000)).await;
    let state = w.state().await;
    assert!(state.locks.is_empty());
    assert_eq!(state.finalizes, vec![dismissal(888, DEBTOR, 123, crid)]);
}

#[tokio::test]
async fn a_sellers_lock_is_released_by_exactly_its_collected_amount() {
    let mut w = Worker::new().await;
    let finalized = AccountLock {
        finalized_at: Some(now() - Duration::minutes(5)),
        has_been_revised: true,
        ..lock(777, -80000, Some(123))
    };
    insert_lock(&mut w.conn, &finalized).await;
    let position = (date(2025, 6, 1), 7890);
    let conn = &mut w.conn;
    // Another amount or another turn: nothing.
    for (turn_id, amount) in [(1, -79999), (2, -80000)] {
        assert!(
            !locks_db::release_seller_lock(conn, 777, DEBTOR, turn_id, amount, position, now())
                .await
                .unwrap()
        );
    }
    assert_eq!(locks(conn).await, vec![finalized.clone()]);
    assert!(
        locks_db::release_seller_lock(conn, 777, DEBTOR, 1, -80000, position, now())
            .await
            .unwrap()
    );
    let released = AccountLock {
        released_at: Some(now()),
        account_creation_date: Some(position.0),
        account_last_transfer_number: Some(position.1),
        ..finalized
    };
    assert_eq!(locks(conn).await, vec![released.clone()]);
    // Once released, the same transfer again changes nothing.
    let later = now() + Duration::minutes(1);
    assert!(
        !locks_db::release_seller_lock(conn, 777, DEBTOR, 1, -80000, position, later)
            .await
            .unwrap()
    );
    assert_eq!(locks(conn).await, vec![released]);

    // A collector's lock records the made-up position.
    let own = AccountLock {
        creditor_id: COLLECTOR,
        coordinator_request_id: 7891,
        finalized_at: Some(now()),
        ..lock(COLLECTOR, -80000, Some(0))
    };
    insert_lock(conn, &own).await;
    let made_up = collector_trade_position();
    assert_eq!(made_up, (date(1970, 1, 1), 0));
    assert!(
        locks_db::release_seller_lock(conn, COLLECTOR, DEBTOR, 1, -80000, made_up, now())
            .await
            .unwrap()
    );
    let lock = w.lock(COLLECTOR).await;
    assert_eq!(lock.account_creation_date, Some(date(1970, 1, 1)));
    assert_eq!(lock.account_last_transfer_number, Some(0));
}

#[tokio::test]
async fn a_buyers_lock_is_released_when_paid() {
    let mut w = Worker::new().await;
    let prepared = AccountLock {
        coordinator_request_id: 56789,
        has_been_revised: true,
        ..lock(777, 80000, Some(123))
    };
    insert_lock(&mut w.conn, &prepared).await;
    let position = (date(2025, 6, 1), 7890);
    let conn = &mut w.conn;
    // Another turn: nothing.
    assert_eq!(
        locks_db::release_buyer_lock(conn, 777, DEBTOR, 2, position, now())
            .await
            .unwrap(),
        None
    );
    let released = AccountLock {
        finalized_at: Some(now()),
        released_at: Some(now()),
        account_creation_date: Some(position.0),
        account_last_transfer_number: Some(position.1),
        ..prepared
    };
    // Whatever the amount paid; the caller dismisses the returned lock's transfer.
    assert_eq!(
        locks_db::release_buyer_lock(conn, 777, DEBTOR, 1, position, now())
            .await
            .unwrap(),
        Some(released.clone())
    );
    let later = now() + Duration::minutes(1);
    assert_eq!(
        locks_db::release_buyer_lock(conn, 777, DEBTOR, 1, position, later)
            .await
            .unwrap(),
        None
    );
    assert_eq!(locks(conn).await, vec![released]);
    // A seller's lock, or one not prepared, is not a buyer's.
    for (creditor_id, amount, transfer_id) in [(778, -80000, Some(124)), (779, 80000, None)] {
        let other = AccountLock {
            coordinator_request_id: 7000 + creditor_id,
            ..lock(creditor_id, amount, transfer_id)
        };
        insert_lock(conn, &other).await;
        assert_eq!(
            locks_db::release_buyer_lock(conn, creditor_id, DEBTOR, 1, position, now())
                .await
                .unwrap(),
            None
        );
    }
}
