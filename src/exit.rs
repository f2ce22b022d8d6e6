//! The one place that turns a command's outcome into an exit status
//! (CONTRACT.md "Exit status"): the remote status passed through, 128+n after
//! a signal, 255 with one `podlink: …` line for podlink's own failures, and a
//! broken pipe on our output counted as success.

use podlink_client::one_line;
use std::process::ExitCode;

use crate::signals::Signal;

/// How a command ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit with this status (a remote command's, or 0).
    Code(u8),
    /// podlink was stopped by this signal after cleaning up.
    Signalled(Signal),
}

impl Exit {
    /// Plain success.
    pub const SUCCESS: Self = Self::Code(0);
}

/// podlink's own failures.
const OWN_FAILURE: u8 = 255;

/// Print what needs printing and pick the exit status.
pub fn report(outcome: anyhow::Result<Exit>) -> ExitCode {
    match outcome {
        Ok(Exit::Code(code)) => ExitCode::from(code),
        Ok(Exit::Signalled(signal)) => ExitCode::from(signal.exit_code()),
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("podlink: {}", one_line(err.as_ref()));
            ExitCode::from(OWN_FAILURE)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_causes_without_repeats() {
        let err = anyhow::anyhow!("inner failure").context("outer step");
        assert_eq!(one_line(err.as_ref()), "outer step: inner failure");
        let err = anyhow::anyhow!("inner").context("outer: inner");
        assert_eq!(one_line(err.as_ref()), "outer: inner");
    }

    #[test]
    fn broken_pipe_is_detected_through_context() {
        let err = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing stdout");
        assert!(is_broken_pipe(&err));
    }
}
