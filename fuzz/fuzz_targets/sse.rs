#![no_main]
//! What this target feeds and checks: `keyward::fuzzing::sse`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward::fuzzing::sse(data));
