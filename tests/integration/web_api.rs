//! The admin API's endpoints behind a trusted proxy (`APP_TRUST_USER_ID_HEADER`): collector
//! activation with the reference's statuses and error bodies, methods, unknown paths, CORS.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, SmallInt};
use diesel_async::RunQueryDsl as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use swpt_trade::collectors::CollectorIds;
use swpt_trade::db::Database;

use crate::util::TestDb;
use crate::web_support::WebServer;

const DEFAULT_MIN: i64 = 0x0000_0100_0000_0000;
const DEFAULT_MAX: i64 = 0x0000_0100_0000_07ff;

async fn trusted(db: &TestDb, extra: &[(&str, &str)]) -> WebServer {
    let mut vars = vec![
        ("SOLVER_POSTGRES_URL", db.url.as_str()),
        ("APP_TRUST_USER_ID_HEADER", "true"),
    ];
    vars.extend_from_slice(extra);
    WebServer::start(&vars).await
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Collector {
    #[diesel(sql_type = BigInt)]
    collector_id: i64,
    #[diesel(sql_type = SmallInt)]
    status: i16,
}

async fn collectors(db: &TestDb, debtor_id: i64) -> Vec<Collector> {
    diesel::sql_query(format!(
        "SELECT collector_id, status FROM collector_account WHERE debtor_id = {debtor_id} \
         ORDER BY collector_id"
    ))
    .load(&mut db.connect().await)
    .await
    .unwrap()
}

async fn post(server: &WebServer, path: &str, content_type: &str, body: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url(path))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{status}"
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn activation_adds_the_workers_collector_ids_once() {
    let db = TestDb::migrated(Database::Solver).await;
    let server = trusted(&db, &[]).await;
    let path = "/trade/collectors/666/activate";
    let response = post(
        &server,
        path,
        "application/json",
        r#"{"numberOfAccounts": 3}"#,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.bytes().await.unwrap().is_empty());
    let ids = CollectorIds {
        min: DEFAULT_MIN,
        max: DEFAULT_MAX,
        per_debtor: 1,
    };
    let mut expected = ids.plan_up_to(666, &[], 0, 3).unwrap();
    expected.sort_unstable();
    let rows = collectors(&db, 666).await;
    assert_eq!(
        rows.iter().map(|c| c.collector_id).collect::<Vec<_>>(),
        expected
    );
    assert!(rows.iter().all(|c| c.status == 0));
    // Repeating, or asking for fewer (the default is 1), changes nothing.
    for body in [r#"{"numberOfAccounts": 3}"#, "{}", ""] {
        let response = post(&server, path, "application/json", body).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(collectors(&db, 666).await, rows);
    // A disabled account does not count: one more is added, the next of the sequence.
    let disabled = expected[0];
    diesel::sql_query(format!(
        "UPDATE collector_account SET status = 3 WHERE collector_id = {disabled}"
    ))
    .execute(&mut db.connect().await)
    .await
    .unwrap();
    let response = post(
        &server,
        path,
        "application/json",
        r#"{"numberOfAccounts": "3"}"#,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let existing: Vec<i64> = rows.iter().map(|c| c.collector_id).collect();
    let next = ids.plan_up_to(666, &existing, 2, 3).unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(collectors(&db, 666).await.len(), 4);

    // The list of the debtor's accounts.
    let response = reqwest::get(server.url("/trade/collectors/666"))
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["type"], "CollectorAccounts");
    assert_eq!(body["debtorId"], 666);
    assert_eq!(body["alive"], 3);
    let accounts = body["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 4);
    let listed: Vec<i64> = accounts
        .iter()
        .map(|a| a["collectorId"].as_i64().unwrap())
        .collect();
    let mut all = existing.clone();
    all.extend(&next);
    all.sort_unstable();
    assert_eq!(listed, all);
    let first = accounts
        .iter()
        .find(|a| a["collectorId"] == disabled)
        .unwrap();
    assert_eq!(first["status"], 3);
    assert_eq!(first["statusName"], "disabled");
    assert_eq!(first["accountId"], "");
    // A debtor without accounts has an empty list; a bad ID is no route.
    let response = reqwest::get(server.url("/trade/collectors/18446744073709551615"))
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["debtorId"], -1);
    assert_eq!(body["accounts"], json!([]));
}

#[tokio::test]
async fn debtor_ids_and_bodies_get_the_references_answers() {
    let db = TestDb::migrated(Database::Solver).await;
    let server = trusted(&db, &[]).await;
    let activate = |id: &str| format!("/trade/collectors/{id}/activate");
    for id in ["01", "-1", "+1", "1a", "18446744073709551616", "0x10"] {
        let response = post(&server, &activate(id), "application/json", "{}").await;
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(body, json!({"code": 404, "status": "Not Found"}));
    }
    let (status, body) =
        json_of(post(&server, &activate("0"), "application/json", "{}").await).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        json!({"code": 500, "status": "Internal Server Error"})
    );
    // 2^64 − 1 is the debtor −1.
    let response = post(
        &server,
        &activate("18446744073709551615"),
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(collectors(&db, -1).await.len(), 1);

    let path = activate("777");
    let response = post(&server, &path, "application/json", "{bad").await;
    let text = response.text().await.unwrap();
    assert_eq!(
        text,
        r#"{"code":400,"errors":{"json":["Invalid JSON body."]},"status":"Bad Request"}"#
    );
    let response = post(
        &server,
        &path,
        "application/json",
        r#"{"debtorId": 1, "type": "X"}"#,
    )
    .await;
    let text = response.text().await.unwrap();
    assert_eq!(
        text,
        r#"{"code":422,"errors":{"json":{"debtorId":["Unknown field."],"type":["Invalid type."]}},"status":"Unprocessable Entity"}"#
    );
    let cases = [
        (
            r#"{"numberOfAccounts": 0}"#,
            json!({"numberOfAccounts": ["Must be greater than or equal to 1 and less than or equal to 9223372036854775807."]}),
        ),
        (
            r#"{"numberOfAccounts": true}"#,
            json!({"numberOfAccounts": ["Not a valid integer."]}),
        ),
        (
            r#"{"numberOfAccounts": null}"#,
            json!({"numberOfAccounts": ["Field may not be null."]}),
        ),
        ("[]", json!({"_schema": ["Invalid input type."]})),
    ];
    for (body, errors) in cases {
        let (status, answer) = json_of(post(&server, &path, "application/json", body).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(
            answer,
            json!({"code": 422, "status": "Unprocessable Entity", "errors": {"json": errors}})
        );
    }
    assert!(collectors(&db, 777).await.is_empty());
    // A body that is not announced as JSON is ignored (all defaults).
    let response = post(&server, &path, "text/plain", r#"{"numberOfAccounts": 5}"#).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(collectors(&db, 777).await.len(), 1);
}

#[tokio::test]
async fn too_small_ranges_and_too_many_accounts_are_refused() {
    let db = TestDb::migrated(Database::Solver).await;
    // Four IDs: three quarters of them are three accounts.
    let small = trusted(
        &db,
        &[
            ("MIN_COLLECTOR_ID", "0x0000010000000000"),
            ("MAX_COLLECTOR_ID", "0x0000010000000003"),
        ],
    )
    .await;
    let path = "/trade/collectors/5/activate";
    let response = post(
        &small,
        path,
        "application/json",
        r#"{"numberOfAccounts": 4}"#,
    )
    .await;
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["code"], 500);
    assert!(collectors(&db, 5).await.is_empty());
    let response = post(
        &small,
        path,
        "application/json",
        r#"{"numberOfAccounts": 3}"#,
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(collectors(&db, 5).await.len(), 3);
    drop(small);

    let large = trusted(&db, &[("MAX_COLLECTOR_ID", "0x00000100ffffffff")]).await;
    let response = post(
        &large,
        "/trade/collectors/6/activate",
        "application/json",
        r#"{"numberOfAccounts": 10001}"#,
    )
    .await;
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["errors"]["json"]["numberOfAccounts"][0],
        "At most 10000 collector accounts can be added by one request."
    );
    assert!(collectors(&db, 6).await.is_empty());
}

#[tokio::test]
async fn methods_options_and_unknown_paths() {
    let db = TestDb::migrated(Database::Solver).await;
    let server = trusted(&db, &[]).await;
    let client = reqwest::Client::new();
    let activate = server.url("/trade/collectors/1/activate");
    let health = server.url("/trade/health/check/public");

    let response = client.get(&activate).send().await.unwrap();
    assert!(response.headers().get("allow").is_none());
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body, json!({"code": 405, "status": "Method Not Allowed"}));
    let response = client
        .request(reqwest::Method::OPTIONS, &activate)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["allow"], "POST, OPTIONS");
    assert!(response.bytes().await.unwrap().is_empty());

    let response = client.get(&health).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.text().await.unwrap(), "I am healthy.");
    let response = client.head(&health).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client.delete(&health).send().await.unwrap();
    assert_eq!(json_of(response).await.0, StatusCode::METHOD_NOT_ALLOWED);
    let response = client
        .request(reqwest::Method::OPTIONS, &health)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "GET, HEAD, OPTIONS");

    for path in ["/trade/nothing", "/trade/collectors", "/nothing", "/"] {
        let response = client.get(server.url(path)).send().await.unwrap();
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, json!({"code": 404, "status": "Not Found"}));
    }
    // A method no access rule allows (here PUT on an activation) is refused as unknown.
    let response = client.put(&activate).send().await.unwrap();
    assert_eq!(json_of(response).await.0, StatusCode::NOT_FOUND);

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/trade/.docs", "/trade/.docs/"] {
        let response = no_redirects.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(response.headers()["location"], "/trade/.docs/swagger-ui/");
    }
    // Errors that actix-web gives by itself are JSON too: a body over the size limit.
    let response = client
        .post(&activate)
        .header("content-type", "application/json")
        .body(format!(
            "{{\"numberOfAccounts\": 1, \"x\": \"{}\"}}",
            "a".repeat(300_000)
        ))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body, json!({"code": 413, "status": "Payload Too Large"}));
    // HEAD works wherever GET does.
    let response = client
        .head(server.url("/trade/turns"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client
        .head(server.url("/trade/collectors/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // No CORS headers unless APP_ENABLE_CORS.
    let response = client
        .get(&health)
        .header("origin", "https://example.com")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn cors_answers_any_origin_when_enabled() {
    let db = TestDb::migrated(Database::Solver).await;
    let server = trusted(&db, &[("APP_ENABLE_CORS", "true")]).await;
    let client = reqwest::Client::new();
    let response = client
        .request(
            reqwest::Method::OPTIONS,
            server.url("/trade/collectors/1/activate"),
        )
        .header("origin", "https://example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(headers["access-control-max-age"], "86400");
    let response = client
        .get(server.url("/trade/health/check/public"))
        .header("origin", "https://example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("location"), "{exposed}");
}

#[tokio::test]
async fn a_trusted_proxys_header_names_the_caller() {
    let db = TestDb::migrated(Database::Solver).await;
    let server = trusted(&db, &[]).await;
    let client = reqwest::Client::new();
    let activate = server.url("/trade/collectors/9/activate");
    let cases = [
        (None, StatusCode::NO_CONTENT),
        (Some("creditors-superuser"), StatusCode::NO_CONTENT),
        (Some("creditors-supervisor"), StatusCode::NO_CONTENT),
        (Some("creditors:1"), StatusCode::FORBIDDEN),
        (Some("someone"), StatusCode::FORBIDDEN),
    ];
    for (user, expected) in cases {
        let mut request = client.post(&activate);
        if let Some(user) = user {
            request = request.header("x-swpt-user-id", user);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "{user:?}");
        if expected == StatusCode::FORBIDDEN {
            assert_eq!(
                response.text().await.unwrap(),
                r#"{"code":403,"status":"Forbidden"}"#
            );
        }
    }
    // Public paths need nobody.
    let response = client
        .get(server.url("/trade/health/check/public"))
        .header("x-swpt-user-id", "creditors:1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_image_entrypoint_runs_the_webserver_binary_alone() {
    let db = TestDb::migrated(Database::Solver).await;
    let port = crate::web_support::free_port().to_string();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_swpt-trade"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    let mut child = std::process::Command::new("sh")
        .args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/entrypoint.sh"),
            "webserver",
        ])
        .env_clear()
        .env("PATH", format!("{bin_dir}:/usr/bin:/bin"))
        .env("SOLVER_POSTGRES_URL", &db.url)
        .env("APP_TRUST_USER_ID_HEADER", "true")
        .env("WEBSERVER_PORT", &port)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let health = format!("http://127.0.0.1:{port}/trade/health/check/public");
    let up = crate::util::wait_for(20, async || {
        reqwest::get(&health)
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    // The shell replaced itself with the binary: no proxy, no process supervisor.
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "the webserver did not answer");
    assert_eq!(comm.trim(), "swpt-trade");
}

#[tokio::test]
async fn sigterm_stops_the_webserver_with_status_0() {
    let db = TestDb::migrated(Database::Solver).await;
    let server = trusted(&db, &[]).await;
    let health = server.url("/trade/health/check/public");
    assert_eq!(
        reqwest::get(&health).await.unwrap().status(),
        StatusCode::OK
    );
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap()
        .expect("the webserver stops within 10 s");
    assert_eq!(status.code(), Some(0));
    assert!(
        reqwest::get(&health).await.is_err(),
        "nothing listens any more"
    );
}
