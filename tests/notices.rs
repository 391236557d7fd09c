//! Revocations made by other instances, heard through the store's notification channel (the
//! PostgreSQL store's `LISTEN/NOTIFY`; here a test store's channel): a family revoked
//! elsewhere is refused on this instance's next request although its status was cached, and
//! after a gap in the channel the cache is emptied.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestServer, CONFIG};
use oauth_edge::store::testing::TestStore;
use oauth_edge::store::{Notice, Store};

/// Polls `path` with `token` until it is refused, for at most a second; returns how long.
async fn refused_within(s: &TestServer, token: &str) -> Option<Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        if s.get_bearer("/api/x", token).await.status() == 401 {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn a_revocation_heard_from_elsewhere_is_refused_here_at_once() {
    let store = Arc::new(TestStore::default().with_notices());
    let s = TestServer::with_store(CONFIG, store.clone()).await;
    let t = s.client_token("svc", "svc-secret", None).await;
    let token = t["access_token"].as_str().unwrap();
    assert_eq!(s.get_bearer("/api/x", token).await.status(), 200);

    // Another instance revokes the family: the store has it, this cache does not know.
    let (_, hash) = s.edge.codec().verify(token).unwrap();
    let family = store.find(&hash).await.unwrap().unwrap().family;
    store.inner.revoke_family(&family, 0).await.unwrap();
    assert_eq!(
        s.get_bearer("/api/x", token).await.status(),
        200,
        "still cached: the notice has not come yet"
    );
    store.notify(Notice::Revoked {
        family,
        at_ms: now_ms(),
    });
    let took = refused_within(&s, token)
        .await
        .expect("refused after the notice");
    assert!(took < Duration::from_secs(1));
    let p = s.edge.metrics().propagation();
    assert_eq!(p.count, 1);
    assert_eq!(s.edge.metrics().notice_gaps(), 0);
}

#[tokio::test]
async fn after_a_gap_in_the_channel_the_cache_is_emptied() {
    let store = Arc::new(TestStore::default().with_notices());
    let s = TestServer::with_store(CONFIG, store.clone()).await;
    let t = s.client_token("svc", "svc-secret", None).await;
    let token = t["access_token"].as_str().unwrap();
    let other = s.client_token("svc", "svc-secret", None).await;
    let other = other["access_token"].as_str().unwrap();
    assert_eq!(s.get_bearer("/api/x", token).await.status(), 200);
    assert_eq!(s.get_bearer("/api/x", other).await.status(), 200);

    // Revoked elsewhere while the channel was down: no notice ever comes for it.
    let (_, hash) = s.edge.codec().verify(token).unwrap();
    let family = store.find(&hash).await.unwrap().unwrap().family;
    store.inner.revoke_family(&family, 0).await.unwrap();
    assert_eq!(s.get_bearer("/api/x", token).await.status(), 200);

    store.notify(Notice::Gap);
    refused_within(&s, token)
        .await
        .expect("the cache was emptied, so the store was asked");
    assert_eq!(s.edge.metrics().notice_gaps(), 1);
    // Valid tokens keep working: they are read again from the store.
    assert_eq!(s.get_bearer("/api/x", other).await.status(), 200);
}
