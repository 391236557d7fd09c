//! Counters the engine keeps for whoever exports metrics (the gateway's `/metrics`).
//!
//! Plain atomics: recording is a relaxed increment, never a lock on the request path. Tokens
//! issued are counted by grant type, which is open-ended (extension grants), so that one map
//! takes a short lock on issuance only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Why a request failed to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials where some were required.
    Missing,
    /// Unknown client or wrong secret (one reason: the two are not told apart).
    BadClientCredentials,
    /// Too many failures for one client id from one address.
    Throttled,
    /// Ambiguous or malformed credentials.
    Malformed,
    /// A forged, unknown, expired or revoked token.
    InvalidToken,
    /// A valid token without a required scope.
    InsufficientScope,
    /// The store could not be asked.
    StoreUnavailable,
    /// A wrong username or password, on a sign-in page or by the password grant.
    BadUserCredentials,
    /// A request path or host that stays ambiguous in canonical form.
    BadTarget,
}

impl AuthFailure {
    /// Every reason, in a fixed order.
    pub const ALL: [AuthFailure; 9] = [
        AuthFailure::Missing,
        AuthFailure::BadClientCredentials,
        AuthFailure::Throttled,
        AuthFailure::Malformed,
        AuthFailure::InvalidToken,
        AuthFailure::InsufficientScope,
        AuthFailure::StoreUnavailable,
        AuthFailure::BadUserCredentials,
        AuthFailure::BadTarget,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::BadClientCredentials => "bad_client_credentials",
            AuthFailure::Throttled => "throttled",
            AuthFailure::Malformed => "malformed",
            AuthFailure::InvalidToken => "invalid_token",
            AuthFailure::InsufficientScope => "insufficient_scope",
            AuthFailure::StoreUnavailable => "store_unavailable",
            AuthFailure::BadUserCredentials => "bad_user_credentials",
            AuthFailure::BadTarget => "bad_target",
        }
    }
}

/// The engine's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    issued: Mutex<BTreeMap<String, u64>>,
    revocations: AtomicU64,
    auth_failures: [AtomicU64; AuthFailure::ALL.len()],
    notice_gaps: AtomicU64,
    propagation: Mutex<Propagation>,
}

/// Upper bounds, in seconds, of the propagation-delay histogram's buckets.
pub const PROPAGATION_BUCKETS: [f64; 11] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0,
];

/// How long revocations took from their commit to this instance's cache, as a histogram.
#[derive(Debug, Default, Clone)]
pub struct Propagation {
    /// Count per bucket of [`PROPAGATION_BUCKETS`] (not cumulative), then the overflow.
    pub buckets: [u64; PROPAGATION_BUCKETS.len() + 1],
    /// Sum of the delays, in seconds.
    pub sum: f64,
    /// Number of delays observed.
    pub count: u64,
}

impl Metrics {
    pub(crate) fn issued(&self, grant_type: &str) {
        let mut m = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(grant_type.to_string()).or_default() += 1;
    }

    pub(crate) fn revoked(&self, families: u64) {
        self.revocations.fetch_add(families, Ordering::Relaxed);
    }

    pub(crate) fn notice_gap(&self) {
        self.notice_gaps.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn propagated(&self, delay_ms: i64) {
        let secs = delay_ms.max(0) as f64 / 1000.0;
        let i = PROPAGATION_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(PROPAGATION_BUCKETS.len());
        let mut p = self.propagation.lock().unwrap_or_else(|e| e.into_inner());
        p.buckets[i] += 1;
        p.sum += secs;
        p.count += 1;
    }

    /// Times the store's notification channel dropped and came back (the cache was emptied).
    pub fn notice_gaps(&self) -> u64 {
        self.notice_gaps.load(Ordering::Relaxed)
    }

    /// The observed delays from a revocation's commit to its notice here.
    pub fn propagation(&self) -> Propagation {
        self.propagation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn auth_failed(&self, reason: AuthFailure) {
        self.auth_failures[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Token responses issued, by grant type.
    pub fn tokens_issued(&self) -> Vec<(String, u64)> {
        let m = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Grant families revoked.
    pub fn revocations(&self) -> u64 {
        self.revocations.load(Ordering::Relaxed)
    }

    /// Authentication failures, by reason (every reason, zeros included).
    pub fn auth_failures(&self) -> Vec<(AuthFailure, u64)> {
        AuthFailure::ALL
            .iter()
            .map(|r| (*r, self.auth_failures[*r as usize].load(Ordering::Relaxed)))
            .collect()
    }
}

impl AuthFailure {
    /// The reason behind a failed client authentication: the one its error carries, else
    /// the one its code stands for.
    pub(crate) fn of(e: &crate::error::OAuthError) -> AuthFailure {
        use crate::error::ErrorCode;
        e.failure.unwrap_or(match e.code {
            ErrorCode::TemporarilyUnavailable => AuthFailure::StoreUnavailable,
            ErrorCode::InvalidRequest => AuthFailure::Malformed,
            _ => AuthFailure::BadClientCredentials,
        })
    }
}
