//! The reply of a threaded turn, as its client received it: the `message` object of an answer
//! that was not streamed, or the one a streamed answer's frames add up to. The stream is read
//! from the frames keyward writes (`message_start` .. `message_stop`) as they pass, the way an
//! Anthropic SDK accumulates them: so what is kept is exactly what the client saw, stop
//! sequences and hidden thinking included, whatever the translator did to get there.

use serde_json::{Map, Value};

use crate::dialect::sse::{Event, SseParser};

/// Folds a Messages stream's frames into its final message.
#[derive(Debug, Default)]
pub(super) struct Accumulator {
    parser: SseParser,
    message: Option<Map<String, Value>>,
    content: Vec<Map<String, Value>>,
    /// Each tool use block's `input_json_delta`s so far, by block.
    partial_json: Vec<String>,
    /// An error frame came: the stream has no message to give.
    failed: bool,
}

impl Accumulator {
    /// Reads frames as written (any cut of them); the message, once `message_stop` passes.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Option<Value> {
        let mut finished = None;
        for frame in self.parser.push(bytes) {
            if let Some(message) = self.frame(&frame) {
                finished = Some(message);
            }
        }
        finished
    }

    fn frame(&mut self, frame: &Event) -> Option<Value> {
        if self.failed {
            return None;
        }
        let Ok(Value::Object(mut data)) = serde_json::from_str::<Value>(&frame.data) else {
            return None;
        };
        let index = data
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|i| usize::try_from(i).ok());
        match data.get("type").and_then(Value::as_str).unwrap_or_default() {
            "message_start" => {
                if let Some(Value::Object(message)) = data.remove("message") {
                    self.message = Some(message);
                }
            }
            "content_block_start" => {
                if let (Some(index), Some(Value::Object(block))) =
                    (index, data.remove("content_block"))
                {
                    if index == self.content.len() {
                        self.content.push(block);
                        self.partial_json.push(String::new());
                    }
                }
            }
            "content_block_delta" => {
                let delta = data.get("delta").and_then(Value::as_object)?;
                let block = self.content.get_mut(index?)?;
                let append = |block: &mut Map<String, Value>, key: &str, piece: &str| {
                    let mut text = block
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    text.push_str(piece);
                    block.insert(key.into(), text.into());
                };
                let piece = |key: &str| delta.get(key).and_then(Value::as_str).unwrap_or_default();
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => append(block, "text", piece("text")),
                    Some("thinking_delta") => append(block, "thinking", piece("thinking")),
                    Some("signature_delta") => append(block, "signature", piece("signature")),
                    Some("input_json_delta") => {
                        if let Some(json) = self.partial_json.get_mut(index?) {
                            json.push_str(piece("partial_json"));
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let index = index?;
                let json = self.partial_json.get(index)?;
                let block = self.content.get_mut(index)?;
                if block.get("type").and_then(Value::as_str) == Some("tool_use") && !json.is_empty()
                {
                    let input =
                        serde_json::from_str(json).unwrap_or_else(|_| Value::Object(Map::new()));
                    block.insert("input".into(), input);
                }
            }
            "message_delta" => {
                let message = self.message.as_mut()?;
                if let Some(Value::Object(delta)) = data.remove("delta") {
                    message.extend(delta);
                }
                if let Some(usage) = data.remove("usage") {
                    message.insert("usage".into(), usage);
                }
            }
            "message_stop" => {
                let mut message = self.message.take()?;
                let content = std::mem::take(&mut self.content);
                message.insert(
                    "content".into(),
                    Value::Array(content.into_iter().map(Value::Object).collect()),
                );
                return Some(Value::Object(message));
            }
            "error" => self.failed = true,
            _ => {}
        }
        None
    }
}

/// The reply as the client sends it back in a later turn: an assistant message of its content.
pub(super) fn as_turn(message: &Value) -> Option<Value> {
    let content = message.get("content").filter(|c| c.is_array())?;
    let mut turn = Map::with_capacity(2);
    turn.insert("role".into(), "assistant".into());
    turn.insert("content".into(), content.clone());
    Some(Value::Object(turn))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::dialect::testing::{fixture_events, run};
    use crate::dialect::{messages, Answer};

    fn answer(request: Value) -> Box<dyn Answer> {
        messages::translate(request.to_string().as_bytes())
            .ok()
            .and_then(|translated| translated.answer)
            .unwrap_or_else(|| panic!("no answer"))
    }

    /// The streamed answer adds up to what the same answer unstreamed is: thinking with its
    /// signature, text, tool use with its input; however the frames are cut.
    #[test]
    fn a_stream_adds_up_to_the_reply() {
        let request = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "thinking": {"type": "enabled", "budget_tokens": 2048}, "messages": [{"role": "user", "content": "hi"}]});
        for fixture in ["reasoning", "parallel_tool_calls", "text"] {
            let events = fixture_events(fixture);
            let frames = run(answer(request.clone()).stream(), &events, None);
            let mut assembler = crate::dialect::responses::Assembler::default();
            for event in events {
                assembler.push(event);
            }
            let assembled = assembler.finish(None).unwrap_or_else(|e| panic!("{e:?}"));
            let reply = answer(request.clone()).reply(&assembled);
            for cut in [1, 7, 4096] {
                let mut accumulator = Accumulator::default();
                let mut message = None;
                for piece in frames.as_bytes().chunks(cut) {
                    if let Some(done) = accumulator.push(piece) {
                        message = Some(done);
                    }
                }
                let message = message.unwrap_or_else(|| panic!("{fixture}: no message"));
                assert_eq!(message["content"], reply["content"], "{fixture}, cut {cut}");
                assert_eq!(message["id"], reply["id"], "{fixture}");
                assert_eq!(message["stop_reason"], reply["stop_reason"], "{fixture}");
            }
        }
    }

    /// A stream that fails, or stops before `message_stop`, adds up to nothing.
    #[test]
    fn an_unfinished_stream_gives_no_message() {
        let request = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
        let failed = run(
            answer(request.clone()).stream(),
            &fixture_events("error_midstream"),
            None,
        );
        assert_eq!(Accumulator::default().push(failed.as_bytes()), None);
        let mut events = fixture_events("text");
        events.pop();
        let cut = run(answer(request).stream(), &events, Some("reset"));
        assert_eq!(Accumulator::default().push(cut.as_bytes()), None);
    }

    #[test]
    fn the_reply_goes_back_as_an_assistant_turn() {
        let message =
            json!({"id": "msg_1", "type": "message", "content": [{"type": "text", "text": "hi"}]});
        assert_eq!(
            as_turn(&message),
            Some(json!({"role": "assistant", "content": [{"type": "text", "text": "hi"}]}))
        );
        assert_eq!(as_turn(&json!({"id": "msg_1"})), None);
    }
}
