//! `/version`, legacy and aggregated discovery, and the minimal OpenAPI v3
//! documents kubectl's `--validate=strict` looks for.

use http::{header, HeaderValue, Response};
use serde_json::{json, Value};

use crate::body::{self, Body};
use crate::resource::Resource;
use crate::state::KubeVersion;

fn json_response(value: &Value, content_type: &str) -> Response<Body> {
    let mut resp = Response::new(body::full(value.to_string()));
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// A plain JSON response.
pub(crate) fn json(value: &Value) -> Response<Body> {
    json_response(value, "application/json")
}

/// `/version`.
pub(crate) fn version(v: &KubeVersion) -> Response<Body> {
    json(&json!({
        "major": v.major.to_string(),
        "minor": v.minor.to_string(),
        "gitVersion": format!("v{}.{}.0-podlink", v.major, v.minor),
        "gitCommit": "podlink-sandbox",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }))
}

fn in_group(group: &str) -> impl Iterator<Item = Resource> + '_ {
    Resource::ALL
        .into_iter()
        .filter(move |r| r.group() == group)
}

fn legacy_resources(group: &str) -> Value {
    let mut resources = Vec::new();
    for r in in_group(group) {
        resources.push(json!({
            "name": r.plural(),
            "singularName": r.singular(),
            "namespaced": r.namespaced(),
            "kind": r.kind(),
            "verbs": r.verbs(),
            "shortNames": r.short_names(),
            "categories": r.categories(),
        }));
        for sub in r.subresources() {
            let (kind, verbs): (&str, &[&str]) = match *sub {
                "scale" => ("Scale", &["get", "patch", "update"]),
                "status" => (r.kind(), &["get", "patch", "update"]),
                "log" => ("Pod", &["get"]),
                "exec" => ("PodExecOptions", &["create", "get"]),
                "attach" => ("PodAttachOptions", &["create", "get"]),
                _ => ("PodPortForwardOptions", &["create", "get"]),
            };
            let mut entry = json!({
                "name": format!("{}/{sub}", r.plural()),
                "singularName": "",
                "namespaced": r.namespaced(),
                "kind": kind,
                "verbs": verbs,
            });
            if *sub == "scale" {
                entry["group"] = json!("autoscaling");
                entry["version"] = json!("v1");
            }
            resources.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        "v1".to_owned()
    } else {
        format!("{group}/v1")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

/// `/api/v1` or `/apis/apps/v1`.
pub(crate) fn resource_list(group: &str) -> Response<Body> {
    json(&legacy_resources(group))
}

fn aggregated_item(group: &str) -> Value {
    let resources: Vec<Value> = in_group(group)
        .map(|r| {
            let subresources: Vec<Value> = r
                .subresources()
                .iter()
                .map(|sub| {
                    let (g, v, kind) = match *sub {
                        "scale" => ("autoscaling", "v1", "Scale"),
                        "status" | "log" => (r.group(), "v1", r.kind()),
                        "exec" => ("", "v1", "PodExecOptions"),
                        "attach" => ("", "v1", "PodAttachOptions"),
                        _ => ("", "v1", "PodPortForwardOptions"),
                    };
                    json!({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": kind}, "verbs": ["get", "create", "patch", "update"]})
                })
                .collect();
            json!({
                "resource": r.plural(),
                "responseKind": {"group": r.group(), "version": "v1", "kind": r.kind()},
                "scope": if r.namespaced() { "Namespaced" } else { "Cluster" },
                "singularResource": r.singular(),
                "verbs": r.verbs(),
                "shortNames": r.short_names(),
                "categories": r.categories(),
                "subresources": subresources,
            })
        })
        .collect();
    let mut metadata = json!({"creationTimestamp": null});
    if !group.is_empty() {
        metadata["name"] = json!(group);
    }
    json!({"metadata": metadata, "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}]})
}

/// `/api` or `/apis`, aggregated (`v2`/`v2beta1`) or legacy.
pub(crate) fn root(core: bool, aggregated: Option<&str>) -> Response<Body> {
    match aggregated {
        Some(version) => {
            let items = if core {
                vec![aggregated_item("")]
            } else {
                vec![aggregated_item("apps")]
            };
            let doc = json!({
                "kind": "APIGroupDiscoveryList",
                "apiVersion": format!("apidiscovery.k8s.io/{version}"),
                "metadata": {},
                "items": items,
            });
            json_response(
                &doc,
                &format!(
                    "application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
                ),
            )
        }
        None if core => json(
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        ),
        None => {
            json(&json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [apps_group()]}))
        }
    }
}

fn apps_group() -> Value {
    json!({"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}], "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}})
}

/// `/apis/apps`.
pub(crate) fn apps() -> Response<Body> {
    let mut g = apps_group();
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    json(&g)
}

/// `/openapi/v3`: where the per-group documents are.
pub(crate) fn openapi_index() -> Response<Body> {
    json(&json!({"paths": {
        "api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=podlink1"},
        "apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=podlink1"},
    }}))
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/apps/v1`: just enough for
/// kubectl to see that PATCH supports `fieldValidation` (server-side
/// validation), no schemas.
pub(crate) fn openapi_group(group: &str) -> Response<Body> {
    let mut paths = serde_json::Map::new();
    for r in in_group(group) {
        let prefix = if group.is_empty() {
            "/api/v1".to_owned()
        } else {
            format!("/apis/{group}/v1")
        };
        let path = if r.namespaced() {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural())
        } else {
            format!("{prefix}/{}/{{name}}", r.plural())
        };
        let op = json!({
            "x-kubernetes-group-version-kind": {"group": r.group(), "version": "v1", "kind": r.kind()},
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
            "responses": {},
        });
        paths.insert(path, json!({"patch": op, "put": op}));
    }
    json(&json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
