//! Consumer throughput: publishes N `UpdatedPolicy` + `UpdatedLedger` messages for distinct
//! creditors to `to_trade`, then consumes them with the default settings and one consumer,
//! and prints the processed messages per second until the queue is empty.
//!
//! Run: `cargo bench --bench consume_load` (needs the local PostgreSQL and RabbitMQ with its
//! management plugin, as `scripts/services.sh` sets up). `LOAD_MESSAGES` (default 20000) sets
//! N; `TEST_DATABASE_URL` and `TEST_RABBITMQ_API` work as for the tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use swpt_trade::cli::consume;
use swpt_trade::config::Config;
use swpt_trade::db::{Database, migrate};
use swpt_trade::sharding::bin_routing_key;
use tokio_util::sync::CancellationToken;

const DB_NAME: &str = "swpt_bench_consume";
const VHOST: &str = "swpt_bench_consume";

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into())
}

async fn api(method: reqwest::Method, path: &str, body: Option<serde_json::Value>) {
    let base =
        std::env::var("TEST_RABBITMQ_API").unwrap_or_else(|_| "http://127.0.0.1:15672/api".into());
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .basic_auth("guest", Some("guest"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.expect("RabbitMQ management API");
}

async fn setup() -> (String, String) {
    let mut admin = AsyncPgConnection::establish(&admin_url()).await.unwrap();
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    diesel::sql_query(format!("CREATE DATABASE {DB_NAME}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut db_url = url::Url::parse(&admin_url()).unwrap();
    db_url.set_path(DB_NAME);
    migrate::migrate(Database::Worker, db_url.as_str())
        .await
        .unwrap();
    api(reqwest::Method::DELETE, &format!("/vhosts/{VHOST}"), None).await;
    api(reqwest::Method::PUT, &format!("/vhosts/{VHOST}"), None).await;
    let perms = serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"});
    api(
        reqwest::Method::PUT,
        &format!("/permissions/{VHOST}/guest"),
        Some(perms),
    )
    .await;
    (
        db_url.into(),
        format!("amqp://guest:guest@127.0.0.1:5672/{VHOST}"),
    )
}

fn body(kind: &str, creditor_id: i64) -> Vec<u8> {
    let value = if kind == "UpdatedPolicy" {
        serde_json::json!({"type": kind, "creditor_id": creditor_id, "debtor_id": 666, "update_id": 1,
            "policy_name": "conservative", "min_principal": 0, "max_principal": 1000,
            "peg_exchange_rate": null, "peg_debtor_id": null, "ts": "2024-05-01T12:00:00+00:00"})
    } else {
        serde_json::json!({"type": kind, "creditor_id": creditor_id, "debtor_id": 666, "update_id": 1,
            "account_id": "acc", "creation_date": "2024-01-01", "principal": 100,
            "last_transfer_number": 1, "ts": "2024-05-01T12:00:00+00:00"})
    };
    serde_json::to_vec(&value).unwrap()
}

async fn publish_all(amqp_url: &str, n: i64) {
    let conn = swpt_trade::broker::connect(amqp_url).await.unwrap();
    swpt_trade::broker::topology::subscribe(&conn, "swpt_trade", "#")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut confirms = Vec::new();
    for i in 0..n {
        let creditor_id = i / 2 + 1;
        let kind = if i % 2 == 0 {
            "UpdatedPolicy"
        } else {
            "UpdatedLedger"
        };
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_type(kind.into())
            .with_delivery_mode(2);
        let confirm = ch
            .basic_publish(
                "to_trade".into(),
                bin_routing_key(creditor_id).as_str().into(),
                BasicPublishOptions::default(),
                &body(kind, creditor_id),
                props,
            )
            .await
            .unwrap();
        confirms.push(confirm);
        if confirms.len() == 1000 {
            futures::future::join_all(confirms.drain(..)).await;
        }
    }
    futures::future::join_all(confirms).await;
    let _ = conn.close(200, "done".into()).await;
}

async fn queue_length(amqp_url: &str) -> u32 {
    let conn = swpt_trade::broker::connect(amqp_url).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        durable: true,
        ..Default::default()
    };
    let n = ch
        .queue_declare("swpt_trade".into(), passive, FieldTable::default())
        .await
        .unwrap()
        .message_count();
    let _ = conn.close(200, "done".into()).await;
    n
}

async fn run() {
    let n: i64 = std::env::var("LOAD_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (db_url, amqp_url) = setup().await;
    println!("publishing {n} messages...");
    publish_all(&amqp_url, n).await;
    let vars = [
        ("WORKER_POSTGRES_URL", db_url.clone()),
        ("PROTOCOL_BROKER_URL", amqp_url.clone()),
    ];
    let lookup = move |k: &str| {
        vars.iter()
            .find(|(v, _)| *v == k)
            .map(|(_, value)| value.clone())
    };
    let config = Config::from_lookup(&lookup).unwrap();
    let settings = consume::settings(&swpt_trade::cli::ConsumeArgs::default(), &config).unwrap();
    println!(
        "consuming with processes={} threads={} prefetch_count={} batch_size={} (effective prefetch {})",
        settings.processes,
        settings.threads,
        settings.prefetch_count,
        settings.batch_size,
        settings.effective_prefetch()
    );
    let pool = consume::worker_pool(&config, &settings, "bench").unwrap();
    let stop = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(swpt_trade::consumer::run(
        settings,
        Arc::new(config),
        pool,
        stop.clone(),
    ));
    let mut conn = AsyncPgConnection::establish(&db_url).await.unwrap();
    loop {
        let done: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM trading_policy WHERE latest_policy_update_id = 1 AND latest_ledger_update_id = 1",
        )
        .get_result(&mut conn)
        .await
        .unwrap();
        if done.n == n / 2 && queue_length(&amqp_url).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    task.await.unwrap().unwrap();
    println!(
        "consume_load: {n} messages in {:.2} s = {:.0} msg/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    drop(conn);
    let mut admin = AsyncPgConnection::establish(&admin_url()).await.unwrap();
    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
    api(reqwest::Method::DELETE, &format!("/vhosts/{VHOST}"), None).await;
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` compiles and lists benches; this one needs the services
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}
