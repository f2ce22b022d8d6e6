//! The soak's CI profile: `podlink-soak --duration 2m` end to end against a
//! real `podlink sandbox` process, every invariant asserted from its JSON
//! figures (the program also exits non-zero when one fails).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use podlink_testkit::podlink::{podlink_beside, StopOnDrop};

/// Bound on the whole run: 2 minutes of load, then draining, convergence
/// and the leak check, each bounded inside the program.
const DEADLINE: Duration = Duration::from_secs(600);

fn count(figures: &serde_json::Value, name: &str) -> u64 {
    figures["counts"][name].as_u64().unwrap_or(u64::MAX)
}

#[test]
fn two_minute_soak_keeps_every_invariant() {
    let soak = PathBuf::from(env!("CARGO_BIN_EXE_podlink-soak"));
    let podlink = podlink_beside(&soak).unwrap_or_else(|e| panic!("{e}"));
    let scratch = tempfile::tempdir().expect("scratch folder");
    let json = scratch.path().join("figures.json");
    let child = Command::new(&soak)
        .args(["--duration", "2m", "--seed", "2"])
        .arg("--podlink")
        .arg(&podlink)
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .spawn()
        .expect("start podlink-soak");
    // Stops the soak (which stops its sandbox and that its pods) if the
    // test fails early.
    let mut running = StopOnDrop::new(child, Duration::from_secs(30));
    let status = running.wait(DEADLINE, Duration::from_millis(500), "podlink-soak");
    let text = std::fs::read_to_string(&json).expect("the soak wrote its figures");
    let figures: serde_json::Value = serde_json::from_str(&text).expect("figures are JSON");
    println!("{text}");

    for name in [
        "exec_corrupt",
        "forward_corrupt",
        "exec_wrong_status",
        "exec_unclear_errors",
        "exec_hung",
        "forward_hung",
        "forward_unclear_errors",
        "informer_terminations",
    ] {
        assert_eq!(count(&figures, name), 0, "{name}");
    }
    assert_eq!(figures["processes_leaked"], 0, "leaked remote processes");
    assert_eq!(figures["panics"], 0, "panics");
    assert_eq!(
        figures["informer_mismatches"],
        serde_json::json!([]),
        "informer stores equal a fresh list"
    );
    for kind in [
        "drop-connections",
        "blackhole",
        "idle-timeout",
        "watch-error",
        "compact",
    ] {
        assert!(
            figures["faults"][kind].as_u64().unwrap_or(0) > 0,
            "fault {kind} injected"
        );
    }
    assert!(count(&figures, "exec_completed") > 0, "exec sessions ran");
    assert!(count(&figures, "forward_completed") > 0, "forwards ran");
    assert!(
        count(&figures, "exec_cancels") > 0,
        "sessions were cancelled"
    );
    assert!(figures["bytes_verified"].as_u64().unwrap_or(0) > 0);
    assert!(status.success(), "podlink-soak failed: {status}");
}
