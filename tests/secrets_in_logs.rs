//! Credentials never reach the terminal when authentication fails: at
//! `-vvv`, a kubeconfig whose token the sandbox rejects gets a clear 401
//! error, and neither that token nor the real one appears in any output.

mod exec_support;

use exec_support::{podlink, run};
use podlink_testkit::TestSandbox;

#[test]
fn rejected_token_is_never_printed() {
    let sandbox = TestSandbox::start();
    let text = std::fs::read_to_string(sandbox.kubeconfig()).expect("read kubeconfig");
    let mut kubeconfig: serde_json::Value = serde_json::from_str(&text).expect("kubeconfig JSON");
    let real = kubeconfig["users"][0]["user"]["token"]
        .as_str()
        .expect("kubeconfig holds a bearer token")
        .to_owned();
    // Same length and alphabet as a real token, but not the sandbox's.
    let wrong: String = real.chars().rev().collect();
    assert_ne!(wrong, real);
    kubeconfig["users"][0]["user"]["token"] = wrong.clone().into();
    let scratch = tempfile::tempdir().expect("scratch folder");
    let bad = scratch.path().join("kubeconfig");
    std::fs::write(&bad, serde_json::to_vec(&kubeconfig).expect("JSON")).expect("write");

    let commands: [&[&str]; 4] = [
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
        &["-vvv", "port-forward", "pod/demo", "0:80"],
    ];
    for args in commands {
        let out = run(podlink(Some(&bad), args), None);
        let everything = format!("{}{}", out.stdout(), out.stderr());
        for (name, secret) in [("rejected", &wrong), ("real", &real)] {
            assert!(
                !everything.contains(secret.as_str()),
                "`podlink {}` printed the {name} token{out:?}",
                args.join(" ")
            );
        }
        assert_ne!(out.code, Some(0), "a rejected token cannot succeed{out:?}");
        assert!(
            everything.contains("401") || everything.to_lowercase().contains("unauthorized"),
            "the failure says why{out:?}"
        );
    }
}
