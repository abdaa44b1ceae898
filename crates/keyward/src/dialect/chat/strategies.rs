//! Chat request generators, shared with the other translators' and the gateway's property tests.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Field names and words of chat requests, so random values reach deep into a translator.
const WORDS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "image_url",
    "url",
    "file",
    "tool_calls",
    "tool_call_id",
    "function",
    "name",
    "arguments",
    "tools",
    "tool_choice",
    "response_format",
    "json_schema",
    "schema",
    "stop",
    "n",
    "stream",
    "stream_options",
    "include_usage",
    "prompt",
    "echo",
    "best_of",
    "max_tokens",
    "function_call",
    "functions",
    "system",
    "user",
    "assistant",
    "tool",
    "developer",
    "auto",
    "required",
    "none",
    "refusal",
    "input_audio",
    "modalities",
    "audio",
    "web_search_options",
    "user_location",
    "approximate",
    "max_completion_tokens",
    "reasoning_effort",
    "verbosity",
    "json_object",
    "detail",
    "file_data",
    "id",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(WORDS).prop_map(str::to_string),
        "\\PC{0,8}",
    ]
}

/// Any JSON value, a few levels deep.
pub(crate) fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0u64..6).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// An object with a model and random `messages` (and random other fields): past the first
/// checks, into the message translation.
pub(crate) fn chat_shaped() -> impl Strategy<Value = Value> {
    let roles = vec!["system", "user", "assistant", "tool", "function", "x"];
    let message = (
        prop::sample::select(roles),
        prop::collection::vec((word(), any_json()), 0..5),
    )
        .prop_map(|(role, fields)| {
            let mut message: Map<String, Value> = fields.into_iter().collect();
            message.insert("role".into(), role.into());
            Value::Object(message)
        });
    (
        prop::collection::vec(message, 0..6),
        prop::collection::vec((word(), any_json()), 0..5),
    )
        .prop_map(|(messages, fields)| {
            let mut request: Map<String, Value> = fields.into_iter().collect();
            request.insert("model".into(), "m".into());
            request.insert("messages".into(), Value::Array(messages));
            Value::Object(request)
        })
}

const TOOL_NAMES: &[&str] = &["get_weather", "search", "lookup"];

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,16}"
}

/// User content: a string, or text, image and file parts.
fn user_content() -> impl Strategy<Value = Value> {
    let part = prop_oneof![
        text().prop_map(|t| json!({"type": "text", "text": t})),
        Just(
            json!({"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}})
        ),
        Just(json!({"type": "image_url", "image_url": "data:image/png;base64,AAAA"})),
        Just(
            json!({"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"}})
        ),
    ];
    prop_oneof![
        text().prop_map(Value::String),
        prop::collection::vec(part, 1..4).prop_map(Value::Array),
    ]
}

/// Assistant content: a string, text and refusal parts, or nothing.
fn assistant_content() -> impl Strategy<Value = Value> {
    let part = prop_oneof![
        text().prop_map(|t| json!({"type": "text", "text": t})),
        text().prop_map(|t| json!({"type": "refusal", "refusal": t})),
    ];
    prop_oneof![
        Just(Value::Null),
        text().prop_map(Value::String),
        prop::collection::vec(part, 1..3).prop_map(Value::Array),
    ]
}

/// A tool's result: a string or text parts.
fn tool_content() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::String),
        prop::collection::vec(
            text().prop_map(|t| json!({"type": "text", "text": t})),
            1..3
        )
        .prop_map(Value::Array),
    ]
}

/// One step of a conversation; tool call ids are given when the request is put together.
#[derive(Debug, Clone)]
enum Turn {
    User(Value),
    Developer(String),
    Assistant(Value),
    /// An assistant message calling tools, then results for some of the calls (in order or
    /// reversed).
    ToolRound {
        content: Value,
        calls: Vec<(&'static str, String)>,
        results: Vec<Option<Value>>,
        reversed: bool,
    },
    /// A legacy `function_call` and, maybe, its `function` result.
    Legacy {
        name: &'static str,
        arguments: String,
        result: Option<Value>,
    },
}

fn arguments() -> impl Strategy<Value = String> {
    (text(), 0..100i64).prop_map(|(q, n)| json!({"q": q, "n": n}).to_string())
}

fn turn() -> impl Strategy<Value = Turn> {
    let call = (prop::sample::select(TOOL_NAMES), arguments());
    let round = (
        assistant_content(),
        prop::collection::vec(call, 1..4),
        prop::collection::vec(prop::option::weighted(0.8, tool_content()), 4),
        any::<bool>(),
    )
        .prop_map(|(content, calls, mut results, reversed)| {
            results.truncate(calls.len());
            Turn::ToolRound {
                content,
                calls,
                results,
                reversed,
            }
        });
    prop_oneof![
        3 => user_content().prop_map(Turn::User),
        1 => text().prop_map(Turn::Developer),
        2 => assistant_content().prop_map(Turn::Assistant),
        3 => round,
        1 => (prop::sample::select(TOOL_NAMES), arguments(), prop::option::of(tool_content()))
            .prop_map(|(name, arguments, result)| Turn::Legacy { name, arguments, result }),
    ]
}

fn messages(system: Option<String>, turns: Vec<Turn>) -> Vec<Value> {
    let mut messages = Vec::new();
    if let Some(system) = system {
        messages.push(json!({"role": "system", "content": system}));
    }
    let mut next_id = 0;
    for turn in turns {
        match turn {
            Turn::User(content) => messages.push(json!({"role": "user", "content": content})),
            Turn::Developer(text) => messages.push(json!({"role": "developer", "content": text})),
            Turn::Assistant(content) => {
                messages.push(json!({"role": "assistant", "content": content}))
            }
            Turn::ToolRound {
                content,
                calls,
                results,
                reversed,
            } => {
                let ids: Vec<String> = calls
                    .iter()
                    .map(|_| {
                        next_id += 1;
                        format!("call_{next_id}")
                    })
                    .collect();
                let tool_calls: Vec<Value> = calls
                    .iter()
                    .zip(&ids)
                    .map(|((name, arguments), id)| {
                        json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
                    })
                    .collect();
                messages.push(
                    json!({"role": "assistant", "content": content, "tool_calls": tool_calls}),
                );
                let mut answers: Vec<Value> = ids
                    .iter()
                    .zip(results)
                    .filter_map(|(id, result)| {
                        result.map(|content| {
                            json!({"role": "tool", "tool_call_id": id, "content": content})
                        })
                    })
                    .collect();
                if reversed {
                    answers.reverse();
                }
                messages.extend(answers);
            }
            Turn::Legacy {
                name,
                arguments,
                result,
            } => {
                messages.push(json!({"role": "assistant", "content": null, "function_call": {"name": name, "arguments": arguments}}));
                if let Some(content) = result {
                    messages.push(json!({"role": "function", "name": name, "content": content}));
                }
            }
        }
    }
    messages
}

fn tool() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(TOOL_NAMES),
        prop::option::of(text()),
        any::<bool>(),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(name, description, with_parameters, strict)| {
            let mut function = Map::new();
            function.insert("name".into(), name.into());
            if let Some(description) = description {
                function.insert("description".into(), description.into());
            }
            if with_parameters {
                function.insert(
                    "parameters".into(),
                    json!({"type": "object", "properties": {"q": {"type": "string"}}}),
                );
            }
            if let Some(strict) = strict {
                function.insert("strict".into(), strict.into());
            }
            json!({"type": "function", "function": function})
        })
}

fn tool_choice() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec!["auto", "none", "required"]).prop_map(|m| Some(json!(m))),
        prop::sample::select(TOOL_NAMES)
            .prop_map(|n| Some(json!({"type": "function", "function": {"name": n}}))),
    ]
}

fn response_format() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!({"type": "text"}))),
        Just(Some(json!({"type": "json_object"}))),
        any::<bool>().prop_map(|strict| Some(json!({"type": "json_schema", "json_schema": {
            "name": "answer", "strict": strict,
            "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
        }}))),
    ]
}

fn stop() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        text().prop_map(|s| Some(Value::String(s))),
        prop::collection::vec(text(), 0..5).prop_map(|s| Some(json!(s))),
    ]
}

/// Optional scalar fields: `(name, value)`.
fn extras() -> impl Strategy<Value = Vec<(&'static str, Value)>> {
    let extra = prop_oneof![
        (0.0..2.0f64).prop_map(|t| ("temperature", json!(t))),
        (1u64..4096).prop_map(|m| ("max_tokens", json!(m))),
        (1u64..4096).prop_map(|m| ("max_completion_tokens", json!(m))),
        prop::sample::select(vec!["low", "medium", "high"])
            .prop_map(|e| ("reasoning_effort", json!(e))),
        any::<bool>().prop_map(|s| ("stream", json!(s))),
        any::<bool>().prop_map(|u| ("stream_options", json!({"include_usage": u}))),
        any::<bool>().prop_map(|p| ("parallel_tool_calls", json!(p))),
        prop::sample::select(vec![
            ("user", json!("someone")),
            ("n", json!(1)),
            ("frequency_penalty", json!(0.5)),
            ("x_unknown_extension", json!({"a": 1})),
        ]),
    ];
    prop::collection::vec(extra, 0..6)
}

/// A chat request as a well-behaved client sends it: every tool message answers an earlier
/// tool call, every field has its documented type.
pub(crate) fn well_formed_request() -> impl Strategy<Value = Value> {
    (
        prop::option::of(text()),
        prop::collection::vec(turn(), 1..7),
        prop::collection::vec(tool(), 0..4),
        tool_choice(),
        response_format(),
        stop(),
        extras(),
    )
        .prop_map(|(system, turns, tools, choice, format, stop, extras)| {
            let mut request = Map::new();
            request.insert("model".into(), "gpt-test".into());
            request.insert("messages".into(), Value::Array(messages(system, turns)));
            if !tools.is_empty() {
                request.insert("tools".into(), Value::Array(tools));
            }
            let optional = [
                ("tool_choice", choice),
                ("response_format", format),
                ("stop", stop),
            ];
            for (name, value) in optional {
                if let Some(value) = value {
                    request.insert(name.into(), value);
                }
            }
            for (name, value) in extras {
                request.insert(name.into(), value);
            }
            Value::Object(request)
        })
}
