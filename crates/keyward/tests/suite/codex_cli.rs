//! Interop with the real Codex CLI (`@openai/codex` from npm, installed by `scripts/install-peers`),
//! refreshing against the mock through `CODEX_REFRESH_TOKEN_URL_OVERRIDE` while keyward serves.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use keyward_mock::codex_cli_config::{config_toml, Provider};
use serde_json::json;

use crate::support::*;

/// The real CLI's native binary (`$KEYWARD_CODEX_CLI`, else the one `scripts/install-peers`
/// puts in `.peers/`), or `None` (the test then skips, except under CI).
pub(super) fn codex_cli() -> Option<PathBuf> {
    peer_binary(
        "KEYWARD_CODEX_CLI",
        "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex",
        "the Codex CLI",
    )
}

/// `$CODEX_HOME/config.toml` sending the CLI's model calls and side calls to the mock, with
/// analytics and plugin fetches off (they would try the internet).
pub(super) fn write_cli_config(home: &Home, mock: &Mock) -> Result<()> {
    let backend = mock.base_url();
    let provider = Provider {
        name: "mock",
        base_url: &backend,
        with_login: true,
    };
    let config = config_toml("gpt-5.1-codex", &mock.url, &provider);
    std::fs::write(home.codex_home().join("config.toml"), config)?;
    Ok(())
}

/// One `codex exec` turn; returns whether it succeeded, and its output for the failure message.
pub(super) fn codex_exec(cli: &PathBuf, home: &Home, mock: &Mock) -> Result<(bool, String)> {
    codex_exec_with(cli, home, mock, &[])
}

/// [`codex_exec`] with extra environment (a D-Bus session bus).
pub(super) fn codex_exec_with(
    cli: &PathBuf,
    home: &Home,
    mock: &Mock,
    env: &[(&str, &str)],
) -> Result<(bool, String)> {
    let work = home.root().join("work");
    std::fs::create_dir_all(&work)?;
    let output = Command::new(cli)
        .args(["exec", "--skip-git-repo-check", "--ephemeral", "-C"])
        .arg(&work)
        .arg("say hi")
        .env("CODEX_HOME", home.codex_home())
        .env("HOME", home.user_home())
        .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", mock.token_url())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

/// keyward serves a request without a token call of its own: it adopted what the source holds.
pub(super) async fn served_without_spending(
    keyward: &Keyward,
    mock: &Mock,
    when: &str,
) -> Result<()> {
    let calls = mock.stat("token_calls").await?;
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{when}: {body}");
    assert_eq!(
        mock.stat("token_calls").await?,
        calls,
        "{when}: keyward spent instead of adopting"
    );
    Ok(())
}

/// The upstream refuses keyward's token once: keyward refreshes through the protocol, gets a
/// token that lives `ttl` seconds, and serves.
pub(super) async fn refresh_after_a_401(keyward: &Keyward, mock: &Mock, ttl: u64) -> Result<()> {
    mock.ttl_queue(json!([ttl])).await?;
    mock.response_faults(json!([{"kind": "status", "code": 401}]))
        .await?;
    let (status, body) = keyward.respond(false).await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

/// keyward and the real Codex CLI take turns rotating one auth.json: the CLI refreshes a token
/// inside its 5-minute window (as it does at start), keyward adopts it; keyward refreshes after
/// an upstream 401 and hands the CLI a token the CLI refreshes next. Zero reuse, every turn served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyward_and_the_real_codex_cli_take_turns_on_one_auth_json() -> Result<()> {
    let Some(cli) = codex_cli() else {
        return Ok(());
    };
    let mock = Mock::start().await?;
    let home = Home::new()?;
    write_cli_config(&home, &mock)?;
    // keyward refreshes a token once 60 s are left; the CLI once 300 s are left. A 120 s token is
    // therefore the CLI's to refresh, and keyward must adopt the result.
    home.write_config(&timing_config("60s"))?;
    home.write_login(&mock.login(Some(120)).await?)?;
    let keyward = Keyward::serve(&home, &mock).await?;
    // The login's ttl is its family's default: every token the CLI gets is queued explicitly to
    // live long (a replacement inside its window would make the CLI refresh in a loop).

    let rounds = 3;
    for round in 0..rounds {
        // The CLI's turn: its token has 120 s left, so `codex exec` refreshes it first.
        let before = home.refresh_token()?;
        mock.ttl_queue(json!([3600])).await?;
        let (ok, output) = codex_exec(&cli, &home, &mock)?;
        assert!(ok, "round {round}: codex exec failed:\n{output}");
        let after_cli = home.refresh_token()?;
        assert_ne!(
            after_cli, before,
            "round {round}: the CLI did not refresh:\n{output}"
        );

        // keyward adopts the CLI's lineage: served without a token call of its own.
        served_without_spending(&keyward, &mock, &format!("round {round}")).await?;

        // keyward's turn: the upstream refuses its token once; keyward refreshes through the
        // protocol and gets a token with 120 s left, which the CLI will refresh next round.
        refresh_after_a_401(&keyward, &mock, 120).await?;
        let after_keyward = home.refresh_token()?;
        assert_ne!(
            after_keyward, after_cli,
            "round {round}: keyward did not refresh"
        );
        assert!(mock.is_live(&after_keyward).await?);
    }
    mock.ttl_queue(json!([3600])).await?;
    let (ok, output) = codex_exec(&cli, &home, &mock)?;
    assert!(ok, "final codex exec failed:\n{output}");
    assert!(
        mock.is_live(&home.refresh_token()?).await?,
        "auth.json ends on the live lineage"
    );
    let stats = mock.stats().await?;
    assert_eq!(
        stats["token_calls"], stats["refresh_ok"],
        "every spend rotated: {stats}"
    );
    assert_eq!(stats["refresh_ok"], json!(2 * rounds + 1), "{stats}");
    mock.assert_no_reuse().await
}
