//! The flush commands as they run: the binary with `--quit-early`, and stop signals.

use std::process::{Command, Stdio};
use std::time::Duration;

use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use swpt_trade::outbox::SignalKind;
use tokio::process::Child;

use crate::cli::run_binary;
use crate::flush::{SMP_QUEUE, Setup, TRADE_QUEUE, needed_collectors};
use crate::outbox::{emit_all, one_of_each, pending};
use crate::util::wait_for;

/// The environment the binary needs for this setup's database and virtual host.
pub fn env_of(setup: &Setup) -> Vec<(&'static str, String)> {
    vec![
        ("WORKER_POSTGRES_URL", setup.db.url.clone()),
        ("PROTOCOL_BROKER_URL", setup.broker.url.clone()),
        ("APP_LOG_LEVEL", "info".into()),
    ]
}

fn run_flush(setup: &Setup, args: &[&str]) -> std::process::Output {
    let env = env_of(setup);
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_binary(args, &vars)
}

#[tokio::test]
async fn flush_all_quit_early_sends_everything_once_and_exits_0() {
    let setup = Setup::new("#", true).await;
    let mut conn = setup.db.connect().await;
    emit_all(&mut conn, &one_of_each()).await;
    let out = run_flush(&setup, &["flush_all", "--quit-early"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("Started flushing ConfigureAccountSignal, PrepareTransferSignal"));
    assert!(
        stdout.contains("StartSendingSignal, StartDispatchingSignal."),
        "{stdout}"
    );
    assert!(
        stdout.contains("16 signals have been successfully processed."),
        "{stdout}"
    );
    assert_eq!(setup.take(SMP_QUEUE).await.len(), 3);
    assert_eq!(setup.take(TRADE_QUEUE).await.len(), 13);
    for kind in SignalKind::ALL {
        assert!(
            pending(&mut conn, kind).await.is_empty(),
            "{kind} rows left"
        );
    }
}

#[tokio::test]
async fn a_flush_kind_command_sends_only_its_kind() {
    let setup = Setup::new("#", true).await;
    let mut conn = setup.db.connect().await;
    let messages = one_of_each();
    emit_all(&mut conn, &messages).await;
    let out = run_flush(
        &setup,
        &["flush_discover_debtors", "--quit-early", "-p", "2"],
    );
    assert_eq!(out.status.code(), Some(0));
    let trade = setup.take(TRADE_QUEUE).await;
    assert_eq!(trade.len(), 1);
    assert_eq!(trade[0].data, messages[5].to_json());
    assert!(
        pending(&mut conn, SignalKind::DiscoverDebtor)
            .await
            .is_empty()
    );
    assert_eq!(pending(&mut conn, SignalKind::ConfirmDebtor).await.len(), 1);
}

#[tokio::test]
async fn a_failed_pass_with_quit_early_exits_1_and_keeps_the_rows() {
    let setup = Setup::new("0.#", false).await;
    let mut conn = setup.db.connect().await;
    let unroutable = needed_collectors(123..=123);
    emit_all(&mut conn, &unroutable).await;
    let out = run_flush(&setup, &["flush_needed_collectors", "--quit-early"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("Caught error while sending pending signals."),
        "{stdout}"
    );
    assert!(stdout.contains("returned messages"), "{stdout}");
    assert_eq!(
        pending(&mut conn, SignalKind::NeededCollector).await,
        unroutable
    );
}

/// Starts the binary; it is killed if the test ends first.
fn spawn_flush(setup: &Setup, args: &[&str]) -> Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_swpt-trade"))
        .args(args)
        .env_clear()
        .envs(env_of(setup))
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start swpt-trade")
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits up to `limit` for `child` to exit and returns its exit code.
async fn exit_code(child: &mut Child, limit: Duration) -> Option<i32> {
    let status = tokio::time::timeout(limit, child.wait())
        .await
        .unwrap_or_else(|_| panic!("swpt-trade did not exit within {limit:?}"));
    status.unwrap().code()
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The rows in `kind`'s table, locked or not (without locking any).
pub async fn count_rows(conn: &mut AsyncPgConnection, kind: SignalKind) -> usize {
    let sql = format!("SELECT count(*) AS n FROM {}", kind.table_name());
    let count: Count = diesel::sql_query(sql).get_result(conn).await.unwrap();
    count.n as usize
}

/// Waits up to `secs` seconds until `kind`'s table is empty; whether it became empty.
pub async fn all_sent(conn: &mut AsyncPgConnection, kind: SignalKind, secs: u64) -> bool {
    wait_for(secs, async || count_rows(conn, kind).await == 0).await
}

#[tokio::test]
async fn sigterm_stops_the_flushers_with_status_0() {
    let setup = Setup::new("#", false).await;
    let mut conn = setup.db.connect().await;
    emit_all(&mut conn, &needed_collectors(1..=20)).await;
    let mut child = spawn_flush(&setup, &["flush_all", "-w", "0.1", "-p", "2"]);
    assert!(
        all_sent(&mut conn, SignalKind::NeededCollector, 30).await,
        "not flushed"
    );
    terminate(&child);
    assert_eq!(
        exit_code(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
    assert_eq!(setup.take(TRADE_QUEUE).await.len(), 20);
}

#[tokio::test]
async fn zero_processes_idle_until_sigterm() {
    let setup = Setup::new("#", false).await;
    let mut conn = setup.db.connect().await;
    emit_all(&mut conn, &needed_collectors(1..=2)).await;
    let mut child = spawn_flush(&setup, &["flush_all", "-p", "0", "-w", "0.1"]);
    // Nothing may happen: no exit and no flushing, for several flush periods.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(count_rows(&mut conn, SignalKind::NeededCollector).await, 2);
    terminate(&child);
    assert_eq!(
        exit_code(&mut child, Duration::from_secs(10)).await,
        Some(0)
    );
}
