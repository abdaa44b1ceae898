//! The Codex device-code sign-in (not RFC 8628), as the real server runs it:
//!
//! - `POST /api/accounts/deviceauth/usercode` `{"client_id"}` →
//!   `{"device_auth_id","user_code","interval"}` (`interval` a string, as the
//!   real server sends it); 404 while device sign-in is switched off
//!   (`POST /admin/device {"enabled": false}`), as for an account that has not
//!   allowed "device code authorization for Codex".
//! - `POST /api/accounts/deviceauth/token` `{"device_auth_id","user_code"}`:
//!   403 while the user has not approved, 404 for a code that is unknown,
//!   expired or already handed out, then once `{"authorization_code",
//!   "code_challenge","code_verifier"}`, exchanged at `/oauth/token` with
//!   `redirect_uri={issuer}/deviceauth/callback`.
//! - `GET /codex/device`: the page a user types the code into; its form posts
//!   to `POST /codex/device`. Tests approve with `POST /admin/device/approve`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::json;

use crate::authorize::escape;
use crate::login_state::{DevicePoll, CLIENT_ID};
use crate::provider_state::now_secs;
use crate::server::Shared;

#[derive(Deserialize)]
struct UserCodeRequest {
    client_id: String,
}

#[derive(Deserialize)]
struct TokenPoll {
    device_auth_id: String,
    user_code: String,
}

fn not_found(message: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": {"message": message, "type": "invalid_request_error", "code": "not_found"}})),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"message": message, "type": "invalid_request_error", "code": "invalid_request"}})),
    )
        .into_response()
}

pub(crate) async fn usercode(State(app): State<Shared>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<UserCodeRequest>(&body) else {
        return bad_request("Expected a JSON body with client_id.");
    };
    let mut logins = app.logins();
    if !logins.device_enabled {
        return not_found("Device code authorization is not enabled for this account.");
    }
    if request.client_id != CLIENT_ID {
        return bad_request("Unknown client_id.");
    }
    let (device_auth_id, user_code) = logins.start_device(now_secs());
    Json(json!({
        "device_auth_id": device_auth_id,
        "user_code": user_code,
        "interval": logins.device_interval.to_string(),
    }))
    .into_response()
}

pub(crate) async fn token(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(poll) = serde_json::from_slice::<TokenPoll>(&body) else {
        return bad_request("Expected a JSON body with device_auth_id and user_code.");
    };
    // The issuer as the client addressed it: where its device callback is.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let redirect_uri = format!("http://{host}/deviceauth/callback");
    let answer = app.logins().poll_device(
        &poll.device_auth_id,
        &poll.user_code,
        &redirect_uri,
        now_secs(),
    );
    match answer {
        DevicePoll::Pending => (
            StatusCode::FORBIDDEN,
            Json(json!({"error": {"message": "Device authorization is pending.", "code": "deviceauth_authorization_pending"}})),
        )
            .into_response(),
        DevicePoll::Unknown => not_found("Unknown or expired device authorization."),
        approved @ DevicePoll::Approved { .. } => Json(approved).into_response(),
    }
}

/// The page a signed-in user types the code into.
pub(crate) async fn page() -> Response {
    Html(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Codex device sign-in</title></head><body>
<h1>Enter the code shown in your terminal</h1>
<form method="post" action="/codex/device"><input id="user_code" name="user_code" autocomplete="off">
<button id="approve" type="submit">Continue</button></form></body></html>"#,
    )
    .into_response()
}

#[derive(Deserialize)]
pub(crate) struct Approval {
    user_code: String,
}

pub(crate) async fn approve_page(
    State(app): State<Shared>,
    Form(form): Form<Approval>,
) -> Response {
    if approve(&app, &form.user_code) {
        Html("<!doctype html><html><body><h1 id=\"done\">Device approved</h1><p>Return to your terminal.</p></body></html>").into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Html(format!(
                "<!doctype html><html><body><h1 id=\"error\">Unknown or expired code {}</h1></body></html>",
                escape(&form.user_code)
            )),
        )
            .into_response()
    }
}

/// Approves `user_code` as the account the consent setting names.
pub(crate) fn approve(app: &Shared, user_code: &str) -> bool {
    let mut logins = app.logins();
    let identity = logins.consent.identity();
    logins.approve_device(user_code, identity, now_secs())
}
