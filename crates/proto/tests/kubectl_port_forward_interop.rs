//! Real kubectl 1.32 `port-forward`, over plain SPDY and through the
//! WebSocket tunnel (`SPDY/3.1+portforward.k8s.io`), against our
//! `spdy::Connection` (server role) and `portforward::StreamHeaders`:
//! stream pairs per local connection, request ids, kubectl's early FIN on
//! the error stream, and data both ways.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use bytes::Bytes;
use podlink_proto::portforward::{StreamHeaders, StreamKind, PROTOCOL, TUNNEL_PROTOCOL};
use podlink_proto::spdy::{Config, Connection, Event, Headers, Role, RstStatus, StreamId};
use support::{read_some, respond, ChildGuard, KubectlHome, Request, Server, DEADLINE, POLL};
use tungstenite::{Message, WebSocket};

#[derive(Debug, Default, Clone)]
struct ForwardLog {
    /// `spdy` or `websocket`.
    transport: &'static str,
    /// (stream id, kind, port, request id) in opening order.
    streams: Vec<(u32, StreamKind, u16, Option<String>)>,
    /// Streams kubectl half-closed.
    client_fins: Vec<u32>,
}

/// Bytes in and out of the SPDY session, whatever carries them.
trait Pipe {
    /// Appends what arrived (possibly nothing); false once the peer is gone.
    fn receive(&mut self, buf: &mut Vec<u8>) -> bool;
    /// Sends bytes; false once the peer is gone.
    fn send(&mut self, bytes: &[u8]) -> bool;
}

impl Pipe for TcpStream {
    fn receive(&mut self, buf: &mut Vec<u8>) -> bool {
        read_some(self, buf).is_some()
    }

    fn send(&mut self, bytes: &[u8]) -> bool {
        self.write_all(bytes).is_ok()
    }
}

/// The WebSocket tunnel: SPDY bytes in binary messages, boundaries ignored.
impl Pipe for WebSocket<TcpStream> {
    fn receive(&mut self, buf: &mut Vec<u8>) -> bool {
        match support::read_message(self) {
            Ok(Some(Message::Binary(bytes))) => {
                buf.extend_from_slice(&bytes);
                true
            }
            // Text is an error in the tunnel; close ends it.
            Ok(Some(Message::Text(_) | Message::Close(_))) | Err(_) => false,
            Ok(Some(_) | None) => true,
        }
    }

    fn send(&mut self, bytes: &[u8]) -> bool {
        self.send(Message::Binary(Bytes::copy_from_slice(bytes)))
            .is_ok()
    }
}

/// The port-forward endpoint, over plain SPDY or the WebSocket tunnel.
fn forward_endpoint(
    conn: &mut TcpStream,
    initial: Vec<u8>,
    req: &Request,
    stop: &AtomicBool,
) -> ForwardLog {
    let upgrade = req.header("upgrade").unwrap_or("").to_ascii_lowercase();
    if upgrade == "websocket" {
        let offered = support::header_values(req, "sec-websocket-protocol");
        if !offered
            .iter()
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == TUNNEL_PROTOCOL)
        {
            respond(
                conn,
                "400 Bad Request",
                r#"{"kind":"Status","status":"Failure"}"#,
            );
            return ForwardLog::default();
        }
        let mut ws = support::accept_websocket(conn, initial, req, TUNNEL_PROTOCOL);
        return forward(&mut ws, Vec::new(), stop, "websocket");
    }
    if !support::header_values(req, "x-stream-protocol-version").contains(&PROTOCOL) {
        respond(
            conn,
            "403 Forbidden",
            r#"{"kind":"Status","status":"Failure"}"#,
        );
        return ForwardLog::default();
    }
    support::switch_to_spdy(conn, PROTOCOL);
    forward(conn, initial, stop, "spdy")
}

/// A kubelet-like port-forward session whose "pod port" answers each
/// connection with its input upper-cased.
fn forward(
    pipe: &mut impl Pipe,
    initial: Vec<u8>,
    stop: &AtomicBool,
    transport: &'static str,
) -> ForwardLog {
    let mut log = ForwardLog {
        transport,
        ..ForwardLog::default()
    };
    let started = Instant::now();
    let mut machine = Connection::new(Role::Server, Config::default(), started);
    // request id -> error stream, and data stream -> its request id.
    let mut error_streams: BTreeMap<String, StreamId> = BTreeMap::new();
    let mut data_streams: BTreeMap<StreamId, String> = BTreeMap::new();
    let mut input = initial;
    while started.elapsed() < DEADLINE && !stop.load(Ordering::SeqCst) {
        if machine.handle_input(&input).is_err() {
            break;
        }
        input.clear();
        while let Some(event) = machine.poll_event() {
            match event {
                Event::StreamOpened { id, headers, .. } => {
                    match StreamHeaders::from_headers(&headers) {
                        Ok(h) => {
                            machine.reply(id, &Headers::new()).expect("reply");
                            let request = h.request_id.clone().unwrap_or_default();
                            match h.kind {
                                StreamKind::Error => error_streams.insert(request, id).map(drop),
                                StreamKind::Data => data_streams.insert(id, request).map(drop),
                            };
                            log.streams.push((id.get(), h.kind, h.port, h.request_id));
                        }
                        Err(_) => machine.reset(id, RstStatus::ProtocolError).expect("reset"),
                    }
                }
                Event::Data { id, bytes } if data_streams.contains_key(&id) => {
                    machine
                        .send_data(id, bytes.to_ascii_uppercase(), false)
                        .expect("echo");
                }
                Event::Finished { id } => {
                    log.client_fins.push(id.get());
                    if let Some(request) = data_streams.get(&id) {
                        // The "pod" is done too: FIN data, then the error stream.
                        machine.close(id).expect("fin data");
                        if let Some(error) = error_streams.get(request) {
                            let _ = machine.close(*error);
                        }
                    }
                }
                _ => {}
            }
        }
        while let Some(bytes) = machine.poll_transmit() {
            if !pipe.send(&bytes) {
                return log;
            }
        }
        if !pipe.receive(&mut input) {
            break;
        }
    }
    log
}

/// Waits for kubectl's "Forwarding from 127.0.0.1:PORT -> 80" line.
fn local_port(lines: &mpsc::Receiver<String>) -> u16 {
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        match lines.recv_timeout(POLL) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") {
                    let port = rest.split(' ').next().unwrap_or("");
                    return port.parse().expect("numeric local port");
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    panic!("kubectl never printed its local port");
}

/// Forwards two local connections through kubectl and checks the session.
fn forward_two_connections(websockets: bool) {
    let server = Server::start(forward_endpoint);
    let home = KubectlHome::new(server.port);
    let child = support::kubectl(&home, &["port-forward", "pod/demo", ":80"])
        .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed and runs");
    let mut guard = ChildGuard(child);
    let stderr = support::read_all(guard.0.stderr.take().expect("stderr pipe"));
    let stdout = guard.0.stdout.take().expect("stdout pipe");
    let (tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let port = local_port(&lines);

    for i in 0..2 {
        let mut local = TcpStream::connect(("127.0.0.1", port)).expect("kubectl listens");
        local
            .set_read_timeout(Some(DEADLINE))
            .expect("read timeout");
        local
            .write_all(format!("hello {i}\n").as_bytes())
            .expect("write");
        local.shutdown(Shutdown::Write).expect("half-close");
        let mut answer = String::new();
        local
            .read_to_string(&mut answer)
            .expect("read until kubectl closes");
        assert_eq!(answer, format!("HELLO {i}\n"));
    }

    // Ending kubectl ends the session, which files its log.
    drop(guard);
    let started = Instant::now();
    while server.logs().is_empty() && started.elapsed() < DEADLINE {
        std::thread::sleep(POLL);
    }
    let _ = reader.join();
    let logs = server.logs();
    let info = format!(
        "logs: {logs:?}\nkubectl stderr: {:?}",
        stderr.join().unwrap_or_default()
    );
    assert_eq!(logs.len(), 1, "{info}");
    let transport = if websockets { "websocket" } else { "spdy" };
    assert_eq!(logs[0].transport, transport, "{info}");
    let zero = Some("0".to_owned());
    let one = Some("1".to_owned());
    assert_eq!(
        logs[0].streams,
        [
            (1, StreamKind::Error, 80, zero.clone()),
            (3, StreamKind::Data, 80, zero),
            (5, StreamKind::Error, 80, one.clone()),
            (7, StreamKind::Data, 80, one),
        ],
        "{info}"
    );
    for id in [1, 3, 5, 7] {
        assert!(
            logs[0].client_fins.contains(&id),
            "kubectl half-closed stream {id}: {info}"
        );
    }
}

#[test]
fn kubectl_port_forward_over_spdy_pairs_streams_and_moves_bytes_both_ways() {
    forward_two_connections(false);
}

#[test]
fn kubectl_port_forward_through_the_websocket_tunnel_moves_bytes_both_ways() {
    forward_two_connections(true);
}
