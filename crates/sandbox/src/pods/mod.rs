//! Pods are processes: each container's command runs as a host process in
//! the pod's working folder (and, as root, in the pod's own network
//! namespace), supervised according to `restartPolicy`.
//!
//! Network: as root, each pod gets a fresh network namespace with only `lo`
//! (up), kept alive by an fd for the pod's whole life, so two pods can both
//! listen on 8080; exec'd processes and port-forward dials enter the same
//! namespace. Without root (or with network namespaces disabled) pods share
//! the host network. Either way `status.podIP` is `127.0.0.1`: the address a
//! pod's processes see themselves on (it is not routable between pods;
//! reach pods through port-forward).

mod container;
pub(crate) mod logs;
mod status;

use std::collections::HashMap;
use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::AsyncWrite;
use tokio::sync::{broadcast, watch};

pub(crate) use container::Container;

use crate::error::ApiError;
use crate::resource::Resource;
use crate::state::State;
use crate::sys::{self, Signal};

/// The node name pods are scheduled to; pods whose `spec.nodeName` names
/// another node are stored but never run (handy for scale tests).
pub(crate) const NODE_NAME: &str = "sandbox";
/// What `status.podIP` and `status.hostIP` report.
pub(crate) const POD_IP: &str = "127.0.0.1";
/// The command of a container that has neither `command` nor `args` (the
/// sandbox has no images to take an entrypoint from): wait to be stopped.
const DEFAULT_COMMAND: [&str; 2] = ["sleep", "2147483647"];
/// Default `terminationGracePeriodSeconds`.
pub(crate) const DEFAULT_GRACE: u64 = 30;

/// Where a chunk of container output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputStream {
    Stdout,
    Stderr,
}

/// A chunk of container output, as broadcast to attach sessions.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    pub(crate) stream: OutputStream,
    pub(crate) data: Bytes,
}

/// A container's stdin, shared by attach sessions (`None` once closed).
pub(crate) type StdinWriter = Arc<tokio::sync::Mutex<Option<Box<dyn AsyncWrite + Send + Unpin>>>>;

/// What an attach session gets.
pub(crate) struct Attach {
    /// The main process's stdin, when the container has `stdin: true`.
    pub(crate) stdin: Option<StdinWriter>,
    /// Output from now on.
    pub(crate) output: broadcast::Receiver<Output>,
}

/// The running side of one pod.
pub(crate) struct PodHandle {
    pub(crate) uid: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) workdir: PathBuf,
    pub(crate) netns: Option<Arc<OwnedFd>>,
    pub(crate) containers: Vec<Arc<Container>>,
    pub(crate) stopping: watch::Sender<bool>,
    pub(crate) start_time: String,
}

/// All running pods.
pub(crate) struct PodRuntime {
    netns: bool,
    root: PathBuf,
    pods: Mutex<HashMap<(String, String), Arc<PodHandle>>>,
}

/// The container `kubectl` uses by default: the
/// `kubectl.kubernetes.io/default-container` annotation, else the first.
pub(crate) fn default_container(pod: &Value) -> Option<String> {
    let annotated = pod
        .pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container")
        .and_then(Value::as_str)
        .filter(|name| container_spec(pod, name).is_some());
    annotated
        .or_else(|| {
            pod.pointer("/spec/containers/0/name")
                .and_then(Value::as_str)
        })
        .map(str::to_owned)
}

/// One container's spec by name.
pub(crate) fn container_spec<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    pod.pointer("/spec/containers")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
}

/// `status.phase`.
pub(crate) fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending")
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The argv a container spec runs: `command` + `args`, or `args` alone.
pub(crate) fn container_argv(spec: &Value) -> Vec<String> {
    let mut argv = strings(spec.get("command"));
    argv.extend(strings(spec.get("args")));
    if argv.is_empty() {
        argv = DEFAULT_COMMAND.iter().map(|s| (*s).to_owned()).collect();
    }
    argv
}

/// The literal `env` of a container spec (`valueFrom` entries are skipped).
pub(crate) fn container_env(spec: &Value) -> Vec<(String, String)> {
    spec.get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.get("name")?.as_str()?;
            let value = e.get("value").and_then(Value::as_str).unwrap_or("");
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

impl PodRuntime {
    pub(crate) fn new(root: PathBuf, netns: bool) -> Self {
        Self {
            netns,
            root,
            pods: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<PodHandle>>> {
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running pod `namespace/name`, if any.
    pub(crate) fn handle(&self, namespace: &str, name: &str) -> Option<Arc<PodHandle>> {
        self.lock()
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    fn remove(&self, handle: &PodHandle) {
        let mut pods = self.lock();
        let key = (handle.namespace.clone(), handle.name.clone());
        if pods.get(&key).is_some_and(|h| h.uid == handle.uid) {
            pods.remove(&key);
        }
    }

    /// Whether pods get their own network namespace.
    pub(crate) fn uses_netns(&self) -> bool {
        self.netns
    }
}

impl PodHandle {
    /// A container by name.
    pub(crate) fn container(&self, name: &str) -> Option<&Arc<Container>> {
        self.containers.iter().find(|c| c.name == name)
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound {
        resource: "pods".into(),
        name: name.to_owned(),
    }
}

impl State {
    /// The pod object.
    pub(crate) fn get_pod(&self, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.store
            .get(Resource::Pods, namespace, name)
            .map(|o| o.value())
            .ok_or_else(|| not_found(name))
    }

    fn running_container(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<(Arc<PodHandle>, Arc<Container>), ApiError> {
        let object = self.get_pod(namespace, pod)?;
        let handle = self.pods.handle(namespace, pod).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "pod {pod} is not running on this node (phase {})",
                phase(&object)
            ))
        })?;
        let container = handle.container(container).cloned().ok_or_else(|| {
            ApiError::BadRequest(format!("container {container} is not valid for pod {pod}"))
        })?;
        Ok((handle, container))
    }

    /// A command that runs `argv` "inside" a pod's container: in the pod's
    /// folder, with the container's env, in the pod's network namespace.
    /// The caller adds stdio (or a pty), makes the child a process-group
    /// leader (`process_group(0)`, or `setsid()` for a pty), spawns it and
    /// registers it with [`crate::processes::ProcessRegistry::register`].
    pub(crate) fn pod_command(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        argv: &[String],
    ) -> Result<tokio::process::Command, ApiError> {
        let (handle, container) = self.running_container(namespace, pod, container)?;
        let (program, args) = argv.split_first().ok_or_else(|| {
            ApiError::BadRequest("you must specify at least one command for the container".into())
        })?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .current_dir(&handle.workdir)
            .env("HOSTNAME", &handle.name)
            .envs(container.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(false);
        if let Some(netns) = &handle.netns {
            sys::enter_netns(&mut command, netns.clone());
        }
        Ok(command)
    }

    /// The pieces an attach session needs.
    pub(crate) fn attach(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<Attach, ApiError> {
        let (_, container) = self.running_container(namespace, pod, container)?;
        let stdin = match (container.stdin_open, container.stdin_once) {
            (false, _) => None,
            (true, false) => Some(container.stdin.clone()),
            // `stdinOnce` (kubectl run -i): the first session takes the pipe
            // for itself, so it closes (EOF for the process) when that
            // session's stdin ends; later sessions get none.
            (true, true) => container
                .stdin
                .try_lock()
                .ok()
                .and_then(|mut slot| slot.take())
                .map(|pipe| Arc::new(tokio::sync::Mutex::new(Some(pipe)))),
        };
        Ok(Attach {
            stdin,
            output: container.output.subscribe(),
        })
    }

    /// Connects to `port` on the pod's loopback (inside its namespace).
    pub(crate) async fn dial_pod(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> io::Result<tokio::net::TcpStream> {
        let handle = self.pods.handle(namespace, pod).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("pod {pod} is not running"))
        })?;
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        match &handle.netns {
            Some(netns) => sys::connect_in_netns(netns.clone(), addr).await,
            None => tokio::net::TcpStream::connect(addr).await,
        }
    }

    /// Schedules a freshly created pod onto this node and starts its
    /// containers, unless it names another node.
    pub(crate) fn start_pod(self: &Arc<Self>, pod: &Value) {
        let node = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !node.is_empty() && node != NODE_NAME {
            return;
        }
        let namespace = pod
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_owned();
        let name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let uid = pod
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let short_uid = uid.get(..8).unwrap_or(&uid);
        let workdir = self
            .pods
            .root
            .join(&namespace)
            .join(format!("{name}-{short_uid}"));
        // Private to this user: other users must not reach a pod's files.
        let created = std::os::unix::fs::DirBuilderExt::mode(
            std::fs::DirBuilder::new().recursive(true),
            0o700,
        )
        .create(&workdir);
        if let Err(e) = created {
            tracing::warn!(pod = %name, error = %e, "cannot create pod folder");
        }
        let netns = if self.pods.netns {
            match sys::create_netns() {
                Ok(fd) => Some(Arc::new(fd)),
                Err(e) => {
                    tracing::warn!(pod = %name, error = %e, "cannot create network namespace; using host network");
                    None
                }
            }
        } else {
            None
        };
        let containers = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|spec| Arc::new(Container::new(spec, &workdir)))
            .collect();
        let handle = Arc::new(PodHandle {
            uid,
            namespace: namespace.clone(),
            name: name.clone(),
            workdir,
            netns,
            containers,
            stopping: watch::channel(false).0,
            start_time: crate::meta::now_rfc3339(),
        });
        self.pods
            .lock()
            .insert((namespace.clone(), name.clone()), handle.clone());
        let restart_policy = pod
            .pointer("/spec/restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Always")
            .to_owned();
        let _ = self
            .store
            .update(Resource::Pods, &namespace, &name, |_, mut v| {
                v["spec"]["nodeName"] = json!(NODE_NAME);
                Ok(v)
            });
        self.publish_pod_status(&handle);
        let state = self.clone();
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for container in handle.containers.clone() {
                let (state, handle, policy) =
                    (state.clone(), handle.clone(), restart_policy.clone());
                tasks.spawn(async move {
                    container::supervise(state, handle, container, &policy).await
                });
            }
            while tasks.join_next().await.is_some() {}
            // A finished pod keeps its folder and logs until it is deleted.
            let mut stopping = handle.stopping.subscribe();
            let _ = stopping.wait_for(|s| *s).await;
            state.pods.remove(&handle);
            // What the pod left running (exec'd processes) goes with it.
            let (ns, pod) = (handle.namespace.clone(), handle.name.clone());
            state
                .processes
                .signal(Signal::Kill, |p| p.namespace == ns && p.pod == pod);
            // Deleted: the object goes once every process is gone.
            let _ = state
                .store
                .delete(Resource::Pods, &handle.namespace, &handle.name);
            let _ = std::fs::remove_dir_all(&handle.workdir);
        });
    }

    /// Deletes a pod the way a kubelet does: mark it terminating, SIGTERM
    /// every process of the pod (exec'd ones too), SIGKILL after the grace
    /// period; the object disappears once they are all gone. Pods not
    /// running here are removed at once.
    pub(crate) fn terminate_pod(
        self: &Arc<Self>,
        namespace: &str,
        name: &str,
        grace: Option<u64>,
    ) -> Result<Arc<crate::store::Object>, ApiError> {
        let Some(handle) = self.pods.handle(namespace, name) else {
            return self.store.delete(Resource::Pods, namespace, name);
        };
        let pod = self.get_pod(namespace, name)?;
        let grace = grace
            .or_else(|| {
                pod.pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_u64)
            })
            .unwrap_or(DEFAULT_GRACE);
        let already = handle.stopping.send_replace(true);
        let object = self
            .store
            .update(Resource::Pods, namespace, name, |_, mut v| {
                if v.pointer("/metadata/deletionTimestamp").is_none() {
                    v["metadata"]["deletionTimestamp"] = json!(crate::meta::now_rfc3339());
                    v["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                }
                Ok(v)
            })?;
        let of_pod = {
            let (ns, pod) = (namespace.to_owned(), name.to_owned());
            move |p: &crate::processes::ProcessInfo| p.namespace == ns && p.pod == pod
        };
        if grace == 0 {
            self.processes.signal(Signal::Kill, of_pod);
        } else if !already {
            self.processes.signal(Signal::Term, of_pod.clone());
            let processes = self.processes.clone();
            let handle = handle.clone();
            tokio::spawn(async move {
                let all_exited = async {
                    for c in &handle.containers {
                        let mut finished = c.finished.subscribe();
                        let _ = finished.wait_for(|f| *f).await;
                    }
                };
                tokio::select! {
                    () = all_exited => {}
                    () = tokio::time::sleep(Duration::from_secs(grace)) => {
                        processes.signal(Signal::Kill, of_pod);
                    }
                }
            });
        }
        Ok(object)
    }

    /// Writes the pod's status from its containers' states.
    pub(crate) fn publish_pod_status(&self, handle: &PodHandle) {
        let status = status::pod_status(handle);
        let uid = handle.uid.clone();
        let result = self.store.update(
            Resource::Pods,
            &handle.namespace,
            &handle.name,
            |old, mut v| {
                if old.uid != uid {
                    return Err(not_found(&handle.name));
                }
                v["status"] = status;
                Ok(v)
            },
        );
        if let Err(e) = result {
            tracing::debug!(pod = %handle.name, error = %e, "pod status not published");
        }
    }

    /// Stops every pod's supervision (shutdown); processes are killed by the
    /// process registry.
    pub(crate) fn stop_all_pods(&self) {
        for handle in self.pods.lock().values() {
            handle.stopping.send_replace(true);
        }
    }
}
