//! One request pipeline for every model endpoint, in phases, each a function:
//!
//! 1. [`parse`] the caller's request: its dialect translated into a public Responses request
//!    (`dialect::*::translate`), the profile it names, the conversation it belongs to;
//! 2. [`route`]: the profiles that may serve it, in order (`pool`: routes, strategy, the
//!    conversation's sticky profile), and those the caller's gateway key may use within its
//!    limits ([`within_key`]: `ledger::Limiter`);
//! 3. [`attempt`] them in turn: a resting profile is skipped; the others send (the provider makes
//!    the request one its API accepts, drops and reports what it cannot honour, adds its
//!    credentials: `upstream::Upstream::send`) and their answer is judged: served, skipped (needs
//!    a login, cannot be reached, or answers with a usage limit, which rests it until its reset),
//!    or failed for a reason no other profile would change; nothing is retried once an answer
//!    has begun;
//! 4. [`answer`] in the caller's dialect (`answer`: passed through when the caller speaks the
//!    upstream's API, else translated incrementally, or assembled);
//!
//! and every failure on the way is rendered once, in the caller's dialect; when no profile
//! served, [`exhausted`] says why. Time is the gateway's clock, read once per request. What the
//! phases learn (the model served, the profile, the hops, a limit's refusal, where the answer's
//! usage is read into) is noted for the usage ledger ([`Note`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::error::ErrorExtras;
use super::front_door::Admitted;
use super::threads::{self, Recording, Turn};
use super::{answer, ApiError, Gateway};
use crate::dialect::responses::{public_object, PublicStream};
use crate::dialect::{self, cut_short, Answer, Dialect, Endpoint, Translated};
use crate::ledger::{Note, Refusal, UsageSlot};
use crate::pool::{Candidate, NoCandidate, Pool};
use crate::profile::ProfileId;
use crate::store::Cooldown;
use crate::upstream::{Limit, Outgoing, RequestBody, SendError, UpstreamResponse};

/// Selects a profile by id (no failover); without it, the pool decides.
pub(crate) const PROFILE_HEADER: &str = "x-keyward-profile";
/// Lists the request fields keyward dropped because the upstream cannot honour them.
pub(crate) const DROPPED_HEADER: &str = "x-keyward-dropped";
/// Names the upstream model that served an aliased name.
pub(crate) const UPSTREAM_MODEL_HEADER: &str = "x-keyward-upstream-model";
/// keyward's own headers as names, made once: a name given as text is parsed on every look-up
/// and checked on every insert.
pub(crate) const PROFILE: HeaderName = HeaderName::from_static(PROFILE_HEADER);
const DROPPED: HeaderName = HeaderName::from_static(DROPPED_HEADER);
const UPSTREAM_MODEL: HeaderName = HeaderName::from_static(UPSTREAM_MODEL_HEADER);
/// Headers naming a conversation, besides the request's `prompt_cache_key`.
const SESSION_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("session_id"),
    HeaderName::from_static("session-id"),
    HeaderName::from_static("conversation_id"),
    HeaderName::from_static("x-claude-code-session-id"),
];

/// The answer to a model request; `key`: the gateway key it presented. What the request's
/// phases learn of it for the ledger is left in `note`.
pub(super) async fn serve(
    gateway: &Arc<Gateway>,
    endpoint: Endpoint,
    headers: &HeaderMap,
    admitted: &mut Admitted,
    key: Option<usize>,
    note: &mut Note,
) -> Response {
    let dialect = endpoint.dialect();
    match run(gateway, endpoint, headers, admitted, key, note).await {
        Ok(response) => response,
        Err(error) => error.render(dialect),
    }
}

/// The caller's request, as [`parse`] leaves it for the phases after.
struct Request<'a> {
    dialect: Dialect,
    headers: &'a HeaderMap,
    /// The caller's own bytes, for an upstream that speaks its API.
    original: &'a Bytes,
    /// The public Responses request each attempt starts from (the last attempt takes it).
    body: Option<RequestBody>,
    /// The model the caller asked for.
    asked: String,
    stream: bool,
    /// Fields dropped in translation, in the caller's names.
    dropped: Vec<String>,
    /// Fields translation renamed, for naming the upstream's drops in the caller's words.
    renamed: Vec<(&'static str, &'static str)>,
    /// The answer's translator into the caller's dialect (none for a Responses caller).
    translator: Option<Box<dyn Answer>>,
    /// What names the conversation, for its sticky profile.
    session: Option<String>,
    /// The profile the caller named, which alone may serve it.
    forced: Option<ProfileId>,
    /// A thread continue keyward cannot serve: refused if a Responses upstream is tried.
    thread_refusal: Option<ApiError>,
}

/// How one profile's attempt ended.
enum Attempt {
    /// It answered: the answer's headers are in, its body is still to come.
    Served(Served),
    /// It did not serve; the next profile is tried.
    Skipped(Skip),
    /// A failure no other profile would change (an invalid request, the upstream's own refusal).
    Failed(ApiError),
}

/// A profile's answer, ready for phase 4.
struct Served {
    profile: ProfileId,
    /// The upstream model that served.
    model: String,
    /// Whether the caller speaks the upstream's API.
    native: bool,
    response: UpstreamResponse,
    /// Fields the upstream could not honour, in its API's names.
    dropped: Vec<String>,
    /// The caller's own request went upstream untouched (`upstream::Sent::verbatim`).
    verbatim: bool,
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
    endpoint: Endpoint,
    headers: &HeaderMap,
    admitted: &mut Admitted,
    key: Option<usize>,
    note: &mut Note,
) -> Result<Response, ApiError> {
    let body = admitted.body.clone();
    let turn = match endpoint {
        Endpoint::Plain(Dialect::Messages) => {
            let (store, body, owner) = (gateway.threads.clone(), body.clone(), admitted.owner);
            crate::cpu::run(body.len(), move || threads::turn(&store, owner, &body))
                .await
                .map_err(|stopping| ApiError::unavailable(stopping.to_string()))??
        }
        _ => None,
    };
    if let Some(Turn::Continued(continued)) = &turn {
        // A continue is translated as its whole thread: it takes the memory a body of it would.
        admitted
            .reserve_more_work(&gateway.door, continued.work())
            .await?;
    }
    let mut request = parse(endpoint, headers, &body, turn).await?;
    note.asked = Some(crate::ledger::model_name(&request.asked));
    let now = gateway.clock.now();
    let mut candidates = route(&gateway.pool, &request)?;
    if let Some(key) = key {
        candidates = within_key(gateway, key, &request.asked, candidates, now, note)?;
    }
    let last = candidates.len().saturating_sub(1);
    let mut skipped = Vec::new();
    for (index, candidate) in candidates.into_iter().enumerate() {
        match attempt(gateway, &mut request, candidate, index == last, now).await {
            Attempt::Served(mut served) => {
                note.hops = u8::try_from(skipped.len()).unwrap_or(u8::MAX);
                note.profile = Some(served.profile.clone());
                note.served = Some(crate::ledger::model_name(&served.model));
                if gateway.ledger.is_on() {
                    let usage = Arc::new(UsageSlot::default());
                    served.response.tap_usage(usage.clone());
                    note.usage = Some(usage);
                }
                return answer(request, served).await;
            }
            Attempt::Skipped(skip) => skipped.push(skip),
            Attempt::Failed(error) => return Err(error),
        }
    }
    note.hops = u8::try_from(skipped.len().saturating_sub(1)).unwrap_or(u8::MAX);
    Err(exhausted(&request.asked, skipped, now))
}

/// Phase 2, for a request with a gateway key: the candidates the key may use (its `models` and
/// `profiles`, the logins whose usage window it has not taken its share of), and the request
/// counted against its limits; or the refusal, naming the limit.
fn within_key(
    gateway: &Gateway,
    key: usize,
    asked: &str,
    candidates: Vec<Candidate>,
    now: DateTime<Utc>,
    note: &mut Note,
) -> Result<Vec<Candidate>, ApiError> {
    let limiter = gateway.ledger.limiter();
    let mut refuse = |refusal: Refusal| {
        note.refused = Some(refusal.limit);
        refused(refusal)
    };
    limiter.check_model(key, asked).map_err(&mut refuse)?;
    let allowed: Vec<Candidate> = candidates
        .into_iter()
        .filter(|c| limiter.allows_profile(key, c.upstream.profile()))
        .collect();
    if allowed.is_empty() {
        return Err(refuse(limiter.no_profile(key)));
    }
    let mut over = Vec::new();
    let within: Vec<Candidate> = allowed
        .into_iter()
        .filter(|c| {
            let profile = c.upstream.profile();
            let refusal = limiter
                .policy(key)
                .and_then(|p| p.max_window_share)
                .and_then(|_| gateway.pool.usage(profile))
                .and_then(|usage| limiter.over_window_share(key, profile, &usage, now));
            match refusal {
                Some(refusal) => {
                    over.push(refusal);
                    false
                }
                None => true,
            }
        })
        .collect();
    if within.is_empty() {
        // Every login is at the key's share: it may ask again when the first window resets.
        let first = over
            .into_iter()
            .min_by_key(|r| r.retry_after_secs.unwrap_or(u64::MAX));
        if let Some(refusal) = first {
            return Err(refuse(refusal));
        }
    }
    let admission = limiter.admit(key, now).map_err(&mut refuse)?;
    note.admission = admission;
    Ok(within)
}

/// A key's limit, in the caller's dialect: 429 with `Retry-After` for a limit that passes, 403 for
/// a model or profile the key may not use; `x-keyward-limit` and the error's `limit` name it.
fn refused(refusal: Refusal) -> ApiError {
    let limit = refusal.limit.as_str();
    let (status, kind, code) = match refusal.retry_after_secs {
        Some(_) => (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "key_limit_reached",
        ),
        None => (
            axum::http::StatusCode::FORBIDDEN,
            "permission_error",
            "key_not_allowed",
        ),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("x-keyward-limit"),
        HeaderValue::from_static(limit),
    );
    ApiError {
        status,
        kind,
        code: Some(code.into()),
        retry_after: refusal.retry_after_secs,
        extras: Some(Box::new(ErrorExtras {
            error: Some(serde_json::json!({
                "message": refusal.message,
                "type": kind,
                "code": code,
                "param": null,
                "limit": limit,
            })),
            headers,
            details: None,
        })),
        ..ApiError::bad_request(refusal.message)
    }
}

/// Phase 1: the caller's request as a public Responses request, with the profile it names and
/// the conversation it belongs to; a threaded Messages turn as `threads` makes it. A large body is
/// read off the serving thread (`cpu`).
async fn parse<'a>(
    endpoint: Endpoint,
    headers: &'a HeaderMap,
    original: &'a Bytes,
    turn: Option<Turn>,
) -> Result<Request<'a>, ApiError> {
    let dialect = endpoint.dialect();
    let mut thread_refusal = None;
    let parsed = match turn {
        None => {
            let body = original.clone();
            crate::cpu::run(body.len(), move || translate(&endpoint, &body))
                .await
                .map_err(|stopping| ApiError::unavailable(stopping.to_string()))??
        }
        Some(Turn::Threaded { request, recording }) => {
            let translated = crate::cpu::run(original.len(), move || {
                dialect::messages::translate_request(request)
            })
            .await
            .map_err(|stopping| ApiError::unavailable(stopping.to_string()))??;
            Parsed::recorded(translated, recording)
        }
        Some(Turn::Continued(continued)) => {
            // Expanded and translated as its whole thread, however small the caller's body.
            let (translated, recording) = crate::cpu::run(continued.size(), move || {
                let (request, recording) = continued.expand()?;
                let translated = dialect::messages::translate_request(request)?;
                Ok::<_, ApiError>((translated, recording))
            })
            .await
            .map_err(|stopping| ApiError::unavailable(stopping.to_string()))??;
            Parsed::recorded(translated, recording)
        }
        Some(Turn::Refused {
            model,
            stream,
            refusal,
        }) => {
            thread_refusal = Some(refusal);
            Parsed::of(Translated {
                body: Map::new(),
                model,
                stream,
                dropped: Vec::new(),
                renamed: Vec::new(),
                answer: None,
            })
        }
    };
    let forced = forced_profile(headers)?;
    let session = session_key(parsed.prompt_cache_key, headers);
    let Translated {
        body,
        model,
        stream,
        dropped,
        renamed,
        answer,
    } = parsed.translated;
    Ok(Request {
        dialect,
        headers,
        original,
        body: Some(body),
        asked: model,
        stream,
        dropped,
        renamed,
        translator: answer,
        session,
        forced,
        thread_refusal,
    })
}

/// A request as [`translate`] reads it.
struct Parsed {
    translated: Translated<RequestBody>,
    prompt_cache_key: Option<String>,
}

/// The caller's body, in its dialect, as a public Responses request: a Responses caller's own
/// bytes when they are plainly well-formed (read without a tree), else a tree.
fn translate(endpoint: &Endpoint, body: &Bytes) -> Result<Parsed, ApiError> {
    if *endpoint == Endpoint::Plain(Dialect::Responses) {
        if let Some(checked) = dialect::responses::check(body) {
            return Ok(Parsed {
                translated: Translated {
                    body: RequestBody::Raw(body.clone(), Arc::new(checked.shape)),
                    model: checked.model,
                    stream: checked.stream,
                    dropped: Vec::new(),
                    renamed: Vec::new(),
                    answer: None,
                },
                prompt_cache_key: checked.prompt_cache_key,
            });
        }
    }
    Ok(Parsed::of(endpoint.translate(body)?))
}

impl Parsed {
    /// A request a translator built.
    fn of(translated: Translated) -> Self {
        let prompt_cache_key = translated
            .body
            .get("prompt_cache_key")
            .and_then(Value::as_str)
            .map(str::to_string);
        Self {
            translated: translated.map_body(RequestBody::Tree),
            prompt_cache_key,
        }
    }

    /// A threaded turn a translator built, its answer kept for the thread.
    fn recorded(translated: Translated, recording: Recording) -> Self {
        let mut parsed = Self::of(translated);
        parsed.translated.answer = parsed.translated.answer.map(|a| recording.answer(a));
        parsed
    }
}

/// Phase 2: the profiles that may serve the request, in the order to try them (never none).
fn route(pool: &Pool, request: &Request<'_>) -> Result<Vec<Candidate>, ApiError> {
    pool.candidates(
        request.dialect,
        &request.asked,
        request.session.as_deref(),
        request.forced.as_ref(),
    )
    .map_err(no_candidate)
}

/// Phase 3: one profile's try, and what its answer means for the pool (a limit rests it, usage
/// windows are kept, a served conversation sticks to it).
async fn attempt(
    gateway: &Gateway,
    request: &mut Request<'_>,
    Candidate { upstream, model }: Candidate,
    last: bool,
    now: DateTime<Utc>,
) -> Attempt {
    let pool = &gateway.pool;
    let profile = upstream.profile().clone();
    if let Some(cooldown) = pool.cooldown(&profile, now) {
        return Attempt::Skipped(Skip::Resting(profile, cooldown));
    }
    // Each attempt may rewrite the request its own way; the last takes the original.
    let body = if last {
        request.body.take()
    } else {
        request.body.clone()
    }
    .unwrap_or_default();
    let native = upstream.wire().is_native(request.dialect);
    if !native {
        if let Some(refusal) = request.thread_refusal.take() {
            return Attempt::Failed(refusal);
        }
    }
    let outgoing = Outgoing {
        body,
        model: &model,
        original: native.then_some(request.original),
        native,
        size: request.original.len(),
        client_headers: request.headers,
    };
    let started = gateway.clock.monotonic();
    let sent = upstream.send(outgoing).await;
    let waited = gateway.clock.monotonic().saturating_sub(started);
    gateway
        .metrics
        .upstream(profile.as_str(), waited.as_secs_f64());
    let sent = match sent {
        Ok(sent) => sent,
        Err(SendError::Invalid(invalid)) => return Attempt::Failed(invalid.into()),
        Err(SendError::Access(error)) => {
            return Attempt::Skipped(Skip::Unavailable(profile, error.into()))
        }
        Err(unreachable) => {
            tracing::warn!(profile = %profile, detail = %unreachable, "upstream unreachable; trying the next profile");
            let error = ApiError::upstream(unreachable.to_string());
            return Attempt::Skipped(Skip::Unavailable(profile, error));
        }
    };
    let response = sent.response;
    if !response.status().is_success() {
        let (status, headers, body) = answer::read_error(response).await;
        // A usage limit's answer reports its (full) windows too.
        if let Some(usage) = upstream.usage(&headers, now) {
            pool.observe_usage(&profile, usage);
        }
        let error = ApiError::from_upstream(status, &body, headers.clone());
        return match upstream.limit(status, &headers, &body, now) {
            Some(limit) => {
                pool.cool(&profile, &limit, now);
                Attempt::Skipped(Skip::Limited(profile, limit, error))
            }
            None => Attempt::Failed(error),
        };
    }
    if let Some(usage) = upstream.usage(response.headers(), now) {
        pool.observe_usage(&profile, usage);
    }
    pool.served(&profile, request.session.as_deref());
    Attempt::Served(Served {
        profile,
        model,
        native,
        response,
        dropped: sent.dropped,
        verbatim: sent.verbatim,
    })
}

/// The profile the caller named, if it did.
fn forced_profile(headers: &HeaderMap) -> Result<Option<ProfileId>, ApiError> {
    match headers.get(PROFILE).map(|v| v.to_str()) {
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
fn session_key(prompt_cache_key: Option<String>, headers: &HeaderMap) -> Option<String> {
    prompt_cache_key.or_else(|| {
        SESSION_HEADERS
            .iter()
            .find_map(|name| headers.get(name)?.to_str().ok())
            .map(str::to_string)
    })
}

fn no_candidate(refusal: NoCandidate) -> ApiError {
    match refusal {
        NoCandidate::UnknownProfile(name) => ApiError::not_found(format!(
            "keyward has no profile `{}`; `keyward status` lists them",
            cut_short(&name)
        ))
        .with_code("unknown_profile"),
        NoCandidate::ProfileCannotServe { profile, model } => ApiError::not_found(format!(
            "profile {profile} does not serve the model `{}` on this endpoint",
            cut_short(&model)
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
    let mut set = |name: HeaderName, text: &str| {
        if let Ok(value) = HeaderValue::from_str(text) {
            headers.insert(name, value);
        }
    };
    set(PROFILE, profile.as_str());
    if model != asked {
        set(UPSTREAM_MODEL, model);
    }
    if !dropped.is_empty() {
        let list = dropped_list(dropped);
        tracing::debug!(dialect = dialect.as_str(), dropped = %list, "fields the upstream cannot honour were dropped");
        set(DROPPED, &list);
    }
    headers
}

/// The dropped fields as the header lists them: each name cut short, at most 32 of them (a
/// client's unknown fields are its own text, of any length and number).
fn dropped_list(dropped: &[String]) -> String {
    const MAX: usize = 32;
    let mut names: Vec<String> = dropped
        .iter()
        .take(MAX)
        .map(|name| cut_short(name).into_owned())
        .collect();
    if dropped.len() > MAX {
        names.push(format!("and {} more", dropped.len() - MAX));
    }
    names.join(", ")
}

/// Phase 4: the served answer in the caller's dialect, with keyward's headers.
async fn answer(request: Request<'_>, served: Served) -> Result<Response, ApiError> {
    let Request {
        dialect,
        asked,
        stream,
        mut dropped,
        renamed,
        translator,
        ..
    } = request;
    let Served {
        profile,
        model,
        native,
        response,
        dropped: dropped_upstream,
        verbatim,
    } = served;
    dropped.extend(
        dropped_upstream
            .iter()
            .map(|field| dialect::client_name(&renamed, field).to_string()),
    );
    let mut headers = keyward_headers(&profile, &asked, &model, &dropped, dialect);
    let events = response.is_event_stream();
    // A Responses request keyward changed on its way gets an answer in the public API's shape,
    // whatever the upstream left out; the Codex CLI's own, sent as it came, gets the upstream's.
    let public = dialect == Dialect::Responses && !verbatim;
    match (native, stream, translator) {
        (true, true, _) if events && public => Ok(answer::translate_stream(
            response,
            Box::new(PublicStream::new(asked)),
            headers,
        )),
        (true, true, _) if events => Ok(answer::pass_through(response, headers)),
        (true, true, _) => Ok(answer::pass_body(response, headers)),
        // A Responses caller wanting one object from an upstream that only streams.
        (true, false, None) if events => {
            headers.extend(answer::answer_headers(response.headers()));
            let mut assembled = answer::assemble(response).await?;
            if public {
                assembled = public_object(assembled, &asked);
            }
            Ok(answer::reply(&assembled, None, headers))
        }
        (true, false, _) => Ok(answer::pass_body(response, headers)),
        (false, true, Some(translator)) => Ok(answer::translate_stream(
            response,
            Box::new(translator.stream()),
            headers,
        )),
        (false, false, translator) => {
            headers.extend(answer::answer_headers(response.headers()));
            let assembled = answer::assemble(response).await?;
            Ok(answer::reply(&assembled, translator.as_deref(), headers))
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
            "every profile that serves `{}` is resting at a usage limit: {}. keyward serves again by itself after the earliest reset, {}",
            cut_short(model),
            parts.join("; "),
            when(&earliest)
        );
        return ApiError::usage_limit_reached(message, earliest, now);
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn id(text: &str) -> ProfileId {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    /// With every profile resting, the caller gets 429 with `Retry-After` at the earliest reset,
    /// a message naming each profile, and the Codex backend's usage-limit object, which the Codex
    /// CLI reads to tell its user when to retry.
    #[tokio::test]
    async fn every_profile_resting_is_a_usage_limit_the_codex_cli_reads() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let rest = |name: &str, secs: i64, reason: &str| {
            Skip::Resting(
                id(name),
                Cooldown {
                    until: now + chrono::Duration::seconds(secs),
                    reason: reason.into(),
                    since: now,
                },
            )
        };
        let skipped = vec![
            rest("openai-codex:default", 3600, "ChatGPT usage limit reached"),
            rest("openai:default", 90, "rate limited (rate_limit_exceeded)"),
        ];
        let response = exhausted("gpt-6.1-sol", skipped, now).render(Dialect::Responses);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("90")
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        assert_eq!(
            String::from_utf8_lossy(&body),
            concat!(
                r#"{"error":{"type":"usage_limit_reached","code":"usage_limit_reached","#,
                r#""message":"every profile that serves `gpt-6.1-sol` is resting at a usage limit: "#,
                r#"openai-codex:default: ChatGPT usage limit reached, until 2027-01-15 09:00:00 UTC (in 1h 0m); "#,
                r#"openai:default: rate limited (rate_limit_exceeded), until 2027-01-15 08:01:30 UTC (in 1m 30s). "#,
                r#"keyward serves again by itself after the earliest reset, 2027-01-15 08:01:30 UTC (in 1m 30s)","#,
                r#""param":null,"resets_at":1800000090,"resets_in_seconds":90}}"#
            )
        );
    }
}
