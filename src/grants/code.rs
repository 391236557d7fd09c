//! `authorization_code` (RFC 6749 4.1.3, RFC 7636 4.5-4.6): the code is single use, bound to
//! its client, its `redirect_uri` and its PKCE challenge; a reused code revokes the family it
//! issued (RFC 6749 4.1.2), through the same atomic consume as refresh rotation.

use super::{consume_and_issue, Decision, Issued};
use crate::clients::Client;
use crate::engine::Core;
use crate::error::OAuthError;
use crate::params::Params;
use crate::store::Rotation;
use crate::tokens::TokenKind;

pub(crate) async fn authorization_code(
    edge: &Core,
    client: &Client,
    params: &Params,
) -> Result<Issued, OAuthError> {
    let invalid = || OAuthError::invalid_grant("invalid authorization code");
    let (hash, record) = super::presented(
        edge,
        client,
        params,
        "code",
        TokenKind::Code,
        "invalid authorization code",
    )
    .await?;
    let binding = edge
        .store()
        .code_binding(&hash)
        .await?
        .ok_or_else(invalid)?;
    // RFC 6749 4.1.3: the same redirect_uri as the authorization request, when it named one.
    match (&binding.redirect_uri, params.get("redirect_uri")) {
        (Some(bound), Some(sent)) if bound == sent => {}
        (Some(_), None) => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is required: the authorization request named one",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ))
        }
        (None, None) => {}
        // The request named none, so the client's only registered URI was used.
        (None, Some(sent))
            if client.redirect_uris.len() == 1 && client.redirect_uris[0] == sent => {}
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ))
        }
    }
    match (&binding.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            if !crate::pkce::verify(verifier, challenge) {
                return Err(OAuthError::invalid_grant("code_verifier does not match"));
            }
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant("code_verifier is required"));
        }
        // RFC 9700 2.1.1: a verifier for a code issued without a challenge is an attack
        // (a downgrade), not something to ignore.
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent for a code issued without a challenge",
            ));
        }
        (None, None) => {}
    }
    let d = Decision {
        user: record.user.clone(),
        scopes: record.scopes.clone(),
        grant_type: "authorization_code".into(),
        refresh: client.allows_grant("refresh_token"),
        refresh_scopes: None,
    };
    match consume_and_issue(edge, client, &d, record.family, hash, TokenKind::Code).await? {
        Ok(issued) => Ok(issued),
        Err(Some(Rotation::Replayed(family))) => {
            edge.cache().revoke_family(family, None).await;
            edge.metrics().revoked(1);
            tracing::warn!(client_id = %client.id, %family, "authorization code reused; its tokens are revoked");
            Err(invalid())
        }
        Err(_) => Err(invalid()),
    }
}
