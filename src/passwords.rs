//! What keeps password checks from being a way in or a way down (RFC 6819 4.3.5, 5.1.4.2.3).
//!
//! - **The argon2 gate.** Every argon2 verification, of a client secret or a user's password,
//!   runs on its own threads behind one process-wide gate: at most [`running`] at once
//!   (half the cores, at least one, so passthrough traffic keeps the other half), and at
//!   most [`WAITING_PER_RUNNING`] times as many waiting. A check that finds the queue full
//!   is not run: the caller answers 503 `temporarily_unavailable` with `Retry-After`. So a
//!   flood of guesses costs bounded CPU and memory (argon2id takes 19 MiB per check).
//! - **The sign-in throttle.** Failed sign-ins, on the sign-in page and by the password
//!   grant alike, are counted per source address and per username over a minute; at
//!   `authorization.max_failed_sign_ins_per_minute` of either, further tries are refused
//!   unchecked until the minute is out.
//! - **Equal cost.** An unknown username and a plain-text user from the config cost one
//!   argon2 verification, as an argon2 user does, so timing does not tell who exists.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use tokio::sync::Semaphore;

use crate::metrics::{AuthFailure, Metrics};
use crate::secret::Secret;
use crate::store::StoreError;
use crate::users::{User, UserDirectory};

/// Checks waiting per check running, before the gate turns checks away.
pub const WAITING_PER_RUNNING: usize = 8;

/// How many argon2 checks run at once: half the cores, at least one.
pub fn running() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() / 2)
        .unwrap_or(1)
        .max(1)
}

/// The gate was full: the check was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks in progress")]
pub struct Busy;

impl From<Busy> for StoreError {
    fn from(_: Busy) -> Self {
        StoreError::Busy
    }
}

static RUN: AtomicU64 = AtomicU64::new(0);
static TURNED_AWAY: AtomicU64 = AtomicU64::new(0);

/// Argon2 checks since start-up: `(run, turned away)`.
pub fn checks() -> (u64, u64) {
    (
        RUN.load(Ordering::Relaxed),
        TURNED_AWAY.load(Ordering::Relaxed),
    )
}

struct Gate {
    /// Checks admitted: running or waiting. A permit travels with its check to the end, so
    /// a caller that goes away does not free a place while its check still waits.
    admitted: Arc<Semaphore>,
    /// The checks' own threads, [`running`] of them: argon2's 19 MiB block is then kept by
    /// that many allocator arenas at most, where the blocking pool's many threads would each
    /// keep one. `None` if no thread could be started (the blocking pool is used instead).
    jobs: Option<std::sync::mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

fn gate() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| {
        let n = running();
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let started = (0..n)
            .filter(|_| {
                let rx = Arc::clone(&rx);
                std::thread::Builder::new()
                    .name("oauth-edge-argon2".into())
                    .spawn(move || loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    })
                    .is_ok()
            })
            .count();
        Gate {
            admitted: Arc::new(Semaphore::new(n * (1 + WAITING_PER_RUNNING))),
            jobs: (started > 0).then_some(tx),
        }
    })
}

fn check(phc: &str, secret: &Secret) -> bool {
    RUN.fetch_add(1, Ordering::Relaxed);
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(secret.expose().as_bytes(), &h)
            .is_ok()
    })
}

/// Successful checks of the last five minutes, by a hash of the PHC string and the secret,
/// so a client or user that keeps presenting the right secret does not cost argon2 each
/// time. Failures are never remembered: every wrong guess pays.
fn recent_successes() -> &'static moka::sync::Cache<[u8; 32], ()> {
    static OK: OnceLock<moka::sync::Cache<[u8; 32], ()>> = OnceLock::new();
    OK.get_or_init(|| {
        moka::sync::Cache::builder()
            .max_capacity(10_000)
            .time_to_live(Duration::from_secs(300))
            .build()
    })
}

/// Checks `secret` against an argon2 PHC string: a recent success again at once, anything
/// else through the gate.
pub async fn verify_argon2(phc: String, secret: Secret) -> Result<bool, Busy> {
    let mut h = blake3::Hasher::new();
    h.update(phc.as_bytes());
    h.update(&[0]);
    h.update(secret.expose().as_bytes());
    let memo = *h.finalize().as_bytes();
    if recent_successes().contains_key(&memo) {
        return Ok(true);
    }
    let gate = gate();
    let Ok(admitted) = gate.admitted.clone().try_acquire_owned() else {
        TURNED_AWAY.fetch_add(1, Ordering::Relaxed);
        return Err(Busy);
    };
    let ok = match &gate.jobs {
        Some(jobs) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let job: Job = Box::new(move || {
                let _admitted = admitted;
                let _ = tx.send(check(&phc, &secret));
            });
            if jobs.send(job).is_err() {
                return Err(Busy);
            }
            rx.await.unwrap_or(false)
        }
        None => tokio::task::spawn_blocking(move || {
            let _admitted = admitted;
            check(&phc, &secret)
        })
        .await
        .unwrap_or(false),
    };
    if ok {
        recent_successes().insert(memo, ());
    }
    Ok(ok)
}

/// An argon2id hash with the default parameters that no password matches: what an unknown
/// user or a plain-text one is checked against, so they cost what an argon2 user costs.
pub(crate) async fn decoy_phc() -> String {
    static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DECOY
        .get_or_init(|| async {
            tokio::task::spawn_blocking(|| match crate::clients::SecretHash::argon2("decoy") {
                crate::clients::SecretHash::Argon2(phc) => phc,
                _ => unreachable!("argon2() returns an argon2 hash"),
            })
            .await
            .unwrap_or_default()
        })
        .await
        .clone()
}

/// The outcome of a sign-in.
#[derive(Debug)]
pub(crate) enum SignIn {
    As(User),
    /// Unknown user or wrong password, alike.
    Wrong,
    /// Too many failures for this address or this username: not checked.
    Throttled,
}

/// Failed sign-ins over the last minute, per source address and per username.
pub(crate) struct SignIns {
    limit: u32,
    by_peer: moka::sync::Cache<IpAddr, Arc<AtomicU32>>,
    /// Keyed by a hash of the username, so the table's size does not depend on what
    /// clients send.
    by_user: moka::sync::Cache<[u8; 32], Arc<AtomicU32>>,
}

/// Seconds a throttled sign-in is told to wait.
pub(crate) const THROTTLE_SECS: u32 = 60;

fn per_minute<K: std::hash::Hash + Eq + Send + Sync + 'static>(
) -> moka::sync::Cache<K, Arc<AtomicU32>> {
    moka::sync::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(Duration::from_secs(u64::from(THROTTLE_SECS)))
        .build()
}

impl SignIns {
    pub(crate) fn new(limit: u32) -> Self {
        SignIns {
            limit,
            by_peer: per_minute(),
            by_user: per_minute(),
        }
    }

    /// Checks `username` and `password` in `users`, unless this address or this username
    /// has failed too often; counts a failure against both, and in `metrics`.
    pub(crate) async fn check(
        &self,
        users: &dyn UserDirectory,
        metrics: &Metrics,
        username: &str,
        password: &Secret,
        peer: Option<IpAddr>,
    ) -> Result<SignIn, StoreError> {
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let user = *blake3::hash(username.as_bytes()).as_bytes();
        let over =
            |n: Option<Arc<AtomicU32>>| n.is_some_and(|n| n.load(Ordering::Relaxed) >= self.limit);
        if over(self.by_peer.get(&peer)) || over(self.by_user.get(&user)) {
            return Ok(SignIn::Throttled);
        }
        match users.authenticate(username, password).await? {
            Some(u) => Ok(SignIn::As(u)),
            None => {
                for n in [
                    self.by_peer.get_with(peer, Default::default),
                    self.by_user.get_with(user, Default::default),
                ] {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                metrics.auth_failed(AuthFailure::BadUserCredentials);
                Ok(SignIn::Wrong)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_turns_checks_away_when_full() {
        let phc = decoy_phc().await;
        let capacity = running() * (1 + WAITING_PER_RUNNING);
        let checks: Vec<_> = (0..capacity + 8)
            .map(|_| tokio::spawn(verify_argon2(phc.clone(), Secret::new("guess"))))
            .collect();
        let mut busy = 0;
        for c in checks {
            match c.await.unwrap() {
                Ok(ok) => assert!(!ok),
                Err(Busy) => busy += 1,
            }
        }
        assert!(busy >= 8, "{busy} turned away");
        // Once the flood is over, checks run again.
        assert_eq!(verify_argon2(phc, Secret::new("guess")).await, Ok(false));
    }
}
