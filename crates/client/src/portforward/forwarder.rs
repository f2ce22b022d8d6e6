//! [`PortForwarder`]: listeners, the session supervisor and the per-connection
//! copy loops.
//!
//! ```text
//!   listeners ──accept──▶ connection task ──wants a session──┐
//!                                                             ▼
//!   supervisor:  Resolving ──▶ Connecting ──▶ Up(session) ──lost──▶ (backoff) ─┐
//!                    ▲                                                         │
//!                    └──────────────────── kick / delay ───────────────────────┘
//!                    └──▶ Stopped(reason) on a fatal error or shutdown
//! ```
//!
//! The supervisor owns at most one session at a time and publishes it on a
//! `watch` channel. A connection that finds no session kicks the supervisor
//! (cutting any backoff sleep short) and waits for the next one, so the first
//! connection after an outage succeeds as soon as the server answers again.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::backoff::Backoff;
use super::error::ForwardError;
use super::listen::ListenAddresses;
use super::session::{Protocol, Session, SessionConfig};
use super::spec::{PortSpec, RemotePort};
use super::stats::{Counters, Stats};
use super::stream::{explain, PodStream};
use super::target::{self, ResolvedTarget, Target};
use crate::watch::{reflector, ApiSource, Change, WatchConfig};
use crate::Client;

/// Default interval between keepalive pings.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(5);
/// Default time a peer may stay silent after a ping before the session is
/// declared lost.
pub const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a new connection waits for a session before it is refused.
const SESSION_WAIT: Duration = Duration::from_secs(30);
/// How long the first resolution may wait for a running pod (kubectl's
/// `--pod-running-timeout` default).
const START_WAIT: Duration = Duration::from_secs(60);
/// Reconnect delays.
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A session that lived this long was healthy: the next outage starts the
/// backoff from the beginning.
const HEALTHY_SESSION: Duration = Duration::from_secs(10);
/// Bound on one session upgrade attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts to open a stream pair for one connection when the session dies
/// under it before any byte moved.
const OPEN_ATTEMPTS: usize = 3;

/// Builds a [`PortForwarder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PortForwardBuilder {
    client: Client,
    namespace: String,
    target: Target,
    ports: Vec<PortSpec>,
    addresses: Vec<String>,
    config: SessionConfig,
}

impl PortForwardBuilder {
    /// A forward to `target` in the client's default namespace, with no
    /// listening ports yet (streams can still be had from
    /// [`PortForwarder::connect`]).
    pub fn new(client: Client, target: Target) -> Self {
        let namespace = client.namespace().to_owned();
        Self {
            client,
            namespace,
            target,
            ports: Vec::new(),
            addresses: Vec::new(),
            config: SessionConfig {
                protocol: Protocol::Auto,
                ping_interval: DEFAULT_PING_INTERVAL,
                pong_timeout: DEFAULT_PONG_TIMEOUT,
            },
        }
    }

    /// Use this namespace instead of the client's default.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Listen for this `[LOCAL:]REMOTE` port.
    pub fn port(mut self, spec: PortSpec) -> Self {
        self.ports.push(spec);
        self
    }

    /// Listen on this address (an IP, `[v6]`, or `localhost`, the default);
    /// may be given several times.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.addresses.push(address.into());
        self
    }

    /// Which transport to use (default: tunnel, then SPDY, then legacy WS).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.config.protocol = protocol;
        self
    }

    /// Interval between keepalive pings.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.config.ping_interval = interval;
        self
    }

    /// How long the server may stay silent after a ping before the session
    /// counts as lost.
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.config.pong_timeout = timeout;
        self
    }

    /// Resolves the target (waiting up to a minute for a running pod), binds
    /// every listener and starts the supervisor, which dials at once.
    ///
    /// # Errors
    /// Bad addresses, ports that cannot be bound, and resolution errors: a
    /// missing target, an unknown or UDP port, or no running pod in time.
    pub async fn start(self) -> Result<PortForwarder, ForwardError> {
        let addresses = ListenAddresses::parse(&self.addresses)?;
        let resolved = resolve_at_start(&self).await?;
        let mut listeners = Vec::new();
        for (spec, port) in self.ports.iter().zip(&resolved.ports) {
            for listener in addresses.bind(port.local)? {
                listeners.push((listener, spec.clone(), port.remote));
            }
        }
        let (state_tx, _) = watch::channel(State::Connecting);
        let shared = Arc::new(Shared {
            client: self.client,
            namespace: self.namespace,
            target: self.target,
            ports: self.ports,
            config: self.config,
            counters: Arc::new(Counters::default()),
            state: state_tx,
            kick: Notify::new(),
            recheck: Notify::new(),
        });
        let mut tasks = JoinSet::new();
        let mut forwardings = Vec::new();
        for (listener, spec, remote) in listeners {
            forwardings.push(Forwarding {
                local: listener.local_addr()?,
                remote,
                spec: spec.clone(),
            });
            tasks.spawn(accept_loop(Arc::clone(&shared), listener, spec));
        }
        tasks.spawn(supervise(Arc::clone(&shared), resolved));
        Ok(PortForwarder {
            shared,
            forwardings,
            tasks,
        })
    }
}

async fn resolve_at_start(b: &PortForwardBuilder) -> Result<ResolvedTarget, ForwardError> {
    let deadline = Instant::now() + START_WAIT;
    let mut backoff = Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX);
    loop {
        match target::resolve(b.client.kube(), &b.namespace, &b.target, &b.ports).await {
            Ok(resolved) => return Ok(resolved),
            Err(e @ (ForwardError::NoRunningPod { .. } | ForwardError::PodNotRunning { .. }))
                if Instant::now() < deadline =>
            {
                tracing::debug!(error = %e, "waiting for a running pod");
            }
            Err(e) => return Err(e),
        }
        tokio::time::sleep_until((Instant::now() + backoff.next_delay()).min(deadline)).await;
    }
}

/// One listening socket and where it forwards.
#[derive(Debug, Clone)]
pub struct Forwarding {
    /// The bound local address (with the chosen port for `:REMOTE`).
    pub local: std::net::SocketAddr,
    /// The pod port it forwards to, as resolved at start.
    pub remote: u16,
    /// The spec it came from.
    pub spec: PortSpec,
}

impl std::fmt::Display for Forwarding {
    /// kubectl's line: `Forwarding from 127.0.0.1:8080 -> 80`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Forwarding from {} -> {}", self.local, self.remote)
    }
}

/// The supervisor's published state.
#[derive(Clone)]
enum State {
    Connecting,
    Up(Arc<Session>, Arc<ResolvedTarget>),
    Stopped(Arc<ForwardError>),
}

struct Shared {
    client: Client,
    namespace: String,
    target: Target,
    ports: Vec<PortSpec>,
    config: SessionConfig,
    counters: Arc<Counters>,
    state: watch::Sender<State>,
    /// A connection is waiting: retry now rather than after the backoff.
    kick: Notify,
    /// A connection failed on the server's side: check the pod is still there.
    recheck: Notify,
}

/// A running port-forward: listeners, a supervised session, counters.
///
/// Dropping it stops everything like [`PortForwarder::shutdown`], without
/// waiting.
pub struct PortForwarder {
    shared: Arc<Shared>,
    forwardings: Vec<Forwarding>,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for PortForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortForwarder")
            .field("target", &self.shared.target)
            .field("forwardings", &self.forwardings)
            .finish_non_exhaustive()
    }
}

impl PortForwarder {
    /// Starts building a forward to `target`.
    pub fn builder(client: Client, target: Target) -> PortForwardBuilder {
        PortForwardBuilder::new(client, target)
    }

    /// Every bound listener, in port-spec then address order.
    #[must_use]
    pub fn forwardings(&self) -> &[Forwarding] {
        &self.forwardings
    }

    /// A snapshot of the counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// One stream to `port` of the pod, over the forwarder's session, for a
    /// program rather than a listener. `port` is mapped like a port spec of
    /// the forwarder when it matches one (so a service port goes to its
    /// target port); otherwise it is used as the pod's port.
    ///
    /// Dropping the stream resets it; shutting it down sends end-of-stream.
    ///
    /// # Errors
    /// As for a forwarded connection: no session in time, the server
    /// refusing the port, or the forwarder having stopped.
    pub async fn connect(&self, port: u16) -> Result<PodStream, ForwardError> {
        let spec = self
            .shared
            .ports
            .iter()
            .find(|s| s.remote == RemotePort::Number(port))
            .cloned()
            .unwrap_or_else(|| PortSpec::new(0, port));
        let stream = open_stream(&self.shared, &spec).await?;
        Ok(stream)
    }

    /// Resolves when the forwarder gives up, with the reason (for example
    /// the pod's namespace was deleted). Never resolves while it keeps
    /// reconnecting.
    pub async fn stopped(&self) -> Arc<ForwardError> {
        let mut rx = self.shared.state.subscribe();
        loop {
            if let State::Stopped(reason) = &*rx.borrow_and_update() {
                return Arc::clone(reason);
            }
            if rx.changed().await.is_err() {
                return Arc::new(ForwardError::Stopped);
            }
        }
    }

    /// Stops listening, closes the session and every forwarded connection,
    /// and waits for the tasks to end.
    pub async fn shutdown(mut self) {
        self.stop();
        while self.tasks.join_next().await.is_some() {}
    }

    fn stop(&mut self) {
        self.shared
            .state
            .send_replace(State::Stopped(Arc::new(ForwardError::Stopped)));
        self.tasks.abort_all();
    }
}

impl Drop for PortForwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, spec: PortSpec) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    tracing::debug!(%peer, "handling a connection for {}", spec);
                    connections.spawn(forward_connection(Arc::clone(&shared), socket, spec.clone()));
                }
                // Out of descriptors and the like: a pause, not the end.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a local connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn forward_connection(shared: Arc<Shared>, mut socket: TcpStream, spec: PortSpec) {
    let _ = socket.set_nodelay(true);
    let result = async {
        let mut stream = open_stream(&shared, &spec).await?;
        stream.copy_with(&mut socket).await.map_err(explain)
    }
    .await;
    if let Err(e) = result {
        // One line per failed connection; the forwarder goes on.
        shared.counters.connection_failed();
        tracing::warn!("{e}");
        if matches!(e, ForwardError::Remote { .. }) {
            shared.recheck.notify_one();
        }
        let _ = socket.shutdown().await;
    }
}

/// Waits for a session (kicking the supervisor) and opens one stream on it.
/// Retries on a newer session when the one it tried died before any byte
/// moved, which is safe: nothing was sent yet.
async fn open_stream(shared: &Arc<Shared>, spec: &PortSpec) -> Result<PodStream, ForwardError> {
    let mut last = None;
    for _ in 0..OPEN_ATTEMPTS {
        let (session, resolved) = wait_for_session(shared).await?;
        let index = shared.ports.iter().position(|s| s == spec);
        let port = match (index, &spec.remote) {
            (Some(i), _) => resolved.ports[i].remote,
            (None, RemotePort::Number(n)) => *n,
            (None, RemotePort::Name(_)) => {
                return Err(ForwardError::InvalidPortSpec {
                    spec: spec.to_string(),
                    reason: "a named port must be one of the forwarder's port specs".into(),
                })
            }
        };
        match session.open(port, Arc::clone(&shared.counters)).await {
            Ok(stream) => return Ok(stream),
            Err(e @ ForwardError::SessionLost { .. }) => {
                session.close();
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or(ForwardError::Stopped))
}

async fn wait_for_session(
    shared: &Shared,
) -> Result<(Arc<Session>, Arc<ResolvedTarget>), ForwardError> {
    let mut rx = shared.state.subscribe();
    let deadline = Instant::now() + SESSION_WAIT;
    loop {
        match &*rx.borrow_and_update() {
            State::Up(session, resolved) if !session.is_closed() => {
                return Ok((Arc::clone(session), Arc::clone(resolved)))
            }
            State::Stopped(reason) => {
                return Err(ForwardError::SessionLost {
                    reason: reason.to_string(),
                })
            }
            _ => shared.kick.notify_one(),
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(ForwardError::Stopped),
            Err(_) => {
                return Err(ForwardError::Unavailable {
                    waited: SESSION_WAIT,
                })
            }
        }
    }
}

/// Runs sessions one after another until a fatal error.
async fn supervise(shared: Arc<Shared>, mut resolved: ResolvedTarget) {
    let mut backoff = Backoff::new(BACKOFF_INITIAL, BACKOFF_MAX);
    let mut protocol = shared.config.protocol;
    let mut fresh = true;
    loop {
        if !fresh {
            match target::resolve(
                shared.client.kube(),
                &shared.namespace,
                &shared.target,
                &shared.ports,
            )
            .await
            {
                Ok(r) => {
                    if r.pod != resolved.pod {
                        tracing::info!(pod = %r.pod, "target now resolves to a new pod");
                    }
                    resolved = r;
                }
                Err(e) if e.is_fatal() => {
                    tracing::debug!("giving up: {e}");
                    shared.state.send_replace(State::Stopped(Arc::new(e)));
                    return;
                }
                Err(e) => {
                    tracing::warn!("{e}; retrying");
                    pause(&shared, &mut backoff).await;
                    continue;
                }
            }
        }
        fresh = false;
        let connect = Session::connect(
            &shared.client,
            &shared.namespace,
            &resolved.pod,
            &shared.config,
            &mut protocol,
        );
        // A server that accepts TCP but never answers (a blackhole) must not
        // hold the supervisor for the upgrade's own 30 s.
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| {
                Err(ForwardError::SessionLost {
                    reason: format!("no answer to the upgrade within {CONNECT_TIMEOUT:?}"),
                })
            });
        let session = match attempt {
            Ok(s) => Arc::new(s),
            Err(e) if e.is_fatal() => {
                tracing::debug!("giving up: {e}");
                shared.state.send_replace(State::Stopped(Arc::new(e)));
                return;
            }
            Err(e) => {
                tracing::warn!("{e}; retrying");
                pause(&shared, &mut backoff).await;
                continue;
            }
        };
        shared.counters.session_established();
        tracing::debug!(pod = %resolved.pod, ?protocol, stats = %shared.counters.snapshot(), "session up");
        let resolved_now = Arc::new(resolved.clone());
        shared
            .state
            .send_replace(State::Up(Arc::clone(&session), Arc::clone(&resolved_now)));
        let started = Instant::now();
        let reason = watch_session(&shared, &session, &resolved_now).await;
        session.close();
        shared.state.send_replace(State::Connecting);
        tracing::warn!(stats = %shared.counters.snapshot(), "session lost: {reason}; reconnecting");
        if started.elapsed() >= HEALTHY_SESSION {
            backoff.reset();
        } else {
            pause(&shared, &mut backoff).await;
        }
    }
}

/// Waits for the backoff delay, or less when a connection is waiting.
async fn pause(shared: &Shared, backoff: &mut Backoff) {
    let delay = backoff.next_delay();
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = shared.kick.notified() => {
            // Not a busy loop against a dead server: a kicked retry still
            // waits a little.
            tokio::time::sleep(BACKOFF_INITIAL.min(delay)).await;
        }
    }
}

/// Watches a live session: it ends when the session dies, when the pod is
/// deleted, replaced or stops running, or when a failed connection makes a
/// re-check find the pod gone.
async fn watch_session(shared: &Shared, session: &Session, resolved: &ResolvedTarget) -> String {
    let source = ApiSource::<Pod>::namespaced(shared.client.kube().clone(), &shared.namespace)
        .fields(&format!("metadata.name={}", resolved.pod));
    // The watch retries by itself; only a fatal error ends it, and a failing
    // watch is no reason to drop a working session.
    let (_store, mut changes) = reflector(source, WatchConfig::default());
    loop {
        tokio::select! {
            reason = session.closed() => return reason,
            change = changes.next() => match change {
                Some(Ok(Change::Added(pod) | Change::Modified { new: pod, .. })) => {
                    if let Some(why) = pod_unusable(&pod, resolved) {
                        return why;
                    }
                }
                Some(Ok(Change::Deleted(_))) => return format!("pod {:?} was deleted", resolved.pod),
                Some(Err(e)) => tracing::debug!(error = %e, "pod watch ended"),
                None => std::future::pending::<()>().await,
            },
            () = shared.recheck.notified() => {
                match target::is_still_current(shared.client.kube(), &shared.namespace, resolved).await {
                    Ok(false) => return format!("pod {:?} is gone or replaced", resolved.pod),
                    Ok(true) => {}
                    Err(e) => tracing::debug!(error = %e, "re-checking the pod"),
                }
            }
        }
    }
}

fn pod_unusable(pod: &Pod, resolved: &ResolvedTarget) -> Option<String> {
    let name = &resolved.pod;
    if pod.metadata.uid != resolved.uid {
        return Some(format!("pod {name:?} was replaced"));
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return Some(format!("pod {name:?} is being deleted"));
    }
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    (phase != "Running").then(|| format!("pod {name:?} is {phase}"))
}
