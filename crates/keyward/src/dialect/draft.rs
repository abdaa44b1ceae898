//! A Responses request under construction from an OpenAI-style request, and the request fields
//! Chat Completions and legacy completions read the same way (`stop`, `stream_options`, `n`), so
//! the two dialects refuse and report them alike.

use serde_json::{Map, Value};

use super::fields::{expect, json_kind, Expected};
use super::Invalid;

/// A Responses request under construction, with what the client sent that it cannot carry.
pub(crate) struct Draft {
    pub body: Map<String, Value>,
    pub dropped: Vec<String>,
    pub renamed: Vec<(&'static str, &'static str)>,
}

impl Draft {
    pub(super) fn new(model: &str) -> Self {
        let mut body = Map::new();
        body.insert("model".into(), model.into());
        Self {
            body,
            dropped: Vec::new(),
            renamed: Vec::new(),
        }
    }

    /// Reports a client field keyward cannot carry, unless its value asks for nothing (null,
    /// `false`, 0, empty): LangChain and others send such defaults with every request.
    pub(super) fn drop_field(&mut self, name: &str, value: &Value) {
        let asks_nothing = match value {
            Value::Null => true,
            Value::Bool(set) => !set,
            Value::Number(number) => number.as_f64() == Some(0.0),
            Value::String(text) => text.is_empty(),
            Value::Array(list) => list.is_empty(),
            Value::Object(map) => map.is_empty(),
        };
        if !asks_nothing {
            self.report(name);
        }
    }

    /// Reports a dropped field once.
    pub(super) fn report(&mut self, name: impl Into<String>) {
        let name = name.into();
        if !self.dropped.contains(&name) {
            self.dropped.push(name);
        }
    }

    /// Carries a field under its own name; null counts as absent.
    pub(super) fn copy(&mut self, name: &str, value: &Value) {
        if !value.is_null() {
            self.body.insert(name.into(), value.clone());
        }
    }

    /// Carries a field that must be of the `expected` type (a 400 naming it when not).
    pub(super) fn copy_checked(
        &mut self,
        name: &str,
        value: &Value,
        expected: Expected,
    ) -> Result<(), Invalid> {
        expect(name, Some(value), expected)?;
        self.copy(name, value);
        Ok(())
    }

    /// Reports a documented field keyward cannot carry, as [`Draft::drop_field`]; one that is
    /// not of the `expected` type is refused (a 400 naming it), as the API it belongs to would.
    pub(super) fn drop_checked(
        &mut self,
        name: &str,
        value: &Value,
        expected: Expected,
    ) -> Result<(), Invalid> {
        expect(name, Some(value), expected)?;
        self.drop_field(name, value);
        Ok(())
    }

    /// `max_output_tokens` from the first of the client's `names` that is set.
    pub(super) fn max_tokens(
        &mut self,
        request: &Map<String, Value>,
        names: &[&'static str],
    ) -> Result<(), Invalid> {
        for &name in names {
            match request.get(name) {
                None | Some(Value::Null) => continue,
                Some(Value::Number(n)) if n.as_u64().is_some() => {
                    self.body
                        .insert("max_output_tokens".into(), Value::Number(n.clone()));
                    self.renamed.push(("max_output_tokens", name));
                    return Ok(());
                }
                Some(other) => {
                    return Err(Invalid::at(
                        name,
                        format!(
                            "`{name}` must be a positive integer (a token count), not {}",
                            describe(other)
                        ),
                    ))
                }
            }
        }
        Ok(())
    }
}

/// The kind of a value, or the number itself, for error messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        other => json_kind(other).to_string(),
    }
}

/// `stop`: one string or up to four, applied by keyward since the Responses API has no stop
/// sequences.
pub(crate) fn stop_sequences(value: &Value) -> Result<Vec<String>, Invalid> {
    let stops = match value {
        Value::Null => Vec::new(),
        Value::String(stop) => vec![stop.clone()],
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, stop)| match stop {
                Value::String(stop) => Ok(stop.clone()),
                other => Err(Invalid::at(
                    format!("stop[{i}]"),
                    format!("stop sequences must be strings, not {}", json_kind(other)),
                )),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(Invalid::at(
                "stop",
                format!(
                    "`stop` must be a string or an array of up to 4 strings, not {}",
                    json_kind(other)
                ),
            ))
        }
    };
    if stops.len() > 4 {
        return Err(Invalid::at(
            "stop",
            format!(
                "`stop` holds {} sequences; at most 4 are allowed",
                stops.len()
            ),
        ));
    }
    Ok(stops)
}

/// `stream_options.include_usage`: whether a streamed answer ends with a usage chunk.
pub(crate) fn include_usage_option(value: &Value) -> Result<bool, Invalid> {
    match value {
        Value::Null => Ok(false),
        Value::Object(options) => match options.get("include_usage") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(include)) => Ok(*include),
            Some(other) => Err(Invalid::at(
                "stream_options.include_usage",
                format!(
                    "`stream_options.include_usage` must be a boolean, not {}",
                    json_kind(other)
                ),
            )),
        },
        other => Err(Invalid::at(
            "stream_options",
            format!(
                "`stream_options` must be an object, not {}",
                json_kind(other)
            ),
        )),
    }
}

/// `n` (or `best_of`): keyward answers one choice per request.
pub(crate) fn single_choice(name: &'static str, value: &Value) -> Result<(), Invalid> {
    let count = match value {
        Value::Null => return Ok(()),
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    match count {
        Some(1.0) => Ok(()),
        Some(count) if count > 1.0 && count.fract() == 0.0 => Err(Invalid::at(
            name,
            format!(
                "`{name}` is {count}, but keyward answers one choice per request: send {count} requests instead"
            ),
        )),
        _ => Err(Invalid::at(
            name,
            format!("`{name}` must be a positive integer, not {}", describe(value)),
        )),
    }
}
