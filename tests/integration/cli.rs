//! The binary's command line: the documented commands, and settings refused at start-up.

use std::process::{Command, Output};

/// Runs the binary with exactly `vars` in its environment.
pub fn run_binary(args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swpt-trade"))
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("run swpt-trade")
}

const DOCUMENTED_COMMANDS: [&str; 27] = [
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
fn commands_of_later_issues_say_so() {
    for command in [
        "solver",
        "webserver",
        "fetch_debtor_infos",
        "trigger_transfers",
    ] {
        let out = run_binary(&[command], &[]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            format!("{command}: not implemented yet")
        );
    }
}

#[test]
fn log_lines_carry_the_command_in_both_formats() {
    let bad_db = [(
        "WORKER_POSTGRES_URL",
        "postgresql://postgres@127.0.0.1:1/none",
    )];
    let out = run_binary(
        &["await_migrations", "--help"],
        &[("APP_LOG_FORMAT", "json"), ("APP_LOG_LEVEL", "info")],
    );
    assert!(out.status.success());
    let out = run_binary(
        &[
            "solve_offline",
            "--input",
            "/nonexistent",
            "--output",
            "/tmp",
        ],
        &[("APP_LOG_FORMAT", "json"), bad_db[0]],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().next().expect("an error is logged");
    let record: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(record["levelname"], "ERROR");
    assert_eq!(record["command"], "solve_offline");
    assert!(record["asctime"].as_str().unwrap().ends_with("+0000"));
    assert!(record["message"].as_str().unwrap().contains("/nonexistent"));

    let out = run_binary(
        &[
            "solve_offline",
            "--input",
            "/nonexistent",
            "--output",
            "/tmp",
        ],
        &bad_db,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().next().expect("an error is logged");
    assert!(
        line.contains(":ERROR:swpt_trade.cli:[solve_offline] "),
        "{line}"
    );
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .starts_with("solve_offline: ")
    );
}
