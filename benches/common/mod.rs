//! What the load benches share.

/// A whole-number knob from the environment, or `default`.
pub(crate) fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `client_credentials` access token from the edge at `base` (`http://host:port`), for the
/// client `id` with `secret` (HTTP Basic).
pub(crate) async fn client_token(base: &str, id: &str, secret: &str) -> String {
    let t: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/oauth2/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token response");
    t["access_token"].as_str().expect("a token").to_string()
}
