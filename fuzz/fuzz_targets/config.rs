//! `Config::from_toml`: TOML parsing and validation.
//!
//! Input: a TOML document (inputs that are not UTF-8 are skipped).
//!
//! Checks, besides never panicking (on any input, `from_toml` returns a config or an error):
//! - it is deterministic, and an accepted config passes `validate` again;
//! - an error names a key and a reason;
//! - `Debug` of an accepted config prints none of its secrets: MAC keys, client secrets and
//!   secret hashes, user passwords and password hashes, the PostgreSQL URL, and the
//!   gateway's admin token (each replaced by a marker that the output must not hold).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_edge::config::StoreConfig;
use oauth_edge::{Config, Secret};

const MARKER: &str = "zqx-secret-marker-qzx";

fn mark_secrets(c: &mut Config) {
    for k in &mut c.tokens.keys {
        k.secret = Secret::new(MARKER);
    }
    for cl in &mut c.clients {
        if cl.secret.is_some() {
            cl.secret = Some(Secret::new(MARKER));
        }
        if cl.secret_hash.is_some() {
            cl.secret_hash = Some(MARKER.into());
        }
    }
    for u in &mut c.users {
        if u.password.is_some() {
            u.password = Some(Secret::new(MARKER));
        }
        if u.password_hash.is_some() {
            u.password_hash = Some(MARKER.into());
        }
    }
    if let StoreConfig::Postgres(pg) = &mut c.store {
        pg.url = Secret::new(MARKER);
    }
    let token = c
        .gateway
        .as_mut()
        .and_then(|g| g.get_mut("admin"))
        .and_then(|a| a.as_table_mut())
        .and_then(|a| a.get_mut("token"));
    if let Some(t) = token {
        *t = toml::Value::String(MARKER.into());
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = Config::from_toml(text);
    let again = Config::from_toml(text);
    match (first, again) {
        (Ok(mut c), Ok(_)) => {
            assert_eq!(c.validate(), Ok(()));
            let _ = c.secret_keys();
            // Redaction: only meaningful when the marker is not in the output already.
            if !format!("{c:?}").contains(MARKER) {
                mark_secrets(&mut c);
                let printed = format!("{c:?}");
                assert!(!printed.contains(MARKER), "a secret in Debug: {printed}");
            }
        }
        (Err(e), Err(e2)) => {
            assert_eq!(e, e2, "from_toml is not deterministic");
            assert!(!e.key.is_empty() && !e.reason.is_empty(), "{e:?}");
            let _ = e.to_string();
        }
        (a, b) => panic!("from_toml is not deterministic: {a:?} then {b:?}"),
    }
});
