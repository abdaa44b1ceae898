//! Editing a tool's YAML settings line by line: setup replaces, adds or takes out only the lines
//! of the keys it owns, so every other line (comments, blank lines, quoting) stays as the user
//! wrote it. A YAML parser reads the file before and after, so an edit never leaves a file the
//! tool can no longer read.

use std::ops::Range;

use yaml_rust2::{Yaml, YamlLoader};

use super::EditError;

/// The file's first document (`None` when it holds none: an empty file or only comments).
pub(super) fn parse(text: &str) -> Result<Option<Yaml>, EditError> {
    let mut documents = YamlLoader::load_from_str(text).map_err(|e| EditError::parse("YAML", e))?;
    if documents.is_empty() {
        return Ok(None);
    }
    match documents.swap_remove(0) {
        Yaml::Null => Ok(None),
        document @ Yaml::Hash(_) => Ok(Some(document)),
        _ => Err(EditError::Shape(
            "its top level is not a mapping of settings".into(),
        )),
    }
}

/// The string at `key` of a mapping.
pub(super) fn string<'y>(mapping: &'y Yaml, key: &str) -> Option<&'y str> {
    mapping[key].as_str()
}

/// The lines of top-level key `key`: its own line and every line that continues its value (more
/// indented lines, and sequence items a column-0 `-` starts), without the blank lines after it.
pub(super) fn key_span(lines: &[String], key: &str) -> Option<Range<usize>> {
    let start = lines.iter().position(|line| is_key_line(line, key))?;
    let mut end = start + 1;
    let mut last = start + 1;
    while end < lines.len() {
        let line = &lines[end];
        let continues = line.trim().is_empty()
            || line.starts_with([' ', '\t'])
            || line == "-"
            || line.starts_with("- ");
        if !continues {
            break;
        }
        end += 1;
        if !line.trim().is_empty() {
            last = end;
        }
    }
    Some(start..last)
}

/// Whether `line` starts the top-level key `key` (`key:` at column 0, its value after it).
pub(super) fn is_key_line(line: &str, key: &str) -> bool {
    let Some(rest) = line
        .strip_prefix(key)
        .or_else(|| line.strip_prefix(&format!("\"{key}\"")))
        .or_else(|| line.strip_prefix(&format!("'{key}'")))
    else {
        return false;
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.strip_prefix(':')
        .is_some_and(|value| value.is_empty() || value.starts_with([' ', '\t']))
}

/// The inline value after `key:` on its line, without a trailing comment.
pub(super) fn inline_value(line: &str) -> &str {
    let value = line.split_once(':').map_or("", |(_, value)| value);
    let value = match value.find(" #") {
        Some(at) => &value[..at],
        None => value,
    };
    value.trim()
}

/// `value` as a double-quoted YAML scalar (safe for URLs, keys and names alike).
pub(super) fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Sets top-level key `key` to `value` (a scalar already in YAML form): its lines are replaced,
/// or the key is added at the end.
pub(super) fn set_scalar(lines: &mut Vec<String>, key: &str, value: &str) {
    let line = format!("{key}: {value}");
    match key_span(lines, key) {
        Some(span) => {
            if lines[span.clone()] != [line.clone()] {
                lines.splice(span, [line]);
            }
        }
        None => lines.push(line),
    }
}

/// Puts top-level key `key` back as `original` has it, or takes it out.
pub(super) fn restore_key(lines: &mut Vec<String>, original: &[String], key: &str) {
    let before: Vec<String> = key_span(original, key)
        .map(|span| original[span].to_vec())
        .unwrap_or_default();
    match key_span(lines, key) {
        Some(span) => {
            lines.splice(span, before);
        }
        None => lines.extend(before),
    }
}

/// Checks that `edited` is still YAML of the same kind (the edit of a file that parsed must too).
pub(super) fn check(edited: &str) -> Result<String, EditError> {
    parse(edited)?;
    Ok(edited.to_string())
}
