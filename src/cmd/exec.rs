//! `podlink exec [-i] [-t] POD [-c CONTAINER] [--protocol …] [--on-cancel …] -- CMD [ARG…]`.

use anyhow::Context as _;
use podlink_client::exec::{CancelPolicy, DisconnectPolicy, ExecRequest, ProtocolChoice};
use podlink_client::KeepAlive;

use super::pod;
use super::session::{interact, Interactive};
use crate::args::{ExecArgs, GlobalArgs, KeepaliveArgs, OnCancel, OnDisconnect, StreamProtocol};
use crate::cluster::Cluster;
use crate::exit::Exit;
use crate::signals::StopSignals;
use crate::terminal;

/// Run the command and pass its exit status through.
pub async fn run(global: &GlobalArgs, args: ExecArgs) -> anyhow::Result<Exit> {
    let cluster = Cluster::connect(global).await?;
    let outcome = exec(&cluster, args).await;
    cluster.close().await;
    outcome
}

async fn exec(cluster: &Cluster, args: ExecArgs) -> anyhow::Result<Exit> {
    // Before anything starts remotely: a stop signal must never kill us
    // with the remote process left behind.
    let signals = StopSignals::install().context("installing signal handlers")?;
    let client = &cluster.client;
    let name = pod::name(&args.pod)?;
    let container = pod::container(client, name, args.container.as_deref()).await?;
    let tty = args.tty && usable_tty();
    let request = ExecRequest::new(name, args.command)
        .with_container(container)
        .with_stdin(args.stdin)
        .with_tty(tty)
        .with_protocol(protocol(args.protocol))
        .with_keepalive(keepalive(&args.keepalive))
        .with_on_cancel(cancel_policy(args.on_cancel))
        .with_grace(args.grace)
        .with_on_disconnect(match args.on_disconnect {
            OnDisconnect::Detach => DisconnectPolicy::Detach,
            OnDisconnect::Terminate => DisconnectPolicy::Terminate,
        });
    let session = client.exec(request).await.context("starting the command")?;
    tracing::info!(protocol = session.protocol(), "session started");
    interact(
        session,
        signals,
        Interactive {
            stdin: args.stdin,
            tty,
            nudge_size: false,
            on_cancel: cancel_policy(args.on_cancel),
        },
    )
    .await
}

/// `-t` needs a local terminal on stdin; without one, warn as kubectl does
/// and go on without.
pub fn usable_tty() -> bool {
    if terminal::stdin_is_terminal() {
        true
    } else {
        eprintln!("podlink: unable to use a TTY: input is not a terminal");
        false
    }
}

/// The library's protocol choice for `--protocol`.
pub fn protocol(choice: StreamProtocol) -> ProtocolChoice {
    match choice {
        StreamProtocol::Auto => ProtocolChoice::Auto,
        StreamProtocol::Websocket => ProtocolChoice::WebSocket,
        StreamProtocol::Spdy => ProtocolChoice::Spdy,
    }
}

/// The library's keepalive for `--ping-interval` / `--pong-timeout`.
pub fn keepalive(args: &KeepaliveArgs) -> KeepAlive {
    KeepAlive::new(args.ping_interval, args.pong_timeout)
}

/// The library's cancel policy for `--on-cancel`.
pub fn cancel_policy(choice: OnCancel) -> CancelPolicy {
    match choice {
        OnCancel::Interrupt => CancelPolicy::Interrupt,
        OnCancel::Terminate => CancelPolicy::Terminate,
        OnCancel::Kill => CancelPolicy::Kill,
        OnCancel::Detach => CancelPolicy::Detach,
    }
}
