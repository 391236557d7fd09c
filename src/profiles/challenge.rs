//! `WWW-Authenticate` on refused client authentication (RFC 9110 11.6.1 and 15.5.2, RFC 6749
//! 5.2, RFC 6750 3).
//!
//! A 401 names every HTTP authentication scheme the endpoint accepts, one challenge each, in
//! the realm `oauth-edge`: `Basic` where `client_secret_basic` is accepted, `Bearer` where a
//! `client_credentials` token is. Whatever the request tried, the answer names what would work
//! there: a Bearer token at a token endpoint is answered with the Basic challenge. The Bearer
//! challenge carries `error="invalid_token"` only when a token was sent (RFC 6750 3.1). Form
//! fields, the `X-IBM-*` pair and a bare `client_id` have no HTTP scheme: at an endpoint that
//! accepts nothing else there is no challenge to send, and what would have been a 401 is a 400
//! (RFC 6749 5.2's status for every other error), with the same body.

use bytes::Bytes;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::config::AuthMethod;
use crate::error::{Challenge, ErrorCode, OAuthError};

/// The Basic challenge.
const BASIC: HeaderValue = HeaderValue::from_static("Basic realm=\"oauth-edge\"");
/// The Bearer challenge when no token was sent.
const BEARER: HeaderValue = HeaderValue::from_static("Bearer realm=\"oauth-edge\"");
/// The Bearer challenge when the token sent was refused.
const BEARER_INVALID_TOKEN: HeaderValue =
    HeaderValue::from_static("Bearer realm=\"oauth-edge\", error=\"invalid_token\"");
/// The Bearer challenge when the Authorization header could not be read as Bearer.
const BEARER_INVALID_REQUEST: HeaderValue =
    HeaderValue::from_static("Bearer realm=\"oauth-edge\", error=\"invalid_request\"");

/// The HTTP authentication schemes among client authentication methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Schemes {
    /// HTTP Basic (`client_secret_basic`, RFC 6749 2.3.1).
    basic: bool,
    /// Bearer (`client_credentials_bearer`, RFC 6750).
    bearer: bool,
}

impl Schemes {
    /// The schemes of `methods`.
    fn of(methods: &[AuthMethod]) -> Self {
        Schemes {
            basic: methods.contains(&AuthMethod::ClientSecretBasic),
            bearer: methods.contains(&AuthMethod::ClientCredentialsBearer),
        }
    }

    /// True when none of the methods is an HTTP scheme.
    fn is_empty(self) -> bool {
        !self.basic && !self.bearer
    }
}

/// Settles the challenges of `resp`, the answer to `e` at an endpoint that accepts `methods`:
/// on a 401, one challenge per scheme the endpoint accepts, or a 400 where it accepts none; on
/// the 400 of a malformed Bearer header, the Bearer challenge saying `invalid_request` where
/// Bearer is accepted (RFC 6750 3.1). Any other answer carries no challenge.
pub(crate) fn settle(resp: &mut Response<Bytes>, methods: &[AuthMethod], e: &OAuthError) {
    let schemes = Schemes::of(methods);
    let token_sent = e.challenge == Some(Challenge::Bearer);
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED {
        if schemes.is_empty() {
            *resp.status_mut() = StatusCode::BAD_REQUEST;
        } else {
            append(resp.headers_mut(), schemes, token_sent);
        }
    } else if status == StatusCode::BAD_REQUEST
        && token_sent
        && schemes.bearer
        && e.code == ErrorCode::InvalidRequest
    {
        resp.headers_mut()
            .append(WWW_AUTHENTICATE, BEARER_INVALID_REQUEST);
    }
}

/// Puts the Basic challenge before those `resp` has: the Bearer refusal of a route that also
/// takes client credentials.
pub(crate) fn basic_first(resp: &mut Response<Bytes>) {
    let h = resp.headers_mut();
    let rest: Vec<HeaderValue> = h.get_all(WWW_AUTHENTICATE).iter().cloned().collect();
    h.remove(WWW_AUTHENTICATE);
    h.append(WWW_AUTHENTICATE, BASIC);
    for v in rest {
        h.append(WWW_AUTHENTICATE, v);
    }
}

/// Appends the challenges of `schemes`, Basic first; the Bearer one says `invalid_token` when
/// `token_sent`.
fn append(h: &mut HeaderMap, schemes: Schemes, token_sent: bool) {
    if schemes.basic {
        h.append(WWW_AUTHENTICATE, BASIC);
    }
    if schemes.bearer {
        h.append(
            WWW_AUTHENTICATE,
            if token_sent {
                BEARER_INVALID_TOKEN
            } else {
                BEARER
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AuthMethod::*;

    fn answer(e: &OAuthError, methods: &[AuthMethod]) -> (StatusCode, Vec<String>) {
        let mut r = crate::profiles::rfc_error(e);
        settle(&mut r, methods, e);
        let c = r
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        (r.status(), c)
    }

    #[test]
    fn a_401_names_the_endpoints_schemes_whatever_was_tried() {
        let failed = OAuthError::invalid_client("client authentication failed");
        let token = failed.clone().with_challenge(Some(Challenge::Bearer));
        let basic = failed.clone().with_challenge(Some(Challenge::Basic));
        let all = [ClientSecretBasic, ClientSecretPost, ClientCredentialsBearer];
        for e in [&failed, &basic] {
            assert_eq!(
                answer(e, &all),
                (
                    StatusCode::UNAUTHORIZED,
                    vec![
                        "Basic realm=\"oauth-edge\"".to_string(),
                        "Bearer realm=\"oauth-edge\"".to_string()
                    ]
                )
            );
        }
        assert_eq!(
            answer(&token, &all).1[1],
            "Bearer realm=\"oauth-edge\", error=\"invalid_token\""
        );
        // A token where only Basic works: the Basic challenge.
        assert_eq!(
            answer(&token, &[ClientSecretBasic, ClientSecretPost]).1,
            ["Basic realm=\"oauth-edge\""]
        );
        // Basic where only a token works: the Bearer challenge, without an error code.
        assert_eq!(
            answer(&basic, &[ClientCredentialsBearer]).1,
            ["Bearer realm=\"oauth-edge\""]
        );
    }

    #[test]
    fn without_an_http_scheme_a_401_is_a_400() {
        let e = OAuthError::invalid_client("client authentication failed")
            .with_challenge(Some(Challenge::Basic));
        assert_eq!(
            answer(&e, &[ClientSecretPost, ClientSecretHeader, None]),
            (StatusCode::BAD_REQUEST, vec![])
        );
    }

    #[test]
    fn other_answers_carry_no_challenge_but_a_malformed_bearer_header() {
        let malformed = OAuthError::invalid_request("malformed Bearer credentials")
            .with_challenge(Some(Challenge::Bearer));
        assert_eq!(
            answer(&malformed, &[ClientCredentialsBearer]).1,
            ["Bearer realm=\"oauth-edge\", error=\"invalid_request\""]
        );
        assert!(answer(&malformed, &[ClientSecretBasic]).1.is_empty());
        let throttled = OAuthError::invalid_client("too many failed attempts; retry later")
            .with_status(StatusCode::TOO_MANY_REQUESTS);
        assert!(answer(&throttled, &[ClientSecretBasic]).1.is_empty());
    }
}
