//! The flows a person takes part in: `GET /authorize` with sign-in and consent (RFC 6749 4.1,
//! RFC 7636), and the device verification page (RFC 8628 3.3).
//!
//! Sign-in is either the built-in page, backed by the [`UserDirectory`](crate::users), or a
//! hand-off to an existing login app (`authorization.login_url`): the edge redirects there with
//! a `login_challenge`, and the app settles it with [`Edge::accept_login`] or
//! [`Edge::reject_login`] (the gateway's admin API calls these), Hydra's pattern. The
//! challenge, and so the verifier that brings the browser back, is bound to the browser that
//! was sent: a keyed hash of its `oauth_edge_login` cookie (`SameSite=Lax`) is sealed into it.
//!
//! Errors before the client and its `redirect_uri` are known good are shown as a page, never
//! redirected (RFC 6749 4.1.2.1); after that they go back to the client as query parameters.
//! Every form carries a CSRF token bound to a cookie; the session cookie is `HttpOnly`,
//! `SameSite=Lax`, and `Secure` when served over TLS.

pub(crate) mod session;
mod sign_out;

pub(crate) use sign_out::sign_out;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::clients::Client;
use crate::edge::Edge;
use crate::endpoints::Request;
use crate::error::{ErrorCode, OAuthError};
use crate::pages;
use crate::passwords::SignIn;
use crate::scope::Scopes;
use crate::secret::Secret;
use crate::store::{CodeBinding, DeviceStatus, NewFamily, NewToken, StoreError};
use crate::tokens::{FamilyId, TokenKind};

use session::{cookie, set_cookie, Sealer, Session, CSRF_COOKIE, LOGIN_COOKIE, SESSION_COOKIE};

/// The user-code alphabet: 20 consonants, no vowels (no words), no look-alikes (RFC 8628 6.1).
pub(crate) const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// User-code length: 20^8, about 2^34.6 codes, against a handful of guesses per minute.
pub(crate) const USER_CODE_LEN: usize = 8;

/// How long a login verifier (the hand-off's way back) stays good.
const VERIFIER_TTL: u64 = 120;

/// State the pages need that lives as long as the edge.
pub(crate) struct Pages {
    pub(crate) sealer: Sealer,
    /// Wrong user codes per source address, over the last minute.
    wrong_codes: moka::sync::Cache<IpAddr, Arc<AtomicU32>>,
    /// The ids of sessions signed out here, kept as long as a session can live, so that a
    /// copy of the cookie is refused after sign-out too (by this instance).
    signed_out: moka::sync::Cache<String, ()>,
}

impl Pages {
    pub(crate) fn new(server_key: &[u8; 32], session_ttl: Duration) -> Self {
        Pages {
            sealer: Sealer::new(server_key),
            wrong_codes: per_minute(),
            signed_out: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(session_ttl)
                .build(),
        }
    }
}

/// Counters that start at the first event and are dropped a minute later.
fn per_minute() -> moka::sync::Cache<IpAddr, Arc<AtomicU32>> {
    moka::sync::Cache::builder()
        .max_capacity(100_000)
        .time_to_live(Duration::from_secs(60))
        .build()
}

/// Checks the form's username and password through the sign-in throttle.
async fn check_password(req: &Request<'_>, username: &str) -> Result<SignIn, StoreError> {
    let password = Secret::new(req.params.get("password").unwrap_or("").to_string());
    let inner = &req.edge.inner;
    inner
        .sign_ins
        .check(
            inner.users.as_ref(),
            &inner.metrics,
            username,
            &password,
            req.peer,
        )
        .await
}

fn too_many(message: &str) -> Response<Bytes> {
    let mut r = html(
        StatusCode::TOO_MANY_REQUESTS,
        pages::done(&pages::Done {
            title: "Too many attempts".into(),
            message: message.into(),
            error: Some("slow_down".into()),
            error_description: None,
        }),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    r
}

/// An authorization request that passed validation, carried through the pages sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AuthzRequest {
    client_id: String,
    /// The `redirect_uri` as sent, if it was.
    redirect_uri: Option<String>,
    /// Where the answer goes.
    target: String,
    scope: String,
    state: Option<String>,
    challenge: Option<String>,
    /// Asked through the NPR profile: errors go back as `?error=…&message=…`.
    #[serde(default)]
    npr: bool,
}

/// What a login challenge (the hand-off to a login app) is for.
#[derive(Serialize, Deserialize)]
enum Pending {
    /// An authorization request.
    Authorize(AuthzRequest),
    /// A device's user code, entered on the verification page.
    Device(String),
}

/// A login challenge: what waits for the login app's answer, and the browser sent there.
#[derive(Serialize, Deserialize)]
struct Challenge {
    pending: Pending,
    /// The browser's [`Sealer::browser_binding`]: the verifier made from this challenge works
    /// only in the browser that holds the matching login cookie, so a verifier URL that leaks
    /// (history, logs, a `Referer`) signs nobody in elsewhere.
    browser: String,
}

/// A login verifier: the hand-off's answer, its challenge accepted for `user`.
#[derive(Serialize, Deserialize)]
struct Verified {
    challenge: Challenge,
    user: String,
}

/// Why an authorization request was refused.
enum Refusal {
    /// No trustworthy `redirect_uri`: show a page.
    Page(OAuthError),
    /// Send the error back to the client (in NPR's words when the flag says so).
    Redirect(String, Option<String>, OAuthError, bool),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Page(e.into())
    }
}

/// `GET` and `POST …/authorize`.
pub(crate) async fn authorize(req: Request<'_>) -> Response<Bytes> {
    let mut out = Out::new(&req);
    let resp = if req.head.method == Method::POST {
        authorize_post(&req, &mut out).await
    } else {
        authorize_get(&req, &mut out).await
    };
    out.finish(resp)
}

async fn authorize_get(req: &Request<'_>, out: &mut Out) -> Response<Bytes> {
    let edge = req.edge;
    // The way back from a login app.
    if let Some(v) = req.params.get("login_verifier") {
        let Some((Pending::Authorize(request), user)) = out.come_back(edge, v) else {
            return bad_verifier();
        };
        out.sign_in_as(edge, &user).await;
        return proceed(req, out, request, &user).await;
    }
    let request = match validate(edge, req.params, is_npr(req)).await {
        Ok(r) => r,
        Err(refusal) => return refuse(edge, is_npr(req), refusal),
    };
    match out.session_user(req).await {
        Some(user) => proceed(req, out, request, &user).await,
        None => match &edge.config().authorization.login_url {
            Some(url) => out.hand_off(edge, url, Pending::Authorize(request), StatusCode::FOUND),
            None => sign_in_page(req, out, &request, None, StatusCode::OK).await,
        },
    }
}

async fn authorize_post(req: &Request<'_>, out: &mut Out) -> Response<Bytes> {
    let edge = req.edge;
    if let Some(r) = out.csrf_refusal(req) {
        return r;
    }
    let Some(request) = req
        .params
        .get("request")
        .and_then(|t| edge.pages().sealer.open::<AuthzRequest>("request", t))
    else {
        return expired_page();
    };
    if let Some(username) = req.params.get("username") {
        return match check_password(req, username).await {
            Ok(SignIn::As(user)) => {
                out.sign_in_as(edge, &user.id).await;
                proceed(req, out, request, &user.id).await
            }
            Ok(SignIn::Throttled) => {
                too_many("Too many failed sign-ins. Wait a minute, then try again.")
            }
            Ok(SignIn::Wrong) => {
                let msg = "The username or password is not right.";
                sign_in_page(req, out, &request, Some(msg), StatusCode::UNAUTHORIZED).await
            }
            Err(e) => error_page(&e.into()),
        };
    }
    let Some(user) = out.session_user(req).await else {
        return sign_in_page(req, out, &request, None, StatusCode::OK).await;
    };
    match req.params.get("decision") {
        Some("allow") => match client_of(edge, &request).await {
            Ok(client) => {
                answer_with_code(edge, &client, &request, &user, StatusCode::SEE_OTHER).await
            }
            Err(r) => refuse(edge, request.npr, r),
        },
        Some("deny") => {
            let e = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
            error_redirect(
                edge,
                request.npr,
                StatusCode::SEE_OTHER,
                &request.target,
                request.state.as_deref(),
                &e,
            )
        }
        _ => error_page(&OAuthError::invalid_request("no decision was made")),
    }
}

/// A signed-in user and a valid request: consent, or straight back with a code.
async fn proceed(
    req: &Request<'_>,
    out: &mut Out,
    request: AuthzRequest,
    user: &str,
) -> Response<Bytes> {
    let edge = req.edge;
    let client = match client_of(edge, &request).await {
        Ok(c) => c,
        Err(r) => return refuse(edge, request.npr, r),
    };
    if client.skip_consent {
        // After a form post, 303 makes the browser follow with a GET.
        let status = if req.head.method == Method::POST {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::FOUND
        };
        return answer_with_code(edge, &client, &request, user, status).await;
    }
    let page = pages::Consent {
        title: "Allow access?".into(),
        client: display_name(&client),
        user: user.to_string(),
        scopes: scope_list(&request.scope),
        action: req.head.uri.path().to_string(),
        csrf: out.csrf_token(edge),
        request: edge
            .pages()
            .sealer
            .seal("request", request_ttl(edge), &request),
    };
    html(StatusCode::OK, pages::consent(&page))
}

async fn sign_in_page(
    req: &Request<'_>,
    out: &mut Out,
    request: &AuthzRequest,
    error: Option<&str>,
    status: StatusCode,
) -> Response<Bytes> {
    let edge = req.edge;
    let client = match client_of(edge, request).await {
        Ok(c) => c,
        Err(r) => return refuse(edge, request.npr, r),
    };
    let sealed = edge
        .pages()
        .sealer
        .seal("request", request_ttl(edge), request);
    sign_in_form(req, out, display_name(&client), sealed, error, status)
}

/// The sign-in form, carrying `sealed` (the request, or the device's user code) through.
fn sign_in_form(
    req: &Request<'_>,
    out: &mut Out,
    client: String,
    sealed: String,
    error: Option<&str>,
    status: StatusCode,
) -> Response<Bytes> {
    let page = pages::SignIn {
        title: "Sign in".into(),
        client,
        action: req.head.uri.path().to_string(),
        csrf: out.csrf_token(req.edge),
        request: sealed,
        username: req.params.get("username").map(str::to_string),
        error: error.map(str::to_string),
    };
    html(status, pages::sign_in(&page))
}

/// Issues a code for `user` and sends the browser back to the client with it.
async fn answer_with_code(
    edge: &Edge,
    client: &Client,
    request: &AuthzRequest,
    user: &str,
    status: StatusCode,
) -> Response<Bytes> {
    match issue_code(edge, client, request, user).await {
        Ok(code) => {
            let mut q: Vec<(&str, &str)> = vec![("code", code.expose())];
            if let Some(s) = &request.state {
                q.push(("state", s));
            }
            if let Some(iss) = &edge.config().issuer {
                q.push(("iss", iss));
            }
            redirect(status, &request.target, &q)
        }
        Err(e) => error_redirect(
            edge,
            request.npr,
            status,
            &request.target,
            request.state.as_deref(),
            &e,
        ),
    }
}

async fn issue_code(
    edge: &Edge,
    client: &Client,
    request: &AuthzRequest,
    user: &str,
) -> Result<Secret, OAuthError> {
    let scopes = Scopes::parse(&request.scope).unwrap_or_default();
    let binding = CodeBinding {
        redirect_uri: request.redirect_uri.clone(),
        code_challenge: request.challenge.clone(),
    };
    let ttl = edge.config().authorization.code_ttl.as_secs() as i64;
    for _ in 0..3 {
        let now = crate::unix_now();
        let family = NewFamily {
            id: FamilyId::random(),
            client_id: client.id.to_string(),
            user: Some(user.to_string()),
            grant_type: "authorization_code".into(),
            created_at: now,
        };
        let code = edge.codec().mint(TokenKind::Code);
        let token = NewToken {
            hash: code.hash,
            kind: TokenKind::Code,
            family: family.id,
            scopes: scopes.clone(),
            issued_at: now,
            expires_at: Some(now + ttl),
        };
        match edge.store().issue_code(&family, &token, &binding).await {
            Ok(()) => {
                tracing::debug!(client_id = %client.id, family = %family.id, "authorization code issued");
                return Ok(code.token);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(OAuthError::new(
        ErrorCode::ServerError,
        "could not issue a code",
    ))
}

/// Checks an authorization request (RFC 6749 4.1.1, RFC 7636 4.3).
async fn validate(
    edge: &Edge,
    params: &crate::params::Params,
    npr: bool,
) -> Result<AuthzRequest, Refusal> {
    let page = |d: &'static str| Refusal::Page(OAuthError::invalid_request(d));
    let client_id = params
        .get("client_id")
        .ok_or_else(|| page("client_id is missing"))?;
    let client = edge
        .clients()
        .get(client_id)
        .await?
        .ok_or_else(|| Refusal::Page(OAuthError::invalid_client("unknown client")))?;
    let sent = params.get("redirect_uri");
    let target = match sent {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_string(),
        // NPR answers a redirect_uri it does not have for the client as bad client
        // credentials (401).
        Some(_) if npr => {
            return Err(Refusal::Page(OAuthError::invalid_client(
                "redirect_uri does not match the client's",
            )))
        }
        Some(_) => return Err(page("redirect_uri is not registered for this client")),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(page("redirect_uri is missing")),
    };
    let state = params.get("state").map(str::to_string);
    let back = |e: OAuthError| Refusal::Redirect(target.clone(), state.clone(), e, npr);
    match params.get("response_type") {
        Some("code") => {}
        None => {
            return Err(back(OAuthError::invalid_request(
                "response_type is missing",
            )))
        }
        Some(_) => {
            return Err(back(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )))
        }
    }
    if !client.allows_grant("authorization_code") {
        return Err(back(OAuthError::unauthorized_client(
            "this client may not use the authorization code flow",
        )));
    }
    let scopes = crate::grants::requested_scopes(params, &client.scopes, &client.default_scopes)
        .map_err(back)?;
    let challenge = crate::pkce::challenge(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    )
    .map_err(|e| {
        back(OAuthError::invalid_request(match e {
            crate::pkce::ChallengeError::Method => {
                "code_challenge_method must be S256 (plain is not supported)"
            }
            crate::pkce::ChallengeError::Shape => {
                "code_challenge must be 43 base64url characters, with code_challenge_method=S256"
            }
        }))
    })?;
    if challenge.is_none() && client.require_pkce {
        return Err(back(OAuthError::invalid_request(
            "this client must use PKCE: send code_challenge with code_challenge_method=S256",
        )));
    }
    Ok(AuthzRequest {
        client_id: client.id.to_string(),
        redirect_uri: sent.map(str::to_string),
        target,
        scope: scopes.as_str().to_string(),
        state,
        challenge,
        npr,
    })
}

/// The request's client, still registered with the same redirect URI.
async fn client_of(edge: &Edge, request: &AuthzRequest) -> Result<Arc<Client>, Refusal> {
    let client = edge
        .clients()
        .get(&request.client_id)
        .await?
        .ok_or_else(|| Refusal::Page(OAuthError::invalid_client("unknown client")))?;
    if !client.redirect_uris.contains(&request.target) {
        return Err(Refusal::Page(OAuthError::invalid_request(
            "redirect_uri is not registered for this client",
        )));
    }
    Ok(client)
}

fn refuse(edge: &Edge, npr: bool, refusal: Refusal) -> Response<Bytes> {
    match refusal {
        // NPR: "this endpoint will return the errors encoded as JSON objects (along with the
        // corresponding HTTP status code – usually 400)".
        Refusal::Page(e) if npr => crate::profiles::npr_error(&e),
        Refusal::Page(e) => error_page(&e),
        Refusal::Redirect(target, state, e, npr) => {
            error_redirect(edge, npr, StatusCode::FOUND, &target, state.as_deref(), &e)
        }
    }
}

fn is_npr(req: &Request<'_>) -> bool {
    req.profile.kind == crate::config::ProfileKind::Npr
}

fn error_redirect(
    edge: &Edge,
    npr: bool,
    status: StatusCode,
    target: &str,
    state: Option<&str>,
    e: &OAuthError,
) -> Response<Bytes> {
    redirect_to(status, &error_url(edge, npr, target, state, e))
}

/// Where an error goes back to the client: `{target}?error=…&error_description=…&state=…&iss=…`,
/// or in NPR's words `{target}?error=…&message=…&state=…`, where a denial is
/// `error=denied&message=The user has denied the login and access request`.
fn error_url(edge: &Edge, npr: bool, target: &str, state: Option<&str>, e: &OAuthError) -> String {
    let mut q: Vec<(&str, &str)> = Vec::new();
    if npr {
        if e.code == ErrorCode::AccessDenied {
            q.push(("error", "denied"));
            q.push((
                "message",
                "The user has denied the login and access request",
            ));
        } else {
            q.push(("error", e.code.as_str()));
            q.push(("message", &e.description));
        }
        if let Some(s) = state {
            q.push(("state", s));
        }
        return with_query(target, &q);
    }
    q.push(("error", e.code.as_str()));
    q.push(("error_description", &e.description));
    if let Some(s) = state {
        q.push(("state", s));
    }
    if let Some(iss) = &edge.config().issuer {
        q.push(("iss", iss));
    }
    with_query(target, &q)
}

impl Edge {
    /// Accepts a login challenge the edge sent to `authorization.login_url`: `user` has signed
    /// in. Returns the URL to send the browser to, which continues the flow (consent, then the
    /// client). Fails for a challenge that is forged or has expired.
    pub fn accept_login(&self, challenge: &str, user: &str) -> Result<String, OAuthError> {
        let challenge = self.open_challenge(challenge)?;
        if user.is_empty() || user.chars().any(char::is_control) {
            return Err(OAuthError::invalid_request("the user id is not valid"));
        }
        let base = match &challenge.pending {
            Pending::Authorize(_) => self.page_url(crate::profiles::EndpointKind::Authorize),
            Pending::Device(_) => self.page_url(crate::profiles::EndpointKind::DeviceVerification),
        };
        let verifier = self.pages().sealer.seal(
            "verifier",
            VERIFIER_TTL,
            &Verified {
                challenge,
                user: user.to_string(),
            },
        );
        Ok(with_query(
            &base.unwrap_or_default(),
            &[("login_verifier", &verifier)],
        ))
    }

    /// Rejects a login challenge: returns the URL that sends the browser back to the client
    /// with `error=access_denied`.
    pub fn reject_login(&self, challenge: &str) -> Result<String, OAuthError> {
        let request = match self.open_challenge(challenge)?.pending {
            Pending::Authorize(r) => r,
            // The device keeps waiting until its code expires; the user is back at the page
            // where codes are entered.
            Pending::Device(_) => {
                return Ok(self
                    .page_url(crate::profiles::EndpointKind::DeviceVerification)
                    .unwrap_or_default())
            }
        };
        let e = OAuthError::new(ErrorCode::AccessDenied, "the user did not sign in");
        Ok(error_url(
            self,
            request.npr,
            &request.target,
            request.state.as_deref(),
            &e,
        ))
    }

    fn open_challenge(&self, challenge: &str) -> Result<Challenge, OAuthError> {
        self.pages()
            .sealer
            .open::<Challenge>("login", challenge)
            .ok_or_else(|| {
                OAuthError::invalid_request("the login challenge is not valid or has expired")
            })
    }

    /// A page's URL: absolute when the issuer is configured.
    fn page_url(&self, kind: crate::profiles::EndpointKind) -> Option<String> {
        let path = self.inner.profiles.iter().find_map(|p| p.path_of(kind))?;
        Some(format!(
            "{}{path}",
            self.config().issuer.as_deref().unwrap_or("")
        ))
    }

    pub(crate) fn pages(&self) -> &Pages {
        &self.inner.pages
    }
}

// --- the device verification page ------------------------------------------------------

/// `GET` and `POST …/device`.
pub(crate) async fn device(req: Request<'_>) -> Response<Bytes> {
    let mut out = Out::new(&req);
    let resp = if req.head.method == Method::POST {
        device_post(&req, &mut out).await
    } else if let Some(v) = req.params.get("login_verifier") {
        // The way back from a login app.
        match out.come_back(req.edge, v) {
            Some((Pending::Device(code), user)) => {
                out.sign_in_as(req.edge, &user).await;
                device_code_step(&req, &mut out, Some(code), Some(user)).await
            }
            _ => bad_verifier(),
        }
    } else {
        let prefill = req.params.get("user_code").map(display_user_code);
        device_entry(&req, &mut out, prefill, None, StatusCode::OK)
    };
    out.finish(resp)
}

fn device_entry(
    req: &Request<'_>,
    out: &mut Out,
    user_code: Option<String>,
    error: Option<&str>,
    status: StatusCode,
) -> Response<Bytes> {
    let page = pages::DeviceEntry {
        title: "Connect a device".into(),
        action: req.head.uri.path().to_string(),
        csrf: out.csrf_token(req.edge),
        user_code,
        error: error.map(str::to_string),
    };
    html(status, pages::device_entry(&page))
}

async fn device_post(req: &Request<'_>, out: &mut Out) -> Response<Bytes> {
    let edge = req.edge;
    if let Some(r) = out.csrf_refusal(req) {
        return r;
    }
    let peer = req.peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let limit = edge.config().device.max_wrong_codes_per_minute;
    let wrong = edge.pages().wrong_codes.get(&peer);
    if wrong
        .as_ref()
        .is_some_and(|w| w.load(Ordering::Relaxed) >= limit)
    {
        return too_many("Too many codes were entered. Wait a minute, then try again.");
    }
    // The code comes typed in, or sealed from the sign-in page.
    let typed = req.params.get("user_code").map(str::to_string).or_else(|| {
        req.params
            .get("request")
            .and_then(|t| edge.pages().sealer.open::<String>("device", t))
    });
    device_code_step(req, out, typed, None).await
}

/// The verification page once a code is in hand (typed, sealed in a form, or back from the
/// login app with `signed_in`): check it, sign the user in, confirm, decide.
async fn device_code_step(
    req: &Request<'_>,
    out: &mut Out,
    typed: Option<String>,
    signed_in: Option<String>,
) -> Response<Bytes> {
    let edge = req.edge;
    let peer = req.peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let Some(code) = typed.as_deref().and_then(normalise_user_code) else {
        count_wrong(edge, peer);
        let msg = "Enter the code shown on your device.";
        return device_entry(req, out, typed, Some(msg), StatusCode::BAD_REQUEST);
    };
    let grant = match edge
        .store()
        .device_grant_by_user_code(&code, crate::unix_now())
        .await
    {
        Ok(g) => g,
        Err(e) => return error_page(&e.into()),
    };
    let Some(grant) = grant.filter(|g| g.status == DeviceStatus::Pending) else {
        count_wrong(edge, peer);
        let msg = "That code is not valid, has expired, or was already used.";
        return device_entry(
            req,
            out,
            typed.map(|t| display_user_code(&t)),
            Some(msg),
            StatusCode::BAD_REQUEST,
        );
    };
    let client_name = match edge.clients().get(&grant.grant.client_id).await {
        Ok(Some(c)) => display_name(&c),
        Ok(None) => grant.grant.client_id.clone(),
        Err(e) => return error_page(&e.into()),
    };
    let sealed_code = edge.pages().sealer.seal("device", request_ttl(edge), &code);
    let mut user = match signed_in {
        Some(u) => Some(u),
        None => out.session_user(req).await,
    };
    if let Some(username) = req.params.get("username") {
        match check_password(req, username).await {
            Ok(SignIn::As(u)) => {
                out.sign_in_as(edge, &u.id).await;
                user = Some(u.id);
            }
            Ok(SignIn::Throttled) => {
                return too_many("Too many failed sign-ins. Wait a minute, then try again.")
            }
            Ok(SignIn::Wrong) => {
                let msg = "The username or password is not right.";
                return sign_in_form(
                    req,
                    out,
                    client_name,
                    sealed_code,
                    Some(msg),
                    StatusCode::UNAUTHORIZED,
                );
            }
            Err(e) => return error_page(&e.into()),
        }
    }
    let Some(user) = user else {
        if let Some(url) = &edge.config().authorization.login_url {
            return out.hand_off(edge, url, Pending::Device(code), StatusCode::SEE_OTHER);
        }
        return sign_in_form(req, out, client_name, sealed_code, None, StatusCode::OK);
    };
    let decision = req.params.get("decision");
    if decision.is_none() || req.params.get("username").is_some() {
        let page = pages::DeviceConfirm {
            title: "Connect this device?".into(),
            client: client_name,
            user,
            user_code: display_user_code(&code),
            scopes: scope_list(grant.grant.scopes.as_str()),
            action: req.head.uri.path().to_string(),
            csrf: out.csrf_token(edge),
        };
        return html(StatusCode::OK, pages::device_confirm(&page));
    }
    let approve = decision == Some("allow");
    match edge
        .store()
        .decide_device_grant(&code, &user, approve, crate::unix_now())
        .await
    {
        Ok(true) if approve => done_page(
            StatusCode::OK,
            "Device connected",
            "You can return to your device. It will continue on its own.",
        ),
        Ok(true) => done_page(
            StatusCode::OK,
            "Request denied",
            "The device was not given access. You can close this page.",
        ),
        Ok(false) => device_entry(
            req,
            out,
            None,
            Some("That code is not valid, has expired, or was already used."),
            StatusCode::BAD_REQUEST,
        ),
        Err(e) => error_page(&e.into()),
    }
}

fn count_wrong(edge: &Edge, peer: IpAddr) {
    edge.pages()
        .wrong_codes
        .get_with(peer, || Arc::new(AtomicU32::new(0)))
        .fetch_add(1, Ordering::Relaxed);
}

/// A new user code, normalised (upper case, no separator).
pub(crate) fn new_user_code() -> String {
    let mut raw = [0u8; USER_CODE_LEN];
    crate::tokens::fill_random(&mut raw);
    // 256 is not a multiple of 20: redraw the few bytes that would bias the choice.
    raw.iter_mut().for_each(|b| {
        while *b >= 240 {
            let mut one = [0u8; 1];
            crate::tokens::fill_random(&mut one);
            *b = one[0];
        }
    });
    raw.iter()
        .map(|b| USER_CODE_ALPHABET[(*b % 20) as usize] as char)
        .collect()
}

/// A typed user code, normalised: case, spaces and dashes do not matter. `None` when it
/// cannot be one of ours.
pub(crate) fn normalise_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// `BCDFGHJK` as `BCDF-GHJK`.
pub(crate) fn display_user_code(code: &str) -> String {
    match normalise_user_code(code) {
        Some(c) => format!("{}-{}", &c[..4], &c[4..]),
        None => code.chars().take(16).collect(),
    }
}

// --- responses ------------------------------------------------------------------------

/// Cookies to set on the way out.
struct Out {
    secure: bool,
    path: String,
    csrf_cookie: Option<String>,
    new_csrf: Option<String>,
    login_cookie: Option<String>,
    /// The login cookie to set, and for how long.
    new_login: Option<(String, u64)>,
    session: Option<String>,
    session_ttl: u64,
    /// Clear the session cookie on the way out (sign-out).
    end_session: bool,
}

impl Out {
    fn new(req: &Request<'_>) -> Self {
        let cfg = &req.edge.config().authorization;
        let secure = cfg.secure_cookies.unwrap_or_else(|| {
            req.edge
                .config()
                .issuer
                .as_deref()
                .is_some_and(|i| i.starts_with("https://"))
                || req.head.uri.scheme_str() == Some("https")
                || req.head.extensions.get::<crate::edge::Tls>().is_some()
        });
        let path = if req.profile.base.is_empty() {
            "/".to_string()
        } else {
            req.profile.base.clone()
        };
        Out {
            secure,
            path,
            csrf_cookie: cookie(&req.head.headers, CSRF_COOKIE).map(str::to_string),
            new_csrf: None,
            login_cookie: cookie(&req.head.headers, LOGIN_COOKIE).map(str::to_string),
            new_login: None,
            session: None,
            session_ttl: cfg.session_ttl.as_secs(),
            end_session: false,
        }
    }

    /// The form token for this browser, minting its CSRF cookie if it has none.
    fn csrf_token(&mut self, edge: &Edge) -> String {
        let value = match (&self.csrf_cookie, &self.new_csrf) {
            (Some(c), _) if !c.is_empty() => c.clone(),
            (_, Some(n)) => n.clone(),
            _ => {
                let n = crate::tokens_random(16);
                self.new_csrf = Some(n.clone());
                n
            }
        };
        edge.pages().sealer.csrf_token(&value)
    }

    /// Sends this browser to the login app at `url` with a challenge for `pending`, bound to
    /// the browser: its login cookie is (re)set for as long as the challenge and then its
    /// verifier can live. A browser that already has one keeps it, so hand-offs from two tabs
    /// both come back.
    fn hand_off(
        &mut self,
        edge: &Edge,
        url: &str,
        pending: Pending,
        status: StatusCode,
    ) -> Response<Bytes> {
        let value = match &self.login_cookie {
            Some(c) if !c.is_empty() => c.clone(),
            _ => crate::tokens_random(16),
        };
        let sealer = &edge.pages().sealer;
        let challenge = Challenge {
            pending,
            browser: sealer.browser_binding(&value),
        };
        let challenge = sealer.seal("login", request_ttl(edge), &challenge);
        self.new_login = Some((value, request_ttl(edge) + VERIFIER_TTL));
        redirect(status, url, &[("login_challenge", &challenge)])
    }

    /// The way back from the login app: what `verifier` settles and for which user, if it is
    /// genuine, unexpired and made for this very browser.
    fn come_back(&self, edge: &Edge, verifier: &str) -> Option<(Pending, String)> {
        let sealer = &edge.pages().sealer;
        let Verified { challenge, user } = sealer.open::<Verified>("verifier", verifier)?;
        sealer
            .browser_ok(self.login_cookie.as_deref(), &challenge.browser)
            .then_some((challenge.pending, user))
    }

    /// The answer to a form post that fails the CSRF checks; `None` when it passes.
    fn csrf_refusal(&self, req: &Request<'_>) -> Option<Response<Bytes>> {
        let sealer = &req.edge.pages().sealer;
        if sealer.csrf_ok(self.csrf_cookie.as_deref(), req.params.get("csrf")) && same_origin(req) {
            return None;
        }
        Some(html(
            StatusCode::FORBIDDEN,
            pages::done(&pages::Done {
                title: "Form expired".into(),
                message: "This form has expired or was not sent from this site. Go back to the \
                          application and start again."
                    .into(),
                error: Some("invalid_request".into()),
                error_description: Some("CSRF check failed".into()),
            }),
        ))
    }

    /// The session this browser holds, if it is genuine, unexpired, not signed out, and its
    /// user is still the one the directory knows (not removed, same password).
    async fn session(&self, req: &Request<'_>) -> Option<Session> {
        let sealed = match &self.session {
            Some(s) => s.as_str(),
            None => cookie(&req.head.headers, SESSION_COOKIE)?,
        };
        let pages = req.edge.pages();
        let s: Session = pages.sealer.open("session", sealed)?;
        if pages.signed_out.contains_key(&s.i) {
            return None;
        }
        if let Some(tag) = &s.s {
            match req.edge.inner.users.stamp(&s.u).await {
                Ok(Some(stamp)) if pages.sealer.stamp_ok(&stamp, tag) => {}
                Ok(_) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, "user directory unavailable; session not trusted");
                    return None;
                }
            }
        }
        Some(s)
    }

    async fn session_user(&self, req: &Request<'_>) -> Option<String> {
        self.session(req).await.map(|s| s.u)
    }

    /// Remembers `user` in this browser, bound to the directory's stamp of them. When the
    /// directory cannot answer, the sign-in counts for this request only.
    async fn sign_in_as(&mut self, edge: &Edge, user: &str) {
        let stamp = match edge.inner.users.stamp(user).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "user directory unavailable; sign-in not remembered");
                return;
            }
        };
        let sealer = &edge.pages().sealer;
        let session = Session {
            u: user.to_string(),
            s: stamp.map(|st| sealer.stamp_tag(&st)),
            i: crate::tokens_random(16),
        };
        self.session = Some(sealer.seal("session", self.session_ttl, &session));
    }

    fn finish(self, mut resp: Response<Bytes>) -> Response<Bytes> {
        let h = resp.headers_mut();
        if let Some(c) = &self.new_csrf {
            h.append(
                header::SET_COOKIE,
                set_cookie(CSRF_COOKIE, c, &self.path, None, "Strict", self.secure),
            );
        }
        if let Some((value, ttl)) = &self.new_login {
            // Lax: the way back from the login app is a top-level navigation from its site.
            h.append(
                header::SET_COOKIE,
                set_cookie(
                    LOGIN_COOKIE,
                    value,
                    &self.path,
                    Some(*ttl),
                    "Lax",
                    self.secure,
                ),
            );
        }
        if let Some(s) = &self.session {
            h.append(
                header::SET_COOKIE,
                set_cookie(
                    SESSION_COOKIE,
                    s,
                    &self.path,
                    Some(self.session_ttl),
                    "Lax",
                    self.secure,
                ),
            );
        } else if self.end_session {
            h.append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, "", &self.path, Some(0), "Lax", self.secure),
            );
        }
        resp
    }
}

/// A form post whose `Origin` (when the browser sends one) is not this site is refused.
fn same_origin(req: &Request<'_>) -> bool {
    let Some(origin) = req
        .head
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return true;
    };
    let host = req
        .head
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(req.head.uri.authority().map(|a| a.as_str()));
    match (origin.split_once("://"), host) {
        (Some((_, o)), Some(h)) => o.eq_ignore_ascii_case(h),
        _ => false,
    }
}

fn request_ttl(edge: &Edge) -> u64 {
    edge.config().authorization.request_ttl.as_secs()
}

fn display_name(client: &Client) -> String {
    client.name.clone().unwrap_or_else(|| client.id.to_string())
}

fn scope_list(scope: &str) -> Vec<(String, Option<String>)> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| (s.to_string(), None))
        .collect()
}

/// An HTML page that is never cached, framed or allowed to run script.
pub(crate) fn html(status: StatusCode, body: String) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it browsers send `Origin: null` on the pages' own form posts,
    // and the origin check could not tell them from a sandboxed attacker's.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    r
}

/// An error shown as a page: the request could not be sent back to a client.
pub(crate) fn error_page(e: &OAuthError) -> Response<Bytes> {
    let status = e.status();
    let mut r = html(
        status,
        pages::done(&pages::Done {
            title: "This request cannot be completed".into(),
            message: "The application sent a request that cannot be completed. Go back to the \
                      application and try again."
                .into(),
            error: Some(e.code.as_str().into()),
            error_description: Some(e.description.to_string()),
        }),
    );
    crate::profiles::rfc_decorate(&mut r, e);
    r
}

fn bad_verifier() -> Response<Bytes> {
    error_page(&OAuthError::invalid_request(
        "the sign-in has expired or is not valid; start again from the application",
    ))
}

fn expired_page() -> Response<Bytes> {
    error_page(&OAuthError::invalid_request(
        "the sign-in request has expired; start again from the application",
    ))
}

fn done_page(status: StatusCode, title: &str, message: &str) -> Response<Bytes> {
    html(
        status,
        pages::done(&pages::Done {
            title: title.into(),
            message: message.into(),
            error: None,
            error_description: None,
        }),
    )
}

/// `base` with `q` added to its query, each value percent-encoded (a space as `%20`, which
/// both form decoding and plain URI decoding read as a space).
fn with_query(base: &str, q: &[(&str, &str)]) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    const VALUE: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let pairs: Vec<String> = q
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, VALUE),
                utf8_percent_encode(v, VALUE)
            )
        })
        .collect();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", pairs.join("&"))
}

fn redirect(status: StatusCode, base: &str, q: &[(&str, &str)]) -> Response<Bytes> {
    redirect_to(status, &with_query(base, q))
}

fn redirect_to(status: StatusCode, url: &str) -> Response<Bytes> {
    let mut r = Response::new(Bytes::new());
    *r.status_mut() = status;
    let h = r.headers_mut();
    match HeaderValue::from_str(url) {
        Ok(v) => {
            h.insert(header::LOCATION, v);
        }
        Err(_) => return error_page(&OAuthError::invalid_request("redirect_uri is not valid")),
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_easy_to_type() {
        for _ in 0..200 {
            let c = new_user_code();
            assert_eq!(c.len(), 8);
            assert!(c.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
            assert_eq!(
                normalise_user_code(&display_user_code(&c)).as_deref(),
                Some(c.as_str())
            );
        }
        assert_eq!(
            normalise_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalise_user_code(" BCDF GHJK ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalise_user_code("BCDF-GHJA"), None); // a vowel
        assert_eq!(normalise_user_code("BCDF-GHJ"), None);
        assert_eq!(display_user_code("bcdfghjk"), "BCDF-GHJK");
    }

    #[test]
    fn redirects_keep_the_registered_query() {
        assert_eq!(
            with_query("https://app/cb?x=1", &[("code", "a b"), ("state", "s&t")]),
            "https://app/cb?x=1&code=a%20b&state=s%26t"
        );
    }
}
