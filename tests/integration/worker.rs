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
    // The solver database, where `ActivateCollector` activates collector accounts.
    let solver = crate::util::TestDb::migrated(swpt_trade::db::Database::Solver).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_swpt-trade"))
        .arg("worker")
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .env("SOLVER_POSTGRES_URL", &solver.url)
        .env("FLUSH_PERIOD", "0.1")
        // No debtor-info fetchers: the test's IRIs are not to be fetched.
        .env("HTTP_FETCH_PROCESSES", "0")
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
    // The observer of `to_trade` sees the test's own two messages, and nothing from the worker:
    // something that must not happen, so it listens until 500 ms pass without a message.
    let mut seen = Vec::new();
    while let Ok(Some(Ok(d))) =
        tokio::time::timeout(Duration::from_millis(500), internal.next()).await
    {
        seen.push(d.properties.kind().as_ref().unwrap().to_string());
    }
    assert_eq!(seen, ["AccountUpdate", "UpdatedPolicy"]);

    // An AccountUpdate for a needed collector account: the collector is activated and its
    // debtor discovered, through `to_trade`, routed by creditor and debtor.
    {
        use diesel_async::RunQueryDsl as _;
        diesel::sql_query("INSERT INTO needed_worker_account VALUES (1099511627777, 666, now())")
            .execute(&mut rig.db.connect().await)
            .await
            .unwrap();
    }
    rig.publish(
        1_099_511_627_777,
        crate::consumer::account_update(1_099_511_627_777, 1),
    )
    .await;
    let mut published = Vec::new();
    while published.len() < 3 {
        let d = next(&mut internal).await;
        let body: serde_json::Value = serde_json::from_slice(&d.data).unwrap();
        published.push((
            d.properties.kind().as_ref().unwrap().to_string(),
            d.routing_key.to_string(),
            body,
        ));
    }
    published.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(published[0].0, "AccountUpdate");
    let (kind, key, body) = &published[1];
    assert_eq!(kind, "ActivateCollector");
    assert_eq!(
        key,
        &swpt_trade::sharding::bin_routing_key(1_099_511_627_777)
    );
    assert_eq!(body["account_id"], "collector-acc");
    let (kind, key, body) = &published[2];
    assert_eq!(kind, "DiscoverDebtor");
    assert_eq!(key, &swpt_trade::sharding::bin_routing_key(666));
    assert_eq!(body["iri"], "https://example.com/666");
    assert_eq!(body["force_locator_refetch"], true);
    // The worker's own queue got them too: `ActivateCollector` is handled (no collector
    // account of the solver database to activate), `DiscoverDebtor` records the debtor's
    // claim and asks (itself, through `to_trade`) to fetch the IRI, which it schedules.
    assert!(
        wait_for(20, async || count(conn, "debtor_info_fetch").await == 1
            && count(conn, "debtor_locator_claim").await == 1)
        .await
    );
    assert!(wait_for(20, async || rig.ready("q").await == 0).await);
    assert_eq!(rig.ready("q.XQ").await, 0);

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
}
