//! The sandbox's security defaults, over real TLS with curl: 401 for every
//! path without the token (API, test hooks, streaming upgrades, unknown
//! paths) or with a wrong one; a 0600 kubeconfig; the state folder, the
//! pods folder and every pod's working folder 0700.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use podlink_testkit::{wait_until, TestSandbox};

/// (method, path, extra headers): one of everything the sandbox serves.
const REQUESTS: &[(&str, &str, &[&str])] = &[
    ("GET", "/version", &[]),
    ("GET", "/api", &[]),
    ("GET", "/apis", &[]),
    ("GET", "/openapi/v2", &[]),
    ("GET", "/api/v1/namespaces/default/pods", &[]),
    ("GET", "/api/v1/namespaces/default/pods?watch=1", &[]),
    ("GET", "/api/v1/namespaces/default/pods/demo/log", &[]),
    ("DELETE", "/api/v1/namespaces/default/pods/demo", &[]),
    ("GET", "/apis/apps/v1/namespaces/default/deployments", &[]),
    ("GET", "/sandbox/v1/processes", &[]),
    (
        "POST",
        "/sandbox/v1/faults",
        &["Content-Type: application/json"],
    ),
    ("GET", "/no/such/path", &[]),
    (
        "GET",
        "/api/v1/namespaces/default/pods/demo/exec?command=true&stdout=1",
        &[
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol: v5.channel.k8s.io",
        ],
    ),
    (
        "POST",
        "/api/v1/namespaces/default/pods/demo/exec?command=true&stdout=1",
        &[
            "Connection: Upgrade",
            "Upgrade: SPDY/3.1",
            "X-Stream-Protocol-Version: v4.channel.k8s.io",
        ],
    ),
    (
        "POST",
        "/api/v1/namespaces/default/pods/demo/attach?stdout=1",
        &["Connection: Upgrade", "Upgrade: SPDY/3.1"],
    ),
    (
        "POST",
        "/api/v1/namespaces/default/pods/demo/portforward",
        &[
            "Connection: Upgrade",
            "Upgrade: SPDY/3.1",
            "X-Stream-Protocol-Version: portforward.k8s.io",
        ],
    ),
];

/// The HTTP status curl got for one request, verifying the sandbox's CA.
fn status(
    sandbox: &TestSandbox,
    ca: &Path,
    request: (&str, &str, &[&str]),
    auth: Option<&str>,
) -> String {
    let (method, path, headers) = request;
    let mut curl = Command::new("curl");
    // HTTP/1.1: upgrades exist only there (curl would offer h2 by ALPN).
    curl.args([
        "-sS",
        "--http1.1",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
    ])
    .arg("--cacert")
    .arg(ca)
    .args(["-X", method]);
    if method == "POST" {
        curl.args(["--data", r#"{"kind":"drop-connections"}"#]);
    }
    for header in headers {
        curl.args(["-H", header]);
    }
    if let Some(auth) = auth {
        curl.args(["-H", &format!("Authorization: {auth}")]);
    }
    let out = curl
        .arg(format!("{}{path}", sandbox.url()))
        .output()
        .expect("run curl");
    let code = String::from_utf8_lossy(&out.stdout).into_owned();
    if code == "000" {
        // No answer at all: show curl's reason in the assertion.
        return format!("000 ({})", String::from_utf8_lossy(&out.stderr).trim());
    }
    code
}

#[test]
fn every_path_needs_the_token() {
    let sandbox = TestSandbox::start();
    sandbox.wait_pod_ready("demo", Duration::from_secs(60));
    let ca = sandbox.sandbox().state_dir().join("test-ca.pem");
    std::fs::write(&ca, sandbox.sandbox().ca_pem()).expect("write the CA");
    let token = sandbox.sandbox().token().to_owned();
    let wrong: String = token.chars().rev().collect();
    let refusals = [
        None,
        Some(format!("Bearer {wrong}")),
        Some(format!("Bearer {}", &token[..token.len() - 1])),
        Some(format!("Bearer {token}x")),
        Some(format!("Basic {token}")),
        Some("Bearer".to_owned()),
    ];
    for request in REQUESTS {
        for auth in &refusals {
            assert_eq!(
                status(&sandbox, &ca, *request, auth.as_deref()),
                "401",
                "{} {} with {auth:?}",
                request.0,
                request.1
            );
        }
    }
    // Nothing refused had an effect: demo still runs, no process was started.
    assert!(sandbox.sandbox().pod("default", "demo").is_some());
    assert!(sandbox.processes().iter().all(|p| p.pod == "demo"));
    // And the real token is accepted (the refusals were about the token).
    let with_token = format!("Bearer {token}");
    assert_eq!(
        status(&sandbox, &ca, ("GET", "/version", &[]), Some(&with_token)),
        "200"
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn kubeconfig_and_folders_are_private() {
    let sandbox = TestSandbox::start();
    sandbox.wait_pod_ready("demo", Duration::from_secs(60));
    assert_eq!(mode(sandbox.kubeconfig()), 0o600, "kubeconfig");
    let state = sandbox.sandbox().state_dir().to_owned();
    assert_eq!(mode(&state), 0o700, "state folder");
    let pods = state.join("pods");
    assert_eq!(mode(&pods), 0o700, "pods folder");
    // Every namespace folder and pod working folder below pods/.
    let folders = wait_until(Duration::from_secs(30), "demo's working folder", || {
        let mut found = Vec::new();
        for namespace in std::fs::read_dir(&pods).ok()?.flatten() {
            found.push(namespace.path());
            for pod in std::fs::read_dir(namespace.path()).ok()?.flatten() {
                found.push(pod.path());
            }
        }
        (found.len() >= 2).then_some(found)
    });
    for folder in folders {
        assert_eq!(mode(&folder), 0o700, "{}", folder.display());
    }
}
