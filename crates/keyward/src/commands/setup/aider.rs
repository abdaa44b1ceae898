//! Aider: `~/.aider.conf.yml`, whose keys are Aider's long options. Setup sets `openai-api-base`
//! (keyward), `model` (`openai/<model>`: LiteLLM's name for a model of an OpenAI-compatible API)
//! and, when it is to be written, `openai-api-key`. Aider cannot refer to a variable from this
//! file; it reads `AIDER_OPENAI_API_KEY` from the environment itself, which does not collide with
//! the `OPENAI_API_KEY` keyward would serve as an API-key profile.

use std::path::PathBuf;

use super::yaml_lines::{self, quote};
use super::{join, lines};
use super::{Client, EditError, KeyRef, KeySetting, Pointing, Target, PLACEHOLDER_KEY};
use crate::commands::UserDirs;
use crate::env::Env;

pub(super) struct Aider;

const BASE: &str = "openai-api-base";
const KEY: &str = "openai-api-key";
const MODEL: &str = "model";
/// The variable Aider reads `--openai-api-key` from.
const KEY_VARIABLE: &str = "AIDER_OPENAI_API_KEY";

impl Client for Aider {
    fn name(&self) -> &'static str {
        "aider"
    }

    fn title(&self) -> &'static str {
        "Aider"
    }

    fn path(&self, dirs: &UserDirs, _env: &dyn Env) -> PathBuf {
        dirs.home.join(".aider.conf.yml")
    }

    fn installed(&self, dirs: &UserDirs, env: &dyn Env) -> bool {
        self.path(dirs, env).is_file() || UserDirs::on_path(env, "aider")
    }

    fn apply(&self, text: &str, target: &Target) -> Result<String, EditError> {
        yaml_lines::parse(text)?;
        let mut lines = lines(text);
        yaml_lines::set_scalar(&mut lines, BASE, &quote(&target.openai_base()));
        yaml_lines::set_scalar(
            &mut lines,
            MODEL,
            &quote(&format!("openai/{}", target.model)),
        );
        match &target.key {
            KeyRef::Placeholder => yaml_lines::set_scalar(&mut lines, KEY, &quote(PLACEHOLDER_KEY)),
            KeyRef::Literal(key) => yaml_lines::set_scalar(&mut lines, KEY, &quote(key.expose())),
            // A key in the file would win over the one in the environment.
            KeyRef::Env(_) => yaml_lines::restore_key(&mut lines, &[], KEY),
        }
        yaml_lines::check(&join(&lines))
    }

    fn remove(&self, text: &str, original: &str) -> Result<String, EditError> {
        yaml_lines::parse(text)?;
        let original = lines(original);
        let mut lines = lines(text);
        for key in [BASE, MODEL, KEY] {
            yaml_lines::restore_key(&mut lines, &original, key);
        }
        yaml_lines::check(&join(&lines))
    }

    fn inspect(&self, text: &str) -> Result<Option<Pointing>, EditError> {
        let Some(settings) = yaml_lines::parse(text)? else {
            return Ok(None);
        };
        let Some(base_url) = yaml_lines::string(&settings, BASE) else {
            return Ok(None);
        };
        let key = match yaml_lines::string(&settings, KEY) {
            Some(key) => KeySetting::Literal(crate::secret::Secret::new(key)),
            None => KeySetting::Env(KEY_VARIABLE.into()),
        };
        Ok(Some(Pointing {
            base_url: base_url.to_string(),
            key,
        }))
    }

    fn next_steps(&self, target: &Target) -> Vec<String> {
        let mut steps = vec!["run `aider` as usual: it now talks to keyward".to_string()];
        if let KeyRef::Env(name) = &target.key {
            steps.push(format!(
                "Aider takes the gateway key from ${KEY_VARIABLE}: export {KEY_VARIABLE}=\"${name}\" where you run it"
            ));
        }
        steps
    }
}
