//! Form and query parameters, read the way RFC 6749 wants: an empty value counts as absent,
//! unknown parameters are ignored, and a parameter sent twice (in the body, in the query, or
//! once in each) makes the request invalid.

use crate::error::OAuthError;

/// Where a parameter came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The request URI's query.
    Query,
    /// The `application/x-www-form-urlencoded` body.
    Body,
}

/// The parameters of one request, query and body together.
#[derive(Default)]
pub struct Params {
    pairs: Vec<(String, String, Origin)>,
}

impl std::fmt::Debug for Params {
    // Values may be secrets, codes or tokens: print names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _, o)| (k, o)))
            .finish()
    }
}

impl Params {
    /// Parses a query string and a form body. A name that appears more than once with a
    /// non-empty value anywhere gives `invalid_request`.
    pub fn parse(query: Option<&str>, body: &[u8]) -> Result<Params, OAuthError> {
        let mut pairs: Vec<(String, String, Origin)> = Vec::new();
        let sources = [
            (query.unwrap_or("").as_bytes(), Origin::Query),
            (body, Origin::Body),
        ];
        for (bytes, origin) in sources {
            for (k, v) in form_urlencoded::parse(bytes) {
                if v.is_empty() {
                    continue;
                }
                if pairs.iter().any(|(pk, _, _)| *pk == k) {
                    return Err(OAuthError::invalid_request(repeated(&k)));
                }
                pairs.push((k.into_owned(), v.into_owned(), origin));
            }
        }
        Ok(Params { pairs })
    }

    /// The value of `name` from either origin.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_with_origin(name).map(|(v, _)| v)
    }

    /// The value of `name` and where it came from.
    pub fn get_with_origin(&self, name: &str) -> Option<(&str, Origin)> {
        self.pairs
            .iter()
            .find(|(k, _, _)| k == name)
            .map(|(_, v, o)| (v.as_str(), *o))
    }

    /// The value of `name`, only if it came from the body.
    pub fn body(&self, name: &str) -> Option<&str> {
        self.get_with_origin(name)
            .and_then(|(v, o)| (o == Origin::Body).then_some(v))
    }

    /// The value of `name`, or `invalid_request` naming it.
    pub fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter: {name}")))
    }
}

/// The description for a repeated parameter. Only well-known names are echoed; anything else
/// is called "a parameter", since the name itself is client input.
fn repeated(name: &str) -> String {
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
    match KNOWN.iter().find(|k| **k == name) {
        Some(k) => format!("parameter repeated: {k}"),
        None => "a parameter is repeated".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_absent_and_repeats_are_refused() {
        let p = Params::parse(Some("a=1"), b"b=2&c=&d=%20").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.body("a"), None);
        assert_eq!(p.body("b"), Some("2"));
        assert_eq!(p.get("c"), None);
        assert_eq!(p.get("d"), Some(" "));
        let e = Params::parse(None, b"grant_type=a&grant_type=b").unwrap_err();
        assert_eq!(e.description, "parameter repeated: grant_type");
        let e = Params::parse(Some("client_id=a"), b"client_id=a").unwrap_err();
        assert_eq!(e.description, "parameter repeated: client_id");
        let e = Params::parse(None, b"<script>=1&<script>=2").unwrap_err();
        assert!(!e.description.contains("script"));
        assert!(Params::parse(None, b"x=&x=1").is_ok());
    }
}
