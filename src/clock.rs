//! The engine's clock: what "now" is for token lifetimes, codes, device grants, quotas and
//! the token cache's expiry check. [`SystemClock`] by default;
//! [`EdgeBuilder::clock`](crate::EdgeBuilder::clock) takes another, so that a test can move
//! time instead of sleeping (`ManualClock`, with the `test-util` feature).
//!
//! The cache's own housekeeping (moka's time-to-live) and the store's notice timestamps keep
//! the wall clock: the first only bounds memory and staleness, never an answer, since every
//! hit is checked against the token's expiry by this clock.

use crate::store::UnixTime;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Seconds since the Unix epoch.
    fn now(&self) -> UnixTime {
        self.now_ms().div_euclid(1000)
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::unix_now_ms()
    }
}

/// A clock that moves only when told to: for tests of lifetimes without sleeping.
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

#[cfg(any(test, feature = "test-util"))]
impl ManualClock {
    /// A clock reading the start of the system's current second, standing still from then
    /// on: token times are whole seconds, so lifetimes measured from it are whole too.
    pub fn starting_now() -> Self {
        ManualClock((crate::unix_now_ms() / 1000 * 1000).into())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
