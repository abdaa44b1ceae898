//! Input token counts for `POST /v1/messages/count_tokens`, estimated locally: the upstream has
//! no counting endpoint, and a client (Claude Code deciding when to compact its context) wants an
//! answer without spending a request.
//!
//! The method, over the Responses request the messages request translated into:
//! - Text is encoded with `o200k_base`, the tokenizer of OpenAI's current models, loaded once
//!   per process on first use. For plain text this is exactly what the upstream counts.
//! - Every input item adds [`ITEM_OVERHEAD`] tokens for the role and separators around it, and
//!   the answer is primed with [`REPLY_PRIMING`] more, following OpenAI's published recipe for
//!   chat formats; the real framing of the current models is not published, so these are close,
//!   not exact.
//! - An image counts [`IMAGE_TOKENS`], the high-detail cost of a 1024x1024 image (85 base + 4
//!   tiles of 170): the real cost depends on the image's size, which is not decoded here.
//! - A file counts its text when it is a text file sent inline, else [`FILE_TOKENS`]: a PDF is
//!   billed by its extracted text and page images, which only the upstream knows.
//! - Function calls count their name and arguments, their outputs count like message content,
//!   reasoning items count their summaries (the encrypted reasoning is opaque here), tools count
//!   their name, description and the JSON of their parameters. Other items count their JSON.
//!
//! So the count is an estimate of what the upstream will report as `input_tokens`: exact for the
//! text, approximate for framing, images, files and tool definitions (the upstream renders tools
//! into its own prompt format).

use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::{Map, Value};
use tiktoken_rs::CoreBPE;

/// Tokens framing each input item (role, start and end markers).
pub(crate) const ITEM_OVERHEAD: u64 = 3;
/// Tokens priming the model's reply (`<|start|>assistant<|message|>`).
pub(crate) const REPLY_PRIMING: u64 = 3;
/// One image at high detail, 1024x1024: 85 + 4 x 170.
pub(crate) const IMAGE_TOKENS: u64 = 765;
/// A file whose text is not known here (a PDF): a rough allowance of a few pages.
pub(crate) const FILE_TOKENS: u64 = 1_500;

/// The `o200k_base` encoding, built on first use. `None` if it could not be built (its ranks
/// are compiled into tiktoken-rs, so only a broken build fails): counts then fall back to one
/// token per 4 bytes rather than failing the request.
fn encoding() -> Option<&'static CoreBPE> {
    static ENCODING: OnceLock<Option<CoreBPE>> = OnceLock::new();
    ENCODING
        .get_or_init(|| tiktoken_rs::o200k_base().ok())
        .as_ref()
}

/// Tokens of a text under `o200k_base`, special-token markers counted as ordinary text (as the
/// upstream does for user content).
pub(crate) fn count_text(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    match encoding() {
        Some(bpe) => bpe.encode_ordinary(text).len() as u64,
        None => (text.len() as u64).div_ceil(4),
    }
}

/// Estimated input tokens of a Responses request (see the module doc for the method).
pub(crate) fn count(request: &Map<String, Value>) -> u64 {
    let mut total = 0;
    if let Some(Value::String(instructions)) = request.get("instructions") {
        total += ITEM_OVERHEAD + count_text(instructions);
    }
    match request.get("input") {
        Some(Value::String(text)) => total += ITEM_OVERHEAD + count_text(text),
        Some(Value::Array(items)) => {
            total += items
                .iter()
                .map(|item| ITEM_OVERHEAD + count_item(item))
                .sum::<u64>()
        }
        _ => {}
    }
    if let Some(Value::Array(tools)) = request.get("tools") {
        total += tools.iter().map(count_tool).sum::<u64>();
    }
    if total > 0 {
        total += REPLY_PRIMING;
    }
    total
}

/// One input item, without its framing.
fn count_item(item: &Value) -> u64 {
    let text = |key: &str| item.get(key).and_then(Value::as_str).unwrap_or("");
    match item.get("type").and_then(Value::as_str) {
        // A message item may omit its type.
        Some("message") | None if item.get("content").is_some() => count_content(&item["content"]),
        Some("function_call") => count_text(text("name")) + count_text(text("arguments")),
        Some("function_call_output") => count_content(&item["output"]),
        Some("reasoning") => item
            .get("summary")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|part| count_text(part.get("text").and_then(Value::as_str).unwrap_or("")))
            .sum(),
        _ => count_json(item),
    }
}

/// Message content or a tool output: a string or an array of content parts.
fn count_content(content: &Value) -> u64 {
    match content {
        Value::String(text) => count_text(text),
        Value::Array(parts) => parts.iter().map(count_part).sum(),
        Value::Null => 0,
        other => count_json(other),
    }
}

fn count_part(part: &Value) -> u64 {
    match part.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text") => {
            count_text(part.get("text").and_then(Value::as_str).unwrap_or(""))
        }
        Some("refusal") => count_text(part.get("refusal").and_then(Value::as_str).unwrap_or("")),
        Some("input_image") => IMAGE_TOKENS,
        Some("input_file") => part
            .get("file_data")
            .and_then(Value::as_str)
            .and_then(inline_text)
            .map_or(FILE_TOKENS, |text| count_text(&text)),
        _ => count_json(part),
    }
}

/// The text of a `data:text/...;base64,...` URL, if it is one.
fn inline_text(data_url: &str) -> Option<String> {
    let rest = data_url.strip_prefix("data:")?;
    let (media_type, data) = rest.split_once(";base64,")?;
    if !media_type.starts_with("text/") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// A tool definition: a function's name, description and parameter schema; any other tool's JSON.
fn count_tool(tool: &Value) -> u64 {
    if tool.get("type").and_then(Value::as_str) != Some("function") {
        return count_json(tool);
    }
    let text = |key: &str| tool.get(key).and_then(Value::as_str).unwrap_or("");
    let parameters = tool.get("parameters").map_or(0, count_json);
    ITEM_OVERHEAD + count_text(text("name")) + count_text(text("description")) + parameters
}

fn count_json(value: &Value) -> u64 {
    count_text(&value.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    /// Plain text is counted exactly under o200k_base (values checked against tiktoken).
    #[test]
    fn counts_text_with_o200k_base() {
        assert_eq!(count_text(""), 0);
        assert_eq!(count_text("hello world"), 2);
        assert_eq!(count_text("Hello, world."), 4);
        // A special-token marker in user text is ordinary text, not one special token.
        assert!(count_text("<|endoftext|>") > 1);
    }

    /// Messages, images, calls, outputs, reasoning summaries and tools each add their share.
    #[test]
    fn counts_every_kind_of_item() {
        let counted = count(&request(json!({
            "model": "m",
            "instructions": "hello world",
            "input": [
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "hello world"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ]},
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "hello world"}], "encrypted_content": "x".repeat(500)},
                {"type": "function_call", "call_id": "c", "name": "hello", "arguments": "world"},
                {"type": "function_call_output", "call_id": "c", "output": "hello world"},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_file", "file_data": "data:text/plain;base64,aGVsbG8gd29ybGQ=", "filename": "a.txt"},
                    {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                ]},
            ],
        })));
        let items = 5 * ITEM_OVERHEAD;
        let text = 2 + 2 + 2 + 2 + 2 + 2; // instructions, message, summary, call, output, file
        let expected = ITEM_OVERHEAD + items + text + IMAGE_TOKENS + FILE_TOKENS + REPLY_PRIMING;
        assert_eq!(counted, expected);

        let tool = json!({"type": "function", "name": "hello", "description": "hello world", "parameters": {}});
        let with_tool = count(&request(json!({"input": "hello world", "tools": [tool]})));
        let without = count(&request(json!({"input": "hello world"})));
        assert_eq!(
            with_tool - without,
            ITEM_OVERHEAD + 1 + 2 + count_text("{}")
        );
    }

    /// Adding a message never lowers the count; an empty request counts nothing.
    #[test]
    fn the_count_grows_with_the_conversation() {
        assert_eq!(count(&Map::new()), 0);
        let mut input = Vec::new();
        let mut last = 0;
        for text in ["hi", "", "a longer message with several words", "hi"] {
            input.push(json!({"type": "message", "role": "user", "content": text}));
            let now = count(&request(json!({"input": input})));
            assert!(now > last, "{now} after {last}");
            last = now;
        }
    }

    /// Pathological text (long runs of one character or of spaces) is counted, not a panic.
    #[test]
    fn long_repetitive_text_is_counted() {
        assert!(count_text(&" ".repeat(200_000)) > 0);
        assert!(count_text(&"a".repeat(200_000)) > 0);
        assert!(count_text(&" \n".repeat(100_000)) > 0);
    }
}
