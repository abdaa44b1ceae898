//! `POST /oauth/token`: refresh-token rotation with reuse detection, and the
//! exchange of an authorization code for a new token family (checked against
//! its client, redirect and PKCE challenge, single use; `login_state`), behind
//! an optional queue of injected faults.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::json;

use crate::conn_kill::ConnHandle;
use crate::faults::TokenFault;
use crate::login_state::CodeRefusal;
use crate::provider_state::{now_secs, RefreshOutcome, SCOPE};
use crate::server::Shared;

#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    client_id: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

impl TokenRequest {
    /// What the log names the call by: the token or code it presents.
    fn presented(&self) -> Option<&str> {
        self.refresh_token.as_deref().or(self.code.as_deref())
    }
}

/// The Codex CLI sends JSON; standard OAuth clients send a form. A body that
/// parses as neither is treated like one without a refresh token, which the
/// real server answers with `invalid_grant`.
async fn read_request(req: Request) -> TokenRequest {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        match Form::<TokenRequest>::from_request(req, &()).await {
            Ok(Form(body)) => body,
            Err(_) => TokenRequest::default(),
        }
    } else {
        match Bytes::from_request(req, &()).await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Err(_) => TokenRequest::default(),
        }
    }
}

pub(crate) async fn token(
    State(app): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    req: Request,
) -> Response {
    let body = read_request(req).await;
    let token = body.presented();
    let fault = {
        let mut provider = app.provider();
        provider.stats.token_calls += 1;
        provider.pop_token_fault()
    };
    let Some(fault) = fault else {
        return process(&app, &body, None);
    };
    tracing::info!(kind = fault.kind(), "injecting token fault");
    match fault {
        TokenFault::Delay { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            process(&app, &body, Some(&fault))
        }
        TokenFault::Status {
            code,
            consume: false,
        } => {
            app.provider()
                .record(token, "fault:status".into(), Some(&fault));
            injected_status(code)
        }
        TokenFault::Status {
            code,
            consume: true,
        } => {
            // The server did the work but the client only learns of the
            // error: its token is spent and the new one is lost.
            let _lost = process(&app, &body, Some(&fault));
            injected_status(code)
        }
        TokenFault::DropBefore => {
            app.provider()
                .record(token, "fault:drop_before".into(), Some(&fault));
            conn.kill();
            StatusCode::OK.into_response()
        }
        TokenFault::DropAfterIssue => {
            let _lost = process(&app, &body, Some(&fault));
            conn.kill();
            StatusCode::OK.into_response()
        }
        TokenFault::DelayAfterIssue { ms } => {
            let answer = process(&app, &body, Some(&fault));
            tokio::time::sleep(Duration::from_millis(ms)).await;
            answer
        }
    }
}

/// Normal handling. The log names what happened to the token; faults that
/// left it untouched are logged by the caller as `fault:<kind>` instead.
fn process(app: &Shared, body: &TokenRequest, fault: Option<&TokenFault>) -> Response {
    if body.grant_type.as_deref() == Some("authorization_code") {
        return exchange(app, body, fault);
    }
    let token = body.refresh_token.as_deref();
    let mut provider = app.provider();
    if body.grant_type.as_deref() != Some("refresh_token") {
        provider.count_rejection("unsupported_grant_type");
        provider.record(token, "unsupported_grant_type".into(), fault);
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": "unsupported_grant_type",
                "error_description": "Only grant_type=refresh_token and authorization_code are supported.",
            })),
        )
            .into_response();
    }
    let outcome = provider.refresh(token);
    provider.record(token, outcome.label().into(), fault);
    drop(provider);
    tracing::info!(outcome = outcome.label(), "token call");
    outcome_response(outcome)
}

/// `grant_type=authorization_code`: a code from consent (or a device
/// approval) becomes a new token family, once.
fn exchange(app: &Shared, body: &TokenRequest, fault: Option<&TokenFault>) -> Response {
    let checked = app.logins().check_code(
        body.code.as_deref(),
        body.client_id.as_deref(),
        body.redirect_uri.as_deref(),
        body.code_verifier.as_deref(),
        now_secs(),
    );
    let mut provider = app.provider();
    let redeemable = match checked {
        Ok(redeemable) => redeemable,
        Err(refusal) => {
            if let CodeRefusal::Reused { issued_refresh } = &refusal {
                // RFC 6749 §4.1.2: a code presented twice revokes what it issued.
                provider.revoke(issued_refresh);
            }
            provider.count_rejection(refusal.error());
            provider.record(
                body.code.as_deref(),
                format!("code:{}", refusal.error()),
                fault,
            );
            let status = if refusal == CodeRefusal::InvalidClient {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            return (
                status,
                Json(json!({"error": refusal.error(), "error_description": refusal.description()})),
            )
                .into_response();
        }
    };
    let (issued, _account) = provider.login(redeemable.identity);
    provider.stats.logins += 1;
    provider.record(body.code.as_deref(), "code:exchanged".into(), fault);
    drop(provider);
    app.logins()
        .redeemed(&redeemable.code, &issued.refresh_token);
    outcome_response(RefreshOutcome::Rotated(issued))
}

fn outcome_response(outcome: RefreshOutcome) -> Response {
    match outcome {
        RefreshOutcome::Rotated(issued) => Json(json!({
            "id_token": issued.id_token,
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": SCOPE,
        }))
        .into_response(),
        RefreshOutcome::Unknown => (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": "invalid_grant",
                "error_description": "Unknown or malformed refresh token.",
            })),
        )
            .into_response(),
        RefreshOutcome::Invalidated => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {
                "code": "refresh_token_invalidated",
                "message": "Your refresh token has been invalidated. Please sign in again.",
            }})),
        )
            .into_response(),
        RefreshOutcome::Reused => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {
                "code": "refresh_token_reused",
                "message": "Your refresh token has already been used to generate a new access token. Please try signing in again.",
            }})),
        )
            .into_response(),
    }
}

fn injected_status(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let error_code = if status == StatusCode::TOO_MANY_REQUESTS {
        "rate_limit_exceeded"
    } else {
        "server_error"
    };
    let mut response = (
        status,
        Json(json!({"error": {"code": error_code, "message": "injected"}})),
    )
        .into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
