//! `GET /healthz`: liveness, with each profile's health, cooldown and usage windows, and
//! keyward's refresh counters.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::front_door::Authenticated;
use super::Gateway;
use crate::report::pool_reports;

pub(super) async fn handle(
    State(gateway): State<Arc<Gateway>>,
    Extension(Authenticated(authenticated)): Extension<Authenticated>,
) -> Json<Value> {
    // Without a key (when keyward has keys), only liveness: accounts and plans are not for
    // whoever reaches the port.
    if !authenticated {
        return Json(json!({"status": "ok"}));
    }
    let broker = &gateway.broker;
    let profiles = pool_reports(broker, &gateway.pool).await;
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "profiles": profiles,
        "counters": broker.counters().snapshot(),
    }))
}
