//! One profile's state as `keyward status` and `/healthz` show it: no secret, only fingerprints.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::broker::{Broker, Health, HealthState, ProfileRuntime, SourceStatus, View};
use crate::credential::StoreInfo;
use crate::pool::Pool;
use crate::store::{Cooldown, HealthEvent, Usage};
use crate::upstream::Upstream;

#[derive(Debug, Serialize)]
pub(crate) struct ProfileReport {
    pub profile: String,
    pub source: String,
    pub source_kind: &'static str,
    /// Which store holds the login ("file", "keyring") and the setting that chose it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreInfo>,
    pub health: Health,
    pub account_id: Option<String>,
    pub email: Option<String>,
    pub plan: Option<String>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub access_expires_in_secs: Option<i64>,
    pub refresh_token: Option<String>,
    pub generation: u64,
    pub last_refresh: Option<DateTime<Utc>>,
    pub lineage_changed_at: Option<DateTime<Utc>>,
    pub lineage_changed_by: Option<String>,
    pub last_outcome: Option<String>,
    pub warnings: Vec<String>,
    /// Reads of the source by this process: they follow changes of the file, not requests.
    pub source_reads: u64,
    /// The latest health changes recorded by `keyward serve` (newest first); `status` only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recent_health: Vec<HealthEvent>,
    /// Resting at a usage limit until its reset.
    pub cooldown: Option<Cooldown>,
    /// The usage windows of its latest answer.
    pub usage: Option<Usage>,
}

/// Every profile of the pool, in its order: Codex logins with their broker state, API-key
/// profiles with where their key comes from; each with its cooldown and usage windows.
pub(crate) async fn pool_reports(broker: &Broker, pool: &Pool) -> Vec<ProfileReport> {
    let now = broker.clock().now();
    let mut reports = Vec::new();
    for member in pool.members() {
        let id = member.profile();
        let mut report = match broker.profile(id) {
            Some(runtime) => {
                let view = broker.current_view(runtime).await;
                profile_report(broker, runtime, &view)
            }
            None => api_key_report(member.as_ref()),
        };
        report.cooldown = pool.cooldown(id, now);
        report.usage = pool.usage(id);
        reports.push(report);
    }
    reports
}

fn api_key_report(member: &dyn Upstream) -> ProfileReport {
    ProfileReport {
        profile: member.profile().to_string(),
        source: member.describe(),
        store: None,
        source_kind: "api-key",
        health: Health {
            state: HealthState::Ok,
            detail: "serving with an API key".into(),
            remedy: None,
        },
        account_id: None,
        email: None,
        plan: None,
        access_expires_at: None,
        access_expires_in_secs: None,
        refresh_token: None,
        generation: 0,
        last_refresh: None,
        lineage_changed_at: None,
        lineage_changed_by: None,
        last_outcome: None,
        warnings: Vec::new(),
        source_reads: 0,
        recent_health: Vec::new(),
        cooldown: None,
        usage: None,
    }
}

/// A usage window as one line: "12% of 5h, resets in 2h 3m".
pub(crate) fn window_text(window: &crate::store::UsageWindow) -> String {
    window_summary(window.used_percent, window.window_minutes, window.resets_at)
}

/// The same line from its parts, for reports that keep a window's figures in their own shape.
pub(crate) fn window_summary(
    used_percent: f64,
    window_minutes: Option<u64>,
    resets_at: Option<chrono::DateTime<Utc>>,
) -> String {
    let mut text = format!("{used_percent:.0}%");
    if let Some(minutes) = window_minutes {
        text.push_str(&format!(" of {}", span(minutes * 60)));
    }
    if let Some(at) = resets_at {
        text.push_str(&format!(
            ", resets {}",
            relative((at - Utc::now()).num_seconds())
        ));
    }
    text
}

/// "5h", "7d", "90m".
pub(crate) fn span(secs: u64) -> String {
    if secs.is_multiple_of(86_400) {
        format!("{}d", secs / 86_400)
    } else if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else {
        format!("{}m", secs / 60)
    }
}

pub(crate) fn profile_report(
    broker: &Broker,
    runtime: &ProfileRuntime,
    view: &View,
) -> ProfileReport {
    let now = Utc::now();
    let credential = view.credential.as_deref();
    let claims = credential.map(|c| &c.claims);
    ProfileReport {
        profile: runtime.id.to_string(),
        source: runtime.source.location(),
        store: view.store.clone(),
        source_kind: match view.status {
            SourceStatus::Login => "chatgpt-login",
            SourceStatus::ApiKey => "api-key",
            SourceStatus::NoLogin => "no-login",
            SourceStatus::Missing => "missing",
            SourceStatus::Problem(_) => "unreadable",
        },
        health: broker.health(runtime, view),
        account_id: credential.and_then(|c| c.account().map(str::to_string)),
        email: claims.and_then(|c| c.email.clone()),
        plan: claims.and_then(|c| c.plan.clone()),
        access_expires_at: claims.and_then(|c| c.expires_at),
        access_expires_in_secs: claims
            .and_then(|c| c.expires_at)
            .map(|t| (t - now).num_seconds()),
        refresh_token: credential.map(|c| c.refresh_fingerprint().to_string()),
        generation: view.lineage.generation,
        last_refresh: credential.and_then(|c| c.last_refresh),
        lineage_changed_at: view.lineage.changed_at,
        lineage_changed_by: view.lineage.changed_by.as_deref().map(|by| match by {
            "keyward" | "keyward login" => by.to_string(),
            _ => "the CLI (or another program)".to_string(),
        }),
        last_outcome: broker
            .last_outcome(runtime)
            .map(|(at, what)| format!("{} {what}", at.format("%Y-%m-%d %H:%M:%S UTC"))),
        warnings: view.warnings.clone(),
        source_reads: runtime.source_reads(),
        recent_health: Vec::new(),
        cooldown: None,
        usage: None,
    }
}

/// "in 3h 12m" / "12m ago".
pub(crate) fn relative(secs: i64) -> String {
    if secs == 0 {
        return "just now".into();
    }
    let magnitude = secs.unsigned_abs();
    let text = if magnitude >= 86_400 {
        format!("{}d {}h", magnitude / 86_400, magnitude % 86_400 / 3600)
    } else if magnitude >= 3600 {
        format!("{}h {}m", magnitude / 3600, magnitude % 3600 / 60)
    } else if magnitude >= 60 {
        format!("{}m {}s", magnitude / 60, magnitude % 60)
    } else {
        format!("{magnitude}s")
    };
    if secs >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}
