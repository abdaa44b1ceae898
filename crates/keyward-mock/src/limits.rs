//! The limits tests impose on upstream identities: a ChatGPT account's usage
//! (how much of its plan's windows is used, how much each served request uses
//! of them, and whether the primary window is used up until some moment) and
//! an API key's request rate limit.
//!
//! Time is passed in (milliseconds since the epoch) rather than read here, so
//! the windows are tested by moving "now" instead of sleeping. Windows are kept
//! in milliseconds so a limit set for N seconds lifts N seconds later to the
//! millisecond; what clients are told is rounded up to whole seconds, so a
//! client that waits as long as it is told never comes back early.

use std::collections::HashMap;

use serde::Deserialize;

/// The default share of the 5-hour window an account has used.
pub(crate) const DEFAULT_PRIMARY_USED_PERCENT: f64 = 10.0;
/// The default share of the weekly window an account has used.
pub(crate) const DEFAULT_SECONDARY_USED_PERCENT: f64 = 5.0;
const MS_PER_SEC: i64 = 1000;
/// How long a primary window that requests used up stays used up, unless set.
pub(crate) const DEFAULT_EXHAUSTED_RESETS_IN_SECS: i64 = 3600;

/// How long a limit still holds, as a client is told it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Remaining {
    /// Whole seconds left, rounded up: at least 1 while the limit holds.
    pub(crate) secs: i64,
    /// When it lifts, in seconds since the epoch, rounded up.
    pub(crate) resets_at: i64,
}

/// `until_ms` as seen at `now_ms`: `None` once it has passed.
fn remaining(until_ms: i64, now_ms: i64) -> Option<Remaining> {
    (now_ms < until_ms).then(|| Remaining {
        secs: ceil_secs(until_ms - now_ms),
        resets_at: ceil_secs(until_ms),
    })
}

fn ceil_secs(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_SEC) + i64::from(ms.rem_euclid(MS_PER_SEC) != 0)
}

/// The end of a window of `secs` seconds starting at `now_ms`; `None` for none at all.
fn window_end(secs: i64, now_ms: i64) -> Option<i64> {
    (secs > 0).then(|| now_ms.saturating_add(secs.saturating_mul(MS_PER_SEC)))
}

/// `POST /admin/usage_limit`: absent fields leave the account's setting as it was.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageSetting {
    pub(crate) account_id: String,
    /// Seconds until the used-up primary window resets; 0 lifts the limit.
    pub(crate) resets_in_seconds: Option<i64>,
    pub(crate) primary_used_percent: Option<f64>,
    pub(crate) secondary_used_percent: Option<f64>,
    /// What each served request adds to the primary window's used share (scripted
    /// usage); the request that fills it to 100 is served, and the account is then
    /// limited for `exhausted_resets_in_seconds`.
    pub(crate) primary_percent_per_request: Option<f64>,
    pub(crate) secondary_percent_per_request: Option<f64>,
    pub(crate) exhausted_resets_in_seconds: Option<i64>,
}

/// `POST /admin/api_key_limit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeySetting {
    pub(crate) api_key: String,
    /// Seconds the key is rate limited for; 0 lifts the limit.
    pub(crate) retry_after_seconds: i64,
}

/// What an account's answers say about its plan usage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AccountUsage {
    pub(crate) primary_used_percent: f64,
    pub(crate) secondary_used_percent: f64,
    /// Set while the primary window is used up: the account gets the usage-limit 429.
    pub(crate) limited: Option<Remaining>,
}

struct Account {
    primary_used_percent: f64,
    secondary_used_percent: f64,
    limited_until_ms: Option<i64>,
    primary_per_request: f64,
    secondary_per_request: f64,
    exhausted_resets_in_secs: i64,
}

impl Default for Account {
    fn default() -> Self {
        Self {
            primary_used_percent: DEFAULT_PRIMARY_USED_PERCENT,
            secondary_used_percent: DEFAULT_SECONDARY_USED_PERCENT,
            limited_until_ms: None,
            primary_per_request: 0.0,
            secondary_per_request: 0.0,
            exhausted_resets_in_secs: DEFAULT_EXHAUSTED_RESETS_IN_SECS,
        }
    }
}

#[derive(Default)]
pub(crate) struct Limits {
    accounts: HashMap<String, Account>,
    /// The end of each limited API key's window, by the whole key.
    api_keys: HashMap<String, i64>,
}

/// Why an admin setting was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadSetting(pub(crate) String);

fn check_percent(name: &str, value: Option<f64>) -> Result<(), BadSetting> {
    match value {
        Some(percent) if !(0.0..=100.0).contains(&percent) => Err(BadSetting(format!(
            "{name} must be between 0 and 100, got {percent}"
        ))),
        _ => Ok(()),
    }
}

fn check_seconds(name: &str, value: Option<i64>) -> Result<(), BadSetting> {
    match value {
        Some(secs) if secs < 0 => Err(BadSetting(format!(
            "{name} must be 0 (lift the limit) or more, got {secs}"
        ))),
        _ => Ok(()),
    }
}

impl Limits {
    /// Applies an admin setting at `now_ms`; the account's usage as it now stands.
    pub(crate) fn set_account(
        &mut self,
        setting: &UsageSetting,
        now_ms: i64,
    ) -> Result<AccountUsage, BadSetting> {
        check_seconds("resets_in_seconds", setting.resets_in_seconds)?;
        check_percent("primary_used_percent", setting.primary_used_percent)?;
        check_percent("secondary_used_percent", setting.secondary_used_percent)?;
        check_percent(
            "primary_percent_per_request",
            setting.primary_percent_per_request,
        )?;
        check_percent(
            "secondary_percent_per_request",
            setting.secondary_percent_per_request,
        )?;
        check_seconds(
            "exhausted_resets_in_seconds",
            setting.exhausted_resets_in_seconds,
        )?;
        let account = self.accounts.entry(setting.account_id.clone()).or_default();
        if let Some(secs) = setting.resets_in_seconds {
            account.limited_until_ms = window_end(secs, now_ms);
        }
        if let Some(percent) = setting.primary_used_percent {
            account.primary_used_percent = percent;
        }
        if let Some(percent) = setting.secondary_used_percent {
            account.secondary_used_percent = percent;
        }
        if let Some(percent) = setting.primary_percent_per_request {
            account.primary_per_request = percent;
        }
        if let Some(percent) = setting.secondary_percent_per_request {
            account.secondary_per_request = percent;
        }
        if let Some(secs) = setting.exhausted_resets_in_seconds {
            account.exhausted_resets_in_secs = secs;
        }
        Ok(self.account(&setting.account_id, now_ms))
    }

    /// A request of `account_id` is served at `now_ms`: it uses its share of the
    /// windows; the one that fills the primary window limits the account after it.
    /// The account's usage with this request counted.
    pub(crate) fn spend(&mut self, account_id: &str, now_ms: i64) -> AccountUsage {
        let account = self.accounts.entry(account_id.to_string()).or_default();
        if account.primary_per_request > 0.0 || account.secondary_per_request > 0.0 {
            account.primary_used_percent =
                (account.primary_used_percent + account.primary_per_request).min(100.0);
            account.secondary_used_percent =
                (account.secondary_used_percent + account.secondary_per_request).min(100.0);
            if account.primary_used_percent >= 100.0 && account.limited_until_ms.is_none() {
                account.limited_until_ms = window_end(account.exhausted_resets_in_secs, now_ms);
            }
        }
        self.account(account_id, now_ms)
    }

    /// `account_id`'s usage at `now_ms` (the defaults for an account never set).
    pub(crate) fn account(&self, account_id: &str, now_ms: i64) -> AccountUsage {
        let default = Account::default();
        let account = self.accounts.get(account_id).unwrap_or(&default);
        AccountUsage {
            primary_used_percent: account.primary_used_percent,
            secondary_used_percent: account.secondary_used_percent,
            limited: account
                .limited_until_ms
                .and_then(|until| remaining(until, now_ms)),
        }
    }

    /// Applies an admin setting at `now_ms`; how long the key is now limited for.
    pub(crate) fn set_api_key(
        &mut self,
        setting: &KeySetting,
        now_ms: i64,
    ) -> Result<Option<Remaining>, BadSetting> {
        check_seconds("retry_after_seconds", Some(setting.retry_after_seconds))?;
        match window_end(setting.retry_after_seconds, now_ms) {
            Some(until) => self.api_keys.insert(setting.api_key.clone(), until),
            None => self.api_keys.remove(&setting.api_key),
        };
        Ok(self.api_key(&setting.api_key, now_ms))
    }

    /// How long `api_key` is still rate limited at `now_ms`, if it is.
    pub(crate) fn api_key(&self, api_key: &str, now_ms: i64) -> Option<Remaining> {
        self.api_keys
            .get(api_key)
            .and_then(|&until| remaining(until, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 1_764_166_000_250;

    fn limit(account_id: &str, secs: i64) -> UsageSetting {
        UsageSetting {
            account_id: account_id.into(),
            resets_in_seconds: Some(secs),
            primary_used_percent: None,
            secondary_used_percent: None,
            primary_percent_per_request: None,
            secondary_percent_per_request: None,
            exhausted_resets_in_seconds: None,
        }
    }

    /// Scripted usage: each served request adds its share; the one that fills the
    /// primary window is served and limits the account for the set time after it.
    #[test]
    fn requests_use_their_share_of_the_windows() {
        let mut limits = Limits::default();
        let mut setting = limit("a", 0);
        setting.primary_used_percent = Some(97.0);
        setting.primary_percent_per_request = Some(2.0);
        setting.secondary_percent_per_request = Some(0.5);
        setting.exhausted_resets_in_seconds = Some(60);
        set(&mut limits, &setting, NOW_MS);
        let first = limits.spend("a", NOW_MS);
        assert_eq!((first.primary_used_percent, first.limited), (99.0, None));
        assert_eq!(first.secondary_used_percent, 5.5);
        let second = limits.spend("a", NOW_MS + 1);
        assert_eq!(second.primary_used_percent, 100.0);
        assert_eq!(second.limited.map(|r| r.secs), Some(60));
        let untouched = limits.spend("b", NOW_MS);
        assert_eq!(untouched.primary_used_percent, DEFAULT_PRIMARY_USED_PERCENT);
    }

    fn set(limits: &mut Limits, setting: &UsageSetting, now_ms: i64) -> AccountUsage {
        limits
            .set_account(setting, now_ms)
            .unwrap_or_else(|e| panic!("refused: {e:?}"))
    }

    /// An account limited for N seconds is limited until exactly N seconds later,
    /// told the remaining whole seconds (rounded up) and a reset time never early.
    #[test]
    fn account_limits_last_their_window() {
        let mut limits = Limits::default();
        let usage = set(&mut limits, &limit("a", 30), NOW_MS);
        assert_eq!(
            usage.limited,
            Some(Remaining {
                secs: 30,
                resets_at: 1_764_166_031,
            })
        );
        let later = limits.account("a", NOW_MS + 10_500).limited;
        assert_eq!(later.map(|r| r.secs), Some(20));
        let last = limits.account("a", NOW_MS + 29_999).limited;
        assert_eq!(last.map(|r| r.secs), Some(1));
        assert_eq!(limits.account("a", NOW_MS + 30_000).limited, None);
        assert_eq!(limits.account("b", NOW_MS).limited, None);
    }

    /// `resets_in_seconds: 0` lifts a limit at once; percentages survive it.
    #[test]
    fn zero_lifts_the_limit() {
        let mut limits = Limits::default();
        let mut setting = limit("a", 600);
        setting.primary_used_percent = Some(40.0);
        set(&mut limits, &setting, NOW_MS);
        let usage = set(&mut limits, &limit("a", 0), NOW_MS + 1);
        assert_eq!(usage.limited, None);
        assert_eq!(usage.primary_used_percent, 40.0);
    }

    /// Percentages default to 10 and 5, are set per account, and setting them
    /// alone leaves a limit in place.
    #[test]
    fn percentages_are_per_account() {
        let mut limits = Limits::default();
        set(&mut limits, &limit("a", 60), NOW_MS);
        let usage = set(
            &mut limits,
            &UsageSetting {
                resets_in_seconds: None,
                primary_used_percent: Some(40.0),
                secondary_used_percent: Some(72.5),
                ..limit("a", 0)
            },
            NOW_MS,
        );
        assert_eq!(usage.primary_used_percent, 40.0);
        assert_eq!(usage.secondary_used_percent, 72.5);
        assert!(usage.limited.is_some());
        let other = limits.account("b", NOW_MS);
        assert_eq!(
            (other.primary_used_percent, other.secondary_used_percent),
            (10.0, 5.0)
        );
    }

    /// Negative windows and percentages outside 0..=100 are refused, changing nothing.
    #[test]
    fn bad_settings_are_refused() {
        let mut limits = Limits::default();
        assert!(limits.set_account(&limit("a", -1), NOW_MS).is_err());
        let mut setting = limit("a", 5);
        setting.secondary_used_percent = Some(101.0);
        assert!(limits.set_account(&setting, NOW_MS).is_err());
        assert_eq!(limits.account("a", NOW_MS).limited, None);
        let key = KeySetting {
            api_key: "sk-mock-1".into(),
            retry_after_seconds: -3,
        };
        assert!(limits.set_api_key(&key, NOW_MS).is_err());
    }

    /// An API key is limited for its window, then served again; 0 lifts it early.
    #[test]
    fn api_key_limits_last_their_window() {
        let mut limits = Limits::default();
        let mut key = KeySetting {
            api_key: "sk-mock-1".into(),
            retry_after_seconds: 5,
        };
        let set = limits.set_api_key(&key, NOW_MS);
        assert_eq!(set.ok().flatten().map(|r| r.secs), Some(5));
        assert_eq!(limits.api_key("sk-mock-2", NOW_MS), None);
        assert_eq!(
            limits.api_key("sk-mock-1", NOW_MS + 4_001).map(|r| r.secs),
            Some(1)
        );
        assert_eq!(limits.api_key("sk-mock-1", NOW_MS + 5_000), None);
        limits.set_api_key(&key, NOW_MS).ok();
        key.retry_after_seconds = 0;
        assert_eq!(limits.set_api_key(&key, NOW_MS + 1), Ok(None));
        assert_eq!(limits.api_key("sk-mock-1", NOW_MS + 1), None);
    }

    /// Rounding up holds for exact seconds and for negative-free edge values.
    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_secs(1000), 1);
        assert_eq!(ceil_secs(1001), 2);
        assert_eq!(ceil_secs(1), 1);
        assert_eq!(ceil_secs(0), 0);
    }
}
