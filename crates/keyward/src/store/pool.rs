//! The pool's durable state: each profile's cooldown (a usage limit until its reset) and its
//! latest usage windows, so `status` from another process and a restarted `serve` see them.

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{params, TransactionBehavior};
use serde::ser::SerializeMap;
use serde::Serialize;

use super::sqlite::SqliteStore;
use super::StoreResult;
use crate::profile::ProfileId;

/// A profile kept out of rotation until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Cooldown {
    pub until: DateTime<Utc>,
    /// What the upstream said (e.g. "usage limit reached").
    pub reason: String,
    pub since: DateTime<Utc>,
}

/// One usage window as its upstream reports it (the Codex backend's `x-codex-primary-*` and
/// `x-codex-secondary-*` headers are two, named `primary` and `secondary`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct UsageWindow {
    /// The upstream's name for it; shown as the window's key (see [`Usage`]).
    #[serde(skip)]
    pub name: String,
    pub used_percent: f64,
    pub window_minutes: Option<u64>,
    pub resets_at: Option<DateTime<Utc>>,
}

/// A profile's usage windows at the time of its latest answer, in its upstream's order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Usage {
    pub windows: Vec<UsageWindow>,
    pub observed_at: DateTime<Utc>,
}

/// `status --json` and `/healthz` show each window under its name, then `observed_at`.
impl Serialize for Usage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.windows.len() + 1))?;
        for window in &self.windows {
            map.serialize_entry(&window.name, window)?;
        }
        map.serialize_entry("observed_at", &self.observed_at)?;
        map.end()
    }
}

/// Short transactions, like [`super::Store`]'s, so a shared store can stand in later.
pub(crate) trait PoolStore: Send + Sync + std::fmt::Debug + 'static {
    fn set_cooldown(&self, profile: &ProfileId, cooldown: &Cooldown) -> StoreResult<()>;
    #[cfg(test)]
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

    #[cfg(test)]
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
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let id = profile.to_string();
        tx.execute("DELETE FROM usage_window WHERE profile = ?1", params![id])
            .map_err(|e| self.err(e))?;
        for (position, window) in usage.windows.iter().enumerate() {
            tx.execute(
                "INSERT INTO usage_window (profile, position, name, used_percent, window_minutes, resets_at, observed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    position as i64,
                    window.name,
                    window.used_percent,
                    window.window_minutes.map(|m| m.min(i64::MAX as u64) as i64),
                    window.resets_at.map(|t| t.to_rfc3339()),
                    usage.observed_at.to_rfc3339()
                ],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn usage(&self) -> StoreResult<Vec<(ProfileId, Usage)>> {
        let conn = self.conn();
        let mut statement = conn
            .prepare(
                "SELECT profile, name, used_percent, window_minutes, resets_at, observed_at
                 FROM usage_window ORDER BY profile, position",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = statement.query([]).map_err(|e| self.err(e))?;
        let mut out: Vec<(ProfileId, Usage)> = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let text = |index| match row.get_ref(index) {
                Ok(ValueRef::Text(bytes)) => std::str::from_utf8(bytes).ok(),
                _ => None,
            };
            // A row this keyward cannot read (another version wrote it) is skipped, not fatal.
            let (Some(Ok(profile)), Some(name), Ok(used_percent), Some(observed_at)) = (
                text(0).map(str::parse::<ProfileId>),
                text(1),
                row.get::<_, f64>(2),
                text(5).and_then(parse_time),
            ) else {
                continue;
            };
            let window = UsageWindow {
                name: name.to_string(),
                used_percent,
                window_minutes: match row.get_ref(3) {
                    Ok(ValueRef::Integer(minutes)) => u64::try_from(minutes).ok(),
                    _ => None,
                },
                resets_at: text(4).and_then(parse_time),
            };
            match out.last_mut() {
                Some((last, usage)) if *last == profile => usage.windows.push(window),
                _ => out.push((
                    profile,
                    Usage {
                        windows: vec![window],
                        observed_at,
                    },
                )),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    /// Cooldowns and usage windows survive a reopen, one row per profile.
    #[test]
    fn cooldowns_and_usage_are_kept() -> StoreResult<()> {
        let dir = tempfile::tempdir().map_err(|source| StoreError::File {
            path: "temp".into(),
            doing: "cannot make a directory",
            source,
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
            windows: vec![UsageWindow {
                name: "primary".into(),
                used_percent: 42.5,
                window_minutes: Some(300),
                resets_at: Some(now),
            }],
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
            store.usage()?[0].1.windows.first().map(|w| w.used_percent),
            Some(42.5)
        );
        store.clear_cooldown(&profile)?;
        assert!(store.cooldowns()?.is_empty());
        Ok(())
    }

    /// A store written before windows were named keeps its usage windows: the migration carries
    /// the Codex windows of each readable row over, and leaves a row it cannot read behind.
    #[test]
    fn usage_windows_of_an_older_store_are_kept() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        {
            let conn = rusqlite::Connection::open(dir.path().join("keyward.db"))?;
            conn.execute_batch(super::super::sqlite::MIGRATIONS[0])?;
            conn.execute_batch(super::super::sqlite::MIGRATIONS[1])?;
            conn.pragma_update(None, "user_version", 2)?;
            for (profile, usage) in [
                (
                    "openai-codex:default",
                    r#"{"primary":{"used_percent":12.5,"window_minutes":300,"resets_at":"2026-12-01T10:00:00Z"},"secondary":{"used_percent":40,"window_minutes":10080,"resets_at":null},"observed_at":"2026-12-01T09:00:00Z"}"#,
                ),
                ("openai-codex:work", "not json"),
                (
                    "openai-codex:odd",
                    r#"{"primary":null,"secondary":"full","observed_at":"2026-12-01T09:00:00Z"}"#,
                ),
            ] {
                conn.execute(
                    "INSERT INTO usage_windows (profile, usage) VALUES (?1, ?2)",
                    params![profile, usage],
                )?;
            }
        }
        let store = SqliteStore::open(dir.path())?;
        let at = |text: &str| parse_time(text);
        assert_eq!(
            store.usage()?,
            vec![(
                ProfileId::codex_default(),
                Usage {
                    windows: vec![
                        UsageWindow {
                            name: "primary".into(),
                            used_percent: 12.5,
                            window_minutes: Some(300),
                            resets_at: at("2026-12-01T10:00:00Z"),
                        },
                        UsageWindow {
                            name: "secondary".into(),
                            used_percent: 40.0,
                            window_minutes: Some(10080),
                            resets_at: None,
                        },
                    ],
                    observed_at: at("2026-12-01T09:00:00Z").unwrap_or_default(),
                }
            )]
        );
        Ok(())
    }
}
