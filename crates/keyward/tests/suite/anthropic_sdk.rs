//! The official `anthropic` Python SDK (installed by `scripts/install-peers`) as a client of
//! keyward's `/v1/messages`, against the strict mock backend. The mock's answers are scripted by
//! markers in the prompt (`[[tool]]`: call the first tool).

use serde_json::{json, Value};

use crate::support::*;

fn run_sdk(keyward: &Keyward, script: &str) -> Result<Option<Value>> {
    let script = format!(
        "import json, os, anthropic\nclient = anthropic.Anthropic(base_url=os.environ['KEYWARD_URL'], api_key='unused', max_retries=0)\nMODEL = 'claude-sonnet-4-5'\nout = {{}}\n{script}\nprint(json.dumps(out))\n"
    );
    tokio::task::block_in_place(|| run_python_client("anthropic", keyward, &script))
}

const MESSAGES: &str = r#"
msgs = [{"role": "user", "content": "ping"}]
m = client.messages.create(model=MODEL, max_tokens=1024, system="Be brief.", messages=msgs)
out["plain"] = [m.type, m.role, m.model, [b.type for b in m.content], m.content[-1].text, m.stop_reason, m.usage.output_tokens > 0]
with client.messages.stream(model=MODEL, max_tokens=1024, messages=msgs) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
out["streamed"] = [text, final.stop_reason, final.usage.output_tokens > 0]
count = client.messages.count_tokens(model=MODEL, system="Be brief.", messages=msgs)
longer = client.messages.count_tokens(model=MODEL, system="Be brief.", messages=msgs + [{"role": "assistant", "content": "pong"}, {"role": "user", "content": "and now a much longer question about the weather in Paris"}])
out["count"] = [count.input_tokens > 0, longer.input_tokens > count.input_tokens]
try:
    client.messages.create(model=MODEL, max_tokens=10, messages="not a list")
    out["bad"] = None
except anthropic.BadRequestError as e:
    out["bad"] = [e.status_code, e.body["type"], e.body["error"]["type"]]
try:
    client.messages.create(model="mistral-large-3", max_tokens=10, messages=msgs)
    out["unknown_model"] = None
except anthropic.NotFoundError as e:
    out["unknown_model"] = [e.status_code, e.body["error"]["type"]]
"#;

/// Messages plain and streamed, token counting, and malformed requests answered in Anthropic's
/// error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_sdk_messages_plain_streamed_and_counted() -> Result<()> {
    let (mock, _home, keyward) = serving().await?;
    let Some(out) = run_sdk(&keyward, MESSAGES)? else {
        return Ok(());
    };
    assert_eq!(
        out["plain"],
        json!([
            "message",
            "assistant",
            "claude-sonnet-4-5",
            ["text"],
            "pong",
            "end_turn",
            true
        ]),
        "{out}"
    );
    assert_eq!(out["streamed"], json!(["pong", "end_turn", true]), "{out}");
    assert_eq!(out["count"], json!([true, true]), "{out}");
    assert_eq!(
        out["bad"],
        json!([400, "error", "invalid_request_error"]),
        "{out}"
    );
    assert_eq!(
        out["unknown_model"],
        json!([404, "not_found_error"]),
        "{out}"
    );
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}

const TOOLS: &str = r#"
tools = [{"name": "get_weather", "description": "The weather in a city", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
ask = {"role": "user", "content": "What is the weather in Paris? [[tool]]"}
first = client.messages.create(model=MODEL, max_tokens=1024, tools=tools, messages=[ask], thinking={"type": "enabled", "budget_tokens": 2048})
use = [b for b in first.content if b.type == "tool_use"][0]
out["call"] = [first.stop_reason, [b.type for b in first.content], use.name, use.input]
reply = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 21C"}]}
second = client.messages.create(model=MODEL, max_tokens=1024, tools=tools, messages=[ask, {"role": "assistant", "content": first.content}, reply], thinking={"type": "enabled", "budget_tokens": 2048})
out["answer"] = [second.stop_reason, second.content[-1].text]
with client.messages.stream(model=MODEL, max_tokens=1024, tools=tools, messages=[ask]) as stream:
    kinds = [e.type for e in stream]
    final = stream.get_final_message()
streamed = [b for b in final.content if b.type == "tool_use"][0]
out["streamed"] = [final.stop_reason, streamed.name, streamed.input, "input_json" in kinds]
"#;

/// Tools over two turns (tool_use, then the tool_result), with thinking blocks carried back, and
/// streamed tool use accumulated by the SDK from `input_json_delta`s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_sdk_tools_over_two_turns() -> Result<()> {
    let (mock, _home, keyward) = serving().await?;
    let Some(out) = run_sdk(&keyward, TOOLS)? else {
        return Ok(());
    };
    assert_eq!(
        out["call"],
        json!(["tool_use", ["thinking", "tool_use"], "get_weather", {"city": "Paris"}]),
        "{out}"
    );
    assert_eq!(
        out["answer"],
        json!(["end_turn", "tool said: sunny, 21C"]),
        "{out}"
    );
    assert_eq!(
        out["streamed"],
        json!(["tool_use", "get_weather", {"city": "Paris"}, true]),
        "{out}"
    );
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}
