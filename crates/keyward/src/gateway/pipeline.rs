//! One request pipeline for every model endpoint, in named phases:
//!
//! 1. **parse** the caller's dialect into a public Responses request (`dialect::*::translate`);
//! 2. **resolve** the model name (aliases) and **pick** the profile;
//! 3. **prepare** the request for the upstream (`codex::backend::normalise`: what the backend
//!    cannot honour is dropped and reported, or refused);
//! 4. **send** it with the profile's login (`upstream::send`: headers, account id, one
//!    re-validation on 401);
//! 5. **answer** in the caller's dialect (`answer`: streamed incrementally, or assembled);
//!
//! and every failure on the way is rendered once, in the caller's dialect.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName};
use axum::response::Response;

use super::upstream::{self, header_text};
use super::{answer, ApiError, Gateway};
use crate::codex::backend;
use crate::dialect::{self, Dialect, Translated};
use crate::profile::ProfileId;

/// Selects a profile by id; without it, the first configured profile serves.
pub const PROFILE_HEADER: &str = "x-keyward-profile";
/// Lists the request fields keyward dropped because the upstream cannot honour them.
pub const DROPPED_HEADER: &str = "x-keyward-dropped";
/// Names the upstream model that served an aliased name.
pub const UPSTREAM_MODEL_HEADER: &str = "x-keyward-upstream-model";

pub(super) async fn serve(
    gateway: &Arc<Gateway>,
    dialect: Dialect,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    match run(gateway, dialect, headers, body).await {
        Ok(response) => response,
        Err(error) => error.render(dialect),
    }
}

async fn run(
    gateway: &Arc<Gateway>,
    dialect: Dialect,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut translated = parse(dialect, &body)?;
    let upstream_model = gateway
        .models
        .resolve(&translated.model)
        .ok_or_else(|| ApiError::unknown_model(&translated.model))?;
    let profile = pick_profile(gateway, headers)?;
    let (upstream_body, dropped) = prepare(&mut translated, &upstream_model, body)?;

    let mut answer_headers = HeaderMap::new();
    if let Some(value) = header_text(&profile.to_string()) {
        answer_headers.insert(HeaderName::from_static(PROFILE_HEADER), value);
    }
    if upstream_model != translated.model {
        if let Some(value) = header_text(&upstream_model) {
            answer_headers.insert(HeaderName::from_static(UPSTREAM_MODEL_HEADER), value);
        }
    }
    if !dropped.is_empty() {
        tracing::debug!(dialect = dialect.as_str(), dropped = %dropped.join(", "), "fields the upstream cannot honour were dropped");
        if let Some(value) = header_text(&dropped.join(", ")) {
            answer_headers.insert(HeaderName::from_static(DROPPED_HEADER), value);
        }
    }

    let response = upstream::send(gateway, &profile, headers, upstream_body).await?;
    if !response.status().is_success() {
        return Err(answer::upstream_error(response).await);
    }
    match (translated.stream, translated.answer) {
        (true, None) => Ok(answer::pass_through(response, answer_headers)),
        (true, Some(answer)) => Ok(answer::translate_stream(
            response,
            answer.stream(),
            answer_headers,
        )),
        (false, answer_to) => {
            answer_headers.extend(upstream::answer_headers(response.headers()));
            let assembled = answer::assemble(response).await?;
            Ok(answer::reply(
                &assembled,
                answer_to.as_deref(),
                answer_headers,
            ))
        }
    }
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

/// Phase 2: the profile that serves this request.
fn pick_profile(gateway: &Gateway, headers: &HeaderMap) -> Result<ProfileId, ApiError> {
    match headers.get(PROFILE_HEADER).map(|v| v.to_str()) {
        Some(Ok(text)) => text
            .parse()
            .map_err(|e: crate::profile::ProfileIdError| ApiError::bad_request(e.to_string())),
        Some(Err(_)) => Err(ApiError::bad_request(format!(
            "{PROFILE_HEADER} is not valid text"
        ))),
        None => gateway
            .broker
            .profiles()
            .first()
            .map(|p| p.id.clone())
            .ok_or_else(|| ApiError::bad_request("keyward has no profiles configured")),
    }
}

/// Phase 3: the body the upstream gets, and every dropped field by the caller's name. A request
/// that needed no change (the Codex CLI's own) goes as the caller's bytes.
fn prepare(
    translated: &mut Translated,
    upstream_model: &str,
    original: Bytes,
) -> Result<(Bytes, Vec<String>), ApiError> {
    let normalised = backend::normalise(&mut translated.body)?;
    let mut dropped = std::mem::take(&mut translated.dropped);
    dropped.extend(
        normalised
            .dropped
            .iter()
            .map(|field| translated.client_name(field).to_string()),
    );
    let untouched =
        translated.answer.is_none() && !normalised.changed && upstream_model == translated.model;
    if untouched {
        return Ok((original, dropped));
    }
    translated
        .body
        .insert("model".into(), upstream_model.into());
    let bytes = serde_json::to_vec(&translated.body)
        .map_err(|e| ApiError::bad_request(format!("the request cannot be encoded: {e}")))?;
    Ok((Bytes::from(bytes), dropped))
}
