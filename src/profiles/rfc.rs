//! The RFC profile: RFC 6749 5.2 error bodies, RFC 7009/7662 endpoints.

use bytes::Bytes;
use http::{header, HeaderValue, Response};

use super::EndpointKind;
use crate::config::AuthMethod;
use crate::error::OAuthError;

pub(super) const ROUTES: &[(&str, EndpointKind)] = &[
    ("/token", EndpointKind::Token),
    ("/revoke", EndpointKind::Revoke),
    ("/introspect", EndpointKind::Introspect),
    ("/authorize", EndpointKind::Authorize),
    ("/device_authorization", EndpointKind::DeviceAuthorization),
    ("/device", EndpointKind::DeviceVerification),
    ("/sign-out", EndpointKind::SignOut),
];

pub(super) fn auth_methods(kind: EndpointKind) -> &'static [AuthMethod] {
    use AuthMethod::*;
    match kind {
        // A token to get a token proves nothing new, so Bearer is not accepted here.
        EndpointKind::Token | EndpointKind::DeviceAuthorization => &[
            ClientSecretBasic,
            ClientSecretPost,
            ClientSecretHeader,
            None,
        ],
        EndpointKind::Revoke => &[
            ClientSecretBasic,
            ClientSecretPost,
            ClientSecretHeader,
            ClientCredentialsBearer,
            None,
        ],
        // RFC 7662 2.1: the caller must be authorised; a bare public id is not enough.
        EndpointKind::Introspect => &[
            ClientSecretBasic,
            ClientSecretPost,
            ClientSecretHeader,
            ClientCredentialsBearer,
        ],
        EndpointKind::Metadata
        | EndpointKind::Authorize
        | EndpointKind::DeviceVerification
        | EndpointKind::SignOut => &[],
    }
}

/// `{"error": …, "error_description": …}` with RFC 6749 5.2's status and headers (the
/// challenges are settled by the endpoint's profile: see [`super::challenge`]).
pub(crate) fn error(e: &OAuthError) -> Response<Bytes> {
    let body = serde_json::json!({
        "error": e.code.as_str(),
        "error_description": e.description,
    });
    let mut resp = crate::endpoints::json(e.status(), Bytes::from(body.to_string()));
    decorate(&mut resp, e);
    resp
}

/// Adds `Retry-After` where the error calls for it.
pub(crate) fn decorate(resp: &mut Response<Bytes>, e: &OAuthError) {
    if let Some(s) = e.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
}
