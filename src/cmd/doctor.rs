//! `podlink doctor [--idle-probe]`: probe the cluster's paths and print a
//! short table of what works; for each failure, the likely cause and the
//! fix. Exits 0 when nothing failed, 1 otherwise (warnings are fine: they
//! mark protocols podlink falls back from).

use podlink_client::doctor::DoctorOptions;

use crate::args::{DoctorArgs, GlobalArgs};
use crate::cluster::Cluster;
use crate::exit::Exit;

/// Exit status when a check failed.
const UNHEALTHY: u8 = 1;

/// Run every check and print the table on stdout.
pub async fn run(global: &GlobalArgs, args: DoctorArgs) -> anyhow::Result<Exit> {
    let cluster = Cluster::connect(global).await?;
    let mut options = DoctorOptions::new()
        .idle_probe(args.idle_probe)
        .idle_limit(args.idle_limit)
        .timeout(args.probe_timeout);
    if let Some(pod) = args.pod {
        options = options.pod(pod);
    }
    if let Some(container) = args.container {
        options = options.container(container);
    }
    let report = cluster.client.doctor(&options).await;
    cluster.close().await;
    print!("{report}");
    Ok(if report.is_healthy() {
        Exit::SUCCESS
    } else {
        Exit::Code(UNHEALTHY)
    })
}
