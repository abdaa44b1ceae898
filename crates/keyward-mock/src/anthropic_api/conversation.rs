//! A Messages request as the scenario engine reads requests: Responses input
//! items and function tools, so the prompt markers mean the same on every
//! endpoint.
//!
//! Each message's text becomes a message item, its `tool_use` blocks function
//! calls and its `tool_result` blocks function call outputs, placed after the
//! message's text: a user turn that returns a tool's result is acknowledged
//! (`tool said: …`) even when it also says something. Custom tools become
//! function tools whose parameters are their `input_schema`; Anthropic's own
//! tools (web search, bash, ...) are never called by the markers.

use serde_json::{json, Value};

/// The request as the scenario engine reads it.
pub(crate) fn scenario_view(request: &Value) -> Value {
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut input = Vec::new();
    for message in messages {
        add_message(message, &mut input);
    }
    let tools: Vec<Value> = request
        .get("tools")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|tool| {
            matches!(
                tool.get("type").and_then(Value::as_str),
                None | Some("custom")
            )
        })
        .filter_map(|tool| {
            let name = tool.get("name").and_then(Value::as_str)?;
            let schema = tool.get("input_schema").cloned().unwrap_or(Value::Null);
            Some(json!({"type": "function", "name": name, "parameters": schema}))
        })
        .collect();
    json!({"model": request.get("model"), "input": input, "tools": tools})
}

fn add_message(message: &Value, input: &mut Vec<Value>) {
    let role = message
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("user");
    let blocks = match message.get("content") {
        Some(Value::String(text)) => {
            input.push(json!({"type": "message", "role": role, "content": text}));
            return;
        }
        Some(Value::Array(blocks)) => blocks,
        _ => return,
    };
    let text_kind = if role == "assistant" {
        "output_text"
    } else {
        "input_text"
    };
    let mut parts = Vec::new();
    let mut items = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let text = block
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                parts.push(json!({"type": text_kind, "text": text}));
            }
            Some("tool_use") => items.push(json!({
                "type": "function_call",
                "call_id": block.get("id"),
                "name": block.get("name"),
                "arguments": block.get("input").map(Value::to_string).unwrap_or_default(),
            })),
            Some("tool_result") => items.push(json!({
                "type": "function_call_output",
                "call_id": block.get("tool_use_id"),
                "output": result_text(block.get("content")),
            })),
            _ => {}
        }
    }
    if !parts.is_empty() {
        input.push(json!({"type": "message", "role": role, "content": parts}));
    }
    input.extend(items);
}

/// A tool result's text: its string, or its text blocks joined.
fn result_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::responses_endpoint::scenario::{self, Call, Pacing, Scenario, Selection};

    fn request(messages: Value) -> Value {
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "messages": messages,
            "tools": [
                {"type": "web_search_20250305", "name": "web_search"},
                {"name": "get_weather", "input_schema": {
                    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                }},
            ],
        })
    }

    fn text(text: &str) -> Selection {
        Selection::Stream(Scenario::Reply {
            text: Some(text.into()),
            pacing: Pacing::Chunks,
            calls: Vec::new(),
        })
    }

    /// Messages and custom tools become the items and function tools the engine reads.
    #[test]
    fn messages_become_items() {
        let view = scenario_view(&request(json!([
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]},
                {"type": "text", "text": "thanks"},
            ]},
        ])));
        assert_eq!(
            view["input"],
            json!([
                {"type": "message", "role": "user", "content": "weather?"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
                {"type": "function_call", "call_id": "toolu_1", "name": "get_weather", "arguments": r#"{"city":"Paris"}"#},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
                {"type": "function_call_output", "call_id": "toolu_1", "output": "sunny"},
            ])
        );
        assert_eq!(
            view["tools"],
            json!([{"type": "function", "name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
            }}])
        );
        assert_eq!(scenario::select(&view), text("tool said: sunny"));
    }

    /// The markers select the same scenarios as on the Codex backend.
    #[test]
    fn markers_work_on_messages() {
        let view = scenario_view(&request(json!([{"role": "user", "content": "[[tool]]"}])));
        assert_eq!(
            scenario::select(&view),
            Selection::Stream(Scenario::Reply {
                text: None,
                pacing: Pacing::Chunks,
                calls: vec![Call {
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Paris"}"#.into(),
                }],
            })
        );
        let view = scenario_view(&request(json!([
            {"role": "user", "content": [{"type": "text", "text": "[[echo]] hello [[hold:h-2]]"}]},
        ])));
        assert_eq!(scenario::select(&view), text("hello [[hold:h-2]]"));
        assert_eq!(scenario::hold_key(&view).as_deref(), Some("h-2"));
        let view = scenario_view(&json!({"messages": "not a list"}));
        assert_eq!(scenario::select(&view), text("pong"));
    }
}
