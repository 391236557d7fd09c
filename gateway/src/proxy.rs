//! The pingora adapter: a `ProxyHttp` over the engine's [`Edge`], kept small.
//!
//! `request_filter` answers endpoint requests itself (body read within the engine's limit and
//! the body deadline) and admits everything else; `upstream_request_filter` applies the
//! engine's forwarding plan; `logging` records metrics and one access-log line.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use http::{header, HeaderName, Response, StatusCode, Uri};
use oauth_edge::{Admission, Edge, Identity, OAuthError, Target};
use pingora::http::{IntoCaseHeaderName, RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource, ErrorType};

use crate::metrics::{Metrics, Outcome};
use crate::settings::{Limits, Settings};
use crate::upstreams::Pool;

/// The proxy.
pub(crate) struct Gateway {
    edge: Edge,
    pools: Vec<Pool>,
    /// The pool of each engine route, by route index.
    route_pool: Vec<Option<usize>>,
    limits: Limits,
    access_log: bool,
    pub(crate) metrics: Arc<Metrics>,
    /// The identity headers' names as pingora writes them on the wire, made once, in the
    /// order of the forwarding plan's values.
    identity_names: [Bytes; 3],
}

/// Per-request state.
pub(crate) struct Ctx {
    started: Instant,
    /// The engine route of a passthrough request; `None` for an endpoint.
    route: Option<usize>,
    identity: Option<Identity>,
    outcome: Outcome,
    pool: Option<usize>,
    upstream_started: Option<Instant>,
}

impl Gateway {
    pub(crate) fn new(edge: Edge, settings: &Settings, pools: Vec<Pool>) -> Self {
        let identity_names = edge.identity_headers().clone().map(wire_name);
        let routes = edge.routes();
        let route_pool = routes
            .iter()
            .map(|r| settings.upstream_for(r.upstream.as_deref()))
            .collect();
        // The metrics label of each engine route, by route index, and the endpoints' last.
        let labels = routes
            .iter()
            .map(|r| {
                let host = r.host.as_deref().unwrap_or_default();
                let path = if r.path.is_empty() {
                    "(default)"
                } else {
                    &r.path
                };
                Arc::from(format!("{host}{path}"))
            })
            .chain([Arc::from("(endpoint)")])
            .collect();
        let metrics = Arc::new(Metrics::new(
            labels,
            pools.iter().map(|p| p.name.clone()).collect(),
        ));
        Gateway {
            edge,
            pools,
            route_pool,
            limits: settings.limits.clone(),
            access_log: settings.access_log,
            metrics,
            identity_names,
        }
    }

    /// Reads an endpoint request's body within `limit` bytes and the body deadline.
    async fn read_body(&self, session: &mut Session, limit: usize) -> Result<Bytes, StatusCode> {
        let read = async {
            let mut buf = BytesMut::new();
            loop {
                match session.read_request_body().await {
                    Ok(Some(chunk)) => {
                        if buf.len() + chunk.len() > limit {
                            return Err(StatusCode::PAYLOAD_TOO_LARGE);
                        }
                        buf.extend_from_slice(&chunk);
                    }
                    Ok(None) => return Ok(buf.freeze()),
                    Err(_) => return Err(StatusCode::BAD_REQUEST),
                }
            }
        };
        match tokio::time::timeout(self.limits.body_timeout, read).await {
            Ok(r) => r,
            Err(_) => Err(StatusCode::REQUEST_TIMEOUT),
        }
    }
}

/// The bytes `insert_header` would make of `name` for the wire (the same
/// [`IntoCaseHeaderName`] conversion). Inserting by these bytes spares a copy of the name in
/// every request (measured: about 2 % of the gateway's CPU per request with auth).
fn wire_name(name: HeaderName) -> Bytes {
    Bytes::copy_from_slice(name.into_case_header_name().as_slice())
}

fn peer_ip(session: &Session) -> Option<IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

/// Whether the client connected over TLS.
fn downstream_tls(session: &Session) -> bool {
    session.digest().is_some_and(|d| d.ssl_digest.is_some())
}

/// Writes a response the engine produced.
async fn respond(session: &mut Session, resp: Response<Bytes>) -> Result<()> {
    let (parts, body) = resp.into_parts();
    let mut head = ResponseHeader::build(parts.status, Some(parts.headers.len() + 1))?;
    for (name, value) in parts.headers.iter() {
        head.append_header(name.clone(), value.clone())?;
    }
    head.insert_header(header::CONTENT_LENGTH, body.len())?;
    let empty = body.is_empty();
    session.write_response_header(Box::new(head), empty).await?;
    if !empty {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// A JSON error from the gateway itself (not an OAuth endpoint): 4xx for what the client
/// sent, 502/504 for the upstream.
fn gateway_error(
    status: StatusCode,
    error: &'static str,
    description: &'static str,
) -> Response<Bytes> {
    let body = serde_json::json!({ "error": error, "error_description": description });
    oauth_edge::json_response(status, Bytes::from(body.to_string()))
}

/// Whether the request came with both `Content-Length` and `Transfer-Encoding`, or with
/// `Content-Length` twice. Pingora drops `Content-Length` from the parsed head when
/// `Transfer-Encoding` is present, so for HTTP/1 the head as received is checked too.
fn ambiguous_framing(session: &Session) -> bool {
    let h = &session.req_header().headers;
    let lengths = h.get_all(header::CONTENT_LENGTH).iter().count();
    let chunked = h.contains_key(header::TRANSFER_ENCODING);
    if lengths > 1 || (lengths == 1 && chunked) {
        return true;
    }
    if !chunked {
        return false;
    }
    let Some(h1) = session.as_downstream().as_http1() else {
        return false;
    };
    h1.get_headers_raw_bytes()
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| line.split(|&b| b == b':').next())
        .any(|name| name.trim_ascii().eq_ignore_ascii_case(b"content-length"))
}

/// Puts the request's path and Host in canonical form ([`Edge::canonical`]). A target that
/// was not valid UTF-8 is refused; one the URI does not reproduce byte for byte (absolute
/// form) is replaced by the canonical origin form, so the bytes matched are the bytes sent.
#[allow(clippy::result_large_err)]
fn canonicalize(edge: &Edge, head: &mut RequestHeader) -> std::result::Result<(), Response<Bytes>> {
    if !head.raw_path_is_utf8() {
        return Err(gateway_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request path is not valid UTF-8",
        ));
    }
    let change = edge.canonical(head.as_ref())?;
    let not_as_sent =
        head.uri.path_and_query().map(|p| p.as_str().as_bytes()) != Some(head.raw_path());
    let uri = match change.uri {
        Some(uri) => Some(uri),
        None if not_as_sent => head.uri.path_and_query().map(|p| Uri::from(p.clone())),
        None => None,
    };
    if let Some(uri) = uri {
        head.set_uri(uri);
    }
    if let Some(host) = change.host {
        // A valid header value by construction.
        let _ = head.insert_header(http::header::HOST, host);
    }
    Ok(())
}

/// Size of a request head as it came on the wire, near enough.
fn head_size(h: &RequestHeader) -> usize {
    let line = h.method.as_str().len() + h.raw_path().len() + 12;
    line + h
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx {
            started: Instant::now(),
            route: None,
            identity: None,
            outcome: Outcome::Error,
            pool: None,
            upstream_started: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        let head = session.req_header();
        if head_size(head) > self.limits.max_header_bytes {
            ctx.outcome = Outcome::Rejected;
            let resp = gateway_error(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "invalid_request",
                "request header too large",
            );
            session.set_keepalive(None);
            respond(session, resp).await?;
            return Ok(true);
        }
        // Both framings, or two lengths, is a smuggling attempt: refuse it for every route.
        if ambiguous_framing(session) {
            ctx.outcome = Outcome::Rejected;
            session.set_keepalive(None);
            let resp = gateway_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "ambiguous message framing",
            );
            respond(session, resp).await?;
            return Ok(true);
        }
        // Routes are matched on the canonical target, and exactly that goes upstream.
        if let Err(resp) = canonicalize(&self.edge, session.req_header_mut()) {
            ctx.outcome = Outcome::Rejected;
            respond(session, resp).await?;
            return Ok(true);
        }
        let peer = peer_ip(session);
        match self.edge.classify(session.req_header().as_ref()) {
            Target::Endpoint(ep) => {
                ctx.outcome = Outcome::Endpoint;
                let resp = match self.edge.precheck(ep, session.req_header().as_ref()) {
                    Err(resp) => resp,
                    Ok(limit) => match self.read_body(session, limit).await {
                        Ok(body) => {
                            let head = session.req_header().as_ref();
                            if ep.kind.is_page() && downstream_tls(session) {
                                // The sign-in pages mark their cookies Secure over TLS.
                                let mut head = head.clone();
                                head.extensions.insert(oauth_edge::Tls);
                                self.edge.serve(ep, &head, &body, peer).await
                            } else {
                                self.edge.serve(ep, head, &body, peer).await
                            }
                        }
                        Err(StatusCode::PAYLOAD_TOO_LARGE) => {
                            session.set_keepalive(None);
                            self.edge.body_too_large(ep)
                        }
                        Err(status) => {
                            session.set_keepalive(None);
                            self.edge.endpoint_error(
                                ep,
                                &OAuthError::invalid_request(
                                    "the request body was not received in time or in full",
                                )
                                .with_status(status),
                            )
                        }
                    },
                };
                respond(session, resp).await?;
                Ok(true)
            }
            Target::Passthrough(route) => {
                ctx.route = Some(route);
                match self
                    .edge
                    .admit(route, session.req_header().as_ref(), peer)
                    .await
                {
                    Admission::Allow(identity) => {
                        ctx.identity = identity;
                        ctx.outcome = Outcome::Allowed;
                        Ok(false)
                    }
                    Admission::Deny(resp) => {
                        ctx.outcome = Outcome::Denied;
                        respond(session, resp).await?;
                        Ok(true)
                    }
                }
            }
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let pool = ctx
            .route
            .and_then(|r| self.route_pool.get(r).copied().flatten());
        let Some(pool) = pool else {
            return Error::e_explain(ErrorType::HTTPStatus(502), "no upstream for this route");
        };
        ctx.pool = Some(pool);
        match self.pools[pool].peer() {
            Some(peer) => {
                ctx.upstream_started = Some(Instant::now());
                Ok(Box::new(peer))
            }
            None => Error::e_explain(ErrorType::HTTPStatus(502), "no healthy upstream server"),
        }
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(route) = ctx.route else {
            return Ok(());
        };
        let plan = self
            .edge
            .forwarding(route, ctx.identity.as_ref(), upstream_request.as_ref());
        for name in plan.removals() {
            upstream_request.remove_header(name);
        }
        for (wire, value) in self.identity_names.iter().zip(plan.identity) {
            if let Some(v) = value {
                upstream_request.insert_header(wire.clone(), v)?;
            }
        }
        if let Some(uri) = plan.uri {
            upstream_request.set_uri(uri);
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(rate) = ctx.identity.as_ref().and_then(|i| i.rate) {
            for (name, value) in rate.headers() {
                upstream_response.insert_header(name, value)?;
            }
        }
        if let (Some(start), Some(pool)) = (ctx.upstream_started.take(), ctx.pool) {
            self.metrics.upstream_latency(pool, start.elapsed());
        }
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut Ctx) -> FailToProxy {
        let (status, error, description) = match e.etype() {
            ErrorType::HTTPStatus(code) => (
                StatusCode::from_u16(*code).unwrap_or(StatusCode::BAD_GATEWAY),
                "bad_gateway",
                "the upstream is unavailable",
            ),
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
                if e.esource() == &ErrorSource::Upstream =>
            {
                (
                    StatusCode::GATEWAY_TIMEOUT,
                    "gateway_timeout",
                    "the upstream did not answer in time",
                )
            }
            _ => match e.esource() {
                ErrorSource::Upstream => (
                    StatusCode::BAD_GATEWAY,
                    "bad_gateway",
                    "the upstream is unavailable",
                ),
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => {
                        // The client is gone; there is nobody to answer.
                        return FailToProxy {
                            error_code: 0,
                            can_reuse_downstream: false,
                        };
                    }
                    ErrorType::ReadTimedout => (
                        StatusCode::REQUEST_TIMEOUT,
                        "invalid_request",
                        "the request was not received in time",
                    ),
                    _ => (
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "malformed request",
                    ),
                },
                _ => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error",
                ),
            },
        };
        if status.is_server_error() {
            self.metrics.upstream_errors.fetch_add(1, Ordering::Relaxed);
        }
        // The connection is not reused after a failure: say so (`Connection: close`), or a
        // keep-alive client sends its next request into a closing connection.
        session.set_keepalive(None);
        if ctx.outcome == Outcome::Allowed {
            ctx.outcome = Outcome::UpstreamError;
        }
        if respond(session, gateway_error(status, error, description))
            .await
            .is_err()
        {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        FailToProxy {
            error_code: status.as_u16(),
            can_reuse_downstream: false,
        }
    }

    /// What pingora's own error lines say about a request: the method, path and host. Its
    /// default prints the query, which may carry a client secret.
    fn request_summary(&self, session: &Session, _ctx: &Ctx) -> String {
        let head = session.req_header();
        let host = head
            .headers
            .get(header::HOST)
            .map(|h| String::from_utf8_lossy(h.as_bytes()))
            .unwrap_or_default();
        format!("{} {}, Host: {host}", head.method, head.uri.path())
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut Ctx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        self.metrics.request(ctx.route, ctx.outcome, status);
        if self.access_log {
            let head = session.req_header();
            // The path only: a query may carry a client secret or a code.
            tracing::info!(
                target: "access",
                method = %head.method,
                path = head.uri.path(),
                status,
                outcome = ctx.outcome.as_str(),
                client_id = ctx.identity.as_ref().map(|i| &*i.client_id),
                ms = ctx.started.elapsed().as_secs_f64() * 1000.0,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserting by the prepared bytes puts the same bytes on the wire as inserting by name,
    /// for custom names, for a standard one and whatever the case in the config.
    #[test]
    fn wire_names_write_what_insert_header_writes() {
        for configured in ["X-Caller-Id", "from", "x-oauth-scope"] {
            let name = HeaderName::from_bytes(configured.to_ascii_lowercase().as_bytes()).unwrap();
            let wire = wire_name(name.clone());
            let value = http::HeaderValue::from_static("v");
            let mut by_name = RequestHeader::build("GET", b"/", None).unwrap();
            by_name.insert_header(name.clone(), value.clone()).unwrap();
            let mut by_wire = RequestHeader::build("GET", b"/", None).unwrap();
            by_wire.insert_header(wire, value).unwrap();
            let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
            by_name.header_to_h1_wire(&mut a);
            by_wire.header_to_h1_wire(&mut b);
            assert_eq!(a, b, "{name}");
            assert_eq!(by_wire.headers.get(&name).unwrap(), "v");
        }
    }
}
