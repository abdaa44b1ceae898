//! The OS keyring, one secret per service and account, as the Codex CLI's `keyring` crate sees it
//! (the same crate and major version: the same Secret Service item, found by the same attributes
//! in the same collection). A small trait, so the Codex storage is tested against memory.
//!
//! Linux: the Secret Service over the D-Bus session bus (gnome-keyring, KeePassXC, KWallet's
//! bridge). Another platform plugs in by enabling its `keyring` feature for its target
//! (`apple-native`: the macOS Keychain, a generic password with service and account;
//! `windows-native`: the Credential Manager, target `account.service`) and removing it from
//! [`SUPPORTED`]: the calls are the same, only the errors' remedies differ.

use std::path::PathBuf;
#[cfg(test)]
use std::sync::Mutex;

use crate::env::{Env, ProcessEnv};
use crate::secret::Secret;

/// Whether this build reaches the platform's keyring (without a backend feature, the `keyring`
/// crate would keep secrets in its process's memory and find nothing the CLI stored).
const SUPPORTED: bool = cfg!(target_os = "linux");

const SESSION_BUS_ENV: &str = "DBUS_SESSION_BUS_ADDRESS";

/// One secret per (service, account).
pub(crate) trait SecretStore: Send + Sync {
    fn load(&self, service: &str, account: &str) -> Result<Option<Secret>, KeyringError>;
    fn save(&self, service: &str, account: &str, value: &str) -> Result<(), KeyringError>;
    /// Whether there was something to delete.
    fn delete(&self, service: &str, account: &str) -> Result<bool, KeyringError>;
}

/// Why the keyring could not be used, with what the user can do about it. Never holds a secret:
/// the keyring's errors describe the transport and the collection, not the item's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyringError {
    #[error("there is no D-Bus session bus to reach the Secret Service on ({SESSION_BUS_ENV} is not set and {socket} does not exist)")]
    NoSessionBus { socket: String },
    #[error("no Secret Service answers on the D-Bus session bus ({detail})")]
    NoService { detail: String },
    #[error("the keyring is locked, or refused access ({detail})")]
    Locked { detail: String },
    #[error("{count} keyring items match; the Codex CLI cannot tell which is its login either")]
    Ambiguous { count: usize },
    #[error("the keyring item is not UTF-8 text")]
    NotText,
    #[error("the keyring failed: {detail}")]
    Failed { detail: String },
    #[error("keyward does not reach this platform's keyring yet")]
    Unsupported,
}

impl KeyringError {
    /// What the user can do, in a sentence.
    pub(crate) fn remedy(&self) -> String {
        const OR_FILE: &str = "or set cli_auth_credentials_store = \"file\" in the Codex config.toml and run `codex login` again";
        match self {
            Self::NoSessionBus { .. } => format!("run keyward inside your desktop session (where {SESSION_BUS_ENV} is set, e.g. as a `systemd --user` service), {OR_FILE}"),
            Self::NoService { .. } => format!("start your keyring (gnome-keyring-daemon, KeePassXC's Secret Service integration, or KWallet), {OR_FILE}"),
            Self::Locked { .. } => "unlock your login keyring (log in to the desktop, open Seahorse, or `gnome-keyring-daemon --unlock`); keyward picks the login up by itself".into(),
            Self::Ambiguous { .. } => "remove the duplicate items named `Codex Auth` (Seahorse, or `secret-tool clear service \"Codex Auth\"`) and run `codex login`".into(),
            Self::NotText => "run `codex login` to store a new login".into(),
            Self::Failed { .. } => format!("check that your keyring works (`secret-tool search service \"Codex Auth\"`), {OR_FILE}"),
            Self::Unsupported => format!("use the Codex CLI's file store on this platform: {OR_FILE}"),
        }
    }
}

/// The platform's keyring through the `keyring` crate. Each call connects anew, as the CLI's
/// does: blocking, so call it off the async runtime.
pub(crate) struct OsKeyring;

impl OsKeyring {
    fn entry(service: &str, account: &str) -> Result<keyring::Entry, KeyringError> {
        if !SUPPORTED {
            return Err(KeyringError::Unsupported);
        }
        keyring::Entry::new(service, account).map_err(classify)
    }
}

impl SecretStore for OsKeyring {
    fn load(&self, service: &str, account: &str) -> Result<Option<Secret>, KeyringError> {
        match Self::entry(service, account)?.get_password() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    fn save(&self, service: &str, account: &str, value: &str) -> Result<(), KeyringError> {
        Self::entry(service, account)?
            .set_password(value)
            .map_err(classify)
    }

    fn delete(&self, service: &str, account: &str) -> Result<bool, KeyringError> {
        match Self::entry(service, account)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(classify(e)),
        }
    }
}

/// Turns the crate's error into one that says what to do. The crate reports an unreachable bus
/// and a missing service alike as a platform failure; the environment tells them apart.
fn classify(error: keyring::Error) -> KeyringError {
    match error {
        keyring::Error::NoStorageAccess(e) => KeyringError::Locked {
            detail: e.to_string(),
        },
        keyring::Error::Ambiguous(items) => KeyringError::Ambiguous { count: items.len() },
        keyring::Error::BadEncoding(_) => KeyringError::NotText,
        keyring::Error::PlatformFailure(e) => {
            let detail = e.to_string();
            if let Some(socket) = missing_session_bus(&ProcessEnv) {
                KeyringError::NoSessionBus { socket }
            } else if detail.contains("org.freedesktop.secrets")
                || detail.contains("ServiceUnknown")
            {
                KeyringError::NoService { detail }
            } else {
                KeyringError::Failed { detail }
            }
        }
        other => KeyringError::Failed {
            detail: other.to_string(),
        },
    }
}

/// The socket zbus would fall back to, when neither it nor the variable is there.
fn missing_session_bus(env: &dyn Env) -> Option<String> {
    if env.get(SESSION_BUS_ENV).is_some() {
        return None;
    }
    let socket = match env.get("XDG_RUNTIME_DIR") {
        Some(dir) => PathBuf::from(dir).join("bus"),
        None => PathBuf::from(format!("/run/user/{}/bus", crate::host::our_uid())),
    };
    (!socket.exists()).then(|| socket.display().to_string())
}

#[cfg(test)]
type Items = std::collections::HashMap<(String, String), String>;

/// A keyring in memory, for tests of the storage above it.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct MemoryKeyring {
    items: Mutex<Items>,
    /// When set, every call fails with this.
    pub failure: Mutex<Option<KeyringError>>,
}

#[cfg(test)]
impl MemoryKeyring {
    fn check(&self) -> Result<std::sync::MutexGuard<'_, Items>, KeyringError> {
        if let Some(failure) = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(failure);
        }
        Ok(self.items.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn get(&self, service: &str, account: &str) -> Option<String> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(service.to_string(), account.to_string()))
            .cloned()
    }
}

#[cfg(test)]
impl SecretStore for MemoryKeyring {
    fn load(&self, service: &str, account: &str) -> Result<Option<Secret>, KeyringError> {
        Ok(self
            .check()?
            .get(&(service.to_string(), account.to_string()))
            .map(|v| Secret::new(v.clone())))
    }

    fn save(&self, service: &str, account: &str, value: &str) -> Result<(), KeyringError> {
        self.check()?.insert(
            (service.to_string(), account.to_string()),
            value.to_string(),
        );
        Ok(())
    }

    fn delete(&self, service: &str, account: &str) -> Result<bool, KeyringError> {
        Ok(self
            .check()?
            .remove(&(service.to_string(), account.to_string()))
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Without the variable and without the fallback socket there is no bus to try; with either
    /// there may be one.
    #[test]
    fn a_missing_session_bus_is_told_apart() {
        let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let runtime = dir.path().display().to_string();
        assert_eq!(
            missing_session_bus(&env(&[("XDG_RUNTIME_DIR", &runtime)])),
            Some(dir.path().join("bus").display().to_string())
        );
        std::fs::write(dir.path().join("bus"), b"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            missing_session_bus(&env(&[("XDG_RUNTIME_DIR", &runtime)])),
            None
        );
        assert_eq!(
            missing_session_bus(&env(&[(SESSION_BUS_ENV, "unix:path=/x")])),
            None
        );
    }
}
