//! `GET /healthz`: liveness, with each profile's health and keyward's refresh counters.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::Gateway;
use crate::report::profile_report;

pub(super) async fn handle(State(gateway): State<Arc<Gateway>>) -> Json<Value> {
    let broker = &gateway.broker;
    let mut profiles = Vec::new();
    for runtime in broker.profiles() {
        let view = broker.current_view(runtime).await;
        profiles.push(profile_report(broker, runtime, &view));
    }
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "profiles": profiles,
        "counters": broker.counters().snapshot(),
    }))
}
