//! The Gemini translator against whole expected requests, the recorded streams and random input.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::strategies::well_formed_request;
use super::{sign, translate, translate_count, Call, Framing};
use crate::dialect::testing::{assembled, fixture_events, frames, run, typed};
use crate::dialect::{Answer, Invalid, Translated};

fn call(framing: Framing) -> Call {
    Call {
        model: "gemini-3.8-flash".into(),
        framing,
    }
}

fn translated(request: &Value) -> Translated {
    translate(&call(Framing::Sse), request.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("refused: {e:?}"))
}

/// The Responses body a request translates into.
fn body(request: Value) -> Value {
    Value::Object(translated(&request).body)
}

fn refusal(request: Value) -> Invalid {
    match translate(&call(Framing::Whole), request.to_string().as_bytes()) {
        Ok(translated) => panic!("accepted: {:?}", translated.body),
        Err(invalid) => invalid,
    }
}

fn answer(request: &Value, framing: Framing) -> Box<dyn Answer> {
    translate(&call(framing), request.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("refused: {e:?}"))
        .answer
        .unwrap_or_else(|| panic!("a Gemini request has an answer"))
}

fn hello(extra: Value) -> Value {
    let mut request = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    if let (Some(request), Value::Object(extra)) = (request.as_object_mut(), extra) {
        request.extend(extra);
    }
    request
}

/// The chunks of an SSE answer.
fn streamed(request: &Value, events: &[crate::dialect::responses::StreamEvent]) -> Vec<Value> {
    chunks(&run(answer(request, Framing::Sse).stream(), events, None))
}

fn chunks(text: &str) -> Vec<Value> {
    frames(text)
        .into_iter()
        .map(|(event, data)| {
            assert_eq!(event, None, "Gemini's events have no names");
            data
        })
        .collect()
}

/// One readable line per part of each chunk, and the finish reason of the last.
fn outline(chunks: &[Value]) -> Vec<String> {
    let mut lines = Vec::new();
    for chunk in chunks {
        if let Some(error) = chunk.get("error") {
            lines.push(format!(
                "error {} {}",
                error["code"],
                text(&error["status"])
            ));
            continue;
        }
        let candidate = &chunk["candidates"][0];
        for part in candidate["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let signed = if part.get("thoughtSignature").is_some() {
                " (signed)"
            } else {
                ""
            };
            if part["thought"] == true {
                lines.push(format!("thought {}{signed}", text(&part["text"])));
            } else if let Some(call) = part.get("functionCall") {
                lines.push(format!(
                    "call {} {} {}{signed}",
                    text(&call["id"]),
                    text(&call["name"]),
                    call["args"]
                ));
            } else {
                lines.push(format!("text {}{signed}", text(&part["text"])));
            }
        }
        if let Some(reason) = candidate["finishReason"].as_str() {
            lines.push(format!("finish {reason}"));
        }
    }
    lines
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("null")
}

/// The recorded Gemini CLI turn answering a function call: the whole Responses request.
#[test]
fn the_gemini_clis_function_response_turn_translates_whole() {
    let recorded: Value = serde_json::from_str(include_str!(
        "../fixtures/gemini_cli_function_response_turn.json"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let translated = translated(&recorded);
    assert!(translated.stream);
    assert_eq!(translated.model, "gemini-3.8-flash");
    let body = Value::Object(translated.body);
    let input = body["input"].as_array().cloned().unwrap_or_default();
    assert_eq!(input[0]["role"], "system");
    assert_eq!(input[1]["role"], "user");
    assert_eq!(
        input[1]["content"][1],
        json!({"type": "input_text", "text": "[[tool]] list the files"})
    );
    assert_eq!(
        input[2],
        json!({"type": "function_call", "call_id": "call_abc123", "name": "list_directory", "arguments": "{\"dir_path\":\"/work/research/q3/work\"}"})
    );
    assert_eq!(
        input[3],
        json!({"type": "function_call_output", "call_id": "call_abc123", "output": "Directory listing for /work/research/q3/work:\nnotes.txt (6 bytes)"})
    );
    assert_eq!(input.len(), 4);
    assert_eq!(body["temperature"], 1);
    assert_eq!(body["top_p"], 0.95);
    assert_eq!(
        body["reasoning"],
        json!({"effort": "high", "summary": "auto"})
    );
    assert_eq!(
        body["tools"][1]["name"], "list_directory",
        "{}",
        body["tools"]
    );
    assert_eq!(body["tools"][1]["strict"], false);
    assert_eq!(translated.dropped, ["generationConfig.topK"]);
    assert_eq!(
        translated.renamed,
        [
            ("temperature", "generationConfig.temperature"),
            ("top_p", "generationConfig.topP"),
            ("reasoning", "generationConfig.thinkingConfig"),
        ]
    );
}

/// Field names in snake_case read as their lowerCamel spelling, at every level.
#[test]
fn field_names_are_read_in_either_spelling() {
    let camel = json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "hi"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}],
        "tools": [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object"}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        "generationConfig": {"maxOutputTokens": 9, "stopSequences": ["x"], "thinkingConfig": {"includeThoughts": true, "thinkingLevel": "LOW"}, "responseMimeType": "application/json", "responseJsonSchema": {"type": "OBJECT"}},
    });
    let snake = json!({
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "hi"}, {"inline_data": {"mime_type": "image/png", "data": "AAAA"}}]}],
        "tools": [{"function_declarations": [{"name": "f", "parameters_json_schema": {"type": "object"}}]}],
        "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["f"]}},
        "generationConfig": {"max_output_tokens": 9, "stop_sequences": ["x"], "thinking_config": {"include_thoughts": true, "thinking_level": "LOW"}, "response_mime_type": "application/json", "response_json_schema": {"type": "OBJECT"}},
    });
    assert_eq!(body(camel.clone()), body(snake));
    assert_eq!(
        body(camel),
        json!({
            "model": "gemini-3.8-flash",
            "input": [
                {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "Be brief."}]},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "hi"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ]},
            ],
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": false}],
            "tool_choice": {"type": "function", "name": "f"},
            "max_output_tokens": 9,
            "text": {"format": {"type": "json_schema", "name": "response", "schema": {"type": "object"}, "strict": false}},
            "reasoning": {"effort": "low", "summary": "auto"},
            "stream": true,
        })
    );
}

/// Every generation setting is carried, dropped and reported, or refused; nothing else.
#[test]
fn generation_settings_are_carried_dropped_or_refused() {
    let request = hello(json!({
        "generationConfig": {
            "temperature": 0.5, "topP": 0.9, "topK": 40.0, "seed": 7, "presencePenalty": 0.5,
            "frequencyPenalty": 0, "candidateCount": 1, "responseLogprobs": false,
            "responseModalities": ["TEXT"], "mediaResolution": "MEDIA_RESOLUTION_LOW",
            "thinkingConfig": {"thinkingBudget": 20000},
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "labels": {"team": "a"},
        "model": "models/ignored",
    }));
    let translated = translated(&request);
    assert_eq!(
        translated.dropped,
        [
            "generationConfig.topK",
            "generationConfig.seed",
            "generationConfig.presencePenalty",
            "generationConfig.mediaResolution",
            "safetySettings",
            "labels",
        ]
    );
    let body = Value::Object(translated.body);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(body["top_p"], 0.9);
    assert_eq!(body["reasoning"], json!({"effort": "high"}));
    assert!(body.get("text").is_none());

    for (request, param) in [
        (
            hello(json!({"generationConfig": {"candidateCount": 2}})),
            "generationConfig.candidateCount",
        ),
        (
            hello(json!({"generationConfig": {"responseModalities": ["TEXT", "AUDIO"]}})),
            "generationConfig.responseModalities",
        ),
        (
            hello(json!({"generationConfig": {"responseMimeType": "text/x.enum"}})),
            "generationConfig.responseMimeType",
        ),
        (
            hello(json!({"cachedContent": "cachedContents/abc"})),
            "cachedContent",
        ),
        (
            hello(json!({"generationConfig": {"thinkingConfig": {"thinkingLevel": "EXTREME"}}})),
            "generationConfig.thinkingConfig.thinkingLevel",
        ),
        (
            hello(json!({"toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}})),
            "toolConfig.functionCallingConfig.mode",
        ),
    ] {
        assert_eq!(refusal(request).param.as_deref(), Some(param));
    }
}

/// A field of the wrong type is refused with a 400 naming it.
#[test]
fn wrongly_typed_fields_are_refused_naming_them() {
    for (request, param) in [
        (json!({"contents": "hi"}), "contents"),
        (json!({}), "contents"),
        (
            json!({"contents": [{"role": "user", "parts": [{"text": 5}]}]}),
            "contents[0].parts[0].text",
        ),
        (
            json!({"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}),
            "contents[0].role",
        ),
        (
            json!({"contents": [{"role": "user", "parts": {"text": "x"}}]}),
            "contents[0].parts",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{"text": "x", "functionCall": {"name": "f"}}]}]}),
            "contents[0].parts[0]",
        ),
        (
            json!({"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": "{}"}}]}]}),
            "contents[0].parts[0].functionCall.args",
        ),
        (
            json!({"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]}),
            "contents[0].parts[0].functionCall.name",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{"inlineData": {"data": "AAAA"}}]}]}),
            "contents[0].parts[0].inlineData.mimeType",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{"text": "x", "thought": "yes"}]}]}),
            "contents[0].parts[0].thought",
        ),
        (hello(json!({"systemInstruction": 5})), "systemInstruction"),
        (
            hello(json!({"generationConfig": {"maxOutputTokens": "many"}})),
            "generationConfig.maxOutputTokens",
        ),
        (
            hello(json!({"generationConfig": {"temperature": "hot"}})),
            "generationConfig.temperature",
        ),
        (
            hello(json!({"generationConfig": {"stopSequences": "END"}})),
            "generationConfig.stopSequences",
        ),
        (
            hello(json!({"generationConfig": {"stopSequences": [1]}})),
            "generationConfig.stopSequences[0]",
        ),
        (
            hello(json!({"generationConfig": {"thinkingConfig": {"includeThoughts": "yes"}}})),
            "generationConfig.thinkingConfig.includeThoughts",
        ),
        (
            hello(json!({"generationConfig": {"responseSchema": "object"}})),
            "generationConfig.responseSchema",
        ),
        (hello(json!({"generationConfig": []})), "generationConfig"),
        (
            hello(json!({"tools": {"functionDeclarations": []}})),
            "tools",
        ),
        (
            hello(json!({"tools": [{"functionDeclarations": [{"description": "no name"}]}]})),
            "tools[0].functionDeclarations[0].name",
        ),
        (
            hello(json!({"tools": [{"functionDeclarations": [{"name": "f", "parameters": "x"}]}]})),
            "tools[0].functionDeclarations[0].parameters",
        ),
        (
            hello(json!({"toolConfig": {"functionCallingConfig": {"allowedFunctionNames": "f"}}})),
            "toolConfig.functionCallingConfig.allowedFunctionNames",
        ),
        (hello(json!({"safetySettings": {}})), "safetySettings"),
    ] {
        let invalid = refusal(request.clone());
        assert_eq!(
            invalid.param.as_deref(),
            Some(param),
            "{request}: {invalid:?}"
        );
    }
    assert!(translate(&call(Framing::Whole), b"[1]").is_err());
    assert!(translate(&call(Framing::Whole), b"{").is_err());
}

/// Function responses are paired with their calls by id, or (as `google-genai` sends them,
/// without ids) by name and order; calls without ids get keyward's. A response to no call is
/// refused.
#[test]
fn function_responses_pair_with_their_calls() {
    let request = json!({
        "contents": [
            {"role": "user", "parts": [{"text": "weather and time?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
                {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                {"functionCall": {"id": "call_x", "name": "get_time"}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
                {"functionResponse": {"id": "call_x", "name": "get_time", "response": {"error": "no clock"}}},
                {"functionResponse": {"name": "get_weather", "response": {"result": "rain"}}},
                {"functionResponse": {"name": "get_time", "response": {"output": {"h": 9}}}},
                {"text": "thanks"},
            ]},
        ],
    });
    let body = body(request);
    let pairs: Vec<(String, String)> = body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let detail = item.get("name").or_else(|| item.get("output"))?;
            Some((text(&item["call_id"]).to_string(), detail.to_string()))
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("kwcall_1_0", "\"get_weather\""),
            ("kwcall_1_1", "\"get_time\""),
            ("kwcall_1_2", "\"get_weather\""),
            ("call_x", "\"get_time\""),
            ("kwcall_1_0", "\"sunny\""),
            ("call_x", "\"Error: no clock\""),
            ("kwcall_1_2", "\"{\\\"result\\\":\\\"rain\\\"}\""),
            ("kwcall_1_1", "\"{\\\"h\\\":9}\""),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(body["input"][9]["content"][0]["text"], "thanks");

    let orphan = json!({"contents": [
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]},
    ]});
    let invalid = refusal(orphan);
    assert_eq!(
        invalid.param.as_deref(),
        Some("contents[0].parts[0].functionResponse")
    );
    assert!(invalid.message.contains("`f`"), "{}", invalid.message);
}

/// keyward's thought signature (as it went out, or re-encoded URL-safe by `google-genai`) gives
/// back the reasoning item it came from, with the thought summaries before it; other signatures
/// and unsigned thoughts are dropped.
#[test]
fn thought_signatures_carry_reasoning_back() {
    let signature = sign("gAAAAB-blob==");
    let url_safe = signature.replace('+', "-").replace('/', "_");
    let request = json!({"contents": [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [
            {"text": "Thinking it over", "thought": true},
            {"text": "Hello", "thoughtSignature": signature},
        ]},
        {"role": "user", "parts": [{"text": "call it"}]},
        {"role": "model", "parts": [
            {"text": "unsigned thought", "thought": true},
            {"functionCall": {"name": "f", "args": {}}, "thought_signature": "skip_thought_signature_validator"},
        ]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "ok"}}}]},
        {"role": "model", "parts": [{"text": "", "thoughtSignature": url_safe}]},
        {"role": "user", "parts": [{"text": "again"}]},
    ]});
    let input = body(request)["input"].clone();
    let kinds: Vec<&str> = input
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| item["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "reasoning",
            "message",
            "message",
            "function_call",
            "function_call_output",
            "reasoning",
            "message"
        ]
    );
    assert_eq!(
        input[1],
        json!({"type": "reasoning", "summary": [{"type": "summary_text", "text": "Thinking it over"}], "encrypted_content": "gAAAAB-blob=="})
    );
    assert_eq!(input[6]["encrypted_content"], "gAAAAB-blob==");
}

/// Inline data (in either base64 alphabet, as `google-genai` sends it URL-safe) and files become
/// input parts where the upstream can read them; audio, video and files only Google can fetch
/// are dropped and reported.
#[test]
fn media_becomes_input_parts() {
    let translated = translated(&json!({"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "image/jpeg", "data": "_9j_4A"}},
        {"inlineData": {"mimeType": "text/plain", "data": "aGVsbG8"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0=", "displayName": "report.pdf"}},
        {"inlineData": {"mimeType": "application/vnd.ms-excel", "data": "AAAA"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "AAAA"}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.png"}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/a.pdf"}},
        {"fileData": {"mimeType": "video/mp4", "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}},
        {"fileData": {"fileUri": "gs://bucket/a.txt"}},
        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
        {"text": "what is in these?", "videoMetadata": {"fps": 1}},
    ]}]}));
    assert_eq!(
        translated.dropped,
        [
            "contents.parts.videoMetadata",
            "contents.parts.inlineData (audio)",
            "contents.parts.fileData (Gemini Files API)",
            "contents.parts.fileData (not an http(s) URL)",
            "contents.parts.executableCode",
        ]
    );
    assert_eq!(
        translated.body["input"][0]["content"],
        json!([
            {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/4A=="},
            {"type": "input_text", "text": "hello"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=", "filename": "report.pdf"},
            {"type": "input_file", "file_data": "data:application/vnd.ms-excel;base64,AAAA", "filename": "file.msexcel"},
            {"type": "input_image", "image_url": "https://example.com/a.png"},
            {"type": "input_file", "file_url": "https://example.com/a.pdf"},
            {"type": "input_text", "text": "what is in these?"},
        ])
    );
}

/// `functionCallingConfig` modes as tool choices; `allowedFunctionNames` narrows the offer.
#[test]
fn function_calling_modes_become_tool_choices() {
    let with = |config: Value| {
        body(hello(json!({
            "tools": [{"functionDeclarations": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}, {"googleSearch": {}}],
            "toolConfig": {"functionCallingConfig": config},
        })))
    };
    let names = |body: &Value| -> Vec<String> {
        body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| t["name"].as_str().unwrap_or("web_search").to_string())
            .collect()
    };
    let auto = with(json!({"mode": "AUTO"}));
    assert_eq!(auto.get("tool_choice"), None);
    assert_eq!(names(&auto), ["a", "b", "c", "web_search"]);
    assert_eq!(with(json!({"mode": "NONE"}))["tool_choice"], "none");
    assert_eq!(with(json!({"mode": "any"}))["tool_choice"], "required");
    let one = with(json!({"mode": "ANY", "allowedFunctionNames": ["b"]}));
    assert_eq!(one["tool_choice"], json!({"type": "function", "name": "b"}));
    let two = with(json!({"mode": "ANY", "allowedFunctionNames": ["a", "c"]}));
    assert_eq!(two["tool_choice"], "required");
    assert_eq!(names(&two), ["a", "c", "web_search"]);
    let unknown = refusal(hello(json!({
        "tools": [{"functionDeclarations": [{"name": "a"}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["z"]}},
    })));
    assert_eq!(
        unknown.param.as_deref(),
        Some("toolConfig.functionCallingConfig.allowedFunctionNames")
    );
    // Forcing a call with nothing to call is dropped, not sent.
    let none = translated(&hello(
        json!({"toolConfig": {"functionCallingConfig": {"mode": "ANY"}}}),
    ));
    assert_eq!(none.dropped, ["toolConfig.functionCallingConfig.mode"]);
    assert_eq!(none.body.get("tool_choice"), None);
}

/// Structured output: a schema (OpenAPI-style or JSON Schema) is `json_schema`, JSON without
/// one is JSON mode.
#[test]
fn response_formats_become_text_formats() {
    let format =
        |config: Value| body(hello(json!({"generationConfig": config})))["text"]["format"].clone();
    assert_eq!(
        format(
            json!({"responseMimeType": "application/json", "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING", "nullable": true}}}})
        ),
        json!({"type": "json_schema", "name": "response", "schema": {"type": "object", "properties": {"a": {"type": ["string", "null"]}}}, "strict": false})
    );
    assert_eq!(
        format(json!({"responseMimeType": "application/json"})),
        json!({"type": "json_object"})
    );
    assert_eq!(
        format(json!({"responseMimeType": "text/plain"})),
        Value::Null
    );
}

/// `:countTokens` takes `contents`, or a whole `generateContentRequest`.
#[test]
fn count_requests_translate() {
    let plain = translate_count(
        "gemini-3-pro",
        br#"{"contents": [{"parts": [{"text": "hi"}]}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    let wrapped = translate_count(
        "gemini-3-pro",
        br#"{"generateContentRequest": {"model": "models/gemini-3-pro", "contents": [{"parts": [{"text": "hi"}]}]}}"#,
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(plain.body, wrapped.body);
    assert!(!plain.stream);
}

fn with_thoughts() -> Value {
    hello(json!({"generationConfig": {"thinkingConfig": {"includeThoughts": true}}}))
}

/// A text stream: one chunk per delta, then the last chunk with the finish reason and usage.
#[test]
fn text_streams_end_with_a_finish_reason() {
    let chunks = streamed(&hello(json!({})), &fixture_events("text"));
    assert_eq!(
        outline(&chunks),
        ["text Hel", "text lo, ", "text world.", "finish STOP"]
    );
    let last = chunks.last().cloned().unwrap_or_default();
    assert_eq!(
        last["usageMetadata"],
        json!({"promptTokenCount": 21, "candidatesTokenCount": 4, "totalTokenCount": 25, "cachedContentTokenCount": 16})
    );
    assert_eq!(last["modelVersion"], "gemini-3.8-flash");
    assert_eq!(last["responseId"], "0a1b2c3d4e5f");
    assert_eq!(chunks[0]["responseId"], "0a1b2c3d4e5f");
}

/// Reasoning: summaries as thought parts when asked for, and the encrypted reasoning as the
/// signature of the first part after it, in the stream and in one answer alike.
#[test]
fn reasoning_is_shown_when_asked_and_always_signed() {
    let signature = sign("gAAAAABpKw-encrypted-reasoning-blob==");
    let chunks = streamed(&with_thoughts(), &fixture_events("reasoning"));
    assert_eq!(
        outline(&chunks),
        [
            "thought **Thinking** about ",
            "thought the question",
            "thought \n\nThen ",
            "thought answering",
            "text The answer  (signed)",
            "text is 4.",
            "finish STOP",
        ]
    );
    assert_eq!(
        chunks[4]["candidates"][0]["content"]["parts"][0]["thoughtSignature"],
        signature
    );
    assert_eq!(
        chunks.last().map(|c| c["usageMetadata"].clone()),
        Some(
            json!({"promptTokenCount": 30, "candidatesTokenCount": 20, "totalTokenCount": 150, "thoughtsTokenCount": 100})
        )
    );
    let hidden = streamed(&hello(json!({})), &fixture_events("reasoning"));
    assert_eq!(
        outline(&hidden),
        ["text The answer  (signed)", "text is 4.", "finish STOP"]
    );

    let reply = answer(&with_thoughts(), Framing::Whole).reply(&assembled("reasoning"));
    assert_eq!(
        outline(std::slice::from_ref(&reply)),
        [
            "thought **Thinking** about the question\n\nThen answering",
            "text The answer is 4. (signed)",
            "finish STOP"
        ]
    );
    assert_eq!(reply["candidates"][0]["content"]["role"], "model");
}

/// Function calls go out whole, with the upstream's call id and their arguments as an object.
#[test]
fn function_calls_go_out_whole_with_their_ids() {
    let chunks = streamed(&hello(json!({})), &fixture_events("parallel_tool_calls"));
    let calls: Vec<String> = outline(&chunks)
        .into_iter()
        .filter(|line| line.starts_with("call") || line.starts_with("finish"))
        .collect();
    assert_eq!(
        calls,
        [
            r#"call call_A1 get_weather {"city":"Paris"}"#,
            r#"call call_B2 get_time {"zone":"Asia/Tokyo"}"#,
            "finish STOP",
        ]
    );
    let reply = answer(&hello(json!({})), Framing::Whole).reply(&assembled("tool_call"));
    assert_eq!(
        reply["candidates"][0]["content"]["parts"],
        json!([{"functionCall": {"id": "call_Wx1", "name": "get_weather", "args": {"city": "Paris"}}}])
    );
}

/// A length cut-off is `MAX_TOKENS`; a failure mid-stream, or a stream cut short, ends with
/// Google's error object and nothing after it.
#[test]
fn streams_end_in_every_way_with_a_reason() {
    let length = outline(&streamed(&hello(json!({})), &fixture_events("length")));
    assert_eq!(length.last().map(String::as_str), Some("finish MAX_TOKENS"));
    let failed = outline(&streamed(
        &hello(json!({})),
        &fixture_events("error_midstream"),
    ));
    assert_eq!(failed, ["text Partial ", "error 502 UNAVAILABLE"]);
    let events = fixture_events("text");
    let cut = chunks(&run(
        answer(&hello(json!({})), Framing::Sse).stream(),
        &events[..4],
        Some("connection reset"),
    ));
    let last = cut.last().cloned().unwrap_or_default();
    assert_eq!(last["error"]["status"], "UNAVAILABLE");
    assert!(
        text(&last["error"]["message"]).contains("connection reset"),
        "{last}"
    );
}

/// Without `alt=sse` the stream is one JSON array, sent as it grows.
#[test]
fn array_streams_are_one_json_array() {
    let translator = answer(&hello(json!({})), Framing::Array).stream();
    assert_eq!(translator.content_type(), "application/json");
    let out = run(translator, &fixture_events("text"), None);
    let array: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        outline(&array),
        ["text Hel", "text lo, ", "text world.", "finish STOP"]
    );
    let out = run(
        answer(&hello(json!({})), Framing::Array).stream(),
        &[],
        None,
    );
    let array: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(outline(&array), ["error 502 UNAVAILABLE"]);
}

/// A stop sequence ends the answer at the sequence, with `STOP` and an estimated usage, in the
/// stream (cutting the upstream off) and in one answer alike.
#[test]
fn stop_sequences_end_the_answer() {
    let request = hello(json!({"generationConfig": {"stopSequences": ["wor"]}}));
    let mut translator = answer(&request, Framing::Sse).stream();
    let mut out = Vec::new();
    let mut flow = crate::dialect::Flow::Continue;
    for event in fixture_events("text") {
        flow = translator.event(&event, &mut out);
        if flow == crate::dialect::Flow::Stop {
            break;
        }
    }
    assert_eq!(flow, crate::dialect::Flow::Stop);
    let chunks = chunks(&String::from_utf8_lossy(&out));
    assert_eq!(outline(&chunks), ["text Hel", "text lo, ", "finish STOP"]);
    assert!(chunks
        .last()
        .is_some_and(|c| c["usageMetadata"]["candidatesTokenCount"].as_u64() > Some(0)));
    let reply = answer(&request, Framing::Whole).reply(&assembled("text"));
    assert_eq!(outline(&[reply]), ["text Hello, ", "finish STOP"]);
}

/// Reasoning that no part follows still goes back: an empty text part carries its signature.
#[test]
fn reasoning_alone_is_signed_on_an_empty_part() {
    let events = typed(&[
        json!({"type": "response.created", "response": {"id": "resp_1"}}),
        json!({"type": "response.output_item.done", "output_index": 0, "item": {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA"}}),
        json!({"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "output": []}}),
    ]);
    assert_eq!(
        outline(&streamed(&hello(json!({})), &events)),
        ["text  (signed)", "finish STOP"]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any well-formed request translates, and its answer streams and replies.
    #[test]
    fn well_formed_requests_translate(request in well_formed_request()) {
        let translated = translated(&request);
        prop_assert!(translated.body["input"].as_array().is_some_and(|i| !i.is_empty()));
        let answer = translated.answer.unwrap_or_else(|| panic!("no answer"));
        let _ = answer.reply(&assembled("reasoning"));
        let out = run(answer.stream(), &fixture_events("parallel_tool_calls"), None);
        let last = chunks(&out).pop().unwrap_or_default();
        prop_assert!(last["candidates"][0]["finishReason"].is_string(), "{}", out);
    }

    /// Any JSON is translated or refused, never a panic.
    #[test]
    fn any_json_is_translated_or_refused(body in "\\PC{0,200}") {
        let _ = translate(&call(Framing::Sse), body.as_bytes());
        let _ = translate_count("m", body.as_bytes());
    }
}
