//! The real Codex CLI compacting a conversation through keyward, both ways a custom provider
//! can: remote compaction v2 (`capabilities = { remote_compaction = "v2" }`: the CLI asks the
//! backend over the same streamed `POST /responses`, its input ending in a `compaction_trigger`,
//! and sends the `compaction` item it gets back in place of the turns it replaced), and the
//! default local compaction (an ordinary turn asking the model for a handoff summary).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::clients::{assert_answered, codex_client_home};
use super::codex_cli::codex_cli;
use crate::support::*;

/// The client CLI's home, pointed at keyward, compacting once a turn passes 5,000 tokens (the
/// mock counts a quarter of the request's bytes as input tokens: the CLI's first turn is ~14,000).
fn client_home(home: &Home, mock: &Mock, keyward: &Keyward, remote: bool) -> Result<PathBuf> {
    codex_client_home(home, mock, keyward, |config| {
        let mut config = format!(
            "model_auto_compact_token_limit = 5000\nmodel_context_window = 20000\n{config}"
        );
        if remote {
            // The provider's table is the config's last.
            config.push_str("capabilities = { remote_compaction = \"v2\" }\n");
        }
        config
    })
}

/// `codex exec ARGS` in the client's home (sessions kept, so `resume --last` finds them).
fn codex_exec(cli: &Path, home: &Home, client_home: &Path, args: &[&str]) -> Result<Output> {
    let work = home.root().join("work");
    std::fs::create_dir_all(&work)?;
    Ok(Command::new(cli)
        .args(["exec", "--skip-git-repo-check", "-C"])
        .arg(&work)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CODEX_HOME", client_home)
        .env("HOME", home.user_home())
        .stdin(Stdio::null())
        .output()?)
}

/// The input items of the requests the mock's Codex backend accepted, oldest first.
async fn accepted_inputs(mock: &Mock) -> Result<Vec<Vec<Value>>> {
    Ok(mock
        .requests()
        .await?
        .iter()
        .filter(|r| r["endpoint"] == "codex" && r["rejection"].is_null())
        .map(|r| r["body"]["input"].as_array().cloned().unwrap_or_default())
        .collect())
}

/// A turn, then a second one in the same session: the CLI compacts before it, and both turns
/// and the compaction are served. Returns the accepted requests' inputs.
async fn compacting_conversation(remote: bool) -> Result<Option<(Mock, Vec<Vec<Value>>)>> {
    let Some(cli) = codex_cli() else {
        return Ok(None);
    };
    let (mock, home, keyward) = serving().await?;
    let client_home = client_home(&home, &mock, &keyward, remote)?;
    let first = tokio::task::block_in_place(|| codex_exec(&cli, &home, &client_home, &["ping"]))?;
    assert_answered(&first, "pong");
    let second = tokio::task::block_in_place(|| {
        codex_exec(
            &cli,
            &home,
            &client_home,
            &["resume", "--last", "ping again"],
        )
    })?;
    assert_answered(&second, "pong");
    assert_eq!(mock.stat("responses_rejected").await?, 0);
    mock.assert_no_reuse().await?;
    let inputs = accepted_inputs(&mock).await?;
    Ok(Some((mock, inputs)))
}

/// Remote compaction v2 through keyward's pass-through: the CLI's request ending in a
/// `compaction_trigger` reaches the backend as it was sent and its `compaction` item reaches
/// the CLI, which sends it back (the backend verifies it issued it) in the next turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_codex_cli_compacts_remotely_through_keyward() -> Result<()> {
    let Some((_mock, inputs)) = compacting_conversation(true).await? else {
        return Ok(());
    };
    let trigger = inputs
        .iter()
        .position(|input| {
            input
                .last()
                .is_some_and(|item| item["type"] == "compaction_trigger")
        })
        .ok_or_else(|| anyhow::anyhow!("no compaction request reached the backend: {inputs:?}"))?;
    let after = inputs
        .get(trigger + 1..)
        .unwrap_or_default()
        .iter()
        .find(|input| input.iter().any(|item| item["type"] == "compaction"))
        .ok_or_else(|| anyhow::anyhow!("no turn carried the compaction back: {inputs:?}"))?;
    let compaction = after
        .iter()
        .find(|item| item["type"] == "compaction")
        .cloned()
        .unwrap_or_default();
    assert!(compaction["encrypted_content"].is_string(), "{compaction}");
    assert!(
        after
            .iter()
            .any(|item| item["content"][0]["text"] == "ping again"),
        "{after:?}"
    );
    Ok(())
}

/// The default local compaction: an ordinary turn asking for a handoff summary, whose answer the
/// CLI carries into the next turn in place of the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_codex_cli_compacts_locally_through_keyward() -> Result<()> {
    let Some((_mock, inputs)) = compacting_conversation(false).await? else {
        return Ok(());
    };
    let text_of = |item: &Value| {
        item["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let asked = inputs.iter().any(|input| {
        input
            .last()
            .is_some_and(|item| text_of(item).contains("CONTEXT CHECKPOINT COMPACTION"))
    });
    assert!(asked, "no compaction turn: {inputs:?}");
    let resumed = inputs.last().cloned().unwrap_or_default();
    assert!(
        resumed.iter().any(|item| text_of(item)
            .starts_with("Another language model started to solve this problem")),
        "the summary replaced the history: {resumed:?}"
    );
    assert!(
        !inputs
            .iter()
            .flatten()
            .any(|item| item["type"] == "compaction_trigger"),
        "local compaction asks no backend to compact"
    );
    Ok(())
}
