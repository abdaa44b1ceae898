//! keyward's integration tests: real processes, real files, real locks, real sockets on loopback,
//! against `keyward-mock` (a token endpoint with rotation and reuse detection, and a streaming
//! Codex backend).

mod suite;
mod support;
