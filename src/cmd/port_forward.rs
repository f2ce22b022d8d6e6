//! `podlink port-forward [--address ADDR] [--protocol P] TARGET [LOCAL:]REMOTE…`:
//! listens, prints kubectl's `Forwarding from …` lines, and runs until a stop
//! signal or until the forwarder gives up (one `podlink: …` line, exit 255).

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use podlink_client::portforward::{PortForwarder, PortSpec, Protocol, Target};

use crate::args::{ForwardProtocol, GlobalArgs, PortForwardArgs};
use crate::cluster::Cluster;
use crate::exit::Exit;
use crate::signals::StopSignals;

/// How often `-v` logs the counters while they change.
const STATS_INTERVAL: Duration = Duration::from_secs(10);

fn protocol(p: ForwardProtocol) -> Protocol {
    match p {
        ForwardProtocol::Auto => Protocol::Auto,
        ForwardProtocol::Tunnel => Protocol::Tunnel,
        ForwardProtocol::Spdy => Protocol::Spdy,
        ForwardProtocol::Websocket => Protocol::WebSocket,
    }
}

/// Run the command.
pub async fn run(global: &GlobalArgs, args: PortForwardArgs) -> anyhow::Result<Exit> {
    // Bad arguments fail before any cluster (or sandbox) is touched.
    let target: Target = args.target.parse()?;
    let specs = args
        .ports
        .iter()
        .map(|p| p.parse::<PortSpec>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut signals = StopSignals::install().context("installing signal handlers")?;
    let cluster = Cluster::connect(global).await?;
    let outcome = forward(&cluster, target, specs, &args, &mut signals).await;
    cluster.close().await;
    outcome
}

async fn forward(
    cluster: &Cluster,
    target: Target,
    specs: Vec<PortSpec>,
    args: &PortForwardArgs,
    signals: &mut StopSignals,
) -> anyhow::Result<Exit> {
    let mut builder = PortForwarder::builder(cluster.client.clone(), target)
        .protocol(protocol(args.protocol))
        .ping_interval(args.keepalive.ping_interval)
        .pong_timeout(args.keepalive.pong_timeout);
    for spec in specs {
        builder = builder.port(spec);
    }
    for address in &args.address {
        builder = builder.address(address.clone());
    }
    let forwarder = tokio::select! {
        started = builder.start() => started?,
        signal = signals.recv() => return Ok(Exit::Signalled(signal)),
    };
    {
        let mut out = std::io::stdout().lock();
        for forwarding in forwarder.forwardings() {
            writeln!(out, "{forwarding}")?;
        }
        out.flush()?;
    }
    let mut ticker = tokio::time::interval(STATS_INTERVAL);
    let mut last = forwarder.stats();
    let exit = loop {
        tokio::select! {
            signal = signals.recv() => break Ok(Exit::Signalled(signal)),
            reason = forwarder.stopped() => {
                break Err(anyhow::anyhow!("port-forward stopped: {reason}"));
            }
            _ = ticker.tick() => {
                let now = forwarder.stats();
                if now != last {
                    tracing::info!("port-forward: {now}");
                    last = now;
                }
            }
        }
    };
    tracing::info!("port-forward: {}", forwarder.stats());
    forwarder.shutdown().await;
    exit
}
