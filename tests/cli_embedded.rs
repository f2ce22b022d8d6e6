//! The command line without a cluster: the embedded sandbox stands in, and
//! usage, completion and failure exit statuses follow the contract.

mod exec_support;

use exec_support::{podlink, run};
use podlink_testkit::TestSandbox;

/// No --kubeconfig, no $KUBECONFIG, no ~/.kube/config, not in a pod.
fn without_cluster(args: &[&str]) -> std::process::Command {
    let home = std::env::temp_dir().join(format!("podlink-nohome-{}", std::process::id()));
    std::fs::create_dir_all(&home).expect("temp home");
    let mut command = podlink(None, args);
    command
        .env("HOME", &home)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT");
    command
}

#[test]
fn exec_uses_the_embedded_sandbox_when_nothing_is_configured() {
    let out = run(
        without_cluster(&["exec", "demo", "--", "uname", "-a"]),
        None,
    );
    out.code(0);
    assert!(
        out.stderr()
            .contains("podlink: no cluster configured; using the embedded sandbox"),
        "{out:?}"
    );
    let uname = std::process::Command::new("uname")
        .arg("-a")
        .output()
        .expect("uname");
    assert_eq!(out.stdout, uname.stdout, "{out:?}");
}

#[test]
fn completion_scripts_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(podlink(None, &["completion", shell]), None);
        out.code(0);
        assert!(out.stdout().contains("exec"), "{out:?}");
    }
}

#[test]
fn bad_usage_exits_2_and_own_failures_exit_255() {
    run(podlink(None, &["exec", "demo"]), None).code(2);
    run(podlink(None, &["no-such-command"]), None).code(2);
    let sandbox = TestSandbox::start();
    let out = run(
        podlink(
            Some(sandbox.kubeconfig()),
            &["exec", "nosuchpod", "--", "true"],
        ),
        None,
    );
    out.code(255);
    let stderr = out.stderr();
    assert!(
        stderr.starts_with("podlink: ") && stderr.contains("nosuchpod"),
        "{out:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {out:?}");
}

#[test]
fn an_unreachable_cluster_is_named_in_the_error() {
    // A loopback port that was free a moment ago: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: x\n\
             clusters: [{{name: c, cluster: {{server: \"https://127.0.0.1:{port}\"}}}}]\n\
             contexts: [{{name: x, context: {{cluster: c, user: u}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\n"
        ),
    )
    .expect("kubeconfig");
    for args in [&["get", "pods"][..], &["exec", "demo", "--", "true"]] {
        let out = run(podlink(Some(&kubeconfig), args), None);
        out.code(255);
        let stderr = out.stderr();
        assert!(
            stderr.contains(&format!("https://127.0.0.1:{port}")) && stderr.contains("onnect"),
            "{args:?}: {out:?}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {out:?}");
    }
}
