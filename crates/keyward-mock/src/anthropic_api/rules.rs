//! What the Anthropic Messages API (`POST /v1/messages`) refuses, and its
//! error object: `{"type": "error", "error": {"type", "message"}}`.
//!
//! The rules are the documented ones, worded as the API words them (a field
//! path, then what is wrong: `max_tokens: Field required`), checked in order
//! and reported one at a time:
//! 1. the body is a JSON object; `model` is a string; `max_tokens` an integer >= 1;
//! 2. `messages` is a non-empty list of `{role: user|assistant, content}`, the
//!    first from the user; content is a string or a list of typed blocks
//!    (`text` with non-empty text, `tool_use` with an id, a name and an object
//!    input, `tool_result` with a `tool_use_id`, ...); no message is empty
//!    except a final assistant one, and a final assistant message (a prefill)
//!    does not end with whitespace;
//! 3. tool use pairs up: every `tool_use` of an assistant message is answered
//!    by a `tool_result` at the start of the next message, and every
//!    `tool_result` answers a `tool_use` of the message before;
//! 4. `system` is a string or a list of text blocks;
//! 5. `tools` are custom tools (`name`, an object `input_schema`; unique names)
//!    or versioned Anthropic tools (`web_search_20250305`, ...); a Chat
//!    Completions tool (`type: function`) is not one;
//! 6. the options have their types and ranges (`temperature` and `top_p` in
//!    0..=1, `stop_sequences` strings, `tool_choice` one of auto/any/tool/none,
//!    `thinking` enabled with `budget_tokens` >= 1024 and below `max_tokens`
//!    (unless the interleaved-thinking beta is on), disabled or adaptive);
//!    thinking allows only `temperature: 1` and no forced tool use.
//!
//! Unknown top-level fields are accepted, as the API accepts them.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

/// The blocks a message may hold.
const BLOCK_TYPES: &[&str] = &[
    "text",
    "image",
    "document",
    "search_result",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "web_search_tool_result",
    "container_upload",
];
const TOOL_CHOICES: &[&str] = &["auto", "any", "tool", "none"];
const THINKING_TYPES: &[&str] = &["enabled", "disabled", "adaptive"];
const MIN_THINKING_BUDGET: i64 = 1024;
const TOOL_NAME_MAX: usize = 128;
const INTERLEAVED_THINKING_BETA: &str = "interleaved-thinking-";

/// An error answer of the Anthropic API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error`, ...
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            kind: "invalid_request_error",
            message: message.into(),
        }
    }

    pub(crate) fn body(&self) -> Value {
        json!({"type": "error", "error": {"type": self.kind, "message": self.message}})
    }
}

type Checked = Result<(), ApiError>;

/// What the request's headers change about the rules.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Betas {
    /// `anthropic-beta: interleaved-thinking-…`: thinking may outspend `max_tokens`.
    pub(crate) interleaved_thinking: bool,
}

impl Betas {
    /// The betas named in an `anthropic-beta` header (a comma-separated list).
    pub(crate) fn from_header(value: Option<&str>) -> Self {
        Self {
            interleaved_thinking: value.is_some_and(|value| {
                value
                    .split(',')
                    .any(|beta| beta.trim().starts_with(INTERLEAVED_THINKING_BETA))
            }),
        }
    }
}

/// Applies the API's rules to a parsed body.
pub(crate) fn check(body: &Value, betas: Betas) -> Checked {
    let Some(request) = body.as_object() else {
        return Err(ApiError::invalid(
            "body: Input should be a valid dictionary",
        ));
    };
    require(request, "model", "model", Kind::String)?;
    let max_tokens = require(request, "max_tokens", "max_tokens", Kind::Integer)?
        .as_i64()
        .unwrap_or_default();
    if max_tokens < 1 {
        return Err(ApiError::invalid(
            "max_tokens: Input should be greater than or equal to 1",
        ));
    }
    check_messages(request)?;
    check_system(request)?;
    check_tools(request)?;
    check_options(request, max_tokens, betas)
}

#[derive(Clone, Copy)]
enum Kind {
    String,
    Integer,
    Number,
    Boolean,
    List,
    Dictionary,
}

impl Kind {
    fn fits(self, value: &Value) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::Integer => value.is_i64() || value.is_u64(),
            Self::Number => value.is_number(),
            Self::Boolean => value.is_boolean(),
            Self::List => value.is_array(),
            Self::Dictionary => value.is_object(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::String => "a valid string",
            Self::Integer => "a valid integer",
            Self::Number => "a valid number",
            Self::Boolean => "a valid boolean",
            Self::List => "a valid list",
            Self::Dictionary => "a valid dictionary",
        }
    }
}

fn wrong_kind(path: &str, kind: Kind) -> ApiError {
    ApiError::invalid(format!("{path}: Input should be {}", kind.name()))
}

/// A required field of `kind`.
fn require<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
    kind: Kind,
) -> Result<&'a Value, ApiError> {
    match object.get(key) {
        None => Err(ApiError::invalid(format!("{path}: Field required"))),
        Some(value) if kind.fits(value) => Ok(value),
        Some(_) => Err(wrong_kind(path, kind)),
    }
}

/// An optional field of `kind` (`null` counts as absent).
fn optional<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
    kind: Kind,
) -> Result<Option<&'a Value>, ApiError> {
    match object.get(key).filter(|value| !value.is_null()) {
        None => Ok(None),
        Some(value) if kind.fits(value) => Ok(Some(value)),
        Some(_) => Err(wrong_kind(path, kind)),
    }
}

fn tag_mismatch(path: &str, tag: &str, expected: &[&str]) -> ApiError {
    let expected: Vec<String> = expected.iter().map(|tag| format!("'{tag}'")).collect();
    ApiError::invalid(format!(
        "{path}: Input tag '{tag}' found using 'type' does not match any of the expected tags: {}",
        expected.join(", ")
    ))
}

/// A message's blocks (a string content is one text block).
struct Message<'a> {
    role: &'a str,
    blocks: Vec<Block<'a>>,
}

struct Block<'a> {
    kind: &'a str,
    object: Option<&'a Map<String, Value>>,
    /// A string content's text.
    text: Option<&'a str>,
}

fn check_messages(request: &Map<String, Value>) -> Checked {
    let list = require(request, "messages", "messages", Kind::List)?;
    let list = list.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        return Err(ApiError::invalid(
            "messages: at least one message is required",
        ));
    }
    let mut messages = Vec::with_capacity(list.len());
    for (index, message) in list.iter().enumerate() {
        messages.push(read_message(message, &format!("messages.{index}"))?);
    }
    if messages.first().is_some_and(|first| first.role != "user") {
        return Err(ApiError::invalid(
            "messages: first message must use the \"user\" role",
        ));
    }
    let last = messages.len() - 1;
    for (index, message) in messages.iter().enumerate() {
        let final_assistant = index == last && message.role == "assistant";
        if message.blocks.is_empty() && !final_assistant {
            return Err(ApiError::invalid(
                "messages: all messages must have non-empty content except for the optional \
                 final assistant message",
            ));
        }
        if message
            .blocks
            .iter()
            .any(|block| block.kind == "text" && block_text(block).is_some_and(str::is_empty))
        {
            return Err(ApiError::invalid(
                "messages: text content blocks must be non-empty",
            ));
        }
        if final_assistant
            && message
                .blocks
                .last()
                .and_then(block_text)
                .is_some_and(|text| text.ends_with(char::is_whitespace))
        {
            return Err(ApiError::invalid(
                "messages: final assistant content cannot end with trailing whitespace",
            ));
        }
    }
    check_tool_pairs(&messages)
}

fn block_text<'a>(block: &Block<'a>) -> Option<&'a str> {
    block.text.or_else(|| {
        block
            .object
            .and_then(|object| object.get("text"))
            .and_then(Value::as_str)
    })
}

fn read_message<'a>(message: &'a Value, path: &str) -> Result<Message<'a>, ApiError> {
    let Some(message) = message.as_object() else {
        return Err(wrong_kind(path, Kind::Dictionary));
    };
    let role_path = format!("{path}.role");
    let role = require(message, "role", &role_path, Kind::String)?
        .as_str()
        .unwrap_or_default();
    if !matches!(role, "user" | "assistant") {
        return Err(ApiError::invalid(format!(
            "{role_path}: Input should be 'user' or 'assistant'"
        )));
    }
    let content_path = format!("{path}.content");
    let blocks = match message.get("content") {
        None => return Err(ApiError::invalid(format!("{content_path}: Field required"))),
        Some(Value::String(text)) if text.is_empty() => Vec::new(),
        Some(Value::String(text)) => vec![Block {
            kind: "text",
            object: None,
            text: Some(text),
        }],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .enumerate()
            .map(|(index, block)| read_block(block, &format!("{content_path}.{index}")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(wrong_kind(&content_path, Kind::List)),
    };
    Ok(Message { role, blocks })
}

fn read_block<'a>(block: &'a Value, path: &str) -> Result<Block<'a>, ApiError> {
    let Some(object) = block.as_object() else {
        return Err(wrong_kind(path, Kind::Dictionary));
    };
    let kind = require(object, "type", &format!("{path}.type"), Kind::String)?
        .as_str()
        .unwrap_or_default();
    if !BLOCK_TYPES.contains(&kind) && !kind.ends_with("_tool_result") {
        return Err(tag_mismatch(path, kind, BLOCK_TYPES));
    }
    let field = |key: &str, kind: Kind| require(object, key, &format!("{path}.{key}"), kind);
    match kind {
        "text" => {
            field("text", Kind::String)?;
        }
        "image" | "document" => {
            field("source", Kind::Dictionary)?;
        }
        "tool_use" | "server_tool_use" => {
            field("id", Kind::String)?;
            field("name", Kind::String)?;
            field("input", Kind::Dictionary)?;
        }
        "tool_result" => {
            field("tool_use_id", Kind::String)?;
            match object.get("content").filter(|content| !content.is_null()) {
                None | Some(Value::String(_) | Value::Array(_)) => {}
                Some(_) => return Err(wrong_kind(&format!("{path}.content"), Kind::List)),
            }
            optional(
                object,
                "is_error",
                &format!("{path}.is_error"),
                Kind::Boolean,
            )?;
        }
        "thinking" => {
            field("thinking", Kind::String)?;
            field("signature", Kind::String)?;
        }
        "redacted_thinking" => {
            field("data", Kind::String)?;
        }
        _ => {}
    }
    Ok(Block {
        kind,
        object: Some(object),
        text: None,
    })
}

fn string_field<'a>(block: &Block<'a>, key: &str) -> Option<&'a str> {
    block
        .object
        .and_then(|object| object.get(key))
        .and_then(Value::as_str)
}

/// Every `tool_use` is answered at the start of the next message, and every
/// `tool_result` answers a `tool_use` of the message before.
fn check_tool_pairs(messages: &[Message<'_>]) -> Checked {
    let mut asked: Vec<&str> = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        // The results that lead the message, before any other block.
        let leading: HashSet<&str> = message
            .blocks
            .iter()
            .take_while(|block| block.kind == "tool_result")
            .filter_map(|block| string_field(block, "tool_use_id"))
            .collect();
        let unanswered: Vec<&str> = asked
            .iter()
            .copied()
            .filter(|id| !leading.contains(id))
            .collect();
        if !unanswered.is_empty() {
            return Err(ApiError::invalid(format!(
                "messages.{}: `tool_use` ids were found without `tool_result` blocks immediately \
                 after: {}. Each `tool_use` block must have a corresponding `tool_result` block \
                 in the next message.",
                index.saturating_sub(1),
                unanswered.join(", ")
            )));
        }
        for (position, block) in message.blocks.iter().enumerate() {
            if block.kind != "tool_result" {
                continue;
            }
            let id = string_field(block, "tool_use_id").unwrap_or_default();
            if !asked.contains(&id) {
                return Err(ApiError::invalid(format!(
                    "messages.{index}.content.{position}: unexpected `tool_use_id` found in \
                     `tool_result` blocks: {id}. Each `tool_result` block must have a \
                     corresponding `tool_use` block in the previous message."
                )));
            }
        }
        asked = message
            .blocks
            .iter()
            .filter(|block| block.kind == "tool_use")
            .filter_map(|block| string_field(block, "id"))
            .collect();
    }
    Ok(())
}

fn check_system(request: &Map<String, Value>) -> Checked {
    match request.get("system").filter(|system| !system.is_null()) {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(blocks)) => {
            for (index, block) in blocks.iter().enumerate() {
                let path = format!("system.{index}");
                let Some(block) = block.as_object() else {
                    return Err(wrong_kind(&path, Kind::Dictionary));
                };
                let kind = require(block, "type", &format!("{path}.type"), Kind::String)?;
                if kind != "text" {
                    return Err(ApiError::invalid(format!(
                        "{path}.type: Input should be 'text'"
                    )));
                }
                require(block, "text", &format!("{path}.text"), Kind::String)?;
            }
            Ok(())
        }
        Some(_) => Err(wrong_kind("system", Kind::String)),
    }
}

/// A versioned Anthropic tool type: lowercase words and an 8-digit date.
fn is_versioned_tool(kind: &str) -> bool {
    kind.rsplit_once('_').is_some_and(|(name, date)| {
        !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            && date.len() == 8
            && date.bytes().all(|b| b.is_ascii_digit())
    })
}

fn check_tools(request: &Map<String, Value>) -> Checked {
    let Some(tools) = optional(request, "tools", "tools", Kind::List)? else {
        return Ok(());
    };
    let mut names = HashSet::new();
    for (index, tool) in tools.as_array().into_iter().flatten().enumerate() {
        let path = format!("tools.{index}");
        let Some(tool) = tool.as_object() else {
            return Err(wrong_kind(&path, Kind::Dictionary));
        };
        let kind = match tool.get("type").filter(|kind| !kind.is_null()) {
            None => "custom",
            Some(Value::String(kind)) => kind.as_str(),
            Some(_) => return Err(wrong_kind(&format!("{path}.type"), Kind::String)),
        };
        let name = if kind == "custom" {
            let name = check_custom_tool(tool, &format!("{path}.custom"))?;
            Some(name)
        } else if is_versioned_tool(kind) {
            tool.get("name").and_then(Value::as_str)
        } else {
            return Err(tag_mismatch(
                &path,
                kind,
                &[
                    "custom",
                    "bash_20250124",
                    "text_editor_20250728",
                    "web_search_20250305",
                ],
            ));
        };
        if let Some(name) = name {
            if !names.insert(name) {
                return Err(ApiError::invalid("tools: Tool names must be unique."));
            }
        }
    }
    Ok(())
}

fn check_custom_tool<'a>(tool: &'a Map<String, Value>, path: &str) -> Result<&'a str, ApiError> {
    let name = require(tool, "name", &format!("{path}.name"), Kind::String)?
        .as_str()
        .unwrap_or_default();
    let well_formed = (1..=TOOL_NAME_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !well_formed {
        return Err(ApiError::invalid(format!(
            "{path}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,{TOOL_NAME_MAX}}}$'"
        )));
    }
    optional(
        tool,
        "description",
        &format!("{path}.description"),
        Kind::String,
    )?;
    let schema_path = format!("{path}.input_schema");
    let schema = require(tool, "input_schema", &schema_path, Kind::Dictionary)?;
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(ApiError::invalid(format!(
            "{schema_path}.type: Input should be 'object'"
        )));
    }
    Ok(name)
}

fn check_options(request: &Map<String, Value>, max_tokens: i64, betas: Betas) -> Checked {
    optional(request, "stream", "stream", Kind::Boolean)?;
    for key in ["temperature", "top_p"] {
        if let Some(value) = optional(request, key, key, Kind::Number)?.and_then(Value::as_f64) {
            if value < 0.0 {
                return Err(ApiError::invalid(format!(
                    "{key}: Input should be greater than or equal to 0"
                )));
            }
            if value > 1.0 {
                return Err(ApiError::invalid(format!(
                    "{key}: Input should be less than or equal to 1"
                )));
            }
        }
    }
    if let Some(top_k) = optional(request, "top_k", "top_k", Kind::Integer)? {
        if top_k.as_i64().is_some_and(|k| k < 0) {
            return Err(ApiError::invalid(
                "top_k: Input should be greater than or equal to 0",
            ));
        }
    }
    if let Some(stops) = optional(request, "stop_sequences", "stop_sequences", Kind::List)? {
        for (index, stop) in stops.as_array().into_iter().flatten().enumerate() {
            if !stop.is_string() {
                return Err(wrong_kind(&format!("stop_sequences.{index}"), Kind::String));
            }
        }
    }
    if let Some(metadata) =
        optional(request, "metadata", "metadata", Kind::Dictionary)?.and_then(Value::as_object)
    {
        optional(metadata, "user_id", "metadata.user_id", Kind::String)?;
    }
    let forced_tool = check_tool_choice(request)?;
    check_thinking(request, max_tokens, forced_tool, betas)
}

/// Checks `tool_choice`; whether it forces tool use (`any` or `tool`).
fn check_tool_choice(request: &Map<String, Value>) -> Result<bool, ApiError> {
    let Some(choice) = optional(request, "tool_choice", "tool_choice", Kind::Dictionary)?
        .and_then(Value::as_object)
    else {
        return Ok(false);
    };
    let kind = require(choice, "type", "tool_choice.type", Kind::String)?
        .as_str()
        .unwrap_or_default();
    if !TOOL_CHOICES.contains(&kind) {
        return Err(tag_mismatch("tool_choice", kind, TOOL_CHOICES));
    }
    if kind == "tool" {
        require(choice, "name", "tool_choice.tool.name", Kind::String)?;
    }
    let parallel_path = format!("tool_choice.{kind}.disable_parallel_tool_use");
    optional(
        choice,
        "disable_parallel_tool_use",
        &parallel_path,
        Kind::Boolean,
    )?;
    Ok(matches!(kind, "any" | "tool"))
}

fn check_thinking(
    request: &Map<String, Value>,
    max_tokens: i64,
    forced_tool: bool,
    betas: Betas,
) -> Checked {
    let Some(thinking) =
        optional(request, "thinking", "thinking", Kind::Dictionary)?.and_then(Value::as_object)
    else {
        return Ok(());
    };
    let kind = require(thinking, "type", "thinking.type", Kind::String)?
        .as_str()
        .unwrap_or_default();
    if !THINKING_TYPES.contains(&kind) {
        return Err(tag_mismatch("thinking", kind, THINKING_TYPES));
    }
    if kind == "disabled" {
        return Ok(());
    }
    if kind == "enabled" {
        let budget = require(
            thinking,
            "budget_tokens",
            "thinking.enabled.budget_tokens",
            Kind::Integer,
        )?
        .as_i64()
        .unwrap_or_default();
        if budget < MIN_THINKING_BUDGET {
            return Err(ApiError::invalid(format!(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to \
                 {MIN_THINKING_BUDGET}"
            )));
        }
        if budget >= max_tokens && !betas.interleaved_thinking {
            return Err(ApiError::invalid(
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our \
                 documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
            ));
        }
    }
    let temperature = request.get("temperature").and_then(Value::as_f64);
    if temperature.is_some_and(|t| t != 1.0) {
        return Err(ApiError::invalid(
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our \
             documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility",
        ));
    }
    if forced_tool {
        return Err(ApiError::invalid(
            "Thinking may not be enabled when tool_choice forces tool use.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": "ping"}],
        })
    }

    fn with(key: &str, value: Value) -> Value {
        let mut body = base();
        body[key] = value;
        body
    }

    fn refused(body: &Value) -> String {
        refused_with(body, Betas::default())
    }

    fn refused_with(body: &Value, betas: Betas) -> String {
        match check(body, betas) {
            Ok(()) => panic!("accepted, but the API refuses it: {body}"),
            Err(error) => {
                assert_eq!((error.status, error.kind), (400, "invalid_request_error"));
                error.message
            }
        }
    }

    fn accepted(body: &Value) {
        if let Err(error) = check(body, Betas::default()) {
            panic!("refused with {:?}: {body}", error.message);
        }
    }

    fn tool_turns() -> Value {
        json!([
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "text", "text": "thanks"},
            ]},
        ])
    }

    /// The error body has Anthropic's shape.
    #[test]
    fn errors_have_anthropics_shape() {
        assert_eq!(
            ApiError::invalid("max_tokens: Field required").body(),
            json!({"type": "error", "error": {
                "type": "invalid_request_error", "message": "max_tokens: Field required",
            }})
        );
    }

    /// Ordinary requests pass: tools, a tool loop, system blocks, a prefill,
    /// thinking, unknown top-level fields.
    #[test]
    fn documented_requests_pass() {
        accepted(&base());
        let mut body = with("messages", tool_turns());
        body["system"] =
            json!([{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]);
        body["tools"] = json!([
            {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        ]);
        body["tool_choice"] = json!({"type": "auto"});
        body["stream"] = json!(true);
        body["stop_sequences"] = json!(["STOP"]);
        body["metadata"] = json!({"user_id": "u-1"});
        body["context_management"] = json!({"edits": []});
        body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
        body["max_tokens"] = json!(2048);
        accepted(&body);
        accepted(&with(
            "messages",
            json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "The answer is"}]),
        ));
        accepted(&with(
            "messages",
            json!([{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}]),
        ));
    }

    /// model, max_tokens and messages are required, with their types.
    #[test]
    fn required_fields() {
        let mut body = base();
        body.as_object_mut().map(|b| b.remove("max_tokens"));
        assert_eq!(refused(&body), "max_tokens: Field required");
        body = base();
        body.as_object_mut().map(|b| b.remove("model"));
        assert_eq!(refused(&body), "model: Field required");
        assert_eq!(
            refused(&with("max_tokens", json!("5"))),
            "max_tokens: Input should be a valid integer"
        );
        assert_eq!(
            refused(&with("max_tokens", json!(0))),
            "max_tokens: Input should be greater than or equal to 1"
        );
        assert_eq!(
            refused(&with("messages", json!({}))),
            "messages: Input should be a valid list"
        );
        assert_eq!(
            refused(&with("messages", json!([]))),
            "messages: at least one message is required"
        );
        assert_eq!(
            refused(&json!("x")),
            "body: Input should be a valid dictionary"
        );
    }

    /// Roles, the first message, empty contents and trailing whitespace.
    #[test]
    fn message_rules() {
        assert_eq!(
            refused(&with(
                "messages",
                json!([{"role": "system", "content": "x"}])
            )),
            "messages.0.role: Input should be 'user' or 'assistant'"
        );
        assert_eq!(
            refused(&with(
                "messages",
                json!([{"role": "assistant", "content": "x"}])
            )),
            "messages: first message must use the \"user\" role"
        );
        assert_eq!(
            refused(&with("messages", json!([{"role": "user", "content": ""}]))),
            "messages: all messages must have non-empty content except for the optional final \
             assistant message"
        );
        assert_eq!(
            refused(&with(
                "messages",
                json!([{"role": "user", "content": [{"type": "text", "text": ""}]}])
            )),
            "messages: text content blocks must be non-empty"
        );
        assert_eq!(
            refused(&with(
                "messages",
                json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "So "}])
            )),
            "messages: final assistant content cannot end with trailing whitespace"
        );
        assert_eq!(
            refused(&with("messages", json!([{"role": "user"}]))),
            "messages.0.content: Field required"
        );
        assert_eq!(
            refused(&with(
                "messages",
                json!([{"role": "user", "content": [{"type": "input_text", "text": "x"}]}])
            )),
            "messages.0.content.0: Input tag 'input_text' found using 'type' does not match any \
             of the expected tags: 'text', 'image', 'document', 'search_result', 'thinking', \
             'redacted_thinking', 'tool_use', 'tool_result', 'server_tool_use', \
             'web_search_tool_result', 'container_upload'"
        );
    }

    /// tool_use and tool_result must pair up across adjacent messages, results first.
    #[test]
    fn tool_blocks_pair_up() {
        let mut turns = tool_turns();
        turns[2]["content"] = json!([{"type": "text", "text": "no result"}]);
        assert_eq!(
            refused(&with("messages", turns)),
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately \
             after: toolu_1. Each `tool_use` block must have a corresponding `tool_result` block \
             in the next message."
        );
        let mut turns = tool_turns();
        turns[2]["content"] = json!([
            {"type": "text", "text": "first"},
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
        ]);
        assert!(refused(&with("messages", turns)).starts_with("messages.1: `tool_use` ids"));
        let mut turns = tool_turns();
        turns[2]["content"][0]["tool_use_id"] = json!("toolu_9");
        assert!(refused(&with("messages", turns.clone())).starts_with("messages.1: `tool_use`"));
        turns[1]["content"] = json!([{"type": "text", "text": "no call"}]);
        assert_eq!(
            refused(&with("messages", turns)),
            "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: \
             toolu_9. Each `tool_result` block must have a corresponding `tool_use` block in the \
             previous message."
        );
        let mut turns = tool_turns();
        turns[1]["content"][1]["input"] = json!("{}");
        assert_eq!(
            refused(&with("messages", turns)),
            "messages.1.content.1.input: Input should be a valid dictionary"
        );
    }

    /// Tools are custom (name, object schema, unique) or versioned; never Chat-shaped.
    #[test]
    fn tool_rules() {
        assert_eq!(
            refused(&with(
                "tools",
                json!([{"type": "function", "function": {"name": "f", "parameters": {}}}])
            )),
            "tools.0: Input tag 'function' found using 'type' does not match any of the expected \
             tags: 'custom', 'bash_20250124', 'text_editor_20250728', 'web_search_20250305'"
        );
        assert_eq!(
            refused(&with("tools", json!([{"name": "f"}]))),
            "tools.0.custom.input_schema: Field required"
        );
        assert_eq!(
            refused(&with(
                "tools",
                json!([{"name": "bad name", "input_schema": {"type": "object"}}])
            )),
            "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'"
        );
        assert_eq!(
            refused(&with(
                "tools",
                json!([
                    {"name": "f", "input_schema": {"type": "object"}},
                    {"type": "custom", "name": "f", "input_schema": {"type": "object"}},
                ])
            )),
            "tools: Tool names must be unique."
        );
        assert_eq!(
            refused(&with("tool_choice", json!({"type": "required"}))),
            "tool_choice: Input tag 'required' found using 'type' does not match any of the \
             expected tags: 'auto', 'any', 'tool', 'none'"
        );
        assert_eq!(
            refused(&with("tool_choice", json!({"type": "tool"}))),
            "tool_choice.tool.name: Field required"
        );
    }

    /// Sampling ranges and thinking's constraints, with the interleaved-thinking exemption.
    #[test]
    fn option_rules() {
        assert_eq!(
            refused(&with("temperature", json!(1.5))),
            "temperature: Input should be less than or equal to 1"
        );
        assert_eq!(
            refused(&with("stop_sequences", json!([1]))),
            "stop_sequences.0: Input should be a valid string"
        );
        assert_eq!(
            refused(&with("stream", json!("yes"))),
            "stream: Input should be a valid boolean"
        );
        let thinking = with("thinking", json!({"type": "enabled", "budget_tokens": 512}));
        assert_eq!(
            refused(&thinking),
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        );
        let big = with(
            "thinking",
            json!({"type": "enabled", "budget_tokens": 4096}),
        );
        assert!(refused(&big).starts_with("`max_tokens` must be greater than"));
        let betas = Betas::from_header(Some(
            "fine-grained-tool-streaming-2025-05-14, interleaved-thinking-2025-05-14",
        ));
        assert!(check(&big, betas).is_ok());
        let mut hot = with("thinking", json!({"type": "adaptive"}));
        hot["temperature"] = json!(0.5);
        assert!(refused(&hot).starts_with("`temperature` may only be set to 1"));
        let mut forced = with("thinking", json!({"type": "adaptive"}));
        forced["tool_choice"] = json!({"type": "any"});
        assert_eq!(
            refused(&forced),
            "Thinking may not be enabled when tool_choice forces tool use."
        );
        accepted(&with("thinking", json!({"type": "disabled"})));
    }
}
