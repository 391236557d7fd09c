//! `password` (RFC 6749 4.3), checked against the [`crate::users::UserDirectory`].

use super::{issue, requested_scopes, Decision, Issued};
use crate::clients::Client;
use crate::edge::Edge;
use crate::error::OAuthError;
use crate::params::Params;
use crate::secret::Secret;

pub(crate) async fn password(
    edge: &Edge,
    client: &Client,
    params: &Params,
) -> Result<Issued, OAuthError> {
    let username = params.require("username")?;
    let password = Secret::new(params.require("password")?);
    let mut allowed = client.scopes.clone();
    let mut default = client.default_scopes.clone();
    let scope_param = params.get("scope").is_some();
    let user = edge
        .inner
        .users
        .authenticate(username, &password)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("invalid resource owner credentials"))?;
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
