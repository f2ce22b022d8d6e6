//! `podlink completion bash|zsh|fish`.

use clap::CommandFactory;

use crate::args::{Cli, CompletionArgs};
use crate::exit::Exit;

/// Print the completion script for the shell on stdout.
pub fn run(args: &CompletionArgs) -> anyhow::Result<Exit> {
    let mut command = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut command, "podlink", &mut out);
    Ok(Exit::SUCCESS)
}
