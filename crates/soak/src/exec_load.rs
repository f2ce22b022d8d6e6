//! Exec workers: checksummed payloads piped through `cat` or `sha256sum`
//! with random exit codes, and sessions cancelled at random moments.

use std::sync::Arc;
use std::time::Duration;

use podlink_client::exec::{
    CancelPolicy, Cancelled, DisconnectPolicy, Exec, ExecRequest, ExitStatus, ProtocolChoice,
};
use podlink_client::{Client, KeepAlive};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::data;
use crate::failure::exec_transport_kind;
use crate::tally::{Count, Tally};

/// The pod every exec runs in (the sandbox's demo pod).
pub const POD: &str = "demo";
/// Largest payload of one session.
const MAX_PAYLOAD: u64 = 2 << 20;
/// Bound on one session, faults included (a hang past it is a failure).
const SESSION_DEADLINE: Duration = Duration::from_secs(120);
/// Pings every 2 s keep sessions alive through the idle-timeout fault;
/// 8 s of silence means the peer is dead.
const KEEPALIVE: KeepAlive = KeepAlive {
    interval: Duration::from_secs(2),
    timeout: Duration::from_secs(8),
};

/// Runs sessions one after another until `stop`.
pub async fn worker(client: Client, tally: Arc<Tally>, stop: CancellationToken, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut serial = 0u64;
    while !stop.is_cancelled() {
        serial += 1;
        let protocol = if rng.random_bool(0.5) {
            ProtocolChoice::WebSocket
        } else {
            ProtocolChoice::Spdy
        };
        let tag = format!("soak-{seed:x}-{serial}");
        let session = if rng.random_bool(0.2) {
            let cancel = CancelJob::random(&mut rng, protocol, tag);
            tokio::time::timeout(SESSION_DEADLINE, cancel.run(&client, &tally)).await
        } else {
            let pipe = PipeJob::random(&mut rng, protocol, tag);
            tokio::time::timeout(SESSION_DEADLINE, pipe.run(&client, &tally)).await
        };
        tally.bump(Count::ExecSessions);
        if session.is_err() {
            tally.violation(
                Count::ExecHung,
                format!("a session over {protocol:?} outlived {SESSION_DEADLINE:?}"),
            );
        }
    }
}

fn request(protocol: ProtocolChoice, script: &str, tag: &str) -> ExecRequest {
    // `tag` becomes $0: it names the session in the sandbox's process list.
    ExecRequest::new(POD, ["sh", "-c", script, tag])
        .with_stdin(true)
        .with_protocol(protocol)
        .with_keepalive(KEEPALIVE)
        .with_on_disconnect(DisconnectPolicy::Terminate)
        .with_grace(Duration::from_millis(500))
}

/// Counts `err` as a transport error, or as a violation if it is not one.
fn failed(tally: &Tally, what: &str, err: &podlink_client::Error) {
    match exec_transport_kind(err) {
        Some(kind) => tally.transport_error(kind),
        None => tally.violation(Count::ExecUnclear, format!("{what}: {err}")),
    }
}

/// What the remote side does with the payload.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// `cat`: the payload comes back on stdout.
    Echo,
    /// `sha256sum`: the remote digest comes back.
    Digest,
}

/// Most bytes read of `sha256sum`'s answer (64 hex digits and a newline).
const DIGEST_LINE_LIMIT: u64 = 200;

/// What came back on stdout.
enum Received {
    /// The echoed payload's length and digest.
    Echo { len: u64, digest: data::Digest256 },
    /// The remote digest line.
    Text(Vec<u8>),
}

/// One payload through a command that exits with a chosen code.
struct PipeJob {
    protocol: ProtocolChoice,
    tag: String,
    mode: Mode,
    size: u64,
    seed: u64,
    code: u8,
}

impl PipeJob {
    fn random(rng: &mut SmallRng, protocol: ProtocolChoice, tag: String) -> Self {
        Self {
            protocol,
            tag,
            mode: if rng.random_bool(0.5) {
                Mode::Echo
            } else {
                Mode::Digest
            },
            size: data::random_size(rng, MAX_PAYLOAD),
            seed: rng.random(),
            code: if rng.random_bool(0.5) {
                0
            } else {
                rng.random()
            },
        }
    }

    fn expected_status(&self) -> ExitStatus {
        match self.code {
            0 => ExitStatus::Success,
            code => ExitStatus::Exited {
                code: u32::from(code),
            },
        }
    }

    async fn run(self, client: &Client, tally: &Tally) {
        let program = match self.mode {
            Mode::Echo => "cat",
            Mode::Digest => "sha256sum | cut -c1-64",
        };
        let script = format!("{program}; exit {}", self.code);
        let mut exec = match client
            .exec(request(self.protocol, &script, &self.tag))
            .await
        {
            Ok(exec) => exec,
            Err(err) => return failed(tally, "starting exec", &err),
        };
        let (Some(mut stdin), Some(mut stdout)) = (exec.stdin(), exec.stdout()) else {
            return tally.violation(Count::ExecUnclear, "stdin or stdout missing".into());
        };
        let mut stderr = exec.stderr();
        let write = async {
            let digest = data::send(&mut stdin, self.size, self.seed).await?;
            stdin.shutdown().await?;
            Ok::<_, std::io::Error>(digest)
        };
        let read = async {
            match self.mode {
                Mode::Echo => {
                    let (len, digest) = data::receive(&mut stdout, self.size).await?;
                    Ok(Received::Echo { len, digest })
                }
                Mode::Digest => {
                    let mut text = Vec::new();
                    let mut bounded = (&mut stdout).take(DIGEST_LINE_LIMIT);
                    bounded.read_to_end(&mut text).await?;
                    Ok::<_, std::io::Error>(Received::Text(text))
                }
            }
        };
        let drain = async {
            if let Some(stderr) = stderr.as_mut() {
                data::receive(stderr, 1 << 20).await.map(|(n, _)| n)
            } else {
                Ok(0)
            }
        };
        let (written, read, stderr_len) = tokio::join!(write, read, drain);
        let status = exec.wait().await;
        let status = match status {
            Ok(status) => status,
            Err(err) => return failed(tally, "waiting for exec", &err),
        };
        // The command ran to its end: everything must be exact now.
        tally.bump(Count::ExecCompleted);
        let context = format!("{} over {:?}", self.tag, self.protocol);
        if status != self.expected_status() {
            return tally.violation(
                Count::ExecWrongStatus,
                format!("{context}: expected exit {} got {status:?}", self.code),
            );
        }
        let (sent, received) = match (written, read, stderr_len) {
            (Ok(sent), Ok(received), Ok(0)) => (sent, received),
            (written, read, stderr) => {
                return tally.violation(
                    Count::ExecUnclear,
                    format!(
                        "{context}: status {status:?} but write {:?}, read {:?}, stderr {stderr:?}",
                        written.err(),
                        read.err()
                    ),
                )
            }
        };
        let exact = match received {
            Received::Echo { len, digest } => len == self.size && digest == sent,
            Received::Text(text) => text == format!("{}\n", data::hex(&sent)).as_bytes(),
        };
        if exact {
            tally.add(Count::ExecBytesVerified, self.size);
        } else {
            tally.violation(
                Count::ExecCorrupt,
                format!(
                    "{context}: {:?} of {} bytes did not match",
                    self.mode, self.size
                ),
            );
        }
    }
}

/// How a session is given up.
#[derive(Debug, Clone, Copy)]
enum HowCancel {
    Call(CancelPolicy),
    Drop,
}

/// A long-running process tree (a background `sleep` and a `cat`) cancelled
/// after a random delay.
struct CancelJob {
    protocol: ProtocolChoice,
    tag: String,
    delay: Duration,
    how: HowCancel,
}

impl CancelJob {
    fn random(rng: &mut SmallRng, protocol: ProtocolChoice, tag: String) -> Self {
        let how = match rng.random_range(0..3) {
            0 => HowCancel::Call(CancelPolicy::Terminate),
            1 => HowCancel::Call(CancelPolicy::Kill),
            _ => HowCancel::Drop,
        };
        Self {
            protocol,
            tag,
            delay: Duration::from_millis(rng.random_range(0..2000)),
            how,
        }
    }

    async fn run(self, client: &Client, tally: &Tally) {
        let mut exec: Exec = match client
            .exec(request(self.protocol, "sleep 3600 & cat; wait", &self.tag))
            .await
        {
            Ok(exec) => exec,
            Err(err) => return failed(tally, "starting exec", &err),
        };
        if let Some(mut stdin) = exec.stdin() {
            // Whether this write lands does not matter: a fault may have
            // cut the session already, and the cancel must cope with that.
            let _ = stdin.write_all(b"some input\n").await;
            tokio::time::sleep(self.delay).await;
            drop(stdin);
        }
        tally.bump(Count::ExecCancels);
        match self.how {
            HowCancel::Drop => drop(exec),
            HowCancel::Call(policy) => match exec.cancel(policy).await {
                Ok(Cancelled::MayStillRun(why)) => {
                    tally.bump(Count::ExecCancelMayStillRun);
                    tally.transport_error(format!("exec/cancel-may-still-run: {why}"));
                }
                Ok(_) => {}
                Err(err) => failed(tally, "cancelling exec", &err),
            },
        }
    }
}
