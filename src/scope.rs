//! Scope sets (RFC 6749 3.3): space-delimited, order-free, case-sensitive.

use std::fmt;

/// A set of scope tokens, kept sorted and without duplicates.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(Vec<Box<str>>);

/// A scope string that breaks RFC 6749 3.3's grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope contains a character outside RFC 6749 3.3's scope-token grammar")]
pub struct BadScope;

impl Scopes {
    /// Parses a space-delimited scope string. Several spaces in a row are tolerated; characters
    /// outside `%x21 / %x23-5B / %x5D-7E` are not.
    pub fn parse(s: &str) -> Result<Self, BadScope> {
        let mut v: Vec<Box<str>> = Vec::new();
        for tok in s.split(' ').filter(|t| !t.is_empty()) {
            if !tok
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return Err(BadScope);
            }
            v.push(tok.into());
        }
        v.sort();
        v.dedup();
        Ok(Scopes(v))
    }

    /// Builds a set from known-good scope tokens.
    pub fn from_iter<I: IntoIterator<Item = S>, S: AsRef<str>>(it: I) -> Self {
        let mut v: Vec<Box<str>> = it.into_iter().map(|s| s.as_ref().into()).collect();
        v.sort();
        v.dedup();
        Scopes(v)
    }

    /// True when every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    /// True when the set holds `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.binary_search_by(|s| (**s).cmp(scope)).is_ok()
    }

    /// The scopes of `self` that are also in `other`.
    pub fn intersect(&self, other: &Scopes) -> Scopes {
        Scopes(
            self.0
                .iter()
                .filter(|s| other.contains(s))
                .cloned()
                .collect(),
        )
    }

    /// True for the empty set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| &**s)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes(\"{self}\")")
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
    fn refuses_characters_outside_the_grammar() {
        assert_eq!(Scopes::parse("a\"b"), Err(BadScope));
        assert_eq!(Scopes::parse("a\\b"), Err(BadScope));
        assert_eq!(Scopes::parse("é"), Err(BadScope));
        assert!(Scopes::parse("identity.readonly listening:write").is_ok());
    }
}
