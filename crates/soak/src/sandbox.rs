//! The test hooks of the sandbox under soak (`/sandbox/v1/processes`,
//! `/sandbox/v1/faults`), reached with its token. The sandbox itself is a
//! separate `podlink sandbox` process ([`podlink_testkit::podlink`]), so
//! that this process's memory is the client library's alone.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;

/// Bound on one hook request.
const HOOK_DEADLINE: Duration = Duration::from_secs(10);

/// One entry of `GET /sandbox/v1/processes`.
#[derive(Debug, Clone, Deserialize)]
pub struct RemoteProcess {
    /// The pod.
    pub pod: String,
    /// Its host process id (sandbox pods are host processes).
    pub pid: u32,
    /// `main`, `exec` or `attach`.
    pub kind: String,
    /// Its argv.
    #[serde(default)]
    pub command: Vec<String>,
}

#[derive(Deserialize)]
struct ProcessList {
    items: Vec<RemoteProcess>,
}

/// The sandbox's test hooks, over the client's own connection and token.
#[derive(Clone)]
pub struct Hooks {
    kube: kube::Client,
}

impl Hooks {
    /// Hooks reached through `kube`.
    pub fn new(kube: kube::Client) -> Self {
        Self { kube }
    }

    /// Every live process the sandbox started.
    pub async fn processes(&self) -> Result<Vec<RemoteProcess>> {
        let request = http::Request::get("/sandbox/v1/processes").body(Vec::new())?;
        let text = tokio::time::timeout(HOOK_DEADLINE, self.kube.request_text(request))
            .await
            .map_err(|_| anyhow!("GET /sandbox/v1/processes took over {HOOK_DEADLINE:?}"))??;
        let list: ProcessList =
            serde_json::from_str(&text).context("decoding /sandbox/v1/processes")?;
        Ok(list.items)
    }

    /// Posts one fault (the JSON object of CONTRACT.md), retrying a few
    /// times: a fault just injected may have cut the connection we use.
    pub async fn fault(&self, fault: &serde_json::Value) -> Result<()> {
        let body = serde_json::to_vec(fault)?;
        let mut last = None;
        for _ in 0..5 {
            let request = http::Request::post("/sandbox/v1/faults")
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone())?;
            match tokio::time::timeout(HOOK_DEADLINE, self.kube.request_text(request)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(err)) => last = Some(anyhow!(err)),
                Err(_) => last = Some(anyhow!("no answer within {HOOK_DEADLINE:?}")),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(last
            .unwrap_or_else(|| anyhow!("no attempt made"))
            .context(format!("POST /sandbox/v1/faults {fault}")))
    }
}
