//! Which endpoint a request asks for: one match on the method and path, so a request's route is
//! known once and names its handler, its dialect (for the shape of every refusal) and its metrics
//! label (a fixed name, never what a client put in a path).
//!
//! Gemini's routes are `/v1beta/models/{model}:{method}` and, as `google-genai` defaults to
//! API version `v1`, `/v1/models/{model}:{method}`. Only `GET /v1/models` (and
//! `/v1/models/{id}`) is ambiguous: it is OpenAI's list unless the request shows it comes from
//! a Gemini client (an `x-goog-api-key` or `x-goog-api-client` header, or a `key` in the query).

use std::borrow::Cow;

use axum::http::request::Parts;
use axum::http::{Method, Uri};

use crate::dialect::gemini::{Call, Framing};
use crate::dialect::{Dialect, Endpoint};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// A model endpoint: the pipeline, in this dialect.
    Model(Endpoint),
    CountTokens,
    /// Gemini's `:countTokens`, for this model.
    GeminiCountTokens(String),
    Models,
    /// One model, its id percent-decoded.
    OneModel(String),
    /// The model list in Gemini's shape.
    GeminiModels,
    /// One model in Gemini's shape, its id percent-decoded.
    GeminiModel(String),
    Health,
    Metrics,
    /// The dashboard's page, its files and its endpoints (`crate::dashboard`, which checks the
    /// method).
    Dashboard,
    /// A known path asked with a method it does not take.
    WrongMethod,
    NotFound,
}

impl Route {
    /// The route of a request: its method and path, and for Gemini its query (`alt=sse`) and
    /// headers (which list `GET /v1/models` means).
    pub(super) fn of_request(parts: &Parts) -> Self {
        match Self::of(&parts.method, parts.uri.path()) {
            Self::Model(Endpoint::Gemini(call))
                if query_param(&parts.uri, "alt").as_deref() == Some("sse") =>
            {
                Self::Model(Endpoint::Gemini(Call {
                    framing: Framing::Sse,
                    ..call
                }))
            }
            Self::Models if speaks_gemini(parts) => Self::GeminiModels,
            Self::OneModel(id) if speaks_gemini(parts) => Self::GeminiModel(id),
            route => route,
        }
    }

    /// The route of a method and path alone (a Gemini stream framed as a JSON array).
    pub(super) fn of(method: &Method, path: &str) -> Self {
        if crate::dashboard::is_dashboard(path) {
            return Self::Dashboard;
        }
        let post = method == Method::POST;
        // A HEAD is answered as its GET is, without the body.
        let get = method == Method::GET || method == Method::HEAD;
        let plain = |dialect| Self::Model(Endpoint::Plain(dialect));
        let (route, wants_post) = match path {
            "/v1/responses" => (plain(Dialect::Responses), true),
            "/v1/chat/completions" => (plain(Dialect::Chat), true),
            "/v1/completions" => (plain(Dialect::Completions), true),
            "/v1/messages" => (plain(Dialect::Messages), true),
            "/v1/messages/count_tokens" => (Self::CountTokens, true),
            "/v1/models" => (Self::Models, false),
            "/v1beta/models" => (Self::GeminiModels, false),
            "/healthz" => (Self::Health, false),
            "/metrics" => (Self::Metrics, false),
            _ => match gemini_call(path) {
                Some((model, "generateContent")) => (gemini(model, Framing::Whole), true),
                Some((model, "streamGenerateContent")) => (gemini(model, Framing::Array), true),
                Some((model, "countTokens")) => (Self::GeminiCountTokens(model), true),
                _ if path.starts_with("/v1beta/") => match model_id(path, "/v1beta/models/") {
                    // Another method on a model (`:embedContent`, ...) is not served.
                    Some(id) if !id.contains(':') => (Self::GeminiModel(id), false),
                    _ => return Self::NotFound,
                },
                // Under `/v1/models/`, any other id is OpenAI's (`ft:gpt-4o:org::id` has colons).
                _ => match model_id(path, "/v1/models/") {
                    Some(id) => (Self::OneModel(id), false),
                    None => return Self::NotFound,
                },
            },
        };
        if (wants_post && post) || (!wants_post && get) {
            route
        } else {
            Self::WrongMethod
        }
    }

    /// The metrics label.
    pub(super) fn label(&self, path: &str) -> &'static str {
        match self {
            Self::Model(endpoint) => endpoint.dialect().as_str(),
            Self::CountTokens | Self::GeminiCountTokens(_) => "count_tokens",
            Self::Models | Self::OneModel(_) | Self::GeminiModels | Self::GeminiModel(_) => {
                "models"
            }
            Self::Health => "healthz",
            Self::Metrics => "metrics",
            Self::Dashboard => "dashboard",
            // A wrong method on a known path is counted under that path's route.
            Self::WrongMethod => Self::of(&Method::POST, path)
                .known()
                .or_else(|| Self::of(&Method::GET, path).known())
                .map_or("other", |route| route.label(path)),
            Self::NotFound => "other",
        }
    }

    fn known(self) -> Option<Self> {
        (!matches!(self, Self::WrongMethod | Self::NotFound)).then_some(self)
    }

    /// The dialect of the model endpoint this is, if it is one.
    pub(super) fn dialect(&self) -> Option<Dialect> {
        match self {
            Self::Model(endpoint) => Some(endpoint.dialect()),
            _ => None,
        }
    }
}

fn gemini(model: String, framing: Framing) -> Route {
    Route::Model(Endpoint::Gemini(Call { model, framing }))
}

/// The model (percent-decoded) and method of a Gemini call's path,
/// `/v1beta/models/{model}:{method}` or `/v1/models/{model}:{method}`.
fn gemini_call(path: &str) -> Option<(String, &str)> {
    let rest = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))?;
    let (model, method) = rest.rsplit_once(':')?;
    (!model.is_empty() && !model.contains('/')).then(|| (decoded(model), method))
}

/// Whether a Gemini call's method is one keyward serves.
fn serves_method(method: &str) -> bool {
    matches!(
        method,
        "generateContent" | "streamGenerateContent" | "countTokens"
    )
}

/// The model id after `prefix`, percent-decoded: one path segment.
fn model_id(path: &str, prefix: &str) -> Option<String> {
    let id = path.strip_prefix(prefix)?;
    (!id.is_empty() && !id.contains('/')).then(|| decoded(id))
}

fn decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether a request comes from a Gemini client: Google's key or client header, or a key in the
/// query.
fn speaks_gemini(parts: &Parts) -> bool {
    parts.headers.contains_key("x-goog-api-key")
        || parts.headers.contains_key("x-goog-api-client")
        || query_param(&parts.uri, "key").is_some()
}

/// The first value of the query parameter `name`, decoded (`+` is a space).
pub(super) fn query_param<'a>(uri: &'a Uri, name: &str) -> Option<Cow<'a, str>> {
    uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| {
            if value.contains('+') {
                Cow::Owned(decoded(&value.replace('+', " ")))
            } else {
                percent_encoding::percent_decode_str(value).decode_utf8_lossy()
            }
        })
    })
}

/// The dialect of the route a request asks for, for the shape of a refusal: Gemini's under
/// `/v1beta`, for a Gemini call or a Gemini client's model list; Anthropic's under
/// `/v1/messages`; else OpenAI's.
pub(super) fn dialect_of(parts: &Parts) -> Dialect {
    let path = parts.uri.path();
    let gemini_list =
        (path == "/v1/models" || path.starts_with("/v1/models/")) && speaks_gemini(parts);
    let gemini_call = gemini_call(path).is_some_and(|(_, method)| serves_method(method));
    if path == "/v1beta" || path.starts_with("/v1beta/") || gemini_call || gemini_list {
        Dialect::Gemini
    } else if path.starts_with("/v1/messages") {
        Dialect::Messages
    } else {
        Dialect::Responses
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            Route::of(&Method::POST, "/v1/messages"),
            Route::Model(Endpoint::Plain(Dialect::Messages))
        );
        assert_eq!(Route::of(&Method::GET, "/v1/messages"), Route::WrongMethod);
        assert_eq!(Route::of(&Method::HEAD, "/healthz"), Route::Health);
        assert_eq!(
            Route::of(&Method::GET, "/v1/models/gpt%2D6"),
            Route::OneModel("gpt-6".into())
        );
        assert_eq!(Route::of(&Method::GET, "/v1/models/a/b"), Route::NotFound);
        assert_eq!(Route::of(&Method::GET, "/nope"), Route::NotFound);
        assert_eq!(
            Route::of(&Method::PUT, "/v1/responses").label("/v1/responses"),
            "responses"
        );
        assert_eq!(Route::of(&Method::GET, "/nope").label("/nope"), "other");
    }

    fn parts(method: Method, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = axum::http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
            .body(())
            .unwrap_or_else(|e| panic!("{e}"))
            .into_parts()
            .0
    }

    fn gemini_model(model: &str, framing: Framing) -> Route {
        gemini(model.into(), framing)
    }

    /// Gemini's calls under `/v1beta` and `/v1`, framed by `alt=sse`; its model list where a
    /// Gemini client asks for it; OpenAI ids with colons stay OpenAI's.
    #[test]
    fn gemini_routes() {
        let of = |method, uri: &str, headers: &[(&str, &str)]| {
            Route::of_request(&parts(method, uri, headers))
        };
        assert_eq!(
            of(
                Method::POST,
                "/v1beta/models/gemini-3-pro:generateContent",
                &[]
            ),
            gemini_model("gemini-3-pro", Framing::Whole)
        );
        assert_eq!(
            of(
                Method::POST,
                "/v1/models/gemini%2D3:streamGenerateContent?alt=sse&key=k",
                &[]
            ),
            gemini_model("gemini-3", Framing::Sse)
        );
        assert_eq!(
            of(Method::POST, "/v1beta/models/g:streamGenerateContent", &[]),
            gemini_model("g", Framing::Array)
        );
        assert_eq!(
            of(Method::POST, "/v1beta/models/g:countTokens", &[]),
            Route::GeminiCountTokens("g".into())
        );
        assert_eq!(
            of(Method::GET, "/v1beta/models/g:generateContent", &[]),
            Route::WrongMethod
        );
        assert_eq!(
            of(Method::POST, "/v1beta/models/g:embedContent", &[]),
            Route::NotFound
        );
        assert_eq!(of(Method::GET, "/v1beta/models", &[]), Route::GeminiModels);
        assert_eq!(
            of(Method::GET, "/v1beta/models/g", &[]),
            Route::GeminiModel("g".into())
        );
        assert_eq!(of(Method::GET, "/v1/models", &[]), Route::Models);
        assert_eq!(
            of(Method::GET, "/v1/models", &[("x-goog-api-key", "k")]),
            Route::GeminiModels
        );
        assert_eq!(
            of(Method::GET, "/v1/models?key=k", &[]),
            Route::GeminiModels
        );
        assert_eq!(
            of(
                Method::GET,
                "/v1/models/g",
                &[("x-goog-api-client", "google-genai-sdk/3.6.1")]
            ),
            Route::GeminiModel("g".into())
        );
        assert_eq!(
            of(Method::GET, "/v1/models/ft:gpt-4o:org::abc", &[]),
            Route::OneModel("ft:gpt-4o:org::abc".into())
        );
        let label = |uri: &str| {
            let parts = parts(Method::POST, uri, &[]);
            Route::of_request(&parts).label(parts.uri.path())
        };
        assert_eq!(
            label("/v1beta/models/g:generateContent?key=secret"),
            "gemini"
        );
        assert_eq!(label("/v1beta/models/g:countTokens"), "count_tokens");
    }

    /// Refusals take Gemini's shape on Gemini's routes.
    #[test]
    fn refusal_dialects() {
        let dialect =
            |method, uri: &str, headers: &[(&str, &str)]| dialect_of(&parts(method, uri, headers));
        assert_eq!(
            dialect(Method::POST, "/v1beta/anything", &[]),
            Dialect::Gemini
        );
        assert_eq!(
            dialect(Method::POST, "/v1/models/g:generateContent", &[]),
            Dialect::Gemini
        );
        assert_eq!(
            dialect(Method::GET, "/v1/models", &[("x-goog-api-key", "k")]),
            Dialect::Gemini
        );
        assert_eq!(dialect(Method::GET, "/v1/models", &[]), Dialect::Responses);
        assert_eq!(
            dialect(Method::POST, "/v1/messages", &[]),
            Dialect::Messages
        );
    }

    /// Query parameters are found by name and decoded.
    #[test]
    fn query_parameters() {
        let uri: Uri = "/x?alt=sse&key=a%2Bb+c&empty"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(query_param(&uri, "alt").as_deref(), Some("sse"));
        assert_eq!(query_param(&uri, "key").as_deref(), Some("a+b c"));
        assert_eq!(query_param(&uri, "empty").as_deref(), Some(""));
        assert_eq!(query_param(&uri, "nope"), None);
    }
}
