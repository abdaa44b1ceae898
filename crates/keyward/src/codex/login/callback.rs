//! The loopback server the browser comes back to: `127.0.0.1:1455`, else `1457` (the only ports on
//! the provider's redirect allow-list for the Codex client), with
//! `redirect_uri=http://127.0.0.1:<port>/auth/callback` as the Codex CLI 0.169 sends it.
//!
//! - `GET /auth/callback?code&state`: a wrong `state` gets 400 and the server keeps listening (a
//!   stray or forged request must not end the sign-in); an `error` ends it with an error page;
//!   a code is handed to the caller, whose result (exchange, write) the browser waits for, then
//!   is sent on to `/success`, so the code leaves the address bar.
//! - `GET /success`: the page that ends the sign-in.
//! - `GET /cancel`: what a newer `codex login` sends to stop an older sign-in holding the port.
//!
//! Only requests addressed to a loopback host are answered (a web page cannot reach it through a
//! rebound DNS name).

use std::collections::HashMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::{mpsc, oneshot, Notify};

use super::{port_holder, LoginError};
use crate::secret::Secret;

/// The provider's allow-list, in the order the Codex CLI tries them.
pub(crate) const PORTS: [u16; 2] = [1455, 1457];
/// How long the browser is given to fetch the success page before the server stops.
const SUCCESS_GRACE: Duration = Duration::from_secs(3);
/// How long open connections are given to close when the server stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// A bound, not yet serving, callback listener.
pub(crate) struct Callback {
    listener: std::net::TcpListener,
    port: u16,
}

impl Callback {
    /// Binds the first free port of the allow-list; when both are taken, says who holds them.
    pub(crate) fn bind() -> Result<Self, LoginError> {
        let mut taken = Vec::new();
        for port in PORTS {
            match std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))) {
                Ok(listener) => return Ok(Self { listener, port }),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    taken.push(format!("{port}: {}", port_holder::describe(port)));
                }
                Err(source) => return Err(LoginError::Listen { port, source }),
            }
        }
        Err(LoginError::PortsTaken {
            holders: taken.join("; "),
        })
    }

    pub(crate) fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/auth/callback", self.port)
    }

    /// Serves until the browser comes back with `state` (or `timeout` passes). A returned code
    /// goes to `finish`, whose outcome the browser is shown and which is returned.
    pub(crate) async fn wait<T, F, Fut>(
        self,
        state: String,
        timeout: Duration,
        finish: F,
    ) -> Result<T, LoginError>
    where
        F: FnOnce(Secret) -> Fut,
        Fut: Future<Output = Result<T, LoginError>>,
    {
        let (events, mut arrivals) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state,
            port: self.port,
            events: Mutex::new(Some(events)),
            success_shown: Notify::new(),
        });
        let router = Router::new()
            .route("/auth/callback", get(callback))
            .route("/success", get(success))
            .route("/cancel", get(cancel))
            .with_state(shared.clone());
        let listen_error = |source| LoginError::Listen {
            port: self.port,
            source,
        };
        self.listener.set_nonblocking(true).map_err(listen_error)?;
        let listener = tokio::net::TcpListener::from_std(self.listener).map_err(listen_error)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });

        let outcome = match tokio::time::timeout(timeout, arrivals.recv()).await {
            Err(_) => Err(LoginError::TimedOut { waited: timeout }),
            Ok(None) | Ok(Some(Event::Cancel)) => Err(LoginError::Cancelled),
            Ok(Some(Event::Refused { error, description })) => {
                Err(LoginError::Refused { error, description })
            }
            Ok(Some(Event::Code { code, page })) => {
                let result = finish(code).await;
                let shown = match &result {
                    Ok(_) => Ok(()),
                    Err(e) => Err(failure_text(e)),
                };
                let sent = page.send(shown).is_ok();
                if sent && result.is_ok() {
                    let _ =
                        tokio::time::timeout(SUCCESS_GRACE, shared.success_shown.notified()).await;
                }
                result
            }
        };
        let _ = stop.send(());
        let abort = server.abort_handle();
        if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
            abort.abort();
        }
        outcome
    }
}

enum Event {
    Code {
        code: Secret,
        /// The page the browser is waiting for: the success page, or why it failed.
        page: oneshot::Sender<Result<(), String>>,
    },
    Refused {
        error: String,
        description: Option<String>,
    },
    Cancel,
}

struct Shared {
    state: String,
    port: u16,
    /// Taken by the first request that ends the sign-in; later ones find it gone.
    events: Mutex<Option<mpsc::UnboundedSender<Event>>>,
    success_shown: Notify,
}

impl Shared {
    fn end(&self, event: Event) -> bool {
        let sender = self.events.lock().unwrap_or_else(|p| p.into_inner()).take();
        sender.is_some_and(|s| s.send(event).is_ok())
    }

    /// Whether the request was addressed to this server by a loopback name.
    fn addressed_to_us(&self, headers: &HeaderMap) -> bool {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        [
            format!("127.0.0.1:{}", self.port),
            format!("localhost:{}", self.port),
        ]
        .iter()
        .any(|ours| host.eq_ignore_ascii_case(ours))
    }
}

async fn callback(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if !shared.addressed_to_us(&headers) {
        return (StatusCode::FORBIDDEN, "Forbidden").into_response();
    }
    let state_matches = params.get("state").is_some_and(|s| {
        subtle::ConstantTimeEq::ct_eq(s.as_bytes(), shared.state.as_bytes()).into()
    });
    if !state_matches {
        return (StatusCode::BAD_REQUEST, "State mismatch").into_response();
    }
    if let Some(error) = params.get("error") {
        let description = params.get("error_description").cloned();
        let refusal = LoginError::Refused {
            error: error.clone(),
            description: description.clone(),
        };
        let text = failure_text(&refusal);
        shared.end(Event::Refused {
            error: error.clone(),
            description,
        });
        return page(StatusCode::OK, "Sign-in failed", &text);
    }
    let Some(code) = params.get("code").filter(|c| !c.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "Missing authorization code").into_response();
    };
    let (sender, shown) = oneshot::channel();
    if !shared.end(Event::Code {
        code: Secret::new(code.clone()),
        page: sender,
    }) {
        return page(
            StatusCode::CONFLICT,
            "Sign-in already handled",
            "This sign-in has already been completed or stopped. Return to your terminal.",
        );
    }
    match shown.await {
        Ok(Ok(())) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, "/success"),
                (header::CACHE_CONTROL, "no-store"),
            ],
        )
            .into_response(),
        Ok(Err(text)) => page(StatusCode::OK, "Sign-in failed", &text),
        Err(_) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in stopped",
            "keyward stopped before finishing this sign-in. Return to your terminal.",
        ),
    }
}

async fn success(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !shared.addressed_to_us(&headers) {
        return (StatusCode::FORBIDDEN, "Forbidden").into_response();
    }
    shared.success_shown.notify_one();
    page(
        StatusCode::OK,
        "Signed in",
        "keyward signed in with ChatGPT. You can close this window and return to your terminal.",
    )
}

async fn cancel(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !shared.addressed_to_us(&headers) {
        return (StatusCode::FORBIDDEN, "Forbidden").into_response();
    }
    shared.end(Event::Cancel);
    (StatusCode::OK, "Login cancelled").into_response()
}

/// What the browser is told of a failure: the message and what to do, never a secret (no
/// `LoginError` carries one).
fn failure_text(error: &LoginError) -> String {
    match error.remedy() {
        Some(remedy) => format!("{error}. To fix: {remedy}."),
        None => format!("{error}."),
    }
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1 id=\"title\">{title}</h1><p id=\"message\">{}</p></body></html>",
        escape(text)
    );
    (
        status,
        [
            (header::CONNECTION, "close"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(body),
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
