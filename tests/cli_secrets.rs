//! Credentials never reach the terminal: not at the highest verbosity, not
//! in error messages, whichever command runs.

mod exec_support;

use exec_support::{podlink, run};
use podlink_testkit::TestSandbox;

/// The bearer token the sandbox wrote into its kubeconfig.
fn token(sandbox: &TestSandbox) -> String {
    let text = std::fs::read_to_string(sandbox.kubeconfig()).expect("read kubeconfig");
    let kubeconfig: serde_json::Value = serde_json::from_str(&text).expect("kubeconfig is JSON");
    kubeconfig["users"][0]["user"]["token"]
        .as_str()
        .filter(|t| t.len() >= 16)
        .map(str::to_owned)
        .expect("kubeconfig holds a bearer token")
}

#[test]
fn token_never_printed_at_any_verbosity() {
    let sandbox = TestSandbox::start();
    let token = token(&sandbox);
    let kc = Some(sandbox.kubeconfig());
    let commands: [&[&str]; 5] = [
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
        &["-vvv", "exec", "no-such-pod", "--", "true"],
        &["-vvv", "get", "pods", "no-such-pod"],
    ];
    for args in commands {
        let out = run(podlink(kc, args), None);
        let everything = format!("{}{}", out.stdout(), out.stderr());
        assert!(
            !everything.contains(&token),
            "`podlink {}` printed the bearer token",
            args.join(" ")
        );
        // The run really happened at trace level (a silent run proves nothing).
        assert!(!out.stderr.is_empty(), "{out:?}");
    }
}
