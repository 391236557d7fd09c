//! `client_credentials` (RFC 6749 4.4): a token for the client itself, with no refresh token
//! (4.4.3).

use super::{issue, requested_scopes, Decision, Issued};
use crate::clients::Client;
use crate::engine::Core;
use crate::error::OAuthError;
use crate::params::Params;

pub(crate) async fn client_credentials(
    edge: &Core,
    client: &Client,
    params: &Params,
) -> Result<Issued, OAuthError> {
    if client.public {
        return Err(OAuthError::unauthorized_client(
            "a public client cannot use client_credentials",
        ));
    }
    let scopes = requested_scopes(params, &client.scopes, &client.default_scopes)?;
    let d = Decision {
        user: None,
        scopes,
        grant_type: "client_credentials".into(),
        refresh: false,
        refresh_scopes: None,
    };
    issue(edge, client, d).await
}
