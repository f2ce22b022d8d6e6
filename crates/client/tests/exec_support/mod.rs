//! Shared by the exec test files: a sandbox, a client for it, and helpers
//! to run commands over each protocol.

#![allow(dead_code)]

use std::time::Duration;

use podlink_client::exec::{ExecRequest, ExitStatus, Output, ProtocolChoice};
use podlink_client::{Client, ClientOptions};
use podlink_testkit::TestSandbox;

/// Every protocol a test runs through in turn.
pub const PROTOCOLS: [ProtocolChoice; 2] = [ProtocolChoice::WebSocket, ProtocolChoice::Spdy];

/// A bound for any single wait in these tests (never an assertion on speed).
pub const DEADLINE: Duration = Duration::from_secs(60);

pub async fn client(sandbox: &TestSandbox) -> Client {
    Client::from_options(&ClientOptions::new().kubeconfig(sandbox.kubeconfig()))
        .await
        .expect("client for the sandbox")
}

/// Run `argv` in pod demo over `protocol`, bounded by [`DEADLINE`].
pub async fn run(client: &Client, protocol: ProtocolChoice, argv: &[&str]) -> Output {
    let request = ExecRequest::new("demo", argv.iter().copied()).with_protocol(protocol);
    tokio::time::timeout(DEADLINE, client.run(request))
        .await
        .unwrap_or_else(|_| panic!("{argv:?} over {protocol:?} did not finish within {DEADLINE:?}"))
        .unwrap_or_else(|e| panic!("{argv:?} over {protocol:?}: {e}"))
}

pub fn code(status: &ExitStatus) -> u32 {
    match status {
        ExitStatus::Success => 0,
        ExitStatus::Exited { code } => *code,
        other => panic!("no exit code: {other:?}"),
    }
}

/// Host processes whose command line contains `needle` (sandbox pods are
/// host processes, so this sees what the sandbox's registry may not:
/// orphaned grandchildren).
pub fn host_processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(pid);
            }
        }
    }
    found
}

/// Kills host processes matching `needle` when dropped (clean-up even when
/// an assertion fails).
pub struct KillOnDrop(pub String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in host_processes_with(&self.0) {
            let _ = std::process::Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .status();
        }
    }
}
