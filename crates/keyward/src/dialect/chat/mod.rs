//! OpenAI Chat Completions (`/v1/chat/completions`), translated to the Responses API and back.
//!
//! A chat request becomes one Responses request: each message becomes input items (assistant tool
//! calls and tool results become `function_call` / `function_call_output` items), tools and
//! formats take their Responses shapes, and what the Responses API cannot carry is either
//! reported (`dropped`) or, when dropping it would change the answer, refused with a 400.
//!
//! The answer goes back as one `chat.completion` object or as `chat.completion.chunk` frames.
//! Legacy text completions answer with the same chunk machinery (`dialect::chunks`) in their own
//! shape; what only chat streams (reasoning, refusals, tool calls) is in `stream`.

mod conversation;
mod reply;
mod request;
#[cfg(test)]
pub(crate) mod strategies;
mod stream;
#[cfg(test)]
mod tests;

use serde_json::Value;

pub(crate) use request::translate;

use super::{Answer, StreamTranslator};
use stream::ChatStream;

/// How to answer a chat client.
struct ChatAnswer {
    model: String,
    stops: Vec<String>,
    include_usage: bool,
}

impl Answer for ChatAnswer {
    fn stream(self: Box<Self>) -> Box<dyn StreamTranslator> {
        Box::new(ChatStream::new(self.model, self.stops, self.include_usage))
    }

    fn reply(&self, response: &Value) -> Value {
        reply::reply(&self.model, &self.stops, response)
    }
}
