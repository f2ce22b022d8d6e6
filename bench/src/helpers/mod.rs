//! Roles the harness plays when it re-executes itself: servers inside
//! sandbox pods, and library clients measured in a process of their own.

mod kube_exec;
mod lib_idle;
mod lib_watch;
mod pf_load;
pub mod pod_server;

use crate::args::Helper;

/// Runs one helper role to its end.
pub async fn run(helper: Helper) -> anyhow::Result<()> {
    match helper {
        Helper::PodServer {
            bulk_port,
            http_port,
        } => pod_server::serve(bulk_port, http_port).await,
        Helper::PfLoad {
            port,
            bulk_bytes,
            requests,
            connections,
        } => pf_load::run(port, bulk_bytes, requests, connections).await,
        Helper::RawServer { cert, key } => crate::raw::serve(cert, key).await,
        Helper::KubeExec { mode, pod, bytes } => kube_exec::run(mode, &pod, bytes).await,
        Helper::LibWatch {
            library,
            namespace,
            expect_deletes,
            typed,
        } => lib_watch::run(library, &namespace, expect_deletes, typed).await,
        Helper::LibIdle {
            library,
            sessions,
            pod,
        } => lib_idle::run(library, sessions, &pod).await,
    }
}
