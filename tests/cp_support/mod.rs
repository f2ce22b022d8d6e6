//! Running the `podlink` binary with a deadline, for the cp and doctor CLI
//! tests: output collected, the child killed if the test fails.

#![allow(dead_code)] // each test file uses a different part

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use podlink_testkit::TestSandbox;

/// Bounds every wait; never an assertion about speed.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A child killed (and reaped) when dropped, so a failing test leaves
/// nothing running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// How a run ended.
pub struct Outcome {
    /// Exit status (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn collect(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    })
}

/// A running `podlink`, killed if dropped before it ends.
pub struct Running {
    guard: Guard,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    shown: String,
}

impl Running {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.guard.0.id()
    }

    /// Wait (bounded by [`PATIENCE`]) for it to end.
    pub fn wait(mut self) -> Outcome {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.guard.0.try_wait().expect("wait for podlink") {
                break status;
            }
            assert!(Instant::now() < deadline, "{} did not finish", self.shown);
            std::thread::sleep(Duration::from_millis(20));
        };
        Outcome {
            code: status.code(),
            stdout: self.stdout.join().expect("stdout reader"),
            stderr: self.stderr.join().expect("stderr reader"),
        }
    }
}

/// The variables that choose a proxy; cleared so that only a test's own
/// settings apply.
pub const PROXY_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Start `podlink --kubeconfig KUBECONFIG ARGS`.
pub fn start_with(kubeconfig: &Path, args: &[&str]) -> Running {
    start_env(kubeconfig, args, &[])
}

/// Start `podlink --kubeconfig KUBECONFIG ARGS` with the proxy variables
/// cleared, then `envs` set.
pub fn start_env(kubeconfig: &Path, args: &[&str], envs: &[(&str, &str)]) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_podlink"));
    for name in PROXY_VARS {
        command.env_remove(name);
    }
    let mut child = command
        .envs(envs.iter().copied())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run podlink");
    Running {
        stdout: collect(child.stdout.take()),
        stderr: collect(child.stderr.take()),
        guard: Guard(child),
        shown: format!("podlink {args:?}"),
    }
}

/// Run `podlink --kubeconfig KUBECONFIG ARGS` to its end.
pub fn podlink_with(kubeconfig: &Path, args: &[&str]) -> Outcome {
    start_with(kubeconfig, args).wait()
}

/// Run `podlink ARGS` against `sandbox`.
pub fn podlink(sandbox: &TestSandbox, args: &[&str]) -> Outcome {
    podlink_with(sandbox.kubeconfig(), args)
}
