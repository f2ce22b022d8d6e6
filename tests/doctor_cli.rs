//! `podlink doctor` against the sandbox: everything works on a healthy
//! one, and each fault that breaks a path is reported on the right line
//! with a cause and a fix (idle cut, blackholed streams, rejected
//! credentials, an unknown CA, nothing listening).

mod cp_support;

use std::fs;
use std::path::Path;

use podlink_sandbox::Fault;
use podlink_testkit::TestSandbox;

use cp_support::{podlink, podlink_with, Outcome};

const STREAMING_ROWS: [&str; 6] = [
    "exec WebSocket v5",
    "exec WebSocket v4",
    "exec SPDY",
    "port-forward tunnel",
    "port-forward SPDY",
    "port-forward legacy WS",
];

/// The result column of the row named `name`.
fn verdict<'a>(out: &'a Outcome, name: &str) -> &'a str {
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with("  "))
        .unwrap_or_else(|| panic!("no row {name:?}\n{out}"));
    line[name.len()..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
}

fn assert_rows(out: &Outcome, rows: &[&str], expected: &str) {
    for row in rows {
        assert_eq!(verdict(out, row), expected, "row {row:?}\n{out}");
    }
}

/// A copy of `source`'s kubeconfig with `edit` applied, written to `path`.
fn edited_kubeconfig(source: &Path, path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut config: serde_json::Value = serde_json::from_slice(&fs::read(source).unwrap()).unwrap();
    edit(&mut config);
    fs::write(path, serde_json::to_vec(&config).unwrap()).unwrap();
}

#[test]
fn healthy_sandbox_everything_works() {
    let sandbox = TestSandbox::start();
    let out = podlink(&sandbox, &["doctor"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_rows(
        &out,
        &[
            "TLS",
            "API server",
            "auth (list pods)",
            "round-trip latency",
            "probe pod",
        ],
        "ok",
    );
    assert_rows(&out, &STREAMING_ROWS, "ok");
    assert_eq!(verdict(&out, "idle connection"), "skip", "{out}");
}

#[test]
fn idle_timeout_is_measured_and_explained() {
    let sandbox = TestSandbox::start();
    sandbox.fault(Fault::IdleTimeout { seconds: 1.0 });
    let out = podlink(&sandbox, &["doctor", "--idle-probe", "--idle-limit", "60"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(verdict(&out, "idle connection"), "FAIL", "{out}");
    assert!(
        out.stdout
            .contains("an idle streaming connection was cut after"),
        "{out}"
    );
    assert!(
        out.stdout.contains("cause: a proxy or load balancer"),
        "{out}"
    );
    assert!(out.stdout.contains("fix:   keep pings on"), "{out}");
    // Probes that move data are not idle: they still work.
    assert_rows(&out, &STREAMING_ROWS, "ok");
}

#[test]
fn idle_probe_passes_without_a_cut() {
    let sandbox = TestSandbox::start();
    let out = podlink(&sandbox, &["doctor", "--idle-probe", "--idle-limit", "2"]);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(verdict(&out, "idle connection"), "ok", "{out}");
}

#[test]
fn blackholed_streams_are_reported() {
    let sandbox = TestSandbox::start();
    sandbox.fault(Fault::Blackhole { seconds: 600.0 });
    let out = podlink(&sandbox, &["doctor", "--probe-timeout", "2"]);
    sandbox.fault(Fault::Blackhole { seconds: 0.0 });
    assert_eq!(out.code, Some(1), "{out}");
    assert_rows(&out, &["TLS", "API server", "auth (list pods)"], "ok");
    assert_rows(&out, &STREAMING_ROWS, "FAIL");
    assert!(out.stdout.contains("no answer within 2s"), "{out}");
    assert!(
        out.stdout
            .contains("cause: the connection opened but nothing came back"),
        "{out}"
    );
}

#[test]
fn credentials_ca_and_address_problems_are_named() {
    let sandbox = TestSandbox::start();
    let other = TestSandbox::start();
    let temp = tempfile::tempdir().unwrap();

    let bad_token = temp.path().join("bad-token");
    edited_kubeconfig(sandbox.kubeconfig(), &bad_token, |c| {
        c["users"][0]["user"]["token"] = "not-the-token".into();
    });
    let out = podlink_with(&bad_token, &["doctor"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_rows(&out, &["TLS", "API server"], "ok");
    assert_eq!(verdict(&out, "auth (list pods)"), "FAIL", "{out}");
    assert!(
        out.stdout
            .contains("cause: the cluster rejected the credentials"),
        "{out}"
    );

    let wrong_ca = temp.path().join("wrong-ca");
    let other_ca: serde_json::Value =
        serde_json::from_slice(&fs::read(other.kubeconfig()).unwrap()).unwrap();
    edited_kubeconfig(sandbox.kubeconfig(), &wrong_ca, |c| {
        c["clusters"][0]["cluster"]["certificate-authority-data"] =
            other_ca["clusters"][0]["cluster"]["certificate-authority-data"].clone();
    });
    let out = podlink_with(&wrong_ca, &["doctor"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(verdict(&out, "TLS"), "FAIL", "{out}");
    assert!(
        out.stdout
            .contains("not signed by the CA in the kubeconfig"),
        "{out}"
    );

    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = temp.path().join("nowhere");
    edited_kubeconfig(sandbox.kubeconfig(), &nowhere, |c| {
        c["clusters"][0]["cluster"]["server"] = format!("https://127.0.0.1:{closed_port}").into();
    });
    let out = podlink_with(&nowhere, &["doctor"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(verdict(&out, "API server"), "FAIL", "{out}");
    assert!(
        out.stdout.contains(&format!(
            "nothing listens at https://127.0.0.1:{closed_port}"
        )),
        "{out}"
    );
}
