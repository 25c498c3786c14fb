//! The `worker` command end to end: a message consumed, its outgoing messages written to the
//! outbox in the same transaction, flushed to RabbitMQ, and SIGTERM ending it all with exit 0.

use std::time::Duration;

use futures::StreamExt as _;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};

use crate::consumer::{Rig, wait_for};
use crate::handlers::count;

/// Declares a queue bound to `exchange` with `#`, to see what the worker publishes there.
async fn observe(rig: &Rig, queue: &str, exchange: &str) -> lapin::Consumer {
    rig.ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    rig.ch
        .queue_bind(
            queue.into(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    rig.ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
}

async fn next(consumer: &mut lapin::Consumer) -> lapin::message::Delivery {
    tokio::time::timeout(Duration::from_secs(20), consumer.next())
        .await
        .expect("a message")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn worker_consumes_and_flushes_until_sigterm() {
    let rig = Rig::new("#").await;
    let mut smp = observe(&rig, "observe-smp", "creditors_out").await;
    let mut internal = observe(&rig, "observe-internal", "to_trade").await;
    let vars = rig.vars();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_swpt-trade"))
        .arg("worker")
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .env("FLUSH_PERIOD", "0.1")
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // An AccountUpdate for an account this worker never asked for: it must be discarded with
    // a ConfigureAccount to the accounting authority.
    let mut update = crate::consumer::account_update(4242, 1);
    update["debtor_id"] = serde_json::json!(10);
    rig.publish(4242, update).await;
    let configure = next(&mut smp).await;
    assert_eq!(configure.routing_key.as_str(), "00.00.00.00.00.00.00.0a");
    assert_eq!(
        configure.properties.kind().as_ref().unwrap().as_str(),
        "ConfigureAccount"
    );
    let headers = configure.properties.headers().as_ref().unwrap();
    assert_eq!(
        headers.inner().get("creditor-id"),
        Some(&AMQPValue::LongInt(4242))
    );
    assert_eq!(
        headers.inner().get("debtor-id"),
        Some(&AMQPValue::LongInt(10))
    );
    let body: serde_json::Value = serde_json::from_slice(&configure.data).unwrap();
    assert_eq!(body["type"], "ConfigureAccount");
    assert_eq!(body["creditor_id"], 4242);
    assert_eq!(body["config_flags"], 1);
    assert_eq!(body["negligible_amount"], 1e30);

    // A policy update: consumed, nothing published. (The worker's own queue also receives the
    // internal messages it publishes; the observer sees them first.)
    rig.publish(7, crate::consumer::updated_policy(7, 1)).await;
    let conn = &mut rig.db.connect().await;
    assert!(wait_for(20, async || count(conn, "trading_policy").await == 1).await);
    assert!(
        wait_for(20, async || count(conn, "configure_account_signal").await
            == 0)
        .await,
        "flushed rows are deleted"
    );
    // The observer of `to_trade` sees the test's own two messages, and nothing from the worker.
    let mut seen = Vec::new();
    while let Ok(Some(Ok(d))) =
        tokio::time::timeout(Duration::from_millis(500), internal.next()).await
    {
        seen.push(d.properties.kind().as_ref().unwrap().to_string());
    }
    assert_eq!(seen, ["AccountUpdate", "UpdatedPolicy"]);

    let pid = child.id().unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(rig.ready("q").await, 0);
    assert_eq!(rig.ready("q.XQ").await, 0);
}
