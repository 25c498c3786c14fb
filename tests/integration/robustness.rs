//! What must never stop a shard: a message the database refuses for good, a panicking
//! handler, a failing kind of signals in `flush_all`, text from outside in log lines.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use swpt_trade::consumer::{self, ConsumerSettings, HandleMessages, Handlers, MAX_POISON_FAILURES};
use swpt_trade::db::{PoolSettings, WorkerPool};
use swpt_trade::handlers::HandlerError;
use swpt_trade::jobs::Runner;
use swpt_trade::messages::IncomingMessage;
use tokio_util::sync::CancellationToken;

use crate::consumer::{Rig, updated_ledger, updated_policy, wait_for};
use crate::handlers::count;
use crate::util::test_config;

/// The creditor whose messages the wrapped handlers below refuse.
const POISONED: i64 = 13;

/// How the wrapper below treats messages of [`POISONED`].
#[derive(Clone, Copy)]
enum Poison {
    /// The database refuses a statement for good (a NUL character in a text value).
    DatabaseRefusal,
    /// The handler panics.
    Panic,
}

/// The service's handlers, except for messages of [`POISONED`].
struct Wrapped {
    inner: Handlers,
    poison: Poison,
    attempts: AtomicU32,
}

impl HandleMessages for Wrapped {
    async fn handle(
        &self,
        conn: &mut AsyncPgConnection,
        message: &IncomingMessage,
        now: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        if message_creditor(message) == Some(POISONED) {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            // What the handler wrote before failing must be rolled back with it.
            diesel::sql_query("INSERT INTO needed_worker_account VALUES (13, 13, now())")
                .execute(conn)
                .await?;
            match self.poison {
                Poison::DatabaseRefusal => {
                    diesel::sql_query("SELECT chr(0)").execute(conn).await?;
                }
                Poison::Panic => panic!("a handler bug"),
            }
        }
        self.inner.handle(conn, message, now).await
    }
}

fn message_creditor(message: &IncomingMessage) -> Option<i64> {
    match message {
        IncomingMessage::UpdatedPolicy(m) => Some(m.creditor_id),
        IncomingMessage::UpdatedLedger(m) => Some(m.creditor_id),
        _ => None,
    }
}

/// Consumes with `Wrapped` handlers; cancel the token to stop.
fn start(
    rig: &Rig,
    poison: Poison,
    batch_size: u16,
) -> (
    CancellationToken,
    Arc<Wrapped>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let vars = rig.vars();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = Arc::new(test_config(&vars));
    let settings = ConsumerSettings {
        url: rig.broker.url.clone(),
        queue: "q".into(),
        processes: 1,
        threads: 2,
        prefetch_count: 1,
        batch_size,
        draining_mode: false,
    };
    let pool = WorkerPool::build(&rig.db.url, PoolSettings::new(4), "test").unwrap();
    let handler = Arc::new(Wrapped {
        inner: Handlers::new(config.clone(), "test").unwrap(),
        poison,
        attempts: AtomicU32::new(0),
    });
    let stop = CancellationToken::new();
    let runner = Runner::new(&stop, config.processes.shutdown_timeout);
    consumer::spawn(
        &runner,
        settings,
        config.sharding_realm,
        handler.clone(),
        pool,
    );
    (stop, handler, tokio::spawn(runner.wait()))
}

async fn poisoned_message_is_dead_lettered_and_the_others_are_handled(poison: Poison) {
    let rig = Rig::new("#").await;
    let (stop, handler, task) = start(&rig, poison, 50);
    for creditor in 1..=20 {
        rig.publish(creditor, updated_policy(creditor, 1)).await;
    }
    for creditor in 21..=30 {
        rig.publish(creditor, updated_ledger(creditor, 1)).await;
    }
    let conn = &mut rig.db.connect().await;
    assert!(
        wait_for(30, async || count(conn, "trading_policy").await == 29).await,
        "every message but the poisoned one was handled"
    );
    assert!(
        wait_for(10, async || rig.ready("q.XQ").await == 1).await,
        "the poisoned message is in the dead-letter queue"
    );
    // Later messages are consumed too: the consumer kept going.
    rig.publish(31, updated_policy(31, 1)).await;
    assert!(wait_for(10, async || count(conn, "trading_policy").await == 30).await);
    stop.cancel();
    task.await.unwrap().unwrap();
    rig.settled().await;
    assert_eq!(rig.ready("q").await, 0, "nothing left unacknowledged");
    assert_eq!(rig.ready("q.XQ").await, 1);
    assert_eq!(
        count(conn, "trading_policy WHERE creditor_id = 13").await,
        0,
        "nothing of the poisoned message is stored"
    );
    assert_eq!(count(conn, "needed_worker_account").await, 0);
    // Tried in its batch, then alone MAX_POISON_FAILURES times.
    let attempts = AtomicU32::load(&handler.attempts, Ordering::SeqCst);
    assert!(
        (MAX_POISON_FAILURES..=MAX_POISON_FAILURES + 1).contains(&attempts),
        "{attempts} attempts"
    );
}

#[tokio::test]
async fn a_message_the_database_refuses_for_good_is_dead_lettered() {
    poisoned_message_is_dead_lettered_and_the_others_are_handled(Poison::DatabaseRefusal).await;
}

#[tokio::test]
async fn a_panicking_handler_does_not_stop_the_consumer() {
    poisoned_message_is_dead_lettered_and_the_others_are_handled(Poison::Panic).await;
}

#[tokio::test]
async fn a_nul_character_in_a_policy_name_is_dead_lettered_by_validation() {
    let rig = Rig::new("#").await;
    let (stop, task) = rig.start(10);
    let mut poisoned = updated_policy(7, 1);
    poisoned["policy_name"] = "con\u{0}servative".into();
    rig.publish(7, poisoned).await;
    rig.publish(8, updated_policy(8, 1)).await;
    let conn = &mut rig.db.connect().await;
    assert!(wait_for(20, async || count(conn, "trading_policy").await == 1).await);
    assert!(wait_for(10, async || rig.ready("q.XQ").await == 1).await);
    assert_eq!(count(conn, "trading_policy WHERE creditor_id = 7").await, 0);
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_failing_kind_does_not_stop_the_other_kinds_of_a_pass() {
    use swpt_trade::messages::{OutgoingMessage, TriggerTransfer};
    use swpt_trade::outbox::{FlushError, SignalKind};

    use crate::flush::{Setup, TRADE_QUEUE, needed_collectors};
    use crate::outbox::{emit_all, pending};

    // Only keys starting with 0 reach a queue: a NeededCollector keyed 1.… is returned by
    // the broker, so its kind fails; the kinds before and after it must still be flushed.
    let setup = Setup::new("0.#", false).await;
    let mut conn = setup.db.connect().await;
    let unroutable = needed_collectors(123..=123);
    assert!(unroutable[0].routing_key().starts_with("1."));
    let realm: swpt_trade::messages::ShardingRealm = "0.#".parse().unwrap();
    let collector_id = (1..).find(|&id| realm.contains_id(id)).unwrap();
    let ts = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    let routable: OutgoingMessage = TriggerTransfer {
        collector_id,
        turn_id: 1,
        debtor_id: 2,
        creditor_id: 3,
        is_dispatching: false,
        ts,
    }
    .into();
    assert!(routable.routing_key().starts_with("0."));
    emit_all(&mut conn, &unroutable).await;
    emit_all(&mut conn, std::slice::from_ref(&routable)).await;

    let mut flusher = setup.flusher("#", false, 10_000);
    let err = flusher.flush(&SignalKind::ALL).await.unwrap_err();
    assert!(matches!(err, FlushError::Publish(_)), "{err}");
    assert_eq!(
        pending(&mut conn, SignalKind::NeededCollector).await,
        unroutable,
        "the failed kind's rows stay"
    );
    assert!(
        pending(&mut conn, SignalKind::TriggerTransfer)
            .await
            .is_empty(),
        "the kind after the failed one was flushed"
    );
    let arrived = setup.take(TRADE_QUEUE).await;
    assert_eq!(arrived.len(), 1);
    assert_eq!(arrived[0].data, routable.to_json());
}
