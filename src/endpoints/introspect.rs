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
    // RFC 7009 2.1 / RFC 7662 2.1: the token is in the body; one in the URI would be logged
    // by every proxy on the way, so it does not count.
    let token = req
        .params
        .body("token")
        .ok_or_else(|| OAuthError::invalid_request("missing parameter: token"))?;
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
    // A refresh token is single use, and the cache does not follow rotations: ask the store
    // whether it has been used up. A rotated-away token can never be exchanged again (its
    // replay revokes the family), so it is not active.
    if t.kind == TokenKind::Refresh {
        let Ok((_, hash)) = req.edge.codec().verify(token) else {
            return Ok(inactive());
        };
        let usable = req
            .edge
            .store()
            .find(&hash)
            .await?
            .is_some_and(|r| r.consumed_at.is_none() && r.is_live(req.edge.now()));
        if !usable {
            return Ok(inactive());
        }
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

#[cfg(test)]
mod tests {
    use http::request::Parts;
    use serde_json::Value;

    use crate::engine::{Core, Target};
    use crate::Config;

    const CONFIG: &str = r#"
[store]
kind = "memory"
[[clients]]
id = "c"
secret = "s"
grants = ["password", "refresh_token"]
scopes = ["read"]
[[users]]
username = "u"
password = "p"
"#;

    fn head(path: &str) -> Parts {
        http::Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            // base64("c:s")
            .header("authorization", "Basic Yzpz")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    async fn call(edge: &Core, path: &str, body: String) -> Value {
        let head = head(path);
        let Target::Endpoint(ep) = edge.classify(&head) else {
            panic!("{path} is not an endpoint")
        };
        let r = edge.serve(ep, &head, body.as_bytes(), None).await;
        assert_eq!(r.status(), 200, "{path}: {:?}", r.body());
        serde_json::from_slice(r.body()).unwrap()
    }

    #[tokio::test]
    async fn a_rotated_away_refresh_token_is_inactive_even_when_cached() {
        let edge = crate::Edge::new(Config::from_toml(CONFIG).unwrap())
            .await
            .unwrap();
        let t = call(
            &edge,
            "/oauth2/token",
            "grant_type=password&username=u&password=p".into(),
        )
        .await;
        let r0 = t["refresh_token"].as_str().unwrap().to_string();
        let introspect = |tok: String| call(&edge, "/oauth2/introspect", format!("token={tok}"));
        // Cached as live by this first look.
        assert_eq!(introspect(r0.clone()).await["active"], true);
        let t = call(
            &edge,
            "/oauth2/token",
            format!("grant_type=refresh_token&refresh_token={r0}"),
        )
        .await;
        let r1 = t["refresh_token"].as_str().unwrap().to_string();
        assert_eq!(introspect(r0).await, serde_json::json!({ "active": false }));
        assert_eq!(introspect(r1).await["active"], true);
    }
}
