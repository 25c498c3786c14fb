//! Settings refused at start-up, through the binary: bounds of counts and periods, values that
//! are not UTF-8, and passwords that must not be shown. Every case stops the command with
//! exit status 1 and one line on stderr before any I/O; the databases and the broker given
//! here are unreachable, so that a setting that is wrongly accepted fails differently.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::{Command, Output};

use super::cli::run_binary;

/// A command that would connect to the (unreachable) worker database right after start-up.
const COMMAND: &str = "verify_shard_content";

/// Unreachable servers, so that nothing is touched when a setting is wrongly accepted.
const UNREACHABLE: [(&str, &str); 2] = [
    (
        "WORKER_POSTGRES_URL",
        "postgresql://postgres@127.0.0.1:1/none",
    ),
    ("PROTOCOL_BROKER_URL", "amqp://guest:guest@127.0.0.1:1/"),
];

/// Runs [`COMMAND`] with `vars` over the unreachable servers.
fn run_with(vars: &[(&str, &str)]) -> Output {
    let mut all: Vec<(&str, &str)> = UNREACHABLE
        .iter()
        .copied()
        .filter(|(k, _)| !vars.iter().any(|(v, _)| v == k))
        .collect();
    all.extend_from_slice(vars);
    run_binary(&[COMMAND], &all)
}

/// The single stderr line of a command refused at start-up, after checking its status.
fn refusal(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
    assert!(
        stderr.starts_with(&format!("{COMMAND}: invalid value for ")),
        "{what}: {stderr}"
    );
    stderr
}

#[test]
fn counts_above_their_bounds_stop_the_command() {
    let cases = [
        ("PROTOCOL_BROKER_PROCESSES", "65536"),
        ("PROTOCOL_BROKER_PROCESSES", "65"),
        ("PROTOCOL_BROKER_THREADS", "30000000"),
        ("PROTOCOL_BROKER_THREADS", "1025"),
        ("PROTOCOL_BROKER_PREFETCH_COUNT", "10001"),
        ("APP_CONSUMER_BATCH_SIZE", "10001"),
        ("FLUSH_PROCESSES", "65"),
        ("HTTP_FETCH_PROCESSES", "65"),
        ("HTTP_FETCH_CONNECTIONS", "10001"),
        ("TRIGGER_TRANSFERS_PROCESSES", "65"),
        ("HANDLE_PRISTINE_COLLECTORS_THREADS", "1025"),
        ("WEBSERVER_PROCESSES", "65"),
        ("WEBSERVER_THREADS", "1025"),
        ("SOLVER_CLIENT_POOL_SIZE", "1001"),
        ("SQLALCHEMY_ENGINE_OPTIONS", "{\"pool_size\": 1001}"),
        ("APP_FLUSH_PREPARE_TRANSFERS_BURST_COUNT", "1000001"),
        ("APP_START_DISPATCHING_BURST_COUNT", "4294967295"),
        ("APP_DEBTOR_INFO_FETCH_BURST_COUNT", "1000001"),
        ("APP_RESCHEDULED_TRANSFERS_BURST_COUNT", "1000001"),
        ("APP_VERIFY_SHARD_YIELD_PER", "1000001"),
        ("APP_HANDLE_PRISTINE_COLLECTORS_MAX_COUNT", "1000001"),
    ];
    for (var, value) in cases {
        let out = run_with(&[(var, value)]);
        let line = refusal(&out, &format!("{var}={value}"));
        assert!(line.contains(var), "{line:?} should name {var}");
        assert!(line.contains("must be at most"), "{line:?}");
    }
    let out = run_with(&[("PROTOCOL_BROKER_THREADS", "30000000")]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!(
            "{COMMAND}: invalid value for PROTOCOL_BROKER_THREADS: \"30000000\" \
             (too large: must be at most 1024)"
        )
    );
}

#[test]
fn periods_that_would_overflow_dates_stop_the_command() {
    for (var, value) in [
        ("APP_INTEREST_RATE_HISTORY_PERIOD", "100000000d"),
        ("APP_TURN_MAX_COMMIT_PERIOD", "36501d"),
        ("TURN_PERIOD", "5300w"),
        ("TRANSFERS_HEALTHY_MAX_COMMIT_DELAY", "1e12"),
        ("APP_MAX_HEARTBEAT_DELAY_DAYS", "1e300"),
        ("APP_WORKER_DISPATCHING_SLACK_DAYS", "36501"),
    ] {
        let out = run_with(&[(var, value)]);
        let line = refusal(&out, &format!("{var}={value}"));
        assert!(line.contains(var), "{line:?} should name {var}");
        assert!(line.contains("36500 days"), "{line:?}");
    }
}

/// Runs [`COMMAND`] with `var` set to the bytes `value`.
fn run_with_bytes(var: &str, value: &[u8]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swpt-trade"))
        .arg(COMMAND)
        .env_clear()
        .envs(UNREACHABLE)
        .env(var, OsString::from_vec(value.to_vec()))
        .output()
        .expect("run swpt-trade")
}

#[test]
fn values_that_are_not_utf8_stop_the_command() {
    for (var, value) in [
        ("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", &b"1.\xff#"[..]),
        ("WORKER_POSTGRES_URL", b"postgresql://h\xc3/x"),
        ("FLUSH_PROCESSES", b"\x80"),
        ("APP_ENABLE_CORS", b"\xfe"),
        ("APP_LOG_LEVEL", b"info\xff"),
    ] {
        let out = run_with_bytes(var, value);
        let line = refusal(&out, var);
        assert!(line.contains(var), "{line:?} should name {var}");
        assert!(line.contains("(not valid UTF-8)"), "{line:?}");
    }
}

#[test]
fn passwords_are_masked_in_config_errors() {
    for (var, value, masked) in [
        (
            "WORKER_POSTGRES_URL",
            "postgresql://alice:S3cret@db:99999/x",
            "postgresql://alice:***@db:99999/x",
        ),
        (
            "SOLVER_POSTGRES_URL",
            "postgresql+psycopg://alice:S3cret@db:99999/x",
            "postgresql+psycopg://alice:***@db:99999/x",
        ),
        (
            "PROTOCOL_BROKER_URL",
            "amqp://alice:S3cret@rabbit:99999/",
            "amqp://alice:***@rabbit:99999/",
        ),
        (
            "PROTOCOL_BROKER_URL",
            "https://alice:S3cret@rabbit/",
            "https://alice:***@rabbit/",
        ),
        (
            "WORKER_POSTGRES_URL",
            "postgresql://alice:S3c/ret@db:99999/x",
            "postgresql://alice:***@db:99999/x",
        ),
    ] {
        let out = run_with(&[(var, value)]);
        let line = refusal(&out, var);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!line.contains("S3c"), "{line:?} shows the password");
        assert!(!stdout.contains("S3c"), "{stdout:?} shows the password");
        assert!(
            line.contains(&format!("invalid value for {var}: \"{masked}\"")),
            "{line:?}"
        );
    }
}

#[test]
fn new_settings_are_checked_at_start_up() {
    for (var, value) in [
        ("APP_DB_ACQUIRE_TIMEOUT_SECONDS", "0"),
        ("APP_DB_STATEMENT_TIMEOUT_SECONDS", "1e7"),
        ("APP_SHUTDOWN_TIMEOUT", "-1"),
    ] {
        let out = run_with(&[(var, value)]);
        let line = refusal(&out, &format!("{var}={value}"));
        assert!(line.contains(var), "{line:?} should name {var}");
    }
}
