//! Stopping `podlink exec` with a signal stops the remote process tree too
//! (default --on-cancel terminate), and podlink exits 128 + the signal.
//! kubectl, the reference, leaks the remote process every time: the test
//! prints that comparison.

mod exec_support;

use std::time::Duration;

use exec_support::{host_processes_with, podlink, spawn, KillOnDrop, DEADLINE};
use podlink_sandbox::ProcessKind;
use podlink_testkit::{wait_until, TestSandbox};

fn exec_processes(sandbox: &TestSandbox) -> usize {
    sandbox
        .processes()
        .iter()
        .filter(|p| p.kind == ProcessKind::Exec)
        .count()
}

#[test]
fn sigint_a_hundred_times_leaves_no_exec_process() {
    let sandbox = TestSandbox::start();
    let seconds = 400_000 + (std::process::id() % 50_000);
    // The needle is in the remote sleeps' argv, not in podlink's own.
    let needle = format!("sleep {seconds}");
    let _cleanup = KillOnDrop(needle.clone());
    let script = format!("s={seconds}; sleep $s & sleep $s");
    let protocols = ["websocket", "spdy"];
    // Four at a time, 25 batches: 100 rounds.
    for batch in 0..25 {
        let running: Vec<_> = (0..4)
            .map(|i| {
                let protocol = protocols[(batch + i) % 2];
                let command = podlink(
                    Some(sandbox.kubeconfig()),
                    &[
                        "exec",
                        "--protocol",
                        protocol,
                        "--grace",
                        "0.3",
                        "demo",
                        "--",
                        "sh",
                        "-c",
                        &script,
                    ],
                );
                spawn(command, None)
            })
            .collect();
        wait_until(DEADLINE, "the batch's remote processes", || {
            (host_processes_with(&needle).len() >= 4 * 2).then_some(())
        });
        for session in &running {
            session.signal("INT");
        }
        for session in running {
            let out = session.finish();
            out.code(130);
            assert!(out.stderr.is_empty(), "no error output expected: {out:?}");
        }
        wait_until(
            DEADLINE,
            "the sandbox to see the exec processes end",
            || (exec_processes(&sandbox) == 0).then_some(()),
        );
        assert!(
            host_processes_with(&needle).is_empty(),
            "batch {batch}: orphans left"
        );
    }
    println!("podlink: 100 rounds of SIGINT, 0 exec processes left");

    // The same with kubectl, a few rounds: each leaves its process behind.
    let rounds = 3;
    for _ in 0..rounds {
        let mut child = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(sandbox.kubeconfig())
            .env("KUBECACHEDIR", sandbox.kube_cache_dir())
            .args(["exec", "demo", "--", "sh", "-c", &script])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("kubectl");
        let before = exec_processes(&sandbox);
        wait_until(DEADLINE, "kubectl's remote process", || {
            (exec_processes(&sandbox) > before).then_some(())
        });
        let _ = std::process::Command::new("kill")
            .arg("-INT")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
    }
    std::thread::sleep(Duration::from_millis(500));
    let leaked = exec_processes(&sandbox);
    println!("kubectl: {rounds} rounds of SIGINT, {leaked} exec processes left running");
}

#[test]
fn sigterm_and_sighup_map_to_143_and_129() {
    let sandbox = TestSandbox::start();
    let seconds = 450_000 + (std::process::id() % 50_000);
    let needle = format!("sleep {seconds}");
    let _cleanup = KillOnDrop(needle.clone());
    let script = format!("s={seconds}; sleep $s");
    for (signal, code) in [("TERM", 143), ("HUP", 129)] {
        let session = spawn(
            podlink(
                Some(sandbox.kubeconfig()),
                &["exec", "--grace", "0.3", "demo", "--", "sh", "-c", &script],
            ),
            None,
        );
        wait_until(DEADLINE, "the remote process", || {
            (!host_processes_with(&needle).is_empty()).then_some(())
        });
        session.signal(signal);
        session.finish().code(code);
        wait_until(DEADLINE, "the remote process to end", || {
            host_processes_with(&needle).is_empty().then_some(())
        });
    }
    // detach leaves it running and says so.
    let session = spawn(
        podlink(
            Some(sandbox.kubeconfig()),
            &[
                "exec",
                "--on-cancel",
                "detach",
                "demo",
                "--",
                "sh",
                "-c",
                &script,
            ],
        ),
        None,
    );
    wait_until(DEADLINE, "the remote process", || {
        (!host_processes_with(&needle).is_empty()).then_some(())
    });
    session.signal("INT");
    let out = session.finish();
    out.code(130);
    assert!(
        out.stderr().contains("left the remote process running"),
        "{out:?}"
    );
    assert!(
        !host_processes_with(&needle).is_empty(),
        "detach must not stop it"
    );
}
