//! The gateway's log output, and the scrubber that keeps secrets out of it.
//!
//! Pingora logs through the `log` crate (bridged into `tracing` by tracing-subscriber), and at
//! debug level it prints whole request heads: `Sending header to upstream RequestHeader {…}`
//! (pingora-proxy), the raw bytes of a request it could not parse (`Fail to proxy: … buf:
//! "GET / HTTP/1.1\r\nAuthorization: Bearer …"`, pingora-core's HTTP/1 server), upstream
//! response heads and bodies (`upstream event: Body(Some(b"…"))`). None of that goes through
//! code of ours, so it cannot be fixed where it is logged.
//!
//! The rule: **no credential reaches the log output, at any level**. [`init`] puts a
//! [`Scrubbed`] writer under the fmt layer: every formatted event is rewritten by [`scrub`]
//! just before it is written to stderr, whatever its level or target. The scrubber is the
//! guarantee. It runs only for events that pass the filter and are written, so it costs
//! nothing at the default level for the events that are filtered out, and one pass over the
//! line (no allocation unless something is redacted) for those that are written.
//!
//! On top of it, pingora's TRACE events stay dropped whatever `OAUTH_EDGE_LOG` asks for: they
//! are one line per read and write, print upstream response bodies (`Response body: …`),
//! which may carry an application's secrets no pattern here knows, and nobody operating the
//! gateway needs them. Pingora's DEBUG events are kept: they are what one reads to see why a
//! request was refused or where an upstream connection failed. They too show upstream
//! response bodies (`upstream event: Body(…)`): the scrubber hides the credentials in them,
//! not an application's own data, so debug is for diagnosis, not for production.

use std::borrow::Cow;
use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// What replaces a secret.
pub(crate) const REDACTED: &[u8] = b"[redacted]";

/// Sets up the global subscriber: the `OAUTH_EDGE_LOG` filter (default `info,pingora=warn`),
/// pingora's TRACE dropped, and the fmt layer writing to stderr through the scrubber.
pub(crate) fn init() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("OAUTH_EDGE_LOG")
        .unwrap_or_else(|_| "info,pingora=warn".into());
    let no_pingora_trace = tracing_subscriber::filter::filter_fn(|m| {
        !(*m.level() == tracing::Level::TRACE && m.target().starts_with("pingora"))
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(Scrubbed::new(std::io::stderr))
                .with_filter(no_pingora_trace),
        )
        .init();
}

// ---------------------------------------------------------------------------------------
// The writer

/// A [`MakeWriter`] whose writers pass everything through [`scrub`] before it reaches the
/// inner writer.
pub(crate) struct Scrubbed<M> {
    inner: M,
}

impl<M> Scrubbed<M> {
    pub(crate) fn new(inner: M) -> Self {
        Scrubbed { inner }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Scrubbed<M> {
    type Writer = ScrubWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubWriter::new(self.inner.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        ScrubWriter::new(self.inner.make_writer_for(meta))
    }
}

/// One event's writer. Complete lines are scrubbed and written as they come (the fmt layer
/// hands over a whole event in one `write_all`, so usually without copying); a line still
/// incomplete is kept until more comes or the writer is dropped, so a secret split across
/// writes is still seen whole. A flush writes complete lines only, for the same reason.
pub(crate) struct ScrubWriter<W: Write> {
    inner: W,
    /// The start of a line not yet written (no `\n` in it).
    pending: Vec<u8>,
}

impl<W: Write> ScrubWriter<W> {
    fn new(inner: W) -> Self {
        ScrubWriter {
            inner,
            pending: Vec::new(),
        }
    }

    fn emit(&mut self, text: &[u8]) -> io::Result<()> {
        self.inner.write_all(&scrub(text))
    }
}

impl<W: Write> Write for ScrubWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let Some(last_nl) = data.iter().rposition(|&b| b == b'\n') else {
            self.pending.extend_from_slice(data);
            return Ok(data.len());
        };
        let (lines, rest) = data.split_at(last_nl + 1);
        if self.pending.is_empty() {
            self.emit(lines)?;
        } else {
            let mut joined = std::mem::take(&mut self.pending);
            joined.extend_from_slice(lines);
            self.emit(&joined)?;
        }
        self.pending.extend_from_slice(rest);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Drop for ScrubWriter<W> {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            let _ = self.emit(&rest);
            let _ = self.inner.flush();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The scrubber

/// What follows a sensitive name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// `Authorization`-like: `Scheme credentials`; the scheme stays.
    Credentials,
    /// A header whose whole value is secret.
    Header,
    /// A form or query parameter, or a JSON member, whose value is secret.
    Param,
    /// An auth scheme: the credential after it is secret.
    Scheme,
}

/// The sensitive names, lower case; matched case-insensitively and as whole words.
const NAMES: &[(&[u8], Kind)] = &[
    (b"authorization", Kind::Credentials),
    (b"proxy-authorization", Kind::Credentials),
    (b"x-ibm-client-secret", Kind::Header),
    (b"cookie", Kind::Header),
    (b"set-cookie", Kind::Header),
    (b"client_secret", Kind::Param),
    (b"client_assertion", Kind::Param),
    (b"assertion", Kind::Param),
    (b"password", Kind::Param),
    (b"code", Kind::Param),
    (b"code_verifier", Kind::Param),
    (b"device_code", Kind::Param),
    (b"user_code", Kind::Param),
    (b"access_token", Kind::Param),
    (b"refresh_token", Kind::Param),
    (b"token", Kind::Param),
    (b"subject_token", Kind::Param),
    (b"actor_token", Kind::Param),
    (b"bearer", Kind::Scheme),
    (b"basic", Kind::Scheme),
];

/// Auth-params of a challenge (`Bearer realm="…"`): after a scheme, not a credential.
const CHALLENGE_PARAMS: &[&[u8]] = &[
    b"realm",
    b"error",
    b"error_description",
    b"error_uri",
    b"scope",
    b"charset",
    b"resource_metadata",
];

/// Whether a byte may start a sensitive name (lower-cased) or a byte array (`[`).
const fn starts() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < NAMES.len() {
        let c = NAMES[i].0[0];
        t[c as usize] = true;
        t[c.to_ascii_uppercase() as usize] = true;
        i += 1;
    }
    t[b'[' as usize] = true;
    t
}
static STARTS: [bool; 256] = starts();

/// Rewrites `text` with every secret replaced by `[redacted]`; borrowed when there is none.
///
/// What counts as a secret, case-insensitively, in each rendering pingora and we produce (raw
/// header text, `Debug` of `HeaderMap`/`RequestHeader`/`Bytes`/`BStr`, `escape_ascii`,
/// JSON, `key=value` fields, byte arrays printed as numbers):
/// - the value of `Authorization` and `Proxy-Authorization` (the scheme stays:
///   `Bearer [redacted]`), of `X-IBM-Client-Secret`, `Cookie` and `Set-Cookie`;
/// - the credential after `Bearer` or `Basic` anywhere;
/// - the value of the parameters (or JSON members) `client_secret`, `client_assertion`,
///   `assertion`, `password`, `code`, `code_verifier`, `device_code`, `user_code`,
///   `access_token`, `refresh_token`, `token`, `subject_token`, `actor_token` and
///   `X-IBM-Client-Secret`.
pub(crate) fn scrub(text: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < text.len() {
        if !STARTS[text[i] as usize] {
            i += 1;
            continue;
        }
        let found = if text[i] == b'[' {
            byte_array_at(text, i)
        } else if word_starts(text, i) {
            secret_at(text, i)
        } else {
            None
        };
        match found {
            Some((start, end)) => {
                let o = out.get_or_insert_with(|| Vec::with_capacity(text.len() + 16));
                o.extend_from_slice(&text[copied..start]);
                o.extend_from_slice(REDACTED);
                copied = end;
                i = end.max(i + 1);
            }
            None => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.extend_from_slice(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Whether a word may start at `i`: not inside another name, escapes (`\n`, `\xNN`, `%NN`, an
/// ANSI colour) counting as separators.
fn word_starts(t: &[u8], i: usize) -> bool {
    if i == 0 || !is_name_byte(t[i - 1]) {
        return true;
    }
    let hex = |j: usize| t[j].is_ascii_hexdigit();
    (i >= 2 && t[i - 2] == b'\\' && matches!(t[i - 1], b'n' | b'r' | b't' | b'0'))
        || (i >= 4 && t[i - 4] == b'\\' && t[i - 3] == b'x' && hex(i - 2) && hex(i - 1))
        || (i >= 3 && t[i - 3] == b'%' && hex(i - 2) && hex(i - 1))
        || ansi_ends_at(t, i)
}

/// Whether an ANSI SGR sequence (`ESC [ … m`) ends just before `i`.
fn ansi_ends_at(t: &[u8], i: usize) -> bool {
    if i < 3 || t[i - 1] != b'm' {
        return false;
    }
    let mut j = i - 1;
    while j > 0 && (t[j - 1].is_ascii_digit() || t[j - 1] == b';') {
        j -= 1;
    }
    j >= 2 && t[j - 1] == b'[' && t[j - 2] == 0x1b
}

/// The length of an ANSI SGR sequence at `i`, if one starts there.
fn ansi_at(t: &[u8], i: usize) -> Option<usize> {
    if t.get(i) != Some(&0x1b) || t.get(i + 1) != Some(&b'[') {
        return None;
    }
    let mut j = i + 2;
    while j < t.len() && (t[j].is_ascii_digit() || t[j] == b';') {
        j += 1;
    }
    (t.get(j) == Some(&b'm')).then_some(j + 1 - i)
}

fn skip_blanks(t: &[u8], mut j: usize) -> usize {
    loop {
        if let Some(n) = ansi_at(t, j) {
            j += n;
        } else if matches!(t.get(j), Some(b' ' | b'\t')) {
            j += 1;
        } else {
            return j;
        }
    }
}

fn starts_with_ignore_case(t: &[u8], at: usize, word: &[u8]) -> bool {
    t.len() >= at + word.len() && t[at..at + word.len()].eq_ignore_ascii_case(word)
}

/// The sensitive name starting at `i`, if any: whole word only.
fn name_at(t: &[u8], i: usize) -> Option<(usize, Kind)> {
    NAMES.iter().find_map(|&(name, kind)| {
        let end = i + name.len();
        (starts_with_ignore_case(t, i, name) && t.get(end).is_none_or(|&b| !is_name_byte(b)))
            .then_some((end, kind))
    })
}

/// The range of the secret introduced by a name at `i`.
fn secret_at(t: &[u8], i: usize) -> Option<(usize, usize)> {
    let (after, kind) = name_at(t, i)?;
    if kind == Kind::Scheme {
        return credential_after_scheme(t, after);
    }
    // The end of a quoted name (`"cookie"`, `\"code\"`), then the separator.
    let mut j = after;
    let mut quoted_name = false;
    loop {
        match t.get(j) {
            Some(b'"') => {
                quoted_name = true;
                j += 1;
            }
            Some(b'\\') => j += 1,
            _ => match ansi_at(t, j) {
                Some(n) => j += n,
                None => break,
            },
        }
    }
    j = skip_blanks(t, j);
    let param_style = match t.get(j) {
        Some(b'=') => {
            j += 1;
            true
        }
        Some(b'%') if starts_with_ignore_case(t, j, b"%3d") => {
            j += 3;
            true
        }
        Some(b':') if kind != Kind::Param || quoted_name => {
            j += 1;
            kind == Kind::Param
        }
        _ => return None,
    };
    j = skip_blanks(t, j);
    // A quoted value: its opening quote, escaped `level` times (`"`, `\"`, `\\\"`).
    let mut level = 0;
    while t.get(j + level) == Some(&b'\\') {
        level += 1;
    }
    if level <= 3 && t.get(j + level) == Some(&b'"') {
        let start = j + level + 1;
        let start = if kind == Kind::Credentials {
            skip_scheme(t, start)
        } else {
            start
        };
        let end = quoted_end(t, start, level);
        return (end > start).then_some((start, end));
    }
    // Names of headers as pingora keeps them, `"cookie": CaseHeaderName(b"Cookie")`, and
    // values `http` already hides (`{"authorization": Sensitive}`): not values. Exactly
    // these renderings, so that a credential cannot pass for one.
    if t[j..].starts_with(b"CaseHeaderName(b\"")
        || (t[j..].starts_with(b"Sensitive") && matches!(t.get(j + 9), Some(b',' | b'}')))
    {
        return None;
    }
    let start = if kind == Kind::Credentials {
        skip_scheme(t, j)
    } else {
        j
    };
    let end = if param_style {
        token_end(t, start, false)
    } else {
        line_end(t, start)
    };
    (end > start).then_some((start, end))
}

/// Past `Scheme ` at `i` when a credential follows it; `i` when not.
fn skip_scheme(t: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < t.len() && is_name_byte(t[j]) {
        j += 1;
    }
    if j == i || !matches!(t.get(j), Some(b' ' | b'\t')) {
        return i;
    }
    let k = skip_blanks(t, j);
    if token_end(t, k, true) > k {
        k
    } else {
        i
    }
}

/// The credential after `Bearer`/`Basic` (the scheme ends at `i`), unless a challenge's
/// auth-param (`Bearer realm="…"`) follows instead.
fn credential_after_scheme(t: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    loop {
        match t.get(j) {
            Some(b' ' | b'\t') => j += 1,
            Some(b'%') if t.get(j + 1..j + 3) == Some(b"20") => j += 3,
            _ => break,
        }
    }
    if j == i {
        return None;
    }
    let end = token_end(t, j, true);
    if end == j {
        return None;
    }
    let word = t[j..end].split(|&b| b == b'=').next().unwrap_or_default();
    if word.len() < end - j
        && CHALLENGE_PARAMS
            .iter()
            .any(|p| word.eq_ignore_ascii_case(p))
    {
        return None;
    }
    Some((j, end))
}

/// The end of an unquoted token (a parameter's value, a credential) starting at `i`.
fn token_end(t: &[u8], i: usize, credential: bool) -> usize {
    let mut j = i;
    while j < t.len() {
        let b = t[j];
        let stop = b <= b' '
            || b == 0x7f
            || matches!(
                b,
                b'&' | b'"' | b'\'' | b'\\' | b'<' | b'>' | b')' | b']' | b'}'
            )
            || (credential && matches!(b, b',' | b';'))
            // `, ` cannot be in a query or a form (a space there is encoded), but ends the
            // URI in pingora's `uri: /p?code=…, version: HTTP/1.1`.
            || (b == b',' && t.get(j + 1) == Some(&b' '));
        if stop {
            break;
        }
        j += 1;
    }
    j
}

/// The end of a header value in text: the end of the line, raw (`\r`, `\n`) or escaped
/// (the two characters `\r` or `\n`).
fn line_end(t: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < t.len() {
        match t[j] {
            b'\r' | b'\n' => break,
            b'\\' if matches!(t.get(j + 1), Some(b'r' | b'n')) => break,
            _ => j += 1,
        }
    }
    j
}

/// The end of a value opened by a quote escaped `level` times: the closing quote is preceded
/// by a run of backslashes `r` with `r mod 2^(level+1) == 2^level - 1` (the quote's own
/// escapes after pairs of escaped backslashes). The end of the line when it never closes.
fn quoted_end(t: &[u8], i: usize, level: usize) -> usize {
    let modulus = 1usize << (level + 1);
    let own = (1usize << level) - 1;
    let mut run = 0;
    let mut j = i;
    while j < t.len() {
        match t[j] {
            b'\r' | b'\n' => return j,
            b'\\' => run += 1,
            b'"' => {
                if run >= own && run % modulus == own {
                    return j - own;
                }
                run = 0;
            }
            _ => run = 0,
        }
        j += 1;
    }
    j
}

/// Bytes printed as numbers (`Verbatim([71, 69, 84, …])`): redacted whole when what they
/// spell holds a secret.
fn byte_array_at(t: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut bytes = Vec::new();
    let mut j = i + 1;
    loop {
        let digits = t[j..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 3 {
            return None;
        }
        let n: u16 = std::str::from_utf8(&t[j..j + digits]).ok()?.parse().ok()?;
        bytes.push(u8::try_from(n).ok()?);
        j += digits;
        match t.get(j) {
            Some(b']') => break,
            Some(b',') => {
                j += 1;
                while t.get(j) == Some(&b' ') {
                    j += 1;
                }
            }
            _ => return None,
        }
    }
    match scrub(&bytes) {
        Cow::Owned(_) => Some((i, j + 1)),
        Cow::Borrowed(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> String {
        String::from_utf8(scrub(text.as_bytes()).into_owned()).unwrap()
    }

    /// `text` unchanged, and borrowed.
    fn unchanged(text: &str) {
        assert!(
            matches!(scrub(text.as_bytes()), Cow::Borrowed(_)),
            "changed: {text:?} -> {:?}",
            s(text)
        );
    }

    #[test]
    fn raw_header_text() {
        assert_eq!(
            s("GET / HTTP/1.1\r\nAuthorization: Bearer abc.def-ghi\r\nHost: x\r\n\r\n"),
            "GET / HTTP/1.1\r\nAuthorization: Bearer [redacted]\r\nHost: x\r\n\r\n"
        );
        assert_eq!(
            s("authorization: Basic c3ZjOnNlY3JldA==\n"),
            "authorization: Basic [redacted]\n"
        );
        assert_eq!(s("AUTHORIZATION:opaque"), "AUTHORIZATION:[redacted]");
        assert_eq!(
            s("Proxy-Authorization: Basic cHJveHk6cHc=\r\n"),
            "Proxy-Authorization: Basic [redacted]\r\n"
        );
        assert_eq!(
            s("X-IBM-Client-Secret: ibm-s3cret\r\nX-IBM-Client-Id: app\r\n"),
            "X-IBM-Client-Secret: [redacted]\r\nX-IBM-Client-Id: app\r\n"
        );
        assert_eq!(
            s("Cookie: oe_session=abc; theme=dark\r\n"),
            "Cookie: [redacted]\r\n"
        );
        assert_eq!(
            s("set-cookie: oe_session=abc; Path=/; HttpOnly\n"),
            "set-cookie: [redacted]\n"
        );
        // An unusual scheme keeps its name too; a credential with spaces is hidden whole.
        assert_eq!(
            s("Authorization: Negotiate a b c\r\n"),
            "Authorization: Negotiate [redacted]\r\n"
        );
    }

    #[test]
    fn escaped_renderings() {
        // `escape_ascii` and `BStr`'s Debug, as pingora prints a request it could not parse.
        assert_eq!(
            s(r"buf: GET / HTTP/1.1\r\nauthorization: Bearer SECRET1\r\nX\x01y: z\r\n\r\n"),
            r"buf: GET / HTTP/1.1\r\nauthorization: Bearer [redacted]\r\nX\x01y: z\r\n\r\n"
        );
        assert_eq!(
            s(
                r#"buf: "GET / HTTP/1.1\r\nCookie: a=\"SECRET2\"\r\nAuthorization: Basic U0VDUkVUMw==\r\n""#
            ),
            r#"buf: "GET / HTTP/1.1\r\nCookie: [redacted]\r\nAuthorization: Basic [redacted]\r\n""#
        );
        // Cut off in the middle of a value: hidden to the end of the line.
        assert_eq!(
            s(r#"Fail to proxy: buf: "GET / HTTP/1.1\r\nAuthorization: Bearer SECR, more"#),
            r#"Fail to proxy: buf: "GET / HTTP/1.1\r\nAuthorization: Bearer [redacted]"#
        );
        // Bytes' Debug.
        let b = bytes::Bytes::from_static(b"POST /t HTTP/1.1\r\nauthorization: Bearer tok\r\n\r\n");
        assert_eq!(
            s(&format!("{b:?}")),
            r#"b"POST /t HTTP/1.1\r\nauthorization: Bearer [redacted]\r\n\r\n""#
        );
        // Hex and percent escapes before a name.
        assert_eq!(s(r"\x0acode=abc"), r"\x0acode=[redacted]");
        assert_eq!(
            s("redirect_uri=https%3A%2F%2Fa%2Fcb%3Fcode%3Dabc"),
            "redirect_uri=https%3A%2F%2Fa%2Fcb%3Fcode%3D[redacted]"
        );
    }

    #[test]
    fn header_map_debug() {
        let mut h = http::HeaderMap::new();
        h.insert("host", "api.example".parse().unwrap());
        h.insert("authorization", "Bearer tok-AAA".parse().unwrap());
        h.insert("proxy-authorization", "Basic cHJveHk6QkJC".parse().unwrap());
        h.insert("x-ibm-client-secret", "CCC".parse().unwrap());
        h.append("cookie", "a=DDD".parse().unwrap());
        h.append("cookie", "b=\"EEE\"".parse().unwrap());
        h.insert("set-cookie", "oe=FFF; Path=/".parse().unwrap());
        let text = s(&format!("{h:?}"));
        for secret in ["tok-AAA", "cHJveHk6QkJC", "CCC", "DDD", "EEE", "FFF"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains(r#""host": "api.example""#), "{text}");
        assert!(
            text.contains(r#""authorization": "Bearer [redacted]""#),
            "{text}"
        );
        assert!(
            text.contains(r#""proxy-authorization": "Basic [redacted]""#),
            "{text}"
        );
        assert!(
            text.contains(r#""x-ibm-client-secret": "[redacted]""#),
            "{text}"
        );
        assert!(
            text.contains(r#""cookie": "[redacted]", "cookie": "[redacted]""#),
            "{text}"
        );
        assert!(text.contains(r#""set-cookie": "[redacted]""#), "{text}");
        // Values `http` marks sensitive print as `Sensitive`: left alone.
        let mut v = http::HeaderValue::from_static("Bearer x");
        v.set_sensitive(true);
        let mut h = http::HeaderMap::new();
        h.insert("authorization", v);
        unchanged(&format!("{h:?}"));
        assert_eq!(
            s("Authorization: Sensitive abc\r\nCookie: CaseHeaderName(x)\r\n"),
            "Authorization: Sensitive [redacted]\r\nCookie: [redacted]\r\n"
        );
    }

    #[test]
    fn pingora_request_header_debug() {
        use pingora::http::RequestHeader;
        let mut req = RequestHeader::build(
            "POST",
            b"/api/x?code=CODE1&state=s&client_secret=CS1&X-IBM-Client-Secret=IBM1",
            None,
        )
        .unwrap();
        req.insert_header("Host", "api.example").unwrap();
        req.insert_header("Authorization", "Bearer TOKEN1").unwrap();
        req.insert_header("Cookie", "oe_session=SESSION1").unwrap();
        req.insert_header("X-IBM-Client-Secret", "IBM2").unwrap();
        let text = s(&format!("Sending header to upstream {req:?}"));
        for secret in ["CODE1", "CS1", "IBM1", "TOKEN1", "SESSION1", "IBM2"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("Bearer [redacted]"), "{text}");
        assert!(
            text.contains("?code=[redacted]&state=s&client_secret=[redacted]"),
            "{text}"
        );
        // The case-preserving name map is kept: names are not values.
        assert!(
            text.contains(r#""authorization": CaseHeaderName(b"Authorization")"#),
            "{text}"
        );
        assert!(text.contains("api.example"), "{text}");

        // An absolute-form target keeps its bytes, printed as numbers.
        let mut req =
            RequestHeader::build("GET", b"http://api.example/x?access_token=TOKEN2", None).unwrap();
        req.insert_header("Host", "api.example").unwrap();
        let text = s(&format!("{req:?}"));
        assert!(!text.contains("TOKEN2"), "{text}");
        let secret: Vec<String> = b"TOKEN2".iter().map(|b| b.to_string()).collect();
        assert!(!text.contains(&secret.join(", ")), "{text}");
    }

    #[test]
    fn schemes_anywhere() {
        assert_eq!(s("got Bearer abc123 twice"), "got Bearer [redacted] twice");
        assert_eq!(s(r#""bearer abc""#), r#""bearer [redacted]""#);
        assert_eq!(
            s("BASIC c3ZjOnN2Yy1zZWNyZXQ=, then"),
            "BASIC [redacted], then"
        );
        assert_eq!(s("Bearer%20tok"), "Bearer%20[redacted]");
        // Challenges carry no credential.
        unchanged(r#"www-authenticate: Bearer realm="oauth-edge", error="invalid_token""#);
        unchanged(r#"Basic realm="oauth-edge""#);
        // The word alone, a token type.
        unchanged(r#"{"token_type":"Bearer","expires_in":3600}"#);
        unchanged("Bearer");
        // The price of matching anywhere: prose that reads like a credential loses a word.
        assert_eq!(s("basic checks passed"), "basic [redacted] passed");
    }

    #[test]
    fn params() {
        assert_eq!(
            s("grant_type=client_credentials&client_id=svc&client_secret=s3cr3t&scope=read"),
            "grant_type=client_credentials&client_id=svc&client_secret=[redacted]&scope=read"
        );
        for name in [
            "password",
            "code",
            "code_verifier",
            "refresh_token",
            "access_token",
            "token",
            "device_code",
            "assertion",
            "client_assertion",
            "X-IBM-Client-Secret",
            "PASSWORD",
        ] {
            assert_eq!(
                s(&format!("/p?{name}=v4lue&x=1")),
                format!("/p?{name}=[redacted]&x=1"),
                "{name}"
            );
        }
        assert_eq!(
            s("uri: /p?password=a,b, version: HTTP/1.1"),
            "uri: /p?password=[redacted], version: HTTP/1.1"
        );
        // Names inside other names are not these.
        unchanged("token_type_hint=refresh_token&grant_type=password&encode=1&status_code=200");
        // JSON members, plain and escaped once more (JSON in a Debug string).
        assert_eq!(
            s(r#"{"access_token":"AT","token_type":"Bearer","refresh_token": "RT"}"#),
            r#"{"access_token":"[redacted]","token_type":"Bearer","refresh_token": "[redacted]"}"#
        );
        assert_eq!(
            s(r#"Body(Some(b"{\"access_token\":\"A\\\"T\",\"n\":1}"))"#),
            r#"Body(Some(b"{\"access_token\":\"[redacted]\",\"n\":1}"))"#
        );
        // tracing fields, with colours.
        assert_eq!(
            s("\x1b[3mpassword\x1b[0m\x1b[2m=\x1b[0mhunter2 \x1b[3mn\x1b[0m\x1b[2m=\x1b[0m1"),
            "\x1b[3mpassword\x1b[0m\x1b[2m=\x1b[0m[redacted] \x1b[3mn\x1b[0m\x1b[2m=\x1b[0m1"
        );
        assert_eq!(
            s(r#"password="hunter 2" n=1"#),
            r#"password="[redacted]" n=1"#
        );
        assert_eq!(
            s("authorization=Bearer abc n=1"),
            "authorization=Bearer [redacted] n=1"
        );
        // In prose, `code:` is not a parameter.
        unchanged("error code: 42");
    }

    #[test]
    fn no_secrets_unchanged() {
        for text in [
            "",
            "2024-01-01T00:00:00Z  INFO access: method=GET path=/api/x status=200 outcome=\"ok\" client_id=\"svc\" ms=1.2\n",
            "2024-01-01T00:00:00Z DEBUG pingora_proxy: Successfully get a new request\n",
            "Dropping socket Some(TcpStream { addr: 127.0.0.1:4000, fd: 12 })",
            "upstream event: Body(Some(b\"{\\\"ok\\\":true}\"), true)",
            "headers: {\"host\": \"a\", \"content-type\": \"application/x-www-form-urlencoded\"}",
            "[1, 2, 3] [] [x] [256, 1]",
            "client authentication failed",
            "ünïcödé authorization",
        ] {
            unchanged(text);
        }
    }

    #[test]
    fn idempotent() {
        let once = s(r#"Authorization: Bearer abc {"authorization": "Basic x"} code=1"#);
        assert_eq!(s(&once), once);
    }

    /// A writer that keeps what it was given.
    #[derive(Clone, Default)]
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writer_sees_split_secrets_whole() {
        let sink = Sink::default();
        {
            let mut w = ScrubWriter::new(sink.clone());
            w.write_all(b"first line Authorization: Bea").unwrap();
            w.flush().unwrap();
            w.write_all(b"rer abc\nsecond: code=").unwrap();
            w.write_all(b"xyz").unwrap();
            w.flush().unwrap();
        }
        assert_eq!(
            String::from_utf8(sink.0.lock().unwrap().clone()).unwrap(),
            "first line Authorization: Bearer [redacted]\nsecond: code=[redacted]"
        );
    }

    #[test]
    fn layer_writes_scrubbed_events() {
        let sink = Sink::default();
        let make = {
            let sink = sink.clone();
            Scrubbed::new(move || sink.clone())
        };
        let subscriber = tracing_subscriber::fmt()
            .with_writer(make)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("Sending header to upstream {{\"authorization\": \"Bearer LEAK1\"}}");
            tracing::info!(password = "LEAK2", "login");
            tracing::info!("nothing to hide");
        });
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(!out.contains("LEAK"), "{out}");
        assert!(out.contains("Bearer [redacted]"), "{out}");
        assert!(out.contains("nothing to hide"), "{out}");
    }
}
