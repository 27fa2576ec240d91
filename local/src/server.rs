//! `wa dev`'s HTTP server: hyper's HTTP/1.1 connections behind a bounded accept loop.
//!
//! What `axum::serve` alone did not bound (issue 14):
//! - **Header read timeout.** hyper's `http1::Builder::header_read_timeout` (with
//!   tokio's timer) closes a connection whose request head has not fully arrived this
//!   long after the server started reading it: a slowloris, a client that connects
//!   and sends nothing, and a keep-alive connection idle between two requests (the
//!   timeout starts again for every request head, so it is also the idle bound).
//! - **Connection cap.** At most `max_connections` connections are served at once.
//!   A connection accepted at the cap closes the one idle the longest (no request in
//!   flight: connected without a full request yet, or keep-alive between requests),
//!   so idle connections never starve a real request. When every connection is busy,
//!   the new one waits until one ends, and the ones behind it wait in the listen
//!   backlog.
//!
//! Closed and waiting connections are counted ([`ConnectionStats`], read through
//! `DevServer::connections`) and logged with their peer, the open count and the cap,
//! at most one warning a second (each one at `debug`).

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;
use tracing::{debug, error, warn};

use crate::config::ConfigError;

/// Default header read timeout (`[gateway] header_timeout_ms`).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default connection cap (`[gateway] max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The largest accepted `max_connections`.
pub const MAX_MAX_CONNECTIONS: usize = 65_536;
/// File descriptors left to everything but the clients' connections when the cap is
/// bounded by the process's limit: the listener, SQLite, the sandbox, HTTP clients.
pub const RESERVED_FILE_DESCRIPTORS: u64 = 128;
/// The cap never goes below this, whatever the process's limit.
const MIN_CAP: usize = 16;
/// How long a stop waits for requests in flight before dropping their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// At most one warning per this interval about closed or waiting connections.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// Limits of the HTTP server (`[gateway]` of `wa.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayLimits {
    /// A connection whose request head has not fully arrived this long after the
    /// server started reading it is closed (slowloris, idle keep-alive).
    pub header_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for GatewayLimits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl GatewayLimits {
    /// The limits of `[gateway] header_timeout_ms` and `max_connections`, defaults for
    /// what is unset; zero and absurd values are refused.
    pub fn from_file(
        header_timeout_ms: Option<u64>,
        max_connections: Option<usize>,
    ) -> Result<Self, ConfigError> {
        let mut limits = Self::default();
        if let Some(ms) = header_timeout_ms {
            if ms == 0 {
                return Err(ConfigError::Invalid(
                    "gateway.header_timeout_ms must be at least 1".into(),
                ));
            }
            limits.header_timeout = Duration::from_millis(ms);
        }
        if let Some(n) = max_connections {
            if n == 0 || n > MAX_MAX_CONNECTIONS {
                return Err(ConfigError::Invalid(format!(
                    "gateway.max_connections must be between 1 and {MAX_MAX_CONNECTIONS}, not {n}"
                )));
            }
            limits.max_connections = n;
        }
        Ok(limits)
    }
}

/// The cap actually applied: `configured`, lowered so that the connections fit in
/// `open_files` (the process's soft limit of open files, `ulimit -n`) with
/// [`RESERVED_FILE_DESCRIPTORS`] to spare. A cap above the limit would never be
/// reached: `accept` would fail first and idle connections would starve new ones.
pub fn connection_cap(configured: usize, open_files: Option<u64>) -> usize {
    match open_files {
        Some(limit) => {
            let room = limit.saturating_sub(RESERVED_FILE_DESCRIPTORS);
            configured.min(usize::try_from(room).unwrap_or(usize::MAX).max(MIN_CAP))
        }
        None => configured,
    }
}

/// The soft limit of open files of this process (`None`: unlimited).
fn open_files_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Counters of the server's connections since start.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    accepted: AtomicU64,
    open: AtomicU64,
    header_timeouts: AtomicU64,
    closed_at_cap: AtomicU64,
    waited_at_cap: AtomicU64,
    last_warning_ms: AtomicU64,
}

/// A snapshot of [`ConnectionStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Connections closed because their request head did not arrive in time.
    pub header_timeouts: u64,
    /// Idle connections closed to make room for a new one at the cap.
    pub closed_at_cap: u64,
    /// Connections accepted at the cap with no idle connection to close: they waited
    /// for one to end.
    pub waited_at_cap: u64,
}

impl ConnectionStats {
    /// The counts now.
    pub fn counts(&self) -> ConnectionCounts {
        ConnectionCounts {
            accepted: self.accepted.load(Ordering::Relaxed),
            open: self.open.load(Ordering::Relaxed),
            header_timeouts: self.header_timeouts.load(Ordering::Relaxed),
            closed_at_cap: self.closed_at_cap.load(Ordering::Relaxed),
            waited_at_cap: self.waited_at_cap.load(Ordering::Relaxed),
        }
    }

    /// Whether a warning may be logged now (at most one per [`WARN_EVERY`]).
    fn may_warn(&self, started: Instant) -> bool {
        let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        let every = u64::try_from(WARN_EVERY.as_millis()).unwrap_or(u64::MAX);
        (last == 0 || now.saturating_sub(last) >= every)
            && self
                .last_warning_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// One open connection, as the accept loop sees it.
#[derive(Debug)]
struct Tracked {
    peer: SocketAddr,
    /// Requests whose response has not been fully written yet.
    in_flight: AtomicUsize,
    /// Milliseconds since the server started, when a request last began or ended.
    last_active_ms: AtomicU64,
    /// Set when the accept loop picked it to close.
    closing: AtomicBool,
    close: Notify,
}

impl Tracked {
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }
}

/// Keeps its connection busy while a request is served and its response written.
struct InFlight {
    conn: Arc<Tracked>,
    started: Instant,
}

impl InFlight {
    fn begin(conn: Arc<Tracked>, started: Instant) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.last_active_ms
            .store(millis_since(started), Ordering::Relaxed);
        Self { conn, started }
    }

    /// Referenced from the response body's closure so the guard lives as long as it.
    fn hold(&self) {}
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn
            .last_active_ms
            .store(millis_since(self.started), Ordering::Relaxed);
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn millis_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The open connections and the permits of the cap.
struct Server {
    app: Router,
    limits: GatewayLimits,
    stats: Arc<ConnectionStats>,
    permits: Arc<Semaphore>,
    open: Mutex<HashMap<u64, Arc<Tracked>>>,
    started: Instant,
}

impl Server {
    /// The open connection idle the longest that is not already closing, marked closing.
    fn pick_idle(&self) -> Option<Arc<Tracked>> {
        let open = self.open.lock().ok()?;
        let oldest = open
            .iter()
            .filter(|(_, c)| c.idle() && !c.closing.load(Ordering::Relaxed))
            .min_by_key(|(id, c)| (c.last_active_ms.load(Ordering::Relaxed), **id))
            .map(|(_, c)| c.clone())?;
        oldest.closing.store(true, Ordering::Relaxed);
        Some(oldest)
    }

    fn register(&self, id: u64, conn: Arc<Tracked>) {
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, conn);
        }
    }

    fn unregister(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
    }

    fn open_count(&self) -> usize {
        self.open.lock().map_or(0, |open| open.len())
    }
}

/// Serve `app` on `listener` within `limits` until `stop` turns true, then stop
/// accepting, close idle connections, let requests in flight finish (at most
/// [`SHUTDOWN_GRACE`]) and return.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: GatewayLimits,
    stats: Arc<ConnectionStats>,
    mut stop: watch::Receiver<bool>,
) {
    let open_files = open_files_limit();
    let cap = connection_cap(limits.max_connections, open_files);
    if cap < limits.max_connections {
        warn!(
            max_connections = limits.max_connections,
            open_files,
            cap,
            "gateway.max_connections lowered to fit the open files limit (ulimit -n)"
        );
    }
    let limits = GatewayLimits {
        max_connections: cap,
        ..limits
    };
    let server = Arc::new(Server {
        app,
        limits,
        stats,
        permits: Arc::new(Semaphore::new(limits.max_connections)),
        open: Mutex::new(HashMap::new()),
        started: Instant::now(),
    });
    let mut next_id: u64 = 0;
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors (the limit is shared with the rest of the
                // process): make room as at the cap, and let the victim close.
                let pause = if out_of_files(&e) {
                    make_room(&server, None);
                    Duration::from_millis(20)
                } else {
                    error!(error = %e, "cannot accept a connection");
                    Duration::from_secs(1)
                };
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        let permit = match server.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                make_room(&server, Some(peer));
                let acquired = tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    permit = server.permits.clone().acquire_owned() => permit,
                };
                match acquired {
                    Ok(permit) => permit,
                    Err(_) => break,
                }
            }
        };
        next_id += 1;
        server.stats.accepted.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(connection(
            server.clone(),
            next_id,
            stream,
            peer,
            permit,
            stop.clone(),
        ));
    }
    drop(listener);
    // Every connection gives its permit back when it ends.
    let all = u32::try_from(server.limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, server.permits.acquire_many(all))
        .await
        .is_err()
    {
        warn!(
            open = server.open_count(),
            "the HTTP server stopped with requests still in flight"
        );
    }
}

/// At the cap (or out of files, `peer` unknown yet): close the connection idle the
/// longest, or count that `peer` waits.
fn make_room(server: &Server, peer: Option<SocketAddr>) {
    let stats = &server.stats;
    let cap = server.limits.max_connections;
    match server.pick_idle() {
        Some(victim) => {
            // Counted when it closes (it may have just started a request).
            victim.close.notify_one();
            let idle_ms = millis_since(server.started)
                .saturating_sub(victim.last_active_ms.load(Ordering::Relaxed));
            debug!(?peer, closing = %victim.peer, idle_ms, cap,
                "connection cap reached: closing the connection idle the longest");
        }
        None if peer.is_none() => {
            if stats.may_warn(server.started) {
                warn!(
                    cap,
                    open = server.open_count(),
                    "out of open files with every connection busy: new connections wait"
                );
            }
        }
        None => {
            let waited = stats.waited_at_cap.fetch_add(1, Ordering::Relaxed) + 1;
            debug!(
                ?peer,
                cap, "connection cap reached, every connection busy: waiting"
            );
            if stats.may_warn(server.started) {
                warn!(
                    ?peer,
                    cap,
                    open = server.open_count(),
                    waited_at_cap = waited,
                    "connection cap reached with every connection busy: new connections wait"
                );
            }
        }
    }
}

/// Why a connection ended.
enum End {
    /// The client closed it, or hyper did after a response (an error, or not).
    Served(Result<(), hyper::Error>),
    /// Closed while idle: picked at the cap, or the server stops.
    ClosedIdle { at_cap: bool },
}

async fn connection(
    server: Arc<Server>,
    id: u64,
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let tracked = Arc::new(Tracked {
        peer,
        in_flight: AtomicUsize::new(0),
        last_active_ms: AtomicU64::new(millis_since(server.started)),
        closing: AtomicBool::new(false),
        close: Notify::new(),
    });
    server.register(id, tracked.clone());
    server.stats.open.fetch_add(1, Ordering::Relaxed);

    let (app, started, conn) = (server.app.clone(), server.started, tracked.clone());
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let guard = InFlight::begin(conn.clone(), started);
        let app = app.clone();
        async move {
            let response = app.oneshot(request.map(Body::new)).await?;
            Ok::<_, Infallible>(response.map(|body| {
                // The connection stays busy until hyper drops the body: written or failed.
                Body::new(body.map_frame(move |frame| {
                    guard.hold();
                    frame
                }))
            }))
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(server.limits.header_timeout);
    // On the heap, so the socket can be closed before the permit is given back.
    let mut served = Box::pin(builder.serve_connection(TokioIo::new(stream), service));
    let mut draining = false;
    let end = loop {
        tokio::select! {
            result = served.as_mut() => break End::Served(result),
            _ = tracked.close.notified(), if !draining => {
                if tracked.idle() {
                    break End::ClosedIdle { at_cap: true };
                }
                // A request began meanwhile: close once it is answered.
                served.as_mut().graceful_shutdown();
                draining = true;
            }
            _ = stop.wait_for(|s| *s), if !draining => {
                if tracked.idle() {
                    break End::ClosedIdle { at_cap: false };
                }
                served.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    };
    drop(served);
    let stats = &server.stats;
    match end {
        End::Served(Ok(())) => {}
        End::Served(Err(e)) if e.is_timeout() => {
            let n = stats.header_timeouts.fetch_add(1, Ordering::Relaxed) + 1;
            let timeout_ms = server.limits.header_timeout.as_millis();
            debug!(%peer, timeout_ms, "no complete request head in time: connection closed");
            if stats.may_warn(server.started) {
                warn!(%peer, timeout_ms, header_timeouts = n, open = server.open_count(),
                    "connections closed: no complete request head in time");
            }
        }
        End::Served(Err(e)) => debug!(%peer, error = %e, "connection ended with an error"),
        End::ClosedIdle { at_cap: true } => {
            let n = stats.closed_at_cap.fetch_add(1, Ordering::Relaxed) + 1;
            let cap = server.limits.max_connections;
            debug!(%peer, cap, "idle connection closed to make room at the cap");
            if stats.may_warn(server.started) {
                warn!(%peer, cap, closed_at_cap = n,
                    "connection cap reached: idle connections closed to make room");
            }
        }
        End::ClosedIdle { at_cap: false } => {}
    }
    // Out of the table before the permit is back, so the accept loop never picks it.
    server.unregister(id);
    stats.open.fetch_sub(1, Ordering::Relaxed);
    drop(permit);
}

/// `EMFILE` or `ENFILE`: the process or the system has no file descriptor left.
fn out_of_files(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// Errors of one connection that say nothing about the listener (as `axum::serve`).
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
