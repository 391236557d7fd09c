//! `credentials::authorization(&HeaderMap)` and `credentials::extract(...)`.
//!
//! Input (text, lossily UTF-8): the first byte holds flags (bit 0: the endpoint allows
//! credentials in the query); then `name: value` header lines up to an empty line (the
//! one-letter names `a`, `i` and `s` stand for `authorization`, `x-ibm-client-id` and
//! `x-ibm-client-secret`); then one line of query; the rest is the form body.
//!
//! Checks, besides never panicking:
//! - a parsed Basic id is never empty, a Bearer token never empty and without a space;
//! - every error description is one of the fixed texts: no header, id or secret is echoed;
//! - `extract` fails whenever `authorization` does, refuses a query `client_secret` where
//!   the query is not allowed, and the id it returns is one the request named;
//! - round trips: any id and secret, form-encoded into `Basic base64(id:secret)` (scheme in
//!   any case, extra spaces), come back exactly; any token without spaces or control
//!   characters comes back from `Bearer <token>`.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use oauth_edge::credentials::{self, Authorization, Places, Presented, Source};
use oauth_edge::params::Params;
use oauth_edge::{ErrorCode, OAuthError};

/// Every description `credentials` (and `params`, which it reads) may give.
const DESCRIPTIONS: &[&str] = &[
    "more than one Authorization header",
    "malformed Basic credentials",
    "malformed Bearer credentials",
    "more than one x-ibm-client-id header",
    "more than one x-ibm-client-secret header",
    "malformed client credentials",
    "client_secret must not be sent in the request URI",
    "more than one client authentication method in one request",
    "client_id does not match the authenticated client",
    "client_secret sent without client_id",
];

fn check_error(e: &OAuthError) {
    assert!(
        DESCRIPTIONS.contains(&e.description.as_ref()),
        "unexpected description {:?}",
        e.description
    );
    assert!(matches!(
        e.code,
        ErrorCode::InvalidRequest | ErrorCode::InvalidClient
    ));
}

fn header_name(name: &str) -> Option<HeaderName> {
    match name.trim() {
        "a" => Some(AUTHORIZATION),
        "i" => Some(HeaderName::from_static(credentials::IBM_CLIENT_ID)),
        "s" => Some(HeaderName::from_static(credentials::IBM_CLIENT_SECRET)),
        n => HeaderName::from_bytes(n.as_bytes()).ok(),
    }
}

fn check_authorization(headers: &HeaderMap) -> Result<Authorization, OAuthError> {
    let auth = credentials::authorization(headers);
    match &auth {
        Ok(Authorization::Basic(id, _)) => assert!(!id.is_empty()),
        Ok(Authorization::Bearer(t)) => {
            assert!(!t.expose().is_empty() && !t.expose().contains(' '));
        }
        Ok(Authorization::Absent) => assert!(headers.get(AUTHORIZATION).is_none()),
        Ok(Authorization::Other) => {}
        Err(e) => check_error(e),
    }
    auth
}

fn round_trips(data: &[u8], flags: u8) {
    // Basic: split the input into an id and a secret, form-encode both.
    let text = String::from_utf8_lossy(data);
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let (id, secret) = text.split_at(cut);
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let scheme = ["Basic", "basic", "BASIC", "bAsIc"][usize::from(flags >> 1 & 3)];
    let pad = " ".repeat(usize::from(flags >> 3 & 3));
    let value = format!(
        "{scheme} {pad}{}{pad}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    );
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
    match credentials::authorization(&h) {
        Ok(Authorization::Basic(i, s)) => {
            assert_eq!((i.as_str(), s.expose()), (id, secret), "{value}");
        }
        Err(e) if id.is_empty() => {
            assert_eq!(e.code, ErrorCode::InvalidClient);
            check_error(&e);
        }
        other => panic!("{value:?} for ({id:?}, {secret:?}) gave {other:?}"),
    }

    // Bearer: anything without spaces and control characters is a token.
    let token: String = text
        .chars()
        .filter(|c| *c != ' ' && !c.is_control())
        .collect();
    if token.is_empty() {
        return;
    }
    let value = format!("Bearer {pad}{token}{pad}");
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
    match credentials::authorization(&h) {
        Ok(Authorization::Bearer(t)) => assert_eq!(t.expose(), token),
        other => panic!("{value:?} gave {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    round_trips(rest, flags);

    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let mut headers = HeaderMap::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Some(name), Ok(value)) = (
            header_name(name),
            HeaderValue::from_str(value.trim_start_matches(' ')),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let query = lines.next();
    let body = lines.collect::<Vec<_>>().join("\n");

    let auth = check_authorization(&headers);
    let Ok(params) = Params::parse(query, body.as_bytes()) else {
        return;
    };
    let places = Places {
        query: flags & 1 == 1,
    };
    let presented = credentials::extract(&headers, &params, places);
    if let Err(e) = &auth {
        assert_eq!(
            presented.as_ref().err(),
            Some(e),
            "extract must fail as authorization did"
        );
    }
    let query_secret = params
        .get_with_origin("client_secret")
        .is_some_and(|(_, o)| o == oauth_edge::params::Origin::Query);
    if query_secret && !places.query {
        assert!(presented.is_err(), "a query client_secret was taken");
    }
    // The ids the request names.
    let named: Vec<String> = [
        match &auth {
            Ok(Authorization::Basic(id, _)) => Some(id.clone()),
            _ => None,
        },
        headers
            .get(credentials::IBM_CLIENT_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        params.get("client_id").map(str::to_string),
    ]
    .into_iter()
    .flatten()
    .collect();
    match presented {
        Ok(Presented::Secret { id, source, .. }) => {
            assert!(!id.is_empty());
            assert!(named.contains(&id), "{id:?} not named in {named:?}");
            if source == Source::Query {
                assert!(places.query);
            }
        }
        Ok(Presented::PublicId { id }) => {
            assert!(!id.is_empty());
            assert!(named.contains(&id), "{id:?} not named in {named:?}");
        }
        Ok(Presented::Bearer { id, token }) => {
            assert!(matches!(auth, Ok(Authorization::Bearer(_))));
            assert!(!token.expose().is_empty());
            if let Some(id) = id {
                assert!(named.contains(&id), "{id:?} not named in {named:?}");
            }
        }
        Ok(Presented::Nothing) => {}
        Err(e) => check_error(&e),
    }
});
