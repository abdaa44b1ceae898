//! The official `openai` Python SDK as a client of keyward's `/v1/responses` (installed by
//! `scripts/install-peers`).

use std::process::Command;

use serde_json::Value;

use crate::support::*;

/// Runs `script` with the SDK pointed at keyward; `None` when the SDK is not installed (the test
/// then skips, except under CI).
fn run_sdk(keyward: &Keyward, script: &str) -> Result<Option<Value>> {
    let probe = Command::new("python3")
        .args(["-c", "import openai"])
        .output();
    if !probe.is_ok_and(|p| p.status.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "the openai Python SDK is not installed: CI must run scripts/install-peers"
        );
        eprintln!("SKIPPED: the openai Python SDK is not installed; run ./scripts/install-peers");
        return Ok(None);
    }
    let output = Command::new("python3")
        .args(["-c", script])
        .env("KEYWARD_URL", format!("{}/v1", keyward.url))
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "the SDK script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(Some(serde_json::from_str(stdout.trim())?))
}

const SCRIPT: &str = r#"
import json, os, openai
client = openai.OpenAI(base_url=os.environ["KEYWARD_URL"], api_key="unused", max_retries=0)
out = {}
plain = client.responses.create(model="gpt-5-codex", input="ping", store=False)
out["plain"] = [plain.status, plain.output_text]
with client.responses.stream(model="gpt-5-codex", input="ping", store=False) as stream:
    out["events"] = [event.type for event in stream]
    final = stream.get_final_response()
out["streamed"] = [final.status, final.output_text]
print(json.dumps(out))
"#;

const NEEDS_LOGIN_SCRIPT: &str = r#"
import json, os, openai
client = openai.OpenAI(base_url=os.environ["KEYWARD_URL"], api_key="unused", max_retries=0)
try:
    client.responses.create(model="gpt-5-codex", input="ping", store=False)
    print(json.dumps({"raised": None}))
except openai.APIStatusError as e:
    print(json.dumps({"raised": type(e).__name__, "status": e.status_code, "code": e.code, "message": e.message}))
"#;

/// The SDK's plain call gets the assembled response object, and its streaming helper
/// accumulates keyward's pass-through event stream into the same final response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_responses_plain_and_streamed() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_login(&mock.login(None).await?)?;
    let keyward = Keyward::serve(&home, &mock).await?;
    let Some(out) = tokio::task::block_in_place(|| run_sdk(&keyward, SCRIPT))? else {
        return Ok(());
    };
    assert_eq!(
        out["plain"],
        serde_json::json!(["completed", "pong"]),
        "{out}"
    );
    assert_eq!(
        out["streamed"],
        serde_json::json!(["completed", "pong"]),
        "{out}"
    );
    let events = out["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        events.first().and_then(Value::as_str),
        Some("response.created"),
        "{out}"
    );
    assert_eq!(
        events.last().and_then(Value::as_str),
        Some("response.completed"),
        "{out}"
    );
    mock.assert_no_reuse().await
}

/// A profile that needs a login reaches an SDK user as an `AuthenticationError` whose message
/// says what to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_sees_needs_login_with_the_remedy() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let keyward = Keyward::serve(&home, &mock).await?;
    let Some(out) = tokio::task::block_in_place(|| run_sdk(&keyward, NEEDS_LOGIN_SCRIPT))? else {
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
