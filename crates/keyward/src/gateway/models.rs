//! What keyward answers itself: the model list (OpenAI's shape, or Anthropic's when the caller
//! sends `anthropic-version`) and token counting.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, Gateway};
use crate::dialect::{self, Dialect};

/// A fixed date for the models' `created` fields: keyward does not know when a model was made.
const CREATED: i64 = 1_764_115_200; // 2025-11-26
const CREATED_AT: &str = "2025-11-26T00:00:00Z";

fn anthropic(headers: &HeaderMap) -> bool {
    headers.contains_key("anthropic-version")
}

/// One model entry in the caller's shape. `served_by` names the upstream model of an alias.
fn entry(id: &str, display_name: &str, served_by: Option<&str>, anthropic: bool) -> Value {
    let mut entry = if anthropic {
        json!({"type": "model", "id": id, "display_name": display_name, "created_at": CREATED_AT})
    } else {
        json!({"id": id, "object": "model", "created": CREATED, "owned_by": if served_by.is_some() { "keyward" } else { "openai" }})
    };
    if let (Some(target), Some(object)) = (served_by, entry.as_object_mut()) {
        object.insert("served_by".into(), target.into());
    }
    entry
}

/// `GET /v1/models`: the served models, then every alias that names one model.
pub(super) fn list(gateway: &Gateway, headers: &HeaderMap) -> Response {
    let anthropic = anthropic(headers);
    let models = &gateway.models;
    let mut data: Vec<Value> = models
        .served
        .iter()
        .map(|m| entry(&m.id, &m.display_name, None, anthropic))
        .collect();
    data.extend(
        models
            .aliases
            .iter()
            .filter(|a| a.is_exact())
            .map(|a| entry(&a.pattern, &a.pattern, Some(&a.target), anthropic)),
    );
    let body = if anthropic {
        let first = data.first().and_then(|m| m.get("id")).cloned();
        let last = data.last().and_then(|m| m.get("id")).cloned();
        json!({"data": data, "has_more": false, "first_id": first, "last_id": last})
    } else {
        json!({"object": "list", "data": data})
    };
    Json(body).into_response()
}

/// `GET /v1/models/{id}`: a served model, or any name an alias serves.
pub(super) fn one(gateway: &Gateway, id: &str, headers: &HeaderMap) -> Response {
    let anthropic = anthropic(headers);
    let models = &gateway.models;
    if let Some(model) = models.served.iter().find(|m| m.id == id) {
        return Json(entry(&model.id, &model.display_name, None, anthropic)).into_response();
    }
    if let Some(alias) = models.alias_for(id) {
        return Json(entry(id, id, Some(&alias.target), anthropic)).into_response();
    }
    let dialect = if anthropic {
        Dialect::Messages
    } else {
        Dialect::Responses
    };
    if models.resolve(id).is_some() {
        // An OpenAI name keyward would pass upstream as asked, but cannot vouch for.
        return Json(entry(id, id, None, anthropic)).into_response();
    }
    ApiError::unknown_model(id).render(dialect)
}

/// `POST /v1/messages/count_tokens`: counted locally over the translated request, so the count
/// is of what the upstream would be sent.
pub(super) async fn count_tokens(gateway: &Arc<Gateway>, body: Bytes) -> Response {
    let gateway = gateway.clone();
    let counted = crate::cpu::run(body.len(), move || {
        let translated = dialect::messages::translate(&body)?;
        if gateway.models.resolve(&translated.model).is_none() {
            return Err(ApiError::unknown_model(&translated.model));
        }
        Ok(dialect::count_tokens::count(&translated.body))
    })
    .await;
    match counted {
        Ok(Ok(tokens)) => Json(json!({"input_tokens": tokens})).into_response(),
        Ok(Err(error)) => error.render(Dialect::Messages),
        Err(stopping) => ApiError::unavailable(stopping.to_string()).render(Dialect::Messages),
    }
}
