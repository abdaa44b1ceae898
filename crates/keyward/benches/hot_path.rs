//! The request path's cost of resolving an access token: when nothing changed (a `stat` and two
//! atomic loads), and right after the source changed (re-read, parse, ledger lookup).
//!
//! `cargo bench -p keyward --bench hot_path`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use keyward::bench::HotPath;
use sha2::Digest;

fn jwt(payload: serde_json::Value) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.sig",
        engine.encode(br#"{"alg":"HS256"}"#),
        engine.encode(payload.to_string())
    )
}

fn hot_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let codex = dir.path().join("codex");
    std::fs::create_dir_all(&codex).unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({"exp": now + 86_400, "iat": now, "email": "u@example.com",
        "https://api.openai.com/auth": {"chatgpt_account_id": "acct", "chatgpt_plan_type": "pro"}});
    let auth = serde_json::json!({"OPENAI_API_KEY": null, "tokens": {"id_token": jwt(claims.clone()),
        "access_token": jwt(claims), "refresh_token": "rt_bench", "account_id": "acct"},
        "last_refresh": "2026-11-25T00:00:00Z"});
    std::fs::write(
        codex.join("auth.json"),
        serde_json::to_vec_pretty(&auth).unwrap(),
    )
    .unwrap();
    let env: HashMap<String, String> = [
        ("HOME", dir.path().to_str().unwrap()),
        ("KEYWARD_HOME", dir.path().join("keyward").to_str().unwrap()),
        ("CODEX_HOME", codex.to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let hot = HotPath::new(&env).unwrap();
    runtime.block_on(hot.access()).unwrap();

    // What the harness and the freshness check cost on their own, to read the numbers below.
    c.bench_function("baseline/block_on a ready future", |b| {
        b.iter(|| runtime.block_on(async { std::hint::black_box(1) }))
    });
    let auth_path = codex.join("auth.json");
    c.bench_function("baseline/stat auth.json", |b| {
        b.iter(|| std::fs::metadata(&auth_path).unwrap())
    });
    c.bench_function("access/unchanged source", |b| {
        b.iter(|| runtime.block_on(hot.access()).unwrap())
    });
    c.bench_function("access/source just changed", |b| {
        b.iter(|| {
            hot.source_changed();
            runtime.block_on(hot.access()).unwrap()
        })
    });

    // The same login in the keyring (`cli_auth_credentials_store = "keyring"`), when the bench
    // runs on a D-Bus session bus with an unlocked Secret Service (e.g. inside `dbus-run-session`
    // after `gnome-keyring-daemon --unlock`), stored with `secret-tool` as the Codex CLI stores it.
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
        let keyring_home = dir.path().join("codex-keyring");
        std::fs::create_dir_all(&keyring_home).unwrap();
        std::fs::write(
            keyring_home.join("config.toml"),
            "cli_auth_credentials_store = \"keyring\"\n",
        )
        .unwrap();
        let canonical = keyring_home.canonicalize().unwrap();
        let digest = sha2::Sha256::digest(canonical.to_string_lossy().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let account = format!("cli|{}", &hex[..16]);
        let mut store = std::process::Command::new("secret-tool")
            .args(["store", "--label=bench", "application", "rust-keyring"])
            .args([
                "service",
                "Codex Auth",
                "target",
                "default",
                "username",
                &account,
            ])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("secret-tool (libsecret-tools)");
        std::io::Write::write_all(
            &mut store.stdin.take().unwrap(),
            auth.to_string().as_bytes(),
        )
        .unwrap();
        assert!(store.wait().unwrap().success(), "secret-tool store failed");
        let mut env = env.clone();
        env.insert("CODEX_HOME".into(), keyring_home.to_str().unwrap().into());
        env.insert(
            "KEYWARD_HOME".into(),
            dir.path().join("keyward-keyring").to_str().unwrap().into(),
        );
        let hot = HotPath::new(&env).unwrap();
        runtime.block_on(hot.access()).unwrap();
        c.bench_function("keyring/access unchanged source", |b| {
            b.iter(|| runtime.block_on(hot.access()).unwrap())
        });
        c.bench_function("keyring/access source just changed (D-Bus read)", |b| {
            b.iter(|| {
                hot.source_changed();
                runtime.block_on(hot.access()).unwrap()
            })
        });
    }
}

criterion_group!(benches, hot_path);
criterion_main!(benches);
