//! Well-formed Messages requests, for property tests here and against the strict mock upstream.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Names of the function tools every generated request offers.
pub(crate) const TOOL_NAMES: [&str; 3] = ["get_weather", "read_file", "run_query"];

fn words() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9 .,!?'-]{0,30}"
}

fn text_block() -> impl Strategy<Value = Value> {
    (words(), any::<bool>()).prop_map(|(text, cached)| {
        if cached {
            json!({"type": "text", "text": text, "cache_control": {"type": "ephemeral"}})
        } else {
            json!({"type": "text", "text": text})
        }
    })
}

fn image_block() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[A-Za-z0-9+/]{4,24}={0,2}".prop_map(|data| json!({
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": data},
        })),
        "[a-z]{1,8}".prop_map(|name| json!({
            "type": "image",
            "source": {"type": "url", "url": format!("https://example.com/{name}.png")},
        })),
    ]
}

/// A user's own blocks: text and images, at least one text.
fn user_blocks() -> impl Strategy<Value = Vec<Value>> {
    (
        prop::collection::vec(text_block(), 1..3),
        prop::collection::vec(image_block(), 0..2),
    )
        .prop_map(|(mut texts, images)| {
            texts.extend(images);
            texts
        })
}

/// One round: the assistant's turn, then the user's answer to it.
#[derive(Debug, Clone)]
struct Round {
    thinking: Option<(String, String)>,
    text: Option<String>,
    /// (tool name index, argument) per call.
    calls: Vec<(usize, String)>,
    /// (is_error, with an image, text) per tool result, cycled over the calls.
    results: Vec<(bool, bool, String)>,
    reply: Vec<Value>,
    reply_as_string: bool,
}

fn round() -> impl Strategy<Value = Round> {
    (
        prop::option::of((words(), "[A-Za-z0-9_=-]{8,40}")),
        prop::option::of(words()),
        prop::collection::vec((0..TOOL_NAMES.len(), words()), 0..4),
        prop::collection::vec((any::<bool>(), any::<bool>(), words()), 1..4),
        user_blocks(),
        any::<bool>(),
    )
        .prop_map(
            |(thinking, text, calls, results, reply, reply_as_string)| Round {
                thinking,
                text,
                calls,
                results,
                reply,
                reply_as_string,
            },
        )
}

fn tools() -> impl Strategy<Value = Vec<Value>> {
    (
        prop::collection::vec((words(), any::<bool>()), TOOL_NAMES.len()),
        any::<bool>(),
    )
        .prop_map(|(specs, web_search)| {
            let mut tools: Vec<Value> = TOOL_NAMES
                .iter()
                .zip(specs)
                .map(|(name, (description, deferred))| {
                    let mut tool = json!({
                        "name": name,
                        "description": description,
                        "input_schema": {
                            "type": "object",
                            "properties": {"arg": {"type": "string"}},
                            "required": ["arg"],
                        },
                    });
                    if deferred {
                        tool["defer_loading"] = json!(true);
                    }
                    tool
                })
                .collect();
            if web_search {
                tools.push(json!({"type": "web_search_20250305", "name": "web_search"}));
            }
            tools
        })
}

fn tool_choice() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!({"type": "auto"}))),
        Just(Some(
            json!({"type": "any", "disable_parallel_tool_use": true})
        )),
        Just(Some(json!({"type": "none"}))),
        (0..TOOL_NAMES.len()).prop_map(|i| Some(json!({"type": "tool", "name": TOOL_NAMES[i]}))),
    ]
}

fn thinking() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        (1_024u64..40_000)
            .prop_map(|budget| Some(json!({"type": "enabled", "budget_tokens": budget}))),
        Just(Some(json!({"type": "adaptive"}))),
        Just(Some(json!({"type": "disabled"}))),
    ]
}

fn system() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        words().prop_map(|text| Some(Value::String(text))),
        (prop::collection::vec(text_block(), 1..3), any::<bool>()).prop_map(
            |(mut blocks, billing)| {
                if billing {
                    blocks.insert(0, json!({"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332"}));
                }
                Some(Value::Array(blocks))
            }
        ),
    ]
}

/// Assembles the conversation: a user turn, then rounds whose tool results answer exactly
/// the calls of the assistant turn before them.
fn conversation(first: Vec<Value>, rounds: Vec<Round>) -> Vec<Value> {
    let mut messages = vec![json!({"role": "user", "content": first})];
    for (r, round) in rounds.into_iter().enumerate() {
        let mut assistant = Vec::new();
        if let Some((text, encrypted)) = round.thinking {
            assistant.push(json!({"type": "thinking", "thinking": text, "signature": format!("kwsig1.{encrypted}")}));
        }
        let ids: Vec<String> = (0..round.calls.len())
            .map(|k| format!("toolu_{r}_{k}"))
            .collect();
        if round.text.is_none() && round.calls.is_empty() {
            assistant.push(json!({"type": "text", "text": "Noted."}));
        }
        if let Some(text) = round.text {
            assistant.push(json!({"type": "text", "text": text}));
        }
        for (id, (tool, argument)) in ids.iter().zip(&round.calls) {
            assistant.push(json!({"type": "tool_use", "id": id, "name": TOOL_NAMES[*tool], "input": {"arg": argument}}));
        }
        messages.push(json!({"role": "assistant", "content": assistant}));

        let mut user = Vec::new();
        for (id, (is_error, image, text)) in ids.iter().zip(round.results.iter().cycle()) {
            let content = if *image {
                json!([{"type": "text", "text": text}, {"type": "image", "source": {"type": "url", "url": "https://example.com/shot.png"}}])
            } else {
                json!(text)
            };
            user.push(json!({"type": "tool_result", "tool_use_id": id, "content": content, "is_error": is_error}));
        }
        if user.is_empty() && round.reply_as_string {
            messages.push(json!({"role": "user", "content": "Go on."}));
            continue;
        }
        user.extend(round.reply);
        messages.push(json!({"role": "user", "content": user}));
    }
    messages
}

/// A well-formed Messages request, as the SDKs and Claude Code send them.
pub(crate) fn well_formed_request() -> impl Strategy<Value = Value> {
    (
        (
            prop::sample::select(vec!["claude-opus-5-5", "claude-sonnet-5", "gpt-6.1-sol"]),
            system(),
            user_blocks(),
            prop::collection::vec(round(), 0..4),
        ),
        (
            prop::option::of(tools()),
            tool_choice(),
            thinking(),
            prop::option::of(prop::collection::vec(words(), 0..3)),
            prop::option::of(1u64..64_000),
            any::<bool>(),
            prop::option::of("[a-z0-9_-]{1,40}"),
        ),
    )
        .prop_map(
            |(
                (model, system, first, rounds),
                (tools, tool_choice, thinking, stops, max_tokens, stream, user_id),
            )| {
                let uses_tools = rounds.iter().any(|r| !r.calls.is_empty());
                let mut request = Map::new();
                request.insert("model".into(), json!(model));
                if let Some(system) = system {
                    request.insert("system".into(), system);
                }
                request.insert("messages".into(), Value::Array(conversation(first, rounds)));
                // A conversation with tool calls always offers the tools.
                let tools = tools.or_else(|| uses_tools.then(Vec::new));
                if let Some(mut tools) = tools {
                    if tools.is_empty() {
                        tools = TOOL_NAMES
                            .iter()
                            .map(|name| json!({"name": name, "input_schema": {"type": "object"}}))
                            .collect();
                    }
                    request.insert("tools".into(), Value::Array(tools));
                    if let Some(choice) = tool_choice {
                        request.insert("tool_choice".into(), choice);
                    }
                }
                if let Some(thinking) = thinking {
                    request.insert("thinking".into(), thinking);
                }
                if let Some(stops) = stops {
                    request.insert("stop_sequences".into(), json!(stops));
                }
                if let Some(max_tokens) = max_tokens {
                    request.insert("max_tokens".into(), json!(max_tokens));
                }
                request.insert("stream".into(), json!(stream));
                if let Some(user_id) = user_id {
                    request.insert("metadata".into(), json!({"user_id": user_id}));
                }
                Value::Object(request)
            },
        )
}
