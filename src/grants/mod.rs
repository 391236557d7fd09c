//! The grant types: one file each, and the trait an extension grant implements.

mod client_credentials;
mod code;
mod device;
mod extension;
mod password;
mod refresh;

pub(crate) use client_credentials::client_credentials;
pub(crate) use code::authorization_code;
pub(crate) use device::device_code;
pub(crate) use extension::{extension, npr_grants};
pub use extension::{
    AnonymousUser, ExtensionDecision, ExtensionGrant, ExtensionRequest, TemporaryUser,
};
pub(crate) use password::password;
pub(crate) use refresh::{refresh, trade_access_token};

use std::sync::Arc;

use serde_json::json;

use crate::cache::CachedToken;
use crate::clients::Client;
use crate::engine::Core;
use crate::error::OAuthError;
use crate::params::Params;
use crate::scope::Scopes;
use crate::secret::Secret;
use crate::store::{NewFamily, NewToken, StoreError};
use crate::tokens::{FamilyId, TokenKind};

/// The device grant's `grant_type` (RFC 8628 3.4).
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 6749 4.4.3: a `client_credentials` grant gets no refresh token, and no profile here
/// documents one (NPR's trade is for "an old non-expiring access token" of a user). Such a
/// family never holds a refresh token: none is minted into it, NPR's trade refuses its access
/// tokens, and a refresh token found in one (written before this rule) is refused. A token
/// that stands for its client so ends with its access lifetime, and a secret rotation is
/// never outlived by a pair that renews itself.
pub(crate) fn refreshable(grant_type: &str) -> bool {
    grant_type != "client_credentials"
}

/// How many times a token-hash collision is retried with fresh tokens before giving up.
const COLLISION_RETRIES: usize = 3;

/// What a grant decided to issue.
pub(crate) struct Decision {
    pub(crate) user: Option<String>,
    pub(crate) scopes: Scopes,
    pub(crate) grant_type: String,
    pub(crate) refresh: bool,
    /// The refresh token's scopes when they differ from the access token's: a refresh
    /// request that narrows its scope narrows the access token only, and the new refresh
    /// token keeps the presented one's scope (RFC 6749 6).
    pub(crate) refresh_scopes: Option<Scopes>,
}

/// The tokens handed back by the token endpoint.
pub(crate) struct Issued {
    pub(crate) access: Secret,
    pub(crate) expires_in: u64,
    pub(crate) refresh: Option<Secret>,
    pub(crate) scopes: Scopes,
}

impl Issued {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut v = json!({
            "access_token": self.access.expose(),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        });
        if !self.scopes.is_empty() {
            v["scope"] = self.scopes.as_str().into();
        }
        if let Some(r) = &self.refresh {
            v["refresh_token"] = r.expose().into();
        }
        v
    }
}

/// The scopes a request asks for: the `scope` parameter, which must be within `allowed`, or
/// `default` when it is absent.
pub(crate) fn requested_scopes(
    params: &Params,
    allowed: &Scopes,
    default: &Scopes,
) -> Result<Scopes, OAuthError> {
    match params.get("scope") {
        None => Ok(default.clone()),
        Some(s) => {
            let s = Scopes::parse(s).map_err(|_| OAuthError::invalid_scope("malformed scope"))?;
            if !s.is_subset(allowed) {
                return Err(OAuthError::invalid_scope(
                    "the requested scope exceeds what was granted",
                ));
            }
            Ok(s)
        }
    }
}

/// Mints an access token and, when asked, a refresh token into `family`, and writes them
/// with the family (when `new_family`) in one store transaction. Collisions are retried.
pub(crate) async fn issue(edge: &Core, client: &Client, d: Decision) -> Result<Issued, OAuthError> {
    let family = FamilyId::random();
    let new_family = NewFamily {
        id: family,
        client_id: client.id.to_string(),
        user: d.user.clone(),
        grant_type: d.grant_type.clone(),
        created_at: edge.now(),
    };
    let write = |tokens: Vec<NewToken>| {
        let new_family = &new_family;
        async move {
            edge.store().issue(Some(new_family), &tokens).await?;
            Ok(true)
        }
    };
    let issued = mint_and_write(edge, client, &d, family, write).await?;
    issued.ok_or_else(|| OAuthError::new(crate::error::ErrorCode::ServerError, "not issued"))
}

/// The token a grant presents in `param`: it must be a token of ours of `kind`, known to the
/// store, and issued to `client`. Anything else is `invalid_grant` saying `invalid`, alike, so
/// the answer tells nothing about another client's tokens.
pub(crate) async fn presented(
    edge: &Core,
    client: &Client,
    params: &Params,
    param: &'static str,
    kind: TokenKind,
    invalid: &'static str,
) -> Result<(crate::tokens::TokenHash, crate::store::TokenRecord), OAuthError> {
    let token = params.require(param)?;
    let refuse = || OAuthError::invalid_grant(invalid);
    let (k, hash) = edge.codec().verify(token).map_err(|_| refuse())?;
    if k != kind {
        return Err(refuse());
    }
    let record = edge.store().find(&hash).await?.ok_or_else(refuse)?;
    if *record.client_id != *client.id {
        return Err(refuse());
    }
    Ok((hash, record))
}

/// Consumes the single-use token `hash` of `kind` (a refresh token, a code) for `client` and
/// writes `d`'s tokens into `family`, as one atomic step in the store (`Store::rotate`).
/// `Ok(Err(outcome))` when nothing was written, with what the store found instead.
pub(crate) async fn consume_and_issue(
    edge: &Core,
    client: &Client,
    d: &Decision,
    family: FamilyId,
    hash: crate::tokens::TokenHash,
    kind: TokenKind,
) -> Result<Result<Issued, Option<crate::store::Rotation>>, OAuthError> {
    use crate::store::Rotation;
    let outcome = std::sync::Mutex::new(None);
    let issued = mint_and_write(edge, client, d, family, |tokens| {
        let outcome = &outcome;
        async move {
            let r = edge
                .store()
                .rotate(&hash, kind, &client.id, edge.now(), &tokens)
                .await?;
            // Anything but a rotation wrote no tokens; the outcome is reported below.
            let done = matches!(r, Rotation::Rotated(_));
            *outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            Ok(done)
        }
    })
    .await?;
    let outcome = outcome.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok(issued.ok_or(outcome))
}

/// Mints the tokens for `family`, hands them to `write`, and retries with fresh tokens when
/// `write` reports a collision. `write` answers whether it wrote them; `Ok(None)` when not.
pub(crate) async fn mint_and_write<W, F>(
    edge: &Core,
    client: &Client,
    d: &Decision,
    family: FamilyId,
    mut write: W,
) -> Result<Option<Issued>, OAuthError>
where
    W: FnMut(Vec<NewToken>) -> F,
    F: std::future::Future<Output = Result<bool, StoreError>>,
{
    let cfg = &edge.config().tokens;
    let access_ttl = client.access_ttl.unwrap_or(cfg.access_ttl).as_secs();
    for _ in 0..COLLISION_RETRIES {
        let now = edge.now();
        let access = edge.codec().mint(TokenKind::Access);
        let mut tokens = vec![NewToken {
            hash: access.hash,
            kind: TokenKind::Access,
            family,
            scopes: d.scopes.clone(),
            issued_at: now,
            expires_at: Some(now + access_ttl as i64),
        }];
        let refresh = (d.refresh && refreshable(&d.grant_type))
            .then(|| edge.codec().mint(TokenKind::Refresh));
        if let Some(r) = &refresh {
            tokens.push(NewToken {
                hash: r.hash,
                kind: TokenKind::Refresh,
                family,
                scopes: d.refresh_scopes.as_ref().unwrap_or(&d.scopes).clone(),
                issued_at: now,
                expires_at: Some(now + cfg.refresh_ttl.as_secs() as i64),
            });
        }
        let seq = edge.cache().seq();
        match write(tokens).await {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(StoreError::Conflict) => {
                tracing::warn!("token hash collision; minting again");
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        edge.cache()
            .insert_issued(
                access.hash,
                CachedToken {
                    kind: TokenKind::Access,
                    family,
                    client_id: client.id.clone(),
                    user: d.user.as_deref().map(Arc::from),
                    scopes: d.scopes.clone(),
                    client_credentials: d.grant_type == "client_credentials",
                    issued_at: now,
                    expires_at: Some(now + access_ttl as i64),
                    revoked: false,
                },
                seq,
            )
            .await;
        edge.metrics().issued(&d.grant_type);
        tracing::debug!(client_id = %client.id, grant = %d.grant_type, %family, "tokens issued");
        return Ok(Some(Issued {
            access: access.token,
            expires_in: access_ttl,
            refresh: refresh.map(|r| r.token),
            scopes: d.scopes.clone(),
        }));
    }
    Err(OAuthError::new(
        crate::error::ErrorCode::ServerError,
        "could not issue a unique token; retry",
    ))
}
