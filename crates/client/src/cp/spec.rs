//! `SRC` and `DST` as kubectl writes them: a local path, or
//! `[NAMESPACE/]POD:PATH`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::error::CopyError;

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A path on this machine.
    Local(PathBuf),
    /// A path in a pod's container.
    Pod(PodPath),
}

/// `[NAMESPACE/]POD:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPath {
    /// The namespace, when given (else the client's).
    pub namespace: Option<String>,
    /// The pod's name.
    pub pod: String,
    /// The path inside the container (relative paths are relative to the
    /// container's working directory).
    pub path: String,
}

impl fmt::Display for PodPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(namespace) = &self.namespace {
            write!(f, "{namespace}/")?;
        }
        write!(f, "{}:{}", self.pod, self.path)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::Pod(pod) => pod.fmt(f),
        }
    }
}

/// The longest Kubernetes object name (a DNS subdomain).
const MAX_NAME: usize = 253;

impl FromStr for Location {
    type Err = CopyError;

    /// As kubectl: text with a `:` is `[NS/]POD:PATH`, anything else a local
    /// path. Unlike kubectl, a path starting with `/` or `.` is always local,
    /// so `./a:b` names a local file.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| CopyError::InvalidSpec {
            spec: spec.to_owned(),
            reason: reason.to_owned(),
        };
        if spec.is_empty() {
            return Err(invalid("empty path"));
        }
        let Some((object, path)) = spec
            .split_once(':')
            .filter(|_| !spec.starts_with(['/', '.']))
        else {
            return Ok(Self::Local(PathBuf::from(spec)));
        };
        let (namespace, pod) = match object.split_once('/') {
            None => (None, object),
            Some((namespace, pod)) => (Some(namespace), pod),
        };
        for (what, name) in [("pod", Some(pod)), ("namespace", namespace)] {
            let Some(name) = name else { continue };
            if !is_object_name(name) {
                return Err(invalid(&format!(
                    "{what} name {name:?} is not a valid name (lower-case letters, digits, '-' and '.'); \
                     use [NAMESPACE/]POD:PATH"
                )));
            }
        }
        if path.is_empty() {
            return Err(invalid("the path in the pod is empty"));
        }
        Ok(Self::Pod(PodPath {
            namespace: namespace.map(str::to_owned),
            pod: pod.to_owned(),
            path: path.to_owned(),
        }))
    }
}

fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// A path in the container split for `tar -C PARENT NAME`: lexically
/// cleaned, so `NAME` is a single component (or `.` for the root or the
/// working directory itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteSplit {
    pub(crate) parent: String,
    pub(crate) name: String,
}

impl RemoteSplit {
    /// Split `path`; a path that ends above its start (`..`) is refused,
    /// since tar would have to name entries with `..`.
    pub(crate) fn new(path: &str) -> Result<Self, CopyError> {
        let absolute = path.starts_with('/');
        let mut parts: Vec<&str> = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => match parts.last() {
                    Some(&last) if last != ".." => {
                        parts.pop();
                    }
                    _ if absolute => {}
                    _ => parts.push(".."),
                },
                other => parts.push(other),
            }
        }
        let root = if absolute { "/" } else { "." };
        let Some(name) = parts.pop() else {
            return Ok(Self {
                parent: root.to_owned(),
                name: ".".to_owned(),
            });
        };
        if name == ".." {
            return Err(CopyError::InvalidSpec {
                spec: path.to_owned(),
                reason: "the path in the pod must not end above its start ('..')".to_owned(),
            });
        }
        let parent = if parts.is_empty() {
            root.to_owned()
        } else if absolute {
            format!("/{}", parts.join("/"))
        } else {
            parts.join("/")
        };
        Ok(Self {
            parent,
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(namespace: Option<&str>, pod: &str, path: &str) -> Location {
        Location::Pod(PodPath {
            namespace: namespace.map(str::to_owned),
            pod: pod.to_owned(),
            path: path.to_owned(),
        })
    }

    #[test]
    fn kubectl_forms() {
        assert_eq!(
            "demo:/tmp/x".parse::<Location>().unwrap(),
            pod(None, "demo", "/tmp/x")
        );
        assert_eq!(
            "ns1/demo:data".parse::<Location>().unwrap(),
            pod(Some("ns1"), "demo", "data")
        );
        assert_eq!(
            "some/file".parse::<Location>().unwrap(),
            Location::Local("some/file".into())
        );
        assert_eq!(
            "./a:b".parse::<Location>().unwrap(),
            Location::Local("./a:b".into())
        );
        assert_eq!(
            "/abs/a:b".parse::<Location>().unwrap(),
            Location::Local("/abs/a:b".into())
        );
        assert_eq!(pod(Some("n"), "p", "/x").to_string(), "n/p:/x");
    }

    #[test]
    fn bad_specs_are_errors() {
        for spec in ["", ":x", "demo:", "a/b/c:/x", "Demo:/x", "ns/:x"] {
            assert!(
                matches!(spec.parse::<Location>(), Err(CopyError::InvalidSpec { .. })),
                "{spec:?}"
            );
        }
    }

    #[test]
    fn remote_split() {
        let split = |p: &str| RemoteSplit::new(p).map(|s| (s.parent, s.name));
        assert_eq!(split("/tmp/x").unwrap(), ("/tmp".into(), "x".into()));
        assert_eq!(split("/tmp/x/").unwrap(), ("/tmp".into(), "x".into()));
        assert_eq!(split("/x").unwrap(), ("/".into(), "x".into()));
        assert_eq!(split("/").unwrap(), ("/".into(), ".".into()));
        assert_eq!(split("x").unwrap(), (".".into(), "x".into()));
        assert_eq!(split("a/./b/../c").unwrap(), ("a".into(), "c".into()));
        assert_eq!(split("/../../etc").unwrap(), ("/".into(), "etc".into()));
        assert_eq!(split("../d").unwrap(), ("..".into(), "d".into()));
        assert_eq!(split(".").unwrap(), (".".into(), ".".into()));
        assert!(split("..").is_err());
        assert!(split("a/../..").is_err());
    }
}
