//! Fault descriptions accepted by the admin API and queued FIFO per endpoint.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum TokenFault {
    Delay {
        ms: u64,
    },
    Status {
        code: u16,
        #[serde(default)]
        consume: bool,
    },
    DropBefore,
    DropAfterIssue,
    DelayAfterIssue {
        ms: u64,
    },
}

impl TokenFault {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Delay { .. } => "delay",
            Self::Status { .. } => "status",
            Self::DropBefore => "drop_before",
            Self::DropAfterIssue => "drop_after_issue",
            Self::DelayAfterIssue { .. } => "delay_after_issue",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ResponseFault {
    Delay { ms: u64 },
    Status { code: u16 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_admin_shapes() -> anyhow::Result<()> {
        let faults: Vec<TokenFault> = serde_json::from_str(
            r#"[{"kind":"delay","ms":5},{"kind":"status","code":500},
                {"kind":"status","code":429,"consume":true},{"kind":"drop_before"},
                {"kind":"drop_after_issue"},{"kind":"delay_after_issue","ms":9}]"#,
        )?;
        assert_eq!(
            faults[1],
            TokenFault::Status {
                code: 500,
                consume: false
            }
        );
        assert_eq!(faults[5].kind(), "delay_after_issue");
        Ok(())
    }
}
