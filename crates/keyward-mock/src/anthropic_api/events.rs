//! A scenario written out in the Messages API's shapes: the event stream
//! (`message_start`, `ping`, then per content block `content_block_start`,
//! its deltas and `content_block_stop`, then `message_delta` with the stop
//! reason and `message_stop`), and the message a request without a stream gets.
//!
//! Text streams as `text_delta`s (paced like the Codex backend's); a tool call
//! as a `tool_use` block whose input streams as `input_json_delta`s, the first
//! one empty, as Anthropic sends them. `[[fail]]` breaks off with an `error`
//! event (`overloaded_error`), `[[cut]]` with nothing at all. Stop sequences,
//! which the API supports, end the text before the first one found
//! (`stop_reason: "stop_sequence"`).

use serde_json::{json, Value};

use crate::jwt::random_alnum;
use crate::responses_endpoint::scenario::{self, Call, Pacing, Scenario};
use crate::responses_endpoint::script::{split_text, split_words, Script, Step};

/// Anthropic ids: a prefix, `01`, then 22 letters and digits.
const ID_CHARS: usize = 22;
const INPUT_FRAGMENTS: usize = 3;
pub(crate) const OVERLOADED_MESSAGE: &str = "Overloaded";

/// What the rendering needs besides the scenario.
#[derive(Clone, Debug)]
pub(crate) struct Setting {
    /// The model asked for, echoed.
    pub(crate) model: String,
    /// Deltas per text under [`Pacing::Chunks`].
    pub(crate) chunks: usize,
    /// Size of the request body in bytes, the basis of `input_tokens`.
    pub(crate) body_bytes: usize,
    pub(crate) stop_sequences: Vec<String>,
}

/// How the answer ends.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ending {
    /// A whole message: what a request without a stream gets.
    Message(Value),
    /// The API broke off overloaded: an `error` event, or a 529.
    Overloaded,
    /// The connection drops.
    Cut,
}

#[derive(Debug)]
pub(crate) struct Rendering {
    pub(crate) script: Script,
    pub(crate) ending: Ending,
}

#[derive(Clone, Debug)]
enum Block {
    Text {
        text: String,
        pacing: Pacing,
    },
    ToolUse {
        id: String,
        name: String,
        input: String,
    },
}

/// What the scenario says, as blocks and a stop reason.
struct Plan {
    blocks: Vec<Block>,
    stop_reason: &'static str,
    stop_sequence: Option<String>,
    /// `None` for a complete answer.
    broken: Option<Ending>,
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_01{}", random_alnum(ID_CHARS))
}

fn tool_use(call: &Call) -> Block {
    Block::ToolUse {
        id: new_id("toolu"),
        name: call.name.clone(),
        input: call.arguments.clone(),
    }
}

fn plan(scenario: &Scenario, stop_sequences: &[String]) -> Plan {
    let text = |text: &str, pacing: Pacing| Block::Text {
        text: text.to_owned(),
        pacing,
    };
    match scenario {
        Scenario::Reply {
            text: answer,
            pacing,
            calls,
        } => {
            let stopped = answer.as_deref().and_then(|answer| {
                stop_sequences
                    .iter()
                    .filter(|stop| !stop.is_empty())
                    .filter_map(|stop| answer.find(stop.as_str()).map(|at| (at, stop)))
                    .min_by_key(|(at, _)| *at)
                    .map(|(at, stop)| (answer.get(..at).unwrap_or_default(), stop.clone()))
            });
            match (answer, stopped) {
                (_, Some((before, stop))) => Plan {
                    blocks: vec![text(before, *pacing)],
                    stop_reason: "stop_sequence",
                    stop_sequence: Some(stop),
                    broken: None,
                },
                (answer, None) => Plan {
                    blocks: answer
                        .iter()
                        .map(|answer| text(answer, *pacing))
                        .chain(calls.iter().map(tool_use))
                        .collect(),
                    stop_reason: if calls.is_empty() {
                        "end_turn"
                    } else {
                        "tool_use"
                    },
                    stop_sequence: None,
                    broken: None,
                },
            }
        }
        // Only a Responses request can ask for a compaction.
        Scenario::Compaction => Plan {
            blocks: vec![text(scenario::DEFAULT_TEXT, Pacing::Chunks)],
            stop_reason: "end_turn",
            stop_sequence: None,
            broken: None,
        },
        Scenario::Length => Plan {
            blocks: vec![text(scenario::LENGTH_TEXT, Pacing::Chunks)],
            stop_reason: "max_tokens",
            stop_sequence: None,
            broken: None,
        },
        Scenario::Fail | Scenario::Cut => Plan {
            blocks: vec![text(scenario::PARTIAL_TEXT, Pacing::Chunks)],
            stop_reason: "end_turn",
            stop_sequence: None,
            broken: Some(if matches!(scenario, Scenario::Fail) {
                Ending::Overloaded
            } else {
                Ending::Cut
            }),
        },
    }
}

/// The answer to a request with `scenario`, as events and as a whole message.
pub(crate) fn render(scenario: &Scenario, setting: &Setting) -> Rendering {
    let plan = plan(scenario, &setting.stop_sequences);
    let id = new_id("msg");
    let input_tokens = (setting.body_bytes / 4).max(1) as u64;
    let generated: usize = plan
        .blocks
        .iter()
        .map(|block| match block {
            Block::Text { text, .. } => text.chars().count(),
            Block::ToolUse { input, .. } => input.chars().count(),
        })
        .sum();
    let output_tokens = (generated / 4) as u64 + 1;
    let usage = |output: u64| {
        json!({
            "input_tokens": input_tokens,
            "output_tokens": output,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        })
    };
    let message = |content: Value, stop_reason: Value, stop_sequence: Value, usage: Value| {
        json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": setting.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
        })
    };

    let mut steps = vec![
        Step::Event(json!({
            "type": "message_start",
            "message": message(json!([]), Value::Null, Value::Null, usage(1)),
        })),
        Step::Event(json!({"type": "ping"})),
    ];
    let complete = plan.broken.is_none();
    for (index, block) in plan.blocks.iter().enumerate() {
        stream_block(index, block, setting.chunks, &mut steps);
        if complete {
            steps.push(Step::Event(
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }
    let ending = match plan.broken {
        Some(Ending::Overloaded) => {
            steps.push(Step::Event(json!({"type": "error", "error": {
                "type": "overloaded_error", "message": OVERLOADED_MESSAGE,
            }})));
            Ending::Overloaded
        }
        Some(broken) => broken,
        None => {
            steps.push(Step::Event(json!({
                "type": "message_delta",
                "delta": {"stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence},
                "usage": {"output_tokens": output_tokens},
            })));
            steps.push(Step::Event(json!({"type": "message_stop"})));
            let content: Vec<Value> = plan.blocks.iter().map(whole_block).collect();
            Ending::Message(message(
                Value::from(content),
                Value::from(plan.stop_reason),
                Value::from(plan.stop_sequence.clone()),
                usage(output_tokens),
            ))
        }
    };
    Rendering {
        script: Script {
            steps,
            cut: ending == Ending::Cut,
        },
        ending,
    }
}

fn stream_block(index: usize, block: &Block, chunks: usize, steps: &mut Vec<Step>) {
    let (start, deltas) = match block {
        Block::Text { text, pacing } => {
            let pieces = match pacing {
                Pacing::Chunks => split_text(text, chunks),
                Pacing::Words => split_words(text),
            };
            let deltas: Vec<Value> = pieces
                .into_iter()
                .map(|piece| json!({"type": "text_delta", "text": piece}))
                .collect();
            (json!({"type": "text", "text": ""}), deltas)
        }
        Block::ToolUse { id, name, input } => {
            let deltas: Vec<Value> = std::iter::once(String::new())
                .chain(split_text(input, INPUT_FRAGMENTS))
                .map(|piece| json!({"type": "input_json_delta", "partial_json": piece}))
                .collect();
            (
                json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                deltas,
            )
        }
    };
    let is_text = matches!(block, Block::Text { .. });
    steps.push(Step::Event(json!({
        "type": "content_block_start", "index": index, "content_block": start,
    })));
    for (n, delta) in deltas.into_iter().enumerate() {
        if is_text && n > 0 {
            steps.push(Step::Pause);
        }
        steps.push(Step::Event(json!({
            "type": "content_block_delta", "index": index, "delta": delta,
        })));
    }
}

fn whole_block(block: &Block) -> Value {
    match block {
        Block::Text { text, .. } => json!({"type": "text", "text": text}),
        Block::ToolUse { id, name, input } => json!({
            "type": "tool_use",
            "id": id,
            "name": name,
            "input": serde_json::from_str::<Value>(input).unwrap_or_else(|_| json!({})),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting() -> Setting {
        Setting {
            model: "claude-sonnet-4-5".into(),
            chunks: 2,
            body_bytes: 400,
            stop_sequences: Vec::new(),
        }
    }

    fn reply(text: Option<&str>, calls: Vec<Call>) -> Scenario {
        Scenario::Reply {
            text: text.map(str::to_owned),
            pacing: Pacing::Chunks,
            calls,
        }
    }

    fn events(rendering: &Rendering) -> Vec<Value> {
        rendering
            .script
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::Event(event) => Some(event.clone()),
                Step::Pause => None,
            })
            .collect()
    }

    /// Folds a stream back into a message the way Anthropic's SDKs do, checking
    /// the protocol on the way: one message_start first, blocks opened in
    /// order, deltas only into the open block of their kind, each block
    /// stopped before the next, message_delta then message_stop last.
    fn accumulate(events: &[Value]) -> Result<Value, String> {
        let mut message: Option<Value> = None;
        let mut open: Option<(u64, Value)> = None;
        let mut partial_json = String::new();
        let mut content: Vec<Value> = Vec::new();
        let mut stopped = false;
        for event in events {
            if stopped {
                return Err(format!("event after message_stop: {event}"));
            }
            let kind = event["type"].as_str().unwrap_or_default();
            if message.is_none() && kind != "message_start" {
                return Err(format!("{kind} before message_start"));
            }
            match kind {
                "message_start" => {
                    if message.is_some() {
                        return Err("second message_start".into());
                    }
                    let start = event["message"].clone();
                    if start["content"] != json!([]) || !start["stop_reason"].is_null() {
                        return Err(format!("message_start not empty: {start}"));
                    }
                    message = Some(start);
                }
                "ping" => {}
                "content_block_start" => {
                    if open.is_some() {
                        return Err("block started while another is open".into());
                    }
                    let index = event["index"].as_u64().unwrap_or(u64::MAX);
                    if index != content.len() as u64 {
                        return Err(format!("block {index} out of order"));
                    }
                    open = Some((index, event["content_block"].clone()));
                    partial_json.clear();
                }
                "content_block_delta" => {
                    let Some((index, block)) = open.as_mut() else {
                        return Err("delta without an open block".into());
                    };
                    if event["index"].as_u64() != Some(*index) {
                        return Err("delta for another block".into());
                    }
                    let delta = &event["delta"];
                    match (block["type"].as_str(), delta["type"].as_str()) {
                        (Some("text"), Some("text_delta")) => {
                            let text = format!(
                                "{}{}",
                                block["text"].as_str().unwrap_or_default(),
                                delta["text"].as_str().unwrap_or_default()
                            );
                            block["text"] = json!(text);
                        }
                        (Some("tool_use"), Some("input_json_delta")) => {
                            partial_json
                                .push_str(delta["partial_json"].as_str().unwrap_or_default());
                        }
                        other => return Err(format!("delta {other:?} into the wrong block")),
                    }
                }
                "content_block_stop" => {
                    let Some((index, mut block)) = open.take() else {
                        return Err("stop without an open block".into());
                    };
                    if event["index"].as_u64() != Some(index) {
                        return Err("stop for another block".into());
                    }
                    if block["type"] == "tool_use" {
                        block["input"] = serde_json::from_str(&partial_json)
                            .map_err(|e| format!("tool input is not JSON: {e}"))?;
                    }
                    content.push(block);
                }
                "message_delta" => {
                    if open.is_some() {
                        return Err("message_delta with a block open".into());
                    }
                    if let Some(message) = message.as_mut() {
                        message["stop_reason"] = event["delta"]["stop_reason"].clone();
                        message["stop_sequence"] = event["delta"]["stop_sequence"].clone();
                        message["usage"]["output_tokens"] = event["usage"]["output_tokens"].clone();
                    }
                }
                "message_stop" => stopped = true,
                other => return Err(format!("unexpected event {other}")),
            }
        }
        if !stopped {
            return Err("no message_stop".into());
        }
        let mut message = message.unwrap_or_default();
        message["content"] = Value::from(content);
        Ok(message)
    }

    fn kinds(events: &[Value]) -> Vec<String> {
        events
            .iter()
            .map(|event| event["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// "pong" streams in Anthropic's event order and folds into the very
    /// message a request without a stream gets.
    #[test]
    fn text_streams_in_anthropics_order() -> Result<(), String> {
        let rendering = render(&reply(Some("pong"), Vec::new()), &setting());
        let events = events(&rendering);
        assert_eq!(
            kinds(&events),
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(
            events[0]["message"]["usage"],
            json!({"input_tokens": 100, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
        );
        assert_eq!(
            events[6],
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 2}})
        );
        let Ending::Message(message) = &rendering.ending else {
            return Err(format!("not a message: {:?}", rendering.ending));
        };
        assert_eq!(&accumulate(&events)?, message);
        let id = message["id"].as_str().unwrap_or_default();
        assert!(id.starts_with("msg_01") && id.len() == 28, "{id}");
        assert_eq!(
            message["content"],
            json!([{"type": "text", "text": "pong"}])
        );
        assert_eq!(message["model"], "claude-sonnet-4-5");
        assert_eq!(
            message["usage"],
            json!({"input_tokens": 100, "output_tokens": 2, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
        );
        assert!(!rendering.script.cut);
        Ok(())
    }

    /// A tool call streams as a tool_use block with an empty first input delta,
    /// and stops for tool use.
    #[test]
    fn tool_calls_stream_as_tool_use() -> Result<(), String> {
        let call = Call {
            name: "get_weather".into(),
            arguments: r#"{"city":"Paris"}"#.into(),
        };
        let rendering = render(
            &reply(Some("Calling."), vec![call.clone(), call]),
            &setting(),
        );
        let events = events(&rendering);
        let message = accumulate(&events)?;
        assert_eq!(message["stop_reason"], "tool_use");
        assert_eq!(
            message["content"][0],
            json!({"type": "text", "text": "Calling."})
        );
        assert_eq!(message["content"][1]["input"], json!({"city": "Paris"}));
        assert_eq!(message["content"][2]["name"], "get_weather");
        assert_ne!(message["content"][1]["id"], message["content"][2]["id"]);
        assert!(message["content"][1]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("toolu_01")));
        let first_input = events
            .iter()
            .find(|event| event["delta"]["type"] == "input_json_delta")
            .cloned()
            .unwrap_or_default();
        assert_eq!(first_input["delta"]["partial_json"], "");
        assert_eq!(
            events
                .iter()
                .find(|event| event["type"] == "content_block_start" && event["index"] == 1)
                .map(|event| event["content_block"].clone()),
            Some(
                json!({"type": "tool_use", "id": message["content"][1]["id"], "name": "get_weather", "input": {}})
            )
        );
        let Ending::Message(whole) = rendering.ending else {
            return Err("not a message".into());
        };
        assert_eq!(whole, message);
        Ok(())
    }

    /// A stop sequence ends the text before it, and says which one.
    #[test]
    fn stop_sequences_end_the_text() -> Result<(), String> {
        let mut setting = setting();
        setting.stop_sequences = vec!["four".into(), "STOP".into()];
        let words = Scenario::Reply {
            text: Some(scenario::WORDS_TEXT.into()),
            pacing: Pacing::Words,
            calls: Vec::new(),
        };
        let message = accumulate(&events(&render(&words, &setting)))?;
        assert_eq!(message["content"][0]["text"], "one two three ");
        assert_eq!(message["stop_reason"], "stop_sequence");
        assert_eq!(message["stop_sequence"], "STOP");
        Ok(())
    }

    /// `[[length]]` stops for max_tokens; `[[fail]]` ends with an overloaded
    /// error event; `[[cut]]` just ends.
    #[test]
    fn broken_answers_end_as_anthropic_breaks_off() -> Result<(), String> {
        let message = accumulate(&events(&render(&Scenario::Length, &setting())))?;
        assert_eq!(message["stop_reason"], "max_tokens");

        let failed = render(&Scenario::Fail, &setting());
        assert_eq!(failed.ending, Ending::Overloaded);
        let events_failed = events(&failed);
        assert_eq!(
            events_failed.last(),
            Some(
                &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
            )
        );
        assert!(!events_failed
            .iter()
            .any(|event| event["type"] == "message_stop"));

        let cut = render(&Scenario::Cut, &setting());
        assert!(cut.script.cut);
        assert_eq!(cut.ending, Ending::Cut);
        assert_eq!(
            events(&cut).last().map(|event| event["type"].clone()),
            Some(json!("content_block_delta"))
        );
        Ok(())
    }

    /// Pauses sit only between text deltas.
    #[test]
    fn pauses_separate_text_deltas() {
        let rendering = render(&reply(Some("pong"), Vec::new()), &setting());
        let pauses = rendering
            .script
            .steps
            .iter()
            .filter(|step| matches!(step, Step::Pause))
            .count();
        assert_eq!(pauses, 1);
    }
}
