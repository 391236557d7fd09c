//! [`Core`]: the engine's parts and what it does with them, below [`Edge`](crate::Edge).
//!
//! The grants, endpoints, admission and the authorization pages are given a `&Core`; only the
//! adapters and [`Edge`](crate::Edge), which owns one behind an `Arc` and derefs to it, sit
//! above. So nothing here or below imports `edge.rs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{header, Method, Response, StatusCode};

use crate::admission::{Admission, Route, RouteTable};
use crate::cache::{CachedToken, TokenCache};
use crate::clients::{Authenticated, ClientRegistry};
use crate::config::{AuthMethod, Config};
use crate::credentials::{self, Places, Presented};
use crate::error::{Challenge, OAuthError};
use crate::grants::ExtensionGrant;
use crate::params::Params;
use crate::profiles::{EndpointKind, Profile};
use crate::store::{Store, StoreError};
use crate::tokens::{FamilyId, TokenCodec, TokenHash, TokenKind};
use crate::users::UserDirectory;

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

/// The engine's parts: the config, the codec, the store, the caches, the registries, the
/// counters. Reached through [`Edge`](crate::Edge), which derefs to it.
pub struct Core {
    /// What "now" is ([`crate::clock`]).
    pub(crate) clock: Arc<dyn crate::clock::Clock>,
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

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("profiles", &self.profiles)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// Seconds since the Unix epoch, by the engine's clock.
    pub fn now(&self) -> crate::store::UnixTime {
        self.clock.now()
    }

    /// Milliseconds since the Unix epoch, by the engine's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The token codec (mint and verify).
    pub fn codec(&self) -> &TokenCodec {
        &self.codec
    }

    /// The token-status cache.
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// The client registry.
    pub fn clients(&self) -> &ClientRegistry {
        &self.clients
    }

    /// The engine's counters.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// Every passthrough route, in match order; the last is the default route. Indexes are
    /// those [`Core::classify`](crate::engine::Core::classify) returns.
    pub fn routes(&self) -> &[Route] {
        self.routes.routes()
    }

    /// The passthrough route at `index`, as returned by [`Core::classify`](crate::engine::Core::classify).
    pub fn route(&self, index: usize) -> &Route {
        self.routes.get(index)
    }

    /// Checks the request's path and host and says how to put them in the canonical form
    /// ([`crate::target`]) that [`Core::classify`](crate::engine::Core::classify) matches on and the upstream must receive.
    /// An ambiguous target (an escaped `/`, a `;` in a segment, a `..` above the root, a bad
    /// host or port) is answered 400 `invalid_request`. Adapters call this first and apply
    /// the change to the request before anything else reads it.
    #[allow(clippy::result_large_err)]
    pub fn canonical(&self, head: &Parts) -> Result<crate::target::Canonical, Response<Bytes>> {
        crate::target::canonical(head).map_err(|e| {
            self.metrics
                .auth_failed(crate::metrics::AuthFailure::BadTarget);
            crate::profiles::rfc_error(&OAuthError::invalid_request(e.describe()))
        })
    }

    /// Decides where a request goes, from its head alone. The head must be canonical
    /// (see [`Core::canonical`](crate::engine::Core::canonical)): routes are matched on the path as it is.
    pub fn classify(&self, head: &Parts) -> Target {
        let path = head.uri.path();
        if path == "/.well-known/oauth-authorization-server" && !self.profiles.is_empty() {
            // Metadata describes the whole edge; it is rendered in the first profile's dialect.
            return Target::Endpoint(Endpoint {
                kind: EndpointKind::Metadata,
                profile: 0,
            });
        }
        for (i, p) in self.profiles.iter().enumerate() {
            if let Some(kind) = p.endpoint(path) {
                return Target::Endpoint(Endpoint { kind, profile: i });
            }
        }
        Target::Passthrough(self.routes.find(|| host(head), path))
    }

    /// Checks an endpoint request's head before its body is read: the method, the content
    /// type and the declared length. Returns the largest body to read, or the answer.
    #[allow(clippy::result_large_err)]
    pub fn precheck(&self, ep: Endpoint, head: &Parts) -> Result<usize, Response<Bytes>> {
        let profile = &self.profiles[ep.profile];
        let err = |e: OAuthError| Err(profile.error(ep.kind, &e));
        if self.in_maintenance() && ep.kind != EndpointKind::Metadata {
            return err(self.maintenance_error());
        }
        if ep.kind.is_page() {
            // Pages take `GET` (the query) and their own forms' `POST`.
            if head.method == Method::GET || head.method == Method::HEAD {
                return Ok(0);
            }
            if head.method != Method::POST {
                return Err(method_not_allowed(profile, ep.kind, "GET, HEAD, POST"));
            }
        } else if ep.kind == EndpointKind::Metadata {
            if head.method != Method::GET && head.method != Method::HEAD {
                return Err(method_not_allowed(profile, ep.kind, "GET, HEAD"));
            }
            return Ok(0);
        }
        if head.method != Method::POST {
            return Err(method_not_allowed(profile, ep.kind, "POST"));
        }
        let h = &head.headers;
        let lengths = h.get_all(header::CONTENT_LENGTH).iter().count();
        if lengths > 1 || (lengths == 1 && h.contains_key(header::TRANSFER_ENCODING)) {
            return err(OAuthError::invalid_request("ambiguous message framing"));
        }
        let limit = self.config.limits.max_body_bytes;
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

    /// The answer for a body that exceeded the limit [`Core::precheck`](crate::engine::Core::precheck) returned.
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
        self.profiles[ep.profile].error(ep.kind, e)
    }

    /// Answers an endpoint request whose head passed [`Core::precheck`](crate::engine::Core::precheck).
    pub async fn serve(
        &self,
        ep: Endpoint,
        head: &Parts,
        body: &[u8],
        peer: Option<IpAddr>,
    ) -> Response<Bytes> {
        let profile = &self.profiles[ep.profile];
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
        result.unwrap_or_else(|e| profile.error(ep.kind, &e))
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
        let now_ms = self.now_ms();
        let t = self.cache.front_by_text(token, now_ms)?;
        usable(&t, Some(kind), now_ms).then_some(t)
    }

    /// Switches maintenance mode: while on, every endpoint but the metadata and every
    /// passthrough route answer 503 `temporarily_unavailable` with `Retry-After`
    /// (`maintenance.retry_after`). Starts as `maintenance.enabled` says.
    pub fn set_maintenance(&self, on: bool) {
        self.maintenance
            .store(on, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!(on, "maintenance mode");
    }

    /// Whether maintenance mode is on.
    pub fn in_maintenance(&self) -> bool {
        self.maintenance.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn maintenance_error(&self) -> OAuthError {
        let secs = self.config.maintenance.retry_after.as_secs();
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
            &self.routes,
            self.route(route),
            identity,
            &head.headers,
            &head.uri,
        )
    }

    /// Applies [`Core::forwarding`](crate::engine::Core::forwarding) to `head`.
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
        self.routes.identity()
    }

    /// Authenticates the client of an endpoint or passthrough request; a failure is counted
    /// under its reason.
    pub(crate) async fn authenticate_client(
        &self,
        head: &Parts,
        params: &Params,
        allowed: &[AuthMethod],
        query: bool,
        peer: Option<IpAddr>,
    ) -> Result<Authenticated, OAuthError> {
        let result = match credentials::extract(&head.headers, params, Places { query }) {
            Err(e) => Err(e),
            Ok(Presented::Bearer { token, id }) => {
                self.authenticate_bearer(token.expose(), id.as_deref(), allowed)
                    .await
            }
            Ok(presented) => self.clients.authenticate(&presented, allowed, peer).await,
        };
        if let Err(e) = &result {
            self.metrics.auth_failed(crate::metrics::AuthFailure::of(e));
        }
        result
    }

    /// A client authenticated by one of its `client_credentials` access tokens (NPR's revoke),
    /// with `id` the `client_id` sent beside it, if any.
    async fn authenticate_bearer(
        &self,
        token: &str,
        id: Option<&str>,
        allowed: &[AuthMethod],
    ) -> Result<Authenticated, OAuthError> {
        let fail = || {
            OAuthError::invalid_client("client authentication failed")
                .with_challenge(Some(Challenge::Bearer))
        };
        if !allowed.contains(&AuthMethod::ClientCredentialsBearer) {
            return Err(fail());
        }
        let t = self
            .token_status(token)
            .await?
            .filter(|t| t.kind == TokenKind::Access && t.client_credentials)
            .ok_or_else(fail)?;
        if id.is_some_and(|id| id != &*t.client_id) {
            return Err(OAuthError::invalid_request(
                "client_id does not match the authenticated client",
            ));
        }
        let client = self
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
        let (codec, store) = (&self.codec, &self.store);
        let verify = |t: &[u8]| match codec.verify_bytes(t) {
            Ok((k, hash)) if kind.is_none_or(|want| want == k) => Some(hash),
            _ => None,
        };
        let now_ms = self.now_ms();
        let t = self
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
        self.store.revoke_family(&family, self.now()).await?;
        self.cache.revoke_family(family, hash).await;
        self.metrics.revoked(1);
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
        let families = self.store.revoke_all(client_id, user, self.now()).await?;
        for f in &families {
            self.cache.revoke_family(*f, None).await;
        }
        self.metrics.revoked(families.len() as u64);
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

fn method_not_allowed(
    profile: &Profile,
    kind: EndpointKind,
    allow: &'static str,
) -> Response<Bytes> {
    let mut r = profile.error(
        kind,
        &OAuthError::invalid_request("method not allowed")
            .with_status(StatusCode::METHOD_NOT_ALLOWED),
    );
    r.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    r
}
