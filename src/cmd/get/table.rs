//! kubectl's pod table, computed client-side from pods: the columns and cell
//! rules of kubectl 1.32's pod printer, and its tab-writer layout.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;

/// The column headers, `-o wide` adding four.
pub fn headers(wide: bool) -> Vec<String> {
    let mut headers = vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
    if wide {
        headers.extend(["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]);
    }
    headers.into_iter().map(str::to_owned).collect()
}

/// One pod's cells, as kubectl prints them at `now`.
pub fn row(pod: &Pod, wide: bool, now: Timestamp) -> Vec<String> {
    let summary = Summary::of(pod);
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let restarts = match summary.last_restart {
        Some(at) if summary.restarts != 0 => format!("{} ({} ago)", summary.restarts, age(at, now)),
        _ => summary.restarts.to_string(),
    };
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let mut cells = vec![
        pod.metadata.name.clone().unwrap_or_default(),
        format!("{}/{}", summary.ready, summary.total),
        summary.reason,
        restarts,
        created.map_or_else(|| "<unknown>".to_owned(), |at| age(at, now)),
    ];
    if wide {
        let none = || "<none>".to_owned();
        let ip = status
            .and_then(|s| s.pod_ips.as_ref())
            .and_then(|ips| ips.first())
            .map(|ip| ip.ip.clone())
            .filter(|ip| !ip.is_empty());
        let node = spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let nominated = status
            .and_then(|s| s.nominated_node_name.clone())
            .filter(|n| !n.is_empty());
        let gates = spec
            .and_then(|s| s.readiness_gates.as_ref())
            .filter(|g| !g.is_empty())
            .map(|gates| {
                let conditions = status
                    .and_then(|s| s.conditions.as_deref())
                    .unwrap_or_default();
                let met = gates
                    .iter()
                    .filter(|gate| {
                        conditions
                            .iter()
                            .find(|c| c.type_ == gate.condition_type)
                            .is_some_and(|c| c.status == "True")
                    })
                    .count();
                format!("{met}/{}", gates.len())
            });
        cells.extend([
            ip.unwrap_or_else(none),
            node.unwrap_or_else(none),
            nominated.unwrap_or_else(none),
            gates.unwrap_or_else(none),
        ]);
    }
    cells
}

/// READY, STATUS and RESTARTS inputs, following kubectl's `printPod`.
struct Summary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: i64,
    last_restart: Option<Timestamp>,
}

impl Summary {
    fn of(pod: &Pod) -> Self {
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let init_specs = spec
            .and_then(|s| s.init_containers.as_deref())
            .unwrap_or_default();
        let is_sidecar = |name: &str| {
            init_specs
                .iter()
                .find(|c| c.name == name)
                .is_some_and(|c| c.restart_policy.as_deref() == Some("Always"))
        };
        let mut summary = Self {
            ready: 0,
            total: spec.map_or(0, |s| s.containers.len())
                + init_specs.iter().filter(|c| is_sidecar(&c.name)).count(),
            reason: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
            restarts: 0,
            last_restart: None,
        };
        if let Some(reason) = status
            .and_then(|s| s.reason.clone())
            .filter(|r| !r.is_empty())
        {
            summary.reason = reason;
        }
        let conditions = status
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default();
        if conditions
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"))
        {
            summary.reason = "SchedulingGated".to_owned();
        }

        let mut sidecar_restarts = 0;
        let mut sidecar_last_restart = None;
        let mut initializing = false;
        let init_statuses = status
            .and_then(|s| s.init_container_statuses.as_deref())
            .unwrap_or_default();
        for (i, container) in init_statuses.iter().enumerate() {
            summary.restarts += i64::from(container.restart_count);
            let terminated_at = last_termination(container);
            summary.last_restart = later(summary.last_restart, terminated_at);
            let sidecar = is_sidecar(&container.name);
            if sidecar {
                sidecar_restarts += i64::from(container.restart_count);
                sidecar_last_restart = later(sidecar_last_restart, terminated_at);
            }
            let state = container.state.as_ref();
            let terminated = state.and_then(|s| s.terminated.as_ref());
            let waiting_reason = state
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.clone())
                .filter(|r| !r.is_empty() && r != "PodInitializing");
            if terminated.is_some_and(|t| t.exit_code == 0) {
                continue;
            }
            if sidecar && container.started == Some(true) {
                if container.ready {
                    summary.ready += 1;
                }
                continue;
            }
            summary.reason = if let Some(t) = terminated {
                match t.reason.as_deref().filter(|r| !r.is_empty()) {
                    Some(reason) => format!("Init:{reason}"),
                    None if t.signal.unwrap_or(0) != 0 => {
                        format!("Init:Signal:{}", t.signal.unwrap_or(0))
                    }
                    None => format!("Init:ExitCode:{}", t.exit_code),
                }
            } else if let Some(reason) = waiting_reason {
                format!("Init:{reason}")
            } else {
                format!("Init:{i}/{}", init_specs.len())
            };
            initializing = true;
            break;
        }

        let initialized = conditions
            .iter()
            .any(|c| c.type_ == "Initialized" && c.status == "True");
        if !initializing || initialized {
            summary.restarts = sidecar_restarts;
            summary.last_restart = sidecar_last_restart;
            let mut has_running = false;
            let statuses = status
                .and_then(|s| s.container_statuses.as_deref())
                .unwrap_or_default();
            for container in statuses.iter().rev() {
                summary.restarts += i64::from(container.restart_count);
                summary.last_restart = later(summary.last_restart, last_termination(container));
                let state = container.state.as_ref();
                let waiting = state
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.clone())
                    .filter(|r| !r.is_empty());
                let terminated = state.and_then(|s| s.terminated.as_ref());
                if let Some(reason) = waiting {
                    summary.reason = reason;
                } else if let Some(t) = terminated {
                    summary.reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                        Some(reason) => reason.to_owned(),
                        None if t.signal.unwrap_or(0) != 0 => {
                            format!("Signal:{}", t.signal.unwrap_or(0))
                        }
                        None => format!("ExitCode:{}", t.exit_code),
                    };
                } else if container.ready && state.and_then(|s| s.running.as_ref()).is_some() {
                    has_running = true;
                    summary.ready += 1;
                }
            }
            if summary.reason == "Completed" && has_running {
                let ready = conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                summary.reason = if ready { "Running" } else { "NotReady" }.to_owned();
            }
        }

        if pod.metadata.deletion_timestamp.is_some() {
            let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or_default();
            if status.and_then(|s| s.reason.as_deref()) == Some("NodeLost") {
                summary.reason = "Unknown".to_owned();
            } else if phase != "Succeeded" && phase != "Failed" {
                summary.reason = "Terminating".to_owned();
            }
        }
        summary
    }
}

fn last_termination(container: &ContainerStatus) -> Option<Timestamp> {
    container
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.finished_at.as_ref())
        .map(|t| t.0)
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// kubectl's `HumanDuration` of the time from `then` to `now`.
pub fn age(then: Timestamp, now: Timestamp) -> String {
    let seconds = now.as_second() - then.as_second();
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Go's tabwriter as kubectl configures it (min width 6, padding 3,
/// remembered widths): every column but the last is padded to its widest
/// cell so far plus three spaces.
#[derive(Debug, Default)]
pub struct TabWriter {
    widths: Vec<usize>,
}

impl TabWriter {
    /// Lays out `rows`, widening (never narrowing) the remembered columns.
    pub fn render(&mut self, rows: &[Vec<String>]) -> String {
        for row in rows {
            let padded = row.len().saturating_sub(1);
            if self.widths.len() < padded {
                self.widths.resize(padded, 0);
            }
            for (width, cell) in self.widths.iter_mut().zip(row.iter().take(padded)) {
                *width = (*width).max((cell.chars().count() + 3).max(6));
            }
        }
        let mut out = String::new();
        for row in rows {
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i + 1 < row.len() {
                    let pad = self.widths[i].saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = ts("2026-01-10T00:00:00Z");
        let cases = [
            ("2026-01-10T00:00:01Z", "0s"),
            ("2026-01-09T23:59:15Z", "45s"),
            ("2026-01-09T23:57:00Z", "3m"),
            ("2026-01-09T23:56:30Z", "3m30s"),
            ("2026-01-09T23:00:00Z", "60m"),
            ("2026-01-09T19:30:00Z", "4h30m"),
            ("2026-01-09T00:00:00Z", "24h"),
            ("2026-01-07T12:00:00Z", "2d12h"),
            ("2025-12-01T00:00:00Z", "40d"),
            ("2023-01-10T00:00:00Z", "3y1d"),
            ("2023-01-11T00:00:00Z", "3y"),
        ];
        for (then, want) in cases {
            assert_eq!(age(ts(then), now), want, "{then}");
        }
    }

    #[test]
    fn pod_cells_follow_the_printer() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "creationTimestamp": "2026-01-09T23:59:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.7"}], "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "image": "", "imageID": "",
                 "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-01-09T23:59:30Z"}}},
                {"name": "b", "ready": false, "restartCount": 0, "image": "", "imageID": "",
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ]}
        }))
        .unwrap();
        let now = ts("2026-01-10T00:00:00Z");
        assert_eq!(
            row(&pod, false, now),
            ["web", "1/2", "CrashLoopBackOff", "2 (30s ago)", "60s"]
        );
        assert_eq!(
            &row(&pod, true, now)[5..],
            ["10.0.0.7", "n1", "<none>", "<none>"]
        );
    }

    #[test]
    fn tabwriter_pads_all_but_the_last_column() {
        let mut writer = TabWriter::default();
        let rows = vec![
            headers(false),
            vec![
                "demo".into(),
                "1/1".into(),
                "Running".into(),
                "0".into(),
                "5m".into(),
            ],
        ];
        assert_eq!(
            writer.render(&rows),
            "NAME   READY   STATUS    RESTARTS   AGE\ndemo   1/1     Running   0          5m\n"
        );
    }
}
