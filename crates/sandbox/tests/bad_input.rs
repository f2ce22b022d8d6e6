//! Bad requests get the Status a real apiserver sends, and the server keeps
//! serving.

use podlink_sandbox::SandboxConfig;
use podlink_testkit::{CmdOutput, TestSandbox};

fn post(sb: &TestSandbox, path: &str, body: impl Into<Vec<u8>>) -> CmdOutput {
    sb.kubectl()
        .args(["create", "--raw", path, "-f", "-"])
        .stdin(body)
        .run()
}

const PODS: &str = "/api/v1/namespaces/default/pods";

#[test]
fn malformed_and_wrong_bodies_are_rejected() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_demo(false));
    post(&sb, PODS, "{not json")
        .failure()
        .stderr_contains("BadRequest");
    post(&sb, PODS, "[1,2]")
        .failure()
        .stderr_contains("BadRequest");
    post(
        &sb,
        PODS,
        r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"x"}}"#,
    )
    .failure()
    .stderr_contains("BadRequest");
    let invalid_name = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"Bad_Name"},"spec":{"containers":[{"name":"c","image":"x"}]}}"#;
    post(&sb, PODS, invalid_name)
        .failure()
        .stderr_contains("Invalid")
        .stderr_contains("RFC 1123");
    let no_containers = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"empty"},"spec":{}}"#;
    post(&sb, PODS, no_containers)
        .failure()
        .stderr_contains("spec.containers");
    let unknown_field = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"u"},"spec":{"bogus":1,"containers":[{"name":"c","image":"x"}]}}"#;
    post(
        &sb,
        &format!("{PODS}?fieldValidation=Strict"),
        unknown_field,
    )
    .failure()
    .stderr_contains("strict decoding error")
    .stderr_contains("spec.bogus");
    let huge = format!(
        r#"{{"kind":"Pod","metadata":{{"name":"big","annotations":{{"a":"{}"}}}}}}"#,
        "x".repeat(4 << 20)
    );
    post(&sb, PODS, huge)
        .failure()
        .stderr_contains("RequestEntityTooLarge");
    post(&sb, "/api/v1/namespaces/nowhere/pods", no_containers)
        .failure()
        .stderr_contains("NotFound");

    let ok = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"fine"},"spec":{"containers":[{"name":"c","image":"x","command":["sleep","60"]}]}}"#;
    post(&sb, PODS, ok).success();
    post(&sb, PODS, ok)
        .failure()
        .stderr_contains("AlreadyExists");
    sb.kubectl().args(["get", "pod", "fine"]).run().success();
}

#[test]
fn unknown_paths_and_bad_queries_are_rejected() {
    let sb = TestSandbox::start();
    let get = |path: &str| sb.kubectl().args(["get", "--raw", path]).run();
    get("/api/v1/namespaces/default/widgets")
        .failure()
        .stderr_contains("NotFound");
    get("/apis/nope/v1/things")
        .failure()
        .stderr_contains("NotFound");
    get("/api/v1/namespaces/default/pods?labelSelector=a+in+%28b")
        .failure()
        .stderr_contains("BadRequest");
    get("/api/v1/namespaces/default/pods?limit=abc")
        .failure()
        .stderr_contains("BadRequest");
    get("/api/v1/namespaces/default/pods?continue=garbage")
        .failure()
        .stderr_contains("BadRequest");
    get("/api/v1/namespaces/default/pods/missing")
        .failure()
        .stderr_contains("NotFound");
    get("/api/v1/namespaces/default/pods/demo/log?container=nope")
        .failure()
        .stderr_contains("BadRequest");
    sb.kubectl()
        .args(["get", "pods"])
        .run()
        .success()
        .stdout_contains("demo");
}
