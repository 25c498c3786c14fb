//! Per-test resources on the real servers: a fresh PostgreSQL database and a fresh RabbitMQ
//! virtual host, each removed when the test ends, so tests run in parallel.
//!
//! `TEST_DATABASE_URL` (default `postgresql://postgres@127.0.0.1:5432/postgres`) names a
//! database to connect to for creating the others; `TEST_AMQP_HOST` and `TEST_RABBITMQ_API`
//! (defaults `127.0.0.1:5672` and `http://127.0.0.1:15672/api`) name the broker, whose
//! management plugin creates the virtual hosts.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use swpt_trade::db::{Database, migrate};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into())
}

/// A name that no other test, in this process or another, uses at the same time.
fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_p{}_{n}", std::process::id())
}

/// Runs `f` to completion on a fresh runtime in its own thread (usable from `Drop`).
fn block_on_thread<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(f);
    })
    .join();
}

async fn admin_execute(sql: String) -> anyhow::Result<()> {
    let mut conn = AsyncPgConnection::establish(&admin_url()).await?;
    diesel::sql_query(sql).execute(&mut conn).await?;
    Ok(())
}

/// A database of its own for one test, dropped at the end of the test.
pub struct TestDb {
    /// The database's name.
    pub name: String,
    /// A `postgresql://` URL of the database.
    pub url: String,
}

impl TestDb {
    /// A new, empty database.
    pub async fn empty() -> Self {
        sweep_leftovers().await;
        let name = unique_name("swpt_test");
        admin_execute(format!("CREATE DATABASE {name}"))
            .await
            .expect("create a test database");
        let mut url = url::Url::parse(&admin_url()).unwrap();
        url.set_path(&name);
        Self {
            name,
            url: url.into(),
        }
    }

    /// A new database with the migrations of `db` applied.
    pub async fn migrated(db: Database) -> Self {
        let test_db = Self::empty().await;
        migrate::migrate(db, &test_db.url)
            .await
            .expect("migrate the test database");
        test_db
    }

    /// A copy of `template` (which must have no open connections), as a split shard's
    /// databases are made from their parent's.
    pub async fn copy_of(template: &TestDb) -> Self {
        let name = unique_name("swpt_test");
        admin_execute(format!("CREATE DATABASE {name} TEMPLATE {}", template.name))
            .await
            .expect("copy a test database");
        let mut url = url::Url::parse(&admin_url()).unwrap();
        url.set_path(&name);
        Self {
            name,
            url: url.into(),
        }
    }

    /// A connection to the database.
    pub async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        block_on_thread(async move {
            let _ = admin_execute(sql).await;
        });
    }
}

#[derive(diesel::QueryableByName)]
struct DbName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

/// Drops test databases left behind by test processes that no longer run (once per process).
async fn sweep_leftovers() {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            let Ok(mut conn) = AsyncPgConnection::establish(&admin_url()).await else { return };
            let names: Vec<DbName> = diesel::sql_query(
                "SELECT datname::text AS datname FROM pg_database WHERE datname LIKE 'swpt\\_test\\_p%'",
            )
            .load(&mut conn)
            .await
            .unwrap_or_default();
            for DbName { datname } in names {
                let pid = datname.split('_').nth(2).and_then(|p| p.strip_prefix('p'));
                let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
                if !alive {
                    let sql = format!("DROP DATABASE IF EXISTS {datname} WITH (FORCE)");
                    let _ = diesel::sql_query(sql).execute(&mut conn).await;
                }
            }
        })
        .await;
}

/// A RabbitMQ virtual host of its own for one test, deleted at the end of the test. Exchange
/// and queue names are fixed by the protocol, so isolation comes from the virtual host.
pub struct TestBroker {
    /// The virtual host's name.
    pub vhost: String,
    /// An `amqp://` URL of the virtual host.
    pub url: String,
}

/// The broker's AMQP address, `host:port`.
fn amqp_host() -> String {
    std::env::var("TEST_AMQP_HOST").unwrap_or_else(|_| "127.0.0.1:5672".into())
}

fn rabbitmq_api() -> String {
    std::env::var("TEST_RABBITMQ_API").unwrap_or_else(|_| "http://127.0.0.1:15672/api".into())
}

async fn rabbitmq_api_call(method: reqwest::Method, path: String, body: Option<serde_json::Value>) {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method, format!("{}{path}", rabbitmq_api()))
        .basic_auth("guest", Some("guest"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .expect("reach the RabbitMQ management API");
    assert!(
        response.status().is_success(),
        "RabbitMQ API {path}: {}",
        response.status()
    );
}

/// A GET on the RabbitMQ management API (e.g. `/exchanges/<vhost>`); `None` on 404.
pub async fn rabbitmq_get(path: &str) -> Option<serde_json::Value> {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", rabbitmq_api()))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .expect("reach the RabbitMQ management API");
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return None;
    }
    assert!(
        response.status().is_success(),
        "RabbitMQ API {path}: {}",
        response.status()
    );
    Some(
        response
            .json()
            .await
            .expect("JSON from the RabbitMQ management API"),
    )
}

impl TestBroker {
    /// A GET on this virtual host's objects: `kind` is `exchanges`, `queues` or `bindings`,
    /// `name` an object name (or empty for all of them).
    pub async fn get(&self, kind: &str, name: &str) -> Option<serde_json::Value> {
        let path = if name.is_empty() {
            format!("/{kind}/{}", self.vhost)
        } else {
            format!("/{kind}/{}/{}", self.vhost, urlencode(name))
        };
        rabbitmq_get(&path).await
    }

    /// A new virtual host that the `guest` user may use fully.
    pub async fn new() -> Self {
        let vhost = unique_name("swpt_test");
        rabbitmq_api_call(reqwest::Method::PUT, format!("/vhosts/{vhost}"), None).await;
        let permissions = serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"});
        rabbitmq_api_call(
            reqwest::Method::PUT,
            format!("/permissions/{vhost}/guest"),
            Some(permissions),
        )
        .await;
        let url = format!("amqp://guest:guest@{}/{vhost}", amqp_host());
        Self { vhost, url }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let path = format!("/vhosts/{}", self.vhost);
        block_on_thread(async move {
            rabbitmq_api_call(reqwest::Method::DELETE, path, None).await;
        });
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Settings read from `vars` only (defaults for everything else).
pub fn test_config(vars: &[(&str, &str)]) -> swpt_trade::config::Config {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |k: &str| {
        vars.iter()
            .find(|(v, _)| v == k)
            .map(|(_, value)| value.clone())
    };
    swpt_trade::config::Config::from_lookup(&lookup).expect("valid test settings")
}

/// A DELETE on the RabbitMQ management API (e.g. to close a connection).
pub async fn rabbitmq_delete(path: &str) {
    rabbitmq_api_call(reqwest::Method::DELETE, path.to_owned(), None).await;
}

/// How often [`wait_until`] checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Checks `condition` every 20 ms until it holds (true) or `limit` has passed (false). The
/// condition is checked once more after the deadline, so a slow check cannot make it miss.
pub async fn wait_until<F: AsyncFnMut() -> bool>(limit: Duration, mut condition: F) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return condition().await;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// [`wait_until`] with a limit in seconds.
pub async fn wait_for<F: AsyncFnMut() -> bool>(secs: u64, condition: F) -> bool {
    wait_until(Duration::from_secs(secs), condition).await
}

/// Held by each test that runs the whole system (a solver, workers and the simulator, each
/// with its connection pools): two at once would exhaust PostgreSQL's connections on top of
/// the other tests, and the two cores.
pub static WHOLE_SYSTEM: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A TCP proxy in front of the broker, whose connections a test can break at once, as a broker
/// restart would (the management API lists new connections only seconds later).
pub struct BrokerProxy {
    /// An `amqp://` URL of the test's virtual host, through the proxy.
    pub url: String,
    accepted: Arc<AtomicUsize>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    listener: tokio::task::JoinHandle<()>,
}

impl BrokerProxy {
    /// A proxy to `broker`'s virtual host on a free local port.
    pub async fn start(broker: &TestBroker) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (count, connections) = (accepted.clone(), open.clone());
        let listener = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let forward = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(amqp_host()).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                connections.lock().unwrap().push(forward.abort_handle());
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        Self {
            url: format!("amqp://guest:guest@127.0.0.1:{port}/{}", broker.vhost),
            accepted,
            open,
            listener,
        }
    }

    /// The connections made through the proxy so far.
    pub fn accepted(&self) -> usize {
        AtomicUsize::load(&self.accepted, Ordering::SeqCst)
    }

    /// Breaks every open connection; returns how many there were.
    pub fn break_connections(&self) -> usize {
        let open = std::mem::take(&mut *self.open.lock().unwrap());
        let live: Vec<_> = open.into_iter().filter(|c| !c.is_finished()).collect();
        for connection in &live {
            connection.abort();
        }
        live.len()
    }
}

impl Drop for BrokerProxy {
    fn drop(&mut self) {
        self.listener.abort();
        self.break_connections();
    }
}
