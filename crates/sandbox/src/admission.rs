//! What the apiserver does to an object before storing it: decoding checks
//! (kind, unknown fields), metadata rules, defaults and validation per kind.

use serde_json::{json, Map, Value};

use crate::error::{ApiError, Cause};
use crate::meta::{self, NameRule};
use crate::resource::Resource;
use crate::selector::LabelSelector;

/// How to treat unknown fields (`fieldValidation` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub(crate) fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::BadRequest(format!(
                "fieldValidation must be one of Ignore, Warn or Strict, not {other:?}"
            ))),
        }
    }
}

/// Most containers per pod (each is a host process).
const MAX_CONTAINERS: usize = 64;

const TOP: &[&str] = &["apiVersion", "kind", "metadata", "spec", "status"];
const METADATA: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];
const POD_SPEC: &[&str] = &[
    "containers",
    "initContainers",
    "ephemeralContainers",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "dnsPolicy",
    "nodeSelector",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "nodeName",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "shareProcessNamespace",
    "securityContext",
    "imagePullSecrets",
    "hostname",
    "subdomain",
    "affinity",
    "schedulerName",
    "tolerations",
    "hostAliases",
    "priorityClassName",
    "priority",
    "dnsConfig",
    "readinessGates",
    "runtimeClassName",
    "enableServiceLinks",
    "preemptionPolicy",
    "overhead",
    "topologySpreadConstraints",
    "setHostnameAsFQDN",
    "os",
    "hostUsers",
    "schedulingGates",
    "resourceClaims",
    "volumes",
    "resources",
];
const CONTAINER: &[&str] = &[
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "ports",
    "envFrom",
    "env",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
];
const SERVICE_SPEC: &[&str] = &[
    "ports",
    "selector",
    "clusterIP",
    "clusterIPs",
    "type",
    "externalIPs",
    "sessionAffinity",
    "loadBalancerIP",
    "loadBalancerSourceRanges",
    "externalName",
    "externalTrafficPolicy",
    "healthCheckNodePort",
    "publishNotReadyAddresses",
    "sessionAffinityConfig",
    "ipFamilies",
    "ipFamilyPolicy",
    "allocateLoadBalancerNodePorts",
    "loadBalancerClass",
    "internalTrafficPolicy",
    "trafficDistribution",
];
const DEPLOYMENT_SPEC: &[&str] = &[
    "replicas",
    "selector",
    "template",
    "strategy",
    "minReadySeconds",
    "revisionHistoryLimit",
    "paused",
    "progressDeadlineSeconds",
];
const TEMPLATE: &[&str] = &["metadata", "spec"];
const NAMESPACE_SPEC: &[&str] = &["finalizers"];

fn unknown_in(value: &Value, known: &[&str], path: &str, out: &mut Vec<String>) {
    if let Some(map) = value.as_object() {
        for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
            out.push(if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            });
        }
    }
}

fn unknown_containers(spec: &Value, path: &str, out: &mut Vec<String>) {
    unknown_in(spec, POD_SPEC, path, out);
    for list in ["containers", "initContainers"] {
        for (i, c) in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            unknown_in(c, CONTAINER, &format!("{path}.{list}[{i}]"), out);
        }
    }
}

/// Unknown field paths, as strict decoding reports them.
fn unknown_fields(resource: Resource, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    unknown_in(obj, TOP, "", &mut out);
    unknown_in(&obj["metadata"], METADATA, "metadata", &mut out);
    let spec = &obj["spec"];
    match resource {
        Resource::Pods => unknown_containers(spec, "spec", &mut out),
        Resource::Services => unknown_in(spec, SERVICE_SPEC, "spec", &mut out),
        Resource::Deployments => {
            unknown_in(spec, DEPLOYMENT_SPEC, "spec", &mut out);
            unknown_in(&spec["template"], TEMPLATE, "spec.template", &mut out);
            unknown_in(
                &spec["template"]["metadata"],
                METADATA,
                "spec.template.metadata",
                &mut out,
            );
            unknown_containers(&spec["template"]["spec"], "spec.template.spec", &mut out);
        }
        Resource::Namespaces => unknown_in(spec, NAMESPACE_SPEC, "spec", &mut out),
    }
    out
}

fn cause(reason: &'static str, field: impl Into<String>, message: impl Into<String>) -> Cause {
    Cause {
        reason,
        message: message.into(),
        field: field.into(),
    }
}

/// Decoding checks shared by create and update: the body is an object of
/// the right kind; unknown fields per `validation`. Returns warnings.
pub(crate) fn decode(
    resource: Resource,
    obj: &Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    if !obj.is_object() {
        return Err(ApiError::BadRequest(format!(
            "the body of the request was in an unknown format - expected a {} object",
            resource.kind()
        )));
    }
    if let Some(kind) = obj.get("kind") {
        if kind.as_str() != Some(resource.kind()) {
            return Err(ApiError::BadRequest(format!(
                "the kind in the body ({}) does not match the kind of the request ({})",
                kind.as_str().unwrap_or("?"),
                resource.kind()
            )));
        }
    }
    if let Some(v) = obj.get("apiVersion") {
        if v.as_str() != Some(resource.api_version()) {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({}) does not match the expected API version ({})",
                v.as_str().unwrap_or("?"),
                resource.api_version()
            )));
        }
    }
    if !obj["metadata"].is_object() && !obj["metadata"].is_null() {
        return Err(ApiError::BadRequest("metadata must be an object".into()));
    }
    if validation == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let unknown = unknown_fields(resource, obj);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    if validation == FieldValidation::Strict {
        let list = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ApiError::BadRequest(format!(
            "strict decoding error: {list}"
        )));
    }
    Ok(unknown
        .into_iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect())
}

fn name_rule(resource: Resource) -> NameRule {
    match resource {
        Resource::Namespaces => NameRule::Label,
        Resource::Services => NameRule::Label1035,
        Resource::Pods | Resource::Deployments => NameRule::Subdomain,
    }
}

/// Fills metadata for a create: name (or generateName), namespace.
pub(crate) fn prepare_metadata(
    resource: Resource,
    namespace: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    if obj["metadata"].is_null() {
        obj["metadata"] = json!({});
    }
    let meta = &mut obj["metadata"];
    let given_ns = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
    match namespace {
        Some(ns) if resource.namespaced() => {
            if !given_ns.is_empty() && given_ns != ns {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            meta["namespace"] = json!(ns);
        }
        _ if resource.namespaced() => {
            return Err(ApiError::BadRequest(format!(
                "{} must be created in a namespace",
                resource.plural()
            )));
        }
        _ => {
            if let Some(m) = meta.as_object_mut() {
                m.remove("namespace");
            }
        }
    }
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if name.is_empty() {
        match meta
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|g| !g.is_empty())
        {
            Some(prefix) => meta["name"] = json!(format!("{prefix}{}", meta::random_suffix(5))),
            None => {
                return Err(ApiError::Invalid {
                    kind: resource.kind().into(),
                    name: String::new(),
                    causes: vec![cause(
                        "FieldValueRequired",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    )],
                })
            }
        }
    }
    for key in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    ] {
        if let Some(m) = meta.as_object_mut() {
            m.remove(key);
        }
    }
    Ok(())
}

fn check_labels(path: &str, labels: &Value, causes: &mut Vec<Cause>) {
    match labels {
        Value::Null => {}
        Value::Object(m) => {
            for (k, v) in m {
                match v.as_str() {
                    Some(v) => {
                        if let Some(msg) = meta::check_label(k, v) {
                            causes.push(cause("FieldValueInvalid", format!("{path}[{k}]"), msg));
                        }
                    }
                    None => causes.push(cause(
                        "FieldValueInvalid",
                        format!("{path}[{k}]"),
                        "label values must be strings",
                    )),
                }
            }
        }
        _ => causes.push(cause(
            "FieldValueInvalid",
            path,
            "must be an object of strings",
        )),
    }
}

fn validate_containers(spec: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(containers) = spec
        .get("containers")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    else {
        causes.push(cause(
            "FieldValueRequired",
            format!("{path}.containers"),
            "Required value",
        ));
        return;
    };
    if containers.len() > MAX_CONTAINERS {
        causes.push(cause(
            "FieldValueTooMany",
            format!("{path}.containers"),
            format!(
                "Too many: {}: must have at most {MAX_CONTAINERS} items",
                containers.len()
            ),
        ));
        return;
    }
    let mut names = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let p = format!("{path}.containers[{i}]");
        match c.get("name").and_then(Value::as_str) {
            None | Some("") => causes.push(cause(
                "FieldValueRequired",
                format!("{p}.name"),
                "Required value",
            )),
            Some(n) if meta::check_name(n, NameRule::Label).is_some() => {
                causes.push(cause("FieldValueInvalid", format!("{p}.name"), format!("Invalid value: {n:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'")));
            }
            Some(n) if names.contains(&n) => causes.push(cause(
                "FieldValueDuplicate",
                format!("{p}.name"),
                format!("Duplicate value: {n:?}"),
            )),
            Some(n) => names.push(n),
        }
        if c.get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            causes.push(cause(
                "FieldValueRequired",
                format!("{p}.image"),
                "Required value",
            ));
        }
        for list in ["command", "args"] {
            if let Some(v) = c.get(list) {
                if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                    causes.push(cause(
                        "FieldValueInvalid",
                        format!("{p}.{list}"),
                        "must be a list of strings",
                    ));
                }
            }
        }
        for (j, port) in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let n = port
                .get("containerPort")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if !(1..=65535).contains(&n) {
                causes.push(cause(
                    "FieldValueInvalid",
                    format!("{p}.ports[{j}].containerPort"),
                    "must be between 1 and 65535, inclusive",
                ));
            }
        }
    }
    if let Some(policy) = spec.get("restartPolicy").and_then(Value::as_str) {
        if !matches!(policy, "Always" | "OnFailure" | "Never") {
            causes.push(cause("FieldValueNotSupported", format!("{path}.restartPolicy"), format!("Unsupported value: {policy:?}: supported values: \"Always\", \"OnFailure\", \"Never\"")));
        }
    }
}

fn default_pod_spec(spec: &mut Value) {
    let m = match spec.as_object_mut() {
        Some(m) => m,
        None => return,
    };
    m.entry("restartPolicy").or_insert(json!("Always"));
    m.entry("terminationGracePeriodSeconds")
        .or_insert(json!(crate::pods::DEFAULT_GRACE));
    m.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    m.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    m.entry("securityContext").or_insert(json!({}));
    if let Some(containers) = m.get_mut("containers").and_then(Value::as_array_mut) {
        for c in containers.iter_mut().filter_map(Value::as_object_mut) {
            c.entry("imagePullPolicy").or_insert(json!("IfNotPresent"));
            c.entry("terminationMessagePath")
                .or_insert(json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy").or_insert(json!("File"));
            c.entry("resources").or_insert(json!({}));
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    p.entry("protocol").or_insert(json!("TCP"));
                }
            }
        }
    }
}

/// Validates and defaults a (new or updated) object of `resource`. `old`
/// is the stored object on update. `next_ip` allocates service IPs.
pub(crate) fn admit(
    resource: Resource,
    obj: &mut Value,
    old: Option<&Value>,
    next_ip: impl FnOnce() -> String,
) -> Result<(), ApiError> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut causes = Vec::new();
    if let Some(c) = meta::check_name(&name, name_rule(resource)) {
        causes.push(c);
    }
    check_labels("metadata.labels", &obj["metadata"]["labels"], &mut causes);
    if !matches!(
        obj["metadata"]["annotations"],
        Value::Null | Value::Object(_)
    ) {
        causes.push(cause(
            "FieldValueInvalid",
            "metadata.annotations",
            "must be an object of strings",
        ));
    }
    if !obj["spec"].is_object() && !obj["spec"].is_null() {
        causes.push(cause("FieldValueInvalid", "spec", "must be an object"));
    }
    if obj["spec"].is_null() {
        obj["spec"] = json!({});
    }
    match resource {
        Resource::Pods => {
            validate_containers(&obj["spec"], "spec", &mut causes);
            default_pod_spec(&mut obj["spec"]);
            obj["status"] = match old {
                // Status belongs to the node: updates keep it.
                Some(old) => old["status"].clone(),
                None => json!({"phase": "Pending", "qosClass": "BestEffort"}),
            };
        }
        Resource::Services => admit_service(obj, old, next_ip, &mut causes),
        Resource::Deployments => admit_deployment(obj, old, &mut causes),
        Resource::Namespaces => {
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = old.map_or_else(|| json!({"phase": "Active"}), |o| o["status"].clone());
            let labels = obj["metadata"]["labels"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let mut labels: Map<String, Value> = labels;
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            obj["metadata"]["labels"] = Value::Object(labels);
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Invalid {
            kind: resource.kind().into(),
            name,
            causes,
        })
    }
}

fn admit_service(
    obj: &mut Value,
    old: Option<&Value>,
    next_ip: impl FnOnce() -> String,
    causes: &mut Vec<Cause>,
) {
    let spec = &mut obj["spec"];
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    if !matches!(
        ty.as_str(),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        causes.push(cause(
            "FieldValueNotSupported",
            "spec.type",
            format!("Unsupported value: {ty:?}"),
        ));
    }
    spec["type"] = json!(ty);
    let ports = spec.get_mut("ports").and_then(Value::as_array_mut);
    match ports {
        Some(ports) if !ports.is_empty() => {
            let many = ports.len() > 1;
            for (i, p) in ports.iter_mut().enumerate() {
                let port = p.get("port").and_then(Value::as_u64).unwrap_or(0);
                if !(1..=65535).contains(&port) {
                    causes.push(cause(
                        "FieldValueInvalid",
                        format!("spec.ports[{i}].port"),
                        "must be between 1 and 65535, inclusive",
                    ));
                }
                if many
                    && p.get("name")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                {
                    causes.push(cause(
                        "FieldValueRequired",
                        format!("spec.ports[{i}].name"),
                        "Required value",
                    ));
                }
                if let Some(m) = p.as_object_mut() {
                    m.entry("protocol").or_insert(json!("TCP"));
                    m.entry("targetPort").or_insert(json!(port));
                }
            }
        }
        _ if ty != "ExternalName" => {
            causes.push(cause("FieldValueRequired", "spec.ports", "Required value"))
        }
        _ => {}
    }
    let old_ip = old
        .and_then(|o| o.pointer("/spec/clusterIP"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let ip = match (old_ip, spec.get("clusterIP").and_then(Value::as_str)) {
        (Some(ip), _) => ip,
        (None, Some("None")) => "None".to_owned(),
        (None, _) => next_ip(),
    };
    spec["clusterIP"] = json!(ip);
    spec["clusterIPs"] = json!([ip]);
    if let Some(m) = spec.as_object_mut() {
        m.entry("sessionAffinity").or_insert(json!("None"));
        m.entry("ipFamilies").or_insert(json!(["IPv4"]));
        m.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
        m.entry("internalTrafficPolicy").or_insert(json!("Cluster"));
    }
    obj["status"] = json!({"loadBalancer": {}});
}

fn admit_deployment(obj: &mut Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = &mut obj["spec"];
    match spec.get("replicas") {
        None => spec["replicas"] = json!(1),
        Some(r) if r.as_u64().is_none_or(|n| n > 10_000) => {
            causes.push(cause(
                "FieldValueInvalid",
                "spec.replicas",
                "must be a non-negative integer up to 10000",
            ));
        }
        Some(_) => {}
    }
    let selector = spec.get("selector").cloned().unwrap_or(Value::Null);
    match LabelSelector::from_label_selector(&selector) {
        Ok(sel) if !sel.is_empty() => {
            let labels = spec
                .pointer("/template/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            if !sel.matches(&labels) {
                causes.push(cause(
                    "FieldValueInvalid",
                    "spec.template.metadata.labels",
                    "Invalid value: `selector` does not match template `labels`",
                ));
            }
        }
        Ok(_) => causes.push(cause(
            "FieldValueRequired",
            "spec.selector",
            "Required value",
        )),
        Err(e) => causes.push(cause("FieldValueInvalid", "spec.selector", e)),
    }
    if spec.pointer("/template/spec").is_none() {
        causes.push(cause(
            "FieldValueRequired",
            "spec.template.spec",
            "Required value",
        ));
    } else {
        validate_containers(&spec["template"]["spec"], "spec.template.spec", causes);
        default_pod_spec(&mut spec["template"]["spec"]);
    }
    if let Some(m) = spec.as_object_mut() {
        m.entry("strategy").or_insert(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}));
        m.entry("revisionHistoryLimit").or_insert(json!(10));
        m.entry("progressDeadlineSeconds").or_insert(json!(600));
    }
    let generation = match old {
        None => 1,
        Some(old) => {
            let g = old
                .pointer("/metadata/generation")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            if old["spec"] == obj["spec"] {
                g
            } else {
                g + 1
            }
        }
    };
    obj["metadata"]["generation"] = json!(generation);
    obj["status"] = old.map_or_else(|| json!({}), |o| o["status"].clone());
}
