//! Integration tests against the real PostgreSQL and RabbitMQ servers (one test binary).

mod cli;
mod collectors;
mod config_errors;
mod configure;
mod consumer;
mod flush;
mod flush_recovery;
mod flush_runs;
mod handlers;
mod helpers;
mod outbox;
mod robustness;
mod schema;
mod topology;
mod util;
mod verify_shard;
mod worker;
