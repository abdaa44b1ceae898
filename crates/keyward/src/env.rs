//! The environment keyward reads its settings from, behind a seam: the process's variables in a
//! build users run, a map in tests (so no test mutates the process).

use std::collections::HashMap;

pub(crate) trait Env {
    /// The variable's value; an empty one counts as unset.
    fn get(&self, key: &str) -> Option<String>;
}

pub(crate) struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}
