//! The real Gemini CLI (`@google/gemini-cli` from npm, installed by `scripts/install-peers`) as a
//! client of keyward's Gemini routes, against the strict mock backend: headless (`-p`), with the
//! settings file, `--skip-trust` and the environment the README gives, and a gateway key as its
//! `GEMINI_API_KEY`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::clients::{assert_answered, last_accepted};
use crate::support::*;

const KEY: &str = "kw-gemini-cli-key-0123456789";

/// What the file the CLI reads says (the mock's `[[tool:read_file]]` asks for the file `x`).
const NOTES: &str = "the notes say keyward-42";

/// The CLI's settings: an API key (not its Google login), and no usage statistics (which would
/// reach play.googleapis.com).
const SETTINGS: &str = r#"{"security":{"auth":{"selectedType":"gemini-api-key"}},"privacy":{"usageStatisticsEnabled":false}}"#;

fn gemini_cli() -> Option<std::path::PathBuf> {
    peer_binary(
        "KEYWARD_GEMINI_CLI",
        "node_modules/.bin/gemini",
        "the Gemini CLI",
    )
}

/// `gemini -p PROMPT --skip-trust` in a fresh home holding only the settings file, pointed at
/// keyward, in a work directory holding the file `x`.
fn gemini(binary: &Path, home: &Home, keyward: &Keyward, prompt: &str) -> Result<Output> {
    let user_home = home.root().join("gemini-home");
    std::fs::create_dir_all(user_home.join(".gemini"))?;
    std::fs::write(user_home.join(".gemini/settings.json"), SETTINGS)?;
    let work = home.root().join("work");
    std::fs::create_dir_all(&work)?;
    std::fs::write(work.join("x"), NOTES)?;
    Ok(Command::new(binary)
        .args(["-p", prompt, "--skip-trust"])
        .current_dir(&work)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &user_home)
        .env("GEMINI_API_KEY", KEY)
        .env("GOOGLE_GEMINI_BASE_URL", &keyward.url)
        .stdin(Stdio::null())
        .output()?)
}

async fn serving_keyed() -> Result<(Mock, Home, Keyward)> {
    serving_with("", &[("KEYWARD_API_KEYS", KEY)]).await
}

/// The Gemini CLI completes a turn through keyward: its model router's classifier (JSON mode,
/// an upper-case schema) gets JSON and routes, its streamed turn (a 30 KB system instruction,
/// eight tools, high thinking) is accepted, served by the Codex models its Gemini names are
/// aliased to, and ends with a finish reason: exactly two requests, no retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_cli_completes_a_turn_through_keyward() -> Result<()> {
    let Some(binary) = gemini_cli() else {
        return Ok(());
    };
    let (mock, home, keyward) = serving_keyed().await?;
    let output = tokio::task::block_in_place(|| gemini(&binary, &home, &keyward, "say pong"))?;
    assert_answered(&output, "pong");
    let requests = mock.requests().await?;
    let models: Vec<&str> = requests
        .iter()
        .map(|r| r["body"]["model"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        models,
        ["gpt-6-luna", "gpt-6.1-sol"],
        "the flash-lite classifier, then the flash turn, each once: {requests:?}"
    );
    let classifier = &requests[0]["body"];
    assert_eq!(classifier["text"]["format"]["type"], "json_schema");
    let turn = last_accepted(&mock).await?;
    assert!(
        turn["tools"].as_array().is_some_and(|t| t.len() > 5),
        "{turn}"
    );
    assert_eq!(turn["reasoning"]["effort"], "high");
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}

/// The Gemini CLI runs a tool the model calls (`read_file`, a `functionCall` with the upstream's
/// call id), sends its result back (a `functionResponse` with that id, carried upstream as the
/// `function_call_output` answering the call, after the reasoning its thought signature carried
/// back) and prints the model's answer to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_cli_runs_a_tool_through_keyward() -> Result<()> {
    let Some(binary) = gemini_cli() else {
        return Ok(());
    };
    let (mock, home, keyward) = serving_keyed().await?;
    let output = tokio::task::block_in_place(|| {
        gemini(
            &binary,
            &home,
            &keyward,
            "read the file x [[tool:read_file]]",
        )
    })?;
    assert_answered(&output, &format!("tool said: {NOTES}"));
    let sent = last_accepted(&mock).await?;
    let input = sent["input"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = input.iter().filter_map(|i| i["type"].as_str()).collect();
    let call = kinds.iter().position(|k| *k == "function_call");
    assert!(
        call.is_some_and(|at| at > 0 && kinds[at - 1] == "reasoning"),
        "the call's reasoning came back through its thought signature: {kinds:?}"
    );
    let call = &input[call.unwrap_or_default()];
    assert_eq!(call["name"], "read_file");
    let output = input
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(output["call_id"], call["call_id"], "{sent}");
    assert!(
        output["output"].as_str().is_some_and(|o| o.contains(NOTES)),
        "{output}"
    );
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}
