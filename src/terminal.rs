//! The local terminal: raw mode for `-t` sessions (restored on every exit
//! path by a guard's `Drop`, which also runs while a panic unwinds) and the
//! window size for resize messages.
//!
//! With `malloc`, the binary's only `unsafe`: termios and the
//! `TIOCGWINSZ` ioctl have no safe std API.
#![allow(unsafe_code)]

use std::io::IsTerminal;
use std::os::fd::{AsRawFd, RawFd};

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
}

/// Puts a terminal in raw mode until dropped.
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// Switch stdin's terminal to raw mode (no echo, no line editing, no
    /// signals from Ctrl-C: those bytes go to the remote terminal).
    pub fn enable_stdin() -> std::io::Result<Self> {
        let fd = std::io::stdin().as_raw_fd();
        // SAFETY: termios is plain old data; tcgetattr fills it entirely and
        // we only read it after checking the return value.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd is our open stdin and `saved` is a valid out-pointer.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut raw = saved;
        // SAFETY: `raw` is a valid termios copied from the current settings.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: fd is our open stdin and `raw` a valid termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: fd was valid when the guard was made (stdin stays open for
        // the process's life) and `saved` is the termios read from it.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// Whether podlink may colour stderr: only a terminal, and never with
/// `NO_COLOR` set to a non-empty value (<https://no-color.org>).
pub fn stderr_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether stdin is a terminal.
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The window size of the terminal on stdout (else stdin), if any.
pub fn size() -> Option<Size> {
    [std::io::stdout().as_raw_fd(), std::io::stdin().as_raw_fd()]
        .into_iter()
        .find_map(size_of)
}

fn size_of(fd: RawFd) -> Option<Size> {
    // SAFETY: winsize is plain old data.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize through the valid pointer; a
    // non-terminal fd just makes it fail.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } != 0 || ws.ws_col == 0 {
        return None;
    }
    Some(Size {
        width: ws.ws_col,
        height: ws.ws_row,
    })
}
