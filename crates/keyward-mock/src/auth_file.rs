//! `$CODEX_HOME/auth.json` handled as a JSON tree, so fields this mock does
//! not know about survive a rewrite exactly as the CLI would keep them.

use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use serde_json::{json, Map, Value};

pub(crate) fn auth_path(codex_home: &Path) -> PathBuf {
    codex_home.join("auth.json")
}

pub(crate) fn read(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn token<'a>(auth: &'a Value, name: &str) -> Option<&'a str> {
    auth.get("tokens")?.get(name)?.as_str()
}

pub(crate) fn refresh_token(auth: &Value) -> Option<&str> {
    token(auth, "refresh_token")
}

pub(crate) fn access_token(auth: &Value) -> Option<&str> {
    token(auth, "access_token")
}

/// The CLI's timestamp shape: RFC 3339, UTC, nanoseconds, `Z`.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

pub(crate) fn new_login(
    id_token: &str,
    access_token: &str,
    refresh_token: &str,
    account_id: &str,
) -> Value {
    json!({
        "OPENAI_API_KEY": null,
        "tokens": {
            "id_token": id_token,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "account_id": account_id,
        },
        "last_refresh": now_rfc3339(),
    })
}

/// Overwrites only the token strings the server returned and `last_refresh`;
/// `account_id` and every other field keep their value and position.
pub(crate) fn apply_refresh(
    auth: &mut Value,
    id_token: Option<&str>,
    access_token: Option<&str>,
    refresh_token: Option<&str>,
) -> Result<()> {
    let root = auth
        .as_object_mut()
        .ok_or_else(|| anyhow!("auth.json is not a JSON object"))?;
    let tokens = root
        .entry("tokens")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| anyhow!("auth.json `tokens` is not an object"))?;
    for (name, value) in [
        ("id_token", id_token),
        ("access_token", access_token),
        ("refresh_token", refresh_token),
    ] {
        if let Some(value) = value {
            tokens.insert(name.to_owned(), Value::String(value.to_owned()));
        }
    }
    root.insert("last_refresh".to_owned(), Value::String(now_rfc3339()));
    Ok(())
}

/// Temp file in the same directory (`.auth-XXXXXX`, O_EXCL, 0600), fsync,
/// rename: readers see the old file or the new one, never a torn write.
pub(crate) fn write_atomic(codex_home: &Path, auth: &Value) -> Result<()> {
    let mode = Permissions::from_mode(0o600);
    let mut tmp = tempfile::Builder::new()
        .prefix(".auth-")
        .rand_bytes(6)
        .permissions(mode.clone())
        .tempfile_in(codex_home)
        .with_context(|| format!("creating temp file in {}", codex_home.display()))?;
    // Creation mode is filtered by the umask; state it once more so the file
    // holding tokens is never readable by others whatever the umask.
    tmp.as_file().set_permissions(mode)?;
    tmp.write_all(serde_json::to_string_pretty(auth)?.as_bytes())?;
    tmp.as_file().sync_all()?;
    let target = auth_path(codex_home);
    tmp.persist(&target)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming temp file over {}", target.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_keeps_unknown_fields() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut auth: Value = serde_json::from_str(
            r#"{"OPENAI_API_KEY":null,"extra":{"x":1},
                "tokens":{"id_token":"i","access_token":"a","refresh_token":"r",
                          "account_id":"acct","nested_unknown":true},
                "last_refresh":"2026-11-24T14:10:04.340897201Z"}"#,
        )?;
        apply_refresh(&mut auth, Some("i2"), Some("a2"), Some("r2"))?;
        write_atomic(dir.path(), &auth)?;
        let back = read(&auth_path(dir.path()))?;
        assert_eq!(back["extra"]["x"], 1);
        assert_eq!(back["tokens"]["nested_unknown"], true);
        assert_eq!(back["tokens"]["account_id"], "acct");
        assert_eq!(refresh_token(&back), Some("r2"));
        let mode = std::fs::metadata(auth_path(dir.path()))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        Ok(())
    }
}
