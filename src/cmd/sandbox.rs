//! `podlink sandbox`: serve the embedded API server until SIGINT or SIGTERM
//! (podlink-sandbox's own entry point prints the ready line and, on the way
//! out, ends every process it started).

use anyhow::Context as _;
use podlink_sandbox::SandboxConfig;

use crate::args::{GlobalArgs, SandboxArgs};
use crate::exit::Exit;

/// Serve until stopped.
pub async fn run(global: &GlobalArgs, args: SandboxArgs) -> anyhow::Result<Exit> {
    let mut config = SandboxConfig::new()
        .with_listen(args.listen)
        .with_demo(!args.no_demo)
        .with_kube_version(args.kube_version);
    // Here the global --kubeconfig names the file the sandbox writes.
    if let Some(path) = &global.kubeconfig {
        config = config.with_kubeconfig(path);
    }
    if let Some(dir) = &args.state_dir {
        config = config.with_state_dir(dir);
    }
    podlink_sandbox::run_until_signal(config)
        .await
        .context("running the sandbox")?;
    Ok(Exit::SUCCESS)
}
