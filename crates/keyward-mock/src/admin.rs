//! Test-control endpoints. Bodies are parsed by hand rather than with `Json`
//! so `curl -d` works without a content-type header and an empty body means
//! "all defaults". A body that does not parse, or a setting that cannot be
//! applied, is answered `400 {"error": "bad request body: …"}`.
//!
//! The limits failover tests set (real time; a window of N seconds lifts N
//! seconds later):
//! - `POST /admin/usage_limit {"account_id", "resets_in_seconds"?,
//!   "primary_used_percent"?, "secondary_used_percent"?}`: the ChatGPT account
//!   gets the Codex usage-limit 429 until its window resets (0 lifts it at
//!   once), and its served answers report the percentages (default 10 and 5;
//!   0..=100). `"primary_percent_per_request"`, `"secondary_percent_per_request"`
//!   script usage: each served request adds that much, and the one that fills the
//!   primary window limits the account for `"exhausted_resets_in_seconds"`
//!   (default 3600). Absent fields keep their setting. Answers
//!   `{"account_id", "limited", "resets_at", "resets_in_seconds",
//!   "primary_used_percent", "secondary_used_percent"}` (the reset fields
//!   `null` when not limited).
//! - `POST /admin/api_key_limit {"api_key", "retry_after_seconds"}`: the OpenAI
//!   or Anthropic key gets its API's rate-limit 429 for that long (0 lifts it).
//!   Answers `{"api_key_last4", "limited", "resets_at", "retry_after_seconds"}`.
//!
//! The sign-in server's controls:
//! - `POST /admin/authorize {"account_id"?, "email"?, "plan"?, "access_ttl"?,
//!   "error"?, "error_description"?}`: the account the next sign-ins (consent
//!   page and device approvals) are of, and an OAuth error consent answers
//!   with instead of a code (`missing_codex_entitlement`, ...); the whole
//!   setting is replaced, so `{}` is back to the defaults.
//! - `POST /admin/device {"enabled"?, "interval"?}`: device sign-in on or off
//!   (off: `usercode` answers 404) and the poll interval it announces.
//! - `POST /admin/device/approve {"user_code"}`: the user approves that code
//!   (404 if there is no such live code).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::api_key;
use crate::device_auth;
use crate::faults::{ResponseFault, TokenFault};
use crate::limits::{AccountUsage, KeySetting, Remaining, UsageSetting};
use crate::login_state::ConsentSetting;
use crate::provider_state::{now_ms, LoginRequest};
use crate::server::Shared;

/// A body that did not parse; kept small so `Result`s carrying it stay cheap.
struct BadBody(String);

impl IntoResponse for BadBody {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("bad request body: {}", self.0)})),
        )
            .into_response()
    }
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, BadBody> {
    serde_json::from_slice(body).map_err(|e| BadBody(e.to_string()))
}

fn parse_or_default<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, BadBody> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse(body)
    }
}

#[derive(Deserialize)]
struct TokenRef {
    refresh_token: String,
}

pub(crate) async fn login(State(app): State<Shared>, body: Bytes) -> Response {
    let req: LoginRequest = match parse_or_default(&body) {
        Ok(req) => req,
        Err(bad) => return bad.into_response(),
    };
    let (issued, account_id) = app.provider().login(req);
    Json(json!({
        "id_token": issued.id_token,
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "account_id": account_id,
    }))
    .into_response()
}

pub(crate) async fn stats(State(app): State<Shared>) -> Response {
    Json(app.provider().stats.clone()).into_response()
}

pub(crate) async fn token_faults(State(app): State<Shared>, body: Bytes) -> Response {
    match parse::<Vec<TokenFault>>(&body) {
        Ok(faults) => {
            let queued = faults.len();
            app.provider().push_token_faults(faults);
            Json(json!({"queued": queued})).into_response()
        }
        Err(bad) => bad.into_response(),
    }
}

pub(crate) async fn response_faults(State(app): State<Shared>, body: Bytes) -> Response {
    match parse::<Vec<ResponseFault>>(&body) {
        Ok(faults) => {
            let queued = faults.len();
            app.provider().push_response_faults(faults);
            Json(json!({"queued": queued})).into_response()
        }
        Err(bad) => bad.into_response(),
    }
}

pub(crate) async fn ttl_queue(State(app): State<Shared>, body: Bytes) -> Response {
    match parse::<Vec<i64>>(&body) {
        Ok(ttls) => {
            let queued = ttls.len();
            app.provider().push_ttls(ttls);
            Json(json!({"queued": queued})).into_response()
        }
        Err(bad) => bad.into_response(),
    }
}

pub(crate) async fn revoke(State(app): State<Shared>, body: Bytes) -> Response {
    let req: TokenRef = match parse(&body) {
        Ok(req) => req,
        Err(bad) => return bad.into_response(),
    };
    match app.provider().revoke(&req.refresh_token) {
        Some(already) => Json(json!({"revoked": true, "already_revoked": already})).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "unknown refresh token"})),
        )
            .into_response(),
    }
}

pub(crate) async fn inspect(State(app): State<Shared>, body: Bytes) -> Response {
    match parse::<TokenRef>(&body) {
        Ok(req) => Json(app.provider().inspect(&req.refresh_token)).into_response(),
        Err(bad) => bad.into_response(),
    }
}

pub(crate) async fn release(State(app): State<Shared>, Path(key): Path<String>) -> Response {
    app.gates.release(&key);
    Json(json!({"released": key})).into_response()
}

pub(crate) async fn log(State(app): State<Shared>) -> Response {
    Json(app.provider().log().to_vec()).into_response()
}

/// The last requests the responses endpoint received, oldest first.
pub(crate) async fn requests(State(app): State<Shared>) -> Response {
    Json(app.journal().recent()).into_response()
}

/// `POST /admin/usage_limit`: limits a ChatGPT account until its window resets
/// (`resets_in_seconds`, 0 lifts it) and sets the usage percentages its answers
/// report; answers the account's usage as it now stands.
pub(crate) async fn usage_limit(State(app): State<Shared>, body: Bytes) -> Response {
    let setting: UsageSetting = match parse(&body) {
        Ok(setting) => setting,
        Err(bad) => return bad.into_response(),
    };
    let usage = app.limits().set_account(&setting, now_ms());
    match usage {
        Ok(usage) => Json(usage_report(&setting.account_id, &usage)).into_response(),
        Err(bad) => BadBody(bad.0).into_response(),
    }
}

fn usage_report(account_id: &str, usage: &AccountUsage) -> serde_json::Value {
    json!({
        "account_id": account_id,
        "limited": usage.limited.is_some(),
        "resets_at": usage.limited.map(|r| r.resets_at),
        "resets_in_seconds": usage.limited.map(|r| r.secs),
        "primary_used_percent": usage.primary_used_percent,
        "secondary_used_percent": usage.secondary_used_percent,
    })
}

/// `POST /admin/api_key_limit`: rate limits an OpenAI or Anthropic API key for
/// `retry_after_seconds` (0 lifts it); the key is named by its last four
/// characters only in the answer.
pub(crate) async fn api_key_limit(State(app): State<Shared>, body: Bytes) -> Response {
    let setting: KeySetting = match parse(&body) {
        Ok(setting) => setting,
        Err(bad) => return bad.into_response(),
    };
    let limited = app.limits().set_api_key(&setting, now_ms());
    match limited {
        Ok(limited) => Json(key_report(&setting.api_key, limited)).into_response(),
        Err(bad) => BadBody(bad.0).into_response(),
    }
}

fn key_report(api_key: &str, limited: Option<Remaining>) -> serde_json::Value {
    json!({
        "api_key_last4": api_key::last4(api_key),
        "limited": limited.is_some(),
        "resets_at": limited.map(|r| r.resets_at),
        "retry_after_seconds": limited.map(|r| r.secs),
    })
}

/// `POST /admin/authorize`: how consent answers from now on.
pub(crate) async fn authorize(State(app): State<Shared>, body: Bytes) -> Response {
    match parse_or_default::<ConsentSetting>(&body) {
        Ok(setting) => {
            app.logins().consent = setting;
            Json(json!({"ok": true})).into_response()
        }
        Err(bad) => bad.into_response(),
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceSetting {
    enabled: Option<bool>,
    interval: Option<u64>,
}

/// `POST /admin/device`: device sign-in on or off, and its poll interval.
pub(crate) async fn device(State(app): State<Shared>, body: Bytes) -> Response {
    let setting: DeviceSetting = match parse_or_default(&body) {
        Ok(setting) => setting,
        Err(bad) => return bad.into_response(),
    };
    let mut logins = app.logins();
    if let Some(enabled) = setting.enabled {
        logins.device_enabled = enabled;
    }
    if let Some(interval) = setting.interval {
        logins.device_interval = interval;
    }
    Json(json!({"enabled": logins.device_enabled, "interval": logins.device_interval}))
        .into_response()
}

#[derive(Deserialize)]
struct UserCodeRef {
    user_code: String,
}

/// `POST /admin/device/approve`: the user approves a device code.
pub(crate) async fn device_approve(State(app): State<Shared>, body: Bytes) -> Response {
    let req: UserCodeRef = match parse(&body) {
        Ok(req) => req,
        Err(bad) => return bad.into_response(),
    };
    if device_auth::approve(&app, &req.user_code) {
        Json(json!({"approved": true})).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no live device code with that user_code"})),
        )
            .into_response()
    }
}
