//! The strictest clients of `/v1/responses`, through keyward against the mock: the OpenAI JS
//! SDK's stream helper (it checks each event's order, ids and indices) and its unstreamed
//! `output_text`, the Vercel AI SDK's `streamText` and `generateText` with `@ai-sdk/openai`'s
//! `responses()` model (a schema for every event), and LiteLLM's `responses()`. The mock streams
//! sparsely (`[[sparse]]`: the least a Codex client needs), so each passes only if keyward's
//! answer carries every field the public API sends; a cut stream must reach each as an error.

use serde_json::json;

use crate::support::*;

const JS_CLIENTS: &str = r#"import OpenAI from 'openai';
import { streamText, generateText, tool, jsonSchema } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
const base = `${process.env.KEYWARD_URL}/v1`;
const MODEL = 'gpt-6.1-sol';
const out = {};
const short = (e) => String(e?.message ?? e).replace(/\s+/g, ' ').slice(0, 300);
const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
const tools = [{ type: 'function', name: 'get_weather', description: 'The weather in a city', parameters: schema, strict: false }];
const client = new OpenAI({ baseURL: base, apiKey: 'unused', maxRetries: 0 });

// The OpenAI SDK's stream helper: it checks the events' order, ids and indices as it goes.
async function helper(input, extra = {}) {
  const stream = client.responses.stream({ model: MODEL, input, tools, ...extra });
  let deltas = '';
  stream.on('response.output_text.delta', (e) => { deltas += e.delta; });
  try {
    for await (const _ of stream) {}
    const final = await stream.finalResponse();
    const call = final.output.find((o) => o.type === 'function_call');
    const reasoning = final.output.find((o) => o.type === 'reasoning');
    return {
      text: final.output_text, deltas, status: final.status,
      call: call ? [call.name, JSON.parse(call.arguments), call.call_id.length > 0] : null,
      reasoning: reasoning ? reasoning.summary.map((s) => s.text).join('') : null,
    };
  } catch (e) { return { error: short(e) }; }
}
out.helper_text = await helper('[[echo]] hello world [[sparse]]');
out.helper_tool = await helper('weather in Paris? [[tool]] [[sparse]]');
out.helper_reasoning = await helper('ping [[sparse]]', { reasoning: { effort: 'low', summary: 'auto' } });
out.helper_full = await helper('ping');
out.helper_cut = await helper('ping [[cut]] [[sparse]]');
const created = await client.responses.create({ model: MODEL, input: 'ping [[sparse]]' });
out.create = [created.object, created.output_text, typeof created.created_at];

// The AI SDK validates each event against its schema: a failure is an error part.
const provider = createOpenAI({ baseURL: base, apiKey: 'unused' });
const aiTools = { get_weather: tool({ description: 'The weather in a city', inputSchema: jsonSchema(schema) }) };
async function vercel(prompt, options = {}) {
  const result = streamText({ model: provider.responses(MODEL), prompt, tools: aiTools, maxRetries: 0, ...options });
  let text = '', reasoning = '', call = null; const errors = [];
  for await (const part of result.fullStream) {
    if (part.type === 'text-delta') text += part.text ?? part.delta ?? '';
    else if (part.type === 'reasoning-delta') reasoning += part.text ?? part.delta ?? '';
    else if (part.type === 'tool-call') call = [part.toolName, part.input];
    else if (part.type === 'error') errors.push(short(part.error));
  }
  return { text, reasoning, call, errors, finish: await result.finishReason };
}
out.ai_text = await vercel('ping [[sparse]]', { providerOptions: { openai: { reasoningEffort: 'low', reasoningSummary: 'auto' } } });
out.ai_tool = await vercel('weather in Paris? [[tool]] [[sparse]]');
out.ai_cut = await vercel('ping [[cut]] [[sparse]]');
const generated = await generateText({ model: provider.responses(MODEL), prompt: 'ping [[sparse]]', maxRetries: 0 });
out.ai_generate = [generated.text, generated.finishReason, generated.usage.inputTokens > 0];
console.log(JSON.stringify(out));
"#;

/// The OpenAI JS SDK and the Vercel AI SDK get text, tool calls and reasoning summaries from a
/// sparse upstream stream, streamed and not; a cut stream is an error to both, not a short
/// answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_js_and_the_ai_sdk_read_answers_keyward_completed() -> Result<()> {
    let (mock, _home, keyward) = serving().await?;
    let packages = ["openai", "ai", "@ai-sdk/openai"];
    let Some(out) =
        tokio::task::block_in_place(|| run_node_client(&packages, &keyward, JS_CLIENTS))?
    else {
        return Ok(());
    };
    let text = |text: &str| json!({"text": text, "deltas": text, "status": "completed", "call": null, "reasoning": null});
    assert_eq!(out["helper_text"], text("hello world [[sparse]]"), "{out}");
    assert_eq!(out["helper_full"], text("pong"), "{out}");
    assert_eq!(
        out["helper_tool"]["call"],
        json!(["get_weather", {"city": "Paris"}, true]),
        "{out}"
    );
    assert_eq!(out["helper_reasoning"]["text"], "pong", "{out}");
    assert!(
        out["helper_reasoning"]["reasoning"]
            .as_str()
            .is_some_and(|r| r.contains("Reading the request")),
        "{out}"
    );
    assert!(
        out["helper_cut"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("ended before the answer was complete")),
        "{out}"
    );
    assert_eq!(
        out["create"],
        json!(["response", "pong", "number"]),
        "{out}"
    );
    assert_eq!(out["ai_text"]["text"], "pong", "{out}");
    assert!(
        out["ai_text"]["reasoning"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{out}"
    );
    assert_eq!(out["ai_text"]["errors"], json!([]), "{out}");
    assert_eq!(out["ai_text"]["finish"], "stop", "{out}");
    assert_eq!(
        out["ai_tool"]["call"],
        json!(["get_weather", {"city": "Paris"}]),
        "{out}"
    );
    assert_eq!(out["ai_tool"]["errors"], json!([]), "{out}");
    assert_eq!(out["ai_tool"]["finish"], "tool-calls", "{out}");
    assert_eq!(out["ai_cut"]["finish"], "error", "{out}");
    assert!(
        out["ai_cut"]["errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("ended before the answer was complete")),
        "{out}"
    );
    assert_eq!(out["ai_generate"], json!(["pong", "stop", true]), "{out}");
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}

const LITELLM_CLIENT: &str = r#"import json, os, logging
import litellm
litellm.telemetry = False
litellm.suppress_debug_info = True
logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)
BASE = os.environ["KEYWARD_URL"] + "/v1"
TOOLS = [{"type": "function", "name": "get_weather", "description": "The weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
out = {}
def g(o, k, d=None):
    return o.get(k, d) if isinstance(o, dict) else getattr(o, k, d)
def summary(resp):
    text, call = "", None
    for item in g(resp, "output") or []:
        if g(item, "type") == "message":
            text += "".join(g(p, "text") or "" for p in g(item, "content") or [] if g(p, "type") == "output_text")
        if g(item, "type") == "function_call":
            call = [g(item, "name"), json.loads(g(item, "arguments")), bool(g(item, "call_id"))]
    return [text, call, g(resp, "status")]
def streamed(prompt):
    deltas, kinds, final = "", [], None
    for event in litellm.responses(model="openai/gpt-6.1-sol", input=prompt, tools=TOOLS, api_base=BASE, api_key="unused", stream=True):
        kind = g(event, "type"); kind = getattr(kind, "value", kind)
        kinds.append(kind)
        if kind == "response.output_text.delta":
            deltas += g(event, "delta") or ""
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            final = g(event, "response")
    return {"deltas": deltas, "final": summary(final) if final is not None else None, "last": kinds[-1] if kinds else None, "error": "error" in kinds}
out["stream_text"] = streamed("ping [[sparse]]")
out["stream_tool"] = streamed("weather in Paris? [[tool]] [[sparse]]")
try:
    out["stream_cut"] = streamed("ping [[cut]] [[sparse]]")
except Exception as e:
    out["stream_cut"] = {"raised": type(e).__name__, "says": "stream ended before the answer was complete" in str(e)}
r = litellm.responses(model="openai/gpt-6.1-sol", input="weather in Paris? [[tool]] [[sparse]]", tools=TOOLS, api_base=BASE, api_key="unused")
out["object_tool"] = summary(r) + [isinstance(g(r, "created_at"), int)]
r = litellm.responses(model="openai/gpt-6.1-sol", input="ping [[sparse]]", api_base=BASE, api_key="unused")
out["object_text"] = summary(r)
print(json.dumps(out))
"#;

/// LiteLLM's `responses()` reads text and tool calls from a sparse upstream stream, streamed and
/// not, and raises on a cut one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn litellm_reads_answers_keyward_completed() -> Result<()> {
    let (mock, _home, keyward) = serving().await?;
    let Some(out) =
        tokio::task::block_in_place(|| run_python_client("litellm", &keyward, LITELLM_CLIENT))?
    else {
        return Ok(());
    };
    let call = json!(["get_weather", {"city": "Paris"}, true]);
    assert_eq!(
        out["stream_text"],
        json!({"deltas": "pong", "final": ["pong", null, "completed"], "last": "response.completed", "error": false}),
        "{out}"
    );
    assert_eq!(
        out["stream_tool"]["final"],
        json!(["", call, "completed"]),
        "{out}"
    );
    assert_eq!(
        out["stream_cut"],
        json!({"raised": "MidStreamFallbackError", "says": true}),
        "{out}"
    );
    assert_eq!(
        out["object_tool"],
        json!(["", call, "completed", true]),
        "{out}"
    );
    assert_eq!(
        out["object_text"],
        json!(["pong", null, "completed"]),
        "{out}"
    );
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}
