//! Connection-level faults: every accepted TCP connection is wrapped (below
//! TLS) in a [`FaultIo`] registered in the [`ConnRegistry`]. Upgraded
//! connections keep running through the same wrapper, so `drop-connections`,
//! `blackhole` and `idle-timeout` reach exec, attach, port-forward and watch
//! streams alike.
//!
//! A connection counts as *streaming* while it carries a watch or after it
//! was upgraded; only streaming connections are affected by faults, so plain
//! API calls keep working during a blackhole (as a client re-listing would
//! need).

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How often the idle checker looks at connections.
const IDLE_CHECK_PERIOD: Duration = Duration::from_millis(100);

/// All live connections and the connection faults in force.
#[derive(Debug)]
pub(crate) struct ConnRegistry {
    base: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    /// Blackhole end, in ms since `base`; 0 = none.
    blackhole_until_ms: AtomicU64,
    /// Idle limit in ms; 0 = off.
    idle_timeout_ms: AtomicU64,
}

/// The shared state of one connection.
#[derive(Debug)]
pub(crate) struct ConnState {
    id: u64,
    streaming: AtomicUsize,
    upgraded: AtomicBool,
    last_activity_ms: AtomicU64,
    killed: AtomicBool,
    read_waker: Mutex<Option<Waker>>,
    write_waker: Mutex<Option<Waker>>,
}

/// Marks a connection streaming for as long as it lives (a watch response).
#[derive(Debug)]
pub(crate) struct StreamingMark {
    conn: Arc<ConnState>,
}

impl Drop for StreamingMark {
    fn drop(&mut self) {
        self.conn.streaming.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnState {
    /// Marks the connection streaming until the returned mark is dropped.
    pub(crate) fn mark_streaming(self: &Arc<Self>, registry: &ConnRegistry) -> StreamingMark {
        self.streaming.fetch_add(1, Ordering::AcqRel);
        self.touch(registry.now_ms());
        StreamingMark { conn: self.clone() }
    }

    /// Marks the connection streaming for good (it is being upgraded).
    /// A flag, not a forgotten mark: a mark holds the state, whose wakers
    /// hold the connection's task, and forgetting it kept both alive for
    /// ever (some KiB per exec or port-forward connection).
    pub(crate) fn mark_upgraded(&self, registry: &ConnRegistry) {
        self.upgraded.store(true, Ordering::Release);
        self.touch(registry.now_ms());
    }

    fn is_streaming(&self) -> bool {
        self.upgraded.load(Ordering::Acquire) || self.streaming.load(Ordering::Acquire) > 0
    }

    fn touch(&self, now_ms: u64) {
        self.last_activity_ms.store(now_ms, Ordering::Release);
    }

    fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.wake();
    }

    fn wake(&self) {
        for slot in [&self.read_waker, &self.write_waker] {
            if let Some(waker) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                waker.wake();
            }
        }
    }
}

impl ConnRegistry {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            next_id: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
            blackhole_until_ms: AtomicU64::new(0),
            idle_timeout_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        // +1 keeps 0 free as "none".
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wraps a freshly accepted connection.
    pub(crate) fn wrap<T>(self: &Arc<Self>, io: T) -> FaultIo<T> {
        let state = Arc::new(ConnState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            streaming: AtomicUsize::new(0),
            upgraded: AtomicBool::new(false),
            last_activity_ms: AtomicU64::new(self.now_ms()),
            killed: AtomicBool::new(false),
            read_waker: Mutex::new(None),
            write_waker: Mutex::new(None),
        });
        self.lock().insert(state.id, state.clone());
        FaultIo {
            io,
            state,
            registry: self.clone(),
            read_sleep: None,
            write_sleep: None,
        }
    }

    /// Closes every streaming connection now; returns how many.
    pub(crate) fn drop_streaming(&self) -> usize {
        let conns: Vec<_> = self
            .lock()
            .values()
            .filter(|c| c.is_streaming())
            .cloned()
            .collect();
        conns.iter().for_each(|c| c.kill());
        conns.len()
    }

    /// Closes every connection (shutdown).
    pub(crate) fn drop_all(&self) {
        let conns: Vec<_> = self.lock().values().cloned().collect();
        conns.iter().for_each(|c| c.kill());
    }

    /// Starts (or with zero, ends) a blackhole of `duration`.
    pub(crate) fn blackhole(&self, duration: Duration) {
        let until = if duration.is_zero() {
            0
        } else {
            self.now_ms() + u64::try_from(duration.as_millis()).unwrap_or(u64::MAX / 2)
        };
        self.blackhole_until_ms.store(until, Ordering::Release);
        // Re-poll everything so the new deadline (or its end) takes effect.
        let conns: Vec<_> = self.lock().values().cloned().collect();
        conns.iter().for_each(|c| c.wake());
    }

    /// Sets the idle limit for streaming connections (zero = off).
    pub(crate) fn set_idle_timeout(&self, limit: Duration) {
        let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        self.idle_timeout_ms.store(ms, Ordering::Release);
    }

    /// Cuts idle streaming connections; runs until the registry is dropped.
    pub(crate) async fn run_idle_checker(registry: std::sync::Weak<Self>) {
        let mut tick = tokio::time::interval(IDLE_CHECK_PERIOD);
        loop {
            tick.tick().await;
            let Some(registry) = registry.upgrade() else {
                return;
            };
            let limit = registry.idle_timeout_ms.load(Ordering::Acquire);
            if limit == 0 {
                continue;
            }
            let now = registry.now_ms();
            let idle: Vec<_> = registry
                .lock()
                .values()
                .filter(|c| {
                    c.is_streaming()
                        && now.saturating_sub(c.last_activity_ms.load(Ordering::Acquire)) >= limit
                })
                .cloned()
                .collect();
            for conn in idle {
                tracing::debug!(
                    conn = conn.id,
                    "idle-timeout fault: cutting idle streaming connection"
                );
                conn.kill();
            }
        }
    }

    /// The blackhole deadline if one is in force for a streaming connection.
    fn blackhole_deadline(&self, conn: &ConnState) -> Option<Instant> {
        let until = self.blackhole_until_ms.load(Ordering::Acquire);
        let now = self.now_ms();
        (until > now && conn.is_streaming())
            .then(|| Instant::now() + Duration::from_millis(until - now))
    }
}

/// An IO object whose bytes can be stopped or cut by faults.
#[derive(Debug)]
pub(crate) struct FaultIo<T> {
    io: T,
    state: Arc<ConnState>,
    registry: Arc<ConnRegistry>,
    read_sleep: Option<Pin<Box<Sleep>>>,
    write_sleep: Option<Pin<Box<Sleep>>>,
}

impl<T> FaultIo<T> {
    /// The connection's shared state (to mark it streaming).
    pub(crate) fn state(&self) -> Arc<ConnState> {
        self.state.clone()
    }
}

impl<T> Drop for FaultIo<T> {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.state.id);
    }
}

/// What a poll must do before touching the socket.
enum Gate {
    Open,
    Killed,
    Held,
}

fn gate(
    state: &ConnState,
    registry: &ConnRegistry,
    waker_slot: &Mutex<Option<Waker>>,
    sleep: &mut Option<Pin<Box<Sleep>>>,
    cx: &mut Context<'_>,
) -> Gate {
    {
        let mut slot = waker_slot.lock().unwrap_or_else(|e| e.into_inner());
        if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *slot = Some(cx.waker().clone());
        }
    }
    if state.killed.load(Ordering::Acquire) {
        return Gate::Killed;
    }
    match registry.blackhole_deadline(state) {
        Some(deadline) => {
            let timer = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            timer.as_mut().reset(deadline);
            if timer.as_mut().poll(cx).is_ready() {
                // The deadline passed between the check and the poll.
                Gate::Open
            } else {
                Gate::Held
            }
        }
        None => Gate::Open,
    }
}

fn killed_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "connection dropped by sandbox fault",
    )
}

use std::future::Future as _;

impl<T: AsyncRead + Unpin> AsyncRead for FaultIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match gate(
            &this.state,
            &this.registry,
            &this.state.read_waker,
            &mut this.read_sleep,
            cx,
        ) {
            Gate::Killed => return Poll::Ready(Err(killed_error())),
            Gate::Held => return Poll::Pending,
            Gate::Open => {}
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.touch(this.registry.now_ms());
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FaultIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match gate(
            &this.state,
            &this.registry,
            &this.state.write_waker,
            &mut this.write_sleep,
            cx,
        ) {
            Gate::Killed => return Poll::Ready(Err(killed_error())),
            Gate::Held => return Poll::Pending,
            Gate::Open => {}
        }
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.state.touch(this.registry.now_ms());
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match gate(
            &this.state,
            &this.registry,
            &this.state.write_waker,
            &mut this.write_sleep,
            cx,
        ) {
            Gate::Killed => Poll::Ready(Err(killed_error())),
            Gate::Held => Poll::Pending,
            Gate::Open => Pin::new(&mut this.io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_upgraded_connection_frees_its_state_when_it_closes() {
        let registry = Arc::new(ConnRegistry::new());
        let (io, _peer) = tokio::io::duplex(64);
        let wrapped = registry.wrap(io);
        let state = wrapped.state();
        state.mark_upgraded(&registry);
        assert!(state.is_streaming());
        drop(wrapped);
        assert!(registry.lock().is_empty());
        // The state's wakers hold the connection's task: one more owner
        // keeps both alive for the life of the sandbox.
        assert_eq!(Arc::strong_count(&state), 1);
    }
}
