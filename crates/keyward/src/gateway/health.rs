//! `GET /healthz`: liveness, with each profile's health, cooldown and usage windows, and
//! keyward's refresh counters.
//!
//! What it shows depends on the caller: a caller with a gateway key sees everything; without
//! keys (any local process, other users' included, can reach a loopback port) everything but the
//! accounts' e-mail addresses, which `keyward status` shows to the user who runs it; a caller
//! without a key when keyward has keys, only that keyward is alive.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::front_door::Caller;
use super::Gateway;
use crate::report::pool_reports;

pub(super) async fn handle(gateway: &Gateway, caller: Caller) -> Response {
    if caller == Caller::Anonymous {
        return Json(json!({"status": "ok"})).into_response();
    }
    let broker = &gateway.broker;
    let mut profiles = pool_reports(broker, &gateway.pool).await;
    if caller == Caller::Open {
        for profile in &mut profiles {
            profile.email = None;
        }
    }
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "profiles": profiles,
        "counters": broker.counters().snapshot(),
    }))
    .into_response()
}
