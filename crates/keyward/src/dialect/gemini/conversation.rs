//! The Gemini conversation (`systemInstruction` and `contents`) as Responses input items: each
//! content's parts in the order the Responses API wants them, images and files as input parts,
//! function calls and responses as `function_call` items and their outputs (paired by id, or by
//! name and order when the client sent no ids), keyward's own thought signatures as the
//! reasoning items they came from.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::keys::{self, camel, field};
use super::{signature, standard_base64};
use crate::dialect::draft::Draft;
use crate::dialect::fields::{expect, json_kind, non_empty_array, wrong_type, Expected};
use crate::dialect::responses::{message_item, text_part};
use crate::dialect::Invalid;

/// The kinds of data a part holds (exactly one), for error messages.
const PART_KINDS: &str = "`text`, `inlineData`, `fileData`, `functionCall` or `functionResponse`";

/// `systemInstruction` (a content, or a plain string) as a system message item; `None` when it
/// holds no text.
pub(super) fn system_instruction(
    value: &Value,
    draft: &mut Draft,
) -> Result<Option<Value>, Invalid> {
    const PATH: &str = "systemInstruction";
    let mut texts = Vec::new();
    match value {
        Value::String(text) => texts.push(text_part("system", text)),
        Value::Object(content) => {
            let parts = field(content, "parts").map_or(Ok(&[][..]), |parts| {
                keys::array(parts, "systemInstruction.parts", "parts")
            })?;
            for (j, part) in parts.iter().enumerate() {
                let part = Part::parse(part, &format!("{PATH}.parts[{j}]"), draft)?;
                match part.data {
                    Data::Text(text) if !part.thought => texts.push(text_part("system", text)),
                    Data::Text(_) | Data::Empty => {}
                    other => draft.report(format!("{PATH}.parts.{}", other.name())),
                }
            }
        }
        other => {
            return Err(wrong_type(
                PATH,
                "a content such as {\"parts\": [{\"text\": \"...\"}]}",
                other,
            ))
        }
    }
    texts.retain(|part| part["text"].as_str().is_some_and(|t| !t.is_empty()));
    Ok((!texts.is_empty()).then(|| message_item("system", texts)))
}

/// `contents`, appended to `input` in order.
pub(super) fn convert_contents(
    contents: Option<Value>,
    input: &mut Vec<Value>,
    draft: &mut Draft,
) -> Result<(), Invalid> {
    let contents = non_empty_array("contents", contents, "{\"role\", \"parts\"} contents")?;
    input.reserve(contents.len());
    let mut calls = Calls::default();
    // Each content is dropped once translated, so a long conversation is never held both as the
    // client sent it and as items.
    for (i, content) in contents.into_iter().enumerate() {
        let path = format!("contents[{i}]");
        let Value::Object(content) = &content else {
            return Err(Invalid::at(
                path,
                format!(
                    "each content must be an object with `role` and `parts`, not {}",
                    json_kind(&content)
                ),
            ));
        };
        let model = match field(content, "role") {
            // Gemini takes a content without a role as the user's.
            None => false,
            Some(Value::String(role)) => match role.as_str() {
                "user" | "function" => false,
                "model" => true,
                "system" => {
                    return Err(Invalid::at(
                        format!("{path}.role"),
                        "a content's `role` is \"user\" or \"model\": system text goes in `systemInstruction`",
                    ))
                }
                _ => {
                    return Err(Invalid::at(
                        format!("{path}.role"),
                        "a content's `role` must be \"user\" or \"model\"",
                    ))
                }
            },
            Some(other) => return Err(wrong_type(&format!("{path}.role"), "a string", other)),
        };
        for (key, value) in content {
            if !matches!(camel(key).as_ref(), "role" | "parts") && !value.is_null() {
                draft.report(format!("contents.{}", camel(key)));
            }
        }
        let Some(parts) = field(content, "parts") else {
            continue;
        };
        let parts = keys::array(parts, &format!("{path}.parts"), "parts")?
            .iter()
            .enumerate()
            .map(|(j, part)| Part::parse(part, &format!("{path}.parts[{j}]"), draft))
            .collect::<Result<Vec<_>, _>>()?;
        if model {
            model_turn(parts, i, input, &mut calls, draft)?;
        } else {
            user_turn(parts, input, &mut calls, draft)?;
        }
    }
    Ok(())
}

/// What one part holds.
enum Data<'a> {
    Text(&'a str),
    Inline(&'a Map<String, Value>),
    File(&'a Map<String, Value>),
    Call(&'a Map<String, Value>),
    Response(&'a Map<String, Value>),
    /// Data keyward cannot carry (`executableCode`, `codeExecutionResult`, ...), by its name.
    Other(String),
    /// No data: a part that only carries a signature.
    Empty,
}

impl Data<'_> {
    fn name(&self) -> &str {
        match self {
            Self::Text(_) => "text",
            Self::Inline(_) => "inlineData",
            Self::File(_) => "fileData",
            Self::Call(_) => "functionCall",
            Self::Response(_) => "functionResponse",
            Self::Other(name) => name,
            Self::Empty => "empty",
        }
    }
}

/// One part of a content, read enough to know where it goes.
struct Part<'a> {
    path: String,
    data: Data<'a>,
    thought: bool,
    signature: Option<&'a str>,
}

impl<'a> Part<'a> {
    fn parse(value: &'a Value, path: &str, draft: &mut Draft) -> Result<Self, Invalid> {
        let part = keys::object(value, path, "{\"text\": \"...\"}")?;
        let mut data = Data::Empty;
        let mut thought = false;
        let mut signature = None;
        for (key, value) in part {
            if value.is_null() {
                continue;
            }
            let name = camel(key);
            let field_path = format!("{path}.{name}");
            let found = match name.as_ref() {
                "text" => match value {
                    Value::String(text) => Data::Text(text),
                    other => return Err(wrong_type(&field_path, "a string", other)),
                },
                "inlineData" => Data::Inline(keys::object(
                    value,
                    &field_path,
                    "{\"mimeType\": \"image/png\", \"data\": \"<base64>\"}",
                )?),
                "fileData" => Data::File(keys::object(
                    value,
                    &field_path,
                    "{\"mimeType\": \"image/png\", \"fileUri\": \"https://...\"}",
                )?),
                "functionCall" => Data::Call(keys::object(
                    value,
                    &field_path,
                    "{\"name\": \"...\", \"args\": {...}}",
                )?),
                "functionResponse" => Data::Response(keys::object(
                    value,
                    &field_path,
                    "{\"name\": \"...\", \"response\": {...}}",
                )?),
                "thought" => {
                    expect(&field_path, Some(value), Expected::Boolean)?;
                    thought = value == &Value::Bool(true);
                    continue;
                }
                "thoughtSignature" => match value {
                    Value::String(text) => {
                        signature = Some(text.as_str());
                        continue;
                    }
                    other => return Err(wrong_type(&field_path, "a string", other)),
                },
                // Data only Gemini's own tools produce.
                "executableCode" | "codeExecutionResult" | "toolCall" | "toolResponse" => {
                    Data::Other(name.to_string())
                }
                // Hints about the data (`videoMetadata`, `partMetadata`, `mediaResolution`), and
                // fields this version does not know.
                _ => {
                    draft.report(format!("contents.parts.{name}"));
                    continue;
                }
            };
            if !matches!(data, Data::Empty) {
                return Err(Invalid::at(
                    path,
                    format!(
                        "a part holds one of {PART_KINDS}; this one holds both `{}` and `{}`",
                        data.name(),
                        found.name()
                    ),
                ));
            }
            data = found;
        }
        Ok(Self {
            path: path.to_string(),
            data,
            thought,
            signature,
        })
    }
}

/// A call a model turn made, and whether a response answered it yet.
struct Made {
    call_id: String,
    name: String,
    answered: bool,
}

/// The function calls made so far in the conversation, for pairing responses with them.
#[derive(Default)]
struct Calls(Vec<Made>);

impl Calls {
    /// A call made at `contents[turn].parts[part]`; its `call_id` is its own id, or one of
    /// keyward's when it has none (`google-genai` sends calls without ids).
    fn made(&mut self, id: Option<&str>, name: &str, turn: usize, part: usize) -> String {
        let call_id = match id.filter(|id| !id.is_empty()) {
            Some(id) => id.to_string(),
            None => format!("kwcall_{turn}_{part}"),
        };
        self.0.push(Made {
            call_id: call_id.clone(),
            name: name.to_string(),
            answered: false,
        });
        call_id
    }

    /// The `call_id` a response answers: the unanswered call with its id, or else the earliest
    /// unanswered call of its name.
    fn answer(&mut self, id: Option<&str>, name: Option<&str>) -> Option<String> {
        let by_id = id.and_then(|id| {
            self.0
                .iter()
                .position(|made| !made.answered && made.call_id == id)
        });
        let found = by_id.or_else(|| {
            let name = name?;
            self.0
                .iter()
                .position(|made| !made.answered && made.name == name)
        })?;
        let made = self.0.get_mut(found)?;
        made.answered = true;
        Some(made.call_id.clone())
    }
}

/// A model turn: its reasoning (from keyward's signatures), then its text, then its function
/// calls, in the order the model produced them.
fn model_turn(
    parts: Vec<Part<'_>>,
    turn: usize,
    input: &mut Vec<Value>,
    calls: &mut Calls,
    draft: &mut Draft,
) -> Result<(), Invalid> {
    let mut reasoning = Vec::new();
    // Thought summaries since the last signature: they belong to the reasoning it carries.
    let mut summary = Vec::new();
    let mut texts = Vec::new();
    let mut made = Vec::new();
    for (j, part) in parts.into_iter().enumerate() {
        if part.thought {
            if let Data::Text(text) = part.data {
                if !text.is_empty() {
                    summary.push(json!({"type": "summary_text", "text": text}));
                }
            }
        }
        if let Some(encrypted) = part.signature.and_then(signature::decode) {
            reasoning.push(json!({
                "type": "reasoning",
                "summary": std::mem::take(&mut summary),
                "encrypted_content": encrypted,
            }));
        }
        if part.thought {
            // A thought without keyward's signature is only its summary, which the model cannot
            // use: it reasons afresh from the visible conversation.
            continue;
        }
        match part.data {
            Data::Text(text) => {
                if !text.is_empty() {
                    texts.push(text_part("assistant", text));
                }
            }
            Data::Call(call) => made.push(function_call(call, &part.path, turn, j, calls, draft)?),
            Data::Response(_) => {
                return Err(Invalid::at(
                    part.path,
                    "a functionResponse belongs in a user turn, after the model turn whose functionCall it answers",
                ))
            }
            // The model's own turns hold only text upstream.
            Data::Inline(_) | Data::File(_) => {
                draft.report(format!("contents.parts.{} (model)", part.data.name()))
            }
            Data::Other(name) => draft.report(format!("contents.parts.{name}")),
            Data::Empty => {}
        }
    }
    input.extend(reasoning);
    if !texts.is_empty() {
        input.push(message_item("assistant", texts));
    }
    input.extend(made);
    Ok(())
}

/// A `functionCall` part as a `function_call` item.
fn function_call(
    call: &Map<String, Value>,
    path: &str,
    turn: usize,
    part: usize,
    calls: &mut Calls,
    draft: &mut Draft,
) -> Result<Value, Invalid> {
    let path = format!("{path}.functionCall");
    let name = keys::required(call, "name", &path, "a functionCall")?;
    let id = keys::string(call, "id", &path)?;
    let arguments = match field(call, "args") {
        None => "{}".to_string(),
        Some(args @ Value::Object(_)) => args.to_string(),
        Some(other) => return Err(wrong_type(&format!("{path}.args"), "an object", other)),
    };
    for key in call.keys() {
        if !matches!(camel(key).as_ref(), "name" | "id" | "args") && !call[key].is_null() {
            draft.report(format!("contents.parts.functionCall.{}", camel(key)));
        }
    }
    let call_id = calls.made(id, name, turn, part);
    Ok(json!({
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }))
}

/// A user turn: its function responses first (the Responses API wants them right after the calls
/// they answer, which ended the model turn before), then one message with everything else.
fn user_turn(
    parts: Vec<Part<'_>>,
    input: &mut Vec<Value>,
    calls: &mut Calls,
    draft: &mut Draft,
) -> Result<(), Invalid> {
    let mut content = Vec::new();
    for part in parts {
        if part.thought {
            continue;
        }
        match part.data {
            Data::Text(text) => {
                if !text.is_empty() {
                    content.push(text_part("user", text));
                }
            }
            Data::Inline(inline) => content.extend(inline_part(inline, &part.path, draft)?),
            Data::File(file) => content.extend(file_part(file, &part.path, draft)?),
            Data::Response(response) => {
                input.push(function_output(response, &part.path, calls, draft)?)
            }
            Data::Call(_) => {
                return Err(Invalid::at(
                    part.path,
                    "a functionCall belongs in a model turn; the user answers it with a functionResponse",
                ))
            }
            Data::Other(name) => draft.report(format!("contents.parts.{name}")),
            Data::Empty => {}
        }
    }
    if !content.is_empty() {
        input.push(message_item("user", content));
    }
    Ok(())
}

/// A `functionResponse` part as the `function_call_output` of the call it answers.
fn function_output(
    response: &Map<String, Value>,
    path: &str,
    calls: &mut Calls,
    draft: &mut Draft,
) -> Result<Value, Invalid> {
    let path = format!("{path}.functionResponse");
    let name = keys::string(response, "name", &path)?;
    let id = keys::string(response, "id", &path)?;
    let Some(call_id) = calls.answer(id, name) else {
        return Err(Invalid::at(
            path,
            format!(
                "this functionResponse ({}) answers no earlier functionCall: send it after the model turn whose functionCall it answers, with that call's `name` (and `id`, when it had one)",
                match (name, id) {
                    (Some(name), _) => format!("`{}`", crate::dialect::cut_short(name)),
                    (None, Some(id)) => format!("id `{}`", crate::dialect::cut_short(id)),
                    (None, None) => "with neither `name` nor `id`".to_string(),
                }
            ),
        ));
    };
    let text = match field(response, "response") {
        None => String::new(),
        Some(Value::Object(response)) => response_text(response),
        Some(other) => {
            return Err(wrong_type(
                &format!("{path}.response"),
                "an object such as {\"output\": \"...\"}",
                other,
            ))
        }
    };
    let mut media = Vec::new();
    for (key, value) in response {
        if value.is_null() {
            continue;
        }
        match camel(key).as_ref() {
            "name" | "id" | "response" => {}
            // Multimodal function responses: their images and files join the output.
            "parts" => {
                let parts = keys::array(value, &format!("{path}.parts"), "parts")?;
                for (k, part) in parts.iter().enumerate() {
                    let part_path = format!("{path}.parts[{k}]");
                    match Part::parse(part, &part_path, draft)?.data {
                        Data::Inline(inline) => {
                            media.extend(inline_part(inline, &part_path, draft)?)
                        }
                        Data::File(file) => media.extend(file_part(file, &part_path, draft)?),
                        Data::Empty => {}
                        other => draft.report(format!(
                            "contents.parts.functionResponse.parts.{}",
                            other.name()
                        )),
                    }
                }
            }
            other => draft.report(format!("contents.parts.functionResponse.{other}")),
        }
    }
    let output = if media.is_empty() {
        Value::String(text)
    } else {
        let mut parts = Vec::with_capacity(media.len() + 1);
        if !text.is_empty() {
            parts.push(text_part("user", &text));
        }
        parts.extend(media);
        Value::Array(parts)
    };
    Ok(json!({
        "type": "function_call_output",
        "call_id": call_id,
        "output": output,
    }))
}

/// A function's `response` as the text the model reads. Gemini's convention: an `output` key
/// holds the function's output and an `error` key its failure; any other object is the output
/// whole.
fn response_text(response: &Map<String, Value>) -> String {
    let text = |value: &Value| match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match (
        response.len(),
        response.get("output"),
        response.get("error"),
    ) {
        (1, Some(output), None) => text(output),
        (1, None, Some(error)) => format!("Error: {}", text(error)),
        _ => Value::Object(response.clone()).to_string(),
    }
}

/// An `inlineData` part as an input part: images as `input_image`, text as `input_text`, other
/// documents as `input_file`; `None` for audio and video, which the upstream does not read.
fn inline_part(
    inline: &Map<String, Value>,
    path: &str,
    draft: &mut Draft,
) -> Result<Option<Value>, Invalid> {
    let path = format!("{path}.inlineData");
    let mime = keys::required(inline, "mimeType", &path, "inlineData")?;
    let data = standard_base64(keys::required(inline, "data", &path, "inlineData")?);
    let major = mime.split('/').next().unwrap_or_default();
    let url = || format!("data:{mime};base64,{data}");
    Ok(Some(match major {
        "image" => json!({"type": "input_image", "image_url": url()}),
        "text" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(&data)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    Invalid::at(
                        format!("{path}.data"),
                        "`inlineData.data` must be the base64 of the data",
                    )
                })?;
            text_part("user", &decoded)
        }
        "audio" | "video" => {
            draft.report(format!("contents.parts.inlineData ({major})"));
            return Ok(None);
        }
        _ => {
            let filename = match keys::string(inline, "displayName", &path)? {
                Some(name) if !name.is_empty() => name.to_string(),
                _ => file_name(mime),
            };
            json!({"type": "input_file", "file_data": url(), "filename": filename})
        }
    }))
}

/// A name for a file of this media type: the upstream tells file types by their name.
fn file_name(mime: &str) -> String {
    let subtype = mime.rsplit(['/', '.', '+']).next().unwrap_or_default();
    let extension: String = subtype
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(10)
        .collect();
    if extension.is_empty() {
        "file".to_string()
    } else {
        format!("file.{extension}")
    }
}

/// A `fileData` part as an input part when the upstream can fetch it (an http(s) URL); `None`
/// for a file only Google can read (its Files API, Cloud Storage).
fn file_part(
    file: &Map<String, Value>,
    path: &str,
    draft: &mut Draft,
) -> Result<Option<Value>, Invalid> {
    let path = format!("{path}.fileData");
    let uri = keys::required(file, "fileUri", &path, "fileData")?;
    let mime = keys::string(file, "mimeType", &path)?.unwrap_or_default();
    let web = uri.starts_with("https://") || uri.starts_with("http://");
    if uri.contains("generativelanguage.googleapis.com") {
        draft.report("contents.parts.fileData (Gemini Files API)");
        return Ok(None);
    }
    if !web {
        draft.report("contents.parts.fileData (not an http(s) URL)");
        return Ok(None);
    }
    Ok(Some(if mime.starts_with("image/") {
        json!({"type": "input_image", "image_url": uri})
    } else {
        json!({"type": "input_file", "file_url": uri})
    }))
}
