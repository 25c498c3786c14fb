use std::collections::HashMap;
use std::time::Duration;

use super::parse::*;
use super::*;
use crate::outbox::SignalKind;

fn config_with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |k: &str| map.get(k).cloned();
    Config::from_lookup(&lookup)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn durations_follow_the_reference_syntax() {
    assert_eq!(parse_duration("1d").unwrap(), secs(86_400.0));
    assert_eq!(parse_duration("2.5h").unwrap(), secs(9000.0));
    assert_eq!(parse_duration("60s").unwrap(), secs(60.0));
    assert_eq!(parse_duration("20").unwrap(), secs(20.0));
    assert_eq!(parse_duration(".5d").unwrap(), secs(43_200.0));
    assert_eq!(parse_duration("1.d").unwrap(), secs(86_400.0));
    assert_eq!(parse_duration("1e2s").unwrap(), secs(100.0));
    assert_eq!(parse_duration("5e-1h").unwrap(), secs(1800.0));
    assert_eq!(parse_duration("+5m").unwrap(), secs(300.0));
    assert_eq!(parse_duration("2w").unwrap(), secs(14.0 * 86_400.0));
    assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    assert_eq!(parse_duration("10m  ").unwrap(), secs(600.0));
    assert_eq!(parse_duration("10m\n").unwrap(), secs(600.0));
    assert_eq!(parse_duration("0.0000004").unwrap(), Duration::ZERO);
    assert_eq!(
        parse_duration("0.0000006").unwrap(),
        Duration::from_micros(1)
    );
    for bad in [
        " 1", "1 m", "1M", "", "-1s", "1e", "1.2.3", "m", "1x", "1mm", "inf", "1e400",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
    }
    assert_eq!(
        parse_duration("1 m").unwrap_err(),
        "invalid time interval: 1 m"
    );
}

#[test]
fn ids_follow_python_integer_literals() {
    assert_eq!(parse_id("4294967296").unwrap(), 4_294_967_296);
    assert_eq!(parse_id("0x100000000").unwrap(), 4_294_967_296);
    assert_eq!(parse_id("0X1_0").unwrap(), 16);
    assert_eq!(parse_id("0x_ff").unwrap(), 255);
    assert_eq!(parse_id("0o17").unwrap(), 15);
    assert_eq!(parse_id("0b101").unwrap(), 5);
    assert_eq!(parse_id("1_000").unwrap(), 1000);
    assert_eq!(parse_id(" 42 ").unwrap(), 42);
    assert_eq!(parse_id("-5").unwrap(), -5);
    assert_eq!(parse_id("+5").unwrap(), 5);
    assert_eq!(parse_id("0").unwrap(), 0);
    assert_eq!(parse_id("00").unwrap(), 0);
    assert_eq!(parse_id("True").unwrap(), 1);
    assert_eq!(parse_id("False").unwrap(), 0);
    assert_eq!(parse_id("0x7fffffffffffffff").unwrap(), i64::MAX);
    assert_eq!(parse_id("0x8000000000000000").unwrap(), i64::MIN);
    assert_eq!(parse_id("0xffffffffffffffff").unwrap(), -1);
    assert_eq!(parse_id("18446744073709551615").unwrap(), -1);
    assert_eq!(parse_id("-9223372036854775808").unwrap(), i64::MIN);
    for bad in [
        "0x10000000000000000",
        "18446744073709551616",
        "-9223372036854775809",
        "1.5",
        "",
        "abc",
        "010",
        "1__0",
        "_1",
        "1_",
        "0x",
        "0xg",
        "true",
        "- 5",
    ] {
        assert!(parse_id(bad).is_err(), "{bad:?} should be rejected");
    }
    assert_eq!(
        parse_id("1.5").unwrap_err(),
        "Invalid creditor/debtor ID: 1.5"
    );
}

#[test]
fn integers_floats_and_booleans_follow_python() {
    assert_eq!(parse_int(" 12 ").unwrap(), 12);
    assert_eq!(parse_int("-3").unwrap(), -3);
    assert_eq!(parse_int("1_000").unwrap(), 1000);
    assert_eq!(parse_int("010").unwrap(), 10);
    for bad in ["1.5", "0x10", "", "1e3", "1__0", "12a"] {
        assert!(parse_int(bad).is_err(), "{bad:?} should be rejected");
    }
    assert_eq!(parse_count::<u32>("7").unwrap(), 7);
    assert!(parse_count::<u32>("-1").is_err());
    assert!(parse_count::<u16>("70000").is_err());

    assert_eq!(parse_float("1e-5").unwrap(), 1e-5);
    assert_eq!(parse_float(" 2 ").unwrap(), 2.0);
    assert_eq!(parse_float("1_0.5").unwrap(), 10.5);
    assert!(parse_float("inf").unwrap().is_infinite());
    assert!(parse_float("NaN").unwrap().is_nan());
    for bad in ["", "2s", "1,5", "0x10", "e5"] {
        assert!(parse_float(bad).is_err(), "{bad:?} should be rejected");
    }
    assert!(parse_float_min("inf", 0.0).is_err());
    assert!(parse_float_min("-1", 0.0).is_err());
    assert_eq!(parse_seconds("1.5").unwrap(), secs(1.5));
    assert!(parse_seconds("2s").is_err());

    for falsy in ["false", "FALSE", "Off", "no", ""] {
        assert!(!parse_bool(falsy), "{falsy:?} is false");
    }
    for truthy in ["true", "0", "yes", "1", "whatever"] {
        assert!(parse_bool(truthy), "{truthy:?} is true");
    }
}

#[test]
fn database_urls_accept_the_reference_form() {
    assert_eq!(
        parse_db_url("postgresql+psycopg://u:p@localhost:5435/test").unwrap(),
        "postgresql://u:p@localhost:5435/test"
    );
    assert_eq!(
        parse_db_url("postgres://h/db").unwrap(),
        "postgresql://h/db"
    );
    assert_eq!(
        parse_db_url("postgresql://h/db").unwrap(),
        "postgresql://h/db"
    );
    assert!(parse_db_url("mysql://h/db").is_err());
    assert!(parse_db_url("localhost:5432").is_err());
    assert!(parse_db_url("").is_err());
    assert!(parse_amqp_url("amqp://guest:guest@localhost:5672").is_ok());
    assert!(parse_amqp_url("http://localhost").is_err());
    assert!(parse_amqp_url("INVALID").is_err());
}

#[test]
fn defaults_match_the_reference() {
    let c = config_with(&[]).unwrap();
    assert_eq!(c.worker.min_collector_id, 0x0000_0100_0000_0000);
    assert_eq!(c.worker.max_collector_id, 0x0000_0100_0000_07ff);
    assert_eq!(c.turn.period, secs(86_400.0));
    assert_eq!(c.turn.period_offset, secs(7200.0));
    assert_eq!(c.turn.check_interval, secs(60.0));
    assert_eq!(c.turn.phase1_duration, secs(600.0));
    assert_eq!(c.turn.phase2_duration, secs(3600.0));
    assert_eq!(c.turn.max_distance_to_base, 10);
    assert_eq!(c.turn.min_trade_amount, 1000);
    assert_eq!(c.worker.transfers_amount_cut, 1e-5);
    assert_eq!(c.worker.transfers_healthy_max_commit_delay, secs(7200.0));
    assert_eq!(c.broker.url, "amqp://guest:guest@localhost:5672");
    assert_eq!(c.broker.queue, "swpt_trade");
    assert_eq!(c.broker.queue_routing_key, "#");
    assert_eq!((c.broker.processes, c.broker.threads), (1, 1));
    assert_eq!((c.broker.prefetch_count, c.broker.prefetch_size), (1, 0));
    assert_eq!(c.processes.flush_period, secs(2.0));
    assert_eq!(c.processes.http_fetch_connections, 100);
    assert!(
        SignalKind::ALL
            .iter()
            .all(|&k| c.processes.burst_count(k) == 10_000)
    );
    assert_eq!(c.db.acquire_timeout, secs(30.0));
    assert_eq!(c.db.statement_timeout, Some(secs(600.0)));
    assert_eq!(c.processes.shutdown_timeout, secs(30.0));
    assert_eq!(c.scans.len(), 15);
    assert_eq!(c.scans["WORKER_SENDINGS"].days, 1.0);
    assert_eq!(c.db.solver_url, None);
    assert_eq!(c.db.worker_url, "postgresql://localhost/postgres");
    assert_eq!(c.web.port, 8080);
    assert!(!c.setup_rabbitmq_bindings);
    assert!(!c.worker.delete_parent_shard_records);
}

#[test]
fn settings_are_read_from_the_environment() {
    let c = config_with(&[
        ("TURN_PERIOD", "2.5h"),
        ("MIN_COLLECTOR_ID", "0xffffffffffffff00"),
        ("MAX_COLLECTOR_ID", "-1"),
        ("BASE_DEBTOR_ID", "666"),
        (
            "SOLVER_POSTGRES_URL",
            "postgresql+psycopg://s:s@localhost:5435/test",
        ),
        ("SOLVER_CLIENT_POOL_SIZE", "0"),
        ("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", "0.1.#"),
        ("APP_INTEREST_RATE_CHANGES_SCAN_DAYS", "3"),
        ("APP_FLUSH_PREPARE_TRANSFERS_BURST_COUNT", "5"),
        ("SETUP_RABBITMQ_BINDINGS", "yes"),
        ("DELETE_PARENT_SHARD_RECORDS", "0"),
    ])
    .unwrap();
    assert_eq!(c.turn.period, secs(9000.0));
    assert_eq!(
        (c.worker.min_collector_id, c.worker.max_collector_id),
        (-256, -1)
    );
    assert_eq!(c.turn.base_debtor_id, Some(666));
    assert_eq!(
        c.db.solver_url.as_deref(),
        Some("postgresql://s:s@localhost:5435/test")
    );
    assert_eq!(c.db.solver_pool_size, Some(0));
    assert_eq!(c.sharding_realm.bit_count(), 2);
    assert_eq!(c.scans["INTEREST_RATE_CHANGES"].days, 3.0);
    assert_eq!(c.processes.burst_count(SignalKind::PrepareTransfer), 5);
    assert_eq!(c.processes.burst_count(SignalKind::StartSending), 10_000);
    assert!(c.setup_rabbitmq_bindings);
    assert!(
        c.worker.delete_parent_shard_records,
        "the reference treats \"0\" as true"
    );
}

#[test]
fn bad_values_name_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("TURN_PERIOD", "1 m")], "TURN_PERIOD"),
        (
            &[("MIN_COLLECTOR_ID", "-1"), ("MAX_COLLECTOR_ID", "5")],
            "MIN_COLLECTOR_ID",
        ),
        (
            &[("MIN_COLLECTOR_ID", "10"), ("MAX_COLLECTOR_ID", "5")],
            "MAX_COLLECTOR_ID",
        ),
        (&[("MIN_COLLECTOR_ID", "0")], "MIN_COLLECTOR_ID"),
        (
            &[("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", "0.1")],
            "PROTOCOL_BROKER_QUEUE_ROUTING_KEY",
        ),
        (
            &[(
                "PROTOCOL_BROKER_QUEUE_ROUTING_KEY",
                "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.#",
            )],
            "PROTOCOL_BROKER_QUEUE_ROUTING_KEY",
        ),
        (&[("TRANSFERS_AMOUNT_CUT", "0.5")], "TRANSFERS_AMOUNT_CUT"),
        (&[("TRANSFERS_AMOUNT_CUT", "1e-11")], "TRANSFERS_AMOUNT_CUT"),
        (&[("MIN_TRADE_AMOUNT", "9")], "MIN_TRADE_AMOUNT"),
        (
            &[("APP_LOCATOR_CLAIM_EXPIRY_DAYS", "29")],
            "APP_LOCATOR_CLAIM_EXPIRY_DAYS",
        ),
        (
            &[("APP_DEBTOR_INFO_EXPIRY_DAYS", "0.5")],
            "APP_DEBTOR_INFO_EXPIRY_DAYS",
        ),
        (
            &[("APP_DEBTOR_INFO_EXPIRY_DAYS", "10")],
            "APP_LOCATOR_CLAIM_EXPIRY_DAYS",
        ),
        (
            &[("APP_INTEREST_RATE_HISTORY_PERIOD", "29d")],
            "APP_INTEREST_RATE_HISTORY_PERIOD",
        ),
        (
            &[("APP_INTEREST_RATE_CHANGES_SCAN_DAYS", "1.5")],
            "APP_INTEREST_RATE_CHANGES_SCAN_DAYS",
        ),
        (&[("FLUSH_PERIOD", "2s")], "FLUSH_PERIOD"),
        (
            &[("PROTOCOL_BROKER_THREADS", "0")],
            "PROTOCOL_BROKER_THREADS",
        ),
        (
            &[("PROTOCOL_BROKER_PREFETCH_COUNT", "70000")],
            "PROTOCOL_BROKER_PREFETCH_COUNT",
        ),
        (
            &[("SOLVER_POSTGRES_URL", "mysql://x/y")],
            "SOLVER_POSTGRES_URL",
        ),
        (
            &[("WORKER_POSTGRES_URL", "nonsense")],
            "WORKER_POSTGRES_URL",
        ),
        (&[("PROTOCOL_BROKER_URL", "INVALID")], "PROTOCOL_BROKER_URL"),
        (&[("BASE_DEBTOR_ID", "1.5")], "BASE_DEBTOR_ID"),
        (
            &[("SQLALCHEMY_ENGINE_OPTIONS", "{bad")],
            "SQLALCHEMY_ENGINE_OPTIONS",
        ),
        (&[("WEBSERVER_PORT", "70000")], "WEBSERVER_PORT"),
        (
            &[("OAUTH2_INTROSPECT_URL", "ftp://x/y")],
            "OAUTH2_INTROSPECT_URL",
        ),
        (
            &[("OAUTH2_INTROSPECT_URL", "not a url")],
            "OAUTH2_INTROSPECT_URL",
        ),
        (
            &[("TOKEN_INTROSPECTION_CACHE_MAX_COST", "0")],
            "TOKEN_INTROSPECTION_CACHE_MAX_COST",
        ),
        (
            &[("APP_TOKEN_INTROSPECTION_TIMEOUT_SECONDS", "0")],
            "APP_TOKEN_INTROSPECTION_TIMEOUT_SECONDS",
        ),
        (&[("APP_METRICS_PORT", "0")], "APP_METRICS_PORT"),
        (&[("APP_METRICS_PORT", "65536")], "APP_METRICS_PORT"),
    ];
    for (vars, var) in cases {
        let err = config_with(vars).expect_err(&format!("{vars:?} should be rejected"));
        let line = err.to_string();
        assert!(line.contains(var), "{line:?} should name {var}");
        assert!(!line.contains('\n'), "{line:?} should be one line");
        if let [(v, value)] = vars
            && v == var
        {
            assert!(err.var.contains(v), "{line:?}");
            assert!(err.value.contains(value), "{line:?}");
        }
    }
}

/// The variables of `.env.example` with their values, and whether the line is commented out
/// (an example rather than the default).
fn env_example() -> Vec<(String, String, bool)> {
    let text = include_str!("../../.env.example");
    let is_name = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    text.lines()
        .filter_map(|l| {
            let (commented, line) = match l.strip_prefix('#') {
                Some(rest) => (true, rest),
                None => (false, l),
            };
            let (k, v) = line.split_once('=')?;
            is_name(k).then(|| (k.to_string(), v.to_string(), commented))
        })
        .collect()
}

#[test]
fn env_example_lists_every_variable_with_its_default() {
    let asked = std::cell::RefCell::new(Vec::new());
    let lookup = |k: &str| {
        asked.borrow_mut().push(k.to_string());
        None
    };
    Config::from_lookup(&lookup).unwrap();
    crate::telemetry::LogSettings::from_lookup(&lookup).unwrap();
    let example = env_example();
    for var in asked.borrow().iter() {
        assert!(
            example.iter().any(|(k, _, _)| k == var),
            "{var} is missing from .env.example"
        );
    }
    // Uncommented values are the defaults (SOLVER_POSTGRES_URL has none: it is an example).
    let defaults: Vec<(String, String)> = example
        .into_iter()
        .filter(|(k, _, commented)| !commented && k != "SOLVER_POSTGRES_URL")
        .map(|(k, v, _)| (k, v))
        .collect();
    let lookup = |k: &str| {
        defaults
            .iter()
            .find(|(v, _)| v == k)
            .map(|(_, value)| value.clone())
    };
    let documented = Config::from_lookup(&lookup).unwrap();
    assert_eq!(
        format!("{documented:?}"),
        format!("{:?}", config_with(&[]).unwrap())
    );
}

/// `var=value` alone, and the error it gives (which must name `var`), if any.
fn error_of(var: &str, value: &str) -> Option<ConfigError> {
    let err = config_with(&[(var, value)]).err()?;
    let line = err.to_string();
    assert!(line.contains(var), "{line:?} should name {var}");
    assert!(!line.contains('\n'), "{line:?} should be one line");
    Some(err)
}

/// Every count that sizes tasks, connections, pools or batches, with its bound.
fn bounded_counts() -> Vec<(&'static str, u64)> {
    let mut counts = vec![
        ("PROTOCOL_BROKER_PROCESSES", u64::from(MAX_PROCESSES)),
        ("PROTOCOL_BROKER_THREADS", MAX_THREADS.into()),
        ("FLUSH_PROCESSES", MAX_PROCESSES.into()),
        ("HTTP_FETCH_PROCESSES", MAX_PROCESSES.into()),
        ("HTTP_FETCH_CONNECTIONS", MAX_CONNECTIONS.into()),
        ("TRIGGER_TRANSFERS_PROCESSES", MAX_PROCESSES.into()),
        ("HANDLE_PRISTINE_COLLECTORS_THREADS", MAX_THREADS.into()),
        ("WEBSERVER_PROCESSES", MAX_PROCESSES.into()),
        ("WEBSERVER_THREADS", MAX_THREADS.into()),
        ("SOLVER_CLIENT_POOL_SIZE", MAX_POOL_SIZE as u64),
        ("APP_CONSUMER_BATCH_SIZE", MAX_CONSUMER_BATCH_SIZE.into()),
        ("PROTOCOL_BROKER_PREFETCH_COUNT", MAX_PREFETCH_COUNT.into()),
        ("APP_VERIFY_SHARD_YIELD_PER", MAX_ROWS_PER_QUERY.into()),
        (
            "APP_HANDLE_PRISTINE_COLLECTORS_MAX_COUNT",
            MAX_ROWS_PER_QUERY.into(),
        ),
        ("APP_DEBTOR_INFO_FETCH_BURST_COUNT", MAX_BURST_COUNT.into()),
        (
            "APP_RESCHEDULED_TRANSFERS_BURST_COUNT",
            MAX_BURST_COUNT.into(),
        ),
    ];
    for kind in SignalKind::ALL {
        counts.push((kind.burst_count_var(), MAX_BURST_COUNT.into()));
    }
    counts
}

#[test]
fn counts_have_upper_bounds() {
    for (var, max) in bounded_counts() {
        assert!(
            error_of(var, &max.to_string()).is_none(),
            "{var}={max} is allowed"
        );
        for too_many in [max + 1, 30_000_000, 65_536, u64::from(u32::MAX) + 1] {
            if too_many <= max {
                continue;
            }
            let err = error_of(var, &too_many.to_string())
                .unwrap_or_else(|| panic!("{var}={too_many} should be refused"));
            assert_eq!(err.var, var);
            assert_eq!(err.value, too_many.to_string());
        }
    }
    let err = error_of("PROTOCOL_BROKER_THREADS", "30000000").unwrap();
    assert_eq!(
        err.to_string(),
        "invalid value for PROTOCOL_BROKER_THREADS: \"30000000\" (too large: must be at most 1024)"
    );
    // The pool size inside SQLALCHEMY_ENGINE_OPTIONS.
    let ok = format!("{{\"pool_size\": {MAX_POOL_SIZE}}}");
    assert!(error_of("SQLALCHEMY_ENGINE_OPTIONS", &ok).is_none());
    let too_big = format!("{{\"pool_size\": {}}}", MAX_POOL_SIZE + 1);
    assert!(error_of("SQLALCHEMY_ENGINE_OPTIONS", &too_big).is_some());
    assert!(error_of("SQLALCHEMY_ENGINE_OPTIONS", "{\"pool_size\": 1e30}").is_some());
}

#[test]
fn counts_documented_in_env_example_state_their_bounds() {
    let text = include_str!("../../.env.example");
    for max in [
        u64::from(MAX_PROCESSES),
        MAX_THREADS.into(),
        MAX_CONNECTIONS.into(),
        MAX_POOL_SIZE as u64,
        MAX_PREFETCH_COUNT.into(),
        MAX_CONSUMER_BATCH_SIZE.into(),
        MAX_BURST_COUNT.into(),
        MAX_ROWS_PER_QUERY.into(),
    ] {
        assert!(
            text.contains(&format!("at most {max}")),
            ".env.example should state the bound {max}"
        );
    }
}

#[test]
fn command_line_counts_are_checked_like_settings() {
    assert_eq!(check_count("--processes", 64u32, MAX_PROCESSES), Ok(64));
    let err = check_count("--processes", 65_536u32, MAX_PROCESSES).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value for --processes: \"65536\" (too large: must be at most 64)"
    );
    assert!(check_count("-t", 30_000_000u32, MAX_THREADS).is_err());
}

#[test]
fn burst_counts_are_read_by_signal_kind() {
    let values: Vec<(&str, String)> = SignalKind::ALL
        .iter()
        .enumerate()
        .map(|(i, k)| (k.burst_count_var(), (i + 1).to_string()))
        .collect();
    let vars: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let c = config_with(&vars).unwrap();
    for (i, kind) in SignalKind::ALL.into_iter().enumerate() {
        assert_eq!(c.processes.burst_count(kind) as usize, i + 1, "{kind}");
    }
    let mut counts = BurstCounts::uniform(3);
    counts.set(SignalKind::StartDispatching, 9);
    assert_eq!(counts.get(SignalKind::StartDispatching), 9);
    assert_eq!(counts.get(SignalKind::ConfigureAccount), 3);
}

#[cfg(unix)]
#[test]
fn values_that_are_not_utf8_are_errors() {
    use std::os::unix::ffi::OsStringExt;
    let lookup = |k: &str| match k {
        "PROTOCOL_BROKER_QUEUE_ROUTING_KEY" => {
            Some(std::ffi::OsString::from_vec(b"1.\xff#".to_vec()))
        }
        _ => None,
    };
    let err = Config::from_reader(&EnvReader::from_os(&lookup)).unwrap_err();
    assert_eq!(err.var, "PROTOCOL_BROKER_QUEUE_ROUTING_KEY");
    assert_eq!(err.reason, "not valid UTF-8");
    assert_eq!(err.value, "1.\u{fffd}#");

    // Every variable is read that way, also those that are taken verbatim or as booleans.
    for var in [
        "API_TITLE",
        "SETUP_RABBITMQ_BINDINGS",
        "APP_ENABLE_CORS",
        "APP_LOG_LEVEL",
    ] {
        let lookup = |k: &str| (k == var).then(|| std::ffi::OsString::from_vec(vec![0x80]));
        let reader = EnvReader::from_os(&lookup);
        let err = if var == "APP_LOG_LEVEL" {
            crate::telemetry::LogSettings::from_reader(&reader).unwrap_err()
        } else {
            Config::from_reader(&reader).unwrap_err()
        };
        assert_eq!(err.var, var);
    }
    // Valid UTF-8 from the OS reads like text.
    let lookup = |k: &str| (k == "FLUSH_PROCESSES").then(|| "3".into());
    let c = Config::from_reader(&EnvReader::from_os(&lookup)).unwrap();
    assert_eq!(c.processes.flush_processes, 3);
}

#[test]
fn config_errors_and_debug_output_mask_passwords() {
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
            "http://alice:S3cret@rabbit/",
            "http://alice:***@rabbit/",
        ),
        (
            "WORKER_POSTGRES_URL",
            "mysql://alice:S3/cret@db/x",
            "mysql://alice:***@db/x",
        ),
    ] {
        let err = error_of(var, value).expect("refused");
        assert_eq!(err.value, masked);
        assert!(!err.to_string().contains("S3"), "{err}");
    }
    let err = ConfigError::new("OAUTH2_INTROSPECT_URL", "https://u:S3cret@h/i", "bad");
    assert!(!err.to_string().contains("S3cret"), "{err}");

    let c = config_with(&[
        (
            "OAUTH2_INTROSPECT_URL",
            "http://hydra:S3cret@h:4445/oauth2/introspect",
        ),
        (
            "BASE_DEBTOR_INFO_LOCATOR",
            "https://u:S3cret@currencies.example/USD",
        ),
        ("SOLVER_POSTGRES_URL", "postgresql://alice:S3cret@db/x"),
        ("WORKER_POSTGRES_URL", "postgresql://alice:S3cret@db/x"),
        ("PROTOCOL_BROKER_URL", "amqp://alice:S3cret@rabbit/"),
    ])
    .unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("S3cret"), "{debug}");
    assert!(
        debug.contains("http://hydra:***@h:4445/oauth2/introspect"),
        "{debug}"
    );
}

#[test]
fn periods_added_to_dates_are_bounded() {
    let durations = [
        "TURN_PERIOD",
        "TURN_PERIOD_OFFSET",
        "TURN_CHECK_INTERVAL",
        "TURN_PHASE1_DURATION",
        "TURN_PHASE2_DURATION",
        "TRANSFERS_HEALTHY_MAX_COMMIT_DELAY",
        "APP_TURN_MAX_COMMIT_PERIOD",
        "APP_TURN_PHASE_CUSHION_PERIOD",
        "APP_INTEREST_RATE_HISTORY_PERIOD",
    ];
    for var in durations {
        for too_long in ["100000000d", "36501d", "5216w", "3153600001"] {
            let err = error_of(var, too_long)
                .unwrap_or_else(|| panic!("{var}={too_long} should be refused"));
            assert_eq!(err.var, var);
            assert!(err.reason.contains("36500 days"), "{err}");
        }
    }
    let mut days = vec![
        "APP_ACCOUNT_LOCK_MAX_DAYS",
        "APP_RELEASED_ACCOUNT_LOCK_MAX_DAYS",
        "APP_LOCATOR_CLAIM_EXPIRY_DAYS",
        "APP_EXTREME_MESSAGE_DELAY_DAYS",
        "APP_MAX_HEARTBEAT_DELAY_DAYS",
        "APP_WORKER_COLLECTING_SLACK_DAYS",
        "APP_WORKER_SENDING_SLACK_DAYS",
        "APP_WORKER_DISPATCHING_SLACK_DAYS",
    ];
    let scan_days: Vec<String> = SCAN_TABLES
        .iter()
        .map(|(group, _, _)| format!("APP_{group}_SCAN_DAYS"))
        .collect();
    days.extend(scan_days.iter().map(String::as_str));
    for var in days {
        assert!(error_of(var, "36500").is_none(), "{var}=36500 is allowed");
        for too_long in ["36501", "1e300"] {
            let err = error_of(var, too_long)
                .unwrap_or_else(|| panic!("{var}={too_long} should be refused"));
            assert_eq!(err.var, var);
        }
    }
    // APP_DEBTOR_INFO_EXPIRY_DAYS is also bounded (its own start-up check comes later).
    assert_eq!(
        error_of("APP_DEBTOR_INFO_EXPIRY_DAYS", "1e9").unwrap().var,
        "APP_DEBTOR_INFO_EXPIRY_DAYS"
    );

    // The longest accepted period cannot overflow date arithmetic.
    let c = config_with(&[
        ("APP_INTEREST_RATE_HISTORY_PERIOD", "36500d"),
        ("APP_TURN_MAX_COMMIT_PERIOD", "5214w"),
    ])
    .unwrap();
    let period = chrono::TimeDelta::from_std(c.worker.interest_rate_history_period).unwrap();
    let now = chrono::Utc::now();
    assert!(now.checked_sub_signed(period).is_some());
    assert!(now.checked_add_signed(period).is_some());
    let days = chrono::TimeDelta::days(MAX_DATE_OFFSET_DAYS as i64);
    assert!(now.checked_sub_signed(days).is_some());
}

#[test]
fn database_and_shutdown_timeouts_are_read() {
    let c = config_with(&[
        ("APP_DB_ACQUIRE_TIMEOUT_SECONDS", "2.5"),
        ("APP_DB_STATEMENT_TIMEOUT_SECONDS", "0"),
        ("APP_SHUTDOWN_TIMEOUT", "0"),
    ])
    .unwrap();
    assert_eq!(c.db.acquire_timeout, secs(2.5));
    assert_eq!(c.db.statement_timeout, None);
    assert_eq!(c.processes.shutdown_timeout, Duration::ZERO);
    let c = config_with(&[("APP_DB_STATEMENT_TIMEOUT_SECONDS", "1.5")]).unwrap();
    assert_eq!(c.db.statement_timeout, Some(secs(1.5)));
    for (var, bad) in [
        ("APP_DB_ACQUIRE_TIMEOUT_SECONDS", "0"),
        ("APP_DB_ACQUIRE_TIMEOUT_SECONDS", "-1"),
        ("APP_DB_ACQUIRE_TIMEOUT_SECONDS", "30s"),
        ("APP_DB_ACQUIRE_TIMEOUT_SECONDS", "1e12"),
        ("APP_DB_STATEMENT_TIMEOUT_SECONDS", "0.0001"),
        ("APP_DB_STATEMENT_TIMEOUT_SECONDS", "1e7"),
        ("APP_DB_STATEMENT_TIMEOUT_SECONDS", "nan"),
        ("APP_SHUTDOWN_TIMEOUT", "-1"),
        ("APP_SHUTDOWN_TIMEOUT", "inf"),
        ("APP_SHUTDOWN_TIMEOUT", "1e9"),
    ] {
        assert!(
            error_of(var, bad).is_some(),
            "{var}={bad} should be refused"
        );
    }
}

#[test]
fn web_and_metrics_settings_have_safe_defaults() {
    let c = config_with(&[]).unwrap();
    assert_eq!(c.web.oauth2_introspect_url, None);
    assert!(!c.web.trust_user_id_header);
    assert_eq!(c.web.token_cache_max_cost, 10_000_000);
    assert_eq!(c.web.introspection_timeout, Duration::from_secs(5));
    assert_eq!(c.metrics_port, None);
    let c = config_with(&[
        (
            "OAUTH2_INTROSPECT_URL",
            "http://127.0.0.1:4445/oauth2/introspect",
        ),
        ("APP_TRUST_USER_ID_HEADER", "true"),
        ("TOKEN_INTROSPECTION_CACHE_MAX_COST", "1000"),
        ("APP_TOKEN_INTROSPECTION_TIMEOUT_SECONDS", "0.5"),
        ("APP_METRICS_PORT", "9100"),
    ])
    .unwrap();
    assert_eq!(
        c.web.oauth2_introspect_url.as_deref(),
        Some("http://127.0.0.1:4445/oauth2/introspect")
    );
    assert!(c.web.trust_user_id_header);
    assert_eq!(c.web.token_cache_max_cost, 1000);
    assert_eq!(c.web.introspection_timeout, Duration::from_millis(500));
    assert_eq!(c.metrics_port, Some(9100));
    // Empty values are unset values.
    let c = config_with(&[("OAUTH2_INTROSPECT_URL", ""), ("APP_METRICS_PORT", "")]).unwrap();
    assert_eq!(c.web.oauth2_introspect_url, None);
    assert_eq!(c.metrics_port, None);
}

#[test]
fn the_webserver_listens_where_it_is_told() {
    let c = config_with(&[]).unwrap();
    assert_eq!(c.web.listen_address.to_string(), "0.0.0.0");
    let c = config_with(&[("APP_WEBSERVER_LISTEN_ADDRESS", "127.0.0.1")]).unwrap();
    assert_eq!(c.web.listen_address.to_string(), "127.0.0.1");
    let e = config_with(&[("APP_WEBSERVER_LISTEN_ADDRESS", "localhost")]).unwrap_err();
    assert!(
        e.to_string().contains("APP_WEBSERVER_LISTEN_ADDRESS"),
        "{e}"
    );
}
