//! [`ConnectProxy`]: a small HTTP `CONNECT` proxy on loopback for proxy
//! tests. It sends every tunnel to `127.0.0.1` on the requested port, so a
//! kubeconfig can name a host that does not resolve (only the proxy reaches
//! it), and it counts the tunnels it opened.
//!
//! Plain threads and blocking sockets: it needs no runtime, so it serves
//! while a test blocks on a child process. Dropping it closes the listener
//! and every open tunnel and joins its threads.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Longest request head the proxy reads before answering 400.
const MAX_HEAD: usize = 8 * 1024;

/// A running CONNECT proxy; see the module docs.
#[derive(Debug)]
pub struct ConnectProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    stopping: AtomicBool,
    tunnels: AtomicUsize,
    /// `host:port` of every CONNECT, in arrival order.
    targets: Mutex<Vec<String>>,
    /// Every `Proxy-Authorization` value received.
    authorizations: Mutex<Vec<String>>,
    /// A clone of every accepted socket, shut down on drop.
    open: Mutex<Vec<TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ConnectProxy {
    /// Listen on `127.0.0.1:0` and serve until dropped.
    ///
    /// # Panics
    /// If the loopback listener cannot be opened.
    #[must_use]
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test proxy");
        let addr = listener.local_addr().expect("test proxy address");
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept(&listener, &shared))
        };
        Self {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT`, for `HTTPS_PROXY` or a kubeconfig `proxy-url`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many tunnels the proxy has opened so far.
    #[must_use]
    pub fn tunnels(&self) -> usize {
        self.shared.tunnels.load(Ordering::SeqCst)
    }

    /// The `host:port` each CONNECT asked for.
    #[must_use]
    pub fn targets(&self) -> Vec<String> {
        lock(&self.shared.targets).clone()
    }

    /// Every `Proxy-Authorization` header value received.
    #[must_use]
    pub fn authorizations(&self) -> Vec<String> {
        lock(&self.shared.authorizations).clone()
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for socket in lock(&self.shared.open).drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        let workers: Vec<_> = lock(&self.shared.workers).drain(..).collect();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if let Ok(clone) = client.try_clone() {
            lock(&shared.open).push(clone);
        }
        let worker = {
            let shared = Arc::clone(shared);
            std::thread::spawn(move || {
                let _ = serve(client, &shared);
            })
        };
        lock(&shared.workers).push(worker);
    }
}

/// One client connection: read the CONNECT head, dial, answer, relay.
fn serve(mut client: TcpStream, shared: &Shared) -> io::Result<()> {
    let head = read_head(&mut client)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut words = request_line.split(' ');
    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
        return client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
    };
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("proxy-authorization") {
                lock(&shared.authorizations).push(value.trim().to_owned());
            }
        }
    }
    lock(&shared.targets).push(target.to_owned());
    let port = target
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<u16>().ok());
    let upstream = match port.map(|port| TcpStream::connect(("127.0.0.1", port))) {
        Some(Ok(upstream)) => upstream,
        _ => return client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"),
    };
    if let Ok(clone) = upstream.try_clone() {
        lock(&shared.open).push(clone);
    }
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    shared.tunnels.fetch_add(1, Ordering::SeqCst);
    relay(client, upstream)
}

/// Bytes up to and including the blank line, bounded by [`MAX_HEAD`]; read
/// one at a time so nothing after the head is consumed.
fn read_head(client: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            client.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")?;
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
        client.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Copy both ways until either side ends, then close both.
fn relay(client: TcpStream, upstream: TcpStream) -> io::Result<()> {
    let (mut client_read, mut upstream_write) = (client.try_clone()?, upstream.try_clone()?);
    let up = std::thread::spawn(move || {
        let _ = io::copy(&mut client_read, &mut upstream_write);
        let _ = upstream_write.shutdown(Shutdown::Write);
    });
    let (mut upstream_read, mut client_write) = (upstream, client);
    let _ = io::copy(&mut upstream_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Write);
    let _ = up.join();
    let _ = upstream_read.shutdown(Shutdown::Both);
    let _ = client_write.shutdown(Shutdown::Both);
    Ok(())
}
