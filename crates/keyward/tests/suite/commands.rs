//! `keyward --version`, `completions` and `man`: generated from the command line's own
//! definition, so every command is in them.

use std::process::Command;

use crate::support::*;

fn keyward(args: &[&str]) -> Result<std::process::Output> {
    Ok(Command::new(keyward_bin())
        .args(args)
        .env_clear()
        .output()?)
}

/// `--version` names the build: the version, and the commit when built from a git tree.
#[test]
fn version_names_the_commit() -> Result<()> {
    let output = keyward(&["--version"])?;
    assert!(output.status.success(), "{}", text_of(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.starts_with(&format!("keyward {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Some(head) = head.ok().filter(|h| h.status.success()) {
        let commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
        assert!(
            text.contains(&format!("({commit}")),
            "{text} names {commit}"
        );
    }
    Ok(())
}

/// Each shell's completion script names every command; bash's is valid bash.
#[test]
fn completions_cover_every_command() -> Result<()> {
    for shell in ["bash", "zsh", "fish"] {
        let output = keyward(&["completions", shell])?;
        assert!(output.status.success(), "{}", text_of(&output));
        let script = String::from_utf8_lossy(&output.stdout);
        for command in ["serve", "doctor", "service", "setup", "completions", "man"] {
            assert!(script.contains(command), "{shell}: {command} missing");
        }
        if shell == "bash" {
            let checked = Command::new("bash").args(["-n", "-c", &script]).output()?;
            assert!(checked.status.success(), "{}", text_of(&checked));
        }
    }
    Ok(())
}

/// `man` prints a roff page with every command.
#[test]
fn man_prints_the_page() -> Result<()> {
    let output = keyward(&["man"])?;
    assert!(output.status.success(), "{}", text_of(&output));
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(page.contains(".TH keyward 1"), "{page}");
    for command in ["doctor", "service", "setup", "status", "token"] {
        assert!(page.contains(command), "{command} missing");
    }
    Ok(())
}
