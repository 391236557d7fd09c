//! The IBM API Connect profile (seed `002_be24f1fa3803d95a.txt`), mounted at `/api`:
//! `POST /password/oauth2/revoke`, the client identified by HTTP Basic or by
//! `X-IBM-Client-Id`/`X-IBM-Client-Secret` given as headers or as `client_id`/`client_secret`
//! query parameters in any combination; `{"status":"success"}` on success; the document's
//! `ErrorResponse` on failure.

use bytes::Bytes;
use http::{Response, StatusCode};

use super::EndpointKind;
use crate::config::AuthMethod;
use crate::error::{ErrorCode, OAuthError};

pub(super) const ROUTES: &[(&str, EndpointKind)] =
    &[("/password/oauth2/revoke", EndpointKind::Revoke)];

pub(super) fn auth_methods(kind: EndpointKind) -> &'static [AuthMethod] {
    use AuthMethod::*;
    match kind {
        // Basic, or the X-IBM pair (headers or query parameters).
        EndpointKind::Revoke => &[ClientSecretBasic, ClientSecretHeader],
        _ => &[],
    }
}

/// `ErrorResponse`: `{"error", "error_description"}`. The document's statuses are 400, 401 and
/// 500; a store that cannot be reached is 503 `temporarily_unavailable` (one of its codes), as
/// RFC 7009 2.2.1 asks, so that a client knows the token is still valid.
pub(super) fn error(e: &OAuthError) -> Response<Bytes> {
    let mut mapped = e.clone();
    // `invalid_client` is not in the document's list; its 401 answer is `unauthorized_client`.
    if mapped.code == ErrorCode::InvalidClient {
        mapped.code = ErrorCode::UnauthorizedClient;
        mapped.status = Some(mapped.status.unwrap_or(StatusCode::UNAUTHORIZED));
    }
    super::rfc::error(&mapped)
}

/// `RevokeTokenResponse`.
pub(super) fn revoked() -> Response<Bytes> {
    crate::endpoints::json(
        StatusCode::OK,
        Bytes::from_static(br#"{"status":"success"}"#),
    )
}
