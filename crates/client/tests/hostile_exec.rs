//! Exec against servers that misbehave on purpose (issue #11): each abuse
//! must end in a typed error (or, for an unreadable exit code, a status that
//! says so), within a bound, without a panic and without memory blowing up.

use std::time::Duration;

use podlink_client::exec::{ExecRequest, ExitStatus, ProtocolChoice};
use podlink_client::{Client, ClientOptions, Error};
use podlink_testkit::hostile::{HostileServer, Scenario, BOMB_INFLATED};

/// Bounds every wait; a session still open after this is a hang.
const DEADLINE: Duration = Duration::from_secs(30);

const TRANSPORTS: [ProtocolChoice; 2] = [ProtocolChoice::WebSocket, ProtocolChoice::Spdy];

async fn server(scenario: Scenario) -> (HostileServer, Client) {
    let server = HostileServer::start(scenario)
        .await
        .expect("hostile server");
    let client = Client::from_options(&ClientOptions::new().kubeconfig(server.kubeconfig()))
        .await
        .expect("client for the hostile server");
    (server, client)
}

/// Starts `cat` on pod demo over `protocol` and waits for its end, bounded.
async fn exec(client: &Client, protocol: ProtocolChoice) -> Result<ExitStatus, Error> {
    let request = ExecRequest::new("demo", ["cat"])
        .with_stdin(true)
        .with_protocol(protocol);
    let session = async { client.exec(request).await?.wait().await };
    tokio::time::timeout(DEADLINE, session)
        .await
        .unwrap_or_else(|_| panic!("{protocol:?}: no answer within {DEADLINE:?}"))
}

/// Peak resident memory of this test process, from /proc.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM in /proc/self/status")
        * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_101_without_a_protocol_is_refused_over_websocket_and_v1_over_spdy() {
    let (_server, client) = server(Scenario::NoProtocol).await;
    let err = exec(&client, ProtocolChoice::WebSocket)
        .await
        .expect_err("no protocol");
    assert!(
        matches!(&err, Error::Negotiate { chosen: None, offered } if !offered.is_empty()),
        "{err:?}"
    );
    // SPDY without X-Stream-Protocol-Version means v1 (PROTOCOLS.md §5);
    // the server then goes silent, which the keepalive must notice.
    let err = exec(&client, ProtocolChoice::Spdy)
        .await
        .expect_err("a silent server");
    assert!(matches!(err, Error::PeerDead(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_nobody_offered_is_a_negotiation_error() {
    let (_server, client) = server(Scenario::WrongProtocol).await;
    for protocol in TRANSPORTS {
        let err = exec(&client, protocol).await.expect_err("wrong protocol");
        assert!(
            matches!(&err, Error::Negotiate { chosen: Some(p), .. } if p == "v99.hostile.k8s.io"),
            "{protocol:?}: {err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_are_protocol_errors_while_the_connection_stays_open() {
    let (_server, client) = server(Scenario::GarbageFrames).await;
    let err = exec(&client, ProtocolChoice::WebSocket)
        .await
        .expect_err("reserved opcode");
    assert!(matches!(err, Error::WebSocket(_)), "{err:?}");
    let err = exec(&client, ProtocolChoice::Spdy)
        .await
        .expect_err("short SYN_STREAM");
    assert!(
        matches!(&err, Error::Protocol(_) | Error::ConnectionLost(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("malformed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_frame_then_eof_is_an_error_not_a_hang() {
    let (_server, client) = server(Scenario::TruncatedFrame).await;
    for protocol in TRANSPORTS {
        let err = exec(&client, protocol).await.expect_err("truncated");
        assert!(
            matches!(
                err,
                Error::ConnectionLost(_) | Error::WebSocket(_) | Error::Protocol(_)
            ),
            "{protocol:?}: {err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zlib_bomb_header_block_is_refused_by_the_block_limit() {
    let (_server, client) = server(Scenario::ZlibBomb).await;
    let err = exec(&client, ProtocolChoice::Spdy)
        .await
        .expect_err("zlib bomb");
    assert!(
        matches!(&err, Error::Protocol(_) | Error::ConnectionLost(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("header block exceeds"), "{err}");
    let peak = peak_rss_bytes();
    assert!(
        peak < (BOMB_INFLATED / 4) as u64,
        "peak RSS {peak} bytes: the bomb was inflated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_header_list_is_refused_by_its_count() {
    let (_server, client) = server(Scenario::EndlessHeaders).await;
    let err = exec(&client, ProtocolChoice::Spdy)
        .await
        .expect_err("u32::MAX headers");
    assert!(
        matches!(&err, Error::Protocol(_) | Error::ConnectionLost(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("more than the limit"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_exit_code_is_reported_as_an_exit_without_code() {
    let (_server, client) = server(Scenario::AbsurdExitCode).await;
    let status = exec(&client, ProtocolChoice::WebSocket)
        .await
        .expect("a status, not an error");
    assert!(
        matches!(&status, ExitStatus::ExitedWithoutCode { message } if message.contains("184467440737095516160000")),
        "{status:?}"
    );
}
