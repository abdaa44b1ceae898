//! What the ChatGPT Codex backend (`{base}/responses`) accepts, and how a public Responses API
//! request is made into one it accepts.
//!
//! The backend is stricter than the public API (as the Codex CLI 0.169 and the peers that use it
//! show): it only streams, it is stateless (`store: false`, no `previous_response_id`; reasoning is
//! carried across turns as `encrypted_content`), it refuses parameters the Codex CLI never sends
//! (`max_output_tokens`, `temperature`, ...), wants Responses-shaped tools, `developer` rather than
//! `system` messages, assistant history as `output_text`, and nothing it would have to look up in
//! storage (an `item_reference`, a reasoning item without its encrypted content). Item ids on
//! complete items are fine: the Codex CLI sends them on every item.
//!
//! [`normalise`] applies one rule per field (the README's translation table lists them): keep,
//! rewrite, drop and report, or refuse (when dropping would change what the caller asked for).
//! A request that needs none of it (the Codex CLI's own) is left byte for byte as it came.

use serde_json::{json, Map, Value};

use crate::dialect::Invalid;

/// Headers the Codex backend expects from its own client, added when the caller did not send them.
pub(crate) const ORIGINATOR: &str = "codex_cli_rs";

/// The upstream request URL for a base such as `https://chatgpt.com/backend-api/codex`.
pub(crate) fn responses_url(base_url: &str) -> String {
    format!("{base_url}/responses")
}

/// The outcome of normalising one request.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Normalised {
    /// Fields dropped because the backend cannot honour them (Responses names).
    pub dropped: Vec<String>,
    /// Whether anything in the body changed (if not, the caller's bytes can be sent as they are).
    pub changed: bool,
}

/// What happens to a top-level field the backend does not take.
enum Rule {
    /// Sent as it is.
    Keep,
    /// Removed and reported: the answer is still what the caller asked for, less a tuning knob.
    Drop,
    /// Removed without a report (it only restates the backend's own behaviour).
    Quiet,
    /// Refused: without it the answer would not be what the caller asked for.
    Refuse(&'static str),
}

/// The rule for every top-level field of the public Responses API. Unknown fields are kept: a
/// newer Codex CLI may send fields this table does not know yet, and the backend's own refusal
/// reaches the caller in its dialect.
fn rule(field: &str, value: &Value) -> Rule {
    match field {
        "model" | "instructions" | "input" | "tools" | "tool_choice" | "parallel_tool_calls"
        | "reasoning" | "include" | "prompt_cache_key" | "text" | "client_metadata" | "stream"
        | "store" => Rule::Keep,
        "service_tier" => match value.as_str() {
            Some("auto" | "default") | None => Rule::Quiet,
            Some(_) => Rule::Keep,
        },
        "max_output_tokens" | "max_tool_calls" | "temperature" | "top_p" | "top_logprobs"
        | "truncation" | "user" | "safety_identifier" | "metadata" | "context_management"
        | "stream_options" | "prompt_cache_retention" => Rule::Drop,
        "previous_response_id" => Rule::Refuse(
            "the Codex backend keeps no conversation state, so `previous_response_id` cannot be resolved: send the whole conversation in `input` instead",
        ),
        "conversation" => Rule::Refuse(
            "the Codex backend keeps no conversations: send the whole conversation in `input` instead of `conversation`",
        ),
        "prompt" => Rule::Refuse(
            "stored prompt templates (`prompt`) are not available through the Codex backend: send the prompt text in `instructions` or `input`",
        ),
        "background" => match value {
            Value::Bool(true) => Rule::Refuse(
                "background responses are not available through the Codex backend: leave out `background`",
            ),
            _ => Rule::Quiet,
        },
        _ => Rule::Keep,
    }
}

/// Makes a public Responses request one the Codex backend accepts.
pub(crate) fn normalise(body: &mut Map<String, Value>) -> Result<Normalised, Invalid> {
    let mut out = Normalised::default();
    let fields: Vec<String> = body.keys().cloned().collect();
    for field in fields {
        let Some(value) = body.get(&field) else {
            continue;
        };
        match rule(&field, value) {
            Rule::Keep => {}
            Rule::Drop => {
                body.remove(&field);
                out.dropped.push(field);
                out.changed = true;
            }
            Rule::Quiet => {
                body.remove(&field);
                out.changed = true;
            }
            Rule::Refuse(why) => return Err(Invalid::at(field, why)),
        }
    }

    // The backend only streams; a caller that asked for one object gets the stream assembled.
    set(body, "stream", Value::Bool(true), &mut out);
    // Stateless: nothing can be stored. A caller that asked for storage is told.
    if body.get("store").is_some_and(|s| s != &Value::Bool(false)) {
        if body.get("store") == Some(&Value::Bool(true)) {
            out.dropped.push("store".into());
        }
        body.insert("store".into(), Value::Bool(false));
        out.changed = true;
    } else if !body.contains_key("store") {
        body.insert("store".into(), Value::Bool(false));
        out.changed = true;
    }
    // Reasoning survives across turns only as encrypted content the caller sends back.
    include_encrypted_reasoning(body, &mut out);

    if let Some(input) = body.get_mut("input") {
        normalise_input(input, &mut out)?;
    } else {
        body.insert("input".into(), Value::Array(Vec::new()));
        out.changed = true;
    }
    if let Some(Value::Array(tools)) = body.get_mut("tools") {
        for tool in tools.iter_mut() {
            normalise_tool(tool, &mut out);
        }
    }
    if let Some(choice) = body.get_mut("tool_choice") {
        normalise_tool_choice(choice, &mut out);
    }
    if let Some(Value::Object(reasoning)) = body.get_mut("reasoning") {
        // The public API's deprecated spelling of `summary`.
        if let Some(summary) = reasoning.remove("generate_summary") {
            reasoning.entry("summary").or_insert(summary);
            out.changed = true;
        }
    }
    Ok(out)
}

fn set(body: &mut Map<String, Value>, field: &str, value: Value, out: &mut Normalised) {
    if body.get(field) != Some(&value) {
        body.insert(field.into(), value);
        out.changed = true;
    }
}

fn include_encrypted_reasoning(body: &mut Map<String, Value>, out: &mut Normalised) {
    const ENCRYPTED: &str = "reasoning.encrypted_content";
    match body.get_mut("include") {
        Some(Value::Array(list)) => {
            if !list.iter().any(|v| v == ENCRYPTED) {
                list.push(Value::String(ENCRYPTED.into()));
                out.changed = true;
            }
        }
        _ => {
            body.insert("include".into(), json!([ENCRYPTED]));
            out.changed = true;
        }
    }
}

fn normalise_input(input: &mut Value, out: &mut Normalised) -> Result<(), Invalid> {
    if let Value::String(text) = input {
        *input = json!([{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}]);
        out.changed = true;
        return Ok(());
    }
    let Value::Array(items) = input else {
        return Err(Invalid::at(
            "input",
            "`input` must be a string or an array of items",
        ));
    };
    let mut kept = Vec::with_capacity(items.len());
    let mut dropped_reasoning = false;
    for (index, mut item) in std::mem::take(items).into_iter().enumerate() {
        let Some(object) = item.as_object_mut() else {
            return Err(Invalid::at(
                format!("input[{index}]"),
                "every `input` item must be an object",
            ));
        };
        let kind = object
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_string);
        match kind.as_deref() {
            Some("item_reference") => {
                return Err(Invalid::at(
                    format!("input[{index}]"),
                    "an `item_reference` names a stored item, and the Codex backend stores none: send the item itself",
                ))
            }
            // Without its encrypted content a reasoning item is only its summary, which the model
            // cannot use; dropping it loses nothing the backend could have read.
            Some("reasoning") if !object.contains_key("encrypted_content") => {
                dropped_reasoning = true;
                out.changed = true;
                continue;
            }
            Some("message") | None if object.contains_key("role") => {
                normalise_message(object, out);
            }
            _ => {}
        }
        kept.push(item);
    }
    if dropped_reasoning {
        out.dropped
            .push("input[].reasoning (without encrypted_content)".into());
    }
    *items = kept;
    Ok(())
}

fn normalise_message(message: &mut Map<String, Value>, out: &mut Normalised) {
    if !message.contains_key("type") {
        message.insert("type".into(), Value::String("message".into()));
        out.changed = true;
    }
    if message.get("role").and_then(Value::as_str) == Some("system") {
        message.insert("role".into(), Value::String("developer".into()));
        out.changed = true;
    }
    let assistant = message.get("role").and_then(Value::as_str) == Some("assistant");
    let (text_kind, wrong_kind) = if assistant {
        ("output_text", "input_text")
    } else {
        ("input_text", "output_text")
    };
    match message.get_mut("content") {
        Some(Value::String(text)) => {
            let text = std::mem::take(text);
            message.insert("content".into(), json!([{"type": text_kind, "text": text}]));
            out.changed = true;
        }
        Some(Value::Array(parts)) => {
            for part in parts.iter_mut() {
                let Some(part) = part.as_object_mut() else {
                    continue;
                };
                if part.get("type").and_then(Value::as_str) == Some(wrong_kind) {
                    part.insert("type".into(), Value::String(text_kind.into()));
                    out.changed = true;
                }
            }
        }
        _ => {}
    }
}

/// Chat-Completions-shaped function tools are flattened; preview names of built-in tools get
/// their current names; every other tool type passes untouched.
fn normalise_tool(tool: &mut Value, out: &mut Normalised) {
    let Some(object) = tool.as_object_mut() else {
        return;
    };
    match object.get("type").and_then(Value::as_str) {
        Some("function") => {
            if let Some(Value::Object(function)) = object.remove("function") {
                for (key, value) in function {
                    object.entry(key).or_insert(value);
                }
                out.changed = true;
            }
        }
        Some("web_search_preview" | "web_search_preview_2025_03_11") => {
            object.insert("type".into(), Value::String("web_search".into()));
            out.changed = true;
        }
        _ => {}
    }
}

fn normalise_tool_choice(choice: &mut Value, out: &mut Normalised) {
    let Some(object) = choice.as_object_mut() else {
        return;
    };
    if object.get("type").and_then(Value::as_str) == Some("function")
        && !object.contains_key("name")
    {
        if let Some(name) = object.get("function").and_then(|f| f.get("name")).cloned() {
            object.remove("function");
            object.insert("name".into(), name);
            out.changed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: Value) -> (Value, Result<Normalised, Invalid>) {
        let mut map = body.as_object().cloned().unwrap_or_default();
        let result = normalise(&mut map);
        (Value::Object(map), result)
    }

    /// The OpenAI SDK's defaults (no `store`, a string `input`, `max_output_tokens`) become a
    /// request the backend takes, and the dropped limit is reported.
    #[test]
    fn sdk_defaults_are_normalised_and_drops_reported() {
        let (body, result) = run(json!({
            "model": "gpt-6.1-sol", "input": "hi", "max_output_tokens": 50, "temperature": 0.2,
            "service_tier": "auto"
        }));
        let result = result.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(result.dropped, vec!["max_output_tokens", "temperature"]);
        assert!(result.changed);
        assert_eq!(
            body,
            json!({
                "model": "gpt-6.1-sol",
                "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
                "stream": true, "store": false, "include": ["reasoning.encrypted_content"]
            })
        );
    }

    /// A request as the Codex CLI sends it needs nothing: its bytes can go upstream unchanged.
    #[test]
    fn codex_cli_requests_are_left_alone() {
        let cli = json!({
            "model": "gpt-6.1-sol",
            "input": [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "base prompt"}]},
                      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
            "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}}, {"type": "web_search"}, {"type": "namespace", "name": "mcp"}],
            "tool_choice": "auto", "parallel_tool_calls": true, "reasoning": {"summary": "auto"},
            "store": false, "stream": true, "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "conv-1", "client_metadata": {"x": 1}
        });
        let (body, result) = run(cli.clone());
        assert_eq!(
            result.unwrap_or_else(|e| panic!("{e:?}")),
            Normalised::default()
        );
        assert_eq!(body, cli);
    }

    /// History sent back from earlier answers keeps its item ids, system turns become developer
    /// turns, part kinds follow the role, and reasoning without encrypted content (which the
    /// backend would have to look up by id) is dropped.
    #[test]
    fn history_is_made_stateless() {
        let (body, result) = run(json!({
            "model": "m", "store": true,
            "input": [
                {"role": "system", "content": "be brief"},
                {"type": "message", "role": "user", "content": [{"type": "output_text", "text": "q"}]},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "gAAA"},
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": [{"type": "input_text", "text": "a"}]},
                {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "ok"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}, {"type": "web_search_preview"}],
            "tool_choice": {"type": "function", "function": {"name": "f"}}
        }));
        let result = result.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            result.dropped,
            vec!["store", "input[].reasoning (without encrypted_content)"]
        );
        assert_eq!(
            body["input"],
            json!([
                {"role": "developer", "content": [{"type": "input_text", "text": "be brief"}], "type": "message"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q"}]},
                {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "gAAA"},
                {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": [{"type": "output_text", "text": "a"}]},
                {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "ok"}
            ])
        );
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "name": "f", "parameters": {}}, {"type": "web_search"}])
        );
        assert_eq!(
            body["tool_choice"],
            json!({"type": "function", "name": "f"})
        );
        assert_eq!(body["store"], json!(false));
    }

    /// What cannot be served statelessly is refused with the field named, not silently dropped.
    #[test]
    fn stateful_requests_are_refused() {
        for (field, body) in [
            (
                "previous_response_id",
                json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
            ),
            (
                "background",
                json!({"model": "m", "input": "x", "background": true}),
            ),
            (
                "input[0]",
                json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            ),
            ("input[0]", json!({"model": "m", "input": [3]})),
        ] {
            let (_, result) = run(body);
            assert_eq!(result.err().and_then(|e| e.param), Some(field.to_string()));
        }
    }
}
