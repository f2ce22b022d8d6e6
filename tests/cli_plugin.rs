//! podlink as a kubectl plugin: `kubectl-podlink` on PATH (a link to the
//! podlink binary) answers `kubectl podlink …`, with kubectl's global flags
//! placed after the plugin name, as kubectl requires.

mod exec_support;

use std::process::Command;

use podlink_testkit::TestSandbox;

#[test]
fn kubectl_podlink_exec_works() {
    let sandbox = TestSandbox::start();
    let bin = std::env::temp_dir().join(format!("podlink-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&bin).expect("plugin dir");
    let link = bin.join("kubectl-podlink");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_podlink"), &link).expect("link kubectl-podlink");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubectl = |args: &[&str]| {
        let mut command = Command::new("kubectl");
        command
            .args(args)
            .env("PATH", &path)
            .env("KUBECACHEDIR", sandbox.kube_cache_dir())
            .env_remove("KUBECONFIG");
        exec_support::run(command, None)
    };
    let kc = sandbox.kubeconfig().to_str().expect("utf-8 path");
    kubectl(&["podlink", "--kubeconfig", kc, "exec", "demo", "--", "true"]).code(0);
    let out = kubectl(&[
        "podlink",
        "exec",
        "demo",
        "--kubeconfig",
        kc,
        "-n",
        "default",
        "-v=2",
        "--",
        "sh",
        "-c",
        "echo hi; exit 3",
    ]);
    out.code(3);
    assert_eq!(out.stdout, b"hi\n", "{out:?}");
    let _ = std::fs::remove_dir_all(&bin);
}
