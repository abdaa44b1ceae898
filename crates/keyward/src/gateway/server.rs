//! The listener: hyper's connection handling with the limits `axum::serve` does not expose, a
//! header read timeout (a client that never finishes its headers is cut) and a bound on open
//! connections; and a graceful stop that lets requests in flight finish.
//!
//! Connections are served by one single-threaded runtime per core, each with its own upstream
//! connections (`upstream::UpstreamHttp`): a request, its upstream request and the connection
//! carrying it all run on one thread, so a streamed answer never waits for a wake-up from another
//! core. On one shared multi-threaded runtime those cross-core wake-ups made a proxied request
//! cost about half as much CPU again (BENCHMARKS.md). The accept loop, the broker's refreshes and
//! scheduler, and the file watcher stay on the main runtime.

use std::net::TcpStream as StdTcpStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// An accepted connection on its way to a serving thread, with its slot among the open
/// connections and its part in the graceful stop.
struct Accepted {
    stream: StdTcpStream,
    slot: OwnedSemaphorePermit,
    watcher: Watcher,
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for open connections to
/// finish their requests.
pub async fn run(
    app: Router,
    listener: TcpListener,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let workers = (0..threads)
        .map(|index| Worker::start(index, app.clone(), builder.clone()))
        .collect::<std::io::Result<Vec<_>>>()?;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    let mut next = 0;
    loop {
        // At the bound, connections wait in the listen backlog until one closes.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
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
        let _ = stream.set_nodelay(true);
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        workers[next % workers.len()].send(Accepted {
            stream,
            slot,
            watcher: graceful.watcher(),
        });
        next = next.wrapping_add(1);
    }
    drop(listener);
    graceful.shutdown().await;
    // Every connection has finished: the serving threads have nothing left to run.
    let threads: Vec<_> = workers.into_iter().map(Worker::close).collect();
    let _ = tokio::task::spawn_blocking(move || {
        for thread in threads {
            let _ = thread.join();
        }
    })
    .await;
    Ok(())
}

/// One serving thread: a single-threaded runtime fed accepted connections.
struct Worker {
    queue: UnboundedSender<Accepted>,
    thread: JoinHandle<()>,
}

impl Worker {
    fn start(
        index: usize,
        app: Router,
        builder: Arc<auto::Builder<TokioExecutor>>,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (queue, mut accepted) = unbounded_channel::<Accepted>();
        let thread = std::thread::Builder::new()
            .name(format!("keyward-serve-{index}"))
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(Accepted {
                        stream,
                        slot,
                        watcher,
                    }) = accepted.recv().await
                    {
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
                        let service = TowerToHyperService::new(app.clone());
                        let connection = builder
                            .serve_connection_with_upgrades(TokioIo::new(stream), service)
                            .into_owned();
                        let connection = watcher.watch(connection);
                        tokio::spawn(async move {
                            let _ = connection.await;
                            drop(slot);
                        });
                    }
                });
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
