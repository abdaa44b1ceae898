//! The Messages conversation (`system` and `messages`) as Responses input items: each message's
//! content blocks in the order the Responses API wants them, images and documents as input parts,
//! tool uses and results as function calls and their outputs, keyward's own thinking blocks as
//! the reasoning items they came from.

use serde_json::{json, Map, Value};

use super::request::{required_str, str_field, Dropped};
use super::SIGNATURE_PREFIX;
use crate::dialect::fields::{json_kind, non_empty_array};
use crate::dialect::responses::{message_item, text_part};
use crate::dialect::Invalid;

/// How Claude Code's first system block starts: billing metadata for Anthropic, not prompt text.
const BILLING_HEADER: &str = "x-anthropic-billing-header:";

/// System text (`system`, or a system-role message's content): a string or text blocks, as
/// `input_text` parts. Claude Code's billing header block is left out.
pub(super) fn system_parts(
    content: &Value,
    path: &str,
    dropped: &mut Dropped,
) -> Result<Vec<Value>, Invalid> {
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
pub(super) fn convert_messages(
    messages: Option<Value>,
    input: &mut Vec<Value>,
    dropped: &mut Dropped,
) -> Result<(), Invalid> {
    let messages = non_empty_array("messages", messages, "{\"role\", \"content\"} objects")?;
    input.reserve(messages.len());
    // Each message is dropped once translated, so a long conversation is never held both as
    // the client sent it and as items.
    for (i, message) in messages.into_iter().enumerate() {
        let path = format!("messages.{i}");
        let Value::Object(message) = &message else {
            return Err(Invalid::at(
                path,
                format!(
                    "each message must be an object with `role` and `content`, not {}",
                    json_kind(&message)
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
