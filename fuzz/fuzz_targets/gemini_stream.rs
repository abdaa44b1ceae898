#![no_main]
//! What this target feeds and checks: `keyward::fuzzing::gemini_stream`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward::fuzzing::gemini_stream(data));
