//! The passthrough decision: match the route, check the bearer token or the client
//! credentials and the scopes, and produce the caller's [`Identity`].
//!
//! Failures are RFC 6750 answers: 401 with `WWW-Authenticate: Bearer` (and no error code when
//! no credentials were sent), 403 `insufficient_scope`, 400 `invalid_request`, and 503 when
//! the store cannot be asked about an uncached token. Forged tokens are refused in CPU.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode, Uri};

use crate::cache::CachedToken;
use crate::config::{AuthMethod, Config, Require};
use crate::credentials::IBM_CLIENT_SECRET;
use crate::engine::Core;
use crate::error::OAuthError;
use crate::metrics::AuthFailure;
use crate::params::Params;
use crate::scope::Scopes;

/// Who the caller is, as handed to the upstream and put in request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The client.
    pub client_id: Arc<str>,
    /// The resource owner, when the token has one.
    pub user: Option<Arc<str>>,
    /// The scopes the caller holds.
    pub scopes: Scopes,
    /// How the caller proved it.
    pub via: Via,
    /// Where the caller's client stands in its quota, when it has one (the adapters add
    /// this as `X-RateLimit-*` headers to the upstream's answer).
    pub rate: Option<crate::quota::RateStatus>,
}

/// How an [`Identity`] was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A bearer access token.
    Bearer,
    /// Client credentials.
    Client(AuthMethod),
}

/// The outcome of admission.
#[derive(Debug)]
pub enum Admission {
    /// Go on; `None` on routes that require nothing.
    Allow(Option<Identity>),
    /// Answer with this response instead.
    Deny(Response<Bytes>),
}

/// A passthrough route, checked and ready.
#[derive(Debug, Clone)]
pub struct Route {
    /// Path prefix.
    pub path: String,
    /// Host, when the route is bound to one.
    pub host: Option<String>,
    /// What the route requires.
    pub require: Require,
    /// Scopes required.
    pub scopes: Scopes,
    /// Whether the bearer token goes on to the upstream.
    pub forward_bearer: bool,
    /// The gateway's upstream name.
    pub upstream: Option<String>,
}

/// The routes, most specific first, and the default for requests that match none.
#[derive(Debug)]
pub struct RouteTable {
    routes: Vec<Route>,
    identity: [HeaderName; 3],
}

impl RouteTable {
    pub(crate) fn new(config: &Config) -> Self {
        let mut routes: Vec<Route> = config
            .routes
            .iter()
            .map(|r| Route {
                path: r.path.trim_end_matches('/').to_string(),
                host: r.host.as_ref().map(|h| match crate::target::host(h) {
                    Ok(c) => c.into_owned(),
                    // Validated at load; a config built by hand keeps its spelling.
                    Err(_) => h.to_ascii_lowercase(),
                }),
                require: r.require,
                scopes: Scopes::from_iter(&r.scopes),
                forward_bearer: r.forward_bearer,
                upstream: r.upstream.clone(),
            })
            .collect();
        // Host-bound routes first, then longer prefixes: the first match is the best one.
        routes.sort_by(|a, b| {
            b.host
                .is_some()
                .cmp(&a.host.is_some())
                .then(b.path.len().cmp(&a.path.len()))
        });
        routes.push(Route {
            path: String::new(),
            host: None,
            require: config.passthrough.default_require,
            scopes: Scopes::default(),
            forward_bearer: false,
            upstream: None,
        });
        let h = &config.passthrough.identity_headers;
        let name = |s: &str| HeaderName::from_bytes(s.to_ascii_lowercase().as_bytes());
        let identity = [
            name(&h.client_id).expect("validated header name"),
            name(&h.user).expect("validated header name"),
            name(&h.scope).expect("validated header name"),
        ];
        RouteTable { routes, identity }
    }

    /// The index of the best route for `host` and `path`; the default route when none
    /// matches.
    pub(crate) fn find<'h>(&self, host: impl Fn() -> Option<&'h str>, path: &str) -> usize {
        // The host is looked up only if a route names one: most tables have none.
        let mut got: Option<Option<&str>> = None;
        self.routes
            .iter()
            .position(|r| {
                let host_ok = match &r.host {
                    None => true,
                    Some(want) => (*got.get_or_insert_with(&host))
                        .is_some_and(|got| want.eq_ignore_ascii_case(got)),
                };
                host_ok
                    && path.starts_with(r.path.as_str())
                    && matches!(path.as_bytes().get(r.path.len()), None | Some(b'/'))
            })
            .unwrap_or(self.routes.len() - 1)
    }

    /// The identity headers' names: the client id, the user, the scopes.
    pub(crate) fn identity(&self) -> &[HeaderName; 3] {
        &self.identity
    }

    pub(crate) fn get(&self, i: usize) -> &Route {
        &self.routes[i.min(self.routes.len() - 1)]
    }

    /// Every route, default last.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

pub(crate) async fn admit(
    edge: &Core,
    route: &Route,
    head: &http::request::Parts,
    peer: Option<IpAddr>,
) -> Admission {
    let result = match route.require {
        Require::None => return Admission::Allow(None),
        Require::Bearer => bearer(edge, route, &head.headers).await,
        // Boxed, as below: client authentication's future is large, and inline it would be
        // set up for every bearer request too.
        Require::Client => Box::pin(client(edge, route, head, peer)).await,
        Require::Either => {
            let has_bearer = head.headers.get(header::AUTHORIZATION).is_some_and(|v| {
                v.as_bytes()
                    .get(..7)
                    .is_some_and(|s| s.eq_ignore_ascii_case(b"bearer "))
            });
            if has_bearer {
                // The route takes client credentials too: its 401 names Basic beside Bearer.
                bearer(edge, route, &head.headers)
                    .await
                    .map_err(|(reason, mut r)| {
                        if r.status() == StatusCode::UNAUTHORIZED {
                            crate::profiles::basic_challenge_first(&mut r);
                        }
                        (reason, r)
                    })
            } else {
                Box::pin(client(edge, route, head, peer)).await
            }
        }
    };
    match result {
        Ok(mut identity) => {
            if edge.any_quota {
                match quota(edge, &identity).await {
                    Ok(rate) => identity.rate = rate,
                    Err(resp) => {
                        edge.metrics().auth_failed(AuthFailure::Throttled);
                        return Admission::Deny(resp);
                    }
                }
            }
            Admission::Allow(Some(identity))
        }
        Err(refusal) => refused(edge, refusal),
    }
}

/// The bearer token of the request, found without allocating. `Ok(None)` when there is no
/// Authorization header or it is not Bearer; `Err` when it is empty or repeated. Its
/// characters are not checked here: see [`well_formed`].
fn bearer_value(headers: &HeaderMap) -> Result<Option<&[u8]>, ()> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    let b = v.as_bytes();
    if b.len() < 7 || !b[..7].eq_ignore_ascii_case(b"bearer ") {
        return Ok(None);
    }
    let mut token = &b[7..];
    while let [b' ', rest @ ..] = token {
        token = rest;
    }
    while let [rest @ .., b' '] = token {
        token = rest;
    }
    if token.is_empty() {
        return Err(());
    }
    Ok(Some(token))
}

/// True when a bearer token has no inner space and no byte beyond ASCII. Asked only of a token
/// that was refused: one that was admitted matched a minted token, which is well formed.
fn well_formed(token: &[u8]) -> bool {
    !token.iter().any(|&c| c == b' ' || !c.is_ascii())
}

/// A refusal, with the reason to count when it was not counted already.
type Refusal = (Option<AuthFailure>, Response<Bytes>);

async fn bearer(edge: &Core, route: &Route, headers: &HeaderMap) -> Result<Identity, Refusal> {
    let malformed = || {
        (
            Some(AuthFailure::Malformed),
            bearer_error(BearerRefusal::Malformed),
        )
    };
    let token = match bearer_value(headers) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err((
                Some(AuthFailure::Missing),
                bearer_error(BearerRefusal::Missing),
            ))
        }
        Err(()) => return Err(malformed()),
    };
    // A malformed token fails the MAC check like any other unknown string (never reaching the
    // cache or the store), and is told apart only then: the check is not paid by every request.
    let t = match edge
        .status_of(token, Some(crate::tokens::TokenKind::Access))
        .await
    {
        Ok(Some(t)) => t,
        Ok(None) if !well_formed(token) => return Err(malformed()),
        Ok(None) => return Err((Some(AuthFailure::InvalidToken), invalid_token())),
        Err(e) => {
            tracing::error!(error = %e, "store unavailable during admission");
            return Err((Some(AuthFailure::StoreUnavailable), unavailable()));
        }
    };
    bearer_identity(route, &t)
}

/// The identity a live access token gives on `route`, if its scopes cover the route's.
#[allow(clippy::result_large_err)] // the refusal is the response itself, made once
fn bearer_identity(route: &Route, t: &CachedToken) -> Result<Identity, Refusal> {
    if !route.scopes.is_subset(&t.scopes) {
        return Err((
            Some(AuthFailure::InsufficientScope),
            bearer_error(BearerRefusal::InsufficientScope(&route.scopes)),
        ));
    }
    Ok(Identity {
        client_id: t.client_id.clone(),
        user: t.user.clone(),
        scopes: t.scopes.clone(),
        via: Via::Bearer,
        rate: None,
    })
}

/// A refusal as an answer, counted by its reason.
fn refused(edge: &Core, (reason, resp): Refusal) -> Admission {
    if let Some(r) = reason {
        edge.metrics().auth_failed(r);
    }
    Admission::Deny(resp)
}

/// [`admit`] for what needs no wait (see [`Core::admit_now`](crate::engine::Core::admit_now)); `None` for the rest.
pub(crate) fn admit_now(
    edge: &Core,
    route: &Route,
    head: &http::request::Parts,
) -> Option<Admission> {
    match route.require {
        Require::None => return Some(Admission::Allow(None)),
        Require::Bearer if !edge.any_quota => {}
        _ => return None,
    }
    let token = match bearer_value(&head.headers) {
        Ok(Some(t)) => t,
        // Refusals that read nothing: the async path would give the same at once.
        Ok(None) | Err(()) => return None,
    };
    let t = edge.status_now(token, crate::tokens::TokenKind::Access)?;
    Some(match bearer_identity(route, &t) {
        Ok(identity) => Admission::Allow(Some(identity)),
        Err(refusal) => refused(edge, refusal),
    })
}

/// Counts the request against its client's quota, if the client has one.
async fn quota(
    edge: &Core,
    identity: &Identity,
) -> Result<Option<crate::quota::RateStatus>, Response<Bytes>> {
    let Ok(Some(client)) = edge.clients().get(&identity.client_id).await else {
        return Ok(None);
    };
    let Some(q) = &client.rate_limit else {
        return Ok(None);
    };
    let now_ms = edge.now_ms();
    match edge.quotas.hit(&client.id, q, now_ms) {
        Ok(status) => Ok(Some(status)),
        Err(status) => Err(status.too_many()),
    }
}

/// The answer to a forged, unknown, expired or revoked token, from static parts: a flood of
/// forged tokens should cost as little as possible.
fn invalid_token() -> Response<Bytes> {
    let mut r = crate::endpoints::json(
        StatusCode::UNAUTHORIZED,
        Bytes::from_static(
            br#"{"error":"invalid_token","error_description":"the access token is invalid"}"#,
        ),
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"oauth-edge\", error=\"invalid_token\", error_description=\"the access token is invalid\"",
        ),
    );
    r
}

/// What a client route (and an `either` route without a Bearer token) takes: Basic, the
/// X-IBM pair as headers or query parameters, a `client_credentials` token, a public client's
/// id alone.
const CLIENT_METHODS: [AuthMethod; 4] = [
    AuthMethod::ClientSecretBasic,
    AuthMethod::ClientSecretHeader,
    AuthMethod::ClientCredentialsBearer,
    AuthMethod::None,
];

async fn client(
    edge: &Core,
    route: &Route,
    head: &http::request::Parts,
    peer: Option<IpAddr>,
) -> Result<Identity, Refusal> {
    // Passthrough bodies are never read: only the query and headers can carry credentials.
    let params = Params::parse(head.uri.query(), b"")
        .map_err(|e| (Some(AuthFailure::Malformed), crate::profiles::rfc_error(&e)))?;
    let auth = edge
        .authenticate_client(head, &params, &CLIENT_METHODS, true, peer)
        .await
        .map_err(|e| {
            let mut r = crate::profiles::rfc_error(&e);
            crate::profiles::settle_challenges(&mut r, &CLIENT_METHODS, &e);
            // Counted by authenticate_client.
            (None, r)
        })?;
    if !route.scopes.is_subset(&auth.client.scopes) {
        return Err((
            Some(AuthFailure::InsufficientScope),
            crate::profiles::rfc_error(
                &OAuthError::invalid_scope("the client lacks a required scope")
                    .with_status(StatusCode::FORBIDDEN),
            ),
        ));
    }
    Ok(Identity {
        client_id: auth.client.id.clone(),
        user: None,
        scopes: auth.client.scopes.clone(),
        via: Via::Client(auth.method),
        rate: None,
    })
}

/// Why a bearer route refused a request, other than a bad token (see [`invalid_token`]).
enum BearerRefusal<'a> {
    /// No bearer credentials: RFC 6750 3.1 says no error code then.
    Missing,
    /// A repeated or malformed Authorization header.
    Malformed,
    /// A valid token without these scopes.
    InsufficientScope(&'a Scopes),
}

/// An RFC 6750 3 answer: the status, `WWW-Authenticate: Bearer` and a small JSON body.
fn bearer_error(refusal: BearerRefusal<'_>) -> Response<Bytes> {
    let (status, code, desc, scope) = match refusal {
        BearerRefusal::Missing => (
            StatusCode::UNAUTHORIZED,
            None,
            "an access token is required",
            None,
        ),
        BearerRefusal::Malformed => (
            StatusCode::BAD_REQUEST,
            Some("invalid_request"),
            "malformed Authorization header",
            None,
        ),
        BearerRefusal::InsufficientScope(s) => (
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "the access token lacks a required scope",
            Some(s),
        ),
    };
    let mut challenge = String::from("Bearer realm=\"oauth-edge\"");
    if let Some(c) = code {
        challenge.push_str(&format!(", error=\"{c}\", error_description=\"{desc}\""));
    }
    if let Some(s) = scope {
        challenge.push_str(&format!(", scope=\"{s}\""));
    }
    let body = serde_json::json!({
        "error": code.unwrap_or("unauthorized"),
        "error_description": desc,
    });
    let mut r = crate::endpoints::json(status, Bytes::from(body.to_string()));
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

fn unavailable() -> Response<Bytes> {
    crate::profiles::rfc_error(&OAuthError::unavailable())
}

/// True when `name` is `target` written with `_` for `-` (names are already lower case).
fn same_header(name: &str, target: &str) -> bool {
    name.len() == target.len()
        && name
            .bytes()
            .zip(target.bytes())
            .all(|(a, b)| a == b || (a == b'_' && b == b'-'))
}

/// What to change in an admitted request before it goes upstream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Forwarding {
    /// Whether to remove `Authorization` (Basic credentials, or a bearer token the route does
    /// not forward): the common case, kept out of `remove` so that it allocates nothing.
    pub remove_authorization: bool,
    /// Other headers to remove, every value of each: incoming copies of the identity headers
    /// and the client-secret header.
    pub remove: Vec<HeaderName>,
    /// The identity headers to set, replacing whatever is there, in the order of
    /// [`Core::identity_headers`](crate::engine::Core::identity_headers): the client id, the user, the
    /// scopes. `None` where there is nothing to set.
    pub identity: [Option<HeaderValue>; 3],
    /// The new request URI, when the query carried a client secret.
    pub uri: Option<Uri>,
}

impl Forwarding {
    /// Every header the plan removes: `Authorization` when `remove_authorization`, then
    /// `remove`.
    pub fn removals(&self) -> impl Iterator<Item = &HeaderName> {
        static AUTHORIZATION: HeaderName = header::AUTHORIZATION;
        self.remove_authorization
            .then_some(&AUTHORIZATION)
            .into_iter()
            .chain(&self.remove)
    }

    /// Applies the plan to an `http` header map and URI; `names` are
    /// [`Core::identity_headers`](crate::engine::Core::identity_headers).
    pub fn apply(self, names: &[HeaderName; 3], headers: &mut HeaderMap, uri: &mut Uri) {
        for name in self.removals() {
            headers.remove(name);
        }
        headers.reserve(self.identity.iter().flatten().count());
        for (name, value) in names.iter().zip(self.identity) {
            if let Some(v) = value {
                headers.insert(name.clone(), v);
            }
        }
        if let Some(u) = self.uri {
            *uri = u;
        }
    }
}

pub(crate) fn forwarding(
    table: &RouteTable,
    route: &Route,
    identity: Option<&Identity>,
    headers: &HeaderMap,
    uri: &Uri,
) -> Forwarding {
    let mut plan = Forwarding::default();
    // Every incoming copy of an identity header goes, and the client-secret header, whatever
    // their spelling (`_` for `-`, any case): an upstream may read them as the real ones.
    for k in headers.keys() {
        let name = k.as_str();
        if same_header(name, IBM_CLIENT_SECRET)
            || table.identity.iter().any(|t| same_header(name, t.as_str()))
        {
            plan.remove.push(k.clone());
        }
    }
    // Client secrets never reach the upstream; the bearer token only where the route says.
    let drop_auth = headers.get(header::AUTHORIZATION).is_some_and(|v| {
        let b = v.as_bytes();
        let is = |s: &[u8]| b.len() > s.len() && b[..s.len()].eq_ignore_ascii_case(s);
        is(b"basic ") || (is(b"bearer ") && !route.forward_bearer)
    });
    plan.remove_authorization = drop_auth;
    plan.uri = without_query_secret(uri);
    if let Some(id) = identity {
        plan.identity = values::of(id);
    }
    plan
}

/// Identity header values, made once per token per thread. An [`Identity`]'s strings are its
/// cached token's, so the same `Arc`s come back request after request: each thread keeps the
/// values it made for the last few, keyed by the `Arc`s themselves, which the entry holds so
/// that no other string can take their addresses meanwhile.
mod values {
    use std::cell::RefCell;
    use std::sync::Arc;

    use http::HeaderValue;

    use super::Identity;

    const SLOTS: usize = 64;

    struct Slot {
        client: Arc<str>,
        user: Option<Arc<str>>,
        scopes: Arc<str>,
        values: [Option<HeaderValue>; 3],
    }

    thread_local! {
        static MADE: RefCell<[Option<Slot>; SLOTS]> =
            const { RefCell::new([const { None }; SLOTS]) };
    }

    /// The client id, user and scopes of `id` as header values, each `None` when absent or
    /// when it cannot be one.
    pub(super) fn of(id: &Identity) -> [Option<HeaderValue>; 3] {
        let (client, user, scopes) = (&id.client_id, id.user.as_ref(), id.scopes.shared());
        let same_user = |u: &Option<Arc<str>>| match (u, user) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        // Heap addresses are 16-byte aligned: the bits above those pick the slot.
        let i = (Arc::as_ptr(client).cast::<u8>() as usize >> 4) % SLOTS;
        MADE.with(|made| {
            let Ok(mut made) = made.try_borrow_mut() else {
                return make(id);
            };
            if let Some(s) = &made[i] {
                if Arc::ptr_eq(&s.client, client)
                    && Arc::ptr_eq(&s.scopes, scopes)
                    && same_user(&s.user)
                {
                    // Element by element: the array's own `clone` is a loop through an
                    // iterator, several times the cost.
                    let [c, u, sc] = &s.values;
                    return [c.clone(), u.clone(), sc.clone()];
                }
            }
            let values = make(id);
            made[i] = Some(Slot {
                client: client.clone(),
                user: user.cloned(),
                scopes: scopes.clone(),
                values: values.clone(),
            });
            values
        })
    }

    fn make(id: &Identity) -> [Option<HeaderValue>; 3] {
        let value = |s: &str| HeaderValue::from_str(s).ok();
        [
            value(&id.client_id),
            id.user.as_deref().and_then(value),
            value(id.scopes.as_str()),
        ]
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn values_are_made_once_per_identity_and_never_given_for_another() {
            let id = |client: &str, user: Option<&str>, scopes: &str| Identity {
                client_id: client.into(),
                user: user.map(Into::into),
                scopes: crate::scope::Scopes::parse(scopes).unwrap(),
                via: super::super::Via::Bearer,
                rate: None,
            };
            let text = |v: &[Option<HeaderValue>; 3]| {
                v.clone()
                    .map(|v| v.map(|v| v.to_str().unwrap().to_string()))
            };
            let a = id("client-a", Some("alice"), "read write");
            let first = of(&a);
            assert_eq!(
                text(&first),
                [
                    Some("client-a".into()),
                    Some("alice".into()),
                    Some("read write".into())
                ]
            );
            // The same identity again: the same bytes, shared rather than copied.
            let again = of(&a);
            assert_eq!(again, first);
            assert_eq!(
                again[0].as_ref().unwrap().as_bytes().as_ptr(),
                of(&a)[0].as_ref().unwrap().as_bytes().as_ptr()
            );
            // A clone shares the strings and the values; equal text elsewhere is made anew.
            assert_eq!(of(&a.clone()), first);
            let twin = id("client-a", Some("alice"), "read write");
            let made = of(&twin);
            assert_eq!(made, first);
            assert_ne!(
                made[0].as_ref().unwrap().as_bytes().as_ptr(),
                first[0].as_ref().unwrap().as_bytes().as_ptr()
            );
            // Many others, some sharing a slot, with and without users: each gets its own.
            for i in 0..500 {
                let user = format!("user-{i}");
                let b = id(
                    &format!("client-{i}"),
                    (i % 2 == 0).then_some(&*user),
                    "read",
                );
                let v = text(&of(&b));
                assert_eq!(v[0].as_deref(), Some(&*b.client_id));
                assert_eq!(v[1].as_deref(), b.user.as_deref());
                assert_eq!(v[2].as_deref(), Some("read"));
                // Same client and scopes strings, another user: not the first one's values.
                let mut c = b.clone();
                c.user = Some(Arc::from("someone-else"));
                assert_eq!(text(&of(&c))[1].as_deref(), Some("someone-else"));
            }
            assert_eq!(of(&a), first);
            assert_eq!(of(&id("bad\nvalue", None, ""))[0], None);
        }
    }
}

/// The URI without its client secret query parameters (`client_secret`, and
/// `X-IBM-Client-Secret` in any case, as its header is removed), the rest kept byte for byte;
/// `None` when there is none to remove.
fn without_query_secret(uri: &Uri) -> Option<Uri> {
    let q = uri.query()?;
    let secret_name =
        |n: &str| n == "client_secret" || same_header(&n.to_ascii_lowercase(), IBM_CLIENT_SECRET);
    let is_secret = |p: &&str| {
        let name = p.split('=').next().unwrap_or("");
        secret_name(name)
            || percent_encoding::percent_decode_str(name)
                .decode_utf8()
                .is_ok_and(|n| secret_name(&n))
    };
    if !q.split('&').any(|p| is_secret(&p)) {
        return None;
    }
    let kept: Vec<&str> = q.split('&').filter(|p| !is_secret(p)).collect();
    let path = uri.path();
    let pq = if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq.parse().ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route bound to a host wins for that host in any case, and only for it; the host is
    /// asked for only when some route names one.
    #[test]
    fn host_bound_routes_match_only_their_host() {
        let config = Config::from_toml(
            "[[routes]]\npath = \"/api\"\nrequire = \"bearer\"\n\n[[routes]]\npath = \"/api\"\nhost = \"api.example\"\nrequire = \"none\"\n",
        )
        .unwrap();
        let table = RouteTable::new(&config);
        let bound = table.find(|| Some("api.example"), "/api/x");
        assert_eq!(table.get(bound).host.as_deref(), Some("api.example"));
        assert_eq!(table.find(|| Some("API.Example"), "/api"), bound);
        let open = table.find(|| Some("other.example"), "/api/x");
        assert_ne!(open, bound);
        assert_eq!(table.get(open).path, "/api");
        assert_eq!(table.find(|| None, "/api/x"), open);
        assert_eq!(
            table.find(|| Some("api.example"), "/apix"),
            table.routes().len() - 1
        );

        let hostless = RouteTable::new(
            &Config::from_toml("[[routes]]\npath = \"/api\"\nrequire = \"bearer\"\n").unwrap(),
        );
        let asked = std::cell::Cell::new(false);
        hostless.find(
            || {
                asked.set(true);
                Some("api.example")
            },
            "/api",
        );
        assert!(!asked.get(), "no route names a host");
    }

    #[test]
    fn query_secrets_are_removed_and_the_rest_kept() {
        let u: Uri = "/api/x?a=1&client_secret=s&client_id=c&b=%20"
            .parse()
            .unwrap();
        let stripped = without_query_secret(&u).unwrap();
        assert_eq!(stripped.to_string(), "/api/x?a=1&client_id=c&b=%20");
        let u: Uri = "/api/x?client%5Fsecret=s".parse().unwrap();
        assert_eq!(without_query_secret(&u).unwrap().to_string(), "/api/x");
        let u: Uri = "/api/x?X-IBM-Client-Secret=s&a=1&x_ibm_client_secret=t&x-ibm-client-id=c"
            .parse()
            .unwrap();
        assert_eq!(
            without_query_secret(&u).unwrap().to_string(),
            "/api/x?a=1&x-ibm-client-id=c"
        );
        let u: Uri = "/api/x?a=1&client_secrets=x&Client_Secret=y"
            .parse()
            .unwrap();
        assert_eq!(without_query_secret(&u), None);
    }

    #[test]
    fn bearer_tokens_are_found_in_any_case_and_malformed_ones_refused() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(bearer_value(&h("Bearer abc")), Ok(Some(&b"abc"[..])));
        assert_eq!(bearer_value(&h("bEaReR  abc ")), Ok(Some(&b"abc"[..])));
        assert_eq!(bearer_value(&h("Basic abc")), Ok(None));
        assert_eq!(bearer_value(&HeaderMap::new()), Ok(None));
        assert_eq!(bearer_value(&h("Bearer ")), Err(()));
        assert_eq!(bearer_value(&h("Bearer    ")), Err(()));
        let mut two = h("Bearer a");
        two.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(bearer_value(&two), Err(()));
        // Found, then told malformed once refused.
        assert_eq!(bearer_value(&h("Bearer a b")), Ok(Some(&b"a b"[..])));
        assert!(!well_formed(b"a b"));
        assert!(!well_formed(b"ab\xe9"));
        assert!(well_formed(b"oea_abc-_09"));
    }

    #[test]
    fn underscored_identity_headers_count_as_the_same() {
        assert!(same_header("x_oauth_user", "x-oauth-user"));
        assert!(same_header("x-oauth-user", "x-oauth-user"));
        assert!(!same_header("x-oauth-users", "x-oauth-user"));
    }
}
