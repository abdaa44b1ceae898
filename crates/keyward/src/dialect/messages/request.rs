//! The Messages request as a Responses request: the top-level fields (limits, tools, tool
//! choice, thinking, output format, stop sequences, metadata); the conversation itself is
//! `content`'s.
//!
//! A field of the wrong JSON type (`max_tokens` as a string, `thinking` not an object, a
//! `tool_choice` of type "tool" without its name) is refused with a 400 naming it, as Anthropic
//! does; a well-typed value keyward cannot carry (an unknown thinking type, a forced tool choice
//! with no tools) is dropped and reported.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::content::{convert_messages, system_parts};
use super::MessagesAnswer;
use crate::dialect::fields::{
    expect, json_kind, model_field, parse_object, stream_flag, wrong_type, Expected,
};
use crate::dialect::responses::message_item;
use crate::dialect::{Invalid, Translated};

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
    translate_request(parse_object(body)?)
}

/// Translates a Messages request, already parsed, into a Responses request.
pub(crate) fn translate_request(mut request: Map<String, Value>) -> Result<Translated, Invalid> {
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
    // Taken out (a null left in its place), to be freed message by message as it is translated.
    let messages = request.get_mut("messages").map(Value::take);
    convert_messages(messages, &mut input, &mut dropped)?;

    let mut body = Map::new();
    body.insert("model".into(), Value::String(model.clone()));
    body.insert("input".into(), Value::Array(input));
    body.insert("stream".into(), Value::Bool(stream));
    let mut renamed = Vec::new();
    expect("max_tokens", request.get("max_tokens"), Expected::Count)?;
    if let Some(Value::Number(n)) = request.get("max_tokens") {
        body.insert("max_output_tokens".into(), Value::Number(n.clone()));
        renamed.push(("max_output_tokens", "max_tokens"));
    }
    for name in ["temperature", "top_p"] {
        expect(name, request.get(name), Expected::Number)?;
        if let Some(Value::Number(n)) = request.get(name) {
            body.insert(name.into(), Value::Number(n.clone()));
        }
    }
    // Read by no upstream, so dropped below; but a client sending it mistyped is told.
    expect("top_k", request.get("top_k"), Expected::Count)?;

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
    )?;

    let thinking = Thinking::of(request.get("thinking"), &mut dropped)?;
    let config = OutputConfig::of(&request, &mut dropped)?;
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
    let stops = stop_sequences(request.get("stop_sequences"))?;
    if let Some(key) = cache_key(request.get("metadata"), &mut dropped)? {
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
pub(super) struct Dropped(Vec<String>);

impl Dropped {
    pub(super) fn add(&mut self, name: impl Into<String>) {
        let name = name.into();
        if !self.0.contains(&name) {
            self.0.push(name);
        }
    }
}

/// A string field of an object.
pub(super) fn str_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object.get(key).and_then(Value::as_str)
}

/// A string field that must be there and not be empty.
pub(super) fn required_str<'a>(
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

/// The `tool_choice` types, for error messages.
const TOOL_CHOICE_TYPES: &str = "\"auto\", \"any\", \"tool\" or \"none\"";

/// `tool_choice`, when there are tools for it to choose from.
fn convert_tool_choice(
    choice: Option<&Value>,
    has_tools: bool,
    body: &mut Map<String, Value>,
    dropped: &mut Dropped,
) -> Result<(), Invalid> {
    let choice = match choice {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(choice)) => choice,
        Some(other) => {
            return Err(wrong_type(
                "tool_choice",
                "an object such as {\"type\": \"auto\"}",
                other,
            ))
        }
    };
    let parallel = choice.get("disable_parallel_tool_use");
    expect(
        "tool_choice.disable_parallel_tool_use",
        parallel,
        Expected::Boolean,
    )?;
    let kind = match choice.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        None | Some(Value::Null) => {
            return Err(Invalid::at(
                "tool_choice.type",
                format!("`tool_choice` needs a `type`: {TOOL_CHOICE_TYPES}"),
            ))
        }
        Some(other) => {
            return Err(wrong_type(
                "tool_choice.type",
                &format!("a string ({TOOL_CHOICE_TYPES})"),
                other,
            ))
        }
    };
    if parallel == Some(&Value::Bool(true)) {
        body.insert("parallel_tool_calls".into(), Value::Bool(false));
    }
    let converted = match kind {
        "auto" => json!("auto"),
        "none" => json!("none"),
        "any" => json!("required"),
        "tool" => match choice.get("name") {
            Some(Value::String(name)) => json!({"type": "function", "name": name}),
            None | Some(Value::Null) => {
                return Err(Invalid::at(
                    "tool_choice.name",
                    "a `tool_choice` of type \"tool\" needs the `name` of the tool to call",
                ))
            }
            Some(other) => return Err(wrong_type("tool_choice.name", "a string", other)),
        },
        _ => {
            dropped.add("tool_choice");
            return Ok(());
        }
    };
    if has_tools {
        body.insert("tool_choice".into(), converted);
    } else if converted != "auto" && converted != "none" {
        // Forcing a call with no tool left to call would fail upstream.
        dropped.add("tool_choice");
    }
    Ok(())
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
    fn of(value: Option<&Value>, dropped: &mut Dropped) -> Result<Self, Invalid> {
        const TYPES: &str = "\"enabled\", \"adaptive\" or \"disabled\"";
        let thinking = match value {
            None | Some(Value::Null) => return Ok(Self::Off),
            Some(Value::Object(thinking)) => thinking,
            Some(other) => {
                return Err(wrong_type(
                    "thinking",
                    "an object such as {\"type\": \"adaptive\"}",
                    other,
                ))
            }
        };
        expect(
            "thinking.budget_tokens",
            thinking.get("budget_tokens"),
            Expected::Count,
        )?;
        expect(
            "thinking.display",
            thinking.get("display"),
            Expected::String,
        )?;
        let kind = match thinking.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            None | Some(Value::Null) => {
                return Err(Invalid::at(
                    "thinking.type",
                    format!("`thinking` needs a `type`: {TYPES}"),
                ))
            }
            Some(other) => {
                return Err(wrong_type(
                    "thinking.type",
                    &format!("a string ({TYPES})"),
                    other,
                ))
            }
        };
        Ok(match kind {
            "enabled" => thinking
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .map_or(Self::Adaptive, Self::Budget),
            "adaptive" => Self::Adaptive,
            "disabled" => Self::Off,
            _ => {
                dropped.add("thinking");
                Self::Off
            }
        })
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
    fn of(request: &Map<String, Value>, dropped: &mut Dropped) -> Result<Self, Invalid> {
        let mut config = Self::default();
        match request.get("output_config") {
            None | Some(Value::Null) => {}
            Some(Value::Object(fields)) => {
                for (key, value) in fields {
                    match key.as_str() {
                        "effort" => {
                            expect("output_config.effort", Some(value), Expected::String)?;
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
                        "format" => {
                            config.format = json_format(value, "output_config.format", dropped)?
                        }
                        _ if value.is_null() => {}
                        other => dropped.add(format!("output_config.{other}")),
                    }
                }
            }
            Some(other) => return Err(wrong_type("output_config", "an object", other)),
        }
        if let Some(format) = request.get("output_format").filter(|f| !f.is_null()) {
            if config.format.is_none() {
                config.format = json_format(format, "output_format", dropped)?;
            }
        }
        Ok(config)
    }
}

/// Anthropic's structured output format (`{"type":"json_schema","schema":...}`) as a Responses
/// `text.format`. Not strict: OpenAI's strict mode wants every property required, which Anthropic
/// schemas need not say.
/// `field` is the format's path (`output_config.format`, `output_format`).
fn json_format(
    format: &Value,
    field: &str,
    dropped: &mut Dropped,
) -> Result<Option<Value>, Invalid> {
    if !format.is_null() && !format.is_object() {
        return Err(wrong_type(
            field,
            "an object such as {\"type\": \"json_schema\", \"schema\": {...}}",
            format,
        ));
    }
    match (
        format.get("type").and_then(Value::as_str),
        format.get("schema"),
    ) {
        (Some("json_schema"), Some(schema)) if schema.is_object() => Ok(Some(json!({
            "type": "json_schema",
            "name": "output",
            "schema": schema,
            "strict": false,
        }))),
        _ => {
            dropped.add(field);
            Ok(None)
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

/// `stop_sequences` (an array of strings; one string is taken too), empty ones left out.
fn stop_sequences(value: Option<&Value>) -> Result<Vec<String>, Invalid> {
    let stops = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(stop)) => vec![stop],
        Some(Value::Array(stops)) => stops
            .iter()
            .enumerate()
            .map(|(i, stop)| match stop {
                Value::String(stop) => Ok(stop),
                other => Err(wrong_type(
                    &format!("stop_sequences.{i}"),
                    "a string",
                    other,
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(wrong_type("stop_sequences", "an array of strings", other)),
    };
    Ok(stops
        .into_iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect())
}

/// `metadata.user_id` as a `prompt_cache_key`: one conversation stays on one prompt cache, and
/// only a hash of the id leaves this machine.
fn cache_key(metadata: Option<&Value>, dropped: &mut Dropped) -> Result<Option<String>, Invalid> {
    let metadata = match metadata {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(metadata)) => metadata,
        Some(other) => {
            return Err(wrong_type(
                "metadata",
                "an object such as {\"user_id\": \"...\"}",
                other,
            ))
        }
    };
    expect(
        "metadata.user_id",
        metadata.get("user_id"),
        Expected::String,
    )?;
    for (key, value) in metadata {
        if key != "user_id" && !value.is_null() {
            dropped.add(format!("metadata.{key}"));
        }
    }
    let Some(user_id) = str_field(metadata, "user_id").filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    let digest = Sha256::digest(user_id.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    Ok(Some(format!("kw-{hex}")))
}
