//! The flusher against the real servers: what arrives on the broker, what stays in the outbox.

use std::collections::BTreeMap;
use std::time::Duration;

use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use swpt_trade::broker::publisher::{PublishError, properties};
use swpt_trade::broker::topology;
use swpt_trade::db::{Database, build_pool};
use swpt_trade::messages::{NeededCollector, OutgoingMessage, ShardingRealm};
use swpt_trade::outbox::{FlushError, FlushSettings, Flusher, SignalKind};

use crate::outbox::{emit_all, one_of_each, pending};
use crate::util::{TestBroker, TestDb};

/// The queue bound to `to_trade` by `subscribe`.
pub const TRADE_QUEUE: &str = "q";
/// A queue bound to `creditors_out` with `#`, standing in for the accounting authorities.
pub const SMP_QUEUE: &str = "smp";
/// The `connection_name` of the tests' own broker connections.
pub const TEST_CONNECTION: &str = "test-consumer";

/// A worker database and a virtual host with the worker's topology.
pub struct Setup {
    pub db: TestDb,
    pub broker: TestBroker,
    pub conn: Connection,
    pub channel: Channel,
}

impl Setup {
    /// `q` is bound to `to_trade` with `trade_key`; with `smp_queue`, `smp` is bound to
    /// `creditors_out` with `#`.
    pub async fn new(trade_key: &str, smp_queue: bool) -> Self {
        let db = TestDb::migrated(Database::Worker).await;
        let broker = TestBroker::new().await;
        let props = ConnectionProperties::default().with_connection_name(TEST_CONNECTION.into());
        let conn = Connection::connect(&broker.url, props).await.unwrap();
        topology::subscribe(&conn, TRADE_QUEUE, trade_key)
            .await
            .unwrap();
        let channel = conn.create_channel().await.unwrap();
        if smp_queue {
            let options = QueueDeclareOptions::default();
            channel
                .queue_declare(SMP_QUEUE.into(), options, FieldTable::default())
                .await
                .unwrap();
            channel
                .queue_bind(
                    SMP_QUEUE.into(),
                    "creditors_out".into(),
                    "#".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        }
        Self {
            db,
            broker,
            conn,
            channel,
        }
    }

    /// A flusher for the realm of `routing_key`, with `burst` rows per batch for every kind.
    pub fn flusher(&self, routing_key: &str, delete_parent: bool, burst: u32) -> Flusher {
        let pool = build_pool(&self.db.url, 2, "test").unwrap();
        let realm: ShardingRealm = routing_key.parse().unwrap();
        let burst_counts = SignalKind::ALL
            .iter()
            .map(|k| (k.class_name(), burst))
            .collect::<BTreeMap<_, _>>();
        let settings = FlushSettings {
            realm,
            delete_parent_shard_records: delete_parent,
            burst_counts,
        };
        Flusher::new(pool, &self.broker.url, settings)
    }

    /// Takes every message now in `queue` (waiting briefly for stragglers).
    pub async fn take(&self, queue: &str) -> Vec<lapin::message::Delivery> {
        let mut deliveries = Vec::new();
        let mut idle_rounds = 0;
        while idle_rounds < 3 {
            let got = self
                .channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap();
            match got {
                Some(message) => deliveries.push(message.delivery),
                None => {
                    idle_rounds += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        deliveries
    }
}

fn header<'a>(delivery: &'a lapin::message::Delivery, name: &str) -> Option<&'a AMQPValue> {
    let headers = delivery.properties.headers().as_ref()?;
    headers.inner().get(name)
}

/// Asserts that `delivery` is exactly what the reference would publish for `message`.
fn assert_published_as(delivery: &lapin::message::Delivery, message: &OutgoingMessage) {
    let envelope = message.envelope();
    let expected = properties(&envelope);
    assert_eq!(
        delivery.data,
        message.to_json(),
        "{}",
        message.message_type()
    );
    assert_eq!(delivery.exchange.as_str(), envelope.exchange);
    assert_eq!(delivery.routing_key.as_str(), envelope.routing_key);
    let props = &delivery.properties;
    assert_eq!(
        props.kind().as_ref().unwrap().as_str(),
        message.message_type()
    );
    assert_eq!(*props.delivery_mode(), Some(2));
    assert_eq!(props.app_id().as_ref().unwrap().as_str(), "swpt_trade");
    assert_eq!(
        props.content_type().as_ref().unwrap().as_str(),
        "application/json"
    );
    assert_eq!(props.headers(), expected.headers());
    let message_type = AMQPValue::LongString(message.message_type().into());
    assert_eq!(header(delivery, "message-type"), Some(&message_type));
}

#[tokio::test]
async fn a_pass_publishes_every_type_as_the_reference_and_deletes_the_rows() {
    let setup = Setup::new("#", true).await;
    let mut conn = setup.db.connect().await;
    let messages = one_of_each();
    emit_all(&mut conn, &messages).await;

    let mut flusher = setup.flusher("#", false, 10_000);
    assert_eq!(flusher.flush(&SignalKind::ALL).await.unwrap(), 16);

    let smp = setup.take(SMP_QUEUE).await;
    let trade = setup.take(TRADE_QUEUE).await;
    assert_eq!((smp.len(), trade.len()), (3, 13));
    for message in &messages {
        let arrived = if message.is_smp() { &smp } else { &trade };
        let delivery = arrived
            .iter()
            .find(|d| d.data == message.to_json())
            .unwrap_or_else(|| panic!("{} did not arrive", message.message_type()));
        assert_published_as(delivery, message);
    }
    let prepare = smp
        .iter()
        .find(|d| d.data.starts_with(b"{\"type\":\"PrepareTransfer\""));
    let prepare = prepare.unwrap();
    assert_eq!(
        header(prepare, "creditor-id"),
        Some(&AMQPValue::LongInt(777))
    );
    assert_eq!(header(prepare, "debtor-id"), Some(&AMQPValue::LongInt(666)));
    assert_eq!(
        header(prepare, "coordinator-id"),
        Some(&AMQPValue::LongInt(777))
    );
    let agent = AMQPValue::LongString("agent".into());
    assert_eq!(header(prepare, "coordinator-type"), Some(&agent));
    assert_eq!(prepare.routing_key.as_str(), "00.00.00.00.00.00.02.9a");

    let activate = trade
        .iter()
        .find(|d| d.data.starts_with(b"{\"type\":\"ActivateCollector\""));
    assert_eq!(
        activate.unwrap().routing_key.as_str(),
        "1.1.1.1.1.1.0.0.0.0.0.1.0.0.0.0.0.1.1.0.0.0.1.1",
        "the binary key of creditor 123"
    );
    for kind in SignalKind::ALL {
        assert!(
            pending(&mut conn, kind).await.is_empty(),
            "{kind} rows left"
        );
    }
}

/// `NeededCollector` messages with these debtor IDs.
pub fn needed_collectors(ids: std::ops::RangeInclusive<i64>) -> Vec<OutgoingMessage> {
    let ts = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    ids.map(|debtor_id| NeededCollector { debtor_id, ts }.into())
        .collect()
}

#[tokio::test]
async fn full_batches_are_followed_by_more_batches_until_the_table_is_empty() {
    let setup = Setup::new("#", false).await;
    let mut conn = setup.db.connect().await;
    emit_all(&mut conn, &needed_collectors(1..=10)).await;
    let mut flusher = setup.flusher("#", false, 3);
    let kinds = [SignalKind::NeededCollector];
    assert_eq!(flusher.flush(&kinds).await.unwrap(), 10);
    assert_eq!(setup.take(TRADE_QUEUE).await.len(), 10);
    assert!(
        pending(&mut conn, SignalKind::NeededCollector)
            .await
            .is_empty()
    );
    assert_eq!(flusher.flush(&kinds).await.unwrap(), 0);
}

#[tokio::test]
async fn an_unroutable_mandatory_message_fails_the_batch_and_its_rows_stay() {
    // No queue receives keys starting with 1; no queue is bound to `creditors_out` either.
    let setup = Setup::new("0.#", false).await;
    let mut conn = setup.db.connect().await;
    let unroutable = needed_collectors(123..=123);
    assert!(unroutable[0].routing_key().starts_with("1."));
    let messages = one_of_each();
    emit_all(&mut conn, &unroutable).await;
    emit_all(&mut conn, &messages[..1]).await;

    let mut flusher = setup.flusher("#", false, 10_000);
    let err = flusher
        .flush(&[SignalKind::NeededCollector])
        .await
        .unwrap_err();
    assert!(
        matches!(err, FlushError::Publish(PublishError::Returned { .. })),
        "{err}"
    );
    assert_eq!(
        pending(&mut conn, SignalKind::NeededCollector).await,
        unroutable
    );

    // ConfigureAccount is not mandatory: unroutable copies go to the alternate exchange.
    assert_eq!(
        flusher
            .flush(&[SignalKind::ConfigureAccount])
            .await
            .unwrap(),
        1
    );
    assert!(
        pending(&mut conn, SignalKind::ConfigureAccount)
            .await
            .is_empty()
    );
}

/// A creditor in the realm `0.#` and one outside it.
fn creditors_in_and_out(realm: &ShardingRealm) -> (i64, i64) {
    let inside = (1..).find(|&id| realm.contains_id(id)).unwrap();
    let outside = (1..).find(|&id| !realm.contains_id(id)).unwrap();
    (inside, outside)
}

/// One of each SMP request of `creditor_id`, plus an internal message to a foreign shard.
fn smp_requests(creditor_id: i64) -> Vec<OutgoingMessage> {
    let mut messages = one_of_each();
    messages.truncate(3);
    for m in &mut messages {
        match m {
            OutgoingMessage::ConfigureAccount(m) => m.creditor_id = creditor_id,
            OutgoingMessage::PrepareTransfer(m) => m.creditor_id = creditor_id,
            OutgoingMessage::FinalizeTransfer(m) => m.creditor_id = creditor_id,
            _ => unreachable!(),
        }
    }
    messages
}

#[tokio::test]
async fn the_shard_guard_skips_parent_records_and_refuses_foreign_ones() {
    let setup = Setup::new("#", true).await;
    let mut conn = setup.db.connect().await;
    let realm: ShardingRealm = "0.#".parse().unwrap();
    let (inside, outside) = creditors_in_and_out(&realm);
    let smp_kinds = &SignalKind::ALL[..3];

    // Not responsible: the batch fails and the rows stay.
    emit_all(&mut conn, &smp_requests(outside)).await;
    let mut strict = setup.flusher("0.#", false, 10_000);
    let err = strict.flush(smp_kinds).await.unwrap_err();
    assert!(matches!(err, FlushError::NotResponsible { creditor_id } if creditor_id == outside));
    assert_eq!(
        err.to_string(),
        "The server is not responsible for this creditor."
    );
    assert_eq!(
        pending(&mut conn, SignalKind::ConfigureAccount).await.len(),
        1
    );

    // With DELETE_PARENT_SHARD_RECORDS, the parent shard's rows are deleted unsent, while
    // this shard's rows and internal messages (never guarded) are published.
    let own = smp_requests(inside);
    emit_all(&mut conn, &own).await;
    let internal = needed_collectors(5..=5);
    emit_all(&mut conn, &internal).await;
    let mut lenient = setup.flusher("0.#", true, 10_000);
    assert_eq!(lenient.flush(&SignalKind::ALL).await.unwrap(), 7);
    let smp = setup.take(SMP_QUEUE).await;
    let mut bodies: Vec<_> = smp.iter().map(|d| d.data.clone()).collect();
    bodies.sort();
    let mut expected: Vec<_> = own.iter().map(OutgoingMessage::to_json).collect();
    expected.sort();
    assert_eq!(bodies, expected);
    let trade = setup.take(TRADE_QUEUE).await;
    assert_eq!(trade.len(), 1);
    assert_eq!(trade[0].data, internal[0].to_json());
    for kind in SignalKind::ALL {
        assert!(
            pending(&mut conn, kind).await.is_empty(),
            "{kind} rows left"
        );
    }
}
