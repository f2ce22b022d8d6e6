//! `podlink-soak`: a bounded soak of the podlink client library (issue #11).
//!
//! Against a `podlink sandbox` process it runs, all at once and for the whole
//! duration: exec workers piping checksummed payloads with random exit codes
//! and random cancels, port-forward connections over every protocol echoing
//! checksummed data, informers on pods while a writer churns them, and a
//! fault loop cycling drop-connections, blackhole, idle-timeout, watch-error
//! and compact. At the end it checks that no remote process leaked, no byte
//! was corrupted, every status was exact or a clear transport error, every
//! informer store equals a fresh list, nothing panicked and memory stayed
//! flat; it prints the figures and exits non-zero if any invariant failed.
//!
//! ```text
//! cargo run --release -p podlink-soak -- --duration 30m --json soak.json
//! ```

mod args;
mod data;
mod exec_load;
mod failure;
mod fault_loop;
mod forward_load;
mod health;
mod informer_load;
mod report;
mod run;
mod sandbox;
mod tally;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // kube logs every injected watch error (5xx, 429) as an error.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("error,kube_client::client::builder=off")
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    health::count_panics();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    eprintln!(
        "soak: {:?} with seed {seed} ({} exec workers, {} connections per port-forward protocol)",
        args.duration, args.exec_workers, args.forward_workers
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("soak: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(run::run(&args, seed)) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("soak: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    // Sessions cancelled by dropping their handle finish on the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    println!("podlink soak figures:\n{}", report.table());
    if let Some(path) = &args.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(path, json));
        if let Err(err) = written {
            eprintln!("soak: writing {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let failures = report.failures();
    if failures.is_empty() {
        println!("soak passed: every invariant held");
        ExitCode::SUCCESS
    } else {
        println!("soak FAILED:");
        for failure in &failures {
            println!("  {failure}");
        }
        ExitCode::FAILURE
    }
}
