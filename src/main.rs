//! The `positio` binary: sets up the runtime, parses the command line, runs it, and turns the
//! result into an exit code (1 on error, 130 after an interrupted training; a failed rank of a
//! distributed job stops the whole job).

use clap::Parser;
use positio::cli::{self, Cli};
use positio::train::trainer::Outcome;
use std::process::ExitCode;

fn main() -> ExitCode {
    positio::runtime::init();
    match cli::run(Cli::parse()) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("{}error: {e}", positio::distributed::rank_prefix());
            // The other ranks of a distributed job would wait for this one forever.
            positio::distributed::abort_job(1);
            ExitCode::FAILURE
        }
    }
}
