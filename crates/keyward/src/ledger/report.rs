//! Who used how much of each login's usage windows: the windows as the provider last reported
//! them, each with every key's share, measured from the ledger as the `max_window_share` limit
//! measures it (`limits::window_share`). `keyward usage` and the dashboard show these.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::window_share;
use crate::profile::ProfileId;
use crate::store::{SqliteStore, StoreResult, Usage};

/// One login window and who used it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct WindowReport {
    pub profile: String,
    pub window: String,
    pub used_percent: f64,
    pub window_minutes: Option<u64>,
    pub resets_at: Option<DateTime<Utc>>,
    /// When the provider reported it.
    pub observed_at: DateTime<Utc>,
    /// Each key's share of the window (0–1), largest first; `key: null` is requests without one.
    pub by_key: Vec<KeyShare>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct KeyShare {
    pub key: Option<String>,
    pub share: f64,
}

/// The windows of `usage` (each login's), with each key's share since the window began.
pub(crate) fn window_reports(
    store: &SqliteStore,
    usage: &[(ProfileId, Usage)],
    now: DateTime<Utc>,
) -> StoreResult<Vec<WindowReport>> {
    let mut reports = Vec::new();
    for (profile, usage) in usage {
        for window in &usage.windows {
            let current = window.resets_at.is_none_or(|at| at > now);
            let start = match (window.window_minutes, window.resets_at) {
                (Some(minutes), Some(resets_at)) if current => {
                    Some(resets_at - chrono::Duration::minutes(minutes.min(i64::MAX as u64) as i64))
                }
                _ => None,
            };
            let mut by_key = Vec::new();
            if let Some(start) = start {
                let since_hour = start.timestamp().div_euclid(3600) * 3600;
                let tokens = store.profile_tokens_by_key(&profile.to_string(), since_hour)?;
                let total: u64 = tokens.iter().map(|(_, used)| used).sum();
                by_key = tokens
                    .into_iter()
                    .map(|(key, used)| KeyShare {
                        key,
                        share: window_share(window.used_percent, used, total),
                    })
                    .collect();
                by_key.sort_by(|a, b| b.share.total_cmp(&a.share));
            }
            reports.push(WindowReport {
                profile: profile.to_string(),
                window: window.name.clone(),
                // A window past its reset has been used for nothing since.
                used_percent: if current { window.used_percent } else { 0.0 },
                window_minutes: window.window_minutes,
                resets_at: window.resets_at.filter(|_| current),
                observed_at: usage.observed_at,
                by_key,
            });
        }
    }
    Ok(reports)
}
