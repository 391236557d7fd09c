//! `POST …/token` (RFC 6749 3.2).

use bytes::Bytes;
use http::Response;

use super::Request;
use crate::config::ProfileKind;
use crate::error::{ErrorCode, OAuthError};
use crate::grants;
use crate::profiles::EndpointKind;

pub(crate) async fn token(req: Request<'_>) -> Result<Response<Bytes>, OAuthError> {
    let npr = req.profile.kind == ProfileKind::Npr;
    let grant_type = match req.params.require("grant_type")? {
        // NPR names the device grant `device_code` and sends the device code as `code`.
        "device_code" if npr => grants::DEVICE_CODE,
        g => g,
    };
    let auth = req
        .edge
        .authenticate_client(
            req.head,
            req.params,
            req.profile.auth_methods(EndpointKind::Token),
            req.profile.query_credentials(),
            req.peer,
        )
        .await?;
    let client = &auth.client;
    let known = matches!(
        grant_type,
        "authorization_code" | "client_credentials" | "password" | "refresh_token"
    ) || grant_type == grants::DEVICE_CODE
        || req.edge.extensions.contains_key(grant_type);
    if !known {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "unsupported grant_type",
        ));
    }
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use this grant type",
        ));
    }
    // NPR: "For the `authorization_code` grant type, you are required to pass in the `code`
    // and `redirect_uri` parameters."
    if npr && grant_type == "authorization_code" {
        req.params.require("redirect_uri")?;
    }
    let issued = match grant_type {
        "authorization_code" => grants::authorization_code(req.edge, client, req.params).await?,
        grants::DEVICE_CODE => {
            let param = if npr { "code" } else { "device_code" };
            grants::device_code(req.edge, client, req.params, param).await?
        }
        "client_credentials" => grants::client_credentials(req.edge, client, req.params).await?,
        "password" => grants::password(req.edge, client, req.params, req.peer).await?,
        // NPR: an old access token traded for a refresh-enabled pair.
        "refresh_token" if npr && req.params.get("token_type_hint") == Some("access_token") => {
            grants::trade_access_token(req.edge, client, req.params).await?
        }
        "refresh_token" => grants::refresh(req.edge, client, req.params).await?,
        other => {
            let ext = req.edge.extensions[other].clone();
            grants::extension(req.edge, client, req.params, ext.as_ref()).await?
        }
    };
    Ok(super::ok_json(&issued.to_json()))
}
