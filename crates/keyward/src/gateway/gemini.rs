//! What keyward answers itself on Gemini's routes: the model list and one model in Gemini's
//! shape (`models/{id}`, the methods it serves), and `:countTokens`, counted locally over the
//! translated request as `/v1/messages/count_tokens` is.

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, Gateway};
use crate::dialect::{self, Dialect};

/// The methods a model is served with, as the list says them.
const METHODS: [&str; 3] = ["generateContent", "streamGenerateContent", "countTokens"];

/// One model in Gemini's shape. `served_by` names the upstream model of an alias.
fn entry(id: &str, display_name: &str, served_by: Option<&str>) -> Value {
    let description = match served_by {
        Some(target) => format!("Served by {target} through keyward"),
        None => format!("{display_name} through keyward"),
    };
    json!({
        "name": format!("models/{id}"),
        "baseModelId": id,
        "version": "keyward",
        "displayName": display_name,
        "description": description,
        "supportedGenerationMethods": METHODS,
    })
}

/// `GET /v1beta/models` (and a Gemini client's `GET /v1/models`): the served models, then every
/// alias that names one model. One page: there is no `nextPageToken`.
pub(super) fn list(gateway: &Gateway) -> Response {
    let models = &gateway.models;
    let mut list: Vec<Value> = models
        .served
        .iter()
        .map(|m| entry(&m.id, &m.display_name, None))
        .collect();
    list.extend(
        models
            .aliases
            .iter()
            .filter(|a| a.is_exact())
            .map(|a| entry(&a.pattern, &a.pattern, Some(&a.target))),
    );
    Json(json!({ "models": list })).into_response()
}

/// `GET /v1beta/models/{id}`: a served model, or any name keyward serves (`models/` before it
/// is taken too).
pub(super) fn one(gateway: &Gateway, id: &str) -> Response {
    let id = id.strip_prefix("models/").unwrap_or(id);
    let models = &gateway.models;
    if let Some(model) = models.served.iter().find(|m| m.id == id) {
        return Json(entry(&model.id, &model.display_name, None)).into_response();
    }
    match models.resolve(id) {
        Some(target) if target != id => Json(entry(id, id, Some(&target))).into_response(),
        Some(_) => Json(entry(id, id, None)).into_response(),
        None => ApiError::unknown_model(id).render(Dialect::Gemini),
    }
}

/// `POST .../models/{model}:countTokens`: `{"totalTokens": N}`, counted over the translated
/// request, so the count is of what the upstream would be sent.
pub(super) async fn count_tokens(gateway: &Arc<Gateway>, model: String, body: Bytes) -> Response {
    let gateway = gateway.clone();
    let counted = crate::cpu::run(body.len(), move || {
        let translated = dialect::gemini::translate_count(&model, &body)?;
        if gateway.models.resolve(&model).is_none() {
            return Err(ApiError::unknown_model(&model));
        }
        Ok(dialect::count_tokens::count(&translated.body))
    })
    .await;
    match counted {
        Ok(Ok(tokens)) => Json(json!({ "totalTokens": tokens })).into_response(),
        Ok(Err(error)) => error.render(Dialect::Gemini),
        Err(stopping) => ApiError::unavailable(stopping.to_string()).render(Dialect::Gemini),
    }
}
