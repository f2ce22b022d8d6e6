//! Cancellation that really stops the remote process, keepalive through an
//! idle-cutting path, and a silent peer detected within the pong deadline.

mod exec_support;

use std::time::{Duration, Instant};

use exec_support::{client, host_processes_with, KillOnDrop, DEADLINE, PROTOCOLS};
use podlink_client::exec::{CancelPolicy, Cancelled, ExecRequest, ExitStatus};
use podlink_client::{Error, KeepAlive};
use podlink_sandbox::{Fault, ProcessKind};
use podlink_testkit::{wait_until, TestSandbox};

fn exec_processes(sandbox: &TestSandbox) -> usize {
    sandbox
        .processes()
        .iter()
        .filter(|p| p.kind == ProcessKind::Exec)
        .count()
}

/// 100 sessions of `sh -c 'sleep N & sleep N'`, each cancelled by dropping
/// the handle (default policy: terminate). Afterwards no exec process is
/// left, neither in the sandbox's registry nor orphaned on the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_stops_the_whole_tree() {
    let sandbox = TestSandbox::start();
    let client = client(&sandbox).await;
    let seconds = 100_000 + u32::from(std::process::id() as u16);
    let needle = format!("sleep {seconds}");
    let _cleanup = KillOnDrop(needle.clone());
    let script = format!("{needle} & {needle}");
    for batch in 0..10 {
        let mut handles = Vec::new();
        for i in 0..10 {
            let request = ExecRequest::new("demo", ["sh", "-c", &script])
                .with_protocol(PROTOCOLS[(batch + i) % 2])
                .with_grace(Duration::from_millis(200));
            handles.push(client.exec(request).await.expect("start"));
        }
        wait_until(DEADLINE, "the batch's processes to start", || {
            (host_processes_with(&needle).len() >= 20).then_some(())
        });
        drop(handles);
        wait_until(DEADLINE, "the dropped sessions to be cleaned up", || {
            (exec_processes(&sandbox) == 0 && host_processes_with(&needle).is_empty()).then_some(())
        });
    }
    assert_eq!(exec_processes(&sandbox), 0);
    assert!(host_processes_with(&needle).is_empty());
    println!("100 dropped sessions: 0 exec processes left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_policies_report_what_happened() {
    let sandbox = TestSandbox::start();
    let client = client(&sandbox).await;
    let needle = format!("sleep {}", 200_000 + u32::from(std::process::id() as u16));
    let _cleanup = KillOnDrop(needle.clone());
    let script = format!("{needle} & {needle}");
    for protocol in PROTOCOLS {
        for policy in [CancelPolicy::Terminate, CancelPolicy::Kill] {
            let request = ExecRequest::new("demo", ["sh", "-c", &script])
                .with_protocol(protocol)
                .with_grace(Duration::from_millis(200));
            let exec = client.exec(request).await.expect("start");
            wait_until(DEADLINE, "start", || {
                (host_processes_with(&needle).len() >= 2).then_some(())
            });
            let outcome = exec.cancel(policy).await.expect("cancel");
            assert!(
                matches!(outcome, Cancelled::Ended(_)),
                "{protocol:?} {policy:?}: {outcome:?}"
            );
            wait_until(DEADLINE, "the tree to be gone", || {
                host_processes_with(&needle).is_empty().then_some(())
            });
        }
        // Detach leaves it running, and says so.
        let request = ExecRequest::new("demo", ["sh", "-c", &script]).with_protocol(protocol);
        let exec = client.exec(request).await.expect("start");
        wait_until(DEADLINE, "start", || {
            (host_processes_with(&needle).len() >= 2).then_some(())
        });
        assert_eq!(
            exec.cancel(CancelPolicy::Detach).await.expect("cancel"),
            Cancelled::Detached
        );
        assert!(
            host_processes_with(&needle).len() >= 2,
            "detach must leave the process running"
        );
        drop(KillOnDrop(needle.clone()));
    }
}

/// A path that cuts connections idle for 3 s: a 10 s silent command
/// survives because pings keep the connection busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_cut_is_survived_by_pings() {
    let sandbox = TestSandbox::start();
    sandbox.fault(Fault::IdleTimeout { seconds: 3.0 });
    let client = client(&sandbox).await;
    for protocol in PROTOCOLS {
        let request = ExecRequest::new("demo", ["sh", "-c", "sleep 10; echo done"])
            .with_protocol(protocol)
            .with_keepalive(KeepAlive::new(
                Duration::from_secs(1),
                Duration::from_secs(5),
            ));
        let out = tokio::time::timeout(DEADLINE, client.run(request))
            .await
            .expect("bounded")
            .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        assert_eq!(out.status, ExitStatus::Success, "{protocol:?}");
        assert_eq!(out.stdout, b"done\n");
    }
}

/// A peer that goes silent (blackhole) is detected by the pong deadline
/// with a clear error, never a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_is_detected() {
    let sandbox = TestSandbox::start();
    let client = client(&sandbox).await;
    let needle = format!("sleep {}", 300_000 + u32::from(std::process::id() as u16));
    let _cleanup = KillOnDrop(needle.clone());
    for protocol in PROTOCOLS {
        let request = ExecRequest::new("demo", ["sh", "-c", &needle])
            .with_protocol(protocol)
            .with_keepalive(KeepAlive::new(
                Duration::from_secs(1),
                Duration::from_secs(3),
            ))
            .with_on_cancel(CancelPolicy::Kill);
        let mut exec = client.exec(request).await.expect("start");
        wait_until(DEADLINE, "start", || {
            (!host_processes_with(&needle).is_empty()).then_some(())
        });
        sandbox.fault(Fault::Blackhole { seconds: 30.0 });
        let started = Instant::now();
        let err = tokio::time::timeout(DEADLINE, exec.wait())
            .await
            .expect("the dead peer must be noticed, not waited on forever")
            .expect_err("a blackholed session cannot succeed");
        assert!(matches!(err, Error::PeerDead(_)), "{protocol:?}: {err}");
        println!(
            "{protocol:?}: dead peer detected after {:?}: {err}",
            started.elapsed()
        );
        sandbox.fault(Fault::Blackhole { seconds: 0.0 });
        drop(KillOnDrop(needle.clone()));
    }
}

/// With `DisconnectPolicy::Terminate`, a lost connection is reported and
/// the remote tree is stopped over a new connection; with the default
/// (detach) the process keeps running, as on a real node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connection_terminates_only_when_asked() {
    use podlink_client::exec::DisconnectPolicy;
    let sandbox = TestSandbox::start();
    let client = client(&sandbox).await;
    let seconds = 500_000 + u32::from(std::process::id() as u16);
    let needle = format!("sleep {seconds}");
    let _cleanup = KillOnDrop(needle.clone());
    for (policy, survives) in [
        (DisconnectPolicy::Terminate, false),
        (DisconnectPolicy::Detach, true),
    ] {
        let request = ExecRequest::new("demo", ["sh", "-c", &format!("{needle} & {needle}")])
            .with_on_disconnect(policy)
            .with_grace(Duration::from_millis(200));
        let mut exec = client.exec(request).await.expect("start");
        wait_until(DEADLINE, "start", || {
            (host_processes_with(&needle).len() >= 2).then_some(())
        });
        sandbox.fault(Fault::DropConnections);
        let err = tokio::time::timeout(DEADLINE, exec.wait())
            .await
            .expect("a dropped connection is noticed")
            .expect_err("a dropped session has no status");
        assert!(
            matches!(err, Error::ConnectionLost(_) | Error::WebSocket(_)),
            "{policy:?}: {err}"
        );
        if survives {
            assert!(
                !host_processes_with(&needle).is_empty(),
                "detach keeps the process"
            );
        } else {
            wait_until(DEADLINE, "the tree to be stopped", || {
                host_processes_with(&needle).is_empty().then_some(())
            });
        }
        drop(KillOnDrop(needle.clone()));
    }
}
