//! The NPR One profile (seeds `000_44f497de361c62d8.txt` and `001_3fb84a532f4dfecb.txt`),
//! mounted at `/authorization/v2`: `POST /token` with every grant NPR lists, `POST
//! /token/revoke` authenticated by a `client_credentials` Bearer token of the same client,
//! `GET /authorize` with NPR's `?error=…&message=…` redirects, and `POST /device`.

use bytes::Bytes;
use http::{Response, StatusCode};

use super::EndpointKind;
use crate::config::AuthMethod;
use crate::error::{ErrorCode, OAuthError};

pub(super) const ROUTES: &[(&str, EndpointKind)] = &[
    ("/token", EndpointKind::Token),
    ("/token/revoke", EndpointKind::Revoke),
    ("/authorize", EndpointKind::Authorize),
    ("/device", EndpointKind::DeviceAuthorization),
];

pub(super) fn auth_methods(kind: EndpointKind) -> &'static [AuthMethod] {
    use AuthMethod::*;
    match kind {
        // `client_id` and `client_secret` are "required for all grant types"; Basic is what
        // RFC 6749 2.3.1 makes every server accept.
        EndpointKind::Token | EndpointKind::DeviceAuthorization => {
            &[ClientSecretPost, ClientSecretBasic]
        }
        // "A client_credentials access token from the same client application as the token
        // being revoked."
        EndpointKind::Revoke => &[ClientCredentialsBearer],
        _ => &[],
    }
}

/// RFC 6749 5.2 bodies with NPR's statuses: 401 when "the user credentials were invalid
/// (password grant type), the user has not yet logged in or has purposely denied the request
/// (device_code grant type), or the authorization server denied the request"; 403 when "the
/// client associated with the access token in the header does not own the access token".
pub(crate) fn error(e: &OAuthError) -> Response<Bytes> {
    let mut e = e.clone();
    if e.status.is_none() {
        e.status = match e.code {
            ErrorCode::InvalidGrant | ErrorCode::AuthorizationPending | ErrorCode::AccessDenied => {
                Some(StatusCode::UNAUTHORIZED)
            }
            ErrorCode::UnauthorizedClient => Some(StatusCode::FORBIDDEN),
            _ => None,
        };
    }
    super::rfc::error(&e)
}
