//! A Responses request's shape, read in one pass without building a tree: what keyward itself
//! needs of it (the model, whether it streams, the conversation's cache key) and what an
//! upstream's rules look at to decide whether the caller's bytes can go as they came
//! (`codex::backend::suits_as_is`). The prompt and the history's text are skipped, never copied:
//! a Codex CLI request is tens of KB, and reading it into a tree, or once per question asked of
//! it, cost more than the rest of proxying it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The kind of a JSON value, with the value when it is a boolean or a string worth keeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Number,
    /// A string; its text only where the shape keeps it (short fields the rules compare).
    Str(Option<String>),
    Array,
    Object,
}

impl Scalar {
    /// The string's text, if this is a kept string.
    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            Self::Str(Some(text)) => Some(text),
            _ => None,
        }
    }
}

/// A field expected to hold some structure: that structure, or the kind of value it was instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shaped<T> {
    Is(T),
    Not(Scalar),
}

/// The top level of a Responses request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RequestShape {
    pub model: Option<Scalar>,
    pub stream: Option<Scalar>,
    pub store: Option<Scalar>,
    pub include: Option<Shaped<Vec<Scalar>>>,
    pub input: Option<Shaped<Vec<Shaped<Item>>>>,
    pub tools: Option<Shaped<Vec<Shaped<Tool>>>>,
    pub tool_choice: Option<Shaped<Tagged>>,
    pub reasoning: Option<Shaped<Reasoning>>,
    pub prompt_cache_key: Option<Scalar>,
    /// Every other top-level field, with its value's kind (and the text of `service_tier`, the
    /// one whose value a rule reads).
    pub others: Vec<(String, Scalar)>,
    /// A top-level field sent twice: a tree keeps the last one, so only a tree may judge.
    pub repeated: bool,
}

/// An input item.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub kind: Option<Scalar>,
    pub role: Option<Scalar>,
    pub content: Option<Shaped<Vec<Shaped<Tagged>>>>,
    pub encrypted_content: bool,
    /// A field read here sent twice.
    pub repeated: bool,
}

/// A tool.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tool {
    pub kind: Option<Scalar>,
    /// Whether it has a `function` field (the Chat Completions shape).
    pub function: bool,
    pub repeated: bool,
}

/// An object read for its `type`, and whether it has a `name`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tagged {
    pub kind: Option<Scalar>,
    pub name: bool,
    pub repeated: bool,
}

/// The `reasoning` object.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Reasoning {
    pub generate_summary: bool,
    pub repeated: bool,
}

impl RequestShape {
    /// Reads `body`'s shape; `None` when it is not one JSON object.
    pub(crate) fn read(body: &[u8]) -> Option<Self> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let shape = deserializer.deserialize_map(RequestVisitor).ok()?;
        deserializer.end().ok()?;
        Some(shape)
    }
}

/// Reads any value as a [`Scalar`], keeping a string's text when `keep_text`.
#[derive(Clone, Copy)]
struct ScalarSeed {
    keep_text: bool,
}

/// For the short strings the rules compare (types, roles, the model).
const KEEP: ScalarSeed = ScalarSeed { keep_text: true };
/// For fields only the kind of matters.
const SKIP: ScalarSeed = ScalarSeed { keep_text: false };

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar, D::Error> {
        deserializer
            .deserialize_any(ShapeVisitor {
                keep_text: self.keep_text,
                structure: NoStructure,
            })
            .map(|shaped| match shaped {
                Shaped::Is(never) => match never {},
                Shaped::Not(scalar) => scalar,
            })
    }
}

/// What an object or an array must be read as, when it is one.
trait Structure<'de>: Copy {
    type Value;

    fn map<A: MapAccess<'de>>(self, map: &mut A) -> Result<Option<Self::Value>, A::Error> {
        let _ = map;
        Ok(None)
    }

    fn seq<A: SeqAccess<'de>>(self, seq: &mut A) -> Result<Option<Self::Value>, A::Error> {
        let _ = seq;
        Ok(None)
    }
}

/// Neither objects nor arrays have a structure: their kind is all there is.
#[derive(Clone, Copy)]
struct NoStructure;

enum Never {}

impl Structure<'_> for NoStructure {
    type Value = Never;
}

/// An array of what `T` reads.
#[derive(Clone, Copy)]
struct ListOf<T>(T);

impl<'de, T: DeserializeSeed<'de> + Copy> Structure<'de> for ListOf<T> {
    type Value = Vec<T::Value>;

    fn seq<A: SeqAccess<'de>>(self, seq: &mut A) -> Result<Option<Self::Value>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.0)? {
            items.push(item);
        }
        Ok(Some(items))
    }
}

/// Reads a value as `structure` when it is the object or array that reads as, else its kind.
#[derive(Clone, Copy)]
struct Shape<S>(S);

impl<'de, S: Structure<'de>> DeserializeSeed<'de> for Shape<S> {
    type Value = Shaped<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(ShapeVisitor {
            keep_text: false,
            structure: self.0,
        })
    }
}

struct ShapeVisitor<S> {
    keep_text: bool,
    structure: S,
}

impl<'de, S: Structure<'de>> Visitor<'de> for ShapeVisitor<S> {
    type Value = Shaped<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Shaped::Not(Scalar::Null))
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Shaped::Not(Scalar::Null))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Shaped::Not(Scalar::Bool(v)))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Shaped::Not(Scalar::Number))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Shaped::Not(Scalar::Number))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Shaped::Not(Scalar::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Shaped::Not(Scalar::Str(
            self.keep_text.then(|| v.to_string()),
        )))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        match self.structure.seq(&mut seq)? {
            Some(value) => Ok(Shaped::Is(value)),
            None => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Shaped::Not(Scalar::Array))
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match self.structure.map(&mut map)? {
            Some(value) => Ok(Shaped::Is(value)),
            None => {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Shaped::Not(Scalar::Object))
            }
        }
    }
}

/// An object read for a few fields (each with its reader), the others skipped; a read field sent
/// twice sets `repeated`.
macro_rules! object_structure {
    ($name:ident => $value:ident { $($field:literal => |$v:ident, $map:ident| $read:expr),* $(,)? }) => {
        #[derive(Clone, Copy)]
        struct $name;

        impl<'de> Structure<'de> for $name {
            type Value = $value;

            fn map<A: MapAccess<'de>>(self, map: &mut A) -> Result<Option<$value>, A::Error> {
                let mut value = $value::default();
                let mut seen = Vec::new();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        $(
                            $field => {
                                value.repeated |= seen.contains(&$field);
                                seen.push($field);
                                let $v = &mut value;
                                let $map = &mut *map;
                                $read;
                            }
                        )*
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Some(value))
            }
        }

        impl<'de> DeserializeSeed<'de> for $name {
            type Value = Shaped<$value>;

            fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
                Shape(self).deserialize(deserializer)
            }
        }
    };
}

object_structure!(ItemStructure => Item {
    "type" => |v, map| v.kind = Some(map.next_value_seed(KEEP)?),
    "role" => |v, map| v.role = Some(map.next_value_seed(KEEP)?),
    "content" => |v, map| v.content = Some(map.next_value_seed(Shape(ListOf(PartStructure)))?),
    "encrypted_content" => |v, map| {
        map.next_value::<IgnoredAny>()?;
        v.encrypted_content = true;
    },
});

object_structure!(PartStructure => Tagged {
    "type" => |v, map| v.kind = Some(map.next_value_seed(KEEP)?),
});

object_structure!(ToolStructure => Tool {
    "type" => |v, map| v.kind = Some(map.next_value_seed(KEEP)?),
    "function" => |v, map| {
        map.next_value::<IgnoredAny>()?;
        v.function = true;
    },
});

object_structure!(ChoiceStructure => Tagged {
    "type" => |v, map| v.kind = Some(map.next_value_seed(KEEP)?),
    "name" => |v, map| {
        map.next_value::<IgnoredAny>()?;
        v.name = true;
    },
});

object_structure!(ReasoningStructure => Reasoning {
    "generate_summary" => |v, map| {
        map.next_value::<IgnoredAny>()?;
        v.generate_summary = true;
    },
});

struct RequestVisitor;

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = RequestShape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RequestShape, A::Error> {
        let mut shape = RequestShape::default();
        let mut repeated = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            macro_rules! once {
                ($slot:expr, $seed:expr) => {{
                    let value = map.next_value_seed($seed)?;
                    repeated |= $slot.replace(value).is_some();
                }};
            }
            match key.as_ref() {
                "model" => once!(shape.model, KEEP),
                "stream" => once!(shape.stream, SKIP),
                "store" => once!(shape.store, SKIP),
                "prompt_cache_key" => once!(shape.prompt_cache_key, KEEP),
                "include" => once!(shape.include, Shape(ListOf(KEEP))),
                "input" => once!(shape.input, Shape(ListOf(ItemStructure))),
                "tools" => once!(shape.tools, Shape(ListOf(ToolStructure))),
                "tool_choice" => once!(shape.tool_choice, ChoiceStructure),
                "reasoning" => once!(shape.reasoning, ReasoningStructure),
                other => {
                    let seed = if other == "service_tier" { KEEP } else { SKIP };
                    let value = map.next_value_seed(seed)?;
                    repeated |= shape.others.iter().any(|(name, _)| name == other);
                    shape.others.push((other.to_string(), value));
                }
            }
        }
        shape.repeated = repeated;
        Ok(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One pass reads what the rules look at; the rest is skipped.
    #[test]
    fn reads_the_shape() {
        let shape = RequestShape::read(
            br#"{"model":"m","stream":true,"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]},"odd",{"type":"reasoning","encrypted_content":null}],
                "tools":[{"type":"function","function":{}}],"tool_choice":"auto","service_tier":"flex","instructions":"long text"}"#,
        );
        let shape = shape.unwrap_or_default();
        assert_eq!(shape.model, Some(Scalar::Str(Some("m".into()))));
        assert_eq!(shape.stream, Some(Scalar::Bool(true)));
        let Some(Shaped::Is(items)) = &shape.input else {
            panic!("{shape:?}")
        };
        assert_eq!(items.len(), 3);
        assert_eq!(items[1], Shaped::Not(Scalar::Str(None)));
        assert!(matches!(&items[2], Shaped::Is(item) if item.encrypted_content));
        assert_eq!(shape.tool_choice, Some(Shaped::Not(Scalar::Str(None))));
        assert_eq!(
            shape.others,
            vec![
                ("service_tier".to_string(), Scalar::Str(Some("flex".into()))),
                ("instructions".to_string(), Scalar::Str(None)),
            ]
        );
        assert!(!shape.repeated);
        assert!(RequestShape::read(br#"{"model":"m","model":"n"}"#).is_some_and(|s| s.repeated));
        assert!(RequestShape::read(br#"["model"]"#).is_none());
        assert!(RequestShape::read(br#"{"model":"m"} x"#).is_none());
    }
}
