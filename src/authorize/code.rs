//! The authorization-code flow: `GET` and `POST /authorize`, validation, sign-in and consent,
//! and the answers that go back to the client (RFC 6749 4.1, RFC 7636).

use super::*;

/// An authorization request that passed validation, carried through the pages sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AuthzRequest {
    pub(super) client_id: String,
    /// The `redirect_uri` as sent, if it was.
    pub(super) redirect_uri: Option<String>,
    /// Where the answer goes.
    pub(super) target: String,
    pub(super) scope: String,
    pub(super) state: Option<String>,
    pub(super) challenge: Option<String>,
    /// The dialect of the profile it was asked through: how its errors go back.
    pub(super) dialect: AuthorizeDialect,
}

/// What a login challenge (the hand-off to a login app) is for.
#[derive(Serialize, Deserialize)]
pub(super) enum Pending {
    /// An authorization request.
    Authorize(AuthzRequest),
    /// A device's user code, entered on the verification page.
    Device(String),
}

/// A login challenge: what waits for the login app's answer, and the browser sent there.
#[derive(Serialize, Deserialize)]
pub(super) struct Challenge {
    pub(super) pending: Pending,
    /// The browser's [`Sealer::browser_binding`]: the verifier made from this challenge works
    /// only in the browser that holds the matching login cookie, so a verifier URL that leaks
    /// (history, logs, a `Referer`) signs nobody in elsewhere.
    pub(super) browser: String,
}

/// A login verifier: the hand-off's answer, its challenge accepted for `user`.
#[derive(Serialize, Deserialize)]
pub(super) struct Verified {
    pub(super) challenge: Challenge,
    pub(super) user: String,
}

/// Why an authorization request was refused.
pub(super) enum Refusal {
    /// No trustworthy `redirect_uri`: show a page.
    Page(OAuthError),
    /// Send the error back to the client, in the dialect of the profile it came through.
    Redirect(String, Option<String>, OAuthError, AuthorizeDialect),
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

pub(super) async fn authorize_get(req: &Request<'_>, out: &mut Out) -> Response<Bytes> {
    let edge = req.edge;
    // The way back from a login app.
    if let Some(v) = req.params.get("login_verifier") {
        let Some((Pending::Authorize(request), user)) = out.come_back(edge, v) else {
            return bad_verifier();
        };
        out.sign_in_as(edge, &user).await;
        return proceed(req, out, request, &user).await;
    }
    let request = match validate(edge, req.params, req.profile.authorize_dialect()).await {
        Ok(r) => r,
        Err(refusal) => return refuse(edge, req.profile.authorize_dialect(), refusal),
    };
    match out.session_user(req).await {
        Some(user) => proceed(req, out, request, &user).await,
        None => match &edge.config().authorization.login_url {
            Some(url) => out.hand_off(edge, url, Pending::Authorize(request), StatusCode::FOUND),
            None => sign_in_page(req, out, &request, None, StatusCode::OK).await,
        },
    }
}

pub(super) async fn authorize_post(req: &Request<'_>, out: &mut Out) -> Response<Bytes> {
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
                // 400, not 401: no HTTP authentication scheme applies to a form.
                let msg = "The username or password is not right.";
                sign_in_page(req, out, &request, Some(msg), StatusCode::BAD_REQUEST).await
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
            Err(r) => refuse(edge, request.dialect, r),
        },
        Some("deny") => {
            let e = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
            error_redirect(
                edge,
                request.dialect,
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
pub(super) async fn proceed(
    req: &Request<'_>,
    out: &mut Out,
    request: AuthzRequest,
    user: &str,
) -> Response<Bytes> {
    let edge = req.edge;
    let client = match client_of(edge, &request).await {
        Ok(c) => c,
        Err(r) => return refuse(edge, request.dialect, r),
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

pub(super) async fn sign_in_page(
    req: &Request<'_>,
    out: &mut Out,
    request: &AuthzRequest,
    error: Option<&str>,
    status: StatusCode,
) -> Response<Bytes> {
    let edge = req.edge;
    let client = match client_of(edge, request).await {
        Ok(c) => c,
        Err(r) => return refuse(edge, request.dialect, r),
    };
    let sealed = edge
        .pages()
        .sealer
        .seal("request", request_ttl(edge), request);
    sign_in_form(req, out, display_name(&client), sealed, error, status)
}

/// The sign-in form, carrying `sealed` (the request, or the device's user code) through.
pub(super) fn sign_in_form(
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
pub(super) async fn answer_with_code(
    edge: &Core,
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
            request.dialect,
            status,
            &request.target,
            request.state.as_deref(),
            &e,
        ),
    }
}

pub(super) async fn issue_code(
    edge: &Core,
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
        let now = edge.now();
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
pub(super) async fn validate(
    edge: &Core,
    params: &crate::params::Params,
    dialect: AuthorizeDialect,
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
        Some(_) => return Err(Refusal::Page(dialect.unregistered_redirect())),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(page("redirect_uri is missing")),
    };
    let state = params.get("state").map(str::to_string);
    let back = |e: OAuthError| Refusal::Redirect(target.clone(), state.clone(), e, dialect);
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
        dialect,
    })
}

/// The request's client, still registered with the same redirect URI.
pub(super) async fn client_of(edge: &Core, request: &AuthzRequest) -> Result<Arc<Client>, Refusal> {
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

pub(super) fn refuse(edge: &Core, dialect: AuthorizeDialect, refusal: Refusal) -> Response<Bytes> {
    match refusal {
        Refusal::Page(e) if dialect.refuses_as_json() => {
            let mut r = crate::profiles::npr_error(&e);
            refused(&mut r, &e);
            r
        }
        Refusal::Page(e) => error_page(&e),
        Refusal::Redirect(target, state, e, dialect) => error_redirect(
            edge,
            dialect,
            StatusCode::FOUND,
            &target,
            state.as_deref(),
            &e,
        ),
    }
}

pub(super) fn error_redirect(
    edge: &Core,
    dialect: AuthorizeDialect,
    status: StatusCode,
    target: &str,
    state: Option<&str>,
    e: &OAuthError,
) -> Response<Bytes> {
    redirect_to(status, &error_url(edge, dialect, target, state, e))
}

/// Where an error goes back to the client, in the profile's dialect
/// ([`AuthorizeDialect::error_query`]).
pub(super) fn error_url(
    edge: &Core,
    dialect: AuthorizeDialect,
    target: &str,
    state: Option<&str>,
    e: &OAuthError,
) -> String {
    let issuer = edge.config().issuer.as_deref();
    with_query(target, &dialect.error_query(e, state, issuer))
}
