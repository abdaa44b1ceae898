//! Crash points for the kill -9 tests: `KEYWARD_CRASH_AT=<name>` aborts the process at that point
//! of the refresh protocol, as a SIGKILL would, with no destructor or flush run. Unset, each point
//! costs one load of a cached `Option`.

use std::sync::OnceLock;

pub const ENV: &str = "KEYWARD_CRASH_AT";

pub fn crash_point(name: &str) {
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    let target = TARGET.get_or_init(|| std::env::var(ENV).ok());
    if target.as_deref() == Some(name) {
        eprintln!("keyward: {ENV}={name}: aborting here to simulate a crash");
        std::process::abort();
    }
}
