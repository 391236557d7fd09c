//! `POST …/introspect` (RFC 7662).

use bytes::Bytes;
use http::Response;
use serde_json::json;

use super::Request;
use crate::error::OAuthError;
use crate::profiles::EndpointKind;
use crate::tokens::TokenKind;

pub(crate) async fn introspect(req: Request<'_>) -> Result<Response<Bytes>, OAuthError> {
    let auth = req
        .edge
        .authenticate_client(
            req.head,
            req.params,
            req.profile.auth_methods(EndpointKind::Introspect),
            req.profile.query_credentials(),
            req.peer,
        )
        .await?;
    let token = req.params.require("token")?;
    let inactive = || super::ok_json(&json!({ "active": false }));
    let Some(t) = req.edge.token_status(token).await? else {
        return Ok(inactive());
    };
    // A client sees its own tokens; only a client marked `introspect` sees others'. To
    // anyone else a foreign token is simply inactive.
    let visible = *t.client_id == *auth.client.id || auth.client.introspect;
    if !visible || !matches!(t.kind, TokenKind::Access | TokenKind::Refresh) {
        return Ok(inactive());
    }
    let mut body = json!({
        "active": true,
        "client_id": &*t.client_id,
        "scope": t.scopes.as_str(),
        "iat": t.issued_at,
        "sub": t.user.as_deref().unwrap_or(&t.client_id),
        "token_type": if t.kind == TokenKind::Access { "Bearer" } else { "refresh_token" },
    });
    if let Some(exp) = t.expires_at {
        body["exp"] = exp.into();
    }
    if let Some(u) = &t.user {
        body["username"] = (&**u).into();
    }
    if let Some(iss) = &req.edge.config().issuer {
        body["iss"] = iss.as_str().into();
    }
    Ok(super::ok_json(&body))
}
