//! What the mock answers, chosen from the request itself so any client (an SDK,
//! Claude Code, the Codex CLI) can ask for each shape through its prompt. The
//! three model endpoints share this engine: the Codex backend
//! (`POST /backend-api/codex/responses`), the public OpenAI Responses API
//! (`POST /v1/responses`, a string `input` counting as one user message) and
//! the Anthropic Messages API (`POST /v1/messages`, read through
//! `anthropic_api::conversation`: `tool_use` blocks are calls, `tool_result`
//! blocks their outputs, custom tools function tools).
//!
//! The last input item decides first: a `compaction_trigger` (the Codex CLI's
//! remote compaction) is answered with one `compaction` item whose
//! `encrypted_content` later requests may carry; a tool's output there is
//! acknowledged with `tool said: <output>` (200 characters at most), which ends
//! a tool loop, unless the output itself holds `[[tool]]` or `[[tool:NAME]]`:
//! then the tool is called again (a loop of as many rounds as a test wants).
//! Otherwise a marker in the last user message picks the shape (ASCII case
//! ignored; the first in this list wins). "Streamed" is every Codex answer;
//! the two APIs stream when the request says `stream: true`.
//!
//! | marker            | Codex backend, OpenAI API                                    | Anthropic API |
//! |-------------------|--------------------------------------------------------------|---------------|
//! | `[[usage_limit]]` | Codex: HTTP 429 `usage_limit_reached` with the `x-codex-*` headers and `retry-after` (resets in 3600 s). OpenAI: 429 `insufficient_quota` | 400: credit balance too low |
//! | `[[cut]]`         | some text deltas, then the stream ends with no terminal event; OpenAI unstreamed: the connection closes with no answer | the same (no `message_stop`) |
//! | `[[fail]]`        | some text deltas, then `response.failed` (`server_error`); OpenAI unstreamed: 500 `server_error` | an `error` event (`overloaded_error`); unstreamed: 529 |
//! | `[[length]]`      | text, then `response.incomplete` (`max_output_tokens`)        | `stop_reason: max_tokens` |
//! | `[[tools]]`       | a short message, then two parallel calls of the first two function tools (or the first twice) | a text block and two `tool_use` blocks |
//! | `[[tool]]`        | a call of the first function tool, arguments made from its schema | a `tool_use` block, input made from its `input_schema` |
//! | `[[tool:NAME]]`   | a call of the function tool NAME, arguments made from its schema | the same, as `tool_use` |
//! | `[[words]]`       | `one two three STOP four five`, one word per delta            | the same (`stop_sequences` apply) |
//! | `[[json]]`        | `{"answer":"pong"}`                                           | the same |
//! | `[[echo]]`        | the user's text without the marker                            | the same |
//! | none              | `pong`                                                        | `pong` |
//!
//! A request for structured output (`text.format` of type `json_schema`, as
//! the real backend honours it) answers any text reply above with JSON made
//! from the schema's required properties (`arguments_for`), so a client that
//! parses the answer (the Gemini CLI's model router) gets what it asked for.
//!
//! A Codex or OpenAI request with `reasoning` (unless its summary is `none`)
//! gets a reasoning item first, whatever the answer (see `script`).
//! `[[sparse]]` anywhere in the last user message makes the Codex backend's
//! stream the least a client of it needs (see `script::sparse`): no sequence
//! numbers, lifecycle or content-part events, items without ids or status, a
//! final response with its id and usage only; it combines with the other
//! markers.
//! `[[hold:KEY]]` anywhere in the last user message holds the stream after its
//! first event (`response.created`, `message_start`) until
//! `POST /admin/release/KEY` (as the `x-mock-hold` header does), so a test can
//! prove a proxy forwards the first event before the rest exists, whatever
//! dialect the proxy's client speaks; an unstreamed answer is held whole.
//!
//! Limits set through the admin API come before any of this: an account
//! limited by `POST /admin/usage_limit` gets the Codex usage-limit 429, and a
//! key limited by `POST /admin/api_key_limit` its API's rate-limit 429,
//! whatever the prompt says.

use serde_json::{Map, Value};

/// A tool output is quoted back this far, so a huge output stays a short answer.
const TOOL_OUTPUT_QUOTED_CHARS: usize = 200;
pub(crate) const DEFAULT_TEXT: &str = "pong";
pub(crate) const WORDS_TEXT: &str = "one two three STOP four five";
pub(crate) const JSON_TEXT: &str = r#"{"answer":"pong"}"#;
pub(crate) const PARALLEL_PREFACE: &str = "Calling two tools at once.";
pub(crate) const LENGTH_TEXT: &str = "Once upon a time, in a land far";
pub(crate) const PARTIAL_TEXT: &str = "Partial answer before the";
const NO_TOOL_TEXT: &str =
    "[[tool]] and [[tools]] need a function tool in the request's `tools`, and it has none.";

/// Markers, in the order they win when a prompt holds several.
const USAGE_LIMIT: &str = "[[usage_limit]]";
const CUT: &str = "[[cut]]";
const FAIL: &str = "[[fail]]";
const LENGTH: &str = "[[length]]";
const TOOLS: &str = "[[tools]]";
const TOOL: &str = "[[tool]]";
const NAMED_TOOL: &str = "[[tool:";
const HOLD: &str = "[[hold:";
const WORDS: &str = "[[words]]";
const JSON: &str = "[[json]]";
const ECHO: &str = "[[echo]]";
const SPARSE: &str = "[[sparse]]";

/// How a message's text is split into deltas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pacing {
    /// The configured number of pieces (`x-mock-chunks`, `--chunks`), each
    /// after the configured pause.
    Chunks,
    /// One delta per word, each but the first with its leading space.
    Words,
}

/// A function call the answer makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) name: String,
    pub(crate) arguments: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scenario {
    /// A completed answer: a message (when `text` is set), then function calls.
    Reply {
        text: Option<String>,
        pacing: Pacing,
        calls: Vec<Call>,
    },
    /// Text, then `response.incomplete` for `max_output_tokens`.
    Length,
    /// Text deltas, then `response.failed`.
    Fail,
    /// Text deltas, then the stream ends with no terminal event.
    Cut,
    /// One `compaction` output item: the conversation so far, compacted.
    Compaction,
}

/// The answer to a request the rules accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Selection {
    /// HTTP 429 for an exhausted ChatGPT plan, before any stream.
    UsageLimit,
    Stream(Scenario),
}

impl Scenario {
    fn text(text: impl Into<String>) -> Self {
        Self::Reply {
            text: Some(text.into()),
            pacing: Pacing::Chunks,
            calls: Vec::new(),
        }
    }

    /// A short name for the request journal.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Reply { calls, .. } if calls.is_empty() => "text",
            Self::Reply { .. } => "tool_calls",
            Self::Length => "length",
            Self::Fail => "fail",
            Self::Cut => "cut",
            Self::Compaction => "compaction",
        }
    }
}

/// The answer to `request`, which the rules accepted.
pub(crate) fn select(request: &Value) -> Selection {
    let input = request
        .get("input")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if input.last().and_then(|item| item.get("type")) == Some(&Value::from("compaction_trigger")) {
        return Selection::Stream(Scenario::Compaction);
    }
    if let Some(output) = input.last().and_then(tool_output) {
        if let Some(name) = marker_argument(&output, NAMED_TOOL) {
            return Selection::Stream(named_call(request, &name));
        }
        if output.to_ascii_lowercase().contains(TOOL) {
            return Selection::Stream(single_call(request));
        }
        let quoted: String = output.chars().take(TOOL_OUTPUT_QUOTED_CHARS).collect();
        return Selection::Stream(Scenario::text(format!("tool said: {quoted}")));
    }
    let text = last_user_text(input);
    let lowered = text.to_ascii_lowercase();
    let has = |marker: &str| lowered.contains(marker);
    if has(USAGE_LIMIT) {
        return Selection::UsageLimit;
    }
    let scenario = if has(CUT) {
        Scenario::Cut
    } else if has(FAIL) {
        Scenario::Fail
    } else if has(LENGTH) {
        Scenario::Length
    } else if has(TOOLS) {
        parallel_calls(request)
    } else if let Some(name) = marker_argument(&text, NAMED_TOOL) {
        named_call(request, &name)
    } else if has(TOOL) {
        single_call(request)
    } else if has(WORDS) {
        Scenario::Reply {
            text: Some(WORDS_TEXT.to_owned()),
            pacing: Pacing::Words,
            calls: Vec::new(),
        }
    } else if has(JSON) {
        Scenario::text(JSON_TEXT)
    } else if has(ECHO) {
        Scenario::text(remove_marker(&text, ECHO).trim())
    } else {
        Scenario::text(DEFAULT_TEXT)
    };
    Selection::Stream(structured(request, scenario))
}

/// A text reply as the JSON a `json_schema` text format asks for.
fn structured(request: &Value, scenario: Scenario) -> Scenario {
    let format = request.pointer("/text/format");
    if format.and_then(|f| f.get("type")).and_then(Value::as_str) != Some("json_schema") {
        return scenario;
    }
    match scenario {
        Scenario::Reply {
            text: Some(_),
            calls,
            ..
        } if calls.is_empty() => {
            Scenario::text(arguments_for(format.and_then(|f| f.get("schema"))))
        }
        other => other,
    }
}

/// The text of a `function_call_output` item: its string, or its text parts.
fn tool_output(item: &Value) -> Option<String> {
    if item.get("type").and_then(Value::as_str) != Some("function_call_output") {
        return None;
    }
    match item.get("output")? {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => Some(parts.iter().filter_map(part_text).collect()),
        _ => None,
    }
}

fn part_text(part: &Value) -> Option<&str> {
    part.get("text").and_then(Value::as_str)
}

fn is_user_message(item: &Value) -> bool {
    let kind = item.get("type").and_then(Value::as_str);
    matches!(kind, None | Some("message"))
        && item.get("role").and_then(Value::as_str) == Some("user")
}

/// The text of the last user message, its text parts joined by newlines.
fn last_user_text(input: &[Value]) -> String {
    let Some(message) = input.iter().rev().find(|item| is_user_message(item)) else {
        return String::new();
    };
    match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(part_text)
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// `text` without any ASCII-case variant of `marker` (which is ASCII, so the
/// lowered copy has the same byte offsets).
fn remove_marker(text: &str, marker: &str) -> String {
    let lowered = text.to_ascii_lowercase();
    let mut kept = String::with_capacity(text.len());
    let mut from = 0;
    for (at, _) in lowered.match_indices(marker) {
        kept.push_str(text.get(from..at).unwrap_or_default());
        from = at + marker.len();
    }
    kept.push_str(text.get(from..).unwrap_or_default());
    kept
}

/// The request's function tools, in order.
fn function_tools(request: &Value) -> Vec<&Map<String, Value>> {
    request
        .get("tools")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_object)
        .filter(|tool| tool.get("type").and_then(Value::as_str) == Some("function"))
        .filter(|tool| tool.get("name").and_then(Value::as_str).is_some())
        .collect()
}

fn call_to(tool: &Map<String, Value>) -> Call {
    Call {
        name: tool
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        arguments: arguments_for(tool.get("parameters")),
    }
}

fn single_call(request: &Value) -> Scenario {
    match function_tools(request).first() {
        Some(tool) => Scenario::Reply {
            text: None,
            pacing: Pacing::Chunks,
            calls: vec![call_to(tool)],
        },
        None => Scenario::text(NO_TOOL_TEXT),
    }
}

fn named_call(request: &Value, name: &str) -> Scenario {
    let tools = function_tools(request);
    match tools
        .iter()
        .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
    {
        Some(tool) => Scenario::Reply {
            text: None,
            pacing: Pacing::Chunks,
            calls: vec![call_to(tool)],
        },
        None => Scenario::text(format!("the request has no function tool named {name}")),
    }
}

/// The key of a `[[hold:KEY]]` marker in the last user message.
pub(crate) fn hold_key(request: &Value) -> Option<String> {
    let input = request.get("input").and_then(Value::as_array)?;
    marker_argument(&last_user_text(input), HOLD)
}

/// Whether the last user message asks for the sparse stream (`[[sparse]]`).
pub(crate) fn sparse(request: &Value) -> bool {
    let input = request
        .get("input")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    last_user_text(input).to_ascii_lowercase().contains(SPARSE)
}

/// `ARG` of the first `PREFIXARG]]` in `text` (the prefix matched in any ASCII case).
fn marker_argument(text: &str, prefix: &str) -> Option<String> {
    let lowered = text.to_ascii_lowercase();
    let start = lowered.find(prefix)? + prefix.len();
    let rest = text.get(start..)?;
    let end = rest.find("]]")?;
    let argument = rest.get(..end)?.trim();
    (!argument.is_empty()).then(|| argument.to_string())
}

fn parallel_calls(request: &Value) -> Scenario {
    let tools = function_tools(request);
    let (Some(first), second) = (tools.first(), tools.get(1)) else {
        return Scenario::text(NO_TOOL_TEXT);
    };
    Scenario::Reply {
        text: Some(PARALLEL_PREFACE.to_owned()),
        pacing: Pacing::Chunks,
        calls: vec![call_to(first), call_to(second.unwrap_or(first))],
    }
}

/// Arguments satisfying a JSON schema's required properties, as compact JSON.
pub(crate) fn arguments_for(parameters: Option<&Value>) -> String {
    let properties = parameters
        .and_then(|p| p.get("properties"))
        .and_then(Value::as_object);
    let required = parameters
        .and_then(|p| p.get("required"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let arguments: Map<String, Value> = required
        .iter()
        .filter_map(Value::as_str)
        .map(|name| {
            let schema = properties.and_then(|p| p.get(name));
            (name.to_owned(), example_value(name, schema))
        })
        .collect();
    Value::Object(arguments).to_string()
}

fn example_value(name: &str, schema: Option<&Value>) -> Value {
    if let Some(first) = schema
        .and_then(|s| s.get("enum"))
        .and_then(Value::as_array)
        .and_then(|values| values.first())
    {
        return first.clone();
    }
    // `"type": ["string", "null"]` means a nullable string.
    let kind = match schema.and_then(|s| s.get("type")) {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| *kind != "null")
            .unwrap_or("string"),
        _ => "string",
    };
    match kind {
        "integer" | "number" => Value::from(1),
        "boolean" => Value::Bool(true),
        "array" => Value::Array(Vec::new()),
        "object" => Value::Object(Map::new()),
        "null" => Value::Null,
        _ if matches!(name.to_ascii_lowercase().as_str(), "city" | "location") => {
            Value::from("Paris")
        }
        _ => Value::from("x"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(input: Value) -> Value {
        json!({"model": "gpt-5.1-codex", "input": input, "stream": true, "store": false})
    }

    fn user(text: &str) -> Value {
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    }

    fn asking(text: &str) -> Selection {
        select(&request(json!([user(text)])))
    }

    fn text(text: &str) -> Selection {
        Selection::Stream(Scenario::text(text))
    }

    fn weather_tools() -> Value {
        json!([
            {"type": "web_search"},
            {"type": "function", "name": "get_weather", "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            }},
            {"type": "function", "name": "get_time", "parameters": {
                "type": "object",
                "properties": {"zone": {"type": "string"}},
                "required": ["zone"],
            }},
        ])
    }

    /// A plain prompt gets "pong".
    #[test]
    fn plain_prompts_get_pong() {
        assert_eq!(asking("ping"), text("pong"));
        assert_eq!(select(&request(json!([]))), text("pong"));
    }

    /// Each marker selects its scenario, whatever its ASCII case.
    #[test]
    fn markers_select_scenarios() {
        assert_eq!(
            asking("please [[LENGTH]]"),
            Selection::Stream(Scenario::Length)
        );
        assert_eq!(asking("[[fail]]"), Selection::Stream(Scenario::Fail));
        assert_eq!(asking("x [[Cut]] y"), Selection::Stream(Scenario::Cut));
        assert_eq!(asking("[[usage_limit]]"), Selection::UsageLimit);
        assert_eq!(asking("[[json]]"), text(r#"{"answer":"pong"}"#));
        assert_eq!(
            asking("[[words]]"),
            Selection::Stream(Scenario::Reply {
                text: Some("one two three STOP four five".into()),
                pacing: Pacing::Words,
                calls: Vec::new(),
            })
        );
    }

    /// `[[tool:NAME]]` calls that tool (not the first); `[[hold:KEY]]` names a gate.
    #[test]
    fn named_tools_and_holds() {
        let mut body = request(json!([user("time? [[tool:get_time]] [[hold:h-1]]")]));
        body["tools"] = weather_tools();
        match select(&body) {
            Selection::Stream(Scenario::Reply { calls, .. }) => {
                assert_eq!(calls.len(), 1);
                assert_eq!(calls[0].name, "get_time");
            }
            other => panic!("expected a call, got {other:?}"),
        }
        assert_eq!(hold_key(&body).as_deref(), Some("h-1"));
        assert_eq!(hold_key(&request(json!([user("[[hold:]]")]))), None);
        assert_eq!(
            asking("[[tool:nope]]"),
            text("the request has no function tool named nope")
        );
    }

    /// `[[echo]]` answers the user's text without the marker.
    #[test]
    fn echo_repeats_the_prompt_without_the_marker() {
        assert_eq!(
            asking("[[ECHO]] Hello, wörld [[echo]]!"),
            text("Hello, wörld !")
        );
        let parts = json!([{"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "[[echo]] first"},
            {"type": "input_image", "image_url": "data:,"},
            {"type": "input_text", "text": "second"},
        ]}]);
        assert_eq!(select(&request(parts)), text("first\nsecond"));
    }

    /// Only the last user message counts: not developer messages, not earlier turns.
    #[test]
    fn the_last_user_message_decides() {
        let input = json!([
            user("[[fail]]"),
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "[[cut]]"}]},
            user("[[json]]"),
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "[[length]]"}]},
        ]);
        assert_eq!(select(&request(input)), text(r#"{"answer":"pong"}"#));
    }

    /// A tool output as the last item is quoted back (200 characters at most),
    /// whatever the user asked before.
    #[test]
    fn tool_outputs_are_acknowledged() {
        let input = json!([
            user("[[tool]]"),
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": "sunny"},
        ]);
        assert_eq!(select(&request(input)), text("tool said: sunny"));
        let long = "é".repeat(300);
        let input = json!([
            user("[[usage_limit]]"),
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": [
                {"type": "input_text", "text": long},
            ]},
        ]);
        assert_eq!(
            select(&request(input)),
            text(&format!("tool said: {}", "é".repeat(200)))
        );
    }

    /// A tool output asking for another call (`[[tool]]`, `[[tool:NAME]]` in it) gets one:
    /// a tool loop goes on for as many rounds as its outputs ask.
    #[test]
    fn tool_outputs_may_ask_for_another_call() {
        let mut body = request(json!([
            user("[[tool]]"),
            {"type": "function_call", "call_id": "c", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": "rain; again [[tool:get_time]]"},
        ]));
        body["tools"] = weather_tools();
        let Selection::Stream(Scenario::Reply { calls, text, .. }) = select(&body) else {
            panic!("not a reply");
        };
        assert_eq!(text, None);
        assert_eq!(calls.first().map(|c| c.name.as_str()), Some("get_time"));
        body["input"][2]["output"] = json!("rain [[TOOL]]");
        let Selection::Stream(Scenario::Reply { calls, .. }) = select(&body) else {
            panic!("not a reply");
        };
        assert_eq!(calls.first().map(|c| c.name.as_str()), Some("get_weather"));
    }

    /// `[[tool]]` calls the first function tool with arguments its schema requires.
    #[test]
    fn tool_calls_the_first_function() {
        let mut body = request(json!([user("[[tool]]")]));
        body["tools"] = weather_tools();
        assert_eq!(
            select(&body),
            Selection::Stream(Scenario::Reply {
                text: None,
                pacing: Pacing::Chunks,
                calls: vec![Call {
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Paris","days":1}"#.into(),
                }],
            })
        );
    }

    /// `[[tools]]` says something, then calls the first two functions, or the only one twice.
    #[test]
    fn tools_calls_two_functions_in_parallel() {
        let mut body = request(json!([user("[[tools]]")]));
        body["tools"] = weather_tools();
        let Selection::Stream(Scenario::Reply { text, calls, .. }) = select(&body) else {
            panic!("not a reply");
        };
        assert_eq!(text.as_deref(), Some(PARALLEL_PREFACE));
        let names: Vec<&str> = calls.iter().map(|call| call.name.as_str()).collect();
        assert_eq!(names, ["get_weather", "get_time"]);

        body["tools"] = json!([{"type": "function", "name": "only"}]);
        let Selection::Stream(Scenario::Reply { calls, .. }) = select(&body) else {
            panic!("not a reply");
        };
        let names: Vec<&str> = calls.iter().map(|call| call.name.as_str()).collect();
        assert_eq!(names, ["only", "only"]);
        assert_eq!(
            calls.first().map(|call| call.arguments.as_str()),
            Some("{}")
        );
    }

    /// Without a function tool, the tool markers answer with an explanation.
    #[test]
    fn tool_markers_without_functions_explain() {
        let mut body = request(json!([user("[[tool]]")]));
        body["tools"] = json!([{"type": "web_search"}]);
        assert_eq!(select(&body), text(NO_TOOL_TEXT));
        assert_eq!(asking("[[tools]]"), text(NO_TOOL_TEXT));
    }

    /// Required properties get a value of their type; optional ones are left out.
    #[test]
    fn arguments_follow_the_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "name": {"type": "string"},
                "count": {"type": "number"},
                "flag": {"type": "boolean"},
                "list": {"type": "array"},
                "nested": {"type": "object"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "maybe": {"type": ["null", "integer"]},
                "untyped": {},
                "optional": {"type": "string"},
            },
            "required": ["location", "name", "count", "flag", "list", "nested", "unit", "maybe", "untyped", "absent"],
        });
        let arguments: Value =
            serde_json::from_str(&arguments_for(Some(&schema))).unwrap_or_default();
        assert_eq!(
            arguments,
            json!({
                "location": "Paris", "name": "x", "count": 1, "flag": true, "list": [],
                "nested": {}, "unit": "celsius", "maybe": 1, "untyped": "x", "absent": "x",
            })
        );
        assert_eq!(arguments_for(None), "{}");
        assert_eq!(arguments_for(Some(&json!("not a schema"))), "{}");
    }

    /// A structured-output request gets JSON made from its schema for any text reply, a tool
    /// marker without the tool included; tool calls stay calls.
    #[test]
    fn structured_output_answers_with_its_schema() {
        let schema = json!({
            "type": "object",
            "properties": {"complexity_reasoning": {"type": "string"}, "complexity_score": {"type": "integer"}},
            "required": ["complexity_reasoning", "complexity_score"],
        });
        let mut body = request(json!([user("say pong [[tool:read_file]]")]));
        body["text"] = json!({"format": {"type": "json_schema", "name": "r", "schema": schema, "strict": false}});
        assert_eq!(
            select(&body),
            text(r#"{"complexity_reasoning":"x","complexity_score":1}"#)
        );
        body["tools"] = json!([{"type": "function", "name": "read_file", "parameters": {}}]);
        let Selection::Stream(Scenario::Reply { calls, .. }) = select(&body) else {
            panic!("not a reply");
        };
        assert_eq!(calls.len(), 1);
        body["text"] = json!({"format": {"type": "text"}});
        body["input"] = json!([user("ping")]);
        assert_eq!(select(&body), text("pong"));
    }

    /// A request ending in a compaction trigger is compacted, whatever its prompt said;
    /// `[[sparse]]` is read beside the other markers.
    #[test]
    fn compaction_triggers_and_sparse_streams() {
        let input = json!([user("[[tool]] [[sparse]]"), {"type": "compaction_trigger"}]);
        assert_eq!(
            select(&request(input.clone())),
            Selection::Stream(Scenario::Compaction)
        );
        assert!(sparse(&request(input)));
        assert!(!sparse(&request(json!([user("ping")]))));
        assert_eq!(Scenario::Compaction.name(), "compaction");
    }

    /// Scenario names label the journal.
    #[test]
    fn scenarios_are_named() {
        assert_eq!(Scenario::text("x").name(), "text");
        assert_eq!(Scenario::Cut.name(), "cut");
        let calls = Scenario::Reply {
            text: None,
            pacing: Pacing::Chunks,
            calls: vec![Call {
                name: "f".into(),
                arguments: "{}".into(),
            }],
        };
        assert_eq!(calls.name(), "tool_calls");
    }
}
