//! One runner for every long-running task of a process (see `docs/architecture.md#jobs`).
//!
//! Two shapes of task run under a [`Runner`]:
//!
//! - a periodic [`Job`] (a flusher, a table scanner, turn rolling…): the runner calls
//!   [`Job::run_once`] every [`Schedule::period`] (with jitter), or once with `--quit-early`;
//! - a *service* (a consumer connection…): a future that runs until the stop token is
//!   cancelled, started again by the runner when it fails.
//!
//! The runner owns what every task would otherwise write again: the interval, the one
//! [`Backoff`] policy after failures, cancellation on SIGTERM/SIGINT/SIGHUP, a task tracker
//! whose drain after the stop signal is bounded (`APP_SHUTDOWN_TIMEOUT`), and what a failure
//! means ([`OnFailure`]). A panic in a task counts as a failure of that task: it is logged, and
//! the task starts again or the process exits non-zero — never a live process that does
//! nothing.

mod backoff;
mod runner;

pub use backoff::{Backoff, with_jitter};
pub(crate) use runner::panic_message;
pub use runner::{Job, OnFailure, Runner, Schedule};
