//! What the ChatGPT Codex backend (`POST /backend-api/codex/responses`) refuses
//! before it generates anything.
//!
//! These rules mirror the real backend as peers and the Codex CLI 0.169 show it:
//! the refusals that third-party clients of the ChatGPT login quote in their bug
//! reports (`Stream must be set to true`, `Unsupported parameter:
//! max_output_tokens`, `System messages are not allowed`, `Item with id '…' not
//! found. Items are not persisted…`, `The encrypted content for item rs_… could
//! not be verified…`, `Missing required parameter: 'tools[0].name'.`, …), the
//! public Responses API's parameter checks and their wording, and the requests
//! the real Codex CLI 0.169 sends, which must all pass.
//!
//! The backend refuses in two layers, and so in two shapes:
//! - its front door answers `400 {"detail": "<message>"}`: stream and store
//!   modes, unsupported top-level parameters, models a ChatGPT account cannot
//!   use, a string `input`, `system` messages;
//! - the Responses engine behind it answers the OpenAI error object
//!   `{"error": {"message", "type": "invalid_request_error", "param", "code"}}`
//!   for everything else: missing, mistyped or invalid parameters (code
//!   `missing_required_parameter`, `invalid_type`, `invalid_value`), unusable
//!   encrypted content (`invalid_encrypted_content`), and items it would have to
//!   fetch from storage, which is a 404.
//!
//! The rules are checked in a fixed order and the first one broken is
//! reported, as the backend reports one problem at a time:
//! 1. the body is a JSON object;
//! 2. `stream` is `true` and `store` is `false`;
//! 3. every top-level key is one the backend takes: `model`, `instructions`,
//!    `input`, `tools`, `tool_choice`, `parallel_tool_calls`, `reasoning`,
//!    `store`, `stream`, `include`, `prompt_cache_key`, `text`, `client_metadata`,
//!    `service_tier`;
//! 4. `model` is a string naming a model the backend serves (`gpt-*`, `codex-*`);
//! 5. `input` is a list without `system` messages (front door); `instructions`
//!    is a string and every input item is well formed and stands on its own: no
//!    references to stored items (nothing is stored), tool outputs answer a call
//!    made earlier in the same input, and reasoning replays from
//!    `encrypted_content` this backend issued;
//! 6. `tools` are objects with a `type`, function tools in the Responses shape;
//! 7. the remaining options have their documented types and values.
//!
//! `null` counts as absent for optional parameters, as in the public API.
//!
//! What the real Codex CLI 0.169 sends, and so must pass (two of its requests
//! are the fixtures of this module's tests):
//! - every input item carries an `id`: its own messages and tool outputs get
//!   `msg_<UUID>` / `fco_<UUID>`, and the backend's items (`rs_…`, `msg_…`,
//!   `fc_…` + hex) come back with their ids and full content (reasoning with its
//!   `encrypted_content`, messages with `status`, `annotations`, `logprobs`).
//!   So an id alone is no reason to refuse: only items the backend would have
//!   to fetch are "not found" (`item_reference`, reasoning without its content);
//! - tools mixing `function` with `namespace` (nested function tools) and
//!   `web_search`; `tool_choice: "auto"`, `parallel_tool_calls: true`,
//!   `reasoning: {"summary": "auto"}`, `include: ["reasoning.encrypted_content"]`,
//!   `prompt_cache_key` (the session id), `client_metadata` (an object of
//!   strings); no `instructions` (its base prompt is the first `developer`
//!   message);
//! - after a stream breaks off, a retry that ends with the reasoning item the
//!   broken stream had finished. The public API refuses reasoning "provided
//!   without its required following item"; whether this backend does is not
//!   known, so that rule is left out rather than fail the real CLI.
//!
//! What the Codex CLI 0.171 sends besides (its first turn and its remote
//! compaction are fixtures too):
//! - no top-level `tools`: they travel as the first input item,
//!   `{"type": "additional_tools", "role": "developer", "tools": [...]}`, checked
//!   as the top-level list is;
//! - `reasoning: {"effort", "context": "all_turns"}`, `text: {"verbosity"}`;
//! - `{"type": "configuration_update", "reasoning": {"effort"}}` items, which
//!   change the effort from there on;
//! - remote compaction (v2): a request whose input ends with
//!   `{"type": "compaction_trigger"}` (it may stand nowhere else) is answered
//!   with one `compaction` output item carrying `encrypted_content`; later turns
//!   send that item back in place of the turns it replaced, and its content
//!   must be one this backend issued (as reasoning's).

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::reasoning_blob::{self, Kind};

/// A request the backend refuses: the HTTP status and the JSON body it answers.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub status: u16,
    pub body: Value,
}

impl Rejection {
    /// A refusal by the backend's front door: `400 {"detail": ...}`.
    fn refused(detail: impl Into<String>) -> Self {
        Self {
            status: 400,
            body: json!({ "detail": detail.into() }),
        }
    }

    /// A refusal by the Responses engine behind it, in the OpenAI error shape.
    pub(crate) fn invalid(
        status: u16,
        message: String,
        param: Option<&str>,
        code: Option<&str>,
    ) -> Self {
        Self {
            status,
            body: json!({"error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": code,
            }}),
        }
    }

    /// The refusal's message, whichever of the two shapes carries it.
    pub fn message(&self) -> &str {
        self.body
            .get("detail")
            .or_else(|| {
                self.body
                    .get("error")
                    .and_then(|error| error.get("message"))
            })
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// The top-level keys the backend takes; any other is an unsupported parameter.
pub(crate) const ALLOWED_KEYS: &[&str] = &[
    "model",
    "instructions",
    "input",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "store",
    "stream",
    "include",
    "prompt_cache_key",
    "text",
    "client_metadata",
    "service_tier",
];

/// The roles the Responses engine knows; `system` never reaches it (the front
/// door refuses it first), but it is still named in the engine's list.
const ROLES: &[&str] = &["assistant", "system", "developer", "user"];
pub(crate) const ASSISTANT_PARTS: &[&str] = &["output_text", "refusal"];
pub(crate) const INPUT_PARTS: &[&str] = &["input_text", "input_image", "input_file"];
const TOOL_CHOICES: &[&str] = &["none", "auto", "required"];
pub(crate) const EFFORTS: &[&str] = &[
    "none", "minimal", "low", "medium", "high", "xhigh", "max", "ultra",
];
pub(crate) const SUMMARIES: &[&str] = &["auto", "concise", "detailed", "none"];
const SERVED_MODEL_PREFIXES: &[&str] = &["gpt-", "codex-"];
const TOOL_NAME_PATTERN: &str = "^[a-zA-Z0-9_-]{1,64}$";
const TOOL_NAME_MAX: usize = 64;

pub(crate) type Checked = Result<(), Rejection>;

/// Applies the backend's rules to a request body; `Err` is the answer the
/// backend would give instead of a stream.
pub fn check(body: &Value) -> Result<(), Rejection> {
    let Some(request) = body.as_object() else {
        return Err(Rejection::refused(format!(
            "Invalid type for 'body': expected an object, but got {} instead.",
            describe(body)
        )));
    };
    check_front_door(request)?;
    if let Some(instructions) = optional(request, "instructions") {
        expect_string(instructions, "instructions")?;
    }
    check_input(request)?;
    check_tools(request)?;
    check_tool_choice(request)?;
    check_options(request)
}

/// The refusal of a body that is not JSON at all, in the API's words.
pub(crate) fn unreadable_body() -> Rejection {
    Rejection::refused(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't \
         using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was \
         sent was not valid JSON.)",
    )
}

/// What the backend checks before the request reaches the Responses engine,
/// answered as `{"detail": ...}`.
fn check_front_door(request: &Map<String, Value>) -> Checked {
    if request.get("stream") != Some(&Value::Bool(true)) {
        return Err(Rejection::refused("Stream must be set to true"));
    }
    if request.get("store") != Some(&Value::Bool(false)) {
        return Err(Rejection::refused("Store must be set to false"));
    }
    if let Some(key) = request
        .keys()
        .find(|key| !ALLOWED_KEYS.contains(&key.as_str()))
    {
        return Err(Rejection::refused(format!("Unsupported parameter: {key}")));
    }
    let model = require_string(request, "model", "model")?;
    if !SERVED_MODEL_PREFIXES
        .iter()
        .any(|prefix| model.starts_with(prefix))
    {
        return Err(Rejection::refused(format!(
            "The '{model}' model is not supported when using Codex with a ChatGPT account."
        )));
    }
    match request.get("input") {
        Some(Value::String(_)) => Err(Rejection::refused("Input must be a list")),
        Some(Value::Array(items)) if items.iter().any(is_system_message) => {
            Err(Rejection::refused("System messages are not allowed"))
        }
        _ => Ok(()),
    }
}

fn is_system_message(item: &Value) -> bool {
    matches!(
        item.get("type").and_then(Value::as_str),
        None | Some("message")
    ) && item.get("role").and_then(Value::as_str) == Some("system")
}

fn check_input(request: &Map<String, Value>) -> Checked {
    let items = match request.get("input") {
        None | Some(Value::Null) => return Err(missing("input")),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(invalid_type("input", "an array", other)),
    };
    // Call ids made so far: a tool output may only answer one of them.
    let mut calls: HashSet<&str> = HashSet::new();
    for (index, item) in items.iter().enumerate() {
        let path = format!("input[{index}]");
        let Some(item) = item.as_object() else {
            return Err(invalid_type(&path, "an object", item));
        };
        let kind = item_kind(item, &path)?;
        if kind == "item_reference" {
            let id = require_string(item, "id", &format!("{path}.id"))?;
            return Err(not_persisted(id));
        }
        check_item_id(item, &path)?;
        match kind {
            "message" => check_message(item, &path)?,
            "function_call" => {
                require_string(item, "name", &format!("{path}.name"))?;
                require_string(item, "arguments", &format!("{path}.arguments"))?;
                calls.insert(require_string(item, "call_id", &format!("{path}.call_id"))?);
            }
            "function_call_output" => check_call_output(item, &path, &calls)?,
            "reasoning" => check_reasoning(item, &path)?,
            "additional_tools" => check_additional_tools(item, &path)?,
            "configuration_update" => check_configuration_update(item, &path)?,
            "compaction" => check_compaction(item, &path)?,
            "compaction_trigger" if index + 1 != items.len() => {
                return Err(Rejection::invalid(
                    400,
                    format!(
                        "Invalid '{path}': a compaction_trigger item must be the last input item."
                    ),
                    Some(&path),
                    Some("invalid_value"),
                ))
            }
            // The CLI answers its `local_shell_call`s with `function_call_output`s, so
            // every kind of call counts as one an output may answer.
            other if other.ends_with("_call") => {
                if let Some(call_id) = item.get("call_id").and_then(Value::as_str) {
                    calls.insert(call_id);
                }
            }
            // custom_tool_call_output, a last compaction_trigger, ...: the CLI
            // sends them and the backend takes them as they are.
            _ => {}
        }
    }
    Ok(())
}

/// An item's type; a typeless item with a role is a message (the easy-input shape).
pub(crate) fn item_kind<'a>(
    item: &'a Map<String, Value>,
    path: &str,
) -> Result<&'a str, Rejection> {
    match item.get("type") {
        Some(Value::String(kind)) => Ok(kind),
        None | Some(Value::Null) if item.contains_key("role") => Ok("message"),
        None | Some(Value::Null) => Err(missing(&format!("{path}.type"))),
        Some(other) => Err(invalid_type(&format!("{path}.type"), "a string", other)),
    }
}

/// Ids are bookkeeping the backend tolerates on complete items (the CLI sends
/// its own and the backend's back); only their type is checked.
fn check_item_id(item: &Map<String, Value>, path: &str) -> Checked {
    match optional(item, "id") {
        None | Some(Value::String(_)) => Ok(()),
        Some(other) => Err(invalid_type(&format!("{path}.id"), "a string", other)),
    }
}

/// The backend answers a lookup of an item it never stored with a 404.
fn not_persisted(id: &str) -> Rejection {
    Rejection::invalid(
        404,
        format!(
            "Item with id '{id}' not found. Items are not persisted when `store` is set to false. \
             Try again with `store` set to true, or remove this item from your input."
        ),
        Some("input"),
        None,
    )
}

fn check_message(item: &Map<String, Value>, path: &str) -> Checked {
    let role_path = format!("{path}.role");
    let role = require_string(item, "role", &role_path)?;
    let allowed_parts = match role {
        "assistant" => ASSISTANT_PARTS,
        "user" | "developer" => INPUT_PARTS,
        other => return Err(invalid_value(&role_path, other, ROLES)),
    };
    let content_path = format!("{path}.content");
    let parts = match item.get("content") {
        None | Some(Value::Null) => return Err(missing(&content_path)),
        Some(Value::Array(parts)) => parts,
        Some(other) => return Err(invalid_type(&content_path, "an array", other)),
    };
    for (index, part) in parts.iter().enumerate() {
        let part_path = format!("{content_path}[{index}]");
        let Some(part) = part.as_object() else {
            return Err(invalid_type(&part_path, "an object", part));
        };
        let type_path = format!("{part_path}.type");
        let kind = require_string(part, "type", &type_path)?;
        if !allowed_parts.contains(&kind) {
            return Err(invalid_value(&type_path, kind, allowed_parts));
        }
        check_part(part, kind, &part_path)?;
    }
    Ok(())
}

pub(crate) fn check_part(part: &Map<String, Value>, kind: &str, path: &str) -> Checked {
    match kind {
        "input_text" | "output_text" => {
            require_string(part, "text", &format!("{path}.text"))?;
        }
        "refusal" => {
            require_string(part, "refusal", &format!("{path}.refusal"))?;
        }
        "input_image" => {
            let image_path = format!("{path}.image_url");
            match (optional(part, "image_url"), optional(part, "file_id")) {
                (Some(Value::String(_)), _) | (None, Some(Value::String(_))) => {}
                (Some(other), _) => return Err(invalid_type(&image_path, "a string", other)),
                (None, Some(other)) => {
                    return Err(invalid_type(&format!("{path}.file_id"), "a string", other))
                }
                (None, None) => return Err(missing(&image_path)),
            }
        }
        _ => {}
    }
    Ok(())
}

pub(crate) fn check_call_output(
    item: &Map<String, Value>,
    path: &str,
    calls: &HashSet<&str>,
) -> Checked {
    let call_id = require_string(item, "call_id", &format!("{path}.call_id"))?;
    let output_path = format!("{path}.output");
    match item.get("output") {
        Some(Value::String(_) | Value::Array(_)) => {}
        None | Some(Value::Null) => return Err(missing(&output_path)),
        Some(other) => {
            return Err(invalid_type(
                &output_path,
                "one of a string or an array",
                other,
            ))
        }
    }
    if calls.contains(call_id) {
        Ok(())
    } else {
        Err(Rejection::invalid(
            400,
            format!("No tool call found for function call output with call_id {call_id}."),
            Some("input"),
            None,
        ))
    }
}

/// Reasoning is replayed from its `encrypted_content`; without it the backend
/// would have to fetch the item by id, and nothing is stored.
fn check_reasoning(item: &Map<String, Value>, path: &str) -> Checked {
    match item.get("summary") {
        Some(Value::Array(_)) => {}
        None | Some(Value::Null) => return Err(missing(&format!("{path}.summary"))),
        Some(other) => return Err(invalid_type(&format!("{path}.summary"), "an array", other)),
    }
    let id = item.get("id").and_then(Value::as_str);
    match optional(item, "encrypted_content") {
        Some(Value::String(blob)) if reasoning_blob::verify(blob) => Ok(()),
        Some(Value::String(_)) => Err(unverified(id.unwrap_or("reasoning"))),
        Some(other) => Err(invalid_type(
            &format!("{path}.encrypted_content"),
            "a string",
            other,
        )),
        None => Err(match id {
            Some(id) => not_persisted(id),
            None => unverified("reasoning"),
        }),
    }
}

/// The tools a developer adds in the input (the Codex CLI 0.171's way of sending
/// its tools), checked as the request's own `tools` are.
fn check_additional_tools(item: &Map<String, Value>, path: &str) -> Checked {
    if let Some(role) = optional(item, "role") {
        let role_path = format!("{path}.role");
        expect_string(role, &role_path)?;
        if role != "developer" {
            return Err(invalid_value(
                &role_path,
                role.as_str().unwrap_or_default(),
                &["developer"],
            ));
        }
    }
    match item.get("tools") {
        None | Some(Value::Null) => Err(missing(&format!("{path}.tools"))),
        Some(tools) => check_tool_list(tools, &format!("{path}.tools")),
    }
}

/// A change of the reasoning effort from this item on.
fn check_configuration_update(item: &Map<String, Value>, path: &str) -> Checked {
    match optional(item, "reasoning") {
        None => Ok(()),
        Some(Value::Object(reasoning)) => check_enum(
            reasoning,
            "effort",
            &format!("{path}.reasoning.effort"),
            EFFORTS,
        ),
        Some(other) => Err(invalid_type(
            &format!("{path}.reasoning"),
            "an object",
            other,
        )),
    }
}

/// A compacted conversation stands in for the turns it replaced; like reasoning,
/// it is replayed from the `encrypted_content` this backend issued.
fn check_compaction(item: &Map<String, Value>, path: &str) -> Checked {
    let id = item
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("compaction");
    match optional(item, "encrypted_content") {
        Some(Value::String(blob)) if reasoning_blob::verify_as(Kind::Compaction, blob) => Ok(()),
        Some(Value::String(_)) => Err(unverified(id)),
        Some(other) => Err(invalid_type(
            &format!("{path}.encrypted_content"),
            "a string",
            other,
        )),
        None => Err(missing(&format!("{path}.encrypted_content"))),
    }
}

pub(crate) fn unverified(item: &str) -> Rejection {
    Rejection::invalid(
        400,
        format!(
            "The encrypted content for item {item} could not be verified. Reason: Encrypted \
             content could not be decrypted or parsed."
        ),
        None,
        Some("invalid_encrypted_content"),
    )
}

pub(crate) fn check_tools(request: &Map<String, Value>) -> Checked {
    match optional(request, "tools") {
        None => Ok(()),
        Some(tools) => check_tool_list(tools, "tools"),
    }
}

/// A list of tools at `path`: typed objects, function tools in the Responses
/// shape, namespaces holding a named list of their own.
fn check_tool_list(tools: &Value, path: &str) -> Checked {
    let Some(tools) = tools.as_array() else {
        return Err(invalid_type(path, "an array", tools));
    };
    for (index, tool) in tools.iter().enumerate() {
        let path = format!("{path}[{index}]");
        let Some(tool) = tool.as_object() else {
            return Err(invalid_type(&path, "an object", tool));
        };
        match require_string(tool, "type", &format!("{path}.type"))? {
            "function" => check_function_tool(tool, &path)?,
            "namespace" => {
                require_string(tool, "name", &format!("{path}.name"))?;
                match tool.get("tools") {
                    None | Some(Value::Null) => return Err(missing(&format!("{path}.tools"))),
                    Some(nested) => check_tool_list(nested, &format!("{path}.tools"))?,
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A function tool in the Responses shape: `name` at the top level, not nested
/// under `function` as Chat Completions has it.
fn check_function_tool(tool: &Map<String, Value>, path: &str) -> Checked {
    let name_path = format!("{path}.name");
    let name = require_string(tool, "name", &name_path)?;
    check_tool_name(name, &name_path)?;
    if let Some(description) = optional(tool, "description") {
        expect_string(description, &format!("{path}.description"))?;
    }
    if let Some(parameters) = optional(tool, "parameters") {
        if !parameters.is_object() {
            return Err(invalid_type(
                &format!("{path}.parameters"),
                "an object",
                parameters,
            ));
        }
    }
    if let Some(strict) = optional(tool, "strict") {
        if !strict.is_boolean() {
            return Err(invalid_type(&format!("{path}.strict"), "a boolean", strict));
        }
    }
    Ok(())
}

fn check_tool_name(name: &str, path: &str) -> Checked {
    let length = name.chars().count();
    let (message, code) = if length == 0 {
        (
            format!(
                "Invalid '{path}': empty string. Expected a string with minimum length 1, but got \
                 an empty string instead."
            ),
            "empty_string",
        )
    } else if length > TOOL_NAME_MAX {
        (
            format!(
                "Invalid '{path}': string too long. Expected a string with maximum length \
                 {TOOL_NAME_MAX}, but got a string with length {length} instead."
            ),
            "string_above_max_length",
        )
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        (
            format!(
                "Invalid '{path}': string does not match pattern. Expected a string that matches \
                 the pattern '{TOOL_NAME_PATTERN}'."
            ),
            "invalid_value",
        )
    } else {
        return Ok(());
    };
    Err(Rejection::invalid(400, message, Some(path), Some(code)))
}

pub(crate) fn check_tool_choice(request: &Map<String, Value>) -> Checked {
    match optional(request, "tool_choice") {
        None => Ok(()),
        Some(Value::String(choice)) if TOOL_CHOICES.contains(&choice.as_str()) => Ok(()),
        Some(Value::String(choice)) => Err(invalid_value("tool_choice", choice, TOOL_CHOICES)),
        Some(Value::Object(choice)) => {
            if require_string(choice, "type", "tool_choice.type")? == "function" {
                require_string(choice, "name", "tool_choice.name")?;
            }
            Ok(())
        }
        Some(other) => Err(invalid_type(
            "tool_choice",
            "one of a string or an object",
            other,
        )),
    }
}

fn check_options(request: &Map<String, Value>) -> Checked {
    if let Some(parallel) = optional(request, "parallel_tool_calls") {
        if !parallel.is_boolean() {
            return Err(invalid_type("parallel_tool_calls", "a boolean", parallel));
        }
    }
    if let Some(include) = optional(request, "include") {
        let Some(entries) = include.as_array() else {
            return Err(invalid_type("include", "an array", include));
        };
        for (index, entry) in entries.iter().enumerate() {
            expect_string(entry, &format!("include[{index}]"))?;
        }
    }
    if let Some(reasoning) = optional(request, "reasoning") {
        let Some(reasoning) = reasoning.as_object() else {
            return Err(invalid_type("reasoning", "an object", reasoning));
        };
        check_enum(reasoning, "effort", "reasoning.effort", EFFORTS)?;
        check_enum(reasoning, "summary", "reasoning.summary", SUMMARIES)?;
    }
    for (key, expected) in [
        ("text", "an object"),
        ("client_metadata", "an object"),
        ("prompt_cache_key", "a string"),
        ("service_tier", "a string"),
    ] {
        if let Some(value) = optional(request, key) {
            let fits = if expected == "a string" {
                value.is_string()
            } else {
                value.is_object()
            };
            if !fits {
                return Err(invalid_type(key, expected, value));
            }
        }
    }
    Ok(())
}

pub(crate) fn check_enum(
    object: &Map<String, Value>,
    key: &str,
    path: &str,
    allowed: &[&str],
) -> Checked {
    match optional(object, key) {
        None => Ok(()),
        Some(Value::String(value)) if allowed.contains(&value.as_str()) => Ok(()),
        Some(Value::String(value)) => Err(invalid_value(path, value, allowed)),
        Some(other) => Err(invalid_type(path, "a string", other)),
    }
}

/// A parameter's value unless absent or `null`.
pub(crate) fn optional<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|value| !value.is_null())
}

pub(crate) fn require_string<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, Rejection> {
    match object.get(key) {
        Some(Value::String(value)) => Ok(value),
        None | Some(Value::Null) => Err(missing(path)),
        Some(other) => Err(invalid_type(path, "a string", other)),
    }
}

pub(crate) fn expect_string(value: &Value, path: &str) -> Checked {
    if value.is_string() {
        Ok(())
    } else {
        Err(invalid_type(path, "a string", value))
    }
}

pub(crate) fn missing(path: &str) -> Rejection {
    Rejection::invalid(
        400,
        format!("Missing required parameter: '{path}'."),
        Some(path),
        Some("missing_required_parameter"),
    )
}

pub(crate) fn invalid_type(path: &str, expected: &str, got: &Value) -> Rejection {
    Rejection::invalid(
        400,
        format!(
            "Invalid type for '{path}': expected {expected}, but got {} instead.",
            describe(got)
        ),
        Some(path),
        Some("invalid_type"),
    )
}

pub(crate) fn invalid_value(path: &str, value: &str, supported: &[&str]) -> Rejection {
    Rejection::invalid(
        400,
        format!(
            "Invalid value: '{value}'. Supported values are: {}.",
            quoted_list(supported)
        ),
        Some(path),
        Some("invalid_value"),
    )
}

/// `'a'`, `'a' and 'b'`, `'a', 'b', and 'c'`: the API's way of listing values.
fn quoted_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|value| format!("'{value}'")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [first, second] => format!("{first} and {second}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

/// A JSON value's kind as the API names it in type errors.
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal request the backend accepts.
    fn base() -> Value {
        json!({
            "model": "gpt-5.1-codex",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
            "stream": true,
            "store": false,
        })
    }

    /// `base()` with `key` set to `value`.
    fn with(key: &str, value: Value) -> Value {
        let mut body = base();
        body[key] = value;
        body
    }

    /// `base()` with `items` as its input.
    fn with_input(items: Value) -> Value {
        with("input", items)
    }

    /// How `body` is refused; it must be.
    fn refusal(body: &Value) -> Rejection {
        match check(body) {
            Ok(()) => panic!("accepted, but the backend refuses it: {body}"),
            Err(rejection) => rejection,
        }
    }

    /// The refusal message for `body`, which must be refused in one of the two shapes.
    fn refused(body: &Value) -> String {
        let rejection = refusal(body);
        let shape_ok = match rejection.body.get("error") {
            Some(error) => {
                rejection.body.as_object().map(Map::len) == Some(1)
                    && error["type"] == "invalid_request_error"
                    && error.get("param").is_some()
                    && error.get("code").is_some()
            }
            None => {
                rejection.body.as_object().map(Map::len) == Some(1)
                    && rejection.body["detail"].is_string()
            }
        };
        assert!(shape_ok, "not a backend refusal shape: {rejection:?}");
        assert!(matches!(rejection.status, 400 | 404), "{rejection:?}");
        rejection.message().to_owned()
    }

    fn accepted(body: &Value) {
        if let Err(rejection) = check(body) {
            panic!("refused with {:?}: {body}", rejection.message());
        }
    }

    fn user(text: &str) -> Value {
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
    }

    fn call(call_id: &str) -> Value {
        json!({"type": "function_call", "call_id": call_id, "name": "get_weather", "arguments": "{}"})
    }

    fn call_output(call_id: &str) -> Value {
        json!({"type": "function_call_output", "call_id": call_id, "output": "sunny"})
    }

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("fixture is not JSON: {e}"))
    }

    /// The real Codex CLI 0.169's first request of a turn passes (long texts shortened).
    #[test]
    fn the_codex_cli_first_turn_passes() {
        accepted(&fixture(include_str!(
            "fixtures/codex_cli_0.169_first_turn.json"
        )));
    }

    /// The CLI's follow-up after two parallel calls passes: its own `msg_`/`fco_` UUID ids,
    /// the backend's `rs_`/`msg_`/`fc_` ids echoed on complete items, a reasoning item
    /// with the encrypted content this mock issued, and the outputs of both calls.
    #[test]
    fn the_codex_cli_tool_follow_up_passes() {
        accepted(&fixture(include_str!(
            "fixtures/codex_cli_0.169_parallel_tool_outputs.json"
        )));
    }

    /// A body that is not an object is refused.
    #[test]
    fn body_must_be_an_object() {
        assert_eq!(
            refused(&json!([1])),
            "Invalid type for 'body': expected an object, but got an array instead."
        );
        assert_eq!(
            refused(&Value::Null),
            "Invalid type for 'body': expected an object, but got null instead."
        );
    }

    /// Only streamed requests are served.
    #[test]
    fn stream_must_be_true() {
        for stream in [json!(false), json!("true"), Value::Null] {
            assert_eq!(
                refused(&with("stream", stream)),
                "Stream must be set to true"
            );
        }
        let mut body = base();
        body.as_object_mut().map(|b| b.remove("stream"));
        assert_eq!(refused(&body), "Stream must be set to true");
    }

    /// `store` must be sent, and false.
    #[test]
    fn store_must_be_false() {
        assert_eq!(
            refused(&with("store", json!(true))),
            "Store must be set to false"
        );
        let mut body = base();
        body.as_object_mut().map(|b| b.remove("store"));
        assert_eq!(refused(&body), "Store must be set to false");
    }

    /// Parameters of the public API the backend does not take are named in the refusal.
    #[test]
    fn unsupported_parameters_are_refused() {
        for key in [
            "max_output_tokens",
            "temperature",
            "top_p",
            "user",
            "metadata",
            "previous_response_id",
            "truncation",
            "max_tool_calls",
            "context_management",
            "background",
        ] {
            assert_eq!(
                refused(&with(key, json!(1))),
                format!("Unsupported parameter: {key}")
            );
        }
    }

    /// Every allowed key, with a value of its type, passes.
    #[test]
    fn every_allowed_key_passes() {
        let body = json!({
            "model": "codex-mini-latest",
            "instructions": "Be brief.",
            "input": [user("hi")],
            "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": "auto",
            "parallel_tool_calls": false,
            "reasoning": {"effort": "xhigh", "summary": "detailed"},
            "store": false,
            "stream": true,
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "k",
            "text": {"verbosity": "low"},
            "client_metadata": {"a": "b"},
            "service_tier": "priority",
        });
        accepted(&body);
        let nulls = json!({
            "model": "gpt-5", "input": [], "stream": true, "store": false,
            "instructions": null, "tools": null, "tool_choice": null, "parallel_tool_calls": null,
            "reasoning": null, "include": null, "prompt_cache_key": null, "text": null,
            "client_metadata": null, "service_tier": null,
        });
        accepted(&nulls);
    }

    /// `model` is required and must be one the backend serves to ChatGPT accounts.
    #[test]
    fn model_must_be_served() {
        accepted(&with("model", json!("gpt-5.1-codex-max")));
        accepted(&with("model", json!("codex-mini-latest")));
        assert_eq!(
            refused(&with("model", json!("o3"))),
            "The 'o3' model is not supported when using Codex with a ChatGPT account."
        );
        assert_eq!(
            refused(&with("model", json!("claude-sonnet-4"))),
            "The 'claude-sonnet-4' model is not supported when using Codex with a ChatGPT account."
        );
        assert_eq!(
            refused(&with("model", json!(5))),
            "Invalid type for 'model': expected a string, but got an integer instead."
        );
        let mut body = base();
        body.as_object_mut().map(|b| b.remove("model"));
        assert_eq!(refused(&body), "Missing required parameter: 'model'.");
    }

    /// `instructions` is a string when sent.
    #[test]
    fn instructions_must_be_a_string() {
        accepted(&with("instructions", json!("Be brief.")));
        assert_eq!(
            refused(&with("instructions", json!(["Be brief."]))),
            "Invalid type for 'instructions': expected a string, but got an array instead."
        );
    }

    /// `input` is a required list; the easy string form is refused.
    #[test]
    fn input_must_be_a_list() {
        assert_eq!(refused(&with_input(json!("hi"))), "Input must be a list");
        assert_eq!(
            refused(&with_input(json!({"role": "user"}))),
            "Invalid type for 'input': expected an array, but got an object instead."
        );
        let mut body = base();
        body.as_object_mut().map(|b| b.remove("input"));
        assert_eq!(refused(&body), "Missing required parameter: 'input'.");
        assert_eq!(
            refused(&with_input(json!(["hi"]))),
            "Invalid type for 'input[0]': expected an object, but got a string instead."
        );
        assert_eq!(
            refused(&with_input(json!([{"content": []}]))),
            "Missing required parameter: 'input[0].type'."
        );
    }

    /// A typeless item with a role is a message and passes; ids on complete items pass.
    #[test]
    fn messages_may_omit_their_type_and_carry_ids() {
        accepted(&with_input(json!([
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "message", "id": "msg_0a1b2c", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "hello", "annotations": [], "logprobs": []}]},
            {"type": "message", "id": "msg_01a2184d-406d-7d82-b86e-eb95ca4cedd8", "role": "user",
             "content": [{"type": "input_text", "text": "again"}]},
        ])));
        assert_eq!(
            refused(&with_input(
                json!([{"type": "message", "id": 7, "role": "user", "content": []}])
            )),
            "Invalid type for 'input[0].id': expected a string, but got an integer instead."
        );
    }

    /// An item reference needs a stored item, and nothing is stored: a 404.
    #[test]
    fn item_references_are_not_found() {
        assert_eq!(
            refusal(&with_input(
                json!([user("hi"), {"type": "item_reference", "id": "msg_abc123"}])
            )),
            Rejection {
                status: 404,
                body: json!({"error": {
                    "message": "Item with id 'msg_abc123' not found. Items are not persisted when \
                        `store` is set to false. Try again with `store` set to true, or remove this \
                        item from your input.",
                    "type": "invalid_request_error",
                    "param": "input",
                    "code": null,
                }}),
            }
        );
        assert_eq!(
            refused(&with_input(json!([{"type": "item_reference"}]))),
            "Missing required parameter: 'input[0].id'."
        );
    }

    /// Roles are user, assistant and developer; `system` is refused at the front door.
    #[test]
    fn message_roles_are_checked() {
        accepted(&with_input(json!([
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
            user("hi"),
        ])));
        let system = json!([user("hi"), {"role": "system", "content": [{"type": "input_text", "text": "x"}]}]);
        assert_eq!(
            refusal(&with_input(system)),
            Rejection {
                status: 400,
                body: json!({"detail": "System messages are not allowed"})
            }
        );
        assert_eq!(
            refused(&with_input(json!([{"role": "tool", "content": [{"type": "input_text", "text": "x"}]}]))),
            "Invalid value: 'tool'. Supported values are: 'assistant', 'system', 'developer', and 'user'."
        );
        assert_eq!(
            refused(&with_input(json!([{"type": "message", "content": []}]))),
            "Missing required parameter: 'input[0].role'."
        );
    }

    /// Message content is a list of parts; a bare string is refused.
    #[test]
    fn message_content_must_be_parts() {
        assert_eq!(
            refused(&with_input(json!([{"role": "user", "content": "hi"}]))),
            "Invalid type for 'input[0].content': expected an array, but got a string instead."
        );
        assert_eq!(
            refused(&with_input(json!([{"role": "user"}]))),
            "Missing required parameter: 'input[0].content'."
        );
        assert_eq!(
            refused(&with_input(json!([{"role": "user", "content": ["hi"]}]))),
            "Invalid type for 'input[0].content[0]': expected an object, but got a string instead."
        );
        assert_eq!(
            refused(&with_input(
                json!([{"role": "user", "content": [{"text": "hi"}]}])
            )),
            "Missing required parameter: 'input[0].content[0].type'."
        );
    }

    /// Assistant parts are output text or refusals.
    #[test]
    fn assistant_parts_are_outputs() {
        accepted(&with_input(json!([{"role": "assistant", "content": [
            {"type": "output_text", "text": "hi"},
            {"type": "refusal", "refusal": "no"},
        ]}])));
        assert_eq!(
            refused(&with_input(
                json!([{"role": "assistant", "content": [{"type": "input_text", "text": "hi"}]}])
            )),
            "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'."
        );
        assert_eq!(
            refused(&with_input(
                json!([{"role": "assistant", "content": [{"type": "refusal"}]}])
            )),
            "Missing required parameter: 'input[0].content[0].refusal'."
        );
    }

    /// User and developer parts are inputs: text, images, files.
    #[test]
    fn user_parts_are_inputs() {
        accepted(&with_input(json!([{"role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto"},
            {"type": "input_image", "file_id": "file-1"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"},
        ]}])));
        assert_eq!(
            refused(&with_input(json!([{"role": "user", "content": [{"type": "output_text", "text": "hi"}]}]))),
            "Invalid value: 'output_text'. Supported values are: 'input_text', 'input_image', and 'input_file'."
        );
        assert_eq!(
            refused(&with_input(json!([{"role": "developer", "content": [{"type": "text", "text": "hi"}]}]))),
            "Invalid value: 'text'. Supported values are: 'input_text', 'input_image', and 'input_file'."
        );
    }

    /// Text parts need string text; images need a URL or a file id.
    #[test]
    fn part_fields_are_checked() {
        assert_eq!(
            refused(&with_input(
                json!([{"role": "user", "content": [{"type": "input_text"}]}])
            )),
            "Missing required parameter: 'input[0].content[0].text'."
        );
        assert_eq!(
            refused(&with_input(json!([{"role": "user", "content": [{"type": "input_text", "text": 1}]}]))),
            "Invalid type for 'input[0].content[0].text': expected a string, but got an integer instead."
        );
        assert_eq!(
            refused(&with_input(
                json!([{"role": "user", "content": [{"type": "input_image"}]}])
            )),
            "Missing required parameter: 'input[0].content[0].image_url'."
        );
        assert_eq!(
            refused(&with_input(json!([{"role": "user", "content": [{"type": "input_image", "image_url": {"url": "x"}}]}]))),
            "Invalid type for 'input[0].content[0].image_url': expected a string, but got an object instead."
        );
    }

    /// Function calls carry a call id, a name and string arguments.
    #[test]
    fn function_calls_are_complete() {
        accepted(&with_input(json!([user("hi"), call("call_1")])));
        assert_eq!(
            refused(&with_input(
                json!([{"type": "function_call", "name": "f", "arguments": "{}"}])
            )),
            "Missing required parameter: 'input[0].call_id'."
        );
        assert_eq!(
            refused(&with_input(
                json!([{"type": "function_call", "call_id": "c", "arguments": "{}"}])
            )),
            "Missing required parameter: 'input[0].name'."
        );
        assert_eq!(
            refused(&with_input(
                json!([{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}])
            )),
            "Invalid type for 'input[0].arguments': expected a string, but got an object instead."
        );
    }

    /// A tool output answers a call made earlier in the same input.
    #[test]
    fn tool_outputs_answer_earlier_calls() {
        accepted(&with_input(json!([
            user("hi"),
            call("call_1"),
            call_output("call_1")
        ])));
        accepted(&with_input(json!([
            user("hi"),
            call("call_1"),
            {"type": "function_call_output", "call_id": "call_1", "output": [{"type": "input_text", "text": "sunny"}]},
        ])));
        // The CLI answers its local shell calls with function_call_output.
        accepted(&with_input(json!([
            {"type": "local_shell_call", "call_id": "call_sh", "status": "completed", "action": {"type": "exec", "command": ["ls"]}},
            call_output("call_sh"),
        ])));
        let detail = "No tool call found for function call output with call_id call_1.";
        assert_eq!(
            refused(&with_input(json!([user("hi"), call_output("call_1")]))),
            detail
        );
        assert_eq!(
            refused(&with_input(json!([call_output("call_1"), call("call_1")]))),
            detail,
            "the call must come first"
        );
        assert_eq!(
            refused(&with_input(
                json!([call("c"), {"type": "function_call_output", "call_id": "c"}])
            )),
            "Missing required parameter: 'input[1].output'."
        );
        assert_eq!(
            refused(&with_input(json!([call("c"), {"type": "function_call_output", "call_id": "c", "output": {"ok": true}}]))),
            "Invalid type for 'input[1].output': expected one of a string or an array, but got an object instead."
        );
    }

    /// Reasoning replays only with encrypted content this backend issued.
    #[test]
    fn reasoning_needs_issued_encrypted_content() {
        let blob = reasoning_blob::issue(1_764_166_000);
        let answer = json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "4"}]});
        accepted(&with_input(json!([
            user("hi"),
            {"type": "reasoning", "id": "rs_0a1b2c", "summary": [], "encrypted_content": blob},
            answer,
        ])));
        let forged = json!({"type": "reasoning", "id": "rs_0a1b2c", "summary": [], "encrypted_content": "gAAAAABpKw-forged=="});
        assert_eq!(
            refusal(&with_input(json!([user("hi"), forged, answer]))),
            Rejection {
                status: 400,
                body: json!({"error": {
                    "message": "The encrypted content for item rs_0a1b2c could not be verified. \
                        Reason: Encrypted content could not be decrypted or parsed.",
                    "type": "invalid_request_error",
                    "param": null,
                    "code": "invalid_encrypted_content",
                }}),
            }
        );
        assert_eq!(
            refused(&with_input(
                json!([{"type": "reasoning", "summary": []}, answer])
            )),
            "The encrypted content for item reasoning could not be verified. Reason: Encrypted \
             content could not be decrypted or parsed."
        );
        assert_eq!(
            refused(&with_input(
                json!([{"type": "reasoning", "id": "rs_0a1b2c", "summary": []}, answer])
            )),
            "Item with id 'rs_0a1b2c' not found. Items are not persisted when `store` is set to \
             false. Try again with `store` set to true, or remove this item from your input.",
            "without its content the backend would have to look the item up"
        );
        assert_eq!(
            refused(&with_input(
                json!([{"type": "reasoning", "encrypted_content": blob}, answer])
            )),
            "Missing required parameter: 'input[0].summary'."
        );
    }

    /// A reasoning item may end the input: the CLI resends the reasoning it got
    /// before a stream broke off, without the message that never came.
    #[test]
    fn reasoning_may_end_the_input() {
        let reasoning = json!({"type": "reasoning", "id": "rs_9", "summary": [], "encrypted_content": reasoning_blob::issue(1)});
        accepted(&with_input(json!([user("hi"), reasoning])));
    }

    /// Item types the CLI sends besides messages, calls and reasoning pass as they are.
    #[test]
    fn other_item_types_pass() {
        accepted(&with_input(json!([
            user("hi"),
            {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
            {"type": "web_search_call", "status": "completed", "action": {"type": "search", "query": "q"}},
        ])));
    }

    /// The real Codex CLI 0.171's first turn passes: its tools as an `additional_tools`
    /// input item of namespaces, ids on every item, `reasoning.context`, `text.verbosity`.
    #[test]
    fn the_codex_cli_0_171_first_turn_passes() {
        let body = fixture(include_str!("fixtures/codex_cli_0.171_first_turn.json"));
        assert!(body.get("tools").is_none());
        assert_eq!(body["input"][0]["type"], "additional_tools");
        accepted(&body);
    }

    /// Its remote compaction (v2) passes: the history, then a `compaction_trigger`; and so does
    /// the turn after it, carrying the `compaction` item this backend issued in place of the
    /// turns it replaced (the capture's blob came from another server: replaced by one of ours).
    #[test]
    fn the_codex_cli_0_171_remote_compaction_passes() {
        let request = fixture(include_str!(
            "fixtures/codex_cli_0.171_remote_compaction_v2_request.json"
        ));
        assert_eq!(
            request["input"].as_array().and_then(|i| i.last()),
            Some(&json!({"type": "compaction_trigger"}))
        );
        accepted(&request);
        let mut after = fixture(include_str!(
            "fixtures/codex_cli_0.171_after_remote_compaction_v2_turn.json"
        ));
        let compaction = after["input"]
            .as_array_mut()
            .and_then(|items| items.iter_mut().find(|i| i["type"] == "compaction"))
            .unwrap_or_else(|| panic!("no compaction item"));
        assert_eq!(
            refusal(&json!({"model": "gpt-5.1-codex", "stream": true, "store": false, "input": [compaction.clone()]})).body["error"]["code"],
            "invalid_encrypted_content",
            "a blob this backend did not issue is refused"
        );
        compaction["encrypted_content"] =
            reasoning_blob::issue_as(Kind::Compaction, 1_764_166_000).into();
        accepted(&after);
    }

    /// A compaction's content must be a compaction blob of this backend; the trigger must end
    /// the input; `additional_tools` carries a checked list of tools; a configuration update
    /// names a known effort.
    #[test]
    fn codex_0_171_items_are_checked() {
        let compaction =
            |blob: Value| json!({"type": "compaction", "id": "cmp_1", "encrypted_content": blob});
        assert_eq!(
            refused(&with_input(json!([user("hi"), compaction(json!(reasoning_blob::issue(1)))]))),
            "The encrypted content for item cmp_1 could not be verified. Reason: Encrypted content could not be decrypted or parsed."
        );
        assert_eq!(
            refused(&with_input(json!([user("hi"), {"type": "compaction"}]))),
            "Missing required parameter: 'input[1].encrypted_content'."
        );
        accepted(&with_input(json!([
            compaction(json!(reasoning_blob::issue_as(Kind::Compaction, 1))),
            user("hi"),
        ])));
        assert_eq!(
            refused(&with_input(
                json!([{"type": "compaction_trigger"}, user("hi")])
            )),
            "Invalid 'input[0]': a compaction_trigger item must be the last input item."
        );
        accepted(&with_input(
            json!([user("hi"), {"type": "compaction_trigger"}]),
        ));
        let tools =
            |tools: Value| json!({"type": "additional_tools", "role": "developer", "tools": tools});
        accepted(&with_input(json!([
            tools(
                json!([{"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]}])
            ),
            user("hi"),
        ])));
        assert_eq!(
            refused(&with_input(
                json!([{"type": "additional_tools", "role": "developer"}, user("hi")])
            )),
            "Missing required parameter: 'input[0].tools'."
        );
        assert_eq!(
            refused(&with_input(json!([
                tools(
                    json!([{"type": "namespace", "name": "ns", "tools": [{"type": "function", "function": {"name": "f"}}]}])
                ),
                user("hi"),
            ]))),
            "Missing required parameter: 'input[0].tools[0].tools[0].name'."
        );
        assert_eq!(
            refused(&with_input(
                json!([{"type": "additional_tools", "role": "user", "tools": []}, user("hi")])
            )),
            "Invalid value: 'user'. Supported values are: 'developer'."
        );
        accepted(&with_input(json!([
            user("hi"),
            {"type": "configuration_update", "reasoning": {"effort": "high"}},
        ])));
        assert_eq!(
            refused(&with_input(json!([
                user("hi"),
                {"type": "configuration_update", "reasoning": {"effort": "extreme"}},
            ]))),
            "Invalid value: 'extreme'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max', and 'ultra'."
        );
    }

    /// Tools are a list of typed objects; function tools have the Responses shape.
    #[test]
    fn tools_are_checked() {
        accepted(&with(
            "tools",
            json!([
                {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
                {"type": "namespace", "name": "multi_agent_v1", "tools": []},
                {"type": "web_search", "external_web_access": false},
            ]),
        ));
        assert_eq!(
            refused(&with("tools", json!({"type": "function"}))),
            "Invalid type for 'tools': expected an array, but got an object instead."
        );
        assert_eq!(
            refused(&with("tools", json!([{"name": "f"}]))),
            "Missing required parameter: 'tools[0].type'."
        );
        assert_eq!(
            refused(&with("tools", json!([{"type": "web_search"}, "f"]))),
            "Invalid type for 'tools[1]': expected an object, but got a string instead."
        );
    }

    /// A Chat Completions tool (name nested under `function`) misses the top-level name.
    #[test]
    fn chat_shaped_tools_are_refused() {
        let chat =
            json!([{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]);
        assert_eq!(
            refused(&with("tools", chat)),
            "Missing required parameter: 'tools[0].name'."
        );
    }

    /// Function tool names match ^[a-zA-Z0-9_-]{1,64}$; their other fields have their types.
    #[test]
    fn function_tool_fields_are_checked() {
        let tool = |fields: Value| {
            let mut tool = json!({"type": "function", "name": "f"});
            if let (Some(tool), Value::Object(fields)) = (tool.as_object_mut(), fields) {
                tool.extend(fields);
            }
            with("tools", json!([tool]))
        };
        accepted(&tool(json!({"name": "a-Z_9"})));
        accepted(&tool(json!({"name": "n".repeat(64)})));
        assert_eq!(
            refused(&tool(json!({"name": "get weather"}))),
            "Invalid 'tools[0].name': string does not match pattern. Expected a string that \
             matches the pattern '^[a-zA-Z0-9_-]{1,64}$'."
        );
        assert_eq!(
            refused(&tool(json!({"name": "n".repeat(65)}))),
            "Invalid 'tools[0].name': string too long. Expected a string with maximum length 64, \
             but got a string with length 65 instead."
        );
        assert_eq!(
            refused(&tool(json!({"name": ""}))),
            "Invalid 'tools[0].name': empty string. Expected a string with minimum length 1, but \
             got an empty string instead."
        );
        assert_eq!(
            refused(&tool(json!({"description": 3}))),
            "Invalid type for 'tools[0].description': expected a string, but got an integer instead."
        );
        assert_eq!(
            refused(&tool(json!({"parameters": "{}"}))),
            "Invalid type for 'tools[0].parameters': expected an object, but got a string instead."
        );
        assert_eq!(
            refused(&tool(json!({"strict": "yes"}))),
            "Invalid type for 'tools[0].strict': expected a boolean, but got a string instead."
        );
    }

    /// `tool_choice` is a mode or a typed object; function choices name the function.
    #[test]
    fn tool_choice_is_checked() {
        for choice in [
            json!("auto"),
            json!("none"),
            json!("required"),
            json!({"type": "function", "name": "f"}),
            json!({"type": "web_search"}),
        ] {
            accepted(&with("tool_choice", choice));
        }
        assert_eq!(
            refused(&with("tool_choice", json!("any"))),
            "Invalid value: 'any'. Supported values are: 'none', 'auto', and 'required'."
        );
        assert_eq!(
            refused(&with(
                "tool_choice",
                json!({"type": "function", "function": {"name": "f"}})
            )),
            "Missing required parameter: 'tool_choice.name'."
        );
        assert_eq!(
            refused(&with("tool_choice", json!({"name": "f"}))),
            "Missing required parameter: 'tool_choice.type'."
        );
        assert_eq!(
            refused(&with("tool_choice", json!(true))),
            "Invalid type for 'tool_choice': expected one of a string or an object, but got a boolean instead."
        );
    }

    /// `parallel_tool_calls` is a boolean and `include` a list of strings.
    #[test]
    fn flags_and_include_are_checked() {
        assert_eq!(
            refused(&with("parallel_tool_calls", json!("true"))),
            "Invalid type for 'parallel_tool_calls': expected a boolean, but got a string instead."
        );
        assert_eq!(
            refused(&with("include", json!("reasoning.encrypted_content"))),
            "Invalid type for 'include': expected an array, but got a string instead."
        );
        assert_eq!(
            refused(&with("include", json!(["reasoning.encrypted_content", 1]))),
            "Invalid type for 'include[1]': expected a string, but got an integer instead."
        );
    }

    /// Reasoning effort and summary take the backend's values.
    #[test]
    fn reasoning_options_are_checked() {
        for effort in EFFORTS {
            accepted(&with("reasoning", json!({"effort": effort})));
        }
        for summary in SUMMARIES {
            accepted(&with("reasoning", json!({"summary": summary})));
        }
        assert_eq!(
            refused(&with("reasoning", json!({"effort": "extreme"}))),
            "Invalid value: 'extreme'. Supported values are: 'none', 'minimal', 'low', 'medium', \
             'high', 'xhigh', 'max', and 'ultra'."
        );
        assert_eq!(
            refused(&with("reasoning", json!({"summary": "brief"}))),
            "Invalid value: 'brief'. Supported values are: 'auto', 'concise', 'detailed', and 'none'."
        );
        assert_eq!(
            refused(&with("reasoning", json!({"effort": 2}))),
            "Invalid type for 'reasoning.effort': expected a string, but got an integer instead."
        );
        assert_eq!(
            refused(&with("reasoning", json!("high"))),
            "Invalid type for 'reasoning': expected an object, but got a string instead."
        );
    }

    /// `text`, `client_metadata`, `prompt_cache_key` and `service_tier` have their types.
    #[test]
    fn remaining_options_have_their_types() {
        assert_eq!(
            refused(&with("text", json!("json"))),
            "Invalid type for 'text': expected an object, but got a string instead."
        );
        assert_eq!(
            refused(&with("client_metadata", json!(["a"]))),
            "Invalid type for 'client_metadata': expected an object, but got an array instead."
        );
        assert_eq!(
            refused(&with("prompt_cache_key", json!(1.5))),
            "Invalid type for 'prompt_cache_key': expected a string, but got a decimal instead."
        );
        assert_eq!(
            refused(&with("service_tier", json!({}))),
            "Invalid type for 'service_tier': expected a string, but got an object instead."
        );
    }

    /// Front-door refusals are `{"detail"}`; the engine's are OpenAI error objects naming the parameter.
    #[test]
    fn refusals_have_the_backends_two_shapes() {
        assert_eq!(
            refusal(&with_input(json!("hi"))),
            Rejection {
                status: 400,
                body: json!({"detail": "Input must be a list"})
            }
        );
        assert_eq!(
            refusal(&with(
                "tools",
                json!([{"type": "function", "function": {"name": "f"}}])
            )),
            Rejection {
                status: 400,
                body: json!({"error": {
                    "message": "Missing required parameter: 'tools[0].name'.",
                    "type": "invalid_request_error",
                    "param": "tools[0].name",
                    "code": "missing_required_parameter",
                }}),
            }
        );
        assert_eq!(
            refusal(&with("tool_choice", json!("any"))).body["error"]["code"],
            "invalid_value"
        );
        assert_eq!(
            refusal(&with("parallel_tool_calls", json!(1))).body["error"]["code"],
            "invalid_type"
        );
    }

    /// A broken rule is reported before later ones, in the documented order.
    #[test]
    fn the_first_broken_rule_is_reported() {
        let body = json!({"model": "o3", "input": "hi", "temperature": 0, "stream": false});
        assert_eq!(refused(&body), "Stream must be set to true");
        let body =
            json!({"model": "o3", "input": "hi", "temperature": 0, "stream": true, "store": false});
        assert_eq!(refused(&body), "Unsupported parameter: temperature");
    }

    /// Value lists read as the API writes them.
    #[test]
    fn value_lists_read_naturally() {
        assert_eq!(quoted_list(&["a"]), "'a'");
        assert_eq!(quoted_list(&["a", "b"]), "'a' and 'b'");
        assert_eq!(quoted_list(&["a", "b", "c"]), "'a', 'b', and 'c'");
    }
}
