//! The Gemini request as a Responses request: the top-level fields (tools, tool config, the
//! generation config with its limits, stop sequences, structured output and thinking, safety
//! settings); the conversation itself is `conversation`'s.
//!
//! A field of the wrong JSON type is refused with a 400 naming it, as Google does; a well-typed
//! value keyward cannot carry is dropped and reported, or refused when dropping it would change
//! the answer (more than one candidate, audio answers, a cached content keyward does not have).

use serde_json::{json, Map, Value};

use super::conversation::{convert_contents, system_instruction};
use super::keys::{self, camel, field};
use super::schema::{json_schema, openapi_schema};
use super::{Call, Framing, GeminiAnswer};
use crate::dialect::draft::{single_choice, Draft};
use crate::dialect::fields::{expect, parse_object, sent, wrong_type, Expected};
use crate::dialect::{Invalid, Translated};

/// A `:generateContent` or `:streamGenerateContent` request as a Responses request.
pub(crate) fn translate(call: &Call, body: &[u8]) -> Result<Translated, Invalid> {
    translate_request(call, parse_object(body)?)
}

/// A `:countTokens` request (`contents`, or a whole `generateContentRequest`) as the Responses
/// request whose input is counted.
pub(crate) fn translate_count(model: &str, body: &[u8]) -> Result<Translated, Invalid> {
    let mut request = parse_object(body)?;
    let request = match keys::take(&mut request, "generateContentRequest") {
        None => request,
        Some(Value::Object(inner)) => inner,
        Some(other) => {
            return Err(wrong_type(
                "generateContentRequest",
                "an object such as {\"contents\": [...]}",
                &other,
            ))
        }
    };
    let call = Call {
        model: model.to_string(),
        framing: Framing::Whole,
    };
    translate_request(&call, request)
}

fn translate_request(call: &Call, mut request: Map<String, Value>) -> Result<Translated, Invalid> {
    let mut draft = Draft::new(&call.model);
    let mut input = Vec::new();
    if let Some(system) = keys::take(&mut request, "systemInstruction") {
        input.extend(system_instruction(&system, &mut draft)?);
    }
    // Taken out, to be freed content by content as it is translated.
    let contents = keys::take(&mut request, "contents");
    convert_contents(contents, &mut input, &mut draft)?;
    draft.body.insert("input".into(), Value::Array(input));

    let mut tools = tools(field(&request, "tools"), &mut draft)?;
    let choice = tool_config(field(&request, "toolConfig"), &mut tools, &mut draft)?;
    if !tools.is_empty() {
        draft.body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = choice {
        draft.body.insert("tool_choice".into(), choice);
    }
    let generation = generation_config(field(&request, "generationConfig"), &mut draft)?;

    for (key, value) in &request {
        let name = camel(key);
        match name.as_ref() {
            "tools" | "toolConfig" | "generationConfig" => {}
            // The path names the model.
            "model" => {}
            "safetySettings" => {
                keys::array(value, "safetySettings", "safety settings")?;
                draft.drop_field("safetySettings", value);
            }
            "cachedContent" => {
                expect("cachedContent", Some(value), Expected::String)?;
                if value.as_str().is_some_and(|name| !name.is_empty()) {
                    return Err(Invalid::at(
                        "cachedContent",
                        "keyward keeps no cached contents: send what the cache holds in `contents` or `systemInstruction` instead of `cachedContent`",
                    ));
                }
            }
            other => draft.drop_field(other, value),
        }
    }
    let stream = call.framing != Framing::Whole;
    draft.body.insert("stream".into(), Value::Bool(stream));
    Ok(Translated {
        body: draft.body,
        model: call.model.clone(),
        stream,
        dropped: draft.dropped,
        renamed: draft.renamed,
        answer: Some(Box::new(GeminiAnswer {
            model: call.model.clone(),
            thoughts: generation.thoughts,
            stops: generation.stops,
            framing: call.framing,
        })),
    })
}

/// `tools` as Responses tools: function declarations as function tools, Google Search as the
/// upstream's web search; Gemini's other tools (code execution, URL context, Maps, file search)
/// have nothing to run them upstream and are dropped.
fn tools(value: Option<&Value>, draft: &mut Draft) -> Result<Vec<Value>, Invalid> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let mut converted = Vec::new();
    let mut search = false;
    for (t, tool) in keys::array(value, "tools", "tools")?.iter().enumerate() {
        let path = format!("tools[{t}]");
        let tool = keys::object(tool, &path, "{\"functionDeclarations\": [...]}")?;
        for (key, value) in tool {
            if value.is_null() {
                continue;
            }
            let name = camel(key);
            match name.as_ref() {
                "functionDeclarations" => {
                    let path = format!("{path}.functionDeclarations");
                    for (f, declaration) in keys::array(value, &path, "function declarations")?
                        .iter()
                        .enumerate()
                    {
                        converted.push(function_tool(declaration, &format!("{path}[{f}]"), draft)?);
                    }
                }
                "googleSearch" | "googleSearchRetrieval" => {
                    keys::object(value, &format!("{path}.{name}"), "{}")?;
                    search = true;
                }
                other => draft.report(format!("tools.{other}")),
            }
        }
    }
    if search {
        converted.push(json!({"type": "web_search"}));
    }
    Ok(converted)
}

/// A function declaration as a Responses function tool. Not strict: the Responses API otherwise
/// holds functions to OpenAI's strict schema subset, which Gemini schemas do not follow.
fn function_tool(declaration: &Value, path: &str, draft: &mut Draft) -> Result<Value, Invalid> {
    let declaration = keys::object(
        declaration,
        path,
        "{\"name\": \"...\", \"parametersJsonSchema\": {...}}",
    )?;
    let name = keys::required(declaration, "name", path, "a function declaration")?;
    let mut tool = Map::with_capacity(5);
    tool.insert("type".into(), "function".into());
    tool.insert("name".into(), name.into());
    let mut parameters = None;
    for (key, value) in declaration {
        if value.is_null() {
            continue;
        }
        let field = camel(key);
        let field_path = format!("{path}.{field}");
        match field.as_ref() {
            "name" => {}
            "description" => {
                expect(&field_path, Some(value), Expected::String)?;
                tool.insert("description".into(), value.clone());
            }
            "parametersJsonSchema" | "_parametersJsonSchema" | "parameters" => {
                keys::object(
                    value,
                    &field_path,
                    "{\"type\": \"object\", \"properties\": {...}}",
                )?;
                if parameters.is_some() {
                    return Err(Invalid::at(
                        field_path,
                        "a function declaration takes one of `parameters` and `parametersJsonSchema`, not both",
                    ));
                }
                parameters = Some(if field == "parameters" {
                    openapi_schema(value)
                } else {
                    json_schema(value)
                });
            }
            // What the function returns, and how the Live API schedules it: nothing the model
            // upstream reads.
            other => draft.report(format!("tools.functionDeclarations.{other}")),
        }
    }
    tool.insert(
        "parameters".into(),
        parameters.unwrap_or_else(|| json!({"type": "object", "properties": {}})),
    );
    tool.insert("strict".into(), Value::Bool(false));
    Ok(Value::Object(tool))
}

/// `toolConfig.functionCallingConfig` as `tool_choice`: `AUTO` (and `VALIDATED`) the default,
/// `NONE` none, `ANY` a required call, of the one function `allowedFunctionNames` names, or of
/// one of those it names (the other functions are then not offered).
fn tool_config(
    value: Option<&Value>,
    tools: &mut Vec<Value>,
    draft: &mut Draft,
) -> Result<Option<Value>, Invalid> {
    const PATH: &str = "toolConfig.functionCallingConfig";
    let Some(value) = value else {
        return Ok(None);
    };
    let config = keys::object(
        value,
        "toolConfig",
        "{\"functionCallingConfig\": {\"mode\": \"AUTO\"}}",
    )?;
    let mut calling = None;
    for (key, value) in config {
        match camel(key).as_ref() {
            "functionCallingConfig" if !value.is_null() => {
                calling = Some(keys::object(value, PATH, "{\"mode\": \"ANY\"}")?)
            }
            "functionCallingConfig" => {}
            other => draft.drop_field(&format!("toolConfig.{other}"), value),
        }
    }
    let Some(calling) = calling else {
        return Ok(None);
    };
    let mode = keys::string(calling, "mode", PATH)?.map(str::to_ascii_uppercase);
    let mut names = Vec::new();
    if let Some(list) = field(calling, "allowedFunctionNames") {
        let path = format!("{PATH}.allowedFunctionNames");
        for (i, name) in keys::array(list, &path, "function names")?
            .iter()
            .enumerate()
        {
            match name {
                Value::String(name) => names.push(name.as_str()),
                other => return Err(wrong_type(&format!("{path}[{i}]"), "a string", other)),
            }
        }
    }
    for key in calling.keys() {
        if !matches!(camel(key).as_ref(), "mode" | "allowedFunctionNames") {
            draft.drop_field(&format!("{PATH}.{}", camel(key)), &calling[key]);
        }
    }
    let is_function = |tool: &Value| tool["type"] == "function";
    if let Some(unknown) = names
        .iter()
        .find(|name| !tools.iter().any(|t| is_function(t) && t["name"] == **name))
    {
        return Err(Invalid::at(
            format!("{PATH}.allowedFunctionNames"),
            format!(
                "`{PATH}.allowedFunctionNames` names `{}`, which no function declaration declares",
                crate::dialect::cut_short(unknown)
            ),
        ));
    }
    if !names.is_empty() {
        tools.retain(|tool| !is_function(tool) || names.iter().any(|name| tool["name"] == *name));
    }
    let functions = tools.iter().filter(|tool| is_function(tool)).count();
    match mode.as_deref() {
        None | Some("MODE_UNSPECIFIED" | "AUTO" | "VALIDATED") => Ok(None),
        Some("NONE") => Ok((!tools.is_empty()).then(|| json!("none"))),
        // Forcing a call with no function to call would fail upstream.
        Some("ANY") if functions == 0 => {
            draft.report(format!("{PATH}.mode"));
            Ok(None)
        }
        Some("ANY") => Ok(Some(match names.as_slice() {
            [only] => json!({"type": "function", "name": only}),
            _ => json!("required"),
        })),
        Some(_) => Err(Invalid::at(
            format!("{PATH}.mode"),
            format!(
                "`{PATH}.mode` must be \"AUTO\", \"ANY\", \"NONE\" or \"VALIDATED\", not {}",
                sent(field(calling, "mode").unwrap_or(&Value::Null))
            ),
        )),
    }
}

/// What the generation config asks of the answer rather than of the upstream.
#[derive(Debug, Default)]
struct Generation {
    stops: Vec<String>,
    /// `thinkingConfig.includeThoughts`.
    thoughts: bool,
}

/// `generationConfig`: limits and sampling carried (the upstream drops what it cannot honour),
/// structured output as `text.format`, thinking as `reasoning`, stop sequences kept for the
/// answer; what has no Responses equivalent dropped and reported.
fn generation_config(value: Option<&Value>, draft: &mut Draft) -> Result<Generation, Invalid> {
    const PATH: &str = "generationConfig";
    let Some(value) = value else {
        return Ok(Generation::default());
    };
    let config = keys::object(value, PATH, "{\"maxOutputTokens\": 1024}")?;
    let mut generation = Generation::default();
    let mut mime = None;
    let mut schema = None;
    let mut thinking = Thinking::default();
    for (key, value) in config {
        if value.is_null() {
            continue;
        }
        let name = camel(key);
        match name.as_ref() {
            "maxOutputTokens" => carry(
                draft,
                value,
                Expected::Count,
                ("max_output_tokens", "generationConfig.maxOutputTokens"),
            )?,
            "temperature" => carry(
                draft,
                value,
                Expected::Number,
                ("temperature", "generationConfig.temperature"),
            )?,
            "topP" => carry(
                draft,
                value,
                Expected::Number,
                ("top_p", "generationConfig.topP"),
            )?,
            "candidateCount" => single_choice("generationConfig.candidateCount", value)?,
            "stopSequences" => generation.stops = stop_sequences(value)?,
            "responseMimeType" => {
                expect(
                    "generationConfig.responseMimeType",
                    Some(value),
                    Expected::String,
                )?;
                mime = value.as_str();
            }
            "responseSchema" => {
                keys::object(
                    value,
                    "generationConfig.responseSchema",
                    "{\"type\": \"OBJECT\"}",
                )?;
                schema = Some(openapi_schema(value));
            }
            "responseJsonSchema" | "_responseJsonSchema" => {
                keys::object(
                    value,
                    "generationConfig.responseJsonSchema",
                    "{\"type\": \"object\"}",
                )?;
                schema = Some(json_schema(value));
            }
            "responseModalities" => text_modality_only(value)?,
            "thinkingConfig" => thinking = Thinking::of(value, draft)?,
            "topK" | "presencePenalty" | "frequencyPenalty" => {
                draft.drop_checked(&format!("{PATH}.{name}"), value, Expected::Number)?
            }
            "seed" => draft.drop_checked("generationConfig.seed", value, Expected::Integer)?,
            "responseLogprobs" => draft.drop_checked(
                "generationConfig.responseLogprobs",
                value,
                Expected::Boolean,
            )?,
            "logprobs" => {
                draft.drop_checked("generationConfig.logprobs", value, Expected::Count)?
            }
            // Speech, media resolution, routing, image output, ...: nothing upstream reads them.
            other => draft.drop_field(&format!("{PATH}.{other}"), value),
        }
    }
    if let Some(format) = text_format(mime, schema)? {
        draft
            .body
            .insert("text".into(), json!({ "format": format }));
        draft
            .renamed
            .push(("text", "generationConfig.responseSchema"));
    }
    if let Some(reasoning) = thinking.reasoning() {
        draft.body.insert("reasoning".into(), reasoning);
        draft
            .renamed
            .push(("reasoning", "generationConfig.thinkingConfig"));
    }
    generation.thoughts = thinking.include_thoughts;
    Ok(generation)
}

/// Carries a number under its Responses name (`(ours, theirs)`), so an upstream that drops it
/// reports it by the client's name.
fn carry(
    draft: &mut Draft,
    value: &Value,
    expected: Expected,
    (ours, theirs): (&'static str, &'static str),
) -> Result<(), Invalid> {
    expect(theirs, Some(value), expected)?;
    draft.body.insert(ours.into(), value.clone());
    draft.renamed.push((ours, theirs));
    Ok(())
}

/// `stopSequences`: strings, applied by keyward since the Responses API has none; empty ones are
/// left out.
fn stop_sequences(value: &Value) -> Result<Vec<String>, Invalid> {
    const PATH: &str = "generationConfig.stopSequences";
    keys::array(value, PATH, "strings")?
        .iter()
        .enumerate()
        .filter(|(_, stop)| stop.as_str() != Some(""))
        .map(|(i, stop)| match stop {
            Value::String(stop) => Ok(stop.clone()),
            other => Err(wrong_type(&format!("{PATH}[{i}]"), "a string", other)),
        })
        .collect()
}

/// `responseModalities`: text is all keyward answers with.
fn text_modality_only(value: &Value) -> Result<(), Invalid> {
    const PATH: &str = "generationConfig.responseModalities";
    for (i, modality) in keys::array(value, PATH, "modalities")?.iter().enumerate() {
        match modality {
            Value::String(text) if text.eq_ignore_ascii_case("text") => {}
            Value::String(other) => {
                return Err(Invalid::at(
                    PATH,
                    format!(
                    "keyward answers with text only: ask for [\"TEXT\"] in `{PATH}`, not \"{}\"",
                    crate::dialect::cut_short(other)
                ),
                ))
            }
            other => return Err(wrong_type(&format!("{PATH}[{i}]"), "a string", other)),
        }
    }
    Ok(())
}

/// `responseMimeType` and a response schema as a Responses `text.format`: a schema is structured
/// output (not strict: OpenAI's strict mode wants every property required, which Gemini schemas
/// need not say), JSON without one is JSON mode.
fn text_format(mime: Option<&str>, schema: Option<Value>) -> Result<Option<Value>, Invalid> {
    let json = match mime.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => schema.is_some(),
        Some("application/json") => true,
        Some("text/plain") if schema.is_none() => false,
        Some(other) => {
            return Err(Invalid::at(
                "generationConfig.responseMimeType",
                format!(
                    "keyward answers \"text/plain\", or \"application/json\" (with or without a response schema), not \"{}\"",
                    crate::dialect::cut_short(other)
                ),
            ))
        }
    };
    if !json {
        return Ok(None);
    }
    Ok(Some(match schema {
        Some(schema) => json!({
            "type": "json_schema",
            "name": "response",
            "schema": schema,
            "strict": false,
        }),
        None => json!({"type": "json_object"}),
    }))
}

/// `thinkingConfig`.
#[derive(Debug, Default)]
struct Thinking {
    include_thoughts: bool,
    effort: Option<&'static str>,
}

impl Thinking {
    fn of(value: &Value, draft: &mut Draft) -> Result<Self, Invalid> {
        const PATH: &str = "generationConfig.thinkingConfig";
        let config = keys::object(value, PATH, "{\"thinkingLevel\": \"HIGH\"}")?;
        let mut thinking = Self::default();
        let mut level = None;
        let mut budget = None;
        for (key, value) in config {
            if value.is_null() {
                continue;
            }
            let name = camel(key);
            let path = format!("{PATH}.{name}");
            match name.as_ref() {
                "includeThoughts" => {
                    expect(&path, Some(value), Expected::Boolean)?;
                    thinking.include_thoughts = value == &Value::Bool(true);
                }
                "thinkingBudget" => {
                    expect(&path, Some(value), Expected::Integer)?;
                    budget = value.as_i64();
                }
                "thinkingLevel" => {
                    expect(&path, Some(value), Expected::String)?;
                    level = value.as_str();
                }
                other => draft.report(format!("{PATH}.{other}")),
            }
        }
        // A level wins over a budget. A budget of -1 lets the model decide; 0 asks for the
        // least thinking every model takes.
        thinking.effort = match level.map(str::to_ascii_uppercase).as_deref() {
            Some("MINIMAL" | "LOW") => Some("low"),
            Some("MEDIUM") => Some("medium"),
            Some("HIGH") => Some("high"),
            Some("THINKING_LEVEL_UNSPECIFIED") => None,
            Some(_) => {
                return Err(Invalid::at(
                    format!("{PATH}.thinkingLevel"),
                    format!(
                        "`{PATH}.thinkingLevel` must be \"MINIMAL\", \"LOW\", \"MEDIUM\" or \"HIGH\", not {}",
                        sent(field(config, "thinkingLevel").unwrap_or(&Value::Null))
                    ),
                ))
            }
            None => match budget {
                Some(n) if n < 0 => None,
                Some(n) if n < 4_096 => Some("low"),
                Some(n) if n < 16_384 => Some("medium"),
                Some(_) => Some("high"),
                None => None,
            },
        };
        Ok(thinking)
    }

    /// The Responses `reasoning` setting; summaries are asked for only when thoughts are shown.
    fn reasoning(&self) -> Option<Value> {
        let mut reasoning = Map::new();
        if let Some(effort) = self.effort {
            reasoning.insert("effort".into(), effort.into());
        }
        if self.include_thoughts {
            reasoning.insert("summary".into(), "auto".into());
        }
        (!reasoning.is_empty()).then_some(Value::Object(reasoning))
    }
}
