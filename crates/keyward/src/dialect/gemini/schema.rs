//! Gemini's schemas as the JSON Schema the Responses API reads.
//!
//! Gemini takes two kinds: its OpenAPI-style `Schema` (`parameters`, `responseSchema`), whose
//! types are upper-case (`"OBJECT"`, `"STRING"`) and whose nullability is a flag
//! (`nullable: true`), and plain JSON Schema (`parametersJsonSchema`, `responseJsonSchema`), in
//! which clients still write upper-case types (the Gemini CLI's router does). Both are walked
//! through their schema keywords only, so a property named `type` or a value in an `enum` is
//! never touched.

use serde_json::{Map, Value};

use super::keys::camel;

/// Keywords whose value is one schema (or, for `items`, possibly a list of them).
const ONE_SCHEMA: &[&str] = &[
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "additionalItems",
    "unevaluatedItems",
    "unevaluatedProperties",
];
/// Keywords whose value is a list of schemas.
const SCHEMA_LISTS: &[&str] = &["anyOf", "oneOf", "allOf", "prefixItems"];
/// Keywords whose value maps names to schemas.
const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

/// Which kind of schema is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Plain JSON Schema: only upper-case type names change.
    Json,
    /// Gemini's OpenAPI-style `Schema`: field names may be snake_case, `nullable` becomes a
    /// `null` type, and `propertyOrdering` (Gemini's own ordering hint) goes.
    OpenApi,
}

/// A JSON Schema (`parametersJsonSchema`, `responseJsonSchema`), with upper-case type names
/// lower-cased.
pub(super) fn json_schema(schema: &Value) -> Value {
    convert(schema, Kind::Json)
}

/// Gemini's OpenAPI-style `Schema` (`parameters`, `responseSchema`) as JSON Schema.
pub(super) fn openapi_schema(schema: &Value) -> Value {
    convert(schema, Kind::OpenApi)
}

fn convert(schema: &Value, kind: Kind) -> Value {
    let Value::Object(object) = schema else {
        // `true`, `false`: schemas too, taken as they are.
        return schema.clone();
    };
    let mut out = Map::with_capacity(object.len());
    let mut nullable = false;
    for (key, value) in object {
        let key = match kind {
            Kind::Json => key.clone(),
            Kind::OpenApi => camel(key).into_owned(),
        };
        let value = match key.as_str() {
            "type" => type_names(value),
            "nullable" if kind == Kind::OpenApi => {
                nullable = value == &Value::Bool(true);
                continue;
            }
            "propertyOrdering" if kind == Kind::OpenApi => continue,
            name if ONE_SCHEMA.contains(&name) => match value {
                Value::Array(list) => Value::Array(list.iter().map(|s| convert(s, kind)).collect()),
                schema => convert(schema, kind),
            },
            name if SCHEMA_LISTS.contains(&name) => match value {
                Value::Array(list) => Value::Array(list.iter().map(|s| convert(s, kind)).collect()),
                other => other.clone(),
            },
            name if SCHEMA_MAPS.contains(&name) => match value {
                Value::Object(map) => Value::Object(
                    map.iter()
                        .map(|(name, schema)| (name.clone(), convert(schema, kind)))
                        .collect(),
                ),
                other => other.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key, value);
    }
    if nullable {
        let typed = match out.remove("type") {
            Some(Value::String(name)) if name != "null" => {
                Some(Value::Array(vec![Value::String(name), "null".into()]))
            }
            Some(Value::Array(mut names)) => {
                if !names.iter().any(|n| n == "null") {
                    names.push("null".into());
                }
                Some(Value::Array(names))
            }
            other => other,
        };
        if let Some(typed) = typed {
            out.insert("type".into(), typed);
        }
    }
    Value::Object(out)
}

/// A `type` (a name, or a list of names) with Gemini's upper-case names lower-cased;
/// `TYPE_UNSPECIFIED` is no type at all.
fn type_names(value: &Value) -> Value {
    let lower = |name: &str| match name {
        "STRING" | "NUMBER" | "INTEGER" | "BOOLEAN" | "ARRAY" | "OBJECT" | "NULL" => {
            Value::String(name.to_ascii_lowercase())
        }
        other => Value::String(other.to_string()),
    };
    match value {
        Value::String(name) => lower(name),
        Value::Array(names) => Value::Array(
            names
                .iter()
                .map(|name| match name {
                    Value::String(name) => lower(name),
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The Python SDK's `types.Schema` dump and the Gemini CLI's router schema read as JSON
    /// Schema; properties named like keywords and enum values stay as they are.
    #[test]
    fn upper_case_schemas_become_json_schema() {
        let schema = json!({
            "type": "OBJECT",
            "properties": {
                "type": {"type": "STRING", "enum": ["OBJECT", "STRING"]},
                "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "max_items": 3},
                "score": {"type": "INTEGER", "nullable": true},
                "either": {"any_of": [{"type": "NUMBER"}, {"type": "BOOLEAN"}]},
            },
            "required": ["type"],
            "property_ordering": ["type", "tags"],
        });
        assert_eq!(
            openapi_schema(&schema),
            json!({
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["OBJECT", "STRING"]},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                    "score": {"type": ["integer", "null"]},
                    "either": {"anyOf": [{"type": "number"}, {"type": "boolean"}]},
                },
                "required": ["type"],
            })
        );
        let router = json!({"type": "OBJECT", "properties": {"complexity_score": {"type": "INTEGER"}}, "required": ["complexity_score"]});
        assert_eq!(
            json_schema(&router),
            json!({"type": "object", "properties": {"complexity_score": {"type": "integer"}}, "required": ["complexity_score"]})
        );
        // JSON Schema's own snake_case-looking keywords are not renamed.
        let plain =
            json!({"type": "object", "properties": {"dir_path": {"type": "string"}}, "x_extra": 1});
        assert_eq!(json_schema(&plain), plain);
    }
}
