//! The commands run in the container, and what they report.
//!
//! Like kubectl, podlink runs `tar cf -` / `tar xmf -` in the container. It
//! wraps them in a short POSIX `sh` script that also runs the archive
//! through `sha256sum` on the container's side (with `tee`), so that the
//! checksum of what the container sent or received can be compared with the
//! one computed here. The script reports on stderr in lines starting
//! `podlink-cp:`; anything else on stderr is tar's own messages.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use super::progress::Progress;

/// Arguments: `PARENT NAME`. Stdout: the archive of `NAME` in `PARENT`.
const DOWNLOAD: &str = r#"p=$1 n=$2
if [ ! -e "$p/$n" ] && [ ! -L "$p/$n" ]; then echo podlink-cp:missing >&2; exit 3; fi
s=$(du -sb -- "$p/$n" 2>/dev/null) && echo "podlink-cp:size=${s%%[!0-9]*}" >&2
exec 3>&1
{ tar cf - -C "$p" -- "$n"; echo "podlink-cp:tar-exit=$?" >&2; } | tee /dev/fd/3 | sha256sum >&2
"#;

/// Arguments: `DEST NAME SIZE`; stdin: exactly `SIZE` bytes of an archive
/// whose top entry is `NAME`, then the client's SHA-256 of those bytes on
/// one line. An existing directory `DEST` receives `NAME`; otherwise `NAME`
/// becomes `DEST`.
///
/// Two-phase, so that an interrupted or corrupted upload never touches the
/// destination: the archive is unpacked into a temporary directory beside
/// the target, and moved into place (a rename for a file; a merge, as tar
/// would do, into an existing directory) only when tar succeeded and the
/// container's checksum equals the client's. The temporary directory goes
/// in every case, also on SIGHUP/SIGINT/SIGTERM; a client that vanishes
/// sends no checksum line, so nothing is committed.
const UPLOAD: &str = r#"d=$1 n=$2 size=$3
if [ -d "$d" ]; then p=$d f=$d/$n; else p=$(dirname -- "$d") f=$d; fi
t=$(mktemp -d "$p/.podlink-cp.XXXXXX" 2>/dev/null) || { echo podlink-cp:no-parent >&2; exit 3; }
trap 'rm -rf -- "$t"' EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM
out=$({ { head -c "$size" | tee /dev/fd/4 | tar xmf - -C "$t" >&2; echo "tar-exit=$?" >&3; } 4>&1 | sha256sum; } 3>&1)
r= h=
for w in $out; do case $w in tar-exit=*) r=${w#tar-exit=} ;; -) ;; *) h=$w ;; esac; done
echo "podlink-cp:tar-exit=$r" >&2
echo "$h  -" >&2
IFS= read -r want || want=
if [ "$r" = 0 ] && [ -n "$h" ] && [ "$want" = "$h" ]; then
  if [ -d "$t/$n" ] && [ -d "$f" ] && [ ! -L "$f" ]; then cp -a -- "$t/$n/." "$f/" >&2
  else mv -f -- "$t/$n" "$f" >&2; fi || { echo podlink-cp:mv-failed >&2; exit 0; }
  echo podlink-cp:committed >&2
fi
"#;

/// The argv that streams `name` (in `parent`) out of the container.
pub(crate) fn download(parent: &str, name: &str) -> Vec<String> {
    script(DOWNLOAD, parent, name)
}

/// The argv that unpacks a `size`-byte archive topped by `name` at `dest`.
pub(crate) fn upload(dest: &str, name: &str, size: u64) -> Vec<String> {
    let mut argv = script(UPLOAD, dest, name);
    argv.push(size.to_string());
    argv
}

fn script(body: &str, first: &str, second: &str) -> Vec<String> {
    ["sh", "-c", body, "podlink-cp", first, second]
        .map(str::to_owned)
        .to_vec()
}

/// Most bytes of tar messages kept for an error.
const MAX_MESSAGES: usize = 4096;

/// Longest stderr line read (longer ones are cut).
const MAX_LINE: u64 = 8192;

/// What the script said on stderr.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    /// The source path does not exist.
    pub(crate) missing: bool,
    /// The destination's parent directory does not exist.
    pub(crate) no_parent: bool,
    /// Moving the unpacked copy into place failed.
    pub(crate) move_failed: bool,
    /// The upload was moved into place (checksums matched in the pod).
    pub(crate) committed: bool,
    /// tar's exit status.
    pub(crate) tar_exit: Option<u32>,
    /// The archive's SHA-256, hex.
    pub(crate) sha256: Option<String>,
    /// Everything else (tar's messages), bounded.
    pub(crate) messages: String,
}

impl Report {
    /// Take one stderr line; a size line goes to `progress`.
    fn line(&mut self, line: &str, progress: Option<&Arc<dyn Progress>>) {
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(marker) = line.strip_prefix("podlink-cp:") {
            match marker {
                "missing" => self.missing = true,
                "no-parent" => self.no_parent = true,
                "mv-failed" => self.move_failed = true,
                "committed" => self.committed = true,
                _ => {
                    if let Some(size) = marker.strip_prefix("size=").and_then(|s| s.parse().ok()) {
                        if let Some(progress) = progress {
                            progress.set_total(size);
                        }
                    } else if let Some(code) = marker
                        .strip_prefix("tar-exit=")
                        .and_then(|s| s.parse().ok())
                    {
                        self.tar_exit = Some(code);
                    }
                }
            }
        } else if let Some(hash) = line.strip_suffix("  -").filter(|h| is_sha256_hex(h)) {
            self.sha256 = Some(hash.to_owned());
        } else if self.messages.len() < MAX_MESSAGES && !line.is_empty() {
            if !self.messages.is_empty() {
                self.messages.push_str("; ");
            }
            let room = MAX_MESSAGES - self.messages.len();
            self.messages.extend(line.chars().take(room));
        }
    }

    /// tar's messages, or `fallback` when it said nothing.
    pub(crate) fn message_or(&self, fallback: &str) -> String {
        if self.messages.is_empty() {
            fallback.to_owned()
        } else {
            self.messages.clone()
        }
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Read the script's stderr to its end.
pub(crate) async fn read_report(
    stderr: impl AsyncRead + Unpin,
    progress: Option<Arc<dyn Progress>>,
) -> std::io::Result<Report> {
    let mut report = Report::default();
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(report);
        }
        report.line(&String::from_utf8_lossy(&line), progress.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn report_lines() {
        let text =
            "podlink-cp:size=1234\ntar: x: Cannot open: Permission denied\npodlink-cp:tar-exit=2\n\
                    e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  -\n";
        let report = read_report(text.as_bytes(), None).await.unwrap();
        assert_eq!(report.tar_exit, Some(2));
        assert_eq!(
            report.sha256.as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(report.messages, "tar: x: Cannot open: Permission denied");
        assert!(!report.missing);
        let report = read_report(&b"podlink-cp:missing\n"[..], None)
            .await
            .unwrap();
        assert!(report.missing);
    }
}
