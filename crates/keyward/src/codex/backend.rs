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

use crate::dialect::responses::shape::{Item, RequestShape, Scalar, Shaped, Tagged, Tool};
use crate::dialect::responses::RawObject;
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

/// What [`normalise`] makes of a request whose members are all plain values (strings, numbers,
/// flags, nulls) but for a string `input` (the public API's simplest request, as the OpenAI SDK
/// sends `responses.create({model, input})`), asking for `model`: the bytes the tree path sends,
/// written without a tree, and the fields it dropped. `None` for any other request, and for one
/// `normalise` would take a member out of or refuse: those take the tree path.
pub(crate) fn normalise_flat(body: &[u8], model: &str) -> Option<(Vec<u8>, Normalised)> {
    let text = std::str::from_utf8(body).ok()?;
    let object = RawObject::parse(text)?;
    let mut out = Normalised {
        dropped: Vec::new(),
        // `include` is not a list here, so it always gets one.
        changed: true,
    };
    let mut members: Vec<(&str, Flat)> = Vec::new();
    for (field, raw) in object.members() {
        let value = match raw.get().as_bytes().first() {
            Some(b'[' | b'{') => return None,
            _ => serde_json::from_str::<Value>(raw.get()).ok()?,
        };
        if !matches!(rule(field, &value), Rule::Keep) {
            return None;
        }
        let value = match (field, value) {
            ("stream", _) => Flat::Value(Value::Bool(true)),
            ("store", store) => {
                if store == Value::Bool(true) {
                    out.dropped.push("store".into());
                }
                Flat::Value(Value::Bool(false))
            }
            ("include", _) => Flat::Include,
            ("input", Value::String(text)) => Flat::Input(text),
            // Refused by the tree path, which says why.
            ("input", _) => return None,
            ("model", _) => Flat::Value(Value::String(model.to_string())),
            (_, value) => Flat::Value(value),
        };
        members.push((field, value));
    }
    // What the tree path adds, in the order it adds them.
    for (field, value) in [
        ("stream", Flat::Value(Value::Bool(true))),
        ("store", Flat::Value(Value::Bool(false))),
        ("include", Flat::Include),
        ("input", Flat::Value(Value::Array(Vec::new()))),
        ("model", Flat::Value(Value::String(model.to_string()))),
    ] {
        if object.get(field).is_none() {
            members.push((field, value));
        }
    }
    let mut written = Vec::with_capacity(body.len() + 128);
    written.push(b'{');
    for (n, (field, value)) in members.iter().enumerate() {
        if n > 0 {
            written.push(b',');
        }
        // Writing JSON into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut written, field);
        written.push(b':');
        match value {
            Flat::Value(value) => {
                let _ = serde_json::to_writer(&mut written, value);
            }
            Flat::Include => written.extend_from_slice(br#"["reasoning.encrypted_content"]"#),
            Flat::Input(text) => {
                written.extend_from_slice(
                    br#"[{"type":"message","role":"user","content":[{"type":"input_text","text":"#,
                );
                let _ = serde_json::to_writer(&mut written, text);
                written.extend_from_slice(b"}]}]");
            }
        }
    }
    written.push(b'}');
    Some((written, out))
}

/// A member of a request [`normalise_flat`] writes.
enum Flat {
    Value(Value),
    /// `include`, asking for the encrypted reasoning only.
    Include,
    /// A string `input`, as the one user message it stands for.
    Input(String),
}

/// Whether a caller's own request, of this shape, can go to the backend byte for byte asking for
/// `model`: [`normalise`] would change nothing in it. The shape was read in one pass without a
/// tree (`dialect::responses::shape`).
///
/// It may answer `false` for a request `normalise` would leave alone (the request then goes the
/// slow way, through a tree); it never answers `true` for one `normalise` would change or refuse.
pub(crate) fn suits_as_is(shape: &RequestShape, model: &str) -> bool {
    !shape.repeated
        && shape.model.as_ref().and_then(Scalar::text) == Some(model)
        && shape.stream == Some(Scalar::Bool(true))
        && shape.store == Some(Scalar::Bool(false))
        && matches!(&shape.include, Some(Shaped::Is(list))
            if list.iter().any(|item| item.text() == Some("reasoning.encrypted_content")))
        && matches!(&shape.input, Some(Shaped::Is(items)) if items.iter().all(item_suits))
        && match &shape.tools {
            None => true,
            Some(Shaped::Is(tools)) => tools.iter().all(tool_suits),
            Some(Shaped::Not(_)) => false,
        }
        && match &shape.tool_choice {
            Some(Shaped::Is(choice)) => {
                !choice.repeated
                    && (choice.kind.as_ref().and_then(Scalar::text) != Some("function")
                        || choice.name)
            }
            None | Some(Shaped::Not(_)) => true,
        }
        && match &shape.reasoning {
            Some(Shaped::Is(reasoning)) => !reasoning.repeated && !reasoning.generate_summary,
            None | Some(Shaped::Not(_)) => true,
        }
        && shape.others.iter().all(|(field, value)| {
            let value = match value {
                Scalar::Str(Some(text)) => Value::String(text.clone()),
                Scalar::Bool(flag) => Value::Bool(*flag),
                // Only `service_tier`'s text and `background`'s flag decide a rule.
                _ => Value::Null,
            };
            matches!(rule(field, &value), Rule::Keep)
        })
}

/// An input item `normalise_input` keeps as it is.
fn item_suits(item: &Shaped<Item>) -> bool {
    let Shaped::Is(item) = item else {
        return false;
    };
    if item.repeated {
        return false;
    }
    match item.kind.as_ref().and_then(Scalar::text) {
        Some("item_reference") => false,
        Some("reasoning") => item.encrypted_content,
        Some("message") | None if item.role.is_some() => {
            let Some(role) = item.role.as_ref().and_then(Scalar::text) else {
                // A role that is not a string: the tree path decides.
                return false;
            };
            item.kind.is_some() && role != "system" && content_suits(&item.content, role)
        }
        _ => true,
    }
}

/// A message's content as `normalise_message` leaves it: not a string, and text parts of the
/// kind the role takes.
fn content_suits(content: &Option<Shaped<Vec<Shaped<Tagged>>>>, role: &str) -> bool {
    let wrong_kind = if role == "assistant" {
        "input_text"
    } else {
        "output_text"
    };
    match content {
        None => true,
        Some(Shaped::Not(Scalar::Str(_))) => false,
        Some(Shaped::Not(_)) => true,
        Some(Shaped::Is(parts)) => parts.iter().all(|part| match part {
            Shaped::Is(part) => {
                !part.repeated && part.kind.as_ref().and_then(Scalar::text) != Some(wrong_kind)
            }
            Shaped::Not(_) => true,
        }),
    }
}

/// A tool `normalise_tool` keeps as it is.
fn tool_suits(tool: &Shaped<Tool>) -> bool {
    let Shaped::Is(tool) = tool else {
        return true;
    };
    !tool.repeated
        && match tool.kind.as_ref().and_then(Scalar::text) {
            Some("function") => !tool.function,
            Some("web_search_preview" | "web_search_preview_2025_03_11") => false,
            _ => true,
        }
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

    fn suits(body: &[u8], model: &str) -> bool {
        RequestShape::read(body).is_some_and(|shape| suits_as_is(&shape, model))
    }

    /// The Codex CLI's own requests go byte for byte without a tree being built.
    #[test]
    fn codex_cli_requests_suit_as_is() {
        for fixture in [
            include_str!("../../../keyward-mock/src/fixtures/codex_cli_0.169_first_turn.json"),
            include_str!(
                "../../../keyward-mock/src/fixtures/codex_cli_0.169_parallel_tool_outputs.json"
            ),
        ] {
            let request: Value = serde_json::from_str(fixture).unwrap_or_default();
            let model = request["model"].as_str().unwrap_or_default().to_string();
            assert!(suits(fixture.as_bytes(), &model), "{model}");
            assert!(!suits(fixture.as_bytes(), "another-model"));
        }
    }

    mod shallow {
        use super::*;
        use proptest::prelude::*;
        use proptest::strategy::ValueTree;

        fn pick(values: Vec<Value>) -> impl Strategy<Value = Value> {
            proptest::sample::select(values)
        }

        fn item() -> impl Strategy<Value = Value> {
            let content = pick(vec![
                json!("text"),
                json!([{"type": "input_text", "text": "a"}]),
                json!([{"type": "output_text", "text": "a"}]),
                json!([{"type": "input_image", "image_url": "x"}, "odd"]),
                json!(null),
                json!(3),
            ]);
            let role = pick(vec![
                json!("user"),
                json!("assistant"),
                json!("system"),
                json!("developer"),
                json!(null),
                json!(7),
            ]);
            let kind = pick(vec![
                json!("message"),
                json!("reasoning"),
                json!("item_reference"),
                json!("function_call"),
                json!(null),
                json!(5),
            ]);
            (
                proptest::option::of(kind),
                proptest::option::of(role),
                proptest::option::of(content),
                any::<bool>(),
                0..8u8,
            )
                .prop_map(|(kind, role, content, encrypted, odd)| {
                    if odd == 0 {
                        return json!("not an object");
                    }
                    let mut item = Map::new();
                    if let Some(kind) = kind {
                        item.insert("type".into(), kind);
                    }
                    if let Some(role) = role {
                        item.insert("role".into(), role);
                    }
                    if let Some(content) = content {
                        item.insert("content".into(), content);
                    }
                    if encrypted {
                        item.insert("encrypted_content".into(), json!("gAAA"));
                    }
                    Value::Object(item)
                })
        }

        fn request() -> impl Strategy<Value = Value> {
            // Rarely drawn, so that some requests keep the shape the base gave them.
            let field = |name: &'static str, values: Vec<Value>| {
                proptest::option::weighted(0.15, pick(values)).prop_map(move |v| (name, v))
            };
            (
                (
                    field("model", vec![json!("m"), json!("other"), json!(3)]),
                    field("stream", vec![json!(true), json!(false), json!(null), json!("yes")]),
                    field("store", vec![json!(false), json!(true), json!(null)]),
                    field(
                        "include",
                        vec![
                            json!(["reasoning.encrypted_content"]),
                            json!([]),
                            json!("reasoning.encrypted_content"),
                        ],
                    ),
                    field(
                        "tools",
                        vec![
                            json!([{"type": "function", "name": "f"}]),
                            json!([{"type": "function", "function": {"name": "f"}}]),
                            json!([{"type": "web_search_preview"}, "odd"]),
                            json!([{"type": "namespace"}]),
                            json!(null),
                        ],
                    ),
                    field(
                        "tool_choice",
                        vec![
                            json!("auto"),
                            json!({"type": "function", "name": "f"}),
                            json!({"type": "function", "function": {"name": "f"}}),
                        ],
                    ),
                ),
                (
                    field(
                        "reasoning",
                        vec![json!({"summary": "auto"}), json!({"generate_summary": "auto"})],
                    ),
                    field("service_tier", vec![json!("auto"), json!("flex"), json!(null)]),
                    field("background", vec![json!(true), json!(false)]),
                    field("temperature", vec![json!(0.5)]),
                    field("previous_response_id", vec![json!("r")]),
                    field("prompt_cache_key", vec![json!("k")]),
                ),
                proptest::option::weighted(
                    0.9,
                    prop_oneof![
                        8 => proptest::collection::vec(item(), 0..4).prop_map(Value::Array),
                        1 => Just(json!("hi")),
                        1 => Just(json!(null)),
                    ],
                ),
                any::<bool>(),
            )
                .prop_map(|((a, b, c, d, e, f), (g, h, i, j, k, l), input, suitable)| {
                    // Half start as the Codex CLI sends them, so the byte-for-byte path is
                    // exercised; the fields drawn after may spoil them.
                    let mut body = if suitable {
                        json!({"model": "m", "stream": true, "store": false, "include": ["reasoning.encrypted_content"]})
                            .as_object()
                            .cloned()
                            .unwrap_or_default()
                    } else {
                        Map::new()
                    };
                    for (name, value) in [a, b, c, d, e, f, g, h, i, j, k, l] {
                        if let Some(value) = value {
                            body.insert(name.into(), value);
                        }
                    }
                    if let Some(input) = input {
                        body.insert("input".into(), input);
                    }
                    Value::Object(body)
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            /// Whatever `suits_as_is` lets through byte for byte, `normalise` would have left
            /// alone, with the model asked for.
            #[test]
            fn suits_as_is_never_skips_a_change(request in request()) {
                let bytes = serde_json::to_vec(&request).unwrap_or_default();
                if suits(&bytes, "m") {
                    let (body, result) = run(request.clone());
                    prop_assert_eq!(result, Ok(Normalised::default()));
                    prop_assert_eq!(&body, &request);
                    prop_assert_eq!(&body["model"], &json!("m"));
                }
            }
        }

        /// The property above is not vacuous: some drawn requests do go byte for byte.
        #[test]
        fn some_requests_suit() {
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let suited = (0..2000)
                .filter_map(|_| request().new_tree(&mut runner).ok())
                .map(|tree| tree.current())
                .filter(|request| suits(&serde_json::to_vec(request).unwrap_or_default(), "m"))
                .count();
            assert!(suited > 20, "only {suited} of 2000");
        }
    }

    mod flat {
        use proptest::prelude::*;

        use super::*;

        /// What the tree path sends for `body` asking for `model` (as `codex::upstream` does):
        /// the bytes and the fields dropped, or the refusal.
        fn through_a_tree(body: &[u8], model: &str) -> Result<(Vec<u8>, Vec<String>), String> {
            let mut tree = crate::dialect::parse_object(body).map_err(|e| e.message)?;
            let normalised = normalise(&mut tree).map_err(|e| e.message)?;
            tree.insert("model".into(), Value::String(model.to_string()));
            let bytes = serde_json::to_vec(&Value::Object(tree)).map_err(|e| e.to_string())?;
            Ok((bytes, normalised.dropped))
        }

        /// A request of plain members as a caller may write one: names the rules know and
        /// others, values of any plain kind (text with escapes, numbers in any notation), a
        /// string `input` or another, a member named twice, spread over lines or not.
        fn flat_request() -> impl Strategy<Value = String> {
            let name = prop::sample::select(vec![
                "model",
                "input",
                "stream",
                "store",
                "include",
                "instructions",
                "tools",
                "tool_choice",
                "reasoning",
                "service_tier",
                "background",
                "temperature",
                "previous_response_id",
                "user",
                "prompt_cache_key",
                "x\\u00e9",
            ]);
            let value = prop_oneof![
                Just("true".to_string()),
                Just("false".to_string()),
                Just("null".to_string()),
                Just("\"auto\"".to_string()),
                Just("\"default\"".to_string()),
                Just("1e2".to_string()),
                Just("-0".to_string()),
                Just("1.50".to_string()),
                Just("18446744073709551616".to_string()),
                Just("[]".to_string()),
                Just("{\"a\": 1}".to_string()),
                "[a-z \\\\\"\u{e9}\u{1F600}]{0,6}".prop_map(|t| format!("\"{t}\"")),
                Just("\"\\u00e9\\n\\/\"".to_string()),
            ];
            (
                prop::collection::vec((name, value), 0..8),
                prop::option::of("[a-z\"]{0,4}"),
                any::<bool>(),
            )
                .prop_map(|(members, input, spread)| {
                    let mut members: Vec<String> = members
                        .into_iter()
                        .map(|(name, value)| format!("\"{name}\":{value}"))
                        .collect();
                    if let Some(input) = input {
                        members.push(format!("\"input\":{}", json!(input)));
                    }
                    let gap = if spread { ",\n  " } else { "," };
                    format!("{{{}}}", members.join(gap))
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            /// A request normalised without a tree goes upstream as the same bytes, with the same
            /// fields dropped, as through a tree.
            #[test]
            fn flat_requests_are_normalised_as_through_a_tree(body in flat_request()) {
                if let Some((bytes, normalised)) = normalise_flat(body.as_bytes(), "m") {
                    let tree = through_a_tree(body.as_bytes(), "m");
                    prop_assert_eq!(
                        Ok((String::from_utf8_lossy(&bytes).to_string(), normalised.dropped)),
                        tree.map(|(bytes, dropped)| (String::from_utf8_lossy(&bytes).to_string(), dropped))
                    );
                    prop_assert!(normalised.changed);
                }
            }
        }

        /// The property above is not vacuous, and the simplest request takes the way.
        #[test]
        fn flat_requests_take_the_way_without_a_tree() {
            let tiny = br#"{"model":"gpt-6.1-sol","input":"ping","stream":true,"store":false}"#;
            let written = normalise_flat(tiny, "gpt-6.1-sol").map(|(bytes, _)| bytes);
            assert_eq!(
                written.as_deref().map(String::from_utf8_lossy).as_deref(),
                Some(
                    r#"{"model":"gpt-6.1-sol","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"ping"}]}],"stream":true,"store":false,"include":["reasoning.encrypted_content"]}"#
                )
            );
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let flat = (0..2000)
                .filter_map(|_| flat_request().new_tree(&mut runner).ok())
                .map(|tree| proptest::strategy::ValueTree::current(&tree))
                .filter(|body| normalise_flat(body.as_bytes(), "m").is_some())
                .count();
            assert!(flat > 200, "only {flat} of 2000");
        }
    }
}
