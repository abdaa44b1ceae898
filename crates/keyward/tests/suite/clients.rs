//! The real coding CLIs as clients of keyward, against the strict mock backend: Claude Code on
//! `/v1/messages` (through the model alias table) and the Codex CLI on `/v1/responses` (a custom
//! model provider with `wire_api = "responses"`, whose requests pass through untouched).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use keyward_mock::codex_cli_config::{config_toml, Provider};
use serde_json::Value;

use super::codex_cli::codex_cli;
use crate::support::*;

/// The client finished and its answer has `word` in it.
pub(super) fn assert_answered(output: &Output, word: &str) {
    assert!(output.status.success(), "{}", text_of(output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(word),
        "{}",
        text_of(output)
    );
}

/// The mock's last accepted request, as keyward sent it upstream.
pub(super) async fn last_accepted(mock: &Mock) -> Result<Value> {
    let requests = mock.requests().await?;
    requests
        .iter()
        .rev()
        .find(|r| r["rejection"].is_null())
        .map(|r| r["body"].clone())
        .ok_or_else(|| anyhow::anyhow!("the mock accepted no request: {requests:?}"))
}

/// The client Codex CLI's own home, its `config.toml` pointing it at keyward (as `edit` leaves
/// it): it holds no login; keyward supplies one upstream.
pub(super) fn codex_client_home(
    home: &Home,
    mock: &Mock,
    keyward: &Keyward,
    edit: impl FnOnce(String) -> String,
) -> Result<PathBuf> {
    let client_home = home.root().join("client-codex");
    std::fs::create_dir_all(&client_home)?;
    let keyward_v1 = format!("{}/v1", keyward.url);
    let provider = Provider {
        name: "keyward",
        base_url: &keyward_v1,
        with_login: false,
    };
    let config = edit(config_toml("gpt-6.1-sol", &mock.url, &provider));
    std::fs::write(client_home.join("config.toml"), config)?;
    Ok(client_home)
}

/// `claude -p PROMPT` in a fresh home (`home`'s user home, its settings included) with only
/// `env` besides `PATH`.
pub(super) fn claude_turn(
    binary: &Path,
    home: &Home,
    prompt: &str,
    env: &[(&str, &str)],
) -> Result<Output> {
    let work = home.root().join("work");
    std::fs::create_dir_all(&work)?;
    let mut command = Command::new(binary);
    command
        .args(["-p", prompt])
        .current_dir(&work)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.user_home())
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    Ok(command.output()?)
}

/// `claude -p` in a fresh home, pointed at keyward.
fn claude(binary: &Path, home: &Home, keyward: &Keyward, prompt: &str) -> Result<Output> {
    claude_turn(
        binary,
        home,
        prompt,
        &[
            ("ANTHROPIC_BASE_URL", &keyward.url),
            ("ANTHROPIC_API_KEY", "unused-keyward-supplies-the-login"),
        ],
    )
}

/// `codex exec ARGS "say pong"` with the client's own Codex home and only `env` besides `PATH`.
pub(super) fn codex_turn(
    cli: &Path,
    home: &Home,
    client_home: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Output> {
    let work = home.root().join("work");
    std::fs::create_dir_all(&work)?;
    let mut command = Command::new(cli);
    command
        .args(["exec", "--skip-git-repo-check", "--ephemeral"])
        .args(args)
        .arg("-C")
        .arg(&work)
        .arg("say pong")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CODEX_HOME", client_home)
        .env("HOME", home.user_home())
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    Ok(command.output()?)
}

/// Claude Code completes a turn through keyward: its Messages request (adaptive thinking,
/// context management, a dozen tools, system messages inside `messages`) is accepted, served by
/// the Codex model its default opus name is aliased to, and the answer reaches its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_completes_a_turn_through_keyward() -> Result<()> {
    let Some(binary) = peer_binary(
        "KEYWARD_CLAUDE_CODE",
        "node_modules/.bin/claude",
        "Claude Code",
    ) else {
        return Ok(());
    };
    let (mock, home, keyward) = serving().await?;
    let output = tokio::task::block_in_place(|| claude(&binary, &home, &keyward, "say pong"))?;
    assert_answered(&output, "pong");
    let sent = last_accepted(&mock).await?;
    assert_eq!(
        sent["model"], "gpt-6-astra",
        "claude-opus-* is served by the frontier model"
    );
    assert!(
        sent["tools"].as_array().is_some_and(|t| t.len() > 5),
        "{sent}"
    );
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}

/// Claude Code runs a tool the model calls (`Read`, through `tool_use`), sends its result back
/// (`tool_result`, carried upstream as a `function_call_output` answering the call), and prints
/// the model's answer to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_runs_a_tool_through_keyward() -> Result<()> {
    let Some(binary) = peer_binary(
        "KEYWARD_CLAUDE_CODE",
        "node_modules/.bin/claude",
        "Claude Code",
    ) else {
        return Ok(());
    };
    let (mock, home, keyward) = serving().await?;
    let output = tokio::task::block_in_place(|| {
        claude(&binary, &home, &keyward, "read the file x [[tool:Read]]")
    })?;
    assert_answered(&output, "tool said:");
    let sent = last_accepted(&mock).await?;
    let input = sent["input"].as_array().cloned().unwrap_or_default();
    let call = input
        .iter()
        .find(|i| i["type"] == "function_call" && i["name"] == "Read")
        .ok_or_else(|| anyhow::anyhow!("no Read call in the history: {sent}"))?;
    assert!(
        input
            .iter()
            .any(|i| i["type"] == "function_call_output" && i["call_id"] == call["call_id"]),
        "the tool's result answers its call: {sent}"
    );
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}

/// The Codex CLI as a client of keyward (a custom provider, `wire_api = "responses"`): its
/// requests already speak the backend's dialect and pass through byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_cli_as_a_client_completes_a_turn_through_keyward() -> Result<()> {
    let Some(cli) = codex_cli() else {
        return Ok(());
    };
    let (mock, home, keyward) = serving().await?;
    let client_home = codex_client_home(&home, &mock, &keyward, |config| config)?;
    let output = tokio::task::block_in_place(|| codex_turn(&cli, &home, &client_home, &[], &[]))?;
    assert_answered(&output, "pong");
    let sent = last_accepted(&mock).await?;
    assert_eq!(sent["model"], "gpt-6.1-sol");
    assert_eq!(sent["store"], false);
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await
}
