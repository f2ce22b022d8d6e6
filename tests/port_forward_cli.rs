//! `podlink port-forward` end to end against `podlink sandbox`, with real
//! kubectl run through the same scenarios for comparison. podlink's results
//! are asserted; kubectl's are only printed (its failures are the known
//! ones: it dies on the first refused port and never reconnects).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bounds every wait; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(60);
const HTTP_PORT: u16 = 8080;
const CLOSED_PORT: u16 = 8081;
const BODY: &str = "hello from the pod\n";

/// A child process ended (SIGTERM, then SIGKILL) when dropped, so that a
/// failing test leaves nothing running.
struct Proc {
    child: Child,
    name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} ignored SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "podlink-pf-{tag}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lines of a child's stdout, read on a thread so waits can be bounded.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

struct Env {
    dir: TempDir,
    _sandbox: Proc,
}

impl Env {
    fn kubeconfig(&self) -> PathBuf {
        self.dir.0.join("kubeconfig")
    }

    fn kubectl(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.env("KUBECONFIG", self.kubeconfig())
            .env("KUBECACHEDIR", self.dir.0.join("kubecache"));
        cmd
    }

    fn run_kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut child = self
            .kubectl()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        let out = child.wait_with_output().expect("kubectl output");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fault(&self, json: &str) {
        self.run_kubectl(
            &["create", "--raw", "/sandbox/v1/faults", "-f", "-"],
            Some(json),
        );
    }
}

fn start_sandbox() -> Env {
    let dir = TempDir::new("cli");
    let kubeconfig = dir.0.join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_podlink"))
        .args(["sandbox", "--no-demo", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--state-dir")
        .arg(dir.0.join("state"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("podlink sandbox starts");
    let lines = lines_of(&mut child);
    let sandbox = Proc {
        child,
        name: "podlink sandbox",
    };
    let ready = lines.recv_timeout(PATIENCE).expect("sandbox ready line");
    assert!(ready.starts_with("sandbox ready: "), "{ready}");
    let env = Env {
        dir,
        _sandbox: sandbox,
    };
    env.create_web_pod("default");
    env
}

impl Env {
    /// Pod `web` in `namespace`: an HTTP server serving `hello.txt`.
    fn create_web_pod(&self, namespace: &str) {
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "web", "labels": { "app": "web" } },
            "spec": { "containers": [{
                "name": "main", "image": "python",
                "command": ["python3", "-c", format!(
                    "import http.server as h\nopen('hello.txt','w').write({BODY:?})\n\
                     h.ThreadingHTTPServer.request_queue_size=512\n\
                     h.ThreadingHTTPServer(('0.0.0.0',{HTTP_PORT}),h.SimpleHTTPRequestHandler).serve_forever()")],
                "ports": [{ "name": "http", "containerPort": HTTP_PORT }],
            }]}
        });
        self.run_kubectl(
            &["-n", namespace, "apply", "--validate=false", "-f", "-"],
            Some(&pod.to_string()),
        );
        let deadline = Instant::now() + PATIENCE;
        while self.run_kubectl(
            &[
                "-n",
                namespace,
                "get",
                "pod",
                "web",
                "-o",
                "jsonpath={.status.phase}",
            ],
            None,
        ) != "Running"
        {
            assert!(Instant::now() < deadline, "pod web never ran");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A running port-forward (podlink's or kubectl's) and its local ports.
struct Forward {
    proc: Proc,
    ports: Vec<(SocketAddr, u16)>,
}

impl Forward {
    fn is_alive(&mut self) -> bool {
        matches!(self.proc.child.try_wait(), Ok(None))
    }

    fn local(&self, remote: u16) -> SocketAddr {
        self.ports
            .iter()
            .find(|(l, r)| *r == remote && l.is_ipv4())
            .map(|(l, _)| *l)
            .expect("forwarded port")
    }
}

fn start_forward(mut cmd: Command, name: &'static str, expect_lines: usize) -> Forward {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("port-forward starts");
    let lines = lines_of(&mut child);
    let proc = Proc { child, name };
    let mut ports = Vec::new();
    while ports
        .iter()
        .filter(|(l, _): &&(SocketAddr, u16)| l.is_ipv4())
        .count()
        < expect_lines
    {
        let line = lines.recv_timeout(PATIENCE).expect("a Forwarding line");
        // `Forwarding from 127.0.0.1:41234 -> 8080`
        if let Some(rest) = line.strip_prefix("Forwarding from ") {
            let (local, remote) = rest.split_once(" -> ").expect("arrow");
            ports.push((
                local.parse().expect("local address"),
                remote.trim().parse().expect("remote port"),
            ));
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Forward { proc, ports }
}

fn get(addr: SocketAddr) -> Result<String, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /hello.txt HTTP/1.0\r\nHost: pod\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    s.read_to_end(&mut response).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.0 200") && body == BODY => {
            Ok(body.to_owned())
        }
        _ => Err(format!("unexpected response {text:?}")),
    }
}

fn until_serving(addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match get(addr) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// One scenario's outcome, and whether the forwarder had to be restarted
/// before it (because it had exited).
type Outcome = (&'static str, bool, Result<(), String>);

/// Restarts `forward` if it has exited; true if it did.
fn ensure_running(forward: &mut Forward, restart: &dyn Fn() -> Forward) -> bool {
    if forward.is_alive() {
        return false;
    }
    *forward = restart();
    let _ = until_serving(forward.local(HTTP_PORT));
    true
}

/// The scenarios, each on the same forwarder unless it exited (then a new
/// one is started so that every scenario still compares something).
fn scenarios(env: &Env, restart: &dyn Fn() -> Forward) -> Vec<Outcome> {
    let mut forward = restart();
    let mut results = Vec::new();
    let http = forward.local(HTTP_PORT);
    results.push(("first request", false, until_serving(http)));

    let restarted = ensure_running(&mut forward, restart);
    let http = forward.local(HTTP_PORT);
    let concurrent: Vec<_> = (0..50)
        .map(|_| std::thread::spawn(move || get(http)))
        .collect();
    let failures = concurrent
        .into_iter()
        .map(std::thread::JoinHandle::join)
        .filter(|outcome| !matches!(outcome, Ok(Ok(_))))
        .count();
    results.push((
        "50 concurrent requests",
        restarted,
        match failures {
            0 => Ok(()),
            n => Err(format!("{n} of 50 failed")),
        },
    ));

    let restarted = ensure_running(&mut forward, restart);
    let http = forward.local(HTTP_PORT);
    let refused = get(forward.local(CLOSED_PORT));
    // kubectl needs a moment to notice the error and die.
    std::thread::sleep(Duration::from_millis(500));
    results.push((
        "refused port fails alone",
        restarted,
        match (refused, get(http)) {
            (Err(_), Ok(_)) => Ok(()),
            (Ok(_), _) => Err("the closed port answered".into()),
            (Err(_), Err(e)) => Err(format!("next request failed: {e}")),
        },
    ));

    let restarted = ensure_running(&mut forward, restart);
    let http = forward.local(HTTP_PORT);
    env.fault(r#"{"kind":"idle-timeout","seconds":3}"#);
    std::thread::sleep(Duration::from_secs(10));
    results.push((
        "idle 10 s behind a 3 s idle cut",
        restarted,
        get(http).map(|_| ()),
    ));
    env.fault(r#"{"kind":"idle-timeout","seconds":0}"#);

    let restarted = ensure_running(&mut forward, restart);
    let http = forward.local(HTTP_PORT);
    env.fault(r#"{"kind":"drop-connections"}"#);
    let dropped_at = Instant::now();
    let mut outcome = get(http).map(|_| ());
    while outcome.is_err() && dropped_at.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(50));
        outcome = get(http).map(|_| ());
    }
    results.push((
        "served within 2 s after drop-connections",
        restarted,
        outcome,
    ));
    results
}

fn report(who: &str, results: &[Outcome]) {
    for (name, restarted, outcome) in results {
        let note = if *restarted {
            " (after restarting the exited forwarder)"
        } else {
            ""
        };
        match outcome {
            Ok(()) => eprintln!("{who}: {name}: ok{note}"),
            Err(e) => eprintln!("{who}: {name}: FAILED ({e}){note}"),
        }
    }
}

fn podlink_forward(env: &Env, protocol: &str) -> Forward {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_podlink"));
    cmd.arg("--kubeconfig")
        .arg(env.kubeconfig())
        .args([
            "port-forward",
            "--protocol",
            protocol,
            "--ping-interval",
            "1",
        ])
        .args([
            "pod/web",
            &format!(":{HTTP_PORT}"),
            &format!(":{CLOSED_PORT}"),
        ]);
    start_forward(cmd, "podlink port-forward", 2)
}

fn kubectl_forward(env: &Env, spdy: bool) -> Forward {
    let mut cmd = env.kubectl();
    if spdy {
        cmd.env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
    }
    cmd.args([
        "port-forward",
        "pod/web",
        &format!(":{HTTP_PORT}"),
        &format!(":{CLOSED_PORT}"),
    ]);
    start_forward(cmd, "kubectl port-forward", 2)
}

fn compare(protocol: &str, kubectl_spdy: Option<bool>) {
    let env = start_sandbox();
    let ours = scenarios(&env, &|| podlink_forward(&env, protocol));
    report(&format!("podlink --protocol {protocol}"), &ours);
    if let Some(spdy) = kubectl_spdy {
        let theirs = scenarios(&env, &|| kubectl_forward(&env, spdy));
        report(
            if spdy {
                "kubectl (spdy)"
            } else {
                "kubectl (tunnel)"
            },
            &theirs,
        );
    }
    for (name, restarted, outcome) in &ours {
        assert!(
            outcome.is_ok() && !restarted,
            "podlink --protocol {protocol}: {name}: {outcome:?} (restarted: {restarted})"
        );
    }
}

#[test]
fn tunnel_against_kubectl() {
    compare("tunnel", Some(false));
}

#[test]
fn spdy_against_kubectl() {
    compare("spdy", Some(true));
}

#[test]
fn legacy_websocket() {
    compare("websocket", None);
}

#[test]
fn bad_arguments_fail_cleanly() {
    let dir = TempDir::new("args");
    for args in [
        vec!["port-forward", "job/x", "80"],
        vec!["port-forward", "pod/web", "80:http:x"],
        vec!["port-forward", "pod/web", "70000"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_podlink"))
            .arg("--kubeconfig")
            .arg(dir.0.join("missing"))
            .args(&args)
            .output()
            .expect("podlink runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {stderr}");
        assert!(stderr.starts_with("podlink: "), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
}

#[test]
fn gives_up_with_one_line_when_the_namespace_is_deleted() {
    let env = start_sandbox();
    // JSON through apply: `kubectl create namespace` sends protobuf.
    env.run_kubectl(
        &["apply", "--validate=false", "-f", "-"],
        Some(r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"gone"}}"#),
    );
    env.create_web_pod("gone");
    let mut child = Command::new(env!("CARGO_BIN_EXE_podlink"))
        .arg("--kubeconfig")
        .arg(env.kubeconfig())
        .args([
            "-n",
            "gone",
            "port-forward",
            "pod/web",
            &format!(":{HTTP_PORT}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("port-forward starts");
    let lines = lines_of(&mut child);
    let stderr = child.stderr.take().expect("piped stderr");
    let mut forward = Proc {
        child,
        name: "podlink port-forward",
    };
    let line = lines.recv_timeout(PATIENCE).expect("a Forwarding line");
    let local: SocketAddr = line
        .strip_prefix("Forwarding from ")
        .and_then(|rest| rest.split_once(" -> "))
        .and_then(|(local, _)| local.parse().ok())
        .expect("Forwarding from ADDR -> PORT");
    until_serving(local).expect("forward serves");
    env.run_kubectl(&["delete", "namespace", "gone", "--wait=false"], None);
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = forward.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "podlink kept running after its namespace was deleted"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut text = String::new();
    BufReader::new(stderr)
        .read_to_string(&mut text)
        .expect("stderr");
    eprintln!("{text}");
    assert_eq!(status.code(), Some(255), "{text}");
    let last = text.lines().last().unwrap_or_default();
    assert!(last.starts_with("podlink: "), "{text}");
    assert!(last.contains("namespace \"gone\" not found"), "{text}");
}
