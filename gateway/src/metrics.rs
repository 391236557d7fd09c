//! The gateway's counters and the Prometheus text it serves at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use oauth_edge::Edge;

/// Upper bounds of the upstream latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// What became of a request, as `oauth_edge_requests_total` labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Admitted and sent upstream.
    Allowed,
    /// Refused by admission (no or a bad token, a missing scope, a quota).
    Denied,
    /// Refused before routing (too large a head, ambiguous framing, a bad path or Host).
    Rejected,
    /// Answered by an OAuth endpoint.
    Endpoint,
    /// Admitted, but the upstream failed.
    UpstreamError,
    /// Failed before any of the above.
    Error,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Allowed,
        Outcome::Denied,
        Outcome::Rejected,
        Outcome::Endpoint,
        Outcome::UpstreamError,
        Outcome::Error,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Rejected => "rejected",
            Outcome::Endpoint => "endpoint",
            Outcome::UpstreamError => "upstream_error",
            Outcome::Error => "error",
        }
    }
}

/// Counts by status for one route and outcome, without a lock: the first few statuses seen
/// each claim a slot; any more (rare: a route sees few statuses) go to a locked map.
#[derive(Default)]
struct ByStatus {
    /// `status + 1` (0: the slot is free) and its count.
    slots: [(AtomicU32, AtomicU64); 8],
    more: Mutex<BTreeMap<u16, u64>>,
}

impl ByStatus {
    fn add(&self, status: u16) {
        let key = u32::from(status) + 1;
        for (k, n) in &self.slots {
            let mut seen = k.load(Ordering::Acquire);
            if seen == 0 {
                seen = match k.compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => key,
                    Err(other) => other,
                };
            }
            if seen == key {
                n.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        *self
            .more
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(status)
            .or_default() += 1;
    }

    fn counts(&self) -> BTreeMap<u16, u64> {
        let mut out = self.more.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (k, n) in &self.slots {
            let key = k.load(Ordering::Acquire);
            if key != 0 {
                *out.entry((key - 1) as u16).or_default() += n.load(Ordering::Relaxed);
            }
        }
        out.retain(|_, n| *n > 0);
        out
    }
}

/// One upstream's latency histogram, in atomics.
#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// Request counters by route, outcome and status, and upstream latency by upstream: a table
/// sized at start-up (the routes and upstreams are known then), updated without a lock.
pub(crate) struct Metrics {
    /// Route labels; the last one is the endpoints'.
    labels: Vec<Arc<str>>,
    /// `labels.len() × Outcome::ALL.len()` counters, route-major.
    requests: Vec<ByStatus>,
    upstreams: Vec<(String, Histogram)>,
    /// Connections refused or timed out upstream.
    pub(crate) upstream_errors: AtomicU64,
}

impl Metrics {
    /// A table for these route labels (by route index, the endpoints' label last) and these
    /// upstreams (by pool index).
    pub(crate) fn new(labels: Vec<Arc<str>>, upstreams: Vec<String>) -> Self {
        Metrics {
            requests: (0..labels.len() * Outcome::ALL.len())
                .map(|_| ByStatus::default())
                .collect(),
            labels,
            upstreams: upstreams
                .into_iter()
                .map(|u| (u, Histogram::default()))
                .collect(),
            upstream_errors: AtomicU64::new(0),
        }
    }

    /// Counts one request of engine route `route` (an index into the labels), or, for `None`
    /// (an endpoint, or a request refused before routing), under the last label. Called once
    /// per request, from `logging`.
    pub(crate) fn request(&self, route: Option<usize>, outcome: Outcome, status: u16) {
        let label = route.unwrap_or(self.labels.len().saturating_sub(1));
        let i = label * Outcome::ALL.len() + outcome as usize;
        if let Some(c) = self.requests.get(i) {
            c.add(status);
        }
    }

    /// Records how long upstream `pool` took to answer.
    pub(crate) fn upstream_latency(&self, pool: usize, elapsed: std::time::Duration) {
        let Some((_, h)) = self.upstreams.get(pool) else {
            return;
        };
        let seconds = elapsed.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        h.counts[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        h.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of the gateway's and the engine's counters.
    pub(crate) fn render(&self, edge: &Edge) -> String {
        let mut out = String::new();
        out.push_str("# HELP oauth_edge_requests_total Requests by route, outcome and status.\n");
        out.push_str("# TYPE oauth_edge_requests_total counter\n");
        for (r, label) in self.labels.iter().enumerate() {
            for outcome in Outcome::ALL {
                let by = &self.requests[r * Outcome::ALL.len() + outcome as usize];
                for (status, n) in by.counts() {
                    let _ = writeln!(
                        out,
                        "oauth_edge_requests_total{{route=\"{}\",outcome=\"{}\",status=\"{status}\"}} {n}",
                        escape(label),
                        outcome.as_str()
                    );
                }
            }
        }
        let em = edge.metrics();
        out.push_str(
            "# HELP oauth_edge_tokens_issued_total Token responses issued, by grant type.\n",
        );
        out.push_str("# TYPE oauth_edge_tokens_issued_total counter\n");
        for (grant, n) in em.tokens_issued() {
            let _ = writeln!(
                out,
                "oauth_edge_tokens_issued_total{{grant_type=\"{}\"}} {n}",
                escape(&grant)
            );
        }
        out.push_str("# HELP oauth_edge_revocations_total Grant families revoked.\n");
        out.push_str("# TYPE oauth_edge_revocations_total counter\n");
        let _ = writeln!(out, "oauth_edge_revocations_total {}", em.revocations());
        out.push_str(
            "# HELP oauth_edge_revocation_propagation_seconds From a revocation's commit (on any instance) to its notice here.\n",
        );
        out.push_str("# TYPE oauth_edge_revocation_propagation_seconds histogram\n");
        let p = em.propagation();
        let mut cumulative = 0;
        for (le, n) in oauth_edge::metrics::PROPAGATION_BUCKETS
            .iter()
            .zip(p.buckets.iter())
        {
            cumulative += n;
            let _ = writeln!(
                out,
                "oauth_edge_revocation_propagation_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "oauth_edge_revocation_propagation_seconds_bucket{{le=\"+Inf\"}} {}",
            p.count
        );
        let _ = writeln!(
            out,
            "oauth_edge_revocation_propagation_seconds_sum {}",
            p.sum
        );
        let _ = writeln!(
            out,
            "oauth_edge_revocation_propagation_seconds_count {}",
            p.count
        );
        out.push_str(
            "# HELP oauth_edge_notification_gaps_total Times the store's revocation channel dropped and came back (the cache was emptied).\n",
        );
        out.push_str("# TYPE oauth_edge_notification_gaps_total counter\n");
        let _ = writeln!(
            out,
            "oauth_edge_notification_gaps_total {}",
            em.notice_gaps()
        );
        out.push_str("# HELP oauth_edge_auth_failures_total Authentication failures, by reason.\n");
        out.push_str("# TYPE oauth_edge_auth_failures_total counter\n");
        for (reason, n) in em.auth_failures() {
            let _ = writeln!(
                out,
                "oauth_edge_auth_failures_total{{reason=\"{}\"}} {n}",
                reason.as_str()
            );
        }
        let stats = &edge.cache().stats;
        let (run, turned_away) = oauth_edge::passwords::checks();
        out.push_str(
            "# HELP oauth_edge_password_checks_total Argon2 verifications of secrets and passwords: run, or turned away with 503 when the queue was full.\n",
        );
        out.push_str("# TYPE oauth_edge_password_checks_total counter\n");
        let _ = writeln!(
            out,
            "oauth_edge_password_checks_total{{outcome=\"run\"}} {run}"
        );
        let _ = writeln!(
            out,
            "oauth_edge_password_checks_total{{outcome=\"turned_away\"}} {turned_away}"
        );
        out.push_str("# HELP oauth_edge_cache_lookups_total Token-status cache lookups.\n");
        out.push_str("# TYPE oauth_edge_cache_lookups_total counter\n");
        let _ = writeln!(
            out,
            "oauth_edge_cache_lookups_total{{result=\"hit\"}} {}",
            stats.hits.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "oauth_edge_cache_lookups_total{{result=\"miss\"}} {}",
            stats.misses.load(Ordering::Relaxed)
        );
        out.push_str("# HELP oauth_edge_cache_entries Token statuses held (approximate).\n");
        out.push_str("# TYPE oauth_edge_cache_entries gauge\n");
        let _ = writeln!(out, "oauth_edge_cache_entries {}", edge.cache().len());
        out.push_str(
            "# HELP oauth_edge_upstream_errors_total Upstream connect failures and timeouts.\n",
        );
        out.push_str("# TYPE oauth_edge_upstream_errors_total counter\n");
        let _ = writeln!(
            out,
            "oauth_edge_upstream_errors_total {}",
            self.upstream_errors.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP oauth_edge_upstream_latency_seconds Time to the upstream's response head.\n",
        );
        out.push_str("# TYPE oauth_edge_upstream_latency_seconds histogram\n");
        for (up, h) in &self.upstreams {
            let total: u64 = h.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
            if total == 0 {
                continue;
            }
            let up = escape(up);
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "oauth_edge_upstream_latency_seconds_bucket{{upstream=\"{up}\",le=\"{b}\"}} {cumulative}"
                );
            }
            cumulative += h.counts[BUCKETS.len()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "oauth_edge_upstream_latency_seconds_bucket{{upstream=\"{up}\",le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(
                out,
                "oauth_edge_upstream_latency_seconds_sum{{upstream=\"{up}\"}} {}",
                h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "oauth_edge_upstream_latency_seconds_count{{upstream=\"{up}\"}} {cumulative}"
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn requests_are_counted_by_route_outcome_and_status_from_many_threads() {
        let m = Arc::new(Metrics::new(
            vec![Arc::from("/api"), Arc::from("(endpoint)")],
            vec!["up".into()],
        ));
        // More statuses than slots, from four threads at once: none lost, none doubled.
        let statuses: Vec<u16> = (200..212).chain([404, 0]).collect();
        std::thread::scope(|s| {
            for _ in 0..4 {
                let (m, statuses) = (m.clone(), statuses.clone());
                s.spawn(move || {
                    for i in 0..1000 {
                        let st = statuses[i % statuses.len()];
                        m.request(Some(0), Outcome::Allowed, st);
                    }
                    m.request(None, Outcome::Endpoint, 200);
                });
            }
        });
        let by = m.requests[Outcome::Allowed as usize].counts();
        assert_eq!(by.values().sum::<u64>(), 4000);
        assert_eq!(by.len(), statuses.len());
        for (i, st) in statuses.iter().enumerate() {
            let expected = (0..1000).filter(|j| j % statuses.len() == i).count() as u64 * 4;
            assert_eq!(by[st], expected, "status {st}");
        }
        // An index past the table is ignored, not a panic.
        m.request(Some(9), Outcome::Denied, 401);
        m.upstream_latency(0, Duration::from_millis(3));
        m.upstream_latency(0, Duration::from_secs(20));
        m.upstream_latency(5, Duration::from_millis(3));

        let edge = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(Edge::new(
                oauth_edge::Config::from_toml("[store]\nkind = \"memory\"\n").unwrap(),
            ))
            .unwrap();
        let text = m.render(&edge);
        assert!(
            text.contains(
                "oauth_edge_requests_total{route=\"/api\",outcome=\"allowed\",status=\"404\"} 284"
            ),
            "{text}"
        );
        assert!(text.contains(
            "oauth_edge_requests_total{route=\"(endpoint)\",outcome=\"endpoint\",status=\"200\"} 4"
        ));
        assert!(!text.contains("outcome=\"denied\""));
        assert!(text.contains(
            "oauth_edge_upstream_latency_seconds_bucket{upstream=\"up\",le=\"0.005\"} 1"
        ));
        assert!(text
            .contains("oauth_edge_upstream_latency_seconds_bucket{upstream=\"up\",le=\"+Inf\"} 2"));
        assert!(text.contains("oauth_edge_upstream_latency_seconds_sum{upstream=\"up\"} 20.003"));
    }
}
