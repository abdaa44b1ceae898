//! Names the build in `keyward --version`: the package version, the git commit it was built from
//! and whether the work tree had changes (`0.1.0 (3f9c2e7d4b1a, dirty)`). Without git, or outside a
//! repository (a crates.io tarball), the version stands alone.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let described = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) if !commit.is_empty() => {
            // Tracked files only: build output and other untracked files do not make a build dirty.
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|changes| !changes.is_empty());
            if dirty {
                format!("{version} ({commit}, dirty)")
            } else {
                format!("{version} ({commit})")
            }
        }
        _ => version,
    };
    println!("cargo:rustc-env=KEYWARD_VERSION={described}");

    // Run again when the commit moves or the index changes (git's own files), and when the sources
    // change (which may make the tree dirty). Listing paths replaces cargo's default of rerunning
    // on any change in the package, so the sources are listed too.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    for name in ["HEAD", "index"] {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &reference]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}
