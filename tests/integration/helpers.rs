//! The per-test helpers themselves: each test's database and virtual host are its own.

use futures::StreamExt as _;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

use crate::util::{TestBroker, TestDb};

#[tokio::test]
async fn test_databases_are_separate_and_dropped() {
    let a = TestDb::empty().await;
    let b = TestDb::empty().await;
    assert_ne!(a.name, b.name);
    let name = a.name.clone();
    drop(a);
    let mut conn = b.connect().await;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let left: N = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(format!(
            "SELECT count(*) AS n FROM pg_database WHERE datname = '{name}'"
        )),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(left.n, 0);
}

#[tokio::test]
async fn test_brokers_are_separate_virtual_hosts() {
    let broker = TestBroker::new().await;
    let other = TestBroker::new().await;
    assert_ne!(broker.vhost, other.vhost);
    let conn = Connection::connect(&broker.url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare(
            "q".into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .basic_publish(
            "".into(),
            "q".into(),
            BasicPublishOptions::default(),
            b"hello",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            "q".into(),
            "t".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let delivery = consumer.next().await.unwrap().unwrap();
    assert_eq!(delivery.data, b"hello");
    let other_conn = Connection::connect(&other.url, ConnectionProperties::default())
        .await
        .unwrap();
    let other_channel = other_conn.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    assert!(
        other_channel
            .queue_declare("q".into(), passive, FieldTable::default())
            .await
            .is_err()
    );
}
