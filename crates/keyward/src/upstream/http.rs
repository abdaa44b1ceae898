//! The HTTP client upstream requests go out with: hyper's own client over rustls, one per serving
//! thread. A pooled connection is driven by the runtime that opened it, so with a client per
//! serving thread (`gateway::server`) a request and its upstream connection stay on one core.
//!
//! hyper alone rather than reqwest on this path: every request here is a POST of a body already
//! in memory to a URL parsed once at start, and reqwest's per-request URL handling, header copies
//! and connector clones were a measurable part of what a proxied request cost (BENCHMARKS.md).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::SendError;
use crate::ledger::{UsageSlot, UsageTap};

/// How long a connection to an upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an upstream may stay silent: before its answer's head, and between two pieces of its
/// body. No overall bound: a streamed answer may run for minutes.
const READ_TIMEOUT: Duration = Duration::from_secs(300);
/// How long an idle pooled connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const USER_AGENT: &str = concat!("keyward/", env!("CARGO_PKG_VERSION"));

type Connector = HttpsConnector<HttpConnector>;

/// The upstream clients: each thread's own (built on its first request), all with one
/// configuration.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct UpstreamHttp;

impl UpstreamHttp {
    /// This thread's client.
    pub(crate) fn client(&self) -> Client {
        thread_local! {
            static CLIENT: Client = Client::new();
        }
        CLIENT.with(Clone::clone)
    }
}

/// One thread's client, with its pool of upstream connections.
#[derive(Clone)]
pub(crate) struct Client {
    inner: hyper_util::client::legacy::Client<Connector, Full<Bytes>>,
}

impl Client {
    fn new() -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(http);
        let inner = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Self { inner }
    }

    /// POSTs `body` to `url` with `headers` (the content type and the client's user agent are
    /// added), and waits for the answer's head.
    pub(crate) async fn post(
        &self,
        url: &Endpoint,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<UpstreamResponse, SendError> {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers
            .entry(header::USER_AGENT)
            .or_insert(HeaderValue::from_static(USER_AGENT));
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = url.uri()?;
        *request.headers_mut() = headers;
        let unreachable = |source| SendError::Unreachable {
            url: url.text.clone(),
            source,
        };
        let response = tokio::time::timeout(READ_TIMEOUT, self.inner.request(request))
            .await
            .map_err(|_| unreachable(UpstreamError::Stalled.into()))?
            .map_err(|e| unreachable(e.into()))?;
        Ok(UpstreamResponse::new(response))
    }
}

/// An upstream URL, parsed once (not on every request).
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    text: String,
    /// `None` when `text` is not an `http` or `https` URL (the config loader refuses those).
    uri: Option<Uri>,
}

impl Endpoint {
    pub(crate) fn new(text: String) -> Self {
        let uri = text.parse::<Uri>().ok().filter(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
        });
        Self { text, uri }
    }

    fn uri(&self) -> Result<Uri, SendError> {
        self.uri
            .clone()
            .ok_or_else(|| SendError::NotAUrl(self.text.clone()))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// An upstream's answer: its head, and its body to come.
pub(crate) struct UpstreamResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: UpstreamBody,
    /// Where the answer's usage goes, until the body is passed on (then its tap reads it).
    usage: Option<Arc<UsageSlot>>,
}

impl UpstreamResponse {
    fn new(response: Response<Incoming>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status,
            headers: parts.headers,
            body: UpstreamBody::new(body),
            usage: None,
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The answer's usage (its tokens) is read into `slot` from now on, whichever way it then
    /// reaches the client. A reader that parses the answer's events anyway (to translate or
    /// assemble them) hands each to [`Self::read_usage`]; a body passed on as it is
    /// ([`Self::into_body`]) is read by a tap as it goes by (`ledger::UsageTap`), which costs
    /// more: it finds the events in the bytes itself.
    pub(crate) fn tap_usage(&mut self, slot: Arc<UsageSlot>) {
        self.usage = Some(slot);
    }

    /// One event of the answer, as its reader parsed it: its usage, if it carries any.
    pub(crate) fn read_usage(&self, event: &crate::dialect::sse::Event) {
        if let Some(slot) = &self.usage {
            slot.read_event(event);
        }
    }

    /// The body, as a stream of frames for the client's answer.
    pub(crate) fn into_body(self) -> UpstreamBody {
        let events = self.is_event_stream();
        let mut body = self.body;
        if let Some(slot) = self.usage {
            body.tap = Some(UsageTap::new(slot, events));
        }
        body
    }

    /// Whether the answer is an event stream.
    pub(crate) fn is_event_stream(&self) -> bool {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
    }

    /// The next piece of the body; `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Option<Result<Bytes, UpstreamError>> {
        loop {
            match self.body.frame().await? {
                Ok(frame) => match frame.into_data() {
                    Ok(data) => return Some(Ok(data)),
                    // Trailers: nothing keyward reads.
                    Err(_) => continue,
                },
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Why an upstream's body ended early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("the upstream sent nothing for {}s", READ_TIMEOUT.as_secs())]
    Stalled,
    #[error(transparent)]
    Broken(#[from] hyper::Error),
}

/// An upstream's body, cut when the upstream stays silent longer than [`READ_TIMEOUT`].
pub(crate) struct UpstreamBody {
    inner: Incoming,
    silence: Pin<Box<tokio::time::Sleep>>,
    /// Reads the answer's usage as it goes by, once the body is passed on.
    tap: Option<UsageTap>,
}

impl UpstreamBody {
    fn new(inner: Incoming) -> Self {
        Self {
            inner,
            silence: Box::pin(tokio::time::sleep(READ_TIMEOUT)),
            tap: None,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = UpstreamError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + READ_TIMEOUT;
                self.silence.as_mut().reset(next);
                if let (Some(tap), Some(data)) = (self.tap.as_mut(), frame.data_ref()) {
                    tap.feed(data);
                }
                // A reader may stop once the body says it has ended, without asking again.
                if self.inner.is_end_stream() {
                    if let Some(mut tap) = self.tap.take() {
                        tap.end();
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                if let Some(mut tap) = self.tap.take() {
                    tap.end();
                }
                Poll::Ready(None)
            }
            Poll::Pending => match self.silence.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(UpstreamError::Stalled))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
