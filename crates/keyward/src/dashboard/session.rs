//! The dashboard's sign-in sessions, when keyward has gateway keys: a random id in an `HttpOnly`,
//! `SameSite=Strict` cookie scoped to the dashboard's endpoints, mapped here to the key it was
//! opened with. The cookie holds neither the key nor anything derived from it; the map holds the
//! id's SHA-256, so a memory dump does not give a usable cookie. A session lasts [`LIFETIME`], or
//! until it signs out; sessions live as long as the process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long a sign-in lasts.
pub(crate) const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Beyond this many sessions the oldest is ended (a sign-in loop cannot grow memory).
const MAX_SESSIONS: usize = 256;
pub(crate) const COOKIE: &str = "keyward_session";
/// Where the browser sends the cookie: the dashboard's endpoints, never the model API.
pub(crate) const COOKIE_PATH: &str = "/dashboard/api";

#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<[u8; 32], Session>>,
}

#[derive(Debug, Clone, Copy)]
struct Session {
    key: usize,
    until: Instant,
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// A new session for the gateway key at `key`: the cookie value.
    pub(crate) fn open(&self, key: usize, now: Instant) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, session| session.until > now);
        if open.len() >= MAX_SESSIONS {
            if let Some(oldest) = open.iter().min_by_key(|(_, s)| s.until).map(|(id, _)| *id) {
                open.remove(&oldest);
            }
        }
        open.insert(
            digest(&id),
            Session {
                key,
                until: now + LIFETIME,
            },
        );
        id
    }

    /// The key of the live session `id` names.
    pub(crate) fn key(&self, id: &str, now: Instant) -> Option<usize> {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&digest(id))
            .filter(|session| session.until > now)
            .map(|session| session.key)
    }

    pub(crate) fn close(&self, id: &str) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&digest(id));
    }
}

/// The session id the request's cookie carries.
pub(crate) fn cookie(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

/// The `Set-Cookie` that opens a session, or (`None`) ends it.
pub(crate) fn set_cookie(id: Option<&str>) -> String {
    match id {
        Some(id) => format!(
            "{COOKIE}={id}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age={}",
            LIFETIME.as_secs()
        ),
        None => format!("{COOKIE}=; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age=0"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session names its key until it expires or is closed; ids are random and unguessable.
    #[test]
    fn sessions_expire_and_close() {
        let sessions = Sessions::default();
        let now = Instant::now();
        let id = sessions.open(2, now);
        assert_eq!(id.len(), 64);
        assert_ne!(id, sessions.open(2, now));
        assert_eq!(sessions.key(&id, now), Some(2));
        assert_eq!(sessions.key(&id, now + LIFETIME), None);
        assert_eq!(sessions.key("nope", now), None);
        sessions.close(&id);
        assert_eq!(sessions.key(&id, now), None);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            axum::http::HeaderValue::from_static("a=b; keyward_session=abc; c=d"),
        );
        assert_eq!(cookie(&headers), Some("abc"));
        assert!(set_cookie(Some("abc")).contains("HttpOnly; SameSite=Strict"));
    }
}
