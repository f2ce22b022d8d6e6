//! Conformance matrix (issue #12): each kubectl from 1.27 to 1.33, run as
//! its own versioned binary (no dispatcher), against a sandbox that
//! reports that version. Every capability runs over WebSocket and SPDY
//! where the version has the switch; each test prints its version's table
//! and fails if any cell failed. The README's table comes from a run of
//! `cargo nextest run -p podlink-sandbox --test kubectl_matrix --no-capture`.

mod matrix_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use matrix_support::{Stream, Table, Transport};
use podlink_sandbox::SandboxConfig;
use podlink_testkit::{kubectl_binary, Kubectl, TestSandbox};

/// Bounds each wait for a pod, a line of output or a command.
const WAIT: Duration = Duration::from_secs(60);

/// Concurrent HTTP requests through each port-forward.
const CONCURRENT_REQUESTS: usize = 20;

/// Bytes sent through `exec -i` and compared byte for byte.
const STDIN_BYTES: usize = 5 << 20;

/// An HTTP server whose listen backlog holds every concurrent request.
const HTTP_SERVER: &str = "import http.server as h\n\
h.ThreadingHTTPServer.request_queue_size = 64\n\
h.ThreadingHTTPServer(('127.0.0.1', 8080), h.SimpleHTTPRequestHandler).serve_forever()\n";

/// Runs argv[1..] under a pseudo-terminal of 33 rows x 101 columns, waits
/// for `ready`, types `hi` + Enter, and prints `exit=N` then everything the
/// terminal showed. Every wait is bounded; a stuck child is killed.
const TTY_DRIVER: &str = r#"
import fcntl, os, pty, select, signal, struct, sys, termios
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    os.execv(sys.argv[1], sys.argv[1:])
seen = b""
def read_until(marker):
    global seen
    for _ in range(600):
        r, _, _ = select.select([fd], [], [], 0.1)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return False
        if not chunk:
            return False
        seen += chunk
        if marker in seen:
            return True
    return False
if read_until(b"ready"):
    os.write(fd, b"hi\r")
read_until(b"\0never\0")
done, status = os.waitpid(pid, os.WNOHANG)
if done == 0:
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
sys.stdout.write("exit=%d\n" % os.waitstatus_to_exitcode(status))
sys.stdout.write(seen.decode("utf-8", "replace"))
"#;

/// One kubectl version against its own sandbox.
struct Matrix {
    sandbox: TestSandbox,
    version: String,
    minor: u32,
}

impl Matrix {
    fn start(minor: u32) -> Self {
        let version = format!("1.{minor}");
        let sandbox = TestSandbox::with_config(SandboxConfig::new().with_kube_version(&version));
        Self {
            sandbox,
            version,
            minor,
        }
    }

    /// The versioned kubectl, with both WebSocket switches set for
    /// `transport` (left unset otherwise: the version's default).
    fn kubectl(&self, transport: Option<Transport>) -> Kubectl {
        let kubectl = self.sandbox.kubectl().version(&self.version).timeout(WAIT);
        match transport {
            Some(t) => kubectl
                .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", t.env_value())
                .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", t.env_value()),
            None => kubectl,
        }
    }

    fn create(&self, object: &str) {
        self.kubectl(None)
            .args(["create", "--validate=false", "-f", "-"])
            .stdin(object)
            .run()
            .success();
    }

    fn wait_ready(&self, pod: &str) {
        self.kubectl(None)
            .args(["wait", "--for=condition=Ready", "--timeout=60s"])
            .arg(format!("pod/{pod}"))
            .run()
            .success();
    }

    fn client_version(&self) -> String {
        let out = self
            .kubectl(None)
            .args(["version", "--client", "-o", "json"])
            .run();
        out.success().json()["clientVersion"]["gitVersion"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned()
    }

    /// Runs one capability: a single cell, or one per transport (n/a where
    /// this version has no switch for `stream`).
    fn capability(
        &self,
        table: &mut Table,
        name: &'static str,
        stream: Stream,
        check: impl Fn(Option<Transport>),
    ) {
        if stream == Stream::None {
            table.cell(name, None, || check(None));
            return;
        }
        for transport in Transport::ALL {
            match stream.unsupported(self.minor, transport) {
                Some(why) => table.not_applicable(name, transport, why),
                None => table.cell(name, Some(transport), || check(Some(transport))),
            }
        }
    }
}

fn pod_json(name: &str, container: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","labels":{{"app":"{name}"}}}},
"spec":{{"restartPolicy":"Never","containers":[{container}]}}}}"#
    )
}

fn shell_pod(name: &str, script: &str, stdin: bool) -> String {
    let container = format!(
        r#"{{"name":"main","image":"busybox","stdin":{stdin},"command":["sh","-c",{}]}}"#,
        json_string(script)
    );
    pod_json(name, &container)
}

fn json_string(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// The sandbox reports this version, and the gcloud dispatcher (plain
/// `kubectl`) therefore runs a client of that minor version.
fn version_and_dispatch(m: &Matrix) {
    let direct = m.kubectl(None).args(["version", "-o", "json"]).run();
    let server = &direct.success().json()["serverVersion"];
    assert_eq!(server["minor"], m.minor.to_string(), "{direct}");
    let dispatched = m.sandbox.kubectl().args(["version", "-o", "json"]).run();
    // The built-in 1.32 says `"minor":"32+"`, so compare gitVersion.
    let client = &dispatched.success().json()["clientVersion"]["gitVersion"];
    let prefix = format!("v{}.", m.version);
    assert!(
        client.as_str().is_some_and(|v| v.starts_with(&prefix)),
        "{dispatched}"
    );
}

fn get_pods_columns(m: &Matrix) {
    let out = m.kubectl(None).args(["get", "pods"]).run();
    out.success();
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{out}"
    );
    let demo = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&"demo"))
        .unwrap_or_else(|| panic!("no demo row\n{out}"));
    assert_eq!(demo[1..4], ["1/1", "Running", "0"], "{out}");
}

fn watch_sees_created_pod(m: &Matrix) {
    let watch = m.kubectl(None).args(["get", "pods", "-w"]).spawn();
    watch.wait_stdout(WAIT, "the initial list", |s| s.contains("demo"));
    m.kubectl(None)
        .args(["run", "watched", "--image=busybox", "--restart=Never", "--"])
        .args(["sleep", "600"])
        .run()
        .success();
    watch.wait_stdout(WAIT, "the created pod", |s| {
        s.lines().any(|l| l.starts_with("watched "))
    });
    watch.stop();
}

fn exec_echo(m: &Matrix, t: Option<Transport>) {
    let out = m
        .kubectl(t)
        .args(["exec", "demo", "--", "echo", "hi"])
        .run();
    assert_eq!(out.success().stdout, "hi\n", "{out}");
}

fn exec_exit_7(m: &Matrix, t: Option<Transport>) {
    let out = m
        .kubectl(t)
        .args(["exec", "demo", "--", "sh", "-c", "echo out; exit 7"])
        .run();
    assert_eq!(out.code, Some(7), "{out}");
    assert_eq!(out.stdout, "out\n", "{out}");
    out.stderr_contains("command terminated with exit code 7");
}

fn exec_stdin_exact(m: &Matrix, t: Option<Transport>, target: &Path) {
    let mut data = vec![0u8; STDIN_BYTES];
    rand::fill(&mut data[..]);
    // The pod is a local process: it writes what it read to a host file
    // that the test compares byte for byte (binary, so not via stdout text).
    let script = format!("cat > '{}'", target.display());
    m.kubectl(t)
        .args(["exec", "-i", "demo", "--", "sh", "-c", &script])
        .stdin(data.clone())
        .run()
        .success();
    let got = std::fs::read(target).expect("read what the pod wrote");
    let _ = std::fs::remove_file(target);
    assert_eq!(got.len(), data.len(), "length");
    assert!(got == data, "stdin bytes differ");
}

fn exec_tty(m: &Matrix, t: Option<Transport>) {
    let Some(t) = t else { return };
    let kubectl = kubectl_binary(Some(&m.version));
    let script = "stty size; echo ready; read x; echo got-$x; exit 3";
    // `timeout` bounds the driver even if it wedges; the driver kills kubectl.
    let out = Command::new("timeout")
        .args(["-s", "KILL", "90", "python3", "-c", TTY_DRIVER])
        .arg(&kubectl)
        .arg("--kubeconfig")
        .arg(m.sandbox.kubeconfig())
        .args(["exec", "-it", "demo", "--", "sh", "-c", script])
        .env("KUBECACHEDIR", m.sandbox.kube_cache_dir())
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", t.env_value())
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let shown = format!(
        "{text}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("exit=3\n"), "{shown}");
    assert!(text.contains("33 101"), "window size not seen: {shown}");
    assert!(text.contains("got-hi"), "typed line not seen: {shown}");
}

fn attach(m: &Matrix, t: Option<Transport>) {
    let pod = match t {
        Some(Transport::Spdy) => "attach-spdy",
        _ => "attach-ws",
    };
    m.create(&shell_pod(pod, "read line; echo got:$line", true));
    m.wait_ready(pod);
    let out = m
        .kubectl(t)
        .args(["attach", "-i", pod])
        .stdin("hello\n")
        .run();
    out.success().stdout_contains("got:hello");
}

fn logs_follow(m: &Matrix, state_dir: &Path) {
    let go = state_dir.join("matrix-logs-go");
    let script = format!(
        "echo first; i=0; while [ ! -f '{}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo second",
        go.display()
    );
    m.create(&shell_pod("logger", &script, false));
    m.wait_ready("logger");
    let logs = m.kubectl(None).args(["logs", "-f", "logger"]).spawn();
    logs.wait_stdout(WAIT, "the first line", |s| s.contains("first\n"));
    std::fs::write(&go, b"").expect("release the logger");
    let out = logs.wait(WAIT);
    assert_eq!(out.success().stdout, "first\nsecond\n", "{out}");
}

fn http_get(port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(WAIT))?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

fn port_forward(m: &Matrix, t: Option<Transport>, target: &str, remote: &str, shown: &str) {
    let forward = m
        .kubectl(t)
        .args(["port-forward", target, &format!(":{remote}")])
        .spawn();
    let stdout = forward.wait_stdout(WAIT, "the Forwarding line", |s| s.contains('\n'));
    // "Forwarding from 127.0.0.1:PORT -> 8080"
    let line = stdout.lines().next().unwrap_or("");
    let (port, to) = line
        .strip_prefix("Forwarding from 127.0.0.1:")
        .and_then(|rest| rest.split_once(" -> "))
        .unwrap_or_else(|| panic!("unexpected port-forward output {line:?}"));
    assert_eq!(to, shown, "{line}");
    let port: u16 = port.parse().expect("local port");
    let responses: Vec<std::io::Result<String>> = std::thread::scope(|s| {
        let requests: Vec<_> = (0..CONCURRENT_REQUESTS)
            .map(|_| s.spawn(move || http_get(port)))
            .collect();
        requests
            .into_iter()
            .map(|r| r.join().expect("request thread"))
            .collect()
    });
    let ok = responses
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.starts_with("HTTP/1.0 200")))
        .count();
    let out = forward.stop();
    assert_eq!(ok, CONCURRENT_REQUESTS, "{responses:?}\n{out}");
}

fn start_web(m: &Matrix) {
    let container = format!(
        r#"{{"name":"web","image":"python","ports":[{{"name":"http","containerPort":8080}}],"command":["python3","-c",{}]}}"#,
        json_string(HTTP_SERVER)
    );
    m.create(&pod_json("web", &container));
    m.create(
        r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},
"spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":"http"}]}}"#,
    );
    m.wait_ready("web");
    let probe = "import socket; socket.create_connection(('127.0.0.1', 8080)).close()";
    podlink_testkit::wait_until(WAIT, "web listening on 8080", || {
        m.kubectl(None)
            .args(["exec", "web", "--", "python3", "-c", probe])
            .run()
            .code
            .filter(|c| *c == 0)
    });
}

fn delete_with_wait(m: &Matrix) {
    m.kubectl(None)
        .args(["delete", "pod", "watched", "--wait=true", "--timeout=60s"])
        .run()
        .success()
        .stdout_contains("pod \"watched\" deleted");
    m.kubectl(None)
        .args(["get", "pod", "watched"])
        .run()
        .failure()
        .stderr_contains("not found");
}

fn run_matrix(minor: u32) {
    let m = Matrix::start(minor);
    let mut table = Table::new(m.client_version());
    let state_dir = m.sandbox.sandbox().state_dir().to_owned();
    let stdin_target = state_dir.join("matrix-stdin");

    table.cell("/version + dispatcher pick", None, || {
        version_and_dispatch(&m)
    });
    table.cell("get pods (columns)", None, || get_pods_columns(&m));
    table.cell("get -w sees created pod", None, || {
        watch_sees_created_pod(&m)
    });
    m.capability(&mut table, "exec echo", Stream::RemoteCommand, |t| {
        exec_echo(&m, t)
    });
    m.capability(&mut table, "exec exit code 7", Stream::RemoteCommand, |t| {
        exec_exit_7(&m, t)
    });
    m.capability(
        &mut table,
        "exec 5 MiB stdin exact",
        Stream::RemoteCommand,
        |t| exec_stdin_exact(&m, t, &stdin_target),
    );
    m.capability(
        &mut table,
        "exec -it under a pty",
        Stream::RemoteCommand,
        |t| exec_tty(&m, t),
    );
    m.capability(&mut table, "attach -i", Stream::RemoteCommand, |t| {
        attach(&m, t)
    });
    table.cell("logs -f", None, || logs_follow(&m, &state_dir));
    table.cell("start web pod + svc", None, || start_web(&m));
    m.capability(
        &mut table,
        "port-forward pod x20",
        Stream::PortForward,
        |t| port_forward(&m, t, "pod/web", "8080", "8080"),
    );
    m.capability(
        &mut table,
        "port-forward svc x20",
        Stream::PortForward,
        |t| port_forward(&m, t, "svc/web", "80", "8080"),
    );
    table.cell("delete --wait", None, || delete_with_wait(&m));

    println!("{}", table.render());
    let m_version = m.version.clone();
    drop(m);
    assert!(
        table.all_passed(),
        "kubectl {}: cells failed (table above)",
        m_version
    );
}

#[test]
fn kubectl_1_27() {
    run_matrix(27);
}

#[test]
fn kubectl_1_28() {
    run_matrix(28);
}

#[test]
fn kubectl_1_29() {
    run_matrix(29);
}

#[test]
fn kubectl_1_30() {
    run_matrix(30);
}

#[test]
fn kubectl_1_31() {
    run_matrix(31);
}

#[test]
fn kubectl_1_32() {
    run_matrix(32);
}

#[test]
fn kubectl_1_33() {
    run_matrix(33);
}
