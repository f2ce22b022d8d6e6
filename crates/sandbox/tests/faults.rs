//! The test hooks: /sandbox/v1/processes and /sandbox/v1/faults, and the
//! connection faults on watch connections.

use std::time::Duration;

use podlink_sandbox::Fault;
use podlink_testkit::{wait_until, TestSandbox};

fn fault(sb: &TestSandbox, body: &str) {
    sb.kubectl()
        .args(["create", "--raw", "/sandbox/v1/faults", "-f", "-"])
        .stdin(body)
        .run()
        .success();
}

fn rv(sb: &TestSandbox) -> String {
    let list = sb
        .kubectl()
        .args(["get", "--raw", "/api/v1/namespaces/default/pods"])
        .run()
        .success()
        .json();
    list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn processes_endpoint_lists_container_processes() {
    let sb = TestSandbox::start();
    let procs = wait_until(Duration::from_secs(20), "demo main process", || {
        let out = sb
            .kubectl()
            .args(["get", "--raw", "/sandbox/v1/processes"])
            .run()
            .success()
            .json();
        let items = out["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    });
    assert_eq!(procs[0]["pod"], "demo");
    assert_eq!(procs[0]["container"], "main");
    assert_eq!(procs[0]["kind"], "main");
    assert!(procs[0]["pid"].as_u64().is_some_and(|p| p > 1));
    assert_eq!(procs[0]["command"][0], "sh");
}

#[test]
fn faults_endpoint_validates_input() {
    let sb = TestSandbox::start();
    let bad = |body: &str| {
        sb.kubectl()
            .args(["create", "--raw", "/sandbox/v1/faults", "-f", "-"])
            .stdin(body)
            .run()
    };
    bad(r#"{"kind":"explode"}"#)
        .failure()
        .stderr_contains("BadRequest");
    bad(r#"{"kind":"blackhole","seconds":-1}"#).failure();
    bad(r#"{"kind":"watch-error","code":200,"count":1}"#).failure();
    fault(&sb, r#"{"kind":"compact"}"#);
}

#[test]
fn blackhole_holds_watch_bytes_until_it_ends() {
    let sb = TestSandbox::start();
    let path = format!(
        "/api/v1/namespaces/default/pods?watch=1&resourceVersion={}",
        rv(&sb)
    );
    let watch = sb.kubectl().args(["get", "--raw", &path]).spawn();
    // The watch connection is established once a first event went through.
    sb.kubectl()
        .args(["label", "pod", "demo", "step=one"])
        .run()
        .success();
    watch.wait_stdout(Duration::from_secs(20), "first label event", |s| {
        s.contains("\"step\":\"one\"")
    });
    fault(&sb, r#"{"kind":"blackhole","seconds":3}"#);
    sb.kubectl()
        .args(["label", "pod", "demo", "step=two", "--overwrite"])
        .run()
        .success();
    // Plain API calls still work during the blackhole (the label went in),
    // but the watch holds the event until the blackhole ends.
    assert!(
        !watch.stdout().contains("\"step\":\"two\""),
        "event crossed the blackhole"
    );
    watch.wait_stdout(Duration::from_secs(20), "event after blackhole", |s| {
        s.contains("\"step\":\"two\"")
    });
    watch.stop();
}

#[test]
fn idle_timeout_cuts_quiet_watches_and_can_be_turned_off() {
    let sb = TestSandbox::start();
    sb.fault(Fault::IdleTimeout { seconds: 1.0 });
    let path = format!(
        "/api/v1/namespaces/default/pods?watch=1&resourceVersion={}",
        rv(&sb)
    );
    let quiet = sb.kubectl().args(["get", "--raw", &path]).spawn();
    let out = quiet.wait(Duration::from_secs(20));
    out.failure();
    fault(&sb, r#"{"kind":"idle-timeout","seconds":0}"#);
    let path = format!(
        "/api/v1/namespaces/default/pods?watch=1&resourceVersion={}&timeoutSeconds=2",
        rv(&sb)
    );
    sb.kubectl().args(["get", "--raw", &path]).run().success();
}

#[test]
fn drop_connections_spares_plain_requests() {
    let sb = TestSandbox::start();
    let path = format!(
        "/api/v1/namespaces/default/pods?watch=1&resourceVersion={}",
        rv(&sb)
    );
    let watch = sb.kubectl().args(["get", "--raw", &path]).spawn();
    sb.kubectl()
        .args(["label", "pod", "demo", "x=1"])
        .run()
        .success();
    watch.wait_stdout(Duration::from_secs(20), "label event", |s| {
        s.contains("\"x\":\"1\"")
    });
    fault(&sb, r#"{"kind":"drop-connections"}"#);
    watch.wait(Duration::from_secs(20)).failure();
    sb.kubectl()
        .args(["get", "pods"])
        .run()
        .success()
        .stdout_contains("demo");
}
