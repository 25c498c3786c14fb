//! Running the `webserver` command against a test database, and a local OAuth 2.0 token
//! introspection server (RFC 7662) whose tokens the tests know.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::util::wait_for;

/// A free local port (nothing listens on it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `swpt-trade webserver` process, killed when dropped.
pub struct WebServer {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl WebServer {
    /// Starts the webserver with exactly `vars` (and its port) in its environment, and waits
    /// until its health check answers.
    pub async fn start(vars: &[(&str, &str)]) -> Self {
        let port = free_port().to_string();
        let child = Command::new(env!("CARGO_BIN_EXE_swpt-trade"))
            .arg("webserver")
            .env_clear()
            .envs(vars.iter().copied())
            .env("WEBSERVER_PORT", &port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start swpt-trade webserver");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let health = server.url("/trade/health/check/public");
        let up = wait_for(20, async || {
            reqwest::get(&health)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(up, "the webserver did not start");
        server
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl WebServer {
    /// Sends SIGTERM and waits (at most 10 s) for the exit status.
    pub fn terminate(mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        None
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The settings of a webserver on `db` that introspects tokens at `introspect_url`.
pub fn introspecting<'a>(db_url: &'a str, introspect_url: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SOLVER_POSTGRES_URL", db_url),
        ("OAUTH2_INTROSPECT_URL", introspect_url),
    ]
}

/// The tokens the introspection stub knows: token, subject, scopes. Every other token is
/// inactive.
pub const TOKENS: [(&str, &str, &str); 6] = [
    ("readonly", "creditors-superuser", "access.readonly"),
    ("creditor", "creditors:5", "access activate deactivate"),
    ("unknown", "someone-else", "access activate deactivate"),
    ("supervisor", "creditors-supervisor", "access activate"),
    (
        "superuser",
        "creditors-superuser",
        "openid access activate deactivate",
    ),
    ("cache", "creditors-superuser", "access"),
];

/// A local token introspection endpoint: `POST /introspect` with a form `token=…` answers
/// as RFC 7662 says, after `delay`.
pub struct IntrospectionStub {
    /// The endpoint's URL.
    pub url: String,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl IntrospectionStub {
    /// Starts the stub on a free port.
    pub async fn start(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/introspect",
            listener.local_addr().unwrap().port()
        );
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let _ = answer(stream, delay, &counter).await;
                });
            }
        });
        Self {
            url,
            requests,
            task,
        }
    }

    /// The introspection requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for IntrospectionStub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP request and answers it (one request per connection).
async fn answer(
    mut stream: tokio::net::TcpStream,
    delay: Duration,
    counter: &AtomicUsize,
) -> std::io::Result<()> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let (head_end, length) = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..i]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (i + 4, length);
        }
    };
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let body = &data[head_end..];
    counter.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(delay).await;
    let token = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let proto_header = head
        .to_ascii_lowercase()
        .contains("x-forwarded-proto: https");
    let json = match TOKENS.iter().find(|(t, _, _)| *t == token) {
        Some((_, sub, scope)) if proto_header && head.starts_with("POST /introspect ") => {
            let exp = chrono::Utc::now().timestamp() + 3600;
            serde_json::json!({"active": true, "sub": sub, "scope": scope, "exp": exp})
        }
        _ => serde_json::json!({"active": false}),
    };
    let body = json.to_string();
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
