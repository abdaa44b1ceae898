//! Checking requests, typing events and assembling them.

use serde_json::{json, Value};

use super::*;
use crate::dialect::sse::Event;

fn events(list: &[Value]) -> Assembler {
    let mut assembler = Assembler::default();
    for event in list {
        if let Some(event) = StreamEvent::from_json(event.clone()) {
            assembler.push(event);
        }
    }
    assembler
}

#[test]
fn assembles_items_into_an_empty_final_output() {
    let assembler = events(&[
        json!({"type": "response.output_item.done", "output_index": 1, "item": {"type": "function_call", "name": "f"}}),
        json!({"type": "response.output_item.done", "output_index": 0, "item": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}}),
        json!({"type": "response.completed", "response": {"status": "completed", "output": [], "usage": {"input_tokens": 3, "output_tokens": 2}}}),
    ]);
    let response = assembler.finish(None).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(output_text(&response), "hi");
    assert_eq!(response["output"][1]["name"], "f");
    assert_eq!(
        Usage::of(&response),
        Usage {
            input: 3,
            output: 2,
            total: 5,
            ..Usage::default()
        }
    );
    assert_eq!(Ending::of(&response), Ending::Completed);
}

/// Usage counts near u64::MAX without a `total_tokens` give a saturated total, not an
/// overflow panic (a `chat_stream`/`messages_stream` fuzz input: any upstream could send it).
#[test]
fn usage_total_of_huge_counts_does_not_overflow() {
    let response = json!({"usage": {"input_tokens": u64::MAX, "output_tokens": 1}});
    assert_eq!(
        Usage::of(&response),
        Usage {
            input: u64::MAX,
            output: 1,
            total: u64::MAX,
            ..Usage::default()
        }
    );
}

#[test]
fn failures_and_cut_streams_are_reported() {
    let failed = events(&[
        json!({"type": "response.failed", "response": {"status": "failed", "error": {"code": "context_length_exceeded", "message": "too long"}}}),
    ])
    .finish(None);
    assert_eq!(
        failed.map_err(|f| (f.status, f.code, f.message)),
        Err((
            400,
            Some("context_length_exceeded".into()),
            "too long".into()
        ))
    );
    let cut = events(&[json!({"type": "response.created", "response": {}})]).finish(Some("reset"));
    assert!(matches!(cut, Err(StreamFailure { status: 502, .. })));
    let incomplete =
        json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}});
    assert_eq!(Ending::of(&incomplete), Ending::Length);
}

#[test]
fn event_type_comes_from_the_sse_name_when_missing() {
    let event = Event {
        event: Some("response.created".into()),
        data: "{\"response\":{}}".into(),
    };
    let parsed = parse_event(&event);
    assert_eq!(
        parsed,
        Some(StreamEvent::Created {
            response: json!({})
        })
    );
    let done = Event {
        event: None,
        data: "[DONE]".into(),
    };
    assert!(parse_event(&done).is_none());
}

#[test]
fn responses_requests_are_checked() {
    assert!(translate(br#"{"model":"m","input":"hi"}"#).is_ok());
    let no_model = translate(br#"{"input":"hi"}"#).err();
    assert_eq!(no_model.and_then(|e| e.param), Some("model".into()));
    assert!(translate(br#"{"model":"m","input":3}"#).is_err());
    assert!(translate(br#"{"model":"m","stream":"yes"}"#).is_err());
    assert!(translate(b"[1]").is_err());
}

fn typed(event: Value) -> Option<StreamEvent> {
    StreamEvent::from_json(event)
}

/// Each event the translators read becomes its variant, with the fields they read.
#[test]
fn events_the_translators_read_are_typed() {
    let at = |output_index: u64, item_id: &str| ItemRef {
        output_index: Some(output_index),
        item_id: Some(item_id.to_string()),
    };
    let item = json!({"type": "function_call", "id": "fc_1", "call_id": "call_1"});
    let cases = [
        (
            json!({"type": "response.created", "response": {"id": "resp_1"}}),
            StreamEvent::Created {
                response: json!({"id": "resp_1"}),
            },
        ),
        (
            json!({"type": "response.output_item.added", "output_index": 1, "item": item}),
            StreamEvent::OutputItemAdded {
                item_ref: at(1, "fc_1"),
                item: Some(item.clone()),
            },
        ),
        (
            json!({"type": "response.output_item.done", "output_index": 1, "item_id": "fc_9", "item": item}),
            StreamEvent::OutputItemDone {
                item_ref: at(1, "fc_9"),
                item: Some(item.clone()),
            },
        ),
        (
            json!({"type": "response.output_text.delta", "output_index": 0, "item_id": "msg_1", "delta": "Hel"}),
            StreamEvent::OutputTextDelta {
                output_index: Some(0),
                delta: "Hel".into(),
            },
        ),
        (
            json!({"type": "response.refusal.delta", "output_index": 0, "delta": "No"}),
            StreamEvent::RefusalDelta {
                output_index: Some(0),
                delta: "No".into(),
            },
        ),
        (
            json!({"type": "response.reasoning_summary_text.delta", "output_index": 0, "summary_index": 1, "delta": "hm"}),
            StreamEvent::ReasoningSummaryTextDelta {
                output_index: Some(0),
                summary_index: Some(1),
                delta: "hm".into(),
            },
        ),
        (
            json!({"type": "response.function_call_arguments.delta", "output_index": 2, "item_id": "fc_1", "delta": "{"}),
            StreamEvent::FunctionCallArgumentsDelta {
                item_ref: at(2, "fc_1"),
                delta: "{".into(),
            },
        ),
        (
            json!({"type": "response.function_call_arguments.done", "output_index": 2, "item_id": "fc_1", "arguments": "{}"}),
            StreamEvent::FunctionCallArgumentsDone {
                item_ref: at(2, "fc_1"),
                arguments: Some("{}".into()),
            },
        ),
        (
            json!({"type": "response.completed", "response": {"status": "completed"}}),
            StreamEvent::Completed {
                response: json!({"status": "completed"}),
            },
        ),
        (
            json!({"type": "response.incomplete", "response": {"status": "incomplete"}}),
            StreamEvent::Incomplete {
                response: json!({"status": "incomplete"}),
            },
        ),
        (
            json!({"type": "response.content_part.added", "part": {}}),
            StreamEvent::ContentPartAdded,
        ),
        (
            json!({"type": "response.output_text.done", "text": "Hello"}),
            StreamEvent::OutputTextDone,
        ),
    ];
    for (json, event) in cases {
        assert_eq!(typed(json.clone()), Some(event), "{json}");
    }
    let failed = json!({"type": "response.failed", "response": {"error": {"code": "server_error", "message": "m"}}});
    assert_eq!(
        typed(failed.clone()),
        Some(StreamEvent::Failed(StreamFailure::from_event(&failed)))
    );
    let error = json!({"type": "error", "code": "rate_limit_exceeded", "message": "slow"});
    assert_eq!(
        typed(error).as_ref().and_then(StreamEvent::failure),
        Some(&StreamFailure {
            status: 429,
            code: Some("rate_limit_exceeded".into()),
            message: "slow".into(),
        })
    );
}

/// Mistyped or missing fields read as the translators always read them: an empty delta, an
/// unknown index, no item; the item's own id stands in for a missing `item_id`.
#[test]
fn odd_fields_are_read_leniently() {
    assert_eq!(
        typed(json!({"type": "response.output_text.delta", "output_index": "0", "delta": 5})),
        Some(StreamEvent::OutputTextDelta {
            output_index: None,
            delta: String::new(),
        })
    );
    assert_eq!(
        typed(json!({"type": "response.output_item.done"})),
        Some(StreamEvent::OutputItemDone {
            item_ref: ItemRef::default(),
            item: None,
        })
    );
    // A present but non-string `item_id` does not fall back to the item's id.
    assert_eq!(
        typed(json!({"type": "response.output_item.added", "item_id": null, "item": {"id": "x"}})),
        Some(StreamEvent::OutputItemAdded {
            item_ref: ItemRef::default(),
            item: Some(json!({"id": "x"})),
        })
    );
    assert_eq!(
        typed(json!({"type": "response.function_call_arguments.done", "arguments": {}})),
        Some(StreamEvent::FunctionCallArgumentsDone {
            item_ref: ItemRef::default(),
            arguments: None,
        })
    );
    assert_eq!(
        typed(json!({"type": "response.completed"})),
        Some(StreamEvent::Completed {
            response: Value::Null
        })
    );
}

/// Events keyward does not know (or whose type is not a name) are tolerated, keeping the
/// response that names the answer when such an event comes first; JSON without a type is no
/// event.
#[test]
fn unknown_events_are_other() {
    let queued = typed(json!({"type": "response.queued", "response": {"id": "resp_q"}}));
    assert_eq!(
        queued.as_ref().map(StreamEvent::response),
        Some(&json!({"id": "resp_q"}))
    );
    assert_eq!(
        typed(json!({"type": 7, "delta": "x"})),
        Some(StreamEvent::Other {
            response: Value::Null
        })
    );
    assert_eq!(
        typed(json!({"type": "response.output_text.delta", "delta": "x"}))
            .as_ref()
            .map(StreamEvent::response),
        Some(&Value::Null)
    );
    assert_eq!(typed(json!({"delta": "x"})), None);
    assert_eq!(typed(json!(["response.created"])), None);
    let nameless = Event {
        event: None,
        data: "{\"delta\":\"x\"}".into(),
    };
    assert_eq!(parse_event(&nameless), None);
}

mod check {
    use super::*;
    use proptest::prelude::*;

    fn field() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!("m")),
            Just(json!(" ")),
            Just(json!(true)),
            Just(json!(false)),
            Just(json!(null)),
            Just(json!(3)),
            Just(json!([])),
            Just(json!({})),
        ]
    }

    fn request() -> impl Strategy<Value = Value> {
        (
            proptest::option::of(field()),
            proptest::option::of(field()),
            proptest::option::of(field()),
            proptest::option::of(field()),
            crate::dialect::chat::strategies::any_json(),
        )
            .prop_map(|(model, stream, input, key, other)| {
                let mut body = serde_json::Map::new();
                body.insert("other".into(), other);
                for (name, value) in [
                    ("model", model),
                    ("stream", stream),
                    ("input", input),
                    ("prompt_cache_key", key),
                ] {
                    if let Some(value) = value {
                        body.insert(name.into(), value);
                    }
                }
                Value::Object(body)
            })
    }

    proptest! {
        /// What `check` reads without a tree is what `translate` reads with one; what it lets
        /// through `translate` accepts.
        #[test]
        fn check_agrees_with_translate(request in request()) {
            let bytes = serde_json::to_vec(&request).unwrap_or_default();
            if let Some(checked) = super::super::check(&bytes) {
                let translated = translate(&bytes);
                prop_assert!(translated.is_ok(), "{:?}", translated.err());
                let translated = translated.unwrap_or_else(|_| unreachable!());
                prop_assert_eq!(&checked.model, &translated.model);
                prop_assert_eq!(checked.stream, translated.stream);
                prop_assert_eq!(
                    checked.prompt_cache_key.as_deref(),
                    translated.body.get("prompt_cache_key").and_then(Value::as_str)
                );
            }
        }
    }

    /// A plainly well-formed request is checked without a tree; duplicates and oddities go the
    /// long way.
    #[test]
    fn plain_requests_are_checked() {
        let checked = super::super::check(
            br#"{"model":"m","stream":true,"input":[],"prompt_cache_key":"k","x":{"y":[1]}}"#,
        );
        let checked = checked.map(|c| (c.model, c.stream, c.prompt_cache_key));
        assert_eq!(checked, Some(("m".into(), true, Some("k".into()))));
        for odd in [
            &br#"{"model":"m","model":"n"}"#[..],
            br#"{"model":"m","input":null}"#,
            br#"{"model":"m","stream":"yes"}"#,
            br#"["model"]"#,
            br#"{"model":"m"} x"#,
        ] {
            assert_eq!(super::super::check(odd), None);
        }
    }
}
