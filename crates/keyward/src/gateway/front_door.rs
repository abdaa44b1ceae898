//! The front door: what every request passes before a route sees it.
//!
//! keyward spends a paid subscription for whoever reaches its port, and browsers can reach
//! loopback ports: a page the user visits may POST to `127.0.0.1:7411` (a "simple" request with a
//! `text/plain` body needs no preflight), or rebind its own host name to 127.0.0.1. So:
//! - a request from a web page (`Origin`, or `Sec-Fetch-Site` cross-site or same-site) is refused
//!   unless its origin is configured, and CORS is granted to configured origins only;
//! - without gateway keys, the `Host` must be a loopback name or address (or a configured name);
//! - with gateway keys, every request carries one (`Authorization: Bearer`, `x-api-key`, or
//!   `x-goog-api-key`; on Gemini's routes also `?key=`, as Google takes it), compared in constant
//!   time; `/healthz` without one says only that keyward is alive, and the dashboard's page asks
//!   for one (its data needs a key or the session it gives). A key is never repeated, and nothing
//!   records a request's query;
//! - the dashboard's own page may call its own endpoints (same origin); nothing else of a page;
//! - a request body must be JSON (a form or `text/plain` post is what a page can send without
//!   asking), no larger than the limit (refused before it is read when its length is declared),
//!   and sent within the body timeout; one sent compressed (`content-encoding` zstd, gzip or
//!   deflate) is decoded here, and no larger than the limit decoded either.
//!
//! Every refusal is a JSON error in the dialect of the route asked for.

use std::borrow::Cow;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::body_coding::{self, Coding, DecodeError};
use super::memory::{MemoryBudget, Reservation};
use super::route::{dialect_of, query_param};
use super::ApiError;
use crate::config::GatewayConfig;
use crate::dialect::Dialect;

/// Request headers a configured browser origin may send.
const CORS_ALLOW_HEADERS: &str = "authorization, content-type, x-api-key, x-goog-api-key, x-goog-api-client, anthropic-version, anthropic-beta, openai-beta, x-keyward-profile, x-stainless-os, x-stainless-lang, x-stainless-arch, x-stainless-runtime, x-stainless-runtime-version, x-stainless-package-version, x-stainless-retry-count, x-stainless-timeout";

pub(super) struct FrontDoor {
    /// SHA-256 of each gateway key: compared digest to digest, so neither the comparison's time
    /// nor a length difference says anything about a key.
    keys: Vec<[u8; 32]>,
    cors_origins: Vec<String>,
    hosts: Vec<String>,
    max_body_bytes: usize,
    body_timeout: Duration,
    memory: MemoryBudget,
}

/// Who is asking, as far as the gateway keys can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// Presented one of keyward's gateway keys: this one (its index in `[gateway]`'s keys).
    Keyed(usize),
    /// keyward has no gateway keys: any local process that reaches the port.
    Open,
    /// keyward has keys and this request presented none that matches.
    Anonymous,
}

impl FrontDoor {
    pub(super) fn new(config: &GatewayConfig) -> Self {
        Self {
            keys: config
                .api_keys
                .iter()
                .map(|key| digest(key.expose().as_bytes()))
                .collect(),
            cors_origins: config.cors_origins.clone(),
            hosts: config.hosts.clone(),
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.body_timeout,
            memory: MemoryBudget::new(config.max_request_memory),
        }
    }

    fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Which gateway key `presented` is, if it is one.
    pub(super) fn key_index(&self, presented: &str) -> Option<usize> {
        use subtle::ConditionallySelectable;
        let presented = digest(presented.as_bytes());
        // Every key is compared, so the time taken says neither whether nor which one matched.
        let (found, index) = self.keys.iter().enumerate().fold(
            (subtle::Choice::from(0), 0u64),
            |(found, index), (at, key)| {
                let matches = key.ct_eq(&presented);
                (
                    found | matches,
                    u64::conditional_select(&index, &(at as u64), matches),
                )
            },
        );
        bool::from(found).then_some(index as usize)
    }

    #[cfg(test)]
    fn key_is_valid(&self, presented: &str) -> bool {
        self.key_index(presented).is_some()
    }

    fn allowed_origin<'a>(&self, origin: &'a str) -> Option<&'a str> {
        self.cors_origins
            .iter()
            .any(|allowed| allowed == origin)
            .then_some(origin)
    }

    fn host_is_allowed(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else {
            return false;
        };
        let name = name.to_ascii_lowercase();
        is_loopback_name(&name) || self.hosts.contains(&name)
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A request the front door let in: who sent it, its body (read within the limits), and what its
/// answer owes the door (its share of the memory budget, given back once the answer has begun,
/// and the CORS grant of a configured origin).
pub(super) struct Admitted {
    pub(super) caller: Caller,
    /// Whose conversation state the request may reach: the digest of the gateway key it
    /// presented (never the key), none without keys.
    pub(super) owner: Option<[u8; 32]>,
    pub(super) body: Bytes,
    reservation: Reservation,
    granted: Option<String>,
}

impl Admitted {
    /// Waits for `bytes` more of the work memory than the body's: a thread's continue expands
    /// to its whole conversation.
    pub(super) async fn reserve_more_work(
        &mut self,
        door: &FrontDoor,
        bytes: usize,
    ) -> Result<(), ApiError> {
        door.memory
            .reserve_more_work(&mut self.reservation, bytes)
            .await
    }

    /// The answer has begun: the body's memory is given back; a configured origin is granted CORS.
    pub(super) fn finish(self, response: &mut Response) {
        drop(self.reservation);
        if let Some(origin) = self.granted {
            grant_cors(response.headers_mut(), &origin);
        }
    }
}

impl FrontDoor {
    /// Lets a request in, or answers it at the door: a refusal in the dialect of the route asked
    /// for, or a CORS preflight's answer.
    pub(super) async fn admit<B>(&self, parts: &Parts, body: B) -> Result<Admitted, Response>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::fmt::Display,
    {
        let dialect = dialect_of(parts);
        let headers = &parts.headers;
        let origin = headers
            .get(header::ORIGIN)
            .map(|v| v.to_str().unwrap_or("<not text>"));
        let granted = origin.and_then(|o| self.allowed_origin(o));
        let own_page = crate::dashboard::from_own_page(parts);
        if let Some(refusal) = refuse_browser(headers, origin, granted.is_some() || own_page) {
            return Err(refusal.render(dialect));
        }
        if headers.get_all(header::HOST).iter().nth(1).is_some() {
            // RFC 9112: a request with more than one Host is refused; which one a check read and
            // which one a later reader takes could differ.
            return Err(
                ApiError::bad_request("the request has more than one Host header").render(dialect),
            );
        }
        if parts.method == Method::OPTIONS && headers.contains_key("access-control-request-method")
        {
            return Err(preflight(granted));
        }
        if !self.has_keys() {
            let host = parts
                .uri
                .authority()
                .map(|a| a.as_str())
                .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
                .unwrap_or_default();
            if !self.host_is_allowed(host) {
                return Err(forbidden(
                    "forbidden_host",
                    "keyward answers only requests addressed to a loopback name or address (localhost, 127.0.0.1, [::1]): another Host may be a web page that rebound its name to this machine. To serve another name, add it to [gateway] hosts in keyward's config.toml",
                )
                .render(dialect));
            }
        }
        let presented = presented_key(headers).map(Cow::Borrowed).or_else(|| {
            (dialect == Dialect::Gemini)
                .then(|| query_param(&parts.uri, "key"))
                .flatten()
        });
        let caller = if !self.has_keys() {
            Caller::Open
        } else {
            match presented.as_deref().and_then(|k| self.key_index(k)) {
                Some(index) => Caller::Keyed(index),
                None => Caller::Anonymous,
            }
        };
        let path = parts.uri.path();
        if caller == Caller::Anonymous
            && path != "/healthz"
            && !crate::dashboard::admits_anonymous(path)
        {
            return Err(unauthorized(presented.is_some(), dialect).render(dialect));
        }
        let owner = match caller {
            Caller::Keyed(_) => presented.as_deref().map(|key| digest(key.as_bytes())),
            Caller::Open | Caller::Anonymous => None,
        };
        let mut reservation = Reservation::default();
        let body = if parts.method == Method::POST {
            read_body(self, headers, body, &mut reservation)
                .await
                .map_err(|refusal| refusal.render(dialect))?
        } else {
            Bytes::new()
        };
        Ok(Admitted {
            caller,
            owner,
            body,
            reservation,
            granted: granted.map(str::to_string),
        })
    }
}

/// A request a web page sent (its `Origin`, or the browser's `Sec-Fetch-Site`) from an origin
/// not configured.
fn refuse_browser(headers: &HeaderMap, origin: Option<&str>, granted: bool) -> Option<ApiError> {
    if granted {
        return None;
    }
    const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
    let cross_site = headers
        .get(SEC_FETCH_SITE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| matches!(site, "cross-site" | "same-site"));
    if origin.is_none() && !cross_site {
        return None;
    }
    Some(forbidden(
        "forbidden_origin",
        &format!(
            "keyward refuses requests from web pages ({}): a page you visit could otherwise spend your subscription. To let a page you trust use keyward, add its origin to [gateway] cors_origins in keyward's config.toml",
            match origin {
                Some(origin) => format!("this one came from {origin}"),
                None => "this one came from another site".into(),
            }
        ),
    ))
}

fn preflight(granted: Option<&str>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(origin) = granted {
        let headers = response.headers_mut();
        grant_cors(headers, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(CORS_ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

fn grant_cors(headers: &mut HeaderMap, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(
                "x-keyward-dropped, x-keyward-profile, x-keyward-upstream-model, retry-after",
            ),
        );
    }
}

/// The key a client presented in a header: `Authorization: Bearer <key>`, `x-api-key: <key>` or
/// `x-goog-api-key: <key>`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    // Named once: a name given as text is parsed on every look-up.
    const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
    const X_GOOG_API_KEY: HeaderName = HeaderName::from_static("x-goog-api-key");
    let header = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    bearer
        .or_else(|| header(&X_API_KEY))
        .or_else(|| header(&X_GOOG_API_KEY))
}

fn forbidden(code: &str, message: &str) -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        kind: "permission_error",
        code: Some(code.into()),
        ..ApiError::bad_request(message)
    }
}

fn unauthorized(presented: bool, dialect: Dialect) -> ApiError {
    // The key presented is never repeated: it may be one of the user's other secrets.
    let message = match (presented, dialect) {
        (true, Dialect::Gemini) => "the gateway key presented is not one of keyward's: check the key your client sends (as `x-goog-api-key: <key>`, `?key=<key>` or `Authorization: Bearer <key>`; the Gemini CLI and google-genai send GEMINI_API_KEY)",
        (true, _) => "the gateway key presented is not one of keyward's: check the key your client sends (as `Authorization: Bearer <key>` or `x-api-key: <key>`)",
        (false, Dialect::Gemini) => "keyward requires a gateway key: send it as `x-goog-api-key: <key>`, `?key=<key>` or `Authorization: Bearer <key>` (the Gemini CLI and google-genai: GEMINI_API_KEY)",
        (false, _) => "keyward requires a gateway key: send it as `Authorization: Bearer <key>` or `x-api-key: <key>` (OpenAI SDKs: api_key; Anthropic SDKs and Claude Code: ANTHROPIC_API_KEY)",
    };
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        kind: "authentication_error",
        code: Some("invalid_api_key".into()),
        ..ApiError::bad_request(message)
    }
}

/// Reads a POST body whole, within the size, time and memory limits, after checking it is JSON;
/// then waits for the memory its parsing will take.
async fn read_body<B>(
    door: &FrontDoor,
    headers: &HeaderMap,
    mut body: B,
    reservation: &mut Reservation,
) -> Result<Bytes, ApiError>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display,
{
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .is_some_and(|v| {
            let ascii =
                |part: Option<&str>, is: &str| part.is_some_and(|p| p.eq_ignore_ascii_case(is));
            v.eq_ignore_ascii_case("application/json")
                || (ascii(v.get(..12), "application/")
                    && ascii(v.len().checked_sub(5).and_then(|at| v.get(at..)), "+json"))
        });
    if !is_json {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: Some("unsupported_media_type".into()),
            ..ApiError::bad_request(
                "keyward takes JSON request bodies: send `content-type: application/json`",
            )
        });
    }
    let coding = Coding::of(headers).map_err(unsupported_coding)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > door.max_body_bytes as u64) {
        linger(body);
        return Err(too_large(door.max_body_bytes));
    }
    // A declared length is held up front (and the buffer sized once); a chunked body as it comes.
    let declared = declared.map_or(0, |len| len as usize);
    if let Err(busy) = door.memory.hold_body(reservation, declared) {
        linger(body);
        return Err(busy);
    }
    let deadline = tokio::time::Instant::now() + door.body_timeout;
    let mut bytes = Vec::with_capacity(declared);
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(ApiError {
                    status: StatusCode::REQUEST_TIMEOUT,
                    code: Some("body_timeout".into()),
                    ..ApiError::bad_request(format!(
                        "the request body did not arrive within {}s",
                        door.body_timeout.as_secs()
                    ))
                })
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(ApiError::bad_request(format!(
                    "the request body could not be read: {e}"
                )))
            }
            Ok(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if bytes.len() + data.len() > door.max_body_bytes {
                    linger(body);
                    return Err(too_large(door.max_body_bytes));
                }
                let beyond_declared =
                    (bytes.len() + data.len()).saturating_sub(declared.max(bytes.len()));
                if let Err(busy) = door.memory.hold_body(reservation, beyond_declared) {
                    linger(body);
                    return Err(busy);
                }
                bytes.extend_from_slice(&data);
            }
        }
    }
    let bytes = match coding {
        Coding::Identity => bytes,
        coding => decoded(door, coding, bytes, reservation).await?,
    };
    door.memory.reserve_work(reservation, &bytes).await?;
    Ok(Bytes::from(bytes))
}

/// A compressed body, decoded within the body limits (`body_coding`). Off the serving thread:
/// how long it takes depends on the size it decodes to, not known before.
async fn decoded(
    door: &FrontDoor,
    coding: Coding,
    coded: Vec<u8>,
    reservation: &mut Reservation,
) -> Result<Vec<u8>, ApiError> {
    let limit = door.max_body_bytes;
    let decoded = crate::cpu::run(crate::cpu::INLINE_BYTES, move || {
        body_coding::decode(coding, &coded, limit)
    })
    .await
    .map_err(|stopping| ApiError::unavailable(stopping.to_string()))?;
    match decoded {
        Ok(bytes) => {
            door.memory.hold_body(reservation, bytes.len())?;
            Ok(bytes)
        }
        Err(bomb @ DecodeError::TooLarge { .. }) => Err(ApiError {
            message: bomb.to_string(),
            ..too_large(limit)
        }),
        Err(corrupt) => Err(ApiError::bad_request(corrupt.to_string())),
    }
}

fn unsupported_coding(named: String) -> ApiError {
    ApiError {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: Some("unsupported_media_type".into()),
        ..ApiError::bad_request(format!(
            "keyward reads request bodies as they are or with content-encoding zstd, gzip or deflate, not `{named}`: send the body uncompressed or in one of those"
        ))
    }
}

/// After refusing a body unread, reads and discards a bounded rest of it in the background, as
/// nginx's lingering close does: a client still sending would otherwise meet a reset that can
/// destroy the refusal before it reads it.
fn linger<B>(mut body: B)
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
{
    const LINGER_BYTES: usize = 16 << 20;
    const LINGER_TIME: Duration = Duration::from_secs(5);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + LINGER_TIME;
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => drained += frame.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
    });
}

fn too_large(limit: usize) -> ApiError {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        extras: Some(Box::new(super::error::ErrorExtras {
            headers,
            ..Default::default()
        })),
        code: Some("request_too_large".into()),
        ..ApiError::bad_request(format!(
            "the request body is larger than keyward's limit of {limit} bytes ([gateway] max_body_bytes)"
        ))
    }
}

/// The name in a `Host` value (`name[:port]` or `[IPv6][:port]`, IPv6 without its brackets), or
/// `None` when the value is not of that form: anything after the name but a port, empty labels
/// (`localhost..`), characters no host name has.
fn host_name(host: &str) -> Option<&str> {
    let (name, rest) = match host.strip_prefix('[') {
        Some(bracketed) => {
            let (inside, rest) = bracketed.split_once(']')?;
            inside.parse::<std::net::Ipv6Addr>().ok()?;
            (inside, rest)
        }
        None => {
            let (name, rest) = host.split_at(host.find(':').unwrap_or(host.len()));
            let labels = name.strip_suffix('.').unwrap_or(name);
            let well_formed = labels.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
            if !well_formed {
                return None;
            }
            (name, rest)
        }
    };
    let port_ok = rest.is_empty()
        || rest.strip_prefix(':').is_some_and(|port| {
            (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit())
        });
    port_ok.then_some(name)
}

/// `localhost` and its subdomains (RFC 6761: always loopback), 127.0.0.0/8 and ::1.
fn is_loopback_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn door(keys: &[&str]) -> FrontDoor {
        FrontDoor::new(&GatewayConfig {
            api_keys: keys.iter().map(|k| Secret::new(*k)).collect(),
            cors_origins: vec!["https://app.example".into()],
            hosts: vec!["keyward.lan".into()],
            ..GatewayConfig::default()
        })
    }

    /// Loopback names and addresses pass; rebinding names do not, unless configured.
    #[test]
    fn hosts() {
        let door = door(&[]);
        for ok in [
            "127.0.0.1:7411",
            "localhost:7411",
            "LOCALHOST",
            "[::1]:7411",
            "127.8.9.1",
            "app.localhost:1",
            "keyward.lan:7411",
            "localhost.:7411",
            "[::1]",
        ] {
            assert!(door.host_is_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example:7411",
            "127.0.0.1.evil.example",
            "0.0.0.0:7411",
            "[::2]:1",
            "",
            "localhost.evil.example",
            "[::1]evil.example",
            "[::1]:7411evil",
            "[::1]:",
            "localhost..",
            "localhost..:7411",
            ".localhost",
            "127.0.0.1:7411:7411",
            "127.0.0.1:74111111",
            "local host",
            "localhost@evil.example",
            "[evil.example]",
        ] {
            assert!(!door.host_is_allowed(bad), "{bad}");
        }
    }

    /// Keys match whole, whichever of several; anything else does not.
    #[test]
    fn keys() {
        let door = door(&["first-key-0123456789", "second-key-0123456789"]);
        assert_eq!(door.key_index("second-key-0123456789"), Some(1));
        assert_eq!(door.key_index("first-key-0123456789"), Some(0));
        assert!(!door.key_is_valid("first-key-012345678"));
        assert!(!door.key_is_valid(""));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(presented_key(&headers), Some("abc"));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("xyz"));
        assert_eq!(presented_key(&headers), Some("xyz"));
    }

    /// A page's request is refused unless its origin is configured.
    #[test]
    fn browsers() {
        let mut headers = HeaderMap::new();
        assert!(refuse_browser(&headers, None, false).is_none());
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(refuse_browser(&headers, None, false).is_some());
        assert!(refuse_browser(&HeaderMap::new(), Some("https://evil.example"), false).is_some());
        assert!(refuse_browser(&headers, Some("https://app.example"), true).is_none());
        let mut same_origin = HeaderMap::new();
        same_origin.insert("sec-fetch-site", HeaderValue::from_static("none"));
        assert!(refuse_browser(&same_origin, None, false).is_none());
    }
}
