//! Credentials never reach the terminal: not at the highest verbosity, not
//! in error messages, whichever command runs, and not when the server
//! rejects them.

mod exec_support;

use std::path::Path;

use exec_support::{podlink, run, Outcome};
use podlink_testkit::TestSandbox;

/// Streaming over each protocol, besides `get`: every path that sends the
/// token.
const STREAMING: [&[&str]; 3] = [
    &["-vvv", "get", "pods"],
    &[
        "-vvv",
        "exec",
        "--protocol",
        "websocket",
        "demo",
        "--",
        "true",
    ],
    &["-vvv", "exec", "--protocol", "spdy", "demo", "--", "true"],
];

/// The sandbox's kubeconfig, as JSON.
fn kubeconfig(sandbox: &TestSandbox) -> serde_json::Value {
    let text = std::fs::read_to_string(sandbox.kubeconfig()).expect("read kubeconfig");
    serde_json::from_str(&text).expect("kubeconfig is JSON")
}

/// The bearer token in a kubeconfig.
fn token(kubeconfig: &serde_json::Value) -> String {
    kubeconfig["users"][0]["user"]["token"]
        .as_str()
        .filter(|t| t.len() >= 16)
        .map(str::to_owned)
        .expect("kubeconfig holds a bearer token")
}

/// Runs `podlink` with each argument list; checks no secret was printed and
/// hands every outcome to `check`.
fn run_all(kubeconfig: &Path, commands: &[&[&str]], secrets: &[&str], check: impl Fn(&Outcome)) {
    for args in commands {
        let out = run(podlink(Some(kubeconfig), args), None);
        let everything = format!("{}{}", out.stdout(), out.stderr());
        for secret in secrets {
            assert!(
                !everything.contains(secret),
                "`podlink {}` printed a token{out:?}",
                args.join(" ")
            );
        }
        check(&out);
    }
}

#[test]
fn token_never_printed_at_any_verbosity() {
    let sandbox = TestSandbox::start();
    let token = token(&kubeconfig(&sandbox));
    let failing: [&[&str]; 2] = [
        &["-vvv", "exec", "no-such-pod", "--", "true"],
        &["-vvv", "get", "pods", "no-such-pod"],
    ];
    let commands: Vec<&[&str]> = STREAMING.iter().chain(&failing).copied().collect();
    run_all(sandbox.kubeconfig(), &commands, &[&token], |out| {
        // The run really happened at trace level (a silent run proves nothing).
        assert!(!out.stderr.is_empty(), "{out:?}");
    });
}

#[test]
fn rejected_token_is_never_printed() {
    let sandbox = TestSandbox::start();
    let mut bad = kubeconfig(&sandbox);
    let real = token(&bad);
    // Same length and alphabet as a real token, but not the sandbox's.
    let wrong: String = real.chars().rev().collect();
    assert_ne!(wrong, real);
    bad["users"][0]["user"]["token"] = wrong.clone().into();
    let scratch = tempfile::tempdir().expect("scratch folder");
    let path = scratch.path().join("kubeconfig");
    std::fs::write(&path, serde_json::to_vec(&bad).expect("JSON")).expect("write");
    let forward: [&[&str]; 1] = [&["-vvv", "port-forward", "pod/demo", "0:80"]];
    let commands: Vec<&[&str]> = STREAMING.iter().chain(&forward).copied().collect();
    run_all(&path, &commands, &[&wrong, &real], |out| {
        assert_ne!(out.code, Some(0), "a rejected token cannot succeed{out:?}");
        let everything = format!("{}{}", out.stdout(), out.stderr());
        assert!(
            everything.contains("401") || everything.to_lowercase().contains("unauthorized"),
            "the failure says why{out:?}"
        );
    });
}
