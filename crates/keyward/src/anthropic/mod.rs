//! Anthropic's Messages API with an API key (`[[anthropic.profiles]]`, `ANTHROPIC_API_KEY`).

pub(crate) mod provider;
pub(crate) mod upstream;

pub(crate) use upstream::AnthropicUpstream;

pub(crate) const PROVIDER: &str = "anthropic";
pub(crate) const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// Overrides the API's base URL (a proxy, or a test's mock).
pub(crate) const BASE_URL_ENV: &str = "KEYWARD_ANTHROPIC_BASE_URL";
/// An Anthropic API key in keyward's environment becomes the profile `anthropic:default`.
pub(crate) const API_KEY_ENV: &str = "ANTHROPIC_API_KEY";
