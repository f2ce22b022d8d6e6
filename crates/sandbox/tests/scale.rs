//! Scale figures (run by hand; prints measurements):
//! `cargo test --release -p podlink-sandbox --test scale -- --ignored --nocapture`
//! `PODLINK_SCALE_PODS` sets the pod count (default 100000).
//!
//! Pods are created with `spec.nodeName: elsewhere`, so they are stored and
//! served but never run as processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use podlink_sandbox::{Sandbox, SandboxConfig};
use rustls::pki_types::{CertificateDer, ServerName};

fn ca_der(pem: &str) -> CertificateDer<'static> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    CertificateDer::from(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("CA PEM"),
    )
}

async fn connect(sb: &Sandbox) -> SendRequest<Full<Bytes>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der(sb.ca_pem())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(sb.addr()).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    send
}

fn request(
    sb: &Sandbox,
    method: &str,
    path: &str,
    body: Option<String>,
) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", sb.url()))
        .header("authorization", format!("Bearer {}", sb.token()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap()
}

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

/// Counts watch events (one per line) until `want`, returning when done.
async fn count_events(
    mut send: SendRequest<Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
    want: usize,
) -> (usize, Instant) {
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut seen = 0;
    while seen < want {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame.unwrap().into_data() {
            seen += data.iter().filter(|b| **b == b'\n').count();
        }
    }
    (seen, Instant::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand with --ignored --nocapture (ideally --release)"]
async fn list_and_watch_at_scale() {
    let n: usize = std::env::var("PODLINK_SCALE_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let sb = Sandbox::start(SandboxConfig::new().with_demo(false))
        .await
        .unwrap();
    let send = connect(&sb).await;
    let rss0 = rss_mib();

    // Create N pods, 64 in flight on one HTTP/2 connection.
    let t = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let mut send = send.clone();
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p{i:06}","labels":{{"app":"scale","shard":"s{}"}}}},"spec":{{"nodeName":"elsewhere","containers":[{{"name":"c","image":"x","command":["sleep","1"]}}]}}}}"#,
            i % 10
        );
        let req = request(&sb, "POST", "/api/v1/namespaces/default/pods", Some(body));
        tasks.spawn(async move {
            let resp = send.send_request(req).await.unwrap();
            assert_eq!(resp.status(), 201);
            drop(resp.into_body().collect().await);
            drop(permit);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let create = t.elapsed();
    println!(
        "create {n} pods: {create:?} ({:.0}/s), RSS {} -> {} MiB",
        n as f64 / create.as_secs_f64(),
        rss0,
        rss_mib()
    );

    // Full JSON list and Table list.
    for (label, accept) in [
        ("json", "application/json"),
        ("table", "application/json;as=Table;v=v1;g=meta.k8s.io"),
    ] {
        let mut s = send.clone();
        let mut req = request(&sb, "GET", "/api/v1/namespaces/default/pods", None);
        req.headers_mut().insert("accept", accept.parse().unwrap());
        let t = Instant::now();
        let resp = s.send_request(req).await.unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        println!(
            "list {n} pods as {label}: {:?}, {} MiB",
            t.elapsed(),
            bytes.len() >> 20
        );
    }
    let list = {
        let mut s = send.clone();
        let resp = s
            .send_request(request(
                &sb,
                "GET",
                "/api/v1/namespaces/default/pods?limit=500",
                None,
            ))
            .await
            .unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();

    // Watchers on their own connections, then N deletions as fast as the
    // server takes them; watchers count the DELETED events.
    let watchers = 4;
    let mut counting = Vec::new();
    for _ in 0..watchers {
        let conn = connect(&sb).await;
        let req = request(
            &sb,
            "GET",
            &format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}"),
            None,
        );
        counting.push(tokio::spawn(count_events(conn, req, n)));
    }
    // Replay of the whole creation history to a late watcher.
    let replay_conn = connect(&sb).await;
    let t_replay = Instant::now();
    let (replayed, done) = count_events(
        replay_conn,
        request(
            &sb,
            "GET",
            "/api/v1/namespaces/default/pods?watch=1&resourceVersion=1",
            None,
        ),
        n,
    )
    .await;
    println!(
        "replay {replayed} events from history: {:?} ({:.0} events/s)",
        done - t_replay,
        replayed as f64 / (done - t_replay).as_secs_f64()
    );

    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    let mut s = send.clone();
    let resp = s
        .send_request(request(
            &sb,
            "DELETE",
            "/api/v1/namespaces/default/pods?labelSelector=app%3Dscale",
            None,
        ))
        .await
        .unwrap();
    drop(resp.into_body().collect().await);
    let delete = t.elapsed();
    println!(
        "delete {n} pods (one deletecollection): {delete:?} ({:.0} events/s produced)",
        n as f64 / delete.as_secs_f64()
    );
    for w in counting {
        let (seen, done) = w.await.unwrap();
        let took = done - t;
        println!(
            "  watcher got {seen} events in {took:?} ({:.0} events/s)",
            seen as f64 / took.as_secs_f64()
        );
        assert_eq!(seen, n);
    }
    println!("RSS at end: {} MiB", rss_mib());
    sb.shutdown().await;
}
