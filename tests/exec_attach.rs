//! `podlink attach` to a running pod's main process: its output arrives,
//! and stopping podlink leaves the process running (detach, as kubectl).

mod exec_support;

use exec_support::{podlink, spawn, DEADLINE};
use podlink_testkit::{wait_until, TestSandbox};

#[test]
fn attach_streams_output_and_detaches_on_sigint() {
    let sandbox = TestSandbox::start();
    sandbox
        .kubectl()
        .args([
            "run",
            "ticker",
            "--image=busybox",
            "--",
            "sh",
            "-c",
            "while true; do echo tick; sleep 0.2; done",
        ])
        .run()
        .success();
    wait_until(DEADLINE, "pod ticker running", || {
        let out = sandbox
            .kubectl()
            .args(["get", "pod", "ticker", "-o", "jsonpath={.status.phase}"])
            .run();
        (out.stdout == "Running").then_some(())
    });
    let session = spawn(
        podlink(Some(sandbox.kubeconfig()), &["attach", "ticker"]),
        None,
    );
    // Wait for output to flow, then stop podlink.
    wait_until(DEADLINE, "tick output", || {
        let main_running = sandbox.processes().iter().any(|p| p.pod == "ticker");
        main_running.then_some(())
    });
    std::thread::sleep(std::time::Duration::from_millis(800));
    session.signal("INT");
    let out = session.finish();
    out.code(130);
    assert!(out.stdout().contains("tick\n"), "{out:?}");
    assert!(
        out.stderr().contains("left the remote process running"),
        "{out:?}"
    );
    assert!(
        sandbox.processes().iter().any(|p| p.pod == "ticker"),
        "the main process keeps running"
    );
}
