//! Memory per cached token (the ARCHITECTURE.md budget: ≤ 300 bytes).
//!
//! Counts every byte the global allocator hands out while the token cache is filled with
//! `N` entries, both ways an entry arrives: a token the edge just issued (its client id and
//! scopes shared with the client registry) and a token loaded from the store on a miss (its
//! own copies of both). Heap bytes include moka's per-entry bookkeeping (its hash table node,
//! access-order deque node, timer-wheel node, frequency sketch). Run with
//! `cargo bench --bench memory`; it prints one line per way, and says so when over budget.

#![allow(missing_docs)]

use std::alloc::System;
use std::sync::Arc;

use cap::Cap;
use oauth_edge::cache::{CachedToken, TokenCache};
use oauth_edge::config::CacheConfig;
use oauth_edge::store::TokenRecord;
use oauth_edge::tokens::{FamilyId, TokenHash, TokenKind};
use oauth_edge::Scopes;

/// Counts the bytes live on the heap.
#[global_allocator]
static GLOBAL: Cap<System> = Cap::new(System, usize::MAX);

fn live() -> isize {
    GLOBAL.allocated() as isize
}

const N: usize = 200_000;
const BUDGET: f64 = 300.0;

fn hash(i: usize) -> TokenHash {
    TokenHash::of(&format!("token-{i}"))
}

fn config() -> CacheConfig {
    CacheConfig {
        capacity: (N * 2) as u64,
        ..CacheConfig::default()
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client: Arc<str> = "billing-service".into();
    let scopes = Scopes::parse("invoices.read invoices.write").unwrap();
    let now = oauth_edge::unix_now();
    let mut over = false;

    // Issued: what `client_credentials` puts in the cache.
    let hashes: Vec<TokenHash> = (0..N).map(hash).collect();
    let cache = TokenCache::new(&config());
    let before = live();
    rt.block_on(async {
        for h in &hashes {
            let t = CachedToken {
                kind: TokenKind::Access,
                family: FamilyId::random(),
                client_id: client.clone(),
                user: None,
                scopes: scopes.clone(),
                client_credentials: true,
                issued_at: now,
                expires_at: Some(now + 3600),
                revoked: false,
            };
            cache.insert_issued(*h, t, cache.seq()).await;
        }
        cache.run_pending_tasks().await;
    });
    let issued = (live() - before) as f64 / N as f64;
    assert_eq!(cache.len(), N as u64);
    drop(cache);

    // Loaded from the store on a miss: the strings are the entry's own.
    let cache = TokenCache::new(&config());
    let records: Vec<TokenRecord> = hashes
        .iter()
        .map(|h| TokenRecord {
            hash: *h,
            kind: TokenKind::Access,
            family: FamilyId::random(),
            client_id: "billing-service".into(),
            user: Some("alice@example.com".into()),
            grant_type: "password".into(),
            scopes: scopes.clone(),
            issued_at: now,
            expires_at: Some(now + 3600),
            consumed_at: None,
            revoked: false,
        })
        .collect();
    let before = live();
    rt.block_on(async {
        for r in &records {
            let r = r.clone();
            let got = cache.get(r.hash, async move { Ok(Some(r)) }).await;
            assert!(matches!(got, Ok(Some(_))));
        }
        cache.run_pending_tasks().await;
    });
    let loaded = (live() - before) as f64 / N as f64;
    assert_eq!(cache.len(), N as u64);

    for (what, bytes) in [
        ("issued (strings shared with the registry)", issued),
        ("loaded from the store (own strings, with a user)", loaded),
    ] {
        let verdict = if bytes <= BUDGET { "ok" } else { "OVER" };
        over |= bytes > BUDGET;
        println!(
            "memory per cached token, {what}: {bytes:.0} bytes ({N} entries; budget {BUDGET:.0}: {verdict})"
        );
    }
    println!(
        "size_of::<CachedToken>() = {} bytes",
        std::mem::size_of::<CachedToken>()
    );
    if over {
        println!("over budget: moka's own bookkeeping is most of it (see benches/load/README.md)");
    }
}
