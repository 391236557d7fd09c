//! The axum `Identity` extractor (feature `axum`): handlers get the caller's identity, an
//! anonymous route gets `None` from `Option<Identity>`, and a router without the layer, or
//! `Identity` on a route that requires nothing, says what is wrong.
#![cfg(feature = "axum")]

mod common;

use axum::routing::get;
use axum::Router;
use common::{TestServer, CONFIG};
use oauth_edge::{Identity, OAuthEdgeLayer};

async fn who(id: Identity) -> String {
    format!("{} {}", id.client_id, id.scopes)
}

async fn maybe(id: Option<Identity>) -> String {
    id.map_or("anonymous".into(), |i| i.client_id.to_string())
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn handlers_extract_the_identity() {
    // The shared test server issues the token; a second app on the same edge extracts.
    let s = TestServer::start(CONFIG).await;
    let token = s
        .client_token("svc", "svc-secret", Some("read write"))
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let app = Router::new()
        .route("/api/who", get(who))
        .route("/public/who", get(maybe))
        .route("/public/strict", get(who))
        .layer(OAuthEdgeLayer::new(s.edge.clone()));
    let base = serve(app).await;
    let http = reqwest::Client::new();

    let r = http
        .get(format!("{base}/api/who"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "svc read write");

    let r = http.get(format!("{base}/public/who")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "anonymous");

    // `Identity` on a route that requires nothing can never be had: no credentials are read
    // there. A wiring mistake, said as such; not a 401 asking for credentials.
    let r = http
        .get(format!("{base}/public/strict"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.headers().get("www-authenticate").is_none());
    assert!(r.text().await.unwrap().contains("Option<Identity>"));

    // Without a token the layer refuses before the handler runs.
    let r = http.get(format!("{base}/api/who")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_router_without_the_layer_says_so() {
    let base = serve(Router::new().route("/who", get(who))).await;
    let r = reqwest::get(format!("{base}/who")).await.unwrap();
    assert_eq!(r.status(), 500);
    assert!(r.text().await.unwrap().contains("OAuthEdgeLayer"));
}
