//! [`Edge`]: the engine handle every adapter calls.
//!
//! An adapter (the tower layer, the pingora gateway) does four things with it:
//! [`Edge::classify`] a request head; for an endpoint, [`Edge::precheck`] the head, read the
//! body within the limit it returns, and [`Edge::serve`]; for anything else,
//! [`Edge::admit`] it and, when allowed, [`Edge::forward`] the head to the upstream.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{header, Method, Response, StatusCode};

use crate::admission::{Admission, Route, RouteTable};
use crate::cache::{CachedToken, TokenCache};
use crate::clients::{Authenticated, ClientRegistry};
use crate::config::{AuthMethod, Config, ConfigError, StoreConfig};
use crate::credentials::{self, Places, Presented};
use crate::error::{Challenge, OAuthError};
use crate::grants::ExtensionGrant;
use crate::params::Params;
use crate::profiles::{EndpointKind, Profile};
use crate::store::{MemoryStore, Store, StoreError};
use crate::tokens::{FamilyId, ServerKey, TokenCodec, TokenHash, TokenKind};
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

/// Put in a request's extensions by an adapter when the request came over TLS: the sign-in
/// pages then mark their cookies `Secure`, and derived URLs use `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tls;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An endpoint the edge answers itself.
    Endpoint(Endpoint),
    /// Traffic for the upstream, under the route at this index.
    Passthrough(usize),
}

/// An endpoint of a mounted profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Which endpoint.
    pub kind: EndpointKind,
    /// Index of the profile in the config.
    pub profile: usize,
}

/// The engine. Cheap to clone: an `Arc` inside.
#[derive(Clone)]
pub struct Edge {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("profiles", &self.inner.profiles)
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) codec: TokenCodec,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) cache: TokenCache,
    pub(crate) clients: ClientRegistry,
    pub(crate) users: Arc<dyn UserDirectory>,
    pub(crate) extensions: HashMap<String, Arc<dyn ExtensionGrant>>,
    pub(crate) profiles: Vec<Profile>,
    pub(crate) routes: RouteTable,
    pub(crate) metrics: crate::metrics::Metrics,
    pub(crate) pages: crate::authorize::Pages,
    /// Failed sign-ins, on the pages and by the password grant.
    pub(crate) sign_ins: crate::passwords::SignIns,
    pub(crate) maintenance: std::sync::atomic::AtomicBool,
    pub(crate) quotas: crate::quota::Quotas,
    /// Whether any client has a quota: when none does, admission does not look.
    pub(crate) any_quota: bool,
}

/// Builds an [`Edge`] with parts the config file cannot express.
pub struct EdgeBuilder {
    config: Config,
    store: Option<Arc<dyn Store>>,
    users: Option<Arc<dyn UserDirectory>>,
    extensions: Vec<Arc<dyn ExtensionGrant>>,
}

impl EdgeBuilder {
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
            inner: Arc::new(Inner {
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
    inner: std::sync::Weak<Inner>,
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
fn housekeeping(inner: std::sync::Weak<Inner>) {
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
                match inner.store.purge_expired(crate::unix_now(), batch).await {
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
        }
    }

    /// Builds an edge with the config's store and user table.
    pub async fn new(config: Config) -> Result<Edge, BuildError> {
        Self::builder(config).build().await
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The token codec (mint and verify).
    pub fn codec(&self) -> &TokenCodec {
        &self.inner.codec
    }

    /// The token-status cache.
    pub fn cache(&self) -> &TokenCache {
        &self.inner.cache
    }

    /// The client registry.
    pub fn clients(&self) -> &ClientRegistry {
        &self.inner.clients
    }

    /// The engine's counters.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    /// Every passthrough route, in match order; the last is the default route. Indexes are
    /// those [`Edge::classify`] returns.
    pub fn routes(&self) -> &[Route] {
        self.inner.routes.routes()
    }

    /// The passthrough route at `index`, as returned by [`Edge::classify`].
    pub fn route(&self, index: usize) -> &Route {
        self.inner.routes.get(index)
    }

    /// Checks the request's path and host and says how to put them in the canonical form
    /// ([`crate::target`]) that [`Edge::classify`] matches on and the upstream must receive.
    /// An ambiguous target (an escaped `/`, a `;` in a segment, a `..` above the root, a bad
    /// host or port) is answered 400 `invalid_request`. Adapters call this first and apply
    /// the change to the request before anything else reads it.
    #[allow(clippy::result_large_err)]
    pub fn canonical(&self, head: &Parts) -> Result<crate::target::Canonical, Response<Bytes>> {
        crate::target::canonical(head).map_err(|e| {
            self.inner
                .metrics
                .auth_failed(crate::metrics::AuthFailure::BadTarget);
            crate::profiles::rfc_error(&OAuthError::invalid_request(e.describe()))
        })
    }

    /// Decides where a request goes, from its head alone. The head must be canonical
    /// (see [`Edge::canonical`]): routes are matched on the path as it is.
    pub fn classify(&self, head: &Parts) -> Target {
        let path = head.uri.path();
        if path == "/.well-known/oauth-authorization-server" && !self.inner.profiles.is_empty() {
            // Metadata describes the whole edge; it is rendered in the first profile's dialect.
            return Target::Endpoint(Endpoint {
                kind: EndpointKind::Metadata,
                profile: 0,
            });
        }
        for (i, p) in self.inner.profiles.iter().enumerate() {
            if let Some(kind) = p.endpoint(path) {
                return Target::Endpoint(Endpoint { kind, profile: i });
            }
        }
        Target::Passthrough(self.inner.routes.find(|| host(head), path))
    }

    /// Checks an endpoint request's head before its body is read: the method, the content
    /// type and the declared length. Returns the largest body to read, or the answer.
    #[allow(clippy::result_large_err)]
    pub fn precheck(&self, ep: Endpoint, head: &Parts) -> Result<usize, Response<Bytes>> {
        let profile = &self.inner.profiles[ep.profile];
        let err = |e: OAuthError| Err(profile.error(&e));
        if self.in_maintenance() && ep.kind != EndpointKind::Metadata {
            return err(self.maintenance_error());
        }
        if ep.kind.is_page() {
            // Pages take `GET` (the query) and their own forms' `POST`.
            if head.method == Method::GET || head.method == Method::HEAD {
                return Ok(0);
            }
            if head.method != Method::POST {
                return Err(method_not_allowed(profile, "GET, HEAD, POST"));
            }
        } else if ep.kind == EndpointKind::Metadata {
            if head.method != Method::GET && head.method != Method::HEAD {
                return Err(method_not_allowed(profile, "GET, HEAD"));
            }
            return Ok(0);
        }
        if head.method != Method::POST {
            return Err(method_not_allowed(profile, "POST"));
        }
        let h = &head.headers;
        let lengths = h.get_all(header::CONTENT_LENGTH).iter().count();
        if lengths > 1 || (lengths == 1 && h.contains_key(header::TRANSFER_ENCODING)) {
            return err(OAuthError::invalid_request("ambiguous message framing"));
        }
        let limit = self.inner.config.limits.max_body_bytes;
        if let Some(len) = h.get(header::CONTENT_LENGTH) {
            match len.to_str().ok().and_then(|s| s.parse::<u64>().ok()) {
                Some(n) if n > limit as u64 => {
                    return err(OAuthError::invalid_request("request body too large")
                        .with_status(StatusCode::PAYLOAD_TOO_LARGE))
                }
                Some(_) => {}
                None => return err(OAuthError::invalid_request("bad Content-Length")),
            }
        }
        let form = h
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        Ok(limit)
    }

    /// The answer for a body that exceeded the limit [`Edge::precheck`] returned.
    pub fn body_too_large(&self, ep: Endpoint) -> Response<Bytes> {
        self.endpoint_error(
            ep,
            &OAuthError::invalid_request("request body too large")
                .with_status(StatusCode::PAYLOAD_TOO_LARGE),
        )
    }

    /// An error for an endpoint request, in its profile's dialect (for adapters that refuse
    /// a request before the engine sees it, say when the body does not arrive in time).
    pub fn endpoint_error(&self, ep: Endpoint, e: &OAuthError) -> Response<Bytes> {
        self.inner.profiles[ep.profile].error(e)
    }

    /// Answers an endpoint request whose head passed [`Edge::precheck`].
    pub async fn serve(
        &self,
        ep: Endpoint,
        head: &Parts,
        body: &[u8],
        peer: Option<IpAddr>,
    ) -> Response<Bytes> {
        let profile = &self.inner.profiles[ep.profile];
        let result = match ep.kind {
            EndpointKind::Metadata => Ok(crate::endpoints::metadata(self, profile, head)),
            kind => match Params::parse(head.uri.query(), body) {
                Err(e) if kind.is_page() => Ok(crate::authorize::error_page(&e)),
                Err(e) => Err(e),
                Ok(params) => {
                    let req = crate::endpoints::Request {
                        edge: self,
                        profile,
                        head,
                        params: &params,
                        peer,
                    };
                    match kind {
                        EndpointKind::Token => crate::endpoints::token(req).await,
                        EndpointKind::Revoke => crate::endpoints::revoke(req).await,
                        EndpointKind::Introspect => crate::endpoints::introspect(req).await,
                        EndpointKind::DeviceAuthorization => {
                            crate::endpoints::device_authorization(req).await
                        }
                        EndpointKind::Authorize => Ok(crate::authorize::authorize(req).await),
                        EndpointKind::DeviceVerification => Ok(crate::authorize::device(req).await),
                        EndpointKind::SignOut => Ok(crate::authorize::sign_out(req).await),
                        EndpointKind::Metadata => unreachable!("answered above"),
                    }
                }
            },
        };
        result.unwrap_or_else(|e| profile.error(&e))
    }

    /// Decides whether a passthrough request may go on, and as whom.
    pub async fn admit(&self, route: usize, head: &Parts, peer: Option<IpAddr>) -> Admission {
        if self.in_maintenance() {
            return Admission::Deny(crate::profiles::rfc_error(&self.maintenance_error()));
        }
        crate::admission::admit(self, self.route(route), head, peer).await
    }

    /// [`admit`](Self::admit) when it can answer without waiting: a route that needs nothing,
    /// a request with no or a malformed bearer token, or a bearer token this thread checked
    /// within the last second (the cache's per-thread front), on a route without quotas.
    /// `None` when the answer needs a wait (a cache or store lookup, client authentication, a
    /// quota): then call `admit`. The same answer `admit` gives, without its future.
    pub fn admit_now(&self, route: usize, head: &Parts) -> Option<Admission> {
        if self.in_maintenance() {
            return None;
        }
        crate::admission::admit_now(self, self.route(route), head)
    }

    /// A live token of `kind` from this thread's front, if it is there.
    pub(crate) fn status_now(&self, token: &[u8], kind: TokenKind) -> Option<Arc<CachedToken>> {
        let now_ms = crate::unix_now_ms();
        let t = self.inner.cache.front_by_text(token, now_ms)?;
        usable(&t, Some(kind), now_ms).then_some(t)
    }

    /// Switches maintenance mode: while on, every endpoint but the metadata and every
    /// passthrough route answer 503 `temporarily_unavailable` with `Retry-After`
    /// (`maintenance.retry_after`). Starts as `maintenance.enabled` says.
    pub fn set_maintenance(&self, on: bool) {
        self.inner
            .maintenance
            .store(on, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(on, "maintenance mode");
    }

    /// Whether maintenance mode is on.
    pub fn in_maintenance(&self) -> bool {
        self.inner
            .maintenance
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn maintenance_error(&self) -> OAuthError {
        let secs = self.inner.config.maintenance.retry_after.as_secs();
        OAuthError::new(
            crate::error::ErrorCode::TemporarilyUnavailable,
            "the service is undergoing maintenance",
        )
        .with_retry_after(u32::try_from(secs).unwrap_or(u32::MAX).max(1))
    }

    /// What to change in an admitted request's head before it goes upstream: remove client
    /// secrets, the bearer token (unless the route forwards it) and every incoming copy of the
    /// identity headers, then set the edge's own. Adapters whose header maps are not
    /// `http::HeaderMap` apply the plan with their own API.
    pub fn forwarding(
        &self,
        route: usize,
        identity: Option<&crate::admission::Identity>,
        head: &Parts,
    ) -> crate::admission::Forwarding {
        crate::admission::forwarding(
            &self.inner.routes,
            self.route(route),
            identity,
            &head.headers,
            &head.uri,
        )
    }

    /// Applies [`Edge::forwarding`] to `head`.
    pub fn forward(
        &self,
        route: usize,
        identity: Option<&crate::admission::Identity>,
        head: &mut Parts,
    ) {
        self.forwarding(route, identity, head).apply(
            self.identity_headers(),
            &mut head.headers,
            &mut head.uri,
        )
    }

    /// The identity headers' names (lower case, as configured): the client id, the user, the
    /// scopes, the order of [`Forwarding::identity`](crate::Forwarding::identity).
    pub fn identity_headers(&self) -> &[http::HeaderName; 3] {
        self.inner.routes.identity()
    }

    /// Authenticates the client of an endpoint or passthrough request.
    pub(crate) async fn authenticate_client(
        &self,
        head: &Parts,
        params: &Params,
        allowed: &[AuthMethod],
        query: bool,
        peer: Option<IpAddr>,
    ) -> Result<Authenticated, OAuthError> {
        let result = self
            .authenticate_inner(head, params, allowed, query, peer)
            .await;
        if let Err(e) = &result {
            self.inner
                .metrics
                .auth_failed(crate::metrics::AuthFailure::of(e));
        }
        result
    }

    async fn authenticate_inner(
        &self,
        head: &Parts,
        params: &Params,
        allowed: &[AuthMethod],
        query: bool,
        peer: Option<IpAddr>,
    ) -> Result<Authenticated, OAuthError> {
        let presented = credentials::extract(&head.headers, params, Places { query })?;
        let Presented::Bearer { token, id } = &presented else {
            return self
                .inner
                .clients
                .authenticate(&presented, allowed, peer)
                .await;
        };
        let fail = || {
            OAuthError::invalid_client("client authentication failed")
                .with_challenge(Some(Challenge::Bearer))
        };
        if !allowed.contains(&AuthMethod::ClientCredentialsBearer) {
            return Err(fail());
        }
        let t = self
            .token_status(token.expose())
            .await?
            .filter(|t| t.kind == TokenKind::Access && t.client_credentials)
            .ok_or_else(fail)?;
        if id.as_deref().is_some_and(|id| id != &*t.client_id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the authenticated client",
            ));
        }
        let client = self
            .inner
            .clients
            .get(&t.client_id)
            .await?
            .filter(|c| c.allows_method(AuthMethod::ClientCredentialsBearer))
            .ok_or_else(fail)?;
        Ok(Authenticated {
            client,
            method: AuthMethod::ClientCredentialsBearer,
        })
    }

    /// The live status of a presented token string: `Ok(None)` when it is forged, unknown,
    /// expired or revoked. Forged strings never reach the cache or the store.
    pub async fn token_status(&self, token: &str) -> Result<Option<Arc<CachedToken>>, StoreError> {
        self.status_of(token.as_bytes(), None).await
    }

    /// The live status of the token whose text is `token`, if it is of `kind` (any kind for
    /// `None`). A string this thread checked within the last second comes from the cache's
    /// per-thread front without a second MAC check; anything else is MAC-checked first, so a
    /// forged token never reaches the cache or the store.
    pub(crate) async fn status_of(
        &self,
        token: &[u8],
        kind: Option<TokenKind>,
    ) -> Result<Option<Arc<CachedToken>>, StoreError> {
        let (codec, store) = (&self.inner.codec, &self.inner.store);
        let verify = |t: &[u8]| match codec.verify_bytes(t) {
            Ok((k, hash)) if kind.is_none_or(|want| want == k) => Some(hash),
            _ => None,
        };
        let now_ms = crate::unix_now_ms();
        let t = self
            .inner
            .cache
            .get_by_text(token, now_ms, verify, |hash| async move {
                store.find(&hash).await
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // The kind again: `verify` refused other kinds before any lookup (no store read for
        // them), but a front hit, filed by a lookup of any kind, skips `verify`.
        Ok(t.filter(|t| usable(t, kind, now_ms)))
    }

    /// Revokes a family durably, then drops it from this instance's cache.
    pub async fn revoke_family(
        &self,
        family: FamilyId,
        hash: Option<TokenHash>,
    ) -> Result<(), StoreError> {
        self.inner
            .store
            .revoke_family(&family, crate::unix_now())
            .await?;
        self.inner.cache.revoke_family(family, hash).await;
        self.inner.metrics.revoked(1);
        tracing::info!(%family, "token family revoked");
        Ok(())
    }

    /// The operations on the clients kept in the store: create, rotate a secret, remove,
    /// list, show ([`crate::clients::admin`]).
    pub fn client_admin(&self) -> crate::clients::ClientAdmin<'_> {
        crate::clients::ClientAdmin::new(self)
    }

    /// Revokes every token of a client, or of a user, durably. Returns how many grant
    /// families were revoked.
    pub async fn revoke_all(
        &self,
        client_id: Option<&str>,
        user: Option<&str>,
    ) -> Result<usize, StoreError> {
        let families = self
            .inner
            .store
            .revoke_all(client_id, user, crate::unix_now())
            .await?;
        for f in &families {
            self.inner.cache.revoke_family(*f, None).await;
        }
        self.inner.metrics.revoked(families.len() as u64);
        Ok(families.len())
    }
}

/// Whether a cached token is live (not revoked, not expired at `now_ms`) and of `kind` (any
/// kind for `None`).
fn usable(t: &CachedToken, kind: Option<TokenKind>, now_ms: i64) -> bool {
    let now = now_ms.div_euclid(1000);
    !t.revoked && t.expires_at.is_none_or(|e| now < e) && kind.is_none_or(|want| want == t.kind)
}

fn host(head: &Parts) -> Option<&str> {
    head.uri
        .host()
        .or_else(|| head.headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .map(|h| crate::target::split_port(h).map_or(h, |(name, _)| name))
}

fn method_not_allowed(profile: &Profile, allow: &'static str) -> Response<Bytes> {
    let mut r = profile.error(
        &OAuthError::invalid_request("method not allowed")
            .with_status(StatusCode::METHOD_NOT_ALLOWED),
    );
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    r
}
