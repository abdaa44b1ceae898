//! The public API's shape of a Responses answer, whatever the upstream left out.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::dialect::sse::SseParser;
use crate::dialect::testing::{fixture, frames};

/// Runs the upstream's SSE text through a [`PublicStream`]; `broken` as for `finish`. Returns
/// the events written, each with the SSE event name it was framed with.
fn run(upstream: &str, broken: Option<&str>) -> Vec<Value> {
    let mut stream = PublicStream::new("gpt-client".into());
    let mut out = Vec::new();
    let mut parser = SseParser::default();
    let mut events = parser.push(upstream.as_bytes());
    events.extend(parser.finish());
    for event in &events {
        SseTranslator::event(&mut stream, event, &mut out);
    }
    SseTranslator::finish(&mut stream, broken, &mut out);
    let text = String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"));
    frames(&text)
        .into_iter()
        .map(|(name, data)| {
            assert_eq!(
                name.as_deref(),
                data["type"].as_str(),
                "named by its type: {data}"
            );
            data
        })
        .collect()
}

/// The events' types, in order.
fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

/// Upstream events as SSE data lines.
fn sse(events: &[Value]) -> String {
    events.iter().map(|e| format!("data: {e}\n\n")).collect()
}

/// What the strict clients check of a stream (the research report's table): numbered from 0,
/// `response.created` first, one response id, items announced in order and done with the id
/// they were announced with, parts announced before their deltas, calls whole, and a last event
/// that is terminal (with the complete output and numeric usage when it is a completion).
fn assert_public(events: &[Value]) {
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["sequence_number"], json!(n), "{event}");
    }
    let Some(first) = events.first() else {
        panic!("no events");
    };
    if first["type"] == "error" {
        return;
    }
    assert_eq!(first["type"], "response.created", "{first}");
    let id = first["response"]["id"].clone();
    assert!(id.as_str().is_some_and(|id| !id.is_empty()), "{first}");
    let mut items: Vec<(String, Value)> = Vec::new();
    let mut parts: Vec<usize> = Vec::new();
    let mut done_items = Vec::new();
    for event in events {
        let kind = event["type"].as_str().unwrap_or_default();
        if let Some(response) = event.get("response") {
            assert_eq!(response["id"], id, "{event}");
            assert_eq!(response["object"], "response", "{event}");
            assert!(response["created_at"].is_i64(), "{event}");
            assert!(response["model"].is_string(), "{event}");
            assert!(response["status"].is_string(), "{event}");
            assert!(response["output"].is_array(), "{event}");
        }
        match kind {
            "response.output_item.added" => {
                assert_eq!(event["output_index"], json!(items.len()), "{event}");
                let item = &event["item"];
                let item_id = item["id"].as_str().unwrap_or_default().to_string();
                assert!(!item_id.is_empty(), "{event}");
                if item["type"] == "function_call" {
                    for key in ["call_id", "name", "arguments", "status"] {
                        assert!(item[key].is_string(), "{key}: {event}");
                    }
                }
                items.push((item_id, item["type"].clone()));
                parts.push(0);
            }
            "response.content_part.added" | "response.reasoning_summary_part.added" => {
                let index = event["output_index"].as_u64().unwrap_or(u64::MAX) as usize;
                let key = if kind == "response.content_part.added" {
                    "content_index"
                } else {
                    "summary_index"
                };
                assert_eq!(event[key], json!(parts[index]), "{event}");
                assert!(event["part"].is_object(), "{event}");
                parts[index] += 1;
            }
            "response.output_text.delta"
            | "response.output_text.done"
            | "response.reasoning_summary_text.delta" => {
                let index = event["output_index"].as_u64().unwrap_or(u64::MAX) as usize;
                let key = if kind.contains("summary") {
                    "summary_index"
                } else {
                    "content_index"
                };
                let part = event[key].as_u64().unwrap_or(u64::MAX) as usize;
                assert!(part < parts[index], "part announced first: {event}");
                if !kind.contains("summary") {
                    assert_eq!(event["logprobs"], json!([]), "{event}");
                }
            }
            "response.output_item.done" => {
                let index = event["output_index"].as_u64().unwrap_or(u64::MAX) as usize;
                let item = &event["item"];
                assert_eq!(
                    item["id"].as_str(),
                    Some(items[index].0.as_str()),
                    "{event}"
                );
                match item["type"].as_str() {
                    Some("function_call") => {
                        for key in ["call_id", "name", "arguments", "status"] {
                            assert!(item[key].is_string(), "{key}: {event}");
                        }
                    }
                    Some("message") => {
                        assert!(item["status"].is_string(), "{event}");
                        for part in item["content"].as_array().into_iter().flatten() {
                            if part["type"] == "output_text" {
                                assert_eq!(part["annotations"], json!([]), "{event}");
                                assert!(part["text"].is_string(), "{event}");
                            }
                        }
                    }
                    _ => {}
                }
                done_items.push((index, item.clone()));
            }
            _ => {}
        }
        if let Some(index) = event.get("output_index").and_then(Value::as_u64) {
            if let Some((item_id, _)) = items.get(index as usize) {
                if let Some(named) = event.get("item_id") {
                    assert_eq!(named.as_str(), Some(item_id.as_str()), "{event}");
                }
            }
        }
    }
    let last = events.last().cloned().unwrap_or_default();
    match last["type"].as_str() {
        Some("response.completed" | "response.incomplete") => {
            done_items.sort_by_key(|(index, _)| *index);
            let done: Vec<Value> = done_items.into_iter().map(|(_, item)| item).collect();
            assert_eq!(last["response"]["output"], Value::Array(done), "{last}");
            let usage = &last["response"]["usage"];
            assert!(usage["input_tokens"].is_u64(), "{last}");
            assert!(usage["output_tokens"].is_u64(), "{last}");
        }
        Some("response.failed") => {}
        Some("error") => {
            assert!(last["code"].is_string() || last["code"].is_null(), "{last}");
            assert!(last["message"].is_string(), "{last}");
            assert!(last.get("param").is_some(), "{last}");
        }
        other => panic!("the stream ended on {other:?}"),
    }
}

/// A recorded stream already in the public API's shape comes out as it went in: the same
/// events, fields and values, the response objects only completed with the public fields the
/// recording left out.
#[test]
fn complete_streams_pass_unchanged() {
    for name in [
        "text",
        "tool_call",
        "parallel_tool_calls",
        "reasoning",
        "length",
        "error_midstream",
    ] {
        let upstream = fixture(name);
        let ours = run(upstream, None);
        assert_public(&ours);
        let theirs: Vec<Value> = frames(upstream).into_iter().map(|(_, data)| data).collect();
        assert_eq!(ours.len(), theirs.len(), "{name}");
        for (ours, theirs) in ours.iter().zip(&theirs) {
            let mut ours = ours.clone();
            if let (Some(mine), Some(recorded)) = (ours.get_mut("response"), theirs.get("response"))
            {
                // Every field recorded is there with its value; only missing ones were added.
                for (key, value) in recorded.as_object().into_iter().flatten() {
                    assert_eq!(&mine[key.as_str()], value, "{name}: response.{key}");
                }
                *mine = recorded.clone();
            }
            assert_eq!(&ours, theirs, "{name}");
        }
    }
}

/// The least a Codex client needs (what the mock's `[[sparse]]` sends): no lifecycle events, no
/// part events, no ids, indices, logprobs or sequence numbers, a completion with only its id and
/// usage. The client gets the whole public shape, the upstream's text and calls unchanged.
#[test]
fn sparse_streams_are_completed() {
    let upstream = sse(&[
        json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "reasoning", "summary": []}}),
        json!({"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "Think"}),
        json!({"type": "response.output_item.done", "output_index": 0, "item": {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Think"}], "encrypted_content": "blob"}}),
        json!({"type": "response.output_item.added", "output_index": 1, "item": {"type": "message", "role": "assistant", "content": []}}),
        json!({"type": "response.output_text.delta", "output_index": 1, "delta": "Hello "}),
        json!({"type": "response.output_text.delta", "output_index": 1, "delta": "world"}),
        json!({"type": "response.output_item.done", "output_index": 1, "item": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello world"}]}}),
        json!({"type": "response.function_call_arguments.delta", "output_index": 2, "delta": "{\"city\":"}),
        json!({"type": "response.output_item.done", "output_index": 2, "item": {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}),
        json!({"type": "response.completed", "response": {"id": "resp_min", "usage": {"input_tokens": 5, "output_tokens": 7}}}),
    ]);
    let events = run(&upstream, None);
    assert_public(&events);
    assert_eq!(
        kinds(&events),
        [
            "response.created",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let done = events.last().cloned().unwrap_or_default();
    let response = &done["response"];
    assert_eq!(
        response["model"], "gpt-client",
        "the model asked for, when the upstream names none"
    );
    assert_eq!(response["status"], "completed");
    assert_eq!(response["output"][1]["content"][0]["text"], "Hello world");
    assert_eq!(response["output"][0]["encrypted_content"], "blob");
    let call = &response["output"][2];
    assert_eq!(
        (&call["name"], &call["arguments"], &call["status"]),
        (
            &json!("get_weather"),
            &json!("{\"city\":\"Paris\"}"),
            &json!("completed")
        )
    );
    // The call was announced (by its first delta) before its id was known: it keeps the id
    // it was announced with, and takes its name from the done event.
    assert_eq!(
        call["call_id"], events[14]["item"]["call_id"],
        "{}",
        events[14]
    );
    assert_eq!(
        response["usage"],
        json!({"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 12})
    );
    assert_eq!(
        response["id"], events[0]["response"]["id"],
        "one id throughout"
    );
}

/// Items that name sparse or repeated upstream indices, and deltas that name no item at all, are
/// numbered densely in the order they came.
#[test]
fn indices_are_dense() {
    let upstream = sse(&[
        json!({"type": "response.created", "response": {"id": "resp_1", "created_at": 7, "model": "gpt-6.1-sol"}}),
        json!({"type": "response.output_item.added", "output_index": 3, "item": {"id": "msg_a", "type": "message"}}),
        json!({"type": "response.output_text.delta", "delta": "a"}),
        json!({"type": "response.output_item.done", "output_index": 3, "item": {"id": "msg_a", "type": "message", "content": [{"type": "output_text", "text": "a"}]}}),
        json!({"type": "response.output_text.delta", "item_id": "msg_b", "content_index": 4, "delta": "b"}),
        json!({"type": "response.completed", "response": {"id": "resp_other", "output": []}}),
    ]);
    let events = run(&upstream, None);
    assert_public(&events);
    let done = events.last().cloned().unwrap_or_default();
    assert_eq!(done["response"]["id"], "resp_1", "the first id stays");
    assert_eq!(done["response"]["created_at"], 7);
    assert_eq!(done["response"]["model"], "gpt-6.1-sol");
    let output = done["response"]["output"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(output.len(), 2);
    assert_eq!(output[1]["id"], "msg_b");
    assert_eq!(output[1]["content"][0]["text"], "b");
}

/// A stream that breaks off, or just ends, before its terminal event ends with an `error` event
/// (`stream_interrupted`, numbered), never silently; upstream failures keep their code.
#[test]
fn cut_streams_and_failures_end_with_an_error() {
    let partial = sse(&[
        json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "message"}}),
        json!({"type": "response.output_text.delta", "output_index": 0, "delta": "Partial"}),
    ]);
    for broken in [None, Some("connection reset")] {
        let events = run(&partial, broken);
        assert_public(&events);
        let last = events.last().cloned().unwrap_or_default();
        assert_eq!(last["type"], "error");
        assert_eq!(last["code"], "stream_interrupted");
        assert_eq!(last["param"], Value::Null);
        if let Some(detail) = broken {
            assert!(
                last["message"].as_str().is_some_and(|m| m.contains(detail)),
                "{last}"
            );
        }
    }
    let failed = run(fixture("error_midstream"), None);
    assert_public(&failed);
    assert_eq!(
        failed.last().cloned().unwrap_or_default()["response"]["error"]["code"],
        "server_error"
    );
    let error = run(
        &sse(&[
            json!({"type": "error", "error": {"code": "rate_limit_exceeded", "message": "slow down"}}),
        ]),
        None,
    );
    assert_eq!(error.len(), 1);
    assert_eq!(error[0]["code"], "rate_limit_exceeded");
    assert_eq!(error[0]["message"], "slow down");
    assert_eq!(error[0]["sequence_number"], 0);
}

/// The assembled answer carries what the public API's object does: `object`, `created_at`, ids,
/// statuses, parts' annotations, a call's fields, numeric usage.
#[test]
fn objects_are_completed() {
    let object = public_object(
        json!({"id": "resp_1", "status": "completed", "output": [
            {"type": "message", "content": [{"type": "output_text", "text": "hi"}]},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        ]}),
        "gpt-client",
    );
    assert_eq!(object["object"], "response");
    assert!(object["created_at"].is_i64());
    assert_eq!(object["model"], "gpt-client");
    assert_eq!(object["id"], "resp_1");
    let message = &object["output"][0];
    assert!(
        message["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("msg_")),
        "{message}"
    );
    assert_eq!(message["status"], "completed");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"][0]["annotations"], json!([]));
    let call = &object["output"][1];
    assert!(
        call["id"].as_str().is_some_and(|id| id.starts_with("fc_")),
        "{call}"
    );
    assert_eq!(call["status"], "completed");
    assert_eq!(object["usage"]["input_tokens"], 0);
    assert_eq!(object["metadata"], json!({}));
    assert_eq!(object["text"]["format"]["type"], "text");
}

/// A response object as an upstream may send one: any of the members the writer reads, of the
/// type the API gives them or another, and members of its own.
fn any_response() -> impl Strategy<Value = Value> {
    use crate::dialect::chat::strategies::any_json;
    let member = |key: &'static str, usual: BoxedStrategy<Value>| {
        prop::option::of(prop_oneof![3 => usual, 1 => any_json()]).prop_map(move |v| (key, v))
    };
    (
        member("id", "resp_[a-z]{0,3}".prop_map(Value::from).boxed()),
        member(
            "status",
            prop::sample::select(vec!["in_progress", "completed", "failed"])
                .prop_map(Value::from)
                .boxed(),
        ),
        member("model", "gpt-[0-9]".prop_map(Value::from).boxed()),
        member("created_at", (0i64..10).prop_map(Value::from).boxed()),
        member(
            "output",
            Just(json!([{"type": "message", "id": "up", "content": []}])).boxed(),
        ),
        member(
            "usage",
            (0u64..9, 0u64..9)
                .prop_map(|(i, o)| json!({"input_tokens": i, "output_tokens": o, "extra": 1}))
                .boxed(),
        ),
        member(
            "error",
            Just(json!({"code": "server_error", "message": "boom"})).boxed(),
        ),
        member("metadata", Just(json!({"k": "v"})).boxed()),
        member("temperature", Just(json!(0.5)).boxed()),
        prop::collection::vec(("[a-z]{1,3}", any_json()), 0..3),
    )
        .prop_map(|(a, b, c, d, e, f, g, h, i, extra)| {
            let mut response = serde_json::Map::new();
            for (key, value) in [a, b, c, d, e, f, g, h, i] {
                if let Some(value) = value {
                    response.insert(key.into(), value);
                }
            }
            for (key, value) in extra {
                response.insert(key, value);
            }
            Value::Object(response)
        })
}

fn any_event() -> impl Strategy<Value = Value> {
    let kinds = prop::sample::select(vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.refusal.delta",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
        "response.web_search_call.searching",
    ]);
    let index = prop::option::of(0u64..4);
    let item_type = prop::sample::select(vec![
        "message",
        "reasoning",
        "function_call",
        "web_search_call",
    ]);
    (
        kinds,
        index,
        prop::option::of(0u64..3),
        item_type,
        "[a-z]{0,4}",
        crate::dialect::chat::strategies::any_json(),
        prop::option::of(any_response()),
    )
        .prop_map(|(kind, index, part, item_type, text, noise, response)| {
            let mut event = json!({"type": kind, "delta": text, "noise": noise});
            if let Some(response) = response {
                event["response"] = response;
            }
            if let Some(index) = index {
                event["output_index"] = index.into();
                event["item"] = json!({"type": item_type, "id": format!("it{index}")});
            }
            if let Some(part) = part {
                event["content_index"] = part.into();
                event["summary_index"] = part.into();
            }
            event
        })
}

proptest! {
    /// Whatever events an upstream sends, in whatever order, the client's stream keeps the
    /// public API's invariants and never panics.
    #[test]
    fn any_upstream_stream_comes_out_public(events in prop::collection::vec(any_event(), 0..24), broken in any::<bool>()) {
        let out = run(&sse(&events), broken.then_some("reset"));
        assert_public(&out);
    }
}

/// Ids made here are random: the same shape of id compares equal.
fn without_made_ids(value: Value) -> Value {
    match value {
        Value::String(text) => {
            let made = text.len() > 48
                && text.ends_with(|c: char| c.is_ascii_hexdigit())
                && text[text.len() - 48..]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit());
            Value::String(if made {
                format!("{}<made>", &text[..text.len() - 48])
            } else {
                text
            })
        }
        Value::Array(items) => Value::Array(items.into_iter().map(without_made_ids).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| (key, without_made_ids(value)))
                .collect(),
        ),
        other => other,
    }
}

proptest! {
    /// Events the SSE also names: text deltas with only the API's fields then take the way
    /// without JSON trees, and come out as the general way writes them.
    #[test]
    fn named_events_come_out_as_unnamed_ones(
        events in prop::collection::vec(any_event(), 0..24),
        plain in prop::collection::vec(any::<bool>(), 24),
        broken in any::<bool>(),
    ) {
        let created = json!({"type": "response.created", "response": {"id": "resp_1", "created_at": 1}});
        let mut upstream = vec![created];
        for (mut event, plain) in events.into_iter().zip(plain) {
            if plain && event["type"] == "response.output_text.delta" {
                if let Some(fields) = event.as_object_mut() {
                    fields.remove("noise");
                    fields.remove("summary_index");
                    if let Some(item) = fields.remove("item") {
                        fields.insert("item_id".into(), item["id"].clone());
                    }
                }
            }
            upstream.push(event);
        }
        let named: String = upstream
            .iter()
            .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or_default()))
            .collect();
        let broken = broken.then_some("reset");
        let fast: Vec<Value> = run(&named, broken).into_iter().map(without_made_ids).collect();
        let general: Vec<Value> = run(&sse(&upstream), broken).into_iter().map(without_made_ids).collect();
        prop_assert_eq!(fast, general);
    }
}

/// A completion whose output items no event carried: each is announced and done before it, as
/// the public API streams every item it answers with.
#[test]
fn items_only_the_completion_carries_are_streamed() {
    let message = json!({"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": "hi", "annotations": []}]});
    let upstream = sse(&[
        json!({"type": "response.created", "response": {"id": "resp_1"}}),
        json!({"type": "response.completed", "response": {"id": "resp_1", "output": [message, null]}}),
    ]);
    let events = run(&upstream, None);
    assert_public(&events);
    assert_eq!(
        kinds(&events),
        [
            "response.created",
            "response.output_item.added",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(events[2]["item"]["content"][0]["text"], "hi");
    assert_eq!(events[3]["response"]["output"], json!([events[2]["item"]]));
}

proptest! {
    /// The response object written without a tree is the one the tree-based fill builds, for
    /// any upstream object.
    #[test]
    fn written_responses_are_the_filled_trees(
        response in any_response(),
        status in prop::sample::select(vec!["in_progress", "completed", "failed"]),
        failed in any::<bool>(),
    ) {
        use super::super::response_object::{
            Identity, PublicResponse, RawObject, UNEXPLAINED_FAILURE,
        };
        let text = serde_json::to_string_pretty(&response).unwrap_or_default();
        let raw = RawObject::parse(&text).unwrap_or_default();
        let tree = response.as_object().cloned().unwrap_or_default();
        let identity = Identity::of_raw(Some(&raw), "asked");
        prop_assert_eq!(
            without_made_ids(json!(identity.id)),
            without_made_ids(json!(Identity::of_tree(Some(&tree), "asked").id))
        );
        let mut out = Vec::new();
        let written = PublicResponse { identity: &identity, status, upstream: &raw, streamed: None, usage: None, failed };
        written.write(&mut out);
        prop_assert!(!out.contains(&b'\n'), "one line");
        let written: Value = serde_json::from_slice(&out).unwrap_or_default();
        let mut filled = identity.fill(tree, status);
        if failed && !filled["error"].is_object() {
            let unexplained = serde_json::from_str(UNEXPLAINED_FAILURE).unwrap_or_default();
            filled.insert("error".into(), unexplained);
        }
        prop_assert_eq!(written, Value::Object(filled));
    }
}

/// A usage object as an upstream may send one: the counts of the API, of its types or others,
/// details with members of their own, members of its own, some named twice.
fn any_usage() -> impl Strategy<Value = String> {
    use crate::dialect::chat::strategies::any_json;
    let count = prop_oneof![
        3 => (0u64..1000).prop_map(Value::from),
        1 => Just(json!(u64::MAX)),
        1 => Just(json!(-3)),
        1 => Just(json!(2.5)),
        1 => any_json(),
    ];
    let details = |key: &'static str| {
        prop_oneof![
            2 => (0u64..9).prop_map(move |n| json!({key: n, "other": [1]})),
            1 => (0u64..9).prop_map(move |n| json!({key: n})),
            1 => any_json(),
        ]
    };
    let member = prop_oneof![
        ("input_tokens", count.clone()).prop_map(|(k, v)| (k.to_string(), v)),
        ("output_tokens", count.clone()).prop_map(|(k, v)| (k.to_string(), v)),
        ("total_tokens", count).prop_map(|(k, v)| (k.to_string(), v)),
        details("cached_tokens").prop_map(|v| ("input_tokens_details".to_string(), v)),
        details("reasoning_tokens").prop_map(|v| ("output_tokens_details".to_string(), v)),
        ("[a-z]{1,3}", any_json()),
    ];
    (
        prop::collection::vec(member, 0..8),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(members, pretty, object)| {
            if !object {
                return "[1]".to_string();
            }
            let members: Vec<String> = members
                .iter()
                .map(|(key, value)| {
                    let value = if pretty {
                        serde_json::to_string_pretty(value).unwrap_or_default()
                    } else {
                        value.to_string()
                    };
                    format!("{}: {value}", json!(key))
                })
                .collect();
            format!("{{{}}}", members.join(", "))
        })
}

proptest! {
    /// A stream's usage written without a tree is, byte for byte, the tree the object's fill
    /// builds.
    #[test]
    fn written_usage_is_the_filled_tree(usage in any_usage()) {
        let raw: Option<Box<RawValue>> = serde_json::from_str(&usage).ok();
        let tree = serde_json::from_str::<Value>(&usage).ok();
        let filled = serde_json::to_string(&fill_usage(tree)).unwrap_or_default();
        prop_assert_eq!(written_usage(raw.as_deref()), filled);
    }
}

/// An upstream that spreads an event over several `data:` lines, or names an event with a line
/// break, still gets one frame of one line per event.
#[test]
fn events_spread_over_lines_come_out_on_one() {
    let completed = json!({"type": "response.completed", "response": {"id": "resp_1", "usage": {"input_tokens": 1}}});
    let pretty = serde_json::to_string_pretty(&completed).unwrap_or_default();
    let data: String = pretty
        .lines()
        .map(|line| format!("data: {line}\n"))
        .collect();
    let upstream = format!("event: response.completed\n{data}\n");
    let events = run(&upstream, None);
    assert_public(&events);
    assert_eq!(
        events
            .last()
            .map(|e| e["response"]["usage"]["input_tokens"].clone()),
        Some(json!(1))
    );

    let mut stream = PublicStream::new("gpt-client".into());
    let mut out = Vec::new();
    let odd = json!({"type": "response.odd\nevent: injected", "x": 1});
    let mut parser = SseParser::default();
    for event in parser.push(format!("data: {odd}\n\n").as_bytes()) {
        SseTranslator::event(&mut stream, &event, &mut out);
    }
    let text = String::from_utf8(out).unwrap_or_default();
    assert!(!text.contains("\nevent: injected"), "{text}");
    assert!(
        frames(&text)
            .iter()
            .any(|(name, data)| name.is_none() && data["type"] == odd["type"]),
        "{text}"
    );
}

proptest! {
    /// An item made here (no upstream item carried it) is written, as announced and as done,
    /// byte for byte as the tree of the same item is.
    #[test]
    fn made_items_are_written_as_their_trees(
        kind in prop::sample::select(vec!["message", "reasoning", "function_call", "web_search_call"]),
        id in prop::option::of("[a-z_\"\u{e9}]{0,6}"),
        parts in prop::collection::vec((0u8..3, "[a-z \"\\\\\u{e9}\n]{0,5}"), 0..4),
        arguments in "[a-z{}:\"\\\\]{0,8}",
    ) {
        let mut item = Item::new(None, kind, ItemAt { index: None, id });
        item.parts = parts
            .into_iter()
            .map(|(kind, text)| Part {
                kind: [PartKind::Text, PartKind::Refusal, PartKind::Summary][usize::from(kind)],
                text,
                text_done: true,
                done: true,
            })
            .collect();
        item.arguments = arguments;
        let mut tree = Item::filled(Map::new(), &item.kind, &item.id);
        if let Some(call_id) = item.announced("call_id") {
            tree.insert("call_id".into(), call_id);
        }
        let mut announced = Vec::new();
        item.write_announced(&mut announced);
        prop_assert_eq!(String::from_utf8(announced).ok(), serde_json::to_string(&tree).ok());
        let done = serde_json::to_string(&item.finished_tree(tree)).ok();
        prop_assert_eq!(Some(item.finished(None)), done);
    }
}
