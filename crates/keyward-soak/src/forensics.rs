//! Who spent a refresh token and what became of the answer: from the mock's token log (when
//! each token was rotated or reused, and the injected fault each call met), keyward's logs
//! (`refreshing spending=fp:…`, its outcome, journal recoveries) and the soak's own records of
//! CLI runs and kills. This decides whether a reused token or an ended lineage follows an answer
//! lost after the provider rotated (allowed), or is something keyward should not have let happen.

use std::path::Path;

use serde_json::{Map, Value};

use crate::auth::fingerprint;
#[cfg(test)]
use crate::auth::log_prefix;
use crate::fleet::InstanceRecord;
use crate::mock::TokenCall;
use crate::timeline::{Event, Kind};

/// One line of a keyward instance's JSON log.
#[derive(Clone, Debug)]
pub(crate) struct LogLine {
    pub(crate) instance: String,
    pub(crate) store: &'static str,
    pub(crate) at_ms: i64,
    pub(crate) message: String,
    pub(crate) fields: Map<String, Value>,
}

impl LogLine {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// A CLI's run against the shared `auth.json`.
#[derive(Clone, Debug)]
pub(crate) struct CliRun {
    /// `cli-refresh`, `codex exec`, `remedy`.
    pub(crate) what: &'static str,
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    /// The refresh token `auth.json` held just before it started.
    pub(crate) token_before: Option<String>,
    pub(crate) result: String,
}

/// Parses the JSON log lines of one instance (other lines, such as a crash point's message, are
/// skipped).
pub(crate) fn parse_log(text: &str, instance: &InstanceRecord) -> Vec<LogLine> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|value| {
            let at_ms = value["timestamp"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp_millis())?;
            let fields = value["fields"].as_object().cloned().unwrap_or_default();
            Some(LogLine {
                instance: instance.name.clone(),
                store: instance.store,
                at_ms,
                message: fields
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                fields,
            })
        })
        .collect()
}

pub(crate) fn read_logs(instances: &[InstanceRecord]) -> Vec<LogLine> {
    let mut lines: Vec<LogLine> = instances
        .iter()
        .flat_map(|instance| {
            let text = std::fs::read_to_string(Path::new(&instance.log)).unwrap_or_default();
            parse_log(&text, instance)
        })
        .collect();
    lines.sort_by_key(|l| l.at_ms);
    lines
}

/// What the soak concluded about one token's end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Allowed by the pass line: the answer was lost after the provider rotated.
    pub(crate) allowed: bool,
    pub(crate) cause: String,
    pub(crate) evidence: Vec<String>,
}

/// Everything the forensics read.
pub(crate) struct Evidence<'a> {
    pub(crate) calls: &'a [TokenCall],
    pub(crate) logs: &'a [LogLine],
    pub(crate) instances: &'a [InstanceRecord],
    pub(crate) events: &'a [Event],
    pub(crate) cli_runs: &'a [CliRun],
    /// Formats a time as the run's clock.
    pub(crate) clock: &'a dyn Fn(i64) -> String,
}

/// Who sent a token, and when.
#[derive(Clone, Debug)]
enum Spender<'a> {
    Keyward(&'a LogLine),
    Cli(&'a CliRun),
}

impl Evidence<'_> {
    fn keyward_spends(&self, fp: &str) -> Vec<&LogLine> {
        self.logs
            .iter()
            .filter(|l| l.message.starts_with("refreshing") && l.field("spending") == fp)
            .collect()
    }

    fn cli_spends(&self, token: &str) -> Vec<&CliRun> {
        self.cli_runs
            .iter()
            .filter(|run| run.token_before.as_deref() == Some(token))
            .filter(|run| !matches!(run.result.as_str(), "adopted" | "fresh" | "skipped"))
            .collect()
    }

    /// The spender whose send came last before the mock's call at `at_ms`.
    fn spender_at(&self, token: &str, at_ms: i64) -> Option<Spender<'_>> {
        self.spender_matching(token, at_ms, |_| true)
    }

    /// The spender whose send rotated the token at `at_ms`: as `spender_at`, except that a
    /// keyward send the provider answered `refresh_token_reused` cannot be it (two sends a few
    /// milliseconds apart: the first rotated, the second met the reuse).
    fn rotator_at(&self, token: &str, at_ms: i64) -> Option<Spender<'_>> {
        let fp = fingerprint(token);
        self.spender_matching(token, at_ms, |line| {
            self.outcome_of(&line.instance, &fp, line.at_ms)
                .is_none_or(|o| !o.message.contains("refresh_token_reused"))
        })
    }

    fn spender_matching(
        &self,
        token: &str,
        at_ms: i64,
        keep: impl Fn(&LogLine) -> bool,
    ) -> Option<Spender<'_>> {
        let fp = fingerprint(token);
        let keyward = self
            .keyward_spends(&fp)
            .into_iter()
            .filter(|l| keep(l))
            // keyward logs `refreshing` just before it sends: the send the provider met at
            // `at_ms` was logged before it (the few milliseconds only absorb clock reads).
            .filter(|l| l.at_ms <= at_ms + 5)
            .max_by_key(|l| l.at_ms)
            .map(|l| (l.at_ms, Spender::Keyward(l)));
        let cli = self
            .cli_spends(token)
            .into_iter()
            .filter(|run| run.start_ms <= at_ms + 100 && run.end_ms + 100 >= at_ms)
            .max_by_key(|run| run.start_ms)
            .map(|run| (run.start_ms, Spender::Cli(run)));
        match (keyward, cli) {
            (Some(k), Some(c)) => Some(if k.0 >= c.0 { k.1 } else { c.1 }),
            (k, c) => k.or(c).map(|(_, s)| s),
        }
    }

    fn describe(&self, spender: &Spender<'_>) -> String {
        match spender {
            Spender::Keyward(line) => format!(
                "{} (store {}) sent it at {} (trigger {})",
                line.instance,
                line.store,
                (self.clock)(line.at_ms),
                line.field("trigger")
            ),
            Spender::Cli(run) => format!(
                "a {} run sent it at {} (result {})",
                run.what,
                (self.clock)(run.start_ms),
                run.result
            ),
        }
    }

    /// The first outcome `instance` logged for its spend of `fp` after `after`.
    fn outcome_of(&self, instance: &str, fp: &str, after: i64) -> Option<&LogLine> {
        self.logs.iter().find(|l| {
            l.instance == instance
                && l.at_ms >= after
                && l.field("spent") == fp
                && (l.message == "refreshed" || l.message.starts_with("refresh failed"))
        })
    }

    /// Journal recoveries of a spend of `fp`: what each said.
    fn recoveries(&self, fp: &str) -> Vec<&LogLine> {
        self.logs
            .iter()
            .filter(|l| l.message.starts_with("journal:") && l.field("spent") == fp)
            .collect()
    }

    fn instance(&self, name: &str) -> Option<&InstanceRecord> {
        self.instances.iter().find(|i| i.name == name)
    }

    fn stopped_during(&self, instance: &InstanceRecord, from: i64, to: i64) -> bool {
        self.events.iter().any(|e| {
            e.kind == Kind::Stop
                && e.slot == Some(instance.slot)
                && e.start_ms <= to
                && e.end_ms.unwrap_or(i64::MAX) >= from
        })
    }

    /// Why `token` (whose family lost track of it: spent twice, or the lineage ended holding it)
    /// is gone, judged from its first rotation at the provider.
    pub(crate) fn attribute(&self, token: Option<&str>, prefix: &str) -> Verdict {
        let clock = self.clock;
        let rotation = self
            .calls
            .iter()
            .find(|c| c.token_prefix == prefix && c.outcome == "rotated");
        let Some(rotation) = rotation else {
            return Verdict {
                allowed: false,
                cause: "the provider never rotated this token, yet the lineage lost it".into(),
                evidence: vec![format!(
                    "token {prefix}…: no `rotated` call in the mock's log"
                )],
            };
        };
        let mut evidence = vec![format!(
            "the provider rotated {prefix}… at {}{}",
            clock(rotation.at_ms),
            rotation
                .fault
                .as_deref()
                .map(|f| format!(" (injected fault: {f})"))
                .unwrap_or_default()
        )];
        if rotation.fault.as_deref() == Some("drop_after_issue") {
            if let Some(spender) = token.and_then(|t| self.rotator_at(t, rotation.at_ms)) {
                evidence.push(format!(
                    "{}: {}",
                    fingerprint(token.unwrap_or_default()),
                    self.describe(&spender)
                ));
            }
            return Verdict {
                allowed: true,
                cause: format!(
                    "injected drop_after_issue at {}: the provider rotated, the answer was lost",
                    clock(rotation.at_ms)
                ),
                evidence,
            };
        }
        let Some(token) = token else {
            evidence.push("the soak never saw this token in auth.json, so keyward's logs cannot be searched for it".into());
            return Verdict {
                allowed: false,
                cause: "unexplained: the token's first rotation met no injected fault".into(),
                evidence,
            };
        };
        let fp = fingerprint(token);
        let Some(spender) = self.rotator_at(token, rotation.at_ms) else {
            evidence.push(format!(
                "no keyward log or CLI run shows a send of {fp} before its rotation"
            ));
            return Verdict {
                allowed: false,
                cause: "unexplained: nobody the soak knows of sent the token that was rotated"
                    .into(),
                evidence,
            };
        };
        evidence.push(format!("{fp}: {}", self.describe(&spender)));
        match spender {
            Spender::Cli(run) => Verdict {
                allowed: false,
                cause: format!(
                    "a {} run rotated the token (result {}); it was then lost or sent again",
                    run.what, run.result
                ),
                evidence,
            },
            Spender::Keyward(line) => self.attribute_keyward_spend(line, &fp, evidence),
        }
    }

    fn attribute_keyward_spend(
        &self,
        line: &LogLine,
        fp: &str,
        mut evidence: Vec<String>,
    ) -> Verdict {
        let clock = self.clock;
        let outcome = self.outcome_of(&line.instance, fp, line.at_ms);
        let record = self.instance(&line.instance);
        if let Some(outcome) = outcome {
            evidence.push(format!(
                "{} logged at {}: {} {}",
                outcome.instance,
                clock(outcome.at_ms),
                outcome.message,
                Value::Object(outcome.fields.clone())
            ));
            let stopped = record.is_some_and(|r| self.stopped_during(r, line.at_ms, outcome.at_ms));
            let cause = if outcome.message == "refreshed" {
                format!(
                    "{} received the answer for this token, yet the lineage lost it",
                    line.instance
                )
            } else if stopped {
                format!(
                    "{} was stopped (SIGSTOP) while its refresh was in flight; on waking it gave the answer up ({}), though the provider had rotated",
                    line.instance, outcome.message
                )
            } else {
                format!(
                    "{} never got the answer ({})",
                    line.instance, outcome.message
                )
            };
            return Verdict {
                allowed: false,
                cause,
                evidence,
            };
        }
        let recoveries = self.recoveries(fp);
        for recovery in &recoveries {
            evidence.push(format!(
                "{} at {}: {}",
                recovery.instance,
                clock(recovery.at_ms),
                recovery.message
            ));
        }
        let kept = recoveries.iter().any(|r| {
            r.message.contains("wrote a kept token answer back") || r.message.contains("superseded")
        });
        let Some(record) = record else {
            return Verdict {
                allowed: false,
                cause: format!("{} logged no outcome for its refresh", line.instance),
                evidence,
            };
        };
        let ended_by = record.ended_by.clone().unwrap_or_default();
        let died_after = record.ended_ms.is_some_and(|end| end >= line.at_ms);
        evidence.push(format!(
            "{} ended {} by {}",
            record.name,
            record.ended_ms.map(clock).unwrap_or_else(|| "never".into()),
            if ended_by.is_empty() {
                "nothing"
            } else {
                &ended_by
            }
        ));
        let crashed_at_answer =
            ended_by.contains("after-answer") || ended_by.contains("after-write-back");
        // A crash point aborts the whole process: another profile's refresh may have reached it
        // while this one was still out. A recovery that found this refresh cut off before its
        // answer, with no failure to journal an answer logged by the process, says so: this
        // answer died with the process, as under kill -9.
        let cut_off = recoveries
            .iter()
            .any(|r| r.message.contains("cut off before its answer arrived"));
        let failed_to_journal = self.logs.iter().any(|l| {
            l.instance == record.name && l.message.contains("could not journal the token answer")
        });
        let crashed_on_another = crashed_at_answer && cut_off && !failed_to_journal;
        let journaled = kept || (crashed_at_answer && !crashed_on_another);
        match (died_after, journaled) {
            (true, false) if crashed_on_another => Verdict {
                allowed: true,
                cause: format!(
                    "{} crashed ({ended_by}) on another profile's refresh while this one was in flight: the provider rotated and the answer died with the process (an answer lost after issue)",
                    record.name
                ),
                evidence,
            },
            (true, false) if ended_by == "kill -9" || ended_by.starts_with("exited") => Verdict {
                allowed: ended_by == "kill -9",
                cause: format!(
                    "{} died ({ended_by}) while its refresh was in flight: the provider rotated and the answer died with the process (an answer lost after issue)",
                    record.name
                ),
                evidence,
            },
            (true, true) => {
                // Separate stores cannot finish each other's journals (README, "Run every keyward
                // process of one user with the same KEYWARD_HOME"): a process of another store
                // that spends the token before the crashed one is back is that documented
                // limitation, not a broken promise. The same store spending it again would be.
                let other_store = self
                    .keyward_spends(fp)
                    .into_iter()
                    .find(|l| l.at_ms > line.at_ms && l.store != record.store);
                match other_store {
                    Some(again) => {
                        evidence.push(format!("sent again: {}", self.describe(&Spender::Keyward(again))));
                        Verdict {
                            allowed: true,
                            cause: format!(
                                "known limitation of separate stores: {} ({ended_by}) had kept the answer in store {}'s journal; {} of store {} cannot see that journal and spent the token again",
                                record.name, record.store, again.instance, again.store
                            ),
                            evidence,
                        }
                    }
                    None => Verdict {
                        allowed: false,
                        cause: format!(
                            "{} ({ended_by}) had kept the answer in store {}'s journal, but the old token was used again before that journal was finished",
                            record.name, record.store
                        ),
                        evidence,
                    },
                }
            }
            _ => Verdict {
                allowed: false,
                cause: format!("{} logged no outcome for its refresh ({ended_by})", record.name),
                evidence,
            },
        }
    }

    /// The sends of a token that was reused, second and later (for the report).
    pub(crate) fn later_spenders(&self, token: Option<&str>, reuse_at: i64) -> Vec<String> {
        let Some(token) = token else {
            return Vec::new();
        };
        self.spender_at(token, reuse_at)
            .map(|s| vec![format!("sent again: {}", self.describe(&s))])
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(
        name: &str,
        slot: usize,
        ended_by: Option<&str>,
        ended_ms: Option<i64>,
    ) -> InstanceRecord {
        InstanceRecord {
            name: name.into(),
            slot,
            store: "A",
            log: "/nonexistent".into(),
            ended_ms,
            ended_by: ended_by.map(str::to_owned),
        }
    }

    fn line(instance: &str, at_ms: i64, message: &str, fields: Value) -> LogLine {
        LogLine {
            instance: instance.into(),
            store: "A",
            at_ms,
            message: message.into(),
            fields: fields.as_object().cloned().unwrap_or_default(),
        }
    }

    fn call(at_ms: i64, prefix: &str, outcome: &str, fault: Option<&str>) -> TokenCall {
        TokenCall {
            at_ms,
            token_prefix: prefix.into(),
            outcome: outcome.into(),
            fault: fault.map(str::to_owned),
        }
    }

    const TOKEN: &str = "rt_abcdefghijklmnop";

    fn verdict(calls: &[TokenCall], logs: &[LogLine], instances: &[InstanceRecord]) -> Verdict {
        let clock = |ms: i64| format!("{ms}");
        Evidence {
            calls,
            logs,
            instances,
            events: &[],
            cli_runs: &[],
            clock: &clock,
        }
        .attribute(Some(TOKEN), &log_prefix(TOKEN))
    }

    /// A rotation that met the injected drop_after_issue is allowed whoever sent it.
    #[test]
    fn injected_answer_loss_is_allowed() {
        let calls = [call(
            100,
            &log_prefix(TOKEN),
            "rotated",
            Some("drop_after_issue"),
        )];
        let v = verdict(&calls, &[], &[]);
        assert!(v.allowed, "{v:?}");
    }

    /// keyward killed -9 while its send was out, with nothing kept in a journal: allowed.
    #[test]
    fn a_kill_during_the_send_loses_the_answer() {
        let fp = fingerprint(TOKEN);
        let calls = [call(100, &log_prefix(TOKEN), "rotated", None)];
        let logs = [line(
            "P1#1",
            95,
            "refreshing",
            serde_json::json!({"spending": fp, "trigger": "ahead"}),
        )];
        let instances = [instance("P1#1", 1, Some("kill -9"), Some(120))];
        let v = verdict(&calls, &logs, &instances);
        assert!(v.allowed, "{v:?}");
    }

    /// An answer kept in a journal, or received, is never an allowed loss.
    #[test]
    fn kept_or_received_answers_are_not_allowed_losses() {
        let fp = fingerprint(TOKEN);
        let calls = [call(100, &log_prefix(TOKEN), "rotated", None)];
        let spend = line(
            "P1#1",
            95,
            "refreshing",
            serde_json::json!({"spending": fp}),
        );
        let crashed = [instance(
            "P1#1",
            1,
            Some("crash at after-answer"),
            Some(120),
        )];
        assert!(!verdict(&calls, std::slice::from_ref(&spend), &crashed).allowed);

        // The same token spent again by a process of another store: the documented limitation.
        let mut again = line(
            "P4#1",
            130,
            "refreshing",
            serde_json::json!({"spending": fp}),
        );
        again.store = "B";
        let v = verdict(&calls, &[spend.clone(), again], &crashed);
        assert!(v.allowed, "{v:?}");
        assert!(v.cause.contains("known limitation"), "{v:?}");

        let refreshed = line("P1#1", 101, "refreshed", serde_json::json!({"spent": fp}));
        let alive = [instance("P1#1", 1, None, None)];
        let v = verdict(&calls, &[spend, refreshed], &alive);
        assert!(!v.allowed);
        assert!(v.cause.contains("received the answer"), "{v:?}");
    }

    /// A process that crashed at a crash point of another profile's refresh, while this one was
    /// out: a recovery found this refresh cut off before its answer, so the answer died with the
    /// process (allowed, as under kill -9); had the process failed to journal an answer, not.
    #[test]
    fn a_crash_on_another_refresh_loses_this_answer() {
        let fp = fingerprint(TOKEN);
        let calls = [call(100, &log_prefix(TOKEN), "rotated", None)];
        let spend = line(
            "P1#2",
            95,
            "refreshing",
            serde_json::json!({"spending": fp}),
        );
        let cut_off = line(
            "P4#1",
            110,
            "journal: a refresh was cut off before its answer arrived; its token may be spent and will not be sent again",
            serde_json::json!({"spent": fp}),
        );
        let crashed = [instance(
            "P1#2",
            1,
            Some("crash at after-answer"),
            Some(101),
        )];
        let v = verdict(&calls, &[spend.clone(), cut_off.clone()], &crashed);
        assert!(v.allowed, "{v:?}");
        assert!(v.cause.contains("another profile's refresh"), "{v:?}");

        let unjournaled = line(
            "P1#2",
            100,
            "could not journal the token answer; writing it to the source directly",
            serde_json::json!({}),
        );
        let v = verdict(&calls, &[spend, unjournaled, cut_off], &crashed);
        assert!(!v.allowed, "{v:?}");
    }

    /// Two sends 3 ms apart, the first by a process that then crashed with the answer in its
    /// store's journal, the second by a process of another store that met the reuse: the first
    /// rotated (the documented limitation of separate stores), not the second.
    #[test]
    fn a_send_that_met_the_reuse_did_not_rotate() {
        let fp = fingerprint(TOKEN);
        let calls = [call(100, &log_prefix(TOKEN), "rotated", None)];
        let first = line(
            "P3#1",
            97,
            "refreshing",
            serde_json::json!({"spending": fp}),
        );
        let mut second = line(
            "P4#1",
            100,
            "refreshing",
            serde_json::json!({"spending": fp}),
        );
        second.store = "B";
        let mut reused = line(
            "P4#1",
            102,
            "refresh failed: the token endpoint rejected the refresh token (401 refresh_token_reused)",
            serde_json::json!({"spent": fp}),
        );
        reused.store = "B";
        let instances = [
            instance("P3#1", 3, Some("crash at after-answer"), Some(101)),
            instance("P4#1", 4, None, None),
        ];
        let v = verdict(&calls, &[first, second, reused], &instances);
        assert!(v.allowed, "{v:?}");
        assert!(v.cause.contains("known limitation"), "{v:?}");
    }

    /// A token the provider never rotated, or one nobody is known to have sent, is unexplained.
    #[test]
    fn unknown_spenders_are_unexplained() {
        assert!(!verdict(&[], &[], &[]).allowed);
        let calls = [call(100, &log_prefix(TOKEN), "rotated", None)];
        assert!(!verdict(&calls, &[], &[]).allowed);
    }
}
