//! The listener: HTTP/1.1 connections served with deadlines no local process can hold open, a
//! bound on open connections that sheds idle ones rather than locking clients out, and a stop
//! with a bound.
//!
//! - **Deadlines.** A connection must send a complete request head within `header_timeout` of
//!   being accepted, and again within it after each answer (hyper's HTTP/1 header timer starts
//!   when it begins waiting for a head, before the first byte). Only HTTP/1.1 is served: no
//!   documented client needs cleartext HTTP/2, and its prior-knowledge detection read the first
//!   bytes with no timer at all, so a silent socket was held forever.
//! - **The cap.** At `max_connections`, a new connection closes the open one that has waited
//!   longest without sending a complete request head (a silent socket, or an idle keep-alive
//!   one), as nginx reuses idle connections when it runs out: a flood of silent sockets never
//!   locks out a client that sends its request. When every open connection is serving a request,
//!   new ones wait in the listen backlog.
//! - **The stop.** The first signal stops accepting, closes idle connections and lets requests
//!   in flight finish, for at most `shutdown_timeout`; what is still open then is dropped.
//!
//! Connections are served by one single-threaded runtime per core, each with its own upstream
//! connections (`upstream::UpstreamHttp`): a request, its upstream request and the connection
//! carrying it all run on one thread, so a streamed answer never waits for a wake-up from another
//! core. On one shared multi-threaded runtime those cross-core wake-ups made a proxied request
//! cost about half as much CPU again (BENCHMARKS.md). The accept loop, the broker's refreshes and
//! scheduler, and the file watcher stay on the main runtime.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::TcpStream as StdTcpStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Gateway;

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_connections: usize,
    /// From accept, or from the end of the last answer, to a complete request head.
    pub header_timeout: Duration,
    /// How long a stop waits for requests in flight.
    pub shutdown_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish for
/// at most `limits.shutdown_timeout`.
pub(crate) async fn run(
    app: Arc<Gateway>,
    listener: TcpListener,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let shared = Arc::new(Shared {
        http,
        app,
        open: OpenConnections::default(),
        stopping: CancellationToken::new(),
        dropping: CancellationToken::new(),
        connections: TaskTracker::new(),
    });
    let workers = (0..threads)
        .map(|index| Worker::start(index, shared.clone()))
        .collect::<std::io::Result<Vec<_>>>()?;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    let mut next = 0;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: not fatal.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                // Full: make room by closing the connection idle the longest, if one is idle;
                // otherwise wait for a request to end (new clients wait in the backlog).
                if let Some(idle) = shared.open.longest_idle() {
                    tracing::debug!("at the connection limit: closing the connection idle longest");
                    idle.cancel();
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        workers[next % workers.len()].send(Accepted { stream, slot });
        next = next.wrapping_add(1);
    }
    drop(listener);
    shared.stopping.cancel();
    shared.connections.close();
    if tokio::time::timeout(limits.shutdown_timeout, shared.connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = shared.connections.len(),
            "requests still open after the shutdown timeout ({}s) are cut",
            limits.shutdown_timeout.as_secs()
        );
        shared.dropping.cancel();
        shared.connections.wait().await;
    }
    // Every connection has ended: the serving threads have nothing left to run.
    let threads: Vec<_> = workers.into_iter().map(Worker::close).collect();
    let _ = tokio::task::spawn_blocking(move || {
        for thread in threads {
            let _ = thread.join();
        }
    })
    .await;
    Ok(())
}

/// What every serving thread shares.
struct Shared {
    http: http1::Builder,
    app: Arc<Gateway>,
    open: OpenConnections,
    /// A stop began: finish the request in flight, take no new one.
    stopping: CancellationToken,
    /// The stop's bound passed: drop every connection.
    dropping: CancellationToken,
    connections: TaskTracker,
}

/// An accepted connection on its way to a serving thread, with its slot among the open ones.
struct Accepted {
    stream: StdTcpStream,
    slot: OwnedSemaphorePermit,
}

/// The open connections, for choosing one to close at the cap.
#[derive(Default)]
struct OpenConnections {
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, Arc<ConnectionState>>>,
    epoch: EpochClock,
}

impl OpenConnections {
    fn add(&self) -> (u64, Arc<ConnectionState>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnectionState {
            // Waiting for its first request head since now.
            idle_since: AtomicU64::new(self.epoch.now()),
            close: CancellationToken::new(),
        });
        self.lock().insert(id, state.clone());
        (id, state)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// The close switch of the connection that has waited longest for a request head.
    fn longest_idle(&self) -> Option<CancellationToken> {
        self.lock()
            .values()
            .filter_map(|state| {
                let since = state.idle_since.load(Ordering::Relaxed);
                (since != BUSY && !state.close.is_cancelled()).then_some((since, state))
            })
            .min_by_key(|(since, _)| *since)
            .map(|(_, state)| state.close.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnectionState>>> {
        // The map holds no invariant a panic elsewhere could break.
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Milliseconds since the listener started, for ordering idle connections.
struct EpochClock(Instant);

impl Default for EpochClock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl EpochClock {
    fn now(&self) -> u64 {
        // Never BUSY: a listener would have to run for half a billion years.
        self.0.elapsed().as_millis() as u64
    }
}

/// `idle_since` while a request is being served.
const BUSY: u64 = u64::MAX;

struct ConnectionState {
    /// When it began waiting for a request head ([`BUSY`] while serving one). HTTP/1.1 serves one
    /// request at a time on a connection, so one value says it.
    idle_since: AtomicU64,
    /// Closes the connection at once (it is shed at the cap).
    close: CancellationToken,
}

/// One serving thread: a single-threaded runtime fed accepted connections.
struct Worker {
    queue: UnboundedSender<Accepted>,
    thread: JoinHandle<()>,
}

impl Worker {
    fn start(index: usize, shared: Arc<Shared>) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (queue, mut accepted) = unbounded_channel::<Accepted>();
        let thread = std::thread::Builder::new()
            .name(format!("keyward-serve-{index}"))
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::spawn(keep_the_timer_busy());
                    while let Some(Accepted { stream, slot }) = accepted.recv().await {
                        let stream = match stream
                            .set_nonblocking(true)
                            .and_then(|()| tokio::net::TcpStream::from_std(stream))
                        {
                            Ok(stream) => stream,
                            Err(e) => {
                                tracing::warn!(error = %e, "taking over a connection failed");
                                continue;
                            }
                        };
                        let connection = serve_connection(shared.clone(), stream, slot);
                        tokio::spawn(shared.connections.track_future(connection));
                    }
                });
                // Work a request left behind (a tokenizer run on the blocking pool, a lingering
                // drain) is not waited for: the stop's bound has passed.
                runtime.shutdown_background();
            })?;
        Ok(Self { queue, thread })
    }

    fn send(&self, connection: Accepted) {
        // The thread only ends after the queue closes, so the send cannot fail while serving.
        let _ = self.queue.send(connection);
    }

    fn close(self) -> JoinHandle<()> {
        drop(self.queue);
        self.thread
    }
}

/// Keeps a timer of the serving thread always due within a second. Every request arms a header
/// timer (hyper's) and drops it when the head is in; a timer armed while none is pending is
/// earlier than the clock's next wake-up, and tokio then wakes its own thread through an `eventfd`
/// write and an extra `epoll_wait`: a syscall every other request, a few percent of a proxied
/// request's cost. With a timer always due sooner, arming one wakes nothing.
async fn keep_the_timer_busy() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
    }
}

/// Serves one connection until it closes, is shed at the cap, or the stop drops it.
async fn serve_connection(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    slot: OwnedSemaphorePermit,
) {
    let (id, state) = shared.open.add();
    let service = {
        let shared = shared.clone();
        let state = state.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let in_flight = InFlight::begin(shared.clone(), state.clone());
            let answer = shared.app.clone().handle(request);
            async move {
                let response = answer.await;
                Ok::<_, Infallible>(response.map(|body| Body::new(Tracked { body, in_flight })))
            }
        })
    };
    let connection = shared.http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = state.close.cancelled() => {}
        () = shared.stopping.cancelled() => {
            // Idle: closed now; serving: closed once its answer is out.
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                _ = connection.as_mut() => {}
                () = shared.dropping.cancelled() => {}
            }
        }
    }
    shared.open.remove(id);
    drop(slot);
}

/// Marks a connection busy from the moment its request head is complete until its answer's body
/// has gone out (or been dropped).
struct InFlight {
    shared: Arc<Shared>,
    state: Arc<ConnectionState>,
}

impl InFlight {
    fn begin(shared: Arc<Shared>, state: Arc<ConnectionState>) -> Self {
        state.idle_since.store(BUSY, Ordering::Relaxed);
        Self { shared, state }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state
            .idle_since
            .store(self.shared.open.epoch.now(), Ordering::Relaxed);
    }
}

/// An answer's body, carrying the mark that its connection is busy.
struct Tracked {
    body: Body,
    #[allow(dead_code)] // held for its Drop
    in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
