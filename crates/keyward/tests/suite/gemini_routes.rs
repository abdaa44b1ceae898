//! Gemini's routes over plain HTTP, as a REST client meets them: the key in a header or in the
//! query (never echoed, never logged), both stream framings, failures and usage limits in
//! Google's shape, the model list each client expects at `GET /v1/models`, the front door's
//! refusals.

use serde_json::{json, Value};

use crate::support::*;

const KEY: &str = "kw-gemini-route-key-0123456789";
/// A wrong key sent in the query: it must appear nowhere.
const WRONG: &str = "wrong-query-key-that-must-not-leak";

fn hello(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

async fn send(
    request: reqwest::RequestBuilder,
) -> Result<(u16, reqwest::header::HeaderMap, String)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok((status, headers, response.text().await?))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// With gateway keys, a Gemini client's key is taken from `x-goog-api-key`, `?key=` or a bearer
/// token; a wrong one is refused in Google's shape. A key in the query is never repeated, in an
/// answer, the log (every library's, at trace level) or the metrics; other routes do not take
/// keys in the query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_the_query_are_taken_and_never_repeated() -> Result<()> {
    let (_mock, _home, keyward) =
        serving_with("", &[("KEYWARD_API_KEYS", KEY), ("KEYWARD_LOG", "trace")]).await?;
    let http = reqwest::Client::new();
    let call = |query: &str| {
        format!(
            "{}/v1beta/models/gemini-3-pro:generateContent{query}",
            keyward.url
        )
    };
    let (status, _, body) =
        send(http.post(call(&format!("?key={KEY}"))).json(&hello("ping"))).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_of(&body)["candidates"][0]["content"]["parts"][0]["text"],
        "pong"
    );
    let (status, _, body) = send(
        http.post(call(""))
            .header("x-goog-api-key", KEY)
            .json(&hello("ping")),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = send(http.post(call("")).bearer_auth(KEY).json(&hello("ping"))).await?;
    assert_eq!(status, 200, "{body}");

    let (status, _, body) = send(
        http.post(call(&format!("?alt=sse&key={WRONG}")))
            .json(&hello("ping")),
    )
    .await?;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        json_of(&body)["error"]["status"],
        "UNAUTHENTICATED",
        "{body}"
    );
    let (status, _, body) = send(http.post(call("")).json(&hello("ping"))).await?;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("x-goog-api-key"), "{body}");
    let unknown = format!(
        "{}/v1beta/models/gemini-3-pro:embedContent?key={KEY}",
        keyward.url
    );
    let (status, _, body) = send(http.post(unknown).json(&hello("ping"))).await?;
    assert_eq!(status, 404, "{body}");
    assert_eq!(json_of(&body)["error"]["status"], "NOT_FOUND", "{body}");
    let responses = format!("{}/v1/responses?key={KEY}", keyward.url);
    let (status, _, body) = send(
        http.post(responses)
            .json(&json!({"model": "gpt-6.1-sol", "input": "ping"})),
    )
    .await?;
    assert_eq!(
        status, 401,
        "only Gemini's routes take a key in the query: {body}"
    );

    let (_, _, metrics) = send(
        http.get(format!("{}/metrics", keyward.url))
            .bearer_auth(KEY),
    )
    .await?;
    let log = keyward.log();
    for (place, text) in [("the log", &log), ("/metrics", &metrics)] {
        assert!(!text.contains(KEY), "the key is in {place}");
        assert!(!text.contains(WRONG), "the wrong key is in {place}");
    }
    assert!(
        metrics.contains(r#"route="gemini""#),
        "Gemini's requests are counted: {metrics}"
    );
    Ok(())
}

/// `GET /v1/models` is OpenAI's list, or Gemini's for a Gemini client (its key header, or a key
/// in the query); `/v1beta/models` is always Gemini's, and one model names what serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_lists_answer_each_client_in_its_shape() -> Result<()> {
    let (_mock, _home, keyward) = serving().await?;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", keyward.url));
    let (_, _, openai) = send(get("/v1/models")).await?;
    assert_eq!(json_of(&openai)["object"], "list", "{openai}");
    let (_, _, gemini) = send(get("/v1/models").header("x-goog-api-key", "k")).await?;
    let names: Vec<String> = json_of(&gemini)["models"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["name"].as_str().map(str::to_string))
        .collect();
    assert!(
        names.contains(&"models/gpt-6.1-sol".to_string()),
        "{gemini}"
    );
    let (_, _, beta) = send(get("/v1beta/models")).await?;
    assert_eq!(json_of(&beta), json_of(&gemini));
    let (_, _, by_key) = send(get("/v1/models?key=k")).await?;
    assert_eq!(json_of(&by_key), json_of(&gemini));

    let (status, _, pro) = send(get("/v1beta/models/gemini-2.5-pro")).await?;
    assert_eq!(status, 200);
    let pro = json_of(&pro);
    assert_eq!(pro["name"], "models/gemini-2.5-pro");
    assert_eq!(pro["description"], "Served by gpt-6-astra through keyward");
    assert_eq!(
        pro["supportedGenerationMethods"],
        json!(["generateContent", "streamGenerateContent", "countTokens"])
    );
    let (status, _, missing) = send(get("/v1beta/models/llama-3")).await?;
    assert_eq!(status, 404);
    assert_eq!(json_of(&missing)["error"]["status"], "NOT_FOUND");
    Ok(())
}

/// Without `alt=sse` a stream is one JSON array; with it, server-sent events. Every stream ends
/// with a finish reason, or with Google's error object when the upstream fails midway; a usage
/// limit is `RESOURCE_EXHAUSTED` with `Retry-After` and the `RetryInfo` the Gemini CLI reads;
/// `:countTokens` counts locally; a bad field is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_failures_and_counts_in_googles_shapes() -> Result<()> {
    let (mock, _home, keyward) = serving().await?;
    let http = reqwest::Client::new();
    let post = |method: &str, body: &Value| {
        http.post(format!(
            "{}/v1beta/models/gemini-3.8-flash:{method}",
            keyward.url
        ))
        .json(body)
    };

    let (status, headers, body) = send(post("streamGenerateContent", &hello("[[words]]"))).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let chunks: Vec<Value> = serde_json::from_str(&body)?;
    assert!(chunks.len() > 2, "{body}");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "one two three STOP four five");
    let last = chunks.last().cloned().unwrap_or_default();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP", "{body}");
    assert!(last["usageMetadata"]["totalTokenCount"].as_u64() > Some(0));

    let (status, headers, body) =
        send(post("streamGenerateContent?alt=sse", &hello("[[fail]]"))).await?;
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let last = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .next_back()
        .map(json_of)
        .unwrap_or_default();
    assert_eq!(last["error"]["code"], 502, "{body}");
    assert_eq!(last["error"]["status"], "UNAVAILABLE", "{body}");

    let (status, headers, body) = send(post("generateContent", &hello("[[usage_limit]]"))).await?;
    assert_eq!(status, 429, "{body}");
    assert!(headers.contains_key("retry-after"));
    let error = json_of(&body)["error"].clone();
    assert_eq!(error["status"], "RESOURCE_EXHAUSTED", "{body}");
    assert_eq!(
        error["details"][0]["@type"], "type.googleapis.com/google.rpc.RetryInfo",
        "{body}"
    );

    let (status, _, body) = send(post("countTokens", &hello("hello world"))).await?;
    assert_eq!(status, 200, "{body}");
    assert!(json_of(&body)["totalTokens"].as_u64() > Some(0), "{body}");

    let bad = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": "lots"}});
    let (status, _, body) = send(post("generateContent", &bad)).await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        json_of(&body)["error"]["details"][0]["fieldViolations"][0]["field"],
        "generationConfig.maxOutputTokens",
        "{body}"
    );
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    Ok(())
}

/// The front door's refusals on Gemini's routes are in Google's shape: a web page's request, a
/// form post, a body that would take more memory to translate than keyward allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_door_refusals_speak_googles_shape() -> Result<()> {
    let (_mock, _home, keyward) =
        serving_with("[gateway]\nmax_request_memory = 16777216\n", &[]).await?;
    let http = reqwest::Client::new();
    let url = format!("{}/v1beta/models/gemini-3-pro:generateContent", keyward.url);
    let (status, _, body) = send(
        http.post(&url)
            .header("origin", "https://evil.example")
            .json(&hello("ping")),
    )
    .await?;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        json_of(&body)["error"]["status"],
        "PERMISSION_DENIED",
        "{body}"
    );
    let (status, _, body) = send(
        http.post(&url)
            .header("content-type", "text/plain")
            .body(hello("ping").to_string()),
    )
    .await?;
    assert_eq!(status, 415, "{body}");
    assert_eq!(json_of(&body)["error"]["code"], 415, "{body}");
    assert_eq!(
        json_of(&body)["error"]["status"],
        "INVALID_ARGUMENT",
        "{body}"
    );
    // 100,000 one-letter parts: about 1.3 MB sent, 150 MiB once parsed and translated.
    let parts = vec![json!({"text": "a"}); 100_000];
    let (status, _, body) = send(http.post(&url).json(&json!({
        "contents": [{"role": "user", "parts": parts}],
    })))
    .await?;
    assert_eq!(status, 413, "{}", &body[..body.len().min(300)]);
    let refusal = json_of(&body);
    assert_eq!(refusal["error"]["status"], "INVALID_ARGUMENT", "{refusal}");
    assert!(
        refusal["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("max_request_memory")),
        "{refusal}"
    );
    Ok(())
}
