//! `keyward setup shell`: the variables the OpenAI and Anthropic SDKs (and most tools built on
//! them) read, printed for the user to paste or eval, or kept in a file the user names (a block
//! between marker lines, replaced in place on the next run and taken out by `--undo`).
//!
//! The lines work in sh, bash, zsh and fish alike (`export NAME="value"`, `$NAME`).

use std::path::Path;

use super::{Client, EditError, KeyRef, KeySetting, Pointing, Target, PLACEHOLDER_KEY};
use crate::cli::exit;
use crate::commands::UserDirs;
use crate::env::Env;

pub(super) struct Shell;

const BEGIN: &str = "# >>> keyward setup >>>";
const END: &str = "# <<< keyward setup <<<";

/// The export lines, between the markers.
fn block(target: &Target) -> Vec<String> {
    let key = match &target.key {
        KeyRef::Placeholder => PLACEHOLDER_KEY.to_string(),
        KeyRef::Env(name) => format!("${name}"),
        KeyRef::Literal(key) => key.expose().to_string(),
    };
    let export = |name: &str, value: &str| format!("export {name}=\"{value}\"");
    vec![
        BEGIN.to_string(),
        export("OPENAI_BASE_URL", &target.openai_base()),
        export("OPENAI_API_KEY", &key),
        export("ANTHROPIC_BASE_URL", &target.origin),
        export("ANTHROPIC_API_KEY", &key),
        END.to_string(),
    ]
}

/// The lines of the block in `lines`, markers included.
fn span(lines: &[String]) -> Option<std::ops::Range<usize>> {
    let start = lines.iter().position(|l| l.trim() == BEGIN)?;
    let end = lines[start..].iter().position(|l| l.trim() == END)? + start + 1;
    Some(start..end)
}

pub(super) fn run(file: Option<&Path>, target: &Target, print: bool, undo: bool) -> u8 {
    match file {
        Some(path) => {
            let outcome = if undo {
                super::undo(&Shell, path, target, print)
            } else {
                super::apply(&Shell, path, target, print)
            };
            match outcome {
                Ok(outcome) => {
                    super::report(&Shell, path, &outcome, target, undo);
                    exit::OK
                }
                Err(e) => {
                    eprintln!("keyward: {e}");
                    exit::FAILURE
                }
            }
        }
        None if undo => {
            eprintln!("keyward: `setup shell --undo` needs --file: the exports were only printed");
            exit::USAGE
        }
        None => {
            for line in block(target) {
                let line = match &target.key {
                    KeyRef::Literal(key) if print => line.replace(key.expose(), "<gateway key>"),
                    _ => line,
                };
                println!("{line}");
            }
            for step in Shell.next_steps(target) {
                println!("# {step}");
            }
            exit::OK
        }
    }
}

impl Client for Shell {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn title(&self) -> &'static str {
        "shell"
    }

    /// The file is the user's choice (`--file`); there is no default.
    fn path(&self, dirs: &UserDirs, _env: &dyn Env) -> std::path::PathBuf {
        dirs.home.join(".profile")
    }

    fn installed(&self, _dirs: &UserDirs, _env: &dyn Env) -> bool {
        false
    }

    fn apply(&self, text: &str, target: &Target) -> Result<String, EditError> {
        let mut lines = super::lines(text);
        let new = block(target);
        match span(&lines) {
            Some(range) => {
                lines.splice(range, new);
            }
            None => lines.extend(new),
        }
        Ok(super::join(&lines))
    }

    fn remove(&self, text: &str, original: &str) -> Result<String, EditError> {
        let mut lines = super::lines(text);
        let original = super::lines(original);
        let before = span(&original)
            .map(|r| original[r].to_vec())
            .unwrap_or_default();
        if let Some(range) = span(&lines) {
            lines.splice(range, before);
        }
        Ok(super::join(&lines))
    }

    fn inspect(&self, text: &str) -> Result<Option<Pointing>, EditError> {
        let lines = super::lines(text);
        let Some(range) = span(&lines) else {
            return Ok(None);
        };
        let value = |name: &str| {
            lines[range.clone()].iter().find_map(|line| {
                line.strip_prefix(&format!("export {name}=\""))
                    .and_then(|v| v.strip_suffix('"'))
                    .map(str::to_string)
            })
        };
        let key = match value("OPENAI_API_KEY") {
            None => KeySetting::None,
            Some(key) => match key.strip_prefix('$') {
                Some(name) => KeySetting::Env(name.to_string()),
                None => KeySetting::Literal(crate::secret::Secret::new(key)),
            },
        };
        Ok(Some(Pointing {
            base_url: value("OPENAI_BASE_URL").unwrap_or_default(),
            key,
        }))
    }

    fn next_steps(&self, target: &Target) -> Vec<String> {
        let mut steps = vec![
            "start keyward as a service (`keyward service install`), not from a shell with these variables: `keyward serve` would take OPENAI_API_KEY and ANTHROPIC_API_KEY as API-key profiles".to_string(),
        ];
        if let KeyRef::Env(name) = &target.key {
            steps.push(format!(
                "the SDKs get the gateway key from ${name}: export {name}=<one of your gateway keys> before these lines"
            ));
        }
        steps
    }
}
