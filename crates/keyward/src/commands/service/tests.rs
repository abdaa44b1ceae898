//! The service files for awkward paths: spaces, `%` and `$` reach systemd as written, and the
//! property list reads back with launchd's keys and types.

use std::path::PathBuf;

use super::{launchd, systemd, Spec};

fn spec() -> Spec {
    Spec {
        exe: PathBuf::from("/opt/my tools/keyward%1$x"),
        args: vec![
            "serve".into(),
            "--config".into(),
            "/home/u/my \"cfg\".toml".into(),
        ],
        env: vec![("KEYWARD_HOME".into(), "/home/u/.kw 50%$".into())],
        writable: vec![
            PathBuf::from("/home/u/.kw 50%$"),
            PathBuf::from("/home/u/.codex"),
        ],
        keyward_home: PathBuf::from("/home/u/.kw 50%$"),
        warnings: Vec::new(),
    }
}

/// `%` is doubled everywhere (systemd's specifiers), `$` on the command line (its variables),
/// quotes and backslashes escaped, each word quoted.
#[test]
fn unit_words_are_quoted_for_systemd() {
    let unit = systemd::unit(&spec());
    assert!(
        unit.contains(r#"ExecStart="/opt/my tools/keyward%%1$$x" "serve" "--config" "/home/u/my \"cfg\".toml""#),
        "{unit}"
    );
    assert!(
        unit.contains(r#"Environment="KEYWARD_HOME=/home/u/.kw 50%%$""#),
        "{unit}"
    );
    assert!(
        unit.contains(r#"ReadWritePaths="-/home/u/.kw 50%%$" "-/home/u/.codex""#),
        "{unit}"
    );
}

/// The agent reads back as a dictionary with launchd's keys, each of its type.
#[test]
fn plist_reads_back() {
    let text = launchd::plist(&spec());
    let value =
        plist::Value::from_reader_xml(text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text}"));
    let agent = value.as_dictionary().unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        agent.get("Label").and_then(|v| v.as_string()),
        Some("dev.keyward")
    );
    let args: Vec<&str> = agent
        .get("ProgramArguments")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_string()).collect())
        .unwrap_or_default();
    assert_eq!(
        args,
        [
            "/opt/my tools/keyward%1$x",
            "serve",
            "--config",
            "/home/u/my \"cfg\".toml"
        ]
    );
    assert_eq!(
        agent.get("RunAtLoad").and_then(|v| v.as_boolean()),
        Some(true)
    );
    let keep_alive = agent.get("KeepAlive").and_then(|v| v.as_dictionary());
    assert_eq!(
        keep_alive
            .and_then(|k| k.get("SuccessfulExit"))
            .and_then(|v| v.as_boolean()),
        Some(false)
    );
    assert_eq!(
        agent.get("StandardErrorPath").and_then(|v| v.as_string()),
        Some("/home/u/.kw 50%$/keyward.log")
    );
}
