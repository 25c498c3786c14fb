//! The [`Runner`]: spawns jobs and services, restarts or stops them, and drains them.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::backoff::{Backoff, with_jitter};

/// A periodic job: one pass of work at a time.
pub trait Job: Send + 'static {
    /// The job's name in log lines (e.g. `flusher 2`).
    fn name(&self) -> String;

    /// One pass. An error (or a panic) is a failed pass, handled as the job's
    /// [`OnFailure`] says.
    fn run_once(&mut self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// What a failed (or panicking) task means for the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Log the failure and start the task again after a [`Backoff`] pause.
    Restart,
    /// Log the failure, stop every task of the runner, and make the process exit non-zero.
    Exit,
}

/// When a [`Job`] runs.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// From the start of one pass to the start of the next.
    pub period: Duration,
    /// Each pause is scaled by a random factor in `[1 − jitter, 1 + jitter]`; the first pass
    /// starts after a random part of `jitter × period`.
    pub jitter: f64,
    /// `--quit-early`: one pass, then the job ends; a failed pass makes the process exit
    /// non-zero whatever `on_failure` says.
    pub run_once: bool,
    /// What a failed pass means.
    pub on_failure: OnFailure,
}

impl Schedule {
    /// The usual schedule: every `period` with 10 % jitter, restarting after failures (or
    /// one pass with `run_once`).
    pub fn every(period: Duration, run_once: bool) -> Self {
        Self {
            period,
            jitter: 0.1,
            run_once,
            on_failure: OnFailure::Restart,
        }
    }
}

/// Runs a process's tasks until they end or the stop token is cancelled.
pub struct Runner {
    token: CancellationToken,
    tracker: TaskTracker,
    fatal: Arc<Mutex<Option<anyhow::Error>>>,
    drain_timeout: Duration,
    /// Whether a task was ever spawned: a runner whose tasks all ended is done, one that never
    /// had a task is an idle command (the tracker is empty in both cases).
    spawned: AtomicBool,
}

impl Runner {
    /// A runner whose tasks stop when `stop` is cancelled, or when one of them fails fatally.
    /// After the stop, tasks get `drain_timeout` to finish their current work.
    pub fn new(stop: &CancellationToken, drain_timeout: Duration) -> Self {
        Self {
            token: stop.child_token(),
            tracker: TaskTracker::new(),
            fatal: Arc::default(),
            drain_timeout,
            spawned: AtomicBool::new(false),
        }
    }

    /// A runner stopped by SIGTERM, SIGINT or SIGHUP.
    pub fn on_signals(drain_timeout: Duration) -> Self {
        Self::new(&crate::shutdown::on_signals(), drain_timeout)
    }

    /// The token every task watches: cancelled by a stop signal or a fatal failure.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Spawns `job` on `schedule`.
    pub fn spawn_job<J: Job>(&self, mut job: J, schedule: Schedule) {
        self.spawned.store(true, Ordering::SeqCst);
        let token = self.token.clone();
        let fatal = self.fatal.clone();
        self.tracker.spawn(async move {
            let name = job.name();
            let initial = schedule.period.mul_f64(schedule.jitter.clamp(0.0, 1.0));
            if !schedule.run_once && !initial.is_zero() {
                let start = initial.mul_f64(rand::random::<f64>());
                if sleep_or_stop(start, &token).await {
                    return;
                }
            }
            let mut backoff = Backoff::default();
            loop {
                let started = Instant::now();
                let outcome = catch_panic(job.run_once()).await;
                let pause = match outcome {
                    Ok(()) => {
                        backoff.reset();
                        if schedule.run_once {
                            return;
                        }
                        let rest = schedule.period.saturating_sub(started.elapsed());
                        with_jitter(rest, schedule.jitter)
                    }
                    Err(e) => {
                        let exit = schedule.run_once || schedule.on_failure == OnFailure::Exit;
                        if exit {
                            fail_fatally(&name, e, &fatal, &token);
                            return;
                        }
                        let pause = backoff.next_pause();
                        tracing::error!("{name} failed: {e:#}. Next try in {pause:?}.");
                        pause
                    }
                };
                if sleep_or_stop(pause, &token).await {
                    return;
                }
            }
        });
    }

    /// Spawns a service: `run` is called with the stop token and should return `Ok` once
    /// the token is cancelled. An error or a panic starts it again after a back-off pause
    /// (reset when the failed run had lasted longer than the longest pause), or, with
    /// [`OnFailure::Exit`], stops the runner.
    pub fn spawn_service<F, Fut>(&self, name: String, on_failure: OnFailure, mut run: F)
    where
        F: FnMut(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send,
    {
        self.spawned.store(true, Ordering::SeqCst);
        let token = self.token.clone();
        let fatal = self.fatal.clone();
        self.tracker.spawn(async move {
            let mut backoff = Backoff::default();
            while !token.is_cancelled() {
                let started = Instant::now();
                match catch_panic(run(token.clone())).await {
                    Ok(()) => return,
                    Err(e) if on_failure == OnFailure::Exit => {
                        fail_fatally(&name, e, &fatal, &token);
                        return;
                    }
                    Err(e) => {
                        if started.elapsed() > Backoff::MAX {
                            backoff.reset();
                        }
                        let pause = backoff.next_pause();
                        tracing::error!("{name} stopped: {e:#}. Restarting in {pause:?}.");
                        if sleep_or_stop(pause, &token).await {
                            return;
                        }
                    }
                }
            }
        });
    }

    /// Waits for the tasks: until every task has ended (all run-once jobs done), or, once the
    /// stop token is cancelled, for at most the drain timeout. With no task at all it waits
    /// for the stop signal (an idle command).
    ///
    /// # Errors
    ///
    /// The first fatal failure of a task, or tasks still running when the drain timed out.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.tracker.close();
        // Not `tracker.is_empty()`: a task that ended before this call (a run-once service
        // with nothing to do) would make the runner wait for a stop signal forever.
        if !self.spawned.load(Ordering::SeqCst) {
            self.token.cancelled().await;
        }
        tokio::select! {
            () = self.tracker.wait() => {}
            () = self.token.cancelled() => {
                let drained = tokio::time::timeout(self.drain_timeout, self.tracker.wait()).await;
                if drained.is_err() {
                    let n = self.tracker.len();
                    return Err(self.take_fatal().unwrap_or_else(|| {
                        anyhow::anyhow!(
                            "{n} task(s) did not finish within {:?} of the stop signal",
                            self.drain_timeout
                        )
                    }));
                }
            }
        }
        self.take_fatal().map_or(Ok(()), Err)
    }

    fn take_fatal(&self) -> Option<anyhow::Error> {
        self.fatal.lock().ok()?.take()
    }
}

/// Sleeps for `pause`; `true` when the token was cancelled first.
async fn sleep_or_stop(pause: Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        () = token.cancelled() => true,
        () = tokio::time::sleep(pause) => false,
    }
}

/// Runs `f`, turning a panic into an error that carries the panic's message.
async fn catch_panic<F: Future<Output = anyhow::Result<()>>>(f: F) -> anyhow::Result<()> {
    match AssertUnwindSafe(f).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => Err(anyhow::anyhow!("panicked: {}", panic_message(&*payload))),
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}

fn fail_fatally(
    name: &str,
    e: anyhow::Error,
    fatal: &Mutex<Option<anyhow::Error>>,
    token: &CancellationToken,
) {
    tracing::error!("{name} failed: {e:#}");
    if let Ok(mut slot) = fatal.lock() {
        slot.get_or_insert(e.context(format!("{name} failed")));
    }
    token.cancel();
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    struct Counting {
        runs: Arc<AtomicU32>,
        fail_on: Option<u32>,
        panic_on: Option<u32>,
    }

    impl Job for Counting {
        fn name(&self) -> String {
            "counting job".into()
        }

        async fn run_once(&mut self) -> anyhow::Result<()> {
            let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
            if self.panic_on == Some(n) {
                panic!("boom at {n}");
            }
            if self.fail_on == Some(n) {
                anyhow::bail!("failure at {n}");
            }
            Ok(())
        }
    }

    fn job(fail_on: Option<u32>, panic_on: Option<u32>) -> (Counting, Arc<AtomicU32>) {
        let runs = Arc::new(AtomicU32::new(0));
        let job = Counting {
            runs: runs.clone(),
            fail_on,
            panic_on,
        };
        (job, runs)
    }

    fn schedule(period_ms: u64, run_once: bool, on_failure: OnFailure) -> Schedule {
        Schedule {
            period: Duration::from_millis(period_ms),
            jitter: 0.0,
            run_once,
            on_failure,
        }
    }

    #[tokio::test]
    async fn a_runner_whose_only_task_ended_early_is_done() {
        let stop = CancellationToken::new();
        let runner = Runner::new(&stop, Duration::from_secs(1));
        runner.spawn_service("quick".into(), OnFailure::Exit, |_| async { Ok(()) });
        // The task ends before `wait` looks at the tracker.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waited = tokio::time::timeout(Duration::from_secs(5), runner.wait()).await;
        assert!(waited.expect("the runner is done").is_ok());
        assert!(!stop.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn run_once_runs_one_pass_and_ends() {
        let stop = CancellationToken::new();
        let runner = Runner::new(&stop, Duration::from_secs(1));
        let (j, runs) = job(None, None);
        runner.spawn_job(j, schedule(10, true, OnFailure::Restart));
        runner.wait().await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn run_once_failure_is_an_error() {
        let stop = CancellationToken::new();
        let runner = Runner::new(&stop, Duration::from_secs(1));
        let (j, _) = job(Some(1), None);
        runner.spawn_job(j, schedule(10, true, OnFailure::Restart));
        let e = runner.wait().await.unwrap_err();
        assert!(format!("{e:#}").contains("failure at 1"), "{e:#}");
    }

    #[tokio::test(start_paused = true)]
    async fn periodic_job_survives_failures_and_panics_and_stops_on_signal() {
        let stop = CancellationToken::new();
        let runner = Runner::new(&stop, Duration::from_secs(1));
        let (j, runs) = job(Some(2), Some(3));
        runner.spawn_job(j, schedule(100, false, OnFailure::Restart));
        // Pass 1 at 0 s, pass 2 (error) at 0.1 s, pass 3 (panic) after a 1 s back-off, pass 4
        // after a 2 s back-off, then every 0.1 s.
        tokio::time::sleep(Duration::from_millis(3_550)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 8);
        stop.cancel();
        runner.wait().await.unwrap();
        let after = runs.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(runs.load(Ordering::SeqCst), after, "the job runs no more");
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_of_an_exit_job_stops_every_task_with_an_error() {
        let stop = CancellationToken::new();
        let runner = Runner::new(&stop, Duration::from_secs(1));
        let (j, _) = job(None, Some(2));
        runner.spawn_job(j, schedule(100, false, OnFailure::Exit));
        let (other, other_runs) = job(None, None);
        runner.spawn_job(other, schedule(100, false, OnFailure::Restart));
        let e = runner.wait().await.unwrap_err();
        assert!(format!("{e:#}").contains("panicked: boom at 2"), "{e:#}");
        assert!(
            !stop.is_cancelled(),
            "the outer token is not the runner's to cancel"
        );
        let n = other_runs.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(
            other_runs.load(Ordering::SeqCst),
            n,
            "the other job stopped too"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn services_restart_after_errors_and_panics() {
        let stop = CancellationToken::new();
        let runner = Runner::new(&stop, Duration::from_secs(1));
        let starts = Arc::new(AtomicU32::new(0));
        let counter = starts.clone();
        runner.spawn_service("service".into(), OnFailure::Restart, move |token| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                match n {
                    1 => anyhow::bail!("first run fails"),
                    2 => panic!("second run panics"),
                    _ => {
                        token.cancelled().await;
                        Ok(())
                    }
                }
            }
        });
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 3);
        stop.cancel();
        runner.wait().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_drain_after_the_stop_signal_is_bounded() {
        let stop = CancellationToken::new();
        let runner = Runner::new(&stop, Duration::from_secs(2));
        runner.spawn_service("stubborn".into(), OnFailure::Restart, |_token| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        });
        tokio::time::sleep(Duration::from_millis(1)).await; // the service has started
        stop.cancel();
        let started = Instant::now();
        let e = runner.wait().await.unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert!(e.to_string().contains("did not finish"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn without_tasks_the_runner_idles_until_stopped() {
        let stop = CancellationToken::new();
        let runner = Runner::new(&stop, Duration::from_secs(1));
        let waiting = tokio::spawn(runner.wait());
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(!waiting.is_finished());
        stop.cancel();
        waiting.await.unwrap().unwrap();
    }
}
