//! Which model names keyward serves, and by which upstream model.
//!
//! Names in a provider's own name space (OpenAI's `gpt-*`, ...) go upstream as asked: the upstream
//! decides, and its refusal reaches the caller. Other vendors' names (Claude Code asks for
//! `claude-opus-*`) are served through an alias table of glob patterns, the config file's first,
//! then the providers' defaults. A name that is neither is refused before anything is sent.

use globset::{Glob, GlobMatcher};

/// One alias: model names matching `pattern` are served by `target`.
#[derive(Debug, Clone)]
pub(crate) struct Alias {
    pub pattern: String,
    pub target: String,
    matcher: GlobMatcher,
    /// The pattern's text before its first character a glob reads specially: a name it matches
    /// starts with it. Every request's model is tried against every alias (seven by default), and
    /// the glob's automaton cost a few hundred instructions a try; this rules most out first.
    literal_prefix: String,
}

/// What a glob reads as other than itself (escapes and classes included).
const GLOB_SPECIAL: [char; 7] = ['*', '?', '[', ']', '{', '}', '\\'];

impl Alias {
    pub(crate) fn new(pattern: &str, target: &str) -> Result<Self, globset::Error> {
        let literal_end = pattern.find(GLOB_SPECIAL).unwrap_or(pattern.len());
        Ok(Self {
            pattern: pattern.to_string(),
            target: target.to_string(),
            matcher: Glob::new(pattern)?.compile_matcher(),
            literal_prefix: pattern[..literal_end].to_string(),
        })
    }

    /// A pattern without wildcards names one model, which the model list can show.
    pub(crate) fn is_exact(&self) -> bool {
        !self.pattern.contains(['*', '?', '[', '{'])
    }

    /// Whether `asked` is a name the pattern matches.
    pub(crate) fn matches(&self, asked: &str) -> bool {
        if self.literal_prefix.len() == self.pattern.len() {
            // Nothing special in it: the pattern is the one name it matches.
            return asked == self.pattern;
        }
        asked.starts_with(&self.literal_prefix) && self.matcher.is_match(asked)
    }
}

/// A model keyward lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServedModel {
    pub id: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Models {
    pub served: Vec<ServedModel>,
    pub aliases: Vec<Alias>,
    /// The providers' name spaces: a name in one goes upstream as asked.
    pub namespaces: Vec<fn(&str) -> bool>,
}

impl Models {
    /// The upstream model for a requested name, or `None` when keyward does not serve it.
    pub(crate) fn resolve(&self, asked: &str) -> Option<String> {
        if let Some(alias) = self.alias_for(asked) {
            return Some(alias.target.clone());
        }
        let served = self.served.iter().any(|m| m.id == asked);
        let in_namespace = self.namespaces.iter().any(|namespace| namespace(asked));
        (served || in_namespace).then(|| asked.to_string())
    }

    pub(crate) fn alias_for(&self, asked: &str) -> Option<&Alias> {
        self.aliases.iter().find(|a| a.matches(asked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models() -> Models {
        let alias = |p: &str, t: &str| Alias::new(p, t).unwrap_or_else(|e| panic!("{e}"));
        Models {
            served: vec![ServedModel {
                id: "house-model".into(),
                display_name: "House".into(),
            }],
            aliases: vec![
                alias("claude-opus-*", "gpt-6-astra"),
                alias("claude-*", "gpt-6.1-sol"),
                alias("gpt-4o", "gpt-6-luna"),
            ],
            namespaces: vec![crate::openai::models::is_openai_name],
        }
    }

    /// An alias matches what its glob matches, whether its pattern is plain text, starts with
    /// text, or starts with something a glob reads specially.
    #[test]
    fn aliases_match_what_their_globs_match() {
        let patterns = [
            "gpt-4o",
            "claude-*",
            "claude-opus-*",
            "*-mini",
            "o?-mini",
            "[gc]pt-5",
            "{a,b}-x",
            "a\\*b",
            "x]y",
            "claude-[0-9]*",
            "gpt-5.1",
            "",
            "*",
        ];
        let names = [
            "gpt-4o",
            "gpt-4o-mini",
            "claude-3",
            "claude-opus-4",
            "o4-mini",
            "gpt-5",
            "cpt-5",
            "a-x",
            "b-x",
            "a*b",
            "axb",
            "x]y",
            "claude-7x",
            "gpt-5x1",
            "gpt-5.1",
            "",
            "GPT-4O",
        ];
        for pattern in patterns {
            let Ok(alias) = Alias::new(pattern, "t") else {
                continue;
            };
            for name in names {
                assert_eq!(
                    alias.matches(name),
                    alias.matcher.is_match(name),
                    "{pattern:?} against {name:?}"
                );
            }
        }
    }

    /// OpenAI names pass as asked, aliases win over them and are taken in order, and other
    /// vendors' names without an alias are not served.
    #[test]
    fn resolves_names_aliases_and_refusals() {
        let models = models();
        assert_eq!(
            models.resolve("gpt-6.1-sol").as_deref(),
            Some("gpt-6.1-sol")
        );
        assert_eq!(models.resolve("o4-mini").as_deref(), Some("o4-mini"));
        assert_eq!(
            models.resolve("house-model").as_deref(),
            Some("house-model")
        );
        assert_eq!(models.resolve("gpt-4o").as_deref(), Some("gpt-6-luna"));
        assert_eq!(
            models.resolve("claude-opus-5-5").as_deref(),
            Some("gpt-6-astra")
        );
        assert_eq!(
            models.resolve("claude-haiku-4").as_deref(),
            Some("gpt-6.1-sol")
        );
        assert_eq!(models.resolve("gemini-3-pro"), None);
        assert_eq!(models.resolve("omni"), None);
        assert!(models.aliases[2].is_exact() && !models.aliases[0].is_exact());
    }
}
