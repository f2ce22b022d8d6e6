//! Running kubectl (or any command) with a deadline and readable failures.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Default deadline for one command.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts `command` in a process group of its own (so that a guard can
/// kill all it starts) with stdout and stderr piped and, when `stdin` is
/// given, that data written on a thread and the pipe then closed (stdin is
/// null otherwise). Panics (it is for tests) naming `shown` if it cannot
/// start.
pub fn spawn_piped(command: &mut Command, stdin: Option<Vec<u8>>, shown: &str) -> Child {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    child
}

/// The kubectl binary: `kubectl` from PATH, or with `version`
/// (`"1.28"`) the `kubectl.1.28` that sits next to the gcloud dispatcher.
pub fn kubectl_binary(version: Option<&str>) -> PathBuf {
    let Some(version) = version else {
        return PathBuf::from("kubectl");
    };
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("kubectl"))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| PathBuf::from("/usr/bin/kubectl"));
    let real = std::fs::canonicalize(&on_path).unwrap_or(on_path);
    real.with_file_name(format!("kubectl.{version}"))
}

/// A command being built. Runs in its own process group, so a timeout
/// kills the dispatcher's child kubectl too.
#[derive(Debug, Clone)]
#[must_use]
pub struct Kubectl {
    program: PathBuf,
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(String, OsString)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Kubectl {
    /// `kubectl --kubeconfig KUBECONFIG` with `KUBECACHEDIR=cache_dir`.
    pub fn new(kubeconfig: &Path, cache_dir: &Path) -> Self {
        Self {
            program: kubectl_binary(None),
            kubeconfig: kubeconfig.to_owned(),
            cache_dir: cache_dir.to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Uses a specific kubectl version (`"1.28"` → `kubectl.1.28`).
    pub fn version(mut self, version: &str) -> Self {
        self.program = kubectl_binary(Some(version));
        self
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        args.into_iter().fold(self, Self::arg)
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.envs.push((key.to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Feeds `data` on stdin (then closes it).
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// Changes the deadline (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command line, for messages.
    fn shown(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn spawn_child(self) -> (Child, String, Duration) {
        let shown = self.shown();
        let mut command = Command::new(&self.program);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(&self.args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", &self.cache_dir)
            .env_remove("KUBECTL_REMOTE_COMMAND_WEBSOCKETS")
            .env_remove("KUBECTL_PORT_FORWARD_WEBSOCKETS")
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
        let child = spawn_piped(&mut command, self.stdin, &shown);
        (child, shown, self.timeout)
    }

    /// Runs to completion (killing it at the deadline) and collects output.
    pub fn run(self) -> CmdOutput {
        let (mut child, shown, timeout) = self.spawn_child();
        let mut guard = GroupGuard(Some(child.id()));
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                timed_out = true;
                guard.kill();
                break child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        guard.0 = None;
        CmdOutput {
            command: shown,
            code: status.and_then(|s| s.code()),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
            timed_out,
        }
    }

    /// Starts it in the background; see [`Running`].
    pub fn spawn(self) -> Running {
        let (mut child, shown, _) = self.spawn_child();
        let shared = Arc::new((Mutex::new(Collected::default()), Condvar::new()));
        for (pipe, is_err) in [
            (
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
                false,
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
                true,
            ),
        ] {
            let Some(mut pipe) = pipe else { continue };
            let shared = shared.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    let n = pipe.read(&mut buf).unwrap_or(0);
                    let (lock, cvar) = &*shared;
                    let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
                    if n == 0 {
                        c.closed += 1;
                        cvar.notify_all();
                        return;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]);
                    if is_err {
                        c.stderr.push_str(&text)
                    } else {
                        c.stdout.push_str(&text)
                    }
                    cvar.notify_all();
                }
            });
        }
        Running {
            guard: GroupGuard(Some(child.id())),
            child,
            command: shown,
            shared,
        }
    }
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    })
}

/// Kills a process group on drop.
#[derive(Debug)]
struct GroupGuard(Option<u32>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pid) = self.0.take() {
            // `kill -KILL -- -PGID` without unsafe code.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The result of [`Kubectl::run`].
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
    /// Whether the deadline killed it.
    pub timed_out: bool,
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "command: {}\nexit: {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            self.stdout,
            self.stderr
        )
    }
}

impl CmdOutput {
    /// Panics (printing everything) unless it exited 0.
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert!(
            self.code == Some(0) && !self.timed_out,
            "command failed\n{self}"
        );
        self
    }

    /// Panics (printing everything) unless it exited non-zero.
    #[track_caller]
    pub fn failure(&self) -> &Self {
        assert!(
            self.code.is_some_and(|c| c != 0) && !self.timed_out,
            "command should have failed\n{self}"
        );
        self
    }

    /// Panics unless stdout contains `needle`.
    #[track_caller]
    pub fn stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{self}"
        );
        self
    }

    /// Panics unless stderr contains `needle`.
    #[track_caller]
    pub fn stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }

    /// Parses stdout as JSON (panics with everything on failure).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{self}"))
    }
}

#[derive(Debug, Default)]
struct Collected {
    stdout: String,
    stderr: String,
    closed: u8,
}

/// A background command; its process group is killed on drop.
#[derive(Debug)]
pub struct Running {
    guard: GroupGuard,
    child: Child,
    command: String,
    shared: Arc<(Mutex<Collected>, Condvar)>,
}

impl Running {
    /// Waits until stdout satisfies `check` (panicking with all output at
    /// the deadline); returns stdout so far.
    #[track_caller]
    pub fn wait_stdout(
        &self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.shared;
        let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if check(&c.stdout) {
                return c.stdout.clone();
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "timed out after {timeout:?} waiting for {what}\ncommand: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.command,
                c.stdout,
                c.stderr
            );
            c = cvar
                .wait_timeout(c, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Stdout so far.
    pub fn stdout(&self) -> String {
        self.shared
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stdout
            .clone()
    }

    /// Waits (bounded) for it to exit by itself and returns its output.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> CmdOutput {
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                timed_out = true;
                self.guard.kill();
                break self.child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.collect(status.and_then(|s| s.code()), timed_out)
    }

    /// Kills it and returns what it printed.
    pub fn stop(mut self) -> CmdOutput {
        self.guard.kill();
        let status = self.child.wait().ok();
        self.collect(status.and_then(|s| s.code()), false)
    }

    fn collect(&self, code: Option<i32>, timed_out: bool) -> CmdOutput {
        // Let the reader threads see EOF (bounded).
        let (lock, cvar) = &*self.shared;
        let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + Duration::from_secs(2);
        while c.closed < 2 && Instant::now() < deadline {
            c = cvar
                .wait_timeout(c, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        CmdOutput {
            command: self.command.clone(),
            code,
            stdout: c.stdout.clone(),
            stderr: c.stderr.clone(),
            timed_out,
        }
    }
}
