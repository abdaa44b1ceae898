//! What the translators produce is what the Codex backend takes: any well-formed Chat Completions,
//! Messages or Gemini request, translated and normalised for the backend, passes the strict mock's
//! copy of the backend's rules (`keyward_mock::codex_rules`); so do the requests the real Claude
//! Code, Gemini CLI and `google-genai` send, as recorded.

use proptest::prelude::*;
use serde_json::Value;

use super::gemini::{self, Call, Framing};
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

/// A Gemini call on a default alias, streamed as the Gemini CLI asks.
fn gemini_call() -> Call {
    Call {
        model: "gemini-3.8-flash".into(),
        framing: Framing::Sse,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any well-formed Gemini request becomes one the backend accepts. (keyward's thought
    /// signatures carry reasoning the mock backend issued, as they would in a conversation.)
    #[test]
    fn gemini_requests_are_accepted_upstream(mut request in gemini::strategies::well_formed_request()) {
        sign_thoughts(&mut request);
        let translated = gemini::translate(&gemini_call(), request.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("translate refused: {e:?}"));
        assert_accepted(&upstream_body(translated));
    }
}

/// Gives every keyward thought signature a blob the mock backend issued.
fn sign_thoughts(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, value) in object.iter_mut() {
                let signature = key == "thoughtSignature" || key == "thought_signature";
                if signature && value != gemini::strategies::CLI_SIGNATURE {
                    *value = Value::String(gemini::sign(&keyward_mock::issue_reasoning_blob()));
                } else {
                    sign_thoughts(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sign_thoughts),
        _ => {}
    }
}

/// The requests the real Gemini CLI 0.61.0 sent (long texts trimmed) are accepted: its model
/// router's classifier (JSON mode with an upper-case schema), and a turn answering a function
/// call (system instruction, eight tools, the CLI's stand-in thought signature, the call's id
/// echoed in its response).
#[test]
fn gemini_clis_recorded_requests_are_accepted_upstream() {
    let router = gemini::translate(
        &Call {
            model: "gemini-3.5-flash-lite".into(),
            framing: Framing::Whole,
        },
        include_bytes!("fixtures/gemini_cli_router_request.json"),
    )
    .unwrap_or_else(|e| panic!("translate refused: {e:?}"));
    let body = upstream_body(router);
    assert_accepted(&body);
    assert_eq!(body["text"]["format"]["type"], "json_schema");
    assert_eq!(
        body["text"]["format"]["schema"]["properties"]["complexity_score"]["type"],
        "integer"
    );

    let turn = gemini::translate(
        &gemini_call(),
        include_bytes!("fixtures/gemini_cli_function_response_turn.json"),
    )
    .unwrap_or_else(|e| panic!("translate refused: {e:?}"));
    assert_eq!(turn.dropped, ["generationConfig.topK"]);
    let body = upstream_body(turn);
    assert_accepted(&body);
    assert_eq!(body["tools"].as_array().map(Vec::len), Some(8));
    assert_eq!(
        body["reasoning"],
        serde_json::json!({"effort": "high", "summary": "auto"})
    );
    let input = body["input"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = input.iter().filter_map(|i| i["type"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "message",
            "message",
            "function_call",
            "function_call_output"
        ],
        "the stand-in signature is no reasoning: {body}"
    );
    assert_eq!(input[2]["call_id"], "call_abc123");
    assert_eq!(input[3]["call_id"], "call_abc123");
}

/// Every request `google-genai` 3.6.1 sent is accepted: snake_case inside camelCase, upper-case
/// `parameters`, function responses without ids, JSON schemas, `candidateCount: 1`.
#[test]
fn google_genais_recorded_requests_are_accepted_upstream() {
    let recorded: Vec<Value> =
        serde_json::from_str(include_str!("fixtures/google_genai_requests.json"))
            .unwrap_or_else(|e| panic!("{e}"));
    for request in recorded {
        let path = request["path"].as_str().unwrap_or_default();
        let model = path
            .trim_start_matches("/v1/models/")
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let body = request["body"].to_string();
        let translated = if path.contains(":countTokens") {
            gemini::translate_count(&model, body.as_bytes())
        } else {
            let framing = if path.contains("alt=sse") {
                Framing::Sse
            } else {
                Framing::Whole
            };
            gemini::translate(&Call { model, framing }, body.as_bytes())
        }
        .unwrap_or_else(|e| panic!("{path} refused: {e:?}"));
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
