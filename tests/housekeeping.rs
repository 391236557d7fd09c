//! Housekeeping: expired tokens are deleted from the store in the background, in bounded
//! batches, so it does not grow without end.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use oauth_edge::clock::ManualClock;
use oauth_edge::store::testing::TestStore;
use oauth_edge::store::Store;

const CONFIG: &str = r#"
[store]
kind = "memory"

[tokens]
access_ttl = "1s"

[housekeeping]
interval = "200ms"
batch = 2
batches = 2

[[clients]]
id = "svc"
secret = "svc-secret"
scopes = ["read"]
"#;

#[tokio::test]
async fn expired_tokens_are_purged_in_bounded_batches() {
    let store = Arc::new(TestStore::default());
    let clock = Arc::new(ManualClock::starting_now());
    let s = TestServer::built(CONFIG, |b| b.store(store.clone()).clock(clock.clone())).await;
    let mut hashes = Vec::new();
    for _ in 0..10 {
        let t = s.client_token("svc", "svc-secret", None).await;
        let (_, h) = s
            .edge
            .codec()
            .verify(t["access_token"].as_str().unwrap())
            .unwrap();
        hashes.push(h);
    }
    let live = async |hashes: &[oauth_edge::tokens::TokenHash]| {
        let mut n = 0;
        for h in hashes {
            if store.find(h).await.unwrap().is_some() {
                n += 1;
            }
        }
        n
    };
    assert_eq!(live(&hashes).await, 10);
    // Expired after 1 s, and purged once a whole second has passed since (the store's times
    // are whole seconds); each round deletes at most 2 x 2 = 4 of them, so it takes rounds.
    clock.advance(Duration::from_secs(2));
    let mut seen = Vec::new();
    for _ in 0..40 {
        let n = live(&hashes).await;
        seen.push(n);
        if n == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen.last(), Some(&0), "{seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] - w[1] <= 4),
        "no round deleted more than batch x batches: {seen:?}"
    );

    // A token that has not expired is left alone.
    let t = s.client_token("svc", "svc-secret", None).await;
    let (_, h) = s
        .edge
        .codec()
        .verify(t["access_token"].as_str().unwrap())
        .unwrap();
    // Two rounds later, by the wall clock the rounds keep.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(store.find(&h).await.unwrap().is_some());
}
