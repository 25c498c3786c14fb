//! The binary's command line: the documented commands, and settings refused at start-up.

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swpt_trade::db::{Database, migrate};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::util::{TestDb, wait_for};

/// Runs the binary with exactly `vars` in its environment.
pub fn run_binary(args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swpt-trade"))
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("run swpt-trade")
}

const DOCUMENTED_COMMANDS: [&str; 47] = [
    "solver",
    "worker",
    "webserver",
    "configure",
    "await_migrations",
    "consume_messages",
    "flush_all",
    "flush_configure_accounts",
    "flush_prepare_transfers",
    "flush_finalize_transfers",
    "flush_fetch_debtor_infos",
    "flush_store_documents",
    "flush_discover_debtors",
    "flush_confirm_debtors",
    "flush_activate_collectors",
    "flush_candidate_offers",
    "flush_needed_collectors",
    "flush_revise_account_locks",
    "flush_trigger_transfers",
    "flush_account_id_requests",
    "flush_account_id_responses",
    "fetch_debtor_infos",
    "trigger_transfers",
    "subscribe",
    "unsubscribe",
    "delete_queue",
    "verify_shard_content",
    "roll_turns",
    "roll_worker_turns",
    "roll_transfers",
    "handle_pristine_collectors",
    "scan_all",
    "scan_debtor_info_documents",
    "scan_debtor_locator_claims",
    "scan_trading_policies",
    "scan_worker_accounts",
    "scan_interest_rate_changes",
    "scan_needed_worker_accounts",
    "scan_recently_needed_collectors",
    "scan_account_locks",
    "scan_creditor_participations",
    "scan_dispatching_statuses",
    "scan_worker_collectings",
    "scan_worker_sendings",
    "scan_worker_receivings",
    "scan_worker_dispatchings",
    "scan_transfer_attempts",
];

#[test]
fn help_lists_every_documented_command() {
    let out = run_binary(&["--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let listed: Vec<&str> = help
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next())
        .collect();
    for command in DOCUMENTED_COMMANDS {
        assert!(
            listed.contains(&command),
            "{command} missing from --help:\n{help}"
        );
        let sub = run_binary(&[command, "--help"], &[]);
        assert!(sub.status.success(), "{command} --help failed");
    }
}

#[test]
fn invalid_settings_stop_a_command_with_status_1() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("TURN_PERIOD", "1 m")], "TURN_PERIOD"),
        (
            &[("MIN_COLLECTOR_ID", "-1"), ("MAX_COLLECTOR_ID", "5")],
            "MIN_COLLECTOR_ID",
        ),
        (
            &[("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", "0.1")],
            "PROTOCOL_BROKER_QUEUE_ROUTING_KEY",
        ),
        (&[("TRANSFERS_AMOUNT_CUT", "0.5")], "TRANSFERS_AMOUNT_CUT"),
    ];
    for (vars, var) in cases {
        for command in ["configure", "worker", "await_migrations"] {
            let out = run_binary(&[command], vars);
            assert_eq!(out.status.code(), Some(1), "{command} with {vars:?}");
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            assert!(stderr.contains(var), "{stderr:?} should name {var}");
            assert!(
                stderr.contains(vars[0].1),
                "{stderr:?} should show the value"
            );
        }
    }
}

#[test]
fn invalid_log_settings_stop_a_command() {
    let out = run_binary(&["configure"], &[("APP_LOG_LEVEL", "loud")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("APP_LOG_LEVEL"));
    let out = run_binary(&["configure"], &[("APP_LOG_FORMAT", "xml")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("APP_LOG_FORMAT"));
}

#[test]
fn unknown_commands_and_options_are_usage_errors() {
    assert_eq!(run_binary(&["no_such_command"], &[]).status.code(), Some(2));
    assert_eq!(
        run_binary(&["configure", "everything"], &[]).status.code(),
        Some(2)
    );
}

#[test]
fn a_database_url_is_required_where_it_is_used() {
    let out = run_binary(&["configure", "solver"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SOLVER_POSTGRES_URL is not set"));
}

#[test]
fn log_lines_carry_the_command_in_both_formats() {
    let bad_db = [(
        "WORKER_POSTGRES_URL",
        "postgresql://postgres@127.0.0.1:1/none",
    )];
    let out = run_binary(
        &["verify_shard_content"],
        &[("APP_LOG_FORMAT", "json"), bad_db[0]],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().next().expect("an error is logged");
    let record: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(record["levelname"], "ERROR");
    assert_eq!(record["command"], "verify_shard_content");
    assert!(record["asctime"].as_str().unwrap().ends_with("+0000"));
    assert!(!record["message"].as_str().unwrap().is_empty());

    let out = run_binary(&["verify_shard_content"], &bad_db);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().next().expect("an error is logged");
    assert!(
        line.contains(":ERROR:swpt_trade.cli:[verify_shard_content] "),
        "{line}"
    );
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .starts_with("verify_shard_content: ")
    );
}

#[test]
fn solve_offline_keeps_stdout_for_its_summary_and_logs_to_stderr() {
    let out = run_binary(
        &[
            "solve_offline",
            "--input",
            "/nonexistent",
            "--output",
            "/tmp",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].contains(":ERROR:swpt_trade.cli:[solve_offline] ")
            && lines[0].contains("/nonexistent"),
        "{stderr}"
    );
    assert!(lines[1].starts_with("solve_offline: "), "{stderr}");
}

/// Starts `await_migrations` on these databases, logging at level info; its stdout lines are
/// collected in the returned list as they come.
fn spawn_await_migrations(
    solver: &TestDb,
    worker: &TestDb,
) -> (tokio::process::Child, Arc<Mutex<Vec<String>>>) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_swpt-trade"))
        .arg("await_migrations")
        .env_clear()
        .env("SOLVER_POSTGRES_URL", &solver.url)
        .env("WORKER_POSTGRES_URL", &worker.url)
        .env("APP_LOG_LEVEL", "info")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start swpt-trade");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let sink = lines.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stdout.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    (child, lines)
}

/// How many lines of `lines` contain `text`.
fn times_logged(lines: &Mutex<Vec<String>>, text: &str) -> usize {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(text))
        .count()
}

fn logged(lines: &Mutex<Vec<String>>, text: &str) -> bool {
    times_logged(lines, text) > 0
}

#[tokio::test]
async fn await_migrations_waits_until_both_databases_are_migrated() {
    let solver = TestDb::migrated(Database::Solver).await;
    let worker = TestDb::migrated(Database::Worker).await;

    // Both migrated: done at the first check, well within the 10 s polling interval.
    let started = Instant::now();
    let (mut child, lines) = spawn_await_migrations(&solver, &worker);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("exits at once")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        wait_for(5, async || logged(
            &lines,
            "All database migrations have been applied."
        ))
        .await
    );

    // One database without its migration: each process keeps waiting for its own.
    let (empty_solver, empty_worker) = (TestDb::empty().await, TestDb::empty().await);
    let (mut for_solver, solver_lines) = spawn_await_migrations(&empty_solver, &worker);
    let (mut for_worker, worker_lines) = spawn_await_migrations(&solver, &empty_worker);
    let pending = |db: &str| format!("Waiting for database migrations ({db}: pending ");
    assert!(
        wait_for(10, async || logged(&solver_lines, &pending("solver"))).await,
        "{:?}",
        solver_lines.lock().unwrap()
    );
    assert!(
        wait_for(10, async || logged(&worker_lines, &pending("worker"))).await,
        "{:?}",
        worker_lines.lock().unwrap()
    );
    assert!(for_solver.try_wait().unwrap().is_none(), "still waiting");
    assert!(for_worker.try_wait().unwrap().is_none(), "still waiting");

    // Migrated meanwhile: the next check, at most 10 s later, ends the wait.
    migrate::migrate(Database::Solver, &empty_solver.url)
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), for_solver.wait())
        .await
        .expect("exits once the solver database is migrated")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(logged(
        &solver_lines,
        "All database migrations have been applied."
    ));
    // The other one checks again, and waits on.
    assert!(
        wait_for(15, async || times_logged(&worker_lines, &pending("worker"))
            >= 2)
        .await,
        "{:?}",
        worker_lines.lock().unwrap()
    );
    assert!(for_worker.try_wait().unwrap().is_none(), "still waiting");
    assert!(!logged(
        &worker_lines,
        "All database migrations have been applied."
    ));
    for_worker.kill().await.unwrap();
}

#[test]
fn the_image_entrypoint_runs_every_documented_command_with_the_binary() {
    let dir = std::env::temp_dir().join(format!("swpt-entrypoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stub = dir.join("swpt-trade");
    std::fs::write(&stub, "#!/bin/sh\necho \"binary: $*\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", dir.display());
    let entrypoint = concat!(env!("CARGO_MANIFEST_DIR"), "/entrypoint.sh");
    for command in DOCUMENTED_COMMANDS.iter().chain(&["solve_offline"]) {
        let out = Command::new("sh")
            .args([entrypoint, command, "--quit-early"])
            .env_clear()
            .env("PATH", &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.trim(),
            format!("binary: {command} --quit-early"),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new("sh")
        .args([entrypoint, "echo", "verbatim"])
        .env_clear()
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "verbatim");
    let _ = std::fs::remove_dir_all(&dir);
}
