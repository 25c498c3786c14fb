//! The whole system, as `scripts/run-local.sh` runs it, with short turns: the built binary's
//! `solver` and two `worker`s (shards `0.#` and `1.#`) on real PostgreSQL databases and a
//! RabbitMQ virtual host of this test, and the simulator (`swpt_trade::simulator`, what
//! `swpt-trade simulate` runs) in this process. It runs until two turns have traded, and
//! checks that every audit is clean and every traded turn finished.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use swpt_trade::simulator::{self, Event, Settings};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::handlers::count;
use crate::util::{TestBroker, TestDb};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_swpt-trade");
pub(crate) const BASE_DEBTOR_ID: i64 = 1000;
pub(crate) const KEYS: [&str; 2] = ["0.#", "1.#"];

/// A process of the system, stopped with SIGTERM when the test ends.
pub(crate) struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    pub(crate) fn spawn(name: &str, dir: &Path, args: &[&str], env: &[(&str, String)]) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("a log file");
        let child = Command::new(BIN)
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// The process ID, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub(crate) fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(15);
        format!(
            "--- {} (last lines) ---\n{}",
            self.name,
            lines[from..].join("\n")
        )
    }

    pub(crate) async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
    }
}

/// The settings every process of the system shares.
pub(crate) fn common_env(broker: &TestBroker, solver_db: &TestDb) -> Vec<(&'static str, String)> {
    vec![
        ("SOLVER_POSTGRES_URL", solver_db.url.clone()),
        ("PROTOCOL_BROKER_URL", broker.url.clone()),
        ("APP_LOG_LEVEL", "warning".into()),
    ]
}

pub(crate) fn worker_env(
    broker: &TestBroker,
    solver_db: &TestDb,
    worker_db: &TestDb,
    i: usize,
) -> Vec<(&'static str, String)> {
    let mut env = common_env(broker, solver_db);
    env.extend([
        ("WORKER_POSTGRES_URL", worker_db.url.clone()),
        ("PROTOCOL_BROKER_QUEUE", format!("demo_{i}")),
        ("PROTOCOL_BROKER_QUEUE_ROUTING_KEY", KEYS[i].to_owned()),
        ("SETUP_RABBITMQ_BINDINGS", "yes".into()),
        ("APP_VERIFY_SSL_CERTS", "false".into()),
        ("APP_ROLL_WORKER_TURNS_WAIT", "0.3".into()),
        ("TRANSFERS_HEALTHY_MAX_COMMIT_DELAY", "6s".into()),
        ("FLUSH_PERIOD", "0.2".into()),
        ("HTTP_FETCH_PERIOD", "0.5".into()),
        ("TRIGGER_TRANSFERS_PERIOD", "0.5".into()),
        ("HANDLE_PRISTINE_COLLECTORS_PERIOD", "0.5".into()),
    ]);
    env
}

/// The simulator's settings of a whole-system test: 24 creditors over 3 currencies, collector
/// IDs in the default range, and the `ready_file` that tells when the solver may start.
pub(crate) fn simulator_settings(
    broker: &TestBroker,
    solver_db: &TestDb,
    worker_dbs: &[TestDb],
    ready_file: &Path,
) -> Settings {
    Settings {
        broker_url: broker.url.clone(),
        solver_url: solver_db.url.clone(),
        worker_urls: worker_dbs.iter().map(|db| db.url.clone()).collect(),
        creditors: 24,
        currencies: 3,
        seed: 5,
        https_port: 0,
        base_debtor_id: BASE_DEBTOR_ID,
        expected_base_locator: None,
        first_creditor_id: 1,
        min_trade_amount: 1000,
        amount_cut: 1e-5,
        interest_rate: 0.0,
        commit_period: 31 * 86_400,
        collector_ids: (0x0000_0100_0000_0000, 0x0000_0100_0000_07ff),
        queue: "demo_simulator".into(),
        heartbeat_period: Duration::from_secs(20),
        transfers_timeout: Duration::from_secs(60),
        traded_turns: Some(1),
        ready_file: Some(ready_file.to_path_buf()),
    }
}

/// What went wrong, then the simulator's lines and the tail of each process's log.
pub(crate) fn describe(
    what: &str,
    lines: &std::sync::Mutex<Vec<String>>,
    processes: &[&Process],
) -> String {
    let mut text = format!("{what}\nsimulator:\n{}\n", lines.lock().unwrap().join("\n"));
    for p in processes {
        text.push_str(&p.tail());
        text.push('\n');
    }
    text
}

/// The simulator's report within `wait`; otherwise it is stopped and the test panics with
/// `describe` of why (`late` when it took too long).
pub(crate) async fn simulator_report(
    simulation: tokio::task::JoinHandle<anyhow::Result<simulator::Report>>,
    wait: Duration,
    stop: &CancellationToken,
    late: &str,
    describe: impl Fn(&str) -> String,
) -> simulator::Report {
    match tokio::time::timeout(wait, simulation).await {
        Ok(Ok(Ok(report))) => report,
        Ok(Ok(Err(e))) => panic!("{}", describe(&format!("the simulator failed: {e:#}"))),
        Ok(Err(e)) => panic!("{}", describe(&format!("the simulator panicked: {e}"))),
        Err(_) => {
            stop.cancel();
            panic!("{}", describe(late));
        }
    }
}

/// The simulator's events as lines (shown when a test fails), and the sink that writes them.
pub(crate) fn event_lines() -> (
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    simulator::EventSink,
) {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let events = Box::new(move |event: &Event| {
        let line = match event {
            Event::Note(note) => format!("note: {note}"),
            Event::Ready => "ready".to_owned(),
            Event::Turn(report) => report.line(),
            Event::Failure(why) => format!("FAILURE: {why}"),
        };
        sink.lock().unwrap().push(line);
    });
    (lines, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_system_trades_and_every_turn_audits_clean() {
    let _whole_system = crate::util::WHOLE_SYSTEM.lock().await;
    let broker = TestBroker::new().await;
    let solver_db = TestDb::empty().await;
    let worker_dbs = [TestDb::empty().await, TestDb::empty().await];
    let dir = std::env::temp_dir().join(format!("swpt-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ready_file = dir.join("ready");
    let _ = std::fs::remove_file(&ready_file);

    for (i, db) in worker_dbs.iter().enumerate() {
        let status = Command::new(BIN)
            .arg("configure")
            .env_clear()
            .envs(worker_env(&broker, &solver_db, db, i))
            .status()
            .await
            .unwrap();
        assert!(status.success(), "configure shard {i}");
    }
    let mut processes: Vec<Process> = worker_dbs
        .iter()
        .enumerate()
        .map(|(i, db)| {
            Process::spawn(
                &format!("worker-{i}"),
                &dir,
                &["worker"],
                &worker_env(&broker, &solver_db, db, i),
            )
        })
        .collect();

    let mut settings = simulator_settings(&broker, &solver_db, &worker_dbs, &ready_file);
    settings.traded_turns = Some(2);
    let (lines, events) = event_lines();
    let stop = CancellationToken::new();
    let simulation = tokio::spawn(simulator::run(settings, stop.clone(), events));

    // The solver starts once every currency can be traded, so that its first turn trades.
    let ready =
        crate::util::wait_until(Duration::from_secs(90), async || ready_file.exists()).await;
    let failure = |what: &str, processes: &[Process]| {
        describe(what, &lines, &processes.iter().collect::<Vec<_>>())
    };
    if !ready {
        stop.cancel();
        panic!(
            "{}",
            failure("the system did not get ready in 90 s", &processes)
        );
    }
    let base_locator = std::fs::read_to_string(&ready_file)
        .unwrap()
        .trim()
        .to_owned();
    let mut solver_env = common_env(&broker, &solver_db);
    solver_env.extend([
        ("BASE_DEBTOR_ID", BASE_DEBTOR_ID.to_string()),
        ("BASE_DEBTOR_INFO_LOCATOR", base_locator),
        ("TURN_PERIOD", "30s".into()),
        ("TURN_PERIOD_OFFSET", "0s".into()),
        ("TURN_CHECK_INTERVAL", "1s".into()),
        ("TURN_PHASE1_DURATION", "4s".into()),
        ("TURN_PHASE2_DURATION", "8s".into()),
    ]);
    processes.push(Process::spawn("solver", &dir, &["solver"], &solver_env));

    let report = simulator_report(
        simulation,
        Duration::from_secs(150),
        &stop,
        "no two traded turns in 150 s",
        |what| failure(what, &processes),
    )
    .await;
    let summary = failure("", &processes);
    // Shown with `--nocapture`.
    println!("{}", lines.lock().unwrap().join("\n"));

    // Trades happened, in two turns, every audit is clean.
    let traded: Vec<_> = report.turns.iter().filter(|t| t.traded()).collect();
    assert!(traded.len() >= 2, "{summary}");
    assert!(report.clean(), "{summary}");
    for t in &traded {
        assert!(t.volume > 0.0 && t.sellers > 0 && t.buyers > 0, "{summary}");
        assert!(
            t.finished && t.phase4_at.is_some() && t.done_at.is_some(),
            "{summary}"
        );
        assert!(t.commits >= t.sellers + t.buyers, "{summary}");
    }
    // The traded turns reached phase 4, and no shard has a transfer of them left.
    let conn = &mut solver_db.connect().await;
    for t in &traded {
        let done = count(
            conn,
            &format!("turn WHERE turn_id = {} AND phase = 4", t.turn_id),
        )
        .await;
        assert_eq!(done, 1, "turn {} is done\n{summary}", t.turn_id);
    }
    for db in &worker_dbs {
        let conn = &mut db.connect().await;
        for t in &traded {
            for table in ["dispatching_status", "transfer_attempt"] {
                let left = count(conn, &format!("{table} WHERE turn_id = {}", t.turn_id)).await;
                assert_eq!(left, 0, "{table} of turn {}\n{summary}", t.turn_id);
            }
        }
    }
    for p in processes {
        p.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
