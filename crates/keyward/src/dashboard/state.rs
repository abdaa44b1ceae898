//! What the dashboard shows, as one JSON document its page polls: each profile (health, account
//! and plan, token expiry, lineage, last refresh and who did it, cooldown), each usage window with
//! every key's share, usage over 24 hours and 7 days by key and by client, the latest requests and
//! refreshes. No prompt, answer, token or key is in it; e-mail addresses only for a caller with a
//! gateway key (as `/healthz`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::gateway::Gateway;
use crate::ledger::{window_reports, Ledger, WindowReport};
use crate::profile::ProfileId;
use crate::report::pool_reports;
use crate::store::{
    GroupBy, HealthEvent, RefreshRecord, RequestRecord, SeriesPoint, Store, StoreResult, Usage,
    UsageGroup,
};

const LATEST_REQUESTS: usize = 50;
const LATEST_REFRESHES: usize = 20;
const LATEST_HEALTH: usize = 5;

/// One chart's data: `buckets` buckets of `bucket_secs` from `start`, tokens by group.
#[derive(Debug, Serialize)]
struct Series {
    start: DateTime<Utc>,
    bucket_secs: i64,
    buckets: i64,
    by_key: Vec<SeriesPoint>,
    by_client: Vec<SeriesPoint>,
    totals_by_key: Vec<UsageGroup>,
    totals_by_client: Vec<UsageGroup>,
}

#[derive(Debug, Serialize)]
struct HealthRecord {
    profile: String,
    #[serde(flatten)]
    event: HealthEvent,
}

/// What the store holds for the page (read off the serving thread).
#[derive(Debug, Serialize)]
struct Stored {
    day: Option<Series>,
    week: Option<Series>,
    windows: Vec<WindowReport>,
    requests: Vec<RequestRecord>,
    refreshes: Vec<RefreshRecord>,
    health: Vec<HealthRecord>,
}

/// The dashboard's state for a viewer who may (`emails`) or may not see e-mail addresses.
pub(super) async fn state(gateway: &Gateway, emails: bool, viewer: Option<String>) -> Value {
    let now = gateway.clock.now();
    let mut profiles = pool_reports(&gateway.broker, &gateway.pool).await;
    if !emails {
        for profile in &mut profiles {
            profile.email = None;
        }
    }
    let usage: Vec<(ProfileId, Usage)> = gateway
        .pool
        .members()
        .iter()
        .filter_map(|m| Some((m.profile().clone(), gateway.pool.usage(m.profile())?)))
        .collect();
    let ledger = gateway.ledger.clone();
    let store = gateway.broker.store().clone();
    let stored = tokio::task::spawn_blocking(move || read(&ledger, store.as_ref(), &usage, now))
        .await
        .map_err(|e| e.to_string())
        .and_then(|read| read.map_err(|e| e.to_string()));
    let stored = match stored {
        Ok(stored) => json!(stored),
        Err(error) => {
            tracing::warn!(%error, "the dashboard could not read the usage ledger");
            json!({"error": format!("the usage ledger could not be read: {error}")})
        }
    };
    json!({
        "now": now,
        "version": env!("CARGO_PKG_VERSION"),
        "viewer": viewer,
        "keys_required": !gateway.config.api_keys.is_empty(),
        "ledger": gateway.ledger.reader().is_some(),
        "profiles": profiles,
        "counters": gateway.broker.counters().snapshot(),
        "stored": stored,
    })
}

fn read(
    ledger: &Ledger,
    journal: &dyn Store,
    usage: &[(ProfileId, Usage)],
    now: DateTime<Utc>,
) -> StoreResult<Stored> {
    let mut health = Vec::new();
    for (profile, _) in usage {
        for event in journal.health_history(profile, LATEST_HEALTH)? {
            health.push(HealthRecord {
                profile: profile.to_string(),
                event,
            });
        }
    }
    health.sort_by_key(|h| std::cmp::Reverse(h.event.at));
    let Some(store) = ledger.reader() else {
        return Ok(Stored {
            day: None,
            week: None,
            windows: Vec::new(),
            requests: Vec::new(),
            refreshes: Vec::new(),
            health,
        });
    };
    let this_hour = now.timestamp().div_euclid(3600) * 3600;
    let series = |hours: i64, bucket_hours: i64| -> StoreResult<Series> {
        let start_secs = this_hour - (hours - 1) * 3600;
        let since_ms = now.timestamp_millis() - hours * 3_600_000;
        Ok(Series {
            start: DateTime::from_timestamp(start_secs, 0).unwrap_or_default(),
            bucket_secs: bucket_hours * 3600,
            buckets: hours / bucket_hours,
            by_key: store.usage_series(start_secs, bucket_hours * 3600, GroupBy::Key)?,
            by_client: store.usage_series(start_secs, bucket_hours * 3600, GroupBy::Client)?,
            totals_by_key: store.usage_groups(since_ms, GroupBy::Key)?,
            totals_by_client: store.usage_groups(since_ms, GroupBy::Client)?,
        })
    };
    Ok(Stored {
        day: Some(series(24, 1)?),
        week: Some(series(24 * 7, 6)?),
        windows: window_reports(store, usage, now)?,
        requests: store.latest_requests(LATEST_REQUESTS)?,
        refreshes: store.refresh_events(LATEST_REFRESHES)?,
        health,
    })
}
