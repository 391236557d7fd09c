//! The endpoints the edge answers itself: form in, `http::Response` out.

mod device;
mod introspect;
mod metadata;
mod revoke;
mod token;

pub(crate) use device::device_authorization;
pub(crate) use introspect::introspect;
pub(crate) use metadata::metadata;
pub(crate) use revoke::revoke;
pub(crate) use token::token;

use std::net::IpAddr;

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Response, StatusCode};

use crate::engine::Core;
use crate::params::Params;
use crate::profiles::Profile;

/// One endpoint request, parsed.
pub(crate) struct Request<'a> {
    pub(crate) edge: &'a Core,
    pub(crate) profile: &'a Profile,
    pub(crate) head: &'a Parts,
    pub(crate) params: &'a Params,
    pub(crate) peer: Option<IpAddr>,
}

/// A JSON response with RFC 6749 5.1's `Cache-Control: no-store` and `Pragma: no-cache`.
pub fn json(status: StatusCode, body: Bytes) -> Response<Bytes> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// A 200 JSON response of `value`.
pub(crate) fn ok_json(value: &serde_json::Value) -> Response<Bytes> {
    json(StatusCode::OK, Bytes::from(value.to_string()))
}

/// The issuer: configured, or derived from the request's `Host` and scheme.
pub(crate) fn issuer(edge: &Core, head: &Parts) -> String {
    edge.config().issuer.clone().unwrap_or_else(|| {
        let host = head
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(head.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let tls = head.uri.scheme_str() == Some("https")
            || head.extensions.get::<crate::engine::Tls>().is_some();
        format!("{}://{host}", if tls { "https" } else { "http" })
    })
}
