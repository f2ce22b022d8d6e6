//! kubectl run / apply / delete / logs: pods are processes.

use std::time::Duration;

use podlink_sandbox::{ProcessKind, SandboxConfig};
use podlink_testkit::{wait_until, TestSandbox};

fn phase(sb: &TestSandbox, pod: &str) -> String {
    sb.kubectl()
        .args(["get", "pod", pod, "-o", "jsonpath={.status.phase}"])
        .run()
        .stdout
}

fn wait_phase(sb: &TestSandbox, pod: &str, want: &str) {
    wait_until(
        Duration::from_secs(30),
        &format!("pod {pod} {want}"),
        || (phase(sb, pod) == want).then_some(()),
    );
}

#[test]
fn run_starts_a_process_and_logs_show_its_output() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_demo(false));
    sb.kubectl()
        .args([
            "run",
            "hello",
            "--image=busybox",
            "--restart=Never",
            "--",
            "sh",
            "-c",
            "echo one; echo two; echo three",
        ])
        .run()
        .success()
        .stdout_contains("pod/hello created");
    wait_phase(&sb, "hello", "Succeeded");
    let logs = sb.kubectl().args(["logs", "hello"]).run();
    logs.success();
    assert_eq!(logs.stdout, "one\ntwo\nthree\n", "{logs}");
    let tail = sb
        .kubectl()
        .args(["logs", "hello", "--tail=1", "-c", "hello"])
        .run();
    assert_eq!(tail.success().stdout, "three\n", "{tail}");
    let pod = sb
        .kubectl()
        .args(["get", "pod", "hello", "-o", "json"])
        .run()
        .success()
        .json();
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 0,
        "{pod}"
    );
}

#[test]
fn failing_container_reports_exit_code_and_restart_policy() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_demo(false));
    sb.kubectl()
        .args([
            "run",
            "fails",
            "--image=x",
            "--restart=Never",
            "--",
            "sh",
            "-c",
            "exit 3",
        ])
        .run()
        .success();
    wait_phase(&sb, "fails", "Failed");
    let pod = sb
        .kubectl()
        .args(["get", "pod", "fails", "-o", "json"])
        .run()
        .success()
        .json();
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 3,
        "{pod}"
    );

    sb.kubectl()
        .args([
            "run",
            "again",
            "--image=x",
            "--restart=Always",
            "--",
            "sh",
            "-c",
            "exit 1",
        ])
        .run()
        .success();
    wait_until(Duration::from_secs(30), "a restart", || {
        let pod = sb
            .kubectl()
            .args(["get", "pod", "again", "-o", "json"])
            .run()
            .json();
        (pod["status"]["containerStatuses"][0]["restartCount"]
            .as_u64()
            .unwrap_or(0)
            >= 1)
            .then_some(())
    });
}

#[test]
fn logs_follow_streams_new_output() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_demo(false));
    sb.kubectl()
        .args([
            "run",
            "ticker",
            "--image=x",
            "--restart=Never",
            "--",
            "sh",
            "-c",
            "for i in 1 2 3; do echo tick $i; sleep 0.3; done",
        ])
        .run()
        .success();
    wait_until(Duration::from_secs(20), "ticker started", || {
        (phase(&sb, "ticker") != "Pending").then_some(())
    });
    let follow = sb.kubectl().args(["logs", "-f", "ticker"]).spawn();
    let done = follow.wait(Duration::from_secs(30));
    done.success();
    assert_eq!(done.stdout, "tick 1\ntick 2\ntick 3\n", "{done}");
}

#[test]
fn apply_creates_then_patches() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_demo(false));
    let manifest = |label: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"applied","labels":{{"tier":"{label}"}}}},
            "spec":{{"containers":[{{"name":"c","image":"x","command":["sleep","600"]}}]}}}}"#
        )
    };
    sb.kubectl()
        .args(["apply", "-f", "-"])
        .stdin(manifest("one"))
        .run()
        .success()
        .stdout_contains("pod/applied created");
    sb.kubectl()
        .args(["apply", "-f", "-"])
        .stdin(manifest("two"))
        .run()
        .success()
        .stdout_contains("pod/applied configured");
    let pod = sb
        .kubectl()
        .args(["get", "pod", "applied", "-o", "json"])
        .run()
        .success()
        .json();
    assert_eq!(pod["metadata"]["labels"]["tier"], "two", "{pod}");
    assert!(
        pod["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    sb.kubectl()
        .args(["label", "pod", "applied", "extra=yes"])
        .run()
        .success();
    sb.kubectl()
        .args(["get", "pods", "-l", "extra=yes", "-o", "name"])
        .run()
        .success()
        .stdout_contains("pod/applied");
}

#[test]
fn delete_waits_for_the_process_to_end() {
    let sb = TestSandbox::start();
    wait_phase(&sb, "demo", "Running");
    let main = sb
        .processes()
        .into_iter()
        .find(|p| p.pod == "demo" && p.kind == ProcessKind::Main)
        .expect("demo process");
    sb.kubectl()
        .args(["delete", "pod", "demo"])
        .run()
        .success()
        .stdout_contains("pod \"demo\" deleted");
    // kubectl delete waited for the DELETED event, so the process is gone.
    assert!(
        sb.processes().iter().all(|p| p.pid != main.pid),
        "{:?}",
        sb.processes()
    );
    sb.kubectl()
        .args(["get", "pod", "demo"])
        .run()
        .failure()
        .stderr_contains("NotFound");
    assert!(
        !std::path::Path::new(&format!("/proc/{}", main.pid)).exists(),
        "process {} still alive",
        main.pid
    );
}

#[test]
fn shutdown_kills_every_process_group() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_demo(false));
    // The grandchild stays in the container's process group.
    sb.kubectl()
        .args([
            "run",
            "tree",
            "--image=x",
            "--",
            "sh",
            "-c",
            "sleep 600 & sleep 600",
        ])
        .run()
        .success();
    wait_phase(&sb, "tree", "Running");
    let pid = wait_until(Duration::from_secs(10), "main process", || {
        sb.processes().first().map(|p| p.pid)
    });
    sb.stop();
    let alive = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            // Fields after the command: state, ppid, pgrp. Zombies are dead.
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let fields: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            fields.first() != Some(&"Z")
                && fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pid)
        })
        .count();
    assert_eq!(alive, 0, "processes of group {pid} survived shutdown");
}

#[test]
fn pods_get_their_own_network_namespace() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_demo(false));
    if !sb.sandbox().uses_network_namespaces() {
        eprintln!("not root: pods share the host network; nothing to check");
        return;
    }
    for name in ["web-a", "web-b"] {
        sb.kubectl()
            .args([
                "run",
                name,
                "--image=x",
                "--restart=Never",
                "--",
                "python3",
                "-u",
                "-m",
                "http.server",
                "8080",
                "--bind",
                "127.0.0.1",
            ])
            .run()
            .success();
    }
    // Both bound 127.0.0.1:8080: each has its own loopback.
    for name in ["web-a", "web-b"] {
        wait_until(Duration::from_secs(30), &format!("{name} serving"), || {
            let logs = sb.kubectl().args(["logs", name]).run();
            logs.stdout.contains("Serving HTTP").then_some(())
        });
        assert_eq!(phase(&sb, name), "Running");
    }
}

#[test]
fn tty_containers_run_on_a_terminal() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_demo(false));
    let pod = |name: &str, tty: bool| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"restartPolicy":"Never",
            "containers":[{{"name":"c","image":"x","tty":{tty},"command":["sh","-c","if [ -t 1 ]; then echo terminal; else echo pipe; fi"]}}]}}}}"#
        )
    };
    sb.kubectl()
        .args(["apply", "-f", "-"])
        .stdin(pod("with-tty", true))
        .run()
        .success();
    sb.kubectl()
        .args(["apply", "-f", "-"])
        .stdin(pod("without", false))
        .run()
        .success();
    wait_phase(&sb, "with-tty", "Succeeded");
    wait_phase(&sb, "without", "Succeeded");
    // The terminal's line discipline turns \n into \r\n.
    assert_eq!(
        sb.kubectl()
            .args(["logs", "with-tty"])
            .run()
            .success()
            .stdout,
        "terminal\r\n"
    );
    assert_eq!(
        sb.kubectl()
            .args(["logs", "without"])
            .run()
            .success()
            .stdout,
        "pipe\n"
    );
}

#[test]
fn run_interactive_waits_for_ready_and_removes_the_pod() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_demo(false));
    let out = sb
        .kubectl()
        .args([
            "run",
            "once",
            "-i",
            "--rm",
            "--restart=Never",
            "--image=x",
            "--",
            "cat",
        ])
        .stdin("through stdin\n")
        .run();
    out.success().stdout_contains("through stdin");
    sb.kubectl()
        .args(["get", "pod", "once"])
        .run()
        .failure()
        .stderr_contains("NotFound");
}
