//! Flushers that recover: after a failed pass, and after the broker broke their connection
//! in the middle of a large outbox (as a broker restart would).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel_async::RunQueryDsl as _;
use futures::StreamExt as _;
use lapin::options::{BasicConsumeOptions, QueueBindOptions};
use lapin::types::FieldTable;
use swpt_trade::config::Config;
use swpt_trade::db::{PoolSettings, WorkerPool};
use swpt_trade::outbox::SignalKind;
use swpt_trade::outbox::{FlushOptions, run_flushers};
use tokio_util::sync::CancellationToken;

use crate::flush::{Setup, TRADE_QUEUE, needed_collectors};
use crate::flush_runs::{all_sent, count_rows, env_of};
use crate::outbox::emit_all;
use crate::util::{BrokerProxy, wait_for};

/// Runs `processes` `NeededCollector` flushers in this process until `stop`, connected to the
/// broker through `proxy`.
fn spawn_flushers(
    setup: &Setup,
    proxy: &BrokerProxy,
    burst: &str,
    processes: u32,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let vars = env_of(setup);
    let burst = burst.to_owned();
    let url = proxy.url.clone();
    let lookup = move |k: &str| match k {
        "APP_FLUSH_NEEDED_COLLECTOR_BURST_COUNT" => Some(burst.clone()),
        "PROTOCOL_BROKER_URL" => Some(url.clone()),
        _ => vars
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone()),
    };
    let config = Config::from_lookup(&lookup).unwrap();
    let pool = WorkerPool::build(&setup.db.url, PoolSettings::new(4), "test").unwrap();
    let options = FlushOptions {
        processes,
        period: Duration::from_millis(100),
        quit_early: false,
    };
    tokio::spawn(async move {
        run_flushers(
            &[SignalKind::NeededCollector],
            &options,
            pool,
            &config,
            stop,
        )
        .await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_flusher_starts_again_after_a_pause() {
    let setup = Setup::new("0.#", false).await;
    let mut conn = setup.db.connect().await;
    let unroutable = needed_collectors(123..=123);
    emit_all(&mut conn, &unroutable).await;
    let proxy = BrokerProxy::start(&setup.broker).await;
    let stop = CancellationToken::new();
    let flushers = spawn_flushers(&setup, &proxy, "10", 1, stop.clone());
    // The flusher connects to the broker for its first pass, which fails.
    assert!(
        wait_for(10, async || proxy.accepted() > 0).await,
        "the flusher never connected"
    );
    // Not sent, and the flusher keeps running, for a while: something that must not happen,
    // so this waits a fixed time (several 100 ms flush periods).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count_rows(&mut conn, SignalKind::NeededCollector).await, 1);
    assert!(
        !flushers.is_finished(),
        "the failure must not end the flusher"
    );

    // Once a queue receives the message, a later pass sends it.
    setup
        .channel
        .queue_bind(
            TRADE_QUEUE.into(),
            "to_trade".into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert!(
        all_sent(&mut conn, SignalKind::NeededCollector, 10).await,
        "not sent again"
    );
    stop.cancel();
    flushers.await.unwrap().unwrap();
    let trade = setup.take(TRADE_QUEUE).await;
    assert_eq!(trade.len(), 1);
    assert_eq!(trade[0].data, unroutable[0].to_json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_broker_connection_loses_no_signal() {
    const ROWS: i64 = 5000;
    const BURST: usize = 500;
    let setup = Setup::new("#", false).await;
    let mut conn = setup.db.connect().await;
    emit_all(&mut conn, &needed_collectors(1..=ROWS)).await;

    // Keep all rows but one locked, so that the flushers connect to the broker and then wait.
    let mut locker = setup.db.connect().await;
    diesel::sql_query("BEGIN")
        .execute(&mut locker)
        .await
        .unwrap();
    diesel::sql_query("SELECT 1 FROM needed_collector_signal WHERE debtor_id > 1 FOR UPDATE")
        .execute(&mut locker)
        .await
        .unwrap();

    // Every copy that arrives, by debtor ID.
    let received = Arc::new(Mutex::new(HashMap::<i64, usize>::new()));
    let consumer_channel = setup.conn.create_channel().await.unwrap();
    let options = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    let mut consumer = consumer_channel
        .basic_consume(
            TRADE_QUEUE.into(),
            "c".into(),
            options,
            FieldTable::default(),
        )
        .await
        .unwrap();
    let sink = received.clone();
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let body: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
            assert_eq!(body["type"], "NeededCollector");
            let debtor_id = body["debtor_id"].as_i64().unwrap();
            *sink.lock().unwrap().entry(debtor_id).or_default() += 1;
        }
    });
    let copies = || received.lock().unwrap().values().sum::<usize>();
    let distinct = || received.lock().unwrap().len();

    let proxy = BrokerProxy::start(&setup.broker).await;
    let stop = CancellationToken::new();
    let flushers = spawn_flushers(&setup, &proxy, &BURST.to_string(), 2, stop.clone());
    // The one unlocked row arrives: the flushers are connected.
    assert!(
        wait_for(30, async || copies() >= 1).await,
        "nothing published"
    );
    diesel::sql_query("COMMIT")
        .execute(&mut locker)
        .await
        .unwrap();

    // Three rounds: whenever messages of a batch are arriving (the first time at once, later
    // only after a batch has been committed since the previous round), break the flushers'
    // connections.
    let (mut closed, mut rounds) = (0, 0);
    let mut left = count_rows(&mut conn, SignalKind::NeededCollector).await;
    let mut seen = copies();
    for round in 0..3 {
        if round > 0 {
            let before = left;
            assert!(
                wait_for(30, async || {
                    left = count_rows(&mut conn, SignalKind::NeededCollector).await;
                    left < before
                })
                .await,
                "no progress: {left} rows left, {} received",
                distinct()
            );
            seen = copies();
        }
        let arriving = wait_for(30, async || {
            copies() > seen || count_rows(&mut conn, SignalKind::NeededCollector).await == 0
        });
        if left == 0 || !arriving.await || copies() == seen {
            break;
        }
        closed += proxy.break_connections();
        rounds += 1;
        seen = copies();
    }
    assert!(closed > 0, "no connection was broken while flushing");
    assert!(
        all_sent(&mut conn, SignalKind::NeededCollector, 60).await,
        "not everything was sent"
    );
    // Every batch was confirmed before its rows were deleted: all of them are on their way.
    assert!(
        wait_for(30, async || distinct() == ROWS as usize).await,
        "{} rows received",
        distinct()
    );
    stop.cancel();
    flushers.await.unwrap().unwrap();

    // Every row arrived. A row is sent again only when the batch it was in was not confirmed,
    // which takes a broken connection: each closed connection cost at most one batch, and each
    // round of breaks a row at most one copy (3 rounds of 2 connections: at most 3000 extra
    // copies, fewer than the rows).
    let received = received.lock().unwrap();
    let mut ids: Vec<i64> = received.keys().copied().collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (1..=ROWS).collect::<Vec<_>>(),
        "every row, nothing else"
    );
    let copies: usize = received.values().sum();
    let extra = copies - ROWS as usize;
    assert!(
        extra <= closed * BURST,
        "{extra} extra copies after {closed} broken connections of {BURST}-row batches"
    );
    let most = received.values().max().copied().unwrap();
    assert!(
        most <= 1 + rounds,
        "a row arrived {most} times after {rounds} rounds of breaks"
    );
}
