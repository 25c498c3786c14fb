//! Faults of real processes during a traded turn: the system of `demo.rs` (the built binary's
//! `solver` and two `worker`s, the simulator in this process), with the workers' RabbitMQ
//! connections going through a proxy. During the turn every worker connection is broken once
//! (as a broker restart would), and the worker whose collectors are moving money is killed
//! with SIGKILL in the middle of its transfers and started again. The turn must still move
//! every amount exactly once: the simulator's audit is clean and every transfer finished.

use std::time::Duration;

use swpt_trade::simulator;
use tokio_util::sync::CancellationToken;

use crate::demo::{
    BASE_DEBTOR_ID, BIN, Process, common_env, describe, event_lines, simulator_report,
    simulator_settings, worker_env,
};
use crate::handlers::count;
use crate::util::{BrokerProxy, TestBroker, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_and_broken_connections_lose_no_money() {
    let _whole_system = crate::util::WHOLE_SYSTEM.lock().await;
    let broker = TestBroker::new().await;
    let proxy = BrokerProxy::start(&broker).await;
    let solver_db = TestDb::empty().await;
    let worker_dbs = [TestDb::empty().await, TestDb::empty().await];
    let dir = std::env::temp_dir().join(format!("swpt-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ready_file = dir.join("ready");
    let _ = std::fs::remove_file(&ready_file);

    // The workers reach the broker through the proxy.
    let env_of = |i: usize| {
        let mut env = worker_env(&broker, &solver_db, &worker_dbs[i], i);
        for (name, value) in &mut env {
            if *name == "PROTOCOL_BROKER_URL" {
                *value = proxy.url.clone();
            }
        }
        env
    };
    for i in 0..2 {
        let status = tokio::process::Command::new(BIN)
            .arg("configure")
            .env_clear()
            .envs(env_of(i))
            .status()
            .await
            .unwrap();
        assert!(status.success(), "configure shard {i}");
    }
    let mut workers: Vec<Process> = (0..2)
        .map(|i| Process::spawn(&format!("worker-{i}"), &dir, &["worker"], &env_of(i)))
        .collect();

    let mut settings = simulator_settings(&broker, &solver_db, &worker_dbs, &ready_file);
    settings.seed = 7;
    settings.queue = "faults_simulator".into();
    settings.transfers_timeout = Duration::from_secs(90);
    let (lines, events) = event_lines();
    let stop = CancellationToken::new();
    let simulation = tokio::spawn(simulator::run(settings, stop.clone(), events));
    let describe = |what: &str, processes: &[&Process]| describe(what, &lines, processes);
    let ready =
        crate::util::wait_until(Duration::from_secs(90), async || ready_file.exists()).await;
    if !ready {
        stop.cancel();
        let all: Vec<&Process> = workers.iter().collect();
        panic!("{}", describe("the system did not get ready in 90 s", &all));
    }
    let mut solver_env = common_env(&broker, &solver_db);
    solver_env.extend([
        ("BASE_DEBTOR_ID", BASE_DEBTOR_ID.to_string()),
        (
            "BASE_DEBTOR_INFO_LOCATOR",
            std::fs::read_to_string(&ready_file)
                .unwrap()
                .trim()
                .to_owned(),
        ),
        ("TURN_PERIOD", "30s".into()),
        ("TURN_PERIOD_OFFSET", "0s".into()),
        ("TURN_CHECK_INTERVAL", "1s".into()),
        ("TURN_PHASE1_DURATION", "4s".into()),
        ("TURN_PHASE2_DURATION", "8s".into()),
    ]);
    let solver = Process::spawn("solver", &dir, &["solver"], &solver_env);

    // The faults, while the simulator waits for a traded turn.
    let mut broken = 0;
    let mut killed = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let mut solver_conn = solver_db.connect().await;
    let mut worker_conns = [worker_dbs[0].connect().await, worker_dbs[1].connect().await];
    while !simulation.is_finished() && tokio::time::Instant::now() < deadline {
        if broken == 0 && count(&mut solver_conn, "turn WHERE phase = 2").await > 0 {
            broken = proxy.break_connections();
        }
        if killed.is_none() {
            for (i, conn) in worker_conns.iter_mut().enumerate() {
                let moving = count(conn, "transfer_attempt").await
                    + count(conn, "dispatching_status WHERE started_sending").await;
                if moving > 0 {
                    let pid = workers[i].pid().expect("the worker runs");
                    let status = std::process::Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status()
                        .unwrap();
                    assert!(status.success());
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    workers[i] = Process::spawn(
                        &format!("worker-{i}-restarted"),
                        &dir,
                        &["worker"],
                        &env_of(i),
                    );
                    killed = Some(i);
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut all: Vec<&Process> = workers.iter().collect();
    all.push(&solver);
    let report = simulator_report(
        simulation,
        Duration::from_secs(5),
        &stop,
        "no traded turn in 180 s",
        |what| describe(what, &all),
    )
    .await;
    let summary = describe(
        &format!("connections broken: {broken}, worker killed: {killed:?}"),
        &all,
    );
    assert!(
        broken > 0,
        "the workers' connections were broken\n{summary}"
    );
    assert!(
        killed.is_some(),
        "a worker was killed mid-transfer\n{summary}"
    );
    let traded: Vec<_> = report.turns.iter().filter(|t| t.traded()).collect();
    assert!(!traded.is_empty(), "{summary}");
    assert!(report.clean(), "every audit is clean\n{summary}");
    for t in &traded {
        assert!(t.finished && t.done_at.is_some(), "{summary}");
        assert!(t.commits >= t.sellers + t.buyers, "{summary}");
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
    solver.stop().await;
    for w in workers {
        w.stop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
