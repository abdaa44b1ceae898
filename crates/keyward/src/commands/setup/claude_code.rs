//! Claude Code: `~/.claude/settings.json` (or `$CLAUDE_CONFIG_DIR/settings.json`), whose `env`
//! object Claude Code applies to itself.
//!
//! `ANTHROPIC_BASE_URL` sends it to keyward. The key goes in `ANTHROPIC_AUTH_TOKEN`, which Claude
//! Code sends as `Authorization: Bearer` (keyward takes it as it takes `x-api-key`) without asking
//! the user to approve a "custom API key" as `ANTHROPIC_API_KEY` would. A key kept in the
//! environment is read through `apiKeyHelper`, the command Claude Code runs for its key.

use std::path::PathBuf;

use serde_json::Value;

use super::json_file::JsonFile;
use super::{Client, EditError, KeyRef, KeySetting, Pointing, Target, PLACEHOLDER_KEY};
use crate::commands::UserDirs;
use crate::env::Env;

pub(super) struct ClaudeCode;

const BASE_URL: &[&str] = &["env", "ANTHROPIC_BASE_URL"];
const TOKEN: &[&str] = &["env", "ANTHROPIC_AUTH_TOKEN"];
const HELPER: &[&str] = &["apiKeyHelper"];
/// Every setting setup owns.
const OWNED: &[&[&str]] = &[BASE_URL, TOKEN, HELPER];

/// The helper command that prints the key from the variable `name`.
fn helper(name: &str) -> String {
    format!("printenv {name}")
}

impl Client for ClaudeCode {
    fn name(&self) -> &'static str {
        "claude-code"
    }

    fn title(&self) -> &'static str {
        "Claude Code"
    }

    fn path(&self, dirs: &UserDirs, env: &dyn Env) -> PathBuf {
        env.get("CLAUDE_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| dirs.home.join(".claude"))
            .join("settings.json")
    }

    fn installed(&self, dirs: &UserDirs, env: &dyn Env) -> bool {
        self.path(dirs, env).parent().is_some_and(|d| d.is_dir())
            || UserDirs::on_path(env, "claude")
    }

    fn apply(&self, text: &str, target: &Target) -> Result<String, EditError> {
        let mut file = JsonFile::parse(text)?;
        file.set(BASE_URL, Value::String(target.origin.clone()))?;
        let blank = JsonFile::parse("")?;
        match &target.key {
            KeyRef::Placeholder => {
                file.set(TOKEN, Value::String(PLACEHOLDER_KEY.into()))?;
                file.restore(HELPER, &blank);
            }
            KeyRef::Literal(key) => {
                file.set(TOKEN, Value::String(key.expose().into()))?;
                file.restore(HELPER, &blank);
            }
            KeyRef::Env(name) => {
                // A token in `env` would win over the helper.
                file.restore(TOKEN, &blank);
                file.set(HELPER, Value::String(helper(name)))?;
            }
        }
        Ok(file.render())
    }

    fn remove(&self, text: &str, original: &str) -> Result<String, EditError> {
        let mut file = JsonFile::parse(text)?;
        let original = JsonFile::parse(original)?;
        for path in OWNED {
            file.restore(path, &original);
        }
        Ok(file.render())
    }

    fn inspect(&self, text: &str) -> Result<Option<Pointing>, EditError> {
        let file = JsonFile::parse(text)?;
        let Some(base_url) = file.get(BASE_URL).and_then(Value::as_str) else {
            return Ok(None);
        };
        let string = |path: &[&str]| file.get(path).and_then(Value::as_str).map(str::to_string);
        let key = match (string(TOKEN), string(HELPER)) {
            (Some(token), _) => KeySetting::Literal(crate::secret::Secret::new(token)),
            (None, Some(command)) => match command.strip_prefix("printenv ") {
                Some(name) => KeySetting::Env(name.trim().to_string()),
                // Another helper of the user's: it supplies some key; doctor cannot tell which.
                None => KeySetting::Env(String::new()),
            },
            (None, None) => match string(&["env", "ANTHROPIC_API_KEY"]) {
                Some(key) => KeySetting::Literal(crate::secret::Secret::new(key)),
                None => KeySetting::None,
            },
        };
        Ok(Some(Pointing {
            base_url: base_url.to_string(),
            key,
        }))
    }

    fn next_steps(&self, target: &Target) -> Vec<String> {
        let mut steps = vec!["run `claude` as usual: it now talks to keyward".to_string()];
        if let KeyRef::Env(name) = &target.key {
            steps.push(format!(
                "Claude Code reads the gateway key with `{}`: export {name}=<one of your gateway keys> where you run it",
                helper(name)
            ));
        }
        steps
    }
}
