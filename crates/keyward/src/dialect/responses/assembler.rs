//! Assembling a Responses event stream into the final response object, for a client that did not
//! ask for a stream (the upstream only streams).

use serde_json::Value;

use super::event::StreamEvent;
use super::failure::StreamFailure;

/// Collects a Responses event stream into the final response object, as the Responses API
/// answers a request with `stream: false`.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    items: Vec<(u64, Value)>,
    done: Option<Result<Value, StreamFailure>>,
}

impl Assembler {
    /// One event, taken whole: the items and the final response are kept, not copied.
    pub(crate) fn push(&mut self, event: StreamEvent) {
        if self.done.is_some() {
            return;
        }
        match event {
            StreamEvent::OutputItemDone {
                item_ref,
                item: Some(item),
            } => {
                let index = item_ref.output_index.unwrap_or(self.items.len() as u64);
                self.items.push((index, item));
            }
            StreamEvent::Completed { response } | StreamEvent::Incomplete { response }
                if response.is_object() =>
            {
                self.done = Some(Ok(response));
            }
            StreamEvent::Failed(failure) | StreamEvent::Error(failure) => {
                self.done = Some(Err(failure))
            }
            _ => {}
        }
    }

    /// Whether a terminal event arrived.
    pub(crate) fn is_done(&self) -> bool {
        self.done.is_some()
    }

    /// The final response object; `broken` is the transport error, if the stream broke.
    pub(crate) fn finish(self, broken: Option<&str>) -> Result<Value, StreamFailure> {
        let mut response = match self.done {
            Some(done) => done?,
            None => return Err(StreamFailure::cut_short(broken)),
        };
        // The backend may leave the final object's `output` empty and send the items only as
        // `output_item.done` events.
        let empty = response
            .get("output")
            .and_then(Value::as_array)
            .is_none_or(|o| o.is_empty());
        if empty && !self.items.is_empty() {
            let mut items = self.items;
            items.sort_by_key(|(index, _)| *index);
            if let Some(object) = response.as_object_mut() {
                object.insert(
                    "output".into(),
                    Value::Array(items.into_iter().map(|(_, item)| item).collect()),
                );
            }
        }
        Ok(response)
    }
}
