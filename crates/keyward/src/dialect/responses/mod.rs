//! The Responses API itself: the dialect keyward's upstreams speak. Its requests need no
//! translation (only the upstream's own normalisation) and are checked here; the items every
//! translator builds take their Responses shapes here. Its event stream is typed in `event` and
//! assembled into one response object in `assembler`; `output` reads a finished response.

mod assembler;
mod event;
mod failure;
mod output;
mod public;
mod response_object;
pub(crate) mod shape;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use super::fields::{json_kind, model_field, parse_object, stream_flag};
use super::{Invalid, Translated};

pub(crate) use assembler::Assembler;
pub(crate) use event::{parse_event, ItemRef, StreamEvent};
pub(crate) use failure::StreamFailure;
use shape::{RequestShape, Scalar, Shaped};

pub(crate) use output::{output_items, output_text, reasoning_summary, Ending, Usage};
pub(crate) use public::{public_object, PublicStream};
pub(crate) use response_object::RawObject;

/// What keyward itself needs of a Responses request, and its shape for the upstream's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub model: String,
    pub stream: bool,
    pub prompt_cache_key: Option<String>,
    pub shape: RequestShape,
}

/// [`Checked`], read in one pass without building a tree of the request (a Codex CLI request is
/// tens of KB, mostly prompt and history keyward passes on untouched). `None` when the request is
/// anything but plainly well-formed: [`translate`] then reads it whole and says what is wrong.
pub(crate) fn check(body: &[u8]) -> Option<Checked> {
    let shape = RequestShape::read(body)?;
    if shape.repeated {
        return None;
    }
    let model = shape
        .model
        .as_ref()
        .and_then(Scalar::text)
        .filter(|m| !m.trim().is_empty())?
        .to_string();
    let stream = match shape.stream {
        None | Some(Scalar::Null) | Some(Scalar::Bool(false)) => false,
        Some(Scalar::Bool(true)) => true,
        Some(_) => return None,
    };
    match &shape.input {
        None | Some(Shaped::Is(_)) | Some(Shaped::Not(Scalar::Str(_))) => {}
        Some(Shaped::Not(_)) => return None,
    }
    let prompt_cache_key = shape
        .prompt_cache_key
        .as_ref()
        .and_then(Scalar::text)
        .map(str::to_string);
    Some(Checked {
        model,
        stream,
        prompt_cache_key,
        shape,
    })
}

/// A `/v1/responses` request, checked for the fields keyward itself needs.
pub(crate) fn translate(body: &[u8]) -> Result<Translated, Invalid> {
    let body = parse_object(body)?;
    let model = model_field(&body)?;
    let stream = stream_flag(&body)?;
    match body.get("input") {
        None | Some(Value::String(_)) | Some(Value::Array(_)) => {}
        Some(other) => {
            return Err(Invalid::at(
                "input",
                format!(
                    "`input` must be a string or an array of items, not {}",
                    json_kind(other)
                ),
            ))
        }
    }
    Ok(Translated {
        body,
        model,
        stream,
        dropped: Vec::new(),
        renamed: Vec::new(),
        answer: None,
    })
}

/// A message input item in the Responses shape.
///
/// Items are built exactly to size (maps and arrays without spare room): a conversation of many
/// short messages is mostly their overhead.
pub(crate) fn message_item(role: &str, mut content: Vec<Value>) -> Value {
    content.shrink_to_fit();
    let mut item = Map::with_capacity(3);
    item.insert("type".into(), "message".into());
    item.insert("role".into(), role.into());
    item.insert("content".into(), Value::Array(content));
    Value::Object(item)
}

/// A text content part: `output_text` in assistant messages, `input_text` elsewhere.
pub(crate) fn text_part(role: &str, text: &str) -> Value {
    let kind = if role == "assistant" {
        "output_text"
    } else {
        "input_text"
    };
    let mut part = Map::with_capacity(2);
    part.insert("type".into(), kind.into());
    part.insert("text".into(), text.into());
    Value::Object(part)
}
