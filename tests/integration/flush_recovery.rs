//! Flushers that recover: after a failed pass, and after the broker broke their connection
//! in the middle of a large outbox (as a broker restart would).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl as _;
use futures::StreamExt as _;
use lapin::options::{BasicConsumeOptions, QueueBindOptions};
use lapin::types::FieldTable;
use swpt_trade::cli::flush::{FlushOptions, run_flushers};
use swpt_trade::config::Config;
use swpt_trade::db::build_pool;
use swpt_trade::outbox::SignalKind;
use tokio_util::sync::CancellationToken;

use crate::flush::{Setup, TEST_CONNECTION, TRADE_QUEUE, needed_collectors};
use crate::flush_runs::{count_rows, env_of};
use crate::outbox::emit_all;

/// The management API's names of this virtual host's connections other than the tests' own.
async fn flusher_connections(vhost: &str) -> Vec<String> {
    let api =
        std::env::var("TEST_RABBITMQ_API").unwrap_or_else(|_| "http://127.0.0.1:15672/api".into());
    let url = format!("{api}/vhosts/{}/connections", percent_encode(vhost));
    let response = reqwest::Client::new()
        .get(url)
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
    let list: Vec<serde_json::Value> = response.json().await.unwrap();
    list.iter()
        .filter(|c| c["client_properties"]["connection_name"] != TEST_CONNECTION)
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect()
}

/// Force-closes a connection, as a broker restart would.
async fn close_connection(name: &str) {
    let api =
        std::env::var("TEST_RABBITMQ_API").unwrap_or_else(|_| "http://127.0.0.1:15672/api".into());
    let url = format!("{api}/connections/{}", percent_encode(name));
    let _ = reqwest::Client::new()
        .delete(url)
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `processes` `NeededCollector` flushers in this process until `stop`.
fn spawn_flushers(
    setup: &Setup,
    burst: &str,
    processes: u32,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let vars = env_of(setup);
    let burst = burst.to_owned();
    let lookup = move |k: &str| match k {
        "APP_FLUSH_NEEDED_COLLECTOR_BURST_COUNT" => Some(burst.clone()),
        _ => vars
            .iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone()),
    };
    let config = Config::from_lookup(&lookup).unwrap();
    let pool = build_pool(&setup.db.url, 4, "test").unwrap();
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
    let stop = CancellationToken::new();
    let flushers = spawn_flushers(&setup, "10", 1, stop.clone());
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
    let started = Instant::now();
    while count_rows(&mut conn, SignalKind::NeededCollector).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not sent again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    flushers.await.unwrap().unwrap();
    let trade = setup.take(TRADE_QUEUE).await;
    assert_eq!(trade.len(), 1);
    assert_eq!(trade[0].data, unroutable[0].to_json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_broker_connection_loses_no_signal() {
    const ROWS: i64 = 5000;
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

    let received = Arc::new(Mutex::new((0usize, HashSet::new())));
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
            let mut r = sink.lock().unwrap();
            r.0 += 1;
            r.1.insert(delivery.data);
        }
    });

    let stop = CancellationToken::new();
    let flushers = spawn_flushers(&setup, "500", 2, stop.clone());

    let started = Instant::now();
    let mut connections = Vec::new();
    while connections.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no flusher connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        connections = flusher_connections(&setup.broker.vhost).await;
    }
    diesel::sql_query("COMMIT")
        .execute(&mut locker)
        .await
        .unwrap();
    // Messages of the first big batch arriving: the flusher is publishing it right now.
    while received.lock().unwrap().0 < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing published"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    // Break every flusher connection the broker lists, again and again, until all is sent.
    let mut closed = 0;
    let mut closed_while_pending = false;
    loop {
        let left = count_rows(&mut conn, SignalKind::NeededCollector).await;
        let distinct = received.lock().unwrap().1.len();
        if left == 0 && distinct == ROWS as usize {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{left} rows left, {distinct} received"
        );
        for name in &connections {
            close_connection(name).await;
            closed += 1;
            closed_while_pending |= left > 0;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        connections = flusher_connections(&setup.broker.vhost).await;
    }
    stop.cancel();
    flushers.await.unwrap().unwrap();
    assert!(
        closed > 0 && closed_while_pending,
        "no connection was broken while flushing"
    );
    let (total, distinct) = {
        let r = received.lock().unwrap();
        (r.0, r.1.len())
    };
    assert_eq!(distinct, ROWS as usize);
    assert!(total >= distinct);
}
