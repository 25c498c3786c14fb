//! The OpenAPI document (compared with the checked-in `docs/openapi.json`) and Swagger UI,
//! served by the binary and used by a real browser (headless Chromium).
//!
//! After a deliberate change of the API, regenerate the document with
//! `UPDATE_OPENAPI=1 cargo test --test integration openapi`.

use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt as _, StreamExt as _};
use reqwest::StatusCode;
use serde_json::{Value, json};
use swpt_trade::db::Database;
use tokio_tungstenite::tungstenite::Message;

use crate::util::{TestDb, wait_for};
use crate::web_support::{WebServer, free_port};

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

fn generated() -> String {
    let doc = swpt_trade::web::openapi::document("Trade API", "v1");
    let mut text = serde_json::to_string_pretty(&doc).unwrap();
    text.push('\n');
    text
}

#[test]
fn the_openapi_document_matches_its_snapshot() {
    let text = generated();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(SNAPSHOT, &text).unwrap();
    }
    let snapshot = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        snapshot == text,
        "docs/openapi.json differs from the generated document; if the change is intended, run \
         `UPDATE_OPENAPI=1 cargo test --test integration openapi`"
    );
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let oauth2 = &doc["components"]["securitySchemes"]["oauth2"];
    assert_eq!(oauth2["type"], "oauth2");
    assert_eq!(
        oauth2["flows"]["clientCredentials"]["scopes"],
        json!({
            "access.readonly": "read-only access",
            "access": "read-write access",
            "activate": "activate new creditors",
            "deactivate": "deactivate existing creditors",
        })
    );
    let activate = &doc["paths"]["/trade/collectors/{debtorId}/activate"]["post"];
    assert_eq!(activate["operationId"], "activateCollectors");
    assert_eq!(activate["security"], json!([{"oauth2": ["activate"]}]));
    assert_eq!(
        doc["paths"]["/trade/turns"]["get"]["security"],
        json!([{"oauth2": ["access.readonly"]}])
    );
    let health = &doc["paths"]["/trade/health/check/public"]["get"];
    assert_eq!(health["operationId"], "checkHealth");
    assert!(health.get("security").is_none());
    let request = &doc["components"]["schemas"]["ActivateCollectorsRequest"]["properties"];
    assert_eq!(request["numberOfAccounts"]["format"], "int64");
    assert!(request.get("type").is_some());
}

#[tokio::test]
async fn swagger_ui_and_the_document_are_public() {
    let db = TestDb::migrated(Database::Solver).await;
    let server = WebServer::start(&[
        ("SOLVER_POSTGRES_URL", db.url.as_str()),
        ("OAUTH2_INTROSPECT_URL", "http://127.0.0.1:1/introspect"),
    ])
    .await;
    let served: Value = reqwest::get(server.url("/trade/.docs/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let generated: Value = serde_json::from_str(&generated()).unwrap();
    assert_eq!(served, generated);

    let response = reqwest::get(server.url("/trade/.docs/swagger-ui/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    let response = reqwest::get(server.url("/trade/.docs/swagger-ui/swagger-ui-bundle.js"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.contains("javascript"), "{content_type}");
    assert!(response.bytes().await.unwrap().len() > 100_000);
    let init = reqwest::get(server.url("/trade/.docs/swagger-ui/swagger-initializer.js"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/trade/.docs/openapi.json"), "{init}");
}

/// Headless Chromium with the DevTools protocol on a WebSocket.
struct Browser {
    child: std::process::Child,
    _profile: std::path::PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

/// Sends one DevTools command and waits for its result.
async fn call<S>(socket: &mut S, id: u64, method: &str, params: Value) -> Value
where
    S: futures::Sink<Message>
        + futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
    <S as futures::Sink<Message>>::Error: std::fmt::Debug,
{
    let command = json!({"id": id, "method": method, "params": params});
    socket
        .send(Message::Text(command.to_string().into()))
        .await
        .unwrap();
    while let Some(message) = socket.next().await {
        if let Message::Text(text) = message.unwrap() {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["id"] == id {
                assert!(value.get("error").is_none(), "{method}: {value}");
                return value["result"].clone();
            }
        }
    }
    panic!("the browser closed the connection");
}

/// Clicks through Swagger UI as a user would: waits for the operations, opens the health
/// check, "Try it out", "Execute", and returns the operation IDs and the response's status.
const TRY_IT_OUT: &str = r#"
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (f, ms) => {
    for (let t = 0; t < ms; t += 100) { const v = f(); if (v) return v; await sleep(100); }
    return null;
  };
  const listed = await until(() => document.querySelectorAll('.opblock').length >= 5, 20000);
  if (!listed) return { error: 'no operations listed', text: document.body.innerText.slice(0, 300) };
  const ids = [...document.querySelectorAll('.opblock')].map((e) => e.id);
  const health = document.getElementById('operations-health-checkHealth');
  health.querySelector('.opblock-summary-control').click();
  const tryOut = await until(() => health.querySelector('.try-out__btn'), 10000);
  if (!tryOut) return { error: 'no Try it out button', ids };
  tryOut.click();
  const execute = await until(() => health.querySelector('.btn.execute'), 10000);
  if (!execute) return { error: 'no Execute button', ids };
  execute.click();
  const status = await until(() => {
    const cell = health.querySelector('.live-responses-table tbody .response-col_status');
    return cell ? cell.innerText.trim() : null;
  }, 20000);
  const body = health.querySelector('.live-responses-table .response-col_description pre');
  return { ids, status, body: body ? body.innerText : null };
})()
"#;

#[tokio::test]
async fn a_browser_lists_the_operations_and_tries_the_health_check() {
    let chromium = std::env::var("TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let db = TestDb::migrated(Database::Solver).await;
    let server = WebServer::start(&[
        ("SOLVER_POSTGRES_URL", db.url.as_str()),
        ("APP_TRUST_USER_ID_HEADER", "true"),
    ])
    .await;
    let port = free_port();
    let profile = std::env::temp_dir().join(format!("swpt-chromium-{}-{port}", std::process::id()));
    let child = std::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1280,1600",
            &format!("--remote-debugging-port={port}"),
            &format!("--user-data-dir={}", profile.display()),
            "about:blank",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {chromium} ({e}): install Debian's chromium (scripts/test.sh does)")
        });
    let _browser = Browser {
        child,
        _profile: profile,
    };
    let list_url = format!("http://127.0.0.1:{port}/json/list");
    let mut page_ws = None;
    let found = wait_for(30, async || {
        let Ok(response) = reqwest::get(&list_url).await else {
            return false;
        };
        let targets: Value = response.json().await.unwrap_or_default();
        page_ws = targets.as_array().and_then(|ts| {
            ts.iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))
        });
        page_ws.is_some()
    })
    .await;
    assert!(found, "headless Chromium did not open its DevTools port");
    let (mut socket, _) = tokio_tungstenite::connect_async(page_ws.unwrap())
        .await
        .unwrap();
    call(&mut socket, 1, "Page.enable", json!({})).await;
    let page = server.url("/trade/.docs/swagger-ui/");
    call(&mut socket, 2, "Page.navigate", json!({"url": page})).await;
    let evaluated = tokio::time::timeout(
        Duration::from_secs(90),
        call(
            &mut socket,
            3,
            "Runtime.evaluate",
            json!({"expression": TRY_IT_OUT, "awaitPromise": true, "returnByValue": true}),
        ),
    )
    .await
    .expect("Swagger UI answered in time");
    let result = &evaluated["result"]["value"];
    let shot = call(
        &mut socket,
        4,
        "Page.captureScreenshot",
        json!({"format": "png"}),
    )
    .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    let target_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap();
    std::fs::write(target_dir.join("swagger-ui.png"), &png).unwrap();
    assert!(png.starts_with(b"\x89PNG"));

    assert!(result.get("error").is_none(), "{result}");
    let ids: Vec<&str> = result["ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for id in [
        "operations-collectors-activateCollectors",
        "operations-collectors-getCollectorAccounts",
        "operations-health-checkHealth",
        "operations-turns-getTurns",
        "operations-turns-getTurn",
    ] {
        assert!(ids.contains(&id), "{id} not listed in {ids:?}");
    }
    assert_eq!(result["status"], "200", "{result}");
    assert_eq!(result["body"], "I am healthy.", "{result}");
}
