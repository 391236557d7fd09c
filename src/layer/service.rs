use std::net::SocketAddr;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use tower_layer::Layer;
use tower_service::Service;

use super::{ResponseBody, ResponseFuture};
use crate::admission::Admission;
use crate::edge::{Edge, Endpoint, Target};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The caller's socket address, for per-source throttling of failed client
/// authentication. Insert it into request extensions (axum's `ConnectInfo` is also read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Marks a request that went through the layer anonymously, so the axum extractor can tell
/// "no identity" from "no layer"; an admitted caller's [`Identity`](crate::Identity) marks it too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admitted;

/// Applies [`OAuthEdge`] to a service.
#[derive(Debug, Clone)]
pub struct OAuthEdgeLayer {
    edge: Edge,
}

impl OAuthEdgeLayer {
    /// A layer over `edge`.
    pub fn new(edge: Edge) -> Self {
        OAuthEdgeLayer { edge }
    }
}

impl<S> Layer<S> for OAuthEdgeLayer {
    type Service = OAuthEdge<S>;

    fn layer(&self, inner: S) -> OAuthEdge<S> {
        OAuthEdge {
            inner,
            edge: self.edge.clone(),
        }
    }
}

/// The middleware: answers OAuth2 endpoints, admits everything else.
#[derive(Debug, Clone)]
pub struct OAuthEdge<S> {
    inner: S,
    edge: Edge,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OAuthEdge<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready goes into the future; a clone stays behind.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let edge = self.edge.clone();
        let (mut parts, body) = req.into_parts();
        // Routes are matched on the canonical path, and the inner service gets that path.
        match edge.canonical(&parts) {
            Ok(c) => c.apply(&mut parts),
            Err(resp) => return ResponseFuture::endpoint(Box::pin(std::future::ready(resp))),
        }
        match edge.classify(&parts) {
            Target::Endpoint(ep) => ResponseFuture::endpoint(Box::pin(async move {
                let peer = peer(&parts.extensions);
                serve_endpoint(&edge, ep, parts, body, peer).await
            })),
            // A cached token (or a route that needs none) is admitted in place: the inner
            // service is called at once, and no admission future is made.
            Target::Passthrough(route) => match edge.admit_now(route, &parts) {
                Some(Admission::Allow(identity)) => {
                    let rate = identity.as_ref().and_then(|i| i.rate);
                    let req = admitted(&edge, route, identity, parts, body);
                    let mut inner = inner;
                    ResponseFuture::calling(inner.call(req), rate)
                }
                Some(Admission::Deny(resp)) => {
                    ResponseFuture::endpoint(Box::pin(std::future::ready(resp)))
                }
                None => ResponseFuture::admitting(
                    Box::pin(async move {
                        match edge.admit(route, &parts, peer(&parts.extensions)).await {
                            Admission::Allow(identity) => {
                                Ok(admitted(&edge, route, identity, parts, body))
                            }
                            Admission::Deny(resp) => Err(resp),
                        }
                    }),
                    inner,
                ),
            },
        }
    }
}

async fn serve_endpoint<B>(
    edge: &Edge,
    ep: Endpoint,
    parts: http::request::Parts,
    body: B,
    peer: Option<std::net::IpAddr>,
) -> Response<Bytes>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let limit = match edge.precheck(ep, &parts) {
        Ok(limit) => limit,
        Err(resp) => return resp,
    };
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return edge.body_too_large(ep),
        Err(_) => {
            return crate::profiles::rfc_error(&crate::error::OAuthError::invalid_request(
                "the request body could not be read",
            ))
        }
    };
    edge.serve(ep, &parts, &bytes, peer).await
}

/// The admitted request as the inner service gets it: forwarded (secrets out, identity
/// headers in) and marked for the handler with its [`Identity`](crate::Identity), or, for an
/// anonymous caller, [`Admitted`] (one extension either way).
fn admitted<B>(
    edge: &Edge,
    route: usize,
    identity: Option<crate::Identity>,
    mut parts: http::request::Parts,
    body: B,
) -> Request<B> {
    edge.forward(route, identity.as_ref(), &mut parts);
    match identity {
        Some(id) => {
            parts.extensions.insert(id);
        }
        None => {
            parts.extensions.insert(Admitted);
        }
    }
    Request::from_parts(parts, body)
}

fn peer(ext: &http::Extensions) -> Option<std::net::IpAddr> {
    if let Some(p) = ext.get::<PeerAddr>() {
        return Some(p.0.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(c) = ext.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(c.0.ip());
    }
    None
}
