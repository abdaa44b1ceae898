//! The OS keyring, one secret per service and account, found the way the Codex CLI's `keyring`
//! crate (3.6) finds it: the attributes `target` = `default`, `service`, `username` across the
//! collections, created in the default collection with `application` = `rust-keyring` too. A
//! small trait, so the Codex storage is tested against memory.
//!
//! Linux: the Secret Service over the D-Bus session bus (gnome-keyring, KeePassXC, KWallet's
//! bridge), through the same client crate the CLI's `keyring` uses. Unlike the CLI, keyward never
//! unlocks: a locked keyring would otherwise put an unlock prompt on the screen at every
//! background read; it is reported, and read again once the user unlocks it. Another platform
//! plugs in as another `SecretStore` (the macOS Keychain: a generic password with service and
//! account, as the `keyring` crate's `apple-native` stores it; Windows: the Credential Manager,
//! target `account.service`); until then a keyring setting there says it is not supported.

use std::path::PathBuf;
#[cfg(test)]
use std::sync::Mutex;

use crate::env::Env;
use crate::secret::Secret;

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
    #[error("the keyring is locked ({detail})")]
    Locked { detail: String },
    #[error("{count} keyring items match; the Codex CLI cannot tell which is its login either")]
    Ambiguous { count: usize },
    #[error("the keyring item is not UTF-8 text")]
    NotText,
    #[error("the keyring failed: {detail}")]
    Failed { detail: String },
    #[error("keyward does not reach this platform's keyring yet")]
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    Unsupported,
}

impl KeyringError {
    /// What the user can do, in a sentence.
    pub(crate) fn remedy(&self) -> String {
        const OR_FILE: &str = "or set cli_auth_credentials_store = \"file\" in the Codex config.toml and run `codex login` again";
        match self {
            Self::NoSessionBus { .. } => format!("run keyward inside your desktop session (where {SESSION_BUS_ENV} is set, e.g. as a `systemd --user` service), {OR_FILE}"),
            Self::NoService { .. } => format!("start your keyring (gnome-keyring-daemon, KeePassXC's Secret Service integration, or KWallet), {OR_FILE}"),
            Self::Locked { .. } => "unlock your login keyring (log in to the desktop, open Seahorse, or run any `codex` command, which asks for it); keyward picks the login up by itself".into(),
            Self::Ambiguous { .. } => "remove the duplicate items named `Codex Auth` (Seahorse, or `secret-tool clear service \"Codex Auth\"`) and run `codex login`".into(),
            Self::NotText => "run `codex login` to store a new login".into(),
            Self::Failed { .. } => format!("check that your keyring works (`secret-tool search service \"Codex Auth\"`), {OR_FILE}"),
            Self::Unsupported => format!("use the Codex CLI's file store on this platform: {OR_FILE}"),
        }
    }
}

/// The platform's keyring. Each call connects anew, as the CLI's does: blocking, so call it off
/// the async runtime.
pub(crate) struct OsKeyring;

#[cfg(target_os = "linux")]
mod secret_service_client {
    use std::collections::HashMap;

    use secret_service::blocking::{Item, SecretService};
    use secret_service::{EncryptionType, Error};

    use super::{missing_session_bus, KeyringError, OsKeyring, SecretStore};
    use crate::env::ProcessEnv;
    use crate::secret::Secret;

    /// The collection the CLI's `keyring` crate names `default`.
    const TARGET: &str = "default";
    const CONTENT_TYPE: &str = "text/plain";

    fn connect() -> Result<SecretService<'static>, KeyringError> {
        SecretService::connect(EncryptionType::Dh).map_err(classify)
    }

    /// The one item the CLI's `keyring` crate would find. A locked one is an error, not a prompt.
    fn unique_item<'s>(
        service: &'s SecretService<'_>,
        name: &str,
        account: &str,
    ) -> Result<Option<Item<'s>>, KeyringError> {
        let attributes =
            HashMap::from([("target", TARGET), ("service", name), ("username", account)]);
        let found = service.search_items(attributes).map_err(classify)?;
        match (found.unlocked.len(), found.locked.len()) {
            (0, 0) => Ok(None),
            (1, 0) => Ok(found.unlocked.into_iter().next()),
            (0, 1) => Err(KeyringError::Locked {
                detail: "the collection holding the item is locked".into(),
            }),
            (unlocked, locked) => Err(KeyringError::Ambiguous {
                count: unlocked + locked,
            }),
        }
    }

    impl SecretStore for OsKeyring {
        fn load(&self, name: &str, account: &str) -> Result<Option<Secret>, KeyringError> {
            let service = connect()?;
            let Some(item) = unique_item(&service, name, account)? else {
                return Ok(None);
            };
            let bytes = item.get_secret().map_err(classify)?;
            String::from_utf8(bytes)
                .map(|value| Some(Secret::new(value)))
                .map_err(|_| KeyringError::NotText)
        }

        fn save(&self, name: &str, account: &str, value: &str) -> Result<(), KeyringError> {
            let service = connect()?;
            if let Some(item) = unique_item(&service, name, account)? {
                return item
                    .set_secret(value.as_bytes(), CONTENT_TYPE)
                    .map_err(classify);
            }
            let collection = service.get_default_collection().map_err(classify)?;
            if collection.is_locked().map_err(classify)? {
                return Err(KeyringError::Locked {
                    detail: "the default collection is locked".into(),
                });
            }
            // The attributes and label the CLI's `keyring` crate gives the items it creates.
            let attributes = HashMap::from([
                ("application", "rust-keyring"),
                ("target", TARGET),
                ("service", name),
                ("username", account),
            ]);
            let label = format!("{account}@{name}:{TARGET} (keyward)");
            collection
                .create_item(&label, attributes, value.as_bytes(), true, CONTENT_TYPE)
                .map(drop)
                .map_err(classify)
        }

        fn delete(&self, name: &str, account: &str) -> Result<bool, KeyringError> {
            let service = connect()?;
            let item = unique_item(&service, name, account)?;
            match item {
                Some(item) => item.delete().map(|()| true).map_err(classify),
                None => Ok(false),
            }
        }
    }

    /// The client's error as one that says what to do; the environment tells a missing bus from
    /// a bus without a Secret Service.
    fn classify(error: Error) -> KeyringError {
        match error {
            Error::Locked | Error::Prompt => KeyringError::Locked {
                detail: error.to_string(),
            },
            Error::Unavailable => match missing_session_bus(&ProcessEnv) {
                Some(socket) => KeyringError::NoSessionBus { socket },
                None => KeyringError::NoService {
                    detail: error.to_string(),
                },
            },
            other => {
                let detail = other.to_string();
                if detail.contains("ServiceUnknown") || detail.contains("org.freedesktop.secrets") {
                    KeyringError::NoService { detail }
                } else {
                    KeyringError::Failed { detail }
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl SecretStore for OsKeyring {
    fn load(&self, _: &str, _: &str) -> Result<Option<Secret>, KeyringError> {
        Err(KeyringError::Unsupported)
    }

    fn save(&self, _: &str, _: &str, _: &str) -> Result<(), KeyringError> {
        Err(KeyringError::Unsupported)
    }

    fn delete(&self, _: &str, _: &str) -> Result<bool, KeyringError> {
        Err(KeyringError::Unsupported)
    }
}

/// The socket zbus would fall back to, when neither it nor the variable is there.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
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
