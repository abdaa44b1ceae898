//! Every provider keyward knows, in the order their profiles are listed and, without a route,
//! tried: Codex logins, then OpenAI keys, then Anthropic keys. The one place that names them all.

use crate::provider::Provider;
use crate::{anthropic, codex, openai};

pub(crate) static ALL: &[&dyn Provider] = &[
    &codex::provider::Codex,
    &openai::provider::OpenAi,
    &anthropic::provider::Anthropic,
];
