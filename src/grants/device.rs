//! `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 3.4-3.5): the device polls; each
//! poll is one atomic step in the store, so two pollers of an approved grant cannot both get
//! tokens, and a `slow_down` lengthens the interval for good.

use super::{issue, Decision, Issued};
use crate::clients::Client;
use crate::edge::Edge;
use crate::error::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::store::DevicePoll;
use crate::tokens::TokenKind;

/// A poll up to this much early still counts as on time: timers and networks jitter, and a
/// device polling at the advertised interval must never be told to slow down.
const POLL_GRACE_MS: i64 = 500;

pub(crate) async fn device_code(
    edge: &Edge,
    client: &Client,
    params: &Params,
) -> Result<Issued, OAuthError> {
    let presented = params.require("device_code")?;
    let invalid = || OAuthError::invalid_grant("invalid device code");
    let (kind, hash) = edge.codec().verify(presented).map_err(|_| invalid())?;
    if kind != TokenKind::Device {
        return Err(invalid());
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let poll = edge
        .store()
        .poll_device_grant(&hash, &client.id, now_ms, POLL_GRACE_MS)
        .await?;
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
    let d = Decision {
        user: grant.user.clone(),
        scopes: grant.grant.scopes.clone(),
        grant_type: super::DEVICE_CODE.into(),
        refresh: client.allows_grant("refresh_token"),
        refresh_scopes: None,
    };
    issue(edge, client, d).await
}
