//! The admin API's own authentication: bearer tokens introspected (RFC 7662) at a local
//! introspection server, the access rules and hierarchic scopes, the subject patterns, the
//! cache, and an introspection server that is down or slow.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use swpt_trade::db::Database;

use crate::cli::run_binary;
use crate::util::TestDb;
use crate::web_support::{IntrospectionStub, WebServer, free_port, introspecting};

/// Inserts a turn, so that `GET /trade/turns/1` finds one.
async fn a_turn(db: &TestDb) {
    use diesel_async::RunQueryDsl as _;
    diesel::sql_query(
        "INSERT INTO turn (turn_id, started_at, base_debtor_info_locator, base_debtor_id, \
         max_distance_to_base, min_trade_amount, phase, phase_deadline) \
         VALUES (1, now(), 'https://example.com/666', 666, 10, 1000, 1, now())",
    )
    .execute(&mut db.connect().await)
    .await
    .unwrap();
}

/// `(method, path, status for an administrator with the right scope)`.
const ENDPOINTS: [(&str, &str, u16); 7] = [
    ("POST", "/trade/collectors/123/activate", 204),
    ("GET", "/trade/collectors/123", 200),
    ("GET", "/trade/turns", 200),
    ("GET", "/trade/turns/1", 200),
    ("GET", "/trade/turns/2", 404),
    ("GET", "/trade/health/check/public", 200),
    ("GET", "/trade/.docs/openapi.json", 200),
];

fn is_public(path: &str) -> bool {
    path.ends_with("/public") || path.starts_with("/trade/.docs")
}

/// The expected status of `caller` on an endpoint.
fn expected(caller: Option<&str>, method: &str, path: &str, allowed: u16) -> u16 {
    if is_public(path) {
        return allowed;
    }
    match caller {
        None | Some("inactive") => 401,
        // The token lacks `activate`.
        Some("readonly") if method == "POST" => 403,
        Some("readonly" | "supervisor" | "superuser") => allowed,
        Some(_) => 403, // a creditor, or an unknown subject
    }
}

#[tokio::test]
async fn every_endpoint_for_every_caller() {
    let db = TestDb::migrated(Database::Solver).await;
    a_turn(&db).await;
    let stub = IntrospectionStub::start(Duration::ZERO).await;
    let server = WebServer::start(&introspecting(&db.url, &stub.url)).await;
    let client = reqwest::Client::new();
    let callers = [
        None,
        Some("inactive"),
        Some("readonly"),
        Some("creditor"),
        Some("unknown"),
        Some("supervisor"),
        Some("superuser"),
    ];
    let mut checked = 0;
    for (method, path, allowed) in ENDPOINTS {
        for caller in callers {
            let mut request = client.request(method.parse::<Method>().unwrap(), server.url(path));
            if let Some(token) = caller {
                request = request.bearer_auth(token);
            }
            // A client's own header is never trusted when tokens are introspected.
            request = request.header("x-swpt-user-id", "creditors-superuser");
            let response = request.send().await.unwrap();
            let want = expected(caller, method, path, allowed);
            assert_eq!(
                response.status().as_u16(),
                want,
                "{method} {path} as {caller:?}"
            );
            if want == 401 {
                assert_eq!(response.headers()["www-authenticate"], "Bearer");
            }
            if want >= 400 {
                let body: serde_json::Value = response.json().await.unwrap();
                assert_eq!(body["code"], want, "{method} {path} as {caller:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 49);
    // Six known tokens and one inactive one were introspected, each once at the most.
    assert_eq!(stub.requests(), 6, "one introspection per token");
}

#[tokio::test]
async fn identical_requests_share_one_introspection() {
    let db = TestDb::migrated(Database::Solver).await;
    let stub = IntrospectionStub::start(Duration::from_millis(200)).await;
    let server = WebServer::start(&introspecting(&db.url, &stub.url)).await;
    let client = reqwest::Client::new();
    let url = server.url("/trade/turns");
    let started = Instant::now();
    let requests = (0..20).map(|_| client.get(&url).bearer_auth("cache").send());
    let responses = futures::future::join_all(requests).await;
    for response in responses {
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }
    let first = stub.requests();
    assert!(
        (1..=2).contains(&first),
        "{first} introspections for 20 requests"
    );
    // Later requests are answered from the cache, without the introspection's delay.
    for _ in 0..20 {
        let response = client.get(&url).bearer_auth("cache").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(stub.requests(), first);
    eprintln!(
        "token cache: 40 requests, {first} introspection(s), {:?}",
        started.elapsed()
    );
    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cached: f64 = metrics
        .lines()
        .find(|l| l.starts_with("swpt_trade_token_introspections_total{outcome=\"cached\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("a cache hit count");
    assert!(cached >= 38.0, "{cached} cache hits");
}

#[tokio::test]
async fn an_introspection_server_that_is_down_or_slow_gives_503() {
    let db = TestDb::migrated(Database::Solver).await;
    let client = reqwest::Client::new();
    let down = format!("http://127.0.0.1:{}/introspect", free_port());
    let slow = IntrospectionStub::start(Duration::from_secs(5)).await;
    for url in [down.as_str(), slow.url.as_str()] {
        let mut vars = introspecting(&db.url, url);
        vars.push(("APP_TOKEN_INTROSPECTION_TIMEOUT_SECONDS", "0.5"));
        let server = WebServer::start(&vars).await;
        for _ in 0..2 {
            let started = Instant::now();
            let response = client
                .post(server.url("/trade/collectors/1/activate"))
                .bearer_auth("superuser")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{url}");
            assert!(started.elapsed() < Duration::from_secs(3));
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["code"], 503);
        }
        // Nothing was created, and public paths still answer.
        let response = client
            .get(server.url("/trade/health/check/public"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    use diesel_async::RunQueryDsl as _;
    let n: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM collector_account)",
    ))
    .get_result(&mut db.connect().await)
    .await
    .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn the_webserver_refuses_to_start_without_a_way_to_check_callers() {
    let db_url = (
        "SOLVER_POSTGRES_URL",
        "postgresql://postgres@127.0.0.1:1/none",
    );
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[db_url], "OAUTH2_INTROSPECT_URL is not set"),
        (
            &[
                db_url,
                ("OAUTH2_INTROSPECT_URL", "http://127.0.0.1:1/introspect"),
                ("APP_TRUST_USER_ID_HEADER", "true"),
            ],
            "choose one way",
        ),
        (
            &[
                db_url,
                ("APP_TRUST_USER_ID_HEADER", "true"),
                ("APP_CREDITOR_SUBJECT_REGEX", "(["),
            ],
            "APP_CREDITOR_SUBJECT_REGEX",
        ),
        (
            &[("APP_TRUST_USER_ID_HEADER", "true")],
            "SOLVER_POSTGRES_URL is not set",
        ),
    ];
    for (vars, says) in cases {
        let out = run_binary(&["webserver"], vars);
        assert_eq!(out.status.code(), Some(1), "{vars:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(says), "{stderr:?} should say {says:?}");
    }
}
