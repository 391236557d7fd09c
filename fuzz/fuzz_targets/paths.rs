//! `target::path`, `target::host` and `target::canonical`: the canonical request target.
//!
//! Input (lossily UTF-8): the first line is a path (and, for `canonical`, a request URI),
//! the second a host (and, for `canonical`, the `Host` header when not empty).
//!
//! Checks, besides never panicking:
//! - a canonical path starts with `/` and holds no `//`, no `.` or `..` segment, no `%2F` or
//!   `%5C`, no `\`, no `;`, only RFC 3986 `pchar`s, and escapes only with two upper-case hex
//!   digits that do not stand for an unreserved character;
//! - it is a fixed point: canonicalising it again gives it back, borrowed;
//! - it means what the input meant: its decoded segments are the input's decoded segments
//!   after RFC 3986 5.2.4 dot-segment removal, and it ends in `/` exactly when that does;
//!   and a path is refused exactly when it holds something ambiguous (see `reference`);
//! - a canonical host is lower case, has no trailing dot and no empty port, a port is
//!   1-65535 without leading zeros, and it is a fixed point too;
//! - `canonical` of a request head, applied, gives a head that needs no further change.
#![no_main]

use std::borrow::Cow;

use http::header::HOST;
use http::{HeaderValue, Request, Uri};
use libfuzzer_sys::fuzz_target;
use oauth_edge::target::{self, Canonical};

fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 `pchar` less `%` and `;`.
fn plain(c: u8) -> bool {
    unreserved(c) || b"!$&'()*+,=:@".contains(&c)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Decodes one raw segment; `None` for whatever the edge must refuse.
fn decode_raw(seg: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < seg.len() {
        match seg[i] {
            b'%' => {
                let v = hex(*seg.get(i + 1)?)? * 16 + hex(*seg.get(i + 2)?)?;
                if matches!(v, b'/' | b'\\' | 0..=0x1f | 0x7f) {
                    return None;
                }
                out.push(v);
                i += 3;
            }
            b'\\' | b';' | 0..=0x20 | 0x7f => return None,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(out)
}

/// An independent reading of the rules: the decoded segments after dot-segment removal and
/// whether the result ends in `/`, or `None` where the path must be refused.
fn reference(raw: &[u8]) -> Option<(Vec<Vec<u8>>, bool)> {
    let rest = raw.strip_prefix(b"/")?;
    let segs: Vec<&[u8]> = rest.split(|c| *c == b'/').collect();
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let mut trailing = false;
    for (n, seg) in segs.iter().enumerate() {
        let last = n + 1 == segs.len();
        let d = decode_raw(seg)?;
        match d.as_slice() {
            b"" | b"." => trailing = last,
            b".." => {
                kept.pop()?;
                trailing = last;
            }
            _ => {
                kept.push(d);
                trailing = false;
            }
        }
    }
    let trailing = trailing || kept.is_empty();
    Some((kept, trailing))
}

/// Checks the form of a canonical path and decodes its segments.
fn check_canonical_form(p: &str) -> (Vec<Vec<u8>>, bool) {
    let b = p.as_bytes();
    assert_eq!(b.first(), Some(&b'/'), "{p:?}");
    for bad in ["//", "/./", "/../"] {
        assert!(!p.contains(bad), "{bad} in {p:?}");
    }
    assert!(!p.ends_with("/.") && !p.ends_with("/.."), "{p:?}");
    let upper = p.to_ascii_uppercase();
    assert!(!upper.contains("%2F") && !upper.contains("%5C"), "{p:?}");
    let mut segs = Vec::new();
    let mut seg = Vec::new();
    let mut i = 1;
    while i <= b.len() {
        if i == b.len() || b[i] == b'/' {
            segs.push(std::mem::take(&mut seg));
            i += 1;
            continue;
        }
        let c = b[i];
        if c == b'%' {
            let (h, l) = (b.get(i + 1).copied(), b.get(i + 2).copied());
            let ok =
                |x: Option<u8>| x.is_some_and(|x| x.is_ascii_digit() || (b'A'..=b'F').contains(&x));
            assert!(ok(h) && ok(l), "bad escape in {p:?}");
            let v = hex(h.unwrap()).unwrap() * 16 + hex(l.unwrap()).unwrap();
            assert!(!unreserved(v), "escaped unreserved {v:#x} in {p:?}");
            assert!(!matches!(v, 0..=0x1f | 0x7f | b'/' | b'\\'), "{p:?}");
            seg.push(v);
            i += 3;
        } else {
            assert!(plain(c), "byte {c:#x} in {p:?}");
            seg.push(c);
            i += 1;
        }
    }
    // `/a/` splits into ["a", ""]: the empty last segment is the trailing slash.
    let trailing = segs.last().is_some_and(|s| s.is_empty());
    if trailing {
        segs.pop();
    }
    for s in &segs {
        assert!(!s.is_empty() && s != b"." && s != b"..", "{p:?}");
    }
    (segs, trailing)
}

fn check_path(raw: &str) {
    let got = target::path(raw);
    if raw == "*" {
        assert_eq!(got.as_deref(), Ok("*"));
        return;
    }
    let want = reference(raw.as_bytes());
    match (&got, &want) {
        (Ok(p), Some((segs, trailing))) => {
            let (got_segs, got_trailing) = check_canonical_form(p);
            assert_eq!(&got_segs, segs, "{raw:?} -> {p:?}");
            assert_eq!(got_trailing, *trailing, "{raw:?} -> {p:?}");
            match target::path(p) {
                Ok(Cow::Borrowed(again)) => assert_eq!(again, p.as_ref()),
                other => panic!("{raw:?} -> {p:?} -> {other:?}"),
            }
            if matches!(got, Ok(Cow::Borrowed(_))) {
                assert_eq!(p.as_ref(), raw);
            }
        }
        (Err(_), None) => {}
        _ => panic!("{raw:?}: got {got:?}, reference {want:?}"),
    }
}

fn check_host(raw: &str) {
    let Ok(h) = target::host(raw) else {
        return;
    };
    assert!(
        !h.bytes().any(|c| c.is_ascii_uppercase()),
        "{raw:?} -> {h:?}"
    );
    let (name, port) = if h.starts_with('[') {
        let end = h.find(']').expect("closing bracket");
        let (n, rest) = h.split_at(end + 1);
        (n, rest.strip_prefix(':'))
    } else {
        match h.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (h.as_ref(), None),
        }
    };
    assert!(!name.is_empty() && !name.ends_with('.'), "{raw:?} -> {h:?}");
    if let Some(p) = port {
        assert!(!p.starts_with('0'), "{raw:?} -> {h:?}");
        assert!(p.parse::<u16>().is_ok_and(|n| n > 0), "{raw:?} -> {h:?}");
    }
    match target::host(&h) {
        Ok(Cow::Borrowed(again)) => assert_eq!(again, h.as_ref()),
        other => panic!("{raw:?} -> {h:?} -> {other:?}"),
    }
    if matches!(h, Cow::Borrowed(_)) {
        assert_eq!(h.as_ref(), raw);
    }
}

fn check_head(uri: &str, host: &str) {
    let Ok(uri) = uri.parse::<Uri>() else { return };
    let mut req = Request::builder().uri(uri);
    if !host.is_empty() {
        let Ok(v) = HeaderValue::from_str(host) else {
            return;
        };
        req = req.header(HOST, v);
    }
    let Ok(req) = req.body(()) else { return };
    let (mut head, ()) = req.into_parts();
    let Ok(c) = target::canonical(&head) else {
        return;
    };
    c.apply(&mut head);
    assert_eq!(
        target::canonical(&head),
        Ok(Canonical::default()),
        "not a fixed point: {head:?}"
    );
    if head.uri.path() != "*" {
        check_canonical_form(head.uri.path());
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(3, '\n');
    let first = lines.next().unwrap_or("");
    let second = lines.next().unwrap_or("");
    check_path(first);
    check_host(second);
    check_head(first, second);
});
