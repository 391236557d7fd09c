//! `POST …/device_authorization` (RFC 8628 3.1-3.2).

use bytes::Bytes;
use http::Response;
use serde_json::json;

use super::Request;
use crate::authorize::{display_user_code, new_user_code};
use crate::error::{ErrorCode, OAuthError};
use crate::grants::DEVICE_CODE;
use crate::profiles::EndpointKind;
use crate::store::{NewDeviceGrant, StoreError};
use crate::tokens::TokenKind;

pub(crate) async fn device_authorization(req: Request<'_>) -> Result<Response<Bytes>, OAuthError> {
    let edge = req.edge;
    let auth = edge
        .authenticate_client(
            req.head,
            req.params,
            req.profile.auth_methods(EndpointKind::DeviceAuthorization),
            req.profile.query_credentials(),
            req.peer,
        )
        .await?;
    let client = &auth.client;
    if !client.allows_grant(DEVICE_CODE) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the device flow",
        ));
    }
    let scopes =
        crate::grants::requested_scopes(req.params, &client.scopes, &client.default_scopes)?;
    let cfg = &edge.config().device;
    let interval = cfg.interval.as_secs().max(1) as u32;
    let ttl = cfg.code_ttl.as_secs();
    for _ in 0..5 {
        let now = edge.now();
        let device = edge.codec().mint(TokenKind::Device);
        let user_code = new_user_code();
        let grant = NewDeviceGrant {
            device_hash: device.hash,
            user_code: user_code.clone(),
            client_id: client.id.to_string(),
            scopes: scopes.clone(),
            interval,
            created_at: now,
            expires_at: now + ttl as i64,
        };
        match edge.store().put_device_grant(&grant).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
        let uri = verification_uri(&req);
        let shown = display_user_code(&user_code);
        let complete = {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            ser.append_pair("user_code", &shown);
            let sep = if uri.contains('?') { '&' } else { '?' };
            format!("{uri}{sep}{}", ser.finish())
        };
        tracing::debug!(client_id = %client.id, "device authorization started");
        return Ok(super::ok_json(&json!({
            "device_code": device.token.expose(),
            "user_code": shown,
            "verification_uri": uri,
            "verification_uri_complete": complete,
            "expires_in": ttl,
            "interval": interval,
        })));
    }
    Err(OAuthError::new(
        ErrorCode::ServerError,
        "could not start the device flow",
    ))
}

/// The verification page's absolute URL.
fn verification_uri(req: &Request<'_>) -> String {
    if let Some(u) = &req.edge.config().device.verification_uri {
        return u.clone();
    }
    // The profile's own page, else the first mounted profile that has one (NPR's device
    // endpoint has no page of its own).
    let path = std::iter::once(req.profile)
        .chain(req.edge.profiles.iter())
        .find_map(|p| p.path_of(EndpointKind::DeviceVerification))
        .unwrap_or_else(|| "/oauth2/device".into());
    format!("{}{path}", super::issuer(req.edge, req.head))
}
