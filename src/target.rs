//! The request target in the one form the edge matches routes on and forwards.
//!
//! An upstream that normalises paths (nginx, static file servers, most routers) serves
//! `/public/../private/x` as `/private/x`. Were routes matched on the path as sent, a request
//! could walk past a route's check into another route's content. So every request is first
//! put in a canonical form, routes and endpoints are matched on that form, and exactly that
//! form goes upstream:
//!
//! - `%XX` escapes of unreserved characters are decoded (RFC 3986 6.2.2.2), other escapes
//!   are written with upper-case hex (6.2.2.1), and characters outside RFC 3986's `pchar`
//!   are escaped;
//! - empty segments (`//`) are merged, then dot-segments removed (5.2.4), decoded
//!   `%2e%2e` included;
//! - what stays ambiguous is refused: an escaped `/` or `\` (`%2F`, `%5C`), a raw `\`, a `;`
//!   in a segment (path parameters, which some servers strip before matching), a `..` that
//!   would climb above the root, control characters and malformed escapes.
//!
//! The host is lower-cased, loses one trailing dot and an empty port; a port that is not a
//! number, a name that is not a DNS-style name or an IP literal, and a repeated or
//! conflicting host are refused.

use std::borrow::Cow;
use std::fmt;

use http::request::Parts;
use http::{header, HeaderValue, Uri};

/// Why a request target was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    /// The path does not start with `/`.
    NotOrigin,
    /// `%2F` or `%5C`: a separator hidden in an escape.
    EncodedSeparator,
    /// A raw `\`.
    Backslash,
    /// A `;` in a segment.
    Semicolon,
    /// A `..` above the root.
    AboveRoot,
    /// A control character, raw or escaped, or an escape that is not `%` and two hex digits.
    BadByte,
    /// A host that is not a name, an IPv4 or a bracketed IPv6 address.
    BadHost,
    /// A port that is not a number from 1 to 65535.
    BadPort,
    /// More than one `Host`, or a `Host` that differs from the request URI's authority.
    ConflictingHost,
}

impl TargetError {
    /// The error description the client is told.
    pub fn describe(self) -> &'static str {
        match self {
            TargetError::NotOrigin => "the request path must start with /",
            TargetError::EncodedSeparator => "the request path holds an escaped / or \\",
            TargetError::Backslash => "the request path holds a \\",
            TargetError::Semicolon => "the request path holds a ; in a segment",
            TargetError::AboveRoot => "the request path climbs above the root",
            TargetError::BadByte => "the request path holds a control character or a bad escape",
            TargetError::BadHost => "the Host is not a valid host name",
            TargetError::BadPort => "the Host's port is not a number",
            TargetError::ConflictingHost => "the request names more than one host",
        }
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

impl std::error::Error for TargetError {}

/// RFC 3986 `pchar` without `%` and `;`: the bytes a canonical segment holds as they are.
const fn plain_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'='
                    | b':'
                    | b'@'
            );
        i += 1;
    }
    t
}

static PLAIN: [bool; 256] = plain_table();

fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// The canonical form of a request path (no query). Borrowed when `raw` is already
/// canonical, which is one pass over its bytes.
pub fn path(raw: &str) -> Result<Cow<'_, str>, TargetError> {
    let b = raw.as_bytes();
    if b == b"*" {
        // `OPTIONS *` names the server, not a resource.
        return Ok(Cow::Borrowed(raw));
    }
    if b.first() != Some(&b'/') {
        return Err(TargetError::NotOrigin);
    }
    if is_canonical(b) {
        return Ok(Cow::Borrowed(raw));
    }
    let out = rebuild(b)?;
    Ok(if out == raw {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(out)
    })
}

/// True when every byte is plain and no segment but the last is empty, `.` or `..`.
fn is_canonical(b: &[u8]) -> bool {
    let mut start = 1;
    for i in 1..=b.len() {
        if i == b.len() || b[i] == b'/' {
            let seg = &b[start..i];
            if seg == b"." || seg == b".." || (seg.is_empty() && i != b.len()) {
                return false;
            }
            start = i + 1;
        } else if !PLAIN[b[i] as usize] {
            return false;
        }
    }
    true
}

fn rebuild(b: &[u8]) -> Result<String, TargetError> {
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    // Where each kept segment's `/` is in `out`, to drop it again on `..`.
    let mut starts: Vec<usize> = Vec::new();
    let mut seg = Vec::new();
    let mut parts = b[1..].split(|&c| c == b'/').peekable();
    let mut trailing = false;
    while let Some(raw) = parts.next() {
        let last = parts.peek().is_none();
        seg.clear();
        decode_segment(raw, &mut seg)?;
        match seg.as_slice() {
            b"" | b"." => trailing = last,
            b".." => {
                let Some(s) = starts.pop() else {
                    return Err(TargetError::AboveRoot);
                };
                out.truncate(s);
                trailing = last;
            }
            s => {
                starts.push(out.len());
                out.push(b'/');
                out.extend_from_slice(s);
                trailing = false;
            }
        }
    }
    if trailing || out.is_empty() {
        out.push(b'/');
    }
    // Only ASCII was pushed.
    Ok(String::from_utf8(out).expect("ASCII"))
}

fn decode_segment(raw: &[u8], out: &mut Vec<u8>) -> Result<(), TargetError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let escape = |out: &mut Vec<u8>, c: u8| {
        out.extend_from_slice(&[b'%', HEX[(c >> 4) as usize], HEX[(c & 15) as usize]]);
    };
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        match c {
            b'%' => {
                let hex = |k: usize| raw.get(k).and_then(|&h| (h as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    return Err(TargetError::BadByte);
                };
                let v = (hi * 16 + lo) as u8;
                match v {
                    b'/' | b'\\' => return Err(TargetError::EncodedSeparator),
                    0..=0x1f | 0x7f => return Err(TargetError::BadByte),
                    v if unreserved(v) => out.push(v),
                    v => escape(out, v),
                }
                i += 3;
                continue;
            }
            b'\\' => return Err(TargetError::Backslash),
            b';' => return Err(TargetError::Semicolon),
            0..=0x20 | 0x7f => return Err(TargetError::BadByte),
            c if PLAIN[c as usize] => out.push(c),
            // `"`, `<`, `{`, non-ASCII and the like: escaped, as a client should have sent them.
            c => escape(out, c),
        }
        i += 1;
    }
    Ok(())
}

/// The canonical form of a host with its optional port: `name[:port]`, lower case, without
/// a trailing dot or an empty port. Borrowed when `raw` is already canonical.
pub fn host(raw: &str) -> Result<Cow<'_, str>, TargetError> {
    if host_is_canonical(raw.as_bytes()) {
        return Ok(Cow::Borrowed(raw));
    }
    host_full(raw)
}

fn host_full(raw: &str) -> Result<Cow<'_, str>, TargetError> {
    let (name, port) = split_port(raw)?;
    let name_out = if let Some(inner) = name.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(TargetError::BadHost)?;
        inner
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| TargetError::BadHost)?;
        if inner.bytes().any(|c| c.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        }
    } else {
        let trimmed = name.strip_suffix('.').unwrap_or(name);
        let ok = !trimmed.is_empty()
            && trimmed.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            });
        if !ok {
            return Err(TargetError::BadHost);
        }
        if trimmed.bytes().any(|c| c.is_ascii_uppercase()) {
            Cow::Owned(trimmed.to_ascii_lowercase())
        } else {
            Cow::Borrowed(trimmed)
        }
    };
    let port_out = match port {
        None | Some("") => None,
        Some(p) => {
            if !p.bytes().all(|c| c.is_ascii_digit()) || p.len() > 5 {
                return Err(TargetError::BadPort);
            }
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(TargetError::BadPort),
                // Leading zeros go: `080` is `80`.
                Ok(n) if p.starts_with('0') => Some(Cow::Owned(n.to_string())),
                Ok(_) => Some(Cow::Borrowed(p)),
            }
        }
    };
    let canonical_len = name_out.len() + port_out.as_ref().map_or(0, |p| p.len() + 1);
    if canonical_len == raw.len()
        && matches!(name_out, Cow::Borrowed(_))
        && !matches!(port_out, Some(Cow::Owned(_)))
    {
        return Ok(Cow::Borrowed(raw));
    }
    Ok(Cow::Owned(match port_out {
        Some(p) => format!("{name_out}:{p}"),
        None => name_out.into_owned(),
    }))
}

/// One pass over a registered name or IPv4 address with an optional port that is already
/// canonical (the common case): lower-case labels of `[a-z0-9_-]` joined by single dots, no
/// trailing dot; a port of 1 to 5 digits without a leading zero, at most 65535. Anything else,
/// IPv6 literals included, takes the full path in [`host`].
fn host_is_canonical(b: &[u8]) -> bool {
    let colon = b.iter().position(|&c| c == b':').unwrap_or(b.len());
    let (name, port) = b.split_at(colon);
    let mut prev_dot = true;
    for &c in name {
        match c {
            b'.' if prev_dot => return false,
            b'.' => prev_dot = true,
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => prev_dot = false,
            _ => return false,
        }
    }
    if prev_dot {
        // Empty, or a trailing dot.
        return false;
    }
    let Some(digits) = port.strip_prefix(b":") else {
        return true;
    };
    let n = digits.len();
    (1..=5).contains(&n)
        && digits[0] != b'0'
        && digits.iter().all(u8::is_ascii_digit)
        && (n < 5 || digits <= &b"65535"[..])
}

/// Splits `host[:port]`, minding IPv6 brackets.
pub(crate) fn split_port(raw: &str) -> Result<(&str, Option<&str>), TargetError> {
    if raw.starts_with('[') {
        let end = raw.find(']').ok_or(TargetError::BadHost)?;
        let (name, rest) = raw.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(p) => Ok((name, Some(p))),
            None if rest.is_empty() => Ok((name, None)),
            None => Err(TargetError::BadHost),
        };
    }
    Ok(match raw.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (raw, None),
    })
}

/// What to change in a request head to put it in canonical form; both `None` when it is
/// canonical already.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Canonical {
    /// The request URI with the canonical path (and authority, when it has one); the query
    /// is kept as sent.
    pub uri: Option<Uri>,
    /// The canonical `Host` value.
    pub host: Option<HeaderValue>,
}

impl Canonical {
    /// Applies the change to an `http` request head.
    pub fn apply(self, head: &mut Parts) {
        if let Some(uri) = self.uri {
            head.uri = uri;
        }
        if let Some(host) = self.host {
            head.headers.insert(header::HOST, host);
        }
    }
}

/// Checks a request head's path and host, and says what to change to make them canonical.
pub fn canonical(head: &Parts) -> Result<Canonical, TargetError> {
    let mut out = Canonical::default();
    let mut hosts = head.headers.get_all(header::HOST).iter();
    let (given, again) = (hosts.next(), hosts.next());
    if again.is_some() {
        return Err(TargetError::ConflictingHost);
    }
    let mut canonical_header = None;
    if let Some(v) = given {
        // A canonical host is visible ASCII already: no second pass to check it is a `str`.
        let c = match std::str::from_utf8(v.as_bytes()) {
            Ok(raw) if host_is_canonical(raw.as_bytes()) => Cow::Borrowed(raw),
            _ => host_full(v.to_str().map_err(|_| TargetError::BadHost)?)?,
        };
        if let Cow::Owned(c) = &c {
            out.host = Some(HeaderValue::from_str(c).map_err(|_| TargetError::BadHost)?);
        }
        canonical_header = Some(c);
    }
    let authority = match head.uri.authority() {
        Some(a) => {
            let raw = a.as_str();
            if raw.contains('@') {
                return Err(TargetError::BadHost);
            }
            let c = host(raw)?;
            if canonical_header.as_ref().is_some_and(|h| *h != c) {
                return Err(TargetError::ConflictingHost);
            }
            match c {
                Cow::Owned(c) => Some(c),
                Cow::Borrowed(_) => None,
            }
        }
        None => None,
    };
    let new_path = match path(head.uri.path())? {
        Cow::Owned(p) => Some(p),
        Cow::Borrowed(_) => None,
    };
    if new_path.is_some() || authority.is_some() {
        let mut parts = head.uri.clone().into_parts();
        if let Some(a) = authority {
            parts.authority = Some(a.parse().map_err(|_| TargetError::BadHost)?);
        }
        if let Some(p) = new_path {
            let pq = match head.uri.query() {
                Some(q) => format!("{p}?{q}"),
                None => p,
            };
            parts.path_and_query = Some(pq.parse().map_err(|_| TargetError::BadByte)?);
        }
        out.uri = Some(Uri::from_parts(parts).map_err(|_| TargetError::BadByte)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_are_borrowed() {
        for p in [
            "/",
            "/api",
            "/api/",
            "/api/x.y/~z",
            "/a/b:c@d!$&'()*+,=",
            "/.well-known/x",
            "/a/...",
            "*",
        ] {
            assert!(matches!(path(p), Ok(Cow::Borrowed(_))), "{p}");
        }
        // Already canonical, though not plain: the slow pass gives it back borrowed.
        assert!(matches!(path("/a%20b/%25"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn paths_are_put_in_canonical_form() {
        for (raw, want) in [
            ("/public/../private/x", "/private/x"),
            ("/public/%2e%2e/private/x", "/private/x"),
            ("/public/%2E%2E/private/x", "/private/x"),
            ("/public/.%2e/private/x", "/private/x"),
            ("/%61dminapi/x", "/adminapi/x"),
            ("//adminapi/x", "/adminapi/x"),
            ("/a//b///c", "/a/b/c"),
            ("/a/./b", "/a/b"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/a/..", "/"),
            ("/.", "/"),
            ("//", "/"),
            ("/a/b//", "/a/b/"),
            ("/a%7eb", "/a~b"),
            ("/a%7bb", "/a%7Bb"),
            ("/a{b}", "/a%7Bb%7D"),
            ("/caf\u{e9}", "/caf%C3%A9"),
            ("/a%3Bb", "/a%3Bb"),
            ("/a%252e%252e/b", "/a%252e%252e/b"),
            ("/a/..../b", "/a/..../b"),
        ] {
            assert_eq!(path(raw).as_deref(), Ok(want), "{raw}");
            // The canonical form is its own canonical form.
            assert_eq!(path(want).as_deref(), Ok(want), "{want}");
        }
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for (raw, err) in [
            ("/public/%2f..%2fprivate", TargetError::EncodedSeparator),
            ("/public/%2F", TargetError::EncodedSeparator),
            ("/public/%5c../private", TargetError::EncodedSeparator),
            ("/public\\..\\private", TargetError::Backslash),
            ("/public/..;/private", TargetError::Semicolon),
            ("/public;x/y", TargetError::Semicolon),
            ("/..", TargetError::AboveRoot),
            ("/a/../../b", TargetError::AboveRoot),
            ("/%2e%2e/x", TargetError::AboveRoot),
            ("/a%00b", TargetError::BadByte),
            ("/a%0ab", TargetError::BadByte),
            ("/a%zz", TargetError::BadByte),
            ("/a%4", TargetError::BadByte),
            ("/a%", TargetError::BadByte),
            ("/a\tb", TargetError::BadByte),
            ("a/b", TargetError::NotOrigin),
            ("", TargetError::NotOrigin),
        ] {
            assert_eq!(path(raw), Err(err), "{raw}");
        }
    }

    #[test]
    fn hosts_are_put_in_canonical_form() {
        for h in [
            "api.example",
            "api.example:8080",
            "127.0.0.1:1",
            "[::1]:443",
            "[::1]",
        ] {
            assert!(matches!(host(h), Ok(Cow::Borrowed(_))), "{h}");
        }
        for (raw, want) in [
            ("API.Example", "api.example"),
            ("api.example.", "api.example"),
            ("api.example.:8080", "api.example:8080"),
            ("api.example:", "api.example"),
            ("api.example:0080", "api.example:80"),
            ("[::1]:", "[::1]"),
            ("[::ABCD]:1", "[::abcd]:1"),
        ] {
            assert_eq!(host(raw).as_deref(), Ok(want), "{raw}");
        }
        for (raw, err) in [
            ("api.example:abc", TargetError::BadPort),
            ("api.example:80x", TargetError::BadPort),
            ("api.example:65536", TargetError::BadPort),
            ("api.example:0", TargetError::BadPort),
            ("api.example:1:2", TargetError::BadPort),
            ("api..example", TargetError::BadHost),
            (".api.example", TargetError::BadHost),
            ("api.example..", TargetError::BadHost),
            ("user@api.example", TargetError::BadHost),
            ("api%2eexample", TargetError::BadHost),
            ("", TargetError::BadHost),
            (".", TargetError::BadHost),
            ("[::1", TargetError::BadHost),
            ("[zz]", TargetError::BadHost),
            ("[::1]x", TargetError::BadHost),
        ] {
            assert_eq!(host(raw), Err(err), "{raw}");
        }
    }

    fn head(uri: &str, hosts: &[&str]) -> Parts {
        let mut b = http::Request::get(uri);
        for h in hosts {
            b = b.header(header::HOST, *h);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_canonical_head_needs_no_change() {
        assert_eq!(
            canonical(&head("/api/x?a=%2F..", &["api.example:8080"])),
            Ok(Canonical::default())
        );
        assert_eq!(canonical(&head("/", &[])), Ok(Canonical::default()));
    }

    #[test]
    fn the_query_is_kept_as_sent() {
        let mut h = head("/public/../private/x?next=/a/../b&x=%2f", &["API.example."]);
        canonical(&h).unwrap().apply(&mut h);
        assert_eq!(h.uri, "/private/x?next=/a/../b&x=%2f");
        assert_eq!(h.headers[header::HOST], "api.example");
    }

    #[test]
    fn an_absolute_uri_is_made_canonical_and_must_agree_with_host() {
        let mut h = head("http://API.example:80/a/./b", &[]);
        canonical(&h).unwrap().apply(&mut h);
        assert_eq!(h.uri, "http://api.example:80/a/b");
        assert_eq!(
            canonical(&head("http://a.example/x", &["b.example"])),
            Err(TargetError::ConflictingHost)
        );
        assert_eq!(
            canonical(&head("http://a.example./x", &["A.example"])),
            Ok(Canonical {
                uri: Some("http://a.example/x".parse().unwrap()),
                host: Some(HeaderValue::from_static("a.example")),
            })
        );
        assert_eq!(
            canonical(&head("/x", &["a.example", "b.example"])),
            Err(TargetError::ConflictingHost)
        );
        assert_eq!(
            canonical(&head("/x", &["a.example:https"])),
            Err(TargetError::BadPort)
        );
    }

    #[test]
    fn the_host_fast_path_accepts_only_what_the_full_path_keeps_as_it_is() {
        let names = [
            "",
            "a",
            "api.example",
            "API.example",
            "a..b",
            ".a",
            "a.",
            "127.0.0.1",
            "x_y-z",
            "[::1]",
            "a b",
            "é",
            "a:b",
        ];
        let ports = [
            "", ":", ":0", ":1", ":80", ":080", ":8080", ":65535", ":65536", ":99999", ":123456",
            ":8a", "::80",
        ];
        let mut fast = 0;
        for n in names {
            for p in ports {
                let raw = format!("{n}{p}");
                let full = host_full(&raw);
                if host_is_canonical(raw.as_bytes()) {
                    fast += 1;
                    assert_eq!(full, Ok(Cow::Borrowed(raw.as_str())), "{raw}");
                }
                assert_eq!(host(&raw), full, "{raw}");
            }
        }
        assert_eq!(fast, 20, "4 names × 5 ports take the fast path");
    }
}
