//! The response object of a public Responses answer: who it is ([`Identity`]), the fields the
//! public API always sends with their defaults, and the object written for a stream's
//! response-level events ([`PublicResponse`]).
//!
//! A stream's `response.created` and `response.completed` each carry a whole response object,
//! and completing them through a tree of `serde_json` maps (every key hashed and allocated,
//! twenty defaults inserted) cost more than the rest of a short answer's translation. So the
//! upstream's object is read as a [`RawObject`], its members kept as the raw text they came in,
//! and written back with the defaults it lacks from constants, without a tree.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use serde::de::value::MapAccessDeserializer;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::dialect::{unix_now, write_frame_with};

/// A response id, item id or call id made here, for one the upstream left out.
pub(super) fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}{:016x}{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

/// The response object's fields the public API always sends, with the value (as JSON text) it
/// sends when the request left them at their defaults; `id`, `object`, `created_at`, `status`,
/// `model`, `output`, `usage` and `metadata` are set by the caller.
const DEFAULTS: [(&str, &str); 20] = [
    ("background", "false"),
    ("error", "null"),
    ("incomplete_details", "null"),
    ("instructions", "null"),
    ("max_output_tokens", "null"),
    ("max_tool_calls", "null"),
    ("parallel_tool_calls", "true"),
    ("previous_response_id", "null"),
    ("prompt_cache_key", "null"),
    ("reasoning", r#"{"effort":null,"summary":null}"#),
    ("safety_identifier", "null"),
    ("service_tier", r#""default""#),
    ("store", "false"),
    ("temperature", "1.0"),
    ("text", r#"{"format":{"type":"text"},"verbosity":"medium"}"#),
    ("tool_choice", r#""auto""#),
    ("tools", "[]"),
    ("top_logprobs", "0"),
    ("top_p", "1.0"),
    ("truncation", r#""disabled""#),
];

/// [`DEFAULTS`] as values, for objects that are built as trees.
static DEFAULT_VALUES: LazyLock<Vec<(&'static str, Value)>> = LazyLock::new(|| {
    DEFAULTS
        .iter()
        .filter_map(|(key, text)| Some((*key, serde_json::from_str(text).ok()?)))
        .collect()
});

/// [`DEFAULTS`] but the writer's own members ([`is_own`]), as the members written, for objects
/// written without a tree.
static DEFAULT_MEMBERS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    DEFAULTS
        .iter()
        .filter(|(key, _)| !is_own(key))
        .map(|(key, text)| (*key, format!("\"{key}\":{text}")))
        .collect()
});

/// Every one of [`DEFAULT_MEMBERS`], in order, as one text: what an upstream object that sets
/// none of them (as the Codex backend's do) is given.
static ALL_DEFAULT_MEMBERS: LazyLock<String> = LazyLock::new(|| {
    let members: Vec<&str> = DEFAULT_MEMBERS.iter().map(|(_, m)| m.as_str()).collect();
    members.join(",")
});

/// Whether `key` is one of [`DEFAULTS`] (a match, which compiles to a few comparisons, where a
/// search of the list compared a key with each name).
fn is_default(key: &str) -> bool {
    matches!(
        key,
        "background"
            | "error"
            | "incomplete_details"
            | "instructions"
            | "max_output_tokens"
            | "max_tool_calls"
            | "parallel_tool_calls"
            | "previous_response_id"
            | "prompt_cache_key"
            | "reasoning"
            | "safety_identifier"
            | "service_tier"
            | "store"
            | "temperature"
            | "text"
            | "tool_choice"
            | "tools"
            | "top_logprobs"
            | "top_p"
            | "truncation"
    )
}

/// The `error` of a failed response whose upstream said nothing of it.
pub(super) const UNEXPLAINED_FAILURE: &str =
    r#"{"code":"server_error","message":"the upstream reported a failure without a message"}"#;

/// The members the writer sets itself, whatever the upstream's object holds.
fn is_own(key: &str) -> bool {
    matches!(
        key,
        "id" | "object"
            | "created_at"
            | "status"
            | "model"
            | "output"
            | "usage"
            | "metadata"
            | "error"
    )
}

/// What a response object names itself by: kept the same in every event of a stream.
#[derive(Debug, Clone)]
pub(super) struct Identity {
    pub(super) id: String,
    created_at: i64,
    model: String,
}

impl Identity {
    /// From what the upstream's first response object carries (each `None` when it carries
    /// none), else made here; `asked` is the model the caller asked for.
    fn new(
        id: Option<String>,
        created_at: Option<i64>,
        model: Option<String>,
        asked: &str,
    ) -> Self {
        Self {
            id: id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| new_id("resp_")),
            created_at: created_at.unwrap_or_else(unix_now),
            model: model
                .filter(|model| !model.is_empty())
                .unwrap_or_else(|| asked.to_string()),
        }
    }

    /// From a response object held as a tree.
    pub(super) fn of_tree(response: Option<&Map<String, Value>>, asked: &str) -> Self {
        let text = |key: &str| {
            response
                .and_then(|r| r.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let created_at = response
            .and_then(|r| r.get("created_at"))
            .and_then(Value::as_i64);
        Self::new(text("id"), created_at, text("model"), asked)
    }

    /// From a response object read as raw members.
    pub(super) fn of_raw(response: Option<&RawObject<'_>>, asked: &str) -> Self {
        let read = |key: &str| response.and_then(|r| r.get(key)).map(RawValue::get);
        let text = |key: &str| read(key).and_then(|raw| serde_json::from_str::<String>(raw).ok());
        let created_at = read("created_at").and_then(|raw| serde_json::from_str::<i64>(raw).ok());
        Self::new(text("id"), created_at, text("model"), asked)
    }

    /// `response` with every field the public API sends: this identity, `status` unless it has
    /// one, the defaults of the fields it lacks.
    pub(super) fn fill(
        &self,
        mut response: Map<String, Value>,
        status: &str,
    ) -> Map<String, Value> {
        response.insert("id".into(), self.id.clone().into());
        response.insert("object".into(), "response".into());
        response.insert("created_at".into(), self.created_at.into());
        if !response.get("status").is_some_and(Value::is_string) {
            response.insert("status".into(), status.into());
        }
        if !response.get("model").is_some_and(Value::is_string) {
            response.insert("model".into(), self.model.clone().into());
        }
        for (key, value) in DEFAULT_VALUES.iter() {
            if !response.contains_key(*key) {
                response.insert((*key).into(), value.clone());
            }
        }
        if !response.get("output").is_some_and(Value::is_array) {
            response.insert("output".into(), Value::Array(Vec::new()));
        }
        response.entry("usage").or_insert(Value::Null);
        if !response.get("metadata").is_some_and(Value::is_object) {
            response.insert("metadata".into(), Value::Object(Map::new()));
        }
        response
    }
}

/// How many members an object's names are searched in order for; beyond, they are indexed.
const FEW_MEMBERS: usize = 32;

/// A JSON object's members, each value kept as the raw text it came in (borrowed from it). A
/// member named twice counts once, by its last value, as in a tree.
#[derive(Debug, Default)]
pub(crate) struct RawObject<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RawObject<'a> {
    /// `text` read as an object; `None` when it is not one.
    pub(crate) fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| *value)
    }

    /// The member `key` when it is a string.
    pub(super) fn string(&self, key: &str) -> Option<Cow<'a, str>> {
        let raw = self.get(key).filter(|raw| opens(raw, b'"'))?;
        Some(
            Text::deserialize(&mut serde_json::Deserializer::from_str(raw.get()))
                .ok()?
                .0,
        )
    }

    /// The member `key` read as a tree.
    pub(super) fn tree(&self, key: &str) -> Option<Value> {
        self.get(key)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// The members, in the order they came.
    pub(crate) fn members(&self) -> impl Iterator<Item = (&str, &'a RawValue)> {
        self.members
            .iter()
            .map(|(name, value)| (name.as_ref(), *value))
    }
}

/// Whether a raw JSON value starts with `byte` (`{` an object, `[` an array, `"` a string).
fn opens(raw: &RawValue, byte: u8) -> bool {
    raw.get().as_bytes().first() == Some(&byte)
}

/// A string borrowed from the input when it holds no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_string())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Members::default();
                while let Some((Text(name), value)) = map.next_entry::<Text<'de>, &RawValue>()? {
                    members.insert(name, value);
                }
                Ok(members.done())
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// An object's members as they are read.
#[derive(Default)]
struct Members<'de> {
    members: Vec<(Cow<'de, str>, &'de RawValue)>,
    /// Names are looked for in order while there are few (a response object has a few dozen);
    /// an object of many members gets an index, so that no upstream object costs time quadratic
    /// in its size.
    index: Option<HashMap<Cow<'de, str>, usize>>,
}

impl<'de> Members<'de> {
    fn insert(&mut self, name: Cow<'de, str>, value: &'de RawValue) {
        let members = &mut self.members;
        if self.index.is_none() && members.len() >= FEW_MEMBERS {
            let positions = members.iter().enumerate();
            self.index = Some(positions.map(|(at, (n, _))| (n.clone(), at)).collect());
        }
        let known = match &self.index {
            Some(index) => index.get(&name).copied(),
            None => members.iter().position(|(known, _)| *known == name),
        };
        match known {
            Some(at) => {
                if let Some(member) = members.get_mut(at) {
                    member.1 = value;
                }
            }
            None => {
                if let Some(index) = &mut self.index {
                    index.insert(name.clone(), members.len());
                }
                members.push((name, value));
            }
        }
    }

    fn done(self) -> RawObject<'de> {
        RawObject {
            members: self.members,
        }
    }
}

/// A response-level event read in one pass: its members as they came (all but `response`), and
/// the response it carries read as members too. Reading the event as a [`RawObject`] and then
/// its `response` member again read the whole response twice.
#[derive(Debug, Default)]
pub(super) struct RawEvent<'a> {
    pub(super) members: RawObject<'a>,
    /// The event's `response`, when it is an object (its last, if named twice).
    pub(super) response: Option<RawObject<'a>>,
}

impl<'a> RawEvent<'a> {
    /// `text` read as an event object; `None` when it is not an object.
    pub(super) fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

impl<'de> Deserialize<'de> for RawEvent<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EventVisitor;
        impl<'de> Visitor<'de> for EventVisitor {
            type Value = RawEvent<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Members::default();
                let mut response = None;
                while let Some(Text(name)) = map.next_key::<Text<'de>>()? {
                    if name == "response" {
                        response = map.next_value::<IfObject<'de>>()?.0;
                    } else {
                        members.insert(name, map.next_value::<&RawValue>()?);
                    }
                }
                Ok(RawEvent {
                    members: members.done(),
                    response,
                })
            }
        }
        deserializer.deserialize_map(EventVisitor)
    }
}

/// Any JSON value, read as members when it is an object and skipped otherwise.
struct IfObject<'de>(Option<RawObject<'de>>);

impl<'de> Deserialize<'de> for IfObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnyVisitor;
        impl<'de> Visitor<'de> for AnyVisitor {
            type Value = IfObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let members = RawObject::deserialize(MapAccessDeserializer::new(map))?;
                Ok(IfObject(Some(members)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IfObject(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(IfObject(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(IfObject(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(IfObject(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(IfObject(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(IfObject(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(IfObject(None))
            }
        }
        deserializer.deserialize_any(AnyVisitor)
    }
}

/// A response object as a response-level event carries it: the upstream's members kept, this
/// stream's identity, and every field the public API sends.
pub(super) struct PublicResponse<'a> {
    pub(super) identity: &'a Identity,
    /// Its status when the upstream's object names none.
    pub(super) status: &'a str,
    pub(super) upstream: &'a RawObject<'a>,
    /// The items the stream carried, each written, in place of the upstream's `output` (a
    /// response that ended is made of what its stream carried).
    pub(super) streamed: Option<&'a [&'a str]>,
    /// Its usage with every count, written, in place of the upstream's (a completion's).
    pub(super) usage: Option<&'a str>,
    /// A failed response, which always says why.
    pub(super) failed: bool,
}

impl PublicResponse<'_> {
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        let upstream = self.upstream;
        let kept = |key: &str, byte: u8| upstream.get(key).filter(|raw| opens(raw, byte));
        let mut object = ObjectWriter::open(out);
        json_str(object.known(r#""id":"#), &self.identity.id);
        object.known(r#""object":"response""#);
        json(object.known(r#""created_at":"#), &self.identity.created_at);
        let status = object.known(r#""status":"#);
        match kept("status", b'"') {
            Some(status_kept) => raw(status, status_kept),
            None => json_str(status, self.status),
        }
        let model = object.known(r#""model":"#);
        match kept("model", b'"') {
            Some(model_kept) => raw(model, model_kept),
            None => json_str(model, &self.identity.model),
        }
        let mut sets_defaults = false;
        for (key, value) in upstream.members() {
            if !is_own(key) {
                raw(object.member(key), value);
                sets_defaults |= is_default(key);
            }
        }
        if sets_defaults {
            for (key, member) in DEFAULT_MEMBERS.iter() {
                if upstream.get(key).is_none() {
                    object.known(member);
                }
            }
        } else {
            object.known(&ALL_DEFAULT_MEMBERS);
        }
        let output = object.known(r#""output":"#);
        match (self.streamed, kept("output", b'[')) {
            (Some(streamed), _) => {
                output.push(b'[');
                for (n, item) in streamed.iter().enumerate() {
                    if n > 0 {
                        output.push(b',');
                    }
                    output.extend_from_slice(item.as_bytes());
                }
                output.push(b']');
            }
            (None, Some(kept)) => raw(output, kept),
            (None, None) => output.extend_from_slice(b"[]"),
        }
        let usage = object.known(r#""usage":"#);
        match (self.usage, upstream.get("usage")) {
            (Some(filled), _) => usage.extend_from_slice(filled.as_bytes()),
            (None, Some(kept)) => raw(usage, kept),
            (None, None) => usage.extend_from_slice(b"null"),
        }
        let metadata = object.known(r#""metadata":"#);
        match kept("metadata", b'{') {
            Some(kept) => raw(metadata, kept),
            None => metadata.extend_from_slice(b"{}"),
        }
        let error = object.known(r#""error":"#);
        match (kept("error", b'{'), upstream.get("error")) {
            (Some(kept), _) => raw(error, kept),
            (None, _) if self.failed => error.extend_from_slice(UNEXPLAINED_FAILURE.as_bytes()),
            (None, Some(kept)) => raw(error, kept),
            (None, None) => error.extend_from_slice(b"null"),
        }
        object.close();
    }
}

/// A response-level event as written: `type` and `sequence_number` first, then the upstream
/// event's other members as they came, then the response.
pub(super) struct ResponseFrame<'a> {
    pub(super) kind: &'a str,
    pub(super) sequence_number: u64,
    pub(super) upstream: &'a RawObject<'a>,
    pub(super) response: PublicResponse<'a>,
}

impl ResponseFrame<'_> {
    /// Writes the event as an SSE frame, named by its type.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        write_frame_with(out, Some(self.kind), |out| self.write_data(out));
    }

    /// The event's JSON (the data of its SSE frame).
    fn write_data(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::open(out);
        json_str(object.known(r#""type":"#), self.kind);
        json(object.known(r#""sequence_number":"#), &self.sequence_number);
        for (key, value) in self.upstream.members() {
            if !matches!(key, "type" | "sequence_number" | "response") {
                raw(object.member(key), value);
            }
        }
        self.response.write(object.known(r#""response":"#));
        object.close();
    }
}

/// Writes a JSON object member by member: what a serializer does, without escaping the keys
/// keyward itself names (each `"key":` is written as it is) and with raw members copied whole.
pub(super) struct ObjectWriter<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> ObjectWriter<'o> {
    pub(super) fn open(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    fn separate(&mut self) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
    }

    /// Starts a member from its written form (`"key":`, or a whole `"key":value`); its value
    /// follows in what this returns.
    pub(super) fn known(&mut self, written: &str) -> &mut Vec<u8> {
        self.separate();
        self.out.extend_from_slice(written.as_bytes());
        self.out
    }

    /// Starts a member named by the upstream (its key escaped).
    pub(super) fn member(&mut self, key: &str) -> &mut Vec<u8> {
        self.separate();
        json_str(self.out, key);
        self.out.push(b':');
        self.out
    }

    pub(super) fn close(self) {
        self.out.push(b'}');
    }
}

pub(super) fn json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing JSON into a Vec cannot fail: these values have string keys only.
    let _ = serde_json::to_writer(out, value);
}

/// A JSON string, byte for byte as [`json`] writes it. Most strings keyward writes (names, ids,
/// kinds, short texts) need no escape: they are tested a byte at a time against a table and
/// copied whole. In a profile of the tiny request this cost about 120 instructions a string,
/// against about 180 through serde_json's escaping loop. (Testing eight bytes at a time measured
/// no cheaper on these short strings.)
pub(super) fn json_str(out: &mut Vec<u8>, value: &str) {
    if needs_escape(value.as_bytes()) {
        json(out, value);
    } else {
        out.reserve(value.len() + 2);
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    }
}

/// Whether `bytes` hold one serde_json escapes in a string.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().any(|&byte| ESCAPED[usize::from(byte)])
}

/// The bytes serde_json escapes in a string: `"`, `\\` and the control characters below a space.
const ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// A raw value copied whole. An SSE data line is one line, and a value the upstream spread over
/// lines has line breaks only between its tokens (a string holds them escaped): they become
/// spaces.
pub(super) fn raw(out: &mut Vec<u8>, value: &RawValue) {
    let text = value.get().as_bytes();
    if memchr::memchr2(b'\n', b'\r', text).is_none() {
        out.extend_from_slice(text);
    } else {
        out.extend(
            text.iter()
                .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A string is written byte for byte as serde_json writes it, whatever it holds.
        #[test]
        fn strings_are_written_as_serde_json_writes_them(value in any::<String>()) {
            let mut out = Vec::new();
            json_str(&mut out, &value);
            prop_assert_eq!(out, serde_json::to_vec(&value).unwrap_or_default());
        }
    }

    #[test]
    fn the_default_names_are_matched() {
        for (key, _) in DEFAULTS {
            assert!(is_default(key), "{key}");
        }
        for key in ["", "id", "output", "tool", "backgrounds", "Text"] {
            assert!(!is_default(key), "{key}");
        }
        assert!(DEFAULT_MEMBERS.iter().all(|(key, _)| !is_own(key)));
        assert_eq!(DEFAULT_MEMBERS.len(), DEFAULTS.len() - 1, "all but `error`");
    }

    /// Each byte that needs an escape is found wherever it is, and no other byte is.
    #[test]
    fn every_escaped_byte_is_found_anywhere() {
        for byte in (0u8..0x80).filter(|b| *b < 0x20 || *b == b'"' || *b == b'\\') {
            for len in 1..20 {
                for at in 0..len {
                    let mut text = vec![b'a'; len];
                    text[at] = byte;
                    assert!(needs_escape(&text), "{byte:#x} at {at} of {len}");
                }
            }
        }
        let plain: Vec<u8> = (0x20u8..=0xff)
            .filter(|b| *b != b'"' && *b != b'\\')
            .collect();
        for start in 0..plain.len() {
            assert!(!needs_escape(&plain[start..]), "from {start}");
        }
    }

    #[test]
    fn strings_needing_escapes_are_escaped() {
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        for value in [
            "",
            "plain",
            "a \"quote\"",
            "back\\slash",
            "tab\tand\nline",
            "é ☃ \u{7f}",
            &every_ascii,
        ] {
            let mut out = Vec::new();
            json_str(&mut out, value);
            assert_eq!(
                out,
                serde_json::to_vec(value).unwrap_or_default(),
                "{value:?}"
            );
        }
    }

    /// An event is read in one pass: its response as members when it is an object (the last,
    /// if named twice), and nothing else kept of it.
    #[test]
    fn an_event_is_read_with_its_response() {
        let event = RawEvent::parse(
            r#"{"type":"response.completed","response":{"id":"a"},"n":[1,{"x":2}],"response":{"id":"b","output":[{"k":"v"}]}}"#,
        )
        .unwrap_or_default();
        let names: Vec<&str> = event.members.members().map(|(name, _)| name).collect();
        assert_eq!(names, ["type", "n"]);
        assert_eq!(
            event.members.get("n").map(RawValue::get),
            Some(r#"[1,{"x":2}]"#)
        );
        let response = event.response.unwrap_or_default();
        assert_eq!(response.string("id").as_deref(), Some("b"));
        assert_eq!(
            response.get("output").map(RawValue::get),
            Some(r#"[{"k":"v"}]"#)
        );
        for other in [r#""text""#, "[1,[2],{}]", "7", "-1.5e3", "null", "true"] {
            let text = format!(r#"{{"response":{other},"type":"t"}}"#);
            let event = RawEvent::parse(&text);
            assert!(
                event.as_ref().is_some_and(|e| e.response.is_none()),
                "{other}"
            );
            assert_eq!(
                event.map(|e| e.members.members().count()),
                Some(1),
                "{other}"
            );
        }
        for broken in ["{", r#"{"response":{"id":}}"#, "[]", r#"{"response":[1,}"#] {
            assert!(RawEvent::parse(broken).is_none(), "{broken}");
        }
    }

    /// A name given twice counts by its last value, in a small object and in one of many members
    /// (which are indexed rather than searched).
    #[test]
    fn a_member_named_twice_counts_by_its_last_value() {
        for count in [3, FEW_MEMBERS + 1, 20_000] {
            let mut members: Vec<String> = (0..count).map(|i| format!("\"m{i}\":{i}")).collect();
            members.push(r#""m0":"last""#.into());
            members.push(format!("\"m{}\":\"last\"", count - 1));
            let text = format!("{{{}}}", members.join(","));
            let object = RawObject::parse(&text).unwrap_or_default();
            assert_eq!(object.members().count(), count, "{count}");
            assert_eq!(object.string("m0").as_deref(), Some("last"), "{count}");
            let last = format!("m{}", count - 1);
            assert_eq!(object.string(&last).as_deref(), Some("last"), "{count}");
            assert_eq!(object.get("m1").map(RawValue::get), Some("1"), "{count}");
        }
    }
}
