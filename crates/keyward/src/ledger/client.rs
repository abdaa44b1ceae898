//! Which tool sent a request, from its `User-Agent` (and the SDKs' `x-stainless-lang`): a name
//! from a fixed list, so the ledger, the metrics' labels and the dashboard stay bounded whatever
//! clients send. The user agent itself is never recorded (a serving thread remembers only the
//! last one it named, in memory, to name the next request's without reading it again).

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};

/// Every client name there is; `unknown` for anything else.
#[cfg(test)]
const CLIENTS: &[&str] = &[
    "claude-code",
    "codex",
    "openai-python",
    "openai-node",
    "anthropic-python",
    "anthropic-node",
    "gemini-cli",
    "google-genai",
    "opencode",
    "litellm",
    "aider",
    "curl",
    "browser",
    "unknown",
];

/// The client a request came from.
pub(crate) fn client_of(headers: &HeaderMap) -> &'static str {
    // Named once: a name given as text is parsed on every look-up.
    const STAINLESS_LANG: HeaderName = HeaderName::from_static("x-stainless-lang");
    let bytes = |name| {
        headers
            .get(name)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default()
    };
    let text = |value: &[u8]| {
        HeaderValue::from_bytes(value)
            .ok()
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default()
    };
    let agent = bytes(header::USER_AGENT);
    LAST.with_borrow_mut(|last| {
        if last.agent != agent {
            last.by_agent = by_agent(&text(agent));
            last.agent.clear();
            last.agent.extend_from_slice(agent);
        }
        if let Some(client) = last.by_agent {
            // The language header is not looked up: the user agent decides.
            return client;
        }
        let lang = bytes(STAINLESS_LANG);
        if last.lang != lang {
            last.by_lang = by_lang(&text(lang));
            last.lang.clear();
            last.lang.extend_from_slice(lang);
        }
        last.by_lang
    })
}

/// The headers a thread last named a client from, and what each named.
struct Last {
    agent: Vec<u8>,
    by_agent: Option<&'static str>,
    lang: Vec<u8>,
    by_lang: &'static str,
}

thread_local! {
    /// A client sends the same user agent on every request: it is named once per thread, until
    /// another comes.
    static LAST: std::cell::RefCell<Last> = const {
        std::cell::RefCell::new(Last {
            agent: Vec::new(),
            by_agent: None,
            lang: Vec::new(),
            by_lang: "unknown",
        })
    };
}

/// The client of a user agent, and of the SDKs' language header where the agent names none.
#[cfg(test)]
fn classify(agent: &str, stainless_lang: &str) -> &'static str {
    by_agent(agent).unwrap_or_else(|| by_lang(stainless_lang))
}

/// The client a user agent names (lower-cased prefixes and markers, as the tools write them).
fn by_agent(agent: &str) -> Option<&'static str> {
    let agent = agent.to_ascii_lowercase();
    let has = |marker: &str| agent.contains(marker);
    let starts = |prefix: &str| agent.starts_with(prefix);
    // Tools built on an SDK name themselves first: they win over the SDK they use.
    let client = if starts("claude-cli") || has("claude-code") {
        "claude-code"
    } else if starts("codex") || has("codex_cli_rs") || has("codex_exec") {
        "codex"
    } else if starts("geminicli") || has("gemini-cli") {
        "gemini-cli"
    } else if has("opencode") {
        "opencode"
    } else if has("litellm") {
        "litellm"
    } else if has("aider") {
        "aider"
    } else if starts("openai/python") {
        "openai-python"
    } else if starts("openai/js") || starts("openai/node") {
        "openai-node"
    } else if starts("anthropic/python") {
        "anthropic-python"
    } else if starts("anthropic/js") || starts("anthropic/node") {
        "anthropic-node"
    } else if has("google-genai") || has("genai-python") || has("google-genai-sdk") {
        "google-genai"
    } else if starts("curl/") {
        "curl"
    } else if starts("mozilla/") {
        "browser"
    } else {
        return None;
    };
    Some(client)
}

/// The client an SDK's `x-stainless-lang` names: an SDK whose user agent was replaced still says
/// which language it is.
fn by_lang(stainless_lang: &str) -> &'static str {
    match stainless_lang {
        "python" => "openai-python",
        "js" => "openai-node",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The user agents the real clients send are named; anything else is `unknown`.
    #[test]
    fn user_agents_name_their_clients() {
        for (agent, client) in [
            ("claude-cli/2.1.332 (external, cli)", "claude-code"),
            (
                "codex_exec/0.171.0 (Debian 13; x86_64) xterm-256color",
                "codex",
            ),
            ("codex_cli_rs/0.169.0 (Ubuntu 24.4; x86_64)", "codex"),
            ("OpenAI/Python 3.57.0", "openai-python"),
            ("OpenAI/JS 6.1.0", "openai-node"),
            ("Anthropic/Python 2.14.0", "anthropic-python"),
            ("Anthropic/JS 0.70.0", "anthropic-node"),
            ("GeminiCLI/0.9.0 (linux; x64)", "gemini-cli"),
            ("google-genai-sdk/1.40.0 gl-python/3.12.3", "google-genai"),
            ("opencode/0.15.2 ai-sdk/provider-utils/3.0.9", "opencode"),
            ("litellm/1.77.0", "litellm"),
            ("curl/8.14.1", "curl"),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0",
                "browser",
            ),
            ("", "unknown"),
            ("my-own-script/1.0", "unknown"),
        ] {
            assert_eq!(classify(agent, ""), client, "{agent}");
            assert!(CLIENTS.contains(&client));
        }
        assert_eq!(classify("python-httpx/0.28", "python"), "openai-python");
    }

    /// A thread names each request's client from its own headers, whatever it named before.
    #[test]
    fn each_request_is_named_from_its_own_headers() {
        let headers = |agent: &'static str, lang: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::USER_AGENT, HeaderValue::from_static(agent));
            if !lang.is_empty() {
                headers.insert("x-stainless-lang", HeaderValue::from_static(lang));
            }
            headers
        };
        for (agent, lang, client) in [
            ("curl/8.14.1", "", "curl"),
            ("curl/8.14.1", "", "curl"),
            ("python-httpx/0.28", "", "unknown"),
            ("python-httpx/0.28", "python", "openai-python"),
            ("curl/8.14.1", "", "curl"),
            ("", "", "unknown"),
        ] {
            assert_eq!(client_of(&headers(agent, lang)), client, "{agent} {lang}");
        }
        let mut odd = HeaderMap::new();
        odd.insert(
            header::USER_AGENT,
            HeaderValue::from_bytes(b"curl/8 \xff").unwrap_or(HeaderValue::from_static("x")),
        );
        assert_eq!(client_of(&odd), "unknown", "not visible text: not read");
        assert_eq!(client_of(&HeaderMap::new()), "unknown");
    }
}
