//! The real Codex CLI's `config.toml` for a run beside the mock: its model calls go to one
//! provider, its side calls (`chatgpt_base_url`) to the mock, and analytics, update checks and
//! plugin fetches are off (they would try the internet, which test machines do not reach).

/// Where the CLI's model calls go.
pub struct Provider<'a> {
    /// The `[model_providers.NAME]` table and `model_provider`.
    pub name: &'a str,
    /// Its `base_url` (the mock's `…/backend-api/codex`, or keyward's `…/v1`).
    pub base_url: &'a str,
    /// `requires_openai_auth`: the CLI sends its own ChatGPT login (the mock as its backend);
    /// without it the CLI sends none (keyward supplies the login).
    pub with_login: bool,
}

pub fn config_toml(model: &str, mock_url: &str, provider: &Provider<'_>) -> String {
    let Provider {
        name,
        base_url,
        with_login,
    } = provider;
    let auth = if *with_login {
        "requires_openai_auth = true\n"
    } else {
        ""
    };
    format!(
        r#"model = "{model}"
model_provider = "{name}"
chatgpt_base_url = "{mock_url}/backend-api/"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
apps = false
plugins = false
remote_plugin = false
tool_suggest = false

[model_providers.{name}]
name = "{name}"
base_url = "{base_url}"
wire_api = "responses"
{auth}"#
    )
}
