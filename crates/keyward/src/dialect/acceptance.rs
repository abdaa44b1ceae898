//! What the translators produce is what the Codex backend takes: any well-formed Chat Completions
//! or Messages request, translated and normalised for the backend, passes the strict mock's copy
//! of the backend's rules (`keyward_mock::codex_rules`); so does the request the real Claude Code
//! sends, as recorded.

use proptest::prelude::*;
use serde_json::Value;

use super::{chat, completions, messages, Translated};
use crate::codex::backend;

/// The body keyward would send upstream, as the pipeline makes it (model resolved to a Codex one).
fn upstream_body(mut translated: Translated) -> Value {
    backend::normalise(&mut translated.body).unwrap_or_else(|e| panic!("normalise refused: {e:?}"));
    translated
        .body
        .insert("model".into(), Value::String("gpt-6.1-sol".into()));
    Value::Object(translated.body)
}

fn assert_accepted(body: &Value) {
    if let Err(rejection) = keyward_mock::codex_rules::check(body) {
        panic!(
            "the backend would refuse it ({}): {}",
            rejection.message(),
            serde_json::to_string_pretty(body).unwrap_or_default()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any well-formed chat request becomes one the backend accepts.
    #[test]
    fn chat_requests_are_accepted_upstream(request in chat::strategies::well_formed_request()) {
        let translated = chat::translate(request.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("translate refused: {e:?}"));
        assert_accepted(&upstream_body(translated));
    }

    /// Any well-formed messages request becomes one the backend accepts. (Its thinking blocks get
    /// signatures carrying reasoning the mock backend issued, as they would in a conversation.)
    #[test]
    fn messages_requests_are_accepted_upstream(mut request in messages::strategies::well_formed_request()) {
        sign_thinking(&mut request);
        let translated = messages::translate(request.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("translate refused: {e:?}"));
        assert_accepted(&upstream_body(translated));
    }
}

/// Gives every keyward-signed thinking block a blob the mock backend issued.
fn sign_thinking(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.get("type").and_then(Value::as_str) == Some("thinking")
                && object
                    .get("signature")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.starts_with("kwsig1."))
            {
                let blob = keyward_mock::issue_reasoning_blob();
                object.insert("signature".into(), Value::String(format!("kwsig1.{blob}")));
            }
            object.values_mut().for_each(sign_thinking);
        }
        Value::Array(items) => items.iter_mut().for_each(sign_thinking),
        _ => {}
    }
}

/// The request the real Claude Code 2.1.332 sent (long texts trimmed) is accepted: adaptive
/// thinking with its text omitted, context management, a dozen tools (one deferred), a system
/// message inside `messages`, and the billing header line left out of the prompt.
#[test]
fn claude_codes_recorded_request_is_accepted_upstream() {
    let recorded = include_str!("fixtures/claude_code_request.json");
    let translated = messages::translate(recorded.as_bytes())
        .unwrap_or_else(|e| panic!("translate refused: {e:?}"));
    assert_eq!(translated.model, "claude-opus-5-5");
    assert!(translated.stream);
    let body = upstream_body(translated);
    assert_accepted(&body);
    let text = body.to_string();
    assert!(
        !text.contains("x-anthropic-billing-header"),
        "the billing line is not prompt text"
    );
    assert_eq!(body["tools"].as_array().map(Vec::len), Some(12));
    assert_eq!(
        body["reasoning"],
        serde_json::json!({"effort": "medium"}),
        "display omitted: no summary"
    );
    assert!(body["prompt_cache_key"]
        .as_str()
        .is_some_and(|k| k.starts_with("kw-")));
}

/// Legacy completions and the Responses SDK defaults are accepted too.
#[test]
fn completions_and_responses_defaults_are_accepted_upstream() {
    let completion = completions::translate(
        br#"{"model":"gpt-6.1-sol","prompt":"Say hi","max_tokens":5,"temperature":0.1}"#,
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert_accepted(&upstream_body(completion));
    let responses = super::responses::translate(br#"{"model":"gpt-6.1-sol","input":"hi","max_output_tokens":9,"store":true,"instructions":"x"}"#)
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_accepted(&upstream_body(responses));
}
