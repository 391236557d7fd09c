//! `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 3.4-3.5): the device polls; each
//! poll is one atomic step in the store, which also writes the tokens when it redeems an
//! approval, so two pollers of an approved grant cannot both get tokens, an approval is never
//! spent without its tokens, and a `slow_down` lengthens the interval for good.

use std::sync::Arc;

use super::Issued;
use crate::cache::CachedToken;
use crate::clients::Client;
use crate::engine::Core;
use crate::error::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::store::{DevicePoll, DeviceTokens, StoreError};
use crate::tokens::{FamilyId, TokenKind};

/// A poll up to this much early still counts as on time: timers and networks jitter, and a
/// device polling at the advertised interval must never be told to slow down.
const POLL_GRACE_MS: i64 = 500;

pub(crate) async fn device_code(
    edge: &Core,
    client: &Client,
    params: &Params,
    param: &'static str,
) -> Result<Issued, OAuthError> {
    let presented = params.require(param)?;
    let invalid = || OAuthError::invalid_grant("invalid device code");
    let (kind, hash) = edge.codec().verify(presented).map_err(|_| invalid())?;
    if kind != TokenKind::Device {
        return Err(invalid());
    }
    let cfg = &edge.config().tokens;
    let access_ttl = client.access_ttl.unwrap_or(cfg.access_ttl).as_secs();
    let refresh = client.allows_grant("refresh_token");
    for _ in 0..3 {
        let now_ms = edge.now_ms();
        let now = now_ms / 1000;
        // Minted before the poll, written by it only if it redeems an approval: the approval
        // and its tokens are one step, so neither can be lost without the other.
        let access = edge.codec().mint(TokenKind::Access);
        let refresh_token = refresh.then(|| edge.codec().mint(TokenKind::Refresh));
        let mut tokens = vec![(
            access.hash,
            TokenKind::Access,
            Some(now + access_ttl as i64),
        )];
        if let Some(r) = &refresh_token {
            tokens.push((
                r.hash,
                TokenKind::Refresh,
                Some(now + cfg.refresh_ttl.as_secs() as i64),
            ));
        }
        let issue = DeviceTokens {
            family: FamilyId::random(),
            grant_type: super::DEVICE_CODE.into(),
            issued_at: now,
            tokens,
        };
        let seq = edge.cache().seq();
        let poll = match edge
            .store()
            .poll_device_grant(&hash, &client.id, now_ms, POLL_GRACE_MS, &issue)
            .await
        {
            Err(StoreError::Conflict) => {
                tracing::warn!("token hash collision; minting again");
                continue;
            }
            other => other?,
        };
        let grant = match poll {
            DevicePoll::Approved(g) => g,
            DevicePoll::Pending => {
                return Err(OAuthError::new(
                    ErrorCode::AuthorizationPending,
                    "the user has not yet approved the request",
                ))
            }
            DevicePoll::SlowDown => {
                return Err(OAuthError::new(
                    ErrorCode::SlowDown,
                    "polling too fast; the interval is now 5 seconds longer",
                ))
            }
            DevicePoll::Denied => {
                return Err(OAuthError::new(
                    ErrorCode::AccessDenied,
                    "the user denied the request",
                ))
            }
            DevicePoll::Expired => {
                return Err(OAuthError::new(
                    ErrorCode::ExpiredToken,
                    "the device code has expired",
                ))
            }
            DevicePoll::NotFound | DevicePoll::Redeemed => return Err(invalid()),
        };
        let scopes = grant.grant.scopes.clone();
        edge.cache()
            .insert_issued(
                access.hash,
                CachedToken {
                    kind: TokenKind::Access,
                    family: issue.family,
                    client_id: client.id.clone(),
                    user: grant.user.as_deref().map(Arc::from),
                    scopes: scopes.clone(),
                    client_credentials: false,
                    issued_at: now,
                    expires_at: Some(now + access_ttl as i64),
                    revoked: false,
                },
                seq,
            )
            .await;
        edge.metrics().issued(super::DEVICE_CODE);
        tracing::debug!(client_id = %client.id, family = %issue.family, "device grant redeemed");
        return Ok(Issued {
            access: access.token,
            expires_in: access_ttl,
            refresh: refresh_token.map(|r| r.token),
            scopes,
        });
    }
    Err(OAuthError::new(
        ErrorCode::ServerError,
        "could not issue tokens",
    ))
}
