//! Well-formed Gemini requests, for property tests here and against the strict mock upstream:
//! field names in either spelling, function calls with and without ids (the Gemini CLI's and
//! `google-genai`'s), keyward's thought signatures and the Gemini CLI's stand-in one.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Names of the functions every generated request declares.
pub(crate) const TOOL_NAMES: [&str; 3] = ["get_weather", "read_file", "run_query"];

/// What a model turn's signature is made from before a test signs it: the acceptance test
/// replaces it with reasoning the mock backend issued.
pub(crate) const UNSIGNED: &str = "encrypted-reasoning";

/// The Gemini CLI's stand-in signature on calls that had none.
pub(crate) const CLI_SIGNATURE: &str = "skip_thought_signature_validator";

fn words() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9 .,!?'-]{0,30}"
}

/// `name` as lowerCamel or, for `google-genai`'s unconverted dicts, snake_case.
fn spelled(name: &str, snake: bool) -> String {
    if snake {
        super::keys::snake(name)
    } else {
        name.to_string()
    }
}

fn user_part() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => words().prop_map(|text| json!({"text": text})),
        1 => ("[A-Za-z0-9+/]{4,24}", any::<bool>()).prop_map(|(data, snake)| {
            json!({ spelled("inlineData", snake): {spelled("mimeType", snake): "image/png", "data": format!("{data}==")} })
        }),
        1 => "[a-z]{1,8}".prop_map(|name| json!({
            "fileData": {"mimeType": "image/png", "fileUri": format!("https://example.com/{name}.png")},
        })),
    ]
}

/// A user's own parts: at least one text.
fn user_parts() -> impl Strategy<Value = Vec<Value>> {
    (words(), prop::collection::vec(user_part(), 0..3)).prop_map(|(first, mut rest)| {
        rest.insert(0, json!({"text": first}));
        rest
    })
}

/// One round: the model's turn, then the user's answer to it.
#[derive(Debug, Clone)]
struct Round {
    /// A thought summary.
    thought: Option<String>,
    /// Whether keyward signed the turn (else the Gemini CLI put its stand-in on the first call).
    signed: bool,
    text: Option<String>,
    /// (tool name index, argument, with an id, the response sends the id back) per call.
    calls: Vec<(usize, String, bool, bool)>,
    outputs: Vec<String>,
    reply: Vec<Value>,
}

fn round() -> impl Strategy<Value = Round> {
    (
        prop::option::of(words()),
        any::<bool>(),
        prop::option::of(words()),
        prop::collection::vec(
            (0..TOOL_NAMES.len(), words(), any::<bool>(), any::<bool>()),
            0..4,
        ),
        prop::collection::vec(words(), 1..3),
        prop::collection::vec(user_part(), 0..2),
    )
        .prop_map(|(thought, signed, text, calls, outputs, reply)| Round {
            thought,
            signed,
            text,
            calls,
            outputs,
            reply,
        })
}

/// Assembles the contents: a user turn, then rounds whose function responses answer exactly the
/// calls of the model turn before them.
fn contents(first: Vec<Value>, rounds: Vec<Round>, snake: bool) -> Vec<Value> {
    let signature = super::sign(UNSIGNED);
    let mut contents = vec![json!({"role": "user", "parts": first})];
    for (r, round) in rounds.into_iter().enumerate() {
        let mut parts = Vec::new();
        if let Some(summary) = &round.thought {
            parts.push(json!({"text": summary, "thought": true}));
        }
        if round.text.is_none() && round.calls.is_empty() {
            parts.push(json!({"text": "Noted."}));
        }
        if let Some(text) = &round.text {
            parts.push(json!({"text": text}));
        }
        for (k, (tool, argument, with_id, _)) in round.calls.iter().enumerate() {
            let mut call = json!({"name": TOOL_NAMES[*tool], "args": {"arg": argument}});
            if *with_id {
                call["id"] = json!(format!("call_{r}_{k}"));
            }
            let mut part = json!({ spelled("functionCall", snake): call });
            if k == 0 && !round.signed {
                part["thoughtSignature"] = json!(CLI_SIGNATURE);
            }
            parts.push(part);
        }
        // keyward's signature rides on the first part after the reasoning.
        if round.signed {
            let first = usize::from(round.thought.is_some());
            if let Some(Value::Object(part)) = parts.get_mut(first) {
                part.insert(spelled("thoughtSignature", snake), json!(signature));
            }
        }
        contents.push(json!({"role": "model", "parts": parts}));

        let mut user = Vec::new();
        for (k, ((tool, _, with_id, echo_id), output)) in round
            .calls
            .iter()
            .zip(round.outputs.iter().cycle())
            .enumerate()
        {
            let mut response = json!({"name": TOOL_NAMES[*tool], "response": {"output": output}});
            if *with_id && *echo_id {
                response["id"] = json!(format!("call_{r}_{k}"));
            }
            user.push(json!({ spelled("functionResponse", snake): response }));
        }
        user.extend(round.reply);
        if user.is_empty() {
            user.push(json!({"text": "Go on."}));
        }
        contents.push(json!({"role": "user", "parts": user}));
    }
    contents
}

fn declarations() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec((words(), 0..3u8), TOOL_NAMES.len()).prop_map(|specs| {
        TOOL_NAMES
            .iter()
            .zip(specs)
            .map(|(name, (description, schema))| match schema {
                0 => json!({"name": name, "description": description, "parametersJsonSchema": {
                    "type": "object", "properties": {"arg": {"type": "string"}}, "required": ["arg"],
                }}),
                1 => json!({"name": name, "description": description, "parameters_json_schema": {
                    "type": "object", "properties": {"arg": {"type": "string"}}, "required": ["arg"],
                }}),
                _ => json!({"name": name, "description": description, "parameters": {
                    "type": "OBJECT", "properties": {"arg": {"type": "STRING"}}, "required": ["arg"],
                }}),
            })
            .collect()
    })
}

fn tool_config() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!({"functionCallingConfig": {"mode": "AUTO"}}))),
        Just(Some(json!({"functionCallingConfig": {"mode": "ANY"}}))),
        Just(Some(json!({"function_calling_config": {"mode": "NONE"}}))),
        (0..TOOL_NAMES.len()).prop_map(|i| Some(json!({"functionCallingConfig": {
            "mode": "ANY", "allowedFunctionNames": [TOOL_NAMES[i]],
        }}))),
    ]
}

fn thinking() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        (
            any::<bool>(),
            prop::sample::select(vec!["LOW", "MEDIUM", "HIGH", "MINIMAL"])
        )
            .prop_map(|(include, level)| Some(
                json!({"includeThoughts": include, "thinkingLevel": level})
            )),
        (-1i64..30_000)
            .prop_map(|budget| Some(json!({"thinking_budget": budget, "include_thoughts": true}))),
    ]
}

fn system() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        words().prop_map(|text| Some(Value::String(text))),
        prop::collection::vec(words(), 1..3).prop_map(|texts| {
            let parts: Vec<Value> = texts.iter().map(|t| json!({"text": t})).collect();
            Some(json!({"role": "user", "parts": parts}))
        }),
    ]
}

/// Generation settings: limits, sampling, stop sequences, thinking, and a response format.
fn generation() -> impl Strategy<Value = Map<String, Value>> {
    (
        prop::option::of(1u64..64_000),
        prop::option::of(0.0f64..2.0),
        prop::option::of(1u64..100),
        prop::option::of(prop::collection::vec(words(), 0..3)),
        thinking(),
        0..3u8,
        any::<bool>(),
    )
        .prop_map(|(max, temperature, top_k, stops, thinking, format, snake)| {
            let mut config = Map::new();
            let mut set = |name: &str, value: Value| {
                config.insert(spelled(name, snake), value);
            };
            if let Some(max) = max {
                set("maxOutputTokens", json!(max));
            }
            if let Some(temperature) = temperature {
                set("temperature", json!(temperature));
                set("topP", json!(0.95));
            }
            if let Some(top_k) = top_k {
                set("topK", json!(top_k));
            }
            if let Some(stops) = stops {
                set("stopSequences", json!(stops));
            }
            if let Some(thinking) = thinking {
                set("thinkingConfig", thinking);
            }
            match format {
                1 => set("responseMimeType", json!("application/json")),
                2 => {
                    set("responseMimeType", json!("application/json"));
                    set("responseSchema", json!({"type": "OBJECT", "properties": {"answer": {"type": "STRING"}}, "required": ["answer"]}));
                }
                _ => {}
            }
            config
        })
}

/// A well-formed Gemini request body, as the Gemini CLI and `google-genai` send them.
pub(crate) fn well_formed_request() -> impl Strategy<Value = Value> {
    (
        (
            system(),
            user_parts(),
            prop::collection::vec(round(), 0..4),
            any::<bool>(),
        ),
        (
            prop::option::of(declarations()),
            any::<bool>(),
            tool_config(),
            prop::option::of(generation()),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (system, first, rounds, snake),
                (declarations, search, tool_config, generation, safety),
            )| {
                let uses_tools = rounds.iter().any(|r| !r.calls.is_empty());
                let mut request = Map::new();
                if let Some(system) = system {
                    request.insert(spelled("systemInstruction", snake), system);
                }
                request.insert("contents".into(), Value::Array(contents(first, rounds, snake)));
                // A conversation with function calls always declares the functions.
                let declarations = declarations.or_else(|| uses_tools.then(Vec::new));
                if let Some(mut declarations) = declarations {
                    if declarations.is_empty() {
                        declarations = TOOL_NAMES.iter().map(|name| json!({"name": name})).collect();
                    }
                    let mut tools = vec![json!({ spelled("functionDeclarations", snake): declarations })];
                    if search {
                        tools.push(json!({"googleSearch": {}}));
                    }
                    request.insert("tools".into(), Value::Array(tools));
                    if let Some(config) = tool_config {
                        request.insert(spelled("toolConfig", snake), config);
                    }
                }
                if let Some(generation) = generation {
                    request.insert(spelled("generationConfig", snake), Value::Object(generation));
                }
                if safety {
                    request.insert(
                        "safetySettings".into(),
                        json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]),
                    );
                }
                Value::Object(request)
            },
        )
}
