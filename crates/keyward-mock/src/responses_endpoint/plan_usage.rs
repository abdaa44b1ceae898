//! What Codex answers say about the ChatGPT plan's usage: the `x-codex-*`
//! headers every answer carries, and the 429 a used-up plan gets instead of a
//! stream.
//!
//! The real backend reports two windows: the primary one (5 hours) and the
//! secondary one (a week), each as the share used, its length in minutes and
//! the seconds until it resets.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::limits::{AccountUsage, Remaining};

const PRIMARY_WINDOW_MINUTES: i64 = 300;
const SECONDARY_WINDOW_MINUTES: i64 = 10_080;
/// How long a window that is not used up has left. Constant (half of each
/// window) so answers are reproducible; only a used-up window's reset matters
/// to a client.
const PRIMARY_RESET_AFTER_SECS: i64 = 9_000;
const SECONDARY_RESET_AFTER_SECS: i64 = 302_400;
/// How long the `[[usage_limit]]` marker's window has left.
pub(crate) const MARKER_RESETS_IN_SECS: i64 = 3600;

/// The usage headers of a served answer.
pub(crate) fn add_usage_headers(headers: &mut HeaderMap, usage: &AccountUsage) {
    add_windows(
        headers,
        usage,
        usage.primary_used_percent,
        PRIMARY_RESET_AFTER_SECS,
    );
}

fn add_windows(
    headers: &mut HeaderMap,
    usage: &AccountUsage,
    primary_used_percent: f64,
    primary_reset_after: i64,
) {
    let values = [
        (
            "x-codex-primary-used-percent",
            percent(primary_used_percent),
        ),
        (
            "x-codex-primary-window-minutes",
            HeaderValue::from(PRIMARY_WINDOW_MINUTES),
        ),
        (
            "x-codex-primary-reset-after-seconds",
            HeaderValue::from(primary_reset_after),
        ),
        (
            "x-codex-secondary-used-percent",
            percent(usage.secondary_used_percent),
        ),
        (
            "x-codex-secondary-window-minutes",
            HeaderValue::from(SECONDARY_WINDOW_MINUTES),
        ),
        (
            "x-codex-secondary-reset-after-seconds",
            HeaderValue::from(SECONDARY_RESET_AFTER_SECS),
        ),
    ];
    for (name, value) in values {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// A percentage as the backend writes it: `12`, or `12.5` when it has a fraction.
fn percent(value: f64) -> HeaderValue {
    // f64's Display never yields characters a header value refuses.
    HeaderValue::from_str(&value.to_string()).unwrap_or(HeaderValue::from_static("0"))
}

/// The real backend's answer once a ChatGPT plan's usage window is used up:
/// a 429 whose body says when it resets, with the windows in `x-codex-*`
/// headers (the primary one at 100%) and `retry-after`.
pub(crate) fn usage_limit_reached(plan: &str, usage: &AccountUsage, left: Remaining) -> Response {
    let body = json!({"error": {
        "type": "usage_limit_reached",
        "message": "The usage limit has been reached",
        "plan_type": plan,
        "resets_at": left.resets_at,
        "resets_in_seconds": left.secs,
    }});
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    let headers = response.headers_mut();
    add_windows(headers, usage, 100.0, left.secs);
    headers.insert(header::RETRY_AFTER, HeaderValue::from(left.secs));
    response
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn usage(primary: f64, limited: Option<Remaining>) -> AccountUsage {
        AccountUsage {
            primary_used_percent: primary,
            secondary_used_percent: 5.0,
            limited,
        }
    }

    fn header(headers: &HeaderMap, name: &str) -> String {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// A served answer reports both windows with the account's percentages.
    #[test]
    fn served_answers_report_both_windows() {
        let mut headers = HeaderMap::new();
        add_usage_headers(&mut headers, &usage(12.5, None));
        let reported: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| {
                let value = value.to_str().unwrap_or_default().to_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        let expected = [
            ("x-codex-primary-used-percent", "12.5"),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-primary-reset-after-seconds", "9000"),
            ("x-codex-secondary-used-percent", "5"),
            ("x-codex-secondary-window-minutes", "10080"),
            ("x-codex-secondary-reset-after-seconds", "302400"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        assert_eq!(reported, expected);
    }

    /// A used-up plan gets the 429 with the body, headers and retry-after the
    /// real backend sends, counting down from the remaining window.
    #[tokio::test]
    async fn used_up_plans_get_the_429() -> anyhow::Result<()> {
        let left = Remaining {
            secs: 42,
            resets_at: 1_764_166_042,
        };
        let response = usage_limit_reached("pro", &usage(40.0, Some(left)), left);
        assert_eq!(response.status(), 429);
        let headers = response.headers().clone();
        assert_eq!(header(&headers, "x-codex-primary-used-percent"), "100");
        assert_eq!(header(&headers, "x-codex-primary-window-minutes"), "300");
        assert_eq!(
            header(&headers, "x-codex-primary-reset-after-seconds"),
            "42"
        );
        assert_eq!(header(&headers, "retry-after"), "42");
        assert_eq!(header(&headers, "x-codex-secondary-used-percent"), "5");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        let body: Value = serde_json::from_slice(&body)?;
        assert_eq!(
            body,
            json!({"error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": "pro",
                "resets_at": 1_764_166_042,
                "resets_in_seconds": 42,
            }})
        );
        Ok(())
    }
}
