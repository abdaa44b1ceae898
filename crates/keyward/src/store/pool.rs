//! The pool's durable state: each profile's cooldown (a usage limit until its reset) and its
//! latest usage windows, so `status` from another process and a restarted `serve` see them.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::sqlite::SqliteStore;
use super::{StoreError, StoreResult};
use crate::profile::ProfileId;

/// A profile kept out of rotation until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cooldown {
    pub until: DateTime<Utc>,
    /// What the upstream said (e.g. "usage limit reached").
    pub reason: String,
    pub since: DateTime<Utc>,
}

/// One usage window as the upstream reports it (`x-codex-primary-*`, `x-codex-secondary-*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageWindow {
    pub used_percent: f64,
    pub window_minutes: Option<u64>,
    pub resets_at: Option<DateTime<Utc>>,
}

/// A profile's usage windows at the time of its latest answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub primary: Option<UsageWindow>,
    pub secondary: Option<UsageWindow>,
    pub observed_at: DateTime<Utc>,
}

/// Short transactions, like [`super::Store`]'s, so a shared store can stand in later.
pub trait PoolStore: Send + Sync + std::fmt::Debug + 'static {
    fn set_cooldown(&self, profile: &ProfileId, cooldown: &Cooldown) -> StoreResult<()>;
    fn clear_cooldown(&self, profile: &ProfileId) -> StoreResult<()>;
    /// Every recorded cooldown, expired ones included (the caller compares with its clock).
    fn cooldowns(&self) -> StoreResult<Vec<(ProfileId, Cooldown)>>;
    fn set_usage(&self, profile: &ProfileId, usage: &Usage) -> StoreResult<()>;
    fn usage(&self) -> StoreResult<Vec<(ProfileId, Usage)>>;
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl PoolStore for SqliteStore {
    fn set_cooldown(&self, profile: &ProfileId, cooldown: &Cooldown) -> StoreResult<()> {
        self.conn()
            .execute(
                "INSERT INTO cooldowns (profile, until, reason, since) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (profile) DO UPDATE SET until = ?2, reason = ?3, since = ?4",
                params![
                    profile.to_string(),
                    cooldown.until.to_rfc3339(),
                    cooldown.reason,
                    cooldown.since.to_rfc3339()
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn clear_cooldown(&self, profile: &ProfileId) -> StoreResult<()> {
        self.conn()
            .execute(
                "DELETE FROM cooldowns WHERE profile = ?1",
                params![profile.to_string()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn cooldowns(&self) -> StoreResult<Vec<(ProfileId, Cooldown)>> {
        let conn = self.conn();
        let mut statement = conn
            .prepare("SELECT profile, until, reason, since FROM cooldowns")
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (profile, until, reason, since) = row.map_err(|e| self.err(e))?;
            // A row this keyward cannot read (another version wrote it) is skipped, not fatal.
            let (Ok(profile), Some(until), Some(since)) =
                (profile.parse(), parse_time(&until), parse_time(&since))
            else {
                continue;
            };
            out.push((
                profile,
                Cooldown {
                    until,
                    reason,
                    since,
                },
            ));
        }
        Ok(out)
    }

    fn set_usage(&self, profile: &ProfileId, usage: &Usage) -> StoreResult<()> {
        let encoded = serde_json::to_string(usage).map_err(|e| StoreError::Db {
            path: self.path().display().to_string(),
            detail: format!("cannot encode usage windows: {e}"),
        })?;
        self.conn()
            .execute(
                "INSERT INTO usage_windows (profile, usage) VALUES (?1, ?2)
                 ON CONFLICT (profile) DO UPDATE SET usage = ?2",
                params![profile.to_string(), encoded],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    fn usage(&self) -> StoreResult<Vec<(ProfileId, Usage)>> {
        let conn = self.conn();
        let mut statement = conn
            .prepare("SELECT profile, usage FROM usage_windows")
            .map_err(|e| self.err(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (profile, usage) = row.map_err(|e| self.err(e))?;
            if let (Ok(profile), Ok(usage)) = (profile.parse(), serde_json::from_str(&usage)) {
                out.push((profile, usage));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cooldowns and usage windows survive a reopen, one row per profile.
    #[test]
    fn cooldowns_and_usage_are_kept() -> StoreResult<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Db {
            path: "temp".into(),
            detail: e.to_string(),
        })?;
        let store = SqliteStore::open(dir.path())?;
        let profile = ProfileId::codex_default();
        let now = Utc::now();
        let cooldown = Cooldown {
            until: now + chrono::Duration::seconds(60),
            reason: "usage limit reached".into(),
            since: now,
        };
        store.set_cooldown(&profile, &cooldown)?;
        store.set_cooldown(&profile, &cooldown)?;
        let usage = Usage {
            primary: Some(UsageWindow {
                used_percent: 42.5,
                window_minutes: Some(300),
                resets_at: Some(now),
            }),
            secondary: None,
            observed_at: now,
        };
        store.set_usage(&profile, &usage)?;
        drop(store);
        let store = SqliteStore::open(dir.path())?;
        let cooldowns = store.cooldowns()?;
        assert_eq!(cooldowns.len(), 1);
        assert_eq!(cooldowns[0].1.reason, "usage limit reached");
        assert_eq!(cooldowns[0].1.until.timestamp(), cooldown.until.timestamp());
        assert_eq!(
            store.usage()?[0].1.primary.as_ref().map(|w| w.used_percent),
            Some(42.5)
        );
        store.clear_cooldown(&profile)?;
        assert!(store.cooldowns()?.is_empty());
        Ok(())
    }
}
