//! Editing a tool's JSON settings: the object is read with its keys in their order and written
//! back with the file's own indentation, so a diff shows only keyward's settings.

use serde::Serialize;
use serde_json::{Map, Value};

use super::EditError;

/// A JSON settings file: its top-level object and the indentation it was written with.
pub(super) struct JsonFile {
    pub root: Map<String, Value>,
    indent: String,
}

impl JsonFile {
    /// `text` (empty: a new file) as an object.
    pub(super) fn parse(text: &str) -> Result<Self, EditError> {
        if text.trim().is_empty() {
            return Ok(Self {
                root: Map::new(),
                indent: "  ".into(),
            });
        }
        let root = match serde_json::from_str(text).map_err(|e| EditError::parse("JSON", e))? {
            Value::Object(root) => root,
            _ => return Err(EditError::Shape("it is not a JSON object".into())),
        };
        Ok(Self {
            root,
            indent: indentation(text),
        })
    }

    pub(super) fn render(&self) -> String {
        let mut bytes = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(self.indent.as_bytes());
        let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, formatter);
        // Serialising a map of JSON values into memory cannot fail.
        let _ = self.root.serialize(&mut serializer);
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        text.push('\n');
        text
    }

    /// The value at `path`, if there is one.
    pub(super) fn get(&self, path: &[&str]) -> Option<&Value> {
        let (last, parents) = path.split_last()?;
        let mut object = &self.root;
        for key in parents {
            object = object.get(*key)?.as_object()?;
        }
        object.get(*last)
    }

    /// Sets `path` to `value`, creating the objects on the way (a non-object in the way is an
    /// error: setup does not replace a setting of the user's it does not own).
    pub(super) fn set(&mut self, path: &[&str], value: Value) -> Result<(), EditError> {
        let Some((last, parents)) = path.split_last() else {
            return Ok(());
        };
        let mut object = &mut self.root;
        for key in parents {
            let entry = object
                .entry((*key).to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            object = entry.as_object_mut().ok_or_else(|| {
                EditError::Shape(format!(
                    "\"{key}\" is not an object, so setup cannot add to it"
                ))
            })?;
        }
        object.insert((*last).to_string(), value);
        Ok(())
    }

    /// Puts `path` back as `original` has it, or takes it out; an object on the way that setup's
    /// edit left empty and `original` did not have goes too.
    pub(super) fn restore(&mut self, path: &[&str], original: &JsonFile) {
        match original.get(path) {
            Some(value) => {
                let _ = self.set(path, value.clone());
            }
            None => self.remove(path, original),
        }
    }

    fn remove(&mut self, path: &[&str], original: &JsonFile) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut object = &mut self.root;
        for key in parents {
            match object.get_mut(*key).and_then(Value::as_object_mut) {
                Some(inner) => object = inner,
                None => return,
            }
        }
        object.shift_remove(*last);
        if object.is_empty() && !parents.is_empty() && original.get(parents).is_none() {
            self.remove(parents, original);
        }
    }
}

/// The indentation of the first indented line (two spaces when there is none).
fn indentation(text: &str) -> String {
    text.lines()
        .skip(1)
        .find_map(|line| {
            let indent: String = line
                .chars()
                .take_while(|c| *c == ' ' || *c == '\t')
                .collect();
            (!indent.is_empty()).then_some(indent)
        })
        .unwrap_or_else(|| "  ".into())
}
