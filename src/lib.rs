//! oauth-edge: an OAuth2 authorization edge for APIs.
//!
//! The engine authenticates API clients, answers the OAuth2 endpoints itself (token,
//! revocation, introspection, metadata), keeps the revocation status of every token in an
//! in-process cache, and admits all other traffic with the caller's identity attached.

pub mod scope;
pub mod secret;
pub mod store;
pub mod tokens;

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> store::UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
