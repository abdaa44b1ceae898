//! `GET /oauth/authorize`: the "Sign in with ChatGPT" page the Codex CLI sends
//! a browser to, as strict as the real one about what it accepts; and
//! `POST /oauth/authorize/decision`, where its consent form goes. Approving
//! redirects the browser to the client's loopback `redirect_uri` with `code`
//! and `state`; cancelling (or a test's `POST /admin/authorize` error, such as
//! `missing_codex_entitlement`) redirects with `error` instead.
//!
//! A request whose client or `redirect_uri` is not registered gets an error
//! page and no redirect (OAuth must never redirect to an unknown address);
//! other mistakes are redirected back as `error=invalid_request`.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use reqwest::Url;
use serde::Deserialize;

use crate::login_state::{CLIENT_ID, LOOPBACK_REDIRECTS};
use crate::provider_state::now_secs;
use crate::server::Shared;

/// What the client must ask for: an id token and a refresh token.
const REQUIRED_SCOPES: &[&str] = &["openid", "offline_access"];

pub(crate) async fn authorize(State(app): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let params = match parse_query(query.as_deref().unwrap_or("")) {
        Ok(params) => params,
        Err(problem) => return error_page(&problem),
    };
    let get = |key: &str| params.get(key).map(String::as_str);
    if get("client_id") != Some(CLIENT_ID) {
        return error_page("Unknown client_id.");
    }
    let Some(redirect_uri) = get("redirect_uri").filter(|r| LOOPBACK_REDIRECTS.contains(r)) else {
        return error_page("redirect_uri is not registered for this client.");
    };
    let state = get("state").unwrap_or("");
    let problem = if get("response_type") != Some("code") {
        Some("response_type must be code.")
    } else if get("code_challenge_method") != Some("S256") {
        Some("code_challenge_method must be S256.")
    } else if get("code_challenge").is_none_or(|c| c.len() != 43) {
        Some("code_challenge must be a base64url SHA-256 digest.")
    } else if state.is_empty() {
        Some("state is required.")
    } else if !REQUIRED_SCOPES
        .iter()
        .all(|s| get("scope").is_some_and(|scope| scope.split(' ').any(|x| x == *s)))
    {
        Some("scope must include openid and offline_access.")
    } else {
        None
    };
    if let Some(problem) = problem {
        return redirect_with(
            redirect_uri,
            &[
                ("error", "invalid_request"),
                ("error_description", problem),
                ("state", state),
            ],
        );
    }
    let (id, account) = {
        let mut logins = app.logins();
        let id = logins.hold(
            redirect_uri,
            state,
            get("code_challenge").unwrap_or(""),
            get("scope").unwrap_or(""),
            now_secs(),
        );
        let account = logins
            .consent
            .email
            .clone()
            .unwrap_or_else(|| "user@example.com".into());
        (id, account)
    };
    Html(consent_page(&id, &account)).into_response()
}

#[derive(Deserialize)]
pub(crate) struct Decision {
    request: String,
    decision: String,
}

pub(crate) async fn decide(State(app): State<Shared>, Form(form): Form<Decision>) -> Response {
    let now = now_secs();
    let mut logins = app.logins();
    let Some(pending) = logins.take_pending(&form.request, now) else {
        return error_page(
            "This sign-in request has expired or was already answered; start again from your app.",
        );
    };
    let state = pending.state.as_str();
    if form.decision != "approve" {
        return redirect_with(
            &pending.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "The user cancelled the sign-in."),
                ("state", state),
            ],
        );
    }
    if let Some(error) = logins.consent.error.clone() {
        let description = logins.consent.error_description.clone().unwrap_or_default();
        return redirect_with(
            &pending.redirect_uri,
            &[
                ("error", &error),
                ("error_description", &description),
                ("state", state),
            ],
        );
    }
    let identity = logins.consent.identity();
    let code = logins.issue_code(
        &pending.redirect_uri,
        &pending.code_challenge,
        identity,
        now,
    );
    redirect_with(
        &pending.redirect_uri,
        &[("code", &code), ("scope", &pending.scope), ("state", state)],
    )
}

/// The query's parameters; a parameter given twice is refused, as the real
/// server refuses it.
fn parse_query(query: &str) -> Result<HashMap<String, String>, String> {
    let url = Url::parse(&format!("http://mock/?{query}")).map_err(|e| e.to_string())?;
    let mut params = HashMap::new();
    for (key, value) in url.query_pairs() {
        if params.insert(key.to_string(), value.to_string()).is_some() {
            return Err(format!("The parameter {key} is given twice."));
        }
    }
    Ok(params)
}

fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return error_page("redirect_uri is not a URL.");
    };
    url.query_pairs_mut().extend_pairs(params);
    (StatusCode::SEE_OTHER, [(header::LOCATION, url.to_string())]).into_response()
}

fn error_page(problem: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><title>Sign-in error</title></head><body><h1>Something went wrong</h1><p id=\"error\">{}</p></body></html>",
        escape(problem)
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

fn consent_page(request: &str, account: &str) -> String {
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in with ChatGPT</title></head>
<body>
<h1>Sign in to Codex with ChatGPT</h1>
<p>Codex will use your ChatGPT account <b id="account">{account}</b>.</p>
<form method="post" action="/oauth/authorize/decision">
<input type="hidden" name="request" value="{request}">
<button id="approve" type="submit" name="decision" value="approve">Continue</button>
<button id="deny" type="submit" name="decision" value="deny">Cancel</button>
</form>
</body></html>"#,
        account = escape(account),
        request = escape(request),
    )
}

pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
