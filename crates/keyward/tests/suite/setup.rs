//! `keyward setup` as a user runs it: on copies of real settings files in a temp home (backup,
//! idempotence, modes, undo), and then the real clients completing a turn through keyward with
//! nothing but what setup wrote (and the key variable setup told the user to export).

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use keyward_mock::codex_cli_config::{config_toml, Provider};

use super::clients::{assert_answered, claude_turn, codex_turn, last_accepted};
use super::codex_cli::codex_cli;
use crate::support::*;

const KEY: &str = "kw-setup-0123456789abcdef";

/// keyward serving with a gateway key, its config naming the address it really listens on (what
/// `setup` reads).
async fn serving_with_key() -> Result<(Mock, Home, Keyward)> {
    let config = format!("[gateway]\napi_keys = [\"{KEY}\"]\n");
    let (mock, home, keyward) = serving_with(&config, &[]).await?;
    home.write_config(&format!("listen = \"{}\"\n{config}", keyward.host_port()))?;
    Ok((mock, home, keyward))
}

fn setup(home: &Home, mock: &Mock, args: &[&str]) -> Result<String> {
    let mut all = vec!["setup"];
    all.extend_from_slice(args);
    let output = run_keyward(home, mock, &all, &[])?;
    assert!(output.status.success(), "{}", text_of(&output));
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

const CLAUDE_SETTINGS: &str = r#"{
  "permissions": {
    "allow": [
      "Bash(cargo test:*)"
    ]
  },
  "env": {
    "DISABLE_TELEMETRY": "1"
  },
  "includeCoAuthoredBy": false
}
"#;

/// The settings file is backed up before the first change, a second run changes nothing, a key
/// is written only on request (and then the file is 0600), `--print` writes nothing, and `--undo`
/// gives the file back byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_backs_up_is_idempotent_and_undoes() -> Result<()> {
    let (mock, home, _keyward) = serving_with_key().await?;
    let dir = home.user_home().join(".claude");
    std::fs::create_dir_all(&dir)?;
    let settings = dir.join("settings.json");
    std::fs::write(&settings, CLAUDE_SETTINGS)?;
    std::fs::set_permissions(&settings, std::fs::Permissions::from_mode(0o644))?;

    let printed = setup(&home, &mock, &["claude-code", "--print"])?;
    assert!(printed.contains("ANTHROPIC_BASE_URL"), "{printed}");
    assert_eq!(
        std::fs::read_to_string(&settings)?,
        CLAUDE_SETTINGS,
        "--print wrote"
    );

    let said = setup(&home, &mock, &["claude-code"])?;
    assert!(said.contains("export KEYWARD_API_KEY="), "{said}");
    let written = std::fs::read_to_string(&settings)?;
    assert!(
        !written.contains(KEY),
        "the key was written unasked: {written}"
    );
    assert!(
        written.contains("\"includeCoAuthoredBy\": false"),
        "{written}"
    );
    let backup = dir.join("settings.json.keyward-backup");
    assert_eq!(std::fs::read_to_string(&backup)?, CLAUDE_SETTINGS);
    let inode = std::fs::metadata(&settings)?.ino();

    let again = setup(&home, &mock, &["claude-code"])?;
    assert!(again.contains("already set up"), "{again}");
    assert_eq!(
        std::fs::metadata(&settings)?.ino(),
        inode,
        "a second run rewrote the file"
    );

    setup(&home, &mock, &["claude-code", "--write-key"])?;
    let with_key = std::fs::read_to_string(&settings)?;
    assert!(with_key.contains(KEY), "{with_key}");
    assert_eq!(std::fs::metadata(&settings)?.mode() & 0o777, 0o600);
    let printed = setup(&home, &mock, &["claude-code", "--undo", "--print"])?;
    assert!(!printed.contains(KEY), "--print showed the key: {printed}");
    assert_eq!(
        std::fs::read_to_string(&backup)?,
        CLAUDE_SETTINGS,
        "the backup is kept"
    );

    setup(&home, &mock, &["claude-code", "--undo"])?;
    assert_eq!(std::fs::read_to_string(&settings)?, CLAUDE_SETTINGS);
    assert_eq!(std::fs::metadata(&settings)?.mode() & 0o777, 0o644);
    assert!(!backup.exists());

    // A file changed since setup: only setup's settings come out, the user's change stays.
    setup(&home, &mock, &["claude-code"])?;
    let changed = std::fs::read_to_string(&settings)?.replace(
        "\"includeCoAuthoredBy\": false",
        "\"includeCoAuthoredBy\": true",
    );
    std::fs::write(&settings, &changed)?;
    setup(&home, &mock, &["claude-code", "--undo"])?;
    assert_eq!(
        std::fs::read_to_string(&settings)?,
        CLAUDE_SETTINGS.replace(
            "\"includeCoAuthoredBy\": false",
            "\"includeCoAuthoredBy\": true"
        )
    );
    Ok(())
}

/// A file setup created is removed by `--undo`; `--all` sets up each installed tool and none other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_all_takes_the_installed_tools_and_undo_removes_what_it_created() -> Result<()> {
    let (mock, home, _keyward) = serving_with_key().await?;
    std::fs::create_dir_all(home.user_home().join(".continue"))?;
    std::fs::write(
        home.user_home().join(".aider.conf.yml"),
        "dark-mode: true\n",
    )?;
    let said = setup(&home, &mock, &["--all"])?;
    assert!(said.contains("Continue: wrote"), "{said}");
    assert!(said.contains("Aider: wrote"), "{said}");
    assert!(!said.contains("opencode"), "{said}");
    let continue_config = home.user_home().join(".continue/config.yaml");
    assert!(continue_config.is_file());
    assert!(!home.user_home().join(".config/opencode").exists());
    setup(&home, &mock, &["--all", "--undo"])?;
    assert!(
        !continue_config.exists(),
        "setup created it, undo removes it"
    );
    assert_eq!(
        std::fs::read_to_string(home.user_home().join(".aider.conf.yml"))?,
        "dark-mode: true\n"
    );
    Ok(())
}

/// Claude Code completes a turn through keyward (which has a gateway key) with nothing but what
/// `setup claude-code` wrote: the key from `KEYWARD_API_KEY` through `apiKeyHelper`, and then
/// with `--write-key` the key in its settings and no environment at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_uses_keyward_with_what_setup_wrote() -> Result<()> {
    let Some(binary) = peer_binary(
        "KEYWARD_CLAUDE_CODE",
        "node_modules/.bin/claude",
        "Claude Code",
    ) else {
        return Ok(());
    };
    let (mock, home, _keyward) = serving_with_key().await?;
    std::fs::create_dir_all(home.user_home().join(".claude"))?;
    std::fs::write(
        home.user_home().join(".claude/settings.json"),
        CLAUDE_SETTINGS,
    )?;
    setup(&home, &mock, &["claude-code"])?;
    let output = tokio::task::block_in_place(|| {
        claude_turn(&binary, &home, "say pong", &[("KEYWARD_API_KEY", KEY)])
    })?;
    assert_answered(&output, "pong");

    setup(&home, &mock, &["claude-code", "--write-key"])?;
    let output = tokio::task::block_in_place(|| claude_turn(&binary, &home, "say pong", &[]))?;
    assert_answered(&output, "pong");
    assert_eq!(last_accepted(&mock).await?["model"], "gpt-6-astra");
    mock.assert_no_reuse().await
}

/// The Codex CLI completes a turn through keyward with nothing but the profile `setup codex`
/// wrote (`codex exec --profile keyward`, the key from `KEYWARD_API_KEY`, then with `--write-key`
/// the key in the profile), beside a config.toml of the user's that setup leaves untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_cli_uses_keyward_with_what_setup_wrote() -> Result<()> {
    let Some(cli) = codex_cli() else {
        return Ok(());
    };
    let (mock, home, _keyward) = serving_with_key().await?;
    // The client's own Codex home holds no login: keyward supplies one upstream.
    let client_home = home.root().join("client-codex");
    std::fs::create_dir_all(&client_home)?;
    // The user's own settings: another provider as the default, side calls to the mock and
    // analytics off (the test machine has no internet).
    let backend = mock.base_url();
    let user_config = config_toml(
        "gpt-6-luna",
        &mock.url,
        &Provider {
            name: "mock",
            base_url: &backend,
            with_login: true,
        },
    );
    std::fs::write(client_home.join("config.toml"), &user_config)?;
    let client_home_text = client_home.display().to_string();
    let output = run_keyward(
        &home,
        &mock,
        &["setup", "codex"],
        &[("CODEX_HOME", &client_home_text)],
    )?;
    assert!(output.status.success(), "{}", text_of(&output));
    assert_eq!(
        std::fs::read_to_string(client_home.join("config.toml"))?,
        user_config
    );
    let output = tokio::task::block_in_place(|| {
        codex_turn(
            &cli,
            &home,
            &client_home,
            &["--profile", "keyward"],
            &[("KEYWARD_API_KEY", KEY)],
        )
    })?;
    assert_answered(&output, "pong");
    let sent = last_accepted(&mock).await?;
    assert_eq!(
        sent["model"], "gpt-6.1-sol",
        "the profile's model, keyward's first"
    );

    // With --write-key the key is in the profile (`experimental_bearer_token`), nothing in the
    // environment.
    let output = run_keyward(
        &home,
        &mock,
        &["setup", "codex", "--write-key"],
        &[("CODEX_HOME", &client_home_text)],
    )?;
    assert!(output.status.success(), "{}", text_of(&output));
    let output = tokio::task::block_in_place(|| {
        codex_turn(&cli, &home, &client_home, &["--profile", "keyward"], &[])
    })?;
    assert_answered(&output, "pong");
    mock.assert_no_reuse().await
}
