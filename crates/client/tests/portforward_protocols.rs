//! Port-forward against the sandbox, once per transport: many concurrent
//! requests, 100 MB each way byte-exact, a refused port failing alone, an
//! idle cut survived by keepalive, a dropped session re-established, and a
//! deployment whose pod is replaced.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use podlink_client::portforward::{PortForwarder, PortSpec, Protocol, Target};
use podlink_client::Client;
use podlink_sandbox::{Fault, Sandbox, SandboxConfig};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// Bounds every wait in these tests; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(60);
const HTTP_PORT: u16 = 8080;
const ECHO_PORT: u16 = 9000;
const CLOSED_PORT: u16 = 8081;
const BODY: &str = "hello from the pod\n";

/// The pod's main process: a threaded HTTP server (with a backlog for 200
/// concurrent connections) serving `hello.txt`, and a TCP echo server.
fn server_command() -> Vec<String> {
    let script = format!(
        r#"
import http.server, socket, threading
open("hello.txt", "w").write({BODY:?})
def echo(c):
    while True:
        d = c.recv(262144)
        if not d: break
        c.sendall(d)
    c.close()
def echo_server():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", {ECHO_PORT})); s.listen(512)
    while True:
        c, _ = s.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()
threading.Thread(target=echo_server, daemon=True).start()
http.server.ThreadingHTTPServer.request_queue_size = 512
http.server.ThreadingHTTPServer(("0.0.0.0", {HTTP_PORT}), http.server.SimpleHTTPRequestHandler).serve_forever()
"#
    );
    vec!["python3".into(), "-u".into(), "-c".into(), script]
}

fn pod_template(labels: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "metadata": { "labels": labels },
        "spec": { "containers": [{
            "name": "main",
            "image": "python",
            "command": server_command(),
            "ports": [{ "name": "http", "containerPort": HTTP_PORT }],
        }]}
    })
}

/// A sandbox without the demo pod, and a client for it. Dropping the
/// sandbox (also when a test panics) ends every process it started.
async fn start() -> (Sandbox, Client) {
    let sandbox = Sandbox::start(SandboxConfig::new().with_demo(false))
        .await
        .expect("sandbox starts");
    let options = podlink_client::ClientOptions::new().kubeconfig(sandbox.kubeconfig_path());
    let client = Client::from_options(&options).await.expect("client");
    (sandbox, client)
}

async fn wait_running(client: &Client, selector: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.kube().clone(), "default");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .expect("list pods");
        let running = list.items.into_iter().find(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        });
        if let Some(pod) = running {
            return pod.metadata.name.unwrap_or_default();
        }
        assert!(Instant::now() < deadline, "no running pod for {selector}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_pod(client: &Client, name: &str) {
    let mut pod = pod_template(&serde_json::json!({ "app": name }));
    pod["metadata"]["name"] = name.into();
    let pod: Pod = serde_json::from_value(pod).expect("pod json");
    Api::<Pod>::namespaced(client.kube().clone(), "default")
        .create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    wait_running(client, &format!("app={name}")).await;
}

/// One HTTP/1.0 GET through `addr`; the body, or why it failed.
async fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: pod\r\n\r\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        s.read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&response).into_owned();
        match text.split_once("\r\n\r\n") {
            Some((head, body)) if head.starts_with("HTTP/1.0 200") => Ok(body.to_owned()),
            _ => Err(format!("unexpected response {text:?}")),
        }
    };
    timeout(PATIENCE, exchange)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// Waits (bounded) until the forward serves a request: the pod's server may
/// still be starting.
async fn until_serving(addr: SocketAddr) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match get(addr, "/hello.txt").await {
            Ok(body) if body == BODY => return,
            other => assert!(Instant::now() < deadline, "forward never served: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn local(forwarder: &PortForwarder, remote: u16) -> SocketAddr {
    forwarder
        .forwardings()
        .iter()
        .find(|f| f.remote == remote && f.local.is_ipv4())
        .map(|f| f.local)
        .expect("listener for the port")
}

/// Deterministic, incompressible test data.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn echo_exact(addr: SocketAddr, len: usize) {
    let data = Arc::new(pattern(len, 0x5eed));
    let expected: [u8; 32] = Sha256::digest(&*data).into();
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let writer = {
        let data = Arc::clone(&data);
        tokio::spawn(async move { wr.write_all(&data).await.map(|()| wr) })
    };
    let mut hasher = Sha256::new();
    let mut got = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let read = async {
        while got < len {
            let n = rd.read(&mut buf).await.expect("read echo");
            assert!(n > 0, "echo ended after {got} of {len} bytes");
            hasher.update(&buf[..n]);
            got += n;
        }
    };
    timeout(Duration::from_secs(300), read)
        .await
        .expect("echo completes");
    let _wr = writer.await.expect("writer task").expect("write all");
    let digest: [u8; 32] = hasher.finalize().into();
    assert_eq!(digest, expected, "100 MB echoed byte-exact");
}

async fn scenarios(protocol: Protocol) {
    let (sandbox, client) = start().await;
    create_pod(&client, "web").await;
    let forwarder = PortForwarder::builder(client.clone(), Target::Pod("web".into()))
        .protocol(protocol)
        .ping_interval(Duration::from_secs(1))
        .pong_timeout(Duration::from_secs(5))
        .port(PortSpec::new(0, HTTP_PORT))
        .port(PortSpec::new(0, ECHO_PORT))
        .port(PortSpec::new(0, CLOSED_PORT))
        .start()
        .await
        .expect("forwarder starts");
    let http = local(&forwarder, HTTP_PORT);
    until_serving(http).await;

    // 200 concurrent requests, every body correct.
    let requests: Vec<_> = (0..200)
        .map(|_| tokio::spawn(get(http, "/hello.txt")))
        .collect();
    for r in requests {
        assert_eq!(r.await.expect("task").as_deref(), Ok(BODY));
    }

    // 100 MB each way, byte-exact.
    echo_exact(local(&forwarder, ECHO_PORT), 100 * 1024 * 1024).await;

    // A refused port fails alone; the next request succeeds.
    let refused = get(local(&forwarder, CLOSED_PORT), "/").await;
    assert!(refused.is_err(), "closed port answered: {refused:?}");
    assert_eq!(get(http, "/hello.txt").await.as_deref(), Ok(BODY));

    // Idle behind a 3 s idle cut for 10 s: keepalive holds the session.
    let before = forwarder.stats().reconnects;
    sandbox
        .inject(Fault::IdleTimeout { seconds: 3.0 })
        .expect("idle fault");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(get(http, "/hello.txt").await.as_deref(), Ok(BODY));
    if protocol != Protocol::WebSocket {
        assert_eq!(forwarder.stats().reconnects, before, "same session");
    }
    sandbox
        .inject(Fault::IdleTimeout { seconds: 0.0 })
        .expect("idle off");

    // Dropped connections: the next request is served within 2 s.
    sandbox.inject(Fault::DropConnections).expect("drop fault");
    let again = timeout(Duration::from_secs(2), get(http, "/hello.txt"))
        .await
        .unwrap_or_else(|_| Err("not served within 2 s".into()));
    assert_eq!(again.as_deref(), Ok(BODY));

    // Blackholed past the pong deadline: a connection in flight is closed
    // (not left hanging), and once the server answers again so is the next
    // request, on a new session.
    let before = forwarder.stats().reconnects;
    let mut inflight = TcpStream::connect(local(&forwarder, ECHO_PORT))
        .await
        .expect("connect");
    inflight.write_all(b"x").await.expect("write");
    let mut one = [0u8; 1];
    inflight
        .read_exact(&mut one)
        .await
        .expect("echo before the blackhole");
    sandbox
        .inject(Fault::Blackhole { seconds: 8.0 })
        .expect("blackhole fault");
    let ended = timeout(PATIENCE, inflight.read(&mut one)).await;
    assert!(
        matches!(ended, Ok(Ok(0) | Err(_))),
        "in-flight connection left hanging: {ended:?}"
    );
    assert_eq!(get(http, "/hello.txt").await.as_deref(), Ok(BODY));
    if protocol != Protocol::WebSocket {
        assert!(forwarder.stats().reconnects > before, "a new session");
    }
    eprintln!("{protocol:?}: {}", forwarder.stats());
    forwarder.shutdown().await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel() {
    scenarios(Protocol::Tunnel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spdy() {
    scenarios(Protocol::Spdy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_websocket() {
    scenarios(Protocol::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_pod_replaced() {
    let (sandbox, client) = start().await;
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": { "app": "web" } },
            "template": pod_template(&serde_json::json!({ "app": "web" })),
        }
    }))
    .expect("deployment json");
    Api::<Deployment>::namespaced(client.kube().clone(), "default")
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");
    let first = wait_running(&client, "app=web").await;
    let forwarder = PortForwarder::builder(client.clone(), "deploy/web".parse().expect("target"))
        .port(":http".parse().expect("spec"))
        .start()
        .await
        .expect("forwarder starts");
    let http = local(&forwarder, HTTP_PORT);
    until_serving(http).await;

    Api::<Pod>::namespaced(client.kube().clone(), "default")
        .delete(&first, &DeleteParams::default())
        .await
        .expect("delete pod");
    let deadline = Instant::now() + PATIENCE;
    let second = loop {
        let name = wait_running(&client, "app=web").await;
        if name != first {
            break name;
        }
        assert!(Instant::now() < deadline, "pod never replaced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("pod {first} replaced by {second}");
    until_serving(http).await;
    assert!(forwarder.stats().reconnects >= 1);
    forwarder.shutdown().await;
    sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_named_target_port_and_library_stream() {
    let (sandbox, client) = start().await;
    create_pod(&client, "web").await;
    let service: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": {
            "selector": { "app": "web" },
            "ports": [{ "name": "web", "port": 80, "targetPort": "http" }],
        }
    }))
    .expect("service json");
    Api::namespaced(client.kube().clone(), "default")
        .create(&PostParams::default(), &service)
        .await
        .expect("create service");
    let forwarder = PortForwarder::builder(client.clone(), "svc/web".parse().expect("target"))
        .port(":80".parse().expect("spec"))
        .start()
        .await
        .expect("forwarder starts");
    // Like kubectl (capture 32): the service port maps to the pod's named
    // container port, and that is what the Forwarding line shows.
    let forwarding = &forwarder.forwardings()[0];
    assert_eq!(forwarding.remote, HTTP_PORT);
    assert!(forwarding
        .to_string()
        .ends_with(&format!(" -> {HTTP_PORT}")));
    until_serving(forwarding.local).await;

    // A program's stream, no listener involved: service port 80 again.
    let mut stream = forwarder.connect(80).await.expect("stream to the pod");
    assert_eq!(stream.port(), HTTP_PORT);
    stream
        .write_all(b"GET /hello.txt HTTP/1.0\r\nHost: pod\r\n\r\n")
        .await
        .expect("request");
    let mut response = Vec::new();
    timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("bounded")
        .expect("response");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    assert!(response.ends_with(BODY), "{response}");
    drop(stream);
    forwarder.shutdown().await;
    sandbox.shutdown().await;
}
