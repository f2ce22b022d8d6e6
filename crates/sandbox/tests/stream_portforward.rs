//! kubectl port-forward to pod/, svc/ (named targetPort) and deploy/ over
//! the WebSocket tunnel and SPDY, with many concurrent connections.

mod stream_support;

use std::time::Duration;

use serde_json::json;
use stream_support::{show, transport_name, Env, DEADLINE, TRANSPORTS};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const HTTP_SERVER: &str = "import http.server as h\n\
h.ThreadingHTTPServer.request_queue_size = 256\n\
h.ThreadingHTTPServer(('127.0.0.1', 8080), h.SimpleHTTPRequestHandler).serve_forever()\n";

fn web_template(app: &str) -> serde_json::Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {
            "containers": [{
                "name": "web",
                "image": "python",
                "ports": [{"name": "http", "containerPort": 8080}],
                // http.server with a listen backlog that holds 100 concurrent
                // connections (the module's default of 5 makes clients retry SYNs).
                "command": ["python3", "-c", HTTP_SERVER],
            }],
        },
    })
}

/// Waits (bounded) until the pod's HTTP server accepts connections, probing
/// from inside the pod so that no failed forward disturbs the test.
async fn wait_listening(env: &Env, pod: &str) {
    let probe = "import socket; socket.create_connection(('127.0.0.1', 8080)).close()";
    for _ in 0..300 {
        let out = env
            .run(true, &["exec", pod, "--", "python3", "-c", probe], None)
            .await;
        if out.status.success() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{pod} never listened on 8080");
}

/// A running `kubectl port-forward`; killed on drop.
struct Forward {
    child: tokio::process::Child,
    port: u16,
}

async fn forward(env: &Env, websockets: bool, target: &str, remote: &str) -> Forward {
    let mut command = env.kubectl(websockets);
    command.args(["port-forward", target, &format!(":{remote}")]);
    let mut child = command.spawn().expect("kubectl port-forward runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .expect("port-forward prints its port")
        .expect("read stdout")
        .unwrap_or_default();
    // "Forwarding from 127.0.0.1:PORT -> REMOTE"
    let port = line
        .strip_prefix("Forwarding from 127.0.0.1:")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected port-forward output {line:?}"));
    // Keep draining stdout so kubectl never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Forward { child, port }
}

async fn http_get(port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

async fn hundred_concurrent(port: u16, what: &str) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        tasks.spawn(tokio::time::timeout(DEADLINE, http_get(port)));
    }
    let mut ok = 0;
    while let Some(result) = tasks.join_next().await {
        let response = result
            .expect("task")
            .expect("request finishes")
            .expect("request");
        assert!(response.starts_with("HTTP/1.0 200"), "{what}: {response}");
        ok += 1;
    }
    assert_eq!(ok, 100, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_service_and_deployment_with_100_concurrent_requests() {
    let env = Env::start().await;
    let mut pod = web_template("web");
    pod["apiVersion"] = json!("v1");
    pod["kind"] = json!("Pod");
    pod["metadata"]["name"] = json!("web");
    env.create_pod(pod).await;
    env.apply(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }))
    .await;
    env.apply(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "webd"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "webd"}},
            "template": web_template("webd"),
        },
    }))
    .await;
    let rollout = env
        .run(
            true,
            &["rollout", "status", "deploy/webd", "--timeout=60s"],
            None,
        )
        .await;
    assert!(rollout.status.success(), "rollout: {}", show(&rollout));
    wait_listening(&env, "web").await;
    wait_listening(&env, "deploy/webd").await;

    for ws in TRANSPORTS {
        let name = transport_name(ws);
        for (target, remote) in [
            ("pod/web", "8080"),
            ("svc/web", "80"),
            ("deploy/webd", "8080"),
        ] {
            let fwd = forward(&env, ws, target, remote).await;
            hundred_concurrent(fwd.port, &format!("{name} {target}")).await;
        }
        // A closed remote port: the server reports it on that connection's
        // error stream only (see stream_raw.rs), but kubectl itself ends the
        // whole session on any error text (kubernetes/kubernetes#103526).
        let mut fwd = forward(&env, ws, "pod/web", "9999").await;
        let response = http_get(fwd.port).await.unwrap_or_default();
        assert!(!response.starts_with("HTTP"), "{name}: {response}");
        let status = tokio::time::timeout(DEADLINE, fwd.child.wait())
            .await
            .expect("kubectl ends the session")
            .expect("kubectl status");
        assert!(!status.success(), "{name}: kubectl kept going");
        // The server is fine: a new session forwards again.
        let fwd = forward(&env, ws, "pod/web", "8080").await;
        let response = http_get(fwd.port).await.expect("request");
        assert!(response.starts_with("HTTP/1.0 200"), "{name}: {response}");
    }
    env.sandbox.shutdown().await;
}
