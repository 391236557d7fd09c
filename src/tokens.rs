//! Token strings: minting, MAC verification and hashing.
//!
//! A token is `oe` + a kind letter + `_` + base64url(kid ‖ 32 random bytes ‖ 16-byte tag).
//! One keyed BLAKE3 hash of the prefix, key id and random bytes under the server key `kid`
//! serves twice: its first 16 bytes are the tag, so a forged or mistyped token is refused in
//! CPU before any cache or store lookup; all 32 bytes are the [`TokenHash`] that stores and
//! caches key the token by. Stores never see the random bytes, so a leaked table cannot be
//! turned back into tokens. A token is always hashed under the key that signed it, so
//! rotating keys does not move stored tokens.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

const RANDOM_LEN: usize = 32;
const TAG_LEN: usize = 16;
const RAW_LEN: usize = 1 + RANDOM_LEN + TAG_LEN;
/// base64url without padding of `RAW_LEN` bytes.
const BODY_LEN: usize = (RAW_LEN * 4).div_ceil(3);
const PREFIX_LEN: usize = 4;
/// The length of every token string.
pub(crate) const TOKEN_LEN: usize = PREFIX_LEN + BODY_LEN;

/// What a token is for. The kind is part of the token string and of the MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An access token, presented as a bearer token.
    Access,
    /// A refresh token, exchanged at the token endpoint.
    Refresh,
    /// An authorization code.
    Code,
    /// A device code (RFC 8628).
    Device,
}

impl TokenKind {
    const fn prefix(self) -> &'static str {
        match self {
            TokenKind::Access => "oea_",
            TokenKind::Refresh => "oer_",
            TokenKind::Code => "oec_",
            TokenKind::Device => "oed_",
        }
    }

    fn from_prefix(p: &[u8]) -> Option<Self> {
        match p {
            b"oea_" => Some(TokenKind::Access),
            b"oer_" => Some(TokenKind::Refresh),
            b"oec_" => Some(TokenKind::Code),
            b"oed_" => Some(TokenKind::Device),
            _ => None,
        }
    }

    /// The name stores use for the kind.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
            TokenKind::Code => "code",
            TokenKind::Device => "device",
        }
    }

    /// Parses the name stores use for the kind.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(TokenKind::Access),
            "refresh" => Some(TokenKind::Refresh),
            "code" => Some(TokenKind::Code),
            "device" => Some(TokenKind::Device),
            _ => None,
        }
    }
}

/// What stores and caches key a token by (see the module docs). Tokens get theirs from
/// [`TokenCodec`]; [`TokenHash::of`] makes one from any string, for tests and tools.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenHash(pub [u8; 32]);

/// Feeds the hasher the first 8 bytes as one `u64`: the bytes are already a uniform hash, so
/// that is all a hash table needs, and the token cache's pass-through hasher
/// (`cache::PassThrough`) uses the word as it is instead of hashing 32 bytes again.
impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(word));
    }
}

impl TokenHash {
    /// The unkeyed BLAKE3 hash of a string.
    pub fn of(token: &str) -> Self {
        TokenHash(*blake3::hash(token.as_bytes()).as_bytes())
    }

    /// Lower-case hex, for logs and for stores that want text.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for TokenHash {
    // A prefix is enough to correlate log lines; the hash is not a secret, but keep it short.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", &hex(&self.0[..6]))
    }
}

/// Identifies a grant family: the code, the first token pair and every rotated refresh token
/// that descend from one grant. Revocation acts on families.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FamilyId(pub [u8; 16]);

impl FamilyId {
    /// A new random family id.
    pub fn random() -> Self {
        let mut b = [0u8; 16];
        fill_random(&mut b);
        FamilyId(b)
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses lower-case hex as written by [`FamilyId::to_hex`].
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 16];
        unhex(s, &mut out)?;
        Some(FamilyId(out))
    }
}

impl fmt::Debug for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FamilyId({})", self.to_hex())
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A server MAC key with its id. Keys are 32 bytes.
#[derive(Clone)]
pub struct ServerKey {
    /// The id written into every token signed with this key.
    pub id: u8,
    key: [u8; 32],
}

impl ServerKey {
    /// A key from its 32 bytes.
    pub fn new(id: u8, key: [u8; 32]) -> Self {
        ServerKey { id, key }
    }

    /// A new random key.
    pub fn random(id: u8) -> Self {
        let mut key = [0u8; 32];
        fill_random(&mut key);
        ServerKey { id, key }
    }

    /// The key bytes, for stores that persist a generated key.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.key
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerKey({}, [redacted])", self.id)
    }
}

/// Why a string is not a token of ours. Deliberately coarse: callers answer all of these the
/// same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Wrong length, prefix or encoding.
    #[error("not a token")]
    Shape,
    /// Signed with a key id we do not hold.
    #[error("unknown key")]
    UnknownKey,
    /// The MAC does not match.
    #[error("bad MAC")]
    BadMac,
}

/// Mints and verifies token strings. Several verification keys, one signing key.
#[derive(Clone, Debug)]
pub struct TokenCodec {
    signing: ServerKey,
    verify: Vec<ServerKey>,
}

/// A freshly minted token: the string to hand out once, and the hash to store.
#[derive(Debug)]
pub struct Minted {
    /// The token string. Only the client ever sees it.
    pub token: Secret,
    /// What the store keeps.
    pub hash: TokenHash,
}

impl TokenCodec {
    /// A codec that signs with `signing` and also accepts tokens signed by `older` keys.
    pub fn new(signing: ServerKey, older: Vec<ServerKey>) -> Self {
        let mut verify = vec![signing.clone()];
        verify.extend(older.into_iter().filter(|k| k.id != signing.id));
        TokenCodec { signing, verify }
    }

    /// The key new tokens are signed with (other secrets are derived from it).
    pub(crate) fn signing_key(&self) -> &ServerKey {
        &self.signing
    }

    /// Mints a new token of `kind` from the OS random source.
    pub fn mint(&self, kind: TokenKind) -> Minted {
        let mut raw = [0u8; RAW_LEN];
        raw[0] = self.signing.id;
        fill_random(&mut raw[1..1 + RANDOM_LEN]);
        let hash = Self::keyed(&self.signing.key, kind, &raw[..1 + RANDOM_LEN]);
        raw[1 + RANDOM_LEN..].copy_from_slice(&hash.0[..TAG_LEN]);
        let mut token = String::with_capacity(TOKEN_LEN);
        token.push_str(kind.prefix());
        URL_SAFE_NO_PAD.encode_string(raw, &mut token);
        Minted {
            token: Secret::new(token),
            hash,
        }
    }

    /// Checks a presented string: its shape, key id and MAC. On success returns its kind and
    /// the hash to look it up by. Runs in CPU only.
    pub fn verify(&self, token: &str) -> Result<(TokenKind, TokenHash), Malformed> {
        self.verify_bytes(token.as_bytes())
    }

    /// [`TokenCodec::verify`] of a token as it came in a header, before any UTF-8 check
    /// (a token is ASCII or it is malformed).
    pub fn verify_bytes(&self, bytes: &[u8]) -> Result<(TokenKind, TokenHash), Malformed> {
        if bytes.len() != TOKEN_LEN {
            return Err(Malformed::Shape);
        }
        let kind = TokenKind::from_prefix(&bytes[..PREFIX_LEN]).ok_or(Malformed::Shape)?;
        let mut raw = [0u8; RAW_LEN + 2];
        let n = URL_SAFE_NO_PAD
            .decode_slice(&bytes[PREFIX_LEN..], &mut raw)
            .map_err(|_| Malformed::Shape)?;
        if n != RAW_LEN {
            return Err(Malformed::Shape);
        }
        let key = self
            .verify
            .iter()
            .find(|k| k.id == raw[0])
            .ok_or(Malformed::UnknownKey)?;
        let hash = Self::keyed(&key.key, kind, &raw[..1 + RANDOM_LEN]);
        // One 128-bit comparison, in constant time.
        let tag = |b: &[u8]| u128::from_le_bytes(b.try_into().expect("TAG_LEN bytes"));
        let want = tag(&hash.0[..TAG_LEN]);
        let got = tag(&raw[1 + RANDOM_LEN..RAW_LEN]);
        if !bool::from(want.ct_eq(&got)) {
            return Err(Malformed::BadMac);
        }
        Ok((kind, hash))
    }

    fn keyed(key: &[u8; 32], kind: TokenKind, payload: &[u8]) -> TokenHash {
        // One-shot hashing of a stack buffer: one compression, on every request.
        let mut buf = [0u8; PREFIX_LEN + 1 + RANDOM_LEN];
        buf[..PREFIX_LEN].copy_from_slice(kind.prefix().as_bytes());
        buf[PREFIX_LEN..PREFIX_LEN + payload.len()].copy_from_slice(payload);
        TokenHash(*blake3::keyed_hash(key, &buf[..PREFIX_LEN + payload.len()]).as_bytes())
    }
}

/// Fills `buf` from the operating system's random source.
pub(crate) fn fill_random(buf: &mut [u8]) {
    // The OS source failing is not something a request can recover from or cause.
    getrandom::fill(buf).expect("the operating system random source failed");
}

/// A random string of URL-unreserved characters carrying `bytes` bytes of entropy.
pub(crate) fn random_string(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    fill_random(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub(crate) fn unhex(s: &str, out: &mut [u8]) -> Option<()> {
    let s = s.as_bytes();
    if s.len() != out.len() * 2 {
        return None;
    }
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = nib(s[2 * i])? << 4 | nib(s[2 * i + 1])?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> TokenCodec {
        TokenCodec::new(ServerKey::random(1), vec![])
    }

    #[test]
    fn minted_tokens_verify_with_their_kind_and_hash() {
        let c = codec();
        for kind in [
            TokenKind::Access,
            TokenKind::Refresh,
            TokenKind::Code,
            TokenKind::Device,
        ] {
            let m = c.mint(kind);
            let (k, h) = c.verify(m.token.expose()).unwrap();
            assert_eq!(k, kind);
            assert_eq!(h, m.hash);
            assert!(m
                .token
                .expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        }
    }

    #[test]
    fn any_flipped_character_is_refused() {
        let c = codec();
        let t = c.mint(TokenKind::Access).token.expose().to_owned();
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let s = String::from_utf8(b).unwrap();
            if s != t {
                assert!(c.verify(&s).is_err(), "position {i} accepted");
            }
        }
    }

    #[test]
    fn changing_the_kind_prefix_breaks_the_mac() {
        let c = codec();
        let t = c
            .mint(TokenKind::Access)
            .token
            .expose()
            .replacen("oea_", "oer_", 1);
        assert_eq!(c.verify(&t), Err(Malformed::BadMac));
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_and_unknown_keys_are_refused() {
        let old = ServerKey::random(1);
        let t = TokenCodec::new(old.clone(), vec![]).mint(TokenKind::Access);
        let rotated = TokenCodec::new(ServerKey::random(2), vec![old]);
        assert!(rotated.verify(t.token.expose()).is_ok());
        let fresh = TokenCodec::new(ServerKey::random(2), vec![]);
        assert_eq!(fresh.verify(t.token.expose()), Err(Malformed::UnknownKey));
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let c = codec();
        for s in [
            "",
            "oea_",
            "Bearer",
            "oea_!!!!",
            &"x".repeat(70),
            &"é".repeat(35),
        ] {
            assert!(c.verify(s).is_err());
        }
    }

    #[test]
    fn the_hash_is_stable_across_rotation_and_hides_the_random_part() {
        let old = ServerKey::random(1);
        let m = TokenCodec::new(old.clone(), vec![]).mint(TokenKind::Refresh);
        let rotated = TokenCodec::new(ServerKey::random(2), vec![old]);
        assert_eq!(rotated.verify(m.token.expose()).unwrap().1, m.hash);
        // The hash is not the plain hash of the string: it cannot be recomputed without the key.
        assert_ne!(m.hash, TokenHash::of(m.token.expose()));
    }

    #[test]
    fn hex_round_trips() {
        let f = FamilyId::random();
        assert_eq!(FamilyId::from_hex(&f.to_hex()), Some(f));
        assert_eq!(FamilyId::from_hex("zz"), None);
    }
}
