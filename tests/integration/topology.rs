//! `subscribe`, `unsubscribe`, `delete_queue`, and `configure` with
//! `SETUP_RABBITMQ_BINDINGS=yes`, checked through the RabbitMQ management API.

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicGetOptions, BasicPublishOptions};
use serde_json::{Value, json};
use swpt_trade::broker::{self, topology};

use crate::cli::run_binary;
use crate::util::{TestBroker, TestDb};

async fn exchange(broker: &TestBroker, name: &str) -> Value {
    broker
        .get("exchanges", name)
        .await
        .unwrap_or_else(|| panic!("exchange {name} is missing"))
}

/// Asserts the exact objects of docs/messages.md#queues-and-bindings for queue `q` bound with
/// `key`.
async fn assert_topology(broker: &TestBroker, q: &str, key: &str) {
    for (name, kind, arguments) in [
        ("creditors_in", "headers", json!({})),
        ("ca.loopback_filter", "headers", json!({})),
        (
            "creditors_out",
            "topic",
            json!({"alternate-exchange": "ca.loopback_filter"}),
        ),
        ("to_trade", "topic", json!({})),
    ] {
        let e = exchange(broker, name).await;
        assert_eq!(e["type"], kind, "{name}");
        assert_eq!(e["durable"], true, "{name}");
        assert_eq!(e["auto_delete"], false, "{name}");
        assert_eq!(e["internal"], false, "{name}");
        assert_eq!(e["arguments"], arguments, "{name}");
    }
    let dlq = broker
        .get("queues", &format!("{q}.XQ"))
        .await
        .expect("dead-letter queue");
    assert_eq!(dlq["durable"], true);
    assert_eq!(dlq["arguments"], json!({}));
    let queue = broker.get("queues", q).await.expect("queue");
    assert_eq!(queue["durable"], true);
    assert_eq!(queue["exclusive"], false);
    assert_eq!(queue["auto_delete"], false);
    assert_eq!(
        queue["arguments"],
        json!({"x-dead-letter-exchange": "", "x-dead-letter-routing-key": format!("{q}.XQ")})
    );
    let bindings = broker.get("bindings", "").await.unwrap();
    let bindings = bindings.as_array().unwrap();
    let e2e: Vec<&Value> = bindings
        .iter()
        .filter(|b| b["source"] == "creditors_in")
        .collect();
    assert_eq!(e2e.len(), 1);
    assert_eq!(e2e[0]["destination"], "to_trade");
    assert_eq!(e2e[0]["destination_type"], "exchange");
    assert_eq!(e2e[0]["routing_key"], "");
    assert_eq!(
        e2e[0]["arguments"],
        json!({"x-match": "all", "ca-trade": true})
    );
    let to_queue: Vec<&Value> = bindings
        .iter()
        .filter(|b| b["source"] == "to_trade" && b["destination"] == q)
        .collect();
    assert_eq!(to_queue.len(), 1);
    assert_eq!(to_queue[0]["routing_key"], key);
    assert_eq!(to_queue[0]["arguments"], json!({}));
}

#[tokio::test]
async fn subscribe_declares_the_reference_objects_idempotently() {
    let broker = TestBroker::new().await;
    let conn = broker::connect(&broker.url).await.unwrap();
    topology::subscribe(&conn, "swpt_trade", "0.1.#")
        .await
        .unwrap();
    assert_topology(&broker, "swpt_trade", "0.1.#").await;
    topology::subscribe(&conn, "swpt_trade", "0.1.#")
        .await
        .unwrap();
    assert_topology(&broker, "swpt_trade", "0.1.#").await;

    topology::unsubscribe(&conn, "swpt_trade", "0.1.#")
        .await
        .unwrap();
    let bindings = broker.get("bindings", "").await.unwrap();
    assert!(
        !bindings
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["source"] == "to_trade"),
        "the queue binding is removed"
    );
    assert!(
        broker.get("queues", "swpt_trade").await.is_some(),
        "the queue stays"
    );
    assert!(
        broker.get("exchanges", "to_trade").await.is_some(),
        "the exchanges stay"
    );
}

#[tokio::test]
async fn subscribe_refuses_objects_with_other_arguments() {
    let broker = TestBroker::new().await;
    let conn = broker::connect(&broker.url).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.exchange_declare(
        "to_trade".into(),
        lapin::ExchangeKind::Direct,
        lapin::options::ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        Default::default(),
    )
    .await
    .unwrap();
    assert!(topology::subscribe(&conn, "q", "#").await.is_err());
}

#[tokio::test]
async fn delete_queue_waits_until_the_queue_is_empty() {
    let broker = TestBroker::new().await;
    let conn = broker::connect(&broker.url).await.unwrap();
    topology::subscribe(&conn, "q", "#").await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.basic_publish(
        "".into(),
        "q".into(),
        BasicPublishOptions::default(),
        b"{}",
        BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let deleter = {
        let url = broker.url.clone();
        tokio::spawn(async move {
            let conn = broker::connect(&url).await.unwrap();
            topology::delete_queue(&conn, "q", Duration::from_millis(100)).await
        })
    };
    // Something that must not happen (deleting a queue that holds a message), for five of the
    // deleter's polling intervals.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!deleter.is_finished(), "a message is still in the queue");
    assert!(broker.get("queues", "q").await.is_some());
    let got = ch
        .basic_get("q".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap();
    assert!(got.is_some());
    tokio::time::timeout(Duration::from_secs(10), deleter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        broker.get("queues", "q").await.is_none(),
        "the queue is deleted"
    );
    assert!(
        broker.get("queues", "q.XQ").await.is_some(),
        "the dead-letter queue stays"
    );
    // A queue that does not exist counts as deleted.
    topology::delete_queue(&conn, "q", Duration::from_millis(100))
        .await
        .unwrap();
}

#[tokio::test]
async fn broker_commands_use_the_settings_and_options() {
    let broker = TestBroker::new().await;
    let vars = [
        ("PROTOCOL_BROKER_URL", broker.url.as_str()),
        ("PROTOCOL_BROKER_QUEUE", "w1"),
    ];
    let out = run_binary(&["subscribe", "-k", "1.#"], &vars);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_topology(&broker, "w1", "1.#").await;
    let out = run_binary(&["unsubscribe", "-k", "1.#"], &vars);
    assert!(out.status.success());
    let out = run_binary(&["delete_queue", "-q", "w1"], &vars);
    assert!(out.status.success());
    assert!(broker.get("queues", "w1").await.is_none());
    let out = run_binary(&["subscribe", "-k", "0.1"], &vars);
    assert_eq!(
        out.status.code(),
        Some(1),
        "an invalid binding key is refused"
    );
    let out = run_binary(
        &["subscribe"],
        &[("PROTOCOL_BROKER_URL", "amqp://guest:guest@127.0.0.1:1/x")],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unreachable broker fails the command"
    );
}

#[tokio::test]
async fn configure_sets_up_the_broker_when_asked() {
    let broker = TestBroker::new().await;
    let (solver, worker) = (TestDb::empty().await, TestDb::empty().await);
    let out = run_binary(
        &["configure"],
        &[
            ("SOLVER_POSTGRES_URL", solver.url.as_str()),
            ("WORKER_POSTGRES_URL", worker.url.as_str()),
            ("PROTOCOL_BROKER_URL", broker.url.as_str()),
            ("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", "1.0.#"),
            ("SETUP_RABBITMQ_BINDINGS", "yes"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_topology(&broker, "swpt_trade", "1.0.#").await;
}
