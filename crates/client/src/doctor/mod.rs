//! `podlink doctor`: probe the configured cluster's paths and say what
//! works, and for what does not, the likely cause and the fix.
//!
//! Checks, in order (a failed foundation skips what depends on it):
//! TLS, API server reachable, authorisation, round-trip latency; then, in a
//! running pod, exec over WebSocket v5 and v4 and over SPDY (an `echo`
//! round trip each), port-forward over the WebSocket tunnel and SPDY (a
//! SPDY ping round trip each) and the legacy WebSocket (handshake); and
//! optionally how long an idle streaming connection survives on this path.
//!
//! ```no_run
//! # async fn demo(client: podlink_client::Client) {
//! use podlink_client::doctor::DoctorOptions;
//! let report = client.doctor(&DoctorOptions::new().idle_probe(true)).await;
//! print!("{report}");
//! # }
//! ```

mod explain;
mod stream;

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::Api;

pub use explain::{explain, recognise, Explanation};

use crate::error::Error;
use crate::Client;
use stream::Idle;

/// Requests timed for the latency figure.
const LATENCY_SAMPLES: usize = 5;

/// Pods listed to find a running one.
const POD_LIST_LIMIT: u32 = 100;

/// The legacy port-forward handshake's port when the pod declares none.
const DEFAULT_PORT: u16 = 80;

/// What to probe and how long to wait.
#[derive(Debug, Clone)]
#[must_use]
pub struct DoctorOptions {
    pod: Option<String>,
    container: Option<String>,
    idle_probe: bool,
    idle_limit: Duration,
    timeout: Duration,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        Self {
            pod: None,
            container: None,
            idle_probe: false,
            idle_limit: Duration::from_secs(120),
            timeout: Duration::from_secs(10),
        }
    }
}

impl DoctorOptions {
    /// The defaults: the first running pod, no idle probe, 10 s per probe.
    pub fn new() -> Self {
        Self::default()
    }

    /// Probe streaming in this pod (default: the first running pod of the
    /// namespace).
    pub fn pod(mut self, pod: impl Into<String>) -> Self {
        self.pod = Some(pod.into());
        self
    }

    /// And this container of it.
    pub fn container(mut self, container: impl Into<String>) -> Self {
        self.container = Some(container.into());
        self
    }

    /// Also measure how long an idle streaming connection survives.
    pub fn idle_probe(mut self, on: bool) -> Self {
        self.idle_probe = on;
        self
    }

    /// Give up the idle probe (as a success) after this long.
    pub fn idle_limit(mut self, limit: Duration) -> Self {
        self.idle_limit = limit;
        self
    }

    /// How long each probe may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Works.
    Ok,
    /// Does not work, but another path of the same kind does (podlink
    /// falls back to it).
    Warn,
    /// Does not work.
    Fail,
    /// Not tried: something it needs failed, or it was not asked for.
    Skip,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ok => "ok",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
            Self::Skip => "skip",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it came out.
    pub verdict: Verdict,
    /// What was seen.
    pub detail: String,
    /// For failures: the likely cause and the fix.
    pub explanation: Option<Explanation>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            verdict: Verdict::Ok,
            detail: detail.into(),
            explanation: None,
        }
    }

    fn skip(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            verdict: Verdict::Skip,
            detail: detail.into(),
            explanation: None,
        }
    }

    fn fail(name: &'static str, explanation: Explanation) -> Self {
        Self {
            name,
            verdict: Verdict::Fail,
            detail: explanation.problem.clone(),
            explanation: Some(explanation),
        }
    }
}

/// Every check, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DoctorReport {
    /// The API server probed.
    pub server: String,
    /// The checks.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// True when nothing failed (warnings and skips allowed).
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.checks.iter().all(|c| c.verdict != Verdict::Fail)
    }

    /// The check named `name`, if it ran.
    #[must_use]
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cluster: {}", self.server)?;
        let width = self
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(0)
            .max(5);
        writeln!(f, "{:width$}  {:6}  DETAIL", "CHECK", "RESULT")?;
        for check in &self.checks {
            writeln!(
                f,
                "{:width$}  {:6}  {}",
                check.name,
                check.verdict.to_string(),
                check.detail
            )?;
            if let Some(explanation) = &check.explanation {
                let pad = width + 10;
                writeln!(f, "{:pad$}cause: {}", "", explanation.cause)?;
                writeln!(f, "{:pad$}fix:   {}", "", explanation.fix)?;
            }
        }
        Ok(())
    }
}

/// Names of the checks, as they appear in the report.
pub mod names {
    /// The TLS handshake and certificate check.
    pub const TLS: &str = "TLS";
    /// `GET /version`.
    pub const API: &str = "API server";
    /// Listing pods.
    pub const AUTH: &str = "auth (list pods)";
    /// Round trips of `GET /version`.
    pub const LATENCY: &str = "round-trip latency";
    /// The pod the streaming probes use.
    pub const POD: &str = "probe pod";
    /// exec over `v5.channel.k8s.io`.
    pub const EXEC_V5: &str = "exec WebSocket v5";
    /// exec over `v4.channel.k8s.io`.
    pub const EXEC_V4: &str = "exec WebSocket v4";
    /// exec over SPDY/3.1.
    pub const EXEC_SPDY: &str = "exec SPDY";
    /// port-forward over the WebSocket tunnel.
    pub const FORWARD_TUNNEL: &str = "port-forward tunnel";
    /// port-forward over SPDY/3.1.
    pub const FORWARD_SPDY: &str = "port-forward SPDY";
    /// The legacy WebSocket port-forward.
    pub const FORWARD_LEGACY: &str = "port-forward legacy WS";
    /// The idle-connection probe.
    pub const IDLE: &str = "idle connection";
}

/// How a probe that ran to its deadline is explained.
fn timed_out(what: &str, after: Duration) -> Explanation {
    Explanation::new(
        format!("{what}: no answer within {after:?}"),
        "the connection opened but nothing came back: a stalled proxy, a blackholed path, or an overloaded server",
        "check proxies and firewalls between here and the API server; podlink's pings detect this (--pong-timeout)",
    )
}

impl Client {
    /// Run every check and report. Never fails: failures are in the report.
    pub async fn doctor(&self, options: &DoctorOptions) -> DoctorReport {
        let server = self.config().cluster_url.to_string();
        let mut report = DoctorReport {
            server: server.clone(),
            checks: Vec::new(),
        };
        let checks = &mut report.checks;
        let limit = options.timeout;
        let explain_here = |err: &Error| explain(err, &server);

        // TLS and reachability: one GET /version.
        match bounded(limit, self.kube().apiserver_version()).await {
            Ok(Ok(info)) => {
                checks.push(Check::ok(names::TLS, tls_detail(&server)));
                checks.push(Check::ok(
                    names::API,
                    format!("Kubernetes {}", info.git_version),
                ));
            }
            Ok(Err(err)) => {
                let err = Error::from(err);
                let explained = explain_here(&err);
                let code = err.status().map(|s| s.code);
                if matches!(code, Some(401 | 403)) {
                    checks.push(Check::ok(names::TLS, tls_detail(&server)));
                    checks.push(Check::ok(
                        names::API,
                        format!("answers (HTTP {})", code.unwrap_or_default()),
                    ));
                    checks.push(Check::fail(names::AUTH, explained));
                } else if explained.cause.contains("certificate") || explained.cause.contains("TLS")
                {
                    checks.push(Check::fail(names::TLS, explained));
                    checks.push(Check::skip(names::API, "needs TLS"));
                } else {
                    checks.push(Check::skip(names::TLS, "needs a connection"));
                    checks.push(Check::fail(names::API, explained));
                }
                return report;
            }
            Err(after) => {
                checks.push(Check::skip(names::TLS, "needs an answer"));
                checks.push(Check::fail(names::API, timed_out("GET /version", after)));
                return report;
            }
        }

        // Authorisation, and a pod for the streaming probes.
        let api: Api<Pod> = Api::namespaced(self.kube().clone(), self.namespace());
        let pods = match bounded(
            limit,
            api.list(&ListParams::default().limit(POD_LIST_LIMIT)),
        )
        .await
        {
            Ok(Ok(list)) => {
                checks.push(Check::ok(
                    names::AUTH,
                    format!("may list pods in namespace {}", self.namespace()),
                ));
                list.items
            }
            Ok(Err(err)) => {
                checks.push(Check::fail(names::AUTH, explain_here(&Error::from(err))));
                return report;
            }
            Err(after) => {
                checks.push(Check::fail(names::AUTH, timed_out("listing pods", after)));
                return report;
            }
        };

        checks.push(self.latency(limit).await);

        let pod = match choose_pod(&pods, options, self.namespace()) {
            Ok(pod) => {
                checks.push(Check::ok(
                    names::POD,
                    format!("{}/{}", pod.namespace, pod.name),
                ));
                pod
            }
            Err(why) => {
                checks.push(Check::skip(names::POD, why));
                return report;
            }
        };

        let exec = [
            (
                names::EXEC_V5,
                bounded(
                    limit,
                    stream::exec_websocket(self, &pod, "v5.channel.k8s.io"),
                )
                .await,
            ),
            (
                names::EXEC_V4,
                bounded(
                    limit,
                    stream::exec_websocket(self, &pod, "v4.channel.k8s.io"),
                )
                .await,
            ),
            (
                names::EXEC_SPDY,
                bounded(limit, stream::exec_spdy(self, &pod)).await,
            ),
        ];
        checks.extend(family(exec, &server, limit));
        let forward = [
            (
                names::FORWARD_TUNNEL,
                bounded(limit, stream::forward_tunnel(self, &pod)).await,
            ),
            (
                names::FORWARD_SPDY,
                bounded(limit, stream::forward_spdy(self, &pod)).await,
            ),
            (
                names::FORWARD_LEGACY,
                bounded(limit, stream::forward_legacy(self, &pod)).await,
            ),
        ];
        checks.extend(family(forward, &server, limit));

        checks.push(if options.idle_probe {
            self.idle(&pod, options, &server).await
        } else {
            Check::skip(names::IDLE, "not asked for (--idle-probe)")
        });
        report
    }

    async fn latency(&self, limit: Duration) -> Check {
        let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
        for _ in 0..LATENCY_SAMPLES {
            let started = Instant::now();
            match bounded(limit, self.kube().apiserver_version()).await {
                Ok(Ok(_)) => samples.push(started.elapsed()),
                Ok(Err(err)) => {
                    return Check::fail(
                        names::LATENCY,
                        explain(&Error::from(err), &self.config().cluster_url.to_string()),
                    )
                }
                Err(after) => return Check::fail(names::LATENCY, timed_out("GET /version", after)),
            }
        }
        samples.sort();
        let median = samples[samples.len() / 2];
        let max = samples[samples.len() - 1];
        Check::ok(
            names::LATENCY,
            format!("median {median:.1?}, max {max:.1?} over {LATENCY_SAMPLES} requests"),
        )
    }

    async fn idle(&self, pod: &stream::Pod, options: &DoctorOptions, server: &str) -> Check {
        match bounded(
            options.idle_limit + options.timeout,
            stream::idle(self, pod, options.idle_limit),
        )
        .await
        {
            Ok(Ok(Idle::Survived(after))) => Check::ok(
                names::IDLE,
                format!("an idle connection stayed open for the probe's {after:.0?}"),
            ),
            Ok(Ok(Idle::Cut(after))) => {
                let advice = (after / 2).max(Duration::from_secs(1));
                Check::fail(
                    names::IDLE,
                    Explanation::new(
                        format!("an idle streaming connection was cut after {after:.1?}"),
                        "a proxy or load balancer on the path closes connections that move no bytes",
                        format!(
                            "keep pings on (podlink pings every 5 s by default; use --ping-interval {} or less), \
                             or raise the proxy's idle timeout",
                            advice.as_secs()
                        ),
                    ),
                )
            }
            Ok(Err(err)) => Check::fail(names::IDLE, explain(&err, server)),
            Err(after) => Check::fail(names::IDLE, timed_out("idle probe", after)),
        }
    }
}

/// Run `future` for at most `limit`; `Err(limit)` when it ran out.
async fn bounded<T>(limit: Duration, future: impl Future<Output = T>) -> Result<T, Duration> {
    tokio::time::timeout(limit, future).await.map_err(|_| limit)
}

fn tls_detail(server: &str) -> &'static str {
    if server.starts_with("https:") {
        "handshake ok, server certificate verified"
    } else {
        "not used (plain http)"
    }
}

/// The checks of one family of protocols: a failure is only a warning when
/// another member works, since podlink falls back to it.
fn family(
    results: [(&'static str, Result<crate::Result<String>, Duration>); 3],
    server: &str,
    limit: Duration,
) -> Vec<Check> {
    let any_ok = results.iter().any(|(_, r)| matches!(r, Ok(Ok(_))));
    results
        .into_iter()
        .map(|(name, result)| match result {
            Ok(Ok(detail)) => Check::ok(name, detail),
            Ok(Err(err)) => {
                let mut explained = explain(&err, server);
                if err.is_upgrade_refusal() {
                    explained.cause = "the server does not offer this protocol (older Kubernetes, a feature gate off, or a proxy that strips upgrades)".into();
                    explained.fix = if any_ok {
                        "nothing to do: podlink falls back to a protocol that works".into()
                    } else {
                        "upgrade the cluster or the proxy in front of it; none of these protocols works".into()
                    };
                }
                let mut check = Check::fail(name, explained);
                if any_ok {
                    check.verdict = Verdict::Warn;
                }
                check
            }
            Err(after) => Check::fail(name, timed_out(name, after.min(limit))),
        })
        .collect()
}

/// The pod for the streaming probes: the one asked for, else the first
/// running one.
fn choose_pod(
    pods: &[Pod],
    options: &DoctorOptions,
    namespace: &str,
) -> Result<stream::Pod, String> {
    let running =
        |pod: &&Pod| pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    let found = match &options.pod {
        Some(name) => pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
            .ok_or_else(|| format!("pod {name:?} not found in namespace {namespace}"))
            .and_then(|p| {
                Some(p)
                    .filter(running)
                    .ok_or_else(|| format!("pod {name:?} is not running"))
            })?,
        None => pods.iter().find(running).ok_or_else(|| {
            format!("no running pod in namespace {namespace} to probe streaming with; name one with --pod")
        })?,
    };
    let port = found
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .find_map(|p| u16::try_from(p.container_port).ok())
        .unwrap_or(DEFAULT_PORT);
    Ok(stream::Pod {
        namespace: namespace.to_owned(),
        name: found.metadata.name.clone().unwrap_or_default(),
        container: options.container.clone(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> crate::Result<String> {
        Err(Error::Upgrade {
            code: 400,
            status: None,
            body: "unsupported protocol".into(),
        })
    }

    #[test]
    fn a_refused_protocol_is_a_warning_only_when_a_sibling_works() {
        let limit = Duration::from_secs(1);
        let checks = family(
            [
                ("a", Ok(refused())),
                ("b", Ok(Ok("fine".into()))),
                ("c", Err(limit)),
            ],
            "https://x",
            limit,
        );
        let verdicts: Vec<_> = checks.iter().map(|c| c.verdict).collect();
        assert_eq!(verdicts, [Verdict::Warn, Verdict::Ok, Verdict::Fail]);
        let fix = &checks[0].explanation.as_ref().unwrap().fix;
        assert!(fix.contains("falls back"), "{fix}");

        let checks = family(
            [
                ("a", Ok(refused())),
                ("b", Ok(refused())),
                ("c", Ok(refused())),
            ],
            "https://x",
            limit,
        );
        assert!(checks.iter().all(|c| c.verdict == Verdict::Fail));
        let fix = &checks[0].explanation.as_ref().unwrap().fix;
        assert!(fix.contains("none of these protocols works"), "{fix}");
    }
}
