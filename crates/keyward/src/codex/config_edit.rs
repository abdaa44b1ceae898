//! Adds a Codex login to `config.toml` (a `[[codex.profiles]]` entry), as `keyward login --profile`
//! does for a new profile. The file is edited, not rewritten: its comments, order and layout stay
//! as the user left them (`toml_edit`), and it is replaced atomically (it may hold API keys).

use std::path::Path;

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table};

use crate::atomic_file;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigEditError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {source}")]
    Parse {
        path: String,
        #[source]
        source: toml_edit::TomlError,
    },
    #[error("{path}: {detail}; add the profile by hand: [[codex.profiles]] name = \"{name}\", home = \"{home}\"")]
    Shape {
        path: String,
        detail: &'static str,
        name: String,
        home: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Appends `[[codex.profiles]] name = NAME, home = HOME` to the config file at `path` (created
/// when there is none).
pub(crate) fn add_codex_profile(
    path: &Path,
    name: &str,
    home: &Path,
) -> Result<(), ConfigEditError> {
    let path_text = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(ConfigEditError::Read {
                path: path_text,
                source,
            })
        }
    };
    let edited = with_profile(&text, name, &home.display().to_string()).map_err(|e| match e {
        Edit::Parse(source) => ConfigEditError::Parse {
            path: path_text.clone(),
            source,
        },
        Edit::Shape(detail) => ConfigEditError::Shape {
            path: path_text.clone(),
            detail,
            name: name.to_string(),
            home: home.display().to_string(),
        },
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ConfigEditError::Write {
            path: path_text.clone(),
            source,
        })?;
    }
    atomic_file::replace(path, edited.as_bytes(), ".config-").map_err(|source| {
        ConfigEditError::Write {
            path: path_text,
            source,
        }
    })
}

enum Edit {
    Parse(toml_edit::TomlError),
    Shape(&'static str),
}

fn with_profile(text: &str, name: &str, home: &str) -> Result<String, Edit> {
    let mut document: DocumentMut = text.parse().map_err(Edit::Parse)?;
    let codex = document
        .entry("codex")
        .or_insert_with(|| {
            let mut table = Table::new();
            // `[codex]` is only written if it gets keys of its own.
            table.set_implicit(true);
            Item::Table(table)
        })
        .as_table_mut()
        .ok_or(Edit::Shape("`codex` is not a table"))?;
    let profiles = codex
        .entry("profiles")
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or(Edit::Shape(
            "`codex.profiles` is not written as [[codex.profiles]] tables",
        ))?;
    let mut entry = Table::new();
    entry.insert("name", toml_edit::value(name));
    entry.insert("home", toml_edit::value(home));
    profiles.push(entry);
    Ok(document.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry is appended; everything else of the file, comments included, stays as it was.
    #[test]
    fn appends_and_keeps_the_file_as_it_was() {
        let before = "# my gateway\nlisten = \"127.0.0.1:9000\"  # port\n\n[codex]\nbase_url = \"http://x\"\n\n[[codex.profiles]]\nname = \"work\"\nhome = \"~/.codex-work\"\n\n[gateway]\nhosts = [\"a\"]\n";
        let after =
            with_profile(before, "home", "/k/codex/home").unwrap_or_else(|_| panic!("edit failed"));
        assert!(
            after.starts_with("# my gateway\nlisten = \"127.0.0.1:9000\"  # port\n"),
            "{after}"
        );
        let parsed: toml::Table = toml::from_str(&after).unwrap_or_else(|e| panic!("{e}"));
        let profiles = parsed["codex"]["profiles"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(profiles.len(), 2, "{after}");
        assert_eq!(profiles[1]["name"].as_str(), Some("home"));
        assert_eq!(profiles[1]["home"].as_str(), Some("/k/codex/home"));
        assert_eq!(parsed["gateway"]["hosts"][0].as_str(), Some("a"));
        assert_eq!(parsed["codex"]["base_url"].as_str(), Some("http://x"));
    }

    #[test]
    fn starts_a_file_and_refuses_odd_shapes() {
        let fresh = with_profile("", "w", "/h").unwrap_or_else(|_| panic!("edit failed"));
        assert_eq!(fresh, "[[codex.profiles]]\nname = \"w\"\nhome = \"/h\"\n");
        assert!(matches!(
            with_profile("codex = 1\n", "w", "/h"),
            Err(Edit::Shape(_))
        ));
        assert!(matches!(
            with_profile("[codex]\nprofiles = []\n", "w", "/h"),
            Err(Edit::Shape(_))
        ));
        assert!(matches!(
            with_profile("[codex\n", "w", "/h"),
            Err(Edit::Parse(_))
        ));
    }
}
