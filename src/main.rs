//! The `swpt-trade` binary: parses the command line and runs one command.

fn main() -> std::process::ExitCode {
    swpt_trade::cli::main()
}
