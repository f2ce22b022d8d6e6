//! The `podlink` command line: a thin layer over `podlink-client` and
//! `podlink-sandbox`. Parses arguments (`args`), runs one command
//! (`cmd::*`), and turns the outcome into an exit status (`exit`).
//!
//! It also answers as a kubectl plugin: link or copy the binary as
//! `kubectl-podlink` on `PATH` and run `kubectl podlink exec demo -- true`.

mod args;
mod cluster;
mod cmd;
mod exit;
mod logging;
mod malloc;
mod signals;
mod terminal;

use std::process::ExitCode;

fn main() -> ExitCode {
    malloc::tune_for_streaming();
    let cli = args::parse();
    logging::init(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            return exit::report(Err(anyhow::Error::new(err).context("starting the runtime")))
        }
    };
    let outcome = runtime.block_on(cmd::run(cli));
    // A thread blocked reading our stdin must not keep the process alive.
    runtime.shutdown_background();
    exit::report(outcome)
}
