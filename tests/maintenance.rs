//! Maintenance mode: 503 with `Retry-After` on every endpoint and route, metadata excepted,
//! switched in config or at run time.

mod common;

use common::{basic, TestServer, CONFIG};

#[tokio::test]
async fn maintenance_answers_503_with_retry_after_until_switched_off() {
    let cfg = format!("{CONFIG}\n[maintenance]\nenabled = true\nretry_after = \"90s\"\n");
    let s = TestServer::start(&cfg).await;
    assert!(s.edge.in_maintenance());

    let r = s
        .post_form(
            "/oauth2/token",
            &[("authorization", &basic("svc", "svc-secret"))],
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "90");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");

    // Passthrough too, whatever the route requires, before any credential is looked at.
    let r = s.http.get(s.url("/public/x")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "90");
    let r = s.get_bearer("/api/x", "oea_whatever").await;
    assert_eq!(r.status(), 503);

    // The metadata still answers: it changes only with the config.
    let r = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    s.edge.set_maintenance(false);
    let t = s.client_token("svc", "svc-secret", None).await;
    let r = s
        .get_bearer("/api/x", t["access_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), 200);

    s.edge.set_maintenance(true);
    let r = s
        .get_bearer("/api/x", t["access_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), 503);
}
