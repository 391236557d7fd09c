//! The README walk-through, end to end: get a token, call the API, revoke, call again.
mod common;

use common::{basic, TestServer, CONFIG};

#[tokio::test]
async fn token_call_revoke_call_again() {
    let s = TestServer::start(CONFIG).await;
    let t = s.client_token("svc", "svc-secret", None).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(t["token_type"], "Bearer");

    let r = s.get_bearer("/api/things", access).await;
    assert_eq!(r.status(), 200);
    let echoed: serde_json::Value = r.json().await.unwrap();
    assert_eq!(echoed["headers"]["x-oauth-client-id"], "svc");
    assert!(echoed["headers"].get("authorization").is_none());

    let r = s
        .post_form(
            "/oauth2/revoke",
            &[("authorization", &basic("svc", "svc-secret"))],
            &[("token", access)],
        )
        .await;
    assert_eq!(r.status(), 200);

    let r = s.get_bearer("/api/things", access).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));

    // The engine counted what happened.
    let m = s.edge.metrics();
    assert_eq!(
        m.tokens_issued(),
        vec![("client_credentials".to_string(), 1)]
    );
    assert_eq!(m.revocations(), 1);
    let failures: Vec<(&str, u64)> = m
        .auth_failures()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.as_str(), n))
        .collect();
    assert_eq!(failures, vec![("invalid_token", 1)]);
}
