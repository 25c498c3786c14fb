//! Prometheus metrics: the webserver's `/metrics`, and those of `worker` and `solver` on
//! `APP_METRICS_PORT`, scraped and parsed after real requests, messages and turns.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use swpt_trade::db::Database;
use swpt_trade::sharding::bin_routing_key;
use swpt_trade::turns::schedule::epoch;

use crate::consumer::{Rig, account_update, updated_policy};
use crate::util::{TestDb, wait_for};
use crate::web_support::{WebServer, free_port};

/// The samples of a scrape: `name{labels}` → value; every line must parse.
fn samples(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line:?}"));
        samples.insert(key.to_owned(), value);
    }
    samples
}

async fn scrape(url: &str) -> Option<HashMap<String, f64>> {
    let response = reqwest::get(url).await.ok()?;
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Some(samples(&response.text().await.ok()?))
}

fn value(samples: &HashMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

/// A command of the binary, killed when dropped.
struct Process(Child);

impl Process {
    fn start(args: &[&str], vars: &[(&str, &str)]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_swpt-trade"))
            .args(args)
            .env_clear()
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self(child)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_webserver_counts_its_responses() {
    let db = TestDb::migrated(Database::Solver).await;
    let server = WebServer::start(&[
        ("SOLVER_POSTGRES_URL", db.url.as_str()),
        ("APP_TRUST_USER_ID_HEADER", "true"),
    ])
    .await;
    let before = scrape(&server.url("/metrics")).await.unwrap();
    let client = reqwest::Client::new();
    for _ in 0..5 {
        client
            .get(server.url("/trade/health/check/public"))
            .send()
            .await
            .unwrap();
    }
    client
        .get(server.url("/trade/nothing"))
        .send()
        .await
        .unwrap();
    client
        .post(server.url("/trade/collectors/1/activate"))
        .header("content-type", "application/json")
        .body("{\"x\": 1}")
        .send()
        .await
        .unwrap();
    let after = scrape(&server.url("/metrics")).await.unwrap();
    let ok = "swpt_trade_http_requests_total{status=\"200\"}";
    // The first scrape itself was one more 200.
    assert_eq!(value(&after, ok) - value(&before, ok), 6.0);
    let not_found = "swpt_trade_http_requests_total{status=\"404\"}";
    assert_eq!(value(&after, not_found) - value(&before, not_found), 1.0);
    let invalid = "swpt_trade_http_requests_total{status=\"422\"}";
    assert_eq!(value(&after, invalid) - value(&before, invalid), 1.0);
}

#[tokio::test]
async fn a_worker_counts_messages_and_flushed_rows() {
    let rig = Rig::new("#").await;
    let needed = 1_099_511_627_776;
    {
        use diesel_async::RunQueryDsl as _;
        diesel::sql_query(format!(
            "INSERT INTO needed_worker_account VALUES ({needed}, 666, now())"
        ))
        .execute(&mut rig.db.connect().await)
        .await
        .unwrap();
    }
    let port = free_port().to_string();
    let mut vars = rig.vars();
    vars.push(("APP_METRICS_PORT", port.clone()));
    vars.push(("FLUSH_PERIOD", "0.2".into()));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _worker = Process::start(&["worker"], &vars);
    for creditor in 1..=5 {
        rig.publish(creditor, updated_policy(creditor, 1)).await;
    }
    rig.publish(needed, account_update(needed, 1)).await;
    rig.publish_raw(
        &bin_routing_key(5),
        "UpdatedPolicy",
        "application/json",
        b"not json",
    )
    .await;
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut last = HashMap::new();
    let counted = wait_for(30, async || {
        let Some(now) = scrape(&url).await else {
            return false;
        };
        last = now;
        value(
            &last,
            "swpt_trade_messages_handled_total{type=\"UpdatedPolicy\"}",
        ) == 5.0
            && value(
                &last,
                "swpt_trade_messages_handled_total{type=\"AccountUpdate\"}",
            ) == 1.0
            && value(
                &last,
                "swpt_trade_outbox_flushed_total{kind=\"ActivateCollectorSignal\"}",
            ) == 1.0
    })
    .await;
    assert!(counted, "{last:?}");
    assert_eq!(
        value(
            &last,
            "swpt_trade_messages_consumed_total{type=\"UpdatedPolicy\"}"
        ),
        5.0
    );
    assert_eq!(
        value(
            &last,
            "swpt_trade_messages_dead_lettered_total{type=\"invalid\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &last,
            "swpt_trade_outbox_flushed_total{kind=\"DiscoverDebtorSignal\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn a_solver_counts_turn_phases() {
    let db = TestDb::migrated(Database::Solver).await;
    let period = Duration::from_secs(86_400);
    let since_epoch = (Utc::now() - epoch()).to_std().unwrap();
    let offset = since_epoch.as_secs_f64() % period.as_secs_f64();
    let offset = format!("{offset}s");
    let port = free_port().to_string();
    let _solver = Process::start(
        &["roll_turns", "-o", &offset, "-c", "1"],
        &[
            ("SOLVER_POSTGRES_URL", db.url.as_str()),
            ("BASE_DEBTOR_INFO_LOCATOR", "https://example.com/666"),
            ("BASE_DEBTOR_ID", "666"),
            ("TURN_PHASE1_DURATION", "0"),
            ("APP_METRICS_PORT", &port),
        ],
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut last = HashMap::new();
    let counted = wait_for(30, async || {
        let Some(now) = scrape(&url).await else {
            return false;
        };
        last = now;
        value(&last, "swpt_trade_turn_phase_changes_total{phase=\"2\"}") == 1.0
    })
    .await;
    assert!(counted, "{last:?}");
    assert_eq!(
        value(&last, "swpt_trade_turn_phase_changes_total{phase=\"1\"}"),
        1.0
    );
}
