//! The Python `kubernetes` client (legacy WebSocket exec and port-forward)
//! and raw WebSocket sessions for every exec subprotocol, against the
//! sandbox. Needs `python3 -m pip install kubernetes` (done here when
//! missing); skips with a message only when pip itself is unavailable.

mod stream_support;

use serde_json::json;
use stream_support::{show, Env, DEADLINE};

const SCRIPT: &str = include_str!("stream_support/python_clients.py");

/// Whether the Python client can run: installs `kubernetes` from PyPI when
/// it is missing. `false` (skip) only when there is no pip to install it
/// with; a failing install is a test failure.
fn python_client_available() -> bool {
    let python = |args: &[&str]| {
        std::process::Command::new("python3")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    if python(&["-c", "import kubernetes, websocket"]) {
        return true;
    }
    if !python(&["-m", "pip", "--version"]) {
        return false;
    }
    assert!(
        python(&["-m", "pip", "install", "--quiet", "kubernetes"]),
        "pip install kubernetes failed"
    );
    assert!(
        python(&["-c", "import kubernetes, websocket"]),
        "kubernetes installed but not importable"
    );
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_exec_portforward_and_every_ws_subprotocol() {
    if !python_client_available() {
        eprintln!("SKIPPED: no python3 pip to install the `kubernetes` client with");
        return;
    }
    let env = Env::start().await;
    env.create_pod(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {"containers": [{
            "name": "web",
            "image": "python",
            "command": ["python3", "-m", "http.server", "8080", "--bind", "127.0.0.1"],
        }]},
    }))
    .await;
    let probe = "import socket; socket.create_connection(('127.0.0.1', 8080)).close()";
    let mut listening = false;
    for _ in 0..300 {
        let out = env
            .run(true, &["exec", "web", "--", "python3", "-c", probe], None)
            .await;
        if out.status.success() {
            listening = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(listening, "web never listened");

    let mut command = env.command("python3", true);
    command.args([
        "-c",
        SCRIPT,
        "exec",
        "portforward",
        "v4.channel.k8s.io",
        "v4.base64.channel.k8s.io",
        "channel.k8s.io",
        "base64.channel.k8s.io",
    ]);
    let out = tokio::time::timeout(DEADLINE, command.output())
        .await
        .expect("python finishes")
        .expect("python runs");
    assert!(out.status.success(), "{}", show(&out));
    env.sandbox.shutdown().await;
}
