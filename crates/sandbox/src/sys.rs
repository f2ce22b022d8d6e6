//! The sandbox core's only `unsafe`: network namespaces and process-group
//! signals, which have no safe wrapper in std.
//!
//! Namespace work always happens on a short-lived dedicated thread (never on
//! a tokio worker or blocking-pool thread, which would stay in the pod's
//! namespace afterwards) or in a forked child before `exec`.
#![allow(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

/// Signals the sandbox sends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signal {
    /// Polite stop.
    Term,
    /// Forced stop.
    Kill,
}

/// Sends `signal` to the whole process group led by `pid`.
pub(crate) fn kill_group(pid: u32, signal: Signal) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    let sig = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill(2) takes plain integers; a negative pid addresses the
    // group, and pid > 1 rules out "every process" (-1) and our own group (0).
    unsafe {
        libc::kill(-pid, sig);
    }
}

/// Whether the sandbox runs as root (and so may create namespaces).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Creates a new network namespace with `lo` up and returns a handle to it.
/// The namespace lives as long as the returned fd (or a process in it).
pub(crate) fn create_netns() -> io::Result<OwnedFd> {
    std::thread::Builder::new()
        .name("podlink-netns".into())
        .spawn(|| {
            // SAFETY: unshare only changes this dedicated thread's namespace;
            // the thread ends right after, so no other code runs in it.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = std::fs::File::open("/proc/thread-self/ns/net")?;
            bring_loopback_up()?;
            Ok(OwnedFd::from(fd))
        })?
        .join()
        .map_err(|_| io::Error::other("netns thread panicked"))?
}

fn bring_loopback_up() -> io::Result<()> {
    // SAFETY: socket(2) with constant arguments returns a new fd or -1.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh fd nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the flags of the named interface into `req`,
    // which is a properly sized, initialized ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn setns(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: setns(2) on a namespace fd we own; it only affects the caller
    // (a dedicated thread or a forked child).
    if unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `command`'s child enter the namespace before it runs. The fd is
/// kept alive by the command itself.
pub(crate) fn enter_netns(command: &mut tokio::process::Command, netns: Arc<OwnedFd>) {
    // SAFETY: the hook runs in the forked child before exec and only calls
    // setns(2), which is async-signal-safe, and builds an io::Error (no
    // allocation on the success path).
    unsafe {
        command.pre_exec(move || setns(&netns));
    }
}

/// Connects to `addr` from inside the namespace (the socket stays there).
pub(crate) async fn connect_in_netns(
    netns: Arc<OwnedFd>,
    addr: SocketAddr,
) -> io::Result<tokio::net::TcpStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("podlink-dial".into())
        .spawn(move || {
            let result = setns(&netns).and_then(|()| {
                let stream = std::net::TcpStream::connect_timeout(
                    &addr,
                    std::time::Duration::from_secs(10),
                )?;
                stream.set_nonblocking(true)?;
                Ok(stream)
            });
            let _ = tx.send(result);
        })?;
    let stream = rx
        .await
        .map_err(|_| io::Error::other("dial thread ended"))??;
    tokio::net::TcpStream::from_std(stream)
}
