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
}

impl Alias {
    pub(crate) fn new(pattern: &str, target: &str) -> Result<Self, globset::Error> {
        Ok(Self {
            pattern: pattern.to_string(),
            target: target.to_string(),
            matcher: Glob::new(pattern)?.compile_matcher(),
        })
    }

    /// A pattern without wildcards names one model, which the model list can show.
    pub(crate) fn is_exact(&self) -> bool {
        !self.pattern.contains(['*', '?', '[', '{'])
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
        self.aliases.iter().find(|a| a.matcher.is_match(asked))
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
