//! The Codex CLI: a profile `keyward` (`codex --profile keyward`) with a model provider
//! `[model_providers.keyward]` (keyward's Responses endpoint, `wire_api = "responses"`).
//!
//! The Codex CLI 0.169 layers `$CODEX_HOME/<name>.config.toml` over `config.toml` for
//! `--profile <name>`, and refuses `--profile` while `config.toml` still holds a legacy
//! `[profiles.<name>]` table; so the profile is `$CODEX_HOME/keyward.config.toml`, and
//! `config.toml` (the user's settings) and `auth.json` (the login keyward may be serving) are not
//! touched. `toml_edit` keeps the comments and formatting of a profile file the user edited.

use std::path::PathBuf;

use toml_edit::{value, DocumentMut, Item, Table};

use super::{Client, EditError, KeyRef, KeySetting, Pointing, Target, ENTRY};
use crate::commands::UserDirs;
use crate::env::Env;

pub(super) struct Codex;

const PROVIDERS: &str = "model_providers";
/// The profile's own settings, at the top of its file.
const TOP: &[&str] = &["model_provider", "model"];

fn parse(text: &str) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>()
        .map_err(|e| EditError::parse("TOML", e))
}

/// The table `parent` (created as an implicit table, printed only through its children).
fn parent<'d>(document: &'d mut DocumentMut, name: &str) -> Result<&'d mut Table, EditError> {
    let item = document.entry(name).or_insert_with(|| {
        let mut table = Table::new();
        table.set_implicit(true);
        Item::Table(table)
    });
    item.as_table_mut().ok_or_else(|| {
        EditError::Shape(format!(
            "`{name}` is not a table, so setup cannot add to it"
        ))
    })
}

/// Sets `parent.ENTRY`'s keys to `entries` (other keys the user added there stay), in place so
/// the table keeps its position in the file.
fn set_entry(
    document: &mut DocumentMut,
    name: &str,
    entries: &[(&str, Option<String>)],
) -> Result<(), EditError> {
    let table = parent(document, name)?;
    let entry = table
        .entry(ENTRY)
        .or_insert_with(|| Item::Table(Table::new()));
    let entry = entry.as_table_mut().ok_or_else(|| {
        EditError::Shape(format!(
            "`{name}.{ENTRY}` is not a table, so setup cannot set it"
        ))
    })?;
    for (key, wanted) in entries {
        match wanted {
            Some(text) => {
                if entry.get(key).and_then(Item::as_str) != Some(text.as_str()) {
                    entry[*key] = value(text.as_str());
                }
            }
            None => {
                entry.remove(key);
            }
        }
    }
    Ok(())
}

/// Puts `name.ENTRY` back as `original` has it, or takes it out (with its parent, if setup's
/// entry was all it held and `original` had no such table).
fn restore(document: &mut DocumentMut, original: &DocumentMut, name: &str) {
    let before = original
        .get(name)
        .and_then(Item::as_table)
        .and_then(|t| t.get(ENTRY))
        .cloned();
    let Some(table) = document.get_mut(name).and_then(Item::as_table_mut) else {
        if let Some(before) = before {
            if let Ok(table) = parent(document, name) {
                table.insert(ENTRY, before);
            }
        }
        return;
    };
    match before {
        Some(before) => {
            table.insert(ENTRY, before);
        }
        None => {
            table.remove(ENTRY);
            if table.is_empty() && original.get(name).is_none() {
                document.remove(name);
            }
        }
    }
}

impl Client for Codex {
    fn name(&self) -> &'static str {
        "codex"
    }

    fn title(&self) -> &'static str {
        "Codex CLI"
    }

    fn path(&self, dirs: &UserDirs, env: &dyn Env) -> PathBuf {
        env.get(crate::codex::HOME_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| dirs.home.join(".codex"))
            .join(format!("{ENTRY}.config.toml"))
    }

    fn installed(&self, dirs: &UserDirs, env: &dyn Env) -> bool {
        UserDirs::on_path(env, "codex")
            || self.path(dirs, env).with_file_name("config.toml").is_file()
    }

    fn apply(&self, text: &str, target: &Target) -> Result<String, EditError> {
        let mut document = parse(text)?;
        let (env_key, token) = match &target.key {
            KeyRef::Placeholder => (None, None),
            KeyRef::Env(name) => (Some(name.clone()), None),
            KeyRef::Literal(key) => (None, Some(key.expose().to_string())),
        };
        set_entry(
            &mut document,
            PROVIDERS,
            &[
                ("name", Some(ENTRY.to_string())),
                ("base_url", Some(target.openai_base())),
                ("wire_api", Some("responses".into())),
                ("env_key", env_key),
                ("experimental_bearer_token", token),
            ],
        )?;
        for (key, wanted) in TOP.iter().zip([ENTRY, target.model.as_str()]) {
            if document.get(key).and_then(Item::as_str) != Some(wanted) {
                document.insert(key, value(wanted));
            }
        }
        Ok(document.to_string())
    }

    fn remove(&self, text: &str, original: &str) -> Result<String, EditError> {
        let mut document = parse(text)?;
        let original = parse(original)?;
        restore(&mut document, &original, PROVIDERS);
        for key in TOP {
            match original.get(key) {
                Some(before) => {
                    document.insert(key, before.clone());
                }
                None => {
                    document.remove(key);
                }
            }
        }
        Ok(document.to_string())
    }

    fn inspect(&self, text: &str) -> Result<Option<Pointing>, EditError> {
        let document = parse(text)?;
        let Some(provider) = document
            .get(PROVIDERS)
            .and_then(|p| p.get(ENTRY))
            .and_then(Item::as_table_like)
        else {
            return Ok(None);
        };
        let string = |key: &str| provider.get(key).and_then(Item::as_str).map(str::to_string);
        let key = match (string("env_key"), string("experimental_bearer_token")) {
            (Some(name), _) => KeySetting::Env(name),
            (None, Some(token)) => KeySetting::Literal(crate::secret::Secret::new(token)),
            (None, None) => KeySetting::None,
        };
        Ok(Some(Pointing {
            base_url: string("base_url").unwrap_or_default(),
            key,
        }))
    }

    /// The CLI refuses `--profile keyward` while `config.toml` still selects or defines a profile
    /// of that name the old way.
    fn conflict(&self, dirs: &UserDirs, env: &dyn Env) -> Option<String> {
        let config = self.path(dirs, env).with_file_name("config.toml");
        let document = parse(&std::fs::read_to_string(&config).ok()?).ok()?;
        let table = document
            .get("profiles")
            .and_then(|p| p.get(ENTRY))
            .is_some();
        let selector = document.get("profile").and_then(Item::as_str) == Some(ENTRY);
        (table || selector).then(|| {
            format!(
                "{} holds a legacy `[profiles.{ENTRY}]` table or `profile = \"{ENTRY}\"`, and the Codex CLI refuses `--profile {ENTRY}` while it does: remove them (the profile is {} now)",
                config.display(),
                self.path(dirs, env).display()
            )
        })
    }

    fn next_steps(&self, target: &Target) -> Vec<String> {
        let mut steps = vec![format!(
            "run `codex --profile {ENTRY}` (or `alias codex='codex --profile {ENTRY}'` to make it your default)"
        )];
        if let KeyRef::Env(name) = &target.key {
            steps.push(format!(
                "the Codex CLI sends the gateway key from ${name}: export {name}=<one of your gateway keys> where you run it"
            ));
        }
        steps
    }
}
