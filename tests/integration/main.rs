//! Integration tests against the real PostgreSQL and RabbitMQ servers (one test binary).

mod cli;
mod configure;
mod consumer;
mod handlers;
mod helpers;
mod outbox;
mod schema;
mod topology;
mod util;
