//! Port-forward workers: one forwarder per protocol to an echo server in a
//! pod, and connections pushing checksummed data through each.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use podlink_client::portforward::{PortForwarder, PortSpec, Protocol, Target};
use podlink_client::Client;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::data;
use crate::failure::forward_transport_kind;
use crate::tally::{Count, Tally};

/// The echo pod.
pub const POD: &str = "soak-echo";
/// The echo server's port in the pod.
const ECHO_PORT: u16 = 9000;
/// Every port-forward transport the client speaks.
pub const PROTOCOLS: [Protocol; 3] = [Protocol::Tunnel, Protocol::Spdy, Protocol::WebSocket];
/// Largest payload of one connection.
const MAX_PAYLOAD: u64 = 4 << 20;
/// Bound on one connection, faults included.
const CONNECTION_DEADLINE: Duration = Duration::from_secs(120);
/// Bound on one readiness probe.
const PROBE_DEADLINE: Duration = Duration::from_secs(10);
/// Pause after a failed connection, so a broken forward is not hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(300);

/// The echo server: one thread per connection, echoing until end of input.
const ECHO_SERVER: &str = r#"
import socket, threading
def echo(c):
    while True:
        d = c.recv(262144)
        if not d: break
        c.sendall(d)
    c.shutdown(socket.SHUT_WR)
    c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9000)); s.listen(256)
while True:
    c, _ = s.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()
"#;

/// Creates the echo pod.
pub async fn create_pod(client: &Client) -> anyhow::Result<()> {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD, "labels": {"app": POD}},
        "spec": {"containers": [{
            "name": "main",
            "image": "python",
            "command": ["python3", "-u", "-c", ECHO_SERVER],
            "ports": [{"containerPort": ECHO_PORT}],
        }]}
    }))?;
    Api::<Pod>::namespaced(client.kube().clone(), client.namespace())
        .create(&PostParams::default(), &pod)
        .await?;
    Ok(())
}

/// A forwarder for one protocol, started again if it ever gives up.
pub struct Forward {
    client: Client,
    protocol: Protocol,
    forwarder: Mutex<Option<Arc<PortForwarder>>>,
}

impl Forward {
    /// A forward to the echo pod over `protocol` (started on first use).
    pub fn new(client: Client, protocol: Protocol) -> Self {
        Self {
            client,
            protocol,
            forwarder: Mutex::new(None),
        }
    }

    async fn current(&self, tally: &Tally) -> Result<Arc<PortForwarder>, String> {
        let mut slot = self.forwarder.lock().await;
        if let Some(forwarder) = slot.as_ref() {
            return Ok(Arc::clone(forwarder));
        }
        let forwarder = PortForwarder::builder(self.client.clone(), Target::Pod(POD.into()))
            .port(PortSpec::new(0, ECHO_PORT))
            .address("127.0.0.1")
            .protocol(self.protocol)
            .ping_interval(Duration::from_secs(1))
            .pong_timeout(Duration::from_secs(5))
            .start()
            .await
            .map_err(|e| e.to_string())?;
        tally.bump(Count::ForwardStarts);
        let forwarder = Arc::new(forwarder);
        *slot = Some(Arc::clone(&forwarder));
        Ok(forwarder)
    }

    /// Forgets a forwarder that has stopped, so the next use starts anew.
    async fn discard(&self) {
        *self.forwarder.lock().await = None;
    }

    /// Stops the forwarder.
    pub async fn shutdown(&self) {
        let forwarder = self.forwarder.lock().await.take();
        if let Some(forwarder) = forwarder.and_then(|f| Arc::try_unwrap(f).ok()) {
            forwarder.shutdown().await;
        }
    }
}

/// Runs echo exchanges through `forward` until `stop`.
pub async fn worker(forward: Arc<Forward>, tally: Arc<Tally>, stop: CancellationToken, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    while !stop.is_cancelled() {
        let size = data::random_size(&mut rng, MAX_PAYLOAD);
        let payload_seed = rng.random();
        tally.bump(Count::ForwardConnections);
        let exchange = echo(&forward, &tally, size, payload_seed);
        match tokio::time::timeout(CONNECTION_DEADLINE, exchange).await {
            Ok(true) => {}
            Ok(false) => tokio::time::sleep(RETRY_PAUSE).await,
            Err(_) => tally.violation(
                Count::ForwardHung,
                format!(
                    "{:?}: {size} bytes not echoed within {CONNECTION_DEADLINE:?}",
                    forward.protocol
                ),
            ),
        }
    }
}

/// One connection: `size` bytes out, the same back. False when a
/// transport failure (counted) ended it.
async fn echo(forward: &Forward, tally: &Tally, size: u64, seed: u64) -> bool {
    let forwarder = match forward.current(tally).await {
        Ok(forwarder) => forwarder,
        Err(err) => {
            tally.transport_error(format!("forward/start: {err}"));
            return false;
        }
    };
    let stream = match forwarder.connect(ECHO_PORT).await {
        Ok(stream) => stream,
        Err(err) => {
            match forward_transport_kind(&err) {
                Some(kind) => tally.transport_error(kind),
                None => tally.violation(
                    Count::ForwardUnclear,
                    format!("{:?}: connect failed for no fault: {err}", forward.protocol),
                ),
            }
            if err.is_fatal() {
                forward.discard().await;
            }
            return false;
        }
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    let write = async {
        let digest = data::send(&mut writer, size, seed).await?;
        writer.shutdown().await?;
        Ok::<_, std::io::Error>(digest)
    };
    // Exactly `size` bytes: legacy WebSocket cannot half-close, so the
    // echo server never sees end of input there and never closes.
    let mut echoed = (&mut reader).take(size);
    let (sent, received) = tokio::join!(write, data::receive(&mut echoed, size));
    let (sent, (len, digest)) = match (sent, received) {
        (Ok(sent), Ok(received)) => (sent, received),
        (Err(_), _) | (_, Err(_)) => {
            tally.transport_error(format!("forward/{:?}-stream-io", forward.protocol));
            return false;
        }
    };
    if len < size {
        // The connection ended early: a cut, reported as end of stream.
        tally.transport_error(format!("forward/{:?}-stream-cut", forward.protocol));
        return false;
    }
    if len == size && digest == sent {
        tally.bump(Count::ForwardCompleted);
        tally.add(Count::ForwardBytesVerified, size);
    } else {
        tally.violation(
            Count::ForwardCorrupt,
            format!(
                "{:?}: {len} bytes echoed for {size} sent, digests {}",
                forward.protocol,
                if digest == sent { "equal" } else { "differ" }
            ),
        );
    }
    true
}

/// Waits (bounded) until `forward` echoes: the pod's server may still be
/// starting. Failures while waiting are not soak figures.
pub async fn ready(forward: &Forward, deadline: Duration) -> anyhow::Result<()> {
    let scratch = Tally::default();
    let until = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < until {
        let probe = tokio::time::timeout(PROBE_DEADLINE, echo(forward, &scratch, 1024, 1));
        if probe.await == Ok(true) && scratch.samples().is_empty() {
            return Ok(());
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    anyhow::bail!(
        "the {:?} port-forward never echoed within {deadline:?}: {:?} {:?}",
        forward.protocol,
        scratch.transport_errors(),
        scratch.samples()
    )
}
