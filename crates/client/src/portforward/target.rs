//! What to forward to: `POD`, `pod/NAME`, `svc/NAME` or `deploy/NAME`, and
//! how each resolves to one running pod and its port numbers, the way kubectl
//! does it (PROTOCOLS.md §6.4).

use std::cmp::Reverse;
use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};

use super::error::ForwardError;
use super::spec::{LocalPort, PortSpec, RemotePort};

/// The object a port-forward points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A pod by name (`NAME` or `pod/NAME`).
    Pod(String),
    /// A service: a ready pod behind its selector, ports mapped to `targetPort`.
    Service(String),
    /// A deployment: a ready pod matching its `spec.selector`.
    Deployment(String),
}

impl Target {
    /// The object's name.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Pod(n) | Self::Service(n) | Self::Deployment(n) => n,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pod(n) => write!(f, "pod/{n}"),
            Self::Service(n) => write!(f, "svc/{n}"),
            Self::Deployment(n) => write!(f, "deploy/{n}"),
        }
    }
}

/// Longest object name Kubernetes accepts (a DNS subdomain).
const MAX_NAME: usize = 253;

fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

impl FromStr for Target {
    type Err = ForwardError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| ForwardError::InvalidTarget {
            target: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (kind, name) = text.split_once('/').unwrap_or(("pod", text));
        if !is_object_name(name) {
            return Err(invalid("not a valid object name"));
        }
        let name = name.to_owned();
        match kind.to_ascii_lowercase().as_str() {
            "po" | "pod" | "pods" => Ok(Self::Pod(name)),
            "svc" | "service" | "services" => Ok(Self::Service(name)),
            "deploy" | "deployment" | "deployments" | "deployment.apps" | "deployments.apps" => {
                Ok(Self::Deployment(name))
            }
            _ => Err(invalid(
                "the kind must be pod, svc or deploy (e.g. svc/NAME)",
            )),
        }
    }
}

/// One port spec after resolution against the chosen pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedPort {
    /// The local port to listen on (0 = let the OS choose).
    pub local: u16,
    /// The pod's port number the stream headers carry.
    pub remote: u16,
}

/// A target resolved to one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    /// The pod's name.
    pub pod: String,
    /// The pod's UID, to notice when a pod of the same name replaces it.
    pub uid: Option<String>,
    /// One entry per port spec, in order.
    pub ports: Vec<ResolvedPort>,
}

/// How a not-found answer is to be read: the object, or its whole namespace.
async fn not_found(client: &kube::Client, namespace: &str, what: String) -> ForwardError {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.get_opt(namespace).await {
        Ok(None) => ForwardError::NamespaceGone {
            namespace: namespace.to_owned(),
        },
        // Present, or the server cannot say (no namespace API, no permission).
        Ok(Some(_)) | Err(_) => ForwardError::TargetNotFound { what },
    }
}

fn api_error(target: &Target, source: kube::Error) -> ForwardError {
    ForwardError::Resolve {
        target: target.to_string(),
        source: Box::new(source),
    }
}

fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

/// Resolves `target` in `namespace` to one running pod and maps every port
/// spec to the pod's port number.
///
/// # Errors
/// [`ForwardError::TargetNotFound`] / [`ForwardError::NamespaceGone`] when the
/// object or namespace does not exist, [`ForwardError::NoRunningPod`] when no
/// pod is running yet, port errors for undeclared, UDP or unknown named ports,
/// and [`ForwardError::Resolve`] for any other API failure.
pub async fn resolve(
    client: &kube::Client,
    namespace: &str,
    target: &Target,
    specs: &[PortSpec],
) -> Result<ResolvedTarget, ForwardError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    match target {
        Target::Pod(name) => {
            let pod = match pods.get(name).await {
                Ok(pod) => pod,
                Err(e) if is_not_found(&e) => {
                    return Err(not_found(client, namespace, format!("pod {name:?}")).await)
                }
                Err(e) => return Err(api_error(target, e)),
            };
            require_running(&pod)?;
            let ports = specs
                .iter()
                .map(|spec| pod_port(&pod, spec))
                .collect::<Result<_, _>>()?;
            Ok(resolved(&pod, ports))
        }
        Target::Service(name) => {
            let services: Api<Service> = Api::namespaced(client.clone(), namespace);
            let svc = match services.get(name).await {
                Ok(svc) => svc,
                Err(e) if is_not_found(&e) => {
                    return Err(not_found(client, namespace, format!("service {name:?}")).await)
                }
                Err(e) => return Err(api_error(target, e)),
            };
            let spec = svc.spec.unwrap_or_default();
            let selector = spec
                .selector
                .as_ref()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .ok_or_else(|| ForwardError::NoSelector {
                    target: target.to_string(),
                })?;
            let pod = pick_pod(&pods, target, &selector).await?;
            let ports = specs
                .iter()
                .map(|s| service_port(name, &spec, &pod, s))
                .collect::<Result<_, _>>()?;
            Ok(resolved(&pod, ports))
        }
        Target::Deployment(name) => {
            let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            let deploy = match deployments.get(name).await {
                Ok(d) => d,
                Err(e) if is_not_found(&e) => {
                    return Err(not_found(client, namespace, format!("deployment {name:?}")).await)
                }
                Err(e) => return Err(api_error(target, e)),
            };
            let selector = deploy
                .spec
                .as_ref()
                .and_then(|s| label_selector(&s.selector))
                .ok_or_else(|| ForwardError::NoSelector {
                    target: target.to_string(),
                })?;
            let pod = pick_pod(&pods, target, &selector).await?;
            let ports = specs
                .iter()
                .map(|spec| pod_port(&pod, spec))
                .collect::<Result<_, _>>()?;
            Ok(resolved(&pod, ports))
        }
    }
}

/// Whether `pod` is still the same, running pod that `current` resolved to.
/// Used after a connection failure to notice a deleted or replaced pod.
pub async fn is_still_current(
    client: &kube::Client,
    namespace: &str,
    current: &ResolvedTarget,
) -> Result<bool, kube::Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    Ok(match pods.get_opt(&current.pod).await? {
        None => false,
        Some(pod) => {
            pod.metadata.uid == current.uid
                && pod.metadata.deletion_timestamp.is_none()
                && phase(&pod) == "Running"
        }
    })
}

fn resolved(pod: &Pod, ports: Vec<ResolvedPort>) -> ResolvedTarget {
    ResolvedTarget {
        pod: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone(),
        ports,
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn require_running(pod: &Pod) -> Result<(), ForwardError> {
    match phase(pod) {
        "Running" => Ok(()),
        other => Err(ForwardError::PodNotRunning {
            pod: pod.metadata.name.clone().unwrap_or_default(),
            phase: if other.is_empty() {
                "Unknown".to_owned()
            } else {
                other.to_owned()
            },
        }),
    }
}

/// A `spec.selector` as a label-selector query string; `None` if it selects
/// nothing in particular (an empty selector would match every pod).
fn label_selector(selector: &LabelSelector) -> Option<String> {
    let mut terms: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.clone().unwrap_or_default().join(",");
        terms.push(match expr.operator.as_str() {
            "In" => format!("{} in ({values})", expr.key),
            "NotIn" => format!("{} notin ({values})", expr.key),
            "Exists" => expr.key.clone(),
            "DoesNotExist" => format!("!{}", expr.key),
            // An operator the server does not know either: it would reject
            // the selector, so say so instead of silently widening it.
            _ => return None,
        });
    }
    (!terms.is_empty()).then(|| terms.join(","))
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn restarts(pod: &Pod) -> i64 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| i64::from(c.restart_count)).sum())
}

/// kubectl's preference among candidate pods (the reverse of client-go's
/// `ActivePods` order): assigned, then running, then ready, then not being
/// deleted, then fewer restarts, then older. Larger keys are better.
fn preference(pod: &Pod) -> impl Ord + '_ {
    let assigned = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
    let phase_rank = match phase(pod) {
        "Running" => 3,
        "Unknown" => 2,
        "Pending" => 1,
        _ => 0,
    };
    (
        assigned,
        phase_rank,
        is_ready(pod),
        pod.metadata.deletion_timestamp.is_none(),
        Reverse(restarts(pod)),
        Reverse(pod.metadata.creation_timestamp.as_ref()),
    )
}

async fn pick_pod(pods: &Api<Pod>, target: &Target, selector: &str) -> Result<Pod, ForwardError> {
    let list = pods
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| api_error(target, e))?;
    let best = list
        .items
        .into_iter()
        .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
        .max_by(|a, b| preference(a).cmp(&preference(b)));
    match best {
        Some(pod) if phase(&pod) == "Running" && pod.metadata.deletion_timestamp.is_none() => {
            Ok(pod)
        }
        _ => Err(ForwardError::NoRunningPod {
            target: target.to_string(),
        }),
    }
}

fn port_number(value: i32, what: &str) -> Result<u16, ForwardError> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ForwardError::InvalidServerPort {
            what: what.to_owned(),
            value: i64::from(value),
        })
}

fn is_udp(protocol: Option<&String>) -> bool {
    protocol.is_some_and(|p| p.eq_ignore_ascii_case("UDP"))
}

/// A pod port spec: a number (refused if the pod declares it UDP-only) or a
/// container port name.
fn pod_port(pod: &Pod, spec: &PortSpec) -> Result<ResolvedPort, ForwardError> {
    let container_ports = || {
        pod.spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
    };
    let remote = match &spec.remote {
        RemotePort::Number(n) => {
            let declared: Vec<_> = container_ports()
                .filter(|p| p.container_port == i32::from(*n))
                .collect();
            if !declared.is_empty() && declared.iter().all(|p| is_udp(p.protocol.as_ref())) {
                return Err(ForwardError::UdpPort { port: *n });
            }
            *n
        }
        RemotePort::Name(name) => {
            let port = container_ports()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .ok_or_else(|| ForwardError::UnknownPortName {
                    name: name.clone(),
                    owner: format!("pod {:?}", pod.metadata.name.as_deref().unwrap_or("")),
                })?;
            if is_udp(port.protocol.as_ref()) {
                return Err(ForwardError::UdpPort {
                    port: port_number(port.container_port, "containerPort")?,
                });
            }
            port_number(port.container_port, "containerPort")?
        }
    };
    Ok(ResolvedPort {
        local: local_port(spec.local, remote),
        remote,
    })
}

fn local_port(local: LocalPort, default: u16) -> u16 {
    match local {
        LocalPort::Fixed(n) => n,
        LocalPort::Any => 0,
        LocalPort::SameAsRemote => default,
    }
}

/// A service port spec (number or name) mapped through `targetPort` to the
/// pod's port, as kubectl's `translateServicePortToTargetPort` does.
fn service_port(
    service: &str,
    spec: &k8s_openapi::api::core::v1::ServiceSpec,
    pod: &Pod,
    port_spec: &PortSpec,
) -> Result<ResolvedPort, ForwardError> {
    let ports = spec.ports.as_deref().unwrap_or_default();
    let found = ports.iter().find(|p| match &port_spec.remote {
        RemotePort::Number(n) => p.port == i32::from(*n),
        RemotePort::Name(name) => p.name.as_deref() == Some(name.as_str()),
    });
    let svc_port = found.ok_or_else(|| ForwardError::UnknownServicePort {
        service: service.to_owned(),
        port: port_spec.remote.to_string(),
    })?;
    let number = port_number(svc_port.port, "service port")?;
    if is_udp(svc_port.protocol.as_ref()) {
        return Err(ForwardError::UdpPort { port: number });
    }
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let remote = match &svc_port.target_port {
        _ if headless => number,
        None | Some(IntOrString::Int(0)) => number,
        Some(IntOrString::Int(n)) => port_number(*n, "targetPort")?,
        Some(IntOrString::String(name)) => {
            pod_port(
                pod,
                &PortSpec {
                    local: LocalPort::Any,
                    remote: RemotePort::Name(name.clone()),
                },
            )?
            .remote
        }
    };
    Ok(ResolvedPort {
        local: local_port(port_spec.local, number),
        remote,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodSpec, PodStatus, ServicePort, ServiceSpec,
    };

    fn web_pod() -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("web-1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    ports: Some(vec![
                        ContainerPort {
                            name: Some("http".into()),
                            container_port: 8080,
                            ..Default::default()
                        },
                        ContainerPort {
                            name: Some("dns".into()),
                            container_port: 53,
                            protocol: Some("UDP".into()),
                            ..Default::default()
                        },
                    ]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                ..Default::default()
            }),
        }
    }

    fn svc_spec() -> ServiceSpec {
        ServiceSpec {
            ports: Some(vec![
                ServicePort {
                    name: Some("web".into()),
                    port: 80,
                    target_port: Some(IntOrString::String("http".into())),
                    ..Default::default()
                },
                ServicePort {
                    port: 9000,
                    target_port: Some(IntOrString::Int(9001)),
                    ..Default::default()
                },
                ServicePort {
                    port: 7000,
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }
    }

    fn spec(s: &str) -> PortSpec {
        s.parse().expect("valid spec")
    }

    #[test]
    fn targets_parse_like_kubectl() {
        assert_eq!(
            "demo".parse::<Target>().ok(),
            Some(Target::Pod("demo".into()))
        );
        assert_eq!(
            "pod/demo".parse::<Target>().ok(),
            Some(Target::Pod("demo".into()))
        );
        assert_eq!(
            "svc/web".parse::<Target>().ok(),
            Some(Target::Service("web".into()))
        );
        assert_eq!(
            "deployment.apps/web".parse::<Target>().ok(),
            Some(Target::Deployment("web".into()))
        );
        for bad in ["", "pod/", "job/x", "svc/Web", "a/b/c", "-x", "x y"] {
            assert!(bad.parse::<Target>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn service_ports_map_to_target_ports() {
        let pod = web_pod();
        let svc = svc_spec();
        let r = |s: &str| service_port("web", &svc, &pod, &spec(s));
        // Named targetPort through the container port name (capture 32).
        assert_eq!(
            r("18081:80").ok(),
            Some(ResolvedPort {
                local: 18081,
                remote: 8080
            })
        );
        // A service port name alone also sets the local port to the service port.
        assert_eq!(
            r("web").ok(),
            Some(ResolvedPort {
                local: 80,
                remote: 8080
            })
        );
        assert_eq!(
            r(":9000").ok(),
            Some(ResolvedPort {
                local: 0,
                remote: 9001
            })
        );
        assert_eq!(
            r("7000").ok(),
            Some(ResolvedPort {
                local: 7000,
                remote: 7000
            })
        );
        assert!(matches!(
            r("81"),
            Err(ForwardError::UnknownServicePort { .. })
        ));
        let headless = ServiceSpec {
            cluster_ip: Some("None".into()),
            ..svc_spec()
        };
        assert_eq!(
            service_port("web", &headless, &pod, &spec("80")).ok(),
            Some(ResolvedPort {
                local: 80,
                remote: 80
            })
        );
    }

    #[test]
    fn pod_ports_resolve_names_and_refuse_udp() {
        let pod = web_pod();
        assert_eq!(
            pod_port(&pod, &spec("http")).ok(),
            Some(ResolvedPort {
                local: 8080,
                remote: 8080
            })
        );
        assert_eq!(
            pod_port(&pod, &spec("1234:5678")).ok(),
            Some(ResolvedPort {
                local: 1234,
                remote: 5678
            })
        );
        assert!(matches!(
            pod_port(&pod, &spec("53")),
            Err(ForwardError::UdpPort { port: 53 })
        ));
        assert!(matches!(
            pod_port(&pod, &spec("nope")),
            Err(ForwardError::UnknownPortName { .. })
        ));
    }

    #[test]
    fn preference_follows_kubectl() {
        let mut ready = web_pod();
        if let Some(s) = ready.status.as_mut() {
            s.conditions = Some(vec![k8s_openapi::api::core::v1::PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            }]);
        }
        let mut pending = web_pod();
        if let Some(s) = pending.status.as_mut() {
            s.phase = Some("Pending".into());
        }
        let running = web_pod();
        assert!(preference(&ready) > preference(&running));
        assert!(preference(&running) > preference(&pending));
    }

    #[test]
    fn deployment_selectors() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
        let sel = LabelSelector {
            match_labels: Some([("app".to_owned(), "web".to_owned())].into()),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            }]),
        };
        assert_eq!(
            label_selector(&sel).as_deref(),
            Some("app=web,tier in (a,b)")
        );
        assert_eq!(label_selector(&LabelSelector::default()), None);
    }
}
