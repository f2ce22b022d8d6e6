//! `podlink-bench`: the benchmark harness of issue #10.
//!
//! One run starts one `podlink sandbox` process and measures every scenario
//! for every client against it, interleaving the repeats (repeat 1 of every
//! client, then repeat 2, …) so that drift of the machine hits all clients
//! alike. It prints one Markdown table per scenario: medians, ratios against
//! the reference clients and the sandbox's CPU share.
//!
//! Clients that are separate programs (podlink, kubectl) run as processes;
//! library clients (kube-rs, the podlink library) run in a child process of
//! the harness (this binary re-executed with a hidden subcommand) so that
//! their memory is measured alone.
//!
//! ```text
//! cargo run --release -p podlink-bench -- [--quick] [--repeats N] [--only SCENARIO,...]
//! ```

mod args;
mod cluster;
mod helpers;
mod process;
mod procfs;
mod raw;
mod report;
mod runner;
mod sandbox;
mod scenarios;
mod stats;
mod tools;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = args::Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.helper {
        Some(helper) => runtime.block_on(helpers::run(helper)),
        None => runtime.block_on(runner::run(cli.run)),
    }
}
