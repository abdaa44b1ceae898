//! The tokens an answer used, read from the upstream's own usage as its body goes by.
//!
//! Every answer keyward serves is an upstream body (`upstream::UpstreamBody`), whichever way it
//! then reaches the client: passed through, translated event by event, or assembled. The tap sits
//! on that body, so one place sees the usage of every dialect's answer: the Responses stream's
//! `response.completed` (or `.incomplete`) event, an Anthropic stream's `message_start` and
//! `message_delta`, or a whole JSON answer's `usage`. Of a stream it reads only the data lines
//! that can carry usage (the first as it comes, the last two at the end), just their usage
//! objects (read by hand, [`scan`], where plainly written), and keeps the four counts. Nothing
//! else of the answer is kept.

mod scan;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use serde::Deserialize;

use crate::dialect::sse::Event;

/// The tokens of one answer, as its upstream counted them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Tokens {
    /// Input tokens, cached ones included.
    pub input: u64,
    /// The input tokens read from the prompt cache.
    pub cached: u64,
    /// Output tokens, reasoning ones included.
    pub output: u64,
    /// The output tokens spent reasoning.
    pub reasoning: u64,
}

impl Tokens {
    /// What limits count: input and output.
    pub(crate) fn total(&self) -> u64 {
        self.input.saturating_add(self.output)
    }

    pub(crate) fn add(&mut self, other: &Tokens) {
        self.input = self.input.saturating_add(other.input);
        self.cached = self.cached.saturating_add(other.cached);
        self.output = self.output.saturating_add(other.output);
        self.reasoning = self.reasoning.saturating_add(other.reasoning);
    }
}

/// Where the tap leaves what it read; the ledger's record of the request reads it at the end.
#[derive(Debug, Default)]
pub(crate) struct UsageSlot {
    inner: Mutex<Slot>,
}

#[derive(Debug, Default)]
struct Slot {
    tokens: Option<Tokens>,
    /// What the stream's first data line reported, read as it came (a copy of the line would
    /// cost more than reading it), not yet merged.
    first: Option<Seen>,
    /// The stream's last two data lines so far (the earlier first), not yet read: they are read
    /// when the tokens are asked for, so an answer whose reader stopped at its terminal event,
    /// without reading the body to its end, counts them too.
    last: [Option<Bytes>; 2],
}

impl UsageSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tokens read so far, if the answer reported any.
    pub(crate) fn tokens(&self) -> Option<Tokens> {
        let mut slot = self.lock();
        slot.read_lines();
        slot.tokens
    }

    /// One event of a Responses stream that its reader parsed anyway: its usage, if it is an
    /// event that carries one. Only a terminal event does (`response.completed`, `.incomplete`,
    /// `.failed`); the stream's other events are named for what they are and not searched. An
    /// event with no name, or with one that is not a Responses event's, is searched as the tap
    /// would.
    pub(crate) fn read_event(&self, event: &Event) {
        let carries = event.event.as_deref().is_none_or(|name| {
            matches!(
                name,
                "response.completed" | "response.incomplete" | "response.failed"
            ) || !name.starts_with("response.")
        });
        if carries {
            if let Some(seen) = seen_in_data(event.data.as_bytes()) {
                self.merge(seen);
            }
        }
    }

    /// Sets the counts an event reported (each one it names; a later event wins).
    fn merge(&self, seen: Seen) {
        self.lock().merge(seen);
    }
}

impl Slot {
    fn read_lines(&mut self) {
        let lines = [self.last[0].take(), self.last[1].take()];
        // Latest first: a count a later event names is not read from an earlier one, and once
        // every count is named (a Responses stream's terminal event names all four) the earlier
        // lines, the answer's text among them, are not searched at all.
        let mut latest: Option<Seen> = None;
        let earlier_lines = lines.iter().rev().flatten().map(|line| seen_in_line(line));
        // The first line was read as it came.
        for earlier in earlier_lines.chain([self.first.take()]).flatten() {
            let seen = latest.map_or(earlier, |later| later.or(earlier));
            latest = Some(seen);
            if seen.is_whole() {
                break;
            }
        }
        if let Some(seen) = latest {
            self.merge(seen);
        }
    }

    fn merge(&mut self, seen: Seen) {
        let tokens = self.tokens.get_or_insert_with(Tokens::default);
        if let Some(input) = seen.input {
            tokens.input = input;
        }
        if let Some(cached) = seen.cached {
            tokens.cached = cached;
        }
        if let Some(output) = seen.output {
            tokens.output = output;
        }
        if let Some(reasoning) = seen.reasoning {
            tokens.reasoning = reasoning;
        }
    }

    /// The stream's data lines gained `newer` (the earlier first, at most two).
    fn push_last(&mut self, newer: [Option<Bytes>; 2]) {
        match newer {
            [Some(earlier), Some(later)] => self.last = [Some(earlier), Some(later)],
            [None, Some(later)] | [Some(later), None] => {
                self.last = [self.last[1].take(), Some(later)]
            }
            [None, None] => {}
        }
    }
}

/// The counts one event or object names.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    input: Option<u64>,
    cached: Option<u64>,
    output: Option<u64>,
    reasoning: Option<u64>,
}

impl Seen {
    /// Every count named.
    fn is_whole(&self) -> bool {
        self.input.is_some()
            && self.cached.is_some()
            && self.output.is_some()
            && self.reasoning.is_some()
    }

    /// These counts, and `earlier`'s where these name none.
    fn or(self, earlier: Seen) -> Seen {
        Seen {
            input: self.input.or(earlier.input),
            cached: self.cached.or(earlier.cached),
            output: self.output.or(earlier.output),
            reasoning: self.reasoning.or(earlier.reasoning),
        }
    }
}

/// A line longer than this is not read for usage (the completed event of an answer of many
/// megabytes is cut short rather than held).
const MAX_LINE: usize = 16 << 20;
/// A whole (non-streamed) answer is read for its usage up to this size.
const MAX_WHOLE: usize = 8 << 20;
const MARKER: &[u8] = b"\"usage\"";
/// Where the marker's `g` is in it: the byte searched for.
const MARKER_G: usize = 4;

/// Reads usage from an upstream body, chunk by chunk.
///
/// A stream's usage is in its first event (Anthropic's `message_start`) or in one of its last
/// two (the Responses API's terminal `response.completed` or `.incomplete`; Anthropic's
/// `message_delta`, before its `message_stop`; a Chat stream's last chunk, before `[DONE]`). So
/// the tap reads the first as it comes, keeps the last two (as slices of the chunks they came
/// in), and reads them at the end: each chunk costs a search back from its end to its last two
/// data lines, rather than a search of every byte of the answer.
#[derive(Debug)]
pub(crate) struct UsageTap {
    slot: Arc<UsageSlot>,
    /// Server-sent events (read line by line) or one JSON document (read at its end).
    events: bool,
    /// An event line (or the whole document) not yet complete.
    partial: Vec<u8>,
    /// The partial line grew past the bound: skip to its end.
    overflowed: bool,
    /// The stream's first data line has gone to the slot.
    first_seen: bool,
}

impl UsageTap {
    pub(crate) fn new(slot: Arc<UsageSlot>, events: bool) -> Self {
        Self {
            slot,
            events,
            partial: Vec::new(),
            overflowed: false,
            first_seen: false,
        }
    }

    /// One piece of the body.
    pub(crate) fn feed(&mut self, chunk: &Bytes) {
        if !self.events {
            if self.partial.len() + chunk.len() <= MAX_WHOLE {
                self.partial.extend_from_slice(chunk);
            } else {
                self.overflowed = true;
            }
            return;
        }
        let Some(last_newline) = memchr::memrchr(b'\n', chunk) else {
            self.keep(chunk);
            return;
        };
        // The line the last chunk left unfinished ends at this chunk's first newline.
        let mut whole_from = 0;
        if !self.partial.is_empty() || self.overflowed {
            let at = memchr::memchr(b'\n', chunk).unwrap_or(last_newline);
            self.keep(&chunk[..at]);
            let line = std::mem::take(&mut self.partial);
            if !std::mem::take(&mut self.overflowed) {
                self.seen_line(Bytes::from(line));
            }
            whole_from = at + 1;
        }
        let complete = &chunk[whole_from..last_newline + 1];
        if !self.first_seen {
            let mut rest = complete;
            while let Some(at) = memchr::memchr(b'\n', rest) {
                if is_data(&rest[..at]) {
                    self.first_line(&rest[..at]);
                    break;
                }
                rest = &rest[at + 1..];
            }
        }
        // Back from the end: this chunk's last two data lines.
        let mut found: [Option<Bytes>; 2] = [None, None];
        let mut count = 0;
        let mut end = complete.len().saturating_sub(1);
        loop {
            let start = memchr::memrchr(b'\n', &complete[..end]).map_or(0, |at| at + 1);
            if is_data(&complete[start..end]) {
                count += 1;
                found[2 - count] = Some(chunk.slice(whole_from + start..whole_from + end));
            }
            if count == 2 || start == 0 {
                break;
            }
            end = start - 1;
        }
        if count > 0 {
            self.slot.lock().push_last(found);
        }
        self.keep(&chunk[last_newline + 1..]);
    }

    /// The body ended: a last line without its newline, or the whole document, is read now.
    pub(crate) fn end(&mut self) {
        let rest = std::mem::take(&mut self.partial);
        if std::mem::take(&mut self.overflowed) {
            return;
        }
        if !self.events {
            if let Some(seen) = seen_in(&rest) {
                self.slot.merge(seen);
            }
            return;
        }
        self.seen_line(Bytes::from(rest));
        self.slot.lock().read_lines();
    }

    /// A complete line that ended a partial one (or the body).
    fn seen_line(&mut self, line: Bytes) {
        if !is_data(&line) {
            return;
        }
        if !self.first_seen {
            self.first_line(&line);
        }
        self.slot.lock().push_last([None, Some(line)]);
    }

    /// The stream's first data line: read now, for the counts an Anthropic `message_start`
    /// reports (most first events name none).
    fn first_line(&mut self, line: &[u8]) {
        self.first_seen = true;
        if let Some(seen) = seen_in_line(line) {
            self.slot.lock().first = Some(seen);
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.overflowed || bytes.is_empty() {
            return;
        }
        if self.partial.len() + bytes.len() > MAX_LINE {
            self.partial = Vec::new();
            self.overflowed = true;
        } else {
            self.partial.extend_from_slice(bytes);
        }
    }
}

/// One event line: its data's usage, if it mentions usage. Every upstream puts the usage
/// object last, after the answer's text (often most of the event): it is parsed from its key
/// alone, and the whole event only when what follows the key is not a usage object.
fn seen_in_line(line: &[u8]) -> Option<Seen> {
    let data = line.strip_prefix(b"data:")?;
    let data = data.strip_prefix(b" ").unwrap_or(data);
    seen_in_data(data.strip_suffix(b"\r").unwrap_or(data))
}

/// An event's data: its usage, as for [`seen_in_line`].
fn seen_in_data(data: &[u8]) -> Option<Seen> {
    let at = last_marker(data)?;
    let value = data[at + MARKER.len()..]
        .trim_ascii_start()
        .strip_prefix(b":")
        .map(<[u8]>::trim_ascii_start);
    match value {
        Some(value) if value.starts_with(b"null") => None,
        Some(value) => match scan::usage(value).or_else(|| {
            RawUsage::deserialize(&mut serde_json::Deserializer::from_slice(value)).ok()
        }) {
            Some(usage) => Some(usage.seen()),
            None => seen_in(data),
        },
        None => seen_in(data),
    }
}

/// Where `"usage"` last appears in `data`, searched back from its end: every upstream puts the
/// usage object last, so a terminal event's answer text, before it, is not read. The search goes
/// from one `g` to the one before (a vector search each, the marker's rarest letter in JSON), and
/// compares the marker only there.
fn last_marker(data: &[u8]) -> Option<usize> {
    let mut end = data.len();
    while let Some(g) = memchr::memrchr(b'g', &data[..end]) {
        if let Some(start) = g.checked_sub(MARKER_G) {
            if data[start..].starts_with(MARKER) {
                return Some(start);
            }
        }
        end = g;
    }
    None
}

fn is_data(line: &[u8]) -> bool {
    line.starts_with(b"data:")
}

/// The usage an event or answer carries: its own `usage` (an Anthropic `message_delta`, a whole
/// answer), its `response`'s (a Responses event) or its `message`'s (an Anthropic
/// `message_start`).
fn seen_in(json: &[u8]) -> Option<Seen> {
    let carrier: Carrier = serde_json::from_slice(json).ok()?;
    let usage = carrier
        .usage
        .or(carrier.response.and_then(|r| r.usage))
        .or(carrier.message.and_then(|m| m.usage))?;
    Some(usage.seen())
}

#[derive(Deserialize)]
struct Carrier {
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(default)]
    response: Option<Holder>,
    #[serde(default)]
    message: Option<Holder>,
}

#[derive(Deserialize)]
struct Holder {
    #[serde(default)]
    usage: Option<RawUsage>,
}

/// The Responses API's usage and Anthropic's, in one shape.
#[derive(Debug, Default, PartialEq, Deserialize)]
struct RawUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
    /// Anthropic: input read from the cache, which its `input_tokens` leaves out.
    cache_read_input_tokens: Option<u64>,
    /// Anthropic: input written to the cache, also left out of its `input_tokens`.
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct InputDetails {
    cached_tokens: Option<u64>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct OutputDetails {
    reasoning_tokens: Option<u64>,
}

impl RawUsage {
    fn seen(self) -> Seen {
        let anthropic =
            self.cache_read_input_tokens.is_some() || self.cache_creation_input_tokens.is_some();
        if anthropic {
            let read = self.cache_read_input_tokens.unwrap_or(0);
            let written = self.cache_creation_input_tokens.unwrap_or(0);
            return Seen {
                input: self
                    .input_tokens
                    .map(|input| input.saturating_add(read).saturating_add(written)),
                cached: Some(read),
                output: self.output_tokens,
                reasoning: None,
            };
        }
        Seen {
            input: self.input_tokens,
            cached: self.input_tokens_details.and_then(|d| d.cached_tokens),
            output: self.output_tokens,
            reasoning: self.output_tokens_details.and_then(|d| d.reasoning_tokens),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tapped(chunks: &[&[u8]], events: bool) -> Option<Tokens> {
        let slot = Arc::new(UsageSlot::default());
        let mut tap = UsageTap::new(slot.clone(), events);
        for chunk in chunks {
            tap.feed(&Bytes::copy_from_slice(chunk));
        }
        tap.end();
        slot.tokens()
    }

    const COMPLETED: &str = "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"output\":[{\"content\":[{\"text\":\"say \\\"usage\\\" here\"}]}],\"usage\":{\"input_tokens\":120,\"input_tokens_details\":{\"cached_tokens\":100},\"output_tokens\":30,\"output_tokens_details\":{\"reasoning_tokens\":12},\"total_tokens\":150}}}\n\n";

    /// The recorded streams of the translators' tests, cut anywhere, give the completed event's
    /// usage; an event that only mentions usage in its text changes nothing.
    #[test]
    fn responses_streams_cut_anywhere() {
        let fixtures = [
            include_str!("../dialect/fixtures/text.sse"),
            include_str!("../dialect/fixtures/reasoning.sse"),
            include_str!("../dialect/fixtures/tool_call.sse"),
        ];
        for fixture in fixtures {
            let whole = tapped(&[fixture.as_bytes()], true);
            assert!(whole.is_some(), "no usage in a fixture");
            let bytes = fixture.as_bytes();
            for cut in [1, 7, 64, bytes.len() / 2, bytes.len() - 1] {
                let (a, b) = bytes.split_at(cut.min(bytes.len()));
                assert_eq!(tapped(&[a, b], true), whole, "cut at {cut}");
            }
            let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(tapped(&bytewise, true), whole);
        }
        let text = format!(
            "data: {{\"type\":\"response.output_text.delta\",\"delta\":\"\\\"usage\\\"\"}}\n\n{COMPLETED}"
        );
        assert_eq!(
            tapped(&[text.as_bytes()], true),
            Some(Tokens {
                input: 120,
                cached: 100,
                output: 30,
                reasoning: 12
            })
        );
        let crlf = COMPLETED.replace('\n', "\r\n");
        assert_eq!(
            tapped(&[crlf.as_bytes()], true),
            tapped(&[COMPLETED.as_bytes()], true)
        );
        assert_eq!(
            tapped(
                &[b"data: {\"type\":\"response.created\",\"response\":{\"usage\":null}}\n\n"],
                true
            ),
            None
        );
    }

    /// A stream's reader that parses its events hands them to the slot: the same counts as the
    /// tap reads from the bytes, from the terminal event alone; an event named as a delta is
    /// not searched, one without a name is.
    #[test]
    fn parsed_events_give_what_the_tap_reads() {
        let read = |stream: &str| {
            let slot = UsageSlot::default();
            let mut parser = crate::dialect::sse::SseParser::default();
            for event in parser
                .push(stream.as_bytes())
                .iter()
                .chain(&parser.finish())
            {
                slot.read_event(event);
            }
            slot.tokens()
        };
        for fixture in [
            include_str!("../dialect/fixtures/text.sse"),
            include_str!("../dialect/fixtures/reasoning.sse"),
            include_str!("../dialect/fixtures/tool_call.sse"),
            COMPLETED,
        ] {
            let tapped = tapped(&[fixture.as_bytes()], true);
            assert!(tapped.is_some());
            assert_eq!(read(fixture), tapped);
        }
        let named_delta = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"usage\":{\"input_tokens\":9}}\n\n";
        assert_eq!(read(named_delta), None);
        let unnamed = COMPLETED.replace("event: response.completed\n", "");
        assert_eq!(read(&unnamed), read(COMPLETED));
    }

    /// The last `"usage"` of a line, wherever it is (the search's vector steps are 32 bytes).
    #[test]
    fn the_last_usage_key_is_found_anywhere() {
        let marker = std::str::from_utf8(MARKER).unwrap_or_default();
        for len in [0, 3, 4, 7, 31, 32, 33, 508, 512, 513, 1536] {
            for at in (0..len).step_by(1 + len / 97) {
                // An earlier one, apart from it.
                for also in [None, Some(at / 2)]
                    .into_iter()
                    .filter(|also| also.is_none_or(|earlier| earlier + MARKER.len() <= at))
                {
                    // Filled with `g`s and near-markers, which the search passes by.
                    let mut line: Vec<u8> = b"ag\"usageg\"usag x"
                        .iter()
                        .copied()
                        .cycle()
                        .take(len + MARKER.len())
                        .collect();
                    if let Some(earlier) = also {
                        line[earlier..earlier + MARKER.len()].copy_from_slice(MARKER);
                    }
                    line[at..at + MARKER.len()].copy_from_slice(MARKER);
                    let expected = String::from_utf8_lossy(&line).rfind(marker);
                    assert_eq!(last_marker(&line), expected, "len {len}, at {at}");
                }
            }
            assert_eq!(last_marker(&vec![b'g'; len]), None);
        }
    }

    /// A reader that stops at the terminal event, without reading the body to its end (an
    /// answer assembled for a caller that did not stream), still has its usage counted.
    #[test]
    fn a_reader_that_stops_at_the_terminal_event() {
        let slot = Arc::new(UsageSlot::default());
        let mut tap = UsageTap::new(slot.clone(), true);
        tap.feed(&Bytes::from_static(COMPLETED.as_bytes()));
        drop(tap);
        assert_eq!(slot.tokens().map(|t| t.output), Some(30));
    }

    /// An Anthropic stream's input (with its cache reads) and output, from two events.
    #[test]
    fn anthropic_streams_and_whole_answers() {
        let stream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":20,\"cache_read_input_tokens\":80,\"cache_creation_input_tokens\":0,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":42}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let expected = Some(Tokens {
            input: 100,
            cached: 80,
            output: 42,
            reasoning: 0,
        });
        assert_eq!(tapped(&[stream.as_bytes()], true), expected);
        let bytewise: Vec<&[u8]> = stream.as_bytes().chunks(1).collect();
        assert_eq!(tapped(&bytewise, true), expected);
        let whole = br#"{"id":"resp","object":"response","usage":{"input_tokens":5,"output_tokens":7,"output_tokens_details":{"reasoning_tokens":2}}}"#;
        let (a, b) = whole.split_at(20);
        assert_eq!(
            tapped(&[a, b], false),
            Some(Tokens {
                input: 5,
                cached: 0,
                output: 7,
                reasoning: 2
            })
        );
        assert_eq!(tapped(&[b"not json"], false), None);
    }
}
