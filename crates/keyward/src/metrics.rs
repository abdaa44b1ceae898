//! `GET /metrics` in Prometheus' text format: requests by route, dialect, status and profile;
//! the upstream's time to answer and the time to a stream's first byte, as histograms; and, read
//! at each scrape so they always agree with `status` and `/healthz`, the refresh counters, each
//! profile's health, cooldown and usage windows; and the usage ledger's counts by gateway key name
//! and client ([`UsageCounters`], counted by the ledger's writer, off the request path). Labels
//! carry route names, profile ids, key names and client names (each a bounded set), never a token
//! or a key.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::broker::Broker;
use crate::ledger::Tokens;
use crate::pool::Pool;
use crate::store::UsageRow;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub route: &'static str,
    pub dialect: &'static str,
    pub status: u16,
    pub profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProfileLabels {
    profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyClientLabels {
    key: String,
    client: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    key: String,
    client: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    key: String,
    limit: &'static str,
}

/// The ledger's counts: requests and tokens by gateway key name (`none` without a key) and
/// client, refusals by key and limit, and rows the ledger had to drop.
#[derive(Clone, Debug, Default)]
pub(crate) struct UsageCounters {
    requests: Family<KeyClientLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    refused: Family<RefusedLabels, Counter>,
    pub(crate) dropped: Counter,
}

/// A gateway key's name (`None`: no key) and a client's or a limit's.
type KeyAnd<'a> = (Option<&'a str>, &'static str);

/// The entry of `group` in `sums` (a new one, zero, when it has none); the latest groups are
/// searched first.
fn slot<G: PartialEq, V: Default>(sums: &mut Vec<(G, V)>, group: G) -> &mut (G, V) {
    let at = match sums.iter().rposition(|(known, _)| *known == group) {
        Some(at) => at,
        None => {
            sums.push((group, V::default()));
            sums.len() - 1
        }
    };
    &mut sums[at]
}

impl UsageCounters {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "usage_requests",
            "Model requests recorded in the usage ledger, by gateway key name and client",
            self.requests.clone(),
        );
        registry.register(
            "usage_tokens",
            "Tokens of the recorded requests by gateway key name, client and kind (input includes cached, output includes reasoning)",
            self.tokens.clone(),
        );
        registry.register(
            "usage_refused",
            "Requests a gateway key's limit refused, by key name and limit",
            self.refused.clone(),
        );
        registry.register(
            "usage_dropped",
            "Requests the usage ledger could not record (its writer fell behind, or the store failed)",
            self.dropped.clone(),
        );
    }

    /// A batch of recorded requests, summed by key and client first (a batch holds thousands
    /// of requests of a few keys and clients: a short list searched from its newest group costs
    /// less than hashing every request's names).
    pub(crate) fn count(&self, rows: &[UsageRow<'_>]) {
        // By key and client: how many requests, and their tokens.
        let mut sums: Vec<(KeyAnd<'_>, (u64, Tokens))> = Vec::new();
        // By key and limit: how many requests it refused.
        let mut refused: Vec<(KeyAnd<'_>, u64)> = Vec::new();
        for row in rows {
            let sum = &mut slot(&mut sums, (row.key.as_deref(), row.client)).1;
            sum.0 += 1;
            sum.1.add(&row.tokens);
            if let Some(limit) = row.refused {
                slot(&mut refused, (row.key.as_deref(), limit)).1 += 1;
            }
        }
        let name = |key: Option<&str>| key.unwrap_or("none").to_string();
        for ((key, client), (requests, tokens)) in sums {
            self.requests
                .get_or_create(&KeyClientLabels {
                    key: name(key),
                    client,
                })
                .inc_by(requests);
            for (kind, value) in [
                ("input", tokens.input),
                ("cached", tokens.cached),
                ("output", tokens.output),
                ("reasoning", tokens.reasoning),
            ] {
                if value > 0 {
                    self.tokens
                        .get_or_create(&TokenLabels {
                            key: name(key),
                            client,
                            kind,
                        })
                        .inc_by(value);
                }
            }
        }
        for ((key, limit), count) in refused {
            self.refused
                .get_or_create(&RefusedLabels {
                    key: name(key),
                    limit,
                })
                .inc_by(count);
        }
    }
}

pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    upstream_seconds: Family<ProfileLabels, Histogram>,
    first_byte_seconds: Family<RouteLabels, Histogram>,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Metrics {
    pub(crate) fn new(broker: Arc<Broker>, pool: Arc<Pool>, usage: &UsageCounters) -> Self {
        let mut registry = Registry::with_prefix("keyward");
        usage.register(&mut registry);
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by route, dialect, status and serving profile",
            requests.clone(),
        );
        let upstream_seconds =
            Family::<ProfileLabels, Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "upstream_seconds",
            "Time from sending a request upstream to its answer's headers",
            upstream_seconds.clone(),
        );
        let first_byte_seconds =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "first_byte_seconds",
            "Time from a request's arrival to the first byte of its answer's body",
            first_byte_seconds.clone(),
        );
        registry.register_collector(Box::new(StateCollector { broker, pool }));
        Self {
            registry,
            requests,
            upstream_seconds,
            first_byte_seconds,
        }
    }

    pub(crate) fn request(&self, labels: RequestLabels) {
        self.requests.get_or_create(&labels).inc();
    }

    pub(crate) fn upstream(&self, profile: &str, seconds: f64) {
        self.upstream_seconds
            .get_or_create(&ProfileLabels {
                profile: profile.to_string(),
            })
            .observe(seconds);
    }

    pub(crate) fn first_byte(&self, route: &'static str, seconds: f64) {
        self.first_byte_seconds
            .get_or_create(&RouteLabels { route })
            .observe(seconds);
    }

    /// The text exposition.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "could not encode the metrics");
        }
        out
    }
}

/// What is read from the broker and the pool at each scrape.
struct StateCollector {
    broker: Arc<Broker>,
    pool: Arc<Pool>,
}

impl std::fmt::Debug for StateCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateCollector")
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabels {
    profile: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabels {
    profile: String,
    window: String,
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters = self.broker.counters().snapshot();
        counter(
            &mut encoder,
            "token_requests",
            "Refresh requests sent to a token endpoint",
            counters.token_requests,
        )?;
        {
            let outcomes = [
                ("refreshed", counters.refreshed),
                ("adopted", counters.adopted),
                ("rejected", counters.rejected),
                ("outcome_unknown", counters.outcome_unknown),
                ("transient_failure", counters.transient_failures),
            ];
            let probe = ConstCounter::new(0u64);
            let mut family = encoder.encode_descriptor(
                "refresh_outcomes",
                "Refresh decisions by outcome (adopted: a newer lineage was taken, nothing spent)",
                None,
                probe.metric_type(),
            )?;
            for (outcome, value) in outcomes {
                ConstCounter::new(value)
                    .encode(family.encode_family(&OutcomeLabels { outcome })?)?;
            }
        }
        counter(
            &mut encoder,
            "stale_spends_prevented",
            "Spends of a refresh token the ledger already held, refused",
            counters.stale_spends_prevented,
        )?;
        counter(
            &mut encoder,
            "journal_recovered",
            "Refreshes a crash cut short, finished from the journal",
            counters.journal_recovered,
        )?;
        counter(
            &mut encoder,
            "write_back_failures",
            "Refresh answers that could not be written back to the source at once",
            counters.write_back_failures,
        )?;

        let now = self.broker.clock().now();
        let probe = ConstGauge::new(0.0f64);
        let mut cooldowns = Vec::new();
        let mut usage = Vec::new();
        for member in self.pool.members() {
            let id = member.profile();
            let remaining = self.pool.cooldown(id, now).map_or(0.0, |c| {
                (c.until - now).num_milliseconds().max(0) as f64 / 1000.0
            });
            cooldowns.push((id.to_string(), remaining));
            if let Some(windows) = self.pool.usage(id) {
                for window in windows.windows {
                    usage.push((id.to_string(), window.name, window.used_percent));
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "profile_cooldown_seconds",
                "Seconds until a resting profile serves again (0: not resting)",
                None,
                probe.metric_type(),
            )?;
            for (profile, remaining) in cooldowns {
                ConstGauge::new(remaining)
                    .encode(family.encode_family(&ProfileLabels { profile })?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "profile_usage_percent",
                "Used share of a profile's usage window, as its upstream last reported it",
                None,
                probe.metric_type(),
            )?;
            for (profile, window, percent) in usage {
                ConstGauge::new(percent)
                    .encode(family.encode_family(&WindowLabels { profile, window })?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "profile_health",
                "1 for each Codex login's current health state",
                None,
                probe.metric_type(),
            )?;
            for runtime in self.broker.profiles() {
                let health = self.broker.health(runtime, &runtime.view());
                ConstGauge::new(1.0f64).encode(family.encode_family(&HealthLabels {
                    profile: runtime.id.to_string(),
                    state: health.state.as_str(),
                })?)?;
            }
        }
        Ok(())
    }
}
