//! The chat conversation (`messages`) as Responses input items: message content as input or
//! output parts, assistant tool calls as `function_call` items, and tool (or legacy function)
//! results as `function_call_output` items answering a call made earlier.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::dialect::draft::Draft;
use crate::dialect::fields::{cut_short, json_kind, non_empty_array, sent};
use crate::dialect::responses::{message_item, text_part};
use crate::dialect::Invalid;

/// The roles a chat message can take.
const ROLES: &str = "system, developer, user, assistant or tool";

/// The Responses input items of the conversation in `messages`.
pub(super) fn input_items(
    messages: Option<Value>,
    draft: &mut Draft,
) -> Result<Vec<Value>, Invalid> {
    let messages = non_empty_array("messages", messages, "messages")?;
    let mut conversation = Conversation {
        items: Vec::with_capacity(messages.len()),
        ..Conversation::default()
    };
    // Each message is dropped once translated, so a long conversation is never held both as
    // the client sent it and as items.
    for (index, message) in messages.into_iter().enumerate() {
        conversation.message(index, &message, draft)?;
    }
    Ok(conversation.items)
}

/// The conversation translated so far: its items, and the tool calls later messages may answer.
#[derive(Default)]
struct Conversation {
    items: Vec<Value>,
    /// Every tool call id made so far: a tool message must answer one of them (the Responses
    /// API refuses a `function_call_output` without its `function_call`).
    call_ids: HashSet<String>,
    /// Legacy `function_call`s not yet answered, `(name, generated call id)`, oldest first: a
    /// `function` message answers the oldest one of its name.
    legacy_calls: Vec<(String, String)>,
}

impl Conversation {
    fn message(&mut self, index: usize, message: &Value, draft: &mut Draft) -> Result<(), Invalid> {
        let at = format!("messages[{index}]");
        let Value::Object(message) = message else {
            return Err(Invalid::at(
                at,
                format!(
                    "each message must be an object with a `role`, not {}",
                    json_kind(message)
                ),
            ));
        };
        let role = match message.get("role") {
            Some(Value::String(role)) => role.as_str(),
            None | Some(Value::Null) => {
                return Err(Invalid::at(
                    format!("{at}.role"),
                    format!("every message needs a `role`: {ROLES}"),
                ))
            }
            Some(other) => {
                return Err(Invalid::at(
                    format!("{at}.role"),
                    format!(
                        "`role` must be a string ({ROLES}), not {}",
                        json_kind(other)
                    ),
                ))
            }
        };
        let understood: &[&str] = match role {
            "system" | "developer" | "user" => {
                let content = self.input_content(&at, role, message.get("content"), draft)?;
                self.items.push(message_item(role, content));
                &["role", "content", "name"]
            }
            "assistant" => {
                self.assistant(index, &at, message)?;
                &[
                    "role",
                    "content",
                    "name",
                    "refusal",
                    "tool_calls",
                    "function_call",
                ]
            }
            "tool" => {
                self.tool_result(&at, message)?;
                &["role", "content", "name", "tool_call_id"]
            }
            "function" => {
                self.function_result(&at, message)?;
                // `name` says which call this answers: it is used, not dropped.
                self.report_extra(message, &["role", "content", "name"], draft);
                return Ok(());
            }
            other => {
                return Err(Invalid::at(
                    format!("{at}.role"),
                    format!("unknown role \"{}\": use {ROLES}", cut_short(other)),
                ))
            }
        };
        if message.get("name").is_some_and(|name| !name.is_null()) {
            draft.report("messages[].name");
        }
        self.report_extra(message, understood, draft);
        Ok(())
    }

    /// Reports message fields keyward does not carry, once per name.
    fn report_extra(&self, message: &Map<String, Value>, understood: &[&str], draft: &mut Draft) {
        for (key, value) in message {
            if !understood.contains(&key.as_str()) {
                draft.drop_field(&format!("messages[].{key}"), value);
            }
        }
    }

    /// The content parts of a system, developer or user message.
    fn input_content(
        &self,
        at: &str,
        role: &str,
        content: Option<&Value>,
        draft: &mut Draft,
    ) -> Result<Vec<Value>, Invalid> {
        match content {
            Some(Value::String(text)) => Ok(vec![text_part(role, text)]),
            Some(Value::Array(parts)) => {
                let mut translated = Vec::new();
                for (j, part) in parts.iter().enumerate() {
                    if let Some(part) =
                        input_part(&format!("{at}.content[{j}]"), role, part, draft)?
                    {
                        translated.push(part);
                    }
                }
                Ok(translated)
            }
            None | Some(Value::Null) => Err(Invalid::at(
                format!("{at}.content"),
                format!("a {role} message needs `content`: a string or an array of content parts"),
            )),
            Some(other) => Err(Invalid::at(
                format!("{at}.content"),
                format!(
                    "`content` must be a string or an array of content parts, not {}",
                    json_kind(other)
                ),
            )),
        }
    }

    /// An assistant message: its text (if any) as one message item, then its tool calls.
    fn assistant(
        &mut self,
        index: usize,
        at: &str,
        message: &Map<String, Value>,
    ) -> Result<(), Invalid> {
        let mut parts = assistant_text(at, message.get("content"))?;
        // A refusal replayed from an earlier answer is what the assistant said.
        match message.get("refusal") {
            None | Some(Value::Null) => {}
            Some(Value::String(refusal)) => {
                if !refusal.is_empty() {
                    parts.push(text_part("assistant", refusal));
                }
            }
            Some(other) => {
                return Err(Invalid::at(
                    format!("{at}.refusal"),
                    format!("`refusal` must be a string, not {}", json_kind(other)),
                ))
            }
        }
        if !parts.is_empty() {
            self.items.push(message_item("assistant", parts));
        }
        match message.get("tool_calls") {
            None | Some(Value::Null) => {}
            Some(Value::Array(calls)) => {
                for (j, call) in calls.iter().enumerate() {
                    let call = tool_call(&format!("{at}.tool_calls[{j}]"), call)?;
                    if let Some(id) = call.get("call_id").and_then(Value::as_str) {
                        self.call_ids.insert(id.to_string());
                    }
                    self.items.push(call);
                }
            }
            Some(other) => {
                return Err(Invalid::at(
                    format!("{at}.tool_calls"),
                    format!(
                        "`tool_calls` must be an array of tool calls, not {}",
                        json_kind(other)
                    ),
                ))
            }
        }
        match message.get("function_call") {
            None | Some(Value::Null) => {}
            Some(call) => {
                let at = format!("{at}.function_call");
                let (name, arguments) = function_and_arguments(&at, Some(call))?;
                // Chat's legacy calls have no id; one derived from the message's position stays
                // the same each time the conversation is sent, which keeps prompt caching working.
                let call_id = format!("call_legacy_{index}");
                self.legacy_calls.push((name.clone(), call_id.clone()));
                self.call_ids.insert(call_id.clone());
                self.items.push(json!({
                    "type": "function_call",
                    "call_id": call_id,
                    "name": name,
                    "arguments": arguments,
                }));
            }
        }
        Ok(())
    }

    /// A `tool` message: the result of one tool call.
    fn tool_result(&mut self, at: &str, message: &Map<String, Value>) -> Result<(), Invalid> {
        let call_id = match message.get("tool_call_id") {
            Some(Value::String(id)) if !id.is_empty() => id,
            _ => {
                return Err(Invalid::at(
                    format!("{at}.tool_call_id"),
                    "a tool message needs `tool_call_id`: the id of the tool call it answers",
                ))
            }
        };
        if !self.call_ids.contains(call_id) {
            return Err(Invalid::at(
                format!("{at}.tool_call_id"),
                format!(
                    "this tool message answers \"{}\", but no earlier assistant message has a tool call with that id",
                    cut_short(call_id)
                ),
            ));
        }
        let output = tool_output(at, message.get("content"))?;
        self.items.push(json!({
            "type": "function_call_output",
            "call_id": call_id,
            "output": output,
        }));
        Ok(())
    }

    /// A legacy `function` message: the result of the oldest unanswered `function_call` of its
    /// name.
    fn function_result(&mut self, at: &str, message: &Map<String, Value>) -> Result<(), Invalid> {
        let Some(Value::String(name)) = message.get("name") else {
            return Err(Invalid::at(
                format!("{at}.name"),
                "a function message needs `name`: the function whose call it answers",
            ));
        };
        let Some(position) = self
            .legacy_calls
            .iter()
            .position(|(called, _)| called == name)
        else {
            return Err(Invalid::at(
                format!("{at}.name"),
                format!(
                    "this function message answers \"{}\", but no earlier assistant message has an unanswered `function_call` of that name",
                    cut_short(name)
                ),
            ));
        };
        let (_, call_id) = self.legacy_calls.remove(position);
        let output = tool_output(at, message.get("content"))?;
        self.items.push(json!({
            "type": "function_call_output",
            "call_id": call_id,
            "output": output,
        }));
        Ok(())
    }
}

/// The `type` of a content part.
fn part_type<'a>(at: &str, part: &'a Value) -> Result<&'a str, Invalid> {
    match part.get("type") {
        Some(Value::String(kind)) => Ok(kind),
        _ if !part.is_object() => Err(Invalid::at(
            at,
            format!(
                "content parts must be objects with a `type`, not {}",
                json_kind(part)
            ),
        )),
        _ => Err(Invalid::at(
            format!("{at}.type"),
            "every content part needs a string `type` (\"text\", \"image_url\", ...)",
        )),
    }
}

/// A part's string field.
fn part_text<'a>(at: &str, part: &'a Value, field: &str) -> Result<&'a str, Invalid> {
    match part.get(field) {
        Some(Value::String(text)) => Ok(text),
        other => Err(Invalid::at(
            format!("{at}.{field}"),
            format!(
                "this part's `{field}` must be a string, not {}",
                other.map_or("missing", json_kind)
            ),
        )),
    }
}

/// One content part of a system, developer or user message; `None` for a part keyward drops.
fn input_part(
    at: &str,
    role: &str,
    part: &Value,
    draft: &mut Draft,
) -> Result<Option<Value>, Invalid> {
    match part_type(at, part)? {
        "text" => Ok(Some(text_part(role, part_text(at, part, "text")?))),
        "image_url" => {
            let (url, detail) = match part.get("image_url") {
                Some(Value::String(url)) => (url, None),
                Some(Value::Object(image)) => match image.get("url") {
                    Some(Value::String(url)) => (url, image.get("detail").filter(|d| !d.is_null())),
                    _ => {
                        return Err(Invalid::at(
                            format!("{at}.image_url.url"),
                            "an image part needs `image_url.url`: an https URL or a data: URL",
                        ))
                    }
                },
                _ => {
                    return Err(Invalid::at(
                        format!("{at}.image_url"),
                        "an image part needs `image_url`: {\"url\": ...}",
                    ))
                }
            };
            let mut image = Map::new();
            image.insert("type".into(), "input_image".into());
            image.insert("image_url".into(), url.as_str().into());
            if let Some(detail) = detail {
                image.insert("detail".into(), detail.clone());
            }
            Ok(Some(Value::Object(image)))
        }
        "file" => {
            let Some(Value::Object(file)) = part.get("file") else {
                return Err(Invalid::at(
                    format!("{at}.file"),
                    "a file part needs `file`: {\"file_data\", \"filename\"} or {\"file_id\"}",
                ));
            };
            let mut input = Map::new();
            input.insert("type".into(), "input_file".into());
            for field in ["file_data", "filename", "file_id"] {
                match file.get(field) {
                    None | Some(Value::Null) => {}
                    Some(Value::String(value)) => {
                        input.insert(field.into(), value.as_str().into());
                    }
                    Some(other) => {
                        return Err(Invalid::at(
                            format!("{at}.file.{field}"),
                            format!("`{field}` must be a string, not {}", json_kind(other)),
                        ))
                    }
                }
            }
            Ok(Some(Value::Object(input)))
        }
        "input_audio" => {
            draft.report("messages[].content.input_audio");
            Ok(None)
        }
        other => Err(Invalid::at(
            format!("{at}.type"),
            format!(
                "a {role} message cannot hold a \"{}\" part: use \"text\", \"image_url\" or \"file\"",
                cut_short(other)
            ),
        )),
    }
}

/// The text of an assistant message's `content`, as `output_text` parts (empty text left out).
fn assistant_text(at: &str, content: Option<&Value>) -> Result<Vec<Value>, Invalid> {
    let mut parts = Vec::new();
    match content {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => {
            if !text.is_empty() {
                parts.push(text_part("assistant", text));
            }
        }
        Some(Value::Array(list)) => {
            for (j, part) in list.iter().enumerate() {
                let at = format!("{at}.content[{j}]");
                let text = match part_type(&at, part)? {
                    "text" => part_text(&at, part, "text")?,
                    "refusal" => part_text(&at, part, "refusal")?,
                    other => {
                        return Err(Invalid::at(
                            format!("{at}.type"),
                            format!(
                                "an assistant message cannot hold a \"{}\" part: use \"text\" or \"refusal\"",
                                cut_short(other)
                            ),
                        ))
                    }
                };
                if !text.is_empty() {
                    parts.push(text_part("assistant", text));
                }
            }
        }
        Some(other) => {
            return Err(Invalid::at(
                format!("{at}.content"),
                format!(
                    "`content` must be a string, an array of text parts or null, not {}",
                    json_kind(other)
                ),
            ))
        }
    }
    Ok(parts)
}

/// One entry of an assistant message's `tool_calls`, as a `function_call` item.
fn tool_call(at: &str, call: &Value) -> Result<Value, Invalid> {
    let Value::Object(call) = call else {
        return Err(Invalid::at(
            at,
            format!("each tool call must be an object, not {}", json_kind(call)),
        ));
    };
    match call.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind == "function" => {}
        Some(other) => {
            return Err(Invalid::at(
                format!("{at}.type"),
                format!(
                    "keyward translates function tool calls only (\"type\": \"function\"), not {}",
                    sent(other)
                ),
            ))
        }
    }
    let id = match call.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id,
        _ => {
            return Err(Invalid::at(
                format!("{at}.id"),
                "every tool call needs its `id`, which the tool message answering it repeats",
            ))
        }
    };
    let (name, arguments) =
        function_and_arguments(&format!("{at}.function"), call.get("function"))?;
    Ok(json!({
        "type": "function_call",
        "call_id": id,
        "name": name,
        "arguments": arguments,
    }))
}

/// The `{name, arguments}` of a called function; `arguments` as the JSON text the Responses API
/// wants (an object some clients send instead is serialised).
fn function_and_arguments(at: &str, function: Option<&Value>) -> Result<(String, String), Invalid> {
    let Some(Value::Object(function)) = function else {
        return Err(Invalid::at(
            at,
            "a tool call needs `function`: {\"name\", \"arguments\"}",
        ));
    };
    let name = match function.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => {
            return Err(Invalid::at(
                format!("{at}.name"),
                "a function call needs the function's `name`",
            ))
        }
    };
    let arguments = match function.get("arguments") {
        Some(Value::String(arguments)) => arguments.clone(),
        None | Some(Value::Null) => "{}".to_string(),
        Some(object @ Value::Object(_)) => object.to_string(),
        Some(other) => {
            return Err(Invalid::at(
                format!("{at}.arguments"),
                format!(
                    "`arguments` must be a string of JSON, not {}",
                    json_kind(other)
                ),
            ))
        }
    };
    Ok((name, arguments))
}

/// A tool or function message's content as the output string: text parts are joined.
fn tool_output(at: &str, content: Option<&Value>) -> Result<String, Invalid> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => {
            let mut output = String::new();
            for (j, part) in parts.iter().enumerate() {
                let at = format!("{at}.content[{j}]");
                match part_type(&at, part)? {
                    "text" => output.push_str(part_text(&at, part, "text")?),
                    other => {
                        return Err(Invalid::at(
                            format!("{at}.type"),
                            format!(
                                "a tool result can only hold text parts, not a \"{}\" part",
                                cut_short(other)
                            ),
                        ))
                    }
                }
            }
            Ok(output)
        }
        Some(other) => Err(Invalid::at(
            format!("{at}.content"),
            format!(
                "a tool result's `content` must be a string or an array of text parts, not {}",
                json_kind(other)
            ),
        )),
    }
}
