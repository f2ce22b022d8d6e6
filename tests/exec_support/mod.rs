//! Running the `podlink` binary in CLI tests: a deadline, its own process
//! group (killed on drop, also when an assertion fails), and output that is
//! printed in full when an assertion fails.

#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use podlink_testkit::spawn_piped;

/// Bound on any one command (never an assertion on speed).
pub const DEADLINE: Duration = Duration::from_secs(60);

/// `podlink` with `--kubeconfig` (when given), a clean environment for
/// cluster selection, and `args`.
pub fn podlink(kubeconfig: Option<&Path>, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_podlink"));
    if let Some(path) = kubeconfig {
        command.arg("--kubeconfig").arg(path);
    }
    command
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG");
    command
}

/// What a finished command did.
pub struct Outcome {
    pub shown: String,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\n$ {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n",
            self.shown,
            self.code,
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }
}

impl Outcome {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Asserts the exit code, printing everything otherwise.
    pub fn code(&self, want: i32) -> &Self {
        assert_eq!(self.code, Some(want), "{self:?}");
        self
    }
}

/// Kills a child's process group on drop.
pub struct Running {
    pub child: Child,
    shown: String,
}

impl Running {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`"INT"`, `"TERM"`, `"HUP"`) to the child.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to [`DEADLINE`] and collects the output.
    pub fn finish(mut self) -> Outcome {
        let mut stdout = self.child.stdout.take().expect("piped stdout");
        let mut stderr = self.child.stderr.take().expect("piped stderr");
        let out = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let err = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            buf
        });
        let deadline = Instant::now() + DEADLINE;
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status.code();
            }
            assert!(
                Instant::now() < deadline,
                "`{}` did not finish within {DEADLINE:?}",
                self.shown
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Outcome {
            shown: self.shown.clone(),
            code,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(format!("-{}", self.child.id()))
                .status();
            let _ = self.child.wait();
        }
    }
}

/// Starts `command` with piped output and `stdin` (closed after writing).
pub fn spawn(mut command: Command, stdin: Option<Vec<u8>>) -> Running {
    let shown = format!("{command:?}");
    let child = spawn_piped(&mut command, stdin, &shown);
    Running { child, shown }
}

/// Runs `command` to completion.
pub fn run(command: Command, stdin: Option<Vec<u8>>) -> Outcome {
    spawn(command, stdin).finish()
}

/// Host processes whose command line contains `needle`.
pub fn host_processes_with(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .contains(needle)
                .then_some(pid)
        })
        .collect()
}

/// Kills host processes matching `needle` when dropped.
pub struct KillOnDrop(pub String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in host_processes_with(&self.0) {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}
