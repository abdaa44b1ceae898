//! `keyward setup CLIENT | --all [--print] [--undo]`: points a tool at keyward by editing (or
//! printing) its own settings file, keeping every other setting and the file's formatting.
//!
//! Each client ([`Client`]) knows its file, how to put keyward's few settings in it, how to take
//! them out again and how to read them back (for `doctor`). This module runs the same steps for
//! every one: a backup (`<file>.keyward-backup`) before the first change, nothing written when
//! nothing changes, mode 0600 for a file that gets a gateway key, and `--undo`, which restores the
//! backup when the file is as setup left it and otherwise takes out exactly setup's settings.
//!
//! A gateway key is written into another tool's file only when the user asks (`--write-key`);
//! by default a tool that can read it from the environment is told the variable's name.

mod aider;
mod claude_code;
mod codex;
mod continue_dev;
mod json_file;
mod opencode;
mod shell;
#[cfg(test)]
mod tests;
mod yaml_lines;

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::atomic_file;
use crate::cli::exit;
use crate::commands::UserDirs;
use crate::config::{Config, ProcessEnv};
use crate::env::Env;
use crate::secret::Secret;

/// The variable a tool reads the gateway key from, unless `--key-env` names another.
pub(crate) const DEFAULT_KEY_ENV: &str = "KEYWARD_API_KEY";
/// What a tool that insists on a key is given when keyward has no gateway keys (any value passes).
pub(crate) const PLACEHOLDER_KEY: &str = "keyward";
/// The name of the entry setup adds where a tool names its providers or models.
pub(crate) const ENTRY: &str = "keyward";

#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// The tool to point at keyward.
    #[arg(value_enum, required_unless_present = "all", conflicts_with = "all")]
    client: Option<ClientName>,
    /// Every installed tool (all but `shell`).
    #[arg(long)]
    all: bool,
    /// Show what would be written, and change nothing.
    #[arg(long)]
    print: bool,
    /// Take setup's settings out again (restores the backup if the file is as setup left it).
    #[arg(long)]
    undo: bool,
    /// With gateway keys: the environment variable the tool reads the key from, where it can
    /// (default KEYWARD_API_KEY).
    #[arg(long, value_name = "NAME", conflicts_with = "write_key")]
    key_env: Option<String>,
    /// With gateway keys: write the first key itself into the tool's settings (the file becomes
    /// mode 0600).
    #[arg(long)]
    write_key: bool,
    /// `shell`: put the exports in this file (e.g. ~/.bashrc) instead of printing them.
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
}

/// The tools `setup` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientName {
    /// Claude Code (~/.claude/settings.json).
    #[value(alias = "claude")]
    ClaudeCode,
    /// The Codex CLI ($CODEX_HOME/config.toml).
    Codex,
    /// opencode (~/.config/opencode/opencode.json).
    Opencode,
    /// Aider (~/.aider.conf.yml).
    Aider,
    /// Continue (~/.continue/config.yaml).
    Continue,
    /// The OpenAI and Anthropic SDKs' environment variables, printed or put in --file.
    Shell,
}

/// Every client, in the order `--all` and `doctor` take them.
pub(crate) static CLIENTS: &[&dyn Client] = &[
    &claude_code::ClaudeCode,
    &codex::Codex,
    &opencode::Opencode,
    &aider::Aider,
    &continue_dev::Continue,
];

fn client(name: ClientName) -> &'static dyn Client {
    match name {
        ClientName::ClaudeCode => &claude_code::ClaudeCode,
        ClientName::Codex => &codex::Codex,
        ClientName::Opencode => &opencode::Opencode,
        ClientName::Aider => &aider::Aider,
        ClientName::Continue => &continue_dev::Continue,
        ClientName::Shell => &shell::Shell,
    }
}

/// Where a tool is sent and with what key.
#[derive(Debug)]
pub(crate) struct Target {
    /// keyward's root URL as a client reaches it: `http://127.0.0.1:7411`.
    pub origin: String,
    pub key: KeyRef,
    /// The model a tool that needs one is set to (keyward's first served model).
    pub model: String,
    /// Every model keyward serves, for tools that list them.
    pub models: Vec<String>,
}

impl Target {
    /// The OpenAI-style base: `http://127.0.0.1:7411/v1`.
    pub(crate) fn openai_base(&self) -> String {
        format!("{}/v1", self.origin)
    }
}

/// How a tool gets its key.
#[derive(Debug)]
pub(crate) enum KeyRef {
    /// keyward has no gateway keys: any value passes, for tools that insist on one.
    Placeholder,
    /// The tool reads the key from this environment variable (or, where it cannot, is told to).
    Env(String),
    /// The first gateway key, written into the tool's settings (`--write-key`).
    Literal(Secret),
}

/// What a tool's settings say about keyward, for `doctor`.
#[derive(Debug)]
pub(crate) struct Pointing {
    /// The URL it sends its requests to (as the settings write it).
    pub base_url: String,
    pub key: KeySetting,
}

#[derive(Debug)]
pub(crate) enum KeySetting {
    None,
    Literal(Secret),
    /// Read from this environment variable of the tool's.
    Env(String),
    /// Read from the tool's own store of secrets under this name.
    Stored(String),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum EditError {
    #[error("it is not valid {format}: {detail}")]
    Parse {
        format: &'static str,
        detail: String,
    },
    #[error("{0}")]
    Shape(String),
}

impl EditError {
    pub(crate) fn parse(format: &'static str, detail: impl ToString) -> Self {
        EditError::Parse {
            format,
            detail: detail.to_string(),
        }
    }
}

/// A tool whose settings `setup` edits.
pub(crate) trait Client: Sync {
    /// Its name on the command line (`claude-code`).
    fn name(&self) -> &'static str;
    /// Its name for people (`Claude Code`).
    fn title(&self) -> &'static str;
    /// Its settings file.
    fn path(&self, dirs: &UserDirs, env: &dyn Env) -> PathBuf;
    /// Whether it looks installed: its settings directory exists or its program is on `PATH`.
    fn installed(&self, dirs: &UserDirs, env: &dyn Env) -> bool;
    /// `text` (empty: no file yet) with keyward's settings in it.
    fn apply(&self, text: &str, target: &Target) -> Result<String, EditError>;
    /// `text` without keyward's settings: each one `original` (the file before setup; empty if
    /// there was none) had is put back as it was, the others are taken out.
    fn remove(&self, text: &str, original: &str) -> Result<String, EditError>;
    /// What `text` says about keyward (`None`: it is not pointed at keyward).
    fn inspect(&self, text: &str) -> Result<Option<Pointing>, EditError>;
    /// What the user does next (how to use it, where to put the key).
    fn next_steps(&self, target: &Target) -> Vec<String>;
    /// Another of the tool's settings that keeps keyward's from working, and what to do.
    fn conflict(&self, _dirs: &UserDirs, _env: &dyn Env) -> Option<String> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {source}. Nothing was changed; fix the file, or add the settings `keyward setup {client} --print` shows by hand")]
    Edit {
        path: String,
        client: &'static str,
        #[source]
        source: EditError,
    },
}

/// What one client's setup did.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Unchanged,
    Written { backup: Option<PathBuf> },
    Restored,
    Removed,
    Printed,
}

pub(crate) fn run(args: SetupArgs, config_path: Option<&Path>) -> u8 {
    let env = ProcessEnv;
    let (config, dirs) = match super::load(config_path) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let target = match target(&config, &args) {
        Ok(target) => target,
        Err(message) => {
            eprintln!("keyward: {message}");
            return exit::USAGE;
        }
    };
    if args.client == Some(ClientName::Shell) {
        return shell::run(args.file.as_deref(), &target, args.print, args.undo);
    }
    let chosen: Vec<&dyn Client> = match args.client {
        Some(name) => vec![client(name)],
        None => CLIENTS
            .iter()
            .copied()
            .filter(|c| c.installed(&dirs, &env))
            .collect(),
    };
    if chosen.is_empty() {
        println!("No tool that `keyward setup` knows is installed here (Claude Code, the Codex CLI, opencode, Aider, Continue); name one to set it up anyway.");
        return exit::OK;
    }
    let mut code = exit::OK;
    for client in chosen {
        let path = client.path(&dirs, &env);
        let result = if args.undo {
            undo(client, &path, &target, args.print)
        } else {
            apply(client, &path, &target, args.print)
        };
        match result {
            Ok(outcome) => {
                report(client, &path, &outcome, &target, args.undo);
                if let Some(conflict) = client.conflict(&dirs, &env).filter(|_| !args.undo) {
                    eprintln!("keyward: warning: {}: {conflict}", client.title());
                }
            }
            Err(e) => {
                eprintln!("keyward: {}: {e}", client.title());
                code = exit::FAILURE;
            }
        }
    }
    code
}

/// keyward's address and key as the clients are to use them.
fn target(config: &Config, args: &SetupArgs) -> Result<Target, String> {
    let keys = &config.gateway.api_keys;
    let key = match (keys.first(), args.write_key, &args.key_env) {
        (None, true, _) => {
            return Err(format!(
            "--write-key: keyward has no gateway keys to write ({} or [gateway] api_keys in {})",
            crate::config::API_KEYS_ENV,
            config.config_path.display()
        ))
        }
        (None, false, _) => KeyRef::Placeholder,
        (Some(first), true, _) => KeyRef::Literal(Secret::new(first.expose())),
        (Some(_), false, Some(name)) => {
            if !is_env_name(name) {
                return Err(format!(
                    "--key-env {name:?} is not an environment variable name (letters, digits and _)"
                ));
            }
            KeyRef::Env(name.clone())
        }
        (Some(_), false, None) => KeyRef::Env(DEFAULT_KEY_ENV.to_string()),
    };
    let models: Vec<String> = config.models.served.iter().map(|m| m.id.clone()).collect();
    Ok(Target {
        origin: client_origin(config.listen),
        key,
        model: models.first().cloned().unwrap_or_default(),
        models,
    })
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The URL a client on this machine reaches `listen` at (a wildcard address is reached on
/// loopback).
pub(crate) fn client_origin(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, listen.port()))
}

/// `text` as lines without their line ends.
fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

/// `lines` as a file's text, each line ended.
fn join(lines: &[String]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

pub(crate) fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".keyward-backup");
    PathBuf::from(name)
}

fn read(path: &Path) -> Result<Option<String>, SetupError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SetupError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn edit_error(client: &dyn Client, path: &Path) -> impl FnOnce(EditError) -> SetupError {
    let client = client.name();
    let path = path.display().to_string();
    move |source| SetupError::Edit {
        path,
        client,
        source,
    }
}

/// `text` as `--print` shows it: the gateway key, if written, replaced by a marker.
fn masked(text: &str, target: &Target) -> String {
    match &target.key {
        KeyRef::Literal(key) => text.replace(key.expose(), "<gateway key>"),
        _ => text.to_string(),
    }
}

/// Writes `text` to `path` atomically. A file that holds a gateway key becomes 0600; any other
/// keeps its mode (a new one is 0644, as the tools make theirs).
fn write(path: &Path, text: &str, target: &Target) -> Result<(), SetupError> {
    let error = |source| SetupError::Write {
        path: path.display().to_string(),
        source,
    };
    let holds_key = matches!(&target.key, KeyRef::Literal(key) if text.contains(key.expose()));
    let mode = if holds_key {
        0o600
    } else {
        fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644)
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(error)?;
    }
    atomic_file::replace(path, text.as_bytes(), ".keyward-setup-").map_err(error)?;
    let written = atomic_file::write_target(path).map_err(error)?;
    fs::set_permissions(&written, fs::Permissions::from_mode(mode)).map_err(error)
}

fn apply(
    client: &dyn Client,
    path: &Path,
    target: &Target,
    print: bool,
) -> Result<Outcome, SetupError> {
    let current = read(path)?;
    let text = current.as_deref().unwrap_or("");
    let new = client
        .apply(text, target)
        .map_err(edit_error(client, path))?;
    if current.as_deref() == Some(new.as_str()) {
        return Ok(Outcome::Unchanged);
    }
    if print {
        println!("# {}: would write {}", client.title(), path.display());
        print!("{}", masked(&new, target));
        return Ok(Outcome::Printed);
    }
    let backup = backup_path(path);
    let mut made_backup = None;
    if let Some(current) = &current {
        // The backup holds the file as it was before setup's first change. A file that already
        // points at keyward without one was created by setup: there is nothing of the user's to keep.
        let ours = client
            .inspect(current)
            .map_err(edit_error(client, path))?
            .is_some();
        if !backup.exists() && !ours {
            fs::copy(path, &backup).map_err(|source| SetupError::Write {
                path: backup.display().to_string(),
                source,
            })?;
            made_backup = Some(backup);
        }
    }
    write(path, &new, target)?;
    Ok(Outcome::Written {
        backup: made_backup,
    })
}

/// What `--undo` does to a file.
enum UndoPlan {
    /// The file is as setup left it: the backup is the whole truth.
    RestoreBackup(String),
    /// The user changed the file since: only setup's own settings are taken out.
    Write(String),
    /// Setup created the file and nothing else is in it.
    Remove,
}

fn undo(
    client: &dyn Client,
    path: &Path,
    target: &Target,
    print: bool,
) -> Result<Outcome, SetupError> {
    let backup = backup_path(path);
    let original = read(&backup)?;
    let Some(current) = read(path)? else {
        return Ok(Outcome::Unchanged);
    };
    let edit = |result: Result<String, EditError>| result.map_err(edit_error(client, path));
    let pointed = client
        .inspect(&current)
        .map_err(edit_error(client, path))?
        .is_some();
    if !pointed && original.is_none() {
        return Ok(Outcome::Unchanged);
    }
    let original_text = original.as_deref().unwrap_or("");
    let removed = edit(client.remove(&current, original_text))?;
    // Nothing but setup's settings changed since (whichever key choice it was run with): the
    // backup is the whole truth, byte for byte.
    let as_left = removed == original_text || current == edit(client.apply(original_text, target))?;
    // What setup writes into a file of its own, less its settings: a skeleton, nothing of the user's.
    let skeleton = edit(client.remove(&edit(client.apply("", target))?, ""))?;
    let plan = match &original {
        Some(text) if as_left => UndoPlan::RestoreBackup(text.clone()),
        None if as_left || removed.trim() == skeleton.trim() => UndoPlan::Remove,
        _ => UndoPlan::Write(removed),
    };
    if print {
        match &plan {
            UndoPlan::RestoreBackup(text) | UndoPlan::Write(text) => {
                println!("# {}: would write {}", client.title(), path.display());
                print!("{}", masked(text, target));
            }
            UndoPlan::Remove => println!("# {}: would remove {}", client.title(), path.display()),
        }
        return Ok(Outcome::Printed);
    }
    let outcome = match plan {
        UndoPlan::RestoreBackup(_) => {
            restore_backup(&backup, path)?;
            Outcome::Restored
        }
        UndoPlan::Write(text) => {
            write(path, &text, target)?;
            if original.is_some() {
                // The mode the file had before setup (a key it held made it 0600).
                restore_mode(&backup, path)?;
            }
            Outcome::Restored
        }
        UndoPlan::Remove => {
            fs::remove_file(path).map_err(|source| SetupError::Write {
                path: path.display().to_string(),
                source,
            })?;
            Outcome::Removed
        }
    };
    if original.is_some() {
        fs::remove_file(&backup).map_err(|source| SetupError::Write {
            path: backup.display().to_string(),
            source,
        })?;
    }
    Ok(outcome)
}

/// Puts the backup back in place of `path`, atomically and with the backup's mode.
fn restore_backup(backup: &Path, path: &Path) -> Result<(), SetupError> {
    let bytes = fs::read(backup).map_err(|source| SetupError::Read {
        path: backup.display().to_string(),
        source,
    })?;
    atomic_file::replace(path, &bytes, ".keyward-setup-").map_err(|source| SetupError::Write {
        path: path.display().to_string(),
        source,
    })?;
    restore_mode(backup, path)
}

/// Gives `path` the mode of `backup` (the file's before setup).
fn restore_mode(backup: &Path, path: &Path) -> Result<(), SetupError> {
    let error = |source| SetupError::Write {
        path: path.display().to_string(),
        source,
    };
    let mode = fs::metadata(backup)
        .map(|m| m.permissions().mode() & 0o7777)
        .map_err(error)?;
    let written = atomic_file::write_target(path).map_err(error)?;
    fs::set_permissions(&written, fs::Permissions::from_mode(mode)).map_err(error)
}

fn report(client: &dyn Client, path: &Path, outcome: &Outcome, target: &Target, undo: bool) {
    let title = client.title();
    let path = path.display();
    match outcome {
        Outcome::Printed => return,
        Outcome::Unchanged if undo => println!("{title}: nothing of keyward's in {path}"),
        Outcome::Unchanged => println!("{title}: already set up ({path})"),
        Outcome::Written { backup: Some(b) } => {
            println!(
                "{title}: wrote {path} (the file as it was: {})",
                b.display()
            )
        }
        Outcome::Written { backup: None } => println!("{title}: wrote {path}"),
        Outcome::Restored => println!("{title}: took keyward's settings out of {path}"),
        Outcome::Removed => println!("{title}: removed {path} (setup had created it)"),
    }
    if !undo {
        for step in client.next_steps(target) {
            println!("  {step}");
        }
    }
}
