//! [`Edge`]: the engine handle every adapter calls.
//!
//! An adapter (the tower layer, the pingora gateway) does four things with it:
//! [`Edge::classify`](Core::classify) a request head; for an endpoint, [`Edge::precheck`](Core::precheck) the head, read the
//! body within the limit it returns, and [`Edge::serve`](Core::serve); for anything else,
//! [`Edge::admit`](Core::admit) it and, when allowed, [`Edge::forward`](Core::forward) the head to the upstream.
//!
//! `Edge` builds the engine and owns it behind an `Arc`; it derefs to [`Core`]
//! (`engine.rs`), which holds the parts and does the work, and is what every module below is
//! given. So the layers run one way: adapters → `Edge` → `Core` → grants, endpoints,
//! admission, pages, stores.

use std::collections::HashMap;
use std::sync::Arc;

use crate::admission::RouteTable;
use crate::cache::TokenCache;
use crate::clients::ClientRegistry;
use crate::config::{Config, ConfigError, StoreConfig};
pub use crate::engine::{Core, Endpoint, Target, Tls};
use crate::grants::ExtensionGrant;
use crate::profiles::Profile;
use crate::store::{MemoryStore, Store, StoreError};
use crate::tokens::{ServerKey, TokenCodec};
use crate::users::{StaticUsers, UserDirectory};

/// Why an edge could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The engine. Cheap to clone: an `Arc` inside.
#[derive(Clone)]
pub struct Edge {
    inner: Arc<Core>,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("profiles", &self.inner.profiles)
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Edge`] with parts the config file cannot express.
pub struct EdgeBuilder {
    config: Config,
    store: Option<Arc<dyn Store>>,
    users: Option<Arc<dyn UserDirectory>>,
    extensions: Vec<Arc<dyn ExtensionGrant>>,
    clock: Option<Arc<dyn crate::clock::Clock>>,
}

impl EdgeBuilder {
    /// Uses `clock` instead of the system's for what "now" is ([`crate::clock`]).
    pub fn clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Uses `store` instead of the one the config names.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses `users` instead of the config's user table.
    pub fn users(mut self, users: Arc<dyn UserDirectory>) -> Self {
        self.users = Some(users);
        self
    }

    /// Adds an extension grant. Clients use it only when their `grants` list its name.
    pub fn extension_grant(mut self, grant: Arc<dyn ExtensionGrant>) -> Self {
        self.extensions.push(grant);
        self
    }

    /// Opens the store (unless one was given), loads the keys and builds the edge.
    pub async fn build(self) -> Result<Edge, BuildError> {
        let config = self.config;
        config.validate()?;
        let store = match self.store {
            Some(s) => s,
            None => open_store(&config.store).await?,
        };
        let codec = codec(&config, store.as_ref()).await?;
        let clients = ClientRegistry::new(&config.clients, store.clone(), &config.limits)?;
        let users = self
            .users
            .unwrap_or_else(|| StaticUsers::new(&config.users).shared());
        let mut extensions: HashMap<String, Arc<dyn ExtensionGrant>> = HashMap::new();
        for g in crate::grants::npr_grants()
            .into_iter()
            .chain(self.extensions)
        {
            extensions.insert(g.grant_type().to_string(), g);
        }
        let profiles = config.profiles.iter().map(Profile::from_config).collect();
        let routes = RouteTable::new(&config);
        let notices = store.notices();
        let edge = Edge {
            inner: Arc::new(Core {
                clock: self
                    .clock
                    .unwrap_or_else(|| Arc::new(crate::clock::SystemClock)),
                pages: crate::authorize::Pages::new(
                    codec.signing_key().bytes(),
                    config.authorization.session_ttl,
                ),
                sign_ins: crate::passwords::SignIns::new(
                    config.authorization.max_failed_sign_ins_per_minute,
                ),
                maintenance: std::sync::atomic::AtomicBool::new(config.maintenance.enabled),
                quotas: crate::quota::Quotas::new(),
                any_quota: config.clients.iter().any(|c| c.rate_limit.is_some()),
                cache: TokenCache::new(&config.cache),
                codec,
                store,
                clients,
                users,
                extensions,
                profiles,
                routes,
                metrics: Default::default(),
                config,
            }),
        };
        if let Some(rx) = notices {
            listen(Arc::downgrade(&edge.inner), rx);
        }
        if !edge.inner.config.housekeeping.interval.is_zero() {
            housekeeping(Arc::downgrade(&edge.inner));
        }
        Ok(edge)
    }
}

/// Applies the store's notices to this instance's cache until the edge is dropped: a family
/// revoked elsewhere is refused here on the next request; after a gap in the channel the
/// whole cache is emptied (the cache TTL bounds what a missed notice could let through).
fn listen(
    inner: std::sync::Weak<Core>,
    mut rx: tokio::sync::broadcast::Receiver<crate::store::Notice>,
) {
    use tokio::sync::broadcast::error::RecvError;
    tokio::spawn(async move {
        loop {
            let notice = rx.recv().await;
            let Some(inner) = inner.upgrade() else { break };
            match notice {
                Ok(crate::store::Notice::Revoked { family, at_ms }) => {
                    inner.cache.revoke_family(family, None).await;
                    let now_ms = crate::unix_now_ms();
                    inner.metrics.propagated(now_ms - at_ms);
                }
                Ok(crate::store::Notice::Client { id }) => inner.clients.forget(&id).await,
                Ok(crate::store::Notice::Gap) | Err(RecvError::Lagged(_)) => {
                    inner.cache.clear();
                    inner.clients.forget_all();
                    inner.metrics.notice_gap();
                    tracing::warn!(
                        "store notices were interrupted; the token and client caches were emptied"
                    );
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
}

/// Deletes expired tokens, codes and device grants in bounded batches, every
/// `housekeeping.interval`, until the edge is dropped.
fn housekeeping(inner: std::sync::Weak<Core>) {
    tokio::spawn(async move {
        let Some(interval) = inner.upgrade().map(|i| i.config.housekeeping.interval) else {
            return;
        };
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(inner) = inner.upgrade() else { break };
            let (batch, batches) = (
                inner.config.housekeeping.batch.max(1),
                inner.config.housekeeping.batches.max(1),
            );
            let mut deleted = 0u64;
            for _ in 0..batches {
                match inner.store.purge_expired(inner.now(), batch).await {
                    Ok(n) => {
                        deleted += n;
                        if n < u64::from(batch) {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "housekeeping: the store could not purge");
                        break;
                    }
                }
            }
            if deleted > 0 {
                tracing::debug!(deleted, "housekeeping: expired tokens deleted");
            }
        }
    });
}

async fn open_store(c: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    match c {
        StoreConfig::Memory => Ok(Arc::new(MemoryStore::new())),
        #[cfg(feature = "sqlite")]
        StoreConfig::Sqlite { path, synchronous } => {
            let sync = match synchronous {
                crate::config::SyncMode::Full => crate::store::Synchronous::Full,
                crate::config::SyncMode::Normal => crate::store::Synchronous::Normal,
            };
            let path = path.clone();
            let s =
                tokio::task::spawn_blocking(move || crate::store::SqliteStore::open(path, sync))
                    .await
                    .map_err(|e| StoreError::Backend(e.to_string()))??;
            Ok(Arc::new(s))
        }
        #[cfg(not(feature = "sqlite"))]
        StoreConfig::Sqlite { .. } => Err(StoreError::Backend(
            "this build has no SQLite support (feature `sqlite`)".into(),
        )),
        #[cfg(feature = "postgres")]
        StoreConfig::Postgres(pg) => Ok(Arc::new(crate::store::PostgresStore::connect(pg).await?)),
        #[cfg(not(feature = "postgres"))]
        StoreConfig::Postgres(_) => Err(StoreError::Backend(
            "this build has no PostgreSQL support (feature `postgres`)".into(),
        )),
    }
}

async fn codec(config: &Config, store: &dyn Store) -> Result<TokenCodec, BuildError> {
    let mut keys: Vec<ServerKey> = config
        .tokens
        .keys
        .iter()
        .filter_map(|k| {
            crate::config::decode_key(k.secret.expose()).map(|b| ServerKey::new(k.id, b))
        })
        .collect();
    if keys.is_empty() {
        keys = store.server_keys().await?;
    }
    let signing_id = config
        .tokens
        .signing_key
        .or_else(|| keys.iter().map(|k| k.id).max())
        .ok_or_else(|| ConfigError::new("tokens.keys", "no key to sign tokens with"))?;
    let pos = keys
        .iter()
        .position(|k| k.id == signing_id)
        .ok_or_else(|| ConfigError::new("tokens.signing_key", "names no key"))?;
    let signing = keys.remove(pos);
    Ok(TokenCodec::new(signing, keys))
}

impl Edge {
    /// Starts building an edge from a checked config.
    pub fn builder(config: Config) -> EdgeBuilder {
        EdgeBuilder {
            config,
            store: None,
            users: None,
            extensions: Vec::new(),
            clock: None,
        }
    }

    /// Builds an edge with the config's store and user table.
    pub async fn new(config: Config) -> Result<Edge, BuildError> {
        Self::builder(config).build().await
    }
}

impl std::ops::Deref for Edge {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.inner
    }
}
