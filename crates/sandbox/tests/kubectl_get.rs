//! kubectl get against the sandbox: tables, -o json/yaml/wide, discovery,
//! selectors, and authentication.

use std::time::Duration;

use podlink_sandbox::SandboxConfig;
use podlink_testkit::TestSandbox;

fn demo_running(sb: &TestSandbox) {
    sb.wait_pod_ready("demo", Duration::from_secs(20));
}

#[test]
fn get_pods_prints_kubectl_columns() {
    let sb = TestSandbox::start();
    demo_running(&sb);
    let out = sb.kubectl().args(["get", "pods"]).run();
    out.success();
    let header: Vec<&str> = out
        .stdout
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{out}"
    );
    let row: Vec<&str> = out
        .stdout
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..4], ["demo", "1/1", "Running", "0"], "{out}");

    let wide = sb.kubectl().args(["get", "pods", "-o", "wide"]).run();
    wide.success();
    for column in ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"] {
        wide.stdout_contains(column);
    }
    wide.stdout_contains("127.0.0.1").stdout_contains("sandbox");
}

#[test]
fn get_json_and_yaml_carry_the_object() {
    let sb = TestSandbox::start();
    demo_running(&sb);
    let pod = sb
        .kubectl()
        .args(["get", "pod", "demo", "-o", "json"])
        .run()
        .success()
        .json();
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["spec"]["containers"][0]["name"], "main");
    assert!(pod["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|rv| rv.parse::<u64>().is_ok()));
    let ready = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(ready, "{pod}");

    let list = sb
        .kubectl()
        .args(["get", "pods", "-o", "json"])
        .run()
        .success()
        .json();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["metadata"]["name"], "demo");

    sb.kubectl()
        .args(["get", "pod", "demo", "-o", "yaml"])
        .run()
        .success()
        .stdout_contains("name: main");
    sb.kubectl()
        .args(["get", "pods", "-o", "name"])
        .run()
        .success()
        .stdout_contains("pod/demo");
}

#[test]
fn short_names_and_other_resources_resolve() {
    let sb = TestSandbox::start();
    let ns = sb.kubectl().args(["get", "ns"]).run();
    ns.success()
        .stdout_contains("default")
        .stdout_contains("kube-system")
        .stdout_contains("Active");
    sb.kubectl()
        .args(["get", "po", "demo"])
        .run()
        .success()
        .stdout_contains("demo");
    sb.kubectl().args(["get", "svc,deploy"]).run().success();
    sb.kubectl()
        .args(["api-resources"])
        .run()
        .success()
        .stdout_contains("deployments")
        .stdout_contains("deploy");
}

#[test]
fn selectors_filter_lists() {
    let sb = TestSandbox::start();
    sb.kubectl()
        .args(["get", "pods", "-l", "app=demo", "-o", "name"])
        .run()
        .success()
        .stdout_contains("pod/demo");
    let none = sb
        .kubectl()
        .args(["get", "pods", "-l", "app=other", "-o", "name"])
        .run();
    none.success();
    assert!(none.stdout.trim().is_empty(), "{none}");
    let by_name = sb
        .kubectl()
        .args([
            "get",
            "pods",
            "--field-selector",
            "metadata.name=demo",
            "-o",
            "name",
        ])
        .run();
    by_name.success().stdout_contains("pod/demo");
    let bad = sb
        .kubectl()
        .args(["get", "pods", "--field-selector", "spec.bogus=1"])
        .run();
    bad.failure().stderr_contains("field label not supported");
}

#[test]
fn requests_without_the_token_get_401() {
    let sb = TestSandbox::start();
    let out = sb
        .kubectl()
        .args(["--token", "not-the-token", "get", "pods"])
        .run();
    out.failure()
        .stderr_contains("You must be logged in to the server");
}

#[test]
fn version_is_configurable_and_older_kubectl_discovers() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_kube_version("1.28"));
    let v = sb
        .kubectl()
        .args(["version", "-o", "json"])
        .run()
        .success()
        .json();
    assert_eq!(v["serverVersion"]["minor"], "28", "{v}");
    // kubectl 1.28 asks only for v2beta1 aggregated discovery.
    let out = sb.kubectl().version("1.28").args(["get", "pods"]).run();
    out.success().stdout_contains("demo");
}

#[test]
fn describe_wait_and_get_all_work() {
    let sb = TestSandbox::start();
    demo_running(&sb);
    sb.kubectl()
        .args(["wait", "--for=condition=Ready", "pod/demo", "--timeout=30s"])
        .run()
        .success()
        .stdout_contains("condition met");
    let out = sb.kubectl().args(["describe", "pod", "demo"]).run();
    out.success()
        .stdout_contains("Name:")
        .stdout_contains("demo")
        .stdout_contains("Running");
    sb.kubectl()
        .args(["get", "all"])
        .run()
        .success()
        .stdout_contains("pod/demo");
}
