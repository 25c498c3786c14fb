//! The command line: one subcommand per documented command of the service, with the
//! reference's snake_case names. `main.rs` only calls [`main`].

mod args;
pub mod await_migrations;
pub mod broker_admin;
pub mod configure;
pub mod consume;
pub mod flush;
pub mod verify_shard;
pub mod worker;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

pub use args::*;

use crate::config::Config;
use crate::telemetry::{self, LogSettings};

/// Swaptacular "Circular Trade": automated currency exchanges through trading turns.
#[derive(Debug, Parser)]
#[command(name = "swpt-trade", version, about, long_about = None)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Runs the command line and returns the process's exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let name = cli.command.name();
    let lookup = |k: &str| std::env::var(k).ok();
    let log_settings = match LogSettings::from_lookup(&lookup) {
        Ok(s) => s,
        Err(e) => return config_error(name, &e),
    };
    telemetry::init(log_settings, name);
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return config_error(name, &e),
    };
    match run(cli.command, config) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_error(name: &str, e: &crate::config::ConfigError) -> ExitCode {
    eprintln!("{name}: {e}");
    ExitCode::FAILURE
}

/// The exit status of a command whose work belongs to a later issue.
fn not_implemented(name: &str) -> ExitCode {
    eprintln!("{name}: not implemented yet");
    ExitCode::from(2)
}

/// Builds a multi-threaded tokio runtime for a command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    let name = command.name();
    let command = match flush::flush_command(command) {
        Ok((kinds, args)) => return runtime()?.block_on(flush::run(kinds, args, &config, name)),
        Err(other) => other,
    };
    match command {
        Command::Configure(args) => runtime()?.block_on(configure::run(args, &config)),
        Command::AwaitMigrations => runtime()?.block_on(await_migrations::run(&config)),
        Command::Worker => runtime()?.block_on(worker::run(config)),
        Command::ConsumeMessages(args) => runtime()?.block_on(consume::run(args, config)),
        Command::Subscribe(args) => runtime()?.block_on(broker_admin::subscribe(args, &config)),
        Command::Unsubscribe(args) => runtime()?.block_on(broker_admin::unsubscribe(args, &config)),
        Command::DeleteQueue(args) => {
            runtime()?.block_on(broker_admin::delete_queue(args, &config))
        }
        Command::VerifyShardContent => runtime()?.block_on(verify_shard::run(&config)),
        Command::SolveOffline(args) => crate::offline::run(&args).map(|()| ExitCode::SUCCESS),
        _ => Ok(not_implemented(name)),
    }
}

/// Checks the command-line definition (clap's own consistency checks).
pub fn verify() {
    Cli::command().debug_assert();
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        super::verify();
    }
}
