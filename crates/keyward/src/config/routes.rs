//! `[[routes]]`: which profiles serve a model name, in which order.

use serde::Deserialize;

use crate::pool::{RouteConfig, Strategy};
use crate::profile::ProfileId;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteFile {
    model: String,
    profiles: Vec<String>,
    strategy: Option<String>,
}

/// `[[routes]]`, each naming known profiles.
pub(super) fn routes(files: &[RouteFile], known: &[ProfileId]) -> Result<Vec<RouteConfig>, String> {
    files
        .iter()
        .map(|route| {
            globset::Glob::new(&route.model).map_err(|e| {
                format!("[[routes]] model = \"{}\" is not a valid pattern: {e}", route.model)
            })?;
            if route.profiles.is_empty() {
                return Err(format!(
                    "[[routes]] model = \"{}\" names no profiles",
                    route.model
                ));
            }
            let profiles = route
                .profiles
                .iter()
                .map(|text| {
                    let id: ProfileId = text.parse().map_err(|e: crate::profile::ProfileIdError| e.to_string())?;
                    if known.contains(&id) {
                        Ok(id)
                    } else {
                        Err(format!(
                            "[[routes]] model = \"{}\" names the profile `{id}`, which is not configured (known: {})",
                            route.model,
                            known.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                        ))
                    }
                })
                .collect::<Result<Vec<_>, String>>()?;
            let strategy = match route.strategy.as_deref() {
                None => Strategy::Failover,
                Some(text) => Strategy::parse(text).ok_or_else(|| {
                    format!("[[routes]] strategy = \"{text}\" is not one of failover, round-robin, headroom")
                })?,
            };
            Ok(RouteConfig {
                model: route.model.clone(),
                profiles,
                strategy,
            })
        })
        .collect()
}
