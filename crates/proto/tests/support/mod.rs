//! A tiny blocking fake API server on loopback for driving real kubectl
//! against this crate's machines, plus kubectl process helpers. Plain HTTP
//! and std threads: the sans-IO crate may depend on neither TLS nor an
//! async runtime, and every wait is bounded by [`DEADLINE`].

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bounds every wait in these tests; nothing here should take long.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// Socket read timeout and process poll interval.
pub const POLL: Duration = Duration::from_millis(50);

/// Runs one upgrade request (SPDY or WebSocket): gets the socket, bytes
/// already read past the request head, and the request; answers it
/// (101 or a refusal) itself; returns its log.
pub type UpgradeHandler<T> = fn(&mut TcpStream, Vec<u8>, &Request, &AtomicBool) -> T;

/// The fake API server: a listener thread plus one thread per connection.
/// Dropping it stops and joins them all.
pub struct Server<T: Send + 'static> {
    pub port: u16,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    /// One log per SPDY session, in completion order.
    pub sessions: Arc<Mutex<Vec<T>>>,
}

impl<T: Send + 'static> Server<T> {
    pub fn start(upgrade: UpgradeHandler<T>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("local addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (stop, sessions) = (stop.clone(), sessions.clone());
            std::thread::spawn(move || {
                let mut workers = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let (stop, sessions) = (stop.clone(), sessions.clone());
                            workers.push(std::thread::spawn(move || {
                                serve(conn, &stop, &sessions, upgrade)
                            }));
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
                        Err(e) => panic!("accept failed: {e}"),
                    }
                }
                for w in workers {
                    let _ = w.join();
                }
            })
        };
        Self {
            port,
            stop,
            accept: Some(accept),
            sessions,
        }
    }

    /// Copies of the session logs so far.
    pub fn logs(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.sessions.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl<T: Send + 'static> Drop for Server<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request head; `None` at EOF, stop or deadline.
fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>, stop: &AtomicBool) -> Option<Request> {
    let started = Instant::now();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let mut lines = head.split("\r\n");
            let mut first = lines.next()?.split(' ');
            let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .collect::<Vec<_>>();
            let req = Request {
                method,
                target,
                headers,
            };
            let body_len: usize = req
                .header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < body_len && started.elapsed() < DEADLINE {
                read_some(conn, buf)?;
            }
            buf.drain(..body_len.min(buf.len()));
            return Some(req);
        }
        if stop.load(Ordering::SeqCst) || started.elapsed() > DEADLINE {
            return None;
        }
        read_some(conn, buf)?;
    }
}

/// Appends what the socket has; `None` at EOF or on an error.
pub fn read_some(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    let mut chunk = [0u8; 16 * 1024];
    match conn.read(&mut chunk) {
        Ok(0) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(n)
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Some(0),
        Err(_) => None,
    }
}

pub fn respond(conn: &mut TcpStream, code: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {code}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body.as_bytes());
}

/// The only pod: Running, one container.
pub const POD: &str = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"demo","namespace":"default","uid":"0d3c7d1e-0000-0000-0000-000000000001","resourceVersion":"100","creationTimestamp":"2025-01-01T00:00:00Z"},"spec":{"containers":[{"name":"main","image":"busybox","ports":[{"name":"http","containerPort":80}]}]},"status":{"phase":"Running"}}"#;

/// Every value of a repeated header, e.g. `X-Stream-Protocol-Version`.
pub fn header_values<'a>(req: &'a Request, name: &str) -> Vec<&'a str> {
    req.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Writes a 101 for a SPDY upgrade with the chosen protocol.
pub fn switch_to_spdy(conn: &mut TcpStream, protocol: &str) {
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocol}\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).expect("write 101");
}

/// Completes a WebSocket upgrade with `protocol` and wraps the socket.
pub fn accept_websocket(
    conn: &mut TcpStream,
    leftover: Vec<u8>,
    req: &Request,
    protocol: &str,
) -> tungstenite::WebSocket<TcpStream> {
    let key = req.header("sec-websocket-key").expect("websocket key");
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n",
        tungstenite::handshake::derive_accept_key(key.as_bytes())
    );
    conn.write_all(head.as_bytes()).expect("write 101");
    let socket = conn.try_clone().expect("clone socket");
    tungstenite::WebSocket::from_partially_read(
        socket,
        leftover,
        tungstenite::protocol::Role::Server,
        None,
    )
}

/// The next message, `Ok(None)` on a read timeout, `Err` once the
/// connection is over.
pub fn read_message(
    ws: &mut tungstenite::WebSocket<TcpStream>,
) -> Result<Option<tungstenite::Message>, tungstenite::Error> {
    match ws.read() {
        Ok(message) => Ok(Some(message)),
        Err(tungstenite::Error::Io(e))
            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn serve<T>(
    mut conn: TcpStream,
    stop: &AtomicBool,
    sessions: &Mutex<Vec<T>>,
    upgrade: UpgradeHandler<T>,
) {
    conn.set_nonblocking(false).expect("blocking socket");
    conn.set_read_timeout(Some(POLL)).expect("read timeout");
    conn.set_nodelay(true).expect("nodelay");
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut conn, &mut buf, stop) {
        let path = req.target.split('?').next().unwrap_or("").to_owned();
        let kind = req.header("upgrade").unwrap_or("").to_ascii_lowercase();
        match (req.method.as_str(), path.as_str()) {
            _ if !kind.is_empty() => {
                let log = upgrade(&mut conn, std::mem::take(&mut buf), &req, stop);
                sessions.lock().expect("log lock").push(log);
                return;
            }
            ("GET", "/version") => respond(
                &mut conn,
                "200 OK",
                r#"{"major":"1","minor":"32","gitVersion":"v1.32.0","gitCommit":"0","gitTreeState":"clean","buildDate":"2025-01-01T00:00:00Z","goVersion":"go1.23","compiler":"gc","platform":"linux/amd64"}"#,
            ),
            ("GET", "/api") => respond(
                &mut conn,
                "200 OK",
                r#"{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[]}"#,
            ),
            ("GET", "/apis") => respond(
                &mut conn,
                "200 OK",
                r#"{"kind":"APIGroupList","apiVersion":"v1","groups":[]}"#,
            ),
            ("GET", "/api/v1") => respond(
                &mut conn,
                "200 OK",
                r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"v1","resources":[{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["get","list"],"shortNames":["po"]}]}"#,
            ),
            ("GET", "/api/v1/namespaces/default/pods/demo") => respond(&mut conn, "200 OK", POD),
            _ => respond(
                &mut conn,
                "404 Not Found",
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"NotFound","code":404}"#,
            ),
        }
    }
}

pub struct KubectlHome {
    pub dir: PathBuf,
}

impl KubectlHome {
    pub fn new(port: u16) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "podlink-proto-kubectl-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(dir.join("cache")).expect("temp dir");
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: http://127.0.0.1:{port}\nusers:\n- name: t\n  user:\n    token: dummy\ncontexts:\n- name: t\n  context:\n    cluster: t\n    user: t\n    namespace: default\ncurrent-context: t\n"
        );
        std::fs::write(dir.join("kubeconfig"), kubeconfig).expect("kubeconfig");
        Self { dir }
    }
}

impl Drop for KubectlHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills kubectl if the test ends before it does.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// kubectl with this home's kubeconfig and cache.
pub fn kubectl(home: &KubectlHome, args: &[&str]) -> Command {
    let mut cmd = Command::new("kubectl");
    cmd.args(args)
        .env("KUBECONFIG", home.dir.join("kubeconfig"))
        .env("KUBECACHEDIR", home.dir.join("cache"));
    cmd
}

/// Reads a pipe to the end on a thread.
pub fn read_all(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}
