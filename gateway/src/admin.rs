//! The admin API, on its own listener (127.0.0.1 by default).
//!
//! `/healthz`, `/readyz` and `/metrics` are open. Everything under `/admin` requires
//! `Authorization: Bearer <gateway.admin.token>`, and answers 403 while no token is set.
//!
//! | route | answers |
//! |---|---|
//! | `GET /admin/clients` | 200, every client (stored, then the config file's), never a secret |
//! | `POST /admin/clients` | 201 `{"id", "client_secret"}` (the secret once, confidential clients only) |
//! | `GET /admin/clients/{id}` | 200 the client, or 404 |
//! | `DELETE /admin/clients/{id}` | 204 (its tokens are revoked at once), 404, or 409 for a config-file client |
//! | `POST /admin/clients/{id}/rotate-secret` | 200 `{"id", "client_secret"}`, 404, 400 for a public client |
//! | `POST /admin/revoke` | 200 `{"revoked_families": n}` for `{"client_id"}` and/or `{"user"}` |
//!
//! Errors are JSON `{"error", "error_description"}`: 400 for what the caller sent, 503 with
//! `Retry-After` when the store fails. Client operations are the engine's
//! [`ClientAdmin`](oauth_edge::clients::ClientAdmin), which the `oauth-edge client …` commands
//! run too. Only ids are logged, never a secret or the token.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use oauth_edge::store::StoreError;
use oauth_edge::Edge;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::clients;
use crate::metrics::Metrics;
use crate::settings;
use oauth_edge::clients::{ClientAdminError, ClientView};

/// The challenge of a 401 from `/admin`.
const CHALLENGE: &str = r#"Bearer realm="oauth-edge-admin""#;

/// Largest `/admin` request body. The bodies are a few small fields.
const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) edge: Edge,
    pub(crate) metrics: Arc<Metrics>,
    /// BLAKE3 of the admin token. A presented token is hashed and the two fixed-length
    /// digests compared in constant time, so timing reveals neither the token nor its length.
    token: Option<blake3::Hash>,
}

impl AdminState {
    pub(crate) fn new(edge: Edge, metrics: Arc<Metrics>, settings: &settings::Admin) -> Self {
        AdminState {
            edge,
            metrics,
            token: settings
                .token
                .as_ref()
                .map(|t| blake3::hash(t.expose().as_bytes())),
        }
    }
}

/// Serves the admin API until shutdown.
pub(crate) struct AdminService {
    state: AdminState,
    listener: std::sync::Mutex<Option<std::net::TcpListener>>,
}

impl AdminService {
    pub(crate) fn new(
        edge: Edge,
        metrics: Arc<Metrics>,
        settings: settings::Admin,
        listener: std::net::TcpListener,
    ) -> Self {
        AdminService {
            state: AdminState::new(edge, metrics, &settings),
            listener: std::sync::Mutex::new(Some(listener)),
        }
    }
}

pub(crate) fn router(state: AdminState) -> Router {
    let admin = Router::new()
        .route("/clients", get(list_clients).post(create_client))
        .route("/clients/{id}", get(show_client).delete(delete_client))
        .route("/clients/{id}/rotate-secret", post(rotate_secret))
        .route("/revoke", post(revoke))
        .route("/maintenance", get(maintenance).put(set_maintenance))
        .route("/login/accept", post(accept_login))
        .route("/login/reject", post(reject_login))
        .fallback(|| async { ApiError::NotFound("no such admin route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // Outermost, and over the fallbacks too: without the token nothing under /admin
        // answers, not even whether a route exists.
        .layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .nest("/admin", admin)
        .with_state(state)
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    // Ready when the store answers a read: a probe writes nothing.
    match s.edge.store().ping().await {
        Ok(_) => (StatusCode::OK, "ready\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n"),
    }
}

async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(&s.edge),
    )
}

/// Lets a request through to `/admin` only with the admin token.
async fn authorize(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    let mut resp = match s.token {
        None => ApiError::Disabled.into_response(),
        Some(expected) => match bearer(req.headers()) {
            Some(t) if blake3::hash(t.as_bytes()) == expected => next.run(req).await,
            _ => {
                // The path as nested, under /admin; never the header itself.
                tracing::warn!(
                    path = %format_args!("/admin{}", req.uri().path()),
                    "admin API: request without the admin token"
                );
                ApiError::Unauthorized.into_response()
            }
        },
    };
    // Answers carry client secrets; nothing here is for a cache.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The token of the one `Authorization: Bearer` header (scheme in any case), if that is what
/// was sent.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Why an admin request failed, and its JSON answer.
#[derive(Debug)]
enum ApiError {
    Unauthorized,
    Disabled,
    Invalid(String),
    NotFound(&'static str),
    MethodNotAllowed,
    Conflict(String),
    TooLarge,
    Unavailable,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::Unauthorized => {
                (StatusCode::UNAUTHORIZED, json!({ "error": "unauthorized" }))
            }
            ApiError::Disabled => (
                StatusCode::FORBIDDEN,
                json!({ "error": "admin API disabled: set gateway.admin.token" }),
            ),
            ApiError::Invalid(d) => (
                StatusCode::BAD_REQUEST,
                json!({ "error": "invalid_request", "error_description": d }),
            ),
            ApiError::NotFound(d) => (
                StatusCode::NOT_FOUND,
                json!({ "error": "not_found", "error_description": d }),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({ "error": "method_not_allowed" }),
            ),
            ApiError::Conflict(d) => (
                StatusCode::CONFLICT,
                json!({ "error": "conflict", "error_description": d }),
            ),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": "invalid_request", "error_description": "request body too large" }),
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({
                    "error": "temporarily_unavailable",
                    "error_description": "the store is unavailable; nothing was changed unless a retry says so",
                }),
            ),
        };
        let mut resp = (status, Json(body)).into_response();
        let h = resp.headers_mut();
        match self {
            ApiError::Unauthorized => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE),
                );
            }
            ApiError::Unavailable => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "admin API: store failure");
        ApiError::Unavailable
    }
}

impl From<ClientAdminError> for ApiError {
    fn from(e: ClientAdminError) -> Self {
        match e {
            ClientAdminError::Invalid(d) => ApiError::Invalid(d),
            ClientAdminError::NotFound => ApiError::NotFound("no such client"),
            ClientAdminError::Conflict(d) => ApiError::Conflict(d),
            ClientAdminError::Store(e) => e.into(),
        }
    }
}

/// A JSON body, refused as JSON: 400 when it is not the expected JSON, 413 past
/// [`MAX_BODY`]. Any content type is read as JSON: the bearer token already keeps browsers
/// from sending these requests across sites.
struct JsonBody<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::Invalid("the request body could not be read".into())
            }
        })?;
        let invalid = |e: serde_json::Error| {
            ApiError::Invalid(format!("the body is not the expected JSON: {e}"))
        };
        // An object, named fields: serde would also take the fields of a struct in order
        // from an array.
        match serde_json::from_slice(&bytes).map_err(invalid)? {
            v @ serde_json::Value::Object(_) => T::deserialize(v).map(JsonBody).map_err(invalid),
            _ => Err(ApiError::Invalid("the body must be a JSON object".into())),
        }
    }
}

fn client_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|_| ApiError::Invalid("the client id in the path is not valid UTF-8".into()))
}

async fn list_clients(State(s): State<AdminState>) -> Result<Json<Vec<ClientView>>, ApiError> {
    Ok(Json(s.edge.client_admin().list().await?))
}

async fn show_client(
    State(s): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ClientView>, ApiError> {
    let id = client_id(path)?;
    Ok(Json(s.edge.client_admin().show(&id).await?))
}

async fn create_client(
    State(s): State<AdminState>,
    JsonBody(c): JsonBody<clients::NewClient>,
) -> Result<Response, ApiError> {
    let id = c.id.clone();
    let secret = s.edge.client_admin().create(c.into_config()).await?;
    tracing::info!(client_id = %id, public = secret.is_none(), "admin API: client created");
    let mut body = json!({ "id": id });
    if let Some(secret) = secret {
        body["client_secret"] = secret.expose().into();
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn delete_client(
    State(s): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = client_id(path)?;
    let revoked = s.edge.client_admin().remove(&id).await?;
    tracing::info!(client_id = %id, revoked_families = revoked, "admin API: client deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_secret(
    State(s): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = client_id(path)?;
    let secret = s.edge.client_admin().rotate_secret(&id).await?;
    tracing::info!(client_id = %id, "admin API: client secret rotated");
    Ok(Json(json!({ "id": id, "client_secret": secret.expose() })))
}

/// The body of `PUT /admin/maintenance`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Maintenance {
    enabled: bool,
}

async fn maintenance(State(s): State<AdminState>) -> Json<serde_json::Value> {
    Json(json!({ "enabled": s.edge.in_maintenance() }))
}

async fn set_maintenance(
    State(s): State<AdminState>,
    JsonBody(m): JsonBody<Maintenance>,
) -> Json<serde_json::Value> {
    s.edge.set_maintenance(m.enabled);
    tracing::warn!(enabled = m.enabled, "admin API: maintenance mode");
    Json(json!({ "enabled": s.edge.in_maintenance() }))
}

/// The body of `POST /admin/login/accept` and `/admin/login/reject`: the login app settles a
/// `login_challenge` the edge sent it (`authorization.login_url`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginDecision {
    login_challenge: String,
    /// The user who signed in (accept only).
    #[serde(default)]
    user: Option<String>,
}

async fn accept_login(
    State(s): State<AdminState>,
    JsonBody(d): JsonBody<LoginDecision>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user = d
        .user
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::Invalid("give the user who signed in".into()))?;
    let to = s
        .edge
        .accept_login(&d.login_challenge, &user)
        .map_err(|e| ApiError::Invalid(e.description.into_owned()))?;
    tracing::info!(%user, "admin API: login accepted");
    Ok(Json(json!({ "redirect_to": to })))
}

async fn reject_login(
    State(s): State<AdminState>,
    JsonBody(d): JsonBody<LoginDecision>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if d.user.is_some() {
        return Err(ApiError::Invalid("a rejection names no user".into()));
    }
    let to = s
        .edge
        .reject_login(&d.login_challenge)
        .map_err(|e| ApiError::Invalid(e.description.into_owned()))?;
    tracing::info!("admin API: login rejected");
    Ok(Json(json!({ "redirect_to": to })))
}

/// The body of `POST /admin/revoke`. Both: that user's tokens at that client.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    user: Option<String>,
}

async fn revoke(
    State(s): State<AdminState>,
    JsonBody(r): JsonBody<RevokeRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // An empty string counts as absent, as for OAuth parameters.
    let client_id = r.client_id.filter(|c| !c.is_empty());
    let user = r.user.filter(|u| !u.is_empty());
    if client_id.is_none() && user.is_none() {
        return Err(ApiError::Invalid("give client_id, user or both".into()));
    }
    let n = s
        .edge
        .revoke_all(client_id.as_deref(), user.as_deref())
        .await?;
    tracing::info!(
        ?client_id,
        ?user,
        revoked_families = n,
        "admin API: tokens revoked"
    );
    Ok(Json(json!({ "revoked_families": n })))
}

#[async_trait]
impl BackgroundService for AdminService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(std_listener) = self.listener.lock().ok().and_then(|mut l| l.take()) else {
            return;
        };
        let listener = match tokio::net::TcpListener::from_std(std_listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "admin listener");
                return;
            }
        };
        let app = router(self.state.clone());
        let stop = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "admin API stopped");
        }
    }
}

#[cfg(test)]
mod tests {
    use oauth_edge::store::testing::TestStore;
    use oauth_edge::{Config, Secret};
    use serde_json::Value;

    use super::*;

    const TOKEN: &str = "the-admin-token";

    /// The admin router on a local port, over a store the test can take down.
    async fn serve(token: Option<&str>) -> (String, Arc<TestStore>) {
        let config = Config::from_toml(
            "[store]\nkind = \"memory\"\n[[clients]]\nid = \"cfg\"\nsecret = \"s\"\n",
        )
        .expect("config");
        let store = Arc::new(TestStore::default());
        let edge = Edge::builder(config)
            .store(store.clone())
            .build()
            .await
            .expect("edge");
        let settings = settings::Admin {
            token: token.map(Secret::new),
            ..settings::Admin::default()
        };
        let state = AdminState::new(
            edge,
            Arc::new(crate::metrics::Metrics::new(Vec::new(), Vec::new())),
            &settings,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        (format!("http://{addr}"), store)
    }

    async fn call(
        base: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{base}{path}"))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = StatusCode::from_u16(r.status().as_u16()).expect("status");
        let headers = r.headers().clone();
        let body = r.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    #[tokio::test]
    async fn a_store_failure_is_503_with_retry_after() {
        let (base, store) = serve(Some(TOKEN)).await;
        let (status, _, created) = call(
            &base,
            reqwest::Method::POST,
            "/admin/clients",
            Some(json!({ "id": "a" })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let secret = created["client_secret"]
            .as_str()
            .expect("secret")
            .to_string();
        store.set_down(true);
        for (method, path, body) in [
            (reqwest::Method::GET, "/admin/clients", None),
            (
                reqwest::Method::POST,
                "/admin/clients",
                Some(json!({ "id": "b" })),
            ),
            (reqwest::Method::GET, "/admin/clients/a", None),
            (reqwest::Method::DELETE, "/admin/clients/a", None),
            (
                reqwest::Method::POST,
                "/admin/clients/a/rotate-secret",
                None,
            ),
            (
                reqwest::Method::POST,
                "/admin/revoke",
                Some(json!({ "client_id": "a" })),
            ),
        ] {
            let (status, headers, body) = call(&base, method.clone(), path, body).await;
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method} {path}");
            assert_eq!(headers[header::RETRY_AFTER], "1", "{method} {path}");
            assert_eq!(body["error"], "temporarily_unavailable");
            assert!(!body.to_string().contains("down for the test"));
        }
        // What the caller sent is still judged first: 400, not 503.
        let (status, _, _) = call(
            &base,
            reqwest::Method::POST,
            "/admin/clients",
            Some(json!({ "id": "c", "scopes": ["a\"b"] })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let r = reqwest::get(format!("{base}/readyz"))
            .await
            .expect("readyz");
        assert_eq!(r.status().as_u16(), 503);

        // Nothing half-done: back up, the client and its secret are as they were.
        store.set_down(false);
        let (status, _, shown) = call(&base, reqwest::Method::GET, "/admin/clients/a", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!shown.to_string().contains(&secret));
        let (status, _, _) = call(&base, reqwest::Method::GET, "/admin/clients/b", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn without_a_token_admin_is_403_and_the_rest_open() {
        let (base, _) = serve(None).await;
        let (status, _, body) = call(&base, reqwest::Method::GET, "/admin/clients", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body,
            json!({ "error": "admin API disabled: set gateway.admin.token" })
        );
        for path in ["/healthz", "/readyz", "/metrics"] {
            let r = reqwest::get(format!("{base}{path}")).await.expect(path);
            assert_eq!(r.status().as_u16(), 200, "{path}");
        }
    }

    #[test]
    fn the_bearer_token_is_read_strictly() {
        let headers = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(
                    header::AUTHORIZATION,
                    HeaderValue::from_str(v).expect("value"),
                );
            }
            h
        };
        assert_eq!(bearer(&headers(&["Bearer abc"])), Some("abc"));
        assert_eq!(bearer(&headers(&["bEARER  abc"])), Some("abc"));
        assert_eq!(bearer(&headers(&["Bearer "])), None);
        assert_eq!(bearer(&headers(&["Bearer"])), None);
        assert_eq!(bearer(&headers(&["Basic abc"])), None);
        assert_eq!(bearer(&headers(&["Bearer abc", "Bearer abc"])), None);
        assert_eq!(bearer(&headers(&[])), None);
    }
}
