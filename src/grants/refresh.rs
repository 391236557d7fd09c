//! `refresh_token` (RFC 6749 6, RFC 9700 4.14): every use rotates the token; a replayed
//! token revokes its family; scope may narrow and never widen; a token presented by another
//! client is refused and left unconsumed.

use super::{mint_and_write, Decision, Issued};
use crate::clients::Client;
use crate::edge::Edge;
use crate::error::OAuthError;
use crate::params::Params;
use crate::store::Rotation;
use crate::tokens::TokenKind;

pub(crate) async fn refresh(
    edge: &Edge,
    client: &Client,
    params: &Params,
) -> Result<Issued, OAuthError> {
    let presented = params.require("refresh_token")?;
    let invalid = || OAuthError::invalid_grant("invalid refresh token");
    let (kind, hash) = edge.codec().verify(presented).map_err(|_| invalid())?;
    if kind != TokenKind::Refresh {
        return Err(invalid());
    }
    // Read the record for its scopes and owner; the rotation below re-checks everything
    // that can change, atomically.
    let record = edge.store().find(&hash).await?.ok_or_else(invalid)?;
    if *record.client_id != *client.id {
        return Err(invalid());
    }
    let scopes = super::requested_scopes(params, &record.scopes, &record.scopes)?;
    let d = Decision {
        user: record.user.clone(),
        scopes,
        grant_type: record.grant_type.clone(),
        refresh: true,
    };
    let outcome = std::sync::Mutex::new(None);
    let issued = mint_and_write(edge, client, &d, record.family, |tokens| {
        let outcome = &outcome;
        async move {
            let r = edge
                .store()
                .rotate(
                    &hash,
                    TokenKind::Refresh,
                    &client.id,
                    crate::unix_now(),
                    &tokens,
                )
                .await?;
            // Anything but a rotation wrote no tokens; the outcome is reported below.
            let done = matches!(r, Rotation::Rotated(_));
            *outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            Ok(done)
        }
    })
    .await?;
    let outcome = outcome.into_inner().unwrap_or_else(|e| e.into_inner());
    match (issued, outcome) {
        (Some(issued), _) => Ok(issued),
        (None, Some(Rotation::Replayed(family))) => {
            edge.cache().revoke_family(family, Some(hash)).await;
            tracing::warn!(client_id = %client.id, %family, "refresh token replayed; family revoked");
            Err(OAuthError::invalid_grant("invalid refresh token"))
        }
        (None, _) => Err(invalid()),
    }
}
