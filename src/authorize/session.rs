//! What the sign-in pages keep in the browser, signed: the session cookie, the CSRF cookie and
//! the tickets that carry an authorization request (or a device user code) through the pages.
//!
//! Everything is a MAC'd envelope under a key derived from the server's signing key, so any
//! instance sharing the store's keys accepts what another issued, and nothing needs storing.
//! A ticket names its purpose and expiry inside the MAC: a session cannot be passed off as a
//! request ticket, nor the other way round.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{header, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "oauth_edge_session";
/// The CSRF cookie's name.
pub(crate) const CSRF_COOKIE: &str = "oauth_edge_csrf";
/// The cookie that ties a hand-off to a login app to the browser that was sent there.
pub(crate) const LOGIN_COOKIE: &str = "oauth_edge_login";

const TAG_LEN: usize = 16;

/// What the session cookie holds, sealed: who signed in; a keyed tag of what the user
/// directory holds for them ([`UserDirectory::stamp`](crate::users::UserDirectory::stamp)),
/// when the directory knows them, so that a removed user or a new password ends the session;
/// and a random id, which sign-out remembers.
#[derive(Serialize, Deserialize)]
pub(crate) struct Session {
    /// The user.
    pub(crate) u: String,
    /// The tag of the user's stamp; `None` for a user the directory does not know (vouched
    /// for by the login app).
    pub(crate) s: Option<String>,
    /// The session id.
    pub(crate) i: String,
}

/// Signs and opens envelopes.
#[derive(Clone)]
pub(crate) struct Sealer {
    key: [u8; 32],
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    /// The purpose.
    p: String,
    /// Expiry, Unix seconds.
    e: i64,
    /// The content.
    v: T,
}

impl Sealer {
    pub(crate) fn new(server_key: &[u8; 32]) -> Self {
        Sealer {
            key: blake3::derive_key("oauth-edge 2026 sign-in pages", server_key),
        }
    }

    fn tag(&self, data: &[u8]) -> [u8; TAG_LEN] {
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&blake3::keyed_hash(&self.key, data).as_bytes()[..TAG_LEN]);
        out
    }

    /// `value` for `purpose`, valid for `ttl_secs`.
    pub(crate) fn seal<T: Serialize>(&self, purpose: &str, ttl_secs: u64, value: &T) -> String {
        let env = Envelope {
            p: purpose.to_string(),
            e: crate::unix_now() + ttl_secs as i64,
            v: value,
        };
        // Serialising plain data to JSON cannot fail.
        let json = serde_json::to_vec(&env).unwrap_or_default();
        let mut out = URL_SAFE_NO_PAD.encode(&json);
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(self.tag(&json)));
        out
    }

    /// Opens what [`Sealer::seal`] made for `purpose`, if unaltered and unexpired.
    pub(crate) fn open<T: DeserializeOwned>(&self, purpose: &str, sealed: &str) -> Option<T> {
        let (body, tag) = sealed.split_once('.')?;
        let json = URL_SAFE_NO_PAD.decode(body).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if tag.len() != TAG_LEN || !bool::from(self.tag(&json).ct_eq(&tag)) {
            return None;
        }
        let env: Envelope<T> = serde_json::from_slice(&json).ok()?;
        (env.p == purpose && crate::unix_now() < env.e).then_some(env.v)
    }

    /// The form token that goes with a CSRF cookie value.
    pub(crate) fn csrf_token(&self, cookie: &str) -> String {
        let mut data = b"csrf:".to_vec();
        data.extend_from_slice(cookie.as_bytes());
        URL_SAFE_NO_PAD.encode(self.tag(&data))
    }

    /// What a login challenge carries of the browser it was made for: a keyed hash of that
    /// browser's login cookie, so that neither the challenge nor the verifier reveals the
    /// cookie's value.
    pub(crate) fn browser_binding(&self, cookie: &str) -> String {
        let mut data = b"login-browser:".to_vec();
        data.extend_from_slice(cookie.as_bytes());
        URL_SAFE_NO_PAD.encode(self.tag(&data))
    }

    /// Whether a login cookie is the one a challenge was made for.
    pub(crate) fn browser_ok(&self, cookie: Option<&str>, binding: &str) -> bool {
        match cookie {
            Some(c) if !c.is_empty() => self
                .browser_binding(c)
                .as_bytes()
                .ct_eq(binding.as_bytes())
                .into(),
            _ => false,
        }
    }

    /// The tag of a user's directory stamp that a session carries: keyed, so the cookie
    /// tells nothing of the password or its hash.
    pub(crate) fn stamp_tag(&self, stamp: &[u8; 32]) -> String {
        let mut data = b"user-stamp:".to_vec();
        data.extend_from_slice(stamp);
        URL_SAFE_NO_PAD.encode(self.tag(&data))
    }

    /// Whether a session's stamp tag is the one of `stamp`.
    pub(crate) fn stamp_ok(&self, stamp: &[u8; 32], tag: &str) -> bool {
        self.stamp_tag(stamp)
            .as_bytes()
            .ct_eq(tag.as_bytes())
            .into()
    }

    /// Whether a posted form token matches the CSRF cookie.
    pub(crate) fn csrf_ok(&self, cookie: Option<&str>, posted: Option<&str>) -> bool {
        match (cookie, posted) {
            (Some(c), Some(p)) if !c.is_empty() => {
                self.csrf_token(c).as_bytes().ct_eq(p.as_bytes()).into()
            }
            _ => false,
        }
    }
}

/// The value of cookie `name` in the request, if sent once.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for pair in v.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=') {
                if k == name {
                    if found.is_some() {
                        // Two cookies of one name: one may have been planted by a sibling
                        // domain. Trust neither.
                        return None;
                    }
                    found = Some(val);
                }
            }
        }
    }
    found
}

/// A `Set-Cookie` value.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    path: &str,
    max_age: Option<u64>,
    same_site: &str,
    secure: bool,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; HttpOnly; SameSite={same_site}");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    // Names, paths and our base64url values are all valid header characters.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_are_bound_to_purpose_and_key() {
        let s = Sealer::new(&[7; 32]);
        let t = s.seal("session", 60, &"alice".to_string());
        assert_eq!(s.open::<String>("session", &t).as_deref(), Some("alice"));
        assert_eq!(s.open::<String>("request", &t), None);
        assert_eq!(Sealer::new(&[8; 32]).open::<String>("session", &t), None);
        let mut forged = t.clone();
        forged.replace_range(0..1, if t.starts_with('e') { "f" } else { "e" });
        assert_eq!(s.open::<String>("session", &forged), None);
        assert_eq!(s.open::<String>("session", "garbage"), None);
        assert_eq!(s.open::<String>("session", "a.b.c"), None);
    }

    #[test]
    fn a_browser_binding_needs_its_own_cookie() {
        let s = Sealer::new(&[7; 32]);
        let b = s.browser_binding("abc");
        assert!(s.browser_ok(Some("abc"), &b));
        assert!(!s.browser_ok(Some("abd"), &b));
        assert!(!s.browser_ok(None, &b));
        assert!(!s.browser_ok(Some(""), &s.browser_binding("")));
        // Not the CSRF token of the same value, nor another key's binding.
        assert_ne!(b, s.csrf_token("abc"));
        assert!(!Sealer::new(&[8; 32]).browser_ok(Some("abc"), &b));
        assert!(!b.contains("abc"));
    }

    #[test]
    fn a_stamp_tag_is_keyed_and_bound_to_the_stamp() {
        let s = Sealer::new(&[7; 32]);
        let t = s.stamp_tag(&[1; 32]);
        assert!(s.stamp_ok(&[1; 32], &t));
        assert!(!s.stamp_ok(&[2; 32], &t));
        assert!(!Sealer::new(&[8; 32]).stamp_ok(&[1; 32], &t));
        assert_ne!(t, URL_SAFE_NO_PAD.encode([1u8; 32]));
    }

    #[test]
    fn csrf_needs_the_cookie() {
        let s = Sealer::new(&[7; 32]);
        let t = s.csrf_token("abc");
        assert!(s.csrf_ok(Some("abc"), Some(&t)));
        assert!(!s.csrf_ok(Some("abd"), Some(&t)));
        assert!(!s.csrf_ok(None, Some(&t)));
        assert!(!s.csrf_ok(Some("abc"), None));
        assert!(!s.csrf_ok(Some(""), Some(&s.csrf_token(""))));
    }

    #[test]
    fn duplicate_cookies_are_not_trusted() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        h.append(header::COOKIE, HeaderValue::from_static("b=3"));
        assert_eq!(cookie(&h, "b"), None);
        assert_eq!(cookie(&h, "a"), Some("1"));
    }
}
