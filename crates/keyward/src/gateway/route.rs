//! Which endpoint a request asks for: one match on the method and path, so a request's route is
//! known once and names its handler, its dialect (for the shape of every refusal) and its metrics
//! label (a fixed name, never what a client put in a path).

use axum::http::Method;

use crate::dialect::Dialect;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// A model endpoint: the pipeline, in this dialect.
    Model(Dialect),
    CountTokens,
    Models,
    /// One model, its id percent-decoded.
    OneModel(String),
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
    pub(super) fn of(method: &Method, path: &str) -> Self {
        if crate::dashboard::is_dashboard(path) {
            return Self::Dashboard;
        }
        let post = method == Method::POST;
        // A HEAD is answered as its GET is, without the body.
        let get = method == Method::GET || method == Method::HEAD;
        let (route, wants_post) = match path {
            "/v1/responses" => (Self::Model(Dialect::Responses), true),
            "/v1/chat/completions" => (Self::Model(Dialect::Chat), true),
            "/v1/completions" => (Self::Model(Dialect::Completions), true),
            "/v1/messages" => (Self::Model(Dialect::Messages), true),
            "/v1/messages/count_tokens" => (Self::CountTokens, true),
            "/v1/models" => (Self::Models, false),
            "/healthz" => (Self::Health, false),
            "/metrics" => (Self::Metrics, false),
            _ => match path.strip_prefix("/v1/models/") {
                Some(id) if !id.is_empty() && !id.contains('/') => (
                    Self::OneModel(
                        percent_encoding::percent_decode_str(id)
                            .decode_utf8_lossy()
                            .into_owned(),
                    ),
                    false,
                ),
                _ => return Self::NotFound,
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
            Self::Model(dialect) => dialect.as_str(),
            Self::CountTokens => "count_tokens",
            Self::Models | Self::OneModel(_) => "models",
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
            Self::Model(dialect) => Some(*dialect),
            _ => None,
        }
    }
}

/// The dialect of the route a path asks for, for the shape of a refusal.
pub(super) fn dialect_of(path: &str) -> Dialect {
    if path.starts_with("/v1/messages") {
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
            Route::Model(Dialect::Messages)
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
}
