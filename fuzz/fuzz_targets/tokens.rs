//! `TokenCodec::verify_bytes` / `verify` under fixed server keys, and mint → verify.
//!
//! The codec signs with key 7 and still accepts key 3 (a rotation); both keys are fixed, so
//! a crash reproduces. Input: any bytes, verified as a presented token; its first bytes also
//! pick a kind and a minting key, and a position and a byte to change in the minted token.
//!
//! Checks, besides never panicking:
//! - `verify` of a string and `verify_bytes` of its bytes agree;
//! - a string that verifies is exactly a token we mint: the kind's prefix, and the canonical
//!   base64url of its bytes (no second spelling of one token, so no second cache entry);
//! - a token minted under either key verifies, with its kind and the minted hash;
//! - changing any one byte of a minted token makes it fail.
#![no_main]

use std::sync::LazyLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use oauth_edge::tokens::{Malformed, ServerKey, TokenCodec, TokenKind};

struct Codecs {
    /// Signs with key 7, also accepts key 3.
    current: TokenCodec,
    /// Signs with key 3 only: tokens from before the rotation.
    old: TokenCodec,
}

static CODECS: LazyLock<Codecs> = LazyLock::new(|| {
    let old = ServerKey::new(3, [0x33; 32]);
    Codecs {
        current: TokenCodec::new(ServerKey::new(7, [0x77; 32]), vec![old.clone()]),
        old: TokenCodec::new(old, vec![]),
    }
});

const KINDS: [(TokenKind, &str); 4] = [
    (TokenKind::Access, "oea_"),
    (TokenKind::Refresh, "oer_"),
    (TokenKind::Code, "oec_"),
    (TokenKind::Device, "oed_"),
];

fuzz_target!(|data: &[u8]| {
    let c = &*CODECS;
    let got = c.current.verify_bytes(data);
    if let Ok(s) = std::str::from_utf8(data) {
        assert_eq!(c.current.verify(s), got);
    }
    if let Ok((kind, hash)) = got {
        let s = std::str::from_utf8(data).expect("a verified token is ASCII");
        let prefix = KINDS.iter().find(|(k, _)| *k == kind).unwrap().1;
        assert!(s.starts_with(prefix), "{s} verified as {kind:?}");
        let raw = URL_SAFE_NO_PAD.decode(&s[4..]).expect("base64url");
        assert_eq!(
            URL_SAFE_NO_PAD.encode(&raw),
            s[4..],
            "non-canonical spelling"
        );
        // The old codec agrees on its own tokens and knows no others.
        match raw[0] {
            3 => assert_eq!(c.old.verify(s), Ok((kind, hash))),
            _ => assert_eq!(c.old.verify(s), Err(Malformed::UnknownKey)),
        }
    }

    let pick = |i: usize| data.get(i).copied().unwrap_or(0);
    let (kind, _) = KINDS[usize::from(pick(0) & 3)];
    let minter = if pick(1) & 1 == 0 { &c.current } else { &c.old };
    let minted = minter.mint(kind);
    let token = minted.token.expose();
    assert_eq!(c.current.verify(token), Ok((kind, minted.hash)), "{token}");
    assert_eq!(
        c.current.verify_bytes(token.as_bytes()),
        Ok((kind, minted.hash))
    );
    if data.len() >= 4 {
        let mut changed = token.as_bytes().to_vec();
        let at = usize::from(pick(2)) % changed.len();
        if changed[at] != pick(3) {
            changed[at] = pick(3);
            assert!(
                c.current.verify_bytes(&changed).is_err(),
                "{token} with byte {at} set to {:#04x} still verifies",
                pick(3)
            );
        }
    }
});
