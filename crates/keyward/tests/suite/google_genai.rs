//! The official `google-genai` Python SDK (installed by `scripts/install-peers`) as a client of
//! keyward's Gemini routes, against the strict mock backend. The SDK's default API version is
//! `v1`, so its paths are `/v1/models/...`, its model list `GET /v1/models` included.

use serde_json::{json, Value};

use crate::support::*;

const KEY: &str = "kw-genai-key-0123456789abcdef";

fn run_sdk(keyward: &Keyward, script: &str) -> Result<Option<Value>> {
    let script = format!(
        "import json, os\nfrom typing import Literal\nfrom google import genai\nfrom google.genai import types, errors\nfrom pydantic import BaseModel\nKEY = '{KEY}'\nclient = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=os.environ['KEYWARD_URL']))\nMODEL = 'gemini-3.8-flash'\nout = {{}}\n{script}\nprint(json.dumps(out))\n"
    );
    tokio::task::block_in_place(|| run_python_client("google.genai", keyward, &script))
}

async fn serving_keyed() -> Result<(Mock, Home, Keyward)> {
    serving_with("", &[("KEYWARD_API_KEYS", KEY)]).await
}

const GENERATE: &str = r#"
r = client.models.generate_content(model=MODEL, contents="say pong")
out["plain"] = [r.text, r.candidates[0].finish_reason.value, r.usage_metadata.total_token_count > 0, r.model_version]
thinking = types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=100,
    thinking_config=types.ThinkingConfig(thinking_level="LOW", include_thoughts=True))
chunks = list(client.models.generate_content_stream(model=MODEL, contents="say pong", config=thinking))
parts = [p for c in chunks for p in (c.candidates[0].content.parts or [])]
out["streamed"] = ["".join(c.text or "" for c in chunks), any(p.thought for p in parts), chunks[-1].candidates[0].finish_reason.value]
short = client.models.count_tokens(model=MODEL, contents="say pong").total_tokens
longer = client.models.count_tokens(model=MODEL, contents="say pong, and then a much longer question about the weather in Paris").total_tokens
out["count"] = [short > 0, longer > short]
out["list"] = "models/gpt-6.1-sol" in [m.name for m in client.models.list()]
beta = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=os.environ['KEYWARD_URL'], api_version="v1beta"))
out["v1beta"] = beta.models.generate_content(model=MODEL, contents="say pong").text
class Answer(BaseModel):
    answer: Literal["pong"]
r = client.models.generate_content(model=MODEL, contents="answer in JSON", config=types.GenerateContentConfig(response_mime_type="application/json", response_schema=Answer))
out["json"] = r.parsed.answer
def fails(call):
    try:
        call()
        return None
    except errors.APIError as e:
        return [e.code, e.status]
out["unknown_model"] = fails(lambda: client.models.generate_content(model="llama-3-70b", contents="hi"))
out["two_candidates"] = fails(lambda: client.models.generate_content(model=MODEL, contents="hi", config=types.GenerateContentConfig(candidate_count=2)))
out["failed_midstream"] = fails(lambda: list(client.models.generate_content_stream(model=MODEL, contents="[[fail]]")))
wrong = genai.Client(api_key="not-a-gateway-key", http_options=types.HttpOptions(base_url=os.environ['KEYWARD_URL']))
out["wrong_key"] = fails(lambda: wrong.models.generate_content(model=MODEL, contents="hi"))
"#;

/// Plain and streamed answers (thoughts shown when asked for, a finish reason last), token
/// counting, the model list on the SDK's default `v1`, `v1beta`, a JSON-schema answer parsed by
/// the SDK, and failures in Google's shape, raised as the SDK's own errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_genai_generates_streams_counts_and_lists() -> Result<()> {
    let (mock, _home, keyward) = serving_keyed().await?;
    let Some(out) = run_sdk(&keyward, GENERATE)? else {
        return Ok(());
    };
    assert_eq!(
        out["plain"],
        json!(["pong", "STOP", true, "gemini-3.8-flash"]),
        "{out}"
    );
    assert_eq!(out["streamed"], json!(["pong", true, "STOP"]), "{out}");
    assert_eq!(out["count"], json!([true, true]), "{out}");
    assert_eq!(out["list"], true, "{out}");
    assert_eq!(out["v1beta"], "pong", "{out}");
    assert_eq!(out["json"], "pong", "{out}");
    assert_eq!(out["unknown_model"], json!([404, "NOT_FOUND"]), "{out}");
    assert_eq!(
        out["two_candidates"],
        json!([400, "INVALID_ARGUMENT"]),
        "{out}"
    );
    assert_eq!(
        out["failed_midstream"],
        json!([502, "UNAVAILABLE"]),
        "{out}"
    );
    assert_eq!(out["wrong_key"], json!([401, "UNAUTHENTICATED"]), "{out}");
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}

const FUNCTIONS: &str = r#"
declaration = types.FunctionDeclaration(name="get_weather", description="The weather in a city",
    parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]))
config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[declaration])],
    tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="ANY")),
    automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    thinking_config=types.ThinkingConfig(include_thoughts=True))
contents = [types.Content(role="user", parts=[types.Part(text="What is the weather in Paris? [[tool]]")])]
first = client.models.generate_content(model=MODEL, contents=contents, config=config)
call = first.function_calls[0]
out["call"] = [call.name, call.args, bool(call.id), any(p.thought_signature for p in first.candidates[0].content.parts)]
contents.append(first.candidates[0].content)
contents.append(types.Content(role="user", parts=[types.Part.from_function_response(name=call.name, response={"output": "sunny, 21C"})]))
out["answer"] = client.models.generate_content(model=MODEL, contents=contents, config=config).text
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"
chat = client.chats.create(model=MODEL, config=types.GenerateContentConfig(tools=[get_weather]))
out["automatic"] = chat.send_message("What is the weather in Paris? [[tool]]").text
"#;

/// A function-call round trip: the call with its arguments, an id and a thought signature; the
/// SDK's response without an id paired with it by name, the signature (sent back URL-safe) giving
/// the reasoning back; and the SDK's automatic function calling in a chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_genai_calls_functions_over_two_turns() -> Result<()> {
    let (mock, _home, keyward) = serving_keyed().await?;
    let Some(out) = run_sdk(&keyward, FUNCTIONS)? else {
        return Ok(());
    };
    assert_eq!(
        out["call"],
        json!(["get_weather", {"city": "Paris"}, true, true]),
        "{out}"
    );
    assert_eq!(out["answer"], "tool said: sunny, 21C", "{out}");
    assert_eq!(
        out["automatic"], "tool said: {\"result\":\"Sunny in Paris\"}",
        "{out}"
    );
    let requests = mock.requests().await?;
    let second = requests
        .get(1)
        .map(|r| r["body"]["input"].clone())
        .unwrap_or_default();
    let kinds: Vec<&str> = second
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "reasoning",
            "function_call",
            "function_call_output"
        ],
        "{second}"
    );
    assert_eq!(second[2]["call_id"], second[3]["call_id"]);
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}
