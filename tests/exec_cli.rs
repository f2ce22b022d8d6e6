//! `podlink exec` against the sandbox over every protocol: exit statuses,
//! exact output, stdin end-of-file, and the same run through kubectl.

mod exec_support;

use exec_support::{podlink, run};
use podlink_testkit::TestSandbox;

const PROTOCOLS: [&str; 3] = ["auto", "websocket", "spdy"];

#[test]
fn exit_status_and_output_pass_through() {
    let sandbox = TestSandbox::start();
    let kc = Some(sandbox.kubeconfig());
    for protocol in PROTOCOLS {
        for code in [0, 1, 7, 255] {
            let script = format!("printf out; printf err >&2; exit {code}");
            let out = run(
                podlink(
                    kc,
                    &[
                        "exec",
                        "--protocol",
                        protocol,
                        "demo",
                        "--",
                        "sh",
                        "-c",
                        &script,
                    ],
                ),
                None,
            );
            out.code(code);
            assert_eq!(out.stdout, b"out", "{out:?}");
            assert_eq!(out.stderr, b"err", "{out:?}");
        }
    }
    // kubectl agrees on the remote status (it is the oracle for it).
    let kubectl = sandbox
        .kubectl()
        .args(["exec", "demo", "--", "sh", "-c", "exit 7"])
        .run();
    assert_eq!(kubectl.code, Some(7), "kubectl: {kubectl:?}");
}

#[test]
fn stdin_end_of_file_ends_cat() {
    let sandbox = TestSandbox::start();
    let data: Vec<u8> = (0..3_000_000_u32).map(|i| (i % 251) as u8).collect();
    for protocol in PROTOCOLS {
        let out = run(
            podlink(
                Some(sandbox.kubeconfig()),
                &["exec", "-i", "--protocol", protocol, "demo", "--", "cat"],
            ),
            Some(data.clone()),
        );
        out.code(0);
        assert!(
            out.stdout == data,
            "{protocol}: {} bytes back, want {}",
            out.stdout.len(),
            data.len()
        );
    }
}

#[test]
fn tty_without_a_terminal_warns_and_runs() {
    let sandbox = TestSandbox::start();
    let out = run(
        podlink(
            Some(sandbox.kubeconfig()),
            &["exec", "-t", "demo", "--", "echo", "hi"],
        ),
        None,
    );
    out.code(0);
    assert_eq!(out.stdout, b"hi\n", "{out:?}");
    assert!(out.stderr().contains("unable to use a TTY"), "{out:?}");
}
