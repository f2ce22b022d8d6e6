//! One module per subcommand; `run` dispatches.

mod attach;
mod completion;
mod cp;
mod doctor;
mod exec;
mod get;
mod pod;
mod port_forward;
mod sandbox;
mod session;
mod watch;

use crate::args::{Cli, Command};
use crate::exit::Exit;

/// Run the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    let global = cli.global;
    match cli.command {
        Command::Exec(args) => exec::run(&global, args).await,
        Command::Attach(args) => attach::run(&global, args).await,
        Command::PortForward(args) => port_forward::run(&global, args).await,
        Command::Get(args) => get::run(&global, args).await,
        Command::Watch(args) => watch::run(&global, args).await,
        Command::Cp(args) => cp::run(&global, args).await,
        Command::Sandbox(args) => sandbox::run(&global, args).await,
        Command::Doctor(args) => doctor::run(&global, args).await,
        Command::Completion(args) => completion::run(&args),
    }
}
