//! Child processes of the harness: spawning with a deadline on every wait,
//! reading their output line by line, and stopping them.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// Lines of a child's output, each read under a deadline.
pub struct Lines<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    /// Wraps a pipe.
    pub fn new(pipe: R) -> Self {
        Self {
            reader: BufReader::with_capacity(1 << 20, pipe),
            line: Vec::new(),
        }
    }

    /// The next line without its newline; `None` at end of output.
    pub async fn next(&mut self, deadline: Duration) -> Result<Option<&[u8]>> {
        self.line.clear();
        let n = tokio::time::timeout(deadline, self.reader.read_until(b'\n', &mut self.line))
            .await
            .map_err(|_| anyhow!("no output line within {deadline:?}"))??;
        if n == 0 {
            return Ok(None);
        }
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
        }
        Ok(Some(&self.line))
    }

    /// Reads lines until one satisfies `want`, returning its text.
    pub async fn until(
        &mut self,
        deadline: Duration,
        what: &str,
        want: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let started = tokio::time::Instant::now();
        loop {
            let left = deadline.saturating_sub(started.elapsed());
            let line = self
                .next(left)
                .await
                .with_context(|| format!("waiting for {what}"))?
                .ok_or_else(|| anyhow!("output ended while waiting for {what}"))?;
            let text = String::from_utf8_lossy(line);
            if want(&text) {
                return Ok(text.into_owned());
            }
        }
    }
}

/// Waits for `child` to exit within `deadline` and requires success;
/// stderr (if piped) is included in the error.
pub async fn wait_success(child: &mut Child, deadline: Duration, what: &str) -> Result<()> {
    let status = match tokio::time::timeout(deadline, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            let _ = child.kill().await;
            bail!("{what}: did not finish within {deadline:?}");
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ =
            tokio::time::timeout(Duration::from_secs(2), pipe.read_to_string(&mut stderr)).await;
    }
    bail!("{what}: {status}: {}", stderr.trim())
}

/// Runs `command` to completion under `deadline`, returning stdout; fails
/// with its stderr on a non-zero exit.
pub async fn output(mut command: Command, deadline: Duration, what: &str) -> Result<String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(deadline, command.output())
        .await
        .map_err(|_| anyhow!("{what}: did not finish within {deadline:?}"))?
        .with_context(|| format!("{what}: spawn"))?;
    if !out.status.success() {
        bail!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
