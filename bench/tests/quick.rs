//! `podlink-bench --quick` end to end: a real sandbox process, real
//! clients (podlink, kubectl, kube-rs), every scenario with tiny sizes and
//! two interleaved repeats. Proves the harness works; the figures mean
//! nothing at these sizes.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use podlink_testkit::podlink::{podlink_beside, StopOnDrop};

/// Bound on the whole quick run.
const DEADLINE: Duration = Duration::from_secs(600);

#[test]
fn quick_run_measures_every_scenario_and_client() {
    let harness = PathBuf::from(env!("CARGO_BIN_EXE_podlink-bench"));
    let podlink = podlink_beside(&harness).unwrap_or_else(|e| panic!("{e}"));
    let scratch = tempfile::tempdir().unwrap();
    let report = scratch.path().join("report.md");
    let child = Command::new(&harness)
        .arg("--quick")
        .arg("--podlink")
        .arg(&podlink)
        .arg("--output")
        .arg(&report)
        // No nested cargo build from inside the test run.
        .env_remove("CARGO")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // SIGTERM lets the harness drop its sandbox (which ends its pods) if
    // the test fails early.
    let mut running = StopOnDrop::new(child, Duration::from_secs(15));
    let status = running.wait(
        DEADLINE,
        Duration::from_millis(200),
        "podlink-bench --quick",
    );
    assert!(status.success(), "podlink-bench --quick: {status}");
    let text = std::fs::read_to_string(&report).unwrap();
    for title in [
        "### exec stdout",
        "### exec stdin",
        "### exec latency",
        "### port-forward bulk",
        "### port-forward requests",
        "### watch initial sync",
        "### watch event rate",
        "concurrent idle exec sessions",
    ] {
        assert!(text.contains(title), "no table {title:?} in:\n{text}");
    }
    for client in [
        "| podlink |",
        "| kubectl |",
        "| kube-rs |",
        "| raw TLS ceiling |",
        "| direct connection |",
        "| kube-rs watcher |",
    ] {
        assert!(text.contains(client), "no row {client:?} in:\n{text}");
    }
    // Every client of every scenario succeeded in both repeats.
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('|') && l.contains("failed"))
        .collect();
    assert!(failed.is_empty(), "failed runs: {failed:#?}\n{text}");
    let rows = text
        .lines()
        .filter(|l| l.starts_with('|') && l.trim_end().ends_with("| 2 |"))
        .count();
    assert!(
        rows >= 26,
        "expected ≥ 26 client rows with 2 runs each, got {rows}:\n{text}"
    );
}
