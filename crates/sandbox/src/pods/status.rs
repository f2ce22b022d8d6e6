//! Building a pod's `status` from its containers.

use serde_json::{json, Value};

use super::container::{RunState, Termination};
use super::{PodHandle, POD_IP};

fn terminated(t: &Termination) -> Value {
    json!({"terminated": {
        "exitCode": t.exit_code,
        "reason": t.reason,
        "message": if t.message.is_empty() { Value::Null } else { json!(t.message) },
        "startedAt": t.started_at,
        "finishedAt": t.finished_at,
        "containerID": format!("sandbox://{}", t.pid),
    }})
}

fn condition(kind: &str, ok: bool, since: &str) -> Value {
    json!({"type": kind, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": since})
}

/// The pod status: phase, conditions and one containerStatus per container.
pub(crate) fn pod_status(pod: &PodHandle) -> Value {
    // A stable transition time keeps unchanged statuses byte-identical, so
    // re-publishing them creates no new resourceVersion.
    let now = pod.start_time.as_str();
    let stopping = *pod.stopping.borrow();
    let mut statuses = Vec::new();
    let (mut all_started, mut all_running, mut all_finished, mut all_succeeded) =
        (true, true, true, true);
    for c in &pod.containers {
        let st = c.lock();
        let finished = c.is_finished();
        let (state, ready, started, id) = match &st.current {
            RunState::Waiting { reason, message } => (
                json!({"waiting": {"reason": reason, "message": if message.is_empty() { Value::Null } else { json!(message) }}}),
                false,
                false,
                None,
            ),
            RunState::Running { started_at, pid } => (
                json!({"running": {"startedAt": started_at}}),
                true,
                true,
                Some(*pid),
            ),
            RunState::Terminated(t) => {
                all_succeeded &= t.exit_code == 0;
                (terminated(t), false, false, Some(t.pid))
            }
        };
        all_started &= st.started_once;
        all_running &= ready;
        all_finished &= finished;
        let mut status = json!({
            "name": c.name,
            "image": c.image,
            "imageID": "",
            "ready": ready && !stopping,
            "started": started,
            "restartCount": st.restarts,
            "state": state,
            "lastState": st.last.as_ref().map(terminated).unwrap_or_else(|| json!({})),
        });
        if let Some(pid) = id {
            status["containerID"] = json!(format!("sandbox://{pid}"));
        }
        statuses.push(status);
    }
    let phase = if all_finished && !pod.containers.is_empty() {
        if all_succeeded {
            "Succeeded"
        } else {
            "Failed"
        }
    } else if all_started {
        "Running"
    } else {
        "Pending"
    };
    let ready = all_running && !stopping && phase == "Running";
    json!({
        "phase": phase,
        "conditions": [
            condition("PodReadyToStartContainers", true, now),
            condition("Initialized", true, now),
            condition("Ready", ready, now),
            condition("ContainersReady", ready, now),
            condition("PodScheduled", true, now),
        ],
        "hostIP": POD_IP,
        "hostIPs": [{"ip": POD_IP}],
        "podIP": POD_IP,
        "podIPs": [{"ip": POD_IP}],
        "startTime": pod.start_time,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    })
}
