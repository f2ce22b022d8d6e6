//! `podlink attach [-i] [-t] POD [-c CONTAINER]`.

use anyhow::Context as _;
use podlink_client::exec::ExecRequest;

use super::exec::{cancel_policy, keepalive, protocol, usable_tty};
use super::pod;
use super::session::{interact, Interactive};
use crate::args::{AttachArgs, GlobalArgs};
use crate::cluster::Cluster;
use crate::exit::Exit;
use crate::signals::StopSignals;

/// Attach to the container's main process until it ends or we are stopped
/// (which, by default, leaves it running, as kubectl does).
pub async fn run(global: &GlobalArgs, args: AttachArgs) -> anyhow::Result<Exit> {
    let cluster = Cluster::connect(global).await?;
    let outcome = attach(&cluster, args).await;
    cluster.close().await;
    outcome
}

async fn attach(cluster: &Cluster, args: AttachArgs) -> anyhow::Result<Exit> {
    // Before anything starts remotely: a stop signal must never kill us
    // with the remote process left behind.
    let signals = StopSignals::install().context("installing signal handlers")?;
    let client = &cluster.client;
    let name = pod::name(&args.pod)?;
    let container = pod::container(client, name, args.container.as_deref()).await?;
    let tty = args.tty && usable_tty();
    let request = ExecRequest::attach(name)
        .with_container(container)
        .with_stdin(args.stdin)
        .with_tty(tty)
        .with_protocol(protocol(args.protocol))
        .with_keepalive(keepalive(&args.keepalive))
        .with_on_cancel(cancel_policy(args.on_cancel));
    let session = client.exec(request).await.context("attaching")?;
    if tty {
        eprintln!("If you don't see a command prompt, try pressing enter.");
    }
    interact(
        session,
        signals,
        Interactive {
            stdin: args.stdin,
            tty,
            nudge_size: true,
            on_cancel: cancel_policy(args.on_cancel),
        },
    )
    .await
}
