//! [`Client`]: the cluster connection every podlink operation starts from.
//!
//! Cluster selection follows kubectl: an explicit kubeconfig file, else
//! `$KUBECONFIG`, else `~/.kube/config`, else the in-cluster service account.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::error::{BoxError, Error, RequestFailed, Result};
use crate::upgrade::{select_proxy, LoadedProxy, Upgrader};

/// Where to find the cluster and which defaults to apply: the global options
/// of the command line, usable from the library too.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientOptions {
    /// An explicit kubeconfig file (`--kubeconfig`); overrides `$KUBECONFIG`.
    pub kubeconfig: Option<PathBuf>,
    /// The context to use instead of the current one (`--context`).
    pub context: Option<String>,
    /// The namespace to use instead of the context's (`-n`).
    pub namespace: Option<String>,
    /// A timeout for ordinary API requests (`--request-timeout`).
    pub request_timeout: Option<Duration>,
}

impl ClientOptions {
    /// Options that select the current context of the default kubeconfig.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Use this kubeconfig file.
    #[must_use]
    pub fn kubeconfig(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig = Some(path.into());
        self
    }

    /// Use this context.
    #[must_use]
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// Use this namespace.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Bound ordinary API requests by this timeout.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// True when some cluster configuration exists: an explicit kubeconfig,
    /// `$KUBECONFIG`, `~/.kube/config`, or an in-cluster service account.
    /// When false, the command line uses its embedded sandbox.
    #[must_use]
    pub fn is_cluster_configured(&self) -> bool {
        if self.kubeconfig.is_some() {
            return true;
        }
        if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
            return true;
        }
        if home_kubeconfig().is_some_and(|p| p.exists()) {
            return true;
        }
        std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
            && Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()
    }

    /// The configuration, and the selected cluster's own `proxy-url` (kube
    /// folds it together with `HTTPS_PROXY`; kubectl lets it win outright).
    async fn load(&self) -> Result<(kube::Config, Option<http::Uri>)> {
        let kube_options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let file = match &self.kubeconfig {
            Some(path) => Some(Kubeconfig::read_from(path).map_err(Error::Kubeconfig)?),
            // What kube reads next ($KUBECONFIG, ~/.kube/config), if anything.
            None => Kubeconfig::read().ok(),
        };
        let proxy_url = file
            .as_ref()
            .and_then(|file| cluster_proxy_url(file, self.context.as_deref()));
        let mut config = if let (Some(_), Some(file)) = (&self.kubeconfig, file) {
            kube::Config::from_custom_kubeconfig(file, &kube_options)
                .await
                .map_err(Error::Kubeconfig)?
        } else if self.context.is_some() {
            kube::Config::from_kubeconfig(&kube_options)
                .await
                .map_err(Error::Kubeconfig)?
        } else {
            kube::Config::infer().await.map_err(Error::InferConfig)?
        };
        if let Some(namespace) = &self.namespace {
            config.default_namespace.clone_from(namespace);
        }
        if let Some(timeout) = self.request_timeout {
            config.read_timeout = Some(timeout);
            config.connect_timeout = Some(timeout);
        }
        Ok((config, proxy_url))
    }
}

/// The `proxy-url` of the cluster that `context` (else the current context)
/// names in `file`; an unparsable one is left to kube's own error.
fn cluster_proxy_url(file: &Kubeconfig, context: Option<&str>) -> Option<http::Uri> {
    let context = context.or(file.current_context.as_deref())?;
    let cluster = file
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .as_str();
    file.clusters
        .iter()
        .find(|c| c.name == cluster)?
        .cluster
        .as_ref()?
        .proxy_url
        .as_deref()
        .filter(|url| !url.is_empty())?
        .parse()
        .ok()
}

fn home_kubeconfig() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".kube").join("config"))
}

/// A connection to one cluster: kube's client for ordinary requests plus
/// podlink's upgrade connector for streaming ones. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    kube: kube::Client,
    config: Arc<kube::Config>,
    upgrader: Arc<Upgrader>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the URL and namespace: the config holds credentials.
        f.debug_struct("Client")
            .field("cluster_url", &self.config.cluster_url)
            .field("namespace", &self.config.default_namespace)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connect as the options say (see [`ClientOptions`]).
    ///
    /// # Errors
    /// The kubeconfig cannot be read, names a missing context, or its TLS and
    /// auth settings are unusable.
    pub async fn from_options(options: &ClientOptions) -> Result<Self> {
        let (config, proxy_url) = options.load().await?;
        Self::build(config, LoadedProxy::Kubeconfig(proxy_url.as_ref()))
    }

    /// Connect like kubectl with no flags: `$KUBECONFIG`, `~/.kube/config`,
    /// then in-cluster.
    ///
    /// # Errors
    /// As [`Client::from_options`].
    pub async fn try_default() -> Result<Self> {
        Self::from_options(&ClientOptions::default()).await
    }

    /// Connect with a ready kube configuration.
    ///
    /// The proxy follows kubectl: the kubeconfig's `proxy-url`, else
    /// `HTTPS_PROXY` unless `NO_PROXY` or loopback says direct.
    ///
    /// # Errors
    /// The TLS, auth or proxy settings in `config` are unusable.
    pub fn from_config(config: kube::Config) -> Result<Self> {
        let folded = config.proxy_url.clone();
        Self::build(config, LoadedProxy::Folded(folded.as_ref()))
    }

    fn build(mut config: kube::Config, proxy: LoadedProxy<'_>) -> Result<Self> {
        // kubectl's proxy rules, for kube's requests and podlink's upgrades.
        config.proxy_url =
            select_proxy(&config.cluster_url, proxy, |name| std::env::var(name).ok())?;
        let upgrader = Upgrader::new(&config)?;
        // The layers below name neither host nor port in their errors (a
        // DNS failure says only "Name or service not known").
        let url = config.cluster_url.to_string();
        let kube = kube::client::ClientBuilder::try_from(config.clone())
            .map_err(Error::Settings)?
            .with_layer(&tower::util::MapErrLayer::new(move |source| -> BoxError {
                Box::new(RequestFailed {
                    url: url.clone(),
                    source,
                })
            }))
            .build();
        Ok(Self {
            kube,
            config: Arc::new(config),
            upgrader: Arc::new(upgrader),
        })
    }

    /// kube's client, for ordinary API requests.
    #[must_use]
    pub fn kube(&self) -> &kube::Client {
        &self.kube
    }

    /// The configuration this client was built from.
    #[must_use]
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    /// The namespace used when a call names none.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.config.default_namespace
    }

    /// The upgrade connector: opens new streaming connections to the cluster.
    #[must_use]
    pub fn upgrader(&self) -> &Upgrader {
        &self.upgrader
    }
}
