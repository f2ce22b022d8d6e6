//! `podlink exec -it` under a real pseudo-terminal (`script` provides it):
//! the remote terminal gets our window size, and our terminal settings are
//! restored when podlink exits.

mod exec_support;

use std::process::Command;

use exec_support::run;
use podlink_testkit::TestSandbox;

#[test]
fn tty_session_gets_the_window_size_and_restores_the_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let sandbox = TestSandbox::start();
    let shell = format!(
        "stty cols 91 rows 33; {bin} --kubeconfig {kc} exec -it demo -- stty size; echo rc=$?; stty -a",
        bin = env!("CARGO_BIN_EXE_podlink"),
        kc = sandbox.kubeconfig().display(),
    );
    let mut command = Command::new("script");
    command.args(["-qec", &shell, "/dev/null"]);
    let out = run(command, None);
    out.code(0);
    let text = out.stdout();
    assert!(text.contains("33 91"), "remote size: {out:?}");
    assert!(text.contains("rc=0"), "{out:?}");
    // After podlink: line editing and echo are back on.
    let settings = text.rsplit("rc=0").next().unwrap_or_default();
    assert!(
        settings.contains(" icanon") && settings.contains(" echo"),
        "terminal not restored: {out:?}"
    );
}
