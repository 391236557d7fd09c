//! Where tokens, families and clients live.
//!
//! One [`Store`] trait, with a `memory` backend for tests and throwaway runs and an `sqlite`
//! backend that is the embedded default. Every backend passes the same conformance suite
//! (`tests/store_conformance.rs`). Stores keep only [`TokenHash`]es, never token strings.
//!
//! Operations that decide a race (rotating a refresh token) are one atomic step in the
//! backend, so two callers can never both win.

mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use memory::MemoryStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, Synchronous};

use async_trait::async_trait;

use crate::scope::Scopes;
use crate::tokens::{FamilyId, ServerKey, TokenHash, TokenKind};

/// Unix time in seconds.
pub type UnixTime = i64;

/// A store failure. None of these is the client's fault: the edge answers 503.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or did not answer in time.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A token hash that is already stored. The caller mints a new token and tries again.
    #[error("token hash already stored")]
    Conflict,
    /// Anything else the backend reported.
    #[error("store error: {0}")]
    Backend(String),
}

/// A grant family as first written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFamily {
    /// The family id.
    pub id: FamilyId,
    /// The client the grant was made to.
    pub client_id: String,
    /// The resource owner, if any (none for `client_credentials`).
    pub user: Option<String>,
    /// The grant type that started the family (`client_credentials`, `password`, …).
    pub grant_type: String,
    /// When the grant was made.
    pub created_at: UnixTime,
}

/// A token to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Hash of the token string.
    pub hash: TokenHash,
    /// Access, refresh, …
    pub kind: TokenKind,
    /// The family it belongs to.
    pub family: FamilyId,
    /// Scopes granted to this token.
    pub scopes: Scopes,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it stops being valid; `None` never expires.
    pub expires_at: Option<UnixTime>,
}

/// A stored token joined with its family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Hash of the token string.
    pub hash: TokenHash,
    /// Access, refresh, …
    pub kind: TokenKind,
    /// Its family.
    pub family: FamilyId,
    /// The family's client.
    pub client_id: String,
    /// The family's user.
    pub user: Option<String>,
    /// The grant type that started the family.
    pub grant_type: String,
    /// Scopes granted to this token.
    pub scopes: Scopes,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it expires; `None` never.
    pub expires_at: Option<UnixTime>,
    /// When a single-use token (refresh, code) was used up.
    pub consumed_at: Option<UnixTime>,
    /// True once its family has been revoked.
    pub revoked: bool,
}

impl TokenRecord {
    /// True when the token may still be used at `now`: not revoked, not expired.
    pub fn is_live(&self, now: UnixTime) -> bool {
        !self.revoked && self.expires_at.is_none_or(|e| now < e)
    }
}

/// The outcome of [`Store::rotate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The old token is now consumed and the new tokens are written. Holds the old record.
    Rotated(TokenRecord),
    /// No such token, or not of the expected kind.
    NotFound,
    /// The token belongs to another client. It was left untouched.
    WrongClient,
    /// The token was already consumed: a replay. Its whole family is now revoked.
    Replayed(FamilyId),
    /// The token's family is revoked, or the token has expired.
    Dead,
}

/// A client as the store keeps it (clients created at run time; clients from the config file
/// live in the registry only).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientRecord {
    /// The client id.
    pub id: String,
    /// The client's settings, as the config file's `[[clients]]` table would hold them, with
    /// the secret only as a hash.
    pub settings: serde_json::Value,
    /// When it was created.
    pub created_at: UnixTime,
}

/// The storage the edge needs.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Writes `family` (when given) and `tokens` in one transaction. A token hash that already
    /// exists fails the whole write with [`StoreError::Conflict`]. On `Ok` the write is durable.
    async fn issue(
        &self,
        family: Option<&NewFamily>,
        tokens: &[NewToken],
    ) -> Result<(), StoreError>;

    /// Looks a token up by hash.
    async fn find(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError>;

    /// Consumes the live token `old` of kind `kind` belonging to `client_id` and writes `new`
    /// (into the same family), as one atomic step. See [`Rotation`] for the outcomes. A
    /// replayed token revokes its family in the same step.
    async fn rotate(
        &self,
        old: &TokenHash,
        kind: TokenKind,
        client_id: &str,
        now: UnixTime,
        new: &[NewToken],
    ) -> Result<Rotation, StoreError>;

    /// Revokes every token of `family`. Idempotent. On `Ok` the revocation is durable.
    async fn revoke_family(&self, family: &FamilyId, now: UnixTime) -> Result<(), StoreError>;

    /// Revokes every family of a client, or of a user when `user` is given. Returns the
    /// families newly revoked.
    async fn revoke_all(
        &self,
        client_id: Option<&str>,
        user: Option<&str>,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError>;

    /// Deletes up to `limit` tokens that expired before `before`, and families left with no
    /// tokens. Returns how many tokens were deleted.
    async fn purge_expired(&self, before: UnixTime, limit: u32) -> Result<u64, StoreError>;

    /// The server MAC keys the store keeps for deployments that configure none. Creates one
    /// the first time. Every instance sharing the store then shares the keys.
    async fn server_keys(&self) -> Result<Vec<ServerKey>, StoreError>;

    /// A client created at run time.
    async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError>;

    /// Creates or replaces a client.
    async fn put_client(&self, client: &ClientRecord) -> Result<(), StoreError>;

    /// Every client created at run time, by id.
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError>;

    /// Deletes a client. Returns whether it existed. Its tokens are revoked first.
    async fn delete_client(&self, id: &str, now: UnixTime) -> Result<bool, StoreError>;
}
