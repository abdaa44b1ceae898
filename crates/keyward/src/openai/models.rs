//! OpenAI's model name space: names an OpenAI upstream takes as asked, leaving the refusal of one
//! it does not serve to the upstream.

/// Names in OpenAI's model namespace: `gpt-*`, `chatgpt-*`, `codex-*`, the `o` series
/// (`o3`, `o4-mini`, ...) and fine-tunes (`ft:`).
pub(crate) fn is_openai_name(name: &str) -> bool {
    let o_series = name
        .strip_prefix('o')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    o_series
        || ["gpt-", "chatgpt-", "codex-", "ft:"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
}
