//! Managing the clients kept in the store: what `oauth-edge client …`, the gateway's admin API
//! and layer users call, through [`Core::client_admin`](crate::engine::Core::client_admin).
//!
//! The store decides every race. A creation is an insert-if-absent, so of two concurrent
//! creations of one id, on one instance or on several sharing a store, exactly one succeeds and
//! the other gets [`ClientAdminError::Conflict`]. A secret rotation replaces the settings only
//! if they are still those it read, and reads again otherwise, so two rotations cannot lose one
//! another's write unseen. Every change is forgotten from this instance's client cache at once,
//! and a store shared by several instances tells the others ([`Notice::Client`]), which forget
//! it as they hear it.
//!
//! [`Notice::Client`]: crate::store::Notice::Client

use std::time::Duration;

use serde::Serialize;

use super::{validate_client, SecretHash};
use crate::config::{AuthMethod, ClientConfig, RateLimitConfig};
use crate::engine::Core;
use crate::secret::Secret;
use crate::store::{ClientRecord, StoreError, UnixTime};

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientAdminError {
    /// The request is wrong: a bad id or scope, a secret asked of a public client.
    #[error("{0}")]
    Invalid(String),
    /// No such client.
    #[error("no such client")]
    NotFound,
    /// The request clashes with what exists: the id is taken, or the client is declared in
    /// the config file (change it there).
    #[error("{0}")]
    Conflict(String),
    /// The store failed, or holds a record it cannot read: not the caller's fault.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a client is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientSource {
    /// The config file: read-only here.
    Config,
    /// The store: created at run time.
    Store,
}

impl ClientSource {
    /// Its name, as the JSON view spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ClientSource::Config => "config",
            ClientSource::Store => "store",
        }
    }
}

/// A client as shown to people and scripts: its settings, never its secret or the secret's
/// hash.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientView {
    /// The client id.
    pub id: String,
    /// Its display name.
    pub name: Option<String>,
    /// A public client has no secret.
    pub public: bool,
    /// The grant types it may use.
    pub grants: Vec<String>,
    /// The scopes it may ask for.
    pub scopes: Vec<String>,
    /// What it gets when it asks for none, when not all of `scopes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_scopes: Option<Vec<String>>,
    /// How it may authenticate, when restricted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_methods: Option<Vec<AuthMethod>>,
    /// Its registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// May introspect other clients' tokens.
    pub introspect: bool,
    /// Its own access-token lifetime, when not the default.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub access_ttl: Option<Duration>,
    /// Its request quota.
    pub rate_limit: Option<RateLimitConfig>,
    /// Its authorization requests must carry PKCE (always so for a public client).
    pub require_pkce: bool,
    /// A signed-in user is not asked for consent.
    pub skip_consent: bool,
    /// Where it is defined.
    pub source: ClientSource,
    /// When it was created (stored clients).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<UnixTime>,
}

impl ClientView {
    fn of(c: &ClientConfig, source: ClientSource, created_at: Option<UnixTime>) -> Self {
        ClientView {
            id: c.id.clone(),
            name: c.name.clone(),
            public: c.public,
            grants: c.grants.clone(),
            scopes: c.scopes.clone(),
            default_scopes: c.default_scopes.clone(),
            auth_methods: c.auth_methods.clone(),
            redirect_uris: c.redirect_uris.clone(),
            introspect: c.introspect,
            access_ttl: c.access_ttl,
            rate_limit: c.rate_limit,
            require_pkce: c.require_pkce || c.public,
            skip_consent: c.skip_consent,
            source,
            created_at,
        }
    }
}

/// How many times a rotation reads again after losing a race before it gives up.
const ROTATION_TRIES: usize = 8;

const DECLARED: &str = "this client is declared in the config file; change it there";

/// The client operations of one edge: see the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct ClientAdmin<'e> {
    edge: &'e Core,
}

impl<'e> ClientAdmin<'e> {
    pub(crate) fn new(edge: &'e Core) -> Self {
        ClientAdmin { edge }
    }

    fn declared(&self, id: &str) -> Option<&'e ClientConfig> {
        self.edge.config().clients.iter().find(|c| c.id == id)
    }

    /// Every client: the store's (by id), then the config file's.
    pub async fn list(&self) -> Result<Vec<ClientView>, ClientAdminError> {
        let stored = self.edge.store().list_clients().await?;
        let mut views = Vec::with_capacity(stored.len() + self.edge.config().clients.len());
        for rec in &stored {
            views.push(ClientView::of(
                &settings(rec)?,
                ClientSource::Store,
                Some(rec.created_at),
            ));
        }
        views.extend(
            self.edge
                .config()
                .clients
                .iter()
                .map(|c| ClientView::of(c, ClientSource::Config, None)),
        );
        Ok(views)
    }

    /// One client, as the registry resolves it: the config file first, then the store.
    pub async fn show(&self, id: &str) -> Result<ClientView, ClientAdminError> {
        if let Some(c) = self.declared(id) {
            return Ok(ClientView::of(c, ClientSource::Config, None));
        }
        match self.edge.store().client(id).await? {
            Some(rec) => Ok(ClientView::of(
                &settings(&rec)?,
                ClientSource::Store,
                Some(rec.created_at),
            )),
            None => Err(ClientAdminError::NotFound),
        }
    }

    /// Creates a client in the store, with a new secret unless it is public; returns the
    /// secret, which is stored only as a hash. A `secret` or `secret_hash` in `client` is
    /// replaced. [`ClientAdminError::Conflict`] when the id is taken, in the store or in the
    /// config file.
    pub async fn create(
        &self,
        mut client: ClientConfig,
    ) -> Result<Option<Secret>, ClientAdminError> {
        let secret = if client.public {
            client.secret_hash = None;
            None
        } else {
            let (secret, hash) = SecretHash::generate();
            client.secret_hash = hash.encode();
            Some(secret)
        };
        client.secret = None;
        validate_client(&client)
            .map_err(|(k, r)| ClientAdminError::Invalid(format!("{k}: {r}")))?;
        if self.declared(&client.id).is_some() {
            return Err(ClientAdminError::Conflict(
                "a client with this id is declared in the config file".into(),
            ));
        }
        let rec = ClientRecord {
            id: client.id.clone(),
            settings: to_settings(&client)?,
            created_at: self.edge.now(),
        };
        match self.edge.store().create_client(&rec).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return Err(ClientAdminError::Conflict(
                    "a client with this id exists".into(),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        // A lookup before the creation may have cached "no such client".
        self.edge.clients().forget(&client.id).await;
        Ok(secret)
    }

    /// Gives a stored confidential client a new secret, returned once; the old one stops
    /// working here at once, and on the other instances of a fleet as they hear of it.
    pub async fn rotate_secret(&self, id: &str) -> Result<Secret, ClientAdminError> {
        if self.declared(id).is_some() {
            return Err(ClientAdminError::Conflict(DECLARED.into()));
        }
        for _ in 0..ROTATION_TRIES {
            let Some(mut rec) = self.edge.store().client(id).await? else {
                return Err(ClientAdminError::NotFound);
            };
            let mut client = settings(&rec)?;
            if client.public {
                return Err(ClientAdminError::Invalid(
                    "a public client has no secret".into(),
                ));
            }
            let (secret, hash) = SecretHash::generate();
            client.secret_hash = hash.encode();
            let read = std::mem::replace(&mut rec.settings, to_settings(&client)?);
            if self.edge.store().replace_client(&rec, &read).await? {
                self.edge.clients().forget(id).await;
                return Ok(secret);
            }
            // Changed (or deleted) since it was read: read it again.
        }
        Err(StoreError::Unavailable(
            "the client kept changing while its secret was being rotated; try again".into(),
        )
        .into())
    }

    /// Deletes a stored client and revokes its tokens at once. Returns how many grant
    /// families were revoked.
    pub async fn remove(&self, id: &str) -> Result<usize, ClientAdminError> {
        if self.declared(id).is_some() {
            return Err(ClientAdminError::Conflict(DECLARED.into()));
        }
        if self.edge.store().client(id).await?.is_none() {
            return Err(ClientAdminError::NotFound);
        }
        // Revoke through the edge first: it marks this instance's cache, so the tokens stop
        // working at once. `delete_client` revokes in the store too, but does not say which
        // families, so after it `revoke_all` would find nothing left to mark.
        let revoked = self.edge.revoke_all(Some(id), None).await?;
        let existed = self.edge.store().delete_client(id, self.edge.now()).await?;
        self.edge.clients().forget(id).await;
        if !existed {
            // Deleted meanwhile, by another instance or command.
            return Err(ClientAdminError::NotFound);
        }
        Ok(revoked)
    }
}

/// A stored client's settings, or a store error when the record cannot be read back.
fn settings(rec: &ClientRecord) -> Result<ClientConfig, ClientAdminError> {
    serde_json::from_value(rec.settings.clone()).map_err(|e| {
        StoreError::Backend(format!("stored client {:?} is unreadable: {e}", rec.id)).into()
    })
}

fn to_settings(client: &ClientConfig) -> Result<serde_json::Value, ClientAdminError> {
    serde_json::to_value(client).map_err(|e| StoreError::Backend(e.to_string()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_spelt_alike_in_json_and_text() {
        for s in [ClientSource::Config, ClientSource::Store] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
