//! `-v` → tracing levels on stderr. `RUST_LOG` overrides when set.
//!
//! Nothing podlink logs carries credentials: upgrade requests log method,
//! path and status only, never headers.

use tracing_subscriber::EnvFilter;

/// Install the stderr subscriber for `verbose` (the number of `-v`).
pub fn init(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // Our crates at the chosen level. Dependencies stay silent by default
        // (kube logs failures we already report in our one line), show
        // warnings with -v/-vv and everything with -vvv.
        let deps = match verbose {
            0 => "off",
            1 | 2 => "warn",
            _ => "trace",
        };
        EnvFilter::new(format!(
            "{deps},podlink={level},podlink_client={level},podlink_sandbox={level},podlink_proto={level}"
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(crate::terminal::stderr_colour())
        .with_target(verbose >= 2)
        .init();
}
