//! The chat request as a Responses request: the top-level fields (tools, tool choice, formats,
//! limits, stop sequences); the conversation itself is `conversation`'s.

use serde_json::{json, Map, Value};

use super::conversation::input_items;
use super::ChatAnswer;
use crate::dialect::draft::{include_usage_option, single_choice, stop_sequences, Draft};
use crate::dialect::fields::{json_kind, model_field, parse_object, sent, stream_flag};
use crate::dialect::{Invalid, Translated};

/// A `/v1/chat/completions` request as a Responses request, with how to answer it.
pub(crate) fn translate(body: &[u8]) -> Result<Translated, Invalid> {
    let mut request = parse_object(body)?;
    let model = model_field(&request)?;
    let stream = stream_flag(&request)?;
    let mut draft = Draft::new(&model);
    // Taken out (a null left in its place), to be freed message by message as it is translated.
    let messages = request.get_mut("messages").map(Value::take);
    let input = input_items(messages, &mut draft)?;
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
                    "`tool_choice` must be \"auto\", \"none\", \"required\" or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}, not {}",
                    sent(other)
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
                    "`function_call` must be \"auto\", \"none\" or {{\"name\": ...}}, not {}",
                    sent(other)
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
