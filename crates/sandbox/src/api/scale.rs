//! `deployments/{name}/scale`: the `autoscaling/v1` Scale view of a
//! deployment's replicas (`kubectl scale deploy`).

use std::sync::Arc;

use http::{header, HeaderValue, Method, Request, Response};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::{read_json, Target};
use crate::body::{self, Body};
use crate::error::{ApiError, Cause};
use crate::patch::{self, PatchType};
use crate::resource::Resource;
use crate::selector::LabelSelector;
use crate::state::State;
use crate::store::Object;

fn scale_of(object: &Object) -> Value {
    let d = object.value();
    let selector = d
        .pointer("/spec/selector")
        .and_then(|s| LabelSelector::from_label_selector(s).ok())
        .map(|s| s.to_query())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": object.name,
            "namespace": object.namespace,
            "uid": object.uid,
            "resourceVersion": object.rv.to_string(),
            "creationTimestamp": d.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null),
        },
        "spec": {"replicas": d.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(0)},
        "status": {
            "replicas": d.pointer("/status/replicas").and_then(Value::as_u64).unwrap_or(0),
            "selector": selector,
        },
    })
}

fn respond(scale: &Value) -> Response<Body> {
    let mut resp = Response::new(body::full(scale.to_string()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// GET, PUT or PATCH of the scale subresource.
pub(crate) async fn serve(
    state: &Arc<State>,
    target: &Target,
    name: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    if target.resource != Resource::Deployments {
        return Err(ApiError::NoRoute);
    }
    let ns = target.namespace.as_deref().unwrap_or("default");
    let method = req.method().clone();
    let patch_kind = if method == Method::PATCH {
        Some(PatchType::from_content_type(
            req.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        )?)
    } else {
        None
    };
    let current = state
        .store
        .get(Resource::Deployments, ns, name)
        .ok_or_else(|| ApiError::NotFound {
            resource: "deployments.apps".into(),
            name: name.into(),
        })?;
    if method == Method::GET {
        return Ok(respond(&scale_of(&current)));
    }
    if method != Method::PUT && method != Method::PATCH {
        return Err(ApiError::MethodNotAllowed);
    }
    let body = read_json(req).await?;
    let object = state
        .store
        .update(Resource::Deployments, ns, name, |old, mut value| {
            let wanted = match patch_kind {
                Some(kind) => patch::apply(kind, scale_of(old), &body)?,
                None => {
                    if let Some(rv) = body
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                    {
                        if !rv.is_empty() && rv != old.rv.to_string() {
                            return Err(ApiError::Conflict {
                                resource: "deployments.apps".into(),
                                name: old.name.clone(),
                            });
                        }
                    }
                    body.clone()
                }
            };
            let replicas = wanted
                .pointer("/spec/replicas")
                .and_then(Value::as_u64)
                .filter(|r| *r <= 10_000)
                .ok_or_else(|| ApiError::Invalid {
                    kind: "Scale".into(),
                    name: old.name.clone(),
                    causes: vec![Cause {
                        reason: "FieldValueInvalid",
                        message: "must be a non-negative integer up to 10000".into(),
                        field: "spec.replicas".into(),
                    }],
                })?;
            if value.pointer("/spec/replicas").and_then(Value::as_u64) != Some(replicas) {
                value["spec"]["replicas"] = json!(replicas);
                let generation = value
                    .pointer("/metadata/generation")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                value["metadata"]["generation"] = json!(generation + 1);
            }
            Ok(value)
        })?;
    Ok(respond(&scale_of(&object)))
}
