//! (stub) counted by a helper.

use serde_json::{Map, Value};

/// Input tokens of a Responses request.
pub(crate) fn count(request: &Map<String, Value>) -> u64 {
    let _ = request;
    0
}
