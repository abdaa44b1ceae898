//! Each installed client's settings (the ones `keyward setup` writes): pointed at keyward's
//! address, and carrying a gateway key when keyward has keys.

use super::Check;
use crate::commands::setup::{client_origin, Client, KeySetting, CLIENTS};
use crate::commands::UserDirs;
use crate::config::Config;
use crate::env::Env;

pub(super) fn check(env: &dyn Env, config: &Config, checks: &mut Vec<Check>) {
    let Ok(dirs) = UserDirs::from_env(env) else {
        return;
    };
    for client in CLIENTS {
        if client.installed(&dirs, env) {
            checks.push(one(*client, &dirs, env, config));
            if let Some(conflict) = client.conflict(&dirs, env) {
                checks.push(Check::warn(
                    format!("client {}", client.name()),
                    conflict,
                    "",
                ));
            }
        }
    }
}

fn one(client: &dyn Client, dirs: &UserDirs, env: &dyn Env, config: &Config) -> Check {
    let name = format!("client {}", client.name());
    let path = client.path(dirs, env);
    let setup = format!("`keyward setup {}`", client.name());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Check::info(
                name,
                format!("{} is not pointed at keyward", client.title()),
            )
            .with_remedy(format!("{setup}, if it is to use keyward"));
        }
        Err(e) => return Check::warn(name, format!("cannot read {}: {e}", path.display()), ""),
    };
    let pointing = match client.inspect(&text) {
        Ok(Some(pointing)) => pointing,
        Ok(None) => {
            return Check::info(
                name,
                format!(
                    "{} is not pointed at keyward ({})",
                    client.title(),
                    path.display()
                ),
            )
            .with_remedy(format!("{setup}, if it is to use keyward"))
        }
        Err(e) => return Check::warn(name, format!("cannot read {}: {e}", path.display()), ""),
    };
    let origin = client_origin(config.listen);
    let base = pointing.base_url.trim_end_matches('/');
    if base != origin && base != format!("{origin}/v1") {
        return Check::fail(
            name,
            format!(
                "{} sends its requests to {base}, but keyward listens on {origin} ({})",
                client.title(),
                path.display()
            ),
            setup,
        );
    }
    let keys = &config.gateway.api_keys;
    let is_gateway_key = |value: &str| keys.iter().any(|k| k.expose() == value);
    if keys.is_empty() {
        return Check::ok(name, format!("{} → {base}", client.title()));
    }
    match pointing.key {
        KeySetting::None => Check::fail(
            name,
            format!(
                "{} sends no key, and keyward has gateway keys ({})",
                client.title(),
                path.display()
            ),
            setup,
        ),
        KeySetting::Literal(key) if is_gateway_key(key.expose()) => Check::ok(
            name,
            format!(
                "{} → {base}, with a gateway key in {}",
                client.title(),
                path.display()
            ),
        ),
        KeySetting::Literal(_) => Check::fail(
            name,
            format!(
                "{} sends a key that is not one of keyward's gateway keys ({})",
                client.title(),
                path.display()
            ),
            format!("{setup} --write-key, or {setup} to read the key from the environment"),
        ),
        KeySetting::Env(variable) if variable.is_empty() => Check::ok(
            name,
            format!(
                "{} → {base}, with the key its own helper gives",
                client.title()
            ),
        ),
        KeySetting::Env(variable) => match env.get(&variable) {
            Some(value) if is_gateway_key(&value) => Check::ok(
                name,
                format!(
                    "{} → {base}, with the gateway key in ${variable}",
                    client.title()
                ),
            ),
            Some(_) => Check::fail(
                name,
                format!(
                    "{} sends ${variable}, which here is not one of keyward's gateway keys",
                    client.title()
                ),
                format!("export {variable}=<one of your gateway keys>"),
            ),
            None => Check::warn(
                name,
                format!(
                    "{} → {base}, with the key from ${variable}, which is not set here",
                    client.title()
                ),
                format!("export {variable}=<one of your gateway keys> where you run it"),
            ),
        },
        KeySetting::Stored(secret) => Check::ok(
            name,
            format!("{} → {base}, with its secret {secret}", client.title()),
        ),
    }
}
