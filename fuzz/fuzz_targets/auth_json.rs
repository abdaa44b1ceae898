#![no_main]
//! What this target feeds and checks: `keyward::fuzzing::auth_json`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward::fuzzing::auth_json(data));
