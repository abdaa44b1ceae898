//! `keyward login` and `keyward logout`: signing a Codex profile in with ChatGPT (in a browser, or
//! with a device code) and out again, writing the login where the Codex CLI keeps it so the CLI
//! uses it too. The default profile's home is `$CODEX_HOME` (or `~/.codex`); a new named profile
//! gets a home under keyward's (`$KEYWARD_HOME/codex/NAME`) and a `[[codex.profiles]]` entry.
//!
//! Replacing or removing a login asks first (on a terminal; `--force` elsewhere), since it logs
//! out every Codex CLI and keyward using that home: the old refresh token is revoked, as the CLI
//! revokes it. Unlike the CLI, a sign-in revokes the old login only once the new one is written,
//! so a sign-in that fails leaves the old login as it was.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::exit;
use crate::codex::login::callback::Callback;
use crate::codex::login::device;
use crate::codex::login::exchange::Authorization;
use crate::codex::login::install::{self, Installed, Installer};
use crate::codex::login::pkce::{new_state, Pkce};
use crate::codex::login::{authorize_url, revoke, LoginError};
use crate::codex::provider::CodexSettings;
use crate::codex::{config_edit, token_endpoint, CodexSource};
use crate::config::Config;
use crate::credential::{CredentialSource, SourceContents};
use crate::profile::{ProfileId, CODEX_PROVIDER};
use crate::secret::Secret;
use crate::store::SqliteStore;

/// How long a browser sign-in waits by default.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// How long a device code lives at the provider: waiting longer is pointless.
const DEVICE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The sign-in server's connections are set up within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct LoginOptions {
    /// `NAME` or `openai-codex:NAME`; none: the default profile.
    pub profile: Option<String>,
    pub device: bool,
    pub force: bool,
    pub timeout: Option<Duration>,
}

/// Where a login goes.
struct Target {
    id: ProfileId,
    home: PathBuf,
    is_default_home: bool,
    /// Not in the config yet: added once signed in.
    new: bool,
}

impl Target {
    fn auth_path(&self) -> PathBuf {
        self.home.join("auth.json")
    }

    /// What the home holds now, in words (no secret), if anything. Read on a blocking thread:
    /// the keyring's client blocks on a runtime of its own.
    async fn current_login(&self) -> Option<String> {
        let source = CodexSource::new(self.home.clone(), self.is_default_home);
        let read = tokio::task::spawn_blocking(move || source.read().contents)
            .await
            .ok()?;
        match read {
            Ok(SourceContents::Login(login)) => {
                let mut about = Vec::new();
                about.extend(login.claims.email.clone());
                about.extend(login.account().map(|a| format!("account {a}")));
                Some(if about.is_empty() {
                    "a ChatGPT login".into()
                } else {
                    format!("a ChatGPT login ({})", about.join(", "))
                })
            }
            Ok(SourceContents::ApiKey(_)) => Some("an API key".into()),
            Ok(SourceContents::NoLogin | SourceContents::Missing) => None,
            Err(problem) => Some(format!("a login keyward cannot read ({problem})")),
        }
    }
}

pub(crate) async fn login(config: &Config, options: LoginOptions) -> u8 {
    let Some(codex) = codex_settings(config) else {
        return exit::USAGE;
    };
    let target = match target(config, codex, options.profile.as_deref(), true) {
        Ok(target) => target,
        Err(message) => {
            eprintln!("keyward: {message}");
            return exit::USAGE;
        }
    };
    if let Some(current) = target.current_login().await {
        let question = format!(
            "{} ({}) already holds {current}. Replace it? The old login is revoked, which signs out every Codex CLI and keyward using it.",
            target.id,
            target.auth_path().display()
        );
        if let Err(code) = confirm(&question, options.force) {
            return code;
        }
    }
    let store = match SqliteStore::open(&config.keyward_home) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("keyward: {e}");
            return exit::FAILURE;
        }
    };
    let Some(http) = http_client() else {
        return exit::FAILURE;
    };
    let token_url = format!("{}/oauth/token", codex.issuer);
    let installer = Installer {
        store: &store,
        http: &http,
        token_url: &token_url,
        issuer: &codex.issuer,
        lock_timeout: config.lock_timeout,
        token_timeout: config.token_timeout,
    };
    let signed_in = if options.device {
        let timeout = options.timeout.unwrap_or(DEVICE_TIMEOUT);
        device_sign_in(&installer, &target, timeout).await
    } else {
        let timeout = options.timeout.unwrap_or(BROWSER_TIMEOUT);
        browser_sign_in(&installer, &target, timeout).await
    };
    let installed = match signed_in {
        Ok(installed) => installed,
        Err(e) => return failed(&e),
    };
    let mut code = exit::OK;
    let who = [
        installed.claims.email.clone(),
        installed.claims.plan.as_ref().map(|p| format!("plan {p}")),
        installed
            .claims
            .account_id
            .as_ref()
            .map(|a| format!("account {a}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    println!(
        "Signed in {} with ChatGPT ({who}); the login is in {}.",
        target.id,
        target.auth_path().display()
    );
    if target.new {
        match config_edit::add_codex_profile(&config.config_path, target.id.name(), &target.home) {
            Ok(()) => {
                println!(
                    "Added {} to {}. A `keyward serve` already running serves it once restarted; one started from now on serves it at once.",
                    target.id,
                    config.config_path.display()
                );
            }
            Err(e) => {
                eprintln!(
                    "keyward: the login is written, but {} is not in the config: {e}",
                    target.id
                );
                code = exit::FAILURE;
            }
        }
    }
    if let Some(old) = installed.replaced {
        revoke_replaced(&http, codex, &old, "the replaced login").await;
    }
    code
}

pub(crate) async fn logout(config: &Config, profile: Option<String>, force: bool) -> u8 {
    let Some(codex) = codex_settings(config) else {
        return exit::USAGE;
    };
    let target = match target(config, codex, profile.as_deref(), false) {
        Ok(target) => target,
        Err(message) => {
            eprintln!("keyward: {message}");
            return exit::USAGE;
        }
    };
    let Some(current) = target.current_login().await else {
        println!(
            "{} ({}) holds no login: nothing to sign out.",
            target.id,
            target.auth_path().display()
        );
        return exit::OK;
    };
    let question = format!(
        "Sign out {}? It holds {current}. This removes {} and revokes the login: a Codex CLI using {} is signed out too.",
        target.id,
        target.auth_path().display(),
        target.home.display()
    );
    if let Err(code) = confirm(&question, force) {
        return code;
    }
    let (home, lock_timeout) = (target.home.clone(), config.lock_timeout);
    let removed = tokio::task::spawn_blocking(move || install::remove(&home, lock_timeout)).await;
    let refresh = match removed {
        Ok(Ok(refresh)) => refresh,
        Ok(Err(e)) => return failed(&e),
        Err(e) => {
            eprintln!("keyward: signing out failed: {e}");
            return exit::FAILURE;
        }
    };
    println!(
        "Signed out {}: removed {}.",
        target.id,
        target.auth_path().display()
    );
    if let Some(refresh) = refresh {
        let Some(http) = http_client() else {
            return exit::FAILURE;
        };
        revoke_replaced(&http, codex, &refresh, "the login").await;
    }
    if target.id != ProfileId::codex_default() {
        println!(
            "{} stays in the config and needs a login: sign it in again with `keyward login --profile {}`, or remove its [[codex.profiles]] entry.",
            target.id,
            target.id.name()
        );
    }
    exit::OK
}

async fn browser_sign_in(
    installer: &Installer<'_>,
    target: &Target,
    timeout: Duration,
) -> Result<Installed, LoginError> {
    let pkce = Pkce::new();
    let state = new_state();
    let callback = Callback::bind()?;
    let redirect_uri = callback.redirect_uri();
    let url =
        authorize_url(installer.issuer, &redirect_uri, &pkce.challenge, &state).map_err(|e| {
            LoginError::BadAnswer {
                url: installer.issuer.to_string(),
                detail: format!("the issuer does not make an authorize URL: {e}"),
            }
        })?;
    eprintln!(
        "Sign in with ChatGPT in your browser. If it does not open, open this address:\n\n  {url}\n\nWaiting up to {} for the sign-in. (No browser on this machine? Use `keyward login --device`.)",
        humantime_serde::re::humantime::format_duration(timeout)
    );
    open_browser(url.as_str());
    callback
        .wait(state, timeout, |code| {
            let authorization = Authorization {
                code,
                redirect_uri,
                verifier: pkce.verifier,
            };
            installer.install(&target.id, &target.home, authorization)
        })
        .await
}

async fn device_sign_in(
    installer: &Installer<'_>,
    target: &Target,
    timeout: Duration,
) -> Result<Installed, LoginError> {
    let code = device::request_code(installer.http, installer.issuer).await?;
    eprintln!(
        "To sign in, open this page in a browser signed in to ChatGPT:\n\n  {}\n\nand enter the code\n\n  {}\n\nIt expires in 15 minutes. Continue only if you started this sign-in: never enter a code someone else gave you.",
        code.verification_url, code.user_code
    );
    let deadline = tokio::time::Instant::now() + timeout;
    let authorization =
        device::wait_for_approval(installer.http, installer.issuer, &code, deadline, timeout)
            .await?;
    installer
        .install(&target.id, &target.home, authorization)
        .await
}

/// Revokes `refresh` and says how it went; a failure is reported, not fatal.
async fn revoke_replaced(
    http: &reqwest::Client,
    codex: &CodexSettings,
    refresh: &Secret,
    what: &str,
) {
    match revoke::revoke(http, &codex.revoke_url, refresh).await {
        Ok(()) => println!("Revoked {what} (refresh token {}).", refresh.fingerprint()),
        Err(e) => eprintln!(
            "keyward: could not revoke {what} (refresh token {}): {e}. It is no longer stored here, but stays valid at the provider until it expires.",
            refresh.fingerprint()
        ),
    }
}

fn failed(error: &LoginError) -> u8 {
    match error.remedy() {
        Some(remedy) => eprintln!("keyward: {error}\n  to fix: {remedy}"),
        None => eprintln!("keyward: {error}"),
    }
    if error.retryable() {
        exit::UNAVAILABLE
    } else {
        exit::FAILURE
    }
}

fn codex_settings(config: &Config) -> Option<&CodexSettings> {
    let settings = crate::provider::settings_of::<CodexSettings>(config.providers()).next();
    if settings.is_none() {
        eprintln!("keyward: the Codex provider is not configured");
    }
    settings
}

/// The profile `name` names. With `may_add`, a name the config does not have becomes a new
/// profile with a home under keyward's.
fn target(
    config: &Config,
    codex: &CodexSettings,
    name: Option<&str>,
    may_add: bool,
) -> Result<Target, String> {
    let name = match name {
        None => "default",
        Some(given) => match given.split_once(':') {
            Some((CODEX_PROVIDER, name)) => name,
            Some((provider, _)) => {
                return Err(format!(
                    "`{given}` is a {provider} profile; keyward signs in Codex profiles ({CODEX_PROVIDER}:NAME)"
                ))
            }
            None => given,
        },
    };
    let id = ProfileId::new(CODEX_PROVIDER, name).map_err(|e| e.to_string())?;
    if let Some(profile) = codex.profiles.iter().find(|p| p.id == id) {
        return Ok(Target {
            id,
            home: profile.home.clone(),
            is_default_home: profile.is_default_home,
            new: false,
        });
    }
    if id == ProfileId::codex_default() {
        return Err(format!(
            "{id} is switched off (`[codex] discover_default = false` in {}); name a profile with --profile",
            config.config_path.display()
        ));
    }
    if !may_add {
        return Err(format!(
            "there is no profile {id} (`keyward status` lists them)"
        ));
    }
    Ok(Target {
        home: config.keyward_home.join("codex").join(id.name()),
        id,
        is_default_home: false,
        new: true,
    })
}

/// Asks `question` on the terminal; `Err` carries the exit code when the answer is no, or when
/// there is no terminal to ask on and no `--force`.
fn confirm(question: &str, force: bool) -> Result<(), u8> {
    if force {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        eprintln!("keyward: {question}\n  refused: not asking without a terminal; pass --force to go ahead");
        return Err(exit::USAGE);
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if stdin.lock().read_line(&mut answer).is_err() {
        return Err(exit::FAILURE);
    }
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        eprintln!("keyward: nothing changed");
        Err(exit::FAILURE)
    }
}

fn http_client() -> Option<reqwest::Client> {
    match token_endpoint::http_client(CONNECT_TIMEOUT) {
        Ok(http) => Some(http),
        Err(e) => {
            eprintln!("keyward: cannot build the HTTP client: {e}");
            None
        }
    }
}

/// Tries to show `url` in the user's browser: only with a display to show it on, never failing
/// (the address is printed either way).
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        "xdg-open"
    } else {
        return;
    };
    match std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => tracing::debug!(opener, error = %e, "could not open a browser"),
    }
}
