//! Real kubectl 1.32 `exec`, over WebSocket (`v5.channel.k8s.io`, its
//! default) and over SPDY, against endpoints built on this crate behind the
//! fake API server in `support`: kubectl's zlib must read our header
//! blocks and ours its; our channel messages, v5 close decoding and status
//! encoders must give kubectl the output and exit code.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use podlink_proto::channel::{
    decode_message, encode_data, Channel, ChannelMessage, MessageKind, Protocol, StreamType,
    Transport,
};
use podlink_proto::spdy::{Config, Connection, Event, Headers, Role, StreamId, STREAM_TYPE_HEADER};
use podlink_proto::status::ExitStatus;
use support::{
    read_all, read_some, respond, ChildGuard, KubectlHome, Request, Server, DEADLINE, POLL,
};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

#[derive(Debug, Default, Clone)]
struct SessionLog {
    protocol: Option<Protocol>,
    /// The client sent v5's `FF 00` (stdin EOF).
    stdin_closed: bool,
    stream_types: Vec<String>,
    stdin: Vec<u8>,
    client_goaway: bool,
}

/// The exec endpoint: negotiates like a kubelet (or the apiserver's v5
/// translator over WebSocket), then runs a scripted "command":
/// `echo WORDS…`, `fail CODE` (stderr + exit code) or `cat` (stdin echo).
fn exec_endpoint(
    conn: &mut TcpStream,
    initial: Vec<u8>,
    req: &Request,
    stop: &AtomicBool,
) -> SessionLog {
    if req
        .header("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
    {
        let offered = support::header_values(req, "sec-websocket-protocol");
        let Some(protocol) = Protocol::server_pick(Transport::WebSocket, offered, &Protocol::ALL)
        else {
            respond(
                conn,
                "400 Bad Request",
                r#"{"kind":"Status","status":"Failure"}"#,
            );
            return SessionLog::default();
        };
        let mut ws = support::accept_websocket(conn, initial, req, protocol.name());
        return run_ws_exec(&mut ws, protocol, &query(req), stop);
    }
    let offered = support::header_values(req, "x-stream-protocol-version");
    let kubelet = [Protocol::V4, Protocol::V3, Protocol::V2, Protocol::V1];
    let Some(protocol) = Protocol::server_pick(Transport::Spdy, offered, &kubelet) else {
        respond(
            conn,
            "403 Forbidden",
            r#"{"kind":"Status","status":"Failure"}"#,
        );
        return SessionLog::default();
    };
    support::switch_to_spdy(conn, protocol.name());
    run_exec(conn, initial, protocol, &query(req), stop)
}

fn run_exec(
    conn: &mut TcpStream,
    initial: Vec<u8>,
    protocol: Protocol,
    query: &[(String, String)],
    stop: &AtomicBool,
) -> SessionLog {
    let flag = |name: &str| query.iter().any(|(k, v)| k == name && v == "true");
    let command: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.as_str())
        .collect();
    let mut wanted = vec![StreamType::Error];
    for (on, kind) in [
        (flag("stdin"), StreamType::Stdin),
        (flag("stdout"), StreamType::Stdout),
        (flag("stderr"), StreamType::Stderr),
    ] {
        if on {
            wanted.push(kind);
        }
    }
    let started = Instant::now();
    let mut machine = Connection::new(Role::Server, Config::default(), started);
    let mut log = SessionLog {
        protocol: Some(protocol),
        ..SessionLog::default()
    };
    let mut streams: BTreeMap<&'static str, StreamId> = BTreeMap::new();
    let mut ran = false;
    let mut input = initial;
    while started.elapsed() < DEADLINE && !stop.load(Ordering::SeqCst) {
        if machine.handle_input(&input).is_err() {
            break;
        }
        input.clear();
        while let Some(event) = machine.poll_event() {
            match event {
                Event::StreamOpened { id, headers, .. } => {
                    let kind = headers.get(STREAM_TYPE_HEADER).unwrap_or("").to_owned();
                    machine.reply(id, &Headers::new()).expect("reply");
                    if let Some(t) = StreamType::from_name(&kind) {
                        streams.insert(t.name(), id);
                    }
                    log.stream_types.push(kind);
                }
                Event::Data { id, bytes } if Some(&id) == streams.get("stdin") => {
                    log.stdin.extend_from_slice(&bytes);
                    if command.first() == Some(&"cat") {
                        machine
                            .send_data(streams["stdout"], bytes, false)
                            .expect("echo");
                    }
                }
                Event::Finished { id }
                    if Some(&id) == streams.get("stdin") && command.first() == Some(&"cat") =>
                {
                    finish(&mut machine, &streams, protocol, &ExitStatus::Success);
                }
                Event::GoAway { .. } => log.client_goaway = true,
                _ => {}
            }
        }
        if !ran && wanted.iter().all(|t| streams.contains_key(t.name())) {
            ran = true;
            match command.as_slice() {
                ["echo", words @ ..] => {
                    machine
                        .send_data(streams["stdout"], format!("{}\n", words.join(" ")), false)
                        .expect("stdout");
                    finish(&mut machine, &streams, protocol, &ExitStatus::Success);
                }
                ["fail", code] => {
                    machine
                        .send_data(streams["stderr"], &b"oops\n"[..], false)
                        .expect("stderr");
                    let code = code.parse().expect("numeric code");
                    finish(
                        &mut machine,
                        &streams,
                        protocol,
                        &ExitStatus::Exited { code },
                    );
                }
                _ => {}
            }
        }
        while let Some(bytes) = machine.poll_transmit() {
            if conn.write_all(&bytes).is_err() {
                return log;
            }
        }
        if log.client_goaway {
            break;
        }
        match read_some(conn, &mut input) {
            Some(_) => {}
            None => break,
        }
    }
    log
}

/// Writes the status, then FINs every stream, as the kubelet does.
fn finish(
    machine: &mut Connection,
    streams: &BTreeMap<&'static str, StreamId>,
    protocol: Protocol,
    status: &ExitStatus,
) {
    let mut bytes = Vec::new();
    status.encode(protocol, &mut bytes);
    machine
        .send_data(streams["error"], bytes, false)
        .expect("status");
    for id in streams.values() {
        // stdin may already be half-closed by us; only our direction matters.
        let _ = machine.close(*id);
    }
}

/// Sends one channel message in the protocol's form.
fn send_channel(
    ws: &mut WebSocket<TcpStream>,
    protocol: Protocol,
    channel: Channel,
    payload: &[u8],
) {
    let mut buf = BytesMut::new();
    let message = match encode_data(protocol, channel, payload, &mut buf) {
        MessageKind::Binary => Message::Binary(buf.freeze()),
        MessageKind::Text => {
            Message::text(String::from_utf8(buf.to_vec()).expect("base64 is ASCII"))
        }
    };
    ws.send(message).expect("send channel message");
}

/// How long a process takes to start, as far as the test server plays it.
const PROCESS_START: Duration = Duration::from_millis(100);

/// The WebSocket session: output, then the status on channel 3, then a
/// close 1000 (PROTOCOLS.md §3.7).
fn run_ws_exec(
    ws: &mut WebSocket<TcpStream>,
    protocol: Protocol,
    query: &[(String, String)],
    stop: &AtomicBool,
) -> SessionLog {
    let command: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.as_str())
        .collect();
    let mut log = SessionLog {
        protocol: Some(protocol),
        ..SessionLog::default()
    };
    if !matches!(command.as_slice(), ["cat", ..]) {
        // kubectl reads messages as soon as it has the 101 but registers its
        // streams a moment later, and drops what arrives for a stream it does
        // not know yet (client-go remotecommand/websocket.go, readDemuxLoop:
        // "Unknown stream id 1, discarding message"). A kubelet's output
        // always trails the upgrade by the process start; so does ours.
        std::thread::sleep(PROCESS_START);
    }
    let status = match command.as_slice() {
        ["echo", words @ ..] => {
            send_channel(
                ws,
                protocol,
                Channel::STDOUT,
                format!("{}\n", words.join(" ")).as_bytes(),
            );
            ExitStatus::Success
        }
        ["fail", code] => {
            send_channel(ws, protocol, Channel::STDERR, b"oops\n");
            ExitStatus::Exited {
                code: code.parse().expect("numeric code"),
            }
        }
        _ => {
            // cat: echo stdin until v5's close marker.
            let started = Instant::now();
            while !log.stdin_closed && started.elapsed() < DEADLINE && !stop.load(Ordering::SeqCst)
            {
                let (kind, payload) = match support::read_message(ws) {
                    Ok(Some(Message::Binary(b))) => (MessageKind::Binary, b),
                    Ok(Some(Message::Text(t))) => (MessageKind::Text, Bytes::from(t)),
                    Ok(_) => continue,
                    Err(_) => return log,
                };
                match decode_message(protocol, kind, payload).expect("kubectl's messages decode") {
                    ChannelMessage::Data {
                        channel: Channel::STDIN,
                        payload,
                    } => {
                        log.stdin.extend_from_slice(&payload);
                        send_channel(ws, protocol, Channel::STDOUT, &payload);
                    }
                    ChannelMessage::Close {
                        channel: Channel::STDIN,
                    } => log.stdin_closed = true,
                    _ => {}
                }
            }
            ExitStatus::Success
        }
    };
    let mut bytes = Vec::new();
    status.encode(protocol, &mut bytes);
    send_channel(ws, protocol, Channel::ERROR, &bytes);
    let _ = ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }));
    // Read until kubectl answers the close (bounded).
    let started = Instant::now();
    while started.elapsed() < DEADLINE && support::read_message(ws).is_ok() {}
    log
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_kubectl(home: &KubectlHome, websockets: bool, args: &[&str], stdin: &[u8]) -> Outcome {
    let child = support::kubectl(home, args)
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", websockets.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed and runs");
    let mut guard = ChildGuard(child);
    let mut input = guard.0.stdin.take().expect("stdin pipe");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    let out = read_all(guard.0.stdout.take().expect("stdout pipe"));
    let err = read_all(guard.0.stderr.take().expect("stderr pipe"));
    let code = wait_bounded(&mut guard);
    drop(guard);
    Outcome {
        code,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn describe(o: &Outcome, server: &Server<SessionLog>) -> String {
    format!(
        "code {:?}\nstdout: {:?}\nstderr: {:?}\nsessions: {:?}",
        o.code,
        o.stdout,
        o.stderr,
        server.logs()
    )
}
fn stdout_and_success(websockets: bool) {
    let server = Server::start(exec_endpoint);
    let home = KubectlHome::new(server.port);
    let out = run_kubectl(
        &home,
        websockets,
        &["exec", "demo", "--", "echo", "hi", "there"],
        b"",
    );
    let info = describe(&out, &server);
    assert_eq!(out.code, Some(0), "{info}");
    assert_eq!(out.stdout, "hi there\n", "{info}");
    let sessions = server.logs();
    assert_eq!(sessions.len(), 1, "{info}");
    if websockets {
        assert_eq!(sessions[0].protocol, Some(Protocol::V5), "{info}");
    } else {
        assert_eq!(sessions[0].protocol, Some(Protocol::V4), "{info}");
        assert_eq!(
            sessions[0].stream_types,
            ["error", "stdout", "stderr"],
            "{info}"
        );
        assert!(
            sessions[0].client_goaway,
            "kubectl ends with GOAWAY: {info}"
        );
    }
}

fn exit_code_and_stderr(websockets: bool) {
    let server = Server::start(exec_endpoint);
    let home = KubectlHome::new(server.port);
    let out = run_kubectl(&home, websockets, &["exec", "demo", "--", "fail", "3"], b"");
    let info = describe(&out, &server);
    assert_eq!(out.code, Some(3), "{info}");
    assert!(out.stderr.contains("oops\n"), "{info}");
    assert!(
        out.stderr.contains("command terminated with exit code 3"),
        "{info}"
    );
}

fn stdin_and_its_eof(websockets: bool) {
    let server = Server::start(exec_endpoint);
    let home = KubectlHome::new(server.port);
    let out = run_kubectl(
        &home,
        websockets,
        &["exec", "-i", "demo", "--", "cat"],
        b"hello\nworld\n",
    );
    let info = describe(&out, &server);
    assert_eq!(out.code, Some(0), "{info}");
    assert_eq!(out.stdout, "hello\nworld\n", "{info}");
    let sessions = server.logs();
    assert_eq!(sessions[0].stdin, b"hello\nworld\n", "{info}");
    if websockets {
        assert!(sessions[0].stdin_closed, "kubectl sent FF 00: {info}");
    } else {
        assert_eq!(
            sessions[0].stream_types,
            ["error", "stdin", "stdout", "stderr"],
            "{info}"
        );
    }
}

#[test]
fn kubectl_exec_over_websocket_v5_gets_stdout_and_success() {
    stdout_and_success(true);
}

#[test]
fn kubectl_exec_over_spdy_gets_stdout_and_success() {
    stdout_and_success(false);
}

#[test]
fn kubectl_exec_over_websocket_v5_reports_the_exit_code_and_stderr() {
    exit_code_and_stderr(true);
}

#[test]
fn kubectl_exec_over_spdy_reports_the_exit_code_and_stderr() {
    exit_code_and_stderr(false);
}

#[test]
fn kubectl_exec_over_websocket_v5_stdin_eof_is_the_close_marker() {
    stdin_and_its_eof(true);
}

#[test]
fn kubectl_exec_over_spdy_stdin_eof_is_a_fin() {
    stdin_and_its_eof(false);
}

/// The decoded query pairs of a request, in order.
fn query(req: &Request) -> Vec<(String, String)> {
    let Some((_, q)) = req.target.split_once('?') else {
        return Vec::new();
    };
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect()
}

/// Form decoding, as kubectl encodes `command=` values.
fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits for the child up to the deadline (its guard kills it after); its
/// exit code.
fn wait_bounded(guard: &mut ChildGuard) -> Option<i32> {
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        if let Some(status) = guard.0.try_wait().expect("wait") {
            return status.code();
        }
        std::thread::sleep(POLL);
    }
    None
}
