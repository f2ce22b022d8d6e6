//! The resource API: `/api/v1/…` and `/apis/apps/v1/…`.

mod scale;
pub(crate) mod watch;

use std::sync::Arc;

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::admission::{self, FieldValidation};
use crate::body::{self, Body};
use crate::conn::ConnState;
use crate::error::ApiError;
use crate::media::{self, Representation};
use crate::patch::{self, PatchType};
use crate::pods::logs::{self, LogOptions};
use crate::query::Query;
use crate::resource::Resource;
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::State;
use crate::store::Object;
use crate::table;

/// Largest request body accepted (the apiserver's limit is about 3 MiB).
pub(crate) const MAX_BODY: usize = 3 * 1024 * 1024;

/// What a resource path names.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) resource: Resource,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) sub: Option<String>,
}

/// Parses the segments after `/api/v1` or `/apis/{group}/v1`.
pub(crate) fn parse_target(group: &str, segs: &[String]) -> Result<Target, ApiError> {
    let resource = |plural: &str| Resource::from_path(group, "v1", plural).ok_or(ApiError::NoRoute);
    let (resource, namespace, rest) = match segs {
        [ns_word, ns, plural, rest @ ..]
            if ns_word == "namespaces"
                && group.is_empty()
                && Resource::from_path("", "v1", plural).is_some() =>
        {
            (resource(plural)?, Some(ns.clone()), rest)
        }
        [ns_word, ns, plural, rest @ ..] if ns_word == "namespaces" && !group.is_empty() => {
            (resource(plural)?, Some(ns.clone()), rest)
        }
        [plural, rest @ ..] => (resource(plural)?, None, rest),
        [] => return Err(ApiError::NoRoute),
    };
    if namespace.is_some() && !resource.namespaced() {
        return Err(ApiError::NoRoute);
    }
    let (name, sub) = match rest {
        [] => (None, None),
        [name] => (Some(name.clone()), None),
        [name, sub] => (Some(name.clone()), Some(sub.clone())),
        _ => return Err(ApiError::NoRoute),
    };
    if let Some(sub) = &sub {
        if !resource.subresources().contains(&sub.as_str()) {
            return Err(ApiError::NoRoute);
        }
    }
    if name.as_deref() == Some("") {
        return Err(ApiError::NoRoute);
    }
    Ok(Target {
        resource,
        namespace,
        name,
        sub,
    })
}

fn object_response(code: StatusCode, json: Bytes, warnings: &[String]) -> Response<Body> {
    let mut resp = Response::new(body::full(json));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - {:?}", w)) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

fn table_response(value: &Value, version: &str) -> Response<Body> {
    let mut resp = Response::new(body::full(value.to_string()));
    let ct = format!("application/json;as=Table;v={version};g=meta.k8s.io");
    if let Ok(v) = HeaderValue::from_str(&ct) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// Reads a JSON body, bounded by [`MAX_BODY`].
pub(crate) async fn read_json(req: Request<Incoming>) -> Result<Value, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.contains("protobuf")
        || content_type.contains("cbor")
        || content_type.contains("yaml")
    {
        // kubectl's typed clients (create namespace, create deployment…)
        // send protobuf; this server only decodes JSON.
        return Err(ApiError::UnsupportedMediaType(
            "application/json, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json".into(),
        ));
    }
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::TooLarge { limit: MAX_BODY }
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {e}"))
            }
        })?
        .to_bytes();
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::BadRequest(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

/// Serves one resource request.
pub(crate) async fn serve(
    state: Arc<State>,
    conn: Arc<ConnState>,
    req: Request<Incoming>,
    group: &str,
    segs: &[String],
) -> Result<Response<Body>, ApiError> {
    let target = parse_target(group, segs)?;
    let query = Query::parse(req.uri().query());
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let method = req.method().clone();
    if let Some(ns) = &target.namespace {
        if method == Method::POST && state.store.get(Resource::Namespaces, "", ns).is_none() {
            return Err(ApiError::NotFound {
                resource: "namespaces".into(),
                name: ns.clone(),
            });
        }
    }
    match (&method, target.name.as_deref(), target.sub.as_deref()) {
        (&Method::GET, _, None) if query.flag("watch") => {
            let repr = media::negotiate_object(accept.as_deref()).ok_or(ApiError::NotAcceptable)?;
            watch::serve(&state, &conn, &target, &query, repr)
        }
        (&Method::GET, None, None) => list(&state, &target, &query, accept.as_deref()),
        (&Method::GET, Some(name), None | Some("status")) => {
            get(&state, &target, name, accept.as_deref())
        }
        (&Method::POST, None, None) => create(&state, &target, &query, read_json(req).await?),
        (&Method::PUT, Some(name), None) => {
            update(&state, &target, name, &query, read_json(req).await?)
        }
        (&Method::PATCH, Some(name), None) => {
            let kind = PatchType::from_content_type(
                req.headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
            )?;
            patch_object(&state, &target, name, &query, kind, read_json(req).await?)
        }
        (&Method::PUT | &Method::PATCH, Some(name), Some("status")) => {
            let kind = if method == Method::PUT {
                None
            } else {
                Some(PatchType::from_content_type(
                    req.headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok()),
                )?)
            };
            update_status(&state, &target, name, kind, read_json(req).await?)
        }
        (&Method::DELETE, Some(name), None) => {
            delete(&state, &target, name, &query, read_json(req).await?)
        }
        (&Method::DELETE, None, None) => delete_collection(&state, &target, &query),
        (&Method::GET, Some(name), Some("log")) => logs::serve(
            &state,
            target.namespace.as_deref().unwrap_or("default"),
            name,
            LogOptions {
                container: query
                    .get("container")
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned),
                follow: query.flag("follow"),
                tail_lines: query.number("tailLines")?,
                limit_bytes: query.number("limitBytes")?,
            },
        ),
        (_, Some(name), Some("scale")) => scale::serve(&state, &target, name, req).await,
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn not_found(target: &Target, name: &str) -> ApiError {
    ApiError::NotFound {
        resource: target.resource.plural().to_owned(),
        name: name.to_owned(),
    }
}

fn get(
    state: &State,
    target: &Target,
    name: &str,
    accept: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let ns = target.namespace.as_deref().unwrap_or("");
    let object = state
        .store
        .get(target.resource, ns, name)
        .ok_or_else(|| not_found(target, name))?;
    match media::negotiate_object(accept).ok_or(ApiError::NotAcceptable)? {
        Representation::Json => Ok(object_response(StatusCode::OK, object.json.clone(), &[])),
        Representation::Table(version) => {
            let row = table::row(target.resource, &object.value(), version, false);
            Ok(table_response(
                &table::table(target.resource, vec![row], version, object.rv, None, true),
                version,
            ))
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    rv: u64,
    ns: String,
    name: String,
}

fn encode_continue(rv: u64, key: (String, String)) -> String {
    let token = ContinueToken {
        rv,
        ns: key.0,
        name: key.1,
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn decode_continue(s: &str) -> Result<ContinueToken, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| ApiError::BadRequest("continue key is not valid".into()))
}

/// One page of a list as served: items, version, continue token.
struct Selected {
    items: Vec<Arc<Object>>,
    rv: u64,
    next: Option<String>,
}

/// Matching objects in key order, one page.
fn select(state: &State, target: &Target, query: &Query) -> Result<Selected, ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""), target.resource)?;
    if let Some(rv) = query.get("resourceVersion").filter(|v| !v.is_empty()) {
        rv.parse::<u64>()
            .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))?;
    }
    let limit = query
        .number("limit")?
        .filter(|l| *l > 0)
        .map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    let (from, snapshot_rv) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let token = decode_continue(token)?;
            state.store.check_not_compacted(token.rv)?;
            (Some((token.ns, token.name)), Some(token.rv))
        }
        None => (None, None),
    };
    let page = state.store.list(
        target.resource,
        target.namespace.as_deref(),
        from,
        limit,
        |o| {
            labels.matches(&o.labels) && {
                let value = fields.needs_body().then(|| o.value());
                fields.matches(&o.namespace, &o.name, value.as_ref())
            }
        },
    );
    let rv = snapshot_rv.unwrap_or(page.rv);
    let next = page.next.map(|key| encode_continue(rv, key));
    Ok(Selected {
        items: page.items,
        rv,
        next,
    })
}

/// A `…List` document made by concatenating the stored object bytes: no
/// per-object serialization.
fn list_bytes(resource: Resource, items: &[Arc<Object>], rv: u64, next: Option<String>) -> Bytes {
    let size: usize = items.iter().map(|o| o.json.len() + 1).sum();
    let mut buf = BytesMut::with_capacity(size + 256);
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(next) = next {
        meta["continue"] = json!(next);
    }
    buf.put_slice(
        format!(
            "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{meta},\"items\":[",
            resource.kind(),
            resource.api_version()
        )
        .as_bytes(),
    );
    for (i, o) in items.iter().enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        buf.put_slice(&o.json);
    }
    buf.put_slice(b"]}");
    buf.freeze()
}

fn list(
    state: &State,
    target: &Target,
    query: &Query,
    accept: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let repr = media::negotiate_object(accept).ok_or(ApiError::NotAcceptable)?;
    let Selected { items, rv, next } = select(state, target, query)?;
    match repr {
        Representation::Table(version) => {
            let full = query.get("includeObject") == Some("Object");
            let rows = items
                .iter()
                .map(|o| table::row(target.resource, &o.value(), version, full))
                .collect();
            Ok(table_response(
                &table::table(target.resource, rows, version, rv, next, true),
                version,
            ))
        }
        Representation::Json => Ok(object_response(
            StatusCode::OK,
            list_bytes(target.resource, &items, rv, next),
            &[],
        )),
    }
}

fn create(
    state: &Arc<State>,
    target: &Target,
    query: &Query,
    mut obj: Value,
) -> Result<Response<Body>, ApiError> {
    if target.name.is_some() {
        return Err(ApiError::MethodNotAllowed);
    }
    let validation = FieldValidation::parse(query.get("fieldValidation"))?;
    let warnings = admission::decode(target.resource, &obj, validation)?;
    admission::prepare_metadata(target.resource, target.namespace.as_deref(), &mut obj)?;
    admission::admit(target.resource, &mut obj, None, || {
        state.allocate_cluster_ip()
    })?;
    if query.get("dryRun").is_some_and(|d| !d.is_empty()) {
        return Ok(object_response(
            StatusCode::CREATED,
            Bytes::from(obj.to_string()),
            &warnings,
        ));
    }
    let object = state.store.create(target.resource, obj)?;
    if target.resource == Resource::Pods {
        state.start_pod(&object.value());
    }
    Ok(object_response(
        StatusCode::CREATED,
        object.json.clone(),
        &warnings,
    ))
}

/// Creates an object on behalf of the sandbox itself (demo pod, controller).
pub(crate) fn create_internal(
    state: &Arc<State>,
    resource: Resource,
    namespace: Option<&str>,
    mut obj: Value,
) -> Result<Arc<Object>, ApiError> {
    admission::prepare_metadata(resource, namespace, &mut obj)?;
    admission::admit(resource, &mut obj, None, || state.allocate_cluster_ip())?;
    let object = state.store.create(resource, obj)?;
    if resource == Resource::Pods {
        state.start_pod(&object.value());
    }
    Ok(object)
}

fn check_precondition(old: &Object, given: &Value) -> Result<(), ApiError> {
    match given
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    {
        Some(rv) if !rv.is_empty() && rv != old.rv.to_string() => Err(ApiError::Conflict {
            resource: old.resource.plural().to_owned(),
            name: old.name.clone(),
        }),
        _ => Ok(()),
    }
}

fn update(
    state: &Arc<State>,
    target: &Target,
    name: &str,
    query: &Query,
    obj: Value,
) -> Result<Response<Body>, ApiError> {
    let validation = FieldValidation::parse(query.get("fieldValidation"))?;
    let warnings = admission::decode(target.resource, &obj, validation)?;
    let body_name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if body_name != name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let object = update_admitted(state, target, name, |_| Ok(obj))?;
    Ok(object_response(
        StatusCode::OK,
        object.json.clone(),
        &warnings,
    ))
}

/// Updates an object to what `change` makes of the stored value, after
/// the client's resourceVersion precondition, keeping server-owned
/// metadata, and admitted like a create.
fn update_admitted(
    state: &Arc<State>,
    target: &Target,
    name: &str,
    change: impl FnOnce(&Value) -> Result<Value, ApiError>,
) -> Result<Arc<Object>, ApiError> {
    let ns = target.namespace.as_deref().unwrap_or("");
    state
        .store
        .update(target.resource, ns, name, |old, old_value| {
            let mut new = change(&old_value)?;
            check_precondition(old, &new)?;
            keep_server_metadata(&old_value, &mut new);
            admission::admit(target.resource, &mut new, Some(&old_value), || {
                state.allocate_cluster_ip()
            })?;
            Ok(new)
        })
}

/// Fields clients cannot change through an update.
fn keep_server_metadata(old: &Value, new: &mut Value) {
    if !new["metadata"].is_object() {
        new["metadata"] = json!({});
    }
    for key in [
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old["metadata"].get(key) {
            Some(v) => new["metadata"][key] = v.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(key);
                }
            }
        }
    }
}

fn patch_object(
    state: &Arc<State>,
    target: &Target,
    name: &str,
    query: &Query,
    kind: PatchType,
    patch: Value,
) -> Result<Response<Body>, ApiError> {
    let validation = FieldValidation::parse(query.get("fieldValidation"))?;
    let mut warnings = Vec::new();
    let object = update_admitted(state, target, name, |old_value| {
        let new = patch::apply(kind, old_value.clone(), &patch)?;
        warnings = admission::decode(target.resource, &new, validation)?;
        Ok(new)
    })?;
    Ok(object_response(
        StatusCode::OK,
        object.json.clone(),
        &warnings,
    ))
}

fn update_status(
    state: &State,
    target: &Target,
    name: &str,
    kind: Option<PatchType>,
    body: Value,
) -> Result<Response<Body>, ApiError> {
    let ns = target.namespace.as_deref().unwrap_or("");
    let object = state
        .store
        .update(target.resource, ns, name, |old, mut value| {
            let status = match kind {
                Some(kind) => patch::apply(kind, value.clone(), &body)?["status"].clone(),
                None => {
                    check_precondition(old, &body)?;
                    body["status"].clone()
                }
            };
            value["status"] = status;
            Ok(value)
        })?;
    Ok(object_response(StatusCode::OK, object.json.clone(), &[]))
}

fn grace_period(query: &Query, options: &Value) -> Result<Option<u64>, ApiError> {
    Ok(query
        .number("gracePeriodSeconds")?
        .or_else(|| options.get("gracePeriodSeconds").and_then(Value::as_u64)))
}

/// Deletes one object by the rules of its kind.
pub(crate) fn delete_object(
    state: &Arc<State>,
    resource: Resource,
    ns: &str,
    name: &str,
    grace: Option<u64>,
) -> Result<Arc<Object>, ApiError> {
    match resource {
        Resource::Pods => state.terminate_pod(ns, name, grace),
        Resource::Namespaces => {
            if matches!(name, "default" | "kube-system" | "kube-public") {
                return Err(ApiError::Forbidden(format!(
                    "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                )));
            }
            if state.store.get(resource, "", name).is_none() {
                return Err(ApiError::NotFound {
                    resource: "namespaces".into(),
                    name: name.to_owned(),
                });
            }
            for r in Resource::ALL.into_iter().filter(|r| r.namespaced()) {
                for o in state.store.list(r, Some(name), None, None, |_| true).items {
                    let _ = delete_object(state, r, &o.namespace, &o.name, grace);
                }
            }
            state.store.delete(resource, "", name)
        }
        _ => state.store.delete(resource, ns, name),
    }
}

fn delete(
    state: &Arc<State>,
    target: &Target,
    name: &str,
    query: &Query,
    options: Value,
) -> Result<Response<Body>, ApiError> {
    if !options.is_null() && !options.is_object() {
        return Err(ApiError::BadRequest(
            "DeleteOptions must be a JSON object".into(),
        ));
    }
    let grace = grace_period(query, &options)?;
    let ns = target.namespace.as_deref().unwrap_or("");
    if let Some(uid) = options
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
    {
        let current = state
            .store
            .get(target.resource, ns, name)
            .ok_or_else(|| not_found(target, name))?;
        if current.uid != uid {
            return Err(ApiError::Conflict {
                resource: target.resource.plural().into(),
                name: name.into(),
            });
        }
    }
    let object = delete_object(state, target.resource, ns, name, grace)?;
    Ok(object_response(StatusCode::OK, object.json.clone(), &[]))
}

fn delete_collection(
    state: &Arc<State>,
    target: &Target,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let Selected { items, rv, .. } = select(state, target, query)?;
    let grace = query.number("gracePeriodSeconds")?;
    let deleted: Vec<Arc<Object>> = items
        .iter()
        .filter_map(|o| delete_object(state, target.resource, &o.namespace, &o.name, grace).ok())
        .collect();
    Ok(object_response(
        StatusCode::OK,
        list_bytes(target.resource, &deleted, rv, None),
        &[],
    ))
}
