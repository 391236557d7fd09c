//! oauth-edge: an OAuth2 authorization edge for APIs.
//!
//! The engine authenticates API clients, answers the OAuth2 endpoints itself (token,
//! revocation, introspection, metadata), keeps the revocation status of every token in an
//! in-process cache, and admits all other traffic with the caller's identity attached.
//!
//! It ships as a tower layer ([`OAuthEdgeLayer`]) and as the `oauth-edge` pingora gateway;
//! both are thin adapters over one [`Edge`].

pub mod admission;
mod authorize;
pub mod cache;
pub mod clients;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod edge;
mod endpoints;
pub mod engine;
pub mod error;
pub mod files;
pub mod grants;
pub mod layer;
pub mod metrics;
pub mod pages;
pub mod params;
pub mod passwords;
pub mod pkce;
pub mod profiles;
pub mod quota;
pub mod scope;
pub mod secret;
pub mod store;
pub mod target;
pub mod tokens;
pub mod users;

pub use admission::{Admission, Forwarding, Identity, Via};
pub use config::Config;
pub use edge::{BuildError, Edge, EdgeBuilder, Endpoint, Target, Tls};
pub use endpoints::json as json_response;
pub use error::{ErrorCode, OAuthError};
pub use layer::{OAuthEdge, OAuthEdgeLayer, PeerAddr};
pub use scope::Scopes;
pub use secret::Secret;

/// A random string of URL-unreserved characters carrying `bytes` bytes from the OS random
/// source (generated secrets, admin tokens).
pub fn tokens_random(bytes: usize) -> String {
    tokens::random_string(bytes)
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> store::UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
