//! opencode: `$XDG_CONFIG_HOME/opencode/opencode.json` (default `~/.config/opencode`). Setup adds
//! one provider, `provider.keyward`, built on the AI SDK's OpenAI-compatible package, with
//! keyward's models; the user picks `keyward/<model>` in opencode. opencode substitutes
//! `{env:NAME}` in its config, so a key kept in the environment is referenced that way.

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use super::json_file::JsonFile;
use super::{Client, EditError, KeyRef, KeySetting, Pointing, Target, ENTRY, PLACEHOLDER_KEY};
use crate::commands::UserDirs;
use crate::env::Env;

pub(super) struct Opencode;

const PROVIDER: &[&str] = &["provider", ENTRY];
const SCHEMA: &str = "https://opencode.ai/config.json";

impl Client for Opencode {
    fn name(&self) -> &'static str {
        "opencode"
    }

    fn title(&self) -> &'static str {
        "opencode"
    }

    fn path(&self, dirs: &UserDirs, _env: &dyn Env) -> PathBuf {
        dirs.config.join("opencode").join("opencode.json")
    }

    fn installed(&self, dirs: &UserDirs, env: &dyn Env) -> bool {
        self.path(dirs, env).parent().is_some_and(|d| d.is_dir())
            || UserDirs::on_path(env, "opencode")
    }

    fn apply(&self, text: &str, target: &Target) -> Result<String, EditError> {
        let mut file = JsonFile::parse(text)?;
        if file.root.is_empty() {
            file.set(&["$schema"], Value::String(SCHEMA.into()))?;
        }
        let api_key = match &target.key {
            KeyRef::Placeholder => PLACEHOLDER_KEY.to_string(),
            KeyRef::Env(name) => format!("{{env:{name}}}"),
            KeyRef::Literal(key) => key.expose().to_string(),
        };
        let models: Map<String, Value> = target
            .models
            .iter()
            .map(|id| (id.clone(), json!({ "name": id })))
            .collect();
        file.set(
            PROVIDER,
            json!({
                "npm": "@ai-sdk/openai-compatible",
                "name": ENTRY,
                "options": { "baseURL": target.openai_base(), "apiKey": api_key },
                "models": models,
            }),
        )?;
        Ok(file.render())
    }

    fn remove(&self, text: &str, original: &str) -> Result<String, EditError> {
        let mut file = JsonFile::parse(text)?;
        let original_file = JsonFile::parse(original)?;
        file.restore(PROVIDER, &original_file);
        if original_file.root.is_empty() {
            // The `$schema` setup put in a file of its own.
            file.restore(&["$schema"], &original_file);
        }
        Ok(file.render())
    }

    fn inspect(&self, text: &str) -> Result<Option<Pointing>, EditError> {
        let file = JsonFile::parse(text)?;
        let Some(options) = file.get(&["provider", ENTRY, "options"]) else {
            return Ok(None);
        };
        let key = match options.get("apiKey").and_then(Value::as_str) {
            None => KeySetting::None,
            Some(key) => match key.strip_prefix("{env:").and_then(|k| k.strip_suffix('}')) {
                Some(name) => KeySetting::Env(name.to_string()),
                None => KeySetting::Literal(crate::secret::Secret::new(key)),
            },
        };
        Ok(Some(Pointing {
            base_url: options
                .get("baseURL")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            key,
        }))
    }

    fn next_steps(&self, target: &Target) -> Vec<String> {
        let mut steps = vec![format!(
            "in opencode, choose a model of the provider `{ENTRY}` (e.g. `opencode --model {ENTRY}/{}`)",
            target.model
        )];
        if let KeyRef::Env(name) = &target.key {
            steps.push(format!(
                "opencode reads the gateway key from ${name}: export {name}=<one of your gateway keys> where you run it"
            ));
        }
        steps
    }
}
