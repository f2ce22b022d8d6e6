//! One container: its spec, its current process, and the supervision loop
//! that restarts it according to `restartPolicy`.
//!
//! ```text
//!            spawn ok              exit
//!  Waiting ───────────▶ Running ─────────▶ Terminated ──▶ (finished)
//!     ▲                                        │ restart policy says again
//!     └──────────── CrashLoopBackOff ◀─────────┘ (1 s doubling to 30 s)
//! ```

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{broadcast, watch};

use super::{container_argv, container_env, Output, OutputStream, PodHandle, StdinWriter};
use crate::processes::{ProcessInfo, ProcessKind};
use crate::pty::Pty;
use crate::state::State;
use crate::sys;

/// How many output chunks an attach session may lag behind.
const OUTPUT_CAPACITY: usize = 1024;
/// First restart back-off; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run this long resets the back-off.
const STABLE_RUN: Duration = Duration::from_secs(10);
/// How long output pumps may outlive the process (a grandchild holding the
/// pipe open must not keep the container "running").
const PUMP_DRAIN: Duration = Duration::from_secs(2);
const READ_CHUNK: usize = 32 * 1024;

/// How a run ended.
#[derive(Debug, Clone)]
pub(crate) struct Termination {
    pub(crate) exit_code: i32,
    pub(crate) reason: String,
    pub(crate) message: String,
    pub(crate) started_at: String,
    pub(crate) finished_at: String,
    pub(crate) pid: u32,
}

/// Where the container is.
#[derive(Debug, Clone)]
pub(crate) enum RunState {
    Waiting { reason: String, message: String },
    Running { started_at: String, pid: u32 },
    Terminated(Termination),
}

/// Mutable container state.
#[derive(Debug)]
pub(crate) struct ContainerState {
    pub(crate) current: RunState,
    pub(crate) last: Option<Termination>,
    pub(crate) restarts: u32,
    pub(crate) started_once: bool,
}

/// A container of a running pod.
pub(crate) struct Container {
    pub(crate) name: String,
    pub(crate) image: String,
    pub(crate) argv: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) stdin_open: bool,
    /// `stdinOnce: true`: stdin closes after the first attach session.
    pub(crate) stdin_once: bool,
    /// `tty: true`: the main process runs on a pseudo-terminal.
    pub(crate) tty: bool,
    pub(crate) log_path: PathBuf,
    pub(crate) stdin: StdinWriter,
    pub(crate) output: broadcast::Sender<Output>,
    /// Bytes appended to the log so far (followers wait on it).
    pub(crate) log_len: watch::Sender<u64>,
    /// True once the container will never run again.
    pub(crate) finished: watch::Sender<bool>,
    pub(crate) state: Mutex<ContainerState>,
}

impl Container {
    pub(crate) fn new(spec: &Value, workdir: &Path) -> Self {
        let name = spec
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("main")
            .to_owned();
        Self {
            image: spec
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            argv: container_argv(spec),
            env: container_env(spec),
            stdin_open: spec.get("stdin").and_then(Value::as_bool).unwrap_or(false),
            stdin_once: spec
                .get("stdinOnce")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            tty: spec.get("tty").and_then(Value::as_bool).unwrap_or(false),
            log_path: workdir.join(format!("{name}.log")),
            stdin: Arc::new(tokio::sync::Mutex::new(None)),
            output: broadcast::channel(OUTPUT_CAPACITY).0,
            log_len: watch::channel(0).0,
            finished: watch::channel(false).0,
            state: Mutex::new(ContainerState {
                current: RunState::Waiting {
                    reason: "ContainerCreating".into(),
                    message: String::new(),
                },
                last: None,
                restarts: 0,
                started_once: false,
            }),
            name,
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ContainerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the log may still grow.
    pub(crate) fn is_finished(&self) -> bool {
        *self.finished.borrow()
    }
}

/// Runs the container until its restart policy (or a deletion) ends it.
pub(crate) async fn supervise(
    state: Arc<State>,
    pod: Arc<PodHandle>,
    container: Arc<Container>,
    policy: &str,
) {
    let mut stopping = pod.stopping.subscribe();
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *stopping.borrow() {
            break;
        }
        let began = tokio::time::Instant::now();
        let ended = run_once(&state, &pod, &container).await;
        let failed = ended.exit_code != 0;
        container.lock().current = RunState::Terminated(ended.clone());
        let again = match policy {
            "Never" => false,
            "OnFailure" => failed,
            _ => true,
        };
        if !again || *stopping.borrow() {
            break;
        }
        if began.elapsed() >= STABLE_RUN {
            backoff = FIRST_BACKOFF;
        }
        {
            let mut st = container.lock();
            st.last = Some(ended);
            st.restarts += 1;
            st.current = RunState::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: format!(
                    "back-off {}s restarting failed container={} pod={}",
                    backoff.as_secs(),
                    container.name,
                    pod.name
                ),
            };
        }
        state.publish_pod_status(&pod);
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stopping.wait_for(|s| *s) => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    container.finished.send_replace(true);
    state.publish_pod_status(&pod);
}

fn start_failure(container: &Container, started_at: String, e: &std::io::Error) -> Termination {
    let message = format!("failed to start {:?}: {e}", container.argv[0]);
    append_log(container, format!("{message}\n").as_bytes());
    Termination {
        exit_code: 128,
        reason: "StartError".into(),
        message,
        started_at: started_at.clone(),
        finished_at: started_at,
        pid: 0,
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(128)
}

async fn run_once(state: &Arc<State>, pod: &PodHandle, container: &Container) -> Termination {
    let started_at = crate::meta::now_rfc3339();
    let mut command = tokio::process::Command::new(&container.argv[0]);
    command
        .args(&container.argv[1..])
        .current_dir(&pod.workdir)
        .env("HOSTNAME", &pod.name)
        .envs(container.env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(false);
    if let Some(netns) = &pod.netns {
        sys::enter_netns(&mut command, netns.clone());
    }
    // A tty container gets a terminal (and its own session, so it leads
    // its process group); others get pipes and a new process group.
    let pty = if container.tty {
        match Pty::open().and_then(|pty| pty.configure(&mut command).map(|()| pty)) {
            Ok(pty) => Some(pty),
            Err(e) => return start_failure(container, started_at, &e),
        }
    } else {
        command
            .stdin(if container.stdin_open {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        None
    };
    let spawned = command.spawn();
    // The command holds copies of the terminal's secondary side.
    drop(command);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return start_failure(container, started_at, &e),
    };
    let master = match pty.map(Pty::into_master).transpose() {
        Ok(master) => master,
        Err(e) => {
            sys::kill_group(child.id().unwrap_or(0), sys::Signal::Kill);
            let _ = child.wait().await;
            return start_failure(container, started_at, &e);
        }
    };
    let pid = child.id().unwrap_or(0);
    let _guard = state.processes.register(ProcessInfo {
        namespace: pod.namespace.clone(),
        pod: pod.name.clone(),
        container: container.name.clone(),
        pid,
        kind: ProcessKind::Main,
        command: container.argv.clone(),
    });
    if let Some(stdin) = child.stdin.take() {
        *container.stdin.lock().await = Some(Box::new(stdin));
    } else if let (Some(master), true) = (&master, container.stdin_open) {
        *container.stdin.lock().await = Some(Box::new(master.clone()));
    }
    {
        let mut st = container.lock();
        st.current = RunState::Running {
            started_at: started_at.clone(),
            pid,
        };
        st.started_once = true;
    }
    state.publish_pod_status(pod);
    let mut pumps = tokio::task::JoinSet::new();
    let shared = Arc::new(PumpTarget {
        log_path: container.log_path.clone(),
        output: container.output.clone(),
        log_len: container.log_len.clone(),
    });
    if let Some(out) = child.stdout.take() {
        pumps.spawn(pump(out, OutputStream::Stdout, shared.clone()));
    }
    if let Some(err) = child.stderr.take() {
        pumps.spawn(pump(err, OutputStream::Stderr, shared.clone()));
    }
    if let Some(master) = master {
        // With a terminal everything the process writes is one stream.
        pumps.spawn(pump(master, OutputStream::Stdout, shared));
    }
    let status = child.wait().await;
    *container.stdin.lock().await = None;
    let drained = tokio::time::timeout(PUMP_DRAIN, async {
        while pumps.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        pumps.abort_all();
    }
    let code = status.map(exit_code).unwrap_or(128);
    Termination {
        exit_code: code,
        reason: if code == 0 { "Completed" } else { "Error" }.into(),
        message: String::new(),
        started_at,
        finished_at: crate::meta::now_rfc3339(),
        pid,
    }
}

struct PumpTarget {
    log_path: PathBuf,
    output: broadcast::Sender<Output>,
    log_len: watch::Sender<u64>,
}

fn append_to(path: &Path, log_len: &watch::Sender<u64>, data: &[u8]) {
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(data));
    match written {
        Ok(()) => {
            log_len.send_modify(|n| *n += data.len() as u64);
        }
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot append container log"),
    }
}

fn append_log(container: &Container, data: &[u8]) {
    append_to(&container.log_path, &container.log_len, data);
}

async fn pump(mut from: impl AsyncRead + Unpin, stream: OutputStream, to: Arc<PumpTarget>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                append_to(&to.log_path, &to.log_len, &buf[..n]);
                // No attach session listening is fine.
                let _ = to.output.send(Output {
                    stream,
                    data: Bytes::copy_from_slice(&buf[..n]),
                });
            }
        }
    }
}
