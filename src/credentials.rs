//! Pulling client credentials out of a request.
//!
//! A request may carry HTTP Basic (RFC 6749 2.3.1, with the id and secret form-decoded),
//! `X-IBM-Client-Id`/`X-IBM-Client-Secret` headers, `client_id`/`client_secret` in the query
//! (where the endpoint allows it) or in the form body, a Bearer token, or a `client_id` alone.
//! RFC 6749 2.3 allows one method per request, so two secrets, or two ids that disagree, are
//! `invalid_request`. Nothing here touches a store: the result is checked by
//! [`crate::clients::ClientRegistry`].

use http::header::AUTHORIZATION;
use http::HeaderMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::error::{Challenge, OAuthError};
use crate::params::{Origin, Params};
use crate::secret::Secret;

/// `X-IBM-Client-Id`.
pub const IBM_CLIENT_ID: &str = "x-ibm-client-id";
/// `X-IBM-Client-Secret`.
pub const IBM_CLIENT_SECRET: &str = "x-ibm-client-secret";

/// Where a client secret was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `Authorization: Basic`.
    Basic,
    /// `X-IBM-Client-Secret` header.
    Header,
    /// `client_secret` query parameter.
    Query,
    /// `client_secret` form field.
    Form,
}

/// What the request presented.
#[derive(Debug)]
pub enum Presented {
    /// No credentials at all.
    Nothing,
    /// A client id with a secret.
    Secret {
        /// The client id.
        id: String,
        /// The secret.
        secret: Secret,
        /// Where the secret was.
        source: Source,
    },
    /// A Bearer token (a client_credentials token stands for its client), with the client id
    /// the request also named, if any, which must then be the token's client.
    Bearer {
        /// The token.
        token: Secret,
        /// A `client_id` sent alongside.
        id: Option<String>,
    },
    /// A client id alone.
    PublicId {
        /// The client id.
        id: String,
    },
}

impl Presented {
    /// The client id the request names, if any.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Presented::Secret { id, .. } | Presented::PublicId { id } => Some(id),
            _ => None,
        }
    }
}

/// The `Authorization` header, parsed.
#[derive(Debug)]
pub enum Authorization {
    /// None sent.
    Absent,
    /// `Basic`: the form-decoded id and secret.
    Basic(String, Secret),
    /// `Bearer`: the token.
    Bearer(Secret),
    /// Some other scheme.
    Other,
}

/// Parses the `Authorization` header. More than one is `invalid_request`; a Basic value that
/// is not base64, has no colon, or is not UTF-8 after decoding is `invalid_client`. The bytes
/// are never echoed.
pub fn authorization(headers: &HeaderMap) -> Result<Authorization, OAuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(Authorization::Absent);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_request(
            "more than one Authorization header",
        ));
    }
    let value = value.as_bytes();
    let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
        Some(i) => (&value[..i], trim(&value[i + 1..])),
        None => (value, &b""[..]),
    };
    if scheme.eq_ignore_ascii_case(b"basic") {
        let bad = || {
            OAuthError::invalid_client("malformed Basic credentials")
                .with_challenge(Some(Challenge::Basic))
        };
        let decoded = STANDARD.decode(rest).map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = text.split_once(':').ok_or_else(bad)?;
        let id = form_decode(id).ok_or_else(bad)?;
        let secret = form_decode(secret).ok_or_else(bad)?;
        if id.is_empty() {
            return Err(bad());
        }
        Ok(Authorization::Basic(id, Secret::new(secret)))
    } else if scheme.eq_ignore_ascii_case(b"bearer") {
        let token = std::str::from_utf8(rest)
            .ok()
            .filter(|t| !t.is_empty() && !t.contains(' '))
            .ok_or_else(|| {
                OAuthError::invalid_request("malformed Bearer credentials")
                    .with_challenge(Some(Challenge::Bearer))
            })?;
        Ok(Authorization::Bearer(Secret::new(token)))
    } else {
        Ok(Authorization::Other)
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| *c != b' ').unwrap_or(b.len());
    let end = b.iter().rposition(|c| *c != b' ').map_or(start, |e| e + 1);
    &b[start..end]
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte.
/// `None` when the result is not UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

fn one_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, OAuthError> {
    let mut it = headers.get_all(name).iter();
    let Some(v) = it.next() else { return Ok(None) };
    if it.next().is_some() {
        return Err(OAuthError::invalid_request(format!(
            "more than one {name} header"
        )));
    }
    let v = v
        .to_str()
        .map_err(|_| OAuthError::invalid_client("malformed client credentials"))?;
    Ok((!v.is_empty()).then_some(v))
}

/// Which places an endpoint looks in.
#[derive(Debug, Clone, Copy)]
pub struct Places {
    /// `client_id`/`client_secret` in the query string (IBM API Connect style). Where not
    /// allowed, a `client_secret` in the query is refused: RFC 6749 2.3.1 forbids it.
    pub query: bool,
}

/// Reads every credential the request carries and decides what it presents.
pub fn extract(
    headers: &HeaderMap,
    params: &Params,
    places: Places,
) -> Result<Presented, OAuthError> {
    let auth = authorization(headers)?;
    let ibm_id = one_header(headers, IBM_CLIENT_ID)?;
    let ibm_secret = one_header(headers, IBM_CLIENT_SECRET)?;
    let (mut query_id, mut query_secret, mut form_id, mut form_secret) = (None, None, None, None);
    if let Some((v, o)) = params.get_with_origin("client_id") {
        match o {
            Origin::Query => query_id = Some(v),
            Origin::Body => form_id = Some(v),
        }
    }
    if let Some((v, o)) = params.get_with_origin("client_secret") {
        match o {
            Origin::Query => query_secret = Some(v),
            Origin::Body => form_secret = Some(v),
        }
    }
    if !places.query && query_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "client_secret must not be sent in the request URI",
        ));
    }

    let (basic, bearer) = match auth {
        Authorization::Basic(id, secret) => (Some((id, secret)), None),
        Authorization::Bearer(t) => (None, Some(t)),
        Authorization::Absent | Authorization::Other => (None, None),
    };

    let secrets = usize::from(basic.is_some())
        + usize::from(bearer.is_some())
        + usize::from(ibm_secret.is_some())
        + usize::from(query_secret.is_some())
        + usize::from(form_secret.is_some());
    if secrets > 1 {
        return Err(OAuthError::invalid_request(
            "more than one client authentication method in one request",
        ));
    }

    // Every id the request names must be the same id.
    let basic_id = basic.as_ref().map(|(i, _)| i.clone());
    let mut id: Option<&str> = None;
    for candidate in [basic_id.as_deref(), ibm_id, query_id, form_id]
        .into_iter()
        .flatten()
    {
        match id {
            Some(prev) if prev != candidate => {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the authenticated client",
                ))
            }
            _ => id = Some(candidate),
        }
    }

    // Where the query is not a place for credentials, a client_id there is still an id the
    // request names, and must agree with the others; it just cannot identify a client alone.
    let named_elsewhere = basic_id.is_some() || ibm_id.is_some() || form_id.is_some();
    if !places.query && !named_elsewhere {
        id = None;
    }
    if let Some(token) = bearer {
        return Ok(Presented::Bearer {
            token,
            id: id.map(str::to_string),
        });
    }
    let secret = if let Some((_, s)) = basic {
        Some((s, Source::Basic))
    } else if let Some(s) = ibm_secret {
        Some((Secret::new(s), Source::Header))
    } else if let Some(s) = query_secret {
        Some((Secret::new(s), Source::Query))
    } else {
        form_secret.map(|s| (Secret::new(s), Source::Form))
    };
    Ok(match (id, secret) {
        (Some(id), Some((secret, source))) => Presented::Secret {
            id: id.to_string(),
            secret,
            source,
        },
        (None, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "client_secret sent without client_id",
            ))
        }
        (Some(id), None) => Presented::PublicId { id: id.to_string() },
        (None, None) => Presented::Nothing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    fn run(
        h: &[(&'static str, &str)],
        q: &str,
        body: &str,
        query: bool,
    ) -> Result<Presented, OAuthError> {
        let p = Params::parse(Some(q), body.as_bytes())?;
        extract(&headers(h), &p, Places { query })
    }

    #[test]
    fn basic_is_form_decoded() {
        let p = run(
            &[("authorization", &basic("a%20b", "p%3Aw+d"))],
            "",
            "",
            false,
        )
        .unwrap();
        let Presented::Secret { id, secret, source } = p else {
            panic!()
        };
        assert_eq!(
            (id.as_str(), secret.expose(), source),
            ("a b", "p:w d", Source::Basic)
        );
        // The scheme is case-insensitive.
        let lower = basic("c", "s").replacen("Basic", "bAsIc", 1);
        assert!(matches!(
            run(&[("authorization", &lower)], "", "", false).unwrap(),
            Presented::Secret { .. }
        ));
    }

    #[test]
    fn broken_basic_is_invalid_client() {
        for v in [
            "Basic !!!",
            "Basic Zm9v",
            "Basic /w==",
            "Basic OnNlY3JldA==",
        ] {
            let e = run(&[("authorization", v)], "", "", false).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClient, "{v}");
            assert_eq!(e.challenge, Some(Challenge::Basic));
            assert!(!e.description.contains("Zm9v"));
        }
    }

    #[test]
    fn ibm_headers_and_query_mix() {
        for (h, q) in [
            (
                vec![("x-ibm-client-id", "c"), ("x-ibm-client-secret", "s")],
                "",
            ),
            (vec![("x-ibm-client-id", "c")], "client_secret=s"),
            (vec![("x-ibm-client-secret", "s")], "client_id=c"),
            (vec![], "client_id=c&client_secret=s"),
        ] {
            let p = run(&h, q, "", true).unwrap();
            let Presented::Secret { id, secret, .. } = p else {
                panic!("{q}")
            };
            assert_eq!((id.as_str(), secret.expose()), ("c", "s"));
        }
    }

    #[test]
    fn query_secrets_are_refused_where_not_allowed() {
        let e = run(&[], "client_id=c&client_secret=s", "", false).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn two_methods_or_two_ids_are_invalid_request() {
        let b = basic("c", "s");
        for (h, body) in [
            (
                vec![("authorization", b.as_str())],
                "client_secret=s&client_id=c",
            ),
            (
                vec![("authorization", b.as_str()), ("x-ibm-client-secret", "s")],
                "",
            ),
            (
                vec![("authorization", "Bearer t")],
                "client_id=c&client_secret=s",
            ),
            (vec![("authorization", b.as_str())], "client_id=other"),
            (vec![("x-ibm-client-id", "a")], "client_id=b"),
            (
                vec![("authorization", b.as_str()), ("authorization", b.as_str())],
                "",
            ),
        ] {
            let e = run(&h, "", body, false).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{h:?} {body}");
        }
        // A query client_id must agree too, even where the query carries no credentials.
        let e = run(
            &[("authorization", b.as_str())],
            "client_id=other",
            "",
            false,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        // ...and alone it identifies nobody there.
        assert!(matches!(
            run(&[], "client_id=c", "", false).unwrap(),
            Presented::Nothing
        ));
        // The same id twice is fine.
        assert!(run(&[("authorization", b.as_str())], "", "client_id=c", false).is_ok());
    }

    #[test]
    fn public_and_bearer_and_nothing() {
        assert!(matches!(
            run(&[], "", "client_id=p", false).unwrap(),
            Presented::PublicId { .. }
        ));
        assert!(matches!(
            run(&[("authorization", "Bearer abc")], "", "", false).unwrap(),
            Presented::Bearer { .. }
        ));
        assert!(matches!(
            run(&[], "", "", false).unwrap(),
            Presented::Nothing
        ));
        assert_eq!(
            run(&[], "", "client_secret=s", false).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
    }
}
