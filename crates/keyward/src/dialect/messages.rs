//! Anthropic Messages (`POST /v1/messages`), the dialect of the `anthropic` SDKs and of Claude
//! Code, translated to the public Responses API and back.
//!
//! Requests: `system` and system-role messages become system message items; each message's
//! blocks become Responses items in the order the Responses API wants them (a user turn's tool
//! results first, right after the calls they answer; an assistant turn's reasoning, then its text,
//! then its calls). Claude Code sends more than the public docs show (`context_management`,
//! `output_config`, deferred tools, a billing header in `system`, system-role messages): all of it
//! is accepted, what has no Responses equivalent is dropped and reported in `dropped`, and only
//! input that cannot be read at all is refused.
//!
//! Reasoning: the upstream's reasoning is encrypted, and must go back upstream on later turns to
//! keep the model's chain of thought across tool calls. It travels in the thinking block's
//! `signature` as `kwsig1.<encrypted_content>`, which Anthropic clients keep and send back
//! verbatim; only signatures with that prefix become reasoning items again (Anthropic's own
//! signatures, and `redacted_thinking`, mean nothing upstream and are dropped). Thinking blocks are
//! shown only when the request enabled thinking (`enabled` or `adaptive`), as Anthropic does;
//! without it the reasoning is neither shown nor carried to the next turn, and the model reasons
//! again from the visible conversation.
//!
//! Stop sequences, which the Responses API lacks, are applied here to the answer's text.
//!
//! Where Anthropic and the Responses API differ in more than names:
//! - Function tools are sent with `strict: false` (unless the tool asked for `strict`): Responses
//!   otherwise holds them to OpenAI's strict schema subset, which Anthropic schemas do not follow.
//! - `output_config.effort` sets the reasoning effort and `output_config.format` (or the older
//!   `output_format`) the structured output; only its other keys are reported as dropped.
//! - Anthropic-run tools other than web search (bash, text editor, computer use, code
//!   execution) and content only Anthropic can serve (server tool blocks, file ids, tool
//!   references) have nothing to run them upstream: dropped and reported.
//! - Usage: Anthropic's `input_tokens` excludes cache reads, reported apart; nothing is ever
//!   written to a cache as Anthropic bills it, so `cache_creation_input_tokens` is 0.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::count_tokens::count_text;
use super::responses::{
    event_type, message_item, output_items, reasoning_summary, text_part, Ending, StreamFailure,
    Usage,
};
use super::stop::StopMatcher;
use super::{
    json_kind, model_field, parse_object, stream_flag, write_frame, Answer, Flow, Invalid,
    StreamTranslator, Translated,
};

/// Marks a thinking block's signature as keyward's: the upstream's encrypted reasoning follows.
const SIGNATURE_PREFIX: &str = "kwsig1.";
/// How Claude Code's first system block starts: billing metadata for Anthropic, not prompt text.
const BILLING_HEADER: &str = "x-anthropic-billing-header:";
/// Request fields read by `translate`; any other field is reported as dropped.
const READ_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "stream",
    "max_tokens",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "output_format",
    "stop_sequences",
    "metadata",
];

/// Translates a Messages request into a Responses request.
pub(crate) fn translate(body: &[u8]) -> Result<Translated, Invalid> {
    let request = parse_object(body)?;
    let model = model_field(&request)?;
    let stream = stream_flag(&request)?;
    let mut dropped = Dropped::default();

    let mut input = Vec::new();
    if let Some(system) = request.get("system").filter(|s| !s.is_null()) {
        let parts = system_parts(system, "system", &mut dropped)?;
        if !parts.is_empty() {
            input.push(message_item("system", parts));
        }
    }
    convert_messages(request.get("messages"), &mut input, &mut dropped)?;

    let mut body = Map::new();
    body.insert("model".into(), Value::String(model.clone()));
    body.insert("input".into(), Value::Array(input));
    body.insert("stream".into(), Value::Bool(stream));
    let mut renamed = Vec::new();
    match request.get("max_tokens") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.is_u64() => {
            body.insert("max_output_tokens".into(), Value::Number(n.clone()));
            renamed.push(("max_output_tokens", "max_tokens"));
        }
        Some(_) => dropped.add("max_tokens"),
    }
    for name in ["temperature", "top_p"] {
        match request.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => {
                body.insert(name.into(), Value::Number(n.clone()));
            }
            Some(_) => dropped.add(name),
        }
    }

    let tools = convert_tools(request.get("tools"), &mut dropped)?;
    let has_tools = !tools.is_empty();
    if has_tools {
        body.insert("tools".into(), Value::Array(tools));
    }
    convert_tool_choice(
        request.get("tool_choice"),
        has_tools,
        &mut body,
        &mut dropped,
    );

    let thinking = Thinking::of(request.get("thinking"), &mut dropped);
    let config = OutputConfig::of(&request, &mut dropped);
    // `display: "omitted"` (Claude Code's default) wants thinking blocks without their text:
    // the signature alone carries the reasoning to the next turn, so no summary is asked for.
    let summarised = request
        .get("thinking")
        .and_then(|t| t.get("display"))
        .and_then(Value::as_str)
        != Some("omitted");
    if let Some(reasoning) = reasoning(thinking, config.effort, summarised) {
        body.insert("reasoning".into(), reasoning);
    }
    if let Some(format) = config.format {
        body.insert("text".into(), json!({ "format": format }));
    }
    let stops = stop_sequences(request.get("stop_sequences"), &mut dropped);
    if let Some(key) = cache_key(request.get("metadata"), &mut dropped) {
        body.insert("prompt_cache_key".into(), Value::String(key));
    }
    for (name, value) in &request {
        if !READ_FIELDS.contains(&name.as_str()) && !value.is_null() {
            dropped.add(name.clone());
        }
    }

    Ok(Translated {
        body,
        model: model.clone(),
        stream,
        dropped: dropped.0,
        renamed,
        answer: Some(Box::new(MessagesAnswer {
            model,
            thinking: thinking.shown(),
            stops,
        })),
    })
}

/// Client fields (and content kinds) dropped, each named once, in the order met.
#[derive(Debug, Default)]
struct Dropped(Vec<String>);

impl Dropped {
    fn add(&mut self, name: impl Into<String>) {
        let name = name.into();
        if !self.0.contains(&name) {
            self.0.push(name);
        }
    }
}

/// A string field of an object.
fn str_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

/// A string field that must be there and not be empty.
fn required_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
    what: &str,
) -> Result<&'a str, Invalid> {
    str_field(object, key)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Invalid::at(
                format!("{path}.{key}"),
                format!("{what} needs a non-empty string `{key}`"),
            )
        })
}

/// System text (`system`, or a system-role message's content): a string or text blocks, as
/// `input_text` parts. Claude Code's billing header block is left out.
fn system_parts(content: &Value, path: &str, dropped: &mut Dropped) -> Result<Vec<Value>, Invalid> {
    let keep = |text: &str| !text.is_empty() && !text.starts_with(BILLING_HEADER);
    let mut parts = Vec::new();
    match content {
        Value::String(text) => {
            if keep(text) {
                parts.push(text_part("system", text));
            }
        }
        Value::Array(blocks) => {
            for (k, block) in blocks.iter().enumerate() {
                let block_path = format!("{path}.{k}");
                let Value::Object(block) = block else {
                    return Err(Invalid::at(
                        block_path,
                        format!(
                            "a system block must be an object like {{\"type\":\"text\",\"text\":\"...\"}}, not {}",
                            json_kind(block)
                        ),
                    ));
                };
                match str_field(block, "type") {
                    Some("text") => {
                        let text = str_field(block, "text").ok_or_else(|| {
                            Invalid::at(
                                format!("{block_path}.text"),
                                "a text block needs a string `text`",
                            )
                        })?;
                        if keep(text) {
                            parts.push(text_part("system", text));
                        }
                    }
                    other => dropped.add(format!("system.{}", other.unwrap_or("untyped"))),
                }
            }
        }
        other => {
            return Err(Invalid::at(
                path,
                format!(
                    "system text must be a string or an array of text blocks, not {}",
                    json_kind(other)
                ),
            ))
        }
    }
    Ok(parts)
}

/// One content block of a message, read enough to know where it goes.
enum Block<'a> {
    Text(&'a str),
    Image(&'a Map<String, Value>),
    Document(&'a Map<String, Value>),
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Option<&'a Value>,
    },
    ToolResult {
        call_id: &'a str,
        content: Option<&'a Value>,
        is_error: bool,
    },
    /// Thinking keyward produced: its summary and the upstream's encrypted reasoning.
    Thinking {
        text: &'a str,
        encrypted: &'a str,
    },
    /// Thinking only Anthropic can read (its own signature, or `redacted_thinking`).
    ForeignThinking,
    Other(&'a str),
}

fn parse_block<'a>(block: &'a Value, path: &str) -> Result<Block<'a>, Invalid> {
    let Value::Object(map) = block else {
        return Err(Invalid::at(
            path,
            format!(
                "a content block must be an object with a `type`, not {}",
                json_kind(block)
            ),
        ));
    };
    let kind = str_field(map, "type").ok_or_else(|| {
        Invalid::at(
            format!("{path}.type"),
            "a content block needs a string `type` (text, image, tool_use, tool_result, ...)",
        )
    })?;
    Ok(match kind {
        "text" => Block::Text(str_field(map, "text").ok_or_else(|| {
            Invalid::at(format!("{path}.text"), "a text block needs a string `text`")
        })?),
        "image" => Block::Image(map),
        "document" => Block::Document(map),
        "tool_use" => Block::ToolUse {
            id: required_str(map, "id", path, "a tool_use block")?,
            name: required_str(map, "name", path, "a tool_use block")?,
            input: map.get("input"),
        },
        "tool_result" => Block::ToolResult {
            call_id: required_str(map, "tool_use_id", path, "a tool_result block")?,
            content: map.get("content"),
            is_error: map.get("is_error") == Some(&Value::Bool(true)),
        },
        "thinking" => match str_field(map, "signature")
            .and_then(|s| s.strip_prefix(SIGNATURE_PREFIX))
            .filter(|encrypted| !encrypted.is_empty())
        {
            Some(encrypted) => Block::Thinking {
                text: str_field(map, "thinking").unwrap_or(""),
                encrypted,
            },
            None => Block::ForeignThinking,
        },
        "redacted_thinking" => Block::ForeignThinking,
        other => Block::Other(other),
    })
}

/// `messages`, appended to `input` in order.
fn convert_messages(
    messages: Option<&Value>,
    input: &mut Vec<Value>,
    dropped: &mut Dropped,
) -> Result<(), Invalid> {
    let messages = super::non_empty_array("messages", messages, "{\"role\", \"content\"} objects")?;
    for (i, message) in messages.iter().enumerate() {
        let path = format!("messages.{i}");
        let Value::Object(message) = message else {
            return Err(Invalid::at(
                path,
                format!(
                    "each message must be an object with `role` and `content`, not {}",
                    json_kind(message)
                ),
            ));
        };
        let content_path = format!("{path}.content");
        let role = match str_field(message, "role") {
            Some(role @ ("user" | "assistant" | "system")) => role,
            _ => {
                return Err(Invalid::at(
                    format!("{path}.role"),
                    "a message's `role` must be \"user\" or \"assistant\" (or \"system\")",
                ))
            }
        };
        let content = message.get("content").unwrap_or(&Value::Null);
        if role == "system" {
            let parts = system_parts(content, &content_path, dropped)?;
            if !parts.is_empty() {
                input.push(message_item("system", parts));
            }
            continue;
        }
        let blocks = match content {
            Value::String(text) => vec![(content_path, Block::Text(text))],
            Value::Array(blocks) => blocks
                .iter()
                .enumerate()
                .map(|(k, block)| {
                    let block_path = format!("{content_path}.{k}");
                    parse_block(block, &block_path).map(|block| (block_path, block))
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => {
                return Err(Invalid::at(
                    content_path,
                    format!(
                    "a message's `content` must be a string or an array of content blocks, not {}",
                    json_kind(other)
                ),
                ))
            }
        };
        if role == "user" {
            user_message(blocks, input, dropped)?;
        } else {
            assistant_message(blocks, input, dropped)?;
        }
    }
    Ok(())
}

/// A user turn: its tool results first (the Responses API wants them right after the calls they
/// answer, which ended the previous turn), then one message with everything else.
fn user_message(
    blocks: Vec<(String, Block<'_>)>,
    input: &mut Vec<Value>,
    dropped: &mut Dropped,
) -> Result<(), Invalid> {
    let mut parts = Vec::new();
    for (path, block) in blocks {
        match block {
            Block::ToolResult {
                call_id,
                content,
                is_error,
            } => input.push(json!({
                "type": "function_call_output",
                "call_id": call_id,
                "output": tool_output(content, is_error, &path, dropped)?,
            })),
            Block::Text(text) => {
                if !text.is_empty() {
                    parts.push(text_part("user", text));
                }
            }
            Block::Image(image) => parts.extend(image_part(image, &path, dropped)?),
            Block::Document(document) => parts.extend(document_parts(document, &path, dropped)?),
            Block::ToolUse { .. } => {
                return Err(Invalid::at(
                    path,
                    "a tool_use block belongs in an assistant message; the user answers a call with a tool_result block",
                ))
            }
            // Thinking belongs to the assistant's turns: there is nothing to carry here.
            Block::Thinking { .. } | Block::ForeignThinking => {}
            Block::Other(kind) => dropped.add(format!("messages.content.{kind}")),
        }
    }
    if !parts.is_empty() {
        input.push(message_item("user", parts));
    }
    Ok(())
}

/// An assistant turn: its reasoning, then its text, then its tool calls, in the order the model
/// produced them.
fn assistant_message(
    blocks: Vec<(String, Block<'_>)>,
    input: &mut Vec<Value>,
    dropped: &mut Dropped,
) -> Result<(), Invalid> {
    let mut reasoning = Vec::new();
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    for (path, block) in blocks {
        match block {
            Block::Text(text) => {
                if !text.is_empty() {
                    parts.push(text_part("assistant", text));
                }
            }
            Block::ToolUse { id, name, input } => calls.push(json!({
                "type": "function_call",
                "call_id": id,
                "name": name,
                "arguments": match input {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(input) => input.to_string(),
                },
            })),
            Block::Thinking { text, encrypted } => {
                let summary = if text.is_empty() {
                    Vec::new()
                } else {
                    vec![json!({"type": "summary_text", "text": text})]
                };
                reasoning.push(json!({
                    "type": "reasoning",
                    "summary": summary,
                    "encrypted_content": encrypted,
                }));
            }
            // Unverifiable upstream: the model reasons afresh instead.
            Block::ForeignThinking => {}
            Block::ToolResult { .. } => {
                return Err(Invalid::at(
                    path,
                    "a tool_result block belongs in a user message, after the assistant's tool_use",
                ))
            }
            // The model's own turns hold only text upstream.
            Block::Image(_) => dropped.add("messages.content.image (assistant)"),
            Block::Document(_) => dropped.add("messages.content.document (assistant)"),
            Block::Other(kind) => dropped.add(format!("messages.content.{kind}")),
        }
    }
    input.extend(reasoning);
    if !parts.is_empty() {
        input.push(message_item("assistant", parts));
    }
    input.extend(calls);
    Ok(())
}

/// A block's `source` object.
fn source_of<'a>(
    block: &'a Map<String, Value>,
    path: &str,
    kind: &str,
) -> Result<&'a Map<String, Value>, Invalid> {
    block
        .get("source")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            Invalid::at(
                format!("{path}.source"),
                format!("an {kind} block needs a `source` object (base64 data or a url)"),
            )
        })
}

/// An image block as an `input_image` part; `None` for a source the upstream cannot reach (an
/// Anthropic file id).
fn image_part(
    image: &Map<String, Value>,
    path: &str,
    dropped: &mut Dropped,
) -> Result<Option<Value>, Invalid> {
    let source = source_of(image, path, "image")?;
    let source_path = format!("{path}.source");
    let url = match str_field(source, "type") {
        Some("base64") => {
            let media_type =
                required_str(source, "media_type", &source_path, "a base64 image source")?;
            let data = required_str(source, "data", &source_path, "a base64 image source")?;
            format!("data:{media_type};base64,{data}")
        }
        Some("url") => required_str(source, "url", &source_path, "a url image source")?.into(),
        other => {
            dropped.add(format!(
                "messages.content.image.source.{}",
                other.unwrap_or("untyped")
            ));
            return Ok(None);
        }
    };
    Ok(Some(json!({"type": "input_image", "image_url": url})))
}

/// A document block as parts: a PDF (or any base64 file) as `input_file`, text as `input_text`.
fn document_parts(
    document: &Map<String, Value>,
    path: &str,
    dropped: &mut Dropped,
) -> Result<Vec<Value>, Invalid> {
    let source = source_of(document, path, "document")?;
    let source_path = format!("{path}.source");
    let title = str_field(document, "title").filter(|t| !t.is_empty());
    let mut parts = Vec::new();
    match str_field(source, "type") {
        Some("base64") => {
            let data = required_str(source, "data", &source_path, "a base64 document source")?;
            let media_type = str_field(source, "media_type").unwrap_or("application/pdf");
            // The upstream tells file types by their name, so a PDF's name ends in `.pdf`.
            let filename = match title {
                Some(title)
                    if media_type != "application/pdf"
                        || title.to_ascii_lowercase().ends_with(".pdf") =>
                {
                    title.to_string()
                }
                Some(title) => format!("{title}.pdf"),
                None => "document.pdf".to_string(),
            };
            parts.push(json!({
                "type": "input_file",
                "file_data": format!("data:{media_type};base64,{data}"),
                "filename": filename,
            }));
        }
        Some("text") => {
            let data = str_field(source, "data").ok_or_else(|| {
                Invalid::at(
                    format!("{source_path}.data"),
                    "a text document source needs a string `data`",
                )
            })?;
            parts.push(text_part("user", data));
        }
        Some("url") => {
            let url = required_str(source, "url", &source_path, "a url document source")?;
            parts.push(json!({"type": "input_file", "file_url": url}));
        }
        Some("content") => match source.get("content") {
            Some(Value::String(text)) => parts.push(text_part("user", text)),
            Some(Value::Array(blocks)) => {
                for block in blocks {
                    match block.get("type").and_then(Value::as_str) {
                        Some("text") => parts.push(text_part(
                            "user",
                            block.get("text").and_then(Value::as_str).unwrap_or(""),
                        )),
                        other => dropped.add(format!(
                            "messages.content.document.source.content.{}",
                            other.unwrap_or("untyped")
                        )),
                    }
                }
            }
            _ => dropped.add("messages.content.document.source.content"),
        },
        other => dropped.add(format!(
            "messages.content.document.source.{}",
            other.unwrap_or("untyped")
        )),
    }
    Ok(parts)
}

/// A tool result's `output`: its text (blocks joined with newlines), or, when it holds images or
/// files, an array of input parts.
fn tool_output(
    content: Option<&Value>,
    is_error: bool,
    path: &str,
    dropped: &mut Dropped,
) -> Result<Value, Invalid> {
    let mut parts = Vec::new();
    match content {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => parts.push(text_part("user", text)),
        Some(Value::Array(blocks)) => {
            for (k, block) in blocks.iter().enumerate() {
                let block_path = format!("{path}.content.{k}");
                let kind = block.get("type").and_then(Value::as_str);
                if !matches!(kind, Some("text" | "image" | "document")) && block.is_object() {
                    // `tool_reference` (tool search), `search_result`, ...
                    dropped.add(format!(
                        "messages.content.tool_result.{}",
                        kind.unwrap_or("untyped")
                    ));
                    continue;
                }
                match parse_block(block, &block_path)? {
                    Block::Text(text) => parts.push(text_part("user", text)),
                    Block::Image(image) => parts.extend(image_part(image, &block_path, dropped)?),
                    Block::Document(document) => {
                        parts.extend(document_parts(document, &block_path, dropped)?)
                    }
                    _ => {}
                }
            }
        }
        Some(other) => {
            return Err(Invalid::at(
                format!("{path}.content"),
                format!(
                    "a tool_result's `content` must be a string or an array of blocks, not {}",
                    json_kind(other)
                ),
            ))
        }
    }
    // A Responses tool output has no error flag: the model learns of the failure from the text.
    if is_error {
        match parts
            .iter_mut()
            .find(|p| p["type"] == "input_text")
            .and_then(|p| p.get_mut("text"))
        {
            Some(Value::String(text)) if !text.is_empty() => *text = format!("Error: {text}"),
            Some(text) => *text = Value::String("Error".into()),
            None => parts.insert(0, text_part("user", "Error")),
        }
    }
    if parts.iter().all(|p| p["type"] == "input_text") {
        let texts: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        Ok(Value::String(texts.join("\n")))
    } else {
        Ok(Value::Array(parts))
    }
}

/// `tools` as Responses tools. Custom tools (deferred ones included) become functions; Anthropic's
/// web search becomes the upstream's; other Anthropic-run tools (bash, text editor, computer use,
/// code execution) have no upstream equivalent and are dropped.
fn convert_tools(tools: Option<&Value>, dropped: &mut Dropped) -> Result<Vec<Value>, Invalid> {
    let tools = match tools {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(other) => {
            return Err(Invalid::at(
                "tools",
                format!(
                    "`tools` must be an array of tools, not {}",
                    json_kind(other)
                ),
            ))
        }
    };
    let mut converted = Vec::new();
    for (t, tool) in tools.iter().enumerate() {
        let path = format!("tools.{t}");
        let Value::Object(tool) = tool else {
            return Err(Invalid::at(
                path,
                format!("a tool must be an object, not {}", json_kind(tool)),
            ));
        };
        match str_field(tool, "type") {
            None | Some("custom") => {
                let name = required_str(tool, "name", &path, "a tool")?;
                let mut function = Map::new();
                function.insert("type".into(), "function".into());
                function.insert("name".into(), name.into());
                if let Some(description) = str_field(tool, "description") {
                    function.insert("description".into(), description.into());
                }
                let parameters = tool
                    .get("input_schema")
                    .filter(|s| s.is_object())
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
                function.insert("parameters".into(), parameters);
                // The Responses API holds functions to strict schemas unless told otherwise, and
                // Anthropic schemas are not written for that.
                let strict = tool.get("strict") == Some(&Value::Bool(true));
                function.insert("strict".into(), Value::Bool(strict));
                converted.push(Value::Object(function));
            }
            Some(kind) if kind.starts_with("web_search_") => {
                converted.push(web_search_tool(tool, dropped));
            }
            Some(kind) => dropped.add(format!("tools.{kind}")),
        }
    }
    Ok(converted)
}

/// Anthropic's web search tool as the Responses one: its domain list and location carry over.
fn web_search_tool(tool: &Map<String, Value>, dropped: &mut Dropped) -> Value {
    let mut search = Map::new();
    search.insert("type".into(), "web_search".into());
    for (key, value) in tool {
        match key.as_str() {
            "type" | "name" | "cache_control" => {}
            "allowed_domains" if value.is_array() => {
                search.insert("filters".into(), json!({ "allowed_domains": value }));
            }
            "user_location" if value.is_object() => {
                search.insert("user_location".into(), value.clone());
            }
            _ if value.is_null() => {}
            other => dropped.add(format!("tools.web_search.{other}")),
        }
    }
    Value::Object(search)
}

/// `tool_choice`, when there are tools for it to choose from.
fn convert_tool_choice(
    choice: Option<&Value>,
    has_tools: bool,
    body: &mut Map<String, Value>,
    dropped: &mut Dropped,
) {
    let choice = match choice {
        None | Some(Value::Null) => return,
        Some(Value::Object(choice)) => choice,
        Some(_) => return dropped.add("tool_choice"),
    };
    if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
        body.insert("parallel_tool_calls".into(), Value::Bool(false));
    }
    let converted = match str_field(choice, "type") {
        Some("auto") => json!("auto"),
        Some("none") => json!("none"),
        Some("any") => json!("required"),
        Some("tool") => match str_field(choice, "name") {
            Some(name) => json!({"type": "function", "name": name}),
            None => return dropped.add("tool_choice"),
        },
        _ => return dropped.add("tool_choice"),
    };
    if has_tools {
        body.insert("tool_choice".into(), converted);
    } else if converted != "auto" && converted != "none" {
        // Forcing a call with no tool left to call would fail upstream.
        dropped.add("tool_choice");
    }
}

/// The request's `thinking` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Thinking {
    Off,
    /// `enabled` with a token budget.
    Budget(u64),
    /// `adaptive` (or `enabled` without a budget): the model decides.
    Adaptive,
}

impl Thinking {
    fn of(value: Option<&Value>, dropped: &mut Dropped) -> Self {
        let thinking = match value {
            None | Some(Value::Null) => return Self::Off,
            Some(Value::Object(thinking)) => thinking,
            Some(_) => {
                dropped.add("thinking");
                return Self::Off;
            }
        };
        match str_field(thinking, "type") {
            Some("enabled") => thinking
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .map_or(Self::Adaptive, Self::Budget),
            Some("adaptive") => Self::Adaptive,
            Some("disabled") => Self::Off,
            _ => {
                dropped.add("thinking");
                Self::Off
            }
        }
    }

    /// Whether the answer shows thinking blocks.
    fn shown(self) -> bool {
        self != Self::Off
    }
}

/// What `output_config` (and the older `output_format`) asks that the Responses API can do.
#[derive(Debug, Default)]
struct OutputConfig {
    effort: Option<&'static str>,
    /// A `text.format` for structured output.
    format: Option<Value>,
}

impl OutputConfig {
    fn of(request: &Map<String, Value>, dropped: &mut Dropped) -> Self {
        let mut config = Self::default();
        match request.get("output_config") {
            None | Some(Value::Null) => {}
            Some(Value::Object(fields)) => {
                for (key, value) in fields {
                    match key.as_str() {
                        "effort" => {
                            config.effort = match value.as_str() {
                                Some("low") => Some("low"),
                                Some("medium") => Some("medium"),
                                Some("high") => Some("high"),
                                Some("max") => Some("xhigh"),
                                _ => {
                                    dropped.add("output_config.effort");
                                    None
                                }
                            }
                        }
                        "format" => config.format = json_format(value, "output_config", dropped),
                        _ if value.is_null() => {}
                        other => dropped.add(format!("output_config.{other}")),
                    }
                }
            }
            Some(_) => dropped.add("output_config"),
        }
        if let Some(format) = request.get("output_format").filter(|f| !f.is_null()) {
            if config.format.is_none() {
                config.format = json_format(format, "output_format", dropped);
            }
        }
        config
    }
}

/// Anthropic's structured output format (`{"type":"json_schema","schema":...}`) as a Responses
/// `text.format`. Not strict: OpenAI's strict mode wants every property required, which Anthropic
/// schemas need not say.
fn json_format(format: &Value, field: &str, dropped: &mut Dropped) -> Option<Value> {
    match (
        format.get("type").and_then(Value::as_str),
        format.get("schema"),
    ) {
        (Some("json_schema"), Some(schema)) if schema.is_object() => Some(json!({
            "type": "json_schema",
            "name": "output",
            "schema": schema,
            "strict": false,
        })),
        _ => {
            dropped.add(if field == "output_format" {
                "output_format".to_string()
            } else {
                format!("{field}.format")
            });
            None
        }
    }
}

/// The Responses `reasoning` setting: an explicit effort wins over one read from the thinking
/// budget; summaries are asked for only when thinking is shown with its text.
fn reasoning(thinking: Thinking, effort: Option<&'static str>, summarised: bool) -> Option<Value> {
    let effort = effort.or(match thinking {
        Thinking::Budget(n) if n < 4_096 => Some("low"),
        Thinking::Budget(n) if n < 16_384 => Some("medium"),
        Thinking::Budget(_) => Some("high"),
        Thinking::Off | Thinking::Adaptive => None,
    });
    let mut reasoning = Map::new();
    if let Some(effort) = effort {
        reasoning.insert("effort".into(), effort.into());
    }
    if thinking.shown() && summarised {
        reasoning.insert("summary".into(), "auto".into());
    }
    (!reasoning.is_empty()).then_some(Value::Object(reasoning))
}

/// `stop_sequences`, empty ones left out.
fn stop_sequences(value: Option<&Value>, dropped: &mut Dropped) -> Vec<String> {
    match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(stop)) => [stop.clone()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::Array(stops)) => {
            if stops.iter().any(|s| !s.is_string()) {
                dropped.add("stop_sequences");
            }
            stops
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        }
        Some(_) => {
            dropped.add("stop_sequences");
            Vec::new()
        }
    }
}

/// `metadata.user_id` as a `prompt_cache_key`: one conversation stays on one prompt cache, and
/// only a hash of the id leaves this machine.
fn cache_key(metadata: Option<&Value>, dropped: &mut Dropped) -> Option<String> {
    let metadata = match metadata {
        None | Some(Value::Null) => return None,
        Some(Value::Object(metadata)) => metadata,
        Some(_) => {
            dropped.add("metadata");
            return None;
        }
    };
    for (key, value) in metadata {
        if key != "user_id" && !value.is_null() {
            dropped.add(format!("metadata.{key}"));
        }
    }
    let user_id = str_field(metadata, "user_id").filter(|id| !id.is_empty())?;
    let digest = Sha256::digest(user_id.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Some(format!("kw-{hex}"))
}

/// How to answer one Messages request.
struct MessagesAnswer {
    model: String,
    /// Whether reasoning is shown as thinking blocks.
    thinking: bool,
    stops: Vec<String>,
}

impl Answer for MessagesAnswer {
    fn stream(self: Box<Self>) -> Box<dyn StreamTranslator> {
        Box::new(MessagesStream::new(*self))
    }

    fn reply(&self, response: &Value) -> Value {
        let mut content = Vec::new();
        let mut matched = None;
        let mut tool_use = false;
        let mut refused = false;
        for item in output_items(response) {
            match item.get("type").and_then(Value::as_str) {
                Some("reasoning") if self.thinking => content.push(json!({
                    "type": "thinking",
                    "thinking": reasoning_summary(item),
                    "signature": signature(item),
                })),
                Some("message") => {
                    let (text, refusal) = message_text(item);
                    refused |= refusal;
                    let (text, stop) = StopMatcher::cut(&self.stops, &text);
                    if !text.is_empty() {
                        content.push(json!({"type": "text", "text": text}));
                    }
                    if stop.is_some() {
                        // The answer ends at the stop sequence: nothing after it is shown.
                        matched = stop;
                        break;
                    }
                }
                Some("function_call") => {
                    tool_use = true;
                    let text = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or("");
                    content.push(json!({
                        "type": "tool_use",
                        "id": text("call_id"),
                        "name": text("name"),
                        "input": tool_input(text("arguments")),
                    }));
                }
                _ => {}
            }
        }
        let stop_sequence = matched.and_then(|i| self.stops.get(i));
        let stop_reason = match stop_sequence {
            Some(_) => "stop_sequence",
            None => stop_reason(Ending::of(response), tool_use, refused),
        };
        json!({
            "id": message_id(response.get("id")),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage(Usage::of(response)),
        })
    }
}

/// `msg_` and the upstream response's id, or a fresh one.
fn message_id(response_id: Option<&Value>) -> String {
    match response_id
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
    {
        Some(id) => format!("msg_{}", id.strip_prefix("resp_").unwrap_or(id)),
        None => format!(
            "msg_{:016x}{:08x}",
            rand::random::<u64>(),
            rand::random::<u32>()
        ),
    }
}

/// A reasoning item's encrypted content as a thinking block's signature.
fn signature(item: &Value) -> String {
    item.get("encrypted_content")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .map(|encrypted| format!("{SIGNATURE_PREFIX}{encrypted}"))
        .unwrap_or_default()
}

/// A message item's text (output text and refusals, joined), and whether it refused.
fn message_text(item: &Value) -> (String, bool) {
    let mut text = String::new();
    let mut refused = false;
    for part in item
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match part.get("type").and_then(Value::as_str) {
            Some("output_text") => text.push_str(part["text"].as_str().unwrap_or("")),
            Some("refusal") => {
                refused = true;
                text.push_str(part["refusal"].as_str().unwrap_or(""));
            }
            _ => {}
        }
    }
    (text, refused)
}

/// A function call's arguments as a tool_use `input`, which must be an object.
fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(input @ Value::Object(_)) => input,
        _ => json!({ "arguments": arguments }),
    }
}

fn stop_reason(ending: Ending, tool_use: bool, refused: bool) -> &'static str {
    match ending {
        Ending::Length => "max_tokens",
        Ending::ContentFilter => "refusal",
        Ending::Completed if tool_use => "tool_use",
        Ending::Completed if refused => "refusal",
        Ending::Completed => "end_turn",
    }
}

/// Anthropic's usage: its `input_tokens` leaves out what the prompt cache served.
fn usage(usage: Usage) -> Value {
    json!({
        "input_tokens": usage.input.saturating_sub(usage.cached_input),
        "cache_read_input_tokens": usage.cached_input,
        "cache_creation_input_tokens": 0,
        "output_tokens": usage.output,
    })
}

/// The Anthropic error type for an upstream failure.
fn error_type(failure: &StreamFailure) -> &'static str {
    match failure.status {
        400 => "invalid_request_error",
        429 => "rate_limit_error",
        503 => "overloaded_error",
        _ => "api_error",
    }
}

/// One Anthropic stream frame; its event name is the data's `type`.
fn send(out: &mut Vec<u8>, data: Value) {
    let kind = data
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    write_frame(out, Some(&kind), &data);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Thinking,
    Text,
    ToolUse,
}

/// The content block being streamed (Anthropic streams one block at a time, as the Responses
/// API streams one output item at a time).
#[derive(Debug)]
struct OpenBlock {
    kind: BlockKind,
    index: u64,
    /// The upstream output item it comes from.
    output_index: Option<u64>,
    /// Whether any delta was sent (if not, the item's final content is sent when it is done).
    streamed: bool,
    /// The reasoning summary part being streamed, to separate parts.
    summary_index: Option<u64>,
}

/// Turns the Responses event stream into Anthropic's `message_start` .. `message_stop` frames.
struct MessagesStream {
    model: String,
    thinking: bool,
    stop: StopMatcher,
    started: bool,
    /// The last frame was written (`message_stop` or `error`).
    ended: bool,
    /// Ended at a stop sequence.
    stopped: bool,
    next_index: u64,
    open: Option<OpenBlock>,
    /// All text sent, to estimate output tokens when a stop sequence cuts the stream.
    text_sent: String,
    tool_use: bool,
    refused: bool,
}

impl MessagesStream {
    fn new(answer: MessagesAnswer) -> Self {
        Self {
            model: answer.model,
            thinking: answer.thinking,
            stop: StopMatcher::new(answer.stops),
            started: false,
            ended: false,
            stopped: false,
            next_index: 0,
            open: None,
            text_sent: String::new(),
            tool_use: false,
            refused: false,
        }
    }

    fn start(&mut self, event: &Value, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        send(
            out,
            json!({
                "type": "message_start",
                "message": {
                    "id": message_id(event.pointer("/response/id")),
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
            }),
        );
        send(out, json!({"type": "ping"}));
    }

    /// The open block's index, if it is of this kind and (when known) from this output item.
    fn open_index(&self, kind: BlockKind, output_index: Option<u64>) -> Option<u64> {
        self.open
            .as_ref()
            .filter(|open| {
                open.kind == kind
                    && (open.output_index.is_none()
                        || output_index.is_none()
                        || open.output_index == output_index)
            })
            .map(|open| open.index)
    }

    /// Starts a block (closing the open one); returns its index.
    fn open_block(
        &mut self,
        kind: BlockKind,
        output_index: Option<u64>,
        block: Value,
        out: &mut Vec<u8>,
    ) -> u64 {
        self.close_block(out);
        let index = self.next_index;
        self.next_index += 1;
        send(
            out,
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        self.open = Some(OpenBlock {
            kind,
            index,
            output_index,
            streamed: false,
            summary_index: None,
        });
        index
    }

    /// The open block of this kind for this item, opened if there is none.
    fn ensure_open(&mut self, kind: BlockKind, event: &Value, out: &mut Vec<u8>) -> u64 {
        let output_index = event.get("output_index").and_then(Value::as_u64);
        if let Some(index) = self.open_index(kind, output_index) {
            return index;
        }
        let field = |key: &str| {
            event
                .pointer(&format!("/item/{key}"))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let block = match kind {
            BlockKind::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            BlockKind::Text => json!({"type": "text", "text": ""}),
            BlockKind::ToolUse => {
                self.tool_use = true;
                json!({"type": "tool_use", "id": field("call_id"), "name": field("name"), "input": {}})
            }
        };
        self.open_block(kind, output_index, block, out)
    }

    /// Ends the open block; held-back text is released first.
    fn close_block(&mut self, out: &mut Vec<u8>) {
        let Some(open) = self.open.take() else {
            return;
        };
        if open.kind == BlockKind::Text {
            let rest = self.stop.flush();
            self.send_text(open.index, &rest, out);
        }
        send(
            out,
            json!({"type": "content_block_stop", "index": open.index}),
        );
    }

    fn delta(&mut self, index: u64, delta: Value, out: &mut Vec<u8>) {
        if let Some(open) = self.open.as_mut() {
            open.streamed = true;
        }
        send(
            out,
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }

    fn send_text(&mut self, index: u64, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        self.text_sent.push_str(text);
        send(
            out,
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
        );
    }

    /// Answer text, through the stop sequences.
    fn text(&mut self, event: &Value, text: &str, out: &mut Vec<u8>) -> Flow {
        let index = self.ensure_open(BlockKind::Text, event, out);
        if let Some(open) = self.open.as_mut() {
            open.streamed = true;
        }
        let released = self.stop.push(text);
        self.send_text(index, &released.text, out);
        match released.stopped {
            Some(stop) => self.stop_at(stop, index, out),
            None => Flow::Continue,
        }
    }

    /// A stop sequence matched: the answer ends here.
    fn stop_at(&mut self, stop: usize, index: u64, out: &mut Vec<u8>) -> Flow {
        self.open = None;
        send(out, json!({"type": "content_block_stop", "index": index}));
        // The upstream's count is not known yet: estimate what the client received.
        send(
            out,
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": "stop_sequence", "stop_sequence": self.stop.sequence(stop)},
                "usage": {
                    "input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "cache_creation_input_tokens": 0,
                    "output_tokens": count_text(&self.text_sent),
                },
            }),
        );
        send(out, json!({"type": "message_stop"}));
        self.ended = true;
        self.stopped = true;
        Flow::Stop
    }

    fn item_added(&mut self, event: &Value, out: &mut Vec<u8>) {
        match event.pointer("/item/type").and_then(Value::as_str) {
            Some("reasoning") if self.thinking => {
                self.ensure_open(BlockKind::Thinking, event, out);
            }
            Some("message") => {
                self.ensure_open(BlockKind::Text, event, out);
            }
            Some("function_call") => {
                self.ensure_open(BlockKind::ToolUse, event, out);
            }
            _ => {}
        }
    }

    fn summary_delta(&mut self, event: &Value, out: &mut Vec<u8>) {
        if !self.thinking {
            return;
        }
        let delta = event.get("delta").and_then(Value::as_str).unwrap_or("");
        let part = event.get("summary_index").and_then(Value::as_u64);
        let index = self.ensure_open(BlockKind::Thinking, event, out);
        let Some(open) = self.open.as_mut() else {
            return;
        };
        // Summary parts are separate paragraphs, as in `reasoning_summary`.
        let separator = if open.streamed && part != open.summary_index {
            "\n\n"
        } else {
            ""
        };
        open.summary_index = part;
        self.delta(
            index,
            json!({"type": "thinking_delta", "thinking": format!("{separator}{delta}")}),
            out,
        );
    }

    fn item_done(&mut self, event: &Value, out: &mut Vec<u8>) -> Flow {
        let item = event.get("item").unwrap_or(&Value::Null);
        let streamed = |this: &Self| this.open.as_ref().is_some_and(|open| open.streamed);
        match item.get("type").and_then(Value::as_str) {
            Some("reasoning") if self.thinking => {
                let index = self.ensure_open(BlockKind::Thinking, event, out);
                let summary = reasoning_summary(item);
                if !streamed(self) && !summary.is_empty() {
                    self.delta(
                        index,
                        json!({"type": "thinking_delta", "thinking": summary}),
                        out,
                    );
                }
                let signature = signature(item);
                if !signature.is_empty() {
                    self.delta(
                        index,
                        json!({"type": "signature_delta", "signature": signature}),
                        out,
                    );
                }
                self.close_block(out);
            }
            Some("message") => {
                self.ensure_open(BlockKind::Text, event, out);
                if !streamed(self) {
                    let (text, refused) = message_text(item);
                    self.refused |= refused;
                    if self.text(event, &text, out) == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                self.close_block(out);
            }
            Some("function_call") => {
                let index = self.ensure_open(BlockKind::ToolUse, event, out);
                let arguments = item.get("arguments").and_then(Value::as_str).unwrap_or("");
                if !streamed(self) && !arguments.is_empty() {
                    self.delta(
                        index,
                        json!({"type": "input_json_delta", "partial_json": arguments}),
                        out,
                    );
                }
                self.close_block(out);
            }
            _ => {}
        }
        Flow::Continue
    }

    fn complete(&mut self, event: &Value, out: &mut Vec<u8>) {
        self.close_block(out);
        let response = event.get("response").unwrap_or(&Value::Null);
        let stop_reason = stop_reason(Ending::of(response), self.tool_use, self.refused);
        send(
            out,
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": usage(Usage::of(response)),
            }),
        );
        send(out, json!({"type": "message_stop"}));
        self.ended = true;
    }

    /// The answer failed: one error frame, and nothing after it.
    fn fail(&mut self, failure: &StreamFailure, out: &mut Vec<u8>) {
        send(
            out,
            json!({
                "type": "error",
                "error": {"type": error_type(failure), "message": failure.message},
            }),
        );
        self.ended = true;
    }
}

impl StreamTranslator for MessagesStream {
    fn event(&mut self, event: &Value, out: &mut Vec<u8>) -> Flow {
        if self.ended {
            return if self.stopped {
                Flow::Stop
            } else {
                Flow::Continue
            };
        }
        let kind = event_type(event);
        if matches!(kind, "response.failed" | "error") {
            // Anthropic reports an early failure without starting a message.
            self.fail(&StreamFailure::from_event(event), out);
            return Flow::Continue;
        }
        self.start(event, out);
        let delta = event.get("delta").and_then(Value::as_str).unwrap_or("");
        match kind {
            "response.output_item.added" => self.item_added(event, out),
            "response.reasoning_summary_text.delta" => self.summary_delta(event, out),
            "response.output_text.delta" => return self.text(event, delta, out),
            "response.refusal.delta" => {
                self.refused = true;
                return self.text(event, delta, out);
            }
            "response.function_call_arguments.delta" => {
                let output_index = event.get("output_index").and_then(Value::as_u64);
                if let Some(index) = self.open_index(BlockKind::ToolUse, output_index) {
                    self.delta(
                        index,
                        json!({"type": "input_json_delta", "partial_json": delta}),
                        out,
                    );
                }
            }
            "response.output_item.done" => return self.item_done(event, out),
            "response.completed" | "response.incomplete" => self.complete(event, out),
            _ => {}
        }
        Flow::Continue
    }

    fn finish(&mut self, broken: Option<&str>, out: &mut Vec<u8>) {
        if !self.ended {
            self.fail(&StreamFailure::cut_short(broken), out);
        }
    }
}

/// Well-formed Messages requests, for property tests here and against the strict mock upstream.
#[cfg(test)]
pub(crate) mod strategies {
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
            (0..TOOL_NAMES.len())
                .prop_map(|i| Some(json!({"type": "tool", "name": TOOL_NAMES[i]}))),
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
                    request.insert(
                        "messages".into(),
                        Value::Array(conversation(first, rounds)),
                    );
                    // A conversation with tool calls always offers the tools.
                    let tools = tools.or_else(|| uses_tools.then(Vec::new));
                    if let Some(mut tools) = tools {
                        if tools.is_empty() {
                            tools = TOOL_NAMES.iter().map(|name| json!({"name": name, "input_schema": {"type": "object"}})).collect();
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
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::super::responses::Assembler;
    use super::super::testing::{fixture_events, frames, run};
    use super::strategies::well_formed_request;
    use super::*;

    fn translated(request: &Value) -> Translated {
        translate(request.to_string().as_bytes()).unwrap_or_else(|e| panic!("refused: {e:?}"))
    }

    /// The Responses body a request translates into.
    fn body(request: Value) -> Value {
        Value::Object(translated(&request).body)
    }

    fn answer(request: &Value) -> Box<dyn Answer> {
        translated(request)
            .answer
            .unwrap_or_else(|| panic!("a Messages request has an answer"))
    }

    /// A minimal request with these extra fields.
    fn request_with(extra: Value) -> Value {
        let mut request = json!({
            "model": "claude-opus-5-5",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": "What is 2+2?"}],
        });
        if let (Some(request), Value::Object(extra)) = (request.as_object_mut(), extra) {
            request.extend(extra);
        }
        request
    }

    fn streamed(request: &Value, events: &[Value], broken: Option<&str>) -> Vec<Value> {
        frames(&run(answer(request).stream(), events, broken))
            .into_iter()
            .map(|(event, data)| {
                assert_eq!(
                    event.as_deref(),
                    data["type"].as_str(),
                    "event name vs data: {data}"
                );
                data
            })
            .collect()
    }

    fn text(value: &Value) -> &str {
        value.as_str().unwrap_or("null")
    }

    /// One readable line per frame: kind, block index, and the delta or block type.
    fn outline(frames: &[Value]) -> Vec<String> {
        frames
            .iter()
            .map(|data| {
                let index = &data["index"];
                let delta = &data["delta"];
                match text(&data["type"]) {
                    "content_block_start" => {
                        format!("start {index} {}", text(&data["content_block"]["type"]))
                    }
                    "content_block_delta" => match text(&delta["type"]) {
                        "text_delta" => format!("text {index} {}", text(&delta["text"])),
                        "thinking_delta" => {
                            format!("thinking {index} {}", text(&delta["thinking"]))
                        }
                        "signature_delta" => {
                            format!("signature {index} {}", text(&delta["signature"]))
                        }
                        "input_json_delta" => {
                            format!("json {index} {}", text(&delta["partial_json"]))
                        }
                        other => format!("delta {index} {other}"),
                    },
                    "content_block_stop" => format!("stop {index}"),
                    "message_delta" => format!(
                        "message_delta {} {}",
                        text(&delta["stop_reason"]),
                        text(&delta["stop_sequence"])
                    ),
                    "error" => format!("error {}", text(&data["error"]["type"])),
                    other => other.to_string(),
                }
            })
            .collect()
    }

    fn last_usage(frames: &[Value]) -> Value {
        frames
            .iter()
            .rev()
            .find(|f| f["type"] == "message_delta")
            .map(|f| f["usage"].clone())
            .unwrap_or(Value::Null)
    }

    /// The assembled fixture, answered without streaming.
    fn replied(request: &Value, fixture: &str) -> Value {
        let mut assembler = Assembler::default();
        for event in fixture_events(fixture) {
            assembler.push(&event);
        }
        let response = assembler
            .finish(None)
            .unwrap_or_else(|e| panic!("fixture {fixture} failed: {e:?}"));
        answer(request).reply(&response)
    }

    fn thinking_on() -> Value {
        request_with(json!({"thinking": {"type": "adaptive"}}))
    }

    /// A request shaped like Claude Code's maps field by field, and the unmappable is reported.
    #[test]
    fn claude_code_request_maps_as_a_whole() {
        let schema = json!({"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]});
        let request = json!({
            "model": "claude-opus-5-5",
            "max_tokens": 32000,
            "stream": true,
            "temperature": 1,
            "system": [
                {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.332; cc_entrypoint=sdk-cli"},
                {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            ],
            "messages": [
                {"role": "system", "content": "The user prefers metric units."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Look at the image.", "signature": "kwsig1.gAAAAB-blob=="},
                    {"type": "text", "text": "Let me check two things."},
                    {"type": "tool_use", "id": "toolu_01", "name": "Read", "input": {"file_path": "/tmp/a.txt"}},
                    {"type": "tool_use", "id": "toolu_02", "name": "Bash", "input": {"command": "ls"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "file not found", "is_error": true},
                    {"type": "tool_result", "tool_use_id": "toolu_02", "content": [
                        {"type": "text", "text": "a.png"},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                    ]},
                    {"type": "text", "text": "Go on.", "cache_control": {"type": "ephemeral"}},
                ]},
            ],
            "tools": [
                {"name": "Read", "description": "Reads a file", "input_schema": schema},
                {"name": "Bash", "description": "Runs a command", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}},
                {"type": "custom", "name": "NotebookEdit", "description": "Edits a notebook", "input_schema": {"type": "object"}, "defer_loading": true},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
                {"type": "bash_20250124", "name": "bash"},
            ],
            "tool_choice": {"type": "any"},
            "thinking": {"type": "adaptive"},
            "output_config": {"effort": "max"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "metadata": {"user_id": "user_abc_account_def_session_123"},
            "stop_sequences": ["\n\nHuman:"],
        });
        let translated = translated(&request);
        assert_eq!(
            Value::Object(translated.body.clone()),
            json!({
                "model": "claude-opus-5-5",
                "input": [
                    {"type": "message", "role": "system", "content": [
                        {"type": "input_text", "text": "You are Claude Code."},
                        {"type": "input_text", "text": "Be brief."},
                    ]},
                    {"type": "message", "role": "system", "content": [
                        {"type": "input_text", "text": "The user prefers metric units."},
                    ]},
                    {"type": "message", "role": "user", "content": [
                        {"type": "input_text", "text": "What is in this picture?"},
                        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
                    ]},
                    {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Look at the image."}], "encrypted_content": "gAAAAB-blob=="},
                    {"type": "message", "role": "assistant", "content": [
                        {"type": "output_text", "text": "Let me check two things."},
                    ]},
                    {"type": "function_call", "call_id": "toolu_01", "name": "Read", "arguments": "{\"file_path\":\"/tmp/a.txt\"}"},
                    {"type": "function_call", "call_id": "toolu_02", "name": "Bash", "arguments": "{\"command\":\"ls\"}"},
                    {"type": "function_call_output", "call_id": "toolu_01", "output": "Error: file not found"},
                    {"type": "function_call_output", "call_id": "toolu_02", "output": [
                        {"type": "input_text", "text": "a.png"},
                        {"type": "input_image", "image_url": "https://example.com/a.png"},
                    ]},
                    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Go on."}]},
                ],
                "stream": true,
                "max_output_tokens": 32000,
                "temperature": 1,
                "tools": [
                    {"type": "function", "name": "Read", "description": "Reads a file", "parameters": schema, "strict": false},
                    {"type": "function", "name": "Bash", "description": "Runs a command", "parameters": {"type": "object"}, "strict": false},
                    {"type": "function", "name": "NotebookEdit", "description": "Edits a notebook", "parameters": {"type": "object"}, "strict": false},
                    {"type": "web_search"},
                ],
                "tool_choice": "required",
                "reasoning": {"effort": "xhigh", "summary": "auto"},
                "prompt_cache_key": "kw-80649888bd6962efa84cb0f5b0074f0c",
            })
        );
        assert_eq!(
            translated.dropped,
            [
                "tools.web_search.max_uses",
                "tools.bash_20250124",
                "context_management"
            ]
        );
        assert_eq!(translated.renamed, [("max_output_tokens", "max_tokens")]);
        assert_eq!(
            crate::dialect::client_name(&translated.renamed, "max_output_tokens"),
            "max_tokens"
        );
        assert_eq!(translated.model, "claude-opus-5-5");
        assert!(translated.stream);
    }

    /// Plain strings for system and content, and the smallest request, map simply.
    #[test]
    fn string_system_and_content() {
        assert_eq!(
            body(
                json!({"model": "m", "system": "Be kind.", "messages": [{"role": "user", "content": "hi"}]})
            ),
            json!({
                "model": "m",
                "input": [
                    {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Be kind."}]},
                    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                ],
                "stream": false,
            })
        );
    }

    /// The thinking budget picks an effort, `output_config.effort` overrides it, and summaries
    /// are asked for only when thinking is shown.
    #[test]
    fn thinking_becomes_reasoning() {
        let reasoning = |extra: Value| body(request_with(extra))["reasoning"].clone();
        let budget = |n: u64| json!({"thinking": {"type": "enabled", "budget_tokens": n}});
        assert_eq!(
            reasoning(budget(1024)),
            json!({"effort": "low", "summary": "auto"})
        );
        assert_eq!(
            reasoning(budget(4096)),
            json!({"effort": "medium", "summary": "auto"})
        );
        assert_eq!(
            reasoning(budget(16384)),
            json!({"effort": "high", "summary": "auto"})
        );
        assert_eq!(
            reasoning(json!({"thinking": {"type": "enabled"}})),
            json!({"summary": "auto"})
        );
        assert_eq!(
            reasoning(
                json!({"thinking": {"type": "enabled", "budget_tokens": 2000}, "output_config": {"effort": "high"}})
            ),
            json!({"effort": "high", "summary": "auto"})
        );
        assert_eq!(
            reasoning(json!({"output_config": {"effort": "low"}})),
            json!({"effort": "low"})
        );
        assert_eq!(
            reasoning(json!({"thinking": {"type": "disabled"}})),
            Value::Null
        );
        let odd = translated(&request_with(
            json!({"thinking": {"type": "sometimes"}, "output_config": {"effort": "huge", "task_budget": 5}}),
        ));
        assert_eq!(odd.body.get("reasoning"), None);
        assert_eq!(
            odd.dropped,
            [
                "thinking",
                "output_config.effort",
                "output_config.task_budget"
            ]
        );
    }

    /// Structured output asked through `output_config.format` becomes `text.format`.
    #[test]
    fn output_format_becomes_text_format() {
        let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
        let body = body(request_with(
            json!({"output_config": {"format": {"type": "json_schema", "schema": schema}}}),
        ));
        assert_eq!(
            body["text"],
            json!({"format": {"type": "json_schema", "name": "output", "schema": schema, "strict": false}})
        );
    }

    /// Each tool_choice form maps to its Responses equivalent; one with no tools to choose is
    /// reported.
    #[test]
    fn tool_choice_forms() {
        let tools = json!([{"name": "f", "input_schema": {"type": "object"}}]);
        let choice = |choice: Value| {
            let body = body(request_with(json!({"tools": tools, "tool_choice": choice})));
            (
                body["tool_choice"].clone(),
                body["parallel_tool_calls"].clone(),
            )
        };
        assert_eq!(
            choice(json!({"type": "auto"})),
            (json!("auto"), Value::Null)
        );
        assert_eq!(
            choice(json!({"type": "none"})),
            (json!("none"), Value::Null)
        );
        assert_eq!(
            choice(json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true})),
            (json!({"type": "function", "name": "f"}), json!(false))
        );
        let toolless = translated(&request_with(json!({"tool_choice": {"type": "any"}})));
        assert_eq!(toolless.body.get("tool_choice"), None);
        assert_eq!(toolless.dropped, ["tool_choice"]);
    }

    /// Documents become files or text; PDFs keep a `.pdf` name for the upstream.
    #[test]
    fn documents_become_files_or_text() {
        let body = body(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "document", "title": "Report", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}},
                {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
            ]}]}),
        );
        assert_eq!(
            body["input"][0]["content"],
            json!([
                {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "Report.pdf"},
                {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "document.pdf"},
                {"type": "input_text", "text": "plain words"},
                {"type": "input_file", "file_url": "https://example.com/a.pdf"},
            ])
        );
    }

    /// Anthropic's own thinking is dropped silently; server tool blocks, unreachable sources and
    /// fields with no Responses equivalent are dropped and reported.
    #[test]
    fn unusable_content_and_fields_are_dropped() {
        let translated = translated(&json!({
            "model": "m",
            "top_k": 5,
            "container": "c",
            "mcp_servers": [],
            "service_tier": "auto",
            "cache_control": {"type": "ephemeral"},
            "future_field": {"a": 1},
            "top_p": null,
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "search"},
                    {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "EqQBCkgIARABGAIiQL"},
                    {"type": "redacted_thinking", "data": "EmwKAhgBEgy"},
                    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                    {"type": "text", "text": "found it"},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t", "is_error": true},
                    {"type": "tool_result", "tool_use_id": "u", "content": [{"type": "tool_reference", "tool_name": "Read"}]},
                ]},
            ],
        }));
        assert_eq!(
            translated.body["input"],
            json!([
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "search"}]},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "found it"}]},
                {"type": "function_call_output", "call_id": "t", "output": "Error"},
                {"type": "function_call_output", "call_id": "u", "output": ""},
            ])
        );
        assert_eq!(
            translated.dropped,
            [
                "messages.content.image.source.file",
                "messages.content.server_tool_use",
                "messages.content.web_search_tool_result",
                "messages.content.tool_result.tool_reference",
                "top_k",
                "container",
                "mcp_servers",
                "service_tier",
                "cache_control",
                "future_field",
            ]
        );
    }

    /// Only structurally unusable requests are refused, each naming the offending field.
    #[test]
    fn refuses_unusable_requests_naming_the_field() {
        let user = |content: Value| json!({"model": "m", "messages": [{"role": "user", "content": content}]});
        let cases = [
            (
                json!({"messages": [{"role": "user", "content": "hi"}]}),
                "model",
            ),
            (json!({"model": "m"}), "messages"),
            (json!({"model": "m", "messages": []}), "messages"),
            (
                json!({"model": "m", "messages": {"role": "user"}}),
                "messages",
            ),
            (json!({"model": "m", "messages": ["hi"]}), "messages.0"),
            (
                json!({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}),
                "messages.0.role",
            ),
            (
                json!({"model": "m", "messages": [{"content": "hi"}]}),
                "messages.0.role",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user"}]}),
                "messages.0.content",
            ),
            (user(json!(5)), "messages.0.content"),
            (
                user(json!([{"type": "text", "text": "a"}, 3])),
                "messages.0.content.1",
            ),
            (user(json!([{"text": "a"}])), "messages.0.content.0.type"),
            (
                user(json!([{"type": "text", "text": 1}])),
                "messages.0.content.0.text",
            ),
            (
                user(json!([{"type": "tool_result"}])),
                "messages.0.content.0.tool_use_id",
            ),
            (
                user(json!([{"type": "tool_result", "tool_use_id": "t", "content": 7}])),
                "messages.0.content.0.content",
            ),
            (
                user(
                    json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png"}}]),
                ),
                "messages.0.content.0.source.data",
            ),
            (
                user(json!([{"type": "image"}])),
                "messages.0.content.0.source",
            ),
            (
                user(json!([{"type": "tool_use", "id": "t", "name": "f", "input": {}}])),
                "messages.0.content.0",
            ),
            (
                json!({"model": "m", "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]},
                ]}),
                "messages.1.content.0.id",
            ),
            (
                json!({"model": "m", "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {}}]},
                ]}),
                "messages.1.content.0.name",
            ),
            (
                json!({"model": "m", "system": 5, "messages": [{"role": "user", "content": "hi"}]}),
                "system",
            ),
            (
                json!({"model": "m", "system": [{"type": "text"}], "messages": [{"role": "user", "content": "hi"}]}),
                "system.0.text",
            ),
            (
                json!({"model": "m", "tools": {}, "messages": [{"role": "user", "content": "hi"}]}),
                "tools",
            ),
            (
                json!({"model": "m", "tools": [{"input_schema": {}}], "messages": [{"role": "user", "content": "hi"}]}),
                "tools.0.name",
            ),
            (
                json!({"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]}),
                "stream",
            ),
        ];
        for (request, param) in cases {
            let refused = translate(request.to_string().as_bytes());
            let got = refused.as_ref().err().and_then(|e| e.param.clone());
            assert_eq!(
                got.as_deref(),
                Some(param),
                "{request} gave {:?}",
                refused.map(|t| t.body)
            );
        }
        assert!(translate(b"[]").is_err());
        assert!(translate(b"{").is_err());
    }

    /// A text answer streams as one text block, with Anthropic's usage (cached input apart).
    #[test]
    fn streams_text() {
        let frames = streamed(&request_with(json!({})), &fixture_events("text"), None);
        assert_eq!(
            outline(&frames),
            [
                "message_start",
                "ping",
                "start 0 text",
                "text 0 Hel",
                "text 0 lo, ",
                "text 0 world.",
                "stop 0",
                "message_delta end_turn null",
                "message_stop",
            ]
        );
        assert_eq!(
            frames[0],
            json!({"type": "message_start", "message": {
                "id": "msg_0a1b2c3d4e5f", "type": "message", "role": "assistant", "model": "claude-opus-5-5",
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }})
        );
        assert_eq!(
            frames[2]["content_block"],
            json!({"type": "text", "text": ""})
        );
        assert_eq!(
            last_usage(&frames),
            json!({"input_tokens": 5, "cache_read_input_tokens": 16, "cache_creation_input_tokens": 0, "output_tokens": 4})
        );
    }

    /// A tool call streams as a tool_use block with its arguments as JSON deltas.
    #[test]
    fn streams_a_tool_call() {
        let frames = streamed(&request_with(json!({})), &fixture_events("tool_call"), None);
        assert_eq!(
            outline(&frames),
            [
                "message_start",
                "ping",
                "start 0 tool_use",
                "json 0 {\"ci",
                "json 0 ty\":\"Pa",
                "json 0 ris\"}",
                "stop 0",
                "message_delta tool_use null",
                "message_stop",
            ]
        );
        assert_eq!(
            frames[2]["content_block"],
            json!({"type": "tool_use", "id": "call_Wx1", "name": "get_weather", "input": {}})
        );
        assert_eq!(last_usage(&frames)["output_tokens"], 18);
    }

    /// Text then two calls stream as three blocks with sequential indexes.
    #[test]
    fn streams_parallel_tool_calls() {
        let frames = streamed(
            &request_with(json!({})),
            &fixture_events("parallel_tool_calls"),
            None,
        );
        assert_eq!(
            outline(&frames),
            [
                "message_start",
                "ping",
                "start 0 text",
                "text 0 Checking both.",
                "stop 0",
                "start 1 tool_use",
                "json 1 {\"city\":",
                "json 1 \"Paris\"}",
                "stop 1",
                "start 2 tool_use",
                "json 2 {\"zone\":\"Asia/",
                "json 2 Tokyo\"}",
                "stop 2",
                "message_delta tool_use null",
                "message_stop",
            ]
        );
        assert_eq!(frames[9]["content_block"]["id"], "call_B2");
    }

    /// With thinking on, reasoning streams as a thinking block whose signature carries the
    /// encrypted reasoning; with it off, the reasoning is not shown.
    #[test]
    fn streams_reasoning_as_thinking() {
        let frames = streamed(&thinking_on(), &fixture_events("reasoning"), None);
        assert_eq!(
            outline(&frames),
            [
                "message_start",
                "ping",
                "start 0 thinking",
                "thinking 0 **Thinking** about ",
                "thinking 0 the question",
                "thinking 0 \n\nThen ",
                "thinking 0 answering",
                "signature 0 kwsig1.gAAAAABpKw-encrypted-reasoning-blob==",
                "stop 0",
                "start 1 text",
                "text 1 The answer ",
                "text 1 is 4.",
                "stop 1",
                "message_delta end_turn null",
                "message_stop",
            ]
        );
        assert_eq!(
            frames[2]["content_block"],
            json!({"type": "thinking", "thinking": "", "signature": ""})
        );
        let hidden = streamed(&request_with(json!({})), &fixture_events("reasoning"), None);
        assert_eq!(
            outline(&hidden)[2..5],
            ["start 0 text", "text 0 The answer ", "text 0 is 4."]
        );
    }

    /// An answer cut at the token limit ends with stop_reason max_tokens.
    #[test]
    fn streams_a_length_cut() {
        let frames = streamed(&request_with(json!({})), &fixture_events("length"), None);
        assert_eq!(
            outline(&frames)[5..],
            ["stop 0", "message_delta max_tokens null", "message_stop"]
        );
        assert_eq!(
            last_usage(&frames),
            json!({"input_tokens": 12, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "output_tokens": 5})
        );
    }

    /// A failure mid-answer becomes one error frame, and nothing follows it.
    #[test]
    fn streams_a_midstream_failure_as_an_error() {
        let frames = streamed(
            &request_with(json!({})),
            &fixture_events("error_midstream"),
            None,
        );
        assert_eq!(
            outline(&frames),
            [
                "message_start",
                "ping",
                "start 0 text",
                "text 0 Partial ",
                "error api_error"
            ]
        );
        assert_eq!(
            frames[4],
            json!({"type": "error", "error": {"type": "api_error", "message": "The model failed to generate a response."}})
        );
    }

    /// Upstream error codes map to Anthropic's error types; an early error starts no message.
    #[test]
    fn error_types_follow_the_upstream_code() {
        for (code, kind) in [
            ("rate_limit_exceeded", "rate_limit_error"),
            ("usage_limit_reached", "rate_limit_error"),
            ("server_is_overloaded", "overloaded_error"),
            ("context_length_exceeded", "invalid_request_error"),
            ("server_error", "api_error"),
        ] {
            let event = json!({"type": "error", "code": code, "message": "no"});
            let frames = streamed(&request_with(json!({})), &[event], None);
            assert_eq!(outline(&frames), [format!("error {kind}")], "{code}");
        }
    }

    /// A stream that ends or breaks before its terminal event ends with an error frame.
    #[test]
    fn a_cut_stream_ends_with_an_error() {
        let events = fixture_events("text");
        let cut = &events[..6];
        let frames = streamed(&request_with(json!({})), cut, None);
        assert_eq!(
            outline(&frames)[2..],
            [
                "start 0 text",
                "text 0 Hel",
                "text 0 lo, ",
                "error api_error"
            ]
        );
        assert!(text(&frames[5]["error"]["message"]).contains("ended before"));
        let broken = streamed(&request_with(json!({})), cut, Some("connection reset"));
        assert!(text(&broken[5]["error"]["message"]).contains("connection reset"));
        let nothing = streamed(&request_with(json!({})), &[], None);
        assert_eq!(outline(&nothing), ["error api_error"]);
    }

    /// A stop sequence split across deltas ends the answer there, with an estimated usage, and
    /// the translator asks to stop reading.
    #[test]
    fn streams_stop_at_a_split_stop_sequence() {
        let request = request_with(json!({"stop_sequences": ["o, wor"]}));
        let frames = streamed(&request, &fixture_events("text"), None);
        assert_eq!(
            outline(&frames),
            [
                "message_start",
                "ping",
                "start 0 text",
                "text 0 Hel",
                "text 0 l",
                "stop 0",
                "message_delta stop_sequence o, wor",
                "message_stop",
            ]
        );
        assert_eq!(
            last_usage(&frames),
            json!({"input_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "output_tokens": count_text("Hell")})
        );

        let mut translator = answer(&request).stream();
        let mut out = Vec::new();
        let flows: Vec<Flow> = fixture_events("text")
            .iter()
            .map(|event| translator.event(event, &mut out))
            .collect();
        assert_eq!(flows[5], Flow::Continue);
        assert_eq!(flows[6], Flow::Stop);
    }

    /// Non-streamed replies carry the same blocks, stop reasons and usage as the streams.
    #[test]
    fn replies_from_assembled_responses() {
        assert_eq!(
            replied(&request_with(json!({})), "text"),
            json!({
                "id": "msg_0a1b2c3d4e5f",
                "type": "message",
                "role": "assistant",
                "model": "claude-opus-5-5",
                "content": [{"type": "text", "text": "Hello, world."}],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": {"input_tokens": 5, "cache_read_input_tokens": 16, "cache_creation_input_tokens": 0, "output_tokens": 4},
            })
        );
        let tool = replied(&request_with(json!({})), "tool_call");
        assert_eq!(
            tool["content"],
            json!([{"type": "tool_use", "id": "call_Wx1", "name": "get_weather", "input": {"city": "Paris"}}])
        );
        assert_eq!(tool["stop_reason"], "tool_use");
        let parallel = replied(&request_with(json!({})), "parallel_tool_calls");
        assert_eq!(
            parallel["content"],
            json!([
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "call_A1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_B2", "name": "get_time", "input": {"zone": "Asia/Tokyo"}},
            ])
        );
        assert_eq!(
            replied(&thinking_on(), "reasoning")["content"],
            json!([
                {"type": "thinking", "thinking": "**Thinking** about the question\n\nThen answering", "signature": "kwsig1.gAAAAABpKw-encrypted-reasoning-blob=="},
                {"type": "text", "text": "The answer is 4."},
            ])
        );
        assert_eq!(
            replied(&request_with(json!({})), "reasoning")["content"],
            json!([{"type": "text", "text": "The answer is 4."}])
        );
        assert_eq!(
            replied(&request_with(json!({})), "length")["stop_reason"],
            "max_tokens"
        );
        let stopped = replied(
            &request_with(json!({"stop_sequences": ["", "world"]})),
            "text",
        );
        assert_eq!(
            (
                &stopped["content"],
                &stopped["stop_reason"],
                &stopped["stop_sequence"]
            ),
            (
                &json!([{"type": "text", "text": "Hello, "}]),
                &json!("stop_sequence"),
                &json!("world")
            )
        );
    }

    /// Arguments that are not a JSON object still give an object `input`.
    #[test]
    fn tool_input_is_always_an_object() {
        assert_eq!(tool_input("{\"a\":1}"), json!({"a": 1}));
        assert_eq!(tool_input(""), json!({}));
        assert_eq!(tool_input("[1]"), json!({"arguments": "[1]"}));
        assert_eq!(tool_input("{\"a\":"), json!({"arguments": "{\"a\":"}));
    }

    /// A thinking block from a reply (streamed or not), sent back on the next turn, becomes the
    /// reasoning item with the upstream's original encrypted content.
    #[test]
    fn thinking_round_trips_to_reasoning() {
        let reply = replied(&thinking_on(), "reasoning");
        let streamed_frames = streamed(&thinking_on(), &fixture_events("reasoning"), None);
        let mut thinking = String::new();
        let mut signature = String::new();
        for frame in &streamed_frames {
            thinking.push_str(frame["delta"]["thinking"].as_str().unwrap_or(""));
            signature.push_str(frame["delta"]["signature"].as_str().unwrap_or(""));
        }
        let streamed_content = json!([
            {"type": "thinking", "thinking": thinking, "signature": signature},
            {"type": "text", "text": "The answer is 4."},
        ]);
        for content in [reply["content"].clone(), streamed_content] {
            let next = body(json!({
                "model": "claude-opus-5-5",
                "thinking": {"type": "adaptive"},
                "messages": [
                    {"role": "user", "content": "What is 2+2?"},
                    {"role": "assistant", "content": content},
                    {"role": "user", "content": "Thanks."},
                ],
            }));
            assert_eq!(
                next["input"][1],
                json!({
                    "type": "reasoning",
                    "summary": [{"type": "summary_text", "text": "**Thinking** about the question\n\nThen answering"}],
                    "encrypted_content": "gAAAAABpKw-encrypted-reasoning-blob==",
                })
            );
            assert_eq!(next["input"][2]["role"], "assistant");
        }
    }

    /// Items the stream never announced (no `output_item.added`, no deltas) are still sent whole.
    #[test]
    fn items_without_deltas_are_sent_whole() {
        let events = [
            json!({"type": "response.created", "response": {"id": "resp_x"}}),
            json!({"type": "response.output_item.done", "output_index": 0, "item": {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hmm"}], "encrypted_content": "E"}}),
            json!({"type": "response.output_item.done", "output_index": 1, "item": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}}),
            json!({"type": "response.output_item.done", "output_index": 2, "item": {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}}),
            json!({"type": "response.completed", "response": {"status": "completed"}}),
        ];
        assert_eq!(
            outline(&streamed(&thinking_on(), &events, None)),
            [
                "message_start",
                "ping",
                "start 0 thinking",
                "thinking 0 hmm",
                "signature 0 kwsig1.E",
                "stop 0",
                "start 1 text",
                "text 1 hi",
                "stop 1",
                "start 2 tool_use",
                "json 2 {}",
                "stop 2",
                "message_delta tool_use null",
                "message_stop",
            ]
        );
    }

    /// A failed tool's output says so in its text, the only place a Responses output can.
    #[test]
    fn failed_tool_results_say_so() {
        let output = |content: Value| {
            let body = body(json!({"model": "m", "messages": [
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": true, "content": content}]},
            ]}));
            body["input"][0]["output"].clone()
        };
        assert_eq!(output(json!("boom")), json!("Error: boom"));
        assert_eq!(
            output(json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])),
            json!("Error: a\nb")
        );
        let image =
            json!({"type": "image", "source": {"type": "url", "url": "https://example.com/x.png"}});
        assert_eq!(
            output(json!([image])),
            json!([
                {"type": "input_text", "text": "Error"},
                {"type": "input_image", "image_url": "https://example.com/x.png"},
            ])
        );
    }

    /// Checks the Anthropic stream grammar: one message_start first, blocks opened and closed
    /// one at a time with sequential indexes, and exactly one ending (message_stop or error).
    fn check_grammar(frames: &[Value]) -> Result<(), String> {
        let mut started = false;
        let mut open: Option<u64> = None;
        let mut next = 0;
        let mut ended = false;
        for frame in frames {
            let kind = text(&frame["type"]);
            if ended {
                return Err(format!("{kind} after the end"));
            }
            let index = frame["index"].as_u64();
            match kind {
                "message_start" if !started => started = true,
                "error" => ended = true,
                _ if !started => return Err(format!("{kind} before message_start")),
                "ping" => {}
                "content_block_start" if open.is_none() && index == Some(next) => {
                    open = index;
                    next += 1;
                }
                "content_block_delta" if open.is_some() && open == index => {}
                "content_block_stop" if open.is_some() && open == index => open = None,
                "message_delta" if open.is_none() => {}
                "message_stop" => ended = true,
                _ => return Err(format!("unexpected {frame}")),
            }
        }
        if ended {
            Ok(())
        } else {
            Err("no ending".into())
        }
    }

    const WORDS: &[&str] = &[
        "user",
        "assistant",
        "system",
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "base64",
        "url",
        "content",
        "kwsig1.abc",
        "kwsig1.",
        "enabled",
        "adaptive",
        "disabled",
        "auto",
        "any",
        "tool",
        "none",
        "web_search_20250305",
        "bash_20250124",
        "custom",
        "json_schema",
        "max",
        "x-anthropic-billing-header: x",
        "message",
        "function_call",
        "reasoning",
        "output_text",
        "refusal",
        "incomplete",
        "completed",
        "content_filter",
        "response.output_item.added",
        "response.output_item.done",
    ];

    const KEYS: &[&str] = &[
        "model",
        "messages",
        "role",
        "content",
        "type",
        "text",
        "source",
        "media_type",
        "data",
        "url",
        "id",
        "name",
        "input",
        "tool_use_id",
        "is_error",
        "thinking",
        "signature",
        "system",
        "tools",
        "tool_choice",
        "input_schema",
        "budget_tokens",
        "output_config",
        "effort",
        "format",
        "schema",
        "stop_sequences",
        "metadata",
        "user_id",
        "max_tokens",
        "stream",
        "title",
        "item",
        "delta",
        "output_index",
        "summary_index",
        "response",
        "status",
        "usage",
        "output",
        "arguments",
        "call_id",
        "encrypted_content",
        "summary",
        "error",
        "code",
        "message",
        "incomplete_details",
        "reason",
        "refusal",
    ];

    const EVENT_TYPES: &[&str] = &[
        "response.created",
        "response.output_item.added",
        "response.output_item.done",
        "response.output_text.delta",
        "response.refusal.delta",
        "response.reasoning_summary_text.delta",
        "response.function_call_arguments.delta",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
    ];

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop::sample::select(WORDS).prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(
                    |fields| Value::Object(
                        fields
                            .into_iter()
                            .map(|(key, value)| (key.to_string(), value))
                            .collect()
                    )
                ),
            ]
        })
    }

    /// Every JSON pointer into a value, the root included.
    fn pointers(value: &Value, at: String, all: &mut Vec<String>) {
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    pointers(item, format!("{at}/{i}"), all);
                }
            }
            Value::Object(fields) => {
                for (key, item) in fields {
                    let key = key.replace('~', "~0").replace('/', "~1");
                    pointers(item, format!("{at}/{key}"), all);
                }
            }
            _ => {}
        }
        all.push(at);
    }

    fn arb_event() -> impl Strategy<Value = Value> {
        (
            prop::sample::select(EVENT_TYPES),
            arb_json(),
            arb_json(),
            prop::option::of(0u64..3),
            ".{0,6}",
        )
            .prop_map(|(kind, item, response, index, delta)| {
                json!({"type": kind, "item": item, "response": response, "output_index": index, "summary_index": index, "delta": delta})
            })
    }

    proptest! {
        /// Any JSON body gives a translation or a refusal, never a panic.
        #[test]
        fn any_json_never_panics(value in arb_json()) {
            let _ = translate(value.to_string().as_bytes());
        }

        /// A well-formed request with any one part replaced by any JSON never panics.
        #[test]
        fn damaged_requests_never_panic(
            request in well_formed_request(),
            at in any::<prop::sample::Index>(),
            replacement in arb_json(),
        ) {
            let mut request = request;
            let mut all = Vec::new();
            pointers(&request, String::new(), &mut all);
            let pointer: &String = at.get(&all);
            if let Some(slot) = request.pointer_mut(pointer) {
                *slot = replacement;
            }
            let _ = translate(request.to_string().as_bytes());
        }

        /// Well-formed requests translate, drop nothing, answer every call after the call, and
        /// keep output text to the assistant's messages.
        #[test]
        fn well_formed_requests_translate(request in well_formed_request()) {
            let translated = translate(request.to_string().as_bytes())
                .map_err(|e| TestCaseError::fail(format!("refused: {e:?}")))?;
            prop_assert!(translated.dropped.is_empty(), "dropped {:?}", translated.dropped);
            let mut calls = HashSet::new();
            for item in translated.body["input"].as_array().into_iter().flatten() {
                match text(&item["type"]) {
                    "function_call" => {
                        calls.insert(text(&item["call_id"]).to_string());
                    }
                    "function_call_output" => {
                        prop_assert!(calls.contains(text(&item["call_id"])), "{item} before its call");
                    }
                    "message" => {
                        let assistant = item["role"] == "assistant";
                        for part in item["content"].as_array().into_iter().flatten() {
                            prop_assert_eq!(part["type"] == "output_text", assistant, "{}", item);
                        }
                    }
                    _ => {}
                }
            }
        }

        /// Any sequence of events, of any shape, never panics a translator or a reply.
        #[test]
        fn any_events_never_panic(events in prop::collection::vec(arb_event(), 0..12), shown in any::<bool>()) {
            let request = if shown { thinking_on() } else { request_with(json!({"stop_sequences": ["a"]})) };
            let _ = run(answer(&request).stream(), &events, None);
            for event in &events {
                let _ = answer(&request).reply(&event["response"]);
            }
        }

        /// Any ordered selection of a recorded stream's events, cut or broken, still gives a
        /// well-formed Anthropic stream.
        #[test]
        fn streams_stay_well_formed(
            fixture in prop::sample::select(vec!["text", "tool_call", "parallel_tool_calls", "reasoning", "length", "error_midstream"]),
            keep in prop::collection::vec(any::<bool>(), 30),
            broken in any::<bool>(),
            shown in any::<bool>(),
        ) {
            let events: Vec<Value> = fixture_events(fixture)
                .into_iter()
                .zip(keep.iter().cycle())
                .filter(|(_, keep)| **keep)
                .map(|(event, _)| event)
                .collect();
            let request = if shown { thinking_on() } else { request_with(json!({"stop_sequences": ["is 4", "Paris"]})) };
            let frames = streamed(&request, &events, broken.then_some("reset"));
            prop_assert_eq!(check_grammar(&frames), Ok(()), "{:?}", outline(&frames));
        }
    }
}
