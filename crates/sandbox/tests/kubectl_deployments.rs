//! Deployments: the controller keeps replicas, `kubectl scale` uses the
//! scale subresource, a deleted pod is replaced.

use std::time::Duration;

use podlink_sandbox::SandboxConfig;
use podlink_testkit::{wait_until, TestSandbox};

const DEPLOYMENT: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"x","command":["sleep","600"]}]}}}}"#;

fn pod_names(sb: &TestSandbox) -> Vec<String> {
    let list = sb
        .kubectl()
        .args(["get", "pods", "-l", "app=web", "-o", "json"])
        .run()
        .json();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

fn wait_pods(sb: &TestSandbox, n: usize) -> Vec<String> {
    wait_until(Duration::from_secs(30), &format!("{n} web pods"), || {
        let names = pod_names(sb);
        (names.len() == n).then_some(names)
    })
}

#[test]
fn scale_and_replace_pods() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_demo(false));
    sb.kubectl()
        .args(["apply", "-f", "-"])
        .stdin(DEPLOYMENT)
        .run()
        .success()
        .stdout_contains("deployment.apps/web created");
    let names = wait_pods(&sb, 2);
    sb.kubectl()
        .args(["rollout", "status", "deploy/web", "--timeout=60s"])
        .run()
        .success()
        .stdout_contains("successfully rolled out");
    wait_until(Duration::from_secs(30), "deployment ready 2/2", || {
        let out = sb.kubectl().args(["get", "deploy", "web"]).run();
        out.stdout.contains("2/2").then_some(())
    });

    sb.kubectl()
        .args(["scale", "deploy", "web", "--replicas=3"])
        .run()
        .success()
        .stdout_contains("scaled");
    wait_pods(&sb, 3);
    sb.kubectl()
        .args(["scale", "deployment/web", "--replicas=1"])
        .run()
        .success();
    let remaining = wait_pods(&sb, 1);

    // Deleting the pod makes the controller create a new one.
    sb.kubectl()
        .args(["delete", "pod", &remaining[0]])
        .run()
        .success();
    let replaced = wait_pods(&sb, 1);
    assert_ne!(replaced[0], remaining[0]);
    assert!(!names.contains(&replaced[0]));

    // Deleting the deployment removes its pods.
    sb.kubectl()
        .args(["delete", "deploy", "web"])
        .run()
        .success();
    wait_pods(&sb, 0);
}
