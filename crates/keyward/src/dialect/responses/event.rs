//! The events of a Responses stream, typed. Each server-sent event's data is parsed once into a
//! [`StreamEvent`], which every stream translator and the assembler match on, instead of each
//! looking event names and fields up in untyped JSON.
//!
//! Fields are read as leniently as the translators always read them: a missing or mistyped
//! `delta` is empty, a missing `output_index` is unknown, an item or response object stays JSON
//! (the translators read it whole). So no upstream quirk tolerated before is refused now, and
//! an event keyward does not read is [`StreamEvent::Other`], passed over as it always was. The
//! one field no longer read is a `response` on an event that never carries one (a delta, an
//! item): only when such an event came first did it name the answer, and no upstream sends it.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::failure::StreamFailure;
use crate::dialect::sse::Event;

/// The output item an event belongs to, by its position in the response and by its id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ItemRef {
    pub output_index: Option<u64>,
    /// The event's `item_id`, or else its item's `id`.
    pub item_id: Option<String>,
}

/// One event of a Responses stream, as the translators read it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StreamEvent {
    /// `response.created`: the response exists (its id and time name the answer).
    Created { response: Value },
    /// `response.in_progress`.
    InProgress { response: Value },
    /// `response.output_item.added`: an output item (message, reasoning, function call) begins.
    OutputItemAdded {
        item_ref: ItemRef,
        item: Option<Value>,
    },
    /// `response.output_item.done`: an output item, whole.
    OutputItemDone {
        item_ref: ItemRef,
        item: Option<Value>,
    },
    /// `response.content_part.added`.
    ContentPartAdded,
    /// `response.content_part.done`.
    ContentPartDone,
    /// `response.output_text.delta`: a piece of the answer's text.
    OutputTextDelta {
        output_index: Option<u64>,
        delta: String,
    },
    /// `response.output_text.done`: the text again, whole (its deltas already carried it).
    OutputTextDone,
    /// `response.refusal.delta`: a piece of a refusal.
    RefusalDelta {
        output_index: Option<u64>,
        delta: String,
    },
    /// `response.reasoning_summary_part.added`.
    ReasoningSummaryPartAdded,
    /// `response.reasoning_summary_text.delta`: a piece of one part of a reasoning summary.
    ReasoningSummaryTextDelta {
        output_index: Option<u64>,
        summary_index: Option<u64>,
        delta: String,
    },
    /// `response.reasoning_summary_text.done`.
    ReasoningSummaryTextDone,
    /// `response.reasoning_summary_part.done`.
    ReasoningSummaryPartDone,
    /// `response.function_call_arguments.delta`: a piece of a call's arguments.
    FunctionCallArgumentsDelta { item_ref: ItemRef, delta: String },
    /// `response.function_call_arguments.done`: a call's arguments, whole (when a string).
    FunctionCallArgumentsDone {
        item_ref: ItemRef,
        arguments: Option<String>,
    },
    /// `response.completed`: the final response object.
    Completed { response: Value },
    /// `response.incomplete`: the final response object, cut short (token limit, filter).
    Incomplete { response: Value },
    /// `response.failed`.
    Failed(StreamFailure),
    /// `error`: the stream itself failed.
    Error(StreamFailure),
    /// Any other event (web search progress, annotations, ...), with its `response` (null when
    /// it has none): the first event of a stream names the answer, whatever its type.
    Other { response: Value },
}

impl StreamEvent {
    /// An event from its JSON; `None` for JSON that is not an object with a `type`.
    pub(crate) fn from_json(value: Value) -> Option<Self> {
        let kind = match value.as_object()?.get("type")? {
            Value::String(kind) => kind.clone(),
            // Not a name: an event of no type keyward knows.
            _ => String::new(),
        };
        match kind.as_str() {
            "response.failed" => return Some(Self::Failed(StreamFailure::from_event(&value))),
            "error" => return Some(Self::Error(StreamFailure::from_event(&value))),
            _ => {}
        }
        let Value::Object(mut fields) = value else {
            return None;
        };
        let output_index = fields.get("output_index").and_then(Value::as_u64);
        Some(match kind.as_str() {
            "response.created" => Self::Created {
                response: take_response(&mut fields),
            },
            "response.in_progress" => Self::InProgress {
                response: take_response(&mut fields),
            },
            "response.output_item.added" => Self::OutputItemAdded {
                item_ref: item_ref(&fields),
                item: fields.remove("item"),
            },
            "response.output_item.done" => Self::OutputItemDone {
                item_ref: item_ref(&fields),
                item: fields.remove("item"),
            },
            "response.content_part.added" => Self::ContentPartAdded,
            "response.content_part.done" => Self::ContentPartDone,
            "response.output_text.delta" => Self::OutputTextDelta {
                output_index,
                delta: take_text(&mut fields, "delta").unwrap_or_default(),
            },
            "response.output_text.done" => Self::OutputTextDone,
            "response.refusal.delta" => Self::RefusalDelta {
                output_index,
                delta: take_text(&mut fields, "delta").unwrap_or_default(),
            },
            "response.reasoning_summary_part.added" => Self::ReasoningSummaryPartAdded,
            "response.reasoning_summary_text.delta" => Self::ReasoningSummaryTextDelta {
                output_index,
                summary_index: fields.get("summary_index").and_then(Value::as_u64),
                delta: take_text(&mut fields, "delta").unwrap_or_default(),
            },
            "response.reasoning_summary_text.done" => Self::ReasoningSummaryTextDone,
            "response.reasoning_summary_part.done" => Self::ReasoningSummaryPartDone,
            "response.function_call_arguments.delta" => Self::FunctionCallArgumentsDelta {
                item_ref: item_ref(&fields),
                delta: take_text(&mut fields, "delta").unwrap_or_default(),
            },
            "response.function_call_arguments.done" => Self::FunctionCallArgumentsDone {
                item_ref: item_ref(&fields),
                arguments: take_text(&mut fields, "arguments"),
            },
            "response.completed" => Self::Completed {
                response: take_response(&mut fields),
            },
            "response.incomplete" => Self::Incomplete {
                response: take_response(&mut fields),
            },
            _ => Self::Other {
                response: take_response(&mut fields),
            },
        })
    }

    /// The response object the event carries; null for an event that carries none.
    pub(crate) fn response(&self) -> &Value {
        match self {
            Self::Created { response }
            | Self::InProgress { response }
            | Self::Completed { response }
            | Self::Incomplete { response }
            | Self::Other { response } => response,
            _ => &Value::Null,
        }
    }

    /// The failure a `response.failed` or `error` event reports.
    pub(crate) fn failure(&self) -> Option<&StreamFailure> {
        match self {
            Self::Failed(failure) | Self::Error(failure) => Some(failure),
            _ => None,
        }
    }
}

/// One upstream event, typed; its `type` comes from the SSE event name when the data lacks it.
/// `None` for data that is not a JSON object (a keep-alive, `[DONE]`), or has no type at all.
pub(crate) fn parse_event(event: &Event) -> Option<StreamEvent> {
    if let Some(delta) = parse_delta(event) {
        return Some(delta);
    }
    StreamEvent::from_json(event_json(event)?)
}

/// One upstream event as JSON, its `type` from the SSE event name when the data lacks it; `None`
/// for data that is not a JSON object, or has no type at all.
pub(crate) fn event_json(event: &Event) -> Option<Value> {
    let mut value: Value = serde_json::from_str(&event.data).ok()?;
    let object = value.as_object_mut()?;
    if !object.contains_key("type") {
        let name = event.event.clone()?;
        object.insert("type".into(), Value::String(name));
    }
    Some(value)
}

/// The fields of a delta event, read without building a JSON tree: most of a stream's events are
/// deltas, and a tree of each (a map with hashed keys) cost more than the rest of a translation.
#[derive(Deserialize)]
struct DeltaFields<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(default)]
    output_index: Option<u64>,
    #[serde(default)]
    summary_index: Option<u64>,
    #[serde(borrow, default)]
    item_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<Cow<'a, str>>,
}

/// A delta event, when the event's name says it is one and its fields are as the API sends them;
/// `None` sends it the general way (which reads any quirk as leniently as before).
fn parse_delta(event: &Event) -> Option<StreamEvent> {
    let name = event.event.as_deref()?;
    if !name.ends_with(".delta") {
        return None;
    }
    let fields: DeltaFields = serde_json::from_str(&event.data).ok()?;
    let kind = fields.kind.as_deref().unwrap_or(name);
    let delta = fields.delta?.into_owned();
    let output_index = fields.output_index;
    Some(match kind {
        "response.output_text.delta" => StreamEvent::OutputTextDelta {
            output_index,
            delta,
        },
        "response.refusal.delta" => StreamEvent::RefusalDelta {
            output_index,
            delta,
        },
        "response.reasoning_summary_text.delta" => StreamEvent::ReasoningSummaryTextDelta {
            output_index,
            summary_index: fields.summary_index,
            delta,
        },
        // Without its `item_id`, the call is named by an `item` this path does not read.
        "response.function_call_arguments.delta" => StreamEvent::FunctionCallArgumentsDelta {
            item_ref: ItemRef {
                output_index,
                item_id: Some(fields.item_id?.into_owned()),
            },
            delta,
        },
        _ => return None,
    })
}

fn item_ref(fields: &Map<String, Value>) -> ItemRef {
    let item_id = fields
        .get("item_id")
        .or_else(|| fields.get("item").and_then(|item| item.get("id")))
        .and_then(Value::as_str);
    ItemRef {
        output_index: fields.get("output_index").and_then(Value::as_u64),
        item_id: item_id.map(str::to_string),
    }
}

/// A string field, moved out; `None` when it is missing or not a string.
fn take_text(fields: &mut Map<String, Value>, key: &str) -> Option<String> {
    match fields.remove(key) {
        Some(Value::String(text)) => Some(text),
        _ => None,
    }
}

/// The event's `response`, moved out; null when it has none.
fn take_response(fields: &mut Map<String, Value>) -> Value {
    fields.remove("response").unwrap_or(Value::Null)
}
