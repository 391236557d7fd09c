//! `GET /.well-known/oauth-authorization-server` (RFC 8414).

use bytes::Bytes;
use http::request::Parts;
use http::{header, Response};
use serde_json::json;

use crate::config::ProfileKind;
use crate::edge::Edge;
use crate::profiles::{EndpointKind, Profile};
use crate::scope::Scopes;

pub(crate) fn metadata(edge: &Edge, _profile: &Profile, head: &Parts) -> Response<Bytes> {
    let issuer = edge.config().issuer.clone().unwrap_or_else(|| {
        let host = head
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = head.uri.scheme_str().unwrap_or("http");
        format!("{scheme}://{host}")
    });
    let rfc = edge
        .inner
        .profiles
        .iter()
        .find(|p| p.kind == ProfileKind::Rfc)
        .or(edge.inner.profiles.first());
    let url = |kind| {
        rfc.and_then(|p| p.path_of(kind))
            .map(|p| format!("{issuer}{p}"))
    };
    let mut grants: Vec<&str> = vec!["client_credentials", "password", "refresh_token"];
    let mut ext: Vec<&str> = edge.inner.extensions.keys().map(String::as_str).collect();
    ext.sort();
    grants.extend(ext);
    let scopes = Scopes::from_iter(edge.config().clients.iter().flat_map(|c| c.scopes.iter()));
    let methods = |kind| -> Vec<&'static str> {
        rfc.map(|p| p.auth_methods(kind).iter().map(|m| m.as_str()).collect())
            .unwrap_or_default()
    };
    let body = json!({
        "issuer": issuer,
        "token_endpoint": url(EndpointKind::Token),
        "revocation_endpoint": url(EndpointKind::Revoke),
        "introspection_endpoint": url(EndpointKind::Introspect),
        "grant_types_supported": grants,
        "response_types_supported": [],
        "scopes_supported": scopes.iter().collect::<Vec<_>>(),
        "token_endpoint_auth_methods_supported": methods(EndpointKind::Token),
        "revocation_endpoint_auth_methods_supported": methods(EndpointKind::Revoke),
        "introspection_endpoint_auth_methods_supported": methods(EndpointKind::Introspect),
    });
    let mut r = super::ok_json(&body);
    // Metadata is public and changes only with the config.
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("public, max-age=300"),
    );
    r.headers_mut().remove(header::PRAGMA);
    r
}
