//! `GET /.well-known/oauth-authorization-server` (RFC 8414).

use bytes::Bytes;
use http::request::Parts;
use http::{header, Response};
use serde_json::json;

use crate::config::ProfileKind;
use crate::engine::Core;
use crate::profiles::{EndpointKind, Profile};
use crate::scope::Scopes;

pub(crate) fn metadata(edge: &Core, _profile: &Profile, head: &Parts) -> Response<Bytes> {
    let issuer = super::issuer(edge, head);
    let rfc = edge
        .profiles
        .iter()
        .find(|p| p.kind == ProfileKind::Rfc)
        .or(edge.profiles.first());
    let url = |kind| {
        rfc.and_then(|p| p.path_of(kind))
            .map(|p| format!("{issuer}{p}"))
    };
    let mut grants: Vec<&str> = vec![
        "authorization_code",
        "client_credentials",
        "password",
        "refresh_token",
        crate::grants::DEVICE_CODE,
    ];
    let mut ext: Vec<&str> = edge.extensions.keys().map(String::as_str).collect();
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
        "authorization_endpoint": url(EndpointKind::Authorize),
        "device_authorization_endpoint": url(EndpointKind::DeviceAuthorization),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": edge.config().issuer.is_some(),
        "grant_types_supported": grants,
        "response_types_supported": ["code"],
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
