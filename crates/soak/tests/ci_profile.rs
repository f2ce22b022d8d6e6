//! The soak's CI profile: `podlink-soak --duration 2m` end to end against a
//! real `podlink sandbox` process, every invariant asserted from its JSON
//! figures (the program also exits non-zero when one fails).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bound on the whole run: 2 minutes of load, then draining, convergence
/// and the leak check, each bounded inside the program.
const DEADLINE: Duration = Duration::from_secs(600);

/// Stops the soak (which stops its sandbox and that its pods) if the test
/// fails early.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn count(figures: &serde_json::Value, name: &str) -> u64 {
    figures["counts"][name].as_u64().unwrap_or(u64::MAX)
}

#[test]
fn two_minute_soak_keeps_every_invariant() {
    let soak = PathBuf::from(env!("CARGO_BIN_EXE_podlink-soak"));
    let podlink = soak.with_file_name("podlink");
    assert!(
        podlink.exists(),
        "{} is missing: build it first (cargo build -p podlink)",
        podlink.display()
    );
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
    let mut guard = Guard(child);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = guard.0.try_wait().expect("poll podlink-soak") {
            break status;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "podlink-soak did not finish within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
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
