//! Pseudo-terminals for `tty: true` exec and attach.
//!
//! A container runtime gives a TTY process a real terminal: the process is a
//! session leader whose controlling terminal is the pty's secondary side, so
//! line discipline, echo, `stty size` and `SIGWINCH` behave as on a node.
//! This is the one sandbox module that needs `unsafe`: opening the pty,
//! changing its window size and making it the child's controlling terminal
//! are ioctls with no safe wrapper in std.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A terminal size in character cells, as carried by the resize channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    /// Columns (`Width` on the wire).
    pub cols: u16,
    /// Rows (`Height` on the wire).
    pub rows: u16,
}

/// A freshly opened pseudo-terminal, before its child is spawned.
///
/// Call [`Pty::configure`] on the child's command, spawn it, then turn the
/// pty into its [`PtyMaster`] with [`Pty::into_master`], which closes the
/// parent's copy of the secondary side so that the master reads EOF once the
/// child (and anything it left holding the terminal) is gone.
#[derive(Debug)]
pub struct Pty {
    master: OwnedFd,
    secondary: OwnedFd,
}

impl Pty {
    /// Opens a new pty pair, both sides close-on-exec so that no other
    /// child inherits them.
    pub fn open() -> io::Result<Self> {
        // SAFETY: posix_openpt takes flags only and returns a new fd or -1.
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        let master = owned(master)?;
        // SAFETY: `master` is a valid pty master fd owned by this function.
        check(unsafe { libc::unlockpt(master.as_raw_fd()) })?;
        // TIOCGPTPEER opens the secondary side atomically with O_CLOEXEC,
        // avoiding the ptsname + open race with concurrent forks.
        // SAFETY: the ioctl takes an int of open flags and returns a new fd or -1.
        let secondary = unsafe {
            libc::ioctl(
                master.as_raw_fd(),
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        let secondary = owned(secondary)?;
        Ok(Self { master, secondary })
    }

    /// Sets the initial window size, before the child starts.
    pub fn resize(&self, size: WindowSize) -> io::Result<()> {
        set_window_size(self.master.as_raw_fd(), size)
    }

    /// Makes the terminal the child's stdin, stdout, stderr and controlling
    /// terminal (new session), as runc does for `terminal: true`.
    ///
    /// The command keeps copies of the secondary side until it is dropped:
    /// drop it right after spawning, or the master never reads EOF.
    pub fn configure(&self, command: &mut tokio::process::Command) -> io::Result<()> {
        command
            .stdin(Stdio::from(self.secondary.try_clone()?))
            .stdout(Stdio::from(self.secondary.try_clone()?))
            .stderr(Stdio::from(self.secondary.try_clone()?));
        // SAFETY: the closure runs in the forked child before exec and calls
        // only async-signal-safe functions (setsid, ioctl), allocating nothing.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                // fd 0 is the secondary side by now (dup2 happens before pre_exec).
                if libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(())
    }

    /// Closes the parent's secondary side and returns the async master.
    pub fn into_master(self) -> io::Result<PtyMaster> {
        drop(self.secondary);
        set_nonblocking(self.master.as_raw_fd())?;
        let file = File::from(self.master);
        // SAFETY: the `File` owns the fd and keeps it open, unchanged, for
        // as long as the `AsyncFd` that owns the `File` lives.
        let fd = unsafe { AsyncFd::register(file) }.map_err(io::Error::from)?;
        Ok(PtyMaster { fd: Arc::new(fd) })
    }
}

/// The async master side of a pty: what the terminal user reads and types.
///
/// Clones share the fd, so one clone can read while another writes; the fd
/// closes with the last clone, which hangs up the terminal (the kernel sends
/// `SIGHUP` to the session) — so keep one alive as long as the process
/// should keep its terminal.
#[derive(Debug, Clone)]
pub struct PtyMaster {
    fd: Arc<AsyncFd<File>>,
}

impl PtyMaster {
    /// Changes the window size; the kernel sends `SIGWINCH` to the
    /// terminal's foreground process group.
    pub fn resize(&self, size: WindowSize) -> io::Result<()> {
        set_window_size(self.fd.get_ref().as_raw_fd(), size)
    }
}

impl AsyncRead for PtyMaster {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| fd.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Linux reports EIO on the master once every secondary fd is
                // closed: that is the terminal's end of file.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PtyMaster {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().write(buf)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A terminal has no half-close: the runtime just stops copying stdin.
        Poll::Ready(Ok(()))
    }
}

fn set_window_size(fd: RawFd, size: WindowSize) -> io::Result<()> {
    let winsize = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` through the pointer, which
    // points to a live local for the duration of the call.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &winsize as *const libc::winsize) })
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument and returns the flags or -1.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    check(flags)?;
    // SAFETY: F_SETFL takes an int of flags.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) })
}

fn owned(fd: RawFd) -> io::Result<OwnedFd> {
    check(fd)?;
    // SAFETY: `fd` was just returned by the kernel and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn child_sees_terminal_and_window_size() {
        let pty = Pty::open().unwrap();
        pty.resize(WindowSize { cols: 91, rows: 17 }).unwrap();
        let mut command = tokio::process::Command::new("sh");
        command
            .args(["-c", "test -t 0 && stty size"])
            .kill_on_drop(true);
        pty.configure(&mut command).unwrap();
        let mut child = command.spawn().unwrap();
        // The command holds copies of the secondary side until dropped.
        drop(command);
        let mut master = pty.into_master().unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            master.read_to_end(&mut out),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&out).trim(), "17 91");
        assert!(child.wait().await.unwrap().success());
    }

    #[tokio::test]
    async fn input_is_echoed_and_resize_reaches_the_child() {
        let pty = Pty::open().unwrap();
        let mut command = tokio::process::Command::new("sh");
        command
            .args(["-c", "read line; stty size; echo got:$line"])
            .kill_on_drop(true);
        pty.configure(&mut command).unwrap();
        let mut child = command.spawn().unwrap();
        // The command holds copies of the secondary side until dropped.
        drop(command);
        let mut master = pty.into_master().unwrap();
        master.resize(WindowSize { cols: 40, rows: 12 }).unwrap();
        master.write_all(b"hello\n").await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            master.read_to_end(&mut out),
        )
        .await
        .unwrap()
        .unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("12 40"), "{text}");
        assert!(text.contains("got:hello"), "{text}");
        assert!(child.wait().await.unwrap().success());
    }
}
