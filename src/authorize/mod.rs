//! The flows a person takes part in: `GET /authorize` with sign-in and consent (RFC 6749 4.1,
//! RFC 7636), and the device verification page (RFC 8628 3.3).
//!
//! Sign-in is either the built-in page, backed by the [`UserDirectory`](crate::users), or a
//! hand-off to an existing login app (`authorization.login_url`): the edge redirects there with
//! a `login_challenge`, and the app settles it with [`Core::accept_login`](crate::engine::Core::accept_login) or
//! [`Core::reject_login`](crate::engine::Core::reject_login) (the gateway's admin API calls these), Hydra's pattern. The
//! challenge, and so the verifier that brings the browser back, is bound to the browser that
//! was sent: a keyed hash of its `oauth_edge_login` cookie (`SameSite=Lax`) is sealed into it.
//!
//! Errors before the client and its `redirect_uri` are known good are shown as a page, never
//! redirected (RFC 6749 4.1.2.1); after that they go back to the client as query parameters.
//! Every form carries a CSRF token bound to a cookie; the session cookie is `HttpOnly`,
//! `SameSite=Lax`, and `Secure` when served over TLS.
//!
//! | file | holds |
//! |---|---|
//! | `code.rs` | the code flow: validation, sign-in, consent, the answer to the client |
//! | `device.rs` | the device verification page and its user codes |
//! | `handoff.rs` | the hand-off to a login app, and how the app settles it |
//! | `responses.rs` | the cookies set on the way out, pages, error pages, redirects |
//! | `session.rs` | the session, CSRF and login cookies, and what is sealed into them |
//! | `sign_out.rs` | sign-out |
//!
//! How a profile's flow speaks (NPR's JSON refusals and `message` parameter) is its
//! [`AuthorizeDialect`](crate::profiles::AuthorizeDialect), carried with the request.

mod code;
mod device;
mod handoff;
mod responses;
pub(crate) mod session;
mod sign_out;

pub(crate) use code::authorize;
pub(crate) use device::{device, display_user_code, new_user_code};
pub(crate) use responses::{error_page, html};

use code::*;
use responses::*;

pub(crate) use sign_out::sign_out;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use serde::{Deserialize, Serialize};

use crate::clients::Client;
use crate::endpoints::Request;
use crate::engine::Core;
use crate::error::{ErrorCode, OAuthError};
use crate::pages;
use crate::passwords::SignIn;
use crate::profiles::AuthorizeDialect;
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
    let inner = &req.edge;
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
