//! Scope sets (RFC 6749 3.3): space-delimited, order-free, case-sensitive.

use std::fmt;
use std::sync::Arc;

/// A set of scope tokens, kept as one normalised string: sorted, without duplicates, joined by
/// single spaces. Cloning is a reference-count increment, and the string is ready to be a
/// header value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scopes(Arc<str>);

impl Default for Scopes {
    fn default() -> Self {
        Scopes(Arc::from(""))
    }
}

/// A scope string that breaks RFC 6749 3.3's grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope contains a character outside RFC 6749 3.3's scope-token grammar")]
pub struct BadScope;

impl Scopes {
    /// Parses a space-delimited scope string. Several spaces in a row are tolerated; characters
    /// outside `%x21 / %x23-5B / %x5D-7E` are not.
    pub fn parse(s: &str) -> Result<Self, BadScope> {
        let mut v: Vec<&str> = Vec::new();
        for tok in s.split(' ').filter(|t| !t.is_empty()) {
            if !tok
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return Err(BadScope);
            }
            v.push(tok);
        }
        Ok(Self::from_iter(v))
    }

    /// True when every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &Scopes) -> bool {
        // Most routes require no scope: no need to split anything then.
        self.is_empty() || self.iter().all(|s| other.contains(s))
    }

    /// True when the set holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.iter().any(|s| s == scope)
    }

    /// The scopes of `self` that are also in `other`.
    pub fn intersect(&self, other: &Scopes) -> Scopes {
        Self::from_iter(self.iter().filter(|s| other.contains(s)))
    }

    /// True for the empty set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|s| !s.is_empty())
    }

    /// The normalised space-separated form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared string itself, which clones of this set hold too.
    pub(crate) fn shared(&self) -> &Arc<str> {
        &self.0
    }
}

/// Builds a set from known-good scope tokens.
impl<S: AsRef<str>> FromIterator<S> for Scopes {
    fn from_iter<I: IntoIterator<Item = S>>(it: I) -> Self {
        let mut v: Vec<String> = Vec::new();
        for s in it {
            v.extend(
                s.as_ref()
                    .split(' ')
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned),
            );
        }
        v.sort();
        v.dedup();
        Scopes(v.join(" ").into())
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({:?})", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_normalises_and_compares() {
        let a = Scopes::parse("write  read read").unwrap();
        assert_eq!(a.to_string(), "read write");
        let b = Scopes::parse("read").unwrap();
        assert!(b.is_subset(&a));
        assert!(!a.is_subset(&b));
        assert!(Scopes::parse("").unwrap().is_empty());
        assert_eq!(a.intersect(&b), b);
    }

    #[test]
    fn building_from_items_normalises_like_parsing() {
        let built: Scopes = ["", "b a", "a"].into_iter().collect();
        assert_eq!(built, Scopes::parse("a b").unwrap());
        assert_eq!(built.as_str(), "a b");
    }

    #[test]
    fn refuses_characters_outside_the_grammar() {
        assert_eq!(Scopes::parse("a\"b"), Err(BadScope));
        assert_eq!(Scopes::parse("a\\b"), Err(BadScope));
        assert_eq!(Scopes::parse("é"), Err(BadScope));
        assert!(Scopes::parse("identity.readonly listening:write").is_ok());
    }
}
