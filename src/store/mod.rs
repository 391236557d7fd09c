//! Where tokens, families and clients live.
//!
//! One [`Store`] trait, with a `memory` backend for tests and throwaway runs and an `sqlite`
//! backend that is the embedded default. Every backend passes the same conformance suite
//! (`tests/store_conformance.rs`). Stores keep only [`TokenHash`]es, never token strings.
//!
//! Operations that decide a race (rotating a refresh token) are one atomic step in the
//! backend, so two callers can never both win.

mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod rules;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, Synchronous};

use async_trait::async_trait;

use crate::scope::Scopes;
use crate::tokens::{FamilyId, ServerKey, TokenHash, TokenKind};

/// Unix time in seconds.
pub type UnixTime = i64;

/// A store failure. None of these is the client's fault: the edge answers 503.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or did not answer in time.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A token hash that is already stored (the caller mints a new token and tries again),
    /// or a client id that is taken.
    #[error("already stored")]
    Conflict,
    /// The password checks are at capacity ([`crate::passwords`]): nothing was checked.
    #[error("too many password checks in progress")]
    Busy,
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

/// What an authorization code is bound to besides its client (RFC 6749 4.1.3, RFC 7636 4.6).
/// Written with the code by [`Store::issue_code`], read back when the code is redeemed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBinding {
    /// The `redirect_uri` of the authorization request, exactly as sent; `None` when the
    /// request named none (the client's only registered URI was used), in which case the
    /// token request may name that URI or none.
    pub redirect_uri: Option<String>,
    /// The PKCE S256 challenge (base64url of SHA-256 of the verifier), when one was sent.
    pub code_challenge: Option<String>,
}

/// A device authorization request (RFC 8628 3.1), as written by [`Store::put_device_grant`].
#[derive(Clone, PartialEq, Eq)]
pub struct NewDeviceGrant {
    /// Hash of the `device_code` the client polls with.
    pub device_hash: TokenHash,
    /// The code the user types, normalised: upper case, no separators.
    pub user_code: String,
    /// The client that asked.
    pub client_id: String,
    /// The scopes asked for.
    pub scopes: Scopes,
    /// The polling interval the client was given, in seconds.
    pub interval: u32,
    /// When it was created.
    pub created_at: UnixTime,
    /// When both codes stop working.
    pub expires_at: UnixTime,
}

impl std::fmt::Debug for NewDeviceGrant {
    // The user code is a credential while the grant is pending: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDeviceGrant")
            .field("device_hash", &self.device_hash)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("interval", &self.interval)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Where a device grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for the user.
    Pending,
    /// The user approved; the next poll redeems it.
    Approved,
    /// The user said no.
    Denied,
    /// A poll got tokens for it; it is spent.
    Redeemed,
}

impl DeviceStatus {
    /// The name stores write.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
            DeviceStatus::Redeemed => "redeemed",
        }
    }

    /// Parses [`DeviceStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeviceStatus::Pending,
            "approved" => DeviceStatus::Approved,
            "denied" => DeviceStatus::Denied,
            "redeemed" => DeviceStatus::Redeemed,
            _ => return None,
        })
    }
}

/// A device grant as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceGrant {
    /// What was written.
    pub grant: NewDeviceGrant,
    /// Where it stands.
    pub status: DeviceStatus,
    /// The user who approved or denied it.
    pub user: Option<String>,
    /// The interval now in force: the first one plus 5 s per `slow_down` (RFC 8628 3.5).
    pub interval: u32,
    /// When the client last polled, in milliseconds since the epoch.
    pub last_poll_ms: Option<i64>,
}

impl std::fmt::Debug for DeviceGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceGrant")
            .field("grant", &self.grant)
            .field("status", &self.status)
            .field("user", &self.user)
            .field("interval", &self.interval)
            .field("last_poll_ms", &self.last_poll_ms)
            .finish()
    }
}

/// What a poll that redeems an approved device grant writes, in the same atomic step: a new
/// family for the grant's client and user, and these tokens in it, each with the grant's
/// scopes. So an approval is never spent without its tokens being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTokens {
    /// The new family.
    pub family: FamilyId,
    /// The family's grant type.
    pub grant_type: String,
    /// When the tokens are issued.
    pub issued_at: UnixTime,
    /// Each token's hash, kind and expiry.
    pub tokens: Vec<(TokenHash, TokenKind, Option<UnixTime>)>,
}

impl DeviceTokens {
    /// The family and tokens to write for `grant`.
    pub fn for_grant(&self, grant: &DeviceGrant) -> (NewFamily, Vec<NewToken>) {
        let family = NewFamily {
            id: self.family,
            client_id: grant.grant.client_id.clone(),
            user: grant.user.clone(),
            grant_type: self.grant_type.clone(),
            created_at: self.issued_at,
        };
        let tokens = self
            .tokens
            .iter()
            .map(|(hash, kind, expires_at)| NewToken {
                hash: *hash,
                kind: *kind,
                family: self.family,
                scopes: grant.grant.scopes.clone(),
                issued_at: self.issued_at,
                expires_at: *expires_at,
            })
            .collect();
        (family, tokens)
    }
}

/// The outcome of [`Store::poll_device_grant`], decided in one atomic step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// No such device code, or it belongs to another client: `invalid_grant`.
    NotFound,
    /// Past its expiry: `expired_token`.
    Expired,
    /// Polled sooner than the interval allows: the interval is now 5 s longer, and stays so.
    SlowDown,
    /// The user has not decided yet: `authorization_pending`.
    Pending,
    /// The user said no: `access_denied`.
    Denied,
    /// Already redeemed by an earlier poll: `invalid_grant`.
    Redeemed,
    /// Approved, and now redeemed by this poll, which alone gets it: the poll's
    /// [`DeviceTokens`] are written. Holds the grant as the poll found it (status `Approved`,
    /// the previous poll's time).
    Approved(DeviceGrant),
}

/// What a store that several instances share reports about revocations made by any of them
/// ([`Store::notices`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `family` was revoked (durably), at `at_ms` milliseconds since the epoch by the revoking
    /// instance's clock (for the propagation-delay metric).
    Revoked {
        /// The family.
        family: FamilyId,
        /// When the revocation was committed.
        at_ms: i64,
    },
    /// The run-time client `id` was created, changed or deleted: what is cached about it
    /// must be read again.
    Client {
        /// The client id.
        id: String,
    },
    /// The channel was down for a while and is back: revocations and client changes may have
    /// been missed, so everything cached must be forgotten.
    Gap,
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

    /// Creates a client, if no client has its id: [`StoreError::Conflict`] when one has, and
    /// nothing is written. A store shared by several instances tells them all
    /// ([`Notice::Client`]).
    async fn create_client(&self, client: &ClientRecord) -> Result<(), StoreError>;

    /// Replaces a client's settings if they are still `expected` (what the caller read):
    /// `Ok(false)`, writing nothing, when the client is gone or was changed meanwhile. A
    /// store shared by several instances tells them all ([`Notice::Client`]).
    async fn replace_client(
        &self,
        client: &ClientRecord,
        expected: &serde_json::Value,
    ) -> Result<bool, StoreError>;

    /// Every client created at run time, by id.
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError>;

    /// Deletes a client. Returns whether it existed. Its tokens are revoked first. A store
    /// shared by several instances tells them all ([`Notice::Client`]).
    async fn delete_client(&self, id: &str, now: UnixTime) -> Result<bool, StoreError>;

    /// Checks that the store answers, writing nothing (for readiness probes).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Writes a new family, its authorization code (a token of kind [`TokenKind::Code`]) and
    /// what the code is bound to, in one transaction; [`StoreError::Conflict`] when the hash
    /// exists. The code is redeemed with [`Store::rotate`], which makes it single use and
    /// revokes the family (with every token the first redemption issued) on reuse.
    async fn issue_code(
        &self,
        family: &NewFamily,
        code: &NewToken,
        binding: &CodeBinding,
    ) -> Result<(), StoreError>;

    /// What the code `hash` is bound to; `None` for an unknown hash.
    async fn code_binding(&self, hash: &TokenHash) -> Result<Option<CodeBinding>, StoreError>;

    /// Writes a device grant, pending. [`StoreError::Conflict`] when the device hash exists or
    /// the user code belongs to another grant that has not expired at `grant.created_at`; the
    /// caller draws new codes and tries again.
    async fn put_device_grant(&self, grant: &NewDeviceGrant) -> Result<(), StoreError>;

    /// The unexpired grant with this (normalised) user code, whatever its status.
    async fn device_grant_by_user_code(
        &self,
        user_code: &str,
        now: UnixTime,
    ) -> Result<Option<DeviceGrant>, StoreError>;

    /// Records the user's decision on the pending, unexpired grant with this user code:
    /// approved by `user` when `approve`, else denied by `user`. Returns `false` (and changes
    /// nothing) when there is no such grant or it was already decided.
    async fn decide_device_grant(
        &self,
        user_code: &str,
        user: &str,
        approve: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// One poll of the device code `device_hash` by `client_id` at `now_ms` (milliseconds),
    /// decided in one atomic step; see [`DevicePoll`]. Checks, in order: known and of this
    /// client, unexpired, then the interval (a poll sooner than `interval` seconds after the
    /// last one, less `grace_ms`, is `SlowDown` and lengthens the interval by 5 s), then the
    /// status. Every poll but `NotFound` and `Expired` records its time. A poll that finds the
    /// grant approved writes `issue` (see [`DeviceTokens`]) in the same step; a token hash that
    /// exists fails the whole poll with [`StoreError::Conflict`] and changes nothing.
    async fn poll_device_grant(
        &self,
        device_hash: &TokenHash,
        client_id: &str,
        now_ms: i64,
        grace_ms: i64,
        issue: &DeviceTokens,
    ) -> Result<DevicePoll, StoreError>;

    /// Revocations made through this store by every instance that shares it (this one
    /// included), as they are committed: every family revoked by `revoke_family`,
    /// `revoke_all`, `delete_client` or a replayed `rotate`. `None` for a store only this
    /// process uses (memory, SQLite), where the edge sees every revocation itself.
    fn notices(&self) -> Option<tokio::sync::broadcast::Receiver<Notice>> {
        None
    }
}
