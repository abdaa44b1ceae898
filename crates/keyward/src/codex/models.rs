//! The models a ChatGPT login serves through the Codex backend, and which of them stand in for
//! other vendors' model names by default.
//!
//! The list is the Codex CLI 0.169.0's own catalogue (the models it lists for a ChatGPT login,
//! best first); the backend is the judge of what an account may use, and its refusal reaches the
//! caller. Both lists are defaults: `[models]` in the config file replaces them.

/// `(model id, display name)`.
pub(crate) const MODELS: &[(&str, &str)] = &[
    ("gpt-6.1-sol", "GPT-6.1-Sol"),
    ("gpt-6-astra", "GPT-6-Astra"),
    ("gpt-6-sol", "GPT-6-Sol"),
    ("gpt-6-luna", "GPT-6-Luna"),
    ("gpt-6.1-terra", "GPT-6.1 Terra"),
    ("gpt-5.6-sol", "GPT-5.6-Sol"),
    ("gpt-5.6-terra", "GPT-5.6-Terra"),
    ("gpt-5.6-luna", "GPT-5.6-Luna"),
    ("gpt-5.5", "GPT-5.5"),
];

/// `(pattern, model)`: Claude's and Gemini's tiers served by the Codex models of the same standing
/// (frontier, workhorse, fast). Claude Code asks for an opus model by default and a haiku one for
/// small tasks; the Gemini CLI routes between a pro and a flash model, and classifies each prompt
/// with a flash-lite one.
pub(crate) const ALIASES: &[(&str, &str)] = &[
    ("claude-opus-*", "gpt-6-astra"),
    ("claude-sonnet-*", "gpt-6.1-sol"),
    ("claude-haiku-*", "gpt-6-luna"),
    ("claude-*", "gpt-6.1-sol"),
    ("gemini-*-pro*", "gpt-6-astra"),
    ("gemini-*-flash-lite*", "gpt-6-luna"),
    ("gemini-*", "gpt-6.1-sol"),
];
