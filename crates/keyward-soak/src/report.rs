//! The final table and the pass line.
//!
//! Pass (exit 0) only if: every failed request is explained by an injected fault; every reuse
//! of a refresh token at the provider, and every revoked family, follows an answer lost after
//! the provider rotated (each named); every other lineage is alive at the end (a lineage an
//! answer loss ended was healed by a fresh login, and keyward served it again without a restart);
//! the system settled; and every keyward process serves every profile and dialect at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::auth::log_prefix;
use crate::fleet::InstanceRecord;
use crate::forensics::{self, Evidence};
use crate::mock::stat;
use crate::soak::{lock, Soak};
use crate::timeline::{explain, now_ms, Failure, Kind};

pub(crate) struct RunInfo {
    pub(crate) seed: u64,
    pub(crate) minutes: f64,
    pub(crate) clients: usize,
    pub(crate) codex_cli: String,
    pub(crate) one_store: bool,
}

struct Table {
    rows: Vec<(String, String)>,
}

impl Table {
    fn row(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.rows.push((name.into(), value.into()));
    }

    fn print(&self) {
        let width = self
            .rows
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        for (name, value) in &self.rows {
            let mut lines = value.lines();
            println!("  {name:<width$}  {}", lines.next().unwrap_or_default());
            for line in lines {
                println!("  {:<width$}  {line}", "");
            }
        }
    }
}

fn count_by<T: Ord>(items: impl Iterator<Item = T>) -> BTreeMap<T, u64> {
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    counts
}

fn list(counts: &BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_failure(soak: &Soak, f: &Failure) -> String {
    format!(
        "{}..{} {} {}: status {:?}, {:?}: {}",
        soak.timeline.clock(f.start_ms),
        soak.timeline.clock(f.end_ms),
        f.instance,
        f.request,
        f.status,
        f.symptom,
        f.detail
    )
}

/// Prints the table; true when the pass line holds.
pub(crate) async fn report(
    soak: &Soak,
    info: &RunInfo,
    settled: &Result<(), String>,
    probes: &[String],
) -> bool {
    let now = now_ms();
    let events = soak.timeline.events();
    let health = lock(&soak.health).clone();
    let failures = soak.clients.failures();
    let mut causes: BTreeMap<String, u64> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for failure in &failures {
        match explain(failure, &events, &health, now) {
            Some(cause) => *causes.entry(cause).or_default() += 1,
            None => unexplained.push(failure),
        }
    }

    let stats = soak.mock.stats().await.unwrap_or_default();
    let calls = soak.mock.token_calls().await.unwrap_or_default();
    let instances = soak.fleet.instances();
    let logs = forensics::read_logs(&instances);
    let cli_runs = lock(&soak.cli_runs).clone();
    let tokens = lock(&soak.tokens).clone();
    let clock = |ms: i64| soak.timeline.clock(ms);
    let evidence = Evidence {
        calls: &calls,
        logs: &logs,
        instances: &instances,
        events: &events,
        cli_runs: &cli_runs,
        clock: &clock,
    };

    let mut broken: Vec<String> = Vec::new();
    if let Err(why) = settled {
        broken.push(format!("the system did not settle: {why}"));
    }

    // Every reuse at the provider, named and judged.
    let mut reuse_text = String::new();
    let reuses: Vec<_> = calls.iter().filter(|c| c.outcome == "reused").collect();
    for call in &reuses {
        let known = tokens.get(&call.token_prefix);
        let token = known.map(|(t, _)| t.as_str());
        let verdict = evidence.attribute(token, &call.token_prefix);
        let whose = known.map(|(_, p)| *p).unwrap_or("a login");
        let _ = writeln!(
            reuse_text,
            "{} {}… of {whose}: {} [{}]",
            clock(call.at_ms),
            call.token_prefix,
            verdict.cause,
            if verdict.allowed {
                "allowed"
            } else {
                "NOT ALLOWED"
            }
        );
        for line in verdict
            .evidence
            .iter()
            .chain(evidence.later_spenders(token, call.at_ms).iter())
        {
            let _ = writeln!(reuse_text, "    {line}");
        }
        if !verdict.allowed {
            broken.push(format!(
                "token reuse at {}: {}",
                clock(call.at_ms),
                verdict.cause
            ));
        }
    }
    let (reuse_events, revoked) = (
        stat(&stats, "reuse_events"),
        stat(&stats, "families_revoked"),
    );
    if revoked != reuses.len() as u64 || reuse_events != reuses.len() as u64 {
        broken.push(format!(
            "the provider counted {reuse_events} reuse events and {revoked} revoked families, the soak found {} reuses",
            reuses.len()
        ));
    }

    // Lineages that ended, and their heals.
    let mut ends_text = String::new();
    let ends = lock(&soak.lineage_ends).clone();
    let running: Vec<&InstanceRecord> = instances.iter().filter(|i| i.ended_ms.is_none()).collect();
    for end in &ends {
        let verdict = if end.revoked {
            end.verdict.clone()
        } else {
            evidence.attribute(Some(&end.token), &log_prefix(&end.token))
        };
        let heal = match end.healed_ms {
            Some(at) => {
                let again: Vec<String> = end
                    .served_again
                    .iter()
                    .map(|(name, ok)| format!("{name}{}", if *ok { "" } else { " (not seen)" }))
                    .collect();
                format!(
                    "healed by a fresh login at {}; served again without a restart: {}",
                    clock(at),
                    again.join(", ")
                )
            }
            None => "not healed".into(),
        };
        let _ = writeln!(
            ends_text,
            "{} {} ({}): {} [{}]; {heal}",
            clock(end.seen_ms),
            end.profile,
            if end.revoked {
                "family revoked"
            } else {
                "current token lost"
            },
            verdict.cause,
            if verdict.allowed {
                "allowed"
            } else {
                "NOT ALLOWED"
            }
        );
        if !end.revoked {
            for line in &verdict.evidence {
                let _ = writeln!(ends_text, "    {line}");
            }
            if !verdict.allowed {
                broken.push(format!(
                    "lineage of {} lost at {}: {}",
                    end.profile,
                    clock(end.seen_ms),
                    verdict.cause
                ));
            }
        }
        for (name, ok) in &end.served_again {
            if !ok && running.iter().any(|i| &i.name == name) {
                broken.push(format!(
                    "{name} never served {} again after the fresh login",
                    end.profile
                ));
            }
        }
    }

    // The lineages at the end.
    let mut final_text = String::new();
    for login in &soak.logins {
        match soak.lineage(login).await {
            Some((_, inspected)) => {
                let alive = inspected["current"] == true && inspected["family_revoked"] == false;
                let _ = writeln!(
                    final_text,
                    "{}: {} (generation {})",
                    login.profile,
                    if alive {
                        "alive: auth.json holds the provider's current token"
                    } else {
                        "LOST"
                    },
                    inspected["generation"]
                );
                if !alive {
                    broken.push(format!(
                        "{}'s lineage is not alive at the end: {inspected}",
                        login.profile
                    ));
                }
            }
            None => broken.push(format!(
                "{}'s auth.json could not be read at the end",
                login.profile
            )),
        }
    }
    broken.extend(probes.iter().map(|p| format!("final probe: {p}")));
    broken.extend(lock(&soak.problems).iter().map(|p| format!("keyward: {p}")));
    if !unexplained.is_empty() {
        broken.push(format!(
            "{} failed requests are not explained by an injected fault",
            unexplained.len()
        ));
    }

    let totals = soak.fleet.counter_totals();
    let total = |name: &str| totals.get(name).copied().unwrap_or(0);
    let starts = instances.len();
    let token_faults = count_by(
        lock(&soak.faults)
            .token_faults
            .iter()
            .map(|(_, text)| text.split(' ').next().unwrap_or_default().to_owned()),
    );
    let crash_points = count_by(
        instances
            .iter()
            .filter_map(|i| i.ended_by.as_deref())
            .filter(|how| how.starts_with("crash at"))
            .map(|how| how.trim_start_matches("crash at ").to_owned()),
    );
    let count = |kind: Kind| soak.timeline.count(kind);
    let cli_results = count_by(cli_runs.iter().map(|r| {
        format!(
            "{} {}",
            r.what,
            r.result.split(' ').next().unwrap_or_default()
        )
    }));
    let served = soak.clients.served_total();

    let mut table = Table { rows: Vec::new() };
    table.row(
        "run",
        format!(
            "seed {}, {} min of chaos, {} clients, {} keyward processes (stores: {}), {} logins",
            info.seed,
            info.minutes,
            info.clients,
            soak.fleet.slots.len(),
            soak.fleet
                .slots
                .iter()
                .map(|s| s.store)
                .collect::<Vec<_>>()
                .join(" "),
            soak.logins.len()
        ),
    );
    table.row(
        "requests served",
        format!(
            "{served} ({}; streamed {}, with a tool {})",
            list(
                &soak
                    .clients
                    .by_dialect()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect()
            ),
            soak.clients.streamed(),
            soak.clients.with_tools()
        ),
    );
    table.row("requests failed", format!("{}", failures.len()));
    for (cause, n) in &causes {
        table.row(format!("  explained: {cause}"), n.to_string());
    }
    table.row("  UNEXPLAINED", unexplained.len().to_string());
    table.row(
        "refreshes (mock refresh_ok)",
        format!(
            "{} of {} token calls (rejected: {})",
            stat(&stats, "refresh_ok"),
            stat(&stats, "token_calls"),
            stats["rejected"]
        ),
    );
    table.row(
        "keyward refreshes / adoptions",
        format!(
            "{} / {} (summed over every process and restart)",
            total("refreshed"),
            total("adopted")
        ),
    );
    table.row(
        "stale spends prevented",
        total("stale_spends_prevented").to_string(),
    );
    table.row("journal recoveries", total("journal_recovered").to_string());
    table.row(
        "refresh outcomes",
        format!(
            "unknown {}, transient failures {}, rejected {}, write-back failures {}",
            total("outcome_unknown"),
            total("transient_failures"),
            total("rejected"),
            total("write_back_failures")
        ),
    );
    table.row(
        "reuse events at the provider",
        if reuse_text.is_empty() {
            "0".to_owned()
        } else {
            format!("{reuse_events}\n{}", reuse_text.trim_end())
        },
    );
    table.row("families revoked", revoked.to_string());
    table.row(
        "lineages ended",
        if ends_text.is_empty() {
            "0".to_owned()
        } else {
            format!("{}\n{}", ends.len(), ends_text.trim_end())
        },
    );
    table.row(
        "remedies (CLI refresh after needs-login)",
        count(Kind::Remedy).to_string(),
    );
    table.row(
        "kills / crash points / restarts / stops",
        format!(
            "{} / {} ({}) / {} / {}",
            count(Kind::Kill),
            crash_points.values().sum::<u64>(),
            list(&crash_points),
            starts.saturating_sub(4),
            count(Kind::Stop)
        ),
    );
    table.row(
        "CLI runs",
        format!("{} ({})", cli_runs.len(), list(&cli_results)),
    );
    table.row("real Codex CLI", info.codex_cli.clone());
    table.row(
        "token endpoint",
        format!(
            "{} faults ({}), {} outages",
            token_faults.values().sum::<u64>(),
            list(&token_faults),
            count(Kind::RelayDown)
        ),
    );
    table.row(
        "upstream bursts / usage limits",
        format!(
            "{} 5xx, {} 429 / {}",
            count(Kind::Upstream5xx),
            count(Kind::Upstream429),
            count(Kind::UsageLimit)
        ),
    );
    table.row("at the end", final_text.trim_end().to_owned());
    table.row(
        "final probes",
        if probes.is_empty() {
            "every keyward process served every profile and dialect".to_owned()
        } else {
            format!("{} failed", probes.len())
        },
    );

    println!();
    println!("keyward soak");
    table.print();
    let notes = lock(&soak.notes).clone();
    if !notes.is_empty() {
        println!("notes:");
        for note in notes {
            println!("  {note}");
        }
    }
    if !unexplained.is_empty() {
        println!("unexplained failures (first 25):");
        for failure in unexplained.iter().take(25) {
            println!("  {}", describe_failure(soak, failure));
        }
    }
    let pass = broken.is_empty();
    if pass {
        println!("PASS");
    } else {
        println!("FAIL:");
        for why in &broken {
            println!("  {why}");
        }
        println!(
            "replay: scripts/soak --minutes {} --seed {}{} (chaos decisions replay; process timings do not)",
            info.minutes,
            info.seed,
            if info.one_store { " --one-store" } else { "" }
        );
    }
    pass
}

/// The fault timeline as text, kept with the logs.
pub(crate) fn timeline_text(soak: &Soak) -> String {
    let mut text = String::new();
    for event in soak.timeline.events() {
        let _ = writeln!(
            text,
            "{} .. {} {:<36} slot {:?} {:<22} {}",
            soak.timeline.clock(event.start_ms),
            event
                .end_ms
                .map(|e| soak.timeline.clock(e))
                .unwrap_or_else(|| "active".into()),
            event.kind.label(),
            event.slot,
            event.profile.as_deref().unwrap_or("-"),
            event.detail
        );
    }
    for failure in soak.clients.failures() {
        let _ = writeln!(text, "FAILED {}", describe_failure(soak, &failure));
    }
    text
}
