//! Responses answers that stand on their own: the event stream and the assembled object as the
//! public API sends them, whatever the upstream left out.
//!
//! The Codex backend's stream is what the Codex CLI needs, and the CLI needs little (an item's
//! `output_item.done` and a `response.completed` with an id). The clients of the public API
//! check more, and fail on what is missing rather than guess: the OpenAI SDK's stream helper
//! wants `response.created` first, one
//! response id throughout, dense `output_index` and `content_index`, a `content_part.added`
//! before its deltas, item ids that match; the Vercel AI SDK validates every event against a
//! schema (`created_at` and `model` on the response, `call_id`, `name`, `arguments` and `status`
//! on calls, numeric usage, `sequence_number` on an error), and without `object: "response"` the
//! OpenAI SDK computes no `output_text`. So every request keyward normalised or translated gets
//! its answer through [`PublicStream`] or [`public_object`], which keep what the upstream sent
//! and fill in the rest: the public API's fields with their defaults, ids and statuses, indices
//! counted here, the events the public API always sends between them, sequence numbers of its
//! own, and a stream that ends without a terminal event ends with an `error` event
//! (`stream_interrupted`), never silently. The Codex CLI's own requests (sent upstream byte for
//! byte) get the upstream's stream untouched.

use std::borrow::Cow;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::event::event_json;
use super::failure::StreamFailure;
use super::response_object::{
    json, json_str, new_id, Identity, ObjectWriter, PublicResponse, RawEvent, RawObject,
    ResponseFrame,
};
use crate::dialect::sse::Event;
use crate::dialect::{write_frame, write_frame_with, Flow, SseTranslator};

/// The usage object of a finished response, with every count a number (absent ones 0).
fn fill_usage(usage: Option<Value>) -> Value {
    let mut usage = match usage {
        Some(Value::Object(usage)) => usage,
        _ => Map::new(),
    };
    let count = |usage: &Map<String, Value>, key: &str, detail: Option<&str>| {
        let value = usage.get(key);
        let value = match detail {
            Some(detail) => value.and_then(|v| v.get(detail)),
            None => value,
        };
        value.and_then(Value::as_u64).unwrap_or(0)
    };
    let input = count(&usage, "input_tokens", None);
    let cached = count(&usage, "input_tokens_details", Some("cached_tokens"));
    let output = count(&usage, "output_tokens", None);
    let reasoning = count(&usage, "output_tokens_details", Some("reasoning_tokens"));
    let total = usage
        .get("total_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(input.saturating_add(output));
    usage.insert("input_tokens".into(), input.into());
    usage.insert(
        "input_tokens_details".into(),
        json!({"cached_tokens": cached}),
    );
    usage.insert("output_tokens".into(), output.into());
    usage.insert(
        "output_tokens_details".into(),
        json!({"reasoning_tokens": reasoning}),
    );
    usage.insert("total_tokens".into(), total.into());
    Value::Object(usage)
}

/// [`fill_usage`] of a stream's upstream usage (`upstream`, as it came), written without a tree.
fn written_usage(upstream: Option<&RawValue>) -> String {
    const COUNTS: [&str; 5] = [
        "input_tokens",
        "input_tokens_details",
        "output_tokens",
        "output_tokens_details",
        "total_tokens",
    ];
    let usage = upstream
        .filter(|raw| raw.get().starts_with('{'))
        .and_then(|raw| RawObject::parse(raw.get()))
        .unwrap_or_default();
    // A count as a tree reads it (`as_u64`): a whole number from 0 up, not written as a float.
    let number =
        |raw: Option<&RawValue>| raw.and_then(|raw| serde_json::from_str::<u64>(raw.get()).ok());
    let detail = |key: &str, detail: &str| {
        let details = usage.get(key).filter(|raw| raw.get().starts_with('{'));
        number(details.and_then(|raw| RawObject::parse(raw.get())?.get(detail)))
    };
    let input = number(usage.get("input_tokens")).unwrap_or(0);
    let output = number(usage.get("output_tokens")).unwrap_or(0);
    let total = number(usage.get("total_tokens")).unwrap_or(input.saturating_add(output));
    let cached = detail("input_tokens_details", "cached_tokens").unwrap_or(0);
    let reasoning = detail("output_tokens_details", "reasoning_tokens").unwrap_or(0);
    // Room for the five counts with numbers of several digits each.
    let mut out = Vec::with_capacity(192);
    let mut object = ObjectWriter::open(&mut out);
    let count = |object: &mut ObjectWriter<'_>, key: &str| match key {
        "input_tokens" => json(object.known(r#""input_tokens":"#), &input),
        "input_tokens_details" => {
            let out = object.known(r#""input_tokens_details":{"cached_tokens":"#);
            json(out, &cached);
            out.push(b'}');
        }
        "output_tokens" => json(object.known(r#""output_tokens":"#), &output),
        "output_tokens_details" => {
            let out = object.known(r#""output_tokens_details":{"reasoning_tokens":"#);
            json(out, &reasoning);
            out.push(b'}');
        }
        _ => json(object.known(r#""total_tokens":"#), &total),
    };
    // In the upstream's order, as a tree keeps it; the counts it lacks after.
    for (key, value) in usage.members() {
        if COUNTS.contains(&key) {
            count(&mut object, key);
        } else {
            let value = serde_json::from_str::<Value>(value.get()).unwrap_or_default();
            json(object.member(key), &value);
        }
    }
    for key in COUNTS {
        if usage.get(key).is_none() {
            count(&mut object, key);
        }
    }
    object.close();
    // JSON written by serde_json or from its parts is UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// A finished output item as the public API sends it: its id, its status, a message's parts
/// with their `annotations` and `logprobs`, a call's fields.
fn fill_item(item: &mut Map<String, Value>, id: &str) {
    item.insert("id".into(), id.into());
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match kind.as_str() {
        "message" => {
            item.entry("status").or_insert("completed".into());
            item.entry("role").or_insert("assistant".into());
            if !item.get("content").is_some_and(Value::is_array) {
                item.insert("content".into(), json!([]));
            }
            if let Some(Value::Array(parts)) = item.get_mut("content") {
                for part in parts.iter_mut().filter_map(Value::as_object_mut) {
                    if part.get("type").and_then(Value::as_str) == Some("output_text") {
                        part.entry("annotations").or_insert(json!([]));
                        part.entry("logprobs").or_insert(json!([]));
                        part.entry("text").or_insert("".into());
                    }
                }
            }
        }
        "reasoning" if !item.get("summary").is_some_and(Value::is_array) => {
            item.insert("summary".into(), json!([]));
        }
        "function_call" => {
            item.entry("status").or_insert("completed".into());
            item.entry("arguments").or_insert("".into());
            if !item.get("call_id").is_some_and(Value::is_string) {
                item.insert("call_id".into(), new_id("call_").into());
            }
            item.entry("name").or_insert("".into());
        }
        _ => {}
    }
}

/// A new item's id, by its type, as the public API's look.
fn item_prefix(kind: &str) -> &'static str {
    match kind {
        "message" => "msg_",
        "reasoning" => "rs_",
        "function_call" => "fc_",
        "compaction" => "cmp_",
        _ => "item_",
    }
}

/// The assembled (non-streamed) answer with every field the public API sends.
pub(crate) fn public_object(response: Value, model: &str) -> Value {
    let response = match response {
        Value::Object(response) => response,
        _ => Map::new(),
    };
    let identity = Identity::of_tree(Some(&response), model);
    let mut response = identity.fill(response, "completed");
    if let Some(Value::Array(items)) = response.get_mut("output") {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            let id = item
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| {
                    new_id(item_prefix(
                        item.get("type").and_then(Value::as_str).unwrap_or(""),
                    ))
                });
            fill_item(item, &id);
        }
    }
    let usage = fill_usage(response.remove("usage"));
    response.insert("usage".into(), usage);
    Value::Object(response)
}

/// What a content part (or a summary part) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartKind {
    Text,
    Refusal,
    Summary,
}

impl PartKind {
    fn of_delta(kind: &str) -> Self {
        match kind {
            "response.refusal.delta" | "response.refusal.done" => Self::Refusal,
            _ => Self::Text,
        }
    }

    /// The kind of the part a part event carries (a reasoning summary's, or a message's).
    fn of_part(fields: &Map<String, Value>, summary: bool) -> Self {
        let kind = fields
            .get("part")
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str);
        match kind {
            _ if summary => Self::Summary,
            Some("refusal") => Self::Refusal,
            _ => Self::Text,
        }
    }

    /// The part as `.added` (empty) or `.done` (whole) carries it.
    fn part(self, text: &str) -> Value {
        match self {
            Self::Text => {
                json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
            }
            Self::Refusal => json!({"type": "refusal", "refusal": text}),
            Self::Summary => json!({"type": "summary_text", "text": text}),
        }
    }
}

#[derive(Debug)]
struct Part {
    kind: PartKind,
    text: String,
    /// Its `output_text.done` (`refusal.done`, `reasoning_summary_text.done`) was sent.
    text_done: bool,
    done: bool,
}

/// An output item of the stream, in the order the client sees them.
#[derive(Debug)]
struct Item {
    upstream_index: Option<u64>,
    upstream_id: Option<String>,
    id: String,
    kind: String,
    /// The item as `output_item.added` carried it.
    announced: Announced,
    parts: Vec<Part>,
    arguments: String,
    arguments_done: bool,
    /// The item as `output_item.done` carried it, written (JSON).
    done: Option<String>,
}

/// How an item was announced: most items of a short answer are made here from their first
/// delta, and those are written from their fields, without a tree.
#[derive(Debug)]
enum Announced {
    /// Made here, with no upstream item: `type`, `id` and the fields of its kind with their
    /// defaults (a call's `call_id` made here too).
    Made { call_id: Option<String> },
    /// The upstream's item, filled.
    Upstream(Map<String, Value>),
}

impl Item {
    fn new(upstream: Option<&Map<String, Value>>, kind: &str, at: ItemAt) -> Self {
        let kind = upstream
            .and_then(|item| item.get("type"))
            .and_then(Value::as_str)
            .unwrap_or(kind)
            .to_string();
        let id = at
            .id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| new_id(item_prefix(&kind)));
        let announced = match upstream {
            None => Announced::Made {
                call_id: (kind == "function_call").then(|| new_id("call_")),
            },
            Some(upstream) => Announced::Upstream(Self::filled(upstream.clone(), &kind, &id)),
        };
        Self {
            upstream_index: at.index,
            upstream_id: at.id,
            id,
            kind,
            announced,
            parts: Vec::new(),
            arguments: String::new(),
            arguments_done: false,
            done: None,
        }
    }

    /// The upstream's item as `output_item.added` carries it: its kind's fields filled.
    fn filled(mut added: Map<String, Value>, kind: &str, id: &str) -> Map<String, Value> {
        added.insert("type".into(), kind.into());
        added.insert("id".into(), id.into());
        match kind {
            "message" => {
                added.insert("status".into(), "in_progress".into());
                added.insert("content".into(), json!([]));
                added.entry("role").or_insert("assistant".into());
            }
            "reasoning" => {
                added.insert("summary".into(), json!([]));
            }
            "function_call" => {
                added.insert("status".into(), "in_progress".into());
                added.insert("arguments".into(), "".into());
                if !added.get("call_id").is_some_and(Value::is_string) {
                    added.insert("call_id".into(), new_id("call_").into());
                }
                added.entry("name").or_insert("".into());
            }
            _ => {}
        }
        added
    }

    /// A member of the item as announced.
    fn announced(&self, key: &str) -> Option<Value> {
        match &self.announced {
            Announced::Upstream(added) => added.get(key).cloned(),
            Announced::Made { call_id } => match key {
                "call_id" => call_id.clone().map(Value::from),
                "name" if self.kind == "function_call" => Some("".into()),
                _ => None,
            },
        }
    }

    /// Writes the item as `output_item.added` carries it.
    fn write_announced(&self, out: &mut Vec<u8>) {
        let call_id = match &self.announced {
            Announced::Upstream(added) => return json(out, added),
            Announced::Made { call_id } => call_id,
        };
        let mut item = ObjectWriter::open(out);
        json_str(item.known(r#""type":"#), &self.kind);
        json_str(item.known(r#""id":"#), &self.id);
        match self.kind.as_str() {
            "message" => {
                item.known(r#""status":"in_progress","content":[],"role":"assistant""#);
            }
            "reasoning" => {
                item.known(r#""summary":[]"#);
            }
            "function_call" => {
                item.known(r#""status":"in_progress","arguments":"""#);
                json_str(
                    item.known(r#""call_id":"#),
                    call_id.as_deref().unwrap_or_default(),
                );
                item.known(r#""name":"""#);
            }
            _ => {}
        }
        item.close();
    }

    /// The item whole, once done, written: the upstream's final item (`upstream`) if it sent
    /// one, else what the stream carried; in either case filled.
    fn finished(&self, upstream: Option<Map<String, Value>>) -> String {
        // Room for an item's fixed members and what its parts carry, so that writing it does not
        // regrow the text.
        let carried: usize = self.parts.iter().map(|part| part.text.len()).sum();
        let mut out = Vec::with_capacity(160 + carried + self.arguments.len());
        match (upstream, &self.announced) {
            (None, Announced::Made { call_id }) => self.write_made(call_id.as_deref(), &mut out),
            (upstream, announced) => {
                let upstream = upstream.or_else(|| match announced {
                    Announced::Upstream(added) => Some(added.clone()),
                    Announced::Made { .. } => None,
                });
                json(&mut out, &self.finished_tree(upstream.unwrap_or_default()));
            }
        }
        // JSON written by serde_json or from its parts is UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }

    /// [`Self::finished`] of an item made here: what [`Self::finished_tree`] builds of the item
    /// as announced, written from its fields.
    fn write_made(&self, call_id: Option<&str>, out: &mut Vec<u8>) {
        let mut item = ObjectWriter::open(out);
        json_str(item.known(r#""type":"#), &self.kind);
        json_str(item.known(r#""id":"#), &self.id);
        let parts = |out: &mut Vec<u8>, summary: bool| {
            out.push(b'[');
            let mut first = true;
            for part in &self.parts {
                if (part.kind == PartKind::Summary) != summary {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                PartJson(part.kind, &part.text).write(out);
            }
            out.push(b']');
        };
        // The order of a tree whose `status` was taken out (its last member took its place)
        // and put back at the end.
        match self.kind.as_str() {
            "message" => {
                item.known(r#""role":"assistant""#);
                parts(item.known(r#""content":"#), false);
                item.known(r#""status":"completed""#);
            }
            "reasoning" => parts(item.known(r#""summary":"#), true),
            "function_call" => {
                item.known(r#""name":"""#);
                json_str(item.known(r#""arguments":"#), &self.arguments);
                json_str(item.known(r#""call_id":"#), call_id.unwrap_or_default());
                item.known(r#""status":"completed""#);
            }
            _ => {}
        }
        item.close();
    }

    /// [`Self::finished`] of an item held as a tree (`item`: the upstream's final one, else the
    /// one announced).
    fn finished_tree(&self, mut item: Map<String, Value>) -> Value {
        item.insert("type".into(), self.kind.clone().into());
        let streamed = |kind: PartKind| {
            self.parts
                .iter()
                .filter(|p| {
                    p.kind == kind || (kind == PartKind::Text && p.kind == PartKind::Refusal)
                })
                .map(|p| p.kind.part(&p.text))
                .collect::<Vec<_>>()
        };
        let empty = |key: &str, item: &Map<String, Value>| {
            item.get(key)
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
        };
        match self.kind.as_str() {
            "message" => {
                if item.get("status") == Some(&Value::from("in_progress")) {
                    item.remove("status");
                }
                if empty("content", &item) {
                    item.insert("content".into(), Value::Array(streamed(PartKind::Text)));
                }
            }
            "reasoning" if empty("summary", &item) => {
                item.insert("summary".into(), Value::Array(streamed(PartKind::Summary)));
            }
            "function_call" => {
                if item.get("status") == Some(&Value::from("in_progress")) {
                    item.remove("status");
                }
                if item
                    .get("arguments")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    item.insert("arguments".into(), self.arguments.clone().into());
                }
                // The client knows the call by the id it was announced with.
                if let Some(call_id) = self.announced("call_id") {
                    item.insert("call_id".into(), call_id);
                }
                let named = |i: &Map<String, Value>| {
                    i.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| !n.is_empty())
                };
                if !named(&item) {
                    if let Some(name) = self.announced("name") {
                        item.insert("name".into(), name);
                    }
                }
            }
            _ => {}
        }
        fill_item(&mut item, &self.id);
        Value::Object(item)
    }
}

/// Where an event says its item is: the upstream's `output_index` and item id.
#[derive(Debug, Clone, Default)]
struct ItemAt {
    index: Option<u64>,
    id: Option<String>,
}

impl ItemAt {
    fn of(fields: &Map<String, Value>) -> Self {
        Self {
            index: fields.get("output_index").and_then(Value::as_u64),
            id: fields
                .get("item_id")
                .or_else(|| fields.get("item").and_then(|item| item.get("id")))
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }
}

/// Turns the upstream's Responses stream into the public API's, event by event.
pub(crate) struct PublicStream {
    /// The model the caller asked for, named when the upstream names none.
    asked: String,
    identity: Option<Identity>,
    sequence: u64,
    items: Vec<Item>,
    /// A terminal event (`response.completed`, `.incomplete`, `.failed`, `error`) was sent.
    ended: bool,
}

impl PublicStream {
    pub(crate) fn new(asked: String) -> Self {
        Self {
            asked,
            identity: None,
            sequence: 0,
            items: Vec::new(),
            ended: false,
        }
    }

    /// Writes one event: its type and sequence number first, then `fields`.
    fn emit(&mut self, kind: &str, fields: Map<String, Value>, out: &mut Vec<u8>) {
        let frame = Frame {
            kind,
            sequence_number: self.next_sequence(),
            fields: &fields,
        };
        write_frame(out, Some(kind), &frame);
    }

    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence - 1
    }

    /// Writes an event keyward makes itself about item `item`: its id (`placed`: when the event
    /// names it), its index, `part`'s index, then `body`.
    fn write_placed(
        &mut self,
        kind: &str,
        item: usize,
        placed: bool,
        part: Option<(&'static str, usize)>,
        body: Body<'_>,
        out: &mut Vec<u8>,
    ) {
        let sequence_number = self.next_sequence();
        let item_id = self
            .items
            .get(item)
            .map(|i| i.id.as_str())
            .filter(|_| placed);
        let frame = Placed {
            kind,
            sequence_number,
            item_id,
            output_index: item,
            part,
            body,
        };
        frame.write(out);
    }

    /// Writes an event keyward makes itself about a part (of kind `part_kind`) that carries its
    /// text: under `text`'s key (with an empty `logprobs` when its flag says so), else the part.
    fn write_part_event(
        &mut self,
        kind: &str,
        item: usize,
        part: (&'static str, usize),
        part_kind: PartKind,
        text: Option<(&'static str, bool)>,
        out: &mut Vec<u8>,
    ) {
        let sequence_number = self.next_sequence();
        let Some(it) = self.items.get(item) else {
            return;
        };
        let written = it.parts.get(part.1).map_or("", |p| p.text.as_str());
        let body = match text {
            Some((key, logprobs)) => Body::Text(key, written, logprobs),
            None => Body::Part(part_kind, written),
        };
        let frame = Placed {
            kind,
            sequence_number,
            item_id: Some(it.id.as_str()),
            output_index: item,
            part: Some(part),
            body,
        };
        frame.write(out);
    }

    /// The stream's identity; the first event fixes it (`of` reads it from that event's response),
    /// and opens the stream with `response.created` when it is not that event itself.
    fn start(
        &mut self,
        of: impl FnOnce(&str) -> Identity,
        first: &str,
        out: &mut Vec<u8>,
    ) -> Identity {
        if let Some(identity) = &self.identity {
            return identity.clone();
        }
        let identity = of(&self.asked);
        self.identity = Some(identity.clone());
        if first != "response.created" {
            let upstream = RawObject::default();
            let frame = ResponseFrame {
                kind: "response.created",
                sequence_number: self.next_sequence(),
                upstream: &upstream,
                response: PublicResponse {
                    identity: &identity,
                    status: "in_progress",
                    upstream: &upstream,
                    streamed: None,
                    usage: None,
                    failed: false,
                },
            };
            frame.write(out);
        }
        identity
    }

    /// The item an event belongs to, by the upstream's index or id (the last open one when it
    /// names neither); a new one (announced with `output_item.added`) when there is none.
    fn item_for(&mut self, at: &ItemAt, kind: &str, out: &mut Vec<u8>) -> usize {
        let found = match (&at.index, &at.id) {
            (None, None) => self.items.iter().rposition(|i| i.done.is_none()),
            _ => self.find(at),
        };
        match found {
            Some(index) => index,
            None => self.add_item(None, kind, at.clone(), out),
        }
    }

    /// The item the upstream names by its index, else by its id.
    fn find(&self, at: &ItemAt) -> Option<usize> {
        let by_index = at.index.and_then(|index| {
            self.items
                .iter()
                .position(|i| i.upstream_index == Some(index))
        });
        by_index.or_else(|| {
            let id = at.id.as_ref()?;
            self.items
                .iter()
                .position(|i| i.upstream_id.as_ref() == Some(id))
        })
    }

    fn add_item(
        &mut self,
        upstream: Option<&Map<String, Value>>,
        kind: &str,
        at: ItemAt,
        out: &mut Vec<u8>,
    ) -> usize {
        let item = Item::new(upstream, kind, at);
        let index = self.items.len();
        let sequence_number = self.next_sequence();
        Placed::item(
            "response.output_item.added",
            sequence_number,
            index,
            Body::Added(&item),
        )
        .write(out);
        self.items.push(item);
        index
    }

    /// An event's place: its item's id and output index (and `key`'s index of a part).
    fn place(
        &self,
        item: usize,
        part: Option<(&str, usize)>,
        mut fields: Map<String, Value>,
    ) -> Map<String, Value> {
        if let Some(it) = self.items.get(item) {
            fields.insert("item_id".into(), it.id.clone().into());
        }
        fields.insert("output_index".into(), item.into());
        if let Some((key, index)) = part {
            fields.insert(key.into(), index.into());
        }
        fields
    }

    /// The part an event belongs to (`key`: `content_index` or `summary_index`): the one it
    /// names, else the open one of its kind; a new one, announced, when there is none.
    fn part_for(
        &mut self,
        item: usize,
        key: &str,
        fields: &Map<String, Value>,
        kind: PartKind,
        out: &mut Vec<u8>,
    ) -> usize {
        let named = fields.get(key).and_then(Value::as_u64);
        self.part_at(item, named, kind, out)
    }

    /// The part at the index an event names ([`Self::part_for`]), read by the caller.
    fn part_at(
        &mut self,
        item: usize,
        named: Option<u64>,
        kind: PartKind,
        out: &mut Vec<u8>,
    ) -> usize {
        let parts = self.items.get(item).map_or(0, |i| i.parts.len());
        let named = named.and_then(|i| usize::try_from(i).ok());
        let open = self
            .items
            .get(item)
            .and_then(|i| i.parts.iter().rposition(|p| !p.done && p.kind == kind));
        match named.filter(|n| *n < parts).or(open) {
            Some(part) => part,
            None => self.add_part(item, kind, None, out),
        }
    }

    fn add_part(
        &mut self,
        item: usize,
        kind: PartKind,
        upstream: Option<Map<String, Value>>,
        out: &mut Vec<u8>,
    ) -> usize {
        let Some(it) = self.items.get_mut(item) else {
            return 0;
        };
        let index = it.parts.len();
        it.parts.push(Part {
            kind,
            text: String::new(),
            text_done: false,
            done: false,
        });
        let (event, key) = match kind {
            PartKind::Summary => ("response.reasoning_summary_part.added", "summary_index"),
            _ => ("response.content_part.added", "content_index"),
        };
        let Some(upstream) = upstream else {
            let body = Body::Part(kind, "");
            self.write_placed(event, item, true, Some((key, index)), body, out);
            return index;
        };
        let mut fields = self.place(item, Some((key, index)), upstream);
        let part = match fields.get("part").and_then(Value::as_object) {
            Some(part) => {
                let mut part = part.clone();
                if kind == PartKind::Text {
                    part.entry("annotations").or_insert(json!([]));
                    part.entry("logprobs").or_insert(json!([]));
                    part.entry("text").or_insert("".into());
                }
                Value::Object(part)
            }
            None => kind.part(""),
        };
        fields.insert("part".into(), part);
        self.emit(event, fields, out);
        index
    }

    /// Closes what is open in an item before it is done: each part's `.done` events, a call's
    /// arguments.
    fn close_parts(&mut self, item: usize, out: &mut Vec<u8>) {
        let count = self.items.get(item).map_or(0, |i| i.parts.len());
        for index in 0..count {
            self.close_part(item, index, out);
        }
        let call = self
            .items
            .get(item)
            .filter(|i| i.kind == "function_call" && !i.arguments_done)
            .map(|i| i.arguments.clone());
        if let Some(arguments) = call {
            let body = Body::Text("arguments", &arguments, false);
            let kind = "response.function_call_arguments.done";
            self.write_placed(kind, item, true, None, body, out);
            if let Some(it) = self.items.get_mut(item) {
                it.arguments_done = true;
            }
        }
    }

    fn close_part(&mut self, item: usize, index: usize, out: &mut Vec<u8>) {
        let Some(part) = self.items.get(item).and_then(|i| i.parts.get(index)) else {
            return;
        };
        if part.done {
            return;
        }
        let (kind, text_done) = (part.kind, part.text_done);
        let (text_event, text_key, part_event, key) = match kind {
            PartKind::Text => (
                "response.output_text.done",
                "text",
                "response.content_part.done",
                "content_index",
            ),
            PartKind::Refusal => (
                "response.refusal.done",
                "refusal",
                "response.content_part.done",
                "content_index",
            ),
            PartKind::Summary => (
                "response.reasoning_summary_text.done",
                "text",
                "response.reasoning_summary_part.done",
                "summary_index",
            ),
        };
        if !text_done {
            let text = Some((text_key, kind == PartKind::Text));
            self.write_part_event(text_event, item, (key, index), kind, text, out);
        }
        self.write_part_event(part_event, item, (key, index), kind, None, out);
        if let Some(part) = self
            .items
            .get_mut(item)
            .and_then(|i| i.parts.get_mut(index))
        {
            part.text_done = true;
            part.done = true;
        }
    }

    /// Ends an item: its open parts closed, then `output_item.done` with the item whole.
    fn finish_item(
        &mut self,
        item: usize,
        upstream: Option<Map<String, Value>>,
        out: &mut Vec<u8>,
    ) {
        if self.items.get(item).is_none_or(|i| i.done.is_some()) {
            return;
        }
        self.close_parts(item, out);
        let Some(it) = self.items.get_mut(item) else {
            return;
        };
        it.done = Some(it.finished(upstream));
        let sequence_number = self.next_sequence();
        if let Some(done) = self.items.get(item).and_then(|i| i.done.as_deref()) {
            Placed::item(
                "response.output_item.done",
                sequence_number,
                item,
                Body::Done(done),
            )
            .write(out);
        }
    }

    /// A response-level event (`response.created`, `.in_progress`, `.completed`, `.incomplete`,
    /// `.failed`), its members as they came.
    fn response_event(&mut self, kind: &str, event: &RawEvent<'_>, out: &mut Vec<u8>) {
        let first = self.identity.is_none();
        let identity = self.start(
            |asked| Identity::of_raw(event.response.as_ref(), asked),
            kind,
            out,
        );
        let none = RawObject::default();
        let upstream = event.response.as_ref().unwrap_or(&none);
        let status = match kind {
            "response.created" if !first => return,
            "response.created" | "response.in_progress" => "in_progress",
            "response.completed" => "completed",
            "response.incomplete" => "incomplete",
            _ => "failed",
        };
        let failed = status == "failed";
        let ends = status != "in_progress";
        // A response that ends ends its items; a failed one leaves them as they were.
        if ends && !failed {
            if self.items.is_empty() {
                self.announce_output(upstream, out);
            }
            for item in 0..self.items.len() {
                self.finish_item(item, None, out);
            }
        }
        let usage = (ends && !failed).then(|| written_usage(upstream.get("usage")));
        let sequence_number = self.next_sequence();
        let streamed: Vec<&str> = self
            .items
            .iter()
            .filter_map(|i| i.done.as_deref())
            .collect();
        // A failed response whose stream carried no item whole keeps the upstream's output.
        let streamed = (ends && !(failed && streamed.is_empty())).then_some(&streamed[..]);
        let frame = ResponseFrame {
            kind,
            sequence_number,
            upstream: &event.members,
            response: PublicResponse {
                identity: &identity,
                status,
                upstream,
                streamed,
                usage: usage.as_deref(),
                failed,
            },
        };
        frame.write(out);
        self.ended = ends;
    }

    /// The items of a final output that no event carried, each announced and done, as the
    /// public API streams every item it answers with.
    fn announce_output(&mut self, response: &RawObject<'_>, out: &mut Vec<u8>) {
        let Some(Value::Array(output)) = response.tree("output") else {
            return;
        };
        for item in output {
            let Value::Object(item) = item else {
                continue;
            };
            let kind = item
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("message")
                .to_string();
            let at = ItemAt {
                index: None,
                id: item.get("id").and_then(Value::as_str).map(str::to_string),
            };
            let index = self.add_item(Some(&item), &kind, at, out);
            self.finish_item(index, Some(item), out);
        }
    }

    /// An `error` event, with what the public API's carries: `code`, `message`, `param`.
    fn error(&mut self, mut fields: Map<String, Value>, out: &mut Vec<u8>) {
        let failure = StreamFailure::from_event(&Value::Object(fields.clone()));
        // The public API's `error` event carries no response (only what it says of one).
        fields.remove("response");
        fields
            .entry("code")
            .or_insert(failure.code.map_or(Value::Null, Value::from));
        fields.entry("message").or_insert(failure.message.into());
        fields.entry("param").or_insert(Value::Null);
        self.emit("error", fields, out);
        self.ended = true;
    }

    fn event(&mut self, kind: &str, mut fields: Map<String, Value>, out: &mut Vec<u8>) {
        if kind == "error" {
            return self.error(fields, out);
        }
        // Another event may carry a response too: it is the stream's one response, whole.
        let identity = self.start(
            |asked| Identity::of_tree(fields.get("response").and_then(Value::as_object), asked),
            kind,
            out,
        );
        if let Some(Value::Object(response)) = fields.remove("response") {
            let response = identity.fill(response, "in_progress");
            fields.insert("response".into(), Value::Object(response));
        }
        self.item_event(kind, fields, out);
    }

    /// An event of an output item (or one keyward does not know, passed on in place).
    fn item_event(&mut self, kind: &str, mut fields: Map<String, Value>, out: &mut Vec<u8>) {
        let at = ItemAt::of(&fields);
        match kind {
            "response.output_item.added" => {
                let upstream = fields.get("item").and_then(Value::as_object).cloned();
                if self.find(&at).is_none() {
                    self.add_item(upstream.as_ref(), "message", at, out);
                }
            }
            "response.output_item.done" => {
                let upstream = match fields.remove("item") {
                    Some(Value::Object(item)) => Some(item),
                    _ => None,
                };
                let kind = upstream
                    .as_ref()
                    .and_then(|i| i.get("type"))
                    .and_then(Value::as_str)
                    .unwrap_or("message")
                    .to_string();
                // An item done without being added is added first, as the public API would
                // have: with the call's id and name.
                let item = match self.find(&at) {
                    Some(item) => item,
                    None => self.add_item(upstream.as_ref(), &kind, at, out),
                };
                self.finish_item(item, upstream, out);
            }
            "response.content_part.added" | "response.reasoning_summary_part.added" => {
                let summary = kind == "response.reasoning_summary_part.added";
                let part_kind = PartKind::of_part(&fields, summary);
                let item = self.item_for(&at, if summary { "reasoning" } else { "message" }, out);
                let key = if summary {
                    "summary_index"
                } else {
                    "content_index"
                };
                let parts = self.items.get(item).map_or(0, |i| i.parts.len());
                let named = fields.get(key).and_then(Value::as_u64);
                // A part announced twice (or after its deltas) is announced once.
                if named.is_none_or(|n| n as usize >= parts) {
                    self.add_part(item, part_kind, Some(fields), out);
                }
            }
            "response.output_text.delta"
            | "response.refusal.delta"
            | "response.reasoning_summary_text.delta" => {
                let summary = kind == "response.reasoning_summary_text.delta";
                let (part_kind, key) = if summary {
                    (PartKind::Summary, "summary_index")
                } else {
                    (PartKind::of_delta(kind), "content_index")
                };
                let item = self.item_for(&at, if summary { "reasoning" } else { "message" }, out);
                let part = self.part_for(item, key, &fields, part_kind, out);
                let delta = fields
                    .get("delta")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Some(p) = self.items.get_mut(item).and_then(|i| i.parts.get_mut(part)) {
                    p.text.push_str(&delta);
                }
                let mut fields = self.place(item, Some((key, part)), fields);
                fields.insert("delta".into(), delta.into());
                if part_kind == PartKind::Text {
                    fields.entry("logprobs").or_insert(json!([]));
                }
                self.emit(kind, fields, out);
            }
            "response.output_text.done"
            | "response.refusal.done"
            | "response.reasoning_summary_text.done" => {
                let summary = kind == "response.reasoning_summary_text.done";
                let (part_kind, key, text_key) = match kind {
                    _ if summary => (PartKind::Summary, "summary_index", "text"),
                    "response.refusal.done" => (PartKind::Refusal, "content_index", "refusal"),
                    _ => (PartKind::Text, "content_index", "text"),
                };
                let item = self.item_for(&at, if summary { "reasoning" } else { "message" }, out);
                let part = self.part_for(item, key, &fields, part_kind, out);
                let Some(p) = self.items.get_mut(item).and_then(|i| i.parts.get_mut(part)) else {
                    return;
                };
                if p.text_done {
                    return;
                }
                p.text_done = true;
                if let Some(text) = fields.get(text_key).and_then(Value::as_str) {
                    p.text = text.to_string();
                }
                let text = p.text.clone();
                let mut fields = self.place(item, Some((key, part)), fields);
                fields.insert(text_key.into(), text.into());
                if part_kind == PartKind::Text {
                    fields.entry("logprobs").or_insert(json!([]));
                }
                self.emit(kind, fields, out);
            }
            "response.content_part.done" | "response.reasoning_summary_part.done" => {
                let summary = kind == "response.reasoning_summary_part.done";
                let key = if summary {
                    "summary_index"
                } else {
                    "content_index"
                };
                let part_kind = PartKind::of_part(&fields, summary);
                let item = self.item_for(&at, if summary { "reasoning" } else { "message" }, out);
                let part = self.part_for(item, key, &fields, part_kind, out);
                self.close_part(item, part, out);
            }
            "response.function_call_arguments.delta" => {
                let item = self.item_for(&at, "function_call", out);
                let delta = fields
                    .get("delta")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Some(it) = self.items.get_mut(item) {
                    it.arguments.push_str(&delta);
                }
                let mut fields = self.place(item, None, fields);
                fields.insert("delta".into(), delta.into());
                self.emit(kind, fields, out);
            }
            "response.function_call_arguments.done" => {
                let item = self.item_for(&at, "function_call", out);
                let Some(it) = self.items.get_mut(item) else {
                    return;
                };
                if it.arguments_done {
                    return;
                }
                it.arguments_done = true;
                if let Some(arguments) = fields.get("arguments").and_then(Value::as_str) {
                    it.arguments = arguments.to_string();
                }
                let arguments = it.arguments.clone();
                let mut fields = self.place(item, None, fields);
                fields.insert("arguments".into(), arguments.into());
                self.emit(kind, fields, out);
            }
            _ => {
                // An event keyward does not read (web search progress, annotations, ...): in
                // place, its item's index and id made the client's.
                if let Some(item) = self.find(&at) {
                    let had_id = fields.contains_key("item_id");
                    fields = self.place(item, None, fields);
                    if !had_id {
                        fields.remove("item_id");
                    }
                }
                self.emit(kind, fields, out);
            }
        }
    }
}

impl PublicStream {
    /// A text delta read and written without JSON trees, when it has only the fields the API
    /// sends on one (most of a stream's events are these); `false` leaves it to the general way.
    fn text_delta(&mut self, event: &Event, out: &mut Vec<u8>) -> bool {
        const KIND: &str = "response.output_text.delta";
        if self.identity.is_none() || event.event.as_deref() != Some(KIND) {
            return false;
        }
        let Ok(delta) = serde_json::from_str::<TextDelta>(&event.data) else {
            return false;
        };
        if delta.kind.as_deref().is_some_and(|kind| kind != KIND) {
            return false;
        }
        let at = ItemAt {
            index: delta.output_index,
            id: delta.item_id.map(Cow::into_owned),
        };
        let item = self.item_for(&at, "message", out);
        let part = self.part_at(item, delta.content_index, PartKind::Text, out);
        // From here on the event is handled: `item_for` and `part_at` may have written events.
        if let Some(p) = self.items.get_mut(item).and_then(|i| i.parts.get_mut(part)) {
            p.text.push_str(&delta.delta);
        }
        let sequence_number = self.next_sequence();
        let frame = TextDeltaFrame {
            kind: KIND,
            sequence_number,
            delta: &delta.delta,
            item_id: self.items.get(item).map_or("", |i| i.id.as_str()),
            output_index: item,
            content_index: part,
            logprobs: delta.logprobs.as_deref().unwrap_or(&EMPTY_LOGPROBS),
        };
        write_frame(out, Some(KIND), &frame);
        true
    }
}

/// An event as written: `type` and `sequence_number` first, then its fields (no map is built for
/// the frame).
struct Frame<'a> {
    kind: &'a str,
    sequence_number: u64,
    fields: &'a Map<String, Value>,
}

impl Serialize for Frame<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len() + 2))?;
        map.serialize_entry("type", self.kind)?;
        map.serialize_entry("sequence_number", &self.sequence_number)?;
        for (key, value) in self.fields {
            if key != "type" && key != "sequence_number" {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// An event keyward writes of its own about an item (no map is built for it): `type` and
/// `sequence_number`, where it is, then its body.
struct Placed<'a> {
    kind: &'a str,
    sequence_number: u64,
    item_id: Option<&'a str>,
    output_index: usize,
    /// The part's index, under its key (`content_index` or `summary_index`).
    part: Option<(&'static str, usize)>,
    body: Body<'a>,
}

/// What a [`Placed`] event carries after its place.
enum Body<'a> {
    /// The item (`item`) as announced.
    Added(&'a Item),
    /// The item (`item`) done, written.
    Done(&'a str),
    /// A part (`part`) of this kind with this text.
    Part(PartKind, &'a str),
    /// A text under its key, with an empty `logprobs` when the flag says so.
    Text(&'static str, &'a str, bool),
}

impl<'a> Placed<'a> {
    /// An event carrying a whole item (`output_item.added`, `.done`).
    fn item(kind: &'a str, sequence_number: u64, output_index: usize, body: Body<'a>) -> Self {
        Self {
            kind,
            sequence_number,
            item_id: None,
            output_index,
            part: None,
            body,
        }
    }

    /// Writes the event as an SSE frame, named by its type.
    fn write(&self, out: &mut Vec<u8>) {
        write_frame_with(out, Some(self.kind), |out| self.write_data(out));
    }

    /// The event's JSON, written from its fields (its own keys as they are).
    fn write_data(&self, out: &mut Vec<u8>) {
        let mut object = ObjectWriter::open(out);
        json_str(object.known(r#""type":"#), self.kind);
        json(object.known(r#""sequence_number":"#), &self.sequence_number);
        if let Some(item_id) = self.item_id {
            json_str(object.known(r#""item_id":"#), item_id);
        }
        json(object.known(r#""output_index":"#), &self.output_index);
        if let Some((key, index)) = self.part {
            json(object.member(key), &index);
        }
        match &self.body {
            Body::Added(item) => item.write_announced(object.known(r#""item":"#)),
            Body::Done(item) => object
                .known(r#""item":"#)
                .extend_from_slice(item.as_bytes()),
            Body::Part(kind, text) => PartJson(*kind, text).write(object.known(r#""part":"#)),
            Body::Text(key, text, logprobs) => {
                json_str(object.member(key), text);
                if *logprobs {
                    object.known(r#""logprobs":[]"#);
                }
            }
        }
        object.close();
    }
}

/// A part as its `.added` (empty) and `.done` (whole) events carry it: [`PartKind::part`]
/// without a tree.
struct PartJson<'a>(PartKind, &'a str);

impl PartJson<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        let PartJson(kind, text) = *self;
        let mut part = ObjectWriter::open(out);
        match kind {
            PartKind::Text => {
                part.known(r#""type":"output_text","annotations":[],"logprobs":[]"#);
                json_str(part.known(r#""text":"#), text);
            }
            PartKind::Refusal => {
                part.known(r#""type":"refusal""#);
                json_str(part.known(r#""refusal":"#), text);
            }
            PartKind::Summary => {
                part.known(r#""type":"summary_text""#);
                json_str(part.known(r#""text":"#), text);
            }
        }
        part.close();
    }
}

/// An upstream `response.output_text.delta` with only the fields the API sends on one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextDelta<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, rename = "sequence_number")]
    _sequence_number: Option<serde::de::IgnoredAny>,
    #[serde(borrow, default)]
    item_id: Option<Cow<'a, str>>,
    #[serde(default)]
    output_index: Option<u64>,
    #[serde(default)]
    content_index: Option<u64>,
    #[serde(borrow)]
    delta: Cow<'a, str>,
    #[serde(default)]
    logprobs: Option<Box<Value>>,
}

static EMPTY_LOGPROBS: Value = Value::Array(Vec::new());

#[derive(Serialize)]
struct TextDeltaFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    delta: &'a str,
    item_id: &'a str,
    output_index: usize,
    content_index: usize,
    logprobs: &'a Value,
}

/// Events that carry the response itself.
fn is_response_level(kind: &str) -> bool {
    matches!(
        kind,
        "response.created"
            | "response.in_progress"
            | "response.completed"
            | "response.incomplete"
            | "response.failed"
    )
}

impl SseTranslator for PublicStream {
    fn event(&mut self, event: &Event, out: &mut Vec<u8>) -> Flow {
        if self.ended || self.text_delta(event, out) {
            return Flow::Continue;
        }
        // Named as one of the response's own events: read without a tree (unless its `type`
        // says otherwise, which the general way below reads).
        if let Some(name) = event
            .event
            .as_deref()
            .filter(|name| is_response_level(name))
        {
            if let Some(fields) = RawEvent::parse(&event.data) {
                let typed = fields.members.get("type").is_some();
                if !typed || fields.members.string("type").as_deref() == Some(name) {
                    // Room for the response it carries, its defaults, the events that end its
                    // items and its output again, so the frames are written without regrowing.
                    out.reserve(2 * event.data.len() + 2048);
                    self.response_event(name, &fields, out);
                    return Flow::Continue;
                }
            }
        }
        let Some(Value::Object(mut fields)) = event_json(event) else {
            return Flow::Continue;
        };
        let kind = match fields.remove("type") {
            Some(Value::String(kind)) => kind,
            _ => return Flow::Continue,
        };
        if is_response_level(&kind) {
            if let Some(fields) = RawEvent::parse(&event.data) {
                self.response_event(&kind, &fields, out);
            }
            return Flow::Continue;
        }
        // Numbered here: events may have been added between the upstream's.
        fields.remove("sequence_number");
        PublicStream::event(self, &kind, fields, out);
        Flow::Continue
    }

    fn finish(&mut self, broken: Option<&str>, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        let failure = StreamFailure::cut_short(broken);
        let mut fields = Map::new();
        fields.insert("code".into(), failure.code.map_or(Value::Null, Value::from));
        fields.insert("message".into(), failure.message.into());
        fields.insert("param".into(), Value::Null);
        self.emit("error", fields, out);
        self.ended = true;
    }
}

#[cfg(test)]
#[path = "public_tests.rs"]
mod tests;
