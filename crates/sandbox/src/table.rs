//! `meta.k8s.io` Table rendering: the columns `kubectl get` prints.

use serde_json::{json, Value};

use crate::meta;
use crate::resource::Resource;

/// (name, type, format, description, priority)
type Column = (&'static str, &'static str, &'static str, &'static str, u8);

const NAME: Column = (
    "Name",
    "string",
    "name",
    "Name must be unique within a namespace.",
    0,
);
const AGE: Column = (
    "Age",
    "string",
    "",
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
    0,
);

fn columns(resource: Resource) -> Vec<Column> {
    match resource {
        Resource::Pods => vec![
            NAME,
            ("Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic.", 0),
            ("Status", "string", "", "The aggregate status of the containers in this pod.", 0),
            ("Restarts", "string", "", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", 0),
            AGE,
            ("IP", "string", "", "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1),
            ("Node", "string", "", "NodeName is a request to schedule this pod onto a specific node.", 1),
            ("Nominated Node", "string", "", "nominatedNodeName is set only when this pod preempts other pods on the node.", 1),
            ("Readiness Gates", "string", "", "If specified, all readiness gates will be evaluated for pod readiness.", 1),
        ],
        Resource::Services => vec![
            NAME,
            ("Type", "string", "", "type determines how the Service is exposed.", 0),
            ("Cluster-IP", "string", "", "clusterIP is the IP address of the service.", 0),
            ("External-IP", "string", "", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.", 0),
            ("Port(s)", "string", "", "The list of ports that are exposed by this service.", 0),
            AGE,
            ("Selector", "string", "", "Route service traffic to pods with label keys and values matching this selector.", 1),
        ],
        Resource::Deployments => vec![
            NAME,
            ("Ready", "string", "", "Number of the pod with ready state", 0),
            ("Up-to-date", "string", "", "Total number of non-terminated pods targeted by this deployment that have the desired template spec.", 0),
            ("Available", "string", "", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.", 0),
            AGE,
            ("Containers", "string", "", "Names of each container in the template.", 1),
            ("Images", "string", "", "Images referenced by each container in the template.", 1),
            ("Selector", "string", "", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.", 1),
        ],
        Resource::Namespaces => vec![
            NAME,
            ("Status", "string", "", "The status of the namespace", 0),
            AGE,
        ],
    }
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn age(v: &Value) -> String {
    match meta::parse_rfc3339(s(v, "/metadata/creationTimestamp")) {
        Some(t) => meta::human_duration(meta::now_unix().saturating_sub(t)),
        None => "<unknown>".to_owned(),
    }
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_owned()
    } else {
        s.to_owned()
    }
}

fn array<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The pod STATUS column, as kubectl's printer computes it.
fn pod_status(pod: &Value) -> String {
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".to_owned();
    }
    let mut reason = s(pod, "/status/phase").to_owned();
    if reason.is_empty() {
        reason = "Pending".to_owned();
    }
    for c in array(pod, "/status/containerStatuses") {
        if let Some(r) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
            return r.to_owned();
        }
        if let Some(t) = c.pointer("/state/terminated") {
            if reason != "Running" {
                if let Some(r) = t.get("reason").and_then(Value::as_str) {
                    reason = r.to_owned();
                }
            }
        }
    }
    reason
}

fn pod_cells(pod: &Value) -> Vec<Value> {
    let total = array(pod, "/spec/containers").len();
    let statuses = array(pod, "/status/containerStatuses");
    let ready = statuses
        .iter()
        .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let restarts: u64 = statuses
        .iter()
        .filter_map(|c| c.get("restartCount").and_then(Value::as_u64))
        .sum();
    vec![
        json!(s(pod, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(pod_status(pod)),
        json!(restarts.to_string()),
        json!(age(pod)),
        json!(or_none(s(pod, "/status/podIP"))),
        json!(or_none(s(pod, "/spec/nodeName"))),
        json!(or_none(s(pod, "/status/nominatedNodeName"))),
        json!("<none>"),
    ]
}

fn selector_string(map: Option<&Value>) -> String {
    map.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "<none>".to_owned())
}

fn service_cells(svc: &Value) -> Vec<Value> {
    let ports: Vec<String> = array(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = p.get("port").and_then(Value::as_u64).unwrap_or(0);
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            match p.get("nodePort").and_then(Value::as_u64) {
                Some(node) => format!("{port}:{node}/{proto}"),
                None => format!("{port}/{proto}"),
            }
        })
        .collect();
    vec![
        json!(s(svc, "/metadata/name")),
        json!(s(svc, "/spec/type")),
        json!(or_none(s(svc, "/spec/clusterIP"))),
        json!("<none>"),
        json!(if ports.is_empty() {
            "<none>".to_owned()
        } else {
            ports.join(",")
        }),
        json!(age(svc)),
        json!(selector_string(svc.pointer("/spec/selector"))),
    ]
}

fn deployment_cells(d: &Value) -> Vec<Value> {
    let n = |p: &str| d.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let containers = array(d, "/spec/template/spec/containers");
    let join = |key: &str| {
        containers
            .iter()
            .filter_map(|c| c.get(key)?.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        json!(s(d, "/metadata/name")),
        json!(format!(
            "{}/{}",
            n("/status/readyReplicas"),
            d.pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(1)
        )),
        json!(n("/status/updatedReplicas").to_string()),
        json!(n("/status/availableReplicas").to_string()),
        json!(age(d)),
        json!(join("name")),
        json!(join("image")),
        json!(selector_string(d.pointer("/spec/selector/matchLabels"))),
    ]
}

fn cells(resource: Resource, object: &Value) -> Vec<Value> {
    match resource {
        Resource::Pods => pod_cells(object),
        Resource::Services => service_cells(object),
        Resource::Deployments => deployment_cells(object),
        Resource::Namespaces => vec![
            json!(s(object, "/metadata/name")),
            json!(s(object, "/status/phase")),
            json!(age(object)),
        ],
    }
}

/// One table row; its object is the `PartialObjectMetadata` kubectl expects
/// by default, or the whole object with `includeObject=Object`.
pub(crate) fn row(resource: Resource, object: &Value, version: &str, full_object: bool) -> Value {
    let embedded = if full_object {
        object.clone()
    } else {
        json!({"kind": "PartialObjectMetadata", "apiVersion": format!("meta.k8s.io/{version}"), "metadata": object.get("metadata").cloned().unwrap_or(Value::Null)})
    };
    json!({"cells": cells(resource, object), "object": embedded})
}

/// A whole Table.
pub(crate) fn table(
    resource: Resource,
    rows: Vec<Value>,
    version: &str,
    rv: u64,
    next: Option<String>,
    with_columns: bool,
) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(next) = next {
        metadata["continue"] = json!(next);
    }
    let mut t = json!({"kind": "Table", "apiVersion": format!("meta.k8s.io/{version}"), "metadata": metadata, "rows": rows});
    if with_columns {
        t["columnDefinitions"] = columns(resource)
            .into_iter()
            .map(|(name, ty, format, description, priority)| json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority}))
            .collect();
    }
    t
}
