//! Test helpers shared by podlink's integration tests.
//!
//! - [`TestSandbox`]: a sandbox on a free loopback port with its own state
//!   directory and runtime, usable from plain `#[test]`s and from async
//!   tests alike; dropping it (also while panicking) kills every process it
//!   started and removes its files.
//! - [`Kubectl`]: a `kubectl` command pointed at a sandbox (its kubeconfig,
//!   a private `KUBECACHEDIR`), optionally a specific kubectl version, run
//!   with a deadline; [`CmdOutput`] asserts and prints everything on failure.
//! - [`Running`]: a long-running command (`get -w`, `logs -f`) whose output
//!   can be awaited with a deadline, killed on drop.
//! - [`spawn_piped`]: any command in its own process group, output piped,
//!   stdin fed from a thread.
//! - [`wait_until`]: poll a condition with a bounded deadline.
//! - [`podlink`]: the `podlink` binary as separate processes (binary
//!   lookup, a `podlink sandbox` process, a stop-on-drop guard), for the
//!   soak and bench harnesses and their tests.
//!
//! ```no_run
//! use podlink_testkit::TestSandbox;
//! let sb = TestSandbox::start();
//! sb.kubectl().args(["get", "pods"]).run().success().stdout_contains("demo");
//! ```

mod command;
pub mod hostile;
pub mod podlink;
pub mod proxy;
mod sandbox;

pub use command::{kubectl_binary, spawn_piped, CmdOutput, Kubectl, Running};
pub use sandbox::TestSandbox;

use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it returns `Some`, or panics after
/// `timeout` with `what` in the message. Deadlines only bound waiting.
pub fn wait_until<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
