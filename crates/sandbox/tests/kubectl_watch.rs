//! Watches: kubectl get -w, resumption from a resourceVersion after
//! drop-connections, 410 after compaction, bookmarks and streaming lists.

use std::time::Duration;

use podlink_sandbox::{Fault, SandboxConfig};
use podlink_testkit::TestSandbox;

fn list_rv(sb: &TestSandbox) -> u64 {
    let list = sb
        .kubectl()
        .args(["get", "--raw", "/api/v1/namespaces/default/pods"])
        .run()
        .success()
        .json();
    list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn events(text: &str) -> Vec<serde_json::Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter()
        .filter_map(Result::ok)
        .collect()
}

#[test]
fn get_watch_sees_pods_created_and_deleted_elsewhere() {
    let sb = TestSandbox::start();
    let watch = sb
        .kubectl()
        .args(["get", "pods", "-w", "--output-watch-events"])
        .spawn();
    watch.wait_stdout(Duration::from_secs(20), "initial demo row", |s| {
        s.contains("demo")
    });
    sb.kubectl()
        .args(["run", "newcomer", "--image=x", "--", "sleep", "600"])
        .run()
        .success();
    watch.wait_stdout(Duration::from_secs(20), "newcomer ADDED", |s| {
        s.lines()
            .any(|l| l.starts_with("ADDED") && l.contains("newcomer"))
    });
    sb.kubectl()
        .args(["delete", "pod", "newcomer", "--grace-period=1"])
        .run()
        .success();
    let out = watch.wait_stdout(Duration::from_secs(20), "newcomer DELETED", |s| {
        s.lines()
            .any(|l| l.starts_with("DELETED") && l.contains("newcomer"))
    });
    assert!(out.lines().next().unwrap_or("").contains("STATUS"), "{out}");
    watch.stop();
}

#[test]
fn watch_resumes_after_dropped_connections_without_losing_events() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_demo(false));
    let start = list_rv(&sb);
    let path = format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={start}");
    let first = sb.kubectl().args(["get", "--raw", &path]).spawn();
    sb.kubectl()
        .args(["run", "a1", "--image=x", "--restart=Never", "--", "true"])
        .run()
        .success();
    first.wait_stdout(Duration::from_secs(20), "a1 event", |s| {
        s.contains("\"a1\"")
    });
    sb.fault(Fault::DropConnections);
    let cut = first.wait(Duration::from_secs(20));
    // Changes made while nobody watches.
    sb.kubectl()
        .args(["run", "a2", "--image=x", "--restart=Never", "--", "true"])
        .run()
        .success();
    sb.kubectl()
        .args(["run", "a3", "--image=x", "--restart=Never", "--", "true"])
        .run()
        .success();
    let seen = events(&cut.stdout);
    let last_rv: u64 = seen
        .iter()
        .filter_map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()?
                .parse()
                .ok()
        })
        .max()
        .expect("events before the drop");
    let resumed_path = format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={last_rv}");
    let resumed = sb.kubectl().args(["get", "--raw", &resumed_path]).spawn();
    let text = resumed.wait_stdout(Duration::from_secs(20), "a2 and a3", |s| {
        s.contains("\"a2\"") && s.contains("\"a3\"")
    });
    resumed.stop();
    let all: Vec<u64> = seen
        .iter()
        .chain(events(&text).iter())
        .filter_map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()?
                .parse()
                .ok()
        })
        .collect();
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(all, sorted, "events arrive once each, in order");
    // Every change between start and now arrived exactly once.
    let now = list_rv(&sb);
    let later = sb
        .kubectl()
        .args([
            "get",
            "--raw",
            &format!(
                "/api/v1/namespaces/default/pods?watch=1&resourceVersion={start}&timeoutSeconds=1"
            ),
        ])
        .run();
    let reference: Vec<u64> = events(&later.success().stdout)
        .iter()
        .filter_map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()?
                .parse()
                .ok()
        })
        .filter(|rv| *rv <= *all.last().unwrap())
        .collect();
    assert_eq!(
        all, reference,
        "no event lost across the drop (store now at {now})"
    );
}

#[test]
fn compaction_makes_old_versions_expire() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_demo(false));
    sb.kubectl()
        .args(["run", "p1", "--image=x", "--", "sleep", "600"])
        .run()
        .success();
    sb.kubectl()
        .args(["run", "p2", "--image=x", "--", "sleep", "600"])
        .run()
        .success();
    let page = sb
        .kubectl()
        .args(["get", "--raw", "/api/v1/namespaces/default/pods?limit=1"])
        .run()
        .success()
        .json();
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("a continue token")
        .to_owned();
    // History moves on past the token's version, then is forgotten.
    sb.kubectl()
        .args(["run", "p3", "--image=x", "--", "sleep", "600"])
        .run()
        .success();
    sb.fault(Fault::Compact);

    let watch = sb
        .kubectl()
        .args([
            "get",
            "--raw",
            "/api/v1/namespaces/default/pods?watch=1&resourceVersion=2",
        ])
        .run();
    let evs = events(&watch.success().stdout);
    assert_eq!(evs.len(), 1, "{watch}");
    assert_eq!(evs[0]["type"], "ERROR");
    assert_eq!(evs[0]["object"]["code"], 410);
    assert_eq!(evs[0]["object"]["reason"], "Expired");

    let cont = sb
        .kubectl()
        .args([
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/pods?limit=1&continue={token}"),
        ])
        .run();
    cont.failure().stderr_contains("Expired");

    // A watch from the current version still works.
    let rv = list_rv(&sb);
    sb.kubectl()
        .args([
            "get",
            "--raw",
            &format!(
                "/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}&timeoutSeconds=1"
            ),
        ])
        .run()
        .success();
}

#[test]
fn streaming_list_ends_initial_state_with_a_bookmark() {
    let sb = TestSandbox::start();
    let path = "/api/v1/namespaces/default/pods?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1";
    let out = sb.kubectl().args(["get", "--raw", path]).run();
    let evs = events(&out.success().stdout);
    assert_eq!(evs[0]["type"], "ADDED", "{out}");
    assert_eq!(evs[0]["object"]["metadata"]["name"], "demo");
    assert_eq!(evs[1]["type"], "BOOKMARK", "{out}");
    assert_eq!(
        evs[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let without_bookmarks = sb
        .kubectl()
        .args([
            "get",
            "--raw",
            "/api/v1/namespaces/default/pods?watch=1&sendInitialEvents=true",
        ])
        .run();
    without_bookmarks.failure();
}

#[test]
fn watch_errors_are_injected_then_cleared() {
    let sb = TestSandbox::start();
    let path = "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1";
    sb.fault(Fault::WatchError {
        code: 500,
        count: 1,
    });
    sb.kubectl()
        .args(["get", "--raw", path])
        .run()
        .failure()
        .stderr_contains("InternalError");
    sb.kubectl()
        .args(["get", "--raw", path])
        .run()
        .success()
        .stdout_contains("demo");
    // client-go honours Retry-After on 429: it waits, retries and succeeds.
    sb.fault(Fault::WatchError {
        code: 429,
        count: 1,
    });
    let retried = sb.kubectl().args(["get", "--raw", path, "-v=8"]).run();
    retried.success().stdout_contains("demo");
    retried
        .stderr_contains("429")
        .stderr_contains("Retry-After: 1");
}

#[test]
fn paging_follows_continue_tokens() {
    let sb = TestSandbox::with_config(SandboxConfig::new().with_demo(false));
    for i in 0..5 {
        let ns =
            format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"ns{i}"}}}}"#);
        sb.kubectl()
            .args(["apply", "-f", "-"])
            .stdin(ns)
            .run()
            .success();
    }
    // Typed clients send protobuf, which the sandbox declines clearly.
    sb.kubectl()
        .args(["create", "namespace", "typed"])
        .run()
        .failure()
        .stderr_contains("UnsupportedMediaType");
    let mut names = Vec::new();
    let mut path = "/api/v1/namespaces?limit=2".to_owned();
    for _ in 0..10 {
        let page = sb
            .kubectl()
            .args(["get", "--raw", &path])
            .run()
            .success()
            .json();
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned()),
        );
        match page["metadata"]["continue"].as_str() {
            Some(token) => path = format!("/api/v1/namespaces?limit=2&continue={token}"),
            None => break,
        }
    }
    assert_eq!(
        names,
        [
            "default",
            "kube-public",
            "kube-system",
            "ns0",
            "ns1",
            "ns2",
            "ns3",
            "ns4"
        ]
    );
}

#[test]
fn bookmarks_arrive_when_asked_for() {
    let sb = TestSandbox::start();
    let rv = list_rv(&sb);
    let path = format!("/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=7");
    let out = sb.kubectl().args(["get", "--raw", &path]).run();
    let evs = events(&out.success().stdout);
    let bookmark = evs
        .iter()
        .find(|e| e["type"] == "BOOKMARK")
        .unwrap_or_else(|| panic!("no bookmark\n{out}"));
    assert_eq!(bookmark["object"]["kind"], "Pod");
    let at: u64 = bookmark["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(at >= rv);
}

#[test]
fn label_selected_watch_sees_objects_leave_and_enter() {
    let sb = TestSandbox::start();
    let rv = list_rv(&sb);
    let path = format!(
        "/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}&labelSelector=tier%3Dfront"
    );
    let watch = sb.kubectl().args(["get", "--raw", &path]).spawn();
    sb.kubectl()
        .args(["label", "pod", "demo", "tier=front"])
        .run()
        .success();
    watch.wait_stdout(Duration::from_secs(20), "ADDED on entering", |s| {
        s.contains("\"type\":\"ADDED\"")
    });
    sb.kubectl()
        .args(["label", "pod", "demo", "tier=back", "--overwrite"])
        .run()
        .success();
    let out = watch.wait_stdout(Duration::from_secs(20), "DELETED on leaving", |s| {
        s.contains("\"type\":\"DELETED\"")
    });
    watch.stop();
    let types: Vec<String> = events(&out)
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(types, ["ADDED", "DELETED"], "{out}");
}
