//! Every connection podlink makes honours `HTTPS_PROXY` / `NO_PROXY` as
//! kubectl does: ordinary requests (`get`) and every streaming upgrade
//! (`exec`, `cp`, `port-forward`). The kubeconfig names a host that does not
//! resolve (`sandbox.podlink.invalid`), so only the test proxy, which sends
//! every tunnel to 127.0.0.1, can reach the sandbox; real kubectl runs the
//! same commands against the same kubeconfig and proxy as the oracle.

mod cp_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use podlink_testkit::proxy::ConnectProxy;
use podlink_testkit::TestSandbox;

use cp_support::{start_env, Outcome, PATIENCE, PROXY_VARS};

/// A name that never resolves (RFC 6761), so a direct dial must fail.
const UNRESOLVABLE: &str = "sandbox.podlink.invalid";

struct Setup {
    sandbox: TestSandbox,
    proxy: ConnectProxy,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

/// A sandbox, a proxy, and a kubeconfig whose server is `UNRESOLVABLE` at
/// the sandbox's port (TLS still checks the certificate, for `localhost`).
fn setup() -> Setup {
    let sandbox = TestSandbox::start();
    let proxy = ConnectProxy::start();
    let dir = tempfile::tempdir().unwrap();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sandbox.kubeconfig()).unwrap()).unwrap();
    let port = sandbox.url().rsplit(':').next().unwrap().to_owned();
    let cluster = &mut config["clusters"][0]["cluster"];
    cluster["server"] = format!("https://{UNRESOLVABLE}:{port}").into();
    cluster["tls-server-name"] = "localhost".into();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, config.to_string()).unwrap();
    Setup {
        sandbox,
        proxy,
        _dir: dir,
        kubeconfig,
    }
}

impl Setup {
    fn via_proxy(&self) -> Vec<(&'static str, String)> {
        vec![("HTTPS_PROXY", self.proxy.url())]
    }

    fn podlink(&self, envs: &[(&'static str, String)], args: &[&str]) -> Outcome {
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        start_env(&self.kubeconfig, args, &envs).wait()
    }

    /// Runs `f` and asserts that it opened at least one tunnel.
    fn tunnelled<T>(&self, what: &str, f: impl FnOnce() -> T) -> T {
        let before = self.proxy.tunnels();
        let out = f();
        assert!(
            self.proxy.tunnels() > before,
            "{what} did not go through the proxy"
        );
        out
    }

    fn kubectl(&self, envs: &[(&'static str, String)], args: &[&str]) -> std::process::Output {
        let mut command = Command::new(podlink_testkit::kubectl_binary(None));
        for name in PROXY_VARS {
            command.env_remove(name);
        }
        command
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .env("KUBECACHEDIR", self.sandbox.kube_cache_dir())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    }
}

#[test]
fn get_exec_cp_and_port_forward_go_through_https_proxy() {
    let s = setup();
    let env = s.via_proxy();

    let get = s.tunnelled("get pods", || s.podlink(&env, &["get", "pods"]));
    assert_eq!(get.code, Some(0), "{get}");
    assert!(get.stdout.contains("demo"), "{get}");

    let exec = s.tunnelled("exec", || {
        s.podlink(&env, &["exec", "demo", "--", "echo", "through the proxy"])
    });
    assert_eq!(exec.code, Some(0), "{exec}");
    assert_eq!(exec.stdout, "through the proxy\n", "{exec}");

    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("payload.bin");
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&source, &payload).unwrap();
    let remote = format!("demo:{}", dir.path().join("in-pod.bin").display());
    let up = s.tunnelled("cp upload", || {
        s.podlink(&env, &["cp", source.to_str().unwrap(), &remote])
    });
    assert_eq!(up.code, Some(0), "{up}");
    let back = dir.path().join("back.bin");
    let down = s.tunnelled("cp download", || {
        s.podlink(&env, &["cp", &remote, back.to_str().unwrap()])
    });
    assert_eq!(down.code, Some(0), "{down}");
    assert_eq!(std::fs::read(&back).unwrap(), payload);

    s.tunnelled("port-forward", || port_forward_once(&s, &env));
    assert!(
        s.proxy
            .targets()
            .iter()
            .all(|t| t.starts_with(UNRESOLVABLE)),
        "{:?}",
        s.proxy.targets()
    );
}

/// Pod `web` answering HTTP on 8080, forwarded with `podlink port-forward
/// web :8080`; one request through it.
fn port_forward_once(s: &Setup, env: &[(&'static str, String)]) {
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "web" },
        "spec": { "containers": [{
            "name": "main", "image": "python",
            "command": ["python3", "-c",
                "import http.server as h\nopen('hello.txt','w').write('hello through the tunnel')\n\
                 h.HTTPServer(('0.0.0.0',8080),h.SimpleHTTPRequestHandler).serve_forever()"],
        }]}
    });
    s.sandbox
        .kubectl()
        .args(["apply", "--validate=false", "-f", "-"])
        .stdin(pod.to_string())
        .run()
        .success();
    s.sandbox.wait_pod_ready("web", PATIENCE);
    let mut command = Command::new(env!("CARGO_BIN_EXE_podlink"));
    for name in PROXY_VARS {
        command.env_remove(name);
    }
    let child = command
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args(["port-forward", "web", ":8080"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run podlink port-forward");
    let mut forward = Killed(child);
    let stdout = forward.0.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let line = lines.recv_timeout(PATIENCE).expect("a Forwarding line");
    // `Forwarding from 127.0.0.1:41234 -> 8080`
    let local = line
        .strip_prefix("Forwarding from ")
        .and_then(|rest| rest.split(" -> ").next())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .to_owned();
    // The server may still be binding: retry a bounded number of times.
    let mut got = String::new();
    for _ in 0..50 {
        got.clear();
        let mut conn = TcpStream::connect(&local).unwrap();
        conn.set_read_timeout(Some(PATIENCE)).unwrap();
        conn.write_all(b"GET /hello.txt HTTP/1.0\r\n\r\n").unwrap();
        let _ = conn.read_to_string(&mut got);
        if got.contains("hello through the tunnel") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("no answer through the forwarded port; last: {got:?}");
}

/// A child killed and reaped when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn no_proxy_matching_the_host_goes_direct_and_fails_clearly() {
    let s = setup();
    for no_proxy in [UNRESOLVABLE, ".podlink.invalid", "*"] {
        let mut env = s.via_proxy();
        env.push(("NO_PROXY", no_proxy.to_owned()));
        let before = s.proxy.tunnels();
        for args in [&["get", "pods"][..], &["exec", "demo", "--", "true"]] {
            let out = s.podlink(&env, args);
            assert_eq!(out.code, Some(255), "NO_PROXY={no_proxy} {out}");
            assert!(out.stderr.starts_with("podlink: "), "{out}");
            assert!(
                out.stderr.contains("lookup") || out.stderr.contains("resolve"),
                "NO_PROXY={no_proxy}: not a name-resolution error: {out}"
            );
        }
        assert_eq!(s.proxy.tunnels(), before, "NO_PROXY={no_proxy} was proxied");
    }
}

#[test]
fn proxy_credentials_are_sent_and_never_shown() {
    let s = setup();
    let url = s.proxy.url().replace("http://", "http://al%40ice:s3cret@");
    let env = vec![("HTTPS_PROXY", url)];
    let out = s.tunnelled("exec", || {
        s.podlink(&env, &["-v", "-v", "-v", "exec", "demo", "--", "true"])
    });
    assert_eq!(out.code, Some(0), "{out}");
    assert!(!out.stderr.contains("s3cret"), "{out}");
    // base64("al@ice:s3cret")
    let expected = "Basic YWxAaWNlOnMzY3JldA==";
    let seen = s.proxy.authorizations();
    assert!(!seen.is_empty(), "no Proxy-Authorization received");
    assert!(seen.iter().all(|a| a == expected), "{seen:?}");
}

#[test]
fn kubectl_agrees_through_the_same_proxy() {
    let s = setup();
    let env = s.via_proxy();
    let get = s.tunnelled("kubectl get", || s.kubectl(&env, &["get", "pods"]));
    assert!(get.status.success(), "{get:?}");
    assert!(String::from_utf8_lossy(&get.stdout).contains("demo"));
    let exec = s.tunnelled("kubectl exec", || {
        s.kubectl(&env, &["exec", "demo", "--", "echo", "oracle"])
    });
    assert!(exec.status.success(), "{exec:?}");
    assert_eq!(String::from_utf8_lossy(&exec.stdout), "oracle\n");

    let mut direct = env.clone();
    direct.push(("NO_PROXY", UNRESOLVABLE.to_owned()));
    let before = s.proxy.tunnels();
    let failed = s.kubectl(&direct, &["get", "pods", "--request-timeout=20s"]);
    assert!(!failed.status.success(), "{failed:?}");
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains(UNRESOLVABLE),
        "{failed:?}"
    );
    assert_eq!(s.proxy.tunnels(), before, "kubectl ignored NO_PROXY");
}

#[test]
fn kubeconfig_proxy_url_wins_over_the_environment() {
    let s = setup();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&s.kubeconfig).unwrap()).unwrap();
    config["clusters"][0]["cluster"]["proxy-url"] = s.proxy.url().into();
    std::fs::write(&s.kubeconfig, config.to_string()).unwrap();
    // kubectl ignores NO_PROXY (and HTTPS_PROXY) once the kubeconfig names a proxy.
    let env = vec![
        ("NO_PROXY", "*".to_owned()),
        ("HTTPS_PROXY", "http://127.0.0.1:9".to_owned()),
    ];
    let get = s.tunnelled("get pods", || s.podlink(&env, &["get", "pods"]));
    assert_eq!(get.code, Some(0), "{get}");
    let exec = s.tunnelled("exec", || {
        s.podlink(&env, &["exec", "demo", "--", "echo", "via proxy-url"])
    });
    assert_eq!(exec.stdout, "via proxy-url\n", "{exec}");
    let oracle = s.tunnelled("kubectl get", || s.kubectl(&env, &["get", "pods"]));
    assert!(oracle.status.success(), "{oracle:?}");
}
