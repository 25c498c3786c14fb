//! Swaptacular "Circular Trade" service.
//!
//! One binary runs every role of the service: the solver, the per-shard workers and the admin
//! API (see `README.md`). The modules follow the architecture:
//!
//! - [`cli`]: one subcommand per documented command; thin wrappers over the rest.
//! - [`config`]: every setting, read and checked once at start-up.
//! - [`db`]: the solver database and the worker (shard) databases, with their migrations.
//! - [`messages`]: every SMP message, validated and serialized as the reference does.
//! - [`broker`]: RabbitMQ topology and publishing.
//! - [`outbox`]: outgoing messages stored in the worker database, and their flushers.
//! - [`sharding`]: which worker is responsible for which creditor, debtor or locator.
//! - [`solver`]: the pure solver engine (pricing, cycle matching, aggregation), no I/O.
//! - [`offline`]: `solve_offline`, a turn solved from CSV files.
//! - [`collectors`]: the service's collector accounts, planned with CPython-compatible IDs.
//! - [`debtors`]: fetching and parsing debtor info documents.
//! - [`consumer`], [`handlers`]: consuming SMP messages and what they do to the database.
//! - [`jobs`]: the runner of every periodic job and long-running service of a process.
//! - [`scanners`]: the worker's table scanners, which delete rows no longer needed.
//! - [`turns`]: trading turns: the solver's turn loop and its schedule.
//! - [`transfers`]: a turn's transfer notes and the demurrage formula (pure).
//! - [`simulator`]: `simulate`, the service's peers simulated, with an audit of every turn.
//! - [`telemetry`]: logging in the reference's text and JSON formats.

pub mod broker;
pub mod cli;
pub mod collectors;
pub mod config;
pub mod consumer;
pub mod db;
pub mod debtors;
pub mod handlers;
pub mod jobs;
pub mod messages;
pub mod offline;
pub mod outbox;
pub mod prometheus;
pub mod scanners;
pub mod sharding;
pub mod shutdown;
pub mod simulator;
pub mod solver;
pub mod telemetry;
pub mod transfers;
pub mod turns;
pub mod web;
