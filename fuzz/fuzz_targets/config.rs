#![no_main]
//! What this target feeds and checks: `keyward::fuzzing::config`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward::fuzzing::config(data));
