//! The consumer against the real broker and database: handled messages change the database
//! and are acknowledged, malformed ones end in the dead-letter queue, duplicates change
//! nothing, failures are redelivered, SIGTERM finishes what is in flight.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use serde_json::json;
use swpt_trade::broker::topology;
use swpt_trade::consumer::{self, ConsumerSettings};
use swpt_trade::db::{self, Database};
use swpt_trade::sharding::bin_routing_key;
use tokio_util::sync::CancellationToken;

use crate::handlers::count;
use crate::util::{TestBroker, TestDb, test_config};

/// A worker database, a virtual host with the worker's queue `q`, and a publisher channel.
pub struct Rig {
    pub db: TestDb,
    pub broker: TestBroker,
    pub realm: String,
    _conn: Connection,
    pub ch: Channel,
}

impl Rig {
    pub async fn new(realm: &str) -> Self {
        let db = TestDb::migrated(Database::Worker).await;
        let broker = TestBroker::new().await;
        // Not `broker::connect`: the test's own connection has no "swpt-trade" name.
        let conn = Connection::connect(&broker.url, lapin::ConnectionProperties::default())
            .await
            .unwrap();
        topology::subscribe(&conn, "q", realm).await.unwrap();
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        Self {
            db,
            broker,
            realm: realm.into(),
            _conn: conn,
            ch,
        }
    }

    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("WORKER_POSTGRES_URL", self.db.url.clone()),
            ("PROTOCOL_BROKER_URL", self.broker.url.clone()),
            ("PROTOCOL_BROKER_QUEUE", "q".into()),
            ("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", self.realm.clone()),
        ]
    }

    /// Starts consuming in this process; cancel the token to stop.
    pub fn start(
        &self,
        batch_size: u16,
    ) -> (
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        self.start_with(batch_size, false)
    }

    /// Starts consuming, in draining mode or not.
    pub fn start_with(
        &self,
        batch_size: u16,
        draining_mode: bool,
    ) -> (
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let vars = self.vars();
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let config = test_config(&vars);
        let settings = ConsumerSettings {
            url: self.broker.url.clone(),
            queue: "q".into(),
            processes: 1,
            threads: 1,
            prefetch_count: 1,
            batch_size,
            draining_mode,
        };
        let pool = db::WorkerPool::build(&self.db.url, db::PoolSettings::new(4), "test").unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(consumer::run(
            settings,
            Arc::new(config),
            pool,
            stop.clone(),
        ));
        (stop, task)
    }

    /// Publishes a raw message to `to_trade` and waits for the broker's confirmation.
    pub async fn publish_raw(
        &self,
        routing_key: &str,
        message_type: &str,
        content_type: &str,
        body: &[u8],
    ) {
        let props = BasicProperties::default()
            .with_content_type(content_type.into())
            .with_type(message_type.into())
            .with_delivery_mode(2);
        self.ch
            .basic_publish(
                "to_trade".into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Publishes a JSON message for `creditor_id`.
    pub async fn publish(&self, creditor_id: i64, body: serde_json::Value) {
        let message_type = body["type"].as_str().unwrap().to_owned();
        let body = serde_json::to_vec(&body).unwrap();
        self.publish_raw(
            &bin_routing_key(creditor_id),
            &message_type,
            "application/json",
            &body,
        )
        .await;
    }

    /// Consumers of a queue.
    pub async fn consumers(&self, queue: &str) -> u32 {
        let passive = QueueDeclareOptions {
            passive: true,
            durable: true,
            ..Default::default()
        };
        self.ch
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .unwrap()
            .consumer_count()
    }

    /// Waits until `q` has no consumer: the consumers stopped taking messages, and once their
    /// connections are closed, [`Rig::ready`] counts whatever they did not acknowledge.
    pub async fn settled(&self) {
        assert!(
            wait_for(10, async || self.consumers("q").await == 0).await,
            "the consumer is still subscribed"
        );
    }

    /// Ready messages in a queue.
    pub async fn ready(&self, queue: &str) -> u32 {
        let passive = QueueDeclareOptions {
            passive: true,
            durable: true,
            ..Default::default()
        };
        self.ch
            .queue_declare(queue.into(), passive, FieldTable::default())
            .await
            .unwrap()
            .message_count()
    }
}

pub use crate::util::wait_for;

pub fn updated_policy(creditor_id: i64, update_id: i64) -> serde_json::Value {
    json!({
        "type": "UpdatedPolicy", "creditor_id": creditor_id, "debtor_id": 666,
        "update_id": update_id, "policy_name": "conservative", "min_principal": 0,
        "max_principal": 1000, "peg_exchange_rate": null, "peg_debtor_id": null,
        "ts": "2024-05-01T12:00:00+00:00"
    })
}

pub fn updated_ledger(creditor_id: i64, update_id: i64) -> serde_json::Value {
    json!({
        "type": "UpdatedLedger", "creditor_id": creditor_id, "debtor_id": 666,
        "update_id": update_id, "account_id": format!("acc{creditor_id}"),
        "creation_date": "2024-01-01", "principal": 100, "last_transfer_number": 1,
        "ts": "2024-05-01T12:00:00+00:00"
    })
}

pub fn account_update(creditor_id: i64, seqnum: i32) -> serde_json::Value {
    let now = chrono::Utc::now().to_rfc3339();
    json!({
        "type": "AccountUpdate", "creditor_id": creditor_id, "debtor_id": 666,
        "creation_date": "2024-01-01", "last_change_ts": "2024-05-01T12:00:00+00:00",
        "last_change_seqnum": seqnum, "principal": 5, "interest": 0.0, "interest_rate": 2.0,
        "last_interest_rate_change_ts": "2024-04-01T00:00:00+00:00",
        "last_config_ts": "2024-04-01T00:00:00+00:00", "last_config_seqnum": 0,
        "negligible_amount": 0.0, "config_flags": 0, "config_data": "",
        "account_id": "collector-acc", "debtor_info_iri": "https://example.com/666",
        "debtor_info_content_type": "", "debtor_info_sha256": "", "last_transfer_number": 0,
        "last_transfer_committed_at": "2024-04-01T00:00:00+00:00", "demurrage_rate": -5.0,
        "commit_period": 2_678_400, "transfer_note_max_bytes": 500, "ts": now, "ttl": 10_000
    })
}

async fn mark_needed(rig: &Rig, creditor_id: i64) {
    use diesel_async::RunQueryDsl as _;
    diesel::sql_query(format!(
        "INSERT INTO needed_worker_account VALUES ({creditor_id}, 666, now())"
    ))
    .execute(&mut rig.db.connect().await)
    .await
    .unwrap();
}

#[tokio::test]
async fn handled_messages_change_the_database_and_are_acknowledged() {
    let rig = Rig::new("#").await;
    mark_needed(&rig, 1_099_511_627_776).await;
    let (stop, task) = rig.start(100);
    for creditor in 1..=20 {
        rig.publish(creditor, updated_policy(creditor, 1)).await;
        rig.publish(creditor, updated_ledger(creditor, 1)).await;
    }
    rig.publish(1_099_511_627_776, account_update(1_099_511_627_776, 1))
        .await;
    let conn = &mut rig.db.connect().await;
    assert!(
        wait_for(20, async || count(conn, "trading_policy").await == 20
            && count(conn, "worker_account").await == 1)
        .await
    );
    assert!(wait_for(5, async || rig.ready("q").await == 0).await);
    assert_eq!(count(conn, "activate_collector_signal").await, 1);
    assert_eq!(count(conn, "discover_debtor_signal").await, 1);
    stop.cancel();
    task.await.unwrap().unwrap();
    rig.settled().await;
    assert_eq!(rig.ready("q").await, 0, "everything was acknowledged");
    assert_eq!(rig.ready("q.XQ").await, 0);
}

#[tokio::test]
async fn malformed_messages_go_to_the_dead_letter_queue_and_change_nothing() {
    let rig = Rig::new("#").await;
    let (stop, task) = rig.start(100);
    let key = bin_routing_key(5);
    let valid = serde_json::to_vec(&updated_policy(5, 1)).unwrap();
    rig.publish_raw(&key, "UpdatedPolicy", "text/plain", &valid)
        .await;
    rig.publish_raw(&key, "NoSuchType", "application/json", &valid)
        .await;
    rig.publish_raw(&key, "UpdatedPolicy", "application/json", b"not json")
        .await;
    rig.publish_raw(&key, "UpdatedPolicy", "application/json", b"{}")
        .await;
    rig.publish_raw(&key, "UpdatedFlags", "application/json", &valid)
        .await;
    let mut wrong_type = updated_policy(5, 1);
    wrong_type["update_id"] = json!("many");
    rig.publish(5, wrong_type).await;
    let mut out_of_range = updated_policy(5, 1);
    out_of_range["update_id"] = json!(0);
    rig.publish(5, out_of_range).await;
    let mut too_long = updated_ledger(5, 1);
    too_long["account_id"] = json!("x".repeat(101));
    rig.publish(5, too_long).await;
    // A valid message (every type has a handler now): handled and acknowledged, not
    // dead-lettered — StartSending of a turn this worker does not know changes nothing.
    rig.publish(
        5,
        json!({
            "type": "StartSending", "collector_id": 5, "turn_id": 1, "debtor_id": 5,
            "ts": "2024-05-01T12:00:00+00:00"
        }),
    )
    .await;
    assert!(
        wait_for(20, async || rig.ready("q.XQ").await == 8).await,
        "all eight malformed ones are dead-lettered"
    );
    let conn = &mut rig.db.connect().await;
    assert_eq!(
        count(conn, "trading_policy").await,
        0,
        "nothing was written"
    );
    // The consumer is still alive.
    rig.publish(5, updated_policy(5, 1)).await;
    assert!(wait_for(20, async || count(conn, "trading_policy").await == 1).await);
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(rig.ready("q.XQ").await, 8);
}

#[tokio::test]
async fn a_message_delivered_twice_gives_the_state_of_once() {
    let rig = Rig::new("#").await;
    mark_needed(&rig, 77).await;
    let conn = &mut rig.db.connect().await;
    let (stop, task) = rig.start(100);
    let update = account_update(77, 3);
    rig.publish(77, update.clone()).await;
    rig.publish(77, updated_policy(77, 5)).await;
    assert!(
        wait_for(20, async || count(conn, "discover_debtor_signal").await
            == 1
            && count(conn, "trading_policy").await == 1)
        .await
    );
    let snapshot = crate::configure::table_digest(
        &rig.db,
        &["worker_account", "trading_policy", "interest_rate_change"],
    )
    .await;
    rig.publish(77, update).await;
    rig.publish(77, updated_policy(77, 5)).await;
    // Both copies taken; stopping finishes them, and whatever was not acknowledged would
    // return to the queue.
    assert!(wait_for(20, async || rig.ready("q").await == 0).await);
    stop.cancel();
    task.await.unwrap().unwrap();
    rig.settled().await;
    assert_eq!(rig.ready("q").await, 0, "the copies were acknowledged");
    assert_eq!(rig.ready("q.XQ").await, 0, "the copies were not rejected");
    assert_eq!(
        crate::configure::table_digest(
            &rig.db,
            &["worker_account", "trading_policy", "interest_rate_change"]
        )
        .await,
        snapshot
    );
    assert_eq!(count(conn, "worker_account").await, 1);
    assert_eq!(count(conn, "trading_policy").await, 1);
    assert_eq!(count(conn, "interest_rate_change").await, 1);
    assert_eq!(count(conn, "discover_debtor_signal").await, 1);
    assert_eq!(count(conn, "activate_collector_signal").await, 1);
}

#[tokio::test]
async fn a_message_of_another_shard_is_never_acknowledged() {
    let rig = Rig::new("0.#").await;
    let conn = &mut rig.db.connect().await;
    let (stop, task) = rig.start(100);
    // Creditor 3 belongs to realm 0.#, creditor 2 does not (docs/messages.md#the-sharding-realm).
    rig.publish(3, updated_policy(3, 1)).await;
    assert!(wait_for(20, async || count(conn, "trading_policy").await == 1).await);
    let misrouted = serde_json::to_vec(&updated_policy(2, 1)).unwrap();
    rig.publish_raw(
        &bin_routing_key(3),
        "UpdatedPolicy",
        "application/json",
        &misrouted,
    )
    .await;
    // A message of this shard that comes after it (in the same batch, or after a restart)
    // is still handled.
    rig.publish(3, updated_policy(3, 2)).await;
    assert!(wait_for(20, async || latest_policy_update_id(conn).await == 2).await);
    // The consumer gives the misrouted message back (it restarts without acknowledging it).
    assert!(
        wait_for(20, async || rig.ready("q").await == 1).await,
        "the misrouted message was not returned"
    );
    stop.cancel();
    task.await.unwrap().unwrap();
    rig.settled().await;
    assert_eq!(count(conn, "trading_policy").await, 1);
    assert_eq!(rig.ready("q.XQ").await, 0, "not rejected");
    assert_eq!(rig.ready("q").await, 1, "returned to the queue");
}

#[tokio::test]
async fn a_failing_handler_is_retried_until_it_succeeds() {
    use diesel_async::RunQueryDsl as _;
    let rig = Rig::new("#").await;
    let conn = &mut rig.db.connect().await;
    diesel::sql_query("ALTER TABLE trading_policy RENAME TO trading_policy_hidden")
        .execute(conn)
        .await
        .unwrap();
    let (stop, task) = rig.start(100);
    rig.publish(9, updated_policy(9, 1)).await;
    rig.publish(10, updated_ledger(10, 1)).await;
    // Something that must not happen: for 1.5 s (a failure, the 1 s pause before
    // reconnecting, and another failure), the failing messages are not dead-lettered.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rig.ready("q.XQ").await, 0, "a failure is not a rejection");
    diesel::sql_query("ALTER TABLE trading_policy_hidden RENAME TO trading_policy")
        .execute(conn)
        .await
        .unwrap();
    assert!(
        wait_for(30, async || count(conn, "trading_policy").await == 2).await,
        "processed after recovery"
    );
    assert!(wait_for(5, async || rig.ready("q").await == 0).await);
    stop.cancel();
    task.await.unwrap().unwrap();
    rig.settled().await;
    assert_eq!(rig.ready("q").await, 0, "acknowledged once handled");
    assert_eq!(rig.ready("q.XQ").await, 0);
}

/// Backends of the rig's database that wait for a lock.
async fn waiting_for_a_lock(conn: &mut diesel_async::AsyncPgConnection) -> i64 {
    count(
        conn,
        "pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .await
}

/// The `creditor_id`s of the trading policies.
async fn policy_creditors(conn: &mut diesel_async::AsyncPgConnection) -> Vec<i64> {
    use diesel::QueryDsl as _;
    use diesel_async::RunQueryDsl as _;
    use swpt_trade::db::worker::schema::trading_policy;
    trading_policy::table
        .select(trading_policy::creditor_id)
        .order(trading_policy::creditor_id)
        .load(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn sigterm_finishes_in_flight_messages_and_exits_0() {
    use diesel_async::RunQueryDsl as _;
    const MESSAGES: i64 = 300;
    const PREFETCH: i64 = 40;
    let rig = Rig::new("#").await;
    for creditor in 1..=MESSAGES {
        rig.publish(creditor, updated_policy(creditor, 1)).await;
    }
    // Hold the handlers' transactions in flight: the test locks the table they write.
    let mut locker = rig.db.connect().await;
    diesel::sql_query("BEGIN")
        .execute(&mut locker)
        .await
        .unwrap();
    diesel::sql_query("LOCK TABLE trading_policy IN EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let vars = rig.vars();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_swpt-trade"))
        .arg("consume_messages")
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .env("APP_CONSUMER_BATCH_SIZE", "10")
        .env("PROTOCOL_BROKER_PREFETCH_COUNT", PREFETCH.to_string())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let conn = &mut rig.db.connect().await;
    // The consumer has taken its prefetch, and a batch of it waits for the lock.
    let expected_ready = (MESSAGES - PREFETCH) as u32;
    assert!(
        wait_for(20, async || rig.ready("q").await == expected_ready).await,
        "the consumer did not take {PREFETCH} messages"
    );
    assert!(
        wait_for(20, async || waiting_for_a_lock(conn).await > 0).await,
        "no handler transaction is in flight"
    );
    nix_kill(child.id().unwrap());
    // SIGTERM stops the taking of messages, while the work in flight goes on.
    rig.settled().await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with work in flight"
    );
    diesel::sql_query("COMMIT")
        .execute(&mut locker)
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits once the work in flight is done")
        .unwrap();
    assert_eq!(status.code(), Some(0));

    // Every message taken before the stop was handled once and acknowledged; the others are
    // still in the queue, never delivered.
    let handled = policy_creditors(conn).await;
    assert_eq!(handled.len() as i64, PREFETCH, "{handled:?}");
    assert_eq!(rig.ready("q").await, expected_ready);
    let mut all = handled.clone();
    while let Some(message) = rig
        .ch
        .basic_get("q".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        assert!(!message.delivery.redelivered, "a taken message came back");
        let body: serde_json::Value = serde_json::from_slice(&message.delivery.data).unwrap();
        all.push(body["creditor_id"].as_i64().unwrap());
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=MESSAGES).collect::<Vec<_>>(),
        "each message exactly once"
    );
    assert_eq!(rig.ready("q.XQ").await, 0);
}

/// Sends SIGTERM to a process.
fn nix_kill(pid: u32) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test]
async fn the_consumer_reconnects_when_the_broker_drops_its_connection() {
    let rig = Rig::new("#").await;
    let conn = &mut rig.db.connect().await;
    let (stop, task) = rig.start(100);
    rig.publish(1, updated_policy(1, 1)).await;
    assert!(wait_for(20, async || count(conn, "trading_policy").await == 1).await);
    assert!(wait_for(10, async || close_consumer_connections(&rig).await > 0).await);
    rig.publish(2, updated_policy(2, 1)).await;
    assert!(
        wait_for(30, async || count(conn, "trading_policy").await == 2).await,
        "consumed after reconnecting"
    );
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// Closes the connections of the virtual host that consume (not the test's own publisher),
/// as a broker restart would; returns how many were closed.
async fn close_consumer_connections(rig: &Rig) -> usize {
    let Some(list) =
        crate::util::rabbitmq_get(&format!("/vhosts/{}/connections", rig.broker.vhost)).await
    else {
        return 0;
    };
    let mut closed = 0;
    for c in list.as_array().into_iter().flatten() {
        let name = c["name"].as_str().unwrap_or_default();
        let client = c["client_properties"]["connection_name"]
            .as_str()
            .unwrap_or_default();
        if client.starts_with("swpt-trade") {
            crate::util::rabbitmq_delete(&format!("/connections/{}", crate::util::urlencode(name)))
                .await;
            closed += 1;
        }
    }
    closed
}

#[tokio::test]
async fn draining_mode_leaves_the_queue_without_consumers_for_a_while() {
    let rig = Rig::new("#").await;
    let (stop, task) = rig.start_with(100, true);
    assert!(wait_for(5, async || rig.consumers("q").await == 1).await);
    // After two idle seconds the consumer unsubscribes for `t mod 15` seconds (`t` the Unix
    // time), which can be very short; the next window (`t mod 30` seconds) comes 3 s later.
    assert!(
        wait_for(40, async || rig.consumers("q").await == 0).await,
        "consuming paused"
    );
    rig.publish(4, updated_policy(4, 1)).await;
    let conn = &mut rig.db.connect().await;
    assert!(
        wait_for(40, async || count(conn, "trading_policy").await == 1).await,
        "consuming resumed"
    );
    assert_eq!(rig.consumers("q").await, 1);
    stop.cancel();
    task.await.unwrap().unwrap();
}

async fn latest_policy_update_id(conn: &mut diesel_async::AsyncPgConnection) -> i64 {
    use diesel_async::RunQueryDsl as _;
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let rows: Vec<Id> =
        diesel::sql_query("SELECT latest_policy_update_id AS id FROM trading_policy")
            .load(conn)
            .await
            .unwrap();
    rows.into_iter().map(|r| r.id).max().unwrap_or(0)
}
