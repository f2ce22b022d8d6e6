//! `GET …/pods/{name}/log`: a container's output, optionally followed.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Response};

use crate::body::{self, Body};
use crate::error::ApiError;
use crate::state::State;

use super::Container;

/// The most a tail read looks back, in bytes.
const TAIL_WINDOW: u64 = 8 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// The log request options kubectl sends.
#[derive(Debug, Default)]
pub(crate) struct LogOptions {
    pub(crate) container: Option<String>,
    pub(crate) follow: bool,
    pub(crate) tail_lines: Option<u64>,
    pub(crate) limit_bytes: Option<u64>,
}

/// Serves the log request.
pub(crate) fn serve(
    state: &Arc<State>,
    namespace: &str,
    pod: &str,
    opts: LogOptions,
) -> Result<Response<Body>, ApiError> {
    let object = state.get_pod(namespace, pod)?;
    let name = match opts.container {
        Some(c) => c,
        None => {
            let count = object
                .pointer("/spec/containers")
                .and_then(|c| c.as_array())
                .map_or(0, Vec::len);
            if count > 1 {
                return Err(ApiError::BadRequest(format!(
                    "a container name must be specified for pod {pod}, choose one of: [{}]",
                    object
                        .pointer("/spec/containers")
                        .and_then(|c| c.as_array())
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c.get("name")?.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                )));
            }
            super::default_container(&object).unwrap_or_default()
        }
    };
    if super::container_spec(&object, &name).is_none() {
        return Err(ApiError::BadRequest(format!(
            "container {name} is not valid for pod {pod}"
        )));
    }
    let waiting = || {
        ApiError::BadRequest(format!(
            "container \"{name}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
        ))
    };
    let handle = state.pods.handle(namespace, pod).ok_or_else(waiting)?;
    let container = handle.container(&name).cloned().ok_or_else(waiting)?;
    let start =
        start_offset(&container, opts.tail_lines).map_err(|e| ApiError::Internal(e.to_string()))?;
    let limit = opts.limit_bytes.unwrap_or(u64::MAX);
    // Chunked either way: a large log is never read into memory whole.
    let (tx, body) = body::channel(8);
    let until = (!opts.follow).then(|| *container.log_len.borrow());
    tokio::spawn(stream(container, start, limit, until, tx));
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

/// Where reading starts: 0, or the start of the last `tail` lines.
fn start_offset(container: &Container, tail: Option<u64>) -> std::io::Result<u64> {
    let Some(tail) = tail else { return Ok(0) };
    let end = *container.log_len.borrow();
    let from = end.saturating_sub(TAIL_WINDOW);
    let window = read_range(container, from, end)?;
    // Skip a trailing newline: it ends the last line rather than starting one.
    let body = window.strip_suffix(b"\n").unwrap_or(&window);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == tail {
                return Ok(from + i as u64 + 1);
            }
        }
    }
    Ok(if tail == 0 { end } else { from })
}

fn read_range(container: &Container, from: u64, to: u64) -> std::io::Result<Bytes> {
    if to <= from {
        return Ok(Bytes::new());
    }
    let mut file = match std::fs::File::open(&container.log_path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Bytes::new()),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(from))?;
    let len = usize::try_from(to - from).unwrap_or(usize::MAX);
    let mut buf = Vec::with_capacity(len.min(CHUNK * 16));
    file.take(to - from).read_to_end(&mut buf)?;
    Ok(Bytes::from(buf))
}

/// Streams from `offset` up to `until`, or (following, `until` = None) as
/// the log grows until the container will never write again; also stops
/// when the client goes away or `limit` bytes went out.
async fn stream(
    container: Arc<Container>,
    mut offset: u64,
    mut limit: u64,
    until: Option<u64>,
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) {
    let mut len = container.log_len.subscribe();
    let mut finished = container.finished.subscribe();
    loop {
        let end = until.unwrap_or(*len.borrow_and_update());
        while offset < end && limit > 0 {
            let to = end
                .min(offset + CHUNK as u64)
                .min(offset.saturating_add(limit));
            let Ok(chunk) = read_range(&container, offset, to) else {
                return;
            };
            if chunk.is_empty() {
                break;
            }
            offset += chunk.len() as u64;
            limit -= chunk.len() as u64;
            if tx.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
        if limit == 0
            || until.is_some()
            || (*finished.borrow_and_update() && offset >= *len.borrow())
        {
            return;
        }
        tokio::select! {
            changed = len.changed() => if changed.is_err() { return },
            changed = finished.changed() => if changed.is_err() { return },
            () = tx.closed() => return,
        }
    }
}
