//! What the pages answer with: the cookies set on the way out, HTML pages, error pages and
//! redirects.

use super::*;

/// Cookies to set on the way out.
pub(super) struct Out {
    pub(super) secure: bool,
    pub(super) path: String,
    pub(super) csrf_cookie: Option<String>,
    pub(super) new_csrf: Option<String>,
    pub(super) login_cookie: Option<String>,
    /// The login cookie to set, and for how long.
    pub(super) new_login: Option<(String, u64)>,
    pub(super) session: Option<String>,
    pub(super) session_ttl: u64,
    /// Clear the session cookie on the way out (sign-out).
    pub(super) end_session: bool,
}

impl Out {
    pub(super) fn new(req: &Request<'_>) -> Self {
        let cfg = &req.edge.config().authorization;
        let secure = cfg.secure_cookies.unwrap_or_else(|| {
            req.edge
                .config()
                .issuer
                .as_deref()
                .is_some_and(|i| i.starts_with("https://"))
                || req.head.uri.scheme_str() == Some("https")
                || req.head.extensions.get::<crate::engine::Tls>().is_some()
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
    pub(super) fn csrf_token(&mut self, edge: &Core) -> String {
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
    pub(super) fn hand_off(
        &mut self,
        edge: &Core,
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
    pub(super) fn come_back(&self, edge: &Core, verifier: &str) -> Option<(Pending, String)> {
        let sealer = &edge.pages().sealer;
        let Verified { challenge, user } = sealer.open::<Verified>("verifier", verifier)?;
        sealer
            .browser_ok(self.login_cookie.as_deref(), &challenge.browser)
            .then_some((challenge.pending, user))
    }

    /// The answer to a form post that fails the CSRF checks; `None` when it passes.
    pub(super) fn csrf_refusal(&self, req: &Request<'_>) -> Option<Response<Bytes>> {
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
    pub(super) async fn session(&self, req: &Request<'_>) -> Option<Session> {
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
            match req.edge.users.stamp(&s.u).await {
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

    pub(super) async fn session_user(&self, req: &Request<'_>) -> Option<String> {
        self.session(req).await.map(|s| s.u)
    }

    /// Remembers `user` in this browser, bound to the directory's stamp of them. When the
    /// directory cannot answer, the sign-in counts for this request only.
    pub(super) async fn sign_in_as(&mut self, edge: &Core, user: &str) {
        let stamp = match edge.users.stamp(user).await {
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

    pub(super) fn finish(self, mut resp: Response<Bytes>) -> Response<Bytes> {
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
pub(super) fn same_origin(req: &Request<'_>) -> bool {
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

pub(super) fn request_ttl(edge: &Core) -> u64 {
    edge.config().authorization.request_ttl.as_secs()
}

pub(super) fn display_name(client: &Client) -> String {
    client.name.clone().unwrap_or_else(|| client.id.to_string())
}

pub(super) fn scope_list(scope: &str) -> Vec<(String, Option<String>)> {
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
    refused(&mut r, e);
    r
}

/// Settles the headers and status of a refusal by a page: `Retry-After` where due, and, as a
/// page accepts no HTTP authentication scheme, a 400 where the error would be a 401 (a Basic
/// challenge would make the browser ask for a password that nothing here reads).
pub(super) fn refused(r: &mut Response<Bytes>, e: &OAuthError) {
    crate::profiles::rfc_decorate(r, e);
    crate::profiles::settle_challenges(r, &[], e);
}

pub(super) fn bad_verifier() -> Response<Bytes> {
    error_page(&OAuthError::invalid_request(
        "the sign-in has expired or is not valid; start again from the application",
    ))
}

pub(super) fn expired_page() -> Response<Bytes> {
    error_page(&OAuthError::invalid_request(
        "the sign-in request has expired; start again from the application",
    ))
}

pub(super) fn done_page(status: StatusCode, title: &str, message: &str) -> Response<Bytes> {
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
pub(super) fn with_query(base: &str, q: &[(&str, &str)]) -> String {
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

pub(super) fn redirect(status: StatusCode, base: &str, q: &[(&str, &str)]) -> Response<Bytes> {
    redirect_to(status, &with_query(base, q))
}

pub(super) fn redirect_to(status: StatusCode, url: &str) -> Response<Bytes> {
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
    fn redirects_keep_the_registered_query() {
        assert_eq!(
            with_query("https://app/cb?x=1", &[("code", "a b"), ("state", "s&t")]),
            "https://app/cb?x=1&code=a%20b&state=s%26t"
        );
    }
}
