//! `Params::parse(query, body)`: form/query parsing.
//!
//! Input: the bytes up to the first `\n` are the query (lossily UTF-8), the rest the body; no
//! `\n` means no query at all.
//!
//! Checks, besides never panicking:
//! - the result agrees with a plain reading of RFC 6749 3.1/3.2: every non-empty name-value
//!   pair is kept with its origin, empty values are absent, and any name given twice with a
//!   value (in either place) is `invalid_request`;
//! - the error description names only well-known parameters, never other client input;
//! - `Debug` prints names and origins only, never a value;
//! - serialising what was parsed and parsing it again gives the same parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_edge::params::{Origin, Params};
use oauth_edge::ErrorCode;

/// The names `params` may echo in an error description.
const KNOWN: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "username",
    "password",
    "refresh_token",
    "code",
    "redirect_uri",
    "code_verifier",
    "device_code",
    "token",
    "token_type_hint",
    "token_type",
    "state",
    "response_type",
];

type Pairs = Vec<(String, String, Origin)>;

/// What the parameters should be: `Err(name)` for the first name given twice.
fn expected(query: Option<&str>, body: &[u8]) -> Result<Pairs, String> {
    let mut pairs: Pairs = Vec::new();
    for (bytes, origin) in [
        (query.unwrap_or("").as_bytes(), Origin::Query),
        (body, Origin::Body),
    ] {
        for (k, v) in form_urlencoded::parse(bytes) {
            if v.is_empty() {
                continue;
            }
            if pairs.iter().any(|(pk, _, _)| *pk == k) {
                return Err(k.into_owned());
            }
            pairs.push((k.into_owned(), v.into_owned(), origin));
        }
    }
    Ok(pairs)
}

fn check_matches(p: &Params, pairs: &Pairs) {
    for (k, v, o) in pairs {
        assert_eq!(p.get_with_origin(k), Some((v.as_str(), *o)), "{k:?}");
        assert_eq!(p.get(k), Some(v.as_str()));
        assert_eq!(p.body(k), (*o == Origin::Body).then_some(v.as_str()));
    }
    for name in KNOWN {
        if !pairs.iter().any(|(k, _, _)| k == name) {
            assert_eq!(p.get(name), None, "{name}");
            assert!(p.require(name).is_err());
        } else {
            assert!(p.require(name).is_ok());
        }
    }
    let debug = format!(
        "{:?}",
        pairs.iter().map(|(k, _, o)| (k, o)).collect::<Vec<_>>()
    );
    assert_eq!(format!("{p:?}"), debug, "Debug must show names only");
}

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (Some(String::from_utf8_lossy(&data[..i])), &data[i + 1..]),
        None => (None, data),
    };
    let query = query.as_deref();
    let want = expected(query, body);
    match (Params::parse(query, body), want) {
        (Ok(p), Ok(pairs)) => {
            check_matches(&p, &pairs);
            // Serialise and parse again: the same parameters come back.
            let mut q = form_urlencoded::Serializer::new(String::new());
            let mut b = form_urlencoded::Serializer::new(String::new());
            for (k, v, o) in &pairs {
                match o {
                    Origin::Query => q.append_pair(k, v),
                    Origin::Body => b.append_pair(k, v),
                };
            }
            let (q, b) = (q.finish(), b.finish());
            let again = Params::parse(Some(&q), b.as_bytes())
                .unwrap_or_else(|e| panic!("re-serialised parameters refused: {e:?}"));
            check_matches(&again, &pairs);
        }
        (Err(e), Err(name)) => {
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            let named = KNOWN.iter().find(|k| **k == name);
            let want = match named {
                Some(k) => format!("parameter repeated: {k}"),
                None => "a parameter is repeated".to_string(),
            };
            assert_eq!(e.description, want);
        }
        (Ok(p), Err(name)) => panic!("{name:?} is repeated, yet accepted: {p:?}"),
        (Err(e), Ok(pairs)) => panic!("refused ({e:?}) with no repeated name: {pairs:?}"),
    }
});
