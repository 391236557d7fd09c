//! An axum API protected by oauth-edge.
//!
//! ```sh
//! cargo run --example axum_app --features axum
//! curl -s -u demo:demo-secret -d grant_type=client_credentials localhost:3000/oauth2/token
//! curl -s -H "Authorization: Bearer $TOKEN" localhost:3000/hello
//! ```

use axum::{routing::get, Router};
use oauth_edge::{Config, Edge, Identity, OAuthEdgeLayer};

const CONFIG: &str = r#"
[store]
kind = "sqlite"
path = "axum-example.db"

[[clients]]
id = "demo"
secret = "demo-secret"          # plain text is for local use; it logs a warning
grants = ["client_credentials"]
scopes = ["hello"]

[[routes]]
path = "/hello"
require = "bearer"
scopes = ["hello"]
"#;

/// Only called for requests the edge admitted: the caller is known.
async fn hello(who: Identity) -> String {
    format!("hello, {} (scope: {})\n", who.client_id, who.scopes)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let edge = Edge::new(Config::from_toml(CONFIG)?).await?;
    let app = Router::new()
        .route("/hello", get(hello))
        .layer(OAuthEdgeLayer::new(edge));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://127.0.0.1:3000");
    axum::serve(listener, app).await?;
    Ok(())
}
