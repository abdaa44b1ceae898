//! The chat translator against whole expected requests, the recorded streams and random input.

use std::collections::HashSet;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::{strategies, translate, ChatAnswer};
use crate::dialect::count_tokens::count_text;
use crate::dialect::responses::StreamEvent;
use crate::dialect::testing::{assembled, fixture_events, frames, run, typed};
use crate::dialect::{Answer, Flow, Invalid, Translated};

fn translated(request: &Value) -> Translated {
    translate(request.to_string().as_bytes()).unwrap_or_else(|e| panic!("refused: {e:?}"))
}

fn refused(request: &Value) -> Invalid {
    match translate(request.to_string().as_bytes()) {
        Ok(translated) => panic!("accepted: {:?}", translated.body),
        Err(invalid) => invalid,
    }
}

fn answer(stops: &[&str], include_usage: bool) -> Box<dyn Answer> {
    Box::new(ChatAnswer {
        model: "gpt-client".into(),
        stops: stops.iter().map(|s| s.to_string()).collect(),
        include_usage,
    })
}

/// The data of every frame a translator wrote for `events`.
fn stream(
    stops: &[&str],
    include_usage: bool,
    events: &[StreamEvent],
    broken: Option<&str>,
) -> Vec<Value> {
    frames(&run(answer(stops, include_usage).stream(), events, broken))
        .into_iter()
        .map(|(name, data)| {
            assert_eq!(name, None, "chat frames have no event names");
            data
        })
        .collect()
}

/// An expected chunk of the fixtures' answer (`include_usage` off).
fn chunk(delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-0a1b2c3d4e5f",
        "object": "chat.completion.chunk",
        "created": 1764166000,
        "model": "gpt-client",
        "service_tier": "default",
        "system_fingerprint": null,
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    })
}

fn done() -> Value {
    Value::String("[DONE]".into())
}

fn role() -> Value {
    chunk(json!({"role": "assistant", "content": ""}), None)
}

/// A request using every feature translates to the whole expected Responses request.
#[test]
fn full_request_mapping() {
    let request = json!({
        "model": "gpt-client",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "name": "ann", "content": [
                {"type": "text", "text": "What is here?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}},
            ]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}, {"type": "text", "text": " CET"}]},
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}},
            {"type": "function", "function": {"name": "get_time"}},
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true, "description": "The answer"}},
        "reasoning_effort": "high",
        "max_tokens": 300,
        "stop": ["END", "\n\n"],
        "user": "user-7",
        "stream": true,
        "stream_options": {"include_usage": true},
        "frequency_penalty": 0.3,
        "presence_penalty": 0,
        "x_vendor_hint": "fast",
    });
    let translated = translated(&request);
    assert_eq!(
        Value::Object(translated.body.clone()),
        json!({
            "model": "gpt-client",
            "input": [
                {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Be brief."}]},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "What is here?"},
                    {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "high"},
                ]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
                {"type": "function_call_output", "call_id": "call_2", "output": "noon CET"},
            ],
            "tools": [
                {"type": "function", "name": "get_weather", "description": "Weather now", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true},
                {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}, "strict": false},
            ],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "text": {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": true, "description": "The answer"}},
            "max_output_tokens": 300,
            "reasoning": {"effort": "high", "summary": "auto"},
            "user": "user-7",
            "stream": true,
        })
    );
    assert_eq!(translated.model, "gpt-client");
    assert!(translated.stream);
    assert_eq!(
        translated.dropped,
        ["messages[].name", "frequency_penalty", "x_vendor_hint"]
    );
    assert_eq!(
        crate::dialect::client_name(&translated.renamed, "max_output_tokens"),
        "max_tokens"
    );
    assert_eq!(
        crate::dialect::client_name(&translated.renamed, "reasoning"),
        "reasoning_effort"
    );
    assert_eq!(
        crate::dialect::client_name(&translated.renamed, "text"),
        "response_format"
    );
}

/// The smaller mappings: legacy functions, formats, web search, files, audio, copied fields.
#[test]
fn other_field_mappings() {
    let translated = translated(&json!({
        "model": "m",
        "messages": [
            {"role": "developer", "content": "Rules."},
            {"role": "user", "content": [
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"}},
                {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}},
                {"type": "image_url", "image_url": "https://example.com/b.png"},
            ]},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
            {"role": "assistant", "content": null, "function_call": {"name": "lookup", "arguments": "{\"q\":1}"}},
            {"role": "function", "name": "lookup", "content": "found"},
            {"role": "assistant", "content": "", "refusal": null, "tool_calls": []},
        ],
        "functions": [{"name": "lookup", "parameters": {"type": "object"}}],
        "function_call": {"name": "lookup"},
        "web_search_options": {"search_context_size": "low", "user_location": {"type": "approximate", "approximate": {"city": "Oslo"}}},
        "response_format": {"type": "json_object"},
        "verbosity": "low",
        "max_completion_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.9,
        "parallel_tool_calls": false,
        "metadata": {"k": "v"},
        "service_tier": "auto",
        "prompt_cache_key": "pk",
        "safety_identifier": "sid",
        "n": 1,
        "modalities": ["text"],
        "logprobs": false,
        "seed": 4,
        "store": true,
        "stream": null,
    }));
    assert_eq!(
        Value::Object(translated.body.clone()),
        json!({
            "model": "m",
            "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Rules."}]},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_file", "file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"},
                    {"type": "input_image", "image_url": "https://example.com/b.png"},
                ]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "I can't."}]},
                {"type": "function_call", "call_id": "call_legacy_3", "name": "lookup", "arguments": "{\"q\":1}"},
                {"type": "function_call_output", "call_id": "call_legacy_3", "output": "found"},
            ],
            "tools": [
                {"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": false},
                {"type": "web_search", "search_context_size": "low", "user_location": {"type": "approximate", "city": "Oslo"}},
            ],
            "tool_choice": {"type": "function", "name": "lookup"},
            "text": {"format": {"type": "json_object"}, "verbosity": "low"},
            "max_output_tokens": 50,
            "temperature": 0.2,
            "top_p": 0.9,
            "parallel_tool_calls": false,
            "metadata": {"k": "v"},
            "service_tier": "auto",
            "prompt_cache_key": "pk",
            "safety_identifier": "sid",
            "stream": false,
        })
    );
    assert!(!translated.stream);
    assert_eq!(
        translated.dropped,
        ["messages[].content.input_audio", "seed", "store"]
    );
    assert_eq!(
        crate::dialect::client_name(&translated.renamed, "max_output_tokens"),
        "max_completion_tokens"
    );
    assert_eq!(
        crate::dialect::client_name(&translated.renamed, "tool_choice"),
        "function_call"
    );
    assert_eq!(
        crate::dialect::client_name(&translated.renamed, "tools"),
        "functions"
    );
}

/// `tool_choice` modes and other tool types pass through; text formats map.
#[test]
fn choices_and_formats() {
    let base = |field: &str, value: Value| {
        let mut request = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        request[field] = value;
        translated(&request).body
    };
    for mode in ["auto", "none", "required"] {
        assert_eq!(base("tool_choice", json!(mode))["tool_choice"], mode);
    }
    let hosted = json!({"type": "file_search", "vector_store_ids": ["vs"]});
    assert_eq!(base("tool_choice", hosted.clone())["tool_choice"], hosted);
    assert_eq!(
        base("tools", json!([hosted.clone()]))["tools"],
        json!([hosted])
    );
    assert_eq!(base("function_call", json!("none"))["tool_choice"], "none");
    assert_eq!(
        base("response_format", json!({"type": "text"}))["text"],
        json!({"format": {"type": "text"}})
    );
    assert_eq!(
        base("stream_options", json!(null)).get("stream_options"),
        None
    );
}

/// Every refused request names the offending field.
#[test]
fn invalid_requests_name_their_field() {
    let user = json!({"role": "user", "content": "hi"});
    let with = |field: &str, value: Value| {
        let mut request = json!({"model": "m", "messages": [user.clone()]});
        request[field] = value;
        request
    };
    let messages = |list: Value| json!({"model": "m", "messages": list});
    let call = json!({"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
    let cases = [
        (json!({"messages": [user.clone()]}), "model"),
        (json!({"model": "m"}), "messages"),
        (messages(json!([])), "messages"),
        (messages(json!("hi")), "messages"),
        (messages(json!(["hi"])), "messages[0]"),
        (messages(json!([{"content": "hi"}])), "messages[0].role"),
        (
            messages(json!([{"role": "robot", "content": "hi"}])),
            "messages[0].role",
        ),
        (messages(json!([{"role": "user"}])), "messages[0].content"),
        (
            messages(json!([{"role": "user", "content": 3}])),
            "messages[0].content",
        ),
        (
            messages(json!([{"role": "user", "content": ["x"]}])),
            "messages[0].content[0]",
        ),
        (
            messages(json!([{"role": "user", "content": [{"text": "x"}]}])),
            "messages[0].content[0].type",
        ),
        (
            messages(json!([{"role": "user", "content": [{"type": "text", "text": 1}]}])),
            "messages[0].content[0].text",
        ),
        (
            messages(json!([{"role": "user", "content": [{"type": "image_url"}]}])),
            "messages[0].content[0].image_url",
        ),
        (
            messages(
                json!([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            messages(json!([{"role": "user", "content": [{"type": "file"}]}])),
            "messages[0].content[0].file",
        ),
        (
            messages(
                json!([{"role": "user", "content": [{"type": "file", "file": {"file_id": 3}}]}]),
            ),
            "messages[0].content[0].file.file_id",
        ),
        (
            messages(json!([{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}])),
            "messages[0].content[0].type",
        ),
        (
            messages(
                json!([{"role": "assistant", "content": [{"type": "image_url", "image_url": "u"}]}]),
            ),
            "messages[0].content[0].type",
        ),
        (
            messages(json!([{"role": "assistant", "content": true}])),
            "messages[0].content",
        ),
        (
            messages(json!([{"role": "assistant", "refusal": 1}])),
            "messages[0].refusal",
        ),
        (
            messages(json!([{"role": "assistant", "tool_calls": {}}])),
            "messages[0].tool_calls",
        ),
        (
            messages(
                json!([{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}]),
            ),
            "messages[0].tool_calls[0].id",
        ),
        (
            messages(json!([{"role": "assistant", "tool_calls": [{"id": "c", "type": "custom"}]}])),
            "messages[0].tool_calls[0].type",
        ),
        (
            messages(json!([{"role": "assistant", "tool_calls": [{"id": "c"}]}])),
            "messages[0].tool_calls[0].function",
        ),
        (
            messages(
                json!([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}]),
            ),
            "messages[0].tool_calls[0].function.name",
        ),
        (
            messages(
                json!([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 2}}]}]),
            ),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            messages(json!([{"role": "assistant", "function_call": "f"}])),
            "messages[0].function_call",
        ),
        (
            messages(json!([call.clone(), {"role": "tool", "content": "x"}])),
            "messages[1].tool_call_id",
        ),
        (
            messages(json!([call.clone(), {"role": "tool", "tool_call_id": "c9", "content": "x"}])),
            "messages[1].tool_call_id",
        ),
        (
            messages(json!([call.clone(), {"role": "tool", "tool_call_id": "c1", "content": 5}])),
            "messages[1].content",
        ),
        (
            messages(
                json!([call.clone(), {"role": "tool", "tool_call_id": "c1", "content": [{"type": "image_url", "image_url": "u"}]}]),
            ),
            "messages[1].content[0].type",
        ),
        (
            messages(json!([{"role": "function", "content": "x"}])),
            "messages[0].name",
        ),
        (
            messages(json!([{"role": "function", "name": "f", "content": "x"}])),
            "messages[0].name",
        ),
        (with("tools", json!({})), "tools"),
        (with("tools", json!([1])), "tools[0]"),
        (
            with("tools", json!([{"function": {"name": "f"}}])),
            "tools[0].type",
        ),
        (
            with("tools", json!([{"type": "function"}])),
            "tools[0].function",
        ),
        (
            with(
                "tools",
                json!([{"type": "function", "function": {"description": "d"}}]),
            ),
            "tools[0].function.name",
        ),
        (
            with("functions", json!([{"description": "d"}])),
            "functions[0].name",
        ),
        (with("functions", json!("f")), "functions"),
        (
            with("web_search_options", json!(true)),
            "web_search_options",
        ),
        (with("tool_choice", json!("sometimes")), "tool_choice"),
        (
            with("tool_choice", json!({"type": "function"})),
            "tool_choice.function.name",
        ),
        (with("function_call", json!({})), "function_call.name"),
        (with("function_call", json!(3)), "function_call"),
        (
            with("response_format", json!({"type": "xml"})),
            "response_format.type",
        ),
        (
            with("response_format", json!({"type": "json_schema"})),
            "response_format.json_schema",
        ),
        (
            with(
                "response_format",
                json!({"type": "json_schema", "json_schema": {"schema": {}}}),
            ),
            "response_format.json_schema.name",
        ),
        (with("verbosity", json!(1)), "verbosity"),
        (with("reasoning_effort", json!(1)), "reasoning_effort"),
        (with("max_tokens", json!(-1)), "max_tokens"),
        (
            with("max_completion_tokens", json!("10")),
            "max_completion_tokens",
        ),
        (with("stop", json!(1)), "stop"),
        (with("stop", json!(["a", 2])), "stop[1]"),
        (with("stop", json!(["a", "b", "c", "d", "e"])), "stop"),
        (with("n", json!(2)), "n"),
        (with("n", json!(0)), "n"),
        (with("n", json!("1")), "n"),
        (with("modalities", json!(["text", "audio"])), "modalities"),
        (with("modalities", json!("text")), "modalities"),
        (
            with("audio", json!({"voice": "alloy", "format": "mp3"})),
            "audio",
        ),
        (with("stream", json!("yes")), "stream"),
        (with("stream_options", json!(true)), "stream_options"),
        (
            with("stream_options", json!({"include_usage": "yes"})),
            "stream_options.include_usage",
        ),
    ];
    for (request, param) in cases {
        let invalid = refused(&request);
        assert_eq!(
            invalid.param.as_deref(),
            Some(param),
            "{request}: {invalid:?}"
        );
    }
    assert!(refused(&with("n", json!(3)))
        .message
        .contains("one choice per request"));
    assert_eq!(translate(b"[]").map(|_| ()).map_err(|e| e.param), Err(None));
}

/// Client values echoed in an error are cut short: a megabyte is never sent back.
#[test]
fn echoed_values_are_cut_short() {
    let huge = "z".repeat(1 << 20);
    let call = json!({"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}]});
    let requests = [
        json!({"model": "m", "messages": [{"role": huge}]}),
        json!({"model": "m", "messages": [call, {"role": "tool", "tool_call_id": huge, "content": "x"}]}),
        json!({"model": "m", "messages": [{"role": "function", "name": huge, "content": "x"}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": huge}]}]}),
        json!({"model": "m", "messages": [{"role": "assistant", "content": [{"type": huge}]}]}),
        json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": huge}]}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": huge}),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "function_call": [huge]}),
    ];
    for request in requests {
        let message = refused(&request).message;
        assert!(
            message.len() < 400,
            "{} bytes: {}",
            message.len(),
            &message[..400]
        );
    }
}

/// A text answer streams as the role chunk, one chunk per delta, the closing chunk, `[DONE]`.
#[test]
fn text_stream() {
    assert_eq!(
        stream(&[], false, &fixture_events("text"), None),
        [
            role(),
            chunk(json!({"content": "Hel"}), None),
            chunk(json!({"content": "lo, "}), None),
            chunk(json!({"content": "world."}), None),
            chunk(json!({}), Some("stop")),
            done(),
        ]
    );
}

/// With `include_usage`, every chunk carries `usage: null` and a usage chunk precedes `[DONE]`.
#[test]
fn text_stream_with_usage() {
    let frames = stream(&[], true, &fixture_events("text"), None);
    let with_null_usage = |mut chunk: Value| {
        chunk["usage"] = Value::Null;
        chunk
    };
    let mut usage = with_null_usage(chunk(json!({}), None));
    usage["choices"] = json!([]);
    usage["usage"] = json!({
        "prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25,
        "prompt_tokens_details": {"cached_tokens": 16, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    });
    assert_eq!(
        frames,
        [
            with_null_usage(role()),
            with_null_usage(chunk(json!({"content": "Hel"}), None)),
            with_null_usage(chunk(json!({"content": "lo, "}), None)),
            with_null_usage(chunk(json!({"content": "world."}), None)),
            with_null_usage(chunk(json!({}), Some("stop"))),
            usage,
            done(),
        ]
    );
}

/// A tool call streams its id and name first, then its argument fragments.
#[test]
fn tool_call_stream() {
    let call = |fields: Value| chunk(json!({"tool_calls": [fields]}), None);
    assert_eq!(
        stream(&[], false, &fixture_events("tool_call"), None),
        [
            role(),
            call(
                json!({"index": 0, "id": "call_Wx1", "type": "function", "function": {"name": "get_weather", "arguments": ""}})
            ),
            call(json!({"index": 0, "function": {"arguments": "{\"ci"}})),
            call(json!({"index": 0, "function": {"arguments": "ty\":\"Pa"}})),
            call(json!({"index": 0, "function": {"arguments": "ris\"}"}})),
            chunk(json!({}), Some("tool_calls")),
            done(),
        ]
    );
}

/// Parallel calls stream under indexes 0 and 1, each with its own id and whole arguments.
#[test]
fn parallel_tool_calls_stream() {
    let frames = stream(&[], false, &fixture_events("parallel_tool_calls"), None);
    assert_eq!(
        frames.get(1),
        Some(&chunk(json!({"content": "Checking both."}), None))
    );
    let mut calls: Vec<(Value, String)> = Vec::new();
    for frame in &frames {
        for call in frame
            .pointer("/choices/0/delta/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = call["index"].as_u64().unwrap_or(99) as usize;
            if index == calls.len() {
                calls.push((call["id"].clone(), String::new()));
            }
            let arguments = call.pointer("/function/arguments").and_then(Value::as_str);
            match calls.get_mut(index) {
                Some((_, sent)) => sent.push_str(arguments.unwrap_or("")),
                None => panic!("index {index} out of order in {frames:?}"),
            }
        }
    }
    assert_eq!(
        calls,
        [
            (json!("call_A1"), "{\"city\":\"Paris\"}".to_string()),
            (json!("call_B2"), "{\"zone\":\"Asia/Tokyo\"}".to_string()),
        ]
    );
    assert_eq!(
        frames[frames.len() - 2..],
        [chunk(json!({}), Some("tool_calls")), done()]
    );
}

/// Reasoning summaries stream as `reasoning_content`, parts a paragraph apart.
#[test]
fn reasoning_stream() {
    let reasoning = |text: &str| chunk(json!({"reasoning_content": text}), None);
    assert_eq!(
        stream(&[], false, &fixture_events("reasoning"), None),
        [
            role(),
            reasoning("**Thinking** about "),
            reasoning("the question"),
            reasoning("\n\nThen "),
            reasoning("answering"),
            chunk(json!({"content": "The answer "}), None),
            chunk(json!({"content": "is 4."}), None),
            chunk(json!({}), Some("stop")),
            done(),
        ]
    );
}

/// An answer cut at the token limit ends with `finish_reason: "length"`.
#[test]
fn length_stream() {
    let frames = stream(&[], false, &fixture_events("length"), None);
    assert_eq!(
        frames[frames.len() - 2..],
        [chunk(json!({}), Some("length")), done()]
    );
}

/// An upstream failure mid-answer becomes an error chunk, with no `[DONE]` after it.
#[test]
fn error_midstream() {
    assert_eq!(
        stream(&[], false, &fixture_events("error_midstream"), None),
        [
            role(),
            chunk(json!({"content": "Partial "}), None),
            json!({"error": {
                "message": "The model failed to generate a response.",
                "type": "upstream_error",
                "code": "server_error",
                "param": null,
            }}),
        ]
    );
    let error_event =
        [json!({"type": "error", "code": "rate_limit_exceeded", "message": "slow down"})];
    assert_eq!(
        stream(&[], true, &typed(&error_event), None),
        [
            json!({"error": {"message": "slow down", "type": "upstream_error", "code": "rate_limit_exceeded", "param": null}})
        ]
    );
}

/// A stream that ends or breaks before its terminal event ends with an error chunk.
#[test]
fn cut_streams() {
    let mut events = fixture_events("text");
    events.pop();
    let ended = stream(&[], false, &events, None);
    assert_eq!(
        ended.last().and_then(|f| f.pointer("/error/code")),
        Some(&json!("stream_interrupted"))
    );
    assert!(!ended.contains(&done()));
    let broken = stream(&[], false, &events, Some("connection reset"));
    let message = broken
        .last()
        .and_then(|f| f.pointer("/error/message"))
        .and_then(Value::as_str)
        .unwrap_or("");
    assert!(message.contains("connection reset"), "{message}");
    assert_eq!(broken.len(), 5, "role, three deltas, the error: {broken:?}");
    assert_eq!(stream(&[], false, &[], Some("refused")).len(), 1);
}

/// A stop sequence split across deltas ends the stream where it starts, with an estimated usage.
#[test]
fn stop_sequence_stream() {
    let events = fixture_events("text");
    let mut translator = answer(&["lo, w"], true).stream();
    let mut out = Vec::new();
    let mut flows = Vec::new();
    for event in &events {
        let flow = translator.event(event, &mut out);
        flows.push(flow);
        if flow == Flow::Stop {
            break;
        }
    }
    translator.finish(None, &mut out);
    assert_eq!(flows.last(), Some(&Flow::Stop));
    assert_eq!(flows.len(), 7, "stopped at the third delta");
    let text = String::from_utf8(out).unwrap_or_default();
    let frames: Vec<Value> = frames(&text).into_iter().map(|(_, data)| data).collect();
    let with_null_usage = |mut chunk: Value| {
        chunk["usage"] = Value::Null;
        chunk
    };
    let mut usage = with_null_usage(chunk(json!({}), None));
    usage["choices"] = json!([]);
    let estimate = count_text("Hel");
    usage["usage"] = json!({
        "prompt_tokens": 0, "completion_tokens": estimate, "total_tokens": estimate,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    });
    assert_eq!(
        frames,
        [
            with_null_usage(role()),
            with_null_usage(chunk(json!({"content": "He"}), None)),
            with_null_usage(chunk(json!({"content": "l"}), None)),
            with_null_usage(chunk(json!({}), Some("stop"))),
            usage,
            done(),
        ]
    );
}

/// Held-back text that never completes a stop sequence is sent before the end.
#[test]
fn unmatched_stop_prefix_is_released() {
    let frames = stream(&["world!"], false, &fixture_events("text"), None);
    assert_eq!(
        frames,
        [
            role(),
            chunk(json!({"content": "Hel"}), None),
            chunk(json!({"content": "lo, "}), None),
            chunk(json!({"content": "world."}), None),
            chunk(json!({}), Some("stop")),
            done(),
        ]
    );
    let frames = stream(&["d."], false, &fixture_events("text"), None);
    assert_eq!(
        frames.get(3),
        Some(&chunk(json!({"content": "worl"}), None))
    );
}

/// Text held for a stop sequence goes out before a tool call; a call first seen whole (at
/// its `output_item.done`) is sent whole.
#[test]
fn held_text_and_calls_seen_only_when_done() {
    let events = [
        json!({"type": "response.created", "response": {"id": "resp_0a1b2c3d4e5f", "created_at": 1764166000}}),
        json!({"type": "response.output_text.delta", "output_index": 0, "delta": "abc E"}),
        json!({"type": "response.output_item.done", "output_index": 1, "item": {
            "type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": "{\"a\":1}",
        }}),
        json!({"type": "response.completed", "response": {"status": "completed"}}),
    ];
    let call = |fields: Value| chunk(json!({"tool_calls": [fields]}), None);
    assert_eq!(
        stream(&["END"], false, &typed(&events), None),
        [
            role(),
            chunk(json!({"content": "abc "}), None),
            chunk(json!({"content": "E"}), None),
            call(
                json!({"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}})
            ),
            call(json!({"index": 0, "function": {"arguments": "{\"a\":1}"}})),
            chunk(json!({}), Some("tool_calls")),
            done(),
        ]
    );
}

/// A non-streamed text answer carries content, usage with cached tokens, and the stop reason.
#[test]
fn text_reply() {
    assert_eq!(
        answer(&[], false).reply(&assembled("text")),
        json!({
            "id": "chatcmpl-0a1b2c3d4e5f",
            "object": "chat.completion",
            "created": 1764166000,
            "model": "gpt-client",
            "service_tier": "default",
            "system_fingerprint": null,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "annotations": [], "content": "Hello, world.", "refusal": null},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25,
                "prompt_tokens_details": {"cached_tokens": 16, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
            },
        })
    );
}

/// Non-streamed tool calls, reasoning, length and stop sequences.
#[test]
fn other_replies() {
    let reply = answer(&[], false).reply(&assembled("parallel_tool_calls"));
    assert_eq!(
        reply["choices"][0],
        json!({
            "index": 0,
            "message": {
                "role": "assistant",
                "annotations": [],
                "content": "Checking both.",
                "refusal": null,
                "tool_calls": [
                    {"id": "call_A1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_B2", "type": "function", "function": {"name": "get_time", "arguments": "{\"zone\":\"Asia/Tokyo\"}"}},
                ],
            },
            "logprobs": null,
            "finish_reason": "tool_calls",
        })
    );
    let reply = answer(&[], false).reply(&assembled("tool_call"));
    assert_eq!(
        reply.pointer("/choices/0/message/content"),
        Some(&Value::Null)
    );

    let reply = answer(&[], false).reply(&assembled("reasoning"));
    assert_eq!(
        reply["choices"][0]["message"],
        json!({
            "role": "assistant",
            "annotations": [],
            "content": "The answer is 4.",
            "refusal": null,
            "reasoning_content": "**Thinking** about the question\n\nThen answering",
        })
    );
    assert_eq!(
        reply["usage"]["completion_tokens_details"]["reasoning_tokens"],
        100
    );

    let reply = answer(&[], false).reply(&assembled("length"));
    assert_eq!(reply["choices"][0]["finish_reason"], "length");

    let reply = answer(&["upon"], false).reply(&assembled("length"));
    assert_eq!(reply["choices"][0]["message"]["content"], "Once ");
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    let reply = answer(&["both"], false).reply(&assembled("parallel_tool_calls"));
    assert_eq!(reply["choices"][0]["message"]["content"], "Checking ");
    assert_eq!(reply["choices"][0]["message"].get("tool_calls"), None);
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");
}

/// A refusal part becomes `message.refusal`, other output items are ignored.
#[test]
fn refusal_reply() {
    let response = json!({
        "id": "resp_r", "created_at": 5, "status": "completed",
        "output": [
            {"type": "web_search_call", "status": "completed"},
            {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
        ],
    });
    let reply = answer(&[], false).reply(&response);
    assert_eq!(reply["id"], "chatcmpl-r");
    assert_eq!(
        reply["choices"][0]["message"],
        json!({"role": "assistant", "annotations": [], "content": null, "refusal": "No."})
    );
    assert_eq!(reply["usage"]["total_tokens"], 0);
}

/// The input items of a translated request pass the upstream's pairing and role rules.
fn check_items(body: &Map<String, Value>) -> Result<(), TestCaseError> {
    let mut calls = HashSet::new();
    for item in body["input"].as_array().into_iter().flatten() {
        match item["type"].as_str() {
            Some("function_call") => {
                calls.insert(item["call_id"].clone());
            }
            Some("function_call_output") => {
                prop_assert!(calls.contains(&item["call_id"]), "unanswered output {item}");
            }
            Some("message") => {
                let assistant = item["role"] == "assistant";
                for part in item["content"].as_array().into_iter().flatten() {
                    prop_assert_eq!(part["type"] == "output_text", assistant, "{}", item);
                }
            }
            other => prop_assert!(false, "unexpected item type {other:?}"),
        }
    }
    Ok(())
}

proptest! {
    /// No JSON value makes the translator panic.
    #[test]
    fn any_json_is_answered(value in strategies::any_json()) {
        let _ = translate(value.to_string().as_bytes());
    }

    /// No chat-shaped request with random insides makes the translator panic.
    #[test]
    fn any_chat_shaped_request_is_answered(value in strategies::chat_shaped()) {
        let _ = translate(value.to_string().as_bytes());
    }

    /// A well-formed request always translates, into items the upstream accepts.
    #[test]
    fn well_formed_requests_translate(request in strategies::well_formed_request()) {
        let translated = translate(request.to_string().as_bytes());
        prop_assert!(translated.is_ok(), "{request}: {:?}", translated.err());
        if let Ok(translated) = translated {
            check_items(&translated.body)?;
        }
    }
}
