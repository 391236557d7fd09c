//! The gateway's counters and the Prometheus text it serves at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use oauth_edge::Edge;

/// Upper bounds of the upstream latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

/// Request counts keyed by route label, outcome and status.
type RequestCounts = BTreeMap<(Arc<str>, &'static str, u16), u64>;

/// Request counters by route and outcome, and upstream latency by upstream.
#[derive(Default)]
pub(crate) struct Metrics {
    requests: Mutex<RequestCounts>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Connections refused or timed out upstream.
    pub(crate) upstream_errors: AtomicU64,
}

impl Metrics {
    /// Counts one request. Called once per request, from `logging`.
    pub(crate) fn request(&self, route: &Arc<str>, outcome: &'static str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((route.clone(), outcome, status)).or_default() += 1;
    }

    /// Records how long an upstream took to answer.
    pub(crate) fn upstream_latency(&self, upstream: &str, seconds: f64) {
        let mut m = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = m.entry(upstream.to_string()).or_default();
        let i = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        h.counts[i] += 1;
        h.sum += seconds;
    }

    /// The Prometheus text exposition of the gateway's and the engine's counters.
    pub(crate) fn render(&self, edge: &Edge) -> String {
        let mut out = String::new();
        out.push_str("# HELP oauth_edge_requests_total Requests by route, outcome and status.\n");
        out.push_str("# TYPE oauth_edge_requests_total counter\n");
        for ((route, outcome, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "oauth_edge_requests_total{{route=\"{}\",outcome=\"{outcome}\",status=\"{status}\"}} {n}",
                escape(route)
            );
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
        for (up, h) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let up = escape(up);
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i];
                let _ = writeln!(
                    out,
                    "oauth_edge_upstream_latency_seconds_bucket{{upstream=\"{up}\",le=\"{b}\"}} {cumulative}"
                );
            }
            cumulative += h.counts[BUCKETS.len()];
            let _ = writeln!(
                out,
                "oauth_edge_upstream_latency_seconds_bucket{{upstream=\"{up}\",le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(
                out,
                "oauth_edge_upstream_latency_seconds_sum{{upstream=\"{up}\"}} {}",
                h.sum
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
