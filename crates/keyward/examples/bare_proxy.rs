//! The floor under keyward's proxy benchmark: the least a proxy built on keyward's own HTTP stack
//! can do per request, measured beside keyward and nginx by `scripts/bench floor`.
//!
//! It is shaped as keyward's listener is (`gateway::server`): one accept loop handing connections
//! to one single-threaded tokio runtime per core, hyper's HTTP/1.1 server on the client's side and
//! hyper-util's pooled client (one per serving thread) on the upstream's. A request's body is read
//! whole, as keyward reads it, sent to one fixed upstream URL, and the answer's body is streamed
//! back as it comes. Nothing is checked, parsed, translated, counted or logged: whatever keyward
//! spends beyond this is keyward's own work; what this spends beyond nginx is the stack's.
//!
//! Usage: `bare_proxy LISTEN_ADDR UPSTREAM_URL` (the URL every request is sent to).

use std::convert::Infallible;
use std::net::TcpStream as StdTcpStream;

use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

type Upstream = Client<HttpConnector, Full<Bytes>>;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_proxy LISTEN_ADDR UPSTREAM_URL");
        std::process::exit(2);
    };
    let upstream: Uri = match upstream.parse() {
        Ok(uri) => uri,
        Err(e) => {
            eprintln!("bare_proxy: {upstream} is not a URL: {e}");
            std::process::exit(2);
        }
    };
    let listener = match std::net::TcpListener::bind(&listen) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("bare_proxy: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let workers: Vec<_> = (0..threads)
        .map(|_| start_worker(upstream.clone()))
        .collect();
    let mut next = 0usize;
    for stream in listener.incoming().flatten() {
        let _ = stream.set_nodelay(true);
        let _ = workers[next % workers.len()].send(stream);
        next = next.wrapping_add(1);
    }
}

/// One serving thread with its own runtime and upstream client, fed accepted connections.
fn start_worker(upstream: Uri) -> tokio::sync::mpsc::UnboundedSender<StdTcpStream> {
    let (queue, mut arrivals) = tokio::sync::mpsc::unbounded_channel::<StdTcpStream>();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("bare_proxy: no runtime: {e}");
                return;
            }
        };
        runtime.block_on(async move {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            let client: Upstream = Client::builder(TokioExecutor::new()).build(connector);
            while let Some(stream) = arrivals.recv().await {
                let Ok(()) = stream.set_nonblocking(true) else {
                    continue;
                };
                let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                    continue;
                };
                let client = client.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        forward(client.clone(), upstream.clone(), request)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    queue
}

type Answer = Response<Either<Incoming, Full<Bytes>>>;

async fn forward(
    client: Upstream,
    upstream: Uri,
    request: Request<Incoming>,
) -> Result<Answer, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mut outgoing = Request::post(upstream);
    if let Some(content_type) = parts.headers.get(hyper::header::CONTENT_TYPE) {
        outgoing = outgoing.header(hyper::header::CONTENT_TYPE, content_type);
    }
    let Ok(outgoing) = outgoing.body(Full::new(body)) else {
        return Ok(bad_gateway());
    };
    match client.request(outgoing).await {
        Ok(response) => Ok(response.map(Either::Left)),
        Err(_) => Ok(bad_gateway()),
    }
}

fn bad_gateway() -> Answer {
    let mut answer = Response::new(Either::Right(Full::new(Bytes::from_static(
        b"the upstream did not answer\n",
    ))));
    *answer.status_mut() = hyper::StatusCode::BAD_GATEWAY;
    answer
}
