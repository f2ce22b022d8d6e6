//! What podlink draws depends on whether stderr is a terminal: `cp` shows a
//! progress bar with bytes and rate only on a terminal, and log lines are
//! coloured only on a terminal and never with `NO_COLOR` set. Run under a
//! real pseudo-terminal (Python's `pty`, as the kubectl matrix tests do).

mod cp_support;

use std::fs;
use std::process::{Command, Stdio};

use podlink_testkit::TestSandbox;

use cp_support::{podlink, PROXY_VARS};

/// Runs argv[1..] on a pseudo-terminal (stdin, stdout and stderr), reads
/// everything it shows until it exits, and prints `exit=N` and then the
/// transcript. Bounded: 1,200 waits of 0.1 s, then the child is killed.
const PTY_DRIVER: &str = r#"
import os, pty, select, signal, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen = b""
for _ in range(1200):
    r, _, _ = select.select([fd], [], [], 0.1)
    if not r:
        continue
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    seen += chunk
done, status = os.waitpid(pid, os.WNOHANG)
if done == 0:
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(b"exit=%d\n" % os.waitstatus_to_exitcode(status))
sys.stdout.buffer.write(seen)
"#;

/// `podlink --kubeconfig K ARGS` on a pseudo-terminal with `envs` set;
/// returns the exit status and the terminal transcript.
fn on_terminal(sandbox: &TestSandbox, args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new("timeout");
    for name in PROXY_VARS.iter().chain(&["NO_COLOR", "RUST_LOG"]) {
        command.env_remove(name);
    }
    let out = command
        .envs(envs.iter().copied())
        .args(["-s", "KILL", "150", "python3", "-c", PTY_DRIVER])
        .arg(env!("CARGO_BIN_EXE_podlink"))
        .arg("--kubeconfig")
        .arg(sandbox.kubeconfig())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the pty driver");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (first, transcript) = text.split_once('\n').unwrap_or((&text, ""));
    let code = first
        .strip_prefix("exit=")
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("pty driver failed: {out:?}"));
    (code, transcript.to_owned())
}

/// True when `text` holds an SGR (colour) escape sequence, `ESC [ … m`.
fn has_colour(text: &str) -> bool {
    text.split('\u{1b}').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|params| {
            let end = params
                .find(|c: char| !(c.is_ascii_digit() || c == ';'))
                .unwrap_or(params.len());
            params[end..].starts_with('m')
        })
    })
}

#[test]
fn cp_shows_bytes_and_rate_on_a_terminal_only() {
    let sandbox = TestSandbox::start();
    let temp = tempfile::tempdir().unwrap();
    let source = temp.path().join("payload.bin");
    let payload: Vec<u8> = (0..40u32 << 20).map(|i| (i % 253) as u8).collect();
    fs::write(&source, &payload).unwrap();
    let target = format!("demo:{}", temp.path().join("copy.bin").display());

    let (code, shown) = on_terminal(&sandbox, &["cp", source.to_str().unwrap(), &target], &[]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("MiB/s"),
        "no rate on the terminal:\n{shown:?}"
    );
    assert!(
        shown.contains("MiB/40.00 MiB"),
        "no byte count against the total on the terminal:\n{shown:?}"
    );

    let piped = podlink(&sandbox, &["cp", source.to_str().unwrap(), &target]);
    assert_eq!(piped.code, Some(0), "{piped}");
    for drawn in ["MiB/s", "\r", "\u{1b}"] {
        assert!(!piped.stderr.contains(drawn), "a bar on a pipe: {piped}");
    }
    assert_eq!(
        fs::read(temp.path().join("copy.bin")).unwrap(),
        payload,
        "copied content"
    );
}

#[test]
fn log_colours_only_on_a_terminal_and_never_with_no_color() {
    let sandbox = TestSandbox::start();
    // -vv: the client logs each upgrade request at debug level.
    let args = ["-v", "-v", "exec", "demo", "--", "true"];

    let (code, coloured) = on_terminal(&sandbox, &args, &[]);
    assert_eq!(code, 0, "{coloured}");
    assert!(
        has_colour(&coloured),
        "expected coloured log lines on a terminal:\n{coloured:?}"
    );

    let (code, plain) = on_terminal(&sandbox, &args, &[("NO_COLOR", "1")]);
    assert_eq!(code, 0, "{plain}");
    assert!(plain.contains("upgrade request"), "{plain}");
    assert!(!has_colour(&plain), "colour despite NO_COLOR:\n{plain:?}");

    // An empty NO_COLOR is unset (no-color.org).
    let (_, empty) = on_terminal(&sandbox, &args, &[("NO_COLOR", "")]);
    assert!(has_colour(&empty), "{empty:?}");

    let piped = podlink(&sandbox, &args);
    assert_eq!(piped.code, Some(0), "{piped}");
    assert!(!has_colour(&piped.stderr), "colour on a pipe: {piped}");
}

#[test]
fn colour_detector_sees_sgr_only() {
    assert!(has_colour("\u{1b}[33m WARN\u{1b}[0m"));
    assert!(has_colour("\u{1b}[2m"));
    assert!(!has_colour("\u{1b}[2K\r40 MiB"));
    assert!(!has_colour("plain"));
}
