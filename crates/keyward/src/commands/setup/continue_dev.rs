//! Continue: `~/.continue/config.yaml`. Setup adds one entry named `keyward` to its `models`
//! list (Continue's `openai` provider with keyward as `apiBase`), editing only that entry's lines.
//! Continue resolves `${{ secrets.NAME }}` from `~/.continue/.env`, so a key kept out of the file
//! is referenced that way.

use std::path::PathBuf;

use super::yaml_lines::{self, quote};
use super::{join, lines};
use super::{Client, EditError, KeyRef, KeySetting, Pointing, Target, ENTRY, PLACEHOLDER_KEY};
use crate::commands::UserDirs;
use crate::env::Env;

pub(super) struct Continue;

const MODELS: &str = "models";
/// What a config file Continue itself did not write yet must start with.
const HEADER: &[&str] = &["name: Local Config", "version: 1.0.0", "schema: v1"];

/// The lines of setup's entry, its `-` at column `indent`.
fn entry(target: &Target, indent: usize) -> Vec<String> {
    let pad = " ".repeat(indent);
    let key = match &target.key {
        KeyRef::Placeholder => PLACEHOLDER_KEY.to_string(),
        KeyRef::Env(name) => format!("${{{{ secrets.{name} }}}}"),
        KeyRef::Literal(key) => key.expose().to_string(),
    };
    [
        format!("- name: {ENTRY}"),
        "  provider: openai".into(),
        format!("  model: {}", quote(&target.model)),
        format!("  apiBase: {}", quote(&target.openai_base())),
        format!("  apiKey: {}", quote(&key)),
        "  roles:".into(),
        "    - chat".into(),
        "    - edit".into(),
        "    - apply".into(),
    ]
    .into_iter()
    .map(|line| format!("{pad}{line}"))
    .collect()
}

/// Where the `models` block is and how its items are indented.
struct Block {
    /// The `models:` line.
    key: usize,
    /// Past its last line.
    end: usize,
    /// The column of its items' `-`.
    indent: usize,
}

fn block(lines: &[String]) -> Result<Option<Block>, EditError> {
    let Some(span) = yaml_lines::key_span(lines, MODELS) else {
        return Ok(None);
    };
    match yaml_lines::inline_value(&lines[span.start]) {
        "" | "[]" => {}
        _ => {
            return Err(EditError::Shape(
                "its `models` list is written on one line; setup edits only a list of one item per line".into(),
            ))
        }
    }
    let indent = lines[span.start + 1..span.end]
        .iter()
        .find(|line| line.trim_start().starts_with('-'))
        .map_or(2, |line| line.len() - line.trim_start().len());
    Ok(Some(Block {
        key: span.start,
        end: span.end,
        indent,
    }))
}

/// The lines of the item named `keyward` in the block.
fn our_item(lines: &[String], block: &Block) -> Option<std::ops::Range<usize>> {
    let starts: Vec<usize> = (block.key + 1..block.end)
        .filter(|&i| {
            let line = &lines[i];
            line.len() - line.trim_start().len() == block.indent
                && line.trim_start().starts_with('-')
        })
        .collect();
    starts.iter().enumerate().find_map(|(n, &start)| {
        let end = starts.get(n + 1).copied().unwrap_or(block.end);
        let named = lines[start..end].iter().any(|line| {
            let field = line.trim_start().trim_start_matches("- ").trim();
            field == format!("name: {ENTRY}") || field == format!("name: \"{ENTRY}\"")
        });
        named.then_some(start..end)
    })
}

/// `lines` without setup's entry (and without a `models:` it leaves empty, unless `original`
/// had one).
fn without_entry(mut lines: Vec<String>, original: &[String]) -> Result<Vec<String>, EditError> {
    let Some(found) = block(&lines)? else {
        return Ok(lines);
    };
    if let Some(item) = our_item(&lines, &found) {
        lines.drain(item);
    }
    if let Some(left) = block(&lines)? {
        if left.end == left.key + 1 {
            match yaml_lines::key_span(original, MODELS) {
                None => {
                    lines.remove(left.key);
                }
                Some(span) => lines[left.key] = original[span.start].clone(),
            }
        }
    }
    Ok(lines)
}

impl Client for Continue {
    fn name(&self) -> &'static str {
        "continue"
    }

    fn title(&self) -> &'static str {
        "Continue"
    }

    fn path(&self, dirs: &UserDirs, _env: &dyn Env) -> PathBuf {
        dirs.home.join(".continue").join("config.yaml")
    }

    fn installed(&self, dirs: &UserDirs, env: &dyn Env) -> bool {
        self.path(dirs, env).parent().is_some_and(|d| d.is_dir())
    }

    fn apply(&self, text: &str, target: &Target) -> Result<String, EditError> {
        let parsed = yaml_lines::parse(text)?;
        let mut lines = lines(text);
        if parsed.is_none() {
            lines.extend(HEADER.iter().map(|line| line.to_string()));
        }
        let found = match block(&lines)? {
            Some(found) => found,
            None => {
                lines.push(format!("{MODELS}:"));
                Block {
                    key: lines.len() - 1,
                    end: lines.len(),
                    indent: 2,
                }
            }
        };
        if yaml_lines::inline_value(&lines[found.key]) == "[]" {
            lines[found.key] = format!("{MODELS}:");
        }
        let item = entry(target, found.indent);
        match our_item(&lines, &found) {
            Some(range) => {
                if lines[range.clone()] != item[..] {
                    lines.splice(range, item);
                }
            }
            None => {
                lines.splice(found.end..found.end, item);
            }
        }
        yaml_lines::check(&join(&lines))
    }

    fn remove(&self, text: &str, original: &str) -> Result<String, EditError> {
        yaml_lines::parse(text)?;
        let original_lines = lines(original);
        let mut lines = without_entry(lines(text), &original_lines)?;
        // The entry the file had before setup, if it had one by that name.
        if let Some(before) = block(&original_lines)?
            .and_then(|b| our_item(&original_lines, &b).map(|range| original_lines[range].to_vec()))
        {
            match block(&lines)? {
                Some(found) => {
                    lines.splice(found.end..found.end, before);
                }
                None => {
                    lines.push(format!("{MODELS}:"));
                    lines.extend(before);
                }
            }
        }
        if original.trim().is_empty() && lines.iter().map(String::as_str).eq(HEADER.iter().copied())
        {
            lines.clear();
        }
        yaml_lines::check(&join(&lines))
    }

    fn inspect(&self, text: &str) -> Result<Option<Pointing>, EditError> {
        let Some(settings) = yaml_lines::parse(text)? else {
            return Ok(None);
        };
        let Some(models) = settings[MODELS].as_vec() else {
            return Ok(None);
        };
        let Some(model) = models.iter().find(|m| m["name"].as_str() == Some(ENTRY)) else {
            return Ok(None);
        };
        let key = match model["apiKey"].as_str() {
            None => KeySetting::None,
            Some(key) => match key
                .trim()
                .strip_prefix("${{")
                .and_then(|k| k.strip_suffix("}}"))
                .and_then(|k| k.trim().strip_prefix("secrets."))
            {
                Some(name) => KeySetting::Stored(name.trim().to_string()),
                None => KeySetting::Literal(crate::secret::Secret::new(key)),
            },
        };
        Ok(Some(Pointing {
            base_url: model["apiBase"].as_str().unwrap_or_default().to_string(),
            key,
        }))
    }

    fn next_steps(&self, target: &Target) -> Vec<String> {
        let mut steps = vec![format!(
            "in Continue, choose the model `{ENTRY}` (Continue reloads config.yaml by itself)"
        )];
        if let KeyRef::Env(name) = &target.key {
            steps.push(format!(
                "Continue reads the gateway key from ~/.continue/.env: add the line {name}=<one of your gateway keys> there (and keep that file 0600)"
            ));
        }
        steps
    }
}
