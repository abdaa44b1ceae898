//! API keys as the mock may show them: never whole (the journal and stats are
//! served to anyone who asks), only their last four characters.

/// The characters of a key that may be shown.
const SHOWN: usize = 4;
/// A key this short or shorter is shown as stars alone: its last four would be most of it.
const SHORTEST_SHOWN: usize = 8;

/// The last four characters of `key` (all of it, if shorter), for the journal and stats.
pub(crate) fn last4(key: &str) -> String {
    let count = key.chars().count();
    key.chars().skip(count.saturating_sub(SHOWN)).collect()
}

/// `key` as OpenAI quotes a wrong one back: its `sk-` prefix and last four
/// characters, every other character a star.
pub(crate) fn masked(key: &str) -> String {
    let count = key.chars().count();
    if count <= SHORTEST_SHOWN {
        return "*".repeat(count);
    }
    let prefix = if key.starts_with("sk-") { "sk-" } else { "" };
    let hidden = count - prefix.len() - SHOWN;
    format!("{prefix}{}{}", "*".repeat(hidden), last4(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the last four characters survive, whatever the characters are.
    #[test]
    fn last4_keeps_the_tail() {
        assert_eq!(last4("sk-mock-abcd1234"), "1234");
        assert_eq!(last4("sk-ant-mock-é€xyz"), "€xyz");
        assert_eq!(last4("ab"), "ab");
        assert_eq!(last4(""), "");
    }

    /// A masked key shows its `sk-` prefix and last four characters, nothing else.
    #[test]
    fn masking_hides_all_but_the_tail() {
        assert_eq!(masked("sk-live-secret-wxyz"), "sk-************wxyz");
        assert_eq!(masked("not-a-key-1234"), "**********1234");
        assert_eq!(masked("sk-12345"), "********");
        assert_eq!(masked(""), "");
    }
}
