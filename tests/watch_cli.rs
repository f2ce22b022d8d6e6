//! `podlink get` and `podlink watch` end to end against the sandbox, with
//! real kubectl as the oracle for `get`'s output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use podlink_sandbox::{Fault, Sandbox, SandboxConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::time::{timeout, Instant};

/// Bounds every wait; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(60);

/// A sandbox and a kubectl cache directory, both gone when dropped (the
/// sandbox ends its processes in its own `Drop`).
struct Fixture {
    sandbox: Sandbox,
    cache: PathBuf,
}

impl Fixture {
    async fn start(tag: &str) -> Self {
        let sandbox = Sandbox::start(SandboxConfig::new())
            .await
            .expect("start the sandbox");
        let cache =
            std::env::temp_dir().join(format!("podlink-watch-cli-{tag}-{}", std::process::id()));
        Self { sandbox, cache }
    }

    fn kubeconfig(&self) -> &Path {
        self.sandbox.kubeconfig_path()
    }

    fn podlink(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_podlink"));
        cmd.arg("--kubeconfig").arg(self.kubeconfig()).args(args);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    fn kubectl(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .env("KUBECACHEDIR", &self.cache);
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    async fn pods(&self) -> Api<Pod> {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(self.kubeconfig()).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("kube config");
        Api::namespaced(kube::Client::try_from(config).expect("client"), "default")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.cache);
    }
}

/// Output of a finished command.
struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run(mut cmd: Command) -> Output {
    let out = timeout(PATIENCE, cmd.output())
        .await
        .expect("finished in time")
        .expect("ran");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A long-running command read line by line; killed when dropped.
struct Running {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: Option<ChildStderr>,
    seen: Vec<String>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("spawn");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let stderr = child.stderr.take();
        Self {
            child,
            stdout,
            stderr,
            seen: Vec::new(),
        }
    }

    /// The next stdout line, within PATIENCE.
    async fn line(&mut self) -> String {
        match timeout(PATIENCE, self.stdout.next_line()).await {
            Ok(Ok(Some(line))) => {
                self.seen.push(line.clone());
                line
            }
            other => panic!("no line ({other:?}); so far: {:#?}", self.seen),
        }
    }

    /// Lines until one satisfies `done` (that one included).
    async fn until(&mut self, done: impl Fn(&str) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..10_000 {
            let line = self.line().await;
            let stop = done(&line);
            lines.push(line);
            if stop {
                return lines;
            }
        }
        panic!("no matching line among {lines:#?}");
    }

    /// Stops it with SIGINT; returns its exit code and stderr.
    async fn interrupt(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().expect("running");
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
        let status = timeout(PATIENCE, self.child.wait())
            .await
            .expect("stopped in time")
            .expect("status");
        let mut stderr = String::new();
        if let Some(mut err) = self.stderr.take() {
            let _ = timeout(PATIENCE, err.read_to_string(&mut stderr)).await;
        }
        (status.code(), stderr)
    }
}

fn pod_manifest(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "cli"}},
        "spec": {"containers": [{"name": "main", "image": "none", "command": ["sleep", "600"]}]}
    }))
    .expect("manifest")
}

/// A table's cells per line, without the AGE column (the two runs may
/// straddle a second).
fn cells_without_age(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|line| {
            let mut cells: Vec<String> = line
                .split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            if cells.len() > 4 {
                cells.remove(4);
            }
            cells
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_what_kubectl_prints() {
    let fx = Fixture::start("get").await;
    fx.pods()
        .await
        .create(&PostParams::default(), &pod_manifest("second"))
        .await
        .expect("create");
    let cases: [&[&str]; 9] = [
        &["get", "pods"],
        &["get", "pods", "-o", "wide"],
        &["get", "pods", "-o", "name"],
        &["get", "pods", "-o", "json"],
        &["get", "pods", "-o", "yaml"],
        &["get", "pods", "demo"],
        &["get", "pod/demo", "-o", "yaml"],
        &["get", "pods", "-l", "app=cli", "-o", "json"],
        &["get", "pods", "-l", "app=nothing", "-o", "name"],
    ];
    for args in cases {
        let ours = run(fx.podlink(args)).await;
        let theirs = run(fx.kubectl(args)).await;
        assert_eq!(ours.code, Some(0), "podlink {args:?}: {}", ours.stderr);
        assert_eq!(theirs.code, Some(0), "kubectl {args:?}: {}", theirs.stderr);
        let table = !args.contains(&"-o") || args.contains(&"wide");
        if table {
            assert_eq!(
                cells_without_age(&ours.stdout),
                cells_without_age(&theirs.stdout),
                "{args:?}\n{}\n{}",
                ours.stdout,
                theirs.stdout
            );
        } else {
            assert_eq!(ours.stdout, theirs.stdout, "{args:?}");
        }
    }
    let missing = run(fx.podlink(&["get", "pods", "nope"])).await;
    assert_eq!(missing.code, Some(255));
    assert_eq!(missing.stderr.trim(), "podlink: pods \"nope\" not found");
    let empty = run(fx.podlink(&["get", "pods", "-l", "app=nothing"])).await;
    assert_eq!((empty.code, empty.stdout.as_str()), (Some(0), ""));
    assert_eq!(
        empty.stderr.trim(),
        "No resources found in default namespace."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_the_table_then_each_change() {
    let fx = Fixture::start("getw").await;
    let pods = fx.pods().await;
    let mut get = Running::spawn(fx.podlink(&["get", "pods", "-w"]));
    assert!(get.line().await.starts_with("NAME   READY   STATUS"));
    assert!(get.line().await.starts_with("demo "));
    pods.create(&PostParams::default(), &pod_manifest("w1"))
        .await
        .expect("create");
    get.until(|l| l.starts_with("w1 ")).await;
    fx.sandbox.inject(Fault::DropConnections).expect("inject");
    pods.delete("w1", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete");
    pods.create(&PostParams::default(), &pod_manifest("w2"))
        .await
        .expect("create");
    // The dropped watch reconnects: the later pod still shows up.
    get.until(|l| l.starts_with("w2 ")).await;
    let (code, stderr) = get.interrupt().await;
    assert_eq!(code, Some(130), "{stderr}");
}

/// Replays JSON lines, checking each against the state so far: no ADDED
/// for an object already there, no DELETED or MODIFIED for one that is
/// not, no resourceVersion going backwards, no other event type.
fn replay(lines: &[String]) -> BTreeMap<String, (String, u64)> {
    let mut state: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for line in lines {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let object = &event["object"];
        let name = object["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_owned();
        let uid = object["metadata"]["uid"].as_str().expect("uid").to_owned();
        let rv: u64 = object["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("rv");
        assert_eq!(object["kind"], "Pod", "{line}");
        match event["type"].as_str() {
            Some("ADDED") => {
                assert!(
                    !state.contains_key(&name),
                    "duplicate ADDED for {name}: {line}"
                );
                state.insert(name, (uid, rv));
            }
            Some("MODIFIED") => {
                let held = state
                    .get_mut(&name)
                    .unwrap_or_else(|| panic!("MODIFIED for unknown {name}"));
                assert_eq!(held.0, uid, "MODIFIED across incarnations of {name}");
                assert!(rv > held.1, "{name} went from {} to {rv}", held.1);
                held.1 = rv;
            }
            Some("DELETED") => {
                assert!(state.remove(&name).is_some(), "DELETED for unknown {name}");
            }
            other => panic!("unexpected event type {other:?}: {line}"),
        }
    }
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_jsonl_emits_exactly_the_differences_across_a_relist() {
    let fx = Fixture::start("watch").await;
    let pods = fx.pods().await;
    for name in ["keep", "change", "gone"] {
        pods.create(&PostParams::default(), &pod_manifest(name))
            .await
            .expect("create");
    }
    let mut watch = Running::spawn(fx.podlink(&["-v", "watch", "pods", "-o", "jsonl"]));
    let mut lines = Vec::new();
    let has = |lines: &[String], kind: &str, name: &str| {
        lines.iter().any(|l| {
            l.contains(&format!("\"type\":\"{kind}\""))
                && l.contains(&format!("\"name\":\"{name}\""))
        })
    };
    for name in ["demo", "keep", "change", "gone"] {
        while !has(&lines, "ADDED", name) {
            lines.push(watch.line().await);
        }
    }

    // Cut the watch and keep it away (three failed attempts, backing off)
    // while the pods change, then forget the history: it must re-list.
    fx.sandbox
        .inject(Fault::WatchError {
            code: 500,
            count: 3,
        })
        .expect("inject");
    fx.sandbox.inject(Fault::DropConnections).expect("inject");
    pods.delete("gone", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete");
    let label = Patch::Merge(serde_json::json!({"metadata": {"labels": {"changed": "yes"}}}));
    pods.patch("change", &PatchParams::default(), &label)
        .await
        .expect("patch");
    pods.create(&PostParams::default(), &pod_manifest("new"))
        .await
        .expect("create");
    fx.sandbox.inject(Fault::Compact).expect("inject");

    // Read until the stream matches a fresh list (bounded).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let truth: BTreeMap<String, u64> = pods
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .iter()
            .map(|p| {
                (
                    p.metadata.name.clone().unwrap_or_default(),
                    p.metadata
                        .resource_version
                        .as_deref()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                )
            })
            .collect();
        let state: BTreeMap<String, u64> = replay(&lines)
            .into_iter()
            .map(|(name, (_, rv))| (name, rv))
            .collect();
        if state == truth && has(&lines, "DELETED", "gone") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stream never matched the server: {state:?} vs {truth:?}\n{lines:#?}"
        );
        if let Ok(line) = timeout(Duration::from_millis(500), watch.line()).await {
            lines.push(line);
        }
    }
    assert!(has(&lines, "MODIFIED", "change") && has(&lines, "ADDED", "new"));
    // Each line carries the whole object: the last line of every pod equals
    // the pod as a fresh list gives it (every field, nulls included).
    let dynamic: Api<kube::core::DynamicObject> = Api::namespaced_with(
        pods.clone().into_client(),
        "default",
        &kube::api::ApiResource::erase::<Pod>(&()),
    );
    let listed = dynamic.list(&ListParams::default()).await.expect("list");
    for pod in &listed.items {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let last = lines
            .iter()
            .rev()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON line"))
            .find(|event| event["object"]["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no line for {name}"));
        let mut expected = serde_json::to_value(pod).expect("pod as JSON");
        expected["apiVersion"] = "v1".into();
        expected["kind"] = "Pod".into();
        assert_eq!(last["object"], expected, "{name}");
    }
    let (code, stderr) = watch.interrupt().await;
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("watch interrupted; retrying"),
        "reconnects are logged at -v:\n{stderr}"
    );
    assert!(
        stderr.contains("re-listing"),
        "the relist is logged at -v:\n{stderr}"
    );
}

#[tokio::test]
async fn watch_says_it_is_retrying_while_the_server_is_unreachable() {
    let fixture = Fixture::start("unreachable").await;
    // The sandbox's kubeconfig, pointed at a loopback port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let text = std::fs::read_to_string(fixture.kubeconfig()).expect("kubeconfig");
    let server = fixture.sandbox.url().to_string();
    let server = server.trim_end_matches('/');
    assert!(text.contains(server), "{server} not in the kubeconfig");
    let unreachable = fixture.cache.with_extension("kubeconfig");
    std::fs::write(
        &unreachable,
        text.replace(server, &format!("https://127.0.0.1:{port}")),
    )
    .expect("write kubeconfig");
    let mut watch = Command::new(env!("CARGO_BIN_EXE_podlink"));
    watch
        .arg("--kubeconfig")
        .arg(&unreachable)
        .args(["watch", "pods"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = watch.spawn().expect("spawn");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = timeout(PATIENCE, stderr.next_line())
        .await
        .expect("a line within the patience")
        .expect("read stderr")
        .expect("a line before EOF");
    let _ = std::fs::remove_file(&unreachable);
    assert!(
        line.starts_with("podlink: watching pods: ") && line.ends_with("; retrying"),
        "{line}"
    );
    assert!(line.contains("Connect"), "the cause is named: {line}");
    // It keeps going until stopped.
    assert!(child.try_wait().expect("try_wait").is_none());
    let pid = child.id().expect("running");
    let _ = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let status = timeout(PATIENCE, child.wait())
        .await
        .expect("stopped in time")
        .expect("status");
    assert_eq!(status.code(), Some(130));
}
