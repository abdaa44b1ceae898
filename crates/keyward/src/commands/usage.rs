//! `keyward usage`: what the usage ledger holds since a moment, grouped by key, client, model,
//! profile, hour or day, and each login's usage windows (as the provider last reported them)
//! with every key's share of them.

use std::io::Write;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::cli::exit;
use crate::config::Config;
use crate::ledger::{window_reports, WindowReport};
use crate::report::{span, window_summary};
use crate::store::{GroupBy, PoolStore, SqliteStore, UsageGroup, UsageTotals};

#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// How far back to look (e.g. 1h, 24h, 7d, 30d).
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = humantime_serde::re::humantime::parse_duration)]
    since: Duration,
    /// What to group the requests by.
    #[arg(long, value_enum, default_value = "key")]
    by: GroupBy,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(config: &Config, args: &UsageArgs) -> u8 {
    let store = match SqliteStore::open(&config.keyward_home) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("keyward: {e}");
            return exit::FAILURE;
        }
    };
    let now = Utc::now();
    let since = now
        - chrono::Duration::from_std(args.since).unwrap_or_else(|_| chrono::Duration::days(3650));
    let read = store
        .usage_groups(since.timestamp_millis(), args.by)
        .and_then(|groups| {
            let usage = store.usage()?;
            Ok((groups, window_reports(&store, &usage, now)?))
        });
    let (groups, windows) = match read {
        Ok(read) => read,
        Err(e) => {
            eprintln!("keyward: {e}");
            return exit::FAILURE;
        }
    };
    let mut totals = UsageTotals::default();
    for group in &groups {
        totals.add(&group.totals);
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let document = json!({
            "since": since,
            "until": now,
            "by": args.by,
            "totals": totals,
            "groups": groups,
            "windows": windows,
            "ledger": config.gateway.usage_ledger,
        });
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&document).unwrap_or_default()
        );
    } else {
        let _ = write!(
            out,
            "{}",
            human(config, args, &since, &totals, &groups, &windows)
        );
    }
    exit::OK
}

fn human(
    config: &Config,
    args: &UsageArgs,
    since: &chrono::DateTime<Utc>,
    totals: &UsageTotals,
    groups: &[UsageGroup],
    windows: &[WindowReport],
) -> String {
    let mut lines = Vec::new();
    let t = &totals.tokens;
    lines.push(format!(
        "last {} (since {}): {} requests, {} failed, {} refused by a key's limit; tokens: {} input ({} cached), {} output ({} reasoning)",
        period(args.since.as_secs()),
        since.format("%Y-%m-%d %H:%M UTC"),
        count(totals.requests),
        count(totals.errors),
        count(totals.refused),
        count(t.input),
        count(t.cached),
        count(t.output),
        count(t.reasoning),
    ));
    if !config.gateway.usage_ledger {
        lines.push(
            "the usage ledger is off ([gateway] usage_ledger = false): nothing new is recorded"
                .into(),
        );
    }
    if !groups.is_empty() {
        lines.push(String::new());
        let by = format!("{:?}", args.by).to_uppercase();
        let header = [
            by.as_str(),
            "REQUESTS",
            "ERRORS",
            "REFUSED",
            "INPUT",
            "CACHED",
            "OUTPUT",
            "REASONING",
        ];
        let mut rows = vec![header.map(str::to_string).to_vec()];
        for group in groups {
            let t = &group.totals.tokens;
            let name = match (&group.group, args.by) {
                (Some(name), GroupBy::Hour) => name.get(..16).unwrap_or(name).replace('T', " "),
                (Some(name), GroupBy::Day) => name.get(..10).unwrap_or(name).to_string(),
                (Some(name), _) => name.clone(),
                (None, GroupBy::Key) => "(no key)".into(),
                (None, _) => "(none)".into(),
            };
            rows.push(vec![
                name,
                count(group.totals.requests),
                count(group.totals.errors),
                count(group.totals.refused),
                count(t.input),
                count(t.cached),
                count(t.output),
                count(t.reasoning),
            ]);
        }
        let widths: Vec<usize> = (0..header.len())
            .map(|column| {
                rows.iter()
                    .map(|row| row[column].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in rows {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(column, cell)| {
                    if column == 0 {
                        format!("{cell:<width$}", width = widths[0])
                    } else {
                        format!("{cell:>width$}", width = widths[column])
                    }
                })
                .collect();
            lines.push(cells.join("  ").trim_end().to_string());
        }
    }
    if !windows.is_empty() {
        lines.push(String::new());
        lines.push("usage windows, as each login's provider last reported them:".into());
        let width = windows.iter().map(|w| w.profile.len()).max().unwrap_or(0);
        for window in windows {
            let mut text =
                window_summary(window.used_percent, window.window_minutes, window.resets_at);
            let shares: Vec<String> = window
                .by_key
                .iter()
                .map(|share| {
                    format!(
                        "{} {:.0}%",
                        share.key.as_deref().unwrap_or("(no key)"),
                        share.share * 100.0
                    )
                })
                .collect();
            if !shares.is_empty() {
                text.push_str(&format!(" (by key: {})", shares.join(", ")));
            }
            lines.push(format!(
                "  {:<width$}  {:<9}  {text}",
                window.profile, window.window
            ));
        }
    }
    lines.push(String::new());
    lines.join("\n")
}

/// How far back: "24h", "7d", "90m" (hours up to two days).
fn period(secs: u64) -> String {
    if (3600..2 * 86_400).contains(&secs) && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else {
        span(secs.max(60))
    }
}

/// A count with thousands separators: `1,234,567`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_as_typed() {
        assert_eq!(period(86_400), "24h");
        assert_eq!(period(7 * 86_400), "7d");
        assert_eq!(period(5400), "90m");
    }

    #[test]
    fn counts_have_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }
}
