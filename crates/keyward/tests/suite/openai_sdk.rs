//! The official `openai` Python SDK (installed by `scripts/install-peers`) as a client of
//! keyward's OpenAI endpoints, against the strict mock backend. The mock's answers are scripted
//! by markers in the prompt (`[[tool]]`: call the first tool).

use serde_json::{json, Value};

use crate::support::*;

fn run_sdk(keyward: &Keyward, script: &str) -> Result<Option<Value>> {
    let script = format!(
        "import json, os, openai\nclient = openai.OpenAI(base_url=os.environ['KEYWARD_URL'] + '/v1', api_key='unused', max_retries=0)\nout = {{}}\n{script}\nprint(json.dumps(out))\n"
    );
    tokio::task::block_in_place(|| run_python_client("openai", keyward, &script))
}

const RESPONSES: &str = r#"
plain = client.responses.create(model="gpt-5-codex", input="ping")
out["plain"] = [plain.status, plain.output_text]
with client.responses.stream(model="gpt-5-codex", input="ping") as stream:
    out["events"] = [event.type for event in stream]
    final = stream.get_final_response()
out["streamed"] = [final.status, final.output_text]
raw = client.responses.with_raw_response.create(model="gpt-5-codex", input="ping", max_output_tokens=64, temperature=0.3)
limited = raw.parse()
out["limited"] = [limited.status, limited.output_text, raw.headers.get("x-keyward-dropped")]
history = [{"role": "user", "content": "ping"}] + [item.model_dump(exclude_none=True) for item in plain.output]
history.append({"role": "user", "content": "again"})
again = client.responses.create(model="gpt-5-codex", input=history, instructions="Be brief.")
out["history"] = again.output_text
"#;

/// The Responses API with the SDK's defaults (no `store`, a string `input`), streamed, with
/// `max_output_tokens` (dropped and reported), and with the previous answer's items sent back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_responses_with_its_defaults() -> Result<()> {
    let (mock, _home, keyward) = serving().await?;
    let Some(out) = run_sdk(&keyward, RESPONSES)? else {
        return Ok(());
    };
    assert_eq!(out["plain"], json!(["completed", "pong"]), "{out}");
    assert_eq!(out["streamed"], json!(["completed", "pong"]), "{out}");
    let events = out["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.first(), Some(&json!("response.created")), "{out}");
    assert_eq!(events.last(), Some(&json!("response.completed")), "{out}");
    assert_eq!(
        out["limited"],
        json!(["completed", "pong", "max_output_tokens, temperature"]),
        "{out}"
    );
    assert_eq!(out["history"], "pong", "{out}");
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}

const CHAT: &str = r#"
msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "ping"}]
r = client.chat.completions.create(model="gpt-5-codex", messages=msgs, temperature=0.2, max_tokens=100)
out["plain"] = [r.object, r.choices[0].message.role, r.choices[0].message.content, r.choices[0].finish_reason, r.usage.prompt_tokens > 0, r.usage.completion_tokens > 0]
chunks = list(client.chat.completions.create(model="gpt-5-codex", messages=msgs, stream=True, stream_options={"include_usage": True}))
out["stream_first_role"] = chunks[0].choices[0].delta.role
out["stream_text"] = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
out["stream_finish"] = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
out["stream_usage"] = [chunks[-1].choices, chunks[-1].usage.total_tokens > 0]
"#;

/// Chat completions, plain and streamed with a usage chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_chat_plain_and_streamed() -> Result<()> {
    let (mock, _home, keyward) = serving().await?;
    let Some(out) = run_sdk(&keyward, CHAT)? else {
        return Ok(());
    };
    assert_eq!(
        out["plain"],
        json!(["chat.completion", "assistant", "pong", "stop", true, true]),
        "{out}"
    );
    assert_eq!(out["stream_first_role"], "assistant", "{out}");
    assert_eq!(out["stream_text"], "pong", "{out}");
    assert_eq!(out["stream_finish"], json!(["stop"]), "{out}");
    assert_eq!(out["stream_usage"], json!([[], true]), "{out}");
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}

const CHAT_TOOLS: &str = r#"
tools = [{"type": "function", "function": {"name": "get_weather", "description": "The weather in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
msgs = [{"role": "user", "content": "What is the weather in Paris? [[tool]]"}]
first = client.chat.completions.create(model="gpt-5-codex", messages=msgs, tools=tools, tool_choice="auto")
call = first.choices[0].message.tool_calls[0]
out["call"] = [first.choices[0].finish_reason, call.type, call.function.name, json.loads(call.function.arguments)]
msgs.append(first.choices[0].message.model_dump(exclude_none=True))
msgs.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"})
second = client.chat.completions.create(model="gpt-5-codex", messages=msgs, tools=tools)
out["answer"] = [second.choices[0].finish_reason, second.choices[0].message.content]
with client.chat.completions.stream(model="gpt-5-codex", messages=msgs[:1], tools=tools) as stream:
    deltas = [e for e in stream if e.type == "tool_calls.function.arguments.delta"]
    final = stream.get_final_completion()
streamed = final.choices[0].message.tool_calls[0]
out["streamed"] = [final.choices[0].finish_reason, streamed.function.name, json.loads(streamed.function.arguments), len(deltas) > 1]
try:
    client.chat.completions.create(model="gpt-5-codex", messages="not a list")
    out["bad"] = None
except openai.BadRequestError as e:
    out["bad"] = [e.status_code, e.body.get("type"), e.body.get("param")]
try:
    client.chat.completions.create(model="llama-3-70b", messages=msgs[:1])
    out["unknown_model"] = None
except openai.NotFoundError as e:
    out["unknown_model"] = [e.status_code, e.code]
"#;

/// Chat completions with tools over two turns (the call, then the tool's result), streamed
/// tool-call deltas accumulated by the SDK, and malformed requests answered as OpenAI errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_chat_tools_over_two_turns() -> Result<()> {
    let (mock, _home, keyward) = serving().await?;
    let Some(out) = run_sdk(&keyward, CHAT_TOOLS)? else {
        return Ok(());
    };
    assert_eq!(
        out["call"],
        json!(["tool_calls", "function", "get_weather", {"city": "Paris"}]),
        "{out}"
    );
    assert_eq!(
        out["answer"],
        json!(["stop", "tool said: sunny, 21C"]),
        "{out}"
    );
    assert_eq!(
        out["streamed"],
        json!(["tool_calls", "get_weather", {"city": "Paris"}, true]),
        "{out}"
    );
    assert_eq!(
        out["bad"],
        json!([400, "invalid_request_error", "messages"]),
        "{out}"
    );
    assert_eq!(
        out["unknown_model"],
        json!([404, "model_not_found"]),
        "{out}"
    );
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}

const MODELS: &str = r#"
out["ids"] = [m.id for m in client.models.list()]
one = client.models.retrieve("gpt-6.1-sol")
out["one"] = [one.id, one.object]
"#;

/// The model list and one model, in OpenAI's shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_lists_models() -> Result<()> {
    let (_mock, _home, keyward) = serving().await?;
    let Some(out) = run_sdk(&keyward, MODELS)? else {
        return Ok(());
    };
    let ids = out["ids"].as_array().cloned().unwrap_or_default();
    assert!(ids.contains(&json!("gpt-6.1-sol")), "{out}");
    assert_eq!(out["one"], json!(["gpt-6.1-sol", "model"]), "{out}");
    Ok(())
}

const NEEDS_LOGIN: &str = r#"
try:
    client.responses.create(model="gpt-5-codex", input="ping", store=False)
    out["raised"] = None
except openai.APIStatusError as e:
    out = {"raised": type(e).__name__, "status": e.status_code, "code": e.code, "message": e.message}
"#;

/// A profile that needs a login reaches an SDK user as an `AuthenticationError` whose message
/// says what to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_sees_needs_login_with_the_remedy() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let keyward = Keyward::serve(&home, &mock).await?;
    let Some(out) = run_sdk(&keyward, NEEDS_LOGIN)? else {
        return Ok(());
    };
    assert_eq!(out["raised"], "AuthenticationError", "{out}");
    assert_eq!(out["status"], 401, "{out}");
    assert_eq!(out["code"], "needs_login", "{out}");
    assert!(
        out["message"]
            .as_str()
            .unwrap_or_default()
            .contains("codex login"),
        "{out}"
    );
    Ok(())
}
