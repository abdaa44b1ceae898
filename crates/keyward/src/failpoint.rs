//! Crash points for the kill -9 tests: `KEYWARD_CRASH_AT=<name>` aborts the process at that point
//! of the refresh protocol, as a SIGKILL would, with no destructor or flush run.
//!
//! They exist only in builds with the `failpoints` feature, which the test suite turns on (the
//! crate's own dev-dependency on itself); a build users run has no way to abort mid-refresh.

#[cfg(feature = "failpoints")]
pub(crate) const ENV: &str = "KEYWARD_CRASH_AT";

#[cfg(feature = "failpoints")]
pub(crate) fn crash_point(name: &str) {
    use std::sync::OnceLock;
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    let target = TARGET.get_or_init(|| std::env::var(ENV).ok());
    if target.as_deref() == Some(name) {
        eprintln!("keyward: {ENV}={name}: aborting here to simulate a crash");
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn crash_point(_name: &str) {}
