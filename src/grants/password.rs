//! `password` (RFC 6749 4.3), checked against the [`crate::users::UserDirectory`].

use std::net::IpAddr;

use http::StatusCode;

use super::{issue, requested_scopes, Decision, Issued};
use crate::clients::Client;
use crate::engine::Core;
use crate::error::OAuthError;
use crate::params::Params;
use crate::passwords::{SignIn, THROTTLE_SECS};
use crate::secret::Secret;

/// The resource owner's credentials go through the same throttle as the sign-in page
/// ([`crate::passwords`]): per source address and per username.
pub(crate) async fn password(
    edge: &Core,
    client: &Client,
    params: &Params,
    peer: Option<IpAddr>,
) -> Result<Issued, OAuthError> {
    let username = params.require("username")?;
    let password = Secret::new(params.require("password")?);
    let mut allowed = client.scopes.clone();
    let mut default = client.default_scopes.clone();
    let scope_param = params.get("scope").is_some();
    let inner = edge;
    let user = match inner
        .sign_ins
        .check(
            inner.users.as_ref(),
            &inner.metrics,
            username,
            &password,
            peer,
        )
        .await?
    {
        SignIn::As(user) => user,
        SignIn::Wrong => {
            return Err(OAuthError::invalid_grant(
                "invalid resource owner credentials",
            ))
        }
        SignIn::Throttled => {
            return Err(
                OAuthError::invalid_grant("too many failed sign-ins; retry later")
                    .with_status(StatusCode::TOO_MANY_REQUESTS)
                    .with_retry_after(THROTTLE_SECS),
            )
        }
    };
    if let Some(us) = &user.scopes {
        allowed = allowed.intersect(us);
        default = default.intersect(us);
    }
    let scopes = requested_scopes(params, &allowed, &default)?;
    if scope_param && scopes.is_empty() {
        return Err(OAuthError::invalid_scope(
            "no requested scope can be granted",
        ));
    }
    let d = Decision {
        user: Some(user.id),
        scopes,
        grant_type: "password".into(),
        refresh: client.allows_grant("refresh_token"),
        refresh_scopes: None,
    };
    issue(edge, client, d).await
}
