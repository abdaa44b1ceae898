//! OpenAI Chat Completions (`/v1/chat/completions`), translated to the Responses API and back.
//!
//! A chat request becomes one Responses request: each message becomes input items (assistant tool
//! calls and tool results become `function_call` / `function_call_output` items), tools and
//! formats take their Responses shapes, and what the Responses API cannot carry is either
//! reported (`dropped`) or, when dropping it would change the answer, refused with a 400.
//!
//! The answer goes back as one `chat.completion` object or as `chat.completion.chunk` frames.
//! Legacy text completions (`completions.rs`) answer with the same machinery in their own
//! shape, so the request pieces and the chunk stream they share live here.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::count_tokens::count_text;
use super::responses::{self, event_type, message_item, text_part, Ending, StreamFailure, Usage};
use super::stop::StopMatcher;
use super::{
    json_kind, model_field, parse_object, stream_flag, unix_now, write_frame, Answer, Flow,
    Invalid, StreamTranslator, Translated,
};

/// The roles a chat message can take.
const ROLES: &str = "system, developer, user, assistant or tool";

/// A `/v1/chat/completions` request as a Responses request, with how to answer it.
pub(crate) fn translate(body: &[u8]) -> Result<Translated, Invalid> {
    let request = parse_object(body)?;
    let model = model_field(&request)?;
    let stream = stream_flag(&request)?;
    let mut draft = Draft::new(&model);
    let input = input_items(request.get("messages"), &mut draft)?;
    draft.body.insert("input".into(), Value::Array(input));

    let tools = tools(&request, &mut draft)?;
    if !tools.is_empty() {
        draft.body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = tool_choice(&request, &mut draft)? {
        draft.body.insert("tool_choice".into(), choice);
    }
    if let Some(text) = text_options(&request, &mut draft)? {
        draft.body.insert("text".into(), text);
    }
    draft.max_tokens(&request, &["max_completion_tokens", "max_tokens"])?;

    let mut stops = Vec::new();
    let mut include_usage = false;
    for (key, value) in &request {
        match key.as_str() {
            // Read above.
            "model" | "stream" | "messages" | "tools" | "functions" | "web_search_options"
            | "tool_choice" | "function_call" | "response_format" | "verbosity"
            | "max_tokens" | "max_completion_tokens" => {}
            "parallel_tool_calls" | "temperature" | "top_p" | "user" | "metadata"
            | "service_tier" | "prompt_cache_key" | "safety_identifier" => draft.copy(key, value),
            "reasoning_effort" => match value {
                Value::Null => {}
                Value::String(effort) => {
                    draft.body.insert(
                        "reasoning".into(),
                        json!({"effort": effort, "summary": "auto"}),
                    );
                    draft.renamed.push(("reasoning", "reasoning_effort"));
                }
                other => {
                    return Err(Invalid::at(
                        "reasoning_effort",
                        format!(
                            "`reasoning_effort` must be a string such as \"low\", \"medium\" or \"high\", not {}",
                            json_kind(other)
                        ),
                    ))
                }
            },
            "stop" => stops = stop_sequences(value)?,
            "stream_options" => include_usage = include_usage_option(value)?,
            "n" => single_choice("n", value)?,
            "modalities" => text_modality_only(value)?,
            "audio" if !value.is_null() => {
                return Err(Invalid::at(
                    "audio",
                    "keyward answers with text only: remove `audio` (and \"audio\" from `modalities`)",
                ))
            }
            _ => draft.drop_field(key, value),
        }
    }
    draft.body.insert("stream".into(), Value::Bool(stream));
    Ok(Translated {
        body: draft.body,
        model: model.clone(),
        stream,
        dropped: draft.dropped,
        renamed: draft.renamed,
        answer: Some(Box::new(ChatAnswer {
            model,
            stops,
            include_usage,
        })),
    })
}

/// A Responses request under construction, with what the client sent that it cannot carry.
pub(crate) struct Draft {
    pub body: Map<String, Value>,
    pub dropped: Vec<String>,
    pub renamed: Vec<(&'static str, &'static str)>,
}

impl Draft {
    pub fn new(model: &str) -> Self {
        let mut body = Map::new();
        body.insert("model".into(), model.into());
        Self {
            body,
            dropped: Vec::new(),
            renamed: Vec::new(),
        }
    }

    /// Reports a client field keyward cannot carry, unless its value asks for nothing (null,
    /// `false`, 0, empty): LangChain and others send such defaults with every request.
    pub fn drop_field(&mut self, name: &str, value: &Value) {
        let asks_nothing = match value {
            Value::Null => true,
            Value::Bool(set) => !set,
            Value::Number(number) => number.as_f64() == Some(0.0),
            Value::String(text) => text.is_empty(),
            Value::Array(list) => list.is_empty(),
            Value::Object(map) => map.is_empty(),
        };
        if !asks_nothing {
            self.report(name);
        }
    }

    /// Reports a dropped field once.
    pub fn report(&mut self, name: impl Into<String>) {
        let name = name.into();
        if !self.dropped.contains(&name) {
            self.dropped.push(name);
        }
    }

    /// Carries a field under its own name; null counts as absent.
    pub fn copy(&mut self, name: &str, value: &Value) {
        if !value.is_null() {
            self.body.insert(name.into(), value.clone());
        }
    }

    /// `max_output_tokens` from the first of the client's `names` that is set.
    pub fn max_tokens(
        &mut self,
        request: &Map<String, Value>,
        names: &[&'static str],
    ) -> Result<(), Invalid> {
        for &name in names {
            match request.get(name) {
                None | Some(Value::Null) => continue,
                Some(Value::Number(n)) if n.as_u64().is_some() => {
                    self.body
                        .insert("max_output_tokens".into(), Value::Number(n.clone()));
                    self.renamed.push(("max_output_tokens", name));
                    return Ok(());
                }
                Some(other) => {
                    return Err(Invalid::at(
                        name,
                        format!(
                            "`{name}` must be a positive integer (a token count), not {}",
                            describe(other)
                        ),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// The kind of a value, or the number itself, for error messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => json_kind(other).to_string(),
    }
}

/// `stop`: one string or up to four, applied by keyward since the Responses API has no stop
/// sequences.
pub(crate) fn stop_sequences(value: &Value) -> Result<Vec<String>, Invalid> {
    let stops = match value {
        Value::Null => Vec::new(),
        Value::String(stop) => vec![stop.clone()],
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, stop)| match stop {
                Value::String(stop) => Ok(stop.clone()),
                other => Err(Invalid::at(
                    format!("stop[{i}]"),
                    format!("stop sequences must be strings, not {}", json_kind(other)),
                )),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(Invalid::at(
                "stop",
                format!(
                    "`stop` must be a string or an array of up to 4 strings, not {}",
                    json_kind(other)
                ),
            ))
        }
    };
    if stops.len() > 4 {
        return Err(Invalid::at(
            "stop",
            format!(
                "`stop` holds {} sequences; at most 4 are allowed",
                stops.len()
            ),
        ));
    }
    Ok(stops)
}

/// `stream_options.include_usage`: whether a streamed answer ends with a usage chunk.
pub(crate) fn include_usage_option(value: &Value) -> Result<bool, Invalid> {
    match value {
        Value::Null => Ok(false),
        Value::Object(options) => match options.get("include_usage") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(include)) => Ok(*include),
            Some(other) => Err(Invalid::at(
                "stream_options.include_usage",
                format!(
                    "`stream_options.include_usage` must be a boolean, not {}",
                    json_kind(other)
                ),
            )),
        },
        other => Err(Invalid::at(
            "stream_options",
            format!(
                "`stream_options` must be an object, not {}",
                json_kind(other)
            ),
        )),
    }
}

/// `n` (or `best_of`): keyward answers one choice per request.
pub(crate) fn single_choice(name: &'static str, value: &Value) -> Result<(), Invalid> {
    let count = match value {
        Value::Null => return Ok(()),
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    match count {
        Some(1.0) => Ok(()),
        Some(count) if count > 1.0 && count.fract() == 0.0 => Err(Invalid::at(
            name,
            format!(
                "`{name}` is {count}, but keyward answers one choice per request: send {count} requests instead"
            ),
        )),
        _ => Err(Invalid::at(
            name,
            format!("`{name}` must be a positive integer, not {}", describe(value)),
        )),
    }
}

/// `modalities`: text is all keyward answers with.
fn text_modality_only(value: &Value) -> Result<(), Invalid> {
    match value {
        Value::Null => Ok(()),
        Value::Array(list) if list.iter().any(|m| m.as_str() == Some("audio")) => Err(Invalid::at(
            "modalities",
            "keyward answers with text only: remove \"audio\" from `modalities`",
        )),
        Value::Array(_) => Ok(()),
        other => Err(Invalid::at(
            "modalities",
            format!(
                "`modalities` must be an array such as [\"text\"], not {}",
                json_kind(other)
            ),
        )),
    }
}

/// The Responses input items of the conversation in `messages`.
fn input_items(messages: Option<&Value>, draft: &mut Draft) -> Result<Vec<Value>, Invalid> {
    let messages = super::non_empty_array("messages", messages, "messages")?;
    let mut conversation = Conversation::default();
    for (index, message) in messages.iter().enumerate() {
        conversation.message(index, message, draft)?;
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
                    format!("unknown role \"{other}\": use {ROLES}"),
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
                    "this tool message answers \"{call_id}\", but no earlier assistant message has a tool call with that id"
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
                    "this function message answers \"{name}\", but no earlier assistant message has an unanswered `function_call` of that name"
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
                "a {role} message cannot hold a \"{other}\" part: use \"text\", \"image_url\" or \"file\""
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
                                "an assistant message cannot hold a \"{other}\" part: use \"text\" or \"refusal\""
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
                "keyward translates function tool calls only (\"type\": \"function\"), not {other}"
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
                                "a tool result can only hold text parts, not a \"{other}\" part"
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

/// `tools`, legacy `functions` and `web_search_options`, as Responses tools.
fn tools(request: &Map<String, Value>, draft: &mut Draft) -> Result<Vec<Value>, Invalid> {
    let mut tools = Vec::new();
    match request.get("tools") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, tool) in list.iter().enumerate() {
                let at = format!("tools[{i}]");
                let Value::Object(tool) = tool else {
                    return Err(Invalid::at(
                        at,
                        format!("each tool must be an object, not {}", json_kind(tool)),
                    ));
                };
                match tool.get("type") {
                    Some(Value::String(kind)) if kind == "function" => tools.push(function_tool(
                        &format!("{at}.function"),
                        tool.get("function"),
                    )?),
                    Some(Value::String(_)) => tools.push(Value::Object(tool.clone())),
                    _ => {
                        return Err(Invalid::at(
                            format!("{at}.type"),
                            "every tool needs a string `type`, such as \"function\"",
                        ))
                    }
                }
            }
        }
        Some(other) => {
            return Err(Invalid::at(
                "tools",
                format!(
                    "`tools` must be an array of tools, not {}",
                    json_kind(other)
                ),
            ))
        }
    }
    match request.get("functions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, function) in list.iter().enumerate() {
                tools.push(function_tool(&format!("functions[{i}]"), Some(function))?);
            }
            if !list.is_empty() && !request.contains_key("tools") {
                draft.renamed.push(("tools", "functions"));
            }
        }
        Some(other) => {
            return Err(Invalid::at(
                "functions",
                format!(
                    "`functions` must be an array of functions, not {}",
                    json_kind(other)
                ),
            ))
        }
    }
    match request.get("web_search_options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(options)) => tools.push(web_search_tool(options)),
        Some(other) => {
            return Err(Invalid::at(
                "web_search_options",
                format!(
                    "`web_search_options` must be an object, not {}",
                    json_kind(other)
                ),
            ))
        }
    }
    Ok(tools)
}

/// A chat function definition as a Responses function tool.
fn function_tool(at: &str, function: Option<&Value>) -> Result<Value, Invalid> {
    let Some(Value::Object(function)) = function else {
        return Err(Invalid::at(
            at,
            "a function tool needs `function`: {\"name\", \"description\", \"parameters\"}",
        ));
    };
    let Some(Value::String(name)) = function.get("name") else {
        return Err(Invalid::at(
            format!("{at}.name"),
            "every function tool needs a `name`",
        ));
    };
    let mut tool = Map::new();
    tool.insert("type".into(), "function".into());
    tool.insert("name".into(), name.as_str().into());
    if let Some(description) = function.get("description").filter(|d| !d.is_null()) {
        tool.insert("description".into(), description.clone());
    }
    // Chat reads a missing `parameters` as "no parameters" and a missing `strict` as false; the
    // Responses API requires the first and defaults the second to true (refusing most schemas
    // written for chat), so both are spelled out.
    let parameters = function
        .get("parameters")
        .filter(|p| !p.is_null())
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    tool.insert("parameters".into(), parameters);
    let strict = function
        .get("strict")
        .filter(|s| !s.is_null())
        .cloned()
        .unwrap_or(Value::Bool(false));
    tool.insert("strict".into(), strict);
    Ok(Value::Object(tool))
}

/// `web_search_options` as a Responses `web_search` tool.
fn web_search_tool(options: &Map<String, Value>) -> Value {
    let mut tool = Map::new();
    tool.insert("type".into(), "web_search".into());
    if let Some(size) = options.get("search_context_size").filter(|s| !s.is_null()) {
        tool.insert("search_context_size".into(), size.clone());
    }
    // Chat nests the location under `approximate`; Responses has its fields side by side.
    if let Some(Value::Object(location)) = options.get("user_location") {
        let mut flat = Map::new();
        flat.insert("type".into(), "approximate".into());
        if let Some(Value::Object(approximate)) = location.get("approximate") {
            for (key, value) in approximate {
                flat.insert(key.clone(), value.clone());
            }
        }
        tool.insert("user_location".into(), Value::Object(flat));
    }
    Value::Object(tool)
}

/// `tool_choice`, or the legacy `function_call` when `tool_choice` is absent.
fn tool_choice(request: &Map<String, Value>, draft: &mut Draft) -> Result<Option<Value>, Invalid> {
    if let Some(choice) = request.get("tool_choice").filter(|c| !c.is_null()) {
        return match choice {
            Value::String(mode) if matches!(mode.as_str(), "auto" | "none" | "required") => {
                Ok(Some(choice.clone()))
            }
            Value::Object(object) if object.get("type").and_then(Value::as_str) == Some("function") => {
                match choice.pointer("/function/name").or_else(|| object.get("name")) {
                    Some(Value::String(name)) => Ok(Some(json!({"type": "function", "name": name}))),
                    _ => Err(Invalid::at(
                        "tool_choice.function.name",
                        "a named `tool_choice` needs the function's name: {\"type\": \"function\", \"function\": {\"name\": ...}}",
                    )),
                }
            }
            Value::Object(_) => Ok(Some(choice.clone())),
            other => Err(Invalid::at(
                "tool_choice",
                format!(
                    "`tool_choice` must be \"auto\", \"none\", \"required\" or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}, not {other}"
                ),
            )),
        };
    }
    let choice = match request.get("function_call") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(mode)) if matches!(mode.as_str(), "auto" | "none") => {
            Value::String(mode.clone())
        }
        Some(Value::Object(object)) => match object.get("name") {
            Some(Value::String(name)) => json!({"type": "function", "name": name}),
            _ => {
                return Err(Invalid::at(
                    "function_call.name",
                    "a named `function_call` needs the function's name: {\"name\": ...}",
                ))
            }
        },
        Some(other) => {
            return Err(Invalid::at(
                "function_call",
                format!(
                    "`function_call` must be \"auto\", \"none\" or {{\"name\": ...}}, not {other}"
                ),
            ))
        }
    };
    draft.renamed.push(("tool_choice", "function_call"));
    Ok(Some(choice))
}

/// The Responses `text` options: `response_format` as `text.format`, `verbosity`.
fn text_options(request: &Map<String, Value>, draft: &mut Draft) -> Result<Option<Value>, Invalid> {
    let mut text = Map::new();
    if let Some(format) = request.get("response_format").filter(|f| !f.is_null()) {
        text.insert("format".into(), text_format(format)?);
        draft.renamed.push(("text", "response_format"));
    }
    match request.get("verbosity") {
        None | Some(Value::Null) => {}
        Some(Value::String(verbosity)) => {
            text.insert("verbosity".into(), verbosity.as_str().into());
            if text.len() == 1 {
                draft.renamed.push(("text", "verbosity"));
            }
        }
        Some(other) => {
            return Err(Invalid::at(
                "verbosity",
                format!(
                    "`verbosity` must be \"low\", \"medium\" or \"high\", not {}",
                    json_kind(other)
                ),
            ))
        }
    }
    Ok((!text.is_empty()).then_some(Value::Object(text)))
}

/// A `response_format` as a Responses `text.format`.
fn text_format(format: &Value) -> Result<Value, Invalid> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(json!({"type": "text"})),
        Some("json_object") => Ok(json!({"type": "json_object"})),
        Some("json_schema") => {
            let Some(Value::Object(schema)) = format.get("json_schema") else {
                return Err(Invalid::at(
                    "response_format.json_schema",
                    "a json_schema `response_format` needs `json_schema`: {\"name\", \"schema\"}",
                ));
            };
            let Some(Value::String(name)) = schema.get("name") else {
                return Err(Invalid::at(
                    "response_format.json_schema.name",
                    "`response_format.json_schema` needs a `name`",
                ));
            };
            let mut translated = Map::new();
            translated.insert("type".into(), "json_schema".into());
            translated.insert("name".into(), name.as_str().into());
            for field in ["schema", "strict", "description"] {
                if let Some(value) = schema.get(field).filter(|v| !v.is_null()) {
                    translated.insert(field.into(), value.clone());
                }
            }
            Ok(Value::Object(translated))
        }
        _ => Err(Invalid::at(
            "response_format.type",
            "`response_format.type` must be \"text\", \"json_object\" or \"json_schema\"",
        )),
    }
}

/// How to answer a chat client.
struct ChatAnswer {
    model: String,
    stops: Vec<String>,
    include_usage: bool,
}

impl Answer for ChatAnswer {
    fn stream(self: Box<Self>) -> Box<dyn StreamTranslator> {
        Box::new(ChunkStream::new(
            Shape::Chat,
            self.model,
            self.stops,
            self.include_usage,
        ))
    }

    fn reply(&self, response: &Value) -> Value {
        let mut stop = StopMatcher::new(self.stops.clone());
        let mut text = String::new();
        let mut refusal = String::new();
        let mut reasoning = Vec::new();
        let mut tool_calls = Vec::new();
        let mut stopped = false;
        // The items in order, as the stream would have sent them: a stop sequence ends the
        // answer where it matched, tool calls after it included.
        'items: for item in responses::output_items(response) {
            match item.get("type").and_then(Value::as_str) {
                Some("message") => {
                    for part in content_parts(item) {
                        match part.get("type").and_then(Value::as_str) {
                            Some("output_text") => {
                                let delta = part.get("text").and_then(Value::as_str).unwrap_or("");
                                let released = stop.push(delta);
                                text.push_str(&released.text);
                                if released.stopped.is_some() {
                                    stopped = true;
                                    break 'items;
                                }
                            }
                            Some("refusal") => refusal.push_str(
                                part.get("refusal").and_then(Value::as_str).unwrap_or(""),
                            ),
                            _ => {}
                        }
                    }
                }
                Some("function_call") => {
                    text.push_str(&stop.flush());
                    tool_calls.push(json!({
                        "id": item.get("call_id").cloned().unwrap_or(Value::Null),
                        "type": "function",
                        "function": {
                            "name": item.get("name").cloned().unwrap_or(Value::Null),
                            "arguments": item.get("arguments").and_then(Value::as_str).unwrap_or(""),
                        },
                    }));
                }
                Some("reasoning") => {
                    let summary = responses::reasoning_summary(item);
                    if !summary.is_empty() {
                        reasoning.push(summary);
                    }
                }
                _ => {}
            }
        }
        text.push_str(&stop.flush());
        let finish = if stopped {
            "stop"
        } else {
            finish_reason(Ending::of(response), !tool_calls.is_empty())
        };

        let mut message = Map::new();
        message.insert("role".into(), "assistant".into());
        let content = if text.is_empty() && (!tool_calls.is_empty() || !refusal.is_empty()) {
            Value::Null
        } else {
            Value::String(text)
        };
        message.insert("content".into(), content);
        message.insert(
            "refusal".into(),
            if refusal.is_empty() {
                Value::Null
            } else {
                Value::String(refusal)
            },
        );
        if !tool_calls.is_empty() {
            message.insert("tool_calls".into(), Value::Array(tool_calls));
        }
        if !reasoning.is_empty() {
            message.insert("reasoning_content".into(), reasoning.join("\n\n").into());
        }
        json!({
            "id": answer_id(Shape::Chat, response),
            "object": "chat.completion",
            "created": created_at(response),
            "model": self.model,
            "system_fingerprint": null,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": finish,
            }],
            "usage": Shape::Chat.usage(Usage::of(response)),
        })
    }
}

/// A message item's content parts.
fn content_parts(item: &Value) -> impl Iterator<Item = &Value> {
    item.get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The `finish_reason` of a response that was not cut by a stop sequence.
pub(crate) fn finish_reason(ending: Ending, called_tools: bool) -> &'static str {
    match ending {
        Ending::Length => "length",
        Ending::ContentFilter => "content_filter",
        Ending::Completed if called_tools => "tool_calls",
        Ending::Completed => "stop",
    }
}

/// The answer's id: the upstream response's, under this dialect's prefix (so logs on both sides
/// match), or a random one when the upstream gave none.
pub(crate) fn answer_id(shape: Shape, response: &Value) -> String {
    let id = match response.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.strip_prefix("resp_").unwrap_or(id).to_string(),
        _ => format!(
            "{:016x}{:08x}",
            rand::random::<u64>(),
            rand::random::<u32>()
        ),
    };
    format!("{}{id}", shape.id_prefix())
}

/// The response's creation time, or now.
pub(crate) fn created_at(response: &Value) -> i64 {
    response
        .get("created_at")
        .and_then(Value::as_i64)
        .unwrap_or_else(unix_now)
}

/// The two OpenAI answer shapes keyward speaks besides Responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `chat.completion` objects and `chat.completion.chunk` deltas.
    Chat,
    /// Legacy `text_completion` objects, streamed as `text` pieces.
    Completion,
}

impl Shape {
    fn id_prefix(self) -> &'static str {
        match self {
            Self::Chat => "chatcmpl-",
            Self::Completion => "cmpl-",
        }
    }

    fn chunk_object(self) -> &'static str {
        match self {
            Self::Chat => "chat.completion.chunk",
            Self::Completion => "text_completion",
        }
    }

    /// The answer's `usage` object.
    pub fn usage(self, usage: Usage) -> Value {
        match self {
            Self::Chat => json!({
                "prompt_tokens": usage.input,
                "completion_tokens": usage.output,
                "total_tokens": usage.total,
                "prompt_tokens_details": {"cached_tokens": usage.cached_input},
                "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
            }),
            Self::Completion => json!({
                "prompt_tokens": usage.input,
                "completion_tokens": usage.output,
                "total_tokens": usage.total,
            }),
        }
    }
}

/// A function call being streamed: where its events come from, and the arguments sent so far.
#[derive(Debug)]
struct StreamedCall {
    output_index: Option<u64>,
    item_id: Option<String>,
    arguments: String,
}

/// Turns Responses events into OpenAI chunks (`chat.completion.chunk`, or legacy
/// `text_completion`), as they arrive.
pub(crate) struct ChunkStream {
    shape: Shape,
    model: String,
    include_usage: bool,
    stop: StopMatcher,
    /// Text sent before the answer (legacy completions with `echo`).
    echo: Option<String>,
    /// Set by the first upstream event.
    id: String,
    created: i64,
    started: bool,
    /// The last frame was written; later events are ignored.
    ended: bool,
    /// Function calls in the order they started; the position is the chat `index`.
    calls: Vec<StreamedCall>,
    /// `(output_index, summary_index)` of the reasoning summary being streamed, so the next
    /// summary part starts on its own paragraph as in the non-streamed answer.
    summary_at: Option<(Option<u64>, Option<u64>)>,
    /// The answer text sent, to estimate its tokens when a stop sequence ends the stream.
    sent: String,
}

impl ChunkStream {
    pub fn new(shape: Shape, model: String, stops: Vec<String>, include_usage: bool) -> Self {
        Self {
            shape,
            model,
            include_usage,
            stop: StopMatcher::new(stops),
            echo: None,
            id: String::new(),
            created: 0,
            started: false,
            ended: false,
            calls: Vec::new(),
            summary_at: None,
            sent: String::new(),
        }
    }

    /// Sends `prompt` before the answer.
    pub fn with_echo(mut self, prompt: Option<String>) -> Self {
        self.echo = prompt;
        self
    }

    /// The first event: fixes the answer's id and time, and opens the answer.
    fn start(&mut self, event: &Value, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = event.get("response").unwrap_or(&Value::Null);
        self.id = answer_id(self.shape, response);
        self.created = created_at(response);
        match self.shape {
            Shape::Chat => self.send_delta(json!({"role": "assistant", "content": ""}), out),
            Shape::Completion => {
                if let Some(prompt) = self.echo.take() {
                    self.send_text(&prompt, out);
                }
            }
        }
    }

    fn chunk(&self, choices: Value) -> Value {
        let mut chunk = Map::new();
        chunk.insert("id".into(), self.id.as_str().into());
        chunk.insert("object".into(), self.shape.chunk_object().into());
        chunk.insert("created".into(), self.created.into());
        chunk.insert("model".into(), self.model.as_str().into());
        chunk.insert("system_fingerprint".into(), Value::Null);
        chunk.insert("choices".into(), choices);
        if self.include_usage {
            // OpenAI puts `usage: null` on every chunk but the last when usage is asked for.
            chunk.insert("usage".into(), Value::Null);
        }
        Value::Object(chunk)
    }

    fn send_delta(&self, delta: Value, out: &mut Vec<u8>) {
        let choice = json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": null});
        write_frame(out, None, &self.chunk(json!([choice])));
    }

    fn send_text(&self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        match self.shape {
            Shape::Chat => self.send_delta(json!({"content": text}), out),
            Shape::Completion => {
                let choice =
                    json!({"text": text, "index": 0, "logprobs": null, "finish_reason": null});
                write_frame(out, None, &self.chunk(json!([choice])));
            }
        }
    }

    /// Releases answer text through the stop sequences; `Flow::Stop` once one matched.
    fn text(&mut self, delta: &str, out: &mut Vec<u8>) -> Flow {
        let released = self.stop.push(delta);
        self.send_text(&released.text, out);
        self.sent.push_str(&released.text);
        if released.stopped.is_none() {
            return Flow::Continue;
        }
        // The upstream's usage will never arrive: the completion is estimated from what was
        // sent, the prompt is unknown.
        let completion = count_text(&self.sent);
        let usage = Usage {
            output: completion,
            total: completion,
            ..Usage::default()
        };
        self.end("stop", usage, out);
        Flow::Stop
    }

    /// Sends text the stop sequences held back, when something else comes after it.
    fn flush_text(&mut self, out: &mut Vec<u8>) {
        let held = self.stop.flush();
        self.send_text(&held, out);
        self.sent.push_str(&held);
    }

    /// The closing chunk, the usage chunk when asked for, and `[DONE]`.
    fn end(&mut self, finish: &str, usage: Usage, out: &mut Vec<u8>) {
        let choice = match self.shape {
            Shape::Chat => {
                json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish})
            }
            Shape::Completion => {
                json!({"text": "", "index": 0, "logprobs": null, "finish_reason": finish})
            }
        };
        write_frame(out, None, &self.chunk(json!([choice])));
        if self.include_usage {
            let mut chunk = self.chunk(json!([]));
            chunk["usage"] = self.shape.usage(usage);
            write_frame(out, None, &chunk);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.ended = true;
    }

    /// An error chunk, which OpenAI's SDKs raise on; no `[DONE]` follows it.
    fn fail(&mut self, failure: &StreamFailure, out: &mut Vec<u8>) {
        write_frame(out, None, &json!({"error": failure.openai_error()}));
        self.ended = true;
    }

    /// The index of the streamed call an event belongs to.
    fn call_of(&self, event: &Value) -> Option<usize> {
        let output_index = event.get("output_index").and_then(Value::as_u64);
        let item_id = event
            .get("item_id")
            .or_else(|| event.pointer("/item/id"))
            .and_then(Value::as_str);
        self.calls
            .iter()
            .position(|call| match (output_index, call.output_index) {
                (Some(wanted), Some(known)) => wanted == known,
                _ => item_id.is_some() && call.item_id.as_deref() == item_id,
            })
    }

    /// A function call begins: its id and name, with empty arguments.
    fn call_started(&mut self, event: &Value, item: &Value, out: &mut Vec<u8>) -> usize {
        if let Some(index) = self.call_of(event) {
            return index;
        }
        self.flush_text(out);
        let index = self.calls.len();
        self.calls.push(StreamedCall {
            output_index: event.get("output_index").and_then(Value::as_u64),
            item_id: item.get("id").and_then(Value::as_str).map(str::to_string),
            arguments: String::new(),
        });
        self.send_delta(
            json!({"tool_calls": [{
                "index": index,
                "id": item.get("call_id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": item.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": "",
                },
            }]}),
            out,
        );
        index
    }

    fn call_arguments(&mut self, index: usize, delta: &str, out: &mut Vec<u8>) {
        if delta.is_empty() {
            return;
        }
        if let Some(call) = self.calls.get_mut(index) {
            call.arguments.push_str(delta);
        }
        self.send_delta(
            json!({"tool_calls": [{"index": index, "function": {"arguments": delta}}]}),
            out,
        );
    }

    /// A call's complete arguments arrived: sends whatever the deltas did not.
    fn call_completed(&mut self, index: usize, arguments: &str, out: &mut Vec<u8>) {
        let sent = self
            .calls
            .get(index)
            .map_or("", |call| call.arguments.as_str());
        if let Some(rest) = arguments.strip_prefix(sent) {
            let rest = rest.to_string();
            self.call_arguments(index, &rest, out);
        }
    }

    fn reasoning(&mut self, event: &Value, delta: &str, out: &mut Vec<u8>) {
        let at = (
            event.get("output_index").and_then(Value::as_u64),
            event.get("summary_index").and_then(Value::as_u64),
        );
        let mut text = String::new();
        if self.summary_at.is_some_and(|previous| previous != at) {
            text.push_str("\n\n");
        }
        self.summary_at = Some(at);
        text.push_str(delta);
        self.send_delta(json!({"reasoning_content": text}), out);
    }

    /// The chat-only events: reasoning, refusals and function calls.
    fn chat_event(&mut self, event: &Value, out: &mut Vec<u8>) {
        let delta = event.get("delta").and_then(Value::as_str).unwrap_or("");
        match event_type(event) {
            "response.reasoning_summary_text.delta" if !delta.is_empty() => {
                self.reasoning(event, delta, out)
            }
            "response.refusal.delta" if !delta.is_empty() => {
                self.send_delta(json!({"refusal": delta}), out)
            }
            "response.output_item.added" | "response.output_item.done" => {
                let item = event.get("item").unwrap_or(&Value::Null);
                if item.get("type").and_then(Value::as_str) != Some("function_call") {
                    return;
                }
                let index = self.call_started(event, item, out);
                if event_type(event) == "response.output_item.done" {
                    let arguments = item.get("arguments").and_then(Value::as_str).unwrap_or("");
                    self.call_completed(index, arguments, out);
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(index) = self.call_of(event) {
                    self.call_arguments(index, delta, out);
                }
            }
            "response.function_call_arguments.done" => {
                if let (Some(index), Some(arguments)) = (
                    self.call_of(event),
                    event.get("arguments").and_then(Value::as_str),
                ) {
                    self.call_completed(index, arguments, out);
                }
            }
            _ => {}
        }
    }
}

impl StreamTranslator for ChunkStream {
    fn event(&mut self, event: &Value, out: &mut Vec<u8>) -> Flow {
        if self.ended {
            return Flow::Continue;
        }
        let kind = event_type(event);
        if matches!(kind, "response.failed" | "error") {
            self.fail(&StreamFailure::from_event(event), out);
            return Flow::Continue;
        }
        self.start(event, out);
        match kind {
            "response.output_text.delta" => {
                let delta = event.get("delta").and_then(Value::as_str).unwrap_or("");
                return self.text(delta, out);
            }
            "response.completed" | "response.incomplete" => {
                let response = event.get("response").unwrap_or(&Value::Null);
                self.flush_text(out);
                let finish = finish_reason(Ending::of(response), !self.calls.is_empty());
                self.end(finish, Usage::of(response), out);
            }
            _ if self.shape == Shape::Chat => self.chat_event(event, out),
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

#[cfg(test)]
pub(crate) mod strategies {
    //! Request generators, shared with the other translators' and the gateway's property tests.

    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    /// Field names and words of chat requests, so random values reach deep into a translator.
    const WORDS: &[&str] = &[
        "model",
        "messages",
        "role",
        "content",
        "type",
        "text",
        "image_url",
        "url",
        "file",
        "tool_calls",
        "tool_call_id",
        "function",
        "name",
        "arguments",
        "tools",
        "tool_choice",
        "response_format",
        "json_schema",
        "schema",
        "stop",
        "n",
        "stream",
        "stream_options",
        "include_usage",
        "prompt",
        "echo",
        "best_of",
        "max_tokens",
        "function_call",
        "functions",
        "system",
        "user",
        "assistant",
        "tool",
        "developer",
        "auto",
        "required",
        "none",
        "refusal",
        "input_audio",
        "modalities",
        "audio",
        "web_search_options",
        "user_location",
        "approximate",
        "max_completion_tokens",
        "reasoning_effort",
        "verbosity",
        "json_object",
        "detail",
        "file_data",
        "id",
    ];

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(WORDS).prop_map(str::to_string),
            "\\PC{0,8}",
        ]
    }

    /// Any JSON value, a few levels deep.
    pub(crate) fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (0u64..6).prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            word().prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 96, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((word(), inner), 0..6)
                    .prop_map(|fields| Value::Object(fields.into_iter().collect())),
            ]
        })
    }

    /// An object with a model and random `messages` (and random other fields): past the first
    /// checks, into the message translation.
    pub(crate) fn chat_shaped() -> impl Strategy<Value = Value> {
        let roles = vec!["system", "user", "assistant", "tool", "function", "x"];
        let message = (
            prop::sample::select(roles),
            prop::collection::vec((word(), any_json()), 0..5),
        )
            .prop_map(|(role, fields)| {
                let mut message: Map<String, Value> = fields.into_iter().collect();
                message.insert("role".into(), role.into());
                Value::Object(message)
            });
        (
            prop::collection::vec(message, 0..6),
            prop::collection::vec((word(), any_json()), 0..5),
        )
            .prop_map(|(messages, fields)| {
                let mut request: Map<String, Value> = fields.into_iter().collect();
                request.insert("model".into(), "m".into());
                request.insert("messages".into(), Value::Array(messages));
                Value::Object(request)
            })
    }

    const TOOL_NAMES: &[&str] = &["get_weather", "search", "lookup"];

    fn text() -> impl Strategy<Value = String> {
        "\\PC{0,16}"
    }

    /// User content: a string, or text, image and file parts.
    fn user_content() -> impl Strategy<Value = Value> {
        let part = prop_oneof![
            text().prop_map(|t| json!({"type": "text", "text": t})),
            Just(
                json!({"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}})
            ),
            Just(json!({"type": "image_url", "image_url": "data:image/png;base64,AAAA"})),
            Just(
                json!({"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"}})
            ),
        ];
        prop_oneof![
            text().prop_map(Value::String),
            prop::collection::vec(part, 1..4).prop_map(Value::Array),
        ]
    }

    /// Assistant content: a string, text and refusal parts, or nothing.
    fn assistant_content() -> impl Strategy<Value = Value> {
        let part = prop_oneof![
            text().prop_map(|t| json!({"type": "text", "text": t})),
            text().prop_map(|t| json!({"type": "refusal", "refusal": t})),
        ];
        prop_oneof![
            Just(Value::Null),
            text().prop_map(Value::String),
            prop::collection::vec(part, 1..3).prop_map(Value::Array),
        ]
    }

    /// A tool's result: a string or text parts.
    fn tool_content() -> impl Strategy<Value = Value> {
        prop_oneof![
            text().prop_map(Value::String),
            prop::collection::vec(
                text().prop_map(|t| json!({"type": "text", "text": t})),
                1..3
            )
            .prop_map(Value::Array),
        ]
    }

    /// One step of a conversation; tool call ids are given when the request is put together.
    #[derive(Debug, Clone)]
    enum Turn {
        User(Value),
        Developer(String),
        Assistant(Value),
        /// An assistant message calling tools, then results for some of the calls (in order or
        /// reversed).
        ToolRound {
            content: Value,
            calls: Vec<(&'static str, String)>,
            results: Vec<Option<Value>>,
            reversed: bool,
        },
        /// A legacy `function_call` and, maybe, its `function` result.
        Legacy {
            name: &'static str,
            arguments: String,
            result: Option<Value>,
        },
    }

    fn arguments() -> impl Strategy<Value = String> {
        (text(), 0..100i64).prop_map(|(q, n)| json!({"q": q, "n": n}).to_string())
    }

    fn turn() -> impl Strategy<Value = Turn> {
        let call = (prop::sample::select(TOOL_NAMES), arguments());
        let round = (
            assistant_content(),
            prop::collection::vec(call, 1..4),
            prop::collection::vec(prop::option::weighted(0.8, tool_content()), 4),
            any::<bool>(),
        )
            .prop_map(|(content, calls, mut results, reversed)| {
                results.truncate(calls.len());
                Turn::ToolRound {
                    content,
                    calls,
                    results,
                    reversed,
                }
            });
        prop_oneof![
            3 => user_content().prop_map(Turn::User),
            1 => text().prop_map(Turn::Developer),
            2 => assistant_content().prop_map(Turn::Assistant),
            3 => round,
            1 => (prop::sample::select(TOOL_NAMES), arguments(), prop::option::of(tool_content()))
                .prop_map(|(name, arguments, result)| Turn::Legacy { name, arguments, result }),
        ]
    }

    fn messages(system: Option<String>, turns: Vec<Turn>) -> Vec<Value> {
        let mut messages = Vec::new();
        if let Some(system) = system {
            messages.push(json!({"role": "system", "content": system}));
        }
        let mut next_id = 0;
        for turn in turns {
            match turn {
                Turn::User(content) => messages.push(json!({"role": "user", "content": content})),
                Turn::Developer(text) => {
                    messages.push(json!({"role": "developer", "content": text}))
                }
                Turn::Assistant(content) => {
                    messages.push(json!({"role": "assistant", "content": content}))
                }
                Turn::ToolRound {
                    content,
                    calls,
                    results,
                    reversed,
                } => {
                    let ids: Vec<String> = calls
                        .iter()
                        .map(|_| {
                            next_id += 1;
                            format!("call_{next_id}")
                        })
                        .collect();
                    let tool_calls: Vec<Value> = calls
                        .iter()
                        .zip(&ids)
                        .map(|((name, arguments), id)| {
                            json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
                        })
                        .collect();
                    messages.push(
                        json!({"role": "assistant", "content": content, "tool_calls": tool_calls}),
                    );
                    let mut answers: Vec<Value> = ids
                        .iter()
                        .zip(results)
                        .filter_map(|(id, result)| {
                            result.map(|content| {
                                json!({"role": "tool", "tool_call_id": id, "content": content})
                            })
                        })
                        .collect();
                    if reversed {
                        answers.reverse();
                    }
                    messages.extend(answers);
                }
                Turn::Legacy {
                    name,
                    arguments,
                    result,
                } => {
                    messages.push(json!({"role": "assistant", "content": null, "function_call": {"name": name, "arguments": arguments}}));
                    if let Some(content) = result {
                        messages
                            .push(json!({"role": "function", "name": name, "content": content}));
                    }
                }
            }
        }
        messages
    }

    fn tool() -> impl Strategy<Value = Value> {
        (
            prop::sample::select(TOOL_NAMES),
            prop::option::of(text()),
            any::<bool>(),
            prop::option::of(any::<bool>()),
        )
            .prop_map(|(name, description, with_parameters, strict)| {
                let mut function = Map::new();
                function.insert("name".into(), name.into());
                if let Some(description) = description {
                    function.insert("description".into(), description.into());
                }
                if with_parameters {
                    function.insert(
                        "parameters".into(),
                        json!({"type": "object", "properties": {"q": {"type": "string"}}}),
                    );
                }
                if let Some(strict) = strict {
                    function.insert("strict".into(), strict.into());
                }
                json!({"type": "function", "function": function})
            })
    }

    fn tool_choice() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            prop::sample::select(vec!["auto", "none", "required"]).prop_map(|m| Some(json!(m))),
            prop::sample::select(TOOL_NAMES)
                .prop_map(|n| Some(json!({"type": "function", "function": {"name": n}}))),
        ]
    }

    fn response_format() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(json!({"type": "text"}))),
            Just(Some(json!({"type": "json_object"}))),
            any::<bool>().prop_map(|strict| Some(json!({"type": "json_schema", "json_schema": {
                "name": "answer", "strict": strict,
                "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
            }}))),
        ]
    }

    fn stop() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            text().prop_map(|s| Some(Value::String(s))),
            prop::collection::vec(text(), 0..5).prop_map(|s| Some(json!(s))),
        ]
    }

    /// Optional scalar fields: `(name, value)`.
    fn extras() -> impl Strategy<Value = Vec<(&'static str, Value)>> {
        let extra = prop_oneof![
            (0.0..2.0f64).prop_map(|t| ("temperature", json!(t))),
            (1u64..4096).prop_map(|m| ("max_tokens", json!(m))),
            (1u64..4096).prop_map(|m| ("max_completion_tokens", json!(m))),
            prop::sample::select(vec!["low", "medium", "high"])
                .prop_map(|e| ("reasoning_effort", json!(e))),
            any::<bool>().prop_map(|s| ("stream", json!(s))),
            any::<bool>().prop_map(|u| ("stream_options", json!({"include_usage": u}))),
            any::<bool>().prop_map(|p| ("parallel_tool_calls", json!(p))),
            prop::sample::select(vec![
                ("user", json!("someone")),
                ("n", json!(1)),
                ("frequency_penalty", json!(0.5)),
                ("x_unknown_extension", json!({"a": 1})),
            ]),
        ];
        prop::collection::vec(extra, 0..6)
    }

    /// A chat request as a well-behaved client sends it: every tool message answers an earlier
    /// tool call, every field has its documented type.
    pub(crate) fn well_formed_request() -> impl Strategy<Value = Value> {
        (
            prop::option::of(text()),
            prop::collection::vec(turn(), 1..7),
            prop::collection::vec(tool(), 0..4),
            tool_choice(),
            response_format(),
            stop(),
            extras(),
        )
            .prop_map(|(system, turns, tools, choice, format, stop, extras)| {
                let mut request = Map::new();
                request.insert("model".into(), "gpt-test".into());
                request.insert("messages".into(), Value::Array(messages(system, turns)));
                if !tools.is_empty() {
                    request.insert("tools".into(), Value::Array(tools));
                }
                let optional = [
                    ("tool_choice", choice),
                    ("response_format", format),
                    ("stop", stop),
                ];
                for (name, value) in optional {
                    if let Some(value) = value {
                        request.insert(name.into(), value);
                    }
                }
                for (name, value) in extras {
                    request.insert(name.into(), value);
                }
                Value::Object(request)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::responses::Assembler;
    use crate::dialect::testing::{fixture_events, frames, run};
    use proptest::prelude::*;

    fn translated(request: &Value) -> Translated {
        translate(request.to_string().as_bytes()).unwrap_or_else(|e| panic!("refused: {e:?}"))
    }

    fn refused(request: &Value) -> Invalid {
        match translate(request.to_string().as_bytes()) {
            Ok(translated) => panic!("accepted: {:?}", translated.body),
            Err(invalid) => invalid,
        }
    }

    fn answer(stops: &[&str], include_usage: bool) -> Box<dyn Answer> {
        Box::new(ChatAnswer {
            model: "gpt-client".into(),
            stops: stops.iter().map(|s| s.to_string()).collect(),
            include_usage,
        })
    }

    /// The assembled final response of a recorded stream.
    fn assembled(fixture: &str) -> Value {
        let mut assembler = Assembler::default();
        for event in fixture_events(fixture) {
            assembler.push(&event);
        }
        assembler
            .finish(None)
            .unwrap_or_else(|e| panic!("{fixture} failed: {e:?}"))
    }

    /// The data of every frame a translator wrote for `events`.
    fn stream(
        stops: &[&str],
        include_usage: bool,
        events: &[Value],
        broken: Option<&str>,
    ) -> Vec<Value> {
        frames(&run(answer(stops, include_usage).stream(), events, broken))
            .into_iter()
            .map(|(name, data)| {
                assert_eq!(name, None, "chat frames have no event names");
                data
            })
            .collect()
    }

    /// An expected chunk of the fixtures' answer (`include_usage` off).
    fn chunk(delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": "chatcmpl-0a1b2c3d4e5f",
            "object": "chat.completion.chunk",
            "created": 1764166000,
            "model": "gpt-client",
            "system_fingerprint": null,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
    }

    fn done() -> Value {
        Value::String("[DONE]".into())
    }

    fn role() -> Value {
        chunk(json!({"role": "assistant", "content": ""}), None)
    }

    /// A request using every feature translates to the whole expected Responses request.
    #[test]
    fn full_request_mapping() {
        let request = json!({
            "model": "gpt-client",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "name": "ann", "content": [
                    {"type": "text", "text": "What is here?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}},
                ]},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}, {"type": "text", "text": " CET"}]},
            ],
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}},
                {"type": "function", "function": {"name": "get_time"}},
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true, "description": "The answer"}},
            "reasoning_effort": "high",
            "max_tokens": 300,
            "stop": ["END", "\n\n"],
            "user": "user-7",
            "stream": true,
            "stream_options": {"include_usage": true},
            "frequency_penalty": 0.3,
            "presence_penalty": 0,
            "x_vendor_hint": "fast",
        });
        let translated = translated(&request);
        assert_eq!(
            Value::Object(translated.body.clone()),
            json!({
                "model": "gpt-client",
                "input": [
                    {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Be brief."}]},
                    {"type": "message", "role": "user", "content": [
                        {"type": "input_text", "text": "What is here?"},
                        {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "high"},
                    ]},
                    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
                    {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                    {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
                    {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
                    {"type": "function_call_output", "call_id": "call_2", "output": "noon CET"},
                ],
                "tools": [
                    {"type": "function", "name": "get_weather", "description": "Weather now", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true},
                    {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}, "strict": false},
                ],
                "tool_choice": {"type": "function", "name": "get_weather"},
                "text": {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": true, "description": "The answer"}},
                "max_output_tokens": 300,
                "reasoning": {"effort": "high", "summary": "auto"},
                "user": "user-7",
                "stream": true,
            })
        );
        assert_eq!(translated.model, "gpt-client");
        assert!(translated.stream);
        assert_eq!(
            translated.dropped,
            ["messages[].name", "frequency_penalty", "x_vendor_hint"]
        );
        assert_eq!(
            crate::dialect::client_name(&translated.renamed, "max_output_tokens"),
            "max_tokens"
        );
        assert_eq!(
            crate::dialect::client_name(&translated.renamed, "reasoning"),
            "reasoning_effort"
        );
        assert_eq!(
            crate::dialect::client_name(&translated.renamed, "text"),
            "response_format"
        );
    }

    /// The smaller mappings: legacy functions, formats, web search, files, audio, copied fields.
    #[test]
    fn other_field_mappings() {
        let translated = translated(&json!({
            "model": "m",
            "messages": [
                {"role": "developer", "content": "Rules."},
                {"role": "user", "content": [
                    {"type": "file", "file": {"file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"}},
                    {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}},
                    {"type": "image_url", "image_url": "https://example.com/b.png"},
                ]},
                {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
                {"role": "assistant", "content": null, "function_call": {"name": "lookup", "arguments": "{\"q\":1}"}},
                {"role": "function", "name": "lookup", "content": "found"},
                {"role": "assistant", "content": "", "refusal": null, "tool_calls": []},
            ],
            "functions": [{"name": "lookup", "parameters": {"type": "object"}}],
            "function_call": {"name": "lookup"},
            "web_search_options": {"search_context_size": "low", "user_location": {"type": "approximate", "approximate": {"city": "Oslo"}}},
            "response_format": {"type": "json_object"},
            "verbosity": "low",
            "max_completion_tokens": 50,
            "temperature": 0.2,
            "top_p": 0.9,
            "parallel_tool_calls": false,
            "metadata": {"k": "v"},
            "service_tier": "auto",
            "prompt_cache_key": "pk",
            "safety_identifier": "sid",
            "n": 1,
            "modalities": ["text"],
            "logprobs": false,
            "seed": 4,
            "store": true,
            "stream": null,
        }));
        assert_eq!(
            Value::Object(translated.body.clone()),
            json!({
                "model": "m",
                "input": [
                    {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Rules."}]},
                    {"type": "message", "role": "user", "content": [
                        {"type": "input_file", "file_data": "data:application/pdf;base64,AA", "filename": "a.pdf"},
                        {"type": "input_image", "image_url": "https://example.com/b.png"},
                    ]},
                    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "I can't."}]},
                    {"type": "function_call", "call_id": "call_legacy_3", "name": "lookup", "arguments": "{\"q\":1}"},
                    {"type": "function_call_output", "call_id": "call_legacy_3", "output": "found"},
                ],
                "tools": [
                    {"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": false},
                    {"type": "web_search", "search_context_size": "low", "user_location": {"type": "approximate", "city": "Oslo"}},
                ],
                "tool_choice": {"type": "function", "name": "lookup"},
                "text": {"format": {"type": "json_object"}, "verbosity": "low"},
                "max_output_tokens": 50,
                "temperature": 0.2,
                "top_p": 0.9,
                "parallel_tool_calls": false,
                "metadata": {"k": "v"},
                "service_tier": "auto",
                "prompt_cache_key": "pk",
                "safety_identifier": "sid",
                "stream": false,
            })
        );
        assert!(!translated.stream);
        assert_eq!(
            translated.dropped,
            ["messages[].content.input_audio", "seed", "store"]
        );
        assert_eq!(
            crate::dialect::client_name(&translated.renamed, "max_output_tokens"),
            "max_completion_tokens"
        );
        assert_eq!(
            crate::dialect::client_name(&translated.renamed, "tool_choice"),
            "function_call"
        );
        assert_eq!(
            crate::dialect::client_name(&translated.renamed, "tools"),
            "functions"
        );
    }

    /// `tool_choice` modes and other tool types pass through; text formats map.
    #[test]
    fn choices_and_formats() {
        let base = |field: &str, value: Value| {
            let mut request =
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
            request[field] = value;
            translated(&request).body
        };
        for mode in ["auto", "none", "required"] {
            assert_eq!(base("tool_choice", json!(mode))["tool_choice"], mode);
        }
        let hosted = json!({"type": "file_search", "vector_store_ids": ["vs"]});
        assert_eq!(base("tool_choice", hosted.clone())["tool_choice"], hosted);
        assert_eq!(
            base("tools", json!([hosted.clone()]))["tools"],
            json!([hosted])
        );
        assert_eq!(base("function_call", json!("none"))["tool_choice"], "none");
        assert_eq!(
            base("response_format", json!({"type": "text"}))["text"],
            json!({"format": {"type": "text"}})
        );
        assert_eq!(
            base("stream_options", json!(null)).get("stream_options"),
            None
        );
    }

    /// Every refused request names the offending field.
    #[test]
    fn invalid_requests_name_their_field() {
        let user = json!({"role": "user", "content": "hi"});
        let with = |field: &str, value: Value| {
            let mut request = json!({"model": "m", "messages": [user.clone()]});
            request[field] = value;
            request
        };
        let messages = |list: Value| json!({"model": "m", "messages": list});
        let call = json!({"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
        let cases = [
            (json!({"messages": [user.clone()]}), "model"),
            (json!({"model": "m"}), "messages"),
            (messages(json!([])), "messages"),
            (messages(json!("hi")), "messages"),
            (messages(json!(["hi"])), "messages[0]"),
            (messages(json!([{"content": "hi"}])), "messages[0].role"),
            (
                messages(json!([{"role": "robot", "content": "hi"}])),
                "messages[0].role",
            ),
            (messages(json!([{"role": "user"}])), "messages[0].content"),
            (
                messages(json!([{"role": "user", "content": 3}])),
                "messages[0].content",
            ),
            (
                messages(json!([{"role": "user", "content": ["x"]}])),
                "messages[0].content[0]",
            ),
            (
                messages(json!([{"role": "user", "content": [{"text": "x"}]}])),
                "messages[0].content[0].type",
            ),
            (
                messages(json!([{"role": "user", "content": [{"type": "text", "text": 1}]}])),
                "messages[0].content[0].text",
            ),
            (
                messages(json!([{"role": "user", "content": [{"type": "image_url"}]}])),
                "messages[0].content[0].image_url",
            ),
            (
                messages(
                    json!([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
                ),
                "messages[0].content[0].image_url.url",
            ),
            (
                messages(json!([{"role": "user", "content": [{"type": "file"}]}])),
                "messages[0].content[0].file",
            ),
            (
                messages(
                    json!([{"role": "user", "content": [{"type": "file", "file": {"file_id": 3}}]}]),
                ),
                "messages[0].content[0].file.file_id",
            ),
            (
                messages(
                    json!([{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}]),
                ),
                "messages[0].content[0].type",
            ),
            (
                messages(
                    json!([{"role": "assistant", "content": [{"type": "image_url", "image_url": "u"}]}]),
                ),
                "messages[0].content[0].type",
            ),
            (
                messages(json!([{"role": "assistant", "content": true}])),
                "messages[0].content",
            ),
            (
                messages(json!([{"role": "assistant", "refusal": 1}])),
                "messages[0].refusal",
            ),
            (
                messages(json!([{"role": "assistant", "tool_calls": {}}])),
                "messages[0].tool_calls",
            ),
            (
                messages(
                    json!([{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}]),
                ),
                "messages[0].tool_calls[0].id",
            ),
            (
                messages(
                    json!([{"role": "assistant", "tool_calls": [{"id": "c", "type": "custom"}]}]),
                ),
                "messages[0].tool_calls[0].type",
            ),
            (
                messages(json!([{"role": "assistant", "tool_calls": [{"id": "c"}]}])),
                "messages[0].tool_calls[0].function",
            ),
            (
                messages(
                    json!([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}]),
                ),
                "messages[0].tool_calls[0].function.name",
            ),
            (
                messages(
                    json!([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 2}}]}]),
                ),
                "messages[0].tool_calls[0].function.arguments",
            ),
            (
                messages(json!([{"role": "assistant", "function_call": "f"}])),
                "messages[0].function_call",
            ),
            (
                messages(json!([call.clone(), {"role": "tool", "content": "x"}])),
                "messages[1].tool_call_id",
            ),
            (
                messages(
                    json!([call.clone(), {"role": "tool", "tool_call_id": "c9", "content": "x"}]),
                ),
                "messages[1].tool_call_id",
            ),
            (
                messages(
                    json!([call.clone(), {"role": "tool", "tool_call_id": "c1", "content": 5}]),
                ),
                "messages[1].content",
            ),
            (
                messages(
                    json!([call.clone(), {"role": "tool", "tool_call_id": "c1", "content": [{"type": "image_url", "image_url": "u"}]}]),
                ),
                "messages[1].content[0].type",
            ),
            (
                messages(json!([{"role": "function", "content": "x"}])),
                "messages[0].name",
            ),
            (
                messages(json!([{"role": "function", "name": "f", "content": "x"}])),
                "messages[0].name",
            ),
            (with("tools", json!({})), "tools"),
            (with("tools", json!([1])), "tools[0]"),
            (
                with("tools", json!([{"function": {"name": "f"}}])),
                "tools[0].type",
            ),
            (
                with("tools", json!([{"type": "function"}])),
                "tools[0].function",
            ),
            (
                with(
                    "tools",
                    json!([{"type": "function", "function": {"description": "d"}}]),
                ),
                "tools[0].function.name",
            ),
            (
                with("functions", json!([{"description": "d"}])),
                "functions[0].name",
            ),
            (with("functions", json!("f")), "functions"),
            (
                with("web_search_options", json!(true)),
                "web_search_options",
            ),
            (with("tool_choice", json!("sometimes")), "tool_choice"),
            (
                with("tool_choice", json!({"type": "function"})),
                "tool_choice.function.name",
            ),
            (with("function_call", json!({})), "function_call.name"),
            (with("function_call", json!(3)), "function_call"),
            (
                with("response_format", json!({"type": "xml"})),
                "response_format.type",
            ),
            (
                with("response_format", json!({"type": "json_schema"})),
                "response_format.json_schema",
            ),
            (
                with(
                    "response_format",
                    json!({"type": "json_schema", "json_schema": {"schema": {}}}),
                ),
                "response_format.json_schema.name",
            ),
            (with("verbosity", json!(1)), "verbosity"),
            (with("reasoning_effort", json!(1)), "reasoning_effort"),
            (with("max_tokens", json!(-1)), "max_tokens"),
            (
                with("max_completion_tokens", json!("10")),
                "max_completion_tokens",
            ),
            (with("stop", json!(1)), "stop"),
            (with("stop", json!(["a", 2])), "stop[1]"),
            (with("stop", json!(["a", "b", "c", "d", "e"])), "stop"),
            (with("n", json!(2)), "n"),
            (with("n", json!(0)), "n"),
            (with("n", json!("1")), "n"),
            (with("modalities", json!(["text", "audio"])), "modalities"),
            (with("modalities", json!("text")), "modalities"),
            (
                with("audio", json!({"voice": "alloy", "format": "mp3"})),
                "audio",
            ),
            (with("stream", json!("yes")), "stream"),
            (with("stream_options", json!(true)), "stream_options"),
            (
                with("stream_options", json!({"include_usage": "yes"})),
                "stream_options.include_usage",
            ),
        ];
        for (request, param) in cases {
            let invalid = refused(&request);
            assert_eq!(
                invalid.param.as_deref(),
                Some(param),
                "{request}: {invalid:?}"
            );
        }
        assert!(refused(&with("n", json!(3)))
            .message
            .contains("one choice per request"));
        assert_eq!(translate(b"[]").map(|_| ()).map_err(|e| e.param), Err(None));
    }

    /// A text answer streams as the role chunk, one chunk per delta, the closing chunk, `[DONE]`.
    #[test]
    fn text_stream() {
        assert_eq!(
            stream(&[], false, &fixture_events("text"), None),
            [
                role(),
                chunk(json!({"content": "Hel"}), None),
                chunk(json!({"content": "lo, "}), None),
                chunk(json!({"content": "world."}), None),
                chunk(json!({}), Some("stop")),
                done(),
            ]
        );
    }

    /// With `include_usage`, every chunk carries `usage: null` and a usage chunk precedes `[DONE]`.
    #[test]
    fn text_stream_with_usage() {
        let frames = stream(&[], true, &fixture_events("text"), None);
        let with_null_usage = |mut chunk: Value| {
            chunk["usage"] = Value::Null;
            chunk
        };
        let mut usage = with_null_usage(chunk(json!({}), None));
        usage["choices"] = json!([]);
        usage["usage"] = json!({
            "prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25,
            "prompt_tokens_details": {"cached_tokens": 16},
            "completion_tokens_details": {"reasoning_tokens": 0},
        });
        assert_eq!(
            frames,
            [
                with_null_usage(role()),
                with_null_usage(chunk(json!({"content": "Hel"}), None)),
                with_null_usage(chunk(json!({"content": "lo, "}), None)),
                with_null_usage(chunk(json!({"content": "world."}), None)),
                with_null_usage(chunk(json!({}), Some("stop"))),
                usage,
                done(),
            ]
        );
    }

    /// A tool call streams its id and name first, then its argument fragments.
    #[test]
    fn tool_call_stream() {
        let call = |fields: Value| chunk(json!({"tool_calls": [fields]}), None);
        assert_eq!(
            stream(&[], false, &fixture_events("tool_call"), None),
            [
                role(),
                call(
                    json!({"index": 0, "id": "call_Wx1", "type": "function", "function": {"name": "get_weather", "arguments": ""}})
                ),
                call(json!({"index": 0, "function": {"arguments": "{\"ci"}})),
                call(json!({"index": 0, "function": {"arguments": "ty\":\"Pa"}})),
                call(json!({"index": 0, "function": {"arguments": "ris\"}"}})),
                chunk(json!({}), Some("tool_calls")),
                done(),
            ]
        );
    }

    /// Parallel calls stream under indexes 0 and 1, each with its own id and whole arguments.
    #[test]
    fn parallel_tool_calls_stream() {
        let frames = stream(&[], false, &fixture_events("parallel_tool_calls"), None);
        assert_eq!(
            frames.get(1),
            Some(&chunk(json!({"content": "Checking both."}), None))
        );
        let mut calls: Vec<(Value, String)> = Vec::new();
        for frame in &frames {
            for call in frame
                .pointer("/choices/0/delta/tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let index = call["index"].as_u64().unwrap_or(99) as usize;
                if index == calls.len() {
                    calls.push((call["id"].clone(), String::new()));
                }
                let arguments = call.pointer("/function/arguments").and_then(Value::as_str);
                match calls.get_mut(index) {
                    Some((_, sent)) => sent.push_str(arguments.unwrap_or("")),
                    None => panic!("index {index} out of order in {frames:?}"),
                }
            }
        }
        assert_eq!(
            calls,
            [
                (json!("call_A1"), "{\"city\":\"Paris\"}".to_string()),
                (json!("call_B2"), "{\"zone\":\"Asia/Tokyo\"}".to_string()),
            ]
        );
        assert_eq!(
            frames[frames.len() - 2..],
            [chunk(json!({}), Some("tool_calls")), done()]
        );
    }

    /// Reasoning summaries stream as `reasoning_content`, parts a paragraph apart.
    #[test]
    fn reasoning_stream() {
        let reasoning = |text: &str| chunk(json!({"reasoning_content": text}), None);
        assert_eq!(
            stream(&[], false, &fixture_events("reasoning"), None),
            [
                role(),
                reasoning("**Thinking** about "),
                reasoning("the question"),
                reasoning("\n\nThen "),
                reasoning("answering"),
                chunk(json!({"content": "The answer "}), None),
                chunk(json!({"content": "is 4."}), None),
                chunk(json!({}), Some("stop")),
                done(),
            ]
        );
    }

    /// An answer cut at the token limit ends with `finish_reason: "length"`.
    #[test]
    fn length_stream() {
        let frames = stream(&[], false, &fixture_events("length"), None);
        assert_eq!(
            frames[frames.len() - 2..],
            [chunk(json!({}), Some("length")), done()]
        );
    }

    /// An upstream failure mid-answer becomes an error chunk, with no `[DONE]` after it.
    #[test]
    fn error_midstream() {
        assert_eq!(
            stream(&[], false, &fixture_events("error_midstream"), None),
            [
                role(),
                chunk(json!({"content": "Partial "}), None),
                json!({"error": {
                    "message": "The model failed to generate a response.",
                    "type": "upstream_error",
                    "code": "server_error",
                    "param": null,
                }}),
            ]
        );
        let error_event =
            [json!({"type": "error", "code": "rate_limit_exceeded", "message": "slow down"})];
        assert_eq!(
            stream(&[], true, &error_event, None),
            [
                json!({"error": {"message": "slow down", "type": "upstream_error", "code": "rate_limit_exceeded", "param": null}})
            ]
        );
    }

    /// A stream that ends or breaks before its terminal event ends with an error chunk.
    #[test]
    fn cut_streams() {
        let mut events = fixture_events("text");
        events.pop();
        let ended = stream(&[], false, &events, None);
        assert_eq!(
            ended.last().and_then(|f| f.pointer("/error/code")),
            Some(&json!("stream_interrupted"))
        );
        assert!(!ended.contains(&done()));
        let broken = stream(&[], false, &events, Some("connection reset"));
        let message = broken
            .last()
            .and_then(|f| f.pointer("/error/message"))
            .and_then(Value::as_str)
            .unwrap_or("");
        assert!(message.contains("connection reset"), "{message}");
        assert_eq!(broken.len(), 5, "role, three deltas, the error: {broken:?}");
        assert_eq!(stream(&[], false, &[], Some("refused")).len(), 1);
    }

    /// A stop sequence split across deltas ends the stream where it starts, with an estimated usage.
    #[test]
    fn stop_sequence_stream() {
        let events = fixture_events("text");
        let mut translator = answer(&["lo, w"], true).stream();
        let mut out = Vec::new();
        let mut flows = Vec::new();
        for event in &events {
            let flow = translator.event(event, &mut out);
            flows.push(flow);
            if flow == Flow::Stop {
                break;
            }
        }
        translator.finish(None, &mut out);
        assert_eq!(flows.last(), Some(&Flow::Stop));
        assert_eq!(flows.len(), 7, "stopped at the third delta");
        let text = String::from_utf8(out).unwrap_or_default();
        let frames: Vec<Value> = frames(&text).into_iter().map(|(_, data)| data).collect();
        let with_null_usage = |mut chunk: Value| {
            chunk["usage"] = Value::Null;
            chunk
        };
        let mut usage = with_null_usage(chunk(json!({}), None));
        usage["choices"] = json!([]);
        let estimate = count_text("Hel");
        usage["usage"] = json!({
            "prompt_tokens": 0, "completion_tokens": estimate, "total_tokens": estimate,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        });
        assert_eq!(
            frames,
            [
                with_null_usage(role()),
                with_null_usage(chunk(json!({"content": "He"}), None)),
                with_null_usage(chunk(json!({"content": "l"}), None)),
                with_null_usage(chunk(json!({}), Some("stop"))),
                usage,
                done(),
            ]
        );
    }

    /// Held-back text that never completes a stop sequence is sent before the end.
    #[test]
    fn unmatched_stop_prefix_is_released() {
        let frames = stream(&["world!"], false, &fixture_events("text"), None);
        assert_eq!(
            frames,
            [
                role(),
                chunk(json!({"content": "Hel"}), None),
                chunk(json!({"content": "lo, "}), None),
                chunk(json!({"content": "world."}), None),
                chunk(json!({}), Some("stop")),
                done(),
            ]
        );
        let frames = stream(&["d."], false, &fixture_events("text"), None);
        assert_eq!(
            frames.get(3),
            Some(&chunk(json!({"content": "worl"}), None))
        );
    }

    /// Text held for a stop sequence goes out before a tool call; a call first seen whole (at
    /// its `output_item.done`) is sent whole.
    #[test]
    fn held_text_and_calls_seen_only_when_done() {
        let events = [
            json!({"type": "response.created", "response": {"id": "resp_0a1b2c3d4e5f", "created_at": 1764166000}}),
            json!({"type": "response.output_text.delta", "output_index": 0, "delta": "abc E"}),
            json!({"type": "response.output_item.done", "output_index": 1, "item": {
                "type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": "{\"a\":1}",
            }}),
            json!({"type": "response.completed", "response": {"status": "completed"}}),
        ];
        let call = |fields: Value| chunk(json!({"tool_calls": [fields]}), None);
        assert_eq!(
            stream(&["END"], false, &events, None),
            [
                role(),
                chunk(json!({"content": "abc "}), None),
                chunk(json!({"content": "E"}), None),
                call(
                    json!({"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}})
                ),
                call(json!({"index": 0, "function": {"arguments": "{\"a\":1}"}})),
                chunk(json!({}), Some("tool_calls")),
                done(),
            ]
        );
    }

    /// A non-streamed text answer carries content, usage with cached tokens, and the stop reason.
    #[test]
    fn text_reply() {
        assert_eq!(
            answer(&[], false).reply(&assembled("text")),
            json!({
                "id": "chatcmpl-0a1b2c3d4e5f",
                "object": "chat.completion",
                "created": 1764166000,
                "model": "gpt-client",
                "system_fingerprint": null,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello, world.", "refusal": null},
                    "logprobs": null,
                    "finish_reason": "stop",
                }],
                "usage": {
                    "prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25,
                    "prompt_tokens_details": {"cached_tokens": 16},
                    "completion_tokens_details": {"reasoning_tokens": 0},
                },
            })
        );
    }

    /// Non-streamed tool calls, reasoning, length and stop sequences.
    #[test]
    fn other_replies() {
        let reply = answer(&[], false).reply(&assembled("parallel_tool_calls"));
        assert_eq!(
            reply["choices"][0],
            json!({
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Checking both.",
                    "refusal": null,
                    "tool_calls": [
                        {"id": "call_A1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "call_B2", "type": "function", "function": {"name": "get_time", "arguments": "{\"zone\":\"Asia/Tokyo\"}"}},
                    ],
                },
                "logprobs": null,
                "finish_reason": "tool_calls",
            })
        );
        let reply = answer(&[], false).reply(&assembled("tool_call"));
        assert_eq!(
            reply.pointer("/choices/0/message/content"),
            Some(&Value::Null)
        );

        let reply = answer(&[], false).reply(&assembled("reasoning"));
        assert_eq!(
            reply["choices"][0]["message"],
            json!({
                "role": "assistant",
                "content": "The answer is 4.",
                "refusal": null,
                "reasoning_content": "**Thinking** about the question\n\nThen answering",
            })
        );
        assert_eq!(
            reply["usage"]["completion_tokens_details"]["reasoning_tokens"],
            100
        );

        let reply = answer(&[], false).reply(&assembled("length"));
        assert_eq!(reply["choices"][0]["finish_reason"], "length");

        let reply = answer(&["upon"], false).reply(&assembled("length"));
        assert_eq!(reply["choices"][0]["message"]["content"], "Once ");
        assert_eq!(reply["choices"][0]["finish_reason"], "stop");
        let reply = answer(&["both"], false).reply(&assembled("parallel_tool_calls"));
        assert_eq!(reply["choices"][0]["message"]["content"], "Checking ");
        assert_eq!(reply["choices"][0]["message"].get("tool_calls"), None);
        assert_eq!(reply["choices"][0]["finish_reason"], "stop");
    }

    /// A refusal part becomes `message.refusal`, other output items are ignored.
    #[test]
    fn refusal_reply() {
        let response = json!({
            "id": "resp_r", "created_at": 5, "status": "completed",
            "output": [
                {"type": "web_search_call", "status": "completed"},
                {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
            ],
        });
        let reply = answer(&[], false).reply(&response);
        assert_eq!(reply["id"], "chatcmpl-r");
        assert_eq!(
            reply["choices"][0]["message"],
            json!({"role": "assistant", "content": null, "refusal": "No."})
        );
        assert_eq!(reply["usage"]["total_tokens"], 0);
    }

    /// The input items of a translated request pass the upstream's pairing and role rules.
    fn check_items(body: &Map<String, Value>) -> Result<(), TestCaseError> {
        let mut calls = HashSet::new();
        for item in body["input"].as_array().into_iter().flatten() {
            match item["type"].as_str() {
                Some("function_call") => {
                    calls.insert(item["call_id"].clone());
                }
                Some("function_call_output") => {
                    prop_assert!(calls.contains(&item["call_id"]), "unanswered output {item}");
                }
                Some("message") => {
                    let assistant = item["role"] == "assistant";
                    for part in item["content"].as_array().into_iter().flatten() {
                        prop_assert_eq!(part["type"] == "output_text", assistant, "{}", item);
                    }
                }
                other => prop_assert!(false, "unexpected item type {other:?}"),
            }
        }
        Ok(())
    }

    proptest! {
        /// No JSON value makes the translator panic.
        #[test]
        fn any_json_is_answered(value in strategies::any_json()) {
            let _ = translate(value.to_string().as_bytes());
        }

        /// No chat-shaped request with random insides makes the translator panic.
        #[test]
        fn any_chat_shaped_request_is_answered(value in strategies::chat_shaped()) {
            let _ = translate(value.to_string().as_bytes());
        }

        /// A well-formed request always translates, into items the upstream accepts.
        #[test]
        fn well_formed_requests_translate(request in strategies::well_formed_request()) {
            let translated = translate(request.to_string().as_bytes());
            prop_assert!(translated.is_ok(), "{request}: {:?}", translated.err());
            if let Ok(translated) = translated {
                check_items(&translated.body)?;
            }
        }
    }
}
