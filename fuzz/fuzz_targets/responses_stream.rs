#![no_main]
//! What this target feeds and checks: `keyward::fuzzing::responses_stream`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward::fuzzing::responses_stream(data));
