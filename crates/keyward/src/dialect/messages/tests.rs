//! The Messages translator against whole expected requests, the recorded streams and random
//! input.

use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::reply::tool_input;
use super::strategies::well_formed_request;
use super::translate;
use crate::dialect::count_tokens::count_text;
use crate::dialect::responses::StreamEvent;
use crate::dialect::testing::{assembled, fixture_events, frames, run, typed};
use crate::dialect::{Answer, Flow, Translated};

fn translated(request: &Value) -> Translated {
    translate(request.to_string().as_bytes()).unwrap_or_else(|e| panic!("refused: {e:?}"))
}

/// The Responses body a request translates into.
fn body(request: Value) -> Value {
    Value::Object(translated(&request).body)
}

fn answer(request: &Value) -> Box<dyn Answer> {
    translated(request)
        .answer
        .unwrap_or_else(|| panic!("a Messages request has an answer"))
}

/// A minimal request with these extra fields.
fn request_with(extra: Value) -> Value {
    let mut request = json!({
        "model": "claude-opus-5-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "What is 2+2?"}],
    });
    if let (Some(request), Value::Object(extra)) = (request.as_object_mut(), extra) {
        request.extend(extra);
    }
    request
}

fn streamed(request: &Value, events: &[StreamEvent], broken: Option<&str>) -> Vec<Value> {
    frames(&run(answer(request).stream(), events, broken))
        .into_iter()
        .map(|(event, data)| {
            assert_eq!(
                event.as_deref(),
                data["type"].as_str(),
                "event name vs data: {data}"
            );
            data
        })
        .collect()
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("null")
}

/// One readable line per frame: kind, block index, and the delta or block type.
fn outline(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|data| {
            let index = &data["index"];
            let delta = &data["delta"];
            match text(&data["type"]) {
                "content_block_start" => {
                    format!("start {index} {}", text(&data["content_block"]["type"]))
                }
                "content_block_delta" => match text(&delta["type"]) {
                    "text_delta" => format!("text {index} {}", text(&delta["text"])),
                    "thinking_delta" => {
                        format!("thinking {index} {}", text(&delta["thinking"]))
                    }
                    "signature_delta" => {
                        format!("signature {index} {}", text(&delta["signature"]))
                    }
                    "input_json_delta" => {
                        format!("json {index} {}", text(&delta["partial_json"]))
                    }
                    other => format!("delta {index} {other}"),
                },
                "content_block_stop" => format!("stop {index}"),
                "message_delta" => format!(
                    "message_delta {} {}",
                    text(&delta["stop_reason"]),
                    text(&delta["stop_sequence"])
                ),
                "error" => format!("error {}", text(&data["error"]["type"])),
                other => other.to_string(),
            }
        })
        .collect()
}

fn last_usage(frames: &[Value]) -> Value {
    frames
        .iter()
        .rev()
        .find(|f| f["type"] == "message_delta")
        .map(|f| f["usage"].clone())
        .unwrap_or(Value::Null)
}

/// The assembled fixture, answered without streaming.
fn replied(request: &Value, fixture: &str) -> Value {
    answer(request).reply(&assembled(fixture))
}

fn thinking_on() -> Value {
    request_with(json!({"thinking": {"type": "adaptive"}}))
}

/// A request shaped like Claude Code's maps field by field, and the unmappable is reported.
#[test]
fn claude_code_request_maps_as_a_whole() {
    let schema = json!({"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]});
    let request = json!({
        "model": "claude-opus-5-5",
        "max_tokens": 32000,
        "stream": true,
        "temperature": 1,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332; cc_entrypoint=sdk-cli"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        ],
        "messages": [
            {"role": "system", "content": "The user prefers metric units."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Look at the image.", "signature": "kwsig1.gAAAAB-blob=="},
                {"type": "text", "text": "Let me check two things."},
                {"type": "tool_use", "id": "toolu_01", "name": "Read", "input": {"file_path": "/tmp/a.txt"}},
                {"type": "tool_use", "id": "toolu_02", "name": "Bash", "input": {"command": "ls"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "file not found", "is_error": true},
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": [
                    {"type": "text", "text": "a.png"},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                ]},
                {"type": "text", "text": "Go on.", "cache_control": {"type": "ephemeral"}},
            ]},
        ],
        "tools": [
            {"name": "Read", "description": "Reads a file", "input_schema": schema},
            {"name": "Bash", "description": "Runs a command", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}},
            {"type": "custom", "name": "NotebookEdit", "description": "Edits a notebook", "input_schema": {"type": "object"}, "defer_loading": true},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
            {"type": "bash_20250124", "name": "bash"},
        ],
        "tool_choice": {"type": "any"},
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "max"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": "user_abc_account_def_session_123"},
        "stop_sequences": ["\n\nHuman:"],
    });
    let translated = translated(&request);
    assert_eq!(
        Value::Object(translated.body.clone()),
        json!({
            "model": "claude-opus-5-5",
            "input": [
                {"type": "message", "role": "system", "content": [
                    {"type": "input_text", "text": "You are Claude Code."},
                    {"type": "input_text", "text": "Be brief."},
                ]},
                {"type": "message", "role": "system", "content": [
                    {"type": "input_text", "text": "The user prefers metric units."},
                ]},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "What is in this picture?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
                ]},
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Look at the image."}], "encrypted_content": "gAAAAB-blob=="},
                {"type": "message", "role": "assistant", "content": [
                    {"type": "output_text", "text": "Let me check two things."},
                ]},
                {"type": "function_call", "call_id": "toolu_01", "name": "Read", "arguments": "{\"file_path\":\"/tmp/a.txt\"}"},
                {"type": "function_call", "call_id": "toolu_02", "name": "Bash", "arguments": "{\"command\":\"ls\"}"},
                {"type": "function_call_output", "call_id": "toolu_01", "output": "Error: file not found"},
                {"type": "function_call_output", "call_id": "toolu_02", "output": [
                    {"type": "input_text", "text": "a.png"},
                    {"type": "input_image", "image_url": "https://example.com/a.png"},
                ]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Go on."}]},
            ],
            "stream": true,
            "max_output_tokens": 32000,
            "temperature": 1,
            "tools": [
                {"type": "function", "name": "Read", "description": "Reads a file", "parameters": schema, "strict": false},
                {"type": "function", "name": "Bash", "description": "Runs a command", "parameters": {"type": "object"}, "strict": false},
                {"type": "function", "name": "NotebookEdit", "description": "Edits a notebook", "parameters": {"type": "object"}, "strict": false},
                {"type": "web_search"},
            ],
            "tool_choice": "required",
            "reasoning": {"effort": "xhigh", "summary": "auto"},
            "prompt_cache_key": "kw-80649888bd6962efa84cb0f5b0074f0c",
        })
    );
    assert_eq!(
        translated.dropped,
        [
            "tools.web_search.max_uses",
            "tools.bash_20250124",
            "context_management"
        ]
    );
    assert_eq!(translated.renamed, [("max_output_tokens", "max_tokens")]);
    assert_eq!(
        crate::dialect::client_name(&translated.renamed, "max_output_tokens"),
        "max_tokens"
    );
    assert_eq!(translated.model, "claude-opus-5-5");
    assert!(translated.stream);
}

/// Plain strings for system and content, and the smallest request, map simply.
#[test]
fn string_system_and_content() {
    assert_eq!(
        body(
            json!({"model": "m", "system": "Be kind.", "messages": [{"role": "user", "content": "hi"}]})
        ),
        json!({
            "model": "m",
            "input": [
                {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Be kind."}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            ],
            "stream": false,
        })
    );
}

/// The thinking budget picks an effort, `output_config.effort` overrides it, and summaries
/// are asked for only when thinking is shown.
#[test]
fn thinking_becomes_reasoning() {
    let reasoning = |extra: Value| body(request_with(extra))["reasoning"].clone();
    let budget = |n: u64| json!({"thinking": {"type": "enabled", "budget_tokens": n}});
    assert_eq!(
        reasoning(budget(1024)),
        json!({"effort": "low", "summary": "auto"})
    );
    assert_eq!(
        reasoning(budget(4096)),
        json!({"effort": "medium", "summary": "auto"})
    );
    assert_eq!(
        reasoning(budget(16384)),
        json!({"effort": "high", "summary": "auto"})
    );
    assert_eq!(
        reasoning(json!({"thinking": {"type": "enabled"}})),
        json!({"summary": "auto"})
    );
    assert_eq!(
        reasoning(
            json!({"thinking": {"type": "enabled", "budget_tokens": 2000}, "output_config": {"effort": "high"}})
        ),
        json!({"effort": "high", "summary": "auto"})
    );
    assert_eq!(
        reasoning(json!({"output_config": {"effort": "low"}})),
        json!({"effort": "low"})
    );
    assert_eq!(
        reasoning(json!({"thinking": {"type": "disabled"}})),
        Value::Null
    );
    let odd = translated(&request_with(
        json!({"thinking": {"type": "sometimes"}, "output_config": {"effort": "huge", "task_budget": 5}}),
    ));
    assert_eq!(odd.body.get("reasoning"), None);
    assert_eq!(
        odd.dropped,
        [
            "thinking",
            "output_config.effort",
            "output_config.task_budget"
        ]
    );
}

/// Structured output asked through `output_config.format` becomes `text.format`.
#[test]
fn output_format_becomes_text_format() {
    let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
    let body = body(request_with(
        json!({"output_config": {"format": {"type": "json_schema", "schema": schema}}}),
    ));
    assert_eq!(
        body["text"],
        json!({"format": {"type": "json_schema", "name": "output", "schema": schema, "strict": false}})
    );
}

/// Each tool_choice form maps to its Responses equivalent; one with no tools to choose is
/// reported.
#[test]
fn tool_choice_forms() {
    let tools = json!([{"name": "f", "input_schema": {"type": "object"}}]);
    let choice = |choice: Value| {
        let body = body(request_with(json!({"tools": tools, "tool_choice": choice})));
        (
            body["tool_choice"].clone(),
            body["parallel_tool_calls"].clone(),
        )
    };
    assert_eq!(
        choice(json!({"type": "auto"})),
        (json!("auto"), Value::Null)
    );
    assert_eq!(
        choice(json!({"type": "none"})),
        (json!("none"), Value::Null)
    );
    assert_eq!(
        choice(json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true})),
        (json!({"type": "function", "name": "f"}), json!(false))
    );
    let toolless = translated(&request_with(json!({"tool_choice": {"type": "any"}})));
    assert_eq!(toolless.body.get("tool_choice"), None);
    assert_eq!(toolless.dropped, ["tool_choice"]);
}

/// Documents become files or text; PDFs keep a `.pdf` name for the upstream.
#[test]
fn documents_become_files_or_text() {
    let body = body(
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "document", "title": "Report", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
            {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
        ]}]}),
    );
    assert_eq!(
        body["input"][0]["content"],
        json!([
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "Report.pdf"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "document.pdf"},
            {"type": "input_text", "text": "plain words"},
            {"type": "input_file", "file_url": "https://example.com/a.pdf"},
        ])
    );
}

/// Anthropic's own thinking is dropped silently; server tool blocks, unreachable sources and
/// fields with no Responses equivalent are dropped and reported.
#[test]
fn unusable_content_and_fields_are_dropped() {
    let translated = translated(&json!({
        "model": "m",
        "top_k": 5,
        "container": "c",
        "mcp_servers": [],
        "service_tier": "auto",
        "cache_control": {"type": "ephemeral"},
        "future_field": {"a": 1},
        "top_p": null,
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "search"},
                {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "EqQBCkgIARABGAIiQL"},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy"},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                {"type": "text", "text": "found it"},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t", "is_error": true},
                {"type": "tool_result", "tool_use_id": "u", "content": [{"type": "tool_reference", "tool_name": "Read"}]},
            ]},
        ],
    }));
    assert_eq!(
        translated.body["input"],
        json!([
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "search"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "found it"}]},
            {"type": "function_call_output", "call_id": "t", "output": "Error"},
            {"type": "function_call_output", "call_id": "u", "output": ""},
        ])
    );
    assert_eq!(
        translated.dropped,
        [
            "messages.content.image.source.file",
            "messages.content.server_tool_use",
            "messages.content.web_search_tool_result",
            "messages.content.tool_result.tool_reference",
            "top_k",
            "container",
            "mcp_servers",
            "service_tier",
            "cache_control",
            "future_field",
        ]
    );
}

/// Only structurally unusable requests are refused, each naming the offending field.
#[test]
fn refuses_unusable_requests_naming_the_field() {
    let user =
        |content: Value| json!({"model": "m", "messages": [{"role": "user", "content": content}]});
    let cases = [
        (
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            "model",
        ),
        (json!({"model": "m"}), "messages"),
        (json!({"model": "m", "messages": []}), "messages"),
        (
            json!({"model": "m", "messages": {"role": "user"}}),
            "messages",
        ),
        (json!({"model": "m", "messages": ["hi"]}), "messages.0"),
        (
            json!({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}),
            "messages.0.role",
        ),
        (
            json!({"model": "m", "messages": [{"content": "hi"}]}),
            "messages.0.role",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user"}]}),
            "messages.0.content",
        ),
        (user(json!(5)), "messages.0.content"),
        (
            user(json!([{"type": "text", "text": "a"}, 3])),
            "messages.0.content.1",
        ),
        (user(json!([{"text": "a"}])), "messages.0.content.0.type"),
        (
            user(json!([{"type": "text", "text": 1}])),
            "messages.0.content.0.text",
        ),
        (
            user(json!([{"type": "tool_result"}])),
            "messages.0.content.0.tool_use_id",
        ),
        (
            user(json!([{"type": "tool_result", "tool_use_id": "t", "content": 7}])),
            "messages.0.content.0.content",
        ),
        (
            user(
                json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png"}}]),
            ),
            "messages.0.content.0.source.data",
        ),
        (
            user(json!([{"type": "image"}])),
            "messages.0.content.0.source",
        ),
        (
            user(json!([{"type": "tool_use", "id": "t", "name": "f", "input": {}}])),
            "messages.0.content.0",
        ),
        (
            json!({"model": "m", "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]},
            ]}),
            "messages.1.content.0.id",
        ),
        (
            json!({"model": "m", "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {}}]},
            ]}),
            "messages.1.content.0.name",
        ),
        (
            json!({"model": "m", "system": 5, "messages": [{"role": "user", "content": "hi"}]}),
            "system",
        ),
        (
            json!({"model": "m", "system": [{"type": "text"}], "messages": [{"role": "user", "content": "hi"}]}),
            "system.0.text",
        ),
        (
            json!({"model": "m", "tools": {}, "messages": [{"role": "user", "content": "hi"}]}),
            "tools",
        ),
        (
            json!({"model": "m", "tools": [{"input_schema": {}}], "messages": [{"role": "user", "content": "hi"}]}),
            "tools.0.name",
        ),
        (
            json!({"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]}),
            "stream",
        ),
    ];
    for (request, param) in cases {
        let refused = translate(request.to_string().as_bytes());
        let got = refused.as_ref().err().and_then(|e| e.param.clone());
        assert_eq!(
            got.as_deref(),
            Some(param),
            "{request} gave {:?}",
            refused.map(|t| t.body)
        );
    }
    assert!(translate(b"[]").is_err());
    assert!(translate(b"{").is_err());
}

/// A field of the wrong JSON type is refused with a 400 naming it, saying what was expected and
/// what was sent (before, most were dropped or ignored, and the request answered).
#[test]
fn mistyped_fields_are_refused_naming_the_field() {
    let cases = [
        (
            json!({"max_tokens": "1024"}),
            "max_tokens",
            "`max_tokens` must be a whole number, zero or more, not the string \"1024\"",
        ),
        (json!({"max_tokens": -1}), "max_tokens", "not the number -1"),
        (
            json!({"max_tokens": 1.5}),
            "max_tokens",
            "not the number 1.5",
        ),
        (
            json!({"temperature": "hot"}),
            "temperature",
            "`temperature` must be a number, not the string \"hot\"",
        ),
        (
            json!({"top_p": [0.9]}),
            "top_p",
            "must be a number, not an array",
        ),
        (json!({"top_k": "5"}), "top_k", "not the string \"5\""),
        (json!({"stream": "yes"}), "stream", "must be a boolean"),
        (
            json!({"stop_sequences": 5}),
            "stop_sequences",
            "must be an array of strings, not the number 5",
        ),
        (
            json!({"stop_sequences": ["a", null]}),
            "stop_sequences.1",
            "must be a string, not null",
        ),
        (
            json!({"metadata": "u1"}),
            "metadata",
            "not the string \"u1\"",
        ),
        (
            json!({"metadata": {"user_id": 42}}),
            "metadata.user_id",
            "must be a string, not the number 42",
        ),
        (json!({"tools": {"name": "f"}}), "tools", "must be an array"),
        (
            json!({"system": 5}),
            "system",
            "must be a string or an array",
        ),
        (json!({"thinking": true}), "thinking", "an object such as"),
        (
            json!({"thinking": "adaptive"}),
            "thinking",
            "not the string",
        ),
        (
            json!({"thinking": {"budget_tokens": 2048}}),
            "thinking.type",
            "needs a `type`",
        ),
        (
            json!({"thinking": {"type": 1}}),
            "thinking.type",
            "not the number 1",
        ),
        (
            json!({"thinking": {"type": "enabled", "budget_tokens": "2048"}}),
            "thinking.budget_tokens",
            "not the string \"2048\"",
        ),
        (
            json!({"thinking": {"type": "adaptive", "display": false}}),
            "thinking.display",
            "must be a string, not false",
        ),
        (
            json!({"tool_choice": "auto"}),
            "tool_choice",
            "an object such as",
        ),
        (
            json!({"tool_choice": {"name": "f"}}),
            "tool_choice.type",
            "needs a `type`",
        ),
        (
            json!({"tool_choice": {"type": "tool"}}),
            "tool_choice.name",
            "needs the `name`",
        ),
        (
            json!({"tool_choice": {"type": "tool", "name": 3}}),
            "tool_choice.name",
            "not the number 3",
        ),
        (
            json!({"tool_choice": {"type": "auto", "disable_parallel_tool_use": "yes"}}),
            "tool_choice.disable_parallel_tool_use",
            "must be a boolean",
        ),
        (
            json!({"output_config": "fast"}),
            "output_config",
            "an object",
        ),
        (
            json!({"output_config": {"effort": 3}}),
            "output_config.effort",
            "must be a string",
        ),
        (
            json!({"output_config": {"format": "json"}}),
            "output_config.format",
            "an object such as",
        ),
        (
            json!({"output_format": []}),
            "output_format",
            "not an array",
        ),
    ];
    for (extra, param, message) in cases {
        let request = request_with(extra);
        match translate(request.to_string().as_bytes()) {
            Ok(translated) => panic!("{request} was accepted: {:?}", translated.body),
            Err(invalid) => {
                assert_eq!(invalid.param.as_deref(), Some(param), "{request}");
                assert!(
                    invalid.message.contains(message),
                    "{request}: {}",
                    invalid.message
                );
            }
        }
    }
}

/// Well-typed values keyward cannot use are still dropped, not refused; null is absent.
#[test]
fn well_typed_unusable_values_are_still_dropped() {
    let translated = translated(&request_with(json!({
        "top_k": 40,
        "thinking": {"type": "sometimes", "budget_tokens": null},
        "tool_choice": {"type": "whichever"},
        "output_config": {"format": {"type": "xml"}},
        "metadata": {"user_id": null, "trace": "t"},
        "stop_sequences": null,
        "temperature": null,
    })));
    assert_eq!(
        translated.dropped,
        [
            "tool_choice",
            "thinking",
            "output_config.format",
            "metadata.trace",
            "top_k"
        ]
    );
    assert_eq!(translated.body.get("temperature"), None);
}

/// A client's value echoed in an error is cut short: a megabyte is not sent back.
#[test]
fn echoed_values_are_cut_short() {
    let huge = "h".repeat(1 << 20);
    let refused = translate(
        request_with(json!({"temperature": huge}))
            .to_string()
            .as_bytes(),
    );
    let message = refused.err().map(|e| e.message).unwrap_or_default();
    assert_eq!(
        message,
        format!(
            "`temperature` must be a number, not the string \"{}…\"",
            "h".repeat(64)
        )
    );
}

/// A text answer streams as one text block, with Anthropic's usage (cached input apart).
#[test]
fn streams_text() {
    let frames = streamed(&request_with(json!({})), &fixture_events("text"), None);
    assert_eq!(
        outline(&frames),
        [
            "message_start",
            "ping",
            "start 0 text",
            "text 0 Hel",
            "text 0 lo, ",
            "text 0 world.",
            "stop 0",
            "message_delta end_turn null",
            "message_stop",
        ]
    );
    assert_eq!(
        frames[0],
        json!({"type": "message_start", "message": {
            "id": "msg_0a1b2c3d4e5f", "type": "message", "role": "assistant", "model": "claude-opus-5-5",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {
                "input_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "output_tokens": 0,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                "service_tier": "standard",
            },
        }})
    );
    assert_eq!(
        frames[2]["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(
        last_usage(&frames),
        json!({"input_tokens": 5, "cache_read_input_tokens": 16, "cache_creation_input_tokens": 0, "output_tokens": 4})
    );
}

/// A tool call streams as a tool_use block with its arguments as JSON deltas.
#[test]
fn streams_a_tool_call() {
    let frames = streamed(&request_with(json!({})), &fixture_events("tool_call"), None);
    assert_eq!(
        outline(&frames),
        [
            "message_start",
            "ping",
            "start 0 tool_use",
            "json 0 {\"ci",
            "json 0 ty\":\"Pa",
            "json 0 ris\"}",
            "stop 0",
            "message_delta tool_use null",
            "message_stop",
        ]
    );
    assert_eq!(
        frames[2]["content_block"],
        json!({"type": "tool_use", "id": "call_Wx1", "name": "get_weather", "input": {}})
    );
    assert_eq!(last_usage(&frames)["output_tokens"], 18);
}

/// Text then two calls stream as three blocks with sequential indexes.
#[test]
fn streams_parallel_tool_calls() {
    let frames = streamed(
        &request_with(json!({})),
        &fixture_events("parallel_tool_calls"),
        None,
    );
    assert_eq!(
        outline(&frames),
        [
            "message_start",
            "ping",
            "start 0 text",
            "text 0 Checking both.",
            "stop 0",
            "start 1 tool_use",
            "json 1 {\"city\":",
            "json 1 \"Paris\"}",
            "stop 1",
            "start 2 tool_use",
            "json 2 {\"zone\":\"Asia/",
            "json 2 Tokyo\"}",
            "stop 2",
            "message_delta tool_use null",
            "message_stop",
        ]
    );
    assert_eq!(frames[9]["content_block"]["id"], "call_B2");
}

/// With thinking on, reasoning streams as a thinking block whose signature carries the
/// encrypted reasoning; with it off, the reasoning is not shown.
#[test]
fn streams_reasoning_as_thinking() {
    let frames = streamed(&thinking_on(), &fixture_events("reasoning"), None);
    assert_eq!(
        outline(&frames),
        [
            "message_start",
            "ping",
            "start 0 thinking",
            "thinking 0 **Thinking** about ",
            "thinking 0 the question",
            "thinking 0 \n\nThen ",
            "thinking 0 answering",
            "signature 0 kwsig1.gAAAAABpKw-encrypted-reasoning-blob==",
            "stop 0",
            "start 1 text",
            "text 1 The answer ",
            "text 1 is 4.",
            "stop 1",
            "message_delta end_turn null",
            "message_stop",
        ]
    );
    assert_eq!(
        frames[2]["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    let hidden = streamed(&request_with(json!({})), &fixture_events("reasoning"), None);
    assert_eq!(
        outline(&hidden)[2..5],
        ["start 0 text", "text 0 The answer ", "text 0 is 4."]
    );
}

/// An answer cut at the token limit ends with stop_reason max_tokens.
#[test]
fn streams_a_length_cut() {
    let frames = streamed(&request_with(json!({})), &fixture_events("length"), None);
    assert_eq!(
        outline(&frames)[5..],
        ["stop 0", "message_delta max_tokens null", "message_stop"]
    );
    assert_eq!(
        last_usage(&frames),
        json!({"input_tokens": 12, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "output_tokens": 5})
    );
}

/// A failure mid-answer becomes one error frame, and nothing follows it.
#[test]
fn streams_a_midstream_failure_as_an_error() {
    let frames = streamed(
        &request_with(json!({})),
        &fixture_events("error_midstream"),
        None,
    );
    assert_eq!(
        outline(&frames),
        [
            "message_start",
            "ping",
            "start 0 text",
            "text 0 Partial ",
            "error api_error"
        ]
    );
    assert_eq!(
        frames[4],
        json!({"type": "error", "error": {"type": "api_error", "message": "The model failed to generate a response."}})
    );
}

/// Upstream error codes map to Anthropic's error types; an early error starts no message.
#[test]
fn error_types_follow_the_upstream_code() {
    for (code, kind) in [
        ("rate_limit_exceeded", "rate_limit_error"),
        ("usage_limit_reached", "rate_limit_error"),
        ("server_is_overloaded", "overloaded_error"),
        ("context_length_exceeded", "invalid_request_error"),
        ("server_error", "api_error"),
    ] {
        let event = json!({"type": "error", "code": code, "message": "no"});
        let frames = streamed(&request_with(json!({})), &typed(&[event]), None);
        assert_eq!(outline(&frames), [format!("error {kind}")], "{code}");
    }
}

/// A stream that ends or breaks before its terminal event ends with an error frame.
#[test]
fn a_cut_stream_ends_with_an_error() {
    let events = fixture_events("text");
    let cut = &events[..6];
    let frames = streamed(&request_with(json!({})), cut, None);
    assert_eq!(
        outline(&frames)[2..],
        [
            "start 0 text",
            "text 0 Hel",
            "text 0 lo, ",
            "error api_error"
        ]
    );
    assert!(text(&frames[5]["error"]["message"]).contains("ended before"));
    let broken = streamed(&request_with(json!({})), cut, Some("connection reset"));
    assert!(text(&broken[5]["error"]["message"]).contains("connection reset"));
    let nothing = streamed(&request_with(json!({})), &[], None);
    assert_eq!(outline(&nothing), ["error api_error"]);
}

/// A stop sequence split across deltas ends the answer there, with an estimated usage, and
/// the translator asks to stop reading.
#[test]
fn streams_stop_at_a_split_stop_sequence() {
    let request = request_with(json!({"stop_sequences": ["o, wor"]}));
    let frames = streamed(&request, &fixture_events("text"), None);
    assert_eq!(
        outline(&frames),
        [
            "message_start",
            "ping",
            "start 0 text",
            "text 0 Hel",
            "text 0 l",
            "stop 0",
            "message_delta stop_sequence o, wor",
            "message_stop",
        ]
    );
    assert_eq!(
        last_usage(&frames),
        json!({"input_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "output_tokens": count_text("Hell")})
    );

    let mut translator = answer(&request).stream();
    let mut out = Vec::new();
    let flows: Vec<Flow> = fixture_events("text")
        .iter()
        .map(|event| translator.event(event, &mut out))
        .collect();
    assert_eq!(flows[5], Flow::Continue);
    assert_eq!(flows[6], Flow::Stop);
}

/// Non-streamed replies carry the same blocks, stop reasons and usage as the streams.
#[test]
fn replies_from_assembled_responses() {
    assert_eq!(
        replied(&request_with(json!({})), "text"),
        json!({
            "id": "msg_0a1b2c3d4e5f",
            "type": "message",
            "role": "assistant",
            "model": "claude-opus-5-5",
            "content": [{"type": "text", "text": "Hello, world."}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {
                "input_tokens": 5, "cache_read_input_tokens": 16, "cache_creation_input_tokens": 0, "output_tokens": 4,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                "service_tier": "standard",
            },
        })
    );
    let tool = replied(&request_with(json!({})), "tool_call");
    assert_eq!(
        tool["content"],
        json!([{"type": "tool_use", "id": "call_Wx1", "name": "get_weather", "input": {"city": "Paris"}}])
    );
    assert_eq!(tool["stop_reason"], "tool_use");
    let parallel = replied(&request_with(json!({})), "parallel_tool_calls");
    assert_eq!(
        parallel["content"],
        json!([
            {"type": "text", "text": "Checking both."},
            {"type": "tool_use", "id": "call_A1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_B2", "name": "get_time", "input": {"zone": "Asia/Tokyo"}},
        ])
    );
    assert_eq!(
        replied(&thinking_on(), "reasoning")["content"],
        json!([
            {"type": "thinking", "thinking": "**Thinking** about the question\n\nThen answering", "signature": "kwsig1.gAAAAABpKw-encrypted-reasoning-blob=="},
            {"type": "text", "text": "The answer is 4."},
        ])
    );
    assert_eq!(
        replied(&request_with(json!({})), "reasoning")["content"],
        json!([{"type": "text", "text": "The answer is 4."}])
    );
    assert_eq!(
        replied(&request_with(json!({})), "length")["stop_reason"],
        "max_tokens"
    );
    let stopped = replied(
        &request_with(json!({"stop_sequences": ["", "world"]})),
        "text",
    );
    assert_eq!(
        (
            &stopped["content"],
            &stopped["stop_reason"],
            &stopped["stop_sequence"]
        ),
        (
            &json!([{"type": "text", "text": "Hello, "}]),
            &json!("stop_sequence"),
            &json!("world")
        )
    );
}

/// Arguments that are not a JSON object still give an object `input`.
#[test]
fn tool_input_is_always_an_object() {
    assert_eq!(tool_input("{\"a\":1}"), json!({"a": 1}));
    assert_eq!(tool_input(""), json!({}));
    assert_eq!(tool_input("[1]"), json!({"arguments": "[1]"}));
    assert_eq!(tool_input("{\"a\":"), json!({"arguments": "{\"a\":"}));
}

/// A thinking block from a reply (streamed or not), sent back on the next turn, becomes the
/// reasoning item with the upstream's original encrypted content.
#[test]
fn thinking_round_trips_to_reasoning() {
    let reply = replied(&thinking_on(), "reasoning");
    let streamed_frames = streamed(&thinking_on(), &fixture_events("reasoning"), None);
    let mut thinking = String::new();
    let mut signature = String::new();
    for frame in &streamed_frames {
        thinking.push_str(frame["delta"]["thinking"].as_str().unwrap_or(""));
        signature.push_str(frame["delta"]["signature"].as_str().unwrap_or(""));
    }
    let streamed_content = json!([
        {"type": "thinking", "thinking": thinking, "signature": signature},
        {"type": "text", "text": "The answer is 4."},
    ]);
    for content in [reply["content"].clone(), streamed_content] {
        let next = body(json!({
            "model": "claude-opus-5-5",
            "thinking": {"type": "adaptive"},
            "messages": [
                {"role": "user", "content": "What is 2+2?"},
                {"role": "assistant", "content": content},
                {"role": "user", "content": "Thanks."},
            ],
        }));
        assert_eq!(
            next["input"][1],
            json!({
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "**Thinking** about the question\n\nThen answering"}],
                "encrypted_content": "gAAAAABpKw-encrypted-reasoning-blob==",
            })
        );
        assert_eq!(next["input"][2]["role"], "assistant");
    }
}

/// Items the stream never announced (no `output_item.added`, no deltas) are still sent whole.
#[test]
fn items_without_deltas_are_sent_whole() {
    let events = [
        json!({"type": "response.created", "response": {"id": "resp_x"}}),
        json!({"type": "response.output_item.done", "output_index": 0, "item": {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hmm"}], "encrypted_content": "E"}}),
        json!({"type": "response.output_item.done", "output_index": 1, "item": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}}),
        json!({"type": "response.output_item.done", "output_index": 2, "item": {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}}),
        json!({"type": "response.completed", "response": {"status": "completed"}}),
    ];
    assert_eq!(
        outline(&streamed(&thinking_on(), &typed(&events), None)),
        [
            "message_start",
            "ping",
            "start 0 thinking",
            "thinking 0 hmm",
            "signature 0 kwsig1.E",
            "stop 0",
            "start 1 text",
            "text 1 hi",
            "stop 1",
            "start 2 tool_use",
            "json 2 {}",
            "stop 2",
            "message_delta tool_use null",
            "message_stop",
        ]
    );
}

/// A failed tool's output says so in its text, the only place a Responses output can.
#[test]
fn failed_tool_results_say_so() {
    let output = |content: Value| {
        let body = body(json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": true, "content": content}]},
        ]}));
        body["input"][0]["output"].clone()
    };
    assert_eq!(output(json!("boom")), json!("Error: boom"));
    assert_eq!(
        output(json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])),
        json!("Error: a\nb")
    );
    let image =
        json!({"type": "image", "source": {"type": "url", "url": "https://example.com/x.png"}});
    assert_eq!(
        output(json!([image])),
        json!([
            {"type": "input_text", "text": "Error"},
            {"type": "input_image", "image_url": "https://example.com/x.png"},
        ])
    );
}

/// Checks the Anthropic stream grammar: one message_start first, blocks opened and closed
/// one at a time with sequential indexes, and exactly one ending (message_stop or error).
fn check_grammar(frames: &[Value]) -> Result<(), String> {
    let mut started = false;
    let mut open: Option<u64> = None;
    let mut next = 0;
    let mut ended = false;
    for frame in frames {
        let kind = text(&frame["type"]);
        if ended {
            return Err(format!("{kind} after the end"));
        }
        let index = frame["index"].as_u64();
        match kind {
            "message_start" if !started => started = true,
            "error" => ended = true,
            _ if !started => return Err(format!("{kind} before message_start")),
            "ping" => {}
            "content_block_start" if open.is_none() && index == Some(next) => {
                open = index;
                next += 1;
            }
            "content_block_delta" if open.is_some() && open == index => {}
            "content_block_stop" if open.is_some() && open == index => open = None,
            "message_delta" if open.is_none() => {}
            "message_stop" => ended = true,
            _ => return Err(format!("unexpected {frame}")),
        }
    }
    if ended {
        Ok(())
    } else {
        Err("no ending".into())
    }
}

const WORDS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "base64",
    "url",
    "content",
    "kwsig1.abc",
    "kwsig1.",
    "enabled",
    "adaptive",
    "disabled",
    "auto",
    "any",
    "tool",
    "none",
    "web_search_20250305",
    "bash_20250124",
    "custom",
    "json_schema",
    "max",
    "x-anthropic-billing-header: x",
    "message",
    "function_call",
    "reasoning",
    "output_text",
    "refusal",
    "incomplete",
    "completed",
    "content_filter",
    "response.output_item.added",
    "response.output_item.done",
];

const KEYS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "source",
    "media_type",
    "data",
    "url",
    "id",
    "name",
    "input",
    "tool_use_id",
    "is_error",
    "thinking",
    "signature",
    "system",
    "tools",
    "tool_choice",
    "input_schema",
    "budget_tokens",
    "output_config",
    "effort",
    "format",
    "schema",
    "stop_sequences",
    "metadata",
    "user_id",
    "max_tokens",
    "stream",
    "title",
    "item",
    "delta",
    "output_index",
    "summary_index",
    "response",
    "status",
    "usage",
    "output",
    "arguments",
    "call_id",
    "encrypted_content",
    "summary",
    "error",
    "code",
    "message",
    "incomplete_details",
    "reason",
    "refusal",
];

const EVENT_TYPES: &[&str] = &[
    "response.created",
    "response.output_item.added",
    "response.output_item.done",
    "response.output_text.delta",
    "response.refusal.delta",
    "response.reasoning_summary_text.delta",
    "response.function_call_arguments.delta",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "error",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(WORDS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(key, value)| (key.to_string(), value))
                        .collect(),
                )
            }),
        ]
    })
}

/// Every JSON pointer into a value, the root included.
fn pointers(value: &Value, at: String, all: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), all);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers(item, format!("{at}/{key}"), all);
            }
        }
        _ => {}
    }
    all.push(at);
}

fn arb_event() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(EVENT_TYPES),
        arb_json(),
        arb_json(),
        prop::option::of(0u64..3),
        ".{0,6}",
    )
        .prop_map(|(kind, item, response, index, delta)| {
            json!({"type": kind, "item": item, "response": response, "output_index": index, "summary_index": index, "delta": delta})
        })
}

proptest! {
    /// Any JSON body gives a translation or a refusal, never a panic.
    #[test]
    fn any_json_never_panics(value in arb_json()) {
        let _ = translate(value.to_string().as_bytes());
    }

    /// A well-formed request with any one part replaced by any JSON never panics.
    #[test]
    fn damaged_requests_never_panic(
        request in well_formed_request(),
        at in any::<prop::sample::Index>(),
        replacement in arb_json(),
    ) {
        let mut request = request;
        let mut all = Vec::new();
        pointers(&request, String::new(), &mut all);
        let pointer: &String = at.get(&all);
        if let Some(slot) = request.pointer_mut(pointer) {
            *slot = replacement;
        }
        let _ = translate(request.to_string().as_bytes());
    }

    /// Well-formed requests translate, drop nothing, answer every call after the call, and
    /// keep output text to the assistant's messages.
    #[test]
    fn well_formed_requests_translate(request in well_formed_request()) {
        let translated = translate(request.to_string().as_bytes())
            .map_err(|e| TestCaseError::fail(format!("refused: {e:?}")))?;
        prop_assert!(translated.dropped.is_empty(), "dropped {:?}", translated.dropped);
        let mut calls = HashSet::new();
        for item in translated.body["input"].as_array().into_iter().flatten() {
            match text(&item["type"]) {
                "function_call" => {
                    calls.insert(text(&item["call_id"]).to_string());
                }
                "function_call_output" => {
                    prop_assert!(calls.contains(text(&item["call_id"])), "{item} before its call");
                }
                "message" => {
                    let assistant = item["role"] == "assistant";
                    for part in item["content"].as_array().into_iter().flatten() {
                        prop_assert_eq!(part["type"] == "output_text", assistant, "{}", item);
                    }
                }
                _ => {}
            }
        }
    }

    /// Any sequence of events, of any shape, never panics a translator or a reply.
    #[test]
    fn any_events_never_panic(events in prop::collection::vec(arb_event(), 0..12), shown in any::<bool>()) {
        let request = if shown { thinking_on() } else { request_with(json!({"stop_sequences": ["a"]})) };
        let _ = run(answer(&request).stream(), &typed(&events), None);
        for event in &events {
            let _ = answer(&request).reply(&event["response"]);
        }
    }

    /// Any ordered selection of a recorded stream's events, cut or broken, still gives a
    /// well-formed Anthropic stream.
    #[test]
    fn streams_stay_well_formed(
        fixture in prop::sample::select(vec!["text", "tool_call", "parallel_tool_calls", "reasoning", "length", "error_midstream"]),
        keep in prop::collection::vec(any::<bool>(), 30),
        broken in any::<bool>(),
        shown in any::<bool>(),
    ) {
        let events: Vec<StreamEvent> = fixture_events(fixture)
            .into_iter()
            .zip(keep.iter().cycle())
            .filter(|(_, keep)| **keep)
            .map(|(event, _)| event)
            .collect();
        let request = if shown { thinking_on() } else { request_with(json!({"stop_sequences": ["is 4", "Paris"]})) };
        let frames = streamed(&request, &events, broken.then_some("reset"));
        prop_assert_eq!(check_grammar(&frames), Ok(()), "{:?}", outline(&frames));
    }
}
