//! Debtor info on a real worker database: the `FetchDebtorInfo`, `StoreDocument`,
//! `DiscoverDebtor` and `ConfirmDebtor` handlers (the reference's cases), and the fetcher
//! against a local HTTPS server whose self-signed certificate is made at test start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Double, Nullable, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use swpt_trade::consumer::Handlers;
use swpt_trade::db::{Database, PoolSettings, WorkerPool};
use swpt_trade::debtors::fetch::{FetchSettings, Fetcher};
use swpt_trade::handlers;
use swpt_trade::messages::{
    ConfirmDebtor, DiscoverDebtor, FetchDebtorInfo, IncomingMessage, StoreDocument,
};
use swpt_trade::sharding::ShardingRealm;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::rustls;

use crate::cli::run_binary;
use crate::handlers::count;
use crate::util::{TestDb, test_config};

/// Timestamps as PostgreSQL stores them (microseconds).
fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
}

async fn handle_at(
    conn: &mut AsyncPgConnection,
    context: &Handlers,
    m: IncomingMessage,
    now: DateTime<Utc>,
) {
    let handler = handlers::handler(&m);
    conn.transaction(async |conn| handler.run(conn, context, now).await)
        .await
        .expect("handled");
}

fn context(db: &TestDb, extra: &[(&str, &str)]) -> Handlers {
    let mut vars = vec![("WORKER_POSTGRES_URL", db.url.as_str())];
    vars.extend_from_slice(extra);
    Handlers::new(Arc::new(test_config(&vars)), "test").unwrap()
}

#[derive(QueryableByName, Debug, Clone, PartialEq)]
struct FetchRow {
    #[diesel(sql_type = Text)]
    iri: String,
    #[diesel(sql_type = BigInt)]
    debtor_id: i64,
    #[diesel(sql_type = Bool)]
    is_locator_fetch: bool,
    #[diesel(sql_type = Bool)]
    is_discovery_fetch: bool,
    #[diesel(sql_type = Nullable<Text>)]
    forced_iri: Option<String>,
    #[diesel(sql_type = SmallInt)]
    recursion_level: i16,
    #[diesel(sql_type = SmallInt)]
    attempts_count: i16,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    latest_attempt_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    latest_attempt_errorcode: Option<i16>,
    #[diesel(sql_type = Timestamptz)]
    next_attempt_at: DateTime<Utc>,
}

async fn fetches(conn: &mut AsyncPgConnection) -> Vec<FetchRow> {
    diesel::sql_query(
        "SELECT iri, debtor_id, is_locator_fetch, is_discovery_fetch, forced_iri, \
         recursion_level, attempts_count, latest_attempt_at, latest_attempt_errorcode, \
         next_attempt_at FROM debtor_info_fetch ORDER BY iri, debtor_id",
    )
    .load(conn)
    .await
    .unwrap()
}

/// A `FetchDebtorInfo` signal (an outgoing fetch request).
#[derive(QueryableByName, Debug, Clone, PartialEq)]
struct FetchSignal {
    #[diesel(sql_type = Text)]
    iri: String,
    #[diesel(sql_type = BigInt)]
    debtor_id: i64,
    #[diesel(sql_type = Bool)]
    is_locator_fetch: bool,
    #[diesel(sql_type = Bool)]
    is_discovery_fetch: bool,
    #[diesel(sql_type = Nullable<Text>)]
    forced_iri: Option<String>,
    #[diesel(sql_type = SmallInt)]
    recursion_level: i16,
}

fn fetch_signal(
    iri: &str,
    debtor_id: i64,
    locator: bool,
    forced_iri: Option<&str>,
    level: i16,
) -> FetchSignal {
    FetchSignal {
        iri: iri.into(),
        debtor_id,
        is_locator_fetch: locator,
        is_discovery_fetch: !locator,
        forced_iri: forced_iri.map(Into::into),
        recursion_level: level,
    }
}

async fn fetch_signals(conn: &mut AsyncPgConnection) -> Vec<FetchSignal> {
    diesel::sql_query(
        "SELECT iri, debtor_id, is_locator_fetch, is_discovery_fetch, forced_iri, \
         recursion_level FROM fetch_debtor_info_signal ORDER BY signal_id",
    )
    .load(conn)
    .await
    .unwrap()
}

#[derive(QueryableByName, Debug, Clone, PartialEq)]
struct DocumentRow {
    #[diesel(sql_type = Text)]
    debtor_info_locator: String,
    #[diesel(sql_type = BigInt)]
    debtor_id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    peg_debtor_info_locator: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    peg_debtor_id: Option<i64>,
    #[diesel(sql_type = Nullable<Double>)]
    peg_exchange_rate: Option<f64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    will_not_change_until: Option<DateTime<Utc>>,
}

async fn documents(conn: &mut AsyncPgConnection) -> Vec<(DocumentRow, DateTime<Utc>)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(embed)]
        doc: DocumentRow,
        #[diesel(sql_type = Timestamptz)]
        fetched_at: DateTime<Utc>,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT debtor_info_locator, debtor_id, peg_debtor_info_locator, peg_debtor_id, \
         peg_exchange_rate, will_not_change_until, fetched_at FROM debtor_info_document \
         ORDER BY debtor_info_locator",
    )
    .load(conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| (r.doc, r.fetched_at)).collect()
}

/// The `StoreDocument` signals, as the documents they store.
async fn store_signals(conn: &mut AsyncPgConnection) -> Vec<DocumentRow> {
    diesel::sql_query(
        "SELECT debtor_info_locator, debtor_id, peg_debtor_info_locator, peg_debtor_id, \
         peg_exchange_rate, will_not_change_until FROM store_document_signal \
         ORDER BY signal_id",
    )
    .load(conn)
    .await
    .unwrap()
}

#[derive(QueryableByName, Debug, Clone, PartialEq)]
struct ClaimRow {
    #[diesel(sql_type = BigInt)]
    debtor_id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    debtor_info_locator: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    latest_locator_fetch_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    latest_discovery_fetch_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    forced_locator_refetch_at: Option<DateTime<Utc>>,
}

async fn claims(conn: &mut AsyncPgConnection) -> Vec<ClaimRow> {
    diesel::sql_query(
        "SELECT debtor_id, debtor_info_locator, latest_locator_fetch_at, \
         latest_discovery_fetch_at, forced_locator_refetch_at FROM debtor_locator_claim \
         ORDER BY debtor_id",
    )
    .load(conn)
    .await
    .unwrap()
}

#[derive(QueryableByName, Debug, Clone, PartialEq)]
struct ConfirmRow {
    #[diesel(sql_type = BigInt)]
    debtor_id: i64,
    #[diesel(sql_type = Text)]
    debtor_info_locator: String,
}

async fn confirm_signals(conn: &mut AsyncPgConnection) -> Vec<ConfirmRow> {
    diesel::sql_query(
        "SELECT debtor_id, debtor_info_locator FROM confirm_debtor_signal ORDER BY signal_id",
    )
    .load(conn)
    .await
    .unwrap()
}

fn fetch_message(
    iri: &str,
    debtor_id: i64,
    locator: bool,
    discovery: bool,
    forced_iri: Option<&str>,
    level: i16,
) -> IncomingMessage {
    IncomingMessage::FetchDebtorInfo(FetchDebtorInfo {
        iri: iri.into(),
        debtor_id,
        is_locator_fetch: locator,
        is_discovery_fetch: discovery,
        forced_iri: forced_iri.map(Into::into),
        recursion_level: level,
        ts: Utc::now(),
    })
}

#[tokio::test]
async fn fetch_requests_for_one_iri_and_debtor_merge() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    let context = context(&db, &[]);
    let iri = "https://example.com/666";
    let now = micros(Utc::now());
    handle_at(
        conn,
        &context,
        fetch_message(iri, 666, true, false, None, 4),
        now,
    )
    .await;
    let first = fetches(conn).await;
    assert_eq!(first.len(), 1);
    let row = &first[0];
    assert_eq!((row.iri.as_str(), row.debtor_id), (iri, 666));
    assert!(row.is_locator_fetch && !row.is_discovery_fetch);
    assert_eq!((row.recursion_level, row.attempts_count), (4, 0));
    assert_eq!(row.forced_iri, None);
    assert_eq!(row.next_attempt_at, now);
    assert_eq!(row.latest_attempt_at, None);

    // The same IRI and debtor: one row, both kinds, the lower level; the schedule stays.
    let later = now + TimeDelta::seconds(60);
    handle_at(
        conn,
        &context,
        fetch_message(iri, 666, false, true, None, 2),
        later,
    )
    .await;
    let rows = fetches(conn).await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].is_locator_fetch && rows[0].is_discovery_fetch);
    assert_eq!((rows[0].recursion_level, rows[0].attempts_count), (2, 0));
    assert_eq!(rows[0].next_attempt_at, now);

    // A forced IRI replaces the old one; an empty one does not.
    let forced = Some("https://example.com/forced");
    handle_at(
        conn,
        &context,
        fetch_message(iri, 666, false, false, forced, 3),
        later,
    )
    .await;
    handle_at(
        conn,
        &context,
        fetch_message(iri, 666, false, false, Some(""), 3),
        later,
    )
    .await;
    handle_at(
        conn,
        &context,
        fetch_message(iri, 666, false, false, None, 3),
        later,
    )
    .await;
    let rows = fetches(conn).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].forced_iri.as_deref(), forced);
    assert_eq!(rows[0].recursion_level, 2);
    assert!(rows[0].is_locator_fetch && rows[0].is_discovery_fetch);

    // Another debtor: another fetch.
    handle_at(
        conn,
        &context,
        fetch_message(iri, 777, true, false, None, 0),
        now,
    )
    .await;
    assert_eq!(fetches(conn).await.len(), 2);
}

fn store_message(
    debtor_id: i64,
    peg: Option<(&str, i64, f64)>,
    will_not_change_until: Option<DateTime<Utc>>,
    ts: DateTime<Utc>,
) -> IncomingMessage {
    IncomingMessage::StoreDocument(StoreDocument {
        debtor_info_locator: "https://example.com/666".into(),
        debtor_id,
        peg_debtor_info_locator: peg.map(|p| p.0.into()),
        peg_debtor_id: peg.map(|p| p.1),
        peg_exchange_rate: peg.map(|p| p.2),
        will_not_change_until,
        ts,
    })
}

#[tokio::test]
async fn a_stored_document_is_replaced_only_by_a_newer_one() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    let context = context(&db, &[]);
    let now = micros(Utc::now());
    let frozen = now + TimeDelta::days(100);
    let peg = Some(("https://example.com/777", 777, 3.25));
    handle_at(
        conn,
        &context,
        store_message(666, peg, Some(frozen), now),
        now,
    )
    .await;
    let expected_first = DocumentRow {
        debtor_info_locator: "https://example.com/666".into(),
        debtor_id: 666,
        peg_debtor_info_locator: Some("https://example.com/777".into()),
        peg_debtor_id: Some(777),
        peg_exchange_rate: Some(3.25),
        will_not_change_until: Some(frozen),
    };
    assert_eq!(documents(conn).await, vec![(expected_first, now)]);

    // Newer: overwritten.
    let newer = now + TimeDelta::seconds(60);
    handle_at(conn, &context, store_message(999, None, None, newer), now).await;
    let expected_second = DocumentRow {
        debtor_info_locator: "https://example.com/666".into(),
        debtor_id: 999,
        peg_debtor_info_locator: None,
        peg_debtor_id: None,
        peg_exchange_rate: None,
        will_not_change_until: None,
    };
    assert_eq!(
        documents(conn).await,
        vec![(expected_second.clone(), newer)]
    );

    // Older (and equal): ignored.
    handle_at(
        conn,
        &context,
        store_message(666, peg, Some(frozen), now),
        now,
    )
    .await;
    handle_at(
        conn,
        &context,
        store_message(666, peg, Some(frozen), newer),
        now,
    )
    .await;
    assert_eq!(documents(conn).await, vec![(expected_second, newer)]);
}

fn discover(iri: &str, force: bool) -> IncomingMessage {
    IncomingMessage::DiscoverDebtor(DiscoverDebtor {
        debtor_id: 666,
        iri: iri.into(),
        force_locator_refetch: force,
        ts: Utc::now(),
    })
}

fn confirm(debtor_id: i64, locator: &str, ts: DateTime<Utc>) -> IncomingMessage {
    IncomingMessage::ConfirmDebtor(ConfirmDebtor {
        debtor_id,
        debtor_info_locator: locator.into(),
        ts,
    })
}

#[tokio::test]
async fn debtors_are_discovered_and_confirmed_as_the_reference_does() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    let context = context(
        &db,
        &[
            ("APP_DEBTOR_INFO_EXPIRY_DAYS", "7"),
            ("APP_LOCATOR_CLAIM_EXPIRY_DAYS", "35"),
            ("APP_EXTREME_MESSAGE_DELAY_DAYS", "14"),
        ],
    );
    let now = micros(Utc::now());

    // First discovery: a claim without a locator, and a discovery fetch.
    handle_at(
        conn,
        &context,
        discover("https:/example.com/666", false),
        now,
    )
    .await;
    assert_eq!(
        claims(conn).await,
        vec![ClaimRow {
            debtor_id: 666,
            debtor_info_locator: None,
            latest_locator_fetch_at: None,
            latest_discovery_fetch_at: now,
            forced_locator_refetch_at: None,
        }]
    );
    let mut expected = vec![fetch_signal("https:/example.com/666", 666, false, None, 0)];
    assert_eq!(fetch_signals(conn).await, expected);

    // The same again, even forced: nothing (no locator yet, discovery recent).
    handle_at(
        conn,
        &context,
        discover("https:/example.com/666", true),
        now,
    )
    .await;
    assert_eq!(claims(conn).await.len(), 1);
    assert_eq!(fetch_signals(conn).await, expected);

    // Confirmed: the claim gets the locator, which is fetched.
    let t1 = now + TimeDelta::seconds(1);
    let old_locator = "https:/example.com/old-locator";
    handle_at(
        conn,
        &context,
        confirm(666, old_locator, now + TimeDelta::seconds(10)),
        t1,
    )
    .await;
    let claim = &claims(conn).await[0];
    assert_eq!(claim.debtor_info_locator.as_deref(), Some(old_locator));
    assert_eq!(claim.latest_locator_fetch_at, Some(t1));
    assert_eq!(claim.latest_discovery_fetch_at, now);
    expected.push(fetch_signal(old_locator, 666, true, None, 0));
    assert_eq!(fetch_signals(conn).await, expected);

    // Confirmed again with another locator: the last one wins.
    let locator = "https:/example.com/locator";
    handle_at(
        conn,
        &context,
        confirm(666, locator, now + TimeDelta::seconds(30)),
        t1,
    )
    .await;
    assert_eq!(
        claims(conn).await[0].debtor_info_locator.as_deref(),
        Some(locator)
    );
    expected.push(fetch_signal(locator, 666, true, None, 0));
    assert_eq!(fetch_signals(conn).await, expected);

    // A confirmation older than APP_EXTREME_MESSAGE_DELAY_DAYS: ignored.
    let very_old = "https:/example.com/very-old-locator";
    handle_at(
        conn,
        &context,
        confirm(666, very_old, now - TimeDelta::days(15)),
        t1,
    )
    .await;
    assert_eq!(
        claims(conn).await[0].debtor_info_locator.as_deref(),
        Some(locator)
    );
    assert_eq!(fetch_signals(conn).await, expected);

    // A recent discovery of a confirmed debtor: nothing to fetch.
    handle_at(
        conn,
        &context,
        discover("https:/example.com/777", false),
        t1,
    )
    .await;
    assert_eq!(fetch_signals(conn).await, expected);

    // The discovery is 40 days old and the locator fetch 39: a forced discovery fetches both,
    // the locator through the discovered IRI.
    diesel::sql_query(
        "UPDATE debtor_locator_claim SET latest_discovery_fetch_at = $1, \
         latest_locator_fetch_at = $2",
    )
    .bind::<Timestamptz, _>(now - TimeDelta::days(40))
    .bind::<Timestamptz, _>(now - TimeDelta::days(39))
    .execute(conn)
    .await
    .unwrap();
    handle_at(
        conn,
        &context,
        discover("https:/example.com/777", true),
        now,
    )
    .await;
    assert_eq!(
        claims(conn).await,
        vec![ClaimRow {
            debtor_id: 666,
            debtor_info_locator: Some(locator.into()),
            latest_locator_fetch_at: Some(now),
            latest_discovery_fetch_at: now,
            forced_locator_refetch_at: Some(now),
        }]
    );
    let signals = fetch_signals(conn).await;
    assert_eq!(signals.len(), 5);
    let mut last_two = signals[3..].to_vec();
    last_two.sort_by(|a, b| a.iri.cmp(&b.iri));
    assert_eq!(
        last_two,
        vec![
            fetch_signal("https:/example.com/777", 666, false, None, 0),
            fetch_signal(locator, 666, true, Some("https:/example.com/777"), 0),
        ]
    );

    // Forced again soon after: refused (once per expiry period); nothing else is due.
    let soon = now + TimeDelta::days(1);
    handle_at(
        conn,
        &context,
        discover("https:/example.com/777", true),
        soon,
    )
    .await;
    assert_eq!(fetch_signals(conn).await.len(), 5);
    // After the expiry period (7 days + 1 hour) the locator is due again, not forced.
    let later = now + TimeDelta::days(8);
    handle_at(
        conn,
        &context,
        discover("https:/example.com/777", false),
        later,
    )
    .await;
    let signals = fetch_signals(conn).await;
    assert_eq!(signals.len(), 6);
    assert_eq!(signals[5], fetch_signal(locator, 666, true, None, 0));

    // Another debtor confirmed without a discovery: a new claim.
    handle_at(
        conn,
        &context,
        confirm(1234, "https:/example.com/locator1234", now),
        now,
    )
    .await;
    let all = claims(conn).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].debtor_id, 1234);
    assert_eq!(all[1].latest_locator_fetch_at, Some(now));
    assert_eq!(all[1].latest_discovery_fetch_at, now);
    let signals = fetch_signals(conn).await;
    assert_eq!(
        signals[6],
        fetch_signal("https:/example.com/locator1234", 1234, true, None, 0)
    );
}

// ---------------------------------------------------------------------------------------
// The fetcher, against a local HTTPS server.

/// A local HTTPS server with a self-signed certificate, serving test documents:
///
/// - `/doc/<id>`: a valid document of debtor `<id>` at its own locator; 666 is pegged to
///   777 at 2.0;
/// - `/invalid`: a "CoinInfo" document that is not valid (`{}`);
/// - `/html`: an HTML page;
/// - `/missing`: 404;
/// - `/redirect/<n>`: a chain of `n` redirects to `/doc/666`;
/// - `/slow`: `/doc/666` after 3 seconds;
/// - `/huge`, `/huge-unsized`: a document longer than the limit, with and without
///   `Content-Length`.
struct Server {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let cert = certified.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let task_hits = hits.clone();
        let task = tokio::spawn(async move {
            // Bounded by the tests: each makes a few requests.
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let hits = task_hits.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve(tls, port, hits).await;
                    }
                });
            }
        });
        Self { port, hits, task }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self) -> Vec<String> {
        let mut hits = self.hits.lock().unwrap().clone();
        hits.sort();
        hits
    }
}

const COIN_INFO: &str = "application/vnd.swaptacular.coin-info+json";

fn coin_info(port: u16, debtor_id: i64) -> String {
    let locator = format!("https://127.0.0.1:{port}/doc/{debtor_id}");
    let mut doc = serde_json::json!({
        "type": "CoinInfo",
        "latestDebtorInfo": {"uri": locator},
        "debtorIdentity": {"type": "DebtorIdentity", "uri": format!("swpt:{debtor_id}")},
        "summary": "a test currency",
    });
    if debtor_id == 666 {
        doc["peg"] = serde_json::json!({
            "type": "Peg",
            "exchangeRate": 2.0,
            "debtorIdentity": {"type": "DebtorIdentity", "uri": "swpt:777"},
            "latestDebtorInfo": {"uri": format!("https://127.0.0.1:{port}/doc/777")},
        });
    }
    doc.to_string()
}

fn response(status: &str, headers: &[(&str, String)], body: &[u8], sized: bool) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if sized {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn document_response(body: String) -> Vec<u8> {
    response(
        "200 OK",
        &[("Content-Type", format!("{COIN_INFO}; charset=utf-8"))],
        body.as_bytes(),
        true,
    )
}

async fn serve<S>(mut tls: S, port: u16, hits: Arc<Mutex<Vec<String>>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16_384 {
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&request).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    hits.lock().unwrap().push(path.clone());
    let huge = format!(
        r#"{{"padding": "{}", {}"#,
        "x".repeat(60_000),
        &coin_info(port, 1)[1..]
    );
    let bytes = match path.as_str() {
        "/invalid" => document_response("{}".into()),
        "/html" => response(
            "200 OK",
            &[("Content-Type", "text/html".into())],
            b"<html></html>",
            true,
        ),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            document_response(coin_info(port, 666))
        }
        "/huge" => document_response(huge),
        "/huge-unsized" => response(
            "200 OK",
            &[("Content-Type", COIN_INFO.into())],
            huge.as_bytes(),
            false,
        ),
        p if p.starts_with("/doc/") => match p[5..].parse() {
            Ok(id) => document_response(coin_info(port, id)),
            Err(_) => response("404 Not Found", &[], b"", true),
        },
        p if p.starts_with("/redirect/") => match p[10..].parse::<u32>() {
            Ok(0) => document_response(coin_info(port, 666)),
            Ok(n) => response(
                "302 Found",
                &[("Location", format!("/redirect/{}", n - 1))],
                b"",
                true,
            ),
            Err(_) => response("404 Not Found", &[], b"", true),
        },
        _ => response("404 Not Found", &[], b"", true),
    };
    let _ = tls.write_all(&bytes).await;
    let _ = tls.shutdown().await;
}

fn settings(realm: &str, verify_ssl_certs: bool) -> FetchSettings {
    FetchSettings {
        connections: 4,
        timeout: Duration::from_secs(1),
        burst_count: 100,
        verify_ssl_certs,
        debtor_info_expiry_days: 7.0,
        max_distance_to_base: 10,
        realm: realm.parse().unwrap(),
    }
}

fn fetcher(db: &TestDb, settings: FetchSettings) -> Fetcher {
    let pool = WorkerPool::build(&db.url, PoolSettings::new(2), "test").unwrap();
    Fetcher::new(pool, settings).unwrap()
}

/// Schedules a due fetch that failed `attempts` times before.
async fn add_fetch(
    conn: &mut AsyncPgConnection,
    iri: &str,
    debtor_id: i64,
    (locator, discovery): (bool, bool),
    forced_iri: Option<&str>,
    attempts: i16,
) {
    diesel::sql_query(
        "INSERT INTO debtor_info_fetch (iri, debtor_id, is_locator_fetch, is_discovery_fetch, \
         forced_iri, recursion_level, inserted_at, attempts_count, latest_attempt_at, \
         next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, 0, now(), $6, CASE WHEN $6 > 0 THEN now() END, now())",
    )
    .bind::<Text, _>(iri)
    .bind::<BigInt, _>(debtor_id)
    .bind::<Bool, _>(locator)
    .bind::<Bool, _>(discovery)
    .bind::<Nullable<Text>, _>(forced_iri)
    .bind::<SmallInt, _>(attempts)
    .execute(conn)
    .await
    .unwrap();
}

const LOCATOR: (bool, bool) = (true, false);
const DISCOVERY: (bool, bool) = (false, true);
const BOTH: (bool, bool) = (true, true);

#[tokio::test]
async fn the_fetcher_resolves_every_kind_of_answer() {
    let server = Server::start().await;
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    let doc666 = server.url("/doc/666");
    let doc777 = server.url("/doc/777");
    // A locator and discovery fetch of a valid, pegged document.
    add_fetch(conn, &doc666, 666, BOTH, None, 0).await;
    // A discovery through two redirects: confirmed, not stored (not the locator).
    add_fetch(conn, &server.url("/redirect/2"), 666, DISCOVERY, None, 0).await;
    // A document of another debtor than expected: only stored (it is its locator's).
    add_fetch(conn, &doc777, 666, BOTH, None, 0).await;
    // Failures that are retried.
    for path in [
        "/invalid",
        "/html",
        "/missing",
        "/redirect/3",
        "/slow",
        "/huge",
        "/huge-unsized",
    ] {
        add_fetch(conn, &server.url(path), 1, LOCATOR, None, 0).await;
    }
    // A forced IRI is what is fetched.
    add_fetch(
        conn,
        &doc666,
        999,
        DISCOVERY,
        Some(&server.url("/missing")),
        2,
    )
    .await;
    // Not https: dropped without a request.
    let plain = format!("http://127.0.0.1:{}/doc/666", server.port);
    add_fetch(conn, &plain, 666, BOTH, None, 0).await;
    add_fetch(conn, "https://!q:2222hub.io/", 777, LOCATOR, None, 0).await;
    // 14 failures before: the next wait (2^14 minutes) would outlast the 7 days: given up.
    add_fetch(conn, &server.url("/missing"), 14, LOCATOR, None, 14).await;

    let started = micros(Utc::now());
    let resolved = fetcher(&db, settings("#", false)).run_pass().await.unwrap();
    let done = Utc::now();
    assert_eq!(resolved, 14);

    let mut expected_hits: Vec<String> = [
        "/doc/666",
        "/doc/777",
        "/redirect/2",
        "/redirect/1",
        "/redirect/0",
        "/invalid",
        "/html",
        "/missing",
        "/missing",
        "/missing",
        "/redirect/3",
        "/redirect/2",
        "/redirect/1",
        "/slow",
        "/huge",
        "/huge-unsized",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    expected_hits.sort();
    // The forced fetch of (doc666, 999) went to /missing, the locator not at all.
    let hits = server.hits();
    assert_eq!(hits, expected_hits);

    // What the documents said.
    assert_eq!(
        confirm_signals(conn).await,
        vec![
            ConfirmRow {
                debtor_id: 666,
                debtor_info_locator: doc666.clone()
            };
            2
        ]
    );
    assert_eq!(
        fetch_signals(conn).await,
        vec![fetch_signal(&doc777, 777, true, None, 1)]
    );
    let mut stored = store_signals(conn).await;
    stored.sort_by(|a, b| a.debtor_info_locator.cmp(&b.debtor_info_locator));
    assert_eq!(
        stored,
        vec![
            DocumentRow {
                debtor_info_locator: doc666.clone(),
                debtor_id: 666,
                peg_debtor_info_locator: Some(doc777.clone()),
                peg_debtor_id: Some(777),
                peg_exchange_rate: Some(2.0),
                will_not_change_until: None,
            },
            DocumentRow {
                debtor_info_locator: doc777.clone(),
                debtor_id: 777,
                peg_debtor_info_locator: None,
                peg_debtor_id: None,
                peg_exchange_rate: None,
                will_not_change_until: None,
            },
        ]
    );

    // The failed fetches are rescheduled: one attempt more, 30 to 60 seconds (or 2 to 4
    // minutes after 2 failures) from now, with the HTTP status if there was one.
    let rows: HashMap<(String, i64), FetchRow> = fetches(conn)
        .await
        .into_iter()
        .map(|r| ((r.iri.clone(), r.debtor_id), r))
        .collect();
    let mut expected_keys: Vec<(String, i64)> = [
        "/invalid",
        "/html",
        "/missing",
        "/redirect/3",
        "/slow",
        "/huge",
        "/huge-unsized",
    ]
    .iter()
    .map(|p| (server.url(p), 1))
    .collect();
    expected_keys.push((doc666.clone(), 999));
    let mut keys: Vec<_> = rows.keys().cloned().collect();
    keys.sort();
    expected_keys.sort();
    assert_eq!(keys, expected_keys);
    for (key, row) in &rows {
        let (attempts, min_wait, max_wait) = if key.1 == 999 {
            (3, 120, 240)
        } else {
            (1, 30, 60)
        };
        assert_eq!(row.attempts_count, attempts, "{key:?}");
        let attempt = row.latest_attempt_at.unwrap();
        assert!(attempt >= started && attempt <= done, "{key:?}");
        let wait = row.next_attempt_at - attempt;
        assert!(
            wait >= TimeDelta::seconds(min_wait) && wait <= TimeDelta::seconds(max_wait),
            "{key:?}: {wait}"
        );
        let missing = key.0.ends_with("/missing") || key.1 == 999;
        let expected_code = missing.then_some(404);
        assert_eq!(row.latest_attempt_errorcode, expected_code, "{key:?}");
    }
}

#[tokio::test]
async fn with_verification_a_self_signed_certificate_is_refused() {
    let server = Server::start().await;
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    add_fetch(conn, &server.url("/doc/666"), 666, BOTH, None, 0).await;
    let resolved = fetcher(&db, settings("#", true)).run_pass().await.unwrap();
    assert_eq!(resolved, 1);
    assert!(server.hits().is_empty());
    let rows = fetches(conn).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].attempts_count, 1);
    assert_eq!(rows[0].latest_attempt_errorcode, None);
    assert_eq!(count(conn, "store_document_signal").await, 0);
    assert_eq!(count(conn, "confirm_debtor_signal").await, 0);
}

#[tokio::test]
async fn a_failed_fetch_is_given_up_when_documents_expire_sooner_than_its_retry() {
    let server = Server::start().await;
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    add_fetch(conn, &server.url("/missing"), 666, LOCATOR, None, 0).await;
    let mut settings = settings("#", false);
    settings.debtor_info_expiry_days = -10.0;
    assert_eq!(fetcher(&db, settings).run_pass().await.unwrap(), 1);
    assert_eq!(server.hits(), ["/missing"]);
    assert!(fetches(conn).await.is_empty());
}

/// `n` IRIs of the closed port 1 of the loopback address, in or out of `realm`.
fn iris(realm: &ShardingRealm, inside: bool, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("https://127.0.0.1:1/{i}"))
        .filter(|iri| realm.contains_str(iri) == inside)
        .take(n)
        .collect()
}

#[tokio::test]
async fn cached_documents_and_other_shards_need_no_request() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    let context = context(&db, &[]);
    let realm: ShardingRealm = "0.#".parse().unwrap();
    let ours = iris(&realm, true, 3);
    let theirs = iris(&realm, false, 1);
    let now = micros(Utc::now());
    // A frozen document (fetched long ago, unchanged for 1000 days), pegged; a document
    // fetched a day ago; an expired one.
    let store = |locator: &str, peg: Option<(&str, i64, f64)>, frozen, fetched_at| {
        IncomingMessage::StoreDocument(StoreDocument {
            debtor_info_locator: locator.into(),
            debtor_id: 666,
            peg_debtor_info_locator: peg.map(|p| p.0.into()),
            peg_debtor_id: peg.map(|p| p.1),
            peg_exchange_rate: peg.map(|p| p.2),
            will_not_change_until: frozen,
            ts: fetched_at,
        })
    };
    let peg = Some(("https://127.0.0.1:1/peg", 777, 2.0));
    let frozen = Some(now + TimeDelta::days(1000));
    let long_ago = now - TimeDelta::days(30);
    for m in [
        store(&ours[0], peg, frozen, long_ago),
        store(&ours[1], None, None, now - TimeDelta::days(1)),
        store(&ours[2], None, None, long_ago),
    ] {
        handle_at(conn, &context, m, now).await;
    }
    add_fetch(conn, &ours[0], 666, BOTH, None, 0).await;
    add_fetch(conn, &ours[1], 666, LOCATOR, None, 0).await;
    // Expired: a request is made (to a closed port): retried.
    add_fetch(conn, &ours[2], 666, LOCATOR, None, 0).await;
    // Forced to another URL: the stored document is not used.
    add_fetch(conn, &ours[1], 1, LOCATOR, Some("http://127.0.0.1:1/x"), 0).await;
    // Another shard's IRI: dropped.
    add_fetch(conn, &theirs[0], 888, BOTH, None, 0).await;

    let resolved = fetcher(&db, settings("0.#", false))
        .run_pass()
        .await
        .unwrap();
    assert_eq!(resolved, 5);
    let rows = fetches(conn).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].iri.as_str(), rows[0].attempts_count),
        (ours[2].as_str(), 1)
    );
    // From the cache: the peg is followed and the locator confirmed, nothing is stored.
    assert_eq!(
        fetch_signals(conn).await,
        vec![fetch_signal("https://127.0.0.1:1/peg", 777, true, None, 1)]
    );
    assert_eq!(
        confirm_signals(conn).await,
        vec![ConfirmRow {
            debtor_id: 666,
            debtor_info_locator: ours[0].clone()
        }]
    );
    assert_eq!(count(conn, "store_document_signal").await, 0);
    assert_eq!(documents(conn).await.len(), 3);
}

#[tokio::test]
async fn the_peg_chain_is_followed_up_to_max_distance_to_base() {
    let server = Server::start().await;
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    let doc666 = server.url("/doc/666");
    diesel::sql_query(
        "INSERT INTO debtor_info_fetch (iri, debtor_id, is_locator_fetch, is_discovery_fetch, \
         recursion_level, inserted_at, attempts_count, next_attempt_at) \
         VALUES ($1, 666, true, false, 2, now(), 0, now())",
    )
    .bind::<Text, _>(&doc666)
    .execute(conn)
    .await
    .unwrap();
    let mut settings = settings("#", false);
    settings.max_distance_to_base = 2;
    assert_eq!(fetcher(&db, settings).run_pass().await.unwrap(), 1);
    // Stored, but the peg is not followed at level 2.
    assert_eq!(count(conn, "store_document_signal").await, 1);
    assert_eq!(count(conn, "fetch_debtor_info_signal").await, 0);
}

#[tokio::test]
async fn batches_of_burst_count_run_until_one_is_not_full() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    for i in 0..5 {
        // Not https: dropped without a request.
        add_fetch(
            conn,
            &format!("http://127.0.0.1:1/{i}"),
            i,
            LOCATOR,
            None,
            0,
        )
        .await;
    }
    // Not due yet.
    diesel::sql_query(
        "INSERT INTO debtor_info_fetch (iri, debtor_id, is_locator_fetch, is_discovery_fetch, \
         recursion_level, inserted_at, attempts_count, next_attempt_at) \
         VALUES ('http://127.0.0.1:1/later', 9, true, false, 0, now(), 0, \
                 now() + interval '1 hour')",
    )
    .execute(conn)
    .await
    .unwrap();
    let mut settings = settings("#", false);
    settings.burst_count = 2;
    assert_eq!(fetcher(&db, settings).run_pass().await.unwrap(), 5);
    let rows = fetches(conn).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].debtor_id, 9);
}

#[tokio::test]
async fn fetch_debtor_infos_runs_one_pass_with_quit_early() {
    let db = TestDb::migrated(Database::Worker).await;
    let conn = &mut db.connect().await;
    add_fetch(conn, "http://127.0.0.1:1/x", 1, LOCATOR, None, 0).await;
    let vars = [("WORKER_POSTGRES_URL", db.url.as_str())];
    let out = run_binary(
        &[
            "fetch_debtor_infos",
            "-p",
            "2",
            "-c",
            "3",
            "-t",
            "2",
            "--quit-early",
        ],
        &vars,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(fetches(conn).await.is_empty());
    // Out-of-range options are refused before anything runs.
    for bad in [["-c", "0"], ["-t", "0"], ["-p", "65"], ["-w", "nan"]] {
        let mut args = vec!["fetch_debtor_infos", "--quit-early"];
        args.extend(bad);
        let out = run_binary(&args, &vars);
        assert_eq!(out.status.code(), Some(1), "{bad:?}: {out:?}");
    }
}
