//! A real server for end-to-end tests: an axum app behind `OAuthEdgeLayer`, listening on
//! 127.0.0.1, driven with reqwest. The app echoes what reached it, so tests can see exactly
//! what the layer forwarded.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::Router;
use base64::Engine as _;
use oauth_edge::store::Store;
use oauth_edge::{Config, Edge, Identity, OAuthEdgeLayer};
use serde_json::{json, Value};

/// The config most tests use: a memory store, a few clients, a user, and routes of every
/// kind.
pub const CONFIG: &str = r#"
issuer = "http://auth.test"
[store]
kind = "memory"

[[clients]]
id = "svc"
secret = "svc-secret"
grants = ["client_credentials", "password", "refresh_token", "temporary_user", "anonymous_user"]
scopes = ["read", "write", "admin"]
default_scopes = ["read"]

[[clients]]
id = "other"
secret = "other-secret"
grants = ["client_credentials", "password", "refresh_token"]
scopes = ["read", "write"]

[[clients]]
id = "app"
public = true
grants = ["password", "refresh_token"]
scopes = ["read", "write"]

[[clients]]
id = "basic-only"
secret = "basic-secret"
auth_methods = ["client_secret_basic"]
scopes = ["read"]

[[clients]]
id = "rs"
secret = "rs-secret"
introspect = true
scopes = ["read"]

[[users]]
username = "alice"
password = "wonderland"

[[users]]
username = "bob"
password = "builder"
scopes = ["read"]

[[routes]]
path = "/api"
require = "bearer"

[[routes]]
path = "/api/admin"
require = "bearer"
scopes = ["admin"]

[[routes]]
path = "/client"
require = "client"

[[routes]]
path = "/either"
require = "either"

[[routes]]
path = "/public"
require = "none"

[[routes]]
path = "/keep"
require = "bearer"
forward_bearer = true
"#;

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    pub edge: Edge,
    pub http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Starts a server with `config` (TOML).
    pub async fn start(config: &str) -> TestServer {
        let config = Config::from_toml(config).expect("test config");
        Self::with_edge(Edge::new(config).await.expect("edge")).await
    }

    /// Starts a server with `config` over `store`.
    pub async fn with_store(config: &str, store: Arc<dyn Store>) -> TestServer {
        Self::built(config, |b| b.store(store)).await
    }

    /// Starts a server with `config` whose engine reads `clock` for what "now" is.
    pub async fn with_clock(
        config: &str,
        clock: Arc<oauth_edge::clock::ManualClock>,
    ) -> TestServer {
        Self::built(config, |b| b.clock(clock)).await
    }

    /// Starts a server with `config` and whatever `parts` gives the builder.
    pub async fn built(
        config: &str,
        parts: impl FnOnce(oauth_edge::EdgeBuilder) -> oauth_edge::EdgeBuilder,
    ) -> TestServer {
        let config = Config::from_toml(config).expect("test config");
        let edge = parts(Edge::builder(config)).build().await.expect("edge");
        Self::with_edge(edge).await
    }

    /// Starts a server in front of an echo app.
    pub async fn with_edge(edge: Edge) -> TestServer {
        let app = Router::new()
            .fallback(echo)
            .layer(OAuthEdgeLayer::new(edge.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        TestServer {
            addr,
            edge,
            http: reqwest::Client::new(),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs a form to `path` with extra headers.
    pub async fn post_form(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// `client_credentials` with Basic; returns the token response.
    pub async fn client_token(&self, id: &str, secret: &str, scope: Option<&str>) -> Value {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let r = self
            .post_form(
                "/oauth2/token",
                &[("authorization", &basic(id, secret))],
                &form,
            )
            .await;
        assert_eq!(r.status(), 200, "client_credentials for {id}");
        r.json().await.unwrap()
    }

    /// `password` grant for a confidential client via Basic.
    pub async fn password_token(&self, id: &str, secret: &str, user: &str, pw: &str) -> Value {
        let r = self
            .post_form(
                "/oauth2/token",
                &[("authorization", &basic(id, secret))],
                &[
                    ("grant_type", "password"),
                    ("username", user),
                    ("password", pw),
                ],
            )
            .await;
        assert_eq!(r.status(), 200, "password grant for {user}");
        r.json().await.unwrap()
    }

    /// GET `path` with a bearer token; returns the response.
    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// `Basic base64(id:secret)` (ids and secrets here need no form-encoding).
pub fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// The echo app: what reached it, as JSON.
async fn echo(req: Request) -> axum::Json<Value> {
    let headers: serde_json::Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("<binary>"))))
        .collect();
    let identity = req.extensions().get::<Identity>().map(|i| {
        json!({
            "client_id": &*i.client_id,
            "user": i.user.as_deref(),
            "scope": i.scopes.as_str(),
        })
    });
    axum::Json(json!({
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "headers": headers,
        "identity": identity,
    }))
}

/// A store that can be switched off: every call fails with `Unavailable` while it is down.
/// Stands in for a database that cannot be reached.
pub type FlakyStore = oauth_edge::store::testing::TestStore;
