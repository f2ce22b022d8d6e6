//! The resource types the sandbox serves and their discovery facts.

/// A served resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Resource {
    /// core/v1 namespaces (cluster-scoped).
    Namespaces,
    /// core/v1 pods.
    Pods,
    /// core/v1 services.
    Services,
    /// apps/v1 deployments.
    Deployments,
}

impl Resource {
    /// Every resource, in discovery order.
    pub(crate) const ALL: [Resource; 4] = [
        Self::Pods,
        Self::Services,
        Self::Namespaces,
        Self::Deployments,
    ];

    /// Plural (URL) name.
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Self::Namespaces => "namespaces",
            Self::Pods => "pods",
            Self::Services => "services",
            Self::Deployments => "deployments",
        }
    }

    /// Singular name.
    pub(crate) fn singular(self) -> &'static str {
        match self {
            Self::Namespaces => "namespace",
            Self::Pods => "pod",
            Self::Services => "service",
            Self::Deployments => "deployment",
        }
    }

    /// Object kind.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Self::Namespaces => "Namespace",
            Self::Pods => "Pod",
            Self::Services => "Service",
            Self::Deployments => "Deployment",
        }
    }

    /// API group (`""` for core).
    pub(crate) fn group(self) -> &'static str {
        match self {
            Self::Deployments => "apps",
            _ => "",
        }
    }

    /// `apiVersion` of objects.
    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Self::Deployments => "apps/v1",
            _ => "v1",
        }
    }

    /// Whether objects live in a namespace.
    pub(crate) fn namespaced(self) -> bool {
        !matches!(self, Self::Namespaces)
    }

    /// kubectl short names (discovery is their only source).
    pub(crate) fn short_names(self) -> &'static [&'static str] {
        match self {
            Self::Namespaces => &["ns"],
            Self::Pods => &["po"],
            Self::Services => &["svc"],
            Self::Deployments => &["deploy"],
        }
    }

    /// Subresources served.
    pub(crate) fn subresources(self) -> &'static [&'static str] {
        match self {
            Self::Pods => &["log", "exec", "attach", "portforward", "status"],
            Self::Deployments => &["scale", "status"],
            Self::Namespaces | Self::Services => &["status"],
        }
    }

    /// Verbs advertised in discovery.
    pub(crate) fn verbs(self) -> &'static [&'static str] {
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// Categories advertised (`kubectl get all`).
    pub(crate) fn categories(self) -> &'static [&'static str] {
        match self {
            Self::Pods | Self::Services | Self::Deployments => &["all"],
            Self::Namespaces => &[],
        }
    }

    /// Resolves a URL group, version and plural.
    pub(crate) fn from_path(group: &str, version: &str, plural: &str) -> Option<Self> {
        if version != "v1" {
            return None;
        }
        Self::ALL
            .into_iter()
            .find(|r| r.group() == group && r.plural() == plural)
    }
}
