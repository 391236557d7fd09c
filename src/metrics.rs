//! Counters the engine keeps for whoever exports metrics (the gateway's `/metrics`).
//!
//! Plain atomics: recording is a relaxed increment, never a lock on the request path. Tokens
//! issued are counted by [`GrantType`]: the five of the RFCs in atomics, extension grants
//! (an open-ended set) in a map that takes a short lock on their issuance only.

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

/// A grant type, as the issuance counters know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// `authorization_code` (RFC 6749 4.1).
    AuthorizationCode,
    /// `client_credentials` (RFC 6749 4.4).
    ClientCredentials,
    /// `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628).
    DeviceCode,
    /// `password` (RFC 6749 4.3).
    Password,
    /// `refresh_token` (RFC 6749 6).
    RefreshToken,
}

impl GrantType {
    /// Every one, in a fixed order.
    pub const ALL: [GrantType; 5] = [
        GrantType::AuthorizationCode,
        GrantType::ClientCredentials,
        GrantType::DeviceCode,
        GrantType::Password,
        GrantType::RefreshToken,
    ];

    /// The `grant_type` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::DeviceCode => crate::grants::DEVICE_CODE,
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    /// The grant type named `value`, if it is one of the RFCs' (not an extension grant).
    pub fn parse(value: &str) -> Option<GrantType> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == value)
    }
}

/// The engine's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    issued: [AtomicU64; GrantType::ALL.len()],
    /// Extension grants, by name.
    issued_extension: Mutex<BTreeMap<String, u64>>,
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
        match GrantType::parse(grant_type) {
            Some(g) => {
                self.issued[g as usize].fetch_add(1, Ordering::Relaxed);
            }
            None => {
                let mut m = self
                    .issued_extension
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                match m.get_mut(grant_type) {
                    Some(n) => *n += 1,
                    None => {
                        m.insert(grant_type.to_string(), 1);
                    }
                }
            }
        }
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

    /// Token responses issued, by grant type name, sorted; grant types not used yet are left
    /// out.
    pub fn tokens_issued(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = GrantType::ALL
            .iter()
            .map(|g| {
                (
                    g.as_str().to_string(),
                    self.issued[*g as usize].load(Ordering::Relaxed),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let m = self
            .issued_extension
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        out.extend(m.iter().map(|(k, v)| (k.clone(), *v)));
        out.sort();
        out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuance_is_counted_by_grant_type_the_rfcs_and_extensions_alike() {
        let m = Metrics::default();
        for g in [
            "refresh_token",
            "temporary_user",
            crate::grants::DEVICE_CODE,
            "refresh_token",
            "anonymous_user",
        ] {
            m.issued(g);
        }
        assert_eq!(
            m.tokens_issued(),
            vec![
                ("anonymous_user".into(), 1),
                ("refresh_token".into(), 2),
                ("temporary_user".into(), 1),
                (crate::grants::DEVICE_CODE.into(), 1),
            ]
        );
        for g in GrantType::ALL {
            assert_eq!(GrantType::parse(g.as_str()), Some(g));
        }
        assert_eq!(GrantType::parse("temporary_user"), None);
    }
}
