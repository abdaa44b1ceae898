//! The Codex CLI's login in the OS keyring (`cli_auth_credentials_store = "keyring"` or `"auto"`),
//! through a real Secret Service (gnome-keyring on a D-Bus session bus of the test's own) and the
//! real Codex CLI: keyward reads, refreshes and writes back the CLI's item under the CLI's locks,
//! adopts the CLI's rotations without a restart, and follows a switch of the store.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::codex_cli::{
    codex_cli, codex_exec_with, refresh_after_a_401, served_without_spending, write_cli_config,
};
use crate::support::secret_service::SecretService;
use crate::support::*;

/// The item's value as the Codex CLI stores it: auth.json's document, compact, with `auth_mode`;
/// plus a field of a newer CLI that keyward must keep.
fn keyring_value(login: &Value) -> String {
    let mut document = json!({"auth_mode": "chatgpt"});
    if let (Some(target), Some(fields)) =
        (document.as_object_mut(), auth_document(login).as_object())
    {
        target.extend(fields.clone());
        target.insert("future_field".into(), json!({"kept": [1, 2.5]}));
    }
    document.to_string()
}

fn set_store(codex_home: &Path, store: &str) -> Result<()> {
    let path = codex_home.join("config.toml");
    let config = std::fs::read_to_string(&path).unwrap_or_default();
    let rest: String = config
        .lines()
        .filter(|l| !l.starts_with("cli_auth_credentials_store"))
        .map(|l| format!("{l}\n"))
        .collect();
    // Top-level keys come before the first table.
    std::fs::write(
        path,
        format!("cli_auth_credentials_store = \"{store}\"\n{rest}"),
    )?;
    Ok(())
}

/// A config that makes keyward's timing visible and leaves the scheduler's tick out of the way,
/// so only events can explain an adoption.
fn event_only_config() -> String {
    timing_config("60s").replace("tick = \"200ms\"", "tick = \"1h\"")
}

fn stored_refresh_token(service: &SecretService, codex_home: &Path) -> Result<String> {
    let value: Value = serde_json::from_str(
        &service
            .codex_login(codex_home)?
            .ok_or_else(|| anyhow::anyhow!("no keyring item"))?,
    )?;
    Ok(value["tokens"]["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

async fn generation(keyward: &Keyward) -> Result<u64> {
    Ok(keyward.healthz().await?["profiles"][0]["generation"]
        .as_u64()
        .unwrap_or(0))
}

/// keyward serves a login kept in the keyring, refreshes it and writes the answer back to the
/// same item (compact, every field kept, no auth.json), and says in `status` and `/healthz` that
/// the store is the keyring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyward_serves_and_refreshes_a_login_kept_in_the_keyring() -> Result<()> {
    let Some(service) = SecretService::start().await? else {
        return Ok(());
    };
    let mock = Mock::start().await?;
    let home = Home::new()?;
    set_store(&home.codex_home(), "keyring")?;
    let login = mock.login(None).await?;
    service.put_codex_login(&home.codex_home(), &keyring_value(&login))?;
    home.write_config(&timing_config("60s"))?;
    let bus = [("DBUS_SESSION_BUS_ADDRESS", service.address.as_str())];
    let keyward = Keyward::serve_with(&home, &mock, &bus).await?;

    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    let profile = keyward.healthz().await?["profiles"][0].clone();
    assert_eq!(profile["store"]["kind"], "keyring", "{profile}");
    assert!(
        profile["source"]
            .as_str()
            .unwrap_or_default()
            .contains("Codex Auth"),
        "{profile}"
    );
    assert_eq!(mock.stat("token_calls").await?, 0);

    // The upstream refuses the token once: keyward refreshes and writes back to the item.
    refresh_after_a_401(&keyward, &mock, 3600).await?;
    let written = service
        .codex_login(&home.codex_home())?
        .ok_or_else(|| anyhow::anyhow!("the item is gone"))?;
    assert!(!written.contains('\n'), "compact, as the CLI writes it");
    let written: Value = serde_json::from_str(&written)?;
    assert_ne!(written["tokens"]["refresh_token"], login["refresh_token"]);
    assert!(
        mock.is_live(
            written["tokens"]["refresh_token"]
                .as_str()
                .unwrap_or_default()
        )
        .await?
    );
    assert_eq!(written["future_field"], json!({"kept": [1, 2.5]}));
    assert_eq!(written["auth_mode"], "chatgpt");
    assert!(!home.auth_path().exists(), "no auth.json appears");
    assert!(
        service
            .codex_attributes()?
            .contains("attribute.target = default"),
        "{}",
        service.codex_attributes()?
    );

    let status = home.keyward(&mock).envs(bus).arg("status").output()?;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}");
    assert!(
        text.contains("store         keyring (cli_auth_credentials_store = \"keyring\" in"),
        "{text}"
    );
    let mut known = tokens_of(&login);
    known.extend(tokens_of(&written));
    assert_no_secrets(&text, &known, "status");
    assert_no_secrets(&keyward.log(), &known, "the log");
    mock.assert_no_reuse().await
}

/// keyward and the real Codex CLI take turns rotating one keyring item: the CLI refreshes a
/// token inside its window and keyward adopts it without a restart (the scheduler's tick is an
/// hour: the CLI's lock release is the event); keyward refreshes after a 401 and the CLI then
/// refreshes keyward's lineage. Zero reuse, every turn served, never an auth.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyward_and_the_real_codex_cli_take_turns_on_one_keyring_item() -> Result<()> {
    let Some(CliOnKeyring {
        cli,
        service,
        mock,
        home,
    }) = CliOnKeyring::start("keyring").await?
    else {
        return Ok(());
    };
    service.put_codex_login(
        &home.codex_home(),
        &keyring_value(&mock.login(Some(120)).await?),
    )?;
    let bus = [("DBUS_SESSION_BUS_ADDRESS", service.address.as_str())];
    let keyward = Keyward::serve_with(&home, &mock, &bus).await?;
    assert_eq!(keyward.respond(true).await?.0, 200);

    let rounds = 2;
    for round in 0..rounds {
        // The CLI's turn: its token has 120 s left, so `codex exec` refreshes it first.
        let before = stored_refresh_token(&service, &home.codex_home())?;
        let seen = generation(&keyward).await?;
        mock.ttl_queue(json!([3600])).await?;
        let (ok, output) = codex_exec_with(&cli, &home, &mock, &bus)?;
        assert!(ok, "round {round}: codex exec failed:\n{output}");
        let after_cli = stored_refresh_token(&service, &home.codex_home())?;
        assert_ne!(
            after_cli, before,
            "round {round}: the CLI did not refresh:\n{output}"
        );
        assert!(
            !home.auth_path().exists(),
            "round {round}: the CLI wrote auth.json"
        );

        // keyward notices without a request and without its tick, and serves without spending.
        wait_until("keyward adopts the CLI's rotation", || async {
            generation(&keyward).await.is_ok_and(|g| g > seen)
        })
        .await?;
        served_without_spending(&keyward, &mock, &format!("round {round}")).await?;

        // keyward's turn: a 401, a refresh through the protocol, a 120 s token for the CLI.
        refresh_after_a_401(&keyward, &mock, 120).await?;
        let after_keyward = stored_refresh_token(&service, &home.codex_home())?;
        assert_ne!(
            after_keyward, after_cli,
            "round {round}: keyward did not refresh"
        );
        assert!(mock.is_live(&after_keyward).await?);
    }
    mock.ttl_queue(json!([3600])).await?;
    let (ok, output) = codex_exec_with(&cli, &home, &mock, &bus)?;
    assert!(ok, "final codex exec failed:\n{output}");
    assert!(
        mock.is_live(&stored_refresh_token(&service, &home.codex_home())?)
            .await?,
        "the item ends on the live lineage"
    );
    let stats = mock.stats().await?;
    assert_eq!(stats["token_calls"], stats["refresh_ok"], "{stats}");
    assert_eq!(stats["refresh_ok"], json!(2 * rounds + 1), "{stats}");
    mock.assert_no_reuse().await
}

/// The real CLI and a Secret Service, a mock, and a home whose CLI config sends the CLI to the
/// mock with `cli_auth_credentials_store = store`; keyward's timing left to events.
struct CliOnKeyring {
    cli: PathBuf,
    service: SecretService,
    mock: Mock,
    home: Home,
}

impl CliOnKeyring {
    /// `None` when the CLI or the Secret Service's programs are missing (the test skips).
    async fn start(store: &str) -> Result<Option<Self>> {
        let Some(cli) = codex_cli() else {
            return Ok(None);
        };
        let Some(service) = SecretService::start().await? else {
            return Ok(None);
        };
        let mock = Mock::start().await?;
        let home = Home::new()?;
        write_cli_config(&home, &mock)?;
        set_store(&home.codex_home(), store)?;
        home.write_config(&event_only_config())?;
        Ok(Some(Self {
            cli,
            service,
            mock,
            home,
        }))
    }
}

fn served(stats: &Value, account: &str) -> u64 {
    stats["served_by_account"][account].as_u64().unwrap_or(0)
}

/// Switching `cli_auth_credentials_store` in the CLI's config.toml is followed at once: file,
/// keyring, auto (the keyring's item first), and back to the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_the_store_in_config_toml_is_followed() -> Result<()> {
    let Some(service) = SecretService::start().await? else {
        return Ok(());
    };
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_login(&mock.login_as("acct-file").await?)?;
    service.put_codex_login(
        &home.codex_home(),
        &keyring_value(&mock.login_as("acct-keyring").await?),
    )?;
    home.write_config(&event_only_config())?;
    let bus = [("DBUS_SESSION_BUS_ADDRESS", service.address.as_str())];
    let keyward = Keyward::serve_with(&home, &mock, &bus).await?;

    for (store, kind, account) in [
        (None, "file", "acct-file"),
        (Some("keyring"), "keyring", "acct-keyring"),
        (Some("auto"), "keyring", "acct-keyring"),
        (Some("file"), "file", "acct-file"),
    ] {
        if let Some(store) = store {
            set_store(&home.codex_home(), store)?;
        }
        wait_until(&format!("the {kind} store after {store:?}"), || async {
            keyward
                .healthz()
                .await
                .is_ok_and(|h| h["profiles"][0]["store"]["kind"] == kind)
        })
        .await?;
        let before = served(&mock.stats().await?, account);
        let (status, body) = keyward.respond(true).await?;
        assert_eq!(status, 200, "{store:?}: {body}");
        assert_eq!(
            served(&mock.stats().await?, account),
            before + 1,
            "{store:?}"
        );
    }
    assert_eq!(mock.stat("token_calls").await?, 0);
    Ok(())
}

/// Without a D-Bus session bus, `keyring` is a source error that says what to do, and `auto`
/// uses auth.json as the CLI does; a locked keyring keeps the last good login served and says
/// how to unlock it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_locked_keyring_says_what_to_do() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_login(&mock.login(None).await?)?;
    set_store(&home.codex_home(), "keyring")?;
    home.write_config(&timing_config("60s"))?;
    let no_bus = home.root().join("no-bus");
    std::fs::create_dir_all(&no_bus)?;
    let no_bus_env = [("XDG_RUNTIME_DIR", no_bus.to_str().unwrap_or_default())];
    let keyward = Keyward::serve_with(&home, &mock, &no_bus_env).await?;
    keyward.wait_for_health("source-error").await?;
    let health = keyward.health().await?;
    let detail = health["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("no D-Bus session bus"), "{health}");
    assert!(detail.contains("Codex Auth"), "{health}");
    let remedy = health["remedy"].as_str().unwrap_or_default();
    assert!(
        remedy.contains("desktop session") && remedy.contains("\"file\""),
        "{health}"
    );
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 503, "{body}");

    // `auto` on the same machine: auth.json, as the CLI reads it, with a warning saying why.
    set_store(&home.codex_home(), "auto")?;
    keyward.wait_for_health("ok").await?;
    let profile = keyward.healthz().await?["profiles"][0].clone();
    assert_eq!(profile["store"]["kind"], "file", "{profile}");
    assert!(
        profile["warnings"].to_string().contains("D-Bus"),
        "{profile}"
    );
    assert_eq!(keyward.respond(true).await?.0, 200);
    drop(keyward);

    // A locked keyring: the login read before keeps being served; health says to unlock.
    let Some(service) = SecretService::start().await? else {
        return Ok(());
    };
    set_store(&home.codex_home(), "keyring")?;
    service.put_codex_login(&home.codex_home(), &keyring_value(&mock.login(None).await?))?;
    let bus = [("DBUS_SESSION_BUS_ADDRESS", service.address.as_str())];
    let keyward = Keyward::serve_with(&home, &mock, &bus).await?;
    keyward.wait_for_health("ok").await?;
    service.lock()?;
    // One snapshot of health says all three (a read of it may come between two of its checks).
    wait_until(
        "health: degraded, naming the locked keyring, saying to unlock it",
        || async {
            keyward.health().await.is_ok_and(|h| {
                h["state"] == "degraded"
                    && h["detail"].as_str().unwrap_or_default().contains("locked")
                    && h["remedy"].as_str().unwrap_or_default().contains("unlock")
            })
        },
    )
    .await?;
    assert_eq!(keyward.respond(true).await?.0, 200);
    Ok(())
}

/// `auto` with an empty keyring: keyward serves auth.json, and its write-back moves the login into
/// a keyring item it creates (auth.json removed), as the CLI's own save would; the real CLI finds
/// that item and refreshes its lineage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_moves_the_login_into_a_keyring_item_the_real_cli_finds() -> Result<()> {
    let Some(CliOnKeyring {
        cli,
        service,
        mock,
        home,
    }) = CliOnKeyring::start("auto").await?
    else {
        return Ok(());
    };
    home.write_login(&mock.login(None).await?)?;
    let bus = [("DBUS_SESSION_BUS_ADDRESS", service.address.as_str())];
    let keyward = Keyward::serve_with(&home, &mock, &bus).await?;
    assert_eq!(
        keyward.healthz().await?["profiles"][0]["store"]["kind"],
        "file"
    );

    refresh_after_a_401(&keyward, &mock, 120).await?;
    assert!(
        !home.auth_path().exists(),
        "the keyring save removes auth.json"
    );
    let moved = stored_refresh_token(&service, &home.codex_home())?;
    assert!(mock.is_live(&moved).await?);
    assert!(
        service
            .codex_attributes()?
            .contains("attribute.application = rust-keyring"),
        "{}",
        service.codex_attributes()?
    );
    wait_until("keyward reads the keyring item", || async {
        keyward
            .healthz()
            .await
            .is_ok_and(|h| h["profiles"][0]["store"]["kind"] == "keyring")
    })
    .await?;

    // The CLI reads the item keyward created and refreshes its 120 s token.
    mock.ttl_queue(json!([3600])).await?;
    let (ok, output) = codex_exec_with(&cli, &home, &mock, &bus)?;
    assert!(ok, "codex exec failed:\n{output}");
    let after_cli = stored_refresh_token(&service, &home.codex_home())?;
    assert_ne!(
        after_cli, moved,
        "the CLI did not refresh the item:\n{output}"
    );
    assert!(mock.is_live(&after_cli).await?);
    assert_eq!(keyward.respond(true).await?.0, 200);
    mock.assert_no_reuse().await
}

/// `keyward login` and `logout` use the store the Codex CLI keeps its login in: with the keyring
/// configured, the new login is the CLI's keyring item (no `auth.json` appears), keyward serves
/// it, and `logout` removes the item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyward_login_and_logout_use_the_keyring() -> Result<()> {
    let Some(service) = SecretService::start().await? else {
        return Ok(());
    };
    let mock = Mock::start().await?;
    mock.device_setting(json!({"interval": 1})).await?;
    let home = Home::new()?;
    set_store(&home.codex_home(), "keyring")?;
    let bus = [("DBUS_SESSION_BUS_ADDRESS", service.address.as_str())];

    let mut sign_in = SignIn::start_with(&home, &mock, &["login", "--device"], &bus)?;
    sign_in
        .printed(&format!("{}/codex/device", mock.url))
        .await?;
    let code = sign_in.user_code().await?;
    mock.approve_device(&code).await?;
    let finished = sign_in.finish().await?;
    assert_eq!(finished.code, Some(0), "{}", finished.output());
    assert!(!home.auth_path().exists(), "the login went to auth.json");
    let stored: Value = serde_json::from_str(
        &service
            .codex_login(&home.codex_home())?
            .ok_or_else(|| anyhow::anyhow!("no keyring item after the sign-in"))?,
    )?;
    assert!(stored["tokens"]["refresh_token"].is_string(), "{stored}");

    let keyward = Keyward::serve_with(&home, &mock, &bus).await?;
    let (status, body) = keyward.respond(true).await?;
    assert_eq!(status, 200, "{body}");
    drop(keyward);

    let out = SignIn::start_with(&home, &mock, &["logout", "--force"], &bus)?
        .finish()
        .await?;
    assert_eq!(out.code, Some(0), "{}", out.output());
    assert_eq!(service.codex_login(&home.codex_home())?, None);
    Ok(())
}
