//! The flusher against the real servers: what arrives on the broker, what stays in the outbox.

use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use swpt_trade::broker::publisher::PublishError;
use swpt_trade::broker::topology;
use swpt_trade::db::{Database, PoolSettings, WorkerPool};
use swpt_trade::messages::{
    ConfigureAccount, FinalizeTransfer, NeededCollector, OutgoingMessage, ShardingRealm,
};
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
        let pool = WorkerPool::build(&self.db.url, PoolSettings::new(2), "test").unwrap();
        let realm: ShardingRealm = routing_key.parse().unwrap();
        let burst_counts = swpt_trade::config::BurstCounts::uniform(burst);
        let settings = FlushSettings {
            realm,
            delete_parent_shard_records: delete_parent,
            burst_counts,
        };
        Flusher::new(pool, &self.broker.url, settings)
    }

    /// Takes every message now in `queue`. Nothing is on its way: a flusher returns, and a
    /// flush command exits, only after the broker confirmed every message, which it does once
    /// the message is in all the queues it is routed to.
    pub async fn take(&self, queue: &str) -> Vec<lapin::message::Delivery> {
        let mut deliveries = Vec::new();
        while let Some(message) = self
            .channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            deliveries.push(message.delivery);
        }
        deliveries
    }
}

/// A header value, as the reference's client (pika) encodes it: integers that fit in 32 bits
/// as `I`, larger ones as 64-bit (`l`, or `L` when negative, which the broker and lapin read as
/// the same signed 64-bit integer).
enum Header {
    I32(i32),
    I64(i64),
    Str(&'static str),
}

/// A message exactly as the reference publishes it.
struct Published {
    message_type: &'static str,
    exchange: &'static str,
    routing_key: &'static str,
    mandatory: bool,
    /// The body, byte for byte.
    body: &'static str,
    /// The headers besides `message-type`.
    headers: &'static [(&'static str, Header)],
}

use Header::{I32, I64, Str};

const SMP_HEADERS: [(&str, Header); 2] = [("creditor-id", I32(777)), ("debtor-id", I32(666))];
const COORDINATOR_HEADERS: [(&str, Header); 4] = [
    ("creditor-id", I32(777)),
    ("debtor-id", I32(666)),
    ("coordinator-id", I32(777)),
    ("coordinator-type", Str("agent")),
];

/// What the reference publishes for each message of `one_of_each()`, in the same order.
const ONE_OF_EACH_PUBLISHED: [Published; 16] = [
    Published {
        message_type: "ConfigureAccount",
        exchange: "creditors_out",
        routing_key: "00.00.00.00.00.00.02.9a",
        mandatory: false,
        body: r#"{"type":"ConfigureAccount","debtor_id":666,"creditor_id":777,"ts":"2024-05-01T12:00:00.000001+00:00","seqnum":3,"negligible_amount":1e+30,"config_data":"{\"k\":\"ü\"}","config_flags":1}"#,
        headers: &SMP_HEADERS,
    },
    Published {
        message_type: "PrepareTransfer",
        exchange: "creditors_out",
        routing_key: "00.00.00.00.00.00.02.9a",
        mandatory: false,
        body: r#"{"type":"PrepareTransfer","creditor_id":777,"debtor_id":666,"coordinator_type":"agent","coordinator_id":777,"coordinator_request_id":5,"min_locked_amount":0,"max_locked_amount":10,"recipient":"acc","final_interest_rate_ts":"9999-12-31T23:59:59+00:00","max_commit_delay":2147483647,"ts":"2024-05-01T12:00:00.123456+00:00"}"#,
        headers: &COORDINATOR_HEADERS,
    },
    Published {
        message_type: "FinalizeTransfer",
        exchange: "creditors_out",
        routing_key: "00.00.00.00.00.00.02.9a",
        mandatory: true,
        body: r#"{"type":"FinalizeTransfer","creditor_id":777,"debtor_id":666,"transfer_id":9,"coordinator_type":"agent","coordinator_id":777,"coordinator_request_id":5,"committed_amount":100,"transfer_note_format":"-cXchge","transfer_note":"note","ts":"2024-05-01T12:00:00.000003+00:00"}"#,
        headers: &COORDINATOR_HEADERS,
    },
    Published {
        message_type: "FetchDebtorInfo",
        exchange: "to_trade",
        routing_key: "0.1.0.0.0.0.1.1.1.1.0.1.0.1.0.0.1.1.0.0.0.1.0.1",
        mandatory: true,
        body: r#"{"type":"FetchDebtorInfo","iri":"https://example.com/iri","debtor_id":666,"is_locator_fetch":true,"is_discovery_fetch":false,"forced_iri":null,"recursion_level":2,"ts":"2024-05-01T12:00:00.000004+00:00"}"#,
        headers: &[],
    },
    Published {
        message_type: "StoreDocument",
        exchange: "to_trade",
        routing_key: "1.0.0.1.0.0.0.1.0.0.0.0.1.1.0.1.1.0.0.0.1.1.1.1",
        mandatory: true,
        body: r#"{"type":"StoreDocument","debtor_info_locator":"https://example.com/test","debtor_id":666,"peg_debtor_info_locator":"https://example.com/peg","peg_debtor_id":-5,"peg_exchange_rate":2.5,"will_not_change_until":"2024-05-01T12:00:00.000007+00:00","ts":"2024-05-01T12:00:00.000005+00:00"}"#,
        headers: &[],
    },
    Published {
        message_type: "DiscoverDebtor",
        exchange: "to_trade",
        routing_key: "1.0.0.0.1.1.1.1.1.0.1.1.1.1.0.0.1.1.0.0.0.1.0.0",
        mandatory: true,
        body: r#"{"type":"DiscoverDebtor","debtor_id":666,"iri":"https://example.com/iri","force_locator_refetch":true,"ts":"2024-05-01T12:00:00.000006+00:00"}"#,
        headers: &[],
    },
    Published {
        message_type: "ConfirmDebtor",
        exchange: "to_trade",
        routing_key: "1.0.0.0.1.1.1.1.1.0.1.1.1.1.0.0.1.1.0.0.0.1.0.0",
        mandatory: true,
        body: r#"{"type":"ConfirmDebtor","debtor_id":666,"debtor_info_locator":"https://example.com/test","ts":"2024-05-01T12:00:00.000007+00:00"}"#,
        headers: &[],
    },
    Published {
        message_type: "ActivateCollector",
        exchange: "to_trade",
        routing_key: "1.1.1.1.1.1.0.0.0.0.0.1.0.0.0.0.0.1.1.0.0.0.1.1",
        mandatory: true,
        body: r#"{"type":"ActivateCollector","debtor_id":666,"creditor_id":123,"account_id":"collector-acc","ts":"2024-05-01T12:00:00.000008+00:00"}"#,
        headers: &[],
    },
    Published {
        message_type: "CandidateOffer",
        exchange: "to_trade",
        routing_key: "1.1.1.1.1.1.0.0.0.0.0.1.0.0.0.0.0.1.1.0.0.0.1.1",
        mandatory: true,
        body: r#"{"type":"CandidateOffer","turn_id":32000,"debtor_id":666,"creditor_id":123,"amount":-1000,"account_creation_date":"2023-01-31","last_transfer_number":4,"ts":"2024-05-01T12:00:00.000009+00:00"}"#,
        headers: &[],
    },
    Published {
        message_type: "NeededCollector",
        exchange: "to_trade",
        routing_key: "1.1.0.0.0.0.1.1.1.1.1.1.1.1.1.0.1.0.1.0.1.1.1.1",
        mandatory: true,
        body: r#"{"type":"NeededCollector","debtor_id":-123,"ts":"2024-05-01T12:00:00.000010+00:00"}"#,
        headers: &[],
    },
    Published {
        message_type: "ReviseAccountLock",
        exchange: "to_trade",
        routing_key: "1.1.1.1.1.1.0.0.0.0.0.1.0.0.0.0.0.1.1.0.0.0.1.1",
        mandatory: true,
        body: r#"{"type":"ReviseAccountLock","creditor_id":123,"debtor_id":666,"turn_id":70000,"ts":"2024-05-01T12:00:00.000011+00:00"}"#,
        headers: &[],
    },
    Published {
        message_type: "TriggerTransfer",
        exchange: "to_trade",
        routing_key: "0.0.1.0.0.0.0.0.0.0.0.0.0.0.1.0.1.1.1.0.0.0.0.1",
        mandatory: true,
        body: r#"{"type":"TriggerTransfer","collector_id":4294967296,"turn_id":2,"debtor_id":666,"creditor_id":123,"is_dispatching":true,"ts":"2024-05-01T12:00:00.000012+00:00"}"#,
        headers: &[],
    },
    Published {
        message_type: "AccountIdRequest",
        exchange: "to_trade",
        routing_key: "1.1.1.1.1.1.0.0.0.0.0.1.0.0.0.0.0.1.1.0.0.0.1.1",
        mandatory: true,
        body: r#"{"type":"AccountIdRequest","collector_id":4294967296,"turn_id":2,"debtor_id":666,"creditor_id":123,"is_dispatching":false,"ts":"2024-05-01T12:00:00.000013+00:00"}"#,
        headers: &[],
    },
    Published {
        message_type: "AccountIdResponse",
        exchange: "to_trade",
        routing_key: "0.0.1.0.0.0.0.0.0.0.0.0.0.0.1.0.1.1.1.0.0.0.0.1",
        mandatory: true,
        body: r#"{"type":"AccountIdResponse","collector_id":4294967296,"turn_id":2,"debtor_id":666,"creditor_id":123,"is_dispatching":false,"account_id":"acc123","account_id_version":1,"ts":"2024-05-01T12:00:00.000014+00:00"}"#,
        headers: &[],
    },
    Published {
        message_type: "StartSending",
        exchange: "to_trade",
        routing_key: "0.0.1.0.0.0.0.0.0.0.0.0.0.0.1.0.1.1.1.0.0.0.0.1",
        mandatory: true,
        body: r#"{"type":"StartSending","collector_id":4294967296,"turn_id":2,"debtor_id":666,"ts":"2024-05-01T12:00:00.000015+00:00"}"#,
        headers: &[],
    },
    Published {
        message_type: "StartDispatching",
        exchange: "to_trade",
        routing_key: "0.0.1.0.0.0.0.0.0.0.0.0.0.0.1.0.1.1.1.0.0.0.0.1",
        mandatory: true,
        body: r#"{"type":"StartDispatching","collector_id":4294967296,"turn_id":2,"debtor_id":666,"ts":"2024-05-01T12:00:00.000016+00:00"}"#,
        headers: &[],
    },
];

/// The AMQP properties the reference gives `expected`: persistent, `app_id`, `content_type`,
/// `type` and the headers, nothing else.
fn reference_properties(expected: &Published) -> BasicProperties {
    let mut headers = FieldTable::default();
    let message_type = AMQPValue::LongString(expected.message_type.into());
    headers.insert("message-type".into(), message_type);
    for (name, value) in expected.headers {
        let value = match value {
            I32(n) => AMQPValue::LongInt(*n),
            I64(n) => AMQPValue::LongLongInt(*n),
            Str(s) => AMQPValue::LongString((*s).into()),
        };
        headers.insert((*name).into(), value);
    }
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_app_id("swpt_trade".into())
        .with_content_type("application/json".into())
        .with_type(expected.message_type.into())
        .with_headers(headers)
}

/// Finds `expected` among `arrived` by its body, and asserts that it arrived exactly once and
/// exactly as the reference publishes it; `message` is what was emitted.
fn assert_arrived_as(
    arrived: &[lapin::message::Delivery],
    message: &OutgoingMessage,
    expected: &Published,
) {
    let ty = expected.message_type;
    assert_eq!(message.message_type(), ty, "the table's order");
    let copies: Vec<_> = arrived
        .iter()
        .filter(|d| d.data == expected.body.as_bytes())
        .collect();
    let of_type: Vec<_> = arrived
        .iter()
        .filter(|d| d.properties.kind().as_ref().map(|k| k.as_str()) == Some(ty))
        .map(|d| String::from_utf8_lossy(&d.data).into_owned())
        .collect();
    assert_eq!(
        copies.len(),
        1,
        "{ty}: expected {}, got {of_type:?}",
        expected.body
    );
    let delivery = copies[0];
    assert_eq!(delivery.exchange.as_str(), expected.exchange, "{ty}");
    assert_eq!(delivery.routing_key.as_str(), expected.routing_key, "{ty}");
    assert_eq!(delivery.properties, reference_properties(expected), "{ty}");
    assert_eq!(message.envelope().mandatory, expected.mandatory, "{ty}");
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
    for (message, expected) in messages.iter().zip(&ONE_OF_EACH_PUBLISHED) {
        let arrived = if expected.exchange == "creditors_out" {
            &smp
        } else {
            &trade
        };
        assert_arrived_as(arrived, message, expected);
    }
    for kind in SignalKind::ALL {
        assert!(
            pending(&mut conn, kind).await.is_empty(),
            "{kind} rows left"
        );
    }
}

#[tokio::test]
async fn large_ids_and_real_amounts_are_sent_as_the_reference_sends_them() {
    let setup = Setup::new("#", true).await;
    let mut conn = setup.db.connect().await;
    let (creditor_id, debtor_id) = ((1 << 40) + 5, -(1 << 40));
    let messages: Vec<OutgoingMessage> = vec![
        ConfigureAccount {
            debtor_id,
            creditor_id,
            ts: crate::outbox::ts(0),
            seqnum: -1,
            negligible_amount: 0.0,
            config_data: String::new(),
            config_flags: 0,
        }
        .into(),
        // A `real` column that PostgreSQL prints as "0.1", which the reference reads as 0.1.
        ConfigureAccount {
            debtor_id,
            creditor_id,
            ts: crate::outbox::ts(0),
            seqnum: 0,
            negligible_amount: 0.1,
            config_data: String::new(),
            config_flags: 0,
        }
        .into(),
        FinalizeTransfer {
            creditor_id,
            debtor_id,
            transfer_id: 1,
            coordinator_id: -(1 << 35),
            coordinator_request_id: 1 << 62,
            committed_amount: 0,
            transfer_note_format: String::new(),
            transfer_note: String::new(),
            ts: crate::outbox::ts(0),
        }
        .into(),
    ];
    emit_all(&mut conn, &messages).await;
    let mut flusher = setup.flusher("#", false, 10_000);
    assert_eq!(flusher.flush(&SignalKind::ALL).await.unwrap(), 3);
    let smp = setup.take(SMP_QUEUE).await;
    assert_eq!(smp.len(), 3);
    let expected = [
        Published {
            message_type: "ConfigureAccount",
            exchange: "creditors_out",
            routing_key: "ff.ff.ff.00.00.00.00.00",
            mandatory: false,
            body: r#"{"type":"ConfigureAccount","debtor_id":-1099511627776,"creditor_id":1099511627781,"ts":"2024-05-01T12:00:00+00:00","seqnum":-1,"negligible_amount":0.0,"config_data":"","config_flags":0}"#,
            headers: &[
                ("creditor-id", I64(1_099_511_627_781)),
                ("debtor-id", I64(-1_099_511_627_776)),
            ],
        },
        Published {
            message_type: "ConfigureAccount",
            exchange: "creditors_out",
            routing_key: "ff.ff.ff.00.00.00.00.00",
            mandatory: false,
            body: r#"{"type":"ConfigureAccount","debtor_id":-1099511627776,"creditor_id":1099511627781,"ts":"2024-05-01T12:00:00+00:00","seqnum":0,"negligible_amount":0.1,"config_data":"","config_flags":0}"#,
            headers: &[
                ("creditor-id", I64(1_099_511_627_781)),
                ("debtor-id", I64(-1_099_511_627_776)),
            ],
        },
        Published {
            message_type: "FinalizeTransfer",
            exchange: "creditors_out",
            routing_key: "ff.ff.ff.00.00.00.00.00",
            mandatory: true,
            body: r#"{"type":"FinalizeTransfer","creditor_id":1099511627781,"debtor_id":-1099511627776,"transfer_id":1,"coordinator_type":"agent","coordinator_id":-34359738368,"coordinator_request_id":4611686018427387904,"committed_amount":0,"transfer_note_format":"","transfer_note":"","ts":"2024-05-01T12:00:00+00:00"}"#,
            headers: &[
                ("creditor-id", I64(1_099_511_627_781)),
                ("debtor-id", I64(-1_099_511_627_776)),
                ("coordinator-id", I64(-34_359_738_368)),
                ("coordinator-type", Str("agent")),
            ],
        },
    ];
    for (message, expected) in messages.iter().zip(&expected) {
        assert_arrived_as(&smp, message, expected);
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
