//! `POST …/revoke` (RFC 7009).

use bytes::Bytes;
use http::Response;

use super::Request;
use crate::error::{ErrorCode, OAuthError};
use crate::profiles::EndpointKind;
use crate::tokens::TokenKind;

pub(crate) async fn revoke(req: Request<'_>) -> Result<Response<Bytes>, OAuthError> {
    let auth = req
        .edge
        .authenticate_client(
            req.head,
            req.params,
            req.profile.auth_methods(EndpointKind::Revoke),
            req.profile.query_credentials(),
            req.peer,
        )
        .await?;
    // RFC 7009 2.1 / RFC 7662 2.1: the token is in the body; one in the URI would be logged
    // by every proxy on the way, so it does not count.
    let token = req
        .params
        .body("token")
        .ok_or_else(|| OAuthError::invalid_request("missing parameter: token"))?;
    // The hint only speeds up a lookup elsewhere; our tokens carry their kind, so every kind
    // is found whatever the hint says (RFC 7009 2.1). A hint naming a kind this endpoint
    // cannot revoke is `unsupported_token_type` (2.2.1).
    match req.params.get(req.profile.hint_param()) {
        None | Some("access_token") | Some("refresh_token") => {}
        Some(_) => return Err(unsupported()),
    }
    let Ok((kind, hash)) = req.edge.codec().verify(token) else {
        // Not a token of ours: there is nothing to revoke, and 2.2 says answer 200.
        return Ok(req.profile.revoked());
    };
    if !matches!(kind, TokenKind::Access | TokenKind::Refresh) {
        return Err(unsupported());
    }
    // Read the store, not the cache: the answer must reflect what is durable.
    let Some(record) = req.edge.store().find(&hash).await? else {
        return Ok(req.profile.revoked());
    };
    if *record.client_id != *auth.client.id {
        // 2.1: the token must belong to the requesting client. The answer names nobody.
        return Err(OAuthError::unauthorized_client(
            "the token was not issued to this client",
        ));
    }
    if !record.revoked {
        req.edge.revoke_family(record.family, Some(hash)).await?;
    }
    Ok(req.profile.revoked())
}

fn unsupported() -> OAuthError {
    OAuthError::new(
        ErrorCode::UnsupportedTokenType,
        "only access and refresh tokens can be revoked here",
    )
}
