#![no_main]
//! What this target feeds and checks: `keyward::fuzzing::jwt_claims`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyward::fuzzing::jwt_claims(data));
