//! Anthropic's message threads through keyward: both Anthropic SDKs' tool runners thread by
//! default (a `create`, then `continue`s carrying only the tool's result), and must finish their
//! loops through keyward served by the strict mock's Codex backend, which sees each turn whole.
//! The mock's tool outputs ask for another call when they hold `[[tool]]`: a loop of three rounds.

use serde_json::{json, Value};

use crate::support::*;

const PYTHON_RUNNER: &str = r#"import json, os, httpx2 as httpx, anthropic
from anthropic import beta_tool
seen = []
def on_request(request):
    body = json.loads(request.content or b"{}")
    thread = body.get("thread")
    seen.append([thread.get("type") if isinstance(thread, dict) else None, len(body.get("messages", [])), "system" in body])
def on_response(response):
    seen[-1].append(response.status_code)
http = httpx.Client(event_hooks={"request": [on_request], "response": [on_response]})
client = anthropic.Anthropic(base_url=os.environ["KEYWARD_URL"], api_key="unused", max_retries=0, http_client=http)
MODEL = "claude-sonnet-4-5"
state = {"more": 0, "calls": []}

@beta_tool
def get_weather(city: str) -> str:
    """Get the weather for a city.

    Args:
        city: The city name.
    """
    state["calls"].append(city)
    if state["more"] > 0:
        state["more"] -= 1
        return f"Rain in {city}; check again [[tool]]"
    return f"Sunny, 21C in {city}"

def run(stream, rounds):
    seen.clear(); state["calls"] = []; state["more"] = rounds - 2
    params = dict(model=MODEL, max_tokens=1024, system="You are a weather bot.", tools=[get_weather],
                  messages=[{"role": "user", "content": "What is the weather in Paris? [[tool]]"}])
    if stream:
        params["stream"] = True
    runner = client.beta.messages.tool_runner(**params)
    if stream:
        for message_stream in runner:
            for _ in message_stream:
                pass
    final = runner.until_done()
    return {"answer": final.content[-1].text, "calls": state["calls"], "requests": list(seen)}

out = {}
for stream in (False, True):
    for rounds in (2, 3):
        out[f"{'streamed' if stream else 'plain'}_{rounds}"] = run(stream, rounds)
print(json.dumps(out))
"#;

const JS_RUNNER: &str = r#"import Anthropic from '@anthropic-ai/sdk';
import { betaTool } from '@anthropic-ai/sdk/helpers/beta/json-schema';
const seen = [];
// Records what the runner sends (its `thread`, how many messages, whether `system`) and the status.
async function recording(url, init) {
  const body = JSON.parse(init?.body ?? '{}');
  const entry = [body.thread?.type ?? null, (body.messages ?? []).length, 'system' in body];
  seen.push(entry);
  const response = await fetch(url, init);
  entry.push(response.status);
  return response;
}
const client = new Anthropic({ baseURL: process.env.KEYWARD_URL, apiKey: 'unused', maxRetries: 0, fetch: recording });
const state = { more: 0, calls: [] };
const getWeather = betaTool({
  name: 'get_weather', description: 'Get the weather for a city.',
  inputSchema: { type: 'object', properties: { city: { type: 'string', description: 'The city name.' } }, required: ['city'] },
  run: async ({ city }) => {
    state.calls.push(city);
    if (state.more > 0) { state.more -= 1; return `Rain in ${city}; check again [[tool]]`; }
    return `Sunny, 21C in ${city}`;
  },
});
async function run(stream, rounds) {
  seen.length = 0; state.calls = []; state.more = rounds - 2;
  const runner = client.beta.messages.toolRunner({
    model: 'claude-sonnet-4-5', max_tokens: 1024, system: 'You are a weather bot.', tools: [getWeather],
    messages: [{ role: 'user', content: 'What is the weather in Paris? [[tool]]' }], stream,
  });
  for await (const item of runner) {
    if (stream) { for await (const _ of item) {} }
  }
  const final = await runner.done();
  return { answer: final.content.at(-1).text, calls: state.calls, requests: [...seen] };
}
const out = {};
for (const stream of [false, true]) {
  for (const rounds of [2, 3]) out[`${stream ? 'streamed' : 'plain'}_${rounds}`] = await run(stream, rounds);
}
console.log(JSON.stringify(out));
"#;

/// What a runner reported for each of its four loops (plain and streamed, two turns and three
/// rounds): the final answer, the tool's calls, and each request it sent (its `thread`, how many
/// messages, whether it sent `system`) with the status it got. Every turn after the first is a
/// `continue` with only the tool's result, answered 200 (no replay of the conversation).
fn assert_threaded_loops(out: &Value) {
    for mode in ["plain", "streamed"] {
        for rounds in [2, 3] {
            let run = &out[format!("{mode}_{rounds}")];
            assert_eq!(
                run["answer"], "tool said: Sunny, 21C in Paris",
                "{mode} {rounds}: {out}"
            );
            assert_eq!(
                run["calls"].as_array().map(Vec::len),
                Some(rounds - 1),
                "{out}"
            );
            let mut expected = vec![json!(["create", 1, true, 200])];
            expected.extend((1..rounds).map(|_| json!(["continue", 1, false, 200])));
            assert_eq!(
                run["requests"],
                Value::Array(expected),
                "{mode} {rounds}: {out}"
            );
        }
    }
}

/// The upstream saw each continue whole: the last request of the last loop holds the question,
/// both calls and both results, with the create's tools.
async fn assert_upstream_saw_whole_turns(mock: &Mock) -> Result<()> {
    let sent = super::clients::last_accepted(mock).await?;
    let kinds: Vec<&str> = sent["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "message",
            "function_call",
            "function_call_output",
            "function_call",
            "function_call_output"
        ],
        "{sent}"
    );
    assert_eq!(sent["tools"][0]["name"], "get_weather", "{sent}");
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}

/// The Python SDK's `client.beta.messages.tool_runner`, plain and streamed, finishes two-turn
/// and three-round tool loops through keyward on one thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_tool_runner_threads_through_keyward() -> Result<()> {
    let (mock, _home, keyward) = serving().await?;
    let Some(out) =
        tokio::task::block_in_place(|| run_python_client("anthropic", &keyward, PYTHON_RUNNER))?
    else {
        return Ok(());
    };
    assert_threaded_loops(&out);
    assert_upstream_saw_whole_turns(&mock).await
}

/// The JS SDK's `client.beta.messages.toolRunner`, the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_sdk_tool_runner_threads_through_keyward() -> Result<()> {
    let (mock, _home, keyward) = serving().await?;
    let Some(out) = tokio::task::block_in_place(|| {
        run_node_client(&["@anthropic-ai/sdk"], &keyward, JS_RUNNER)
    })?
    else {
        return Ok(());
    };
    assert_threaded_loops(&out);
    assert_upstream_saw_whole_turns(&mock).await
}

/// POSTs a Messages request with gateway key `key`; the status and the answer.
async fn messages(keyward: &Keyward, key: &str, body: Value) -> Result<(u16, Value)> {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", keyward.url))
        .bearer_auth(key)
        .header("anthropic-beta", "message-threads-2026-08-12")
        .json(&body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// The rules as a caller meets them: a reply continued once (a second continue is refused with
/// `thread_already_continued`), an unknown id and another gateway key's thread not found (404
/// `thread_not_found`), the create-time fields refused on a continue; the error codes in
/// `error.details`, where the SDKs read them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_rules_hold_per_gateway_key() -> Result<()> {
    const ALICE: &str = "kw-alice-0123456789abcdef";
    const BOB: &str = "kw-bob-0123456789abcdef";
    let (_mock, _home, keyward) = serving_with(
        &format!("[gateway]\napi_keys = [\"{ALICE}\", \"{BOB}\"]\n"),
        &[],
    )
    .await?;
    let create = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 100, "system": "Be brief.",
        "thread": {"type": "create"}, "messages": [{"role": "user", "content": "ping"}],
    });
    let (status, reply) = messages(&keyward, ALICE, create).await?;
    assert_eq!(status, 200, "{reply}");
    let id = reply["id"].as_str().unwrap_or_default().to_string();
    let continue_of = |id: &str| json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "thread": {"type": "continue", "previous_message_id": id}, "messages": [{"role": "user", "content": "[[echo]] again"}]});
    let code = |answer: &Value| answer["error"]["details"]["error_code"].clone();

    let (status, answer) = messages(&keyward, BOB, continue_of(&id)).await?;
    assert_eq!(
        (status, code(&answer)),
        (404, json!("thread_not_found")),
        "{answer}"
    );
    assert_eq!(answer["error"]["type"], "not_found_error");
    let mut with_system = continue_of(&id);
    with_system["system"] = json!("Be brief.");
    let (status, answer) = messages(&keyward, ALICE, with_system).await?;
    assert_eq!(
        (status, code(&answer)),
        (400, json!("thread_fingerprint_mismatch")),
        "{answer}"
    );

    let (status, answer) = messages(&keyward, ALICE, continue_of(&id)).await?;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["content"][0]["text"], "again", "{answer}");
    let (status, answer) = messages(&keyward, ALICE, continue_of(&id)).await?;
    assert_eq!(
        (status, code(&answer)),
        (400, json!("thread_already_continued")),
        "{answer}"
    );
    let (status, answer) = messages(&keyward, ALICE, continue_of("msg_never")).await?;
    assert_eq!(
        (status, code(&answer)),
        (404, json!("thread_not_found")),
        "{answer}"
    );
    assert!(
        !keyward.log().contains("[[echo]] again"),
        "a thread's content is not logged"
    );
    Ok(())
}

/// An Anthropic API-key profile keeps its threads itself: a `continue` keyward holds nothing for
/// goes to Anthropic as it came, `thread` and the beta included, and is answered there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_profile_gets_threads_as_they_came() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_login(&mock.login(None).await?)?;
    home.write_config("[[routes]]\nmodel = \"claude-*\"\nprofiles = [\"anthropic:default\"]\n")?;
    let keyward = Keyward::serve_with(
        &home,
        &mock,
        &[
            ("ANTHROPIC_API_KEY", "sk-ant-mock-threads-7e7e"),
            ("KEYWARD_ANTHROPIC_BASE_URL", &mock.url),
        ],
    )
    .await?;
    let thread = json!({"type": "continue", "previous_message_id": "msg_held_by_anthropic"});
    let body = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 100, "thread": thread,
        "messages": [{"role": "user", "content": "ping"}],
    });
    let (status, answer) = messages(&keyward, "unused", body).await?;
    assert_eq!(status, 200, "{answer}");
    let sent = mock.requests().await?;
    let last = sent.last().cloned().unwrap_or_default();
    assert_eq!(last["endpoint"], "anthropic", "{last}");
    assert_eq!(last["body"]["thread"], thread, "{last}");
    assert_eq!(
        last["headers"]["anthropic-beta"], "message-threads-2026-08-12",
        "{last}"
    );
    mock.assert_no_reuse().await
}
