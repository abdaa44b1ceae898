//! OpenAI legacy text completions (`/v1/completions`), translated to the Responses API and back.
//!
//! The prompt becomes one user message. The answer's text goes back as `text_completion`
//! objects, through the chunk machinery chat uses, in its completion shape ([`ChunkStream`]
//! with [`Shape::Completion`]): the two dialects differ only in how a piece of text is framed.

use serde_json::{json, Value};

use super::chunks::{answer_id, created_at, finish_reason, ChunkStream, Shape};
use super::draft::{include_usage_option, single_choice, stop_sequences, Draft};
use super::fields::{json_kind, model_field, parse_object, stream_flag, Expected};
use super::responses::{message_item, output_text, text_part, Ending, Usage};
use super::stop::StopMatcher;
use super::{Answer, Invalid, StreamTranslator, Translated};

/// A `/v1/completions` request as a Responses request, with how to answer it.
pub(crate) fn translate(body: &[u8]) -> Result<Translated, Invalid> {
    let request = parse_object(body)?;
    let model = model_field(&request)?;
    let stream = stream_flag(&request)?;
    let prompt = prompt(request.get("prompt"))?;
    let mut draft = Draft::new(&model);
    draft.body.insert(
        "input".into(),
        json!([message_item("user", vec![text_part("user", &prompt)])]),
    );
    draft.max_tokens(&request, &["max_tokens"])?;

    let mut stops = Vec::new();
    let mut include_usage = false;
    let mut echo = false;
    for (key, value) in &request {
        match key.as_str() {
            // Read above.
            "model" | "stream" | "prompt" | "max_tokens" => {}
            "temperature" | "top_p" => draft.copy_checked(key, value, Expected::Number)?,
            "user" => draft.copy_checked(key, value, Expected::String)?,
            "stop" => stops = stop_sequences(value)?,
            "stream_options" => include_usage = include_usage_option(value)?,
            "echo" => {
                echo = match value {
                    Value::Null => false,
                    Value::Bool(echo) => *echo,
                    other => {
                        return Err(Invalid::at(
                            "echo",
                            format!("`echo` must be a boolean, not {}", json_kind(other)),
                        ))
                    }
                }
            }
            "n" => single_choice("n", value)?,
            "best_of" => single_choice("best_of", value)?,
            // Documented fields no upstream reads: dropped, but refused when mistyped.
            "suffix" => draft.drop_checked(key, value, Expected::String)?,
            "logprobs" => draft.drop_checked(key, value, Expected::Count)?,
            "frequency_penalty" | "presence_penalty" => {
                draft.drop_checked(key, value, Expected::Number)?
            }
            "logit_bias" => draft.drop_checked(key, value, Expected::Object)?,
            "seed" => draft.drop_checked(key, value, Expected::Integer)?,
            _ => draft.drop_field(key, value),
        }
    }
    draft.body.insert("stream".into(), Value::Bool(stream));
    Ok(Translated {
        body: draft.body,
        model: model.clone(),
        stream,
        dropped: draft.dropped,
        renamed: draft.renamed,
        answer: Some(Box::new(CompletionAnswer {
            model,
            stops,
            include_usage,
            echo: echo.then_some(prompt),
        })),
    })
}

/// The one prompt: a string, or an array holding exactly one string.
fn prompt(value: Option<&Value>) -> Result<String, Invalid> {
    let list = match value {
        Some(Value::String(prompt)) => return Ok(prompt.clone()),
        Some(Value::Array(list)) => list,
        None | Some(Value::Null) => {
            return Err(Invalid::at(
                "prompt",
                "`prompt` is required: the text to complete",
            ))
        }
        Some(other) => {
            return Err(Invalid::at(
                "prompt",
                format!("`prompt` must be a string, not {}", json_kind(other)),
            ))
        }
    };
    match list.as_slice() {
        [Value::String(prompt)] => Ok(prompt.clone()),
        [] => Err(Invalid::at("prompt", "`prompt` is an empty array: send the text to complete")),
        list if list.iter().all(Value::is_string) => Err(Invalid::at(
            "prompt",
            format!(
                "`prompt` holds {} prompts, but keyward answers one prompt per request: send each in its own request",
                list.len()
            ),
        )),
        _ => Err(Invalid::at(
            "prompt",
            "keyward reads prompts as text only, not token ids: send the prompt as a string",
        )),
    }
}

/// How to answer a legacy completions client.
struct CompletionAnswer {
    model: String,
    stops: Vec<String>,
    include_usage: bool,
    /// The prompt, when the client asked for it before the answer (`echo`).
    echo: Option<String>,
}

impl Answer for CompletionAnswer {
    fn stream(self: Box<Self>) -> Box<dyn StreamTranslator> {
        let stream = ChunkStream::new(
            Shape::Completion,
            self.model,
            self.stops,
            self.include_usage,
        );
        Box::new(stream.with_echo(self.echo))
    }

    fn reply(&self, response: &Value) -> Value {
        let (answer, stopped) = StopMatcher::cut(&self.stops, &output_text(response));
        let finish = match stopped {
            Some(_) => "stop",
            None => finish_reason(Ending::of(response), false),
        };
        let text = match &self.echo {
            Some(prompt) => format!("{prompt}{answer}"),
            None => answer,
        };
        json!({
            "id": answer_id(Shape::Completion, response),
            "object": "text_completion",
            "created": created_at(response),
            "model": self.model,
            "system_fingerprint": null,
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}],
            "usage": Shape::Completion.usage(Usage::of(response)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::chat::strategies::any_json;
    use crate::dialect::count_tokens::count_text;
    use crate::dialect::responses::StreamEvent;
    use crate::dialect::testing::{assembled, fixture_events, frames, run};
    use proptest::prelude::*;

    fn refused(request: &Value) -> Invalid {
        match translate(request.to_string().as_bytes()) {
            Ok(translated) => panic!("accepted: {:?}", translated.body),
            Err(invalid) => invalid,
        }
    }

    fn answer(stops: &[&str], include_usage: bool, echo: Option<&str>) -> Box<dyn Answer> {
        Box::new(CompletionAnswer {
            model: "gpt-client".into(),
            stops: stops.iter().map(|s| s.to_string()).collect(),
            include_usage,
            echo: echo.map(str::to_string),
        })
    }

    fn stream(answer: Box<dyn Answer>, events: &[StreamEvent], broken: Option<&str>) -> Vec<Value> {
        frames(&run(answer.stream(), events, broken))
            .into_iter()
            .map(|(_, data)| data)
            .collect()
    }

    /// An expected chunk of the fixtures' answer (`include_usage` off).
    fn chunk(text: &str, finish: Option<&str>) -> Value {
        json!({
            "id": "cmpl-0a1b2c3d4e5f",
            "object": "text_completion",
            "created": 1764166000,
            "model": "gpt-client",
            "system_fingerprint": null,
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}],
        })
    }

    fn done() -> Value {
        Value::String("[DONE]".into())
    }

    /// A request using every field translates to the whole expected Responses request.
    #[test]
    fn full_request_mapping() {
        let request = json!({
            "model": "gpt-client",
            "prompt": ["Once upon a time"],
            "suffix": "The end.",
            "max_tokens": 64,
            "temperature": 0.7,
            "top_p": 1,
            "user": "u-1",
            "stream": true,
            "stream_options": {"include_usage": true},
            "stop": "\n",
            "echo": true,
            "n": 1,
            "best_of": 1,
            "logprobs": 3,
            "frequency_penalty": 0,
            "presence_penalty": 0.5,
            "logit_bias": {"50256": -100},
            "seed": 7,
            "x_vendor": true,
        });
        let translated =
            translate(request.to_string().as_bytes()).unwrap_or_else(|e| panic!("refused: {e:?}"));
        assert_eq!(
            Value::Object(translated.body.clone()),
            json!({
                "model": "gpt-client",
                "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Once upon a time"}]}],
                "max_output_tokens": 64,
                "temperature": 0.7,
                "top_p": 1,
                "user": "u-1",
                "stream": true,
            })
        );
        assert!(translated.stream);
        assert_eq!(translated.model, "gpt-client");
        assert_eq!(
            translated.dropped,
            [
                "suffix",
                "logprobs",
                "presence_penalty",
                "logit_bias",
                "seed",
                "x_vendor"
            ]
        );
        assert_eq!(
            crate::dialect::client_name(&translated.renamed, "max_output_tokens"),
            "max_tokens"
        );
    }

    /// Every refused request names the offending field.
    #[test]
    fn invalid_requests_name_their_field() {
        let with = |field: &str, value: Value| {
            let mut request = json!({"model": "m", "prompt": "hi"});
            request[field] = value;
            request
        };
        let cases = [
            (json!({"prompt": "hi"}), "model"),
            (json!({"model": "m"}), "prompt"),
            (with("prompt", json!(null)), "prompt"),
            (with("prompt", json!(3)), "prompt"),
            (with("prompt", json!([])), "prompt"),
            (with("prompt", json!(["a", "b"])), "prompt"),
            (with("prompt", json!([1, 2, 3])), "prompt"),
            (with("prompt", json!([[1, 2]])), "prompt"),
            (with("n", json!(2)), "n"),
            (with("best_of", json!(3)), "best_of"),
            (with("echo", json!("yes")), "echo"),
            (with("stop", json!({})), "stop"),
            (with("max_tokens", json!(1.5)), "max_tokens"),
            (with("stream", json!(1)), "stream"),
            (with("stream_options", json!([])), "stream_options"),
        ];
        for (request, param) in cases {
            let invalid = refused(&request);
            assert_eq!(
                invalid.param.as_deref(),
                Some(param),
                "{request}: {invalid:?}"
            );
        }
        assert!(refused(&with("prompt", json!(["a", "b"])))
            .message
            .contains("one prompt per request"));
    }

    /// A field of the wrong JSON type is refused with a 400 naming it, saying what was expected
    /// and what was sent (before, `temperature`, `top_p` and `user` went upstream as sent, and
    /// the fields keyward drops were dropped whatever their type).
    #[test]
    fn mistyped_fields_are_refused_naming_the_field() {
        let with = |field: &str, value: Value| {
            let mut request = json!({"model": "m", "prompt": "hi"});
            request[field] = value;
            request
        };
        let cases = [
            (
                with("temperature", json!("hot")),
                "temperature",
                "`temperature` must be a number, not the string \"hot\"",
            ),
            (with("top_p", json!("1")), "top_p", "must be a number"),
            (
                with("user", json!(7)),
                "user",
                "must be a string, not the number 7",
            ),
            (
                with("suffix", json!(["."])),
                "suffix",
                "must be a string, not an array",
            ),
            (
                with("logprobs", json!("3")),
                "logprobs",
                "not the string \"3\"",
            ),
            (with("logprobs", json!(-1)), "logprobs", "zero or more"),
            (
                with("frequency_penalty", json!("0.5")),
                "frequency_penalty",
                "must be a number",
            ),
            (
                with("presence_penalty", json!(true)),
                "presence_penalty",
                "must be a number, not true",
            ),
            (
                with("logit_bias", json!([1])),
                "logit_bias",
                "must be an object",
            ),
            (with("seed", json!(1.5)), "seed", "must be a whole number"),
            (with("echo", json!("yes")), "echo", "must be a boolean"),
            (with("max_tokens", json!("16")), "max_tokens", "a string"),
            (with("n", json!("1")), "n", "must be a positive integer"),
            (with("stop", json!(5)), "stop", "a string or an array"),
            (with("prompt", json!({})), "prompt", "must be a string"),
            (with("stream", json!("true")), "stream", "must be a boolean"),
        ];
        for (request, param, message) in cases {
            let invalid = refused(&request);
            assert_eq!(invalid.param.as_deref(), Some(param), "{request}");
            assert!(
                invalid.message.contains(message),
                "{request}: {}",
                invalid.message
            );
        }
        let well_typed = json!({"model": "m", "prompt": "hi", "seed": -3, "logprobs": 0, "user": null, "logit_bias": {}});
        let translated = translate(well_typed.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("refused: {e:?}"));
        assert_eq!(translated.dropped, ["seed"]);
    }

    /// A text answer streams as one chunk per delta, the closing chunk, `[DONE]`.
    #[test]
    fn text_stream() {
        assert_eq!(
            stream(answer(&[], false, None), &fixture_events("text"), None),
            [
                chunk("Hel", None),
                chunk("lo, ", None),
                chunk("world.", None),
                chunk("", Some("stop")),
                done(),
            ]
        );
    }

    /// With `echo`, the prompt comes first; with `include_usage`, a usage chunk comes last.
    #[test]
    fn echo_and_usage_stream() {
        let frames = stream(
            answer(&[], true, Some("Say: ")),
            &fixture_events("text"),
            None,
        );
        let with_null_usage = |mut chunk: Value| {
            chunk["usage"] = Value::Null;
            chunk
        };
        let mut usage = with_null_usage(chunk("", None));
        usage["choices"] = json!([]);
        usage["usage"] = json!({"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25});
        assert_eq!(
            frames,
            [
                with_null_usage(chunk("Say: ", None)),
                with_null_usage(chunk("Hel", None)),
                with_null_usage(chunk("lo, ", None)),
                with_null_usage(chunk("world.", None)),
                with_null_usage(chunk("", Some("stop"))),
                usage,
                done(),
            ]
        );
    }

    /// Only answer text streams (no reasoning, no tool calls); the endings keep their reasons.
    #[test]
    fn other_fixture_streams() {
        assert_eq!(
            stream(answer(&[], false, None), &fixture_events("reasoning"), None),
            [
                chunk("The answer ", None),
                chunk("is 4.", None),
                chunk("", Some("stop")),
                done(),
            ]
        );
        assert_eq!(
            stream(answer(&[], false, None), &fixture_events("tool_call"), None),
            [chunk("", Some("stop")), done()]
        );
        assert_eq!(
            stream(
                answer(&[], false, None),
                &fixture_events("parallel_tool_calls"),
                None
            ),
            [
                chunk("Checking both.", None),
                chunk("", Some("stop")),
                done()
            ]
        );
        let length = stream(answer(&[], false, None), &fixture_events("length"), None);
        assert_eq!(
            length[length.len() - 2..],
            [chunk("", Some("length")), done()]
        );
    }

    /// Failures mid-answer, cut streams and broken streams end with an error chunk, no `[DONE]`.
    #[test]
    fn failing_streams() {
        assert_eq!(
            stream(
                answer(&[], false, None),
                &fixture_events("error_midstream"),
                None
            ),
            [
                chunk("Partial ", None),
                json!({"error": {
                    "message": "The model failed to generate a response.",
                    "type": "upstream_error",
                    "code": "server_error",
                    "param": null,
                }}),
            ]
        );
        let mut events = fixture_events("text");
        events.pop();
        for broken in [None, Some("connection reset")] {
            let frames = stream(answer(&[], true, None), &events, broken);
            let error = frames.last().and_then(|f| f.get("error"));
            assert_eq!(
                error.and_then(|e| e.get("code")),
                Some(&json!("stream_interrupted"))
            );
            assert!(!frames.contains(&done()));
            if let Some(detail) = broken {
                let message = error.and_then(|e| e["message"].as_str()).unwrap_or("");
                assert!(message.contains(detail), "{message}");
            }
        }
    }

    /// A stop sequence split across deltas ends the stream where it starts.
    #[test]
    fn stop_sequence_stream() {
        let frames = stream(
            answer(&[", wor"], true, None),
            &fixture_events("text"),
            None,
        );
        let with_null_usage = |mut chunk: Value| {
            chunk["usage"] = Value::Null;
            chunk
        };
        let mut usage = with_null_usage(chunk("", None));
        usage["choices"] = json!([]);
        let estimate = count_text("Hello");
        usage["usage"] =
            json!({"prompt_tokens": 0, "completion_tokens": estimate, "total_tokens": estimate});
        assert_eq!(
            frames,
            [
                with_null_usage(chunk("Hel", None)),
                with_null_usage(chunk("lo", None)),
                with_null_usage(chunk("", Some("stop"))),
                usage,
                done(),
            ]
        );
    }

    /// Non-streamed answers: text, echo, usage, stop sequences and the length limit.
    #[test]
    fn replies() {
        assert_eq!(
            answer(&[], false, None).reply(&assembled("text")),
            json!({
                "id": "cmpl-0a1b2c3d4e5f",
                "object": "text_completion",
                "created": 1764166000,
                "model": "gpt-client",
                "system_fingerprint": null,
                "choices": [{"text": "Hello, world.", "index": 0, "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25},
            })
        );
        let echoed = answer(&["world"], false, Some("Greet: ")).reply(&assembled("text"));
        assert_eq!(echoed["choices"][0]["text"], "Greet: Hello, ");
        let length = answer(&[], false, None).reply(&assembled("length"));
        assert_eq!(length["choices"][0]["finish_reason"], "length");
        assert_eq!(length["choices"][0]["text"], "Once upon a time");
        let stopped = answer(&["time"], false, None).reply(&assembled("length"));
        assert_eq!(stopped["choices"][0]["finish_reason"], "stop");
    }

    /// A completions request a well-behaved client sends.
    fn well_formed_request() -> impl Strategy<Value = Value> {
        (
            prop_oneof![
                "\\PC{0,40}".prop_map(Value::String),
                "\\PC{0,40}".prop_map(|p| json!([p])),
            ],
            prop::option::of(0u64..4096),
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
            prop::collection::vec("\\PC{0,4}", 0..5),
        )
            .prop_map(|(prompt, max_tokens, echo, stream, stop)| {
                let mut request = json!({"model": "gpt-test", "prompt": prompt, "stop": stop});
                if let Some(max_tokens) = max_tokens {
                    request["max_tokens"] = json!(max_tokens);
                }
                if let Some(echo) = echo {
                    request["echo"] = json!(echo);
                }
                if let Some(stream) = stream {
                    request["stream"] = json!(stream);
                    request["stream_options"] = json!({"include_usage": stream});
                }
                request
            })
    }

    proptest! {
        /// No JSON value makes the translator panic.
        #[test]
        fn any_json_is_answered(value in any_json()) {
            let _ = translate(value.to_string().as_bytes());
        }

        /// Random fields beside a model and a prompt never make the translator panic.
        #[test]
        fn any_fields_are_answered(fields in prop::collection::vec(("[a-z_]{1,10}", any_json()), 0..8)) {
            let mut request: serde_json::Map<String, Value> = fields.into_iter().collect();
            request.insert("model".into(), "m".into());
            request.entry("prompt").or_insert_with(|| "hi".into());
            let _ = translate(Value::Object(request).to_string().as_bytes());
        }

        /// A well-formed request always translates into one user message.
        #[test]
        fn well_formed_requests_translate(request in well_formed_request()) {
            let translated = translate(request.to_string().as_bytes());
            prop_assert!(translated.is_ok(), "{request}: {:?}", translated.err());
            if let Ok(translated) = translated {
                let input = translated.body["input"].as_array().cloned().unwrap_or_default();
                prop_assert_eq!(input.len(), 1);
                prop_assert_eq!(&input[0]["role"], "user");
                prop_assert_eq!(&input[0]["content"][0]["type"], "input_text");
            }
        }
    }
}
