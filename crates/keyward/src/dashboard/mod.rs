//! The dashboard: `GET /` on keyward's own address, a page that shows each profile, each usage
//! window as a gauge counting down to its reset, usage over 24 hours and 7 days by key and by
//! client (SVG charts its script draws), and the latest requests and refreshes, polling
//! [`state`] every few seconds.
//!
//! Everything it loads is in the binary (`assets/`: HTML, CSS, JS written for it; no framework,
//! CDN or font) and served under a strict Content-Security-Policy: scripts, styles, images and
//! requests from keyward's origin only, no inline script or style, never framed.
//!
//! The front door applies as to everything else: a page of another site is refused
//! (`Sec-Fetch-Site`, `Origin`), a rebound host name too (without keys). Only the page's own
//! same-origin requests to these paths pass with an `Origin` ([`from_own_page`]). With gateway
//! keys, the page and its files load without one and the page asks for a key: signing in opens a
//! session ([`session`]) kept in an `HttpOnly`, `SameSite=Strict` cookie whose path is the
//! dashboard's endpoints. The cookie unlocks only these read-only endpoints: the model API never
//! reads cookies, so a page cannot ride it to spend the subscription.

mod session;
mod state;

use std::time::Instant;

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::gateway::{Caller, Gateway};
use session::Sessions;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");
const ICON: &str = include_str!("assets/icon.svg");

/// Everything from keyward's origin, nothing inline, never in a frame.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's sessions.
#[derive(Debug, Default)]
pub(crate) struct Dashboard {
    sessions: Sessions,
}

/// Whether `path` is the dashboard's: its page, files and endpoints.
pub(crate) fn is_dashboard(path: &str) -> bool {
    path == "/" || path.starts_with("/dashboard/")
}

/// Whether the front door lets a request without a gateway key reach `path` when keyward has
/// keys: the page and its files (which hold nothing), and its endpoints, which check the
/// session themselves.
pub(crate) fn admits_anonymous(path: &str) -> bool {
    is_dashboard(path)
}

/// Whether this is the dashboard page calling its own endpoints: a dashboard path, a browser
/// saying the request is same-origin (or saying nothing), and an `Origin` that is the address the
/// request was sent to. A rebound name passes this too, and is refused by the front door's
/// `Host` check (without keys) or has neither key nor session (with keys).
pub(crate) fn from_own_page(parts: &Parts) -> bool {
    if !is_dashboard(parts.uri.path()) {
        return false;
    }
    let headers = &parts.headers;
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if !matches!(text("sec-fetch-site"), None | Some("same-origin")) {
        return false;
    }
    match (text(header::ORIGIN.as_str()), text(header::HOST.as_str())) {
        (Some(origin), Some(host)) => origin
            .strip_prefix("http://")
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

/// Answers a dashboard request.
pub(crate) async fn handle(
    gateway: &Gateway,
    parts: &Parts,
    caller: Caller,
    body: &Bytes,
) -> Response {
    let get = parts.method == Method::GET || parts.method == Method::HEAD;
    let post = parts.method == Method::POST;
    let mut response = match (parts.uri.path(), get, post) {
        ("/", true, _) => file(INDEX, "text/html; charset=utf-8"),
        ("/dashboard/app.js", true, _) => file(SCRIPT, "text/javascript; charset=utf-8"),
        ("/dashboard/app.css", true, _) => file(STYLE, "text/css; charset=utf-8"),
        ("/dashboard/icon.svg", true, _) => file(ICON, "image/svg+xml"),
        ("/dashboard/api/state", true, _) => state(gateway, &parts.headers, caller).await,
        ("/dashboard/api/login", _, true) => login(gateway, body),
        ("/dashboard/api/logout", _, true) => logout(gateway, &parts.headers),
        (
            "/"
            | "/dashboard/app.js"
            | "/dashboard/app.css"
            | "/dashboard/icon.svg"
            | "/dashboard/api/state"
            | "/dashboard/api/login"
            | "/dashboard/api/logout",
            _,
            _,
        ) => refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{} does not take {}", parts.uri.path(), parts.method),
        ),
        _ => refusal(
            StatusCode::NOT_FOUND,
            "the dashboard has no such page: open / on keyward's address",
        ),
    };
    secure(response.headers_mut());
    response
}

fn file(text: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}

fn refusal(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": {"message": message}}))).into_response()
}

/// What every dashboard answer carries: the policy, no sniffing, no framing, no referrer, no
/// use by other origins, no caching.
fn secure(headers: &mut HeaderMap) {
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// The gateway key (its index) a dashboard request speaks for: its own key, or its session's.
/// `Some(None)`: keyward has no keys, anyone local may look.
fn viewer(gateway: &Gateway, headers: &HeaderMap, caller: Caller) -> Option<Option<usize>> {
    match caller {
        Caller::Open => Some(None),
        Caller::Keyed(key) => Some(Some(key)),
        Caller::Anonymous => session::cookie(headers)
            .and_then(|id| gateway.dashboard.sessions.key(id, Instant::now()))
            .map(Some),
    }
}

/// `GET /dashboard/api/state`: the page's data, or (200, so the page's console stays clean)
/// `login_required` when keyward has keys and the request has neither a key nor a session.
async fn state(gateway: &Gateway, headers: &HeaderMap, caller: Caller) -> Response {
    let Some(viewer) = viewer(gateway, headers, caller) else {
        return Json(json!({"login_required": true})).into_response();
    };
    let name = viewer
        .and_then(|key| gateway.config.key(key))
        .map(|k| k.name.clone());
    Json(state::state(gateway, viewer.is_some(), name).await).into_response()
}

/// `POST /dashboard/api/login {"key"}`: a session for a gateway key (the key is never echoed,
/// kept or logged; the cookie holds a random id).
fn login(gateway: &Gateway, body: &Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct SignIn {
        key: String,
    }
    if gateway.config.api_keys.is_empty() {
        return Json(json!({"signed_in": false, "message": "keyward has no gateway keys: the dashboard needs no sign-in"})).into_response();
    }
    let Ok(SignIn { key }) = serde_json::from_slice(body) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "send {\"key\": \"<a gateway key>\"}",
        );
    };
    let Some(index) = gateway.key_index(key.trim()) else {
        return Json(
            json!({"signed_in": false, "message": "that is not one of keyward's gateway keys"}),
        )
        .into_response();
    };
    let id = gateway.dashboard.sessions.open(index, Instant::now());
    let name = gateway.config.key(index).map(|k| k.name.clone());
    let mut response = Json(json!({"signed_in": true, "key": name})).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(Some(&id))) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /dashboard/api/logout`: ends the session and clears its cookie.
fn logout(gateway: &Gateway, headers: &HeaderMap) -> Response {
    if let Some(id) = session::cookie(headers) {
        gateway.dashboard.sessions.close(id);
    }
    let mut response = Json(json!({"signed_in": false})).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&session::set_cookie(None)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(path: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .body(())
            .map(|r| r.into_parts().0)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The page's own requests pass with their Origin; another port, another site, or a model
    /// endpoint do not.
    #[test]
    fn only_the_page_itself_is_same_origin() {
        let own = [
            ("host", "127.0.0.1:7411"),
            ("origin", "http://127.0.0.1:7411"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert!(from_own_page(&parts("/dashboard/api/login", &own)));
        assert!(!from_own_page(&parts("/v1/responses", &own)));
        assert!(!from_own_page(&parts(
            "/dashboard/api/state",
            &[
                ("host", "127.0.0.1:7411"),
                ("origin", "http://127.0.0.1:8000"),
                ("sec-fetch-site", "same-site")
            ]
        )));
        assert!(!from_own_page(&parts(
            "/dashboard/api/state",
            &[
                ("host", "127.0.0.1:7411"),
                ("origin", "http://127.0.0.1:7411"),
                ("sec-fetch-site", "cross-site")
            ]
        )));
        assert!(!from_own_page(&parts(
            "/dashboard/api/state",
            &[
                ("host", "127.0.0.1:7411"),
                ("origin", "https://evil.example")
            ]
        )));
        assert!(
            is_dashboard("/") && is_dashboard("/dashboard/app.js") && !is_dashboard("/v1/models")
        );
    }
}
