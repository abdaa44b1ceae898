//! The format of `auth.json`, read and rewritten the way the Codex CLI does, keeping every field
//! keyward does not know about.
//!
//! Parsing goes through `serde_json::Value` and hand-written extraction, never typed
//! deserialisation, because serde's type errors quote the offending value, which may be a token.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::claims;
use crate::credential::{Credential, SourceContents, TokenAnswer};
use crate::secret::Secret;

/// A login file larger than this is not one: refuse it rather than buffer it.
pub(crate) const MAX_AUTH_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    Empty,
    NotJson(String),
    BadShape(String),
}

/// The parsed document: the whole JSON object (for write-back) and what it means.
#[derive(Default)]
pub(crate) struct AuthDocument {
    pub root: Map<String, Value>,
}

/// The field names only: the values are tokens.
impl std::fmt::Debug for AuthDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthDocument")
            .field("fields", &self.root.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What a sign-in puts into `auth.json`.
pub(crate) struct NewLogin<'a> {
    pub id_token: &'a Secret,
    pub access_token: &'a Secret,
    pub refresh_token: &'a Secret,
    pub account_id: Option<&'a str>,
    /// The issuer that signed it in, which the CLI refreshes against.
    pub issuer: &'a str,
}

impl AuthDocument {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ParseError::Empty);
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            // serde_json syntax errors carry only a category and a position, never input text.
            ParseError::NotJson(format!(
                "{} at line {} column {}",
                super::json_error_kind(&e),
                e.line(),
                e.column()
            ))
        })?;
        match value {
            Value::Object(root) => Ok(Self { root }),
            other => Err(ParseError::BadShape(format!(
                "expected a JSON object, found {}",
                kind(&other)
            ))),
        }
    }

    pub(crate) fn contents(&self) -> Result<SourceContents, ParseError> {
        let api_key = match self.root.get("OPENAI_API_KEY") {
            Some(Value::String(k)) if !k.is_empty() => Some(Secret::new(k.clone())),
            _ => None,
        };
        let tokens = match self.root.get("tokens") {
            None | Some(Value::Null) => {
                return Ok(match api_key {
                    Some(key) => SourceContents::ApiKey(key),
                    None => SourceContents::NoLogin,
                })
            }
            Some(Value::Object(tokens)) => tokens,
            Some(other) => {
                return Err(ParseError::BadShape(format!(
                    "`tokens` should be an object, found {}",
                    kind(other)
                )))
            }
        };
        let text = |key: &str| -> Result<Option<String>, ParseError> {
            match tokens.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(ParseError::BadShape(format!(
                    "`tokens.{key}` should be a string, found {}",
                    kind(other)
                ))),
            }
        };
        let access = text("access_token")?;
        let refresh = text("refresh_token")?;
        let (Some(access), Some(refresh)) = (access, refresh) else {
            return Ok(match api_key {
                Some(key) => SourceContents::ApiKey(key),
                None => SourceContents::NoLogin,
            });
        };
        let id_token = text("id_token")?;
        let claims = claims::of_login(&access, id_token.as_deref());
        let last_refresh = match self.root.get("last_refresh") {
            Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            _ => None,
        };
        Ok(SourceContents::Login(Box::new(Credential {
            access_token: Secret::new(access),
            refresh_token: Secret::new(refresh),
            id_token: id_token.map(Secret::new),
            account_id: text("account_id")?,
            claims,
            last_refresh,
        })))
    }

    /// Writes the answer's tokens in, as the CLI's `persist_tokens` does: only the fields the server
    /// returned change, `last_refresh` is stamped, everything else stays as it was.
    pub(crate) fn apply(&mut self, answer: &TokenAnswer, now: DateTime<Utc>) {
        let tokens = self
            .root
            .entry("tokens")
            .or_insert_with(|| Value::Object(Map::new()));
        if !tokens.is_object() {
            *tokens = Value::Object(Map::new());
        }
        if let Value::Object(tokens) = tokens {
            if let Some(id) = &answer.id_token {
                tokens.insert("id_token".into(), Value::String(id.expose().to_string()));
            }
            tokens.insert(
                "access_token".into(),
                Value::String(answer.access_token.expose().to_string()),
            );
            if let Some(refresh) = &answer.refresh_token {
                tokens.insert(
                    "refresh_token".into(),
                    Value::String(refresh.expose().to_string()),
                );
            }
        }
        self.root.insert(
            "last_refresh".into(),
            Value::String(now.to_rfc3339_opts(SecondsFormat::Nanos, true)),
        );
    }

    /// Makes this the document a new ChatGPT sign-in leaves, in the Codex CLI 0.169's format and
    /// order: `auth_mode`, `OPENAI_API_KEY` (null: a plan login has no key), `tokens` (the three
    /// tokens, `oauth_provenance` naming the issuer the CLI then refreshes against, `account_id`),
    /// `last_refresh`. Top-level fields keyward does not know are kept after them; `tokens` is
    /// the login itself and is replaced whole, as the CLI replaces the file when it signs in.
    pub(crate) fn install_login(&mut self, login: &NewLogin<'_>, now: DateTime<Utc>) {
        let mut tokens = Map::new();
        for (key, token) in [
            ("id_token", login.id_token),
            ("access_token", login.access_token),
            ("refresh_token", login.refresh_token),
        ] {
            tokens.insert(key.into(), Value::String(token.expose().to_string()));
        }
        tokens.insert(
            "oauth_provenance".into(),
            serde_json::json!({"issuer": login.issuer, "client_id": super::CLIENT_ID}),
        );
        if let Some(account) = login.account_id {
            tokens.insert("account_id".into(), Value::String(account.to_string()));
        }
        let mut root = Map::new();
        root.insert("auth_mode".into(), Value::String("chatgpt".into()));
        root.insert("OPENAI_API_KEY".into(), Value::Null);
        root.insert("tokens".into(), Value::Object(tokens));
        root.insert(
            "last_refresh".into(),
            Value::String(now.to_rfc3339_opts(SecondsFormat::Nanos, true)),
        );
        for (key, value) in std::mem::take(&mut self.root) {
            root.entry(key).or_insert(value);
        }
        self.root = root;
    }

    /// As the CLI writes `auth.json`: pretty-printed.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        // Serialising a Map of Values cannot fail; fall back to an empty object rather than panic.
        serde_json::to_vec_pretty(&self.root).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// As the CLI writes its keyring item: compact.
    pub(crate) fn to_compact(&self) -> String {
        serde_json::to_string(&self.root).unwrap_or_else(|_| "{}".to_string())
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::codex::claims::test_jwt;
    use serde_json::json;

    pub(crate) fn login_json() -> Value {
        json!({
            "OPENAI_API_KEY": null,
            "tokens": {
                "id_token": test_jwt(&json!({"email": "u@example.com", "https://api.openai.com/auth": {"chatgpt_plan_type": "plus"}})),
                "access_token": test_jwt(&json!({"exp": 1_900_000_000, "https://api.openai.com/auth": {"chatgpt_account_id": "acct-1"}})),
                "refresh_token": "rt_secret_one",
                "account_id": "acct-1",
                "future_token_field": {"kept": true}
            },
            "last_refresh": "2026-11-24T14:10:04.340897201Z",
            "future_top_level": [1, 2, 3]
        })
    }

    #[test]
    fn reads_a_chatgpt_login() {
        let doc = AuthDocument::parse(login_json().to_string().as_bytes());
        let Ok(SourceContents::Login(cred)) = doc
            .map_err(|_| ())
            .and_then(|d| d.contents().map_err(|_| ()))
        else {
            panic!("expected a login");
        };
        assert_eq!(cred.refresh_token.expose(), "rt_secret_one");
        assert_eq!(cred.account(), Some("acct-1"));
        assert_eq!(cred.claims.email.as_deref(), Some("u@example.com"));
        assert_eq!(cred.claims.plan.as_deref(), Some("plus"));
        assert!(cred.expires_at().is_some());
        assert!(cred.last_refresh.is_some());
    }

    #[test]
    fn recognises_api_key_and_logged_out_files() {
        let key = json!({"OPENAI_API_KEY": "sk-test", "tokens": null});
        let doc = AuthDocument::parse(key.to_string().as_bytes()).map_err(|_| ());
        assert!(matches!(
            doc.and_then(|d| d.contents().map_err(|_| ())),
            Ok(SourceContents::ApiKey(key)) if key.expose() == "sk-test"
        ));
        let none = json!({"OPENAI_API_KEY": null});
        let doc = AuthDocument::parse(none.to_string().as_bytes()).map_err(|_| ());
        assert!(matches!(
            doc.and_then(|d| d.contents().map_err(|_| ())),
            Ok(SourceContents::NoLogin)
        ));
    }

    /// Bad input is reported by category and position, never by quoting the content.
    #[test]
    fn malformed_files_are_described_without_their_content() {
        assert_eq!(AuthDocument::parse(b"  \n").err(), Some(ParseError::Empty));
        let truncated = &login_json().to_string()[..40];
        match AuthDocument::parse(truncated.as_bytes()) {
            Err(ParseError::NotJson(msg)) => assert!(msg.starts_with("truncated"), "{msg}"),
            _ => panic!("expected NotJson"),
        }
        let wrong_type =
            json!({"tokens": {"access_token": "a.b.c", "refresh_token": ["rt_secret_two"]}});
        let doc = AuthDocument::parse(wrong_type.to_string().as_bytes()).map_err(|_| ());
        match doc.and_then(|d| {
            d.contents().map_err(|e| {
                assert!(!format!("{e:?}").contains("rt_secret_two"));
            })
        }) {
            Err(()) => {}
            Ok(_) => panic!("expected a shape error"),
        }
        assert!(matches!(
            AuthDocument::parse(b"[1]"),
            Err(ParseError::BadShape(_))
        ));
    }

    /// Write-back changes only the returned tokens and last_refresh; unknown fields survive.
    #[test]
    fn apply_keeps_unknown_fields() {
        let mut doc = AuthDocument {
            root: login_json().as_object().cloned().unwrap_or_default(),
        };
        let answer = TokenAnswer {
            access_token: Secret::new("new-access"),
            refresh_token: Some(Secret::new("rt_new")),
            id_token: None,
        };
        doc.apply(&answer, Utc::now());
        let written: Value = serde_json::from_slice(&doc.to_bytes()).unwrap_or_default();
        let mut expected = login_json();
        expected["tokens"]["access_token"] = json!("new-access");
        expected["tokens"]["refresh_token"] = json!("rt_new");
        expected["last_refresh"] = written["last_refresh"].clone();
        assert_eq!(written, expected);
        assert_ne!(written["last_refresh"], login_json()["last_refresh"]);
    }

    /// A sign-in writes the CLI's format and order, keeps unknown top-level fields, replaces an
    /// API key and the old login's tokens whole.
    #[test]
    fn install_login_writes_the_clis_format() {
        let mut doc = AuthDocument {
            root: login_json().as_object().cloned().unwrap_or_default(),
        };
        doc.root.insert("OPENAI_API_KEY".into(), json!("sk-old"));
        let (id, access, refresh) = (Secret::new("id"), Secret::new("at"), Secret::new("rt"));
        let login = NewLogin {
            id_token: &id,
            access_token: &access,
            refresh_token: &refresh,
            account_id: Some("acct-2"),
            issuer: "https://auth.openai.com",
        };
        doc.install_login(&login, Utc::now());
        let written: Value = serde_json::from_slice(&doc.to_bytes()).unwrap_or_default();
        let keys: Vec<&String> = written
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            [
                "auth_mode",
                "OPENAI_API_KEY",
                "tokens",
                "last_refresh",
                "future_top_level"
            ]
        );
        assert_eq!(written["auth_mode"], "chatgpt");
        assert_eq!(written["OPENAI_API_KEY"], Value::Null);
        assert_eq!(
            written["tokens"],
            json!({"id_token": "id", "access_token": "at", "refresh_token": "rt",
                   "oauth_provenance": {"issuer": "https://auth.openai.com", "client_id": crate::codex::CLIENT_ID},
                   "account_id": "acct-2"})
        );
        assert_eq!(written["future_top_level"], json!([1, 2, 3]));
    }

    /// A float in a field keyward does not know is written back as it was read (found by the
    /// `auth_json` fuzz target: `-3e-47` came back as `-2.9999999999999997e-47`).
    #[test]
    fn write_back_keeps_unknown_floats_exactly() {
        let text = r#"{"tokens": {"access_token": "a", "refresh_token": "r", "n": [2.5, -3e-47]}, "f": 1.7976931348623157e308}"#;
        let mut doc = AuthDocument::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
        let answer = TokenAnswer {
            access_token: Secret::new("new-access"),
            refresh_token: None,
            id_token: None,
        };
        doc.apply(&answer, Utc::now());
        let written = String::from_utf8(doc.to_bytes()).unwrap_or_default();
        assert!(written.contains("-3e-47"), "{written}");
        let again = AuthDocument::parse(written.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(again.root["tokens"]["n"], doc.root["tokens"]["n"]);
        assert_eq!(again.root["f"], doc.root["f"]);
    }
}
