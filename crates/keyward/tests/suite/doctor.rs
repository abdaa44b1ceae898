//! `keyward doctor` against broken set-ups, each a real process on a real temp machine: every
//! problem is reported as a failed (✗) or warned (!) check with its remedy, and the exit status
//! says whether anything failed.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::support::*;

/// `doctor --json`: its exit code and checks.
fn doctor(home: &Home, mock: &Mock, env: &[(&str, &str)]) -> Result<(i32, Vec<Value>)> {
    let output = run_keyward(home, mock, &["doctor", "--json"], env)?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let all = String::from_utf8_lossy(&output.stderr).into_owned() + &text;
    assert_no_secrets(&all, &[], "doctor");
    let report: Value =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{e}: {}", text_of(&output)))?;
    let checks = report["checks"].as_array().cloned().unwrap_or_default();
    Ok((output.status.code().unwrap_or(-1), checks))
}

/// The check named `name` (its first, by name prefix).
fn check<'c>(checks: &'c [Value], name: &str) -> &'c Value {
    checks
        .iter()
        .find(|c| c["name"].as_str().is_some_and(|n| n.starts_with(name)))
        .unwrap_or_else(|| panic!("no check {name}: {checks:#?}"))
}

fn status_of(checks: &[Value], name: &str) -> String {
    check(checks, name)["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A machine with a login and keyward running on its configured address passes every check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_working_machine_passes() -> Result<()> {
    let (mock, home, keyward) = serving().await?;
    home.write_config(&format!("listen = \"{}\"\n", keyward.host_port()))?;
    let (code, checks) = doctor(&home, &mock, &[])?;
    assert_eq!(code, 0, "{checks:#?}");
    assert_eq!(status_of(&checks, "login openai-codex:default"), "ok");
    let login = check(&checks, "login")["summary"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        login.contains("ChatGPT login of dev@example.com (pro)") && login.contains("(file)"),
        "{login}"
    );
    let server = check(&checks, "server");
    assert_eq!(server["status"], "ok", "{server}");
    assert!(
        server["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("keyward 0.1.0"),
        "{server}"
    );
    assert_eq!(status_of(&checks, "provider"), "ok");
    assert_eq!(status_of(&checks, "home"), "ok");
    // The human form: one line per check with its symbol.
    let human = run_keyward(&home, &mock, &["doctor"], &[])?;
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("✓ login openai-codex:default  ChatGPT login"),
        "{text}"
    );
    Ok(())
}

/// No login: the login fails with `codex login` as the remedy (exit 3); keyward not running is a
/// warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_login_fails() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    let (code, checks) = doctor(&home, &mock, &[])?;
    assert_eq!(code, 3, "{checks:#?}");
    let login = check(&checks, "login openai-codex:default");
    assert_eq!(login["status"], "fail", "{login}");
    assert!(
        login["remedy"]
            .as_str()
            .unwrap_or_default()
            .contains("codex login"),
        "{login}"
    );
    assert_eq!(status_of(&checks, "server"), "warn");
    Ok(())
}

/// A damaged auth.json is reported with what is wrong with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_auth_json_fails() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_auth_bytes(b"{\"tokens\": {\"access_token\": ")?;
    let (code, checks) = doctor(&home, &mock, &[])?;
    assert_eq!(code, 3);
    let login = check(&checks, "login openai-codex:default");
    assert_eq!(login["status"], "fail", "{login}");
    assert!(
        login["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("auth.json"),
        "{login}"
    );
    Ok(())
}

/// A config that does not load is the one failure reported (exit 2, as for every command).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_fails_with_usage() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_config("[refresh]\nmargin = \"30d\"\n")?;
    let (code, checks) = doctor(&home, &mock, &[])?;
    assert_eq!(code, 2, "{checks:#?}");
    let config = check(&checks, "config");
    assert_eq!(config["status"], "fail");
    assert!(
        config["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("margin"),
        "{config}"
    );
    Ok(())
}

/// A home other users can write, holding a file keyward did not make, fails with `chmod 700`;
/// doctor repairs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_home_others_can_write_fails() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_login(&mock.login(None).await?)?;
    home.write_config("")?;
    std::fs::write(home.keyward_home().join("planted"), b"")?;
    std::fs::set_permissions(home.keyward_home(), std::fs::Permissions::from_mode(0o777))?;
    let (code, checks) = doctor(&home, &mock, &[])?;
    assert_eq!(code, 3);
    let check = check(&checks, "home");
    assert_eq!(check["status"], "fail");
    assert!(
        check["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("chmod 700"),
        "{check}"
    );
    let mode = std::fs::metadata(home.keyward_home())?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o777, "doctor changed the mode");
    Ok(())
}

/// Another program on keyward's port (it answers HTTP, but not as keyward) is a failure naming
/// the port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_taken_by_another_program_fails() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_login(&mock.login(None).await?)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buffer = [0u8; 1024];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
            );
        }
    });
    home.write_config(&format!("listen = \"127.0.0.1:{port}\"\n"))?;
    let (code, checks) = doctor(&home, &mock, &[])?;
    assert_eq!(code, 3);
    let server = check(&checks, "server");
    assert_eq!(server["status"], "fail", "{server}");
    assert!(
        server["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("another program"),
        "{server}"
    );
    assert!(
        server["remedy"]
            .as_str()
            .unwrap_or_default()
            .contains(&port.to_string()),
        "{server}"
    );
    Ok(())
}

/// Claude Code's settings pointing at another port fail; with gateway keys, a client without a
/// key fails too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_settings_pointing_elsewhere_fail() -> Result<()> {
    let (mock, home, keyward) = serving().await?;
    home.write_config(&format!("listen = \"{}\"\n", keyward.host_port()))?;
    let claude = home.user_home().join(".claude");
    std::fs::create_dir_all(&claude)?;
    std::fs::write(
        claude.join("settings.json"),
        r#"{"env": {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}}"#,
    )?;
    let (code, checks) = doctor(&home, &mock, &[])?;
    assert_eq!(code, 3);
    let client = check(&checks, "client claude-code");
    assert_eq!(client["status"], "fail", "{client}");
    assert!(client["remedy"]
        .as_str()
        .unwrap_or_default()
        .contains("keyward setup claude-code"));

    let key = "kw-doctor-0123456789abcdef";
    home.write_config(&format!(
        "listen = \"{}\"\n[gateway]\napi_keys = [\"{key}\"]\n",
        keyward.host_port()
    ))?;
    std::fs::write(
        claude.join("settings.json"),
        format!(r#"{{"env": {{"ANTHROPIC_BASE_URL": "{}"}}}}"#, keyward.url),
    )?;
    let (_, checks) = doctor(&home, &mock, &[])?;
    let client = check(&checks, "client claude-code");
    assert_eq!(client["status"], "fail", "{client}");
    assert!(
        client["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("no key"),
        "{client}"
    );
    Ok(())
}

/// An unreachable provider is a warning (offline is not broken), and the rest still passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_provider_warns() -> Result<()> {
    let mock = Mock::start().await?;
    let home = Home::new()?;
    home.write_login(&mock.login(None).await?)?;
    let (code, checks) = doctor(
        &home,
        &mock,
        &[
            (
                "KEYWARD_CODEX_BASE_URL",
                "http://127.0.0.1:9/backend-api/codex",
            ),
            (
                "CODEX_REFRESH_TOKEN_URL_OVERRIDE",
                "http://127.0.0.1:9/oauth/token",
            ),
        ],
    )?;
    assert_eq!(code, 0, "{checks:#?}");
    let provider = check(&checks, "provider");
    assert_eq!(provider["status"], "warn", "{provider}");
    assert!(
        provider["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot be reached"),
        "{provider}"
    );
    Ok(())
}

/// keyward with gateway keys answers an anonymous /healthz with only its liveness: doctor still
/// tells it from another program (by keyward's refusal of a request without a key), and never
/// prints the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyward_with_gateway_keys_is_recognised() -> Result<()> {
    let key = "kw-doctor-fedcba9876543210";
    let config = format!("[gateway]\napi_keys = [\"{key}\"]\n");
    let (mock, home, keyward) = serving_with(&config, &[]).await?;
    home.write_config(&format!("listen = \"{}\"\n{config}", keyward.host_port()))?;
    let output = run_keyward(&home, &mock, &["doctor"], &[])?;
    let text = text_of(&output);
    assert!(!text.contains(key), "the key was printed: {text}");
    let (code, checks) = doctor(&home, &mock, &[])?;
    assert_eq!(code, 0, "{checks:#?}");
    let server = check(&checks, "server");
    assert_eq!(server["status"], "ok", "{server}");
    assert_eq!(status_of(&checks, "gateway keys"), "ok");
    Ok(())
}
