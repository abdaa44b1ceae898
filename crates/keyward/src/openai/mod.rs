//! OpenAI's public API with an API key (`[[openai.profiles]]`, `OPENAI_API_KEY`), and OpenAI's
//! model name space, which the Codex backend serves too.

pub(crate) mod models;
pub(crate) mod provider;
pub(crate) mod upstream;

pub(crate) use upstream::OpenAiUpstream;
pub(crate) use upstream::{encode, post, responses_url};

pub(crate) const PROVIDER: &str = "openai";
pub(crate) const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// Overrides the API's base URL (a proxy, or a test's mock).
pub(crate) const BASE_URL_ENV: &str = "KEYWARD_OPENAI_BASE_URL";
/// An OpenAI API key in keyward's environment becomes the profile `openai:default`.
pub(crate) const API_KEY_ENV: &str = "OPENAI_API_KEY";
