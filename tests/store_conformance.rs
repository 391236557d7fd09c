//! One conformance suite that every [`Store`] backend must pass.
//!
//! The cases live in `mod cases` as plain async functions taking an `Arc<dyn Store>`;
//! `store_suite!` instantiates every case for one backend, so adding a backend is one line:
//!
//! ```ignore
//! store_suite!(postgres, async { Arc::new(PostgresStore::connect(URL).await.unwrap()) as Arc<dyn Store> });
//! ```
//!
//! `$make` is evaluated once per test, so every test gets a fresh store.

use std::sync::Arc;

use oauth_edge::scope::Scopes;
use oauth_edge::store::*;
use oauth_edge::tokens::{FamilyId, ServerKey, TokenHash, TokenKind};

macro_rules! store_suite {
    ($modname:ident, $make:expr) => {
        store_suite!(@cases $modname, $make, [
            issue_then_find_returns_the_exact_record,
            a_duplicate_token_hash_conflicts_and_writes_nothing,
            a_duplicate_family_id_conflicts_and_writes_nothing,
            rotate_consumes_the_old_token_and_writes_the_new_ones,
            a_second_rotation_is_a_replay_that_revokes_the_family,
            rotate_by_the_wrong_client_leaves_the_token_untouched,
            rotate_of_a_wrong_kind_or_unknown_token_is_not_found,
            rotate_of_an_expired_token_is_dead,
            rotate_in_a_revoked_family_is_dead,
            rotate_onto_a_taken_hash_conflicts_and_consumes_nothing,
            concurrent_rotations_have_exactly_one_winner,
            revoke_family_is_idempotent_and_touches_only_that_family,
            revoke_all_by_client_by_user_and_by_both,
            revoke_all_returns_families_sorted,
            purge_expired_deletes_only_expired_tokens_and_honours_the_limit,
            purge_expired_removes_emptied_families,
            server_keys_are_created_once_and_then_stable,
            concurrent_first_server_keys_calls_agree,
            clients_are_put_got_listed_replaced_and_deleted,
            delete_client_revokes_its_families,
        ]);
    };
    (@cases $modname:ident, $make:expr, [$($case:ident),* $(,)?]) => {
        mod $modname {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let store: Arc<dyn Store> = $make.await;
                    super::cases::$case(store).await;
                }
            )*
        }
    };
}

store_suite!(memory, async {
    Arc::new(MemoryStore::new()) as Arc<dyn Store>
});

#[cfg(feature = "sqlite")]
store_suite!(sqlite, async { sqlite_store::fresh() });

#[cfg(feature = "sqlite")]
mod sqlite_store {
    use super::*;

    /// A SQLite store in its own temporary directory, which lives exactly as long as the store.
    pub(crate) fn fresh() -> Arc<dyn Store> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(dir.path().join("edge.db"), Synchronous::Full)
            .expect("open sqlite store");
        Arc::new(KeepDir { store, _dir: dir })
    }

    /// Delegates to `store`; holds the directory so it is removed only after the store closes.
    struct KeepDir {
        store: SqliteStore,
        _dir: tempfile::TempDir,
    }

    #[async_trait::async_trait]
    impl Store for KeepDir {
        async fn issue(
            &self,
            family: Option<&NewFamily>,
            tokens: &[NewToken],
        ) -> Result<(), StoreError> {
            self.store.issue(family, tokens).await
        }
        async fn find(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
            self.store.find(hash).await
        }
        async fn rotate(
            &self,
            old: &TokenHash,
            kind: TokenKind,
            client_id: &str,
            now: UnixTime,
            new: &[NewToken],
        ) -> Result<Rotation, StoreError> {
            self.store.rotate(old, kind, client_id, now, new).await
        }
        async fn revoke_family(&self, family: &FamilyId, now: UnixTime) -> Result<(), StoreError> {
            self.store.revoke_family(family, now).await
        }
        async fn revoke_all(
            &self,
            client_id: Option<&str>,
            user: Option<&str>,
            now: UnixTime,
        ) -> Result<Vec<FamilyId>, StoreError> {
            self.store.revoke_all(client_id, user, now).await
        }
        async fn purge_expired(&self, before: UnixTime, limit: u32) -> Result<u64, StoreError> {
            self.store.purge_expired(before, limit).await
        }
        async fn server_keys(&self) -> Result<Vec<ServerKey>, StoreError> {
            self.store.server_keys().await
        }
        async fn client(&self, id: &str) -> Result<Option<ClientRecord>, StoreError> {
            self.store.client(id).await
        }
        async fn put_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
            self.store.put_client(client).await
        }
        async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
            self.store.list_clients().await
        }
        async fn delete_client(&self, id: &str, now: UnixTime) -> Result<bool, StoreError> {
            self.store.delete_client(id, now).await
        }
    }
}

mod cases {
    use super::*;

    const NOW: UnixTime = 1_700_000_000;
    const HOUR: UnixTime = 3600;

    fn family(client: &str, user: Option<&str>) -> NewFamily {
        NewFamily {
            id: FamilyId::random(),
            client_id: client.into(),
            user: user.map(Into::into),
            grant_type: "password".into(),
            created_at: NOW,
        }
    }

    fn token(name: &str, kind: TokenKind, family: &NewFamily) -> NewToken {
        NewToken {
            hash: TokenHash::of(name),
            kind,
            family: family.id,
            scopes: Scopes::parse("read write").expect("scopes"),
            issued_at: NOW,
            expires_at: Some(NOW + HOUR),
        }
    }

    fn expiring(name: &str, family: &NewFamily, expires_at: Option<UnixTime>) -> NewToken {
        NewToken {
            expires_at,
            ..token(name, TokenKind::Access, family)
        }
    }

    /// The record `find` must return for a freshly issued token.
    fn record(f: &NewFamily, t: &NewToken) -> TokenRecord {
        TokenRecord {
            hash: t.hash,
            kind: t.kind,
            family: t.family,
            client_id: f.client_id.clone(),
            user: f.user.clone(),
            grant_type: f.grant_type.clone(),
            scopes: t.scopes.clone(),
            issued_at: t.issued_at,
            expires_at: t.expires_at,
            consumed_at: None,
            revoked: false,
        }
    }

    async fn find(s: &Arc<dyn Store>, t: &NewToken) -> Option<TokenRecord> {
        s.find(&t.hash).await.expect("find")
    }

    async fn found(s: &Arc<dyn Store>, t: &NewToken) -> TokenRecord {
        find(s, t).await.expect("token should be stored")
    }

    async fn rotate(
        s: &Arc<dyn Store>,
        old: &NewToken,
        client: &str,
        now: UnixTime,
        new: &[NewToken],
    ) -> Rotation {
        s.rotate(&old.hash, TokenKind::Refresh, client, now, new)
            .await
            .expect("rotate")
    }

    /// A family of `app` for `alice` holding one access and one refresh token.
    async fn grant(s: &Arc<dyn Store>, tag: &str) -> (NewFamily, NewToken, NewToken) {
        let f = family("app", Some("alice"));
        let access = token(&format!("{tag}-access"), TokenKind::Access, &f);
        let refresh = token(&format!("{tag}-refresh"), TokenKind::Refresh, &f);
        s.issue(Some(&f), &[access.clone(), refresh.clone()])
            .await
            .expect("issue");
        (f, access, refresh)
    }

    pub(crate) async fn issue_then_find_returns_the_exact_record(s: Arc<dyn Store>) {
        let f = NewFamily {
            id: FamilyId::random(),
            client_id: "web".into(),
            user: Some("alice".into()),
            grant_type: "authorization_code".into(),
            created_at: NOW - 5,
        };
        let access = NewToken {
            hash: TokenHash::of("exact-access"),
            kind: TokenKind::Access,
            family: f.id,
            scopes: Scopes::parse("profile email read:all").expect("scopes"),
            issued_at: NOW - 5,
            expires_at: Some(NOW + 600),
        };
        let refresh = NewToken {
            hash: TokenHash::of("exact-refresh"),
            kind: TokenKind::Refresh,
            family: f.id,
            scopes: Scopes::parse("profile").expect("scopes"),
            issued_at: NOW - 4,
            expires_at: None,
        };
        s.issue(Some(&f), &[access.clone(), refresh.clone()])
            .await
            .expect("issue");

        let g = NewFamily {
            id: FamilyId::random(),
            client_id: "daemon".into(),
            user: None,
            grant_type: "client_credentials".into(),
            created_at: NOW,
        };
        let bare = NewToken {
            hash: TokenHash::of("exact-bare"),
            kind: TokenKind::Access,
            family: g.id,
            scopes: Scopes::default(),
            issued_at: NOW,
            expires_at: Some(NOW + 1),
        };
        s.issue(Some(&g), std::slice::from_ref(&bare))
            .await
            .expect("issue");

        // Tokens may be added to an existing family without writing the family again.
        let code = NewToken {
            hash: TokenHash::of("exact-code"),
            kind: TokenKind::Code,
            family: f.id,
            scopes: Scopes::parse("email").expect("scopes"),
            issued_at: NOW + 7,
            expires_at: Some(NOW + 60),
        };
        s.issue(None, std::slice::from_ref(&code))
            .await
            .expect("issue");

        assert_eq!(find(&s, &access).await, Some(record(&f, &access)));
        assert_eq!(find(&s, &refresh).await, Some(record(&f, &refresh)));
        assert_eq!(find(&s, &bare).await, Some(record(&g, &bare)));
        assert_eq!(find(&s, &code).await, Some(record(&f, &code)));
        assert_eq!(s.find(&TokenHash::of("unknown")).await.expect("find"), None);
    }

    pub(crate) async fn a_duplicate_token_hash_conflicts_and_writes_nothing(s: Arc<dyn Store>) {
        let (f, access, _) = grant(&s, "dup").await;
        let before = found(&s, &access).await;

        // With a new family: neither the family nor the fresh token may be written.
        let g = family("other", Some("bob"));
        let fresh = token("dup-fresh", TokenKind::Access, &g);
        let taken = token("dup-access", TokenKind::Access, &g);
        let r = s.issue(Some(&g), &[fresh.clone(), taken]).await;
        assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
        assert_eq!(find(&s, &fresh).await, None);
        assert_eq!(
            found(&s, &access).await,
            before,
            "the stored token is unchanged"
        );
        // The family was not written either: writing it now does not conflict.
        s.issue(Some(&g), std::slice::from_ref(&fresh))
            .await
            .expect("the failed batch left no family behind");
        assert_eq!(find(&s, &fresh).await, Some(record(&g, &fresh)));

        // Without a family, the taken hash last in the batch.
        let fresh2 = token("dup-fresh2", TokenKind::Access, &f);
        let taken2 = token("dup-access", TokenKind::Refresh, &f);
        let r = s.issue(None, &[fresh2.clone(), taken2]).await;
        assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
        assert_eq!(find(&s, &fresh2).await, None);
        assert_eq!(found(&s, &access).await, before);
    }

    pub(crate) async fn a_duplicate_family_id_conflicts_and_writes_nothing(s: Arc<dyn Store>) {
        let (f, access, _) = grant(&s, "dupfam").await;
        let again = NewFamily {
            client_id: "intruder".into(),
            user: Some("mallory".into()),
            ..f.clone()
        };
        let fresh = token("dupfam-fresh", TokenKind::Access, &again);
        let r = s.issue(Some(&again), std::slice::from_ref(&fresh)).await;
        assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
        assert_eq!(find(&s, &fresh).await, None);
        assert_eq!(find(&s, &access).await, Some(record(&f, &access)));
    }

    pub(crate) async fn rotate_consumes_the_old_token_and_writes_the_new_ones(s: Arc<dyn Store>) {
        let (f, access0, refresh0) = grant(&s, "rot").await;
        let access1 = token("rot-access1", TokenKind::Access, &f);
        let refresh1 = token("rot-refresh1", TokenKind::Refresh, &f);

        let r = rotate(
            &s,
            &refresh0,
            "app",
            NOW + 10,
            &[access1.clone(), refresh1.clone()],
        )
        .await;
        assert_eq!(
            r,
            Rotation::Rotated(record(&f, &refresh0)),
            "returns the old record"
        );

        let consumed = found(&s, &refresh0).await;
        assert_eq!(
            consumed,
            TokenRecord {
                consumed_at: Some(NOW + 10),
                ..record(&f, &refresh0)
            }
        );
        assert_eq!(find(&s, &access1).await, Some(record(&f, &access1)));
        assert_eq!(find(&s, &refresh1).await, Some(record(&f, &refresh1)));
        assert_eq!(
            find(&s, &access0).await,
            Some(record(&f, &access0)),
            "untouched"
        );

        // The new refresh token rotates in turn.
        let refresh2 = token("rot-refresh2", TokenKind::Refresh, &f);
        let r = rotate(
            &s,
            &refresh1,
            "app",
            NOW + 20,
            std::slice::from_ref(&refresh2),
        )
        .await;
        assert_eq!(r, Rotation::Rotated(record(&f, &refresh1)));
        assert_eq!(found(&s, &refresh1).await.consumed_at, Some(NOW + 20));
        assert_eq!(find(&s, &refresh2).await, Some(record(&f, &refresh2)));
    }

    pub(crate) async fn a_second_rotation_is_a_replay_that_revokes_the_family(s: Arc<dyn Store>) {
        let (f, access0, refresh0) = grant(&s, "replay").await;
        let (_, other_access, other_refresh) = grant(&s, "bystander").await;
        let access1 = token("replay-access1", TokenKind::Access, &f);
        let refresh1 = token("replay-refresh1", TokenKind::Refresh, &f);
        let r = rotate(
            &s,
            &refresh0,
            "app",
            NOW + 1,
            &[access1.clone(), refresh1.clone()],
        )
        .await;
        assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");

        let stolen = token("replay-stolen", TokenKind::Refresh, &f);
        let r = rotate(&s, &refresh0, "app", NOW + 2, std::slice::from_ref(&stolen)).await;
        assert_eq!(r, Rotation::Replayed(f.id));
        assert_eq!(
            find(&s, &stolen).await,
            None,
            "a replay writes no new tokens"
        );

        for t in [&access0, &refresh0, &access1, &refresh1] {
            assert!(
                found(&s, t).await.revoked,
                "every token of the family is revoked"
            );
        }
        let old = found(&s, &refresh0).await;
        assert_eq!(
            old.consumed_at,
            Some(NOW + 1),
            "first consumption time is kept"
        );
        assert_eq!(found(&s, &refresh1).await.consumed_at, None);
        assert!(
            !found(&s, &other_access).await.revoked,
            "other families untouched"
        );
        assert!(!found(&s, &other_refresh).await.revoked);

        // The legitimate holder's new refresh token is now dead too.
        let next = token("replay-next", TokenKind::Refresh, &f);
        let r = rotate(&s, &refresh1, "app", NOW + 3, std::slice::from_ref(&next)).await;
        assert_eq!(r, Rotation::Dead);
        assert_eq!(find(&s, &next).await, None);
        assert_eq!(found(&s, &refresh1).await.consumed_at, None);
    }

    pub(crate) async fn rotate_by_the_wrong_client_leaves_the_token_untouched(s: Arc<dyn Store>) {
        let (f, _, refresh0) = grant(&s, "wrongclient").await;
        let theirs = token("wrongclient-theirs", TokenKind::Refresh, &f);
        let r = rotate(
            &s,
            &refresh0,
            "evil",
            NOW + 1,
            std::slice::from_ref(&theirs),
        )
        .await;
        assert_eq!(r, Rotation::WrongClient);
        assert_eq!(
            find(&s, &refresh0).await,
            Some(record(&f, &refresh0)),
            "not consumed"
        );
        assert_eq!(find(&s, &theirs).await, None);

        let ours = token("wrongclient-ours", TokenKind::Refresh, &f);
        let r = rotate(&s, &refresh0, "app", NOW + 2, std::slice::from_ref(&ours)).await;
        assert_eq!(r, Rotation::Rotated(record(&f, &refresh0)));
        assert!(find(&s, &ours).await.is_some());
    }

    pub(crate) async fn rotate_of_a_wrong_kind_or_unknown_token_is_not_found(s: Arc<dyn Store>) {
        let (f, access0, refresh0) = grant(&s, "kind").await;
        let new = token("kind-new", TokenKind::Refresh, &f);

        let r = rotate(&s, &access0, "app", NOW + 1, std::slice::from_ref(&new)).await;
        assert_eq!(
            r,
            Rotation::NotFound,
            "an access token is not a refresh token"
        );
        let r = s
            .rotate(
                &refresh0.hash,
                TokenKind::Code,
                "app",
                NOW + 1,
                std::slice::from_ref(&new),
            )
            .await
            .expect("rotate");
        assert_eq!(r, Rotation::NotFound, "a refresh token is not a code");
        let r = s
            .rotate(
                &TokenHash::of("kind-unknown"),
                TokenKind::Refresh,
                "app",
                NOW + 1,
                std::slice::from_ref(&new),
            )
            .await
            .expect("rotate");
        assert_eq!(r, Rotation::NotFound);

        assert_eq!(find(&s, &new).await, None);
        assert_eq!(find(&s, &access0).await, Some(record(&f, &access0)));
        assert_eq!(find(&s, &refresh0).await, Some(record(&f, &refresh0)));
        let r = rotate(&s, &refresh0, "app", NOW + 2, std::slice::from_ref(&new)).await;
        assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");
    }

    pub(crate) async fn rotate_of_an_expired_token_is_dead(s: Arc<dyn Store>) {
        let f = family("app", Some("alice"));
        let refresh = NewToken {
            expires_at: Some(NOW + 100),
            ..token("expired-refresh", TokenKind::Refresh, &f)
        };
        s.issue(Some(&f), std::slice::from_ref(&refresh))
            .await
            .expect("issue");
        let new = token("expired-new", TokenKind::Refresh, &f);

        for now in [NOW + 100, NOW + 1000] {
            let r = rotate(&s, &refresh, "app", now, std::slice::from_ref(&new)).await;
            assert_eq!(
                r,
                Rotation::Dead,
                "expires_at <= now is expired (now = {now})"
            );
        }
        assert_eq!(find(&s, &new).await, None);
        assert_eq!(
            find(&s, &refresh).await,
            Some(record(&f, &refresh)),
            "neither consumed nor revoked"
        );

        let r = rotate(&s, &refresh, "app", NOW + 99, std::slice::from_ref(&new)).await;
        assert_eq!(r, Rotation::Rotated(record(&f, &refresh)));
    }

    pub(crate) async fn rotate_in_a_revoked_family_is_dead(s: Arc<dyn Store>) {
        let (f, _, refresh0) = grant(&s, "revoked").await;
        s.revoke_family(&f.id, NOW + 1).await.expect("revoke");
        let new = token("revoked-new", TokenKind::Refresh, &f);
        let r = rotate(&s, &refresh0, "app", NOW + 2, std::slice::from_ref(&new)).await;
        assert_eq!(r, Rotation::Dead);
        assert_eq!(find(&s, &new).await, None);
        let rec = found(&s, &refresh0).await;
        assert_eq!(rec.consumed_at, None);
        assert!(rec.revoked);

        // A consumed token in a revoked family is dead, not a replay.
        let (g, _, refresh_g) = grant(&s, "revoked-later").await;
        let next = token("revoked-later-next", TokenKind::Refresh, &g);
        let r = rotate(&s, &refresh_g, "app", NOW + 1, std::slice::from_ref(&next)).await;
        assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");
        s.revoke_family(&g.id, NOW + 2).await.expect("revoke");
        let again = token("revoked-later-again", TokenKind::Refresh, &g);
        let r = rotate(&s, &refresh_g, "app", NOW + 3, std::slice::from_ref(&again)).await;
        assert_eq!(r, Rotation::Dead);
        assert_eq!(find(&s, &again).await, None);
    }

    pub(crate) async fn rotate_onto_a_taken_hash_conflicts_and_consumes_nothing(s: Arc<dyn Store>) {
        let (f, access0, refresh0) = grant(&s, "taken").await;
        let fresh = token("taken-fresh", TokenKind::Access, &f);
        let taken = token("taken-access", TokenKind::Refresh, &f);
        assert_eq!(taken.hash, access0.hash);
        let r = s
            .rotate(
                &refresh0.hash,
                TokenKind::Refresh,
                "app",
                NOW + 1,
                &[fresh.clone(), taken],
            )
            .await;
        assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
        assert_eq!(
            find(&s, &refresh0).await,
            Some(record(&f, &refresh0)),
            "not consumed"
        );
        assert_eq!(find(&s, &fresh).await, None);
        assert_eq!(find(&s, &access0).await, Some(record(&f, &access0)));

        let retry = token("taken-retry", TokenKind::Refresh, &f);
        let r = rotate(&s, &refresh0, "app", NOW + 2, &[fresh.clone(), retry]).await;
        assert_eq!(r, Rotation::Rotated(record(&f, &refresh0)));
        assert!(find(&s, &fresh).await.is_some());
    }

    pub(crate) async fn concurrent_rotations_have_exactly_one_winner(s: Arc<dyn Store>) {
        const N: usize = 20;
        let (f, _, refresh0) = grant(&s, "race").await;
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let mut tasks = Vec::new();
        for i in 0..N {
            let (s, barrier, old) = (s.clone(), barrier.clone(), refresh0.clone());
            let new = token(&format!("race-new-{i}"), TokenKind::Refresh, &f);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let r = s
                    .rotate(
                        &old.hash,
                        TokenKind::Refresh,
                        "app",
                        NOW + 1,
                        std::slice::from_ref(&new),
                    )
                    .await
                    .expect("rotate");
                (r, new)
            }));
        }
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        let (mut replayed, mut dead) = (0, 0);
        for t in tasks {
            let (r, new) = t.await.expect("join");
            match r {
                Rotation::Rotated(old) => {
                    assert_eq!(old, record(&f, &refresh0));
                    winners.push(new);
                }
                Rotation::Replayed(id) => {
                    assert_eq!(id, f.id);
                    replayed += 1;
                    losers.push(new);
                }
                // Once the first loser's replay has revoked the family, later losers find it
                // revoked, which the trait reports as dead, not as another replay.
                Rotation::Dead => {
                    dead += 1;
                    losers.push(new);
                }
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one rotation wins");
        assert_eq!(replayed, 1, "the first loser is reported as a replay");
        assert_eq!(dead, N - 2);
        let winner = found(&s, &winners[0]).await;
        assert!(
            winner.revoked,
            "the replay revoked the winner's new token too"
        );
        for l in &losers {
            assert_eq!(find(&s, l).await, None, "a losing rotation writes nothing");
        }
        assert_eq!(found(&s, &refresh0).await.consumed_at, Some(NOW + 1));
    }

    pub(crate) async fn revoke_family_is_idempotent_and_touches_only_that_family(
        s: Arc<dyn Store>,
    ) {
        let (f, access, refresh) = grant(&s, "rf").await;
        let (g, other_access, other_refresh) = grant(&s, "rf-other").await;
        s.revoke_family(&f.id, NOW + 1).await.expect("revoke");
        s.revoke_family(&f.id, NOW + 2).await.expect("revoke again");
        s.revoke_family(&FamilyId::random(), NOW + 2)
            .await
            .expect("revoking an unknown family is fine");
        for t in [&access, &refresh] {
            assert_eq!(
                find(&s, t).await,
                Some(TokenRecord {
                    revoked: true,
                    ..record(&f, t)
                })
            );
        }
        for t in [&other_access, &other_refresh] {
            assert_eq!(find(&s, t).await, Some(record(&g, t)));
        }
        // Revoking does not count as newly revoking later.
        assert_eq!(
            s.revoke_all(Some("app"), None, NOW + 3)
                .await
                .expect("revoke_all"),
            vec![g.id]
        );
    }

    pub(crate) async fn revoke_all_by_client_by_user_and_by_both(s: Arc<dyn Store>) {
        let mut tokens = Vec::new();
        let mut issue = |client: &'static str, user: Option<&'static str>, n: usize| {
            let f = family(client, user);
            let t = token(&format!("ra-{n}"), TokenKind::Access, &f);
            tokens.push((f.clone(), t.clone()));
            (f, t)
        };
        let a = issue("c1", Some("u1"), 0);
        let b = issue("c1", Some("u2"), 1);
        let c = issue("c2", Some("u1"), 2);
        let d = issue("c2", None, 3);
        let e = issue("c1", Some("u1"), 4);
        for (f, t) in &tokens {
            s.issue(Some(f), std::slice::from_ref(t))
                .await
                .expect("issue");
        }
        let revoked = |ids: &[FamilyId]| {
            let mut v = ids.to_vec();
            v.sort();
            v
        };
        let check = |expected: Vec<FamilyId>| {
            let s = s.clone();
            let tokens = tokens.clone();
            async move {
                for (f, t) in &tokens {
                    let rec = found(&s, t).await;
                    assert_eq!(rec.revoked, expected.contains(&f.id), "{:?}", f.id);
                }
            }
        };

        assert_eq!(
            s.revoke_all(None, None, NOW).await.expect("revoke_all"),
            vec![]
        );
        check(vec![]).await;

        let got = s
            .revoke_all(Some("c1"), Some("u1"), NOW)
            .await
            .expect("revoke_all");
        assert_eq!(got, revoked(&[a.0.id, e.0.id]));
        check(vec![a.0.id, e.0.id]).await;
        let got = s
            .revoke_all(Some("c1"), Some("u1"), NOW)
            .await
            .expect("revoke_all");
        assert_eq!(got, vec![], "only newly revoked families are returned");

        let got = s
            .revoke_all(None, Some("u1"), NOW)
            .await
            .expect("revoke_all");
        assert_eq!(got, vec![c.0.id]);
        check(vec![a.0.id, e.0.id, c.0.id]).await;

        let got = s
            .revoke_all(Some("c1"), None, NOW)
            .await
            .expect("revoke_all");
        assert_eq!(got, vec![b.0.id]);
        check(vec![a.0.id, e.0.id, c.0.id, b.0.id]).await;

        let got = s
            .revoke_all(Some("nobody"), None, NOW)
            .await
            .expect("revoke_all");
        assert_eq!(got, vec![]);
        let got = s
            .revoke_all(None, Some("nobody"), NOW)
            .await
            .expect("revoke_all");
        assert_eq!(got, vec![]);
        check(vec![a.0.id, e.0.id, c.0.id, b.0.id]).await;

        let got = s
            .revoke_all(Some("c2"), None, NOW)
            .await
            .expect("revoke_all");
        assert_eq!(got, vec![d.0.id]);
        check(vec![a.0.id, b.0.id, c.0.id, d.0.id, e.0.id]).await;
        assert!(found(&s, &d.1).await.revoked);
    }

    pub(crate) async fn revoke_all_returns_families_sorted(s: Arc<dyn Store>) {
        let mut ids = Vec::new();
        // Descending ids, so that insertion order is not sorted order.
        for i in (0..12u8).rev() {
            let f = NewFamily {
                id: FamilyId([i.wrapping_mul(37); 16]),
                ..family("sorted", Some(if i % 2 == 0 { "even" } else { "odd" }))
            };
            let t = token(&format!("sorted-{i}"), TokenKind::Access, &f);
            s.issue(Some(&f), &[t]).await.expect("issue");
            ids.push(f.id);
        }
        let mut expected = ids.clone();
        expected.sort();
        let got = s
            .revoke_all(Some("sorted"), None, NOW)
            .await
            .expect("revoke_all");
        assert_eq!(got, expected);
    }

    pub(crate) async fn purge_expired_deletes_only_expired_tokens_and_honours_the_limit(
        s: Arc<dyn Store>,
    ) {
        let f = family("app", Some("alice"));
        let t100 = expiring("purge-100", &f, Some(NOW + 100));
        let t150 = expiring("purge-150", &f, Some(NOW + 150));
        let t199 = expiring("purge-199", &f, Some(NOW + 199));
        let t200 = expiring("purge-200", &f, Some(NOW + 200));
        let t300 = expiring("purge-300", &f, Some(NOW + 300));
        let never = expiring("purge-never", &f, None);
        let all = [&t100, &t150, &t199, &t200, &t300, &never];
        let all: Vec<NewToken> = all.into_iter().cloned().collect();
        s.issue(Some(&f), &all).await.expect("issue");

        let before = NOW + 200;
        assert_eq!(s.purge_expired(before, 0).await.expect("purge"), 0);
        assert_eq!(
            s.purge_expired(before, 2).await.expect("purge"),
            2,
            "honours the limit"
        );
        let mut left = 0;
        for t in [&t100, &t150, &t199] {
            left += usize::from(find(&s, t).await.is_some());
        }
        assert_eq!(left, 1);
        assert_eq!(s.purge_expired(before, 10).await.expect("purge"), 1);
        assert_eq!(s.purge_expired(before, 10).await.expect("purge"), 0);
        for t in [&t100, &t150, &t199] {
            assert_eq!(find(&s, t).await, None);
        }
        for t in [&t200, &t300, &never] {
            assert_eq!(
                find(&s, t).await,
                Some(record(&f, t)),
                "expiring at or after `before` is kept"
            );
        }
    }

    pub(crate) async fn purge_expired_removes_emptied_families(s: Arc<dyn Store>) {
        let gone = family("app", Some("alice"));
        let g1 = expiring("emptied-1", &gone, Some(NOW + 10));
        let g2 = expiring("emptied-2", &gone, Some(NOW + 20));
        s.issue(Some(&gone), &[g1.clone(), g2.clone()])
            .await
            .expect("issue");
        let kept = family("app", Some("bob"));
        let k1 = expiring("kept-1", &kept, Some(NOW + 10));
        let k2 = expiring("kept-2", &kept, Some(NOW + 1000));
        s.issue(Some(&kept), &[k1.clone(), k2.clone()])
            .await
            .expect("issue");

        assert_eq!(s.purge_expired(NOW + 100, 100).await.expect("purge"), 3);
        assert_eq!(find(&s, &k2).await, Some(record(&kept, &k2)));

        // The emptied family is gone: its id can be written again, and it is not revoked by
        // revoke_all. The family with a live token remains.
        let reborn = token("emptied-reborn", TokenKind::Access, &gone);
        s.issue(Some(&gone), std::slice::from_ref(&reborn))
            .await
            .expect("the emptied family was deleted");
        let r = s
            .issue(
                Some(&kept),
                &[token("kept-again", TokenKind::Access, &kept)],
            )
            .await;
        assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");

        let mut expected = vec![gone.id, kept.id];
        expected.sort();
        assert_eq!(
            s.revoke_all(Some("app"), None, NOW)
                .await
                .expect("revoke_all"),
            expected
        );
    }

    pub(crate) async fn server_keys_are_created_once_and_then_stable(s: Arc<dyn Store>) {
        let first: Vec<ServerKey> = s.server_keys().await.expect("server_keys");
        assert!(!first.is_empty());
        for _ in 0..3 {
            let again = s.server_keys().await.expect("server_keys");
            assert_eq!(again.len(), first.len());
            for (a, b) in first.iter().zip(&again) {
                assert_eq!(a.id, b.id);
                assert_eq!(a.bytes(), b.bytes());
            }
        }
        assert_ne!(first[0].bytes(), &[0u8; 32], "a real random key");
    }

    pub(crate) async fn concurrent_first_server_keys_calls_agree(s: Arc<dyn Store>) {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move { s.server_keys().await }));
        }
        let mut seen: Option<Vec<(u8, [u8; 32])>> = None;
        for t in tasks {
            let keys: Vec<_> = t
                .await
                .expect("join")
                .expect("server_keys")
                .iter()
                .map(|k| (k.id, *k.bytes()))
                .collect();
            assert!(!keys.is_empty());
            match &seen {
                None => seen = Some(keys),
                Some(s) => assert!(*s == keys, "every caller gets the same keys"),
            }
        }
    }

    fn client(id: &str, created_at: UnixTime) -> ClientRecord {
        ClientRecord {
            id: id.into(),
            settings: serde_json::json!({
                "name": format!("client {id}"),
                "redirect_uris": ["https://example.com/cb", "http://127.0.0.1/cb"],
                "confidential": true,
                "access_ttl": 3600,
                "ratio": 0.25,
                "secret_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                "note": null,
                "nested": { "scopes": ["read", "write"], "empty": {} },
            }),
            created_at,
        }
    }

    pub(crate) async fn clients_are_put_got_listed_replaced_and_deleted(s: Arc<dyn Store>) {
        assert_eq!(s.client("b").await.expect("client"), None);
        assert_eq!(s.list_clients().await.expect("list"), vec![]);

        let (a, b, c) = (client("a", NOW), client("b", NOW + 1), client("c", NOW + 2));
        for x in [&b, &c, &a] {
            s.put_client(x).await.expect("put");
        }
        assert_eq!(s.client("b").await.expect("client"), Some(b.clone()));
        assert_eq!(
            s.list_clients().await.expect("list"),
            vec![a.clone(), b.clone(), c.clone()],
            "listed by id"
        );

        let b2 = ClientRecord {
            settings: serde_json::json!({ "name": "renamed", "confidential": false }),
            created_at: NOW + 50,
            ..b.clone()
        };
        s.put_client(&b2).await.expect("replace");
        assert_eq!(s.client("b").await.expect("client"), Some(b2.clone()));
        assert_eq!(s.list_clients().await.expect("list").len(), 3);

        assert!(s.delete_client("b", NOW).await.expect("delete"));
        assert_eq!(s.client("b").await.expect("client"), None);
        assert_eq!(s.list_clients().await.expect("list"), vec![a, c]);
        assert!(!s.delete_client("b", NOW).await.expect("delete"));
        assert!(!s.delete_client("ghost", NOW).await.expect("delete"));
    }

    pub(crate) async fn delete_client_revokes_its_families(s: Arc<dyn Store>) {
        s.put_client(&client("app", NOW)).await.expect("put");
        s.put_client(&client("other", NOW)).await.expect("put");
        let (_, a1, r1) = grant(&s, "del-1").await;
        let (_, a2, _) = grant(&s, "del-2").await;
        let g = family("other", Some("alice"));
        let other = token("del-other", TokenKind::Access, &g);
        s.issue(Some(&g), std::slice::from_ref(&other))
            .await
            .expect("issue");

        assert!(s.delete_client("app", NOW + 1).await.expect("delete"));
        for t in [&a1, &r1, &a2] {
            assert!(found(&s, t).await.revoked);
        }
        assert_eq!(find(&s, &other).await, Some(record(&g, &other)));
        assert_eq!(s.client("app").await.expect("client"), None);
        assert_eq!(
            s.revoke_all(Some("app"), None, NOW + 2)
                .await
                .expect("revoke_all"),
            vec![],
            "already revoked"
        );
        assert!(!s.delete_client("app", NOW + 3).await.expect("delete"));
    }
}
