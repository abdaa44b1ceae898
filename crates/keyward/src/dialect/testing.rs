//! Test support for the translators: the recorded Responses event streams in `fixtures/`, and a
//! driver that runs a stream translator over them.

use serde_json::Value;

use super::responses::{parse_event, Assembler, StreamEvent};
use super::sse::{Event, SseParser};
use super::{Flow, StreamTranslator};

/// The recorded upstream streams, by name.
pub(crate) fn fixture(name: &str) -> &'static str {
    match name {
        "text" => include_str!("fixtures/text.sse"),
        "tool_call" => include_str!("fixtures/tool_call.sse"),
        "parallel_tool_calls" => include_str!("fixtures/parallel_tool_calls.sse"),
        "reasoning" => include_str!("fixtures/reasoning.sse"),
        "length" => include_str!("fixtures/length.sse"),
        "error_midstream" => include_str!("fixtures/error_midstream.sse"),
        other => panic!("no fixture named {other}"),
    }
}

/// A recorded stream's events, parsed.
pub(crate) fn fixture_events(name: &str) -> Vec<StreamEvent> {
    let mut parser = SseParser::default();
    let mut events = parser.push(fixture(name).as_bytes());
    events.extend(parser.finish());
    events.iter().filter_map(parse_event).collect()
}

/// A recorded stream, assembled into its final response object.
pub(crate) fn assembled(name: &str) -> Value {
    let mut assembler = Assembler::default();
    for event in fixture_events(name) {
        assembler.push(event);
    }
    assembler
        .finish(None)
        .unwrap_or_else(|e| panic!("{name} failed: {e:?}"))
}

/// Events written as JSON, typed as the upstream's would be.
pub(crate) fn typed(events: &[Value]) -> Vec<StreamEvent> {
    events
        .iter()
        .map(|event| {
            StreamEvent::from_json(event.clone()).unwrap_or_else(|| panic!("not an event: {event}"))
        })
        .collect()
}

/// Runs `translator` over `events`, then finishes it (`broken`: the transport error, if any);
/// returns everything it wrote.
pub(crate) fn run(
    mut translator: Box<dyn StreamTranslator>,
    events: &[StreamEvent],
    broken: Option<&str>,
) -> String {
    let mut out = Vec::new();
    for event in events {
        if translator.event(event, &mut out) == Flow::Stop {
            break;
        }
    }
    translator.finish(broken, &mut out);
    String::from_utf8(out).unwrap_or_else(|e| panic!("translator wrote non-UTF-8: {e}"))
}

/// The frames a translator wrote, parsed back: `(event name, data)`; `data: [DONE]` becomes
/// `Value::String("[DONE]")`.
pub(crate) fn frames(text: &str) -> Vec<(Option<String>, Value)> {
    let mut parser = SseParser::default();
    let mut events: Vec<Event> = parser.push(text.as_bytes());
    events.extend(parser.finish());
    events
        .into_iter()
        .map(|e| {
            let data = serde_json::from_str(&e.data).unwrap_or(Value::String(e.data.clone()));
            (e.event, data)
        })
        .collect()
}
