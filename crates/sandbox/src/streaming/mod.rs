//! exec, attach and port-forward, served over every protocol kubectl and
//! the other clients speak (PROTOCOLS.md §3–6).
//!
//! Refusals (no pod, bad container or query, no common protocol) are HTTP
//! answers before the upgrade, as from an apiserver. After the 101 each
//! session runs in its own task on the upgraded connection, which still goes
//! through the core's fault wrapper (the router marked it streaming).
//!
//! - [`ws_exec`] / [`spdy_exec`]: the two transports of exec and attach,
//!   both driving the transport-free [`session`] over a [`process::ProcessIo`]
//!   (an exec'd child from [`process`], or the main process via [`attach`]).
//! - [`portforward`]: SPDY pairs (plain or through [`ws_bytes`], the
//!   WebSocket tunnel) and the legacy WebSocket channels.
//! - [`spdy_driver`]: the task running one server-side SPDY session.

mod attach;
mod error;
mod options;
mod portforward;
mod process;
mod session;
mod spdy_driver;
mod spdy_exec;
mod upgrade;
mod ws_bytes;
mod ws_exec;

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use podlink_proto::channel::{self, Protocol};
use podlink_proto::portforward as pf;
use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use self::error::StreamError;
use self::options::StreamOptions;
use self::portforward::PodDialer;
use self::upgrade::{Transport, STREAM_PROTOCOL_VERSION};
use crate::body::Body;
use crate::error::ApiError;
use crate::processes::{ProcessInfo, ProcessKind};
use crate::router::Subresource;
use crate::state::State;

/// WebSocket exec/attach protocols the server speaks (the v5 translator and
/// the kubelet's own), in no particular order: the client's order decides.
const WS_PROTOCOLS: [Protocol; 5] = [
    Protocol::V5,
    Protocol::V4,
    Protocol::V4Base64,
    Protocol::V1,
    Protocol::V1Base64,
];
/// SPDY exec/attach protocols: the kubelet's v4…v1 (it has no v5 and
/// answers v4 to kubectl, which then behaves as for v5).
const SPDY_PROTOCOLS: [Protocol; 4] = [Protocol::V4, Protocol::V3, Protocol::V2, Protocol::V1];
/// Legacy WebSocket port-forward protocols.
const LEGACY_PF_PROTOCOLS: [Protocol; 2] = [Protocol::V4, Protocol::V4Base64];

/// Serves `/api/v1/namespaces/{namespace}/pods/{pod}/{exec|attach|portforward}`
/// (GET or POST, any query). The router has already authenticated the request
/// and marked its connection as streaming, so connection faults apply to the
/// upgraded IO from `hyper::upgrade::on(req)` without further work.
pub(crate) async fn serve(
    state: Arc<State>,
    mut req: Request<Incoming>,
    namespace: String,
    pod: String,
    sub: Subresource,
) -> Response<Body> {
    let target = Target {
        state,
        namespace,
        pod,
    };
    let result = match sub {
        Subresource::Exec => remote_command(target, &mut req, true),
        Subresource::Attach => remote_command(target, &mut req, false),
        Subresource::PortForward => port_forward(target, &mut req),
    };
    result.unwrap_or_else(|refusal| *refusal)
}

/// The pod a request is for.
struct Target {
    state: Arc<State>,
    namespace: String,
    pod: String,
}

/// A 101 to send, or the refusal instead (boxed: responses are large).
type Answer = Result<Response<Body>, Box<Response<Body>>>;

fn refuse(error: StreamError) -> Box<Response<Body>> {
    tracing::debug!(%error, "streaming request refused");
    Box::new(error.into_api_error().into_response())
}

fn api_refusal(error: ApiError) -> Box<Response<Body>> {
    Box::new(error.into_response())
}

/// The container a request names, with the apiserver's errors.
fn pick_container(pod: &Value, name: &str, asked: Option<&str>) -> Result<String, StreamError> {
    let names = |key: &str| -> Vec<String> {
        pod["spec"][key]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("containers");
    let init = names("initContainers");
    match asked {
        Some(asked) if containers.iter().chain(&init).any(|c| c == asked) => Ok(asked.to_owned()),
        Some(asked) => Err(StreamError::BadRequest(format!(
            "container {asked} is not valid for pod {name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(StreamError::BadRequest(message))
        }
    }
}

fn remote_command(target: Target, req: &mut Request<Incoming>, is_exec: bool) -> Answer {
    let Target {
        state,
        namespace,
        pod,
    } = target;
    let object = state.get_pod(&namespace, &pod).map_err(api_refusal)?;
    let options = StreamOptions::from_query(req.uri().query().unwrap_or_default(), is_exec)
        .map_err(refuse)?;
    let container = pick_container(&object, &pod, options.container.as_deref()).map_err(refuse)?;
    let phase = crate::pods::phase(&object);
    if is_exec && (phase == "Succeeded" || phase == "Failed") {
        return Err(refuse(StreamError::BadRequest(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        ))));
    }
    let transport = Transport::of(req.headers()).map_err(refuse)?;
    let stdio = process::Stdio {
        stdin: options.stdin,
        stdout: options.stdout,
        stderr: options.stderr,
        tty: options.tty,
    };

    // The process side, prepared before the 101 so that a pod that is not
    // running is an HTTP error; started only once the session is set up.
    let start: session::Start = if is_exec {
        let command = state
            .pod_command(&namespace, &pod, &container, &options.command)
            .map_err(api_refusal)?;
        let info = ProcessInfo {
            namespace: namespace.clone(),
            pod: pod.clone(),
            container: container.clone(),
            pid: 0,
            kind: ProcessKind::Exec,
            command: options.command.clone(),
        };
        let registry = state.processes.clone();
        Box::new(move |size| {
            let spawned = process::spawn(command, stdio, size, |pid| {
                registry.register(ProcessInfo { pid, ..info })
            })
            .map_err(StreamError::Spawn)?;
            tracing::debug!(pid = spawned.pid, "exec started");
            Ok(spawned.io)
        })
    } else {
        let attach = state
            .attach(&namespace, &pod, &container)
            .map_err(api_refusal)?;
        let main = attach::MainProcess {
            registry: state.processes.clone(),
            namespace: namespace.clone(),
            pod: pod.clone(),
            container: container.clone(),
        };
        Box::new(move |_size| Ok(attach::process_io(attach, main, stdio)))
    };

    let on_upgrade = hyper::upgrade::on(&mut *req);
    match transport {
        Transport::WebSocket => {
            let offered = upgrade::websocket_offer(req.headers());
            let protocol = if offered.is_empty() {
                None
            } else {
                let picked = Protocol::server_pick(
                    channel::Transport::WebSocket,
                    offered.iter().map(String::as_str),
                    &WS_PROTOCOLS,
                );
                Some(picked.ok_or_else(|| refuse(no_protocol(&offered, &WS_PROTOCOLS)))?)
            };
            let response = upgrade::websocket_accept(req.headers(), protocol.map(Protocol::name))
                .map_err(refuse)?;
            let channels = ws_exec::Channels {
                stdout: options.stdout,
                stderr: options.stderr,
                tty: options.tty,
            };
            tokio::spawn(async move {
                let Some(io) = upgraded(on_upgrade).await else {
                    return;
                };
                let ws =
                    WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_exec::config()))
                        .await;
                ws_exec::serve(ws, protocol.unwrap_or(Protocol::V1), channels, start).await;
            });
            Ok(response)
        }
        Transport::Spdy => {
            let offered = upgrade::header_list(req.headers(), STREAM_PROTOCOL_VERSION);
            let protocol = if offered.is_empty() {
                None
            } else {
                let picked = Protocol::server_pick(
                    channel::Transport::Spdy,
                    offered.iter().map(String::as_str),
                    &SPDY_PROTOCOLS,
                );
                let names = SPDY_PROTOCOLS.map(Protocol::name);
                Some(picked.ok_or_else(|| Box::new(upgrade::spdy_refuse(&offered, &names)))?)
            };
            let response = upgrade::spdy_accept(protocol.map(Protocol::name));
            tokio::spawn(async move {
                let Some(io) = upgraded(on_upgrade).await else {
                    return;
                };
                spdy_exec::serve(io, protocol.unwrap_or(Protocol::V1), &options, start).await;
            });
            Ok(response)
        }
    }
}

fn no_protocol(offered: &[String], supported: &[Protocol]) -> StreamError {
    let supported: Vec<&str> = supported.iter().map(|p| p.name()).collect();
    StreamError::BadRequest(format!(
        "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts {supported:?}"
    ))
}

fn port_forward(target: Target, req: &mut Request<Incoming>) -> Answer {
    target
        .state
        .get_pod(&target.namespace, &target.pod)
        .map_err(api_refusal)?;
    let transport = Transport::of(req.headers()).map_err(refuse)?;
    let dialer = PodDialer {
        state: target.state,
        namespace: target.namespace,
        pod: target.pod,
    };
    let on_upgrade = hyper::upgrade::on(&mut *req);
    match transport {
        Transport::Spdy => {
            let offered = upgrade::header_list(req.headers(), STREAM_PROTOCOL_VERSION);
            if !offered.is_empty() && !offered.iter().any(|p| p == pf::PROTOCOL) {
                return Err(Box::new(upgrade::spdy_refuse(&offered, &[pf::PROTOCOL])));
            }
            let response = upgrade::spdy_accept((!offered.is_empty()).then_some(pf::PROTOCOL));
            tokio::spawn(async move {
                let Some(io) = upgraded(on_upgrade).await else {
                    return;
                };
                portforward::serve_spdy(io, dialer).await;
            });
            Ok(response)
        }
        Transport::WebSocket => {
            let offered = upgrade::websocket_offer(req.headers());
            if offered.iter().any(|p| p == pf::TUNNEL_PROTOCOL) {
                let response = upgrade::websocket_accept(req.headers(), Some(pf::TUNNEL_PROTOCOL))
                    .map_err(refuse)?;
                tokio::spawn(async move {
                    let Some(io) = upgraded(on_upgrade).await else {
                        return;
                    };
                    let ws =
                        WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_exec::config()))
                            .await;
                    portforward::serve_spdy(ws_bytes::WsBytes::new(ws), dialer).await;
                });
                return Ok(response);
            }
            let ports =
                options::ports_from_query(req.uri().query().unwrap_or_default()).map_err(refuse)?;
            if ports.is_empty() {
                return Err(refuse(StreamError::BadRequest(
                    "query parameter \"port\" is required".into(),
                )));
            }
            let protocol = if offered.is_empty() {
                None
            } else {
                let picked = Protocol::server_pick(
                    channel::Transport::WebSocket,
                    offered.iter().map(String::as_str),
                    &LEGACY_PF_PROTOCOLS,
                );
                Some(picked.ok_or_else(|| refuse(no_protocol(&offered, &LEGACY_PF_PROTOCOLS)))?)
            };
            let response = upgrade::websocket_accept(req.headers(), protocol.map(Protocol::name))
                .map_err(refuse)?;
            tokio::spawn(async move {
                let Some(io) = upgraded(on_upgrade).await else {
                    return;
                };
                let ws =
                    WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_exec::config()))
                        .await;
                portforward::serve_legacy(ws, protocol.unwrap_or(Protocol::V1), ports, dialer)
                    .await;
            });
            Ok(response)
        }
    }
}

/// The upgraded connection, once hyper has sent the 101.
async fn upgraded(
    on_upgrade: hyper::upgrade::OnUpgrade,
) -> Option<TokioIo<hyper::upgrade::Upgraded>> {
    match on_upgrade.await {
        Ok(upgraded) => Some(TokioIo::new(upgraded)),
        Err(error) => {
            tracing::info!(%error, "upgrade failed");
            None
        }
    }
}
