//! `refresh_token` (RFC 6749 6, RFC 9700 4.14): every use rotates the token; a replayed
//! token revokes its family; scope may narrow and never widen; a token presented by another
//! client is refused and left unconsumed.

use super::{consume_and_issue, Decision, Issued};
use crate::clients::Client;
use crate::engine::Core;
use crate::error::OAuthError;
use crate::params::Params;
use crate::store::{Rotation, TokenRecord};
use crate::tokens::{TokenHash, TokenKind};

pub(crate) async fn refresh(
    edge: &Core,
    client: &Client,
    params: &Params,
) -> Result<Issued, OAuthError> {
    // Read the record for its scopes and owner; the rotation below re-checks everything
    // that can change, atomically.
    let (hash, record) = super::presented(
        edge,
        client,
        params,
        "refresh_token",
        TokenKind::Refresh,
        "invalid refresh token",
    )
    .await?;
    if !super::refreshable(&record.grant_type) {
        return Err(OAuthError::invalid_grant("invalid refresh token"));
    }
    rotate(
        edge,
        client,
        params,
        hash,
        &record,
        TokenKind::Refresh,
        "invalid refresh token",
    )
    .await
}

/// NPR's trade: "If trading in an old non-expiring access token for a refresh-enabled token,
/// set the value of `refresh_token` to the access token value and `token_type_hint` must be
/// set to `access_token`." The access token is consumed as a refresh token would be, in the
/// same atomic step that writes the new pair into its family: it stops working, a second
/// trade of it is a replay that revokes the family, and the scope may narrow, never widen.
pub(crate) async fn trade_access_token(
    edge: &Core,
    client: &Client,
    params: &Params,
) -> Result<Issued, OAuthError> {
    let (hash, record) = super::presented(
        edge,
        client,
        params,
        "refresh_token",
        TokenKind::Access,
        "invalid access token",
    )
    .await?;
    if !client.allows_grant("refresh_token") {
        return Err(OAuthError::unauthorized_client(
            "this client may not use refresh tokens",
        ));
    }
    if !super::refreshable(&record.grant_type) {
        return Err(OAuthError::invalid_grant(
            "a client_credentials token is not traded for a refresh token; \
             ask for a new one with the client_credentials grant",
        ));
    }
    let issued = rotate(
        edge,
        client,
        params,
        hash,
        &record,
        TokenKind::Access,
        "invalid access token",
    )
    .await?;
    // The traded token stops working here at once (other instances within the cache TTL);
    // the new pair lives on in its family.
    edge.cache().forget(&hash).await;
    Ok(issued)
}

/// Consumes the presented token (of `kind`) and writes a new pair into its family, in one
/// atomic step. RFC 6749 6: the access token's scope may narrow; the new refresh token keeps
/// the presented one's scope. A replay revokes the whole family.
async fn rotate(
    edge: &Core,
    client: &Client,
    params: &Params,
    hash: TokenHash,
    record: &TokenRecord,
    kind: TokenKind,
    invalid: &'static str,
) -> Result<Issued, OAuthError> {
    let invalid = || OAuthError::invalid_grant(invalid);
    let scopes = super::requested_scopes(params, &record.scopes, &record.scopes)?;
    let d = Decision {
        user: record.user.clone(),
        scopes,
        grant_type: record.grant_type.clone(),
        refresh: true,
        refresh_scopes: Some(record.scopes.clone()),
    };
    match consume_and_issue(edge, client, &d, record.family, hash, kind).await? {
        Ok(issued) => Ok(issued),
        Err(Some(Rotation::Replayed(family))) => {
            edge.cache().revoke_family(family, Some(hash)).await;
            tracing::warn!(client_id = %client.id, %family, ?kind, "token replayed; family revoked");
            Err(invalid())
        }
        Err(_) => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `client_credentials` family with a refresh token in it, as a store written before
    /// the rule may hold: the refresh token is refused and not consumed, and the grant code
    /// mints none into such a family.
    #[tokio::test]
    async fn a_client_credentials_family_is_never_refreshed() {
        let config = crate::Config::from_toml(
            r#"
[store]
kind = "memory"
[[clients]]
id = "c"
secret = "s"
grants = ["client_credentials", "refresh_token"]
"#,
        )
        .unwrap();
        let edge = crate::Edge::new(config).await.unwrap();
        let client = edge.clients().get("c").await.unwrap().unwrap();
        let d = || Decision {
            user: None,
            scopes: crate::Scopes::default(),
            grant_type: "client_credentials".into(),
            refresh: true,
            refresh_scopes: None,
        };
        let issued = super::super::issue(&edge, &client, d()).await.unwrap();
        assert!(issued.refresh.is_none(), "no refresh token is minted");

        // One written by hand into a client_credentials family.
        let old = edge.codec().mint(TokenKind::Refresh);
        let family = crate::tokens::FamilyId::random();
        let now = edge.now();
        edge.store()
            .issue(
                Some(&crate::store::NewFamily {
                    id: family,
                    client_id: "c".into(),
                    user: None,
                    grant_type: "client_credentials".into(),
                    created_at: now,
                }),
                &[crate::store::NewToken {
                    hash: old.hash,
                    kind: TokenKind::Refresh,
                    family,
                    scopes: crate::Scopes::default(),
                    issued_at: now,
                    expires_at: Some(now + 3600),
                }],
            )
            .await
            .unwrap();
        let body = format!("refresh_token={}", old.token.expose());
        let params = Params::parse(None, body.as_bytes()).unwrap();
        let e = refresh(&edge, &client, &params).await.err().unwrap();
        assert_eq!(e.code, crate::ErrorCode::InvalidGrant);
        let kept = edge.store().find(&old.hash).await.unwrap().unwrap();
        assert!(!kept.revoked && kept.consumed_at.is_none(), "{kept:?}");
    }

    #[tokio::test]
    async fn narrowing_keeps_the_refresh_token_scope() {
        let config = crate::Config::from_toml(
            r#"
[store]
kind = "memory"
[[clients]]
id = "c"
secret = "s"
grants = ["password", "refresh_token"]
scopes = ["read", "write"]
[[users]]
username = "u"
password = "p"
"#,
        )
        .unwrap();
        let edge = crate::Edge::new(config).await.unwrap();
        let client = edge.clients().get("c").await.unwrap().unwrap();
        let params = Params::parse(None, b"username=u&password=p&scope=read+write").unwrap();
        let first = crate::grants::password(&edge, &client, &params, None)
            .await
            .unwrap();
        let rt = first.refresh.unwrap();
        let body = format!("refresh_token={}&scope=read", rt.expose());
        let params = Params::parse(None, body.as_bytes()).unwrap();
        let narrowed = refresh(&edge, &client, &params).await.unwrap();
        let scopes_of = |t: &crate::secret::Secret| {
            let (_, hash) = edge.codec().verify(t.expose()).unwrap();
            let store = edge.store().clone();
            async move { store.find(&hash).await.unwrap().unwrap().scopes }
        };
        assert_eq!(narrowed.scopes.as_str(), "read");
        assert_eq!(scopes_of(&narrowed.access).await.as_str(), "read");
        let new_rt = narrowed.refresh.unwrap();
        assert_eq!(scopes_of(&new_rt).await.as_str(), "read write");
    }
}
