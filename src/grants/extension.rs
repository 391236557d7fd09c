//! Extension grants (RFC 6749 4.5), and NPR's `temporary_user` and `anonymous_user`.

use std::sync::Arc;

use async_trait::async_trait;

use super::{issue, requested_scopes, Decision, Issued};
use crate::clients::Client;
use crate::engine::Core;
use crate::error::OAuthError;
use crate::params::Params;
use crate::scope::Scopes;

/// What an extension grant sees of the request.
pub struct ExtensionRequest<'a> {
    /// The authenticated client.
    pub client: &'a Client,
    /// The scopes asked for (already checked against the client's), or the client's
    /// defaults.
    pub scopes: Scopes,
    params: &'a Params,
}

impl ExtensionRequest<'_> {
    /// A request parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }
}

/// What an extension grant decides.
#[derive(Debug, Clone)]
pub struct ExtensionDecision {
    /// The user the tokens are for, if any.
    pub user: Option<String>,
    /// The scopes to grant: at most the request's.
    pub scopes: Scopes,
    /// Whether to issue a refresh token too.
    pub refresh_token: bool,
}

/// A grant type beyond RFC 6749's. Registered with
/// [`crate::EdgeBuilder::extension_grant`]; a client uses it only when its `grants`
/// list the name.
#[async_trait]
pub trait ExtensionGrant: Send + Sync + 'static {
    /// The `grant_type` value.
    fn grant_type(&self) -> &str;

    /// Decides the grant, or refuses with an OAuth error.
    async fn grant(&self, req: &ExtensionRequest<'_>) -> Result<ExtensionDecision, OAuthError>;
}

/// NPR's `temporary_user`: a fresh temporary account, for "try before you buy". The tokens
/// carry a new user id `temporary:<random>` and a refresh token, so the app can keep the
/// account until the person signs up.
#[derive(Debug, Default)]
pub struct TemporaryUser;

#[async_trait]
impl ExtensionGrant for TemporaryUser {
    fn grant_type(&self) -> &str {
        "temporary_user"
    }

    async fn grant(&self, req: &ExtensionRequest<'_>) -> Result<ExtensionDecision, OAuthError> {
        Ok(ExtensionDecision {
            user: Some(format!("temporary:{}", crate::tokens::random_string(16))),
            scopes: req.scopes.clone(),
            refresh_token: req.client.allows_grant("refresh_token"),
        })
    }
}

/// NPR's `anonymous_user`: an anonymous listener. Each grant gets its own
/// `anonymous:<random>` id and no refresh token: there is nothing to keep.
#[derive(Debug, Default)]
pub struct AnonymousUser;

#[async_trait]
impl ExtensionGrant for AnonymousUser {
    fn grant_type(&self) -> &str {
        "anonymous_user"
    }

    async fn grant(&self, req: &ExtensionRequest<'_>) -> Result<ExtensionDecision, OAuthError> {
        Ok(ExtensionDecision {
            user: Some(format!("anonymous:{}", crate::tokens::random_string(16))),
            scopes: req.scopes.clone(),
            refresh_token: false,
        })
    }
}

pub(crate) fn npr_grants() -> Vec<Arc<dyn ExtensionGrant>> {
    vec![Arc::new(TemporaryUser), Arc::new(AnonymousUser)]
}

pub(crate) async fn extension(
    edge: &Core,
    client: &Client,
    params: &Params,
    grant: &dyn ExtensionGrant,
) -> Result<Issued, OAuthError> {
    let scopes = requested_scopes(params, &client.scopes, &client.default_scopes)?;
    let req = ExtensionRequest {
        client,
        scopes: scopes.clone(),
        params,
    };
    let d = grant.grant(&req).await?;
    if !d.scopes.is_subset(&scopes) {
        return Err(OAuthError::invalid_scope(
            "the grant decided scopes beyond the request",
        ));
    }
    let d = Decision {
        user: d.user,
        scopes: d.scopes,
        grant_type: grant.grant_type().to_string(),
        refresh: d.refresh_token,
        refresh_scopes: None,
    };
    issue(edge, client, d).await
}
