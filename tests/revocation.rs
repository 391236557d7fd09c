//! Revocation (RFC 7009), introspection (RFC 7662) and the metadata document (RFC 8414),
//! end to end through a real server behind `OAuthEdgeLayer`.
//!
//! Every revocation is followed by the request that proves it: the token refused at `/api`,
//! or the refresh token refused at the token endpoint, with no pause in between.
mod common;

use common::{basic, TestServer, CONFIG};
use oauth_edge::tokens::TokenKind;
use serde_json::{json, Value};

const SVC: (&str, &str) = ("svc", "svc-secret");
const OTHER: (&str, &str) = ("other", "other-secret");
const RS: (&str, &str) = ("rs", "rs-secret");

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// POSTs to the revocation endpoint as `client` (Basic) with `form`.
async fn revoke_as(
    s: &TestServer,
    client: (&str, &str),
    form: &[(&str, &str)],
) -> reqwest::Response {
    s.post_form(
        "/oauth2/revoke",
        &[("authorization", &basic(client.0, client.1))],
        form,
    )
    .await
}

/// Revokes `token` as `client` and insists on 200 with an empty body.
async fn revoke_ok(s: &TestServer, client: (&str, &str), form: &[(&str, &str)]) {
    let r = revoke_as(s, client, form).await;
    assert_eq!(r.status(), 200, "revoke {form:?}");
    assert_eq!(r.text().await.unwrap(), "");
}

/// Status and JSON body of an error answer.
async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("a JSON error body");
    (status, body)
}

/// Exchanges `refresh` as `client` (Basic).
async fn refresh_as(s: &TestServer, client: (&str, &str), refresh: &str) -> reqwest::Response {
    s.post_form(
        "/oauth2/token",
        &[("authorization", &basic(client.0, client.1))],
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await
}

/// Exchanges `refresh` as svc and returns the new pair.
async fn rotate(s: &TestServer, refresh: &str) -> (String, String) {
    let r = refresh_as(s, SVC, refresh).await;
    assert_eq!(r.status(), 200, "refresh");
    let v: Value = r.json().await.unwrap();
    (
        str_of(&v, "access_token").to_string(),
        str_of(&v, "refresh_token").to_string(),
    )
}

/// Asserts the refresh token is refused with `invalid_grant`.
async fn assert_refresh_refused(s: &TestServer, client: (&str, &str), refresh: &str) {
    let (status, body) = error_of(refresh_as(s, client, refresh).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

/// Asserts the access token is refused at `/api` with RFC 6750 `invalid_token`.
async fn assert_bearer_refused(s: &TestServer, access: &str) {
    let r = s.get_bearer("/api/things", access).await;
    assert_eq!(r.status(), 401);
    let www = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        www.starts_with("Bearer realm=\"oauth-edge\"") && www.contains("error=\"invalid_token\""),
        "{www}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
}

async fn assert_bearer_ok(s: &TestServer, access: &str) {
    let r = s.get_bearer("/api/things", access).await;
    assert_eq!(r.status(), 200, "token should still work");
}

/// Password grant for alice through svc: (access, refresh).
async fn alice_pair(s: &TestServer) -> (String, String) {
    let t = s
        .password_token("svc", "svc-secret", "alice", "wonderland")
        .await;
    (
        str_of(&t, "access_token").to_string(),
        str_of(&t, "refresh_token").to_string(),
    )
}

async fn svc_access(s: &TestServer) -> String {
    let t = s.client_token("svc", "svc-secret", None).await;
    str_of(&t, "access_token").to_string()
}

async fn introspect_as(s: &TestServer, client: (&str, &str), token: &str) -> Value {
    let r = s
        .post_form(
            "/oauth2/introspect",
            &[("authorization", &basic(client.0, client.1))],
            &[("token", token)],
        )
        .await;
    assert_eq!(r.status(), 200, "introspect");
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

// ---------------------------------------------------------------------------------------
// Revocation

#[tokio::test]
async fn a_revoked_access_token_is_refused_on_the_very_next_request() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s).await;
    assert_bearer_ok(&s, &access).await;
    let r = revoke_as(&s, SVC, &[("token", &access)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_bearer_refused(&s, &access).await;
    // And it stays refused.
    assert_bearer_refused(&s, &access).await;
}

#[tokio::test]
async fn revoking_the_refresh_token_kills_the_access_token_of_its_family() {
    let s = TestServer::start(CONFIG).await;
    let (access, refresh) = alice_pair(&s).await;
    let (other_access, _) = alice_pair(&s).await;
    assert_bearer_ok(&s, &access).await;
    revoke_ok(&s, SVC, &[("token", &refresh)]).await;
    assert_bearer_refused(&s, &access).await;
    assert_refresh_refused(&s, SVC, &refresh).await;
    // Another grant of the same user and client is another family: untouched.
    assert_bearer_ok(&s, &other_access).await;
}

#[tokio::test]
async fn revoking_the_access_token_kills_the_refresh_token_of_its_family() {
    let s = TestServer::start(CONFIG).await;
    let (access, refresh) = alice_pair(&s).await;
    revoke_ok(&s, SVC, &[("token", &access)]).await;
    assert_bearer_refused(&s, &access).await;
    assert_refresh_refused(&s, SVC, &refresh).await;
}

/// fosite 167, keycloak 35813: revoking the newest refresh token kills every token minted
/// along the rotation chain, the first access token included.
#[tokio::test]
async fn revoking_after_rotation_kills_the_whole_rotation_chain() {
    let s = TestServer::start(CONFIG).await;
    let (a0, r0) = alice_pair(&s).await;
    let (a1, r1) = rotate(&s, &r0).await;
    let (a2, r2) = rotate(&s, &r1).await;
    for a in [&a0, &a1, &a2] {
        assert_bearer_ok(&s, a).await;
    }
    revoke_ok(&s, SVC, &[("token", &r2)]).await;
    for a in [&a0, &a1, &a2] {
        assert_bearer_refused(&s, a).await;
    }
    assert_refresh_refused(&s, SVC, &r2).await;
}

#[tokio::test]
async fn revoking_the_first_access_token_after_rotation_kills_the_newest_tokens() {
    let s = TestServer::start(CONFIG).await;
    let (a0, r0) = alice_pair(&s).await;
    let (a1, r1) = rotate(&s, &r0).await;
    revoke_ok(&s, SVC, &[("token", &a0)]).await;
    assert_bearer_refused(&s, &a1).await;
    assert_refresh_refused(&s, SVC, &r1).await;
}

/// RFC 9700 4.14.2: replaying a rotated-away refresh token revokes the family, and on this
/// instance that takes effect at once, for access tokens already in the cache too.
#[tokio::test]
async fn a_replayed_refresh_token_kills_the_cached_tokens_of_its_family_at_once() {
    let s = TestServer::start(CONFIG).await;
    let (a0, r0) = alice_pair(&s).await;
    let (a1, r1) = rotate(&s, &r0).await;
    assert_bearer_ok(&s, &a0).await;
    assert_bearer_ok(&s, &a1).await;
    assert_refresh_refused(&s, SVC, &r0).await;
    assert_bearer_refused(&s, &a1).await;
    assert_bearer_refused(&s, &a0).await;
    assert_refresh_refused(&s, SVC, &r1).await;
}

#[tokio::test]
async fn a_wrong_hint_still_finds_an_access_token() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s).await;
    revoke_ok(
        &s,
        SVC,
        &[("token", &access), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_bearer_refused(&s, &access).await;
}

#[tokio::test]
async fn a_wrong_hint_still_finds_a_refresh_token() {
    let s = TestServer::start(CONFIG).await;
    let (access, refresh) = alice_pair(&s).await;
    revoke_ok(
        &s,
        SVC,
        &[("token", &refresh), ("token_type_hint", "access_token")],
    )
    .await;
    assert_refresh_refused(&s, SVC, &refresh).await;
    assert_bearer_refused(&s, &access).await;
}

#[tokio::test]
async fn a_right_hint_works_too() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s).await;
    revoke_ok(
        &s,
        SVC,
        &[("token", &access), ("token_type_hint", "access_token")],
    )
    .await;
    assert_bearer_refused(&s, &access).await;
}

#[tokio::test]
async fn unknown_garbage_and_already_revoked_tokens_get_200() {
    let s = TestServer::start(CONFIG).await;
    // Well formed and correctly MACed, but never issued.
    let unknown = s.edge.codec().mint(TokenKind::Access);
    revoke_ok(&s, SVC, &[("token", unknown.token.expose())]).await;
    let unknown_refresh = s.edge.codec().mint(TokenKind::Refresh);
    revoke_ok(&s, SVC, &[("token", unknown_refresh.token.expose())]).await;
    for garbage in ["garbage", "oea_", "oea_!!!!", &"x".repeat(500)] {
        revoke_ok(&s, SVC, &[("token", garbage)]).await;
    }
    let access = svc_access(&s).await;
    revoke_ok(&s, SVC, &[("token", &access)]).await;
    revoke_ok(&s, SVC, &[("token", &access)]).await;
    assert_bearer_refused(&s, &access).await;
}

#[tokio::test]
async fn an_unsupported_hint_is_unsupported_token_type() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s).await;
    let r = revoke_as(
        &s,
        SVC,
        &[("token", &access), ("token_type_hint", "something_else")],
    )
    .await;
    let (status, body) = error_of(r).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unsupported_token_type");
    // Nothing was revoked.
    assert_bearer_ok(&s, &access).await;
}

#[tokio::test]
async fn another_clients_token_is_not_revoked_and_its_owner_not_named() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s).await;
    let (_, refresh) = alice_pair(&s).await;
    for token in [&access, &refresh] {
        let r = revoke_as(&s, OTHER, &[("token", token)]).await;
        assert_eq!(r.status(), 400);
        let text = r.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"], "unauthorized_client");
        assert!(!text.contains("svc"), "the answer names the owner: {text}");
        assert!(!text.contains("alice"), "the answer names the user: {text}");
    }
    assert_bearer_ok(&s, &access).await;
    // The refresh token was left alone too: its owner can still use it.
    rotate(&s, &refresh).await;
}

/// CVE-2018-1000211: a public client's revocation request must really revoke.
#[tokio::test]
async fn a_public_client_revoking_its_own_token_really_revokes_it() {
    let s = TestServer::start(CONFIG).await;
    let r = s
        .post_form(
            "/oauth2/token",
            &[],
            &[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("username", "alice"),
                ("password", "wonderland"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let access = str_of(&t, "access_token").to_string();
    let refresh = str_of(&t, "refresh_token").to_string();
    assert_bearer_ok(&s, &access).await;

    let r = s
        .post_form(
            "/oauth2/revoke",
            &[],
            &[("client_id", "app"), ("token", &access)],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_bearer_refused(&s, &access).await;
    let r = s
        .post_form(
            "/oauth2/token",
            &[],
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "app"),
                ("refresh_token", &refresh),
            ],
        )
        .await;
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_public_client_cannot_revoke_another_clients_token() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s).await;
    let r = s
        .post_form(
            "/oauth2/revoke",
            &[],
            &[("client_id", "app"), ("token", &access)],
        )
        .await;
    let (status, body) = error_of(r).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unauthorized_client");
    assert_bearer_ok(&s, &access).await;
}

#[tokio::test]
async fn a_missing_token_is_invalid_request() {
    let s = TestServer::start(CONFIG).await;
    let (status, body) = error_of(revoke_as(&s, SVC, &[]).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_request");
    // An empty parameter counts as absent.
    let (status, body) = error_of(revoke_as(&s, SVC, &[("token", "")]).await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn revocation_without_client_authentication_is_invalid_client() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s).await;
    let r = s
        .post_form("/oauth2/revoke", &[], &[("token", &access)])
        .await;
    let (status, body) = error_of(r).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert_bearer_ok(&s, &access).await;
    // A wrong secret is the same answer, and with Basic it carries the Basic challenge.
    let r = revoke_as(&s, ("svc", "wrong"), &[("token", &access)]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Basic realm=\"oauth-edge\""
    );
    let (_, body) = error_of(r).await;
    assert_eq!(body["error"], "invalid_client");
    assert_bearer_ok(&s, &access).await;
}

// ---------------------------------------------------------------------------------------
// Introspection

#[tokio::test]
async fn an_active_token_introspects_with_its_claims() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s).await;
    let v = introspect_as(&s, SVC, &access).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["client_id"], "svc");
    assert_eq!(v["scope"], "read");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["sub"], "svc");
    assert_eq!(v["iss"], "http://auth.test");
    assert!(v.get("username").is_none(), "{v}");
    let (iat, exp) = (v["iat"].as_i64().unwrap(), v["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 3600);
    let now = oauth_edge::unix_now();
    assert!((now - 5..=now).contains(&iat), "iat {iat} now {now}");
}

#[tokio::test]
async fn a_password_token_introspects_with_its_user() {
    let s = TestServer::start(CONFIG).await;
    let (access, refresh) = alice_pair(&s).await;
    let v = introspect_as(&s, SVC, &access).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["username"], "alice");
    assert_eq!(v["sub"], "alice");
    assert_eq!(v["client_id"], "svc");
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["exp"].is_i64() && v["iat"].is_i64(), "{v}");
    let v = introspect_as(&s, SVC, &refresh).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["username"], "alice");
    assert_eq!(v["token_type"], "refresh_token");
}

#[tokio::test]
async fn revoked_and_garbage_tokens_introspect_as_exactly_inactive() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s).await;
    revoke_ok(&s, SVC, &[("token", &access)]).await;
    assert_eq!(
        introspect_as(&s, SVC, &access).await,
        json!({"active": false})
    );
    for garbage in ["garbage", "oea_x"] {
        assert_eq!(
            introspect_as(&s, SVC, garbage).await,
            json!({"active": false})
        );
    }
    let unknown = s.edge.codec().mint(TokenKind::Access);
    assert_eq!(
        introspect_as(&s, SVC, unknown.token.expose()).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn an_expired_token_introspects_as_exactly_inactive() {
    let config = CONFIG.replacen("[store]", "[tokens]\naccess_ttl = \"1s\"\n\n[store]", 1);
    let clock = std::sync::Arc::new(oauth_edge::clock::ManualClock::starting_now());
    let s = TestServer::with_clock(&config, clock.clone()).await;
    let access = svc_access(&s).await;
    assert_eq!(introspect_as(&s, SVC, &access).await["active"], true);
    clock.advance(std::time::Duration::from_millis(2100));
    assert_eq!(
        introspect_as(&s, SVC, &access).await,
        json!({"active": false})
    );
    assert_bearer_refused(&s, &access).await;
}

/// A refresh token used up by rotation can never be used again (a replay revokes the family),
/// so it is not active (RFC 7662 2.2).
#[tokio::test]
async fn a_rotated_away_refresh_token_introspects_as_inactive() {
    let s = TestServer::start(CONFIG).await;
    let (_, r0) = alice_pair(&s).await;
    // Introspect first, so that a cached status could linger past the rotation.
    assert_eq!(introspect_as(&s, SVC, &r0).await["active"], true);
    let (_, r1) = rotate(&s, &r0).await;
    assert_eq!(introspect_as(&s, SVC, &r0).await, json!({"active": false}));
    assert_eq!(introspect_as(&s, SVC, &r1).await["active"], true);
    // Introspection is only a read: the rotation chain is intact.
    rotate(&s, &r1).await;
}

#[tokio::test]
async fn another_client_sees_a_foreign_token_as_inactive() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s).await;
    assert_eq!(
        introspect_as(&s, OTHER, &access).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn a_resource_server_may_introspect_any_token() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s).await;
    let v = introspect_as(&s, RS, &access).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["client_id"], "svc");
    let (alice, _) = alice_pair(&s).await;
    let v = introspect_as(&s, RS, &alice).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["username"], "alice");
}

#[tokio::test]
async fn a_public_client_cannot_introspect() {
    let s = TestServer::start(CONFIG).await;
    let r = s
        .post_form(
            "/oauth2/token",
            &[],
            &[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("username", "alice"),
                ("password", "wonderland"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let access = str_of(&t, "access_token");
    let r = s
        .post_form(
            "/oauth2/introspect",
            &[],
            &[("client_id", "app"), ("token", access)],
        )
        .await;
    let (status, body) = error_of(r).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    let text = body.to_string();
    assert!(
        !text.contains("alice") && !text.contains("\"active\""),
        "{text}"
    );
}

#[tokio::test]
async fn introspection_requires_a_token_and_a_client() {
    let s = TestServer::start(CONFIG).await;
    let r = s
        .post_form(
            "/oauth2/introspect",
            &[("authorization", &basic("svc", "svc-secret"))],
            &[],
        )
        .await;
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let access = svc_access(&s).await;
    let r = s
        .post_form("/oauth2/introspect", &[], &[("token", &access)])
        .await;
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

// ---------------------------------------------------------------------------------------
// Metadata

#[tokio::test]
async fn the_metadata_document_names_the_endpoints_and_grants() {
    let s = TestServer::start(CONFIG).await;
    let r = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["issuer"], "http://auth.test");
    assert_eq!(v["token_endpoint"], "http://auth.test/oauth2/token");
    assert_eq!(v["revocation_endpoint"], "http://auth.test/oauth2/revoke");
    assert_eq!(
        v["introspection_endpoint"],
        "http://auth.test/oauth2/introspect"
    );
    let grants: Vec<&str> = v["grant_types_supported"]
        .as_array()
        .expect("grant_types_supported")
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    for g in [
        "client_credentials",
        "password",
        "refresh_token",
        "temporary_user",
        "anonymous_user",
    ] {
        assert!(grants.contains(&g), "{g} missing from {grants:?}");
    }
    // The introspection endpoint does not accept a bare public client id.
    let methods = v["introspection_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(!methods.contains(&json!("none")), "{methods:?}");
}

#[tokio::test]
async fn the_metadata_document_is_get_only() {
    let s = TestServer::start(CONFIG).await;
    let r = s
        .post_form(
            "/.well-known/oauth-authorization-server",
            &[],
            &[("a", "b")],
        )
        .await;
    assert_eq!(r.status(), 405);
    let allow = r.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET"), "{allow}");
}

// ---------------------------------------------------------------------------------------
// Another instance

/// camunda 44844: an instance that did not see the revocation stops accepting the token
/// within the cache TTL, even though traffic keeps using it all along (time to live, not
/// idle expiry).
#[tokio::test]
async fn another_instance_stops_accepting_a_revoked_token_within_the_cache_ttl() {
    let config = CONFIG.replacen("[store]", "[cache]\nttl = \"1s\"\n\n[store]", 1);
    let shared = std::sync::Arc::new(oauth_edge::store::MemoryStore::new());
    let a = TestServer::with_store(&config, shared.clone()).await;
    let b = TestServer::with_store(&config, shared).await;
    let access = svc_access(&a).await;
    // b reads it from the store once and caches it.
    assert_bearer_ok(&b, &access).await;
    revoke_ok(&a, SVC, &[("token", &access)]).await;
    assert_bearer_refused(&a, &access).await;
    let revoked_at = std::time::Instant::now();
    let mut refused_after = None;
    while revoked_at.elapsed() < std::time::Duration::from_secs(5) {
        let status = b.get_bearer("/api/things", &access).await.status();
        match (status.as_u16(), refused_after) {
            (200, None) => {}
            (401, None) => refused_after = Some(revoked_at.elapsed()),
            (401, Some(_)) => {}
            (s, r) => panic!("status {s} after refusal began at {r:?}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let after = refused_after.expect("the other instance never saw the revocation");
    assert!(
        after <= std::time::Duration::from_millis(2500),
        "seen only after {after:?}"
    );
}
