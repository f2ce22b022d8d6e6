//! Choosing the cluster for a command: the configured one, or, when nothing
//! is configured (no `--kubeconfig`, no `$KUBECONFIG`, no `~/.kube/config`,
//! not in a pod), the embedded sandbox started in-process.

use anyhow::Context as _;
use podlink_client::{Client, ClientOptions};
use podlink_sandbox::{Sandbox, SandboxConfig};

use crate::args::GlobalArgs;

/// The notice printed when the embedded sandbox stands in for a cluster.
const EMBEDDED_NOTICE: &str = "podlink: no cluster configured; using the embedded sandbox";

/// A connected cluster, and the embedded sandbox behind it if there is one.
pub struct Cluster {
    /// The client for the cluster.
    pub client: Client,
    sandbox: Option<Sandbox>,
}

impl Cluster {
    /// Connect as the global options say, starting the embedded sandbox when
    /// no cluster is configured.
    pub async fn connect(global: &GlobalArgs) -> anyhow::Result<Self> {
        let mut options = ClientOptions::new();
        options.kubeconfig.clone_from(&global.kubeconfig);
        options.context.clone_from(&global.context);
        options.namespace.clone_from(&global.namespace);
        options.request_timeout = global.request_timeout;
        if options.is_cluster_configured() {
            let client = Client::from_options(&options)
                .await
                .context("loading the cluster configuration")?;
            return Ok(Self {
                client,
                sandbox: None,
            });
        }
        eprintln!("{EMBEDDED_NOTICE}");
        let sandbox = Sandbox::start(SandboxConfig::new())
            .await
            .context("starting the embedded sandbox")?;
        options.kubeconfig = Some(sandbox.kubeconfig_path().to_path_buf());
        let client = match Client::from_options(&options).await {
            Ok(client) => client,
            Err(err) => {
                sandbox.shutdown().await;
                return Err(err).context("connecting to the embedded sandbox");
            }
        };
        Ok(Self {
            client,
            sandbox: Some(sandbox),
        })
    }

    /// Stop the embedded sandbox, if any, ending every process it started.
    pub async fn close(self) {
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
    }
}
