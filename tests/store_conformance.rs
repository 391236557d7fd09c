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
            clients_are_created_got_listed_replaced_and_deleted,
            delete_client_revokes_its_families,
            issue_code_round_trips_the_code_and_its_binding,
            issue_code_refuses_a_token_that_is_not_a_code_of_its_family,
            a_duplicate_code_hash_or_family_conflicts_and_writes_nothing,
            a_code_is_redeemed_once_and_a_replay_revokes_what_it_issued,
            a_code_redeemed_by_another_client_stays_redeemable,
            an_expired_code_is_dead,
            concurrent_code_redemptions_have_exactly_one_winner,
            device_grants_are_found_by_user_code_until_they_expire,
            a_device_grant_clash_conflicts_and_writes_nothing,
            an_expired_grants_user_code_may_be_reused,
            decide_approves_or_denies_a_pending_grant_once,
            decide_ignores_unknown_and_expired_grants,
            concurrent_decisions_have_exactly_one_winner,
            polls_slow_down_and_the_interval_stays_longer,
            a_poll_exactly_at_the_interval_less_grace_is_on_time,
            polls_report_the_status_and_redeem_an_approval_once,
            polls_of_an_unknown_foreign_or_expired_grant_record_nothing,
            concurrent_polls_of_an_approved_grant_have_exactly_one_winner,
            a_redeeming_poll_writes_the_tokens_with_the_grants_scopes_and_user,
            a_redeeming_poll_onto_a_taken_hash_conflicts_and_spends_nothing,
            purge_expired_removes_expired_code_bindings,
            purge_expired_removes_expired_device_grants_and_honours_the_limit,
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
        Arc::new(oauth_edge::store::testing::TestStore::new(store).keeping(dir))
    }
}

#[cfg(feature = "postgres")]
store_suite!(postgres, async { pg_store::fresh().await });

/// PostgreSQL stores for the tests: each in a schema of its own (`test_<random hex>`), in the
/// database `OAUTH_EDGE_TEST_POSTGRES` names (default `postgres://postgres@127.0.0.1:5432/test`),
/// dropped when the store is.
#[cfg(feature = "postgres")]
mod pg_store {
    use std::time::Duration;

    use oauth_edge::config::PostgresConfig;
    use oauth_edge::Secret;

    use super::*;

    pub(crate) fn url() -> String {
        std::env::var("OAUTH_EDGE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
    }

    pub(crate) fn config_at(url: &str, schema: &str) -> PostgresConfig {
        PostgresConfig {
            url: Secret::new(url),
            schema: schema.into(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
        }
    }

    pub(crate) fn config(schema: &str) -> PostgresConfig {
        config_at(&url(), schema)
    }

    /// A schema name no other test uses.
    pub(crate) fn fresh_schema() -> String {
        format!("test_{}", FamilyId::random().to_hex())
    }

    /// A plain connection to the test database, for what the store does not offer.
    pub(crate) async fn admin() -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the test database (OAUTH_EDGE_TEST_POSTGRES)");
        tokio::spawn(connection);
        client
    }

    /// Drops its schema when dropped, on a thread and runtime of its own (a `Drop` cannot
    /// await, and the test's runtime may be shutting down).
    pub(crate) struct DropSchema(pub(crate) String);

    impl Drop for DropSchema {
        fn drop(&mut self) {
            let schema = self.0.clone();
            let dropper = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    admin()
                        .await
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .await
                })
            });
            if let Ok(Err(e)) = dropper.join() {
                eprintln!("could not drop test schema {}: {e}", self.0);
            }
        }
    }

    pub(crate) async fn connect(schema: &str) -> PostgresStore {
        PostgresStore::connect(&config(schema))
            .await
            .expect("connect to the test database (OAUTH_EDGE_TEST_POSTGRES)")
    }

    pub(crate) async fn fresh() -> Arc<dyn Store> {
        let schema = fresh_schema();
        let store = connect(&schema).await;
        Arc::new(oauth_edge::store::testing::TestStore::new(store).keeping(DropSchema(schema)))
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

    pub(crate) async fn clients_are_created_got_listed_replaced_and_deleted(s: Arc<dyn Store>) {
        s.ping().await.expect("a store that answers answers a ping");
        assert_eq!(s.client("b").await.expect("client"), None);
        assert_eq!(s.list_clients().await.expect("list"), vec![]);

        let (a, b, c) = (client("a", NOW), client("b", NOW + 1), client("c", NOW + 2));
        for x in [&b, &c, &a] {
            s.create_client(x).await.expect("create");
        }
        // An id is created once: a second creation fails and changes nothing.
        let again = ClientRecord {
            settings: serde_json::json!({ "name": "impostor" }),
            ..b.clone()
        };
        assert!(matches!(
            s.create_client(&again).await,
            Err(StoreError::Conflict)
        ));
        assert_eq!(s.client("b").await.expect("client"), Some(b.clone()));
        assert_eq!(
            s.list_clients().await.expect("list"),
            vec![a.clone(), b.clone(), c.clone()],
            "listed by id"
        );

        let b2 = ClientRecord {
            settings: serde_json::json!({ "name": "renamed", "confidential": false }),
            ..b.clone()
        };
        // Replaced only from the settings it still has: a stale read writes nothing.
        assert!(!s
            .replace_client(&b2, &again.settings)
            .await
            .expect("replace"));
        assert_eq!(s.client("b").await.expect("client"), Some(b.clone()));
        assert!(s.replace_client(&b2, &b.settings).await.expect("replace"));
        assert_eq!(s.client("b").await.expect("client"), Some(b2.clone()));
        assert!(!s.replace_client(&b2, &b.settings).await.expect("replace"));
        let ghost = ClientRecord {
            id: "ghost".into(),
            ..b2.clone()
        };
        assert!(!s
            .replace_client(&ghost, &b2.settings)
            .await
            .expect("replace"));
        assert_eq!(s.client("ghost").await.expect("client"), None);
        assert_eq!(s.list_clients().await.expect("list").len(), 3);

        assert!(s.delete_client("b", NOW).await.expect("delete"));
        assert_eq!(s.client("b").await.expect("client"), None);
        assert_eq!(s.list_clients().await.expect("list"), vec![a, c]);
        assert!(!s.delete_client("b", NOW).await.expect("delete"));
        assert!(!s.delete_client("ghost", NOW).await.expect("delete"));
    }

    pub(crate) async fn delete_client_revokes_its_families(s: Arc<dyn Store>) {
        s.create_client(&client("app", NOW)).await.expect("create");
        s.create_client(&client("other", NOW))
            .await
            .expect("create");
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

    // -----------------------------------------------------------------------------------
    // Authorization codes

    /// A family started by an authorization code, of `app` for `alice`.
    fn code_family() -> NewFamily {
        NewFamily {
            grant_type: "authorization_code".into(),
            ..family("app", Some("alice"))
        }
    }

    /// A code of `f` living one minute.
    fn code(name: &str, f: &NewFamily) -> NewToken {
        NewToken {
            expires_at: Some(NOW + 60),
            ..token(name, TokenKind::Code, f)
        }
    }

    fn binding(redirect_uri: Option<&str>, code_challenge: Option<&str>) -> CodeBinding {
        CodeBinding {
            redirect_uri: redirect_uri.map(Into::into),
            code_challenge: code_challenge.map(Into::into),
        }
    }

    fn full_binding() -> CodeBinding {
        binding(
            Some("https://app.example/cb?x=1&y=%20"),
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        )
    }

    async fn bound(s: &Arc<dyn Store>, t: &NewToken) -> Option<CodeBinding> {
        s.code_binding(&t.hash).await.expect("code_binding")
    }

    async fn redeem(
        s: &Arc<dyn Store>,
        c: &NewToken,
        client: &str,
        now: UnixTime,
        new: &[NewToken],
    ) -> Rotation {
        s.rotate(&c.hash, TokenKind::Code, client, now, new)
            .await
            .expect("rotate")
    }

    /// A code of `app` for `alice`, written with `issue_code` and a full binding.
    async fn code_grant(s: &Arc<dyn Store>, tag: &str) -> (NewFamily, NewToken) {
        let f = code_family();
        let c = code(&format!("{tag}-code"), &f);
        s.issue_code(&f, &c, &full_binding())
            .await
            .expect("issue_code");
        (f, c)
    }

    pub(crate) async fn issue_code_round_trips_the_code_and_its_binding(s: Arc<dyn Store>) {
        let (f, full) = code_grant(&s, "bind-full").await;
        assert_eq!(find(&s, &full).await, Some(record(&f, &full)));
        assert_eq!(bound(&s, &full).await, Some(full_binding()));

        let cases = [
            ("bind-none", binding(None, None)),
            ("bind-uri", binding(Some("https://app.example/cb"), None)),
            ("bind-pkce", binding(None, Some("challenge"))),
            ("bind-empty", binding(Some(""), Some(""))),
        ];
        for (tag, b) in cases {
            let g = code_family();
            let c = code(tag, &g);
            s.issue_code(&g, &c, &b).await.expect("issue_code");
            assert_eq!(find(&s, &c).await, Some(record(&g, &c)), "{tag}");
            assert_eq!(bound(&s, &c).await, Some(b), "{tag}");
        }

        // Unknown hashes, and tokens that are not codes written by issue_code, have none.
        assert_eq!(
            s.code_binding(&TokenHash::of("bind-unknown"))
                .await
                .expect("code_binding"),
            None
        );
        let (_, access, refresh) = grant(&s, "bind-other").await;
        assert_eq!(bound(&s, &access).await, None);
        assert_eq!(bound(&s, &refresh).await, None);
        let g = family("app", Some("alice"));
        let plain = token("bind-plain-code", TokenKind::Code, &g);
        s.issue(Some(&g), std::slice::from_ref(&plain))
            .await
            .expect("issue");
        assert_eq!(bound(&s, &plain).await, None);

        // Redeeming the code keeps its binding: it is read when the code is presented.
        let r = redeem(&s, &full, "app", NOW + 1, &[]).await;
        assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");
        assert_eq!(bound(&s, &full).await, Some(full_binding()));
    }

    pub(crate) async fn issue_code_refuses_a_token_that_is_not_a_code_of_its_family(
        s: Arc<dyn Store>,
    ) {
        let f = code_family();
        let access = token("notcode-access", TokenKind::Access, &f);
        let r = s.issue_code(&f, &access, &full_binding()).await;
        assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
        let other = code_family();
        let foreign = code("notcode-foreign", &other);
        let r = s.issue_code(&f, &foreign, &full_binding()).await;
        assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
        assert_eq!(find(&s, &access).await, None);
        assert_eq!(find(&s, &foreign).await, None);
        assert_eq!(bound(&s, &access).await, None);
        assert_eq!(bound(&s, &foreign).await, None);
        // Nothing of the family either.
        let c = code("notcode-code", &f);
        s.issue_code(&f, &c, &full_binding())
            .await
            .expect("the refused writes left no family behind");
    }

    pub(crate) async fn a_duplicate_code_hash_or_family_conflicts_and_writes_nothing(
        s: Arc<dyn Store>,
    ) {
        let (f, c) = code_grant(&s, "dupcode").await;
        let before = found(&s, &c).await;

        // The same code hash in a new family, with another binding.
        let g = NewFamily {
            client_id: "intruder".into(),
            ..code_family()
        };
        let again = NewToken {
            family: g.id,
            ..c.clone()
        };
        let r = s
            .issue_code(&g, &again, &binding(Some("https://evil.example/"), None))
            .await;
        assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
        assert_eq!(found(&s, &c).await, before, "the stored code is unchanged");
        assert_eq!(bound(&s, &c).await, Some(full_binding()), "and its binding");
        // The family was not written: writing it now does not conflict.
        let fresh = token("dupcode-fresh", TokenKind::Access, &g);
        s.issue(Some(&g), std::slice::from_ref(&fresh))
            .await
            .expect("the failed issue_code left no family behind");

        // A new code hash in an existing family.
        let other = code("dupcode-other", &f);
        let r = s.issue_code(&f, &other, &binding(None, None)).await;
        assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
        assert_eq!(find(&s, &other).await, None);
        assert_eq!(bound(&s, &other).await, None);

        // A code hash that plain `issue` wrote.
        let h = family("app", None);
        let taken = token("dupcode-taken", TokenKind::Access, &h);
        s.issue(Some(&h), std::slice::from_ref(&taken))
            .await
            .expect("issue");
        let k = code_family();
        let clash = NewToken {
            family: k.id,
            ..code("dupcode-taken", &k)
        };
        let r = s.issue_code(&k, &clash, &full_binding()).await;
        assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
        assert_eq!(find(&s, &taken).await, Some(record(&h, &taken)));
        assert_eq!(bound(&s, &taken).await, None);
    }

    pub(crate) async fn a_code_is_redeemed_once_and_a_replay_revokes_what_it_issued(
        s: Arc<dyn Store>,
    ) {
        let (f, c) = code_grant(&s, "redeem").await;
        let (_, bystander) = code_grant(&s, "redeem-bystander").await;
        let access = token("redeem-access", TokenKind::Access, &f);
        let refresh = token("redeem-refresh", TokenKind::Refresh, &f);
        let r = redeem(&s, &c, "app", NOW + 1, &[access.clone(), refresh.clone()]).await;
        assert_eq!(
            r,
            Rotation::Rotated(record(&f, &c)),
            "returns the code's record"
        );
        assert_eq!(found(&s, &c).await.consumed_at, Some(NOW + 1));
        assert_eq!(find(&s, &access).await, Some(record(&f, &access)));
        assert_eq!(find(&s, &refresh).await, Some(record(&f, &refresh)));

        let stolen = token("redeem-stolen", TokenKind::Access, &f);
        let r = redeem(&s, &c, "app", NOW + 2, std::slice::from_ref(&stolen)).await;
        assert_eq!(r, Rotation::Replayed(f.id));
        assert_eq!(find(&s, &stolen).await, None, "a replay writes nothing");
        for t in [&c, &access, &refresh] {
            assert!(
                found(&s, t).await.revoked,
                "the replay revokes the code and every token it issued"
            );
        }
        assert_eq!(found(&s, &c).await.consumed_at, Some(NOW + 1));
        assert!(
            !found(&s, &bystander).await.revoked,
            "other families untouched"
        );

        // The tokens of the first redemption are dead for good.
        let next = token("redeem-next", TokenKind::Refresh, &f);
        let r = rotate(&s, &refresh, "app", NOW + 3, std::slice::from_ref(&next)).await;
        assert_eq!(r, Rotation::Dead);
        assert_eq!(redeem(&s, &c, "app", NOW + 4, &[]).await, Rotation::Dead);
        assert_eq!(find(&s, &next).await, None);
    }

    pub(crate) async fn a_code_redeemed_by_another_client_stays_redeemable(s: Arc<dyn Store>) {
        let (f, c) = code_grant(&s, "codeclient").await;
        let theirs = token("codeclient-theirs", TokenKind::Access, &f);
        let r = redeem(&s, &c, "evil", NOW + 1, std::slice::from_ref(&theirs)).await;
        assert_eq!(r, Rotation::WrongClient);
        assert_eq!(find(&s, &c).await, Some(record(&f, &c)), "not consumed");
        assert_eq!(find(&s, &theirs).await, None);

        // Not a refresh token either.
        let r = rotate(&s, &c, "app", NOW + 1, &[]).await;
        assert_eq!(r, Rotation::NotFound);

        let ours = token("codeclient-ours", TokenKind::Access, &f);
        let r = redeem(&s, &c, "app", NOW + 2, std::slice::from_ref(&ours)).await;
        assert_eq!(r, Rotation::Rotated(record(&f, &c)));
        assert_eq!(find(&s, &ours).await, Some(record(&f, &ours)));
    }

    pub(crate) async fn an_expired_code_is_dead(s: Arc<dyn Store>) {
        let (f, c) = code_grant(&s, "codeexp").await;
        let new = token("codeexp-new", TokenKind::Access, &f);
        for now in [NOW + 60, NOW + 6000] {
            let r = redeem(&s, &c, "app", now, std::slice::from_ref(&new)).await;
            assert_eq!(
                r,
                Rotation::Dead,
                "expires_at <= now is expired (now = {now})"
            );
        }
        assert_eq!(find(&s, &new).await, None);
        assert_eq!(
            find(&s, &c).await,
            Some(record(&f, &c)),
            "neither consumed nor revoked"
        );
        let r = redeem(&s, &c, "app", NOW + 59, std::slice::from_ref(&new)).await;
        assert_eq!(r, Rotation::Rotated(record(&f, &c)));
    }

    pub(crate) async fn concurrent_code_redemptions_have_exactly_one_winner(s: Arc<dyn Store>) {
        const N: usize = 20;
        let (f, c) = code_grant(&s, "coderace").await;
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let mut tasks = Vec::new();
        for i in 0..N {
            let (s, barrier, c) = (s.clone(), barrier.clone(), c.clone());
            let new = token(&format!("coderace-{i}"), TokenKind::Access, &f);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let r = s
                    .rotate(
                        &c.hash,
                        TokenKind::Code,
                        "app",
                        NOW + 1,
                        std::slice::from_ref(&new),
                    )
                    .await
                    .expect("rotate");
                (r, new)
            }));
        }
        let (mut winners, mut losers) = (Vec::new(), Vec::new());
        let (mut replayed, mut dead) = (0, 0);
        for t in tasks {
            let (r, new) = t.await.expect("join");
            match r {
                Rotation::Rotated(old) => {
                    assert_eq!(old, record(&f, &c));
                    winners.push(new);
                }
                Rotation::Replayed(id) => {
                    assert_eq!(id, f.id);
                    replayed += 1;
                    losers.push(new);
                }
                Rotation::Dead => {
                    dead += 1;
                    losers.push(new);
                }
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one redemption wins");
        assert_eq!((replayed, dead), (1, N - 2));
        assert!(
            found(&s, &winners[0]).await.revoked,
            "the replay revoked the winner's token"
        );
        for l in &losers {
            assert_eq!(
                find(&s, l).await,
                None,
                "a losing redemption writes nothing"
            );
        }
    }

    // -----------------------------------------------------------------------------------
    // Device grants

    const T0: i64 = NOW * 1000;
    const GRACE: i64 = 500;

    /// A pending grant of `tv` created at `NOW`, polled every 5 s, living 10 minutes.
    fn device(tag: &str, user_code: &str) -> NewDeviceGrant {
        NewDeviceGrant {
            device_hash: TokenHash::of(&format!("device-{tag}")),
            user_code: user_code.into(),
            client_id: "tv".into(),
            scopes: Scopes::parse("read profile").expect("scopes"),
            interval: 5,
            created_at: NOW,
            expires_at: NOW + 600,
        }
    }

    /// What a freshly written grant reads back as.
    fn pending(g: &NewDeviceGrant) -> DeviceGrant {
        DeviceGrant {
            grant: g.clone(),
            status: DeviceStatus::Pending,
            user: None,
            interval: g.interval,
            last_poll_ms: None,
        }
    }

    async fn put(s: &Arc<dyn Store>, g: &NewDeviceGrant) {
        s.put_device_grant(g).await.expect("put_device_grant");
    }

    async fn by_code(s: &Arc<dyn Store>, user_code: &str, now: UnixTime) -> Option<DeviceGrant> {
        s.device_grant_by_user_code(user_code, now)
            .await
            .expect("device_grant_by_user_code")
    }

    /// The grant as stored, read while it is live.
    async fn stored(s: &Arc<dyn Store>, g: &NewDeviceGrant) -> DeviceGrant {
        by_code(s, &g.user_code, g.created_at)
            .await
            .expect("the grant should be stored")
    }

    async fn decide(
        s: &Arc<dyn Store>,
        user_code: &str,
        user: &str,
        approve: bool,
        now: UnixTime,
    ) -> bool {
        s.decide_device_grant(user_code, user, approve, now)
            .await
            .expect("decide_device_grant")
    }

    /// What a poll writes if it redeems an approval: fresh hashes every time.
    pub(crate) fn fresh_tokens() -> DeviceTokens {
        DeviceTokens {
            family: FamilyId::random(),
            grant_type: "urn:ietf:params:oauth:grant-type:device_code".into(),
            issued_at: NOW,
            tokens: vec![
                (TokenHash(rand32()), TokenKind::Access, Some(NOW + 3600)),
                (TokenHash(rand32()), TokenKind::Refresh, None),
            ],
        }
    }

    fn rand32() -> [u8; 32] {
        *blake3::hash(FamilyId::random().to_hex().as_bytes()).as_bytes()
    }

    async fn poll(s: &Arc<dyn Store>, g: &NewDeviceGrant, now_ms: i64) -> DevicePoll {
        s.poll_device_grant(&g.device_hash, &g.client_id, now_ms, GRACE, &fresh_tokens())
            .await
            .expect("poll_device_grant")
    }

    pub(crate) async fn device_grants_are_found_by_user_code_until_they_expire(s: Arc<dyn Store>) {
        let a = device("found-a", "BCDFGHJK");
        let b = NewDeviceGrant {
            client_id: "other".into(),
            scopes: Scopes::default(),
            interval: 1,
            created_at: NOW + 10,
            expires_at: NOW + 20,
            ..device("found-b", "LMNPQRST")
        };
        put(&s, &a).await;
        put(&s, &b).await;
        assert_eq!(by_code(&s, "BCDFGHJK", NOW).await, Some(pending(&a)));
        assert_eq!(by_code(&s, "LMNPQRST", NOW + 19).await, Some(pending(&b)));
        assert_eq!(
            by_code(&s, "LMNPQRST", NOW + 20).await,
            None,
            "expired at expires_at"
        );
        assert_eq!(by_code(&s, "LMNPQRST", NOW + 9999).await, None);
        assert_eq!(by_code(&s, "BCDFGHJK", NOW + 599).await, Some(pending(&a)));
        assert_eq!(by_code(&s, "BCDFGHJK", NOW + 600).await, None);
        assert_eq!(by_code(&s, "VWXZBCDF", NOW).await, None, "unknown");
        assert_eq!(
            by_code(&s, "bcdfghjk", NOW).await,
            None,
            "matched exactly: callers normalise"
        );
        assert_eq!(by_code(&s, "", NOW).await, None);
    }

    pub(crate) async fn a_device_grant_clash_conflicts_and_writes_nothing(s: Arc<dyn Store>) {
        let a = device("clash-a", "BCDFGHJK");
        put(&s, &a).await;

        // The same device hash with a new user code.
        let same_hash = NewDeviceGrant {
            user_code: "LMNPQRST".into(),
            client_id: "intruder".into(),
            ..a.clone()
        };
        let r = s.put_device_grant(&same_hash).await;
        assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
        assert_eq!(by_code(&s, "LMNPQRST", NOW).await, None);

        // A new device hash with the live grant's user code, up to the last second of it.
        for created_at in [NOW, NOW + 599] {
            let same_code = NewDeviceGrant {
                created_at,
                expires_at: created_at + 600,
                client_id: "intruder".into(),
                ..device("clash-b", "BCDFGHJK")
            };
            let r = s.put_device_grant(&same_code).await;
            assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
            assert_eq!(
                poll(&s, &same_code, T0 + 1000).await,
                DevicePoll::NotFound,
                "the clashing grant was not written"
            );
        }
        assert_eq!(
            by_code(&s, "BCDFGHJK", NOW).await,
            Some(pending(&a)),
            "unchanged"
        );

        // The device hash of an expired grant still conflicts.
        let late = NewDeviceGrant {
            user_code: "VWXZBCDF".into(),
            created_at: NOW + 1000,
            expires_at: NOW + 1600,
            ..a.clone()
        };
        let r = s.put_device_grant(&late).await;
        assert!(matches!(r, Err(StoreError::Conflict)), "{r:?}");
        assert_eq!(by_code(&s, "VWXZBCDF", NOW + 1000).await, None);
    }

    pub(crate) async fn an_expired_grants_user_code_may_be_reused(s: Arc<dyn Store>) {
        let old = device("reuse-old", "BCDFGHJK");
        put(&s, &old).await;
        assert!(decide(&s, "BCDFGHJK", "alice", true, NOW + 1).await);
        let new = NewDeviceGrant {
            created_at: NOW + 600,
            expires_at: NOW + 1200,
            client_id: "kiosk".into(),
            ..device("reuse-new", "BCDFGHJK")
        };
        put(&s, &new).await;
        assert_eq!(
            by_code(&s, "BCDFGHJK", NOW + 601).await,
            Some(pending(&new))
        );
        // The old grant is no use any more, whether it was deleted or kept.
        let r = poll(&s, &old, (NOW + 601) * 1000).await;
        assert!(
            matches!(r, DevicePoll::NotFound | DevicePoll::Expired),
            "{r:?}"
        );
        // Decisions now go to the new grant.
        assert!(decide(&s, "BCDFGHJK", "bob", false, NOW + 602).await);
        let got = by_code(&s, "BCDFGHJK", NOW + 602).await.expect("stored");
        assert_eq!(got.grant, new);
        assert_eq!(got.status, DeviceStatus::Denied);
        assert_eq!(got.user.as_deref(), Some("bob"));
    }

    pub(crate) async fn decide_approves_or_denies_a_pending_grant_once(s: Arc<dyn Store>) {
        let a = device("decide-a", "BCDFGHJK");
        let b = device("decide-b", "LMNPQRST");
        put(&s, &a).await;
        put(&s, &b).await;

        assert!(decide(&s, "BCDFGHJK", "alice", true, NOW + 1).await);
        let approved = DeviceGrant {
            status: DeviceStatus::Approved,
            user: Some("alice".into()),
            ..pending(&a)
        };
        assert_eq!(stored(&s, &a).await, approved);
        assert_eq!(
            stored(&s, &b).await,
            pending(&b),
            "the other grant is untouched"
        );
        // A second decision, either way, changes nothing.
        assert!(!decide(&s, "BCDFGHJK", "mallory", false, NOW + 2).await);
        assert!(!decide(&s, "BCDFGHJK", "mallory", true, NOW + 2).await);
        assert_eq!(stored(&s, &a).await, approved);

        assert!(decide(&s, "LMNPQRST", "bob", false, NOW + 3).await);
        let denied = DeviceGrant {
            status: DeviceStatus::Denied,
            user: Some("bob".into()),
            ..pending(&b)
        };
        assert_eq!(stored(&s, &b).await, denied);
        assert!(!decide(&s, "LMNPQRST", "bob", true, NOW + 4).await);
        assert_eq!(stored(&s, &b).await, denied);

        // Nor after a poll has redeemed the approval.
        assert!(matches!(
            poll(&s, &a, T0 + 5000).await,
            DevicePoll::Approved(_)
        ));
        assert!(!decide(&s, "BCDFGHJK", "mallory", true, NOW + 6).await);
        let got = stored(&s, &a).await;
        assert_eq!(
            (got.status, got.user.as_deref()),
            (DeviceStatus::Redeemed, Some("alice"))
        );
    }

    pub(crate) async fn decide_ignores_unknown_and_expired_grants(s: Arc<dyn Store>) {
        let a = device("decide-exp", "BCDFGHJK");
        put(&s, &a).await;
        assert!(
            !decide(&s, "LMNPQRST", "alice", true, NOW + 1).await,
            "unknown"
        );
        assert!(
            !decide(&s, "bcdfghjk", "alice", true, NOW + 1).await,
            "not normalised"
        );
        assert!(
            !decide(&s, "BCDFGHJK", "alice", true, NOW + 600).await,
            "expired"
        );
        assert!(
            !decide(&s, "BCDFGHJK", "alice", false, NOW + 6000).await,
            "expired"
        );
        assert_eq!(stored(&s, &a).await, pending(&a), "still pending");
        assert_eq!(poll(&s, &a, T0).await, DevicePoll::Pending);
        assert!(
            decide(&s, "BCDFGHJK", "alice", true, NOW + 599).await,
            "live until expires_at"
        );
    }

    pub(crate) async fn concurrent_decisions_have_exactly_one_winner(s: Arc<dyn Store>) {
        const N: usize = 20;
        let g = device("decide-race", "BCDFGHJK");
        put(&s, &g).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let mut tasks = Vec::new();
        for i in 0..N {
            let (s, barrier) = (s.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let user = format!("user{i}");
                let won = s
                    .decide_device_grant("BCDFGHJK", &user, i % 2 == 0, NOW + 1)
                    .await
                    .expect("decide");
                (won, user, i % 2 == 0)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (won, user, approve) = t.await.expect("join");
            if won {
                winners.push((user, approve));
            }
        }
        assert_eq!(winners.len(), 1, "exactly one decision wins");
        let (user, approve) = winners.remove(0);
        let got = stored(&s, &g).await;
        assert_eq!(got.user, Some(user), "the winner's user is recorded");
        let status = if approve {
            DeviceStatus::Approved
        } else {
            DeviceStatus::Denied
        };
        assert_eq!(got.status, status, "the winner's decision is recorded");
    }

    pub(crate) async fn polls_slow_down_and_the_interval_stays_longer(s: Arc<dyn Store>) {
        let g = device("slow", "BCDFGHJK");
        put(&s, &g).await;
        let at = |interval: u32, last_poll_ms: i64| DeviceGrant {
            interval,
            last_poll_ms: Some(last_poll_ms),
            ..pending(&g)
        };

        assert_eq!(
            poll(&s, &g, T0).await,
            DevicePoll::Pending,
            "the first poll is on time"
        );
        assert_eq!(stored(&s, &g).await, at(5, T0));
        // One second later: too soon. The interval grows by 5 s and the poll is recorded.
        assert_eq!(poll(&s, &g, T0 + 1000).await, DevicePoll::SlowDown);
        assert_eq!(stored(&s, &g).await, at(10, T0 + 1000));
        // A poll at the old interval after that is too soon again, and grows it again.
        assert_eq!(poll(&s, &g, T0 + 6000).await, DevicePoll::SlowDown);
        assert_eq!(stored(&s, &g).await, at(15, T0 + 6000));
        // A poll at the new interval is on time; the interval stays grown.
        assert_eq!(poll(&s, &g, T0 + 21_000).await, DevicePoll::Pending);
        assert_eq!(stored(&s, &g).await, at(15, T0 + 21_000));
        assert_eq!(poll(&s, &g, T0 + 36_000).await, DevicePoll::Pending);
        assert_eq!(stored(&s, &g).await, at(15, T0 + 36_000));
        // Too soon is decided before the status: an approved grant polled early is not
        // redeemed by that poll.
        assert!(decide(&s, "BCDFGHJK", "alice", true, NOW + 37).await);
        assert_eq!(poll(&s, &g, T0 + 37_000).await, DevicePoll::SlowDown);
        let got = stored(&s, &g).await;
        assert_eq!((got.status, got.interval), (DeviceStatus::Approved, 20));
        assert!(matches!(
            poll(&s, &g, T0 + 57_000).await,
            DevicePoll::Approved(_)
        ));
    }

    pub(crate) async fn a_poll_exactly_at_the_interval_less_grace_is_on_time(s: Arc<dyn Store>) {
        let on_time = device("grace-on", "BCDFGHJK");
        let early = device("grace-early", "LMNPQRST");
        put(&s, &on_time).await;
        put(&s, &early).await;
        for g in [&on_time, &early] {
            assert_eq!(poll(&s, g, T0).await, DevicePoll::Pending);
        }
        assert_eq!(
            poll(&s, &on_time, T0 + 5000 - GRACE).await,
            DevicePoll::Pending
        );
        assert_eq!(stored(&s, &on_time).await.interval, 5);
        assert_eq!(
            poll(&s, &early, T0 + 5000 - GRACE - 1).await,
            DevicePoll::SlowDown
        );
        assert_eq!(stored(&s, &early).await.interval, 10);

        // No grace: the full interval.
        let strict = device("grace-none", "VWXZBCDF");
        put(&s, &strict).await;
        let dt = crate::cases::fresh_tokens();
        let p = |now_ms| s.poll_device_grant(&strict.device_hash, "tv", now_ms, 0, &dt);
        assert_eq!(p(T0).await.expect("poll"), DevicePoll::Pending);
        assert_eq!(p(T0 + 4999).await.expect("poll"), DevicePoll::SlowDown);
        assert_eq!(
            p(T0 + 4999 + 10_000).await.expect("poll"),
            DevicePoll::Pending
        );
    }

    pub(crate) async fn polls_report_the_status_and_redeem_an_approval_once(s: Arc<dyn Store>) {
        let yes = device("status-yes", "BCDFGHJK");
        let no = device("status-no", "LMNPQRST");
        put(&s, &yes).await;
        put(&s, &no).await;
        assert_eq!(poll(&s, &yes, T0).await, DevicePoll::Pending);
        assert_eq!(poll(&s, &no, T0).await, DevicePoll::Pending);
        assert!(decide(&s, "BCDFGHJK", "alice", true, NOW + 1).await);
        assert!(decide(&s, "LMNPQRST", "bob", false, NOW + 1).await);

        // The approval goes to one poll, which gets the grant as it found it.
        let found = DeviceGrant {
            status: DeviceStatus::Approved,
            user: Some("alice".into()),
            last_poll_ms: Some(T0),
            ..pending(&yes)
        };
        assert_eq!(poll(&s, &yes, T0 + 5000).await, DevicePoll::Approved(found));
        let after = DeviceGrant {
            status: DeviceStatus::Redeemed,
            user: Some("alice".into()),
            last_poll_ms: Some(T0 + 5000),
            ..pending(&yes)
        };
        assert_eq!(stored(&s, &yes).await, after);
        assert_eq!(poll(&s, &yes, T0 + 10_000).await, DevicePoll::Redeemed);
        assert_eq!(poll(&s, &yes, T0 + 15_000).await, DevicePoll::Redeemed);

        // A denial stays a denial, and every poll of it is recorded.
        assert_eq!(poll(&s, &no, T0 + 5000).await, DevicePoll::Denied);
        assert_eq!(poll(&s, &no, T0 + 10_000).await, DevicePoll::Denied);
        let got = stored(&s, &no).await;
        assert_eq!(
            (got.status, got.last_poll_ms, got.interval),
            (DeviceStatus::Denied, Some(T0 + 10_000), 5)
        );
    }

    pub(crate) async fn a_redeeming_poll_writes_the_tokens_with_the_grants_scopes_and_user(
        s: Arc<dyn Store>,
    ) {
        let g = device("writes", "BCDFGHJK");
        put(&s, &g).await;
        assert!(decide(&s, "BCDFGHJK", "alice", true, NOW + 1).await);
        let issue = fresh_tokens();
        let got = s
            .poll_device_grant(&g.device_hash, "tv", T0 + 5000, GRACE, &issue)
            .await
            .expect("poll");
        assert!(matches!(got, DevicePoll::Approved(_)), "{got:?}");
        for (hash, kind, expires_at) in &issue.tokens {
            let r = s
                .find(hash)
                .await
                .expect("find")
                .expect("written by the poll");
            assert_eq!(r.kind, *kind);
            assert_eq!(r.family, issue.family);
            assert_eq!(r.client_id, "tv");
            assert_eq!(r.user.as_deref(), Some("alice"));
            assert_eq!(r.scopes, g.scopes);
            assert_eq!(r.grant_type, issue.grant_type);
            assert_eq!((r.issued_at, r.expires_at), (issue.issued_at, *expires_at));
            assert!(!r.revoked);
        }
        // A poll that does not redeem writes nothing.
        let other = fresh_tokens();
        assert_eq!(
            s.poll_device_grant(&g.device_hash, "tv", T0 + 10_000, GRACE, &other)
                .await
                .expect("poll"),
            DevicePoll::Redeemed
        );
        for (hash, _, _) in &other.tokens {
            assert_eq!(s.find(hash).await.expect("find"), None);
        }
    }

    pub(crate) async fn a_redeeming_poll_onto_a_taken_hash_conflicts_and_spends_nothing(
        s: Arc<dyn Store>,
    ) {
        let g = device("taken", "BCDFGHJK");
        put(&s, &g).await;
        assert!(decide(&s, "BCDFGHJK", "alice", true, NOW + 1).await);
        let f = family("svc", None);
        let taken = token("taken-hash", TokenKind::Access, &f);
        s.issue(Some(&f), std::slice::from_ref(&taken))
            .await
            .expect("issue");
        let mut issue = fresh_tokens();
        issue.tokens[1].0 = taken.hash;
        let e = s
            .poll_device_grant(&g.device_hash, "tv", T0 + 5000, GRACE, &issue)
            .await
            .expect_err("a taken hash");
        assert!(matches!(e, StoreError::Conflict), "{e:?}");
        // Nothing of it stayed: not the other token, not the family, not the redemption,
        // not even the poll's time.
        assert_eq!(s.find(&issue.tokens[0].0).await.expect("find"), None);
        let after = stored(&s, &g).await;
        assert_eq!(after.status, DeviceStatus::Approved);
        assert_eq!(after.last_poll_ms, None);
        // Retried with fresh tokens, the approval is still there to redeem.
        let got = s
            .poll_device_grant(&g.device_hash, "tv", T0 + 5000, GRACE, &fresh_tokens())
            .await
            .expect("poll");
        assert!(matches!(got, DevicePoll::Approved(_)), "{got:?}");
    }

    pub(crate) async fn polls_of_an_unknown_foreign_or_expired_grant_record_nothing(
        s: Arc<dyn Store>,
    ) {
        let g = device("nf", "BCDFGHJK");
        put(&s, &g).await;
        assert_eq!(poll(&s, &g, T0).await, DevicePoll::Pending);

        let foreign = s
            .poll_device_grant(&g.device_hash, "evil", T0 + 1, GRACE, &fresh_tokens())
            .await
            .expect("poll");
        assert_eq!(
            foreign,
            DevicePoll::NotFound,
            "another client's grant is not found"
        );
        let unknown = s
            .poll_device_grant(
                &TokenHash::of("nf-unknown"),
                "tv",
                T0 + 1,
                GRACE,
                &fresh_tokens(),
            )
            .await
            .expect("poll");
        assert_eq!(unknown, DevicePoll::NotFound);
        // An approved grant polled by another client is still there for its own.
        assert!(decide(&s, "BCDFGHJK", "alice", true, NOW + 1).await);
        let foreign = s
            .poll_device_grant(&g.device_hash, "evil", T0 + 5000, GRACE, &fresh_tokens())
            .await
            .expect("poll");
        assert_eq!(foreign, DevicePoll::NotFound);
        let got = stored(&s, &g).await;
        assert_eq!(
            (got.status, got.last_poll_ms, got.interval),
            (DeviceStatus::Approved, Some(T0), 5),
            "foreign polls are not recorded and do not slow the grant down"
        );

        // Expired at expires_at, before the interval and the status are looked at.
        let exp = device("nf-exp", "LMNPQRST");
        put(&s, &exp).await;
        assert_eq!(poll(&s, &exp, T0).await, DevicePoll::Pending);
        assert!(decide(&s, "LMNPQRST", "alice", true, NOW + 1).await);
        let end = exp.expires_at * 1000;
        assert_eq!(poll(&s, &exp, end).await, DevicePoll::Expired);
        assert_eq!(
            poll(&s, &exp, end + 1).await,
            DevicePoll::Expired,
            "not a slow_down"
        );
        assert_eq!(poll(&s, &exp, end + 3_600_000).await, DevicePoll::Expired);
        let got = stored(&s, &exp).await;
        assert_eq!(
            (got.status, got.last_poll_ms, got.interval),
            (DeviceStatus::Approved, Some(T0), 5),
            "expired polls are not recorded"
        );
        // The last millisecond is still in time.
        assert!(matches!(
            poll(&s, &exp, end - 1).await,
            DevicePoll::Approved(_)
        ));
    }

    pub(crate) async fn concurrent_polls_of_an_approved_grant_have_exactly_one_winner(
        s: Arc<dyn Store>,
    ) {
        const N: usize = 20;
        // Polls at one instant: with no grace, every loser is told to slow down; with a grace
        // as long as the interval, every loser finds the grant redeemed.
        for (tag, user_code, grace, loser) in [
            ("race-slow", "BCDFGHJK", 0, DevicePoll::SlowDown),
            ("race-grace", "LMNPQRST", 5000, DevicePoll::Redeemed),
        ] {
            let g = device(tag, user_code);
            put(&s, &g).await;
            assert!(decide(&s, user_code, "alice", true, NOW + 1).await);
            let barrier = Arc::new(tokio::sync::Barrier::new(N));
            let mut tasks = Vec::new();
            for _ in 0..N {
                let (s, barrier, hash) = (s.clone(), barrier.clone(), g.device_hash);
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    s.poll_device_grant(&hash, "tv", T0 + 2000, grace, &fresh_tokens())
                        .await
                        .expect("poll")
                }));
            }
            let mut approved = 0;
            for t in tasks {
                match t.await.expect("join") {
                    DevicePoll::Approved(got) => {
                        assert_eq!(got.user.as_deref(), Some("alice"));
                        assert_eq!(got.grant, g);
                        approved += 1;
                    }
                    other => assert_eq!(other, loser, "{tag}"),
                }
            }
            assert_eq!(approved, 1, "{tag}: exactly one poll gets the approval");
            let got = stored(&s, &g).await;
            assert_eq!(got.status, DeviceStatus::Redeemed, "{tag}");
            let expected_interval = if grace == 0 {
                5 + 5 * (N as u32 - 1)
            } else {
                5
            };
            assert_eq!(
                got.interval, expected_interval,
                "{tag}: every slow_down counted"
            );
        }
    }

    // -----------------------------------------------------------------------------------
    // Purging codes and device grants

    pub(crate) async fn purge_expired_removes_expired_code_bindings(s: Arc<dyn Store>) {
        let (_, short) = code_grant(&s, "purgecode-short").await;
        let f = code_family();
        let long = NewToken {
            expires_at: Some(NOW + 1000),
            ..code("purgecode-long", &f)
        };
        s.issue_code(&f, &long, &binding(Some("https://app.example/cb"), None))
            .await
            .expect("issue_code");
        // A redeemed code that expired goes too, with its binding; the tokens it issued stay.
        let (g, used) = code_grant(&s, "purgecode-used").await;
        let access = expiring("purgecode-access", &g, Some(NOW + 1000));
        let r = redeem(&s, &used, "app", NOW + 1, std::slice::from_ref(&access)).await;
        assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");

        assert_eq!(s.purge_expired(NOW + 100, 100).await.expect("purge"), 2);
        for c in [&short, &used] {
            assert_eq!(find(&s, c).await, None);
            assert_eq!(bound(&s, c).await, None, "the binding went with its code");
        }
        assert_eq!(find(&s, &long).await, Some(record(&f, &long)));
        assert_eq!(
            bound(&s, &long).await,
            Some(binding(Some("https://app.example/cb"), None))
        );
        assert_eq!(find(&s, &access).await, Some(record(&g, &access)));

        // The purged code's hash can be written again, binding and all.
        let f2 = code_family();
        let again = NewToken {
            family: f2.id,
            ..short.clone()
        };
        s.issue_code(&f2, &again, &binding(None, Some("new")))
            .await
            .expect("the purged code left nothing behind");
        assert_eq!(bound(&s, &again).await, Some(binding(None, Some("new"))));
    }

    pub(crate) async fn purge_expired_removes_expired_device_grants_and_honours_the_limit(
        s: Arc<dyn Store>,
    ) {
        let expiring_at = |tag: &str, user_code: &str, expires_at: UnixTime| NewDeviceGrant {
            expires_at,
            ..device(tag, user_code)
        };
        let gone = [
            expiring_at("purge-10", "BCDFGHJK", NOW + 10),
            expiring_at("purge-20", "LMNPQRST", NOW + 20),
            expiring_at("purge-99", "VWXZBCDF", NOW + 99),
        ];
        let at_before = expiring_at("purge-100", "GHJKLMNP", NOW + 100);
        let later = expiring_at("purge-1000", "QRSTVWXZ", NOW + 1000);
        for g in gone.iter().chain([&at_before, &later]) {
            put(&s, g).await;
        }
        // Approved ones are purged like any other.
        assert!(decide(&s, "BCDFGHJK", "alice", true, NOW + 1).await);
        let remaining = |s: Arc<dyn Store>, gone: Vec<NewDeviceGrant>| async move {
            let mut n = 0;
            for g in &gone {
                // An expired grant answers Expired while stored and NotFound once purged.
                match poll(&s, g, (NOW + 5000) * 1000).await {
                    DevicePoll::Expired => n += 1,
                    DevicePoll::NotFound => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            n
        };
        assert_eq!(remaining(s.clone(), gone.to_vec()).await, 3);

        let before = NOW + 100;
        s.purge_expired(before, 0).await.expect("purge");
        assert_eq!(
            remaining(s.clone(), gone.to_vec()).await,
            3,
            "a limit of 0 deletes nothing"
        );
        assert_eq!(
            s.purge_expired(before, 2).await.expect("purge"),
            0,
            "counts tokens only"
        );
        assert_eq!(
            remaining(s.clone(), gone.to_vec()).await,
            1,
            "honours the limit"
        );
        s.purge_expired(before, 10).await.expect("purge");
        assert_eq!(remaining(s.clone(), gone.to_vec()).await, 0);

        // Expiring at or after `before` is kept.
        assert_eq!(stored(&s, &at_before).await, pending(&at_before));
        assert_eq!(stored(&s, &later).await, pending(&later));
        // A purged grant's device hash and user code are free again.
        let reborn = NewDeviceGrant {
            created_at: NOW + 50,
            expires_at: NOW + 650,
            ..gone[0].clone()
        };
        put(&s, &reborn).await;
        assert_eq!(stored(&s, &reborn).await, pending(&reborn));
    }
}

/// What only a file-backed store can show: state across reopening, and schema upgrades.
#[cfg(feature = "sqlite")]
mod sqlite_file {
    use std::path::Path;

    use super::*;

    const NOW: UnixTime = 1_700_000_000;
    const T0: i64 = NOW * 1000;

    fn open(path: &Path) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(path, Synchronous::Full).expect("open sqlite store"))
    }

    fn user_version(path: &Path) -> i64 {
        rusqlite::Connection::open(path)
            .expect("open")
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("user_version")
    }

    fn device(tag: &str, user_code: &str) -> NewDeviceGrant {
        NewDeviceGrant {
            device_hash: TokenHash::of(tag),
            user_code: user_code.into(),
            client_id: "tv".into(),
            scopes: Scopes::parse("read").expect("scopes"),
            interval: 5,
            created_at: NOW,
            expires_at: NOW + 600,
        }
    }

    fn code_of(f: &NewFamily, name: &str) -> NewToken {
        NewToken {
            hash: TokenHash::of(name),
            kind: TokenKind::Code,
            family: f.id,
            scopes: Scopes::parse("read").expect("scopes"),
            issued_at: NOW,
            expires_at: Some(NOW + 60),
        }
    }

    fn app_family() -> NewFamily {
        NewFamily {
            id: FamilyId::random(),
            client_id: "app".into(),
            user: Some("alice".into()),
            grant_type: "authorization_code".into(),
            created_at: NOW,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn codes_and_device_grants_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("edge.db");
        let f = app_family();
        let used = code_of(&f, "reopen-used");
        let g = NewFamily {
            id: FamilyId::random(),
            ..app_family()
        };
        let fresh = code_of(&g, "reopen-fresh");
        let access = NewToken {
            hash: TokenHash::of("reopen-access"),
            kind: TokenKind::Access,
            expires_at: Some(NOW + 3600),
            ..used.clone()
        };
        let bind = CodeBinding {
            redirect_uri: Some("https://app.example/cb".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        };
        let approved = device("reopen-approved", "BCDFGHJK");
        let denied = device("reopen-denied", "LMNPQRST");
        let slow = device("reopen-slow", "VWXZBCDF");
        {
            let s = open(&path);
            s.issue_code(&f, &used, &bind).await.expect("issue_code");
            s.issue_code(
                &g,
                &fresh,
                &CodeBinding {
                    redirect_uri: None,
                    code_challenge: None,
                },
            )
            .await
            .expect("issue_code");
            let r = s
                .rotate(
                    &used.hash,
                    TokenKind::Code,
                    "app",
                    NOW + 1,
                    std::slice::from_ref(&access),
                )
                .await
                .expect("rotate");
            assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");
            for d in [&approved, &denied, &slow] {
                s.put_device_grant(d).await.expect("put");
            }
            assert!(s
                .decide_device_grant("BCDFGHJK", "alice", true, NOW + 1)
                .await
                .expect("decide"));
            assert!(s
                .decide_device_grant("LMNPQRST", "bob", false, NOW + 1)
                .await
                .expect("decide"));
            let dt = crate::cases::fresh_tokens();
            let p = |now_ms| s.poll_device_grant(&slow.device_hash, "tv", now_ms, 0, &dt);
            assert_eq!(p(T0).await.expect("poll"), DevicePoll::Pending);
            assert_eq!(p(T0 + 1000).await.expect("poll"), DevicePoll::SlowDown);
        }

        let s = open(&path);
        assert_eq!(
            s.code_binding(&used.hash).await.expect("binding"),
            Some(bind.clone())
        );
        assert_eq!(
            s.code_binding(&fresh.hash).await.expect("binding"),
            Some(CodeBinding {
                redirect_uri: None,
                code_challenge: None
            })
        );
        let rec = s.find(&used.hash).await.expect("find").expect("stored");
        assert_eq!((rec.consumed_at, rec.revoked), (Some(NOW + 1), false));
        assert!(s.find(&access.hash).await.expect("find").is_some());
        // Still consumed: a second redemption is a replay and revokes what the first issued.
        let r = s
            .rotate(&used.hash, TokenKind::Code, "app", NOW + 2, &[])
            .await
            .expect("rotate");
        assert_eq!(r, Rotation::Replayed(f.id));

        let got = s
            .device_grant_by_user_code("BCDFGHJK", NOW + 2)
            .await
            .expect("by_user_code")
            .expect("stored");
        assert_eq!(
            (got.status, got.user.as_deref()),
            (DeviceStatus::Approved, Some("alice"))
        );
        let got = s
            .device_grant_by_user_code("LMNPQRST", NOW + 2)
            .await
            .expect("by_user_code")
            .expect("stored");
        assert_eq!(
            (got.status, got.user.as_deref()),
            (DeviceStatus::Denied, Some("bob"))
        );
        let got = s
            .device_grant_by_user_code("VWXZBCDF", NOW + 2)
            .await
            .expect("by_user_code")
            .expect("stored");
        assert_eq!(
            (got.interval, got.last_poll_ms),
            (10, Some(T0 + 1000)),
            "slow_down kept"
        );
        let r = s
            .poll_device_grant(
                &approved.device_hash,
                "tv",
                T0 + 2000,
                0,
                &crate::cases::fresh_tokens(),
            )
            .await
            .expect("poll");
        assert!(matches!(r, DevicePoll::Approved(_)), "{r:?}");
        drop(s);

        let s = open(&path);
        assert!(
            s.find(&access.hash)
                .await
                .expect("find")
                .expect("stored")
                .revoked
        );
        let r = s
            .poll_device_grant(
                &approved.device_hash,
                "tv",
                T0 + 60_000,
                0,
                &crate::cases::fresh_tokens(),
            )
            .await
            .expect("poll");
        assert_eq!(r, DevicePoll::Redeemed, "a redeemed grant stays redeemed");
        assert_eq!(user_version(&path), 2);
    }

    /// The version 1 schema, exactly as the first migration wrote it.
    const V1: &str = "
    CREATE TABLE IF NOT EXISTS families (
        id          BLOB PRIMARY KEY,
        client_id   TEXT NOT NULL,
        user_id     TEXT,
        grant_type  TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    );
    CREATE TABLE IF NOT EXISTS tokens (
        hash        BLOB PRIMARY KEY,
        kind        TEXT NOT NULL,
        family      BLOB NOT NULL REFERENCES families(id) ON DELETE CASCADE,
        scopes      TEXT NOT NULL,
        issued_at   INTEGER NOT NULL,
        expires_at  INTEGER,
        consumed_at INTEGER
    );
    CREATE INDEX IF NOT EXISTS tokens_family ON tokens(family);
    CREATE INDEX IF NOT EXISTS tokens_expires_at ON tokens(expires_at);
    CREATE INDEX IF NOT EXISTS families_client_id ON families(client_id);
    CREATE INDEX IF NOT EXISTS families_user_id ON families(user_id);
    CREATE TABLE IF NOT EXISTS clients (
        id          TEXT PRIMARY KEY,
        settings    TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS server_keys (
        id          INTEGER PRIMARY KEY,
        key         BLOB NOT NULL,
        created_at  INTEGER NOT NULL
    );
    PRAGMA user_version = 1;
    ";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_1_database_upgrades_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("edge.db");
        let family = FamilyId([7; 16]);
        let refresh = TokenHash::of("v1-refresh");
        let key = [9u8; 32];
        // The store refuses a file others can read: made the way the store makes its own.
        oauth_edge::files::create_private_file(&path).expect("create");
        {
            let conn = rusqlite::Connection::open(&path).expect("open");
            conn.execute_batch(V1).expect("v1 schema");
            conn.execute(
                "INSERT INTO families (id, client_id, user_id, grant_type, created_at)
                 VALUES (?1, 'app', 'alice', 'password', ?2)",
                rusqlite::params![&family.0[..], NOW],
            )
            .expect("family");
            conn.execute(
                "INSERT INTO tokens (hash, kind, family, scopes, issued_at, expires_at)
                 VALUES (?1, 'refresh', ?2, 'read write', ?3, ?4)",
                rusqlite::params![&refresh.0[..], &family.0[..], NOW, NOW + 3600],
            )
            .expect("token");
            conn.execute(
                "INSERT INTO clients (id, settings, created_at) VALUES ('c1', '{\"name\":\"x\"}', ?1)",
                [NOW],
            )
            .expect("client");
            conn.execute(
                "INSERT INTO server_keys (id, key, created_at) VALUES (1, ?1, ?2)",
                rusqlite::params![&key[..], NOW],
            )
            .expect("key");
        }
        assert_eq!(user_version(&path), 1);

        let s = open(&path);
        assert_eq!(user_version(&path), 2, "upgraded on open");
        let expected = TokenRecord {
            hash: refresh,
            kind: TokenKind::Refresh,
            family,
            client_id: "app".into(),
            user: Some("alice".into()),
            grant_type: "password".into(),
            scopes: Scopes::parse("read write").expect("scopes"),
            issued_at: NOW,
            expires_at: Some(NOW + 3600),
            consumed_at: None,
            revoked: false,
        };
        assert_eq!(
            s.find(&refresh).await.expect("find"),
            Some(expected.clone())
        );
        let client = s.client("c1").await.expect("client").expect("kept");
        assert_eq!(client.settings, serde_json::json!({ "name": "x" }));
        let keys = s.server_keys().await.expect("keys");
        assert_eq!((keys.len(), keys[0].id, *keys[0].bytes()), (1, 1, key));

        // The new tables work, and old rows take part in them.
        let code = NewToken {
            hash: TokenHash::of("v1-code"),
            kind: TokenKind::Code,
            family: FamilyId([8; 16]),
            scopes: Scopes::parse("read").expect("scopes"),
            issued_at: NOW,
            expires_at: Some(NOW + 60),
        };
        let f = NewFamily {
            id: code.family,
            ..app_family()
        };
        let b = CodeBinding {
            redirect_uri: None,
            code_challenge: Some("c".into()),
        };
        s.issue_code(&f, &code, &b).await.expect("issue_code");
        assert_eq!(s.code_binding(&code.hash).await.expect("binding"), Some(b));
        s.put_device_grant(&device("v1-device", "BCDFGHJK"))
            .await
            .expect("put");
        let r = s
            .rotate(&refresh, TokenKind::Refresh, "app", NOW + 1, &[])
            .await
            .expect("rotate");
        assert_eq!(r, Rotation::Rotated(expected));
        drop(s);

        // Opening an up-to-date file again migrates nothing and loses nothing.
        let s = open(&path);
        assert_eq!(user_version(&path), 2);
        assert!(s
            .device_grant_by_user_code("BCDFGHJK", NOW)
            .await
            .expect("by_user_code")
            .is_some());
        assert_eq!(
            s.find(&refresh)
                .await
                .expect("find")
                .expect("kept")
                .consumed_at,
            Some(NOW + 1)
        );
    }

    #[tokio::test]
    async fn a_fresh_database_starts_at_the_latest_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("edge.db");
        let s = open(&path);
        assert_eq!(user_version(&path), 2);
        let conn = rusqlite::Connection::open(&path).expect("open");
        for table in [
            "families",
            "tokens",
            "clients",
            "server_keys",
            "code_bindings",
            "device_grants",
        ] {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .expect("sqlite_master");
            assert_eq!(n, 1, "{table}");
        }
        drop(s);
    }
}

/// What only a store shared by several instances shows: revocation notices, races between
/// instances, and migrations.
#[cfg(feature = "postgres")]
mod postgres_only {
    use std::time::Duration;

    use tokio::sync::broadcast;

    use super::pg_store::{admin, config, config_at, connect, fresh_schema, url, DropSchema};
    use super::*;

    const NOW: UnixTime = 1_700_000_000;

    fn family(client: &str, user: &str) -> NewFamily {
        NewFamily {
            id: FamilyId::random(),
            client_id: client.into(),
            user: Some(user.into()),
            grant_type: "password".into(),
            created_at: NOW,
        }
    }

    fn token(name: &str, kind: TokenKind, f: &NewFamily) -> NewToken {
        NewToken {
            hash: TokenHash::of(name),
            kind,
            family: f.id,
            scopes: Scopes::parse("read").expect("scopes"),
            issued_at: NOW,
            expires_at: Some(NOW + 3600),
        }
    }

    /// Writes a family of `client` for `user` with one refresh token named `name`.
    async fn grant(
        s: &PostgresStore,
        client: &str,
        user: &str,
        name: &str,
    ) -> (NewFamily, NewToken) {
        let f = family(client, user);
        let t = token(name, TokenKind::Refresh, &f);
        s.issue(Some(&f), std::slice::from_ref(&t))
            .await
            .expect("issue");
        (f, t)
    }

    /// The next notice, within `wait`.
    async fn next(rx: &mut broadcast::Receiver<Notice>, wait: Duration) -> Notice {
        tokio::time::timeout(wait, rx.recv())
            .await
            .expect("a notice in time")
            .expect("the channel is open")
    }

    async fn revoked(rx: &mut broadcast::Receiver<Notice>) -> FamilyId {
        match next(rx, Duration::from_secs(1)).await {
            Notice::Revoked { family, at_ms } => {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_millis() as i64;
                assert!(
                    (now_ms - 5_000..=now_ms).contains(&at_ms),
                    "{at_ms} vs {now_ms}"
                );
                family
            }
            other => panic!("expected a revocation, got {other:?}"),
        }
    }

    /// The next `n` revocations, which both receivers must hear, sorted.
    async fn both(
        a: &mut broadcast::Receiver<Notice>,
        b: &mut broadcast::Receiver<Notice>,
        n: usize,
    ) -> Vec<FamilyId> {
        let (mut on_a, mut on_b) = (Vec::new(), Vec::new());
        for _ in 0..n {
            on_a.push(revoked(a).await);
            on_b.push(revoked(b).await);
        }
        on_a.sort();
        on_b.sort();
        assert_eq!(on_a, on_b, "both stores hear the same");
        on_a
    }

    async fn quiet(rx: &mut broadcast::Receiver<Notice>) {
        let r = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
        assert!(r.is_err(), "expected no notice, got {r:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_revocation_is_heard_by_every_store_on_the_schema() {
        let schema = fresh_schema();
        let _drop = DropSchema(schema.clone());
        let a = connect(&schema).await;
        let b = connect(&schema).await;
        let other_schema = fresh_schema();
        let _drop_other = DropSchema(other_schema.clone());
        let elsewhere = connect(&other_schema).await;
        assert_eq!(a.channel(), format!("oauth_edge_revocations_{schema}"));
        let mut on_a = a.notices().expect("a shared store has notices");
        let mut on_b = b.notices().expect("a shared store has notices");
        let mut on_elsewhere = elsewhere.notices().expect("notices");

        // revoke_family: heard by both, once; a second revocation is not news.
        let (f1, _) = grant(&a, "app", "alice", "n-1").await;
        a.revoke_family(&f1.id, NOW).await.expect("revoke");
        assert_eq!(both(&mut on_a, &mut on_b, 1).await, [f1.id]);
        a.revoke_family(&f1.id, NOW).await.expect("revoke again");
        quiet(&mut on_b).await;

        // revoke_all: one notice per family newly revoked.
        let (f2, _) = grant(&a, "app", "bob", "n-2").await;
        let (f3, _) = grant(&a, "app", "bob", "n-3").await;
        let (f4, _) = grant(&a, "other", "bob", "n-4").await;
        let got = b
            .revoke_all(Some("app"), Some("bob"), NOW)
            .await
            .expect("revoke_all");
        let mut expected = vec![f2.id, f3.id];
        expected.sort();
        assert_eq!(got, expected);
        assert_eq!(both(&mut on_a, &mut on_b, 2).await, expected);
        quiet(&mut on_a).await;

        // delete_client, even of a client the store does not keep.
        assert!(!a.delete_client("other", NOW).await.expect("delete"));
        assert_eq!(both(&mut on_a, &mut on_b, 1).await, [f4.id]);

        // A replayed rotation.
        let (f5, refresh) = grant(&b, "app", "carol", "n-5").await;
        let next_token = token("n-5-next", TokenKind::Refresh, &f5);
        let r = a
            .rotate(
                &refresh.hash,
                TokenKind::Refresh,
                "app",
                NOW + 1,
                std::slice::from_ref(&next_token),
            )
            .await
            .expect("rotate");
        assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");
        quiet(&mut on_a).await;
        let r = b
            .rotate(&refresh.hash, TokenKind::Refresh, "app", NOW + 2, &[])
            .await
            .expect("rotate");
        assert_eq!(r, Rotation::Replayed(f5.id));
        assert_eq!(both(&mut on_a, &mut on_b, 1).await, [f5.id]);
        quiet(&mut on_b).await;

        // Another schema hears none of it.
        quiet(&mut on_elsewhere).await;
        drop(elsewhere);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_listener_reconnects_reports_a_gap_and_hears_again() {
        let schema = fresh_schema();
        let _drop = DropSchema(schema.clone());
        let a = connect(&schema).await;
        // B's connections carry a name of their own, so only its listener is killed.
        let app_name = format!("lost_{}", &schema[5..15]);
        let sep = if url().contains('?') { '&' } else { '?' };
        let b = PostgresStore::connect(&config_at(
            &format!("{}{sep}application_name={app_name}", url()),
            &schema,
        ))
        .await
        .expect("connect");
        let mut rx = b.notices().expect("notices");

        let (f1, _) = grant(&a, "app", "alice", "gap-1").await;
        a.revoke_family(&f1.id, NOW).await.expect("revoke");
        assert_eq!(revoked(&mut rx).await, f1.id);

        let killed: i64 = admin()
            .await
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = $1 AND query LIKE 'LISTEN%' || $2 || '%'",
                &[&app_name, &b.channel()],
            )
            .await
            .expect("terminate")
            .get(0);
        assert_eq!(killed, 1, "exactly B's listener");

        assert_eq!(
            next(&mut rx, Duration::from_secs(5)).await,
            Notice::Gap,
            "after reconnecting, B says it may have missed revocations"
        );
        let (f2, _) = grant(&a, "app", "alice", "gap-2").await;
        a.revoke_family(&f2.id, NOW).await.expect("revoke");
        assert_eq!(revoked(&mut rx).await, f2.id, "and hears them again");
        // The store itself kept working throughout.
        assert!(
            b.find(&TokenHash::of("gap-2"))
                .await
                .expect("find")
                .expect("stored")
                .revoked
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_stores_rotating_one_refresh_token_have_exactly_one_winner() {
        const N: usize = 10;
        let schema = fresh_schema();
        let _drop = DropSchema(schema.clone());
        let a = Arc::new(connect(&schema).await);
        let b = Arc::new(connect(&schema).await);
        let (f, refresh) = grant(&a, "app", "alice", "race-refresh").await;
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let mut tasks = Vec::new();
        for i in 0..N {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            let barrier = barrier.clone();
            let new = token(&format!("race-new-{i}"), TokenKind::Refresh, &f);
            let old = refresh.hash;
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                s.rotate(
                    &old,
                    TokenKind::Refresh,
                    "app",
                    NOW + 1,
                    std::slice::from_ref(&new),
                )
                .await
            }));
        }
        let (mut rotated, mut replayed, mut dead) = (0, 0, 0);
        for t in tasks {
            match t.await.expect("join").expect("rotate") {
                Rotation::Rotated(_) => rotated += 1,
                Rotation::Replayed(id) => {
                    assert_eq!(id, f.id);
                    replayed += 1;
                }
                Rotation::Dead => dead += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((rotated, replayed, dead), (1, 1, N - 2));

        // And a device approval is redeemed by exactly one poll across both stores.
        let grant = NewDeviceGrant {
            device_hash: TokenHash::of("race-device"),
            user_code: "BCDFGHJK".into(),
            client_id: "tv".into(),
            scopes: Scopes::parse("read").expect("scopes"),
            interval: 5,
            created_at: NOW,
            expires_at: NOW + 600,
        };
        a.put_device_grant(&grant).await.expect("put");
        assert!(b
            .decide_device_grant("BCDFGHJK", "alice", true, NOW + 1)
            .await
            .expect("decide"));
        let mut tasks = Vec::new();
        for i in 0..N {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            let hash = grant.device_hash;
            tasks.push(tokio::spawn(async move {
                s.poll_device_grant(
                    &hash,
                    "tv",
                    NOW * 1000 + 10_000,
                    5000,
                    &cases::fresh_tokens(),
                )
                .await
            }));
        }
        let (mut approved, mut other) = (0, 0);
        for t in tasks {
            match t.await.expect("join").expect("poll") {
                DevicePoll::Approved(g) => {
                    assert_eq!(g.user.as_deref(), Some("alice"));
                    approved += 1;
                }
                DevicePoll::Redeemed | DevicePoll::SlowDown => other += 1,
                p => panic!("unexpected {p:?}"),
            }
        }
        assert_eq!((approved, other), (1, N - 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrations_are_idempotent_and_concurrent_first_connects_agree() {
        let schema = fresh_schema();
        let _drop = DropSchema(schema.clone());
        let cfg = config(&schema);
        let (a, b, m) = tokio::join!(
            PostgresStore::connect(&cfg),
            PostgresStore::connect(&cfg),
            PostgresStore::migrate(&cfg)
        );
        let (a, b) = (a.expect("connect a"), b.expect("connect b"));
        assert_eq!(m.expect("migrate"), PostgresStore::SCHEMA_VERSION);
        assert_eq!(
            PostgresStore::migrate(&cfg).await.expect("again"),
            PostgresStore::SCHEMA_VERSION
        );
        let versions: Vec<i32> = admin()
            .await
            .query(
                &format!("SELECT version FROM \"{schema}\".oauth_edge_migrations ORDER BY version"),
                &[],
            )
            .await
            .expect("versions")
            .iter()
            .map(|r| r.get(0))
            .collect();
        let expected: Vec<i32> = (1..=PostgresStore::SCHEMA_VERSION as i32).collect();
        assert_eq!(versions, expected, "each migration applied once");

        // Both stores work on the one schema.
        let (f, t) = grant(&a, "app", "alice", "migrated").await;
        assert_eq!(
            b.find(&t.hash).await.expect("find").expect("stored").family,
            f.id
        );
        let (ka, kb) = tokio::join!(a.server_keys(), b.server_keys());
        assert_eq!(ka.expect("keys")[0].bytes(), kb.expect("keys")[0].bytes());

        // A schema newer than this build is refused.
        admin()
            .await
            .batch_execute(&format!(
                "INSERT INTO \"{schema}\".oauth_edge_migrations (version) VALUES (999)"
            ))
            .await
            .expect("insert");
        let e = PostgresStore::connect(&cfg)
            .await
            .expect_err("newer schema");
        assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
        assert!(matches!(
            PostgresStore::migrate(&cfg).await,
            Err(StoreError::Backend(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_database_is_unavailable_and_the_password_stays_secret() {
        let mut cfg = config_at("postgres://postgres:hunter2@127.0.0.1:1/test", "public");
        cfg.connect_timeout = Duration::from_secs(2);
        let e = PostgresStore::connect(&cfg)
            .await
            .expect_err("nothing listens on port 1");
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        assert!(!format!("{e} {e:?} {cfg:?}").contains("hunter2"));
        let e = PostgresStore::migrate(&cfg)
            .await
            .expect_err("nothing listens on port 1");
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_statement_past_the_timeout_is_unavailable() {
        let schema = fresh_schema();
        let _drop = DropSchema(schema.clone());
        let mut cfg = config(&schema);
        cfg.timeout = Duration::from_millis(300);
        let s = PostgresStore::connect(&cfg).await.expect("connect");
        let (f, refresh) = grant(&s, "app", "alice", "slow").await;
        // Another session holds the family's row lock: the rotation waits past
        // statement_timeout and is cancelled (57014).
        let mut holder = admin().await;
        let tx = holder.transaction().await.expect("begin");
        tx.execute(
            &format!("SELECT 1 FROM \"{schema}\".families WHERE id = $1 FOR UPDATE"),
            &[&&f.id.0[..]],
        )
        .await
        .expect("lock");
        let e = s
            .rotate(&refresh.hash, TokenKind::Refresh, "app", NOW + 1, &[])
            .await
            .expect_err("timed out");
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        tx.rollback().await.expect("rollback");
        // Nothing was consumed, and the store works again.
        let r = s
            .rotate(&refresh.hash, TokenKind::Refresh, "app", NOW + 1, &[])
            .await
            .expect("rotate");
        assert!(matches!(r, Rotation::Rotated(_)), "{r:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_store_stops_its_listener() {
        let schema = fresh_schema();
        let _drop = DropSchema(schema.clone());
        let s = connect(&schema).await;
        let channel = s.channel().to_owned();
        let listeners = || async {
            let n: i64 = admin()
                .await
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN \"' || $1 || '\"'",
                    &[&channel],
                )
                .await
                .expect("count")
                .get(0);
            n
        };
        assert_eq!(listeners().await, 1);
        let rx = s.notices().expect("notices");
        drop(s);
        let mut n = 1;
        for _ in 0..50 {
            n = listeners().await;
            if n == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(n, 0, "the listener connection closed");
        drop(rx);
    }
}

/// The memory store's `Debug` shows its state; it must never show a user code.
#[tokio::test]
async fn memory_store_debug_never_shows_a_user_code() {
    let s = MemoryStore::new();
    let g = NewDeviceGrant {
        device_hash: TokenHash::of("debug-device"),
        user_code: "QWRTZPLK".into(),
        client_id: "tv".into(),
        scopes: Scopes::default(),
        interval: 5,
        created_at: 1,
        expires_at: 1000,
    };
    s.put_device_grant(&g).await.expect("put");
    assert!(s
        .decide_device_grant("QWRTZPLK", "alice", true, 2)
        .await
        .expect("decide"));
    let shown = format!("{s:?}");
    assert!(shown.contains("tv"), "the grant is in the output: {shown}");
    assert!(!shown.contains("QWRTZPLK"), "the user code is not");
    let polled = s
        .poll_device_grant(&g.device_hash, "tv", 3000, 0, &crate::cases::fresh_tokens())
        .await
        .expect("poll");
    assert!(!format!("{polled:?}").contains("QWRTZPLK"));
}
