//! A scenario written out as the backend's event stream, before any of it is
//! sent: the events, the pauses between text deltas, and whether the stream ends
//! with a terminal event.
//!
//! Shapes, field order and sequence numbers follow the recorded streams in
//! `crates/keyward/src/dialect/fixtures/*.sse`.

use serde_json::{json, Map, Value};

use super::scenario::{self, Call, Pacing, Scenario};
use crate::jwt::{random_alnum, random_hex};
use crate::reasoning_blob;

const ID_HEX_BYTES: usize = 24;
const CALL_ID_CHARS: usize = 24;
const ARGUMENT_FRAGMENTS: usize = 3;
const REASONING_SUMMARY: [&str; 2] = [
    "**Reading the request**\n\n",
    "The prompt asks for a short answer, so I reply directly.",
];
/// What the summary stands for: the model reasons far longer than it summarises.
const REASONING_TOKENS: u64 = 64;
const ENCRYPTED_REASONING: &str = "reasoning.encrypted_content";
const FAILURE_MESSAGE: &str = "An error occurred while processing your request. You can retry \
    your request, or contact us through our help center at help.openai.com if the error persists.";

/// What the script needs besides the request and the scenario.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Setting {
    /// Deltas per message under [`Pacing::Chunks`].
    pub(crate) chunks: usize,
    /// Size of the request body in bytes, the basis of `input_tokens`.
    pub(crate) body_bytes: usize,
    /// The request's `prompt_cache_key` was seen before.
    pub(crate) cached: bool,
    pub(crate) now: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Step {
    Event(Value),
    /// The configured pause between two text deltas.
    Pause,
}

#[derive(Debug)]
pub(crate) struct Script {
    pub(crate) steps: Vec<Step>,
    /// The stream ends without `response.completed`, `.incomplete` or `.failed`.
    pub(crate) cut: bool,
}

/// The stream answering `request` with `scenario`.
pub(crate) fn script(request: &Value, scenario: &Scenario, setting: Setting) -> Script {
    let mut writer = Writer::new(request, setting);
    writer.event(
        "response.created",
        json!({"response": writer.response("in_progress")}),
    );
    writer.event(
        "response.in_progress",
        json!({"response": writer.response("in_progress")}),
    );
    if wants_reasoning(request) {
        writer.reasoning(includes_encrypted_reasoning(request));
    }
    match scenario {
        Scenario::Reply {
            text,
            pacing,
            calls,
        } => {
            if let Some(text) = text {
                writer.message(text, *pacing, "completed");
            }
            for call in calls {
                writer.function_call(call);
            }
            writer.finish("response.completed", "completed");
        }
        Scenario::Length => {
            writer.message(scenario::LENGTH_TEXT, Pacing::Chunks, "incomplete");
            writer.finish("response.incomplete", "incomplete");
        }
        Scenario::Fail => {
            writer.open_message(scenario::PARTIAL_TEXT, Pacing::Chunks);
            writer.finish("response.failed", "failed");
        }
        Scenario::Cut => {
            writer.open_message(scenario::PARTIAL_TEXT, Pacing::Chunks);
            writer.cut = true;
        }
        Scenario::Compaction => {
            writer.compaction();
            writer.finish("response.completed", "completed");
        }
    }
    Script {
        steps: writer.steps,
        cut: writer.cut,
    }
}

/// The backend reasons, and says so with a summary, unless the summary is off.
fn wants_reasoning(request: &Value) -> bool {
    request.get("reasoning").is_some_and(|reasoning| {
        reasoning.is_object() && reasoning.get("summary").and_then(Value::as_str) != Some("none")
    })
}

fn includes_encrypted_reasoning(request: &Value) -> bool {
    request
        .get("include")
        .and_then(Value::as_array)
        .is_some_and(|include| {
            include
                .iter()
                .any(|entry| entry.as_str() == Some(ENCRYPTED_REASONING))
        })
}

/// Splits `text` into `n` contiguous pieces (some empty when `n` exceeds its
/// length) so any chunk count still concatenates to the same text.
pub(crate) fn split_text(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.max(1);
    (0..n)
        .map(|i| {
            let start = i * chars.len() / n;
            let end = (i + 1) * chars.len() / n;
            chars.get(start..end).unwrap_or_default().iter().collect()
        })
        .collect()
}

/// One delta per word; the spaces ride at the front of the word after them,
/// as a tokenizer splits them.
pub(crate) fn split_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for (index, word) in text.split(' ').enumerate() {
        if index == 0 {
            words.push(word.to_owned());
        } else {
            words.push(format!(" {word}"));
        }
    }
    words
}

struct Writer<'a> {
    request: &'a Value,
    setting: Setting,
    response_id: String,
    sequence: u64,
    steps: Vec<Step>,
    /// Items finished so far, as `response.*` carries them in `output`.
    output: Vec<Value>,
    /// Characters of text and arguments generated, the basis of `output_tokens`.
    generated_chars: usize,
    reasoned: bool,
    cut: bool,
}

impl<'a> Writer<'a> {
    fn new(request: &'a Value, setting: Setting) -> Self {
        Self {
            request,
            setting,
            response_id: format!("resp_{}", random_hex(ID_HEX_BYTES)),
            sequence: 0,
            steps: Vec::new(),
            output: Vec::new(),
            generated_chars: 0,
            reasoned: false,
            cut: false,
        }
    }

    /// Appends an event: its type and sequence number first, then `fields`.
    fn event(&mut self, kind: &str, fields: Value) {
        let mut event = Map::new();
        event.insert("type".into(), kind.into());
        event.insert("sequence_number".into(), self.sequence.into());
        if let Value::Object(fields) = fields {
            event.extend(fields);
        }
        self.sequence += 1;
        self.steps.push(Step::Event(Value::Object(event)));
    }

    fn next_index(&self) -> usize {
        self.output.len()
    }

    /// The response object as the `response.*` events carry it.
    fn response(&self, status: &str) -> Value {
        let request = self.request;
        let field = |key: &str, default: Value| {
            request
                .get(key)
                .filter(|value| !value.is_null())
                .cloned()
                .unwrap_or(default)
        };
        let reasoning = request.get("reasoning");
        json!({
            "id": self.response_id,
            "object": "response",
            "created_at": self.setting.now,
            "status": status,
            "background": false,
            "error": null,
            "incomplete_details": null,
            "instructions": field("instructions", Value::Null),
            "model": field("model", Value::Null),
            "output": self.output,
            "parallel_tool_calls": field("parallel_tool_calls", Value::Bool(true)),
            "reasoning": {
                "effort": reasoning
                    .and_then(|r| r.get("effort"))
                    .filter(|effort| !effort.is_null())
                    .cloned()
                    .unwrap_or_else(|| "medium".into()),
                "summary": reasoning.and_then(|r| r.get("summary")).cloned().unwrap_or(Value::Null),
            },
            "store": false,
            "tool_choice": field("tool_choice", "auto".into()),
            "tools": field("tools", json!([])),
            "usage": null,
        })
    }

    fn reasoning(&mut self, encrypted: bool) {
        let index = self.next_index();
        let id = format!("rs_{}", random_hex(ID_HEX_BYTES));
        self.event(
            "response.output_item.added",
            json!({"output_index": index, "item": {"id": id, "type": "reasoning", "summary": []}}),
        );
        let empty = json!({"type": "summary_text", "text": ""});
        self.event(
            "response.reasoning_summary_part.added",
            json!({"item_id": id, "output_index": index, "summary_index": 0, "part": empty}),
        );
        for delta in REASONING_SUMMARY {
            self.event(
                "response.reasoning_summary_text.delta",
                json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": delta}),
            );
        }
        let text = REASONING_SUMMARY.concat();
        self.event(
            "response.reasoning_summary_text.done",
            json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}),
        );
        let part = json!({"type": "summary_text", "text": text});
        self.event(
            "response.reasoning_summary_part.done",
            json!({"item_id": id, "output_index": index, "summary_index": 0, "part": part}),
        );
        let mut item = json!({"id": id, "type": "reasoning", "summary": [part]});
        if encrypted {
            set(
                &mut item,
                "encrypted_content",
                reasoning_blob::issue(self.setting.now).into(),
            );
        }
        self.item_done(index, item);
        self.reasoned = true;
    }

    fn deltas(&self, text: &str, pacing: Pacing) -> Vec<String> {
        match pacing {
            Pacing::Chunks => split_text(text, self.setting.chunks),
            Pacing::Words => split_words(text),
        }
    }

    /// Opens a message and streams `text` into it; returns its id and index.
    fn open_message(&mut self, text: &str, pacing: Pacing) -> (String, usize) {
        let index = self.next_index();
        let id = format!("msg_{}", random_hex(ID_HEX_BYTES));
        self.event(
            "response.output_item.added",
            json!({"output_index": index, "item": {
                "id": id, "type": "message", "status": "in_progress", "content": [], "role": "assistant",
            }}),
        );
        self.event(
            "response.content_part.added",
            json!({"item_id": id, "output_index": index, "content_index": 0, "part": text_part("")}),
        );
        for (n, delta) in self.deltas(text, pacing).into_iter().enumerate() {
            if n > 0 {
                self.steps.push(Step::Pause);
            }
            self.event(
                "response.output_text.delta",
                json!({
                    "item_id": id, "output_index": index, "content_index": 0,
                    "delta": delta, "logprobs": [],
                }),
            );
        }
        self.generated_chars += text.chars().count();
        (id, index)
    }

    /// A whole message; `status` is its final status (`incomplete` when cut by
    /// the token limit).
    fn message(&mut self, text: &str, pacing: Pacing, status: &str) {
        let (id, index) = self.open_message(text, pacing);
        self.event(
            "response.output_text.done",
            json!({
                "item_id": id, "output_index": index, "content_index": 0,
                "text": text, "logprobs": [],
            }),
        );
        self.event(
            "response.content_part.done",
            json!({"item_id": id, "output_index": index, "content_index": 0, "part": text_part(text)}),
        );
        let item = json!({
            "id": id, "type": "message", "status": status,
            "content": [text_part(text)], "role": "assistant",
        });
        self.item_done(index, item);
    }

    fn function_call(&mut self, call: &Call) {
        let index = self.next_index();
        let id = format!("fc_{}", random_hex(ID_HEX_BYTES));
        let call_id = format!("call_{}", random_alnum(CALL_ID_CHARS));
        let item = |status: &str, arguments: &str| {
            json!({
                "id": id, "type": "function_call", "status": status,
                "arguments": arguments, "call_id": call_id, "name": call.name,
            })
        };
        self.event(
            "response.output_item.added",
            json!({"output_index": index, "item": item("in_progress", "")}),
        );
        for delta in split_text(&call.arguments, ARGUMENT_FRAGMENTS) {
            self.event(
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index, "delta": delta}),
            );
        }
        self.event(
            "response.function_call_arguments.done",
            json!({"item_id": id, "output_index": index, "arguments": call.arguments}),
        );
        self.generated_chars += call.arguments.chars().count();
        let done = item("completed", &call.arguments);
        self.item_done(index, done);
    }

    /// The conversation compacted into one opaque item, as the backend answers a
    /// `compaction_trigger`.
    fn compaction(&mut self) {
        let index = self.next_index();
        let id = format!("cmp_{}", random_hex(ID_HEX_BYTES));
        self.event(
            "response.output_item.added",
            json!({"output_index": index, "item": {"id": id, "type": "compaction"}}),
        );
        let blob = reasoning_blob::issue_as(reasoning_blob::Kind::Compaction, self.setting.now);
        self.generated_chars += blob.len();
        let item = json!({"id": id, "type": "compaction", "encrypted_content": blob});
        self.item_done(index, item);
    }

    fn item_done(&mut self, index: usize, item: Value) {
        self.event(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
        self.output.push(item);
    }

    fn usage(&self) -> Value {
        let input = (self.setting.body_bytes / 4).max(1) as u64;
        let cached = if self.setting.cached { input / 2 } else { 0 };
        let reasoning = if self.reasoned { REASONING_TOKENS } else { 0 };
        let output = (self.generated_chars / 4) as u64 + 1 + reasoning;
        json!({
            "input_tokens": input,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input + output,
        })
    }

    /// The terminal event: the response with its final status.
    fn finish(&mut self, kind: &str, status: &str) {
        let mut response = self.response(status);
        match status {
            "failed" => set(
                &mut response,
                "error",
                json!({"code": "server_error", "message": FAILURE_MESSAGE}),
            ),
            "incomplete" => {
                set(
                    &mut response,
                    "incomplete_details",
                    json!({"reason": "max_output_tokens"}),
                );
                set(&mut response, "usage", self.usage());
            }
            _ => set(&mut response, "usage", self.usage()),
        }
        self.event(kind, json!({ "response": response }));
    }
}

/// Events a client of the Codex backend can do without, left out of a sparse
/// stream: every piece of them is in the events kept.
const SPARSE_DROPPED_EVENTS: &[&str] = &[
    "response.created",
    "response.in_progress",
    "response.content_part.added",
    "response.content_part.done",
    "response.output_text.done",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.done",
    "response.function_call_arguments.done",
];
/// Fields of the events kept that a sparse stream leaves out.
const SPARSE_DROPPED_FIELDS: &[&str] = &["sequence_number", "item_id", "content_index", "logprobs"];

/// The script as the least a client needs of it (the `[[sparse]]` marker), as
/// upstreams other than the Codex backend's own front end may send it: only the
/// output items (added, their deltas, done) and the terminal event; no sequence
/// numbers, item ids or statuses, content indices, annotations or logprobs; the
/// final response with only its id, status, error and usage (no `output`).
pub(crate) fn sparse(script: Script) -> Script {
    let steps = script
        .steps
        .into_iter()
        .filter_map(|step| match step {
            Step::Event(event) => {
                let kind = event["type"].as_str().unwrap_or_default();
                if SPARSE_DROPPED_EVENTS.contains(&kind) {
                    return None;
                }
                Some(Step::Event(sparse_event(event)))
            }
            pause => Some(pause),
        })
        .collect();
    Script {
        steps,
        cut: script.cut,
    }
}

fn sparse_event(mut event: Value) -> Value {
    let Some(fields) = event.as_object_mut() else {
        return event;
    };
    for field in SPARSE_DROPPED_FIELDS {
        fields.remove(*field);
    }
    if let Some(Value::Object(item)) = fields.get_mut("item") {
        item.remove("id");
        item.remove("status");
        if let Some(Value::Array(parts)) = item.get_mut("content") {
            for part in parts.iter_mut().filter_map(Value::as_object_mut) {
                part.remove("annotations");
                part.remove("logprobs");
            }
        }
    }
    if let Some(Value::Object(response)) = fields.get_mut("response") {
        response.retain(|key, _| {
            matches!(
                key.as_str(),
                "id" | "status" | "error" | "incomplete_details" | "usage"
            )
        });
    }
    event
}

/// Sets a field of an object built here (a no-op on anything else, which
/// `json!` objects never are).
fn set(object: &mut Value, key: &str, value: Value) {
    if let Some(object) = object.as_object_mut() {
        object.insert(key.to_owned(), value);
    }
}

fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::responses_endpoint::scenario::{select, Selection};

    /// The recorded upstream streams keyward's translators are tested against.
    const FIXTURES: &[(&str, &str)] = &[
        (
            "text",
            include_str!("../../../keyward/src/dialect/fixtures/text.sse"),
        ),
        (
            "tool_call",
            include_str!("../../../keyward/src/dialect/fixtures/tool_call.sse"),
        ),
        (
            "parallel_tool_calls",
            include_str!("../../../keyward/src/dialect/fixtures/parallel_tool_calls.sse"),
        ),
        (
            "reasoning",
            include_str!("../../../keyward/src/dialect/fixtures/reasoning.sse"),
        ),
        (
            "length",
            include_str!("../../../keyward/src/dialect/fixtures/length.sse"),
        ),
        (
            "error_midstream",
            include_str!("../../../keyward/src/dialect/fixtures/error_midstream.sse"),
        ),
    ];

    fn fixture(name: &str) -> Vec<Value> {
        let text = FIXTURES
            .iter()
            .find(|(fixture, _)| *fixture == name)
            .map(|(_, text)| *text)
            .unwrap_or_else(|| panic!("no fixture {name}"));
        text.split("\n\n")
            .filter_map(|frame| frame.lines().find_map(|line| line.strip_prefix("data: ")))
            .map(|data| serde_json::from_str(data).unwrap_or_else(|e| panic!("{name}: {e}")))
            .collect()
    }

    fn user(text: &str) -> Value {
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    }

    fn request(prompt: &str) -> Value {
        json!({"model": "gpt-5.1-codex", "input": [user(prompt)], "stream": true, "store": false})
    }

    fn weather_request(prompt: &str) -> Value {
        let mut body = request(prompt);
        body["tools"] = json!([
            {"type": "function", "name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
            }},
            {"type": "function", "name": "get_time", "parameters": {
                "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"],
            }},
        ]);
        body
    }

    fn setting(chunks: usize) -> Setting {
        Setting {
            chunks,
            body_bytes: 400,
            cached: false,
            now: 1_764_166_000,
        }
    }

    fn run(request: &Value, chunks: usize) -> Script {
        match select(request) {
            Selection::Stream(scenario) => script(request, &scenario, setting(chunks)),
            Selection::UsageLimit => panic!("no stream for a usage limit"),
        }
    }

    fn events(script: &Script) -> Vec<Value> {
        script
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::Event(event) => Some(event.clone()),
                Step::Pause => None,
            })
            .collect()
    }

    fn kinds(events: &[Value]) -> Vec<String> {
        events
            .iter()
            .map(|event| event["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The event types with runs of the same type collapsed, so streams that
    /// split text into different numbers of deltas compare equal.
    fn collapsed(events: &[Value]) -> Vec<String> {
        let mut kinds = kinds(events);
        kinds.dedup();
        kinds
    }

    /// Whether `ours` has the fixture's shape: the same keys in the same order,
    /// recursively (arrays by their first elements; scalars and nulls match anything).
    fn same_shape(ours: &Value, recorded: &Value, path: &str) -> Result<(), String> {
        match (ours, recorded) {
            (Value::Object(a), Value::Object(b)) => {
                let (ka, kb): (Vec<&String>, Vec<&String>) =
                    (a.keys().collect(), b.keys().collect());
                if ka != kb {
                    return Err(format!("{path}: keys {ka:?}, recorded {kb:?}"));
                }
                a.iter().try_for_each(|(key, value)| {
                    same_shape(value, &b[key.as_str()], &format!("{path}.{key}"))
                })
            }
            (Value::Array(a), Value::Array(b)) => match (a.first(), b.first()) {
                (Some(x), Some(y)) => same_shape(x, y, &format!("{path}[0]")),
                _ => Ok(()),
            },
            (Value::Object(_) | Value::Array(_), other)
            | (other, Value::Object(_) | Value::Array(_))
                if !other.is_null() =>
            {
                Err(format!("{path}: {ours} against recorded {recorded}"))
            }
            _ => Ok(()),
        }
    }

    /// Every event has the shape of the recorded event of its type (and item type).
    fn assert_recorded_shapes(ours: &[Value], recorded: &[Value]) {
        for event in ours {
            let kind = &event["type"];
            let twin = recorded
                .iter()
                .find(|candidate| {
                    &candidate["type"] == kind && candidate["item"]["type"] == event["item"]["type"]
                })
                .unwrap_or_else(|| panic!("{kind} is not in the recording"));
            if let Err(difference) = same_shape(event, twin, "event") {
                panic!("{kind}: {difference}");
            }
        }
    }

    fn assert_numbered(events: &[Value]) {
        for (n, event) in events.iter().enumerate() {
            assert_eq!(event["sequence_number"], json!(n), "{event}");
        }
    }

    fn concat_deltas(events: &[Value], kind: &str) -> String {
        events
            .iter()
            .filter(|event| event["type"] == kind)
            .filter_map(|event| event["delta"].as_str())
            .collect()
    }

    /// "pong" streams exactly as the recorded text answer does.
    #[test]
    fn text_matches_the_recording() {
        let script = run(&request("ping"), 3);
        let ours = events(&script);
        let recorded = fixture("text");
        assert_eq!(kinds(&ours), kinds(&recorded));
        assert_recorded_shapes(&ours, &recorded);
        assert_numbered(&ours);
        assert!(!script.cut);
        assert_eq!(concat_deltas(&ours, "response.output_text.delta"), "pong");
        let done = ours.last().cloned().unwrap_or_default();
        assert_eq!(done["response"]["output"][0]["content"][0]["text"], "pong");
        assert_eq!(done["response"]["status"], "completed");
        assert_eq!(done["response"]["model"], "gpt-5.1-codex");
        let id = done["response"]["id"].as_str().unwrap_or_default();
        assert!(id.starts_with("resp_") && id.len() == 5 + 48, "{id}");
        assert!(done["response"]["output"][0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("msg_")));
    }

    /// Pauses sit between text deltas only, one fewer than the deltas.
    #[test]
    fn pauses_separate_text_deltas() {
        let script = run(&request("ping"), 4);
        let pauses = script
            .steps
            .iter()
            .filter(|step| **step == Step::Pause)
            .count();
        assert_eq!(pauses, 3);
        let after_pause = script.steps.windows(2).all(|pair| match pair {
            [Step::Pause, Step::Event(event)] => event["type"] == "response.output_text.delta",
            _ => true,
        });
        assert!(after_pause);
    }

    /// A tool call streams as the recorded one does, its arguments in three fragments.
    #[test]
    fn tool_call_matches_the_recording() {
        let ours = events(&run(&weather_request("[[tool]]"), 3));
        let recorded = fixture("tool_call");
        assert_eq!(kinds(&ours), kinds(&recorded));
        assert_recorded_shapes(&ours, &recorded);
        assert_numbered(&ours);
        assert_eq!(
            concat_deltas(&ours, "response.function_call_arguments.delta"),
            r#"{"city":"Paris"}"#
        );
        let item = &ours.last().cloned().unwrap_or_default()["response"]["output"][0];
        assert_eq!(item["name"], "get_weather");
        assert!(item["id"].as_str().is_some_and(|id| id.starts_with("fc_")));
        let call_id = item["call_id"].as_str().unwrap_or_default();
        let suffix = call_id.strip_prefix("call_").unwrap_or_default();
        assert!(
            suffix.len() == 24 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{call_id}"
        );
    }

    /// Parallel calls follow the recorded text-then-two-calls stream, each with its own call id.
    #[test]
    fn parallel_calls_match_the_recording() {
        let ours = events(&run(&weather_request("[[tools]]"), 1));
        let recorded = fixture("parallel_tool_calls");
        assert_eq!(collapsed(&ours), collapsed(&recorded));
        assert_recorded_shapes(&ours, &recorded);
        assert_numbered(&ours);
        let output = ours.last().cloned().unwrap_or_default()["response"]["output"].clone();
        assert_eq!(output[0]["content"][0]["text"], scenario::PARALLEL_PREFACE);
        assert_eq!(output[1]["name"], "get_weather");
        assert_eq!(output[2]["name"], "get_time");
        assert_eq!(output[2]["arguments"], r#"{"zone":"x"}"#);
        assert_ne!(output[1]["call_id"], output[2]["call_id"]);
        assert_eq!(output[2]["id"].as_str().map(str::len), Some(3 + 48));
    }

    /// Reasoning opens the answer as recorded; its encrypted content is issued
    /// only when asked for, and verifies.
    #[test]
    fn reasoning_matches_the_recording() {
        let mut body = request("ping");
        body["reasoning"] = json!({"effort": "high", "summary": "auto"});
        body["include"] = json!(["reasoning.encrypted_content"]);
        let ours = events(&run(&body, 2));
        let recorded = fixture("reasoning");
        assert_recorded_shapes(&ours, &recorded);
        assert_numbered(&ours);
        assert_eq!(
            kinds(&ours),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
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
                "response.completed",
            ]
        );
        let done = ours.last().cloned().unwrap_or_default()["response"].clone();
        let reasoning = &done["output"][0];
        assert!(reasoning["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("rs_")));
        let blob = reasoning["encrypted_content"].as_str().unwrap_or_default();
        assert!(reasoning_blob::verify(blob), "{blob}");
        assert_eq!(
            done["usage"]["output_tokens_details"]["reasoning_tokens"],
            REASONING_TOKENS
        );
        assert_eq!(
            done["reasoning"],
            json!({"effort": "high", "summary": "auto"})
        );

        body["include"] = json!([]);
        let ours = events(&run(&body, 2));
        let done = ours.last().cloned().unwrap_or_default()["response"].clone();
        assert_eq!(done["output"][0]["type"], "reasoning");
        assert!(done["output"][0].get("encrypted_content").is_none());
    }

    /// No reasoning item when the request turns the summary off or has no reasoning.
    #[test]
    fn reasoning_is_skipped_when_not_wanted() {
        let mut body = request("ping");
        body["reasoning"] = json!({"effort": "low", "summary": "none"});
        let first_item = |body: &Value| {
            events(&run(body, 1))
                .into_iter()
                .find(|event| event["type"] == "response.output_item.added")
                .map(|event| event["item"]["type"].clone())
        };
        assert_eq!(first_item(&body), Some(json!("message")));
        body.as_object_mut().map(|b| b.remove("reasoning"));
        assert_eq!(first_item(&body), Some(json!("message")));
        body["reasoning"] = json!({"effort": "low"});
        assert_eq!(first_item(&body), Some(json!("reasoning")));
    }

    /// `[[length]]` ends like the recorded token-limit stream.
    #[test]
    fn length_matches_the_recording() {
        let ours = events(&run(&request("[[length]]"), 2));
        let recorded = fixture("length");
        assert_eq!(kinds(&ours), kinds(&recorded));
        assert_recorded_shapes(&ours, &recorded);
        let done = ours.last().cloned().unwrap_or_default()["response"].clone();
        assert_eq!(done["status"], "incomplete");
        assert_eq!(
            done["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(done["output"][0]["status"], "incomplete");
        assert!(done["usage"]["output_tokens"].as_u64().is_some());
    }

    /// `[[fail]]` fails mid-stream like the recording.
    #[test]
    fn failure_matches_the_recording() {
        let ours = events(&run(&request("[[fail]]"), 1));
        let recorded = fixture("error_midstream");
        assert_eq!(kinds(&ours), kinds(&recorded));
        assert_recorded_shapes(&ours, &recorded);
        let done = ours.last().cloned().unwrap_or_default()["response"].clone();
        assert_eq!(done["status"], "failed");
        assert_eq!(done["error"]["code"], "server_error");
        assert!(done["usage"].is_null());
    }

    /// `[[cut]]` sends some text and no terminal event.
    #[test]
    fn cut_streams_end_without_a_terminal_event() {
        let script = run(&request("[[cut]]"), 3);
        assert!(script.cut);
        let ours = events(&script);
        assert_eq!(
            ours.last().map(|event| event["type"].clone()),
            Some(json!("response.output_text.delta"))
        );
        assert_eq!(
            concat_deltas(&ours, "response.output_text.delta"),
            scenario::PARTIAL_TEXT
        );
    }

    /// `[[words]]` streams one word per delta.
    #[test]
    fn words_stream_one_by_one() {
        let ours = events(&run(&request("[[words]]"), 1));
        let deltas: Vec<&str> = ours
            .iter()
            .filter(|event| event["type"] == "response.output_text.delta")
            .filter_map(|event| event["delta"].as_str())
            .collect();
        assert_eq!(deltas, ["one", " two", " three", " STOP", " four", " five"]);
    }

    /// Usage counts the request's bytes, the answer's characters, and a cache hit.
    #[test]
    fn usage_reflects_request_answer_and_cache() {
        let body = request("[[json]]");
        let usage = |cached: bool| {
            let mut setting = setting(1);
            setting.body_bytes = 1000;
            setting.cached = cached;
            let scenario = match select(&body) {
                Selection::Stream(scenario) => scenario,
                Selection::UsageLimit => panic!("no stream"),
            };
            let events = events(&script(&body, &scenario, setting));
            events.last().cloned().unwrap_or_default()["response"]["usage"].clone()
        };
        let answer_chars = r#"{"answer":"pong"}"#.len() as u64;
        assert_eq!(
            usage(false),
            json!({
                "input_tokens": 250,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": answer_chars / 4 + 1,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 250 + answer_chars / 4 + 1,
            })
        );
        assert_eq!(usage(true)["input_tokens_details"]["cached_tokens"], 125);
    }

    /// A compaction trigger is answered with exactly one `compaction` item whose content the
    /// rules accept back, then `response.completed` carrying it in `output`.
    #[test]
    fn compaction_answers_one_compaction_item() {
        let mut body = request("ping");
        if let Some(input) = body["input"].as_array_mut() {
            input.push(json!({"type": "compaction_trigger"}));
        }
        let events = events(&run(&body, 2));
        let items: Vec<&Value> = events
            .iter()
            .filter(|e| e["type"] == "response.output_item.done")
            .map(|e| &e["item"])
            .collect();
        assert_eq!(items.len(), 1, "{events:?}");
        assert_eq!(items[0]["type"], "compaction");
        let blob = items[0]["encrypted_content"].as_str().unwrap_or_default();
        assert!(reasoning_blob::verify_as(
            reasoning_blob::Kind::Compaction,
            blob
        ));
        let last = events.last().cloned().unwrap_or_default();
        assert_eq!(last["type"], "response.completed");
        assert_eq!(last["response"]["output"], json!([items[0]]));
    }

    /// A sparse stream keeps the items, deltas and the terminal event, without the fields a
    /// Codex client does not need; the text and calls are all still there.
    #[test]
    fn sparse_streams_keep_only_what_a_client_needs() {
        let mut body = weather_request("[[tools]]");
        body["reasoning"] = json!({"summary": "auto"});
        let events = events(&sparse(run(&body, 3)));
        assert_eq!(
            collapsed(&events),
            [
                "response.output_item.added",
                "response.reasoning_summary_text.delta",
                "response.output_item.done",
                "response.output_item.added",
                "response.output_text.delta",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for event in &events {
            for field in ["sequence_number", "item_id", "content_index", "logprobs"] {
                assert!(event.get(field).is_none(), "{field} in {event}");
            }
            assert!(event["item"].get("id").is_none(), "{event}");
        }
        assert_eq!(
            concat_deltas(&events, "response.output_text.delta"),
            scenario::PARALLEL_PREFACE
        );
        let done = events.last().cloned().unwrap_or_default();
        assert!(done["response"].get("output").is_none(), "{done}");
        assert!(
            done["response"]["usage"]["output_tokens"].is_u64(),
            "{done}"
        );
        let call = events
            .iter()
            .find(|e| {
                e["type"] == "response.output_item.done" && e["item"]["type"] == "function_call"
            })
            .cloned()
            .unwrap_or_default();
        assert_eq!(call["item"]["name"], "get_weather");
        assert!(call["item"]["call_id"].is_string(), "{call}");
    }

    /// Text splits into the asked number of pieces that concatenate back.
    #[test]
    fn chunks_concatenate_to_text() {
        for n in 0..=7 {
            let parts = split_text("pong", n);
            assert_eq!(parts.len(), n.max(1));
            assert_eq!(parts.concat(), "pong");
        }
    }
}
