//! The token-status cache.
//!
//! A moka cache maps [`TokenHash`] → what the store said about the token. An entry lives at
//! most `min(cache ttl, token expiry)` (time to live, never idle expiry, so traffic cannot keep
//! a stale entry alive); unknown tokens are remembered for the shorter `negative_ttl`.
//! Concurrent misses on one hash share one store read (`try_get_with`), and a store error is
//! never cached.
//!
//! Revocation acts on families, and the cache cannot list a family's entries. So a revoked
//! family is also written to a marker set that lives longer than any entry can, and every hit
//! is checked against it. That also closes the race where a store read that started before
//! a revocation lands in the cache after it: the marker refuses the stale entry.
//!
//! In front of moka sits a small per-thread table of recent hits (`front`), filed under the
//! token's text: moka records every read for its eviction policy, and the MAC check decodes
//! and hashes the token, which together cost more than the rest of an admission. Only a token
//! that passed the MAC check goes in, so only the very same string, compared in constant time,
//! is answered from it ([`TokenCache::get_by_text`]); anything else, a forgery included, takes the
//! MAC check as before. A front entry is used only while nothing has been revoked, forgotten or
//! cleared in this cache since it was filled (one generation counter), and for at most
//! `front::MAX_AGE_MS`; otherwise the lookup goes to moka as before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;

use crate::config::CacheConfig;
use crate::scope::Scopes;
use crate::store::{StoreError, TokenRecord, UnixTime};
use crate::tokens::{FamilyId, TokenHash, TokenKind};

/// What the edge remembers about a live-or-dead token. Small on purpose: see the memory
/// budget in ARCHITECTURE.md.
#[derive(Debug)]
pub struct CachedToken {
    /// The token's kind.
    pub kind: TokenKind,
    /// Its family.
    pub family: FamilyId,
    /// The client it was issued to.
    pub client_id: Arc<str>,
    /// The resource owner, if any.
    pub user: Option<Arc<str>>,
    /// Its scopes.
    pub scopes: Scopes,
    /// True when it came from `client_credentials`: it then stands for its client.
    pub client_credentials: bool,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// When it expires.
    pub expires_at: Option<UnixTime>,
    /// Revoked in the store when read.
    pub revoked: bool,
}

impl CachedToken {
    /// Converts a store record.
    pub fn from_record(r: &TokenRecord) -> Self {
        CachedToken {
            kind: r.kind,
            family: r.family,
            client_id: r.client_id.as_str().into(),
            user: r.user.as_deref().map(Into::into),
            scopes: r.scopes.clone(),
            client_credentials: r.grant_type == "client_credentials",
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            // Access tokens are consumed only by NPR's trade for a refresh-enabled pair, after
            // which they no longer work.
            revoked: r.revoked || (r.kind == TokenKind::Access && r.consumed_at.is_some()),
        }
    }
}

/// The token cache's hasher. Its keys are [`TokenHash`]es, keyed BLAKE3 outputs that only a
/// holder of the server key can choose (a forged token never gets past the MAC check to the
/// cache), so their first 8 bytes, which is what `TokenHash` feeds a hasher, are already a
/// uniform hash: no need to run SipHash over them again on every request.
#[derive(Clone, Default)]
struct PassThrough;

impl std::hash::BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

#[derive(Default)]
struct PassThroughHasher(u64);

impl std::hash::Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, word: u64) {
        self.0 = word;
    }
    // Only `write_u64` is ever called for a `TokenHash`; anything else is still hashed
    // (FNV-1a), not dropped.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

#[derive(Clone)]
enum Entry {
    /// A token the store knows, with the cache's generation read before the store read
    /// began: a hit needs the marker check only when the generation moved since.
    Known(Arc<CachedToken>, u64),
    Unknown,
}

struct Lifetimes {
    ttl: Duration,
    negative_ttl: Duration,
}

impl Expiry<TokenHash, Entry> for Lifetimes {
    fn expire_after_create(&self, _: &TokenHash, v: &Entry, _: Instant) -> Option<Duration> {
        Some(match v {
            Entry::Unknown => self.negative_ttl,
            Entry::Known(t, _) if t.revoked => self.ttl,
            Entry::Known(t, _) => match t.expires_at {
                None => self.ttl,
                Some(exp) => {
                    let left = u64::try_from(exp - crate::unix_now()).unwrap_or(0);
                    self.ttl.min(Duration::from_secs(left))
                }
            },
        })
    }
}

/// Counters for the metrics endpoint.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: AtomicU64,
    /// Lookups that went to the store.
    pub misses: AtomicU64,
}

/// The cache. Cheap to share behind the edge's `Arc`.
pub struct TokenCache {
    entries: moka::future::Cache<TokenHash, Entry, PassThrough>,
    revoked: moka::sync::Cache<FamilyId, ()>,
    /// Bumped after every invalidation: a revocation (after its marker insert), a forgotten
    /// entry, a clear. Entries loaded under an older generation are checked against the
    /// markers; front entries filled under one are not used.
    generation: AtomicU64,
    /// This cache's name in the per-thread fronts, which every cache of the process shares.
    id: u64,
    /// Hit and miss counters.
    pub stats: CacheStats,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.entries.entry_count())
            .field("revoked_families", &self.revoked.entry_count())
            .finish()
    }
}

impl TokenCache {
    /// A cache sized and timed by `config`.
    pub fn new(config: &CacheConfig) -> Self {
        let entries = moka::future::Cache::builder()
            .max_capacity(config.capacity)
            .expire_after(Lifetimes {
                ttl: config.ttl,
                negative_ttl: config.negative_ttl,
            })
            .build_with_hasher(PassThrough);
        // A marker must outlive every entry that could have been loaded before its
        // revocation, including one whose store read was slow: twice the TTL plus a margin.
        let revoked = moka::sync::Cache::builder()
            .time_to_live(config.ttl * 2 + Duration::from_secs(10))
            .build();
        static IDS: AtomicU64 = AtomicU64::new(1);
        TokenCache {
            entries,
            revoked,
            generation: AtomicU64::new(0),
            id: IDS.fetch_add(1, Ordering::Relaxed),
            stats: CacheStats::default(),
        }
    }

    /// The status of a token presented as text, with the caller's clock reading
    /// (Unix milliseconds). A live token this thread found here within the last
    /// `front::MAX_AGE_MS` (one second), with nothing revoked, forgotten or cleared since, is answered
    /// from the per-thread front by its text alone. Otherwise `verify` checks the text and
    /// gives its hash, or refuses it (`Ok(None)`, and nothing is looked up); a live hit is then
    /// filed under the text. Only text `verify` accepted is ever filed, so a front hit needs no
    /// second check.
    pub async fn get_by_text<F>(
        &self,
        token: &[u8],
        now_ms: i64,
        verify: impl FnOnce(&[u8]) -> Option<TokenHash>,
        load: impl FnOnce(TokenHash) -> F,
    ) -> Result<Option<Arc<CachedToken>>, Arc<StoreError>>
    where
        F: std::future::Future<Output = Result<Option<TokenRecord>, StoreError>>,
    {
        // Read before any lookup: a revocation that lands after this read makes the front
        // entry filed below unusable, whatever the lookup saw.
        let generation = self.seq();
        if let Some(t) = front::get(self.id, generation, token, now_ms) {
            self.stats.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(t));
        }
        let Some(hash) = verify(token) else {
            return Ok(None);
        };
        let found = self.get(hash, load(hash)).await?;
        // A revoked token (in the store, or by a marker) is never filed.
        if let Some(t) = found.as_ref().filter(|t| !t.revoked) {
            front::put(self.id, generation, token, t, now_ms);
        }
        Ok(found)
    }

    /// The status of the token whose text is `token` if this thread's front holds it, without
    /// waiting for anything: what [`get_by_text`](Self::get_by_text) answers first.
    pub(crate) fn front_by_text(&self, token: &[u8], now_ms: i64) -> Option<Arc<CachedToken>> {
        let t = front::get(self.id, self.seq(), token, now_ms)?;
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
        Some(t)
    }

    /// The status of the token `hash`: from the cache, or from `load` on a miss (one load
    /// for all concurrent misses). `Ok(None)` for a token the store does not know. A hit
    /// whose family has since been revoked comes back marked revoked.
    pub async fn get<F>(
        &self,
        hash: TokenHash,
        load: F,
    ) -> Result<Option<Arc<CachedToken>>, Arc<StoreError>>
    where
        F: std::future::Future<Output = Result<Option<TokenRecord>, StoreError>>,
    {
        let entry = match self.entries.get(&hash).await {
            Some(e) => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                e
            }
            None => {
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                // Boxed: moka's loading future is kilobytes, and inline it would make every
                // caller's future (a hit's too) that large, to be set up and moved per request.
                Box::pin(self.load(hash, load)).await?
            }
        };
        Ok(match entry {
            Entry::Unknown => None,
            Entry::Known(t, seq)
                if !t.revoked && seq != self.seq() && self.revoked.contains_key(&t.family) =>
            {
                Some(Arc::new(CachedToken {
                    revoked: true,
                    user: t.user.clone(),
                    client_id: t.client_id.clone(),
                    scopes: t.scopes.clone(),
                    ..*t
                }))
            }
            Entry::Known(t, _) => Some(t),
        })
    }

    /// A miss: one `load` for all concurrent misses on `hash`.
    async fn load<F>(&self, hash: TokenHash, load: F) -> Result<Entry, Arc<StoreError>>
    where
        F: std::future::Future<Output = Result<Option<TokenRecord>, StoreError>>,
    {
        let seq = self.seq();
        self.entries
            .try_get_with(hash, async move {
                Ok::<_, StoreError>(match load.await? {
                    Some(r) => Entry::Known(Arc::new(CachedToken::from_record(&r)), seq),
                    None => Entry::Unknown,
                })
            })
            .await
    }

    /// The cache's generation. Read it before a store write whose tokens will be passed to
    /// [`TokenCache::insert_issued`].
    pub fn seq(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Remembers a token the edge just issued, so its first use needs no store read. `seq`
    /// is [`TokenCache::seq`] as read before the store write.
    pub async fn insert_issued(&self, hash: TokenHash, token: CachedToken, seq: u64) {
        self.entries
            .insert(hash, Entry::Known(Arc::new(token), seq))
            .await;
    }

    /// Marks `family` revoked and drops `hash`'s entry if given. Takes effect for the very
    /// next lookup on this instance.
    pub async fn revoke_family(&self, family: FamilyId, hash: Option<TokenHash>) {
        self.revoked.insert(family, ());
        // After the marker: a hit that sees the new generation is sure to find the marker,
        // and a front entry filled under an older one is dropped.
        self.generation.fetch_add(1, Ordering::Release);
        if let Some(h) = hash {
            self.entries.invalidate(&h).await;
        }
    }

    /// Drops one token's entry (a token consumed without its family being revoked).
    pub async fn forget(&self, hash: &TokenHash) {
        self.entries.invalidate(hash).await;
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Forgets everything (after a gap in revocation notifications).
    pub fn clear(&self) {
        self.entries.invalidate_all();
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Runs moka's pending housekeeping now (expiry, eviction, counting): for tests and
    /// measurements that want exact figures.
    pub async fn run_pending_tasks(&self) {
        self.entries.run_pending_tasks().await;
    }

    /// Entries held (approximate).
    pub fn len(&self) -> u64 {
        self.entries.entry_count()
    }

    /// True when no entry is held (approximate).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The per-thread front: a small direct-mapped table of recent hits, one per thread, shared
/// by every cache of the process (each entry names its cache). Only live tokens go in, each
/// under the text that passed the MAC check.
mod front {
    use std::cell::RefCell;
    use std::sync::Arc;

    use subtle::ConstantTimeEq;

    use super::CachedToken;
    use crate::tokens::TOKEN_LEN;

    /// Slots per thread (a power of two). A gateway worker sees a few hot tokens at a time;
    /// a colder token simply goes to moka.
    const SLOTS: usize = 256;

    /// How long a front entry is used before moka is asked again, so that the cache's TTL
    /// still bounds how stale an answer can be (by at most this much more).
    pub(super) const MAX_AGE_MS: i64 = 1000;

    type Text = [u8; TOKEN_LEN];

    struct Slot {
        cache: u64,
        generation: u64,
        until_ms: i64,
        text: Text,
        token: Arc<CachedToken>,
    }

    thread_local! {
        static FRONT: RefCell<Vec<Option<Slot>>> = const { RefCell::new(Vec::new()) };
    }

    fn index(text: &Text) -> usize {
        // Past the 4-byte kind prefix and the key id's character and a half, a token is
        // base64 of random bytes: eight of its characters, mixed, pick the slot.
        let mut word = [0u8; 8];
        word.copy_from_slice(&text[6..14]);
        let mixed = u64::from_le_bytes(word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed >> (64 - SLOTS.trailing_zeros())) as usize
    }

    /// Whether `a` and `b` are the same string, in a time that does not depend on where they
    /// differ: one is a token that passed the MAC check, the other whatever was presented.
    fn same(a: &Text, b: &Text) -> bool {
        let word = |t: &Text, i: usize| {
            let mut w = [0u8; 8];
            let end = (i + 8).min(TOKEN_LEN);
            w[..end - i].copy_from_slice(&t[i..end]);
            u64::from_le_bytes(w)
        };
        let diff = (0..TOKEN_LEN)
            .step_by(8)
            .fold(0u64, |acc, i| acc | (word(a, i) ^ word(b, i)));
        diff.ct_eq(&0).into()
    }

    pub(super) fn get(
        cache: u64,
        generation: u64,
        text: &[u8],
        now_ms: i64,
    ) -> Option<Arc<CachedToken>> {
        let text: &Text = text.try_into().ok()?;
        FRONT.with(|f| {
            let f = f.try_borrow().ok()?;
            let s = f.get(index(text))?.as_ref()?;
            (s.cache == cache
                && s.generation == generation
                && now_ms < s.until_ms
                && same(&s.text, text))
            .then(|| s.token.clone())
        })
    }

    pub(super) fn put(
        cache: u64,
        generation: u64,
        text: &[u8],
        token: &Arc<CachedToken>,
        now_ms: i64,
    ) {
        let Ok(text) = <&Text>::try_from(text) else {
            return;
        };
        FRONT.with(|f| {
            let Ok(mut f) = f.try_borrow_mut() else {
                return;
            };
            if f.is_empty() {
                f.resize_with(SLOTS, || None);
            }
            f[index(text)] = Some(Slot {
                cache,
                generation,
                until_ms: now_ms + MAX_AGE_MS,
                text: *text,
                token: token.clone(),
            });
        });
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn texts_are_equal_only_when_every_byte_is() {
            let a: Text = std::array::from_fn(|i| b'A' + (i % 26) as u8);
            assert!(same(&a, &a));
            // A difference in any position, the last partial word included, is seen.
            for i in 0..TOKEN_LEN {
                let mut b = a;
                b[i] ^= 1;
                assert!(!same(&a, &b), "byte {i}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn record(family: FamilyId, expires_at: Option<UnixTime>) -> TokenRecord {
        TokenRecord {
            hash: TokenHash::of("t"),
            kind: TokenKind::Access,
            family,
            client_id: "c".into(),
            user: None,
            grant_type: "client_credentials".into(),
            scopes: Scopes::default(),
            issued_at: 0,
            expires_at,
            consumed_at: None,
            revoked: false,
        }
    }

    fn cache() -> TokenCache {
        TokenCache::new(&CacheConfig::default())
    }

    #[tokio::test]
    async fn concurrent_misses_make_one_load() {
        let c = Arc::new(cache());
        let loads = Arc::new(AtomicUsize::new(0));
        let fam = FamilyId::random();
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (c, loads) = (c.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                c.get(TokenHash::of("t"), async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(Some(record(fam, None)))
                })
                .await
                .unwrap()
                .unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_unknowns_are() {
        let c = cache();
        let h = TokenHash::of("x");
        assert!(c
            .get(h, async { Err(StoreError::Unavailable("down".into())) })
            .await
            .is_err());
        assert!(c.get(h, async { Ok(None) }).await.unwrap().is_none());
        // Now cached as unknown: the loader is not called.
        let r = c
            .get(h, async {
                panic!("the unknown entry should have been cached")
            })
            .await;
        assert!(r.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_load_racing_a_revocation_cannot_bring_the_token_back() {
        let c = Arc::new(cache());
        let fam = FamilyId::random();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let c2 = c.clone();
        // The load reads "live" from the store, then stalls while the revocation lands.
        let loader = tokio::spawn(async move {
            c2.get(TokenHash::of("t"), async move {
                let r = record(fam, None);
                rx.await.ok();
                Ok(Some(r))
            })
            .await
            .unwrap()
            .unwrap()
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.revoke_family(fam, Some(TokenHash::of("t"))).await;
        tx.send(()).unwrap();
        assert!(loader.await.unwrap().revoked);
        let again = c
            .get(TokenHash::of("t"), async { panic!("cached") })
            .await
            .unwrap()
            .unwrap();
        assert!(again.revoked);
    }

    #[tokio::test]
    async fn revoking_a_family_reaches_entries_loaded_before() {
        let c = cache();
        let fam = FamilyId::random();
        let (a, b) = (TokenHash::of("a"), TokenHash::of("b"));
        for h in [a, b] {
            c.get(h, async { Ok(Some(record(fam, None))) })
                .await
                .unwrap();
        }
        let other = FamilyId::random();
        c.get(TokenHash::of("o"), async { Ok(Some(record(other, None))) })
            .await
            .unwrap();
        // Revoked through another token of the family: neither entry is named.
        c.revoke_family(fam, None).await;
        for h in [a, b] {
            let t = c.get(h, async { panic!("cached") }).await.unwrap().unwrap();
            assert!(t.revoked);
        }
        let o = c
            .get(TokenHash::of("o"), async { panic!("cached") })
            .await
            .unwrap()
            .unwrap();
        assert!(!o.revoked);
    }

    /// Counts of the calls a lookup by text made.
    #[derive(Default)]
    struct Calls {
        verifies: AtomicUsize,
        loads: AtomicUsize,
    }

    impl Calls {
        fn get(&self) -> (usize, usize) {
            (
                self.verifies.load(Ordering::SeqCst),
                self.loads.load(Ordering::SeqCst),
            )
        }
    }

    /// [`TokenCache::get_by_text`] with a `verify` that accepts (as `h`) only `accept`, and a
    /// store that knows `h` in family `fam`.
    async fn by_text(
        c: &TokenCache,
        text: &[u8],
        accept: &[u8],
        now_ms: i64,
        fam: FamilyId,
        calls: &Calls,
    ) -> Option<Arc<CachedToken>> {
        let verify = |t: &[u8]| {
            calls.verifies.fetch_add(1, Ordering::SeqCst);
            (t == accept).then(|| TokenHash::of("front"))
        };
        let load = |_| async {
            calls.loads.fetch_add(1, Ordering::SeqCst);
            Ok(Some(record(fam, None)))
        };
        c.get_by_text(text, now_ms, verify, load).await.unwrap()
    }

    /// The per-thread front answers without `verify` or moka, but only for the very same
    /// text that `verify` accepted, only for its own cache, only for `MAX_AGE_MS`, and never
    /// after a revocation, a forgotten entry or a clear.
    #[tokio::test]
    async fn the_front_is_bounded_in_time_and_dropped_by_every_invalidation() {
        let c = cache();
        let other = cache();
        let h = TokenHash::of("front");
        let text: [u8; crate::tokens::TOKEN_LEN] = std::array::from_fn(|i| b'a' + (i % 26) as u8);
        let fam = FamilyId::random();
        let calls = Calls::default();
        let look = |c, t, now| by_text(c, t, &text, now, fam, &calls);
        let t0 = crate::unix_now_ms();
        assert!(look(&c, &text, t0).await.is_some());
        assert_eq!(calls.get(), (1, 1));
        // Gone from moka behind the front's back: the front still answers, within its age,
        // with neither a second check nor a load.
        c.entries.invalidate(&h).await;
        let t = look(&c, &text, t0 + 10).await.expect("the front answers");
        assert!(!t.revoked);
        assert_eq!(calls.get(), (1, 1));
        // Only for the same text: one byte off (the last, which leaves the slot the same) or
        // a prefix is checked, and refused.
        let mut near = text;
        near[text.len() - 1] ^= 1;
        assert!(look(&c, &near, t0 + 10).await.is_none());
        assert!(look(&c, &text[..20], t0 + 10).await.is_none());
        assert_eq!(calls.get(), (3, 1));
        // Past its age, the text is checked again and moka is asked (and has nothing).
        assert!(look(&c, &text, t0 + front::MAX_AGE_MS).await.is_some());
        assert_eq!(calls.get(), (4, 2));
        // Another cache on the same thread never sees this cache's entries.
        assert!(look(&other, &text, t0 + 1).await.is_some());
        assert_eq!(calls.get(), (5, 3));
        // A lookup by hash files nothing.
        let quiet = cache();
        quiet
            .get(h, async { Ok(Some(record(fam, None))) })
            .await
            .unwrap();
        assert!(look(&quiet, &text, t0 + 1).await.is_some());
        assert_eq!(calls.get(), (6, 3), "moka answered, the front had nothing");

        // Each invalidation drops the front entry even while moka is bypassed. (The slot is
        // this cache's again after the first lookup: the other caches took it meanwhile.)
        let now = t0 + front::MAX_AGE_MS + 1;
        look(&c, &text, now).await;
        let (v, l) = calls.get();
        look(&c, &text, now).await;
        assert_eq!(calls.get(), (v, l), "the front answered");
        c.forget(&h).await;
        look(&c, &text, now).await;
        assert_eq!(calls.get(), (v + 1, l + 1), "forget");
        c.clear();
        look(&c, &text, now).await;
        assert_eq!(calls.get(), (v + 2, l + 2), "clear");
        c.revoke_family(fam, None).await;
        let t = look(&c, &text, now).await.unwrap();
        assert!(t.revoked, "a revocation is seen at once");
        assert_eq!(
            calls.get(),
            (v + 3, l + 2),
            "moka answered, with the marker"
        );
        // A revoked token is never filed in the front.
        look(&c, &text, now).await;
        assert_eq!(calls.get(), (v + 4, l + 2));
    }

    #[tokio::test]
    async fn entries_die_with_their_token() {
        let c = cache();
        let h = TokenHash::of("t");
        let fam = FamilyId::random();
        let exp = crate::unix_now() + 1;
        c.get(h, async { Ok(Some(record(fam, Some(exp)))) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let loaded = AtomicUsize::new(0);
        c.get(h, async {
            loaded.fetch_add(1, Ordering::SeqCst);
            Ok(None)
        })
        .await
        .unwrap();
        assert_eq!(loaded.load(Ordering::SeqCst), 1, "entry outlived its token");
    }
}
