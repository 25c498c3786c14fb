//! Integration tests against the real PostgreSQL and RabbitMQ servers (one test binary).

mod cli;
mod collectors;
mod config_errors;
mod configure;
mod consumer;
mod debtors;
mod flush;
mod flush_recovery;
mod flush_runs;
mod handlers;
mod helpers;
mod locks;
mod money;
mod outbox;
mod robustness;
mod scanners;
mod schema;
mod sim;
mod topology;
mod transfers;
mod turns;
mod util;
mod verify_shard;
mod worker;
mod worker_turns;
