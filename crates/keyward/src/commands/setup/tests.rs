//! Setup on copies of real settings files (other settings, comments, odd indentation): keyward's
//! settings go in, everything else stays byte for byte, a second run changes nothing, and taking
//! them out gives back the file as it was. The JSON files are as their tools write them
//! (`JSON.stringify` with an indent): serde_json keeps their key order and indentation, not a
//! hand-made layout such as an array on one line.

use super::*;

fn target(key: KeyRef) -> Target {
    Target {
        origin: "http://127.0.0.1:7411".into(),
        key,
        model: "gpt-6.1-sol".into(),
        models: vec!["gpt-6.1-sol".into(), "gpt-6-luna".into()],
    }
}

fn keys() -> [KeyRef; 3] {
    [
        KeyRef::Placeholder,
        KeyRef::Env("KW_KEY".into()),
        KeyRef::Literal(Secret::new("kw-0123456789abcdef0123")),
    ]
}

const CLAUDE_SETTINGS: &str = r#"{
    "permissions": {
        "allow": [
            "Bash(npm run test:*)"
        ],
        "deny": []
    },
    "env": {
        "DISABLE_TELEMETRY": "1"
    },
    "model": "opus",
    "statusLine": {
        "type": "command",
        "command": "~/.claude/statusline.sh"
    }
}
"#;

const CODEX_PROFILE: &str = r#"# my keyward profile, tuned
model_reasoning_effort = "high"   # think harder

[model_providers.keyward]
name = "keyward"
base_url = "http://127.0.0.1:9999/v1"
wire_api = "responses"
request_max_retries = 2
"#;

const OPENCODE: &str = r#"{
  "$schema": "https://opencode.ai/config.json",
  "theme": "tokyonight",
  "provider": {
    "ollama": {
      "npm": "@ai-sdk/openai-compatible",
      "options": {
        "baseURL": "http://localhost:11434/v1"
      },
      "models": {
        "llama3": {}
      }
    }
  },
  "autoupdate": false
}
"#;

const AIDER: &str = r#"# Aider settings
model: gpt-4o   # the old one
dark-mode: true
auto-commits: false
read:
  - CONVENTIONS.md
  - docs/style.md

# keys
openai-api-key: sk-my-real-openai-key
"#;

const CONTINUE: &str = r#"name: My Config
version: 0.0.1
schema: v1
models:
  - name: Ollama Llama
    provider: ollama
    model: llama3.1:8b
    roles:
      - chat
  # autocomplete
  - name: Qwen
    provider: ollama
    model: qwen2.5-coder:1.5b
    roles:
      - autocomplete
context:
  - provider: code
rules:
  - Always write tests
"#;

const SHELL: &str = "# ~/.bashrc\nexport PATH=\"$HOME/bin:$PATH\"\nalias ll='ls -l'\n";

fn fixtures() -> Vec<(&'static dyn Client, &'static str)> {
    vec![
        (&claude_code::ClaudeCode, CLAUDE_SETTINGS),
        (&codex::Codex, CODEX_PROFILE),
        (&opencode::Opencode, OPENCODE),
        (&aider::Aider, AIDER),
        (&continue_dev::Continue, CONTINUE),
        (&shell::Shell, SHELL),
    ]
}

/// Every client, every key choice, on a real file and on no file: applied once it points at
/// keyward, applied twice it is the same, and taken out it is the file as it was.
#[test]
fn apply_is_idempotent_and_remove_gives_back_the_file() {
    for (client, fixture) in fixtures() {
        for original in [fixture, ""] {
            for key in keys() {
                let target = target(key);
                let context = format!(
                    "{} on {:?} with {:?}",
                    client.name(),
                    original.len(),
                    target.key
                );
                let applied = client
                    .apply(original, &target)
                    .unwrap_or_else(|e| panic!("{context}: {e}"));
                assert_eq!(
                    client.apply(&applied, &target).ok().as_deref(),
                    Some(applied.as_str()),
                    "{context}: a second run changes nothing"
                );
                let pointing = client
                    .inspect(&applied)
                    .unwrap_or_else(|e| panic!("{context}: {e}"))
                    .unwrap_or_else(|| panic!("{context}: not pointed at keyward:\n{applied}"));
                assert!(
                    pointing.base_url == target.origin || pointing.base_url == target.openai_base(),
                    "{context}: {}",
                    pointing.base_url
                );
                match (&target.key, &pointing.key) {
                    (KeyRef::Literal(k), KeySetting::Literal(found)) => {
                        assert_eq!(k.expose(), found.expose(), "{context}")
                    }
                    (KeyRef::Literal(_), other) => panic!("{context}: {other:?}"),
                    (KeyRef::Env(_), KeySetting::Literal(_)) => {
                        panic!("{context}: a key was written without --write-key")
                    }
                    _ => {}
                }
                let removed = client
                    .remove(&applied, original)
                    .unwrap_or_else(|e| panic!("{context}: {e}"));
                if original.is_empty() {
                    assert!(
                        client.inspect(&removed).ok().flatten().is_none(),
                        "{context}: {removed}"
                    );
                } else {
                    assert_eq!(removed, original, "{context}: the file as it was");
                }
            }
        }
    }
}

/// The lines setup does not own are kept as they were: comments, indentation, order.
#[test]
fn other_settings_and_formatting_are_kept() {
    let target = target(KeyRef::Env("KW_KEY".into()));
    for (client, fixture) in fixtures() {
        let applied = client.apply(fixture, &target).unwrap_or_default();
        let kept: Vec<&str> = fixture
            .lines()
            .filter(|line| {
                // The lines of the keys setup owns may change.
                !["openai-api-key", "model:", "base_url", "\"model\""]
                    .iter()
                    .any(|owned| line.trim_start().starts_with(owned))
            })
            .collect();
        for line in kept {
            assert!(
                // A JSON member may gain a comma when setup's settings follow it.
                applied
                    .lines()
                    .any(|l| l.trim_end_matches(',') == line.trim_end_matches(',')),
                "{}: lost {line:?}:\n{applied}",
                client.name()
            );
        }
    }
    // JSON keeps its four-space indentation and its key order.
    let claude = claude_code::ClaudeCode
        .apply(CLAUDE_SETTINGS, &target)
        .unwrap_or_default();
    assert!(claude.starts_with("{\n    \"permissions\""), "{claude}");
    let order: Vec<usize> = ["permissions", "env", "model", "statusLine", "apiKeyHelper"]
        .iter()
        .filter_map(|k| claude.find(&format!("\"{k}\"")))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]) && order.len() == 5,
        "{claude}"
    );
}

/// What each client gets, exactly where it matters.
#[test]
fn each_client_gets_its_settings() {
    let env_key = target(KeyRef::Env("KW_KEY".into()));
    let claude = claude_code::ClaudeCode
        .apply("", &env_key)
        .unwrap_or_default();
    assert!(
        claude.contains("\"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:7411\""),
        "{claude}"
    );
    assert!(
        claude.contains("\"apiKeyHelper\": \"printenv KW_KEY\""),
        "{claude}"
    );

    let codex = codex::Codex.apply("", &env_key).unwrap_or_default();
    assert_eq!(
        codex,
        "model_provider = \"keyward\"\nmodel = \"gpt-6.1-sol\"\n\n[model_providers.keyward]\nname = \"keyward\"\nbase_url = \"http://127.0.0.1:7411/v1\"\nwire_api = \"responses\"\nenv_key = \"KW_KEY\"\n"
    );

    let opencode = opencode::Opencode.apply("", &env_key).unwrap_or_default();
    assert!(
        opencode.contains("\"apiKey\": \"{env:KW_KEY}\""),
        "{opencode}"
    );
    assert!(opencode.contains("\"gpt-6-luna\""), "{opencode}");

    let aider = aider::Aider.apply(AIDER, &env_key).unwrap_or_default();
    assert!(
        aider.contains("openai-api-base: \"http://127.0.0.1:7411/v1\"\n"),
        "{aider}"
    );
    assert!(aider.contains("model: \"openai/gpt-6.1-sol\"\n"), "{aider}");
    assert!(
        !aider.contains("sk-my-real-openai-key"),
        "a key in the file would win: {aider}"
    );

    let cont = continue_dev::Continue
        .apply(CONTINUE, &env_key)
        .unwrap_or_default();
    assert!(
        cont.contains("    apiKey: \"${{ secrets.KW_KEY }}\"\n"),
        "{cont}"
    );
    let at = cont.find("- name: keyward").unwrap_or(0);
    assert!(
        at > cont.find("- name: Qwen").unwrap_or(usize::MAX),
        "{cont}"
    );
    assert!(
        at < cont.find("context:").unwrap_or(0),
        "inside the models list: {cont}"
    );

    let new_continue = continue_dev::Continue
        .apply("", &env_key)
        .unwrap_or_default();
    assert!(
        new_continue.starts_with(
            "name: Local Config\nversion: 1.0.0\nschema: v1\nmodels:\n  - name: keyward\n"
        ),
        "{new_continue}"
    );
}

/// A file setup cannot edit safely is refused with the reason, not rewritten.
#[test]
fn files_setup_cannot_read_are_refused() {
    let target = target(KeyRef::Placeholder);
    assert!(claude_code::ClaudeCode
        .apply("{ not json", &target)
        .is_err());
    assert!(claude_code::ClaudeCode.apply("[1, 2]", &target).is_err());
    assert!(claude_code::ClaudeCode
        .apply("{\"env\": 3}", &target)
        .is_err());
    assert!(codex::Codex.apply("model = ", &target).is_err());
    assert!(aider::Aider.apply("a: [unclosed", &target).is_err());
    assert!(continue_dev::Continue
        .apply("models: [{name: x}]\n", &target)
        .is_err());
}

#[test]
fn wildcard_listen_addresses_are_reached_on_loopback() {
    let origin = |a: &str| client_origin(a.parse().unwrap_or_else(|e| panic!("{a}: {e}")));
    assert_eq!(origin("0.0.0.0:7411"), "http://127.0.0.1:7411");
    assert_eq!(origin("[::]:8000"), "http://[::1]:8000");
    assert_eq!(origin("192.168.1.5:7411"), "http://192.168.1.5:7411");
}

/// A legacy `[profiles.keyward]` in the Codex CLI's config.toml (which makes it refuse
/// `--profile keyward`) is named; a config.toml without one is not.
#[test]
fn a_legacy_codex_profile_is_named() -> Result<(), Box<dyn std::error::Error>> {
    let root = tempfile::tempdir()?;
    let codex_home = root.path().join("codex");
    fs::create_dir_all(&codex_home)?;
    let env: std::collections::HashMap<String, String> = [
        ("HOME".to_string(), root.path().display().to_string()),
        ("CODEX_HOME".to_string(), codex_home.display().to_string()),
    ]
    .into_iter()
    .collect();
    let dirs = UserDirs::from_env(&env)?;
    fs::write(
        codex_home.join("config.toml"),
        "model = \"gpt-6-luna\"\n[profiles.fast]\nmodel = \"x\"\n",
    )?;
    assert_eq!(codex::Codex.conflict(&dirs, &env), None);
    fs::write(
        codex_home.join("config.toml"),
        "[profiles.keyward]\nmodel_provider = \"keyward\"\n",
    )?;
    let conflict = codex::Codex.conflict(&dirs, &env).unwrap_or_default();
    assert!(conflict.contains("[profiles.keyward]"), "{conflict}");
    Ok(())
}
