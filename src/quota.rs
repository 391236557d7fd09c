//! Per-client quotas on passthrough requests, as NPR One rate-limits its untrusted clients:
//! `requests` per window of `per` (`clients[].rate_limit`), the window starting with the
//! client's first request. Every answer to a limited client carries `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds left in the window); over the
//! quota the answer is 429 with `Retry-After`. Counts are per instance: a fleet of `n`
//! gateways lets a client make up to `n` times its quota.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Response, StatusCode};

use crate::config::RateLimitConfig;

/// Where a client stands in its window, after the request at hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    /// Requests allowed per window.
    pub limit: u64,
    /// Requests left in this window.
    pub remaining: u64,
    /// Seconds until the window ends.
    pub reset: u64,
}

impl RateStatus {
    /// The three `X-RateLimit-*` headers.
    pub fn headers(&self) -> [(HeaderName, HeaderValue); 3] {
        [
            (
                HeaderName::from_static("x-ratelimit-limit"),
                HeaderValue::from(self.limit),
            ),
            (
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderValue::from(self.remaining),
            ),
            (
                HeaderName::from_static("x-ratelimit-reset"),
                HeaderValue::from(self.reset),
            ),
        ]
    }

    /// The 429 answer: the headers, `Retry-After` and a JSON body.
    pub fn too_many(&self) -> Response<Bytes> {
        let mut r = crate::endpoints::json(
            StatusCode::TOO_MANY_REQUESTS,
            Bytes::from_static(
                br#"{"error":"rate_limited","error_description":"the client has used up its quota of requests for this period"}"#,
            ),
        );
        let h = r.headers_mut();
        for (n, v) in self.headers() {
            h.insert(n, v);
        }
        h.insert(header::RETRY_AFTER, HeaderValue::from(self.reset.max(1)));
        r
    }
}

/// The windows of every limited client.
pub(crate) struct Quotas {
    windows: moka::sync::Cache<Arc<str>, Arc<Mutex<Window>>>,
}

#[derive(Clone, Copy)]
struct Window {
    start_ms: i64,
    count: u64,
}

impl Quotas {
    pub(crate) fn new() -> Self {
        Quotas {
            // A window outlives its idle time only if the client comes back: idle entries go
            // after a day (the longest window anyone is likely to set), busy ones stay.
            windows: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(24 * 3600))
                .build(),
        }
    }

    /// Counts one request of `client` at `now_ms`: `Ok` within the quota, `Err` over it (the
    /// request is not counted then).
    pub(crate) fn hit(
        &self,
        client: &Arc<str>,
        quota: &RateLimitConfig,
        now_ms: i64,
    ) -> Result<RateStatus, RateStatus> {
        let per_ms = i64::try_from(quota.per.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let w = self.windows.get_with(client.clone(), || {
            Arc::new(Mutex::new(Window {
                start_ms: now_ms,
                count: 0,
            }))
        });
        let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
        if now_ms >= w.start_ms.saturating_add(per_ms) {
            *w = Window {
                start_ms: now_ms,
                count: 0,
            };
        }
        let left_ms = w.start_ms.saturating_add(per_ms).saturating_sub(now_ms);
        let reset = u64::try_from((left_ms + 999) / 1000).unwrap_or(0);
        if w.count >= quota.requests {
            return Err(RateStatus {
                limit: quota.requests,
                remaining: 0,
                reset,
            });
        }
        w.count += 1;
        Ok(RateStatus {
            limit: quota.requests,
            remaining: quota.requests - w.count,
            reset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_down_then_refuses_then_starts_again() {
        let q = Quotas::new();
        let c: Arc<str> = "c".into();
        let quota = RateLimitConfig {
            requests: 2,
            per: Duration::from_secs(60),
        };
        let t0 = 1_000_000;
        assert_eq!(
            q.hit(&c, &quota, t0),
            Ok(RateStatus {
                limit: 2,
                remaining: 1,
                reset: 60
            })
        );
        assert_eq!(
            q.hit(&c, &quota, t0 + 30_500),
            Ok(RateStatus {
                limit: 2,
                remaining: 0,
                reset: 30
            })
        );
        assert_eq!(
            q.hit(&c, &quota, t0 + 59_000),
            Err(RateStatus {
                limit: 2,
                remaining: 0,
                reset: 1
            })
        );
        // Another client has its own window.
        assert!(q.hit(&"d".into(), &quota, t0 + 59_000).is_ok());
        // A new window.
        assert_eq!(
            q.hit(&c, &quota, t0 + 60_000),
            Ok(RateStatus {
                limit: 2,
                remaining: 1,
                reset: 60
            })
        );
    }
}
