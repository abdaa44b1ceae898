//! One request pipeline for every model endpoint, in named phases:
//!
//! 1. **parse** the caller's dialect into a public Responses request (`dialect::*::translate`);
//! 2. **route**: the profiles that may serve it, in order (`pool`: routes, strategy, the
//!    conversation's sticky profile);
//! 3. **send** to each in turn (`upstream::Upstream::send`: the provider makes the request one
//!    its API accepts, drops and reports what it cannot honour, adds its credentials); a profile
//!    that needs a login, cannot be reached, or answers with a usage limit is skipped (the limit
//!    rests it until its reset) and the next one is tried; nothing is retried once an answer has
//!    begun;
//! 4. **answer** in the caller's dialect (`answer`: passed through when the caller speaks the
//!    upstream's API, else translated incrementally, or assembled);
//!
//! and every failure on the way is rendered once, in the caller's dialect.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::error::ErrorExtras;
use super::{answer, ApiError, Gateway};
use crate::dialect::{self, Answer, Dialect, Translated};
use crate::pool::{Candidate, NoCandidate};
use crate::profile::ProfileId;
use crate::store::Cooldown;
use crate::upstream::{Limit, Outgoing, SendError};

/// Selects a profile by id (no failover); without it, the pool decides.
pub const PROFILE_HEADER: &str = "x-keyward-profile";
/// Lists the request fields keyward dropped because the upstream cannot honour them.
pub const DROPPED_HEADER: &str = "x-keyward-dropped";
/// Names the upstream model that served an aliased name.
pub const UPSTREAM_MODEL_HEADER: &str = "x-keyward-upstream-model";
/// Headers naming a conversation, besides the request's `prompt_cache_key`.
const SESSION_HEADERS: &[&str] = &[
    "session_id",
    "session-id",
    "conversation_id",
    "x-claude-code-session-id",
];

pub(super) async fn serve(
    gateway: &Arc<Gateway>,
    dialect: Dialect,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    match run(gateway, dialect, headers, &body).await {
        Ok(response) => response,
        Err(error) => error.render(dialect),
    }
}

/// Why a profile did not serve this request.
enum Skip {
    /// Resting from an earlier limit.
    Resting(ProfileId, Cooldown),
    /// Answered with a limit just now.
    Limited(ProfileId, Limit, ApiError),
    /// Needs a login, cannot refresh, or cannot be reached.
    Unavailable(ProfileId, ApiError),
}

async fn run(
    gateway: &Arc<Gateway>,
    dialect: Dialect,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let translated = {
        let body = body.clone();
        crate::cpu::run(body.len(), move || parse(dialect, &body))
            .await
            .map_err(|stopping| ApiError::unavailable(stopping.to_string()))??
    };
    let forced = forced_profile(headers)?;
    let session = session_key(&translated, headers);
    let pool = &gateway.pool;
    let candidates = pool
        .candidates(
            dialect,
            &translated.model,
            session.as_deref(),
            forced.as_ref(),
        )
        .map_err(no_candidate)?;
    let Translated {
        body: request,
        model: asked,
        stream,
        dropped: mut dropped_in_translation,
        renamed,
        answer,
    } = translated;
    let mut request = Some(request);
    let mut skipped = Vec::new();
    let now = Utc::now();
    let last = candidates.len() - 1;
    for (index, Candidate { upstream, model }) in candidates.into_iter().enumerate() {
        let profile = upstream.profile().clone();
        if let Some(cooldown) = pool.cooldown(&profile, now) {
            skipped.push(Skip::Resting(profile, cooldown));
            continue;
        }
        // Each attempt may rewrite the request its own way; the last takes the original.
        let attempt = if index == last {
            request.take()
        } else {
            request.clone()
        }
        .unwrap_or_default();
        let native = upstream.wire().is_native(dialect);
        let outgoing = Outgoing {
            body: attempt,
            model: &model,
            original: native.then_some(body),
            native,
            client_headers: headers,
        };
        let started = std::time::Instant::now();
        let sent = upstream.send(outgoing).await;
        gateway
            .metrics
            .upstream(&profile.to_string(), started.elapsed().as_secs_f64());
        let sent = match sent {
            Ok(sent) => sent,
            Err(SendError::Invalid(invalid)) => return Err(invalid.into()),
            Err(SendError::Access(error)) => {
                skipped.push(Skip::Unavailable(profile, error.into()));
                continue;
            }
            Err(SendError::Unreachable(detail)) => {
                tracing::warn!(profile = %profile, %detail, "upstream unreachable; trying the next profile");
                skipped.push(Skip::Unavailable(profile, ApiError::upstream(detail)));
                continue;
            }
        };
        let response = sent.response;
        if !response.status().is_success() {
            let (status, answer_headers, error_body) = answer::read_error(response).await;
            // A usage limit's answer reports its (full) windows too.
            if let Some(usage) = upstream.usage(&answer_headers, now) {
                pool.observe_usage(&profile, usage);
            }
            let error = ApiError::from_upstream(status, &error_body, answer_headers.clone());
            match upstream.limit(status, &answer_headers, &error_body, now) {
                Some(limit) => {
                    pool.cool(&profile, &limit, now);
                    skipped.push(Skip::Limited(profile, limit, error));
                    continue;
                }
                None => return Err(error),
            }
        }
        if let Some(usage) = upstream.usage(response.headers(), now) {
            pool.observe_usage(&profile, usage);
        }
        pool.served(&profile, session.as_deref());
        dropped_in_translation.extend(
            sent.dropped
                .iter()
                .map(|field| dialect::client_name(&renamed, field).to_string()),
        );
        let keyward_headers =
            keyward_headers(&profile, &asked, &model, &dropped_in_translation, dialect);
        return answer_in_dialect(response, native, stream, answer, keyward_headers).await;
    }
    Err(exhausted(&asked, skipped, now))
}

/// Phase 1: the caller's request as a public Responses request.
fn parse(dialect: Dialect, body: &[u8]) -> Result<Translated, ApiError> {
    let translated = match dialect {
        Dialect::Responses => dialect::responses::translate(body),
        Dialect::Chat => dialect::chat::translate(body),
        Dialect::Completions => dialect::completions::translate(body),
        Dialect::Messages => dialect::messages::translate(body),
    };
    Ok(translated?)
}

/// The profile the caller named, if it did.
fn forced_profile(headers: &HeaderMap) -> Result<Option<ProfileId>, ApiError> {
    match headers.get(PROFILE_HEADER).map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(text)) => text
            .parse()
            .map(Some)
            .map_err(|e: crate::profile::ProfileIdError| ApiError::bad_request(e.to_string())),
        Some(Err(_)) => Err(ApiError::bad_request(format!(
            "{PROFILE_HEADER} is not valid text"
        ))),
    }
}

/// What names this conversation: its prompt cache key, or a session header.
fn session_key(translated: &Translated, headers: &HeaderMap) -> Option<String> {
    if let Some(key) = translated
        .body
        .get("prompt_cache_key")
        .and_then(|v| v.as_str())
    {
        return Some(key.to_string());
    }
    SESSION_HEADERS
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok())
        .map(str::to_string)
}

fn no_candidate(refusal: NoCandidate) -> ApiError {
    match refusal {
        NoCandidate::UnknownProfile(name) => ApiError::not_found(format!(
            "keyward has no profile `{name}`; `keyward status` lists them"
        ))
        .with_code("unknown_profile"),
        NoCandidate::ProfileCannotServe { profile, model } => ApiError::not_found(format!(
            "profile {profile} does not serve the model `{model}` on this endpoint"
        ))
        .with_code("model_not_found"),
        NoCandidate::UnknownModel(model) => ApiError::unknown_model(&model),
    }
}

fn keyward_headers(
    profile: &ProfileId,
    asked: &str,
    model: &str,
    dropped: &[String],
    dialect: Dialect,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, text: &str| {
        if let Ok(value) = HeaderValue::from_str(text) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set(PROFILE_HEADER, &profile.to_string());
    if model != asked {
        set(UPSTREAM_MODEL_HEADER, model);
    }
    if !dropped.is_empty() {
        let list = dropped.join(", ");
        tracing::debug!(dialect = dialect.as_str(), dropped = %list, "fields the upstream cannot honour were dropped");
        set(DROPPED_HEADER, &list);
    }
    headers
}

/// Phase 4: the answer in the caller's dialect.
async fn answer_in_dialect(
    response: reqwest::Response,
    native: bool,
    stream: bool,
    answer: Option<Box<dyn Answer>>,
    mut headers: HeaderMap,
) -> Result<Response, ApiError> {
    let events = answer::is_event_stream(&response);
    match (native, stream, answer) {
        (true, true, _) if events => Ok(answer::pass_through(response, headers)),
        (true, true, _) => Ok(answer::pass_body(response, headers)),
        // A Responses caller wanting one object from an upstream that only streams.
        (true, false, None) if events => {
            headers.extend(answer::answer_headers(response.headers()));
            let assembled = answer::assemble(response).await?;
            Ok(answer::reply(&assembled, None, headers))
        }
        (true, false, _) => Ok(answer::pass_body(response, headers)),
        (false, true, Some(answer)) => {
            Ok(answer::translate_stream(response, answer.stream(), headers))
        }
        (false, false, answer) => {
            headers.extend(answer::answer_headers(response.headers()));
            let assembled = answer::assemble(response).await?;
            Ok(answer::reply(&assembled, answer.as_deref(), headers))
        }
        // Every dialect but the upstream's own has an answer translator.
        (false, true, None) => Ok(answer::pass_through(response, headers)),
    }
}

/// No profile served: every one rests at a limit (429 until the earliest reset, naming each),
/// or the first one's failure, naming the others tried.
fn exhausted(model: &str, skipped: Vec<Skip>, now: DateTime<Utc>) -> ApiError {
    let resets: Vec<(ProfileId, DateTime<Utc>, String)> = skipped
        .iter()
        .filter_map(|skip| match skip {
            Skip::Resting(id, c) => Some((id.clone(), c.until, c.reason.clone())),
            Skip::Limited(id, l, _) => Some((id.clone(), l.until, l.reason.clone())),
            Skip::Unavailable(..) => None,
        })
        .collect();
    let earliest = resets.iter().map(|(_, until, _)| *until).min();
    let retry_after = earliest.map(|at| (at - now).num_seconds().max(1) as u64);
    if let [Skip::Limited(..)] = skipped.as_slice() {
        if let Some(Skip::Limited(_, _, error)) = skipped.into_iter().next() {
            // One profile, and the upstream said why: its own words (the Codex CLI reads them).
            return ApiError {
                retry_after,
                ..error
            };
        }
        return ApiError::bad_request("no profile could serve this request");
    }
    if let Some(earliest) = earliest {
        let when = |at: &DateTime<Utc>| {
            format!(
                "{} (in {})",
                at.format("%Y-%m-%d %H:%M:%S UTC"),
                crate::report::relative((*at - now).num_seconds()).trim_start_matches("in ")
            )
        };
        let mut parts: Vec<String> = resets
            .iter()
            .map(|(id, until, reason)| format!("{id}: {reason}, until {}", when(until)))
            .collect();
        parts.extend(skipped.iter().filter_map(|skip| match skip {
            Skip::Unavailable(id, error) => Some(format!("{id}: {}", error.message)),
            _ => None,
        }));
        let message = format!(
            "every profile that serves `{model}` is resting at a usage limit: {}. keyward serves again by itself after the earliest reset, {}",
            parts.join("; "),
            when(&earliest)
        );
        let resets_in = (earliest - now).num_seconds().max(1);
        return ApiError {
            status: axum::http::StatusCode::TOO_MANY_REQUESTS,
            kind: "usage_limit_reached",
            code: Some("usage_limit_reached".into()),
            retry_after,
            extras: Some(Box::new(ErrorExtras {
                // The Codex backend's own shape, so the Codex CLI tells its user when to retry.
                error: Some(json!({
                    "type": "usage_limit_reached",
                    "code": "usage_limit_reached",
                    "message": message,
                    "param": null,
                    "resets_at": earliest.timestamp(),
                    "resets_in_seconds": resets_in,
                })),
                headers: HeaderMap::new(),
            })),
            ..ApiError::bad_request(message)
        };
    }
    let mut others = Vec::new();
    let mut first = None;
    for skip in skipped {
        if let Skip::Unavailable(id, error) = skip {
            match first {
                None => first = Some(error),
                Some(_) => others.push(format!("{id}: {}", error.message)),
            }
        }
    }
    match first {
        Some(mut error) => {
            if !others.is_empty() {
                error.message = format!("{} (also tried: {})", error.message, others.join("; "));
            }
            error
        }
        None => ApiError::bad_request("no profile could serve this request"),
    }
}
