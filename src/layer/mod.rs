//! The tower adapter: [`OAuthEdgeLayer`] puts an [`Edge`](crate::Edge) in front of any
//! tower service (an axum `Router`, a hyper service).
//!
//! Endpoint requests are answered by the layer; every other request is admitted and passed
//! on with the caller's [`Identity`](crate::Identity) in its extensions and the identity
//! headers set, or answered with the rejection. A rejection is a response, never an error, so
//! the service keeps `type Error = S::Error` and the connection is never dropped unanswered.
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use oauth_edge::{Config, Edge, OAuthEdgeLayer};
//! use tower::{Service, ServiceExt};
//!
//! let mut config = Config::from_toml(r#"[store]
//! kind = "memory""#)?;
//! let edge = Edge::new(config).await?;
//! let app = tower::service_fn(|_req: http::Request<http_body_util::Empty<bytes::Bytes>>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
//! });
//! let mut svc = tower::ServiceBuilder::new().layer(OAuthEdgeLayer::new(edge)).service(app);
//! let req = http::Request::get("/api/things").body(http_body_util::Empty::new())?;
//! let resp = svc.ready().await?.call(req).await?;
//! assert_eq!(resp.status(), 401); // no bearer token
//! # Ok(()) }
//! # tokio::runtime::Runtime::new().unwrap().block_on(run()).unwrap();
//! ```

mod body;
#[cfg(feature = "axum")]
mod extract;
mod future;
mod service;

pub use body::ResponseBody;
#[cfg(feature = "axum")]
pub use extract::IdentityRejection;
pub use future::ResponseFuture;
pub use service::{OAuthEdge, OAuthEdgeLayer, PeerAddr};
