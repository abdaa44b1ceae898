//! Reading a finished response object (the assembled answer, or the one a terminal event
//! carries): its output items and text, its token counts, and why it ended.

use serde_json::Value;

/// Token counts of a response, from its `usage` object (absent parts count 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
    pub reasoning: u64,
    pub total: u64,
}

impl Usage {
    /// From a response object (`response.usage`).
    pub(crate) fn of(response: &Value) -> Self {
        let usage = &response["usage"];
        let count = |pointer: &str| usage.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
        let input = count("/input_tokens");
        let output = count("/output_tokens");
        Self {
            input,
            cached_input: count("/input_tokens_details/cached_tokens"),
            output,
            reasoning: count("/output_tokens_details/reasoning_tokens"),
            total: usage
                .get("total_tokens")
                .and_then(Value::as_u64)
                // The counts come from upstream: a sum past u64 must not panic (or wrap).
                .unwrap_or(input.saturating_add(output)),
        }
    }
}

/// Why a response ended short of `completed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Completed,
    /// Cut at the output token limit.
    Length,
    /// Stopped by the content filter.
    ContentFilter,
}

impl Ending {
    /// From a final response object's `status` and `incomplete_details.reason`.
    pub(crate) fn of(response: &Value) -> Self {
        if response.get("status").and_then(Value::as_str) != Some("incomplete") {
            return Self::Completed;
        }
        match response
            .pointer("/incomplete_details/reason")
            .and_then(Value::as_str)
        {
            Some("content_filter") => Self::ContentFilter,
            _ => Self::Length,
        }
    }
}

/// The text of every `output_text` part of a response's assistant messages, joined.
pub(crate) fn output_text(response: &Value) -> String {
    let mut text = String::new();
    for item in output_items(response) {
        if item.get("type").and_then(Value::as_str) != Some("message") {
            continue;
        }
        for part in item
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if part.get("type").and_then(Value::as_str) == Some("output_text") {
                text.push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
            }
        }
    }
    text
}

/// A response's output items.
pub(crate) fn output_items(response: &Value) -> impl Iterator<Item = &Value> {
    response
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The concatenated summary text of a reasoning item.
pub(crate) fn reasoning_summary(item: &Value) -> String {
    item.get("summary")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n\n")
}
