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
}
