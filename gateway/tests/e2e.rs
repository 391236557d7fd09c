//! End-to-end tests of the real `oauth-edge` binary: each test writes a config into a
//! temporary directory (SQLite store there), starts the gateway in front of an echo upstream
//! it runs itself, and drives it over the network.
//!
//! This file: the OAuth2 endpoints, and passthrough admission and what reaches the upstream.
//! Framing, size limits and deadlines, upstream failures, load balancing and the logs are in
//! `e2e_limits.rs`; transports (TLS, HTTP/2, h2c), shutdown, config errors and the demo in
//! `e2e_process.rs`.

mod common;

use std::time::Duration;

use common::*;
use reqwest::header::HeaderName;
use serde_json::Value;

const WWW_AUTH_NO_TOKEN: &str = "Bearer realm=\"oauth-edge\"";
const WWW_AUTH_INVALID: &str = "Bearer realm=\"oauth-edge\", error=\"invalid_token\", error_description=\"the access token is invalid\"";

// ---------------------------------------------------------------------------------------
// Endpoints

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_with_basic() {
    let (_echo, gw) = standard().await;
    let r = gw
        .post_form(
            "/oauth2/token",
            Some(SVC),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_no_store(&r);
    assert!(header(&r, "content-type")
        .unwrap()
        .starts_with("application/json"));
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "read");
    assert_eq!(t["expires_in"], 3600);
    assert!(
        t["access_token"].as_str().unwrap().starts_with("oea_"),
        "{t}"
    );
    assert!(t.get("refresh_token").is_none(), "{t}");

    // A wrong secret and an unknown client: the same 401 invalid_client, Basic challenge.
    for who in [("svc", "wrong-secret"), ("nobody", "whatever")] {
        let r = gw
            .post_form(
                "/oauth2/token",
                Some(who),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(
            header(&r, "www-authenticate"),
            Some("Basic realm=\"oauth-edge\"")
        );
        assert_no_store(&r);
        assert_error(r, 401, "invalid_client").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_grant_refresh_rotation_and_replay_kill_the_family() {
    let (echo, gw) = standard().await;
    let t0 = gw
        .token(
            SVC,
            &[
                ("grant_type", "password"),
                ("username", ALICE.0),
                ("password", ALICE.1),
                ("scope", "read write"),
            ],
        )
        .await;
    assert_eq!(t0["scope"], "read write");
    let a0 = t0["access_token"].as_str().unwrap().to_string();
    let r0 = t0["refresh_token"].as_str().unwrap().to_string();
    assert!(r0.starts_with("oer_"), "{t0}");

    // The user reaches the upstream.
    let v = echoed(gw.get_bearer("/api/me", &a0).await).await;
    assert_eq!(v["headers"]["x-oauth-user"], "alice");
    assert_eq!(v["headers"]["x-oauth-client-id"], "svc");
    assert_eq!(v["headers"]["x-oauth-scope"], "read write");

    // A wrong password is invalid_grant.
    let r = gw
        .post_form(
            "/oauth2/token",
            Some(SVC),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "not-her-password"),
            ],
        )
        .await;
    assert_error(r, 400, "invalid_grant").await;

    // Rotation: a new pair each time, the old refresh token spent.
    let t1 = gw
        .token(
            SVC,
            &[("grant_type", "refresh_token"), ("refresh_token", &r0)],
        )
        .await;
    let a1 = t1["access_token"].as_str().unwrap().to_string();
    let r1 = t1["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r0);
    assert_ne!(a1, a0);
    assert_eq!(t1["scope"], "read write");
    assert_eq!(gw.get_bearer("/api/me", &a1).await.status(), 200);

    // Replaying r0 is refused, and kills the whole family: r1, a1 and a0.
    let r = gw
        .post_form(
            "/oauth2/token",
            Some(SVC),
            &[("grant_type", "refresh_token"), ("refresh_token", &r0)],
        )
        .await;
    assert_error(r, 400, "invalid_grant").await;
    let r = gw
        .post_form(
            "/oauth2/token",
            Some(SVC),
            &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
        )
        .await;
    assert_error(r, 400, "invalid_grant").await;
    let before = echo.hits();
    for a in [&a1, &a0] {
        let r = gw.get_bearer("/api/me", a).await;
        assert_eq!(header(&r, "www-authenticate"), Some(WWW_AUTH_INVALID));
        assert_error(r, 401, "invalid_token").await;
    }
    assert_eq!(echo.hits(), before, "a dead family reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_at_the_very_next_request() {
    let (echo, gw) = standard().await;
    let token = gw.client_token(SVC, None).await;
    // Warm the cache: the next refusal must not wait for a cache expiry.
    assert_eq!(gw.get_bearer("/api/x", &token).await.status(), 200);
    assert_eq!(gw.get_bearer("/api/x", &token).await.status(), 200);

    // Another client cannot revoke it, and learns nothing.
    let r = gw
        .post_form("/oauth2/revoke", Some(OTHER), &[("token", &token)])
        .await;
    assert_error(r, 400, "unauthorized_client").await;
    assert_eq!(gw.get_bearer("/api/x", &token).await.status(), 200);

    let r = gw
        .post_form(
            "/oauth2/revoke",
            Some(SVC),
            &[("token", &token), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_no_store(&r);

    let hits = echo.hits();
    let r = gw.get_bearer("/api/x", &token).await;
    assert_eq!(header(&r, "www-authenticate"), Some(WWW_AUTH_INVALID));
    assert_error(r, 401, "invalid_token").await;
    assert_eq!(echo.hits(), hits);

    // Revoking again, or an unknown token, is still 200 (RFC 7009 2.2).
    let r = gw
        .post_form("/oauth2/revoke", Some(SVC), &[("token", &token)])
        .await;
    assert_eq!(r.status(), 200);
    let r = gw
        .post_form("/oauth2/revoke", Some(SVC), &[("token", "oea_not-a-token")])
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection() {
    // A configured issuer is the `iss` of every introspection answer.
    const ISSUER: &str = "https://edge.example";
    let echo = Echo::start("echo").await;
    let s = Setup::new();
    let config = format!("issuer = \"{ISSUER}\"\n{}", s.standard(&echo));
    let gw = s.launch(&config).await;
    let token = gw.client_token(SVC, Some("read write")).await;
    let introspect = |client: (&'static str, &'static str), token: String| {
        let gw = &gw;
        async move {
            let r = gw
                .post_form("/oauth2/introspect", Some(client), &[("token", &token)])
                .await;
            assert_eq!(r.status(), 200);
            assert_no_store(&r);
            r.json::<Value>().await.unwrap()
        }
    };
    let v = introspect(SVC, token.clone()).await;
    assert_eq!(v["active"], true, "{v}");
    assert_eq!(v["client_id"], "svc");
    assert_eq!(v["scope"], "read write");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["iss"], ISSUER);
    assert!(v["exp"].is_i64() && v["iat"].is_i64(), "{v}");

    // A resource server sees every client's tokens; another client sees nothing.
    assert_eq!(introspect(RS, token.clone()).await["active"], true);
    assert_eq!(
        introspect(OTHER, token.clone()).await,
        serde_json::json!({ "active": false })
    );

    let r = gw
        .post_form("/oauth2/revoke", Some(SVC), &[("token", &token)])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        introspect(SVC, token.clone()).await,
        serde_json::json!({ "active": false })
    );
    assert_eq!(
        introspect(SVC, "garbage".into()).await,
        serde_json::json!({ "active": false })
    );

    // Without client authentication: 401 invalid_client.
    let r = gw
        .post_form("/oauth2/introspect", None, &[("token", &token)])
        .await;
    assert_error(r, 401, "invalid_client").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_document() {
    let (echo, gw) = standard().await;
    let r = gw
        .http
        .get(gw.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let issuer = format!("http://{}", gw.listen());
    assert_eq!(v["issuer"], issuer.as_str());
    assert_eq!(v["token_endpoint"], format!("{issuer}/oauth2/token"));
    assert_eq!(v["revocation_endpoint"], format!("{issuer}/oauth2/revoke"));
    assert_eq!(
        v["introspection_endpoint"],
        format!("{issuer}/oauth2/introspect")
    );
    let grants: Vec<&str> = v["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    for g in ["client_credentials", "password", "refresh_token"] {
        assert!(grants.contains(&g), "{v}");
    }
    let r = gw
        .http
        .post(gw.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(header(&r, "allow"), Some("GET, HEAD"));
    assert_eq!(echo.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_requests_of_the_wrong_shape() {
    let (echo, gw) = standard().await;
    // GET on the token endpoint.
    let r = gw.http.get(gw.url("/oauth2/token")).send().await.unwrap();
    assert_eq!(header(&r, "allow"), Some("POST"));
    assert_no_store(&r);
    assert_error(r, 405, "invalid_request").await;

    // A 20 KiB form (the limit is 16 KiB).
    let big = "x".repeat(20 * 1024);
    let r = gw
        .post_form(
            "/oauth2/token",
            Some(SVC),
            &[("grant_type", "client_credentials"), ("pad", &big)],
        )
        .await;
    assert_error(r, 413, "invalid_request").await;

    // The same, without a declared length (chunked): refused while reading.
    let body = format!("grant_type=client_credentials&pad={big}");
    let raw = format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let (resp, _) = raw_exchange(gw.listen(), raw.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(raw_status(&resp), Some(413), "{resp}");
    assert!(resp.contains("invalid_request"), "{resp}");

    // JSON instead of a form.
    let r = gw
        .http
        .post(gw.url("/oauth2/token"))
        .basic_auth(SVC.0, Some(SVC.1))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"client_credentials"}"#)
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;

    // And the endpoint still works on a fresh request.
    gw.client_token(SVC, None).await;
    assert_eq!(echo.hits(), 0, "endpoint traffic reached the upstream");
}

// ---------------------------------------------------------------------------------------
// Passthrough

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_routes_pass_the_identity_and_refuse_the_rest() {
    let (echo, gw) = standard().await;
    let token = gw.client_token(SVC, Some("read write")).await;
    let v = echoed(gw.get_bearer("/api/things?x=1", &token).await).await;
    assert_eq!(v["server"], "echo");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["uri"], "/api/things?x=1");
    assert_eq!(v["headers"]["x-oauth-client-id"], "svc");
    assert_eq!(v["headers"]["x-oauth-scope"], "read write");
    assert!(v["headers"].get("x-oauth-user").is_none(), "{v}");
    let seen = echo.last();
    assert_eq!(seen.one("x-oauth-client-id"), Some("svc"));

    // A POST body streams through untouched.
    let r = gw
        .http
        .post(gw.url("/api/things"))
        .bearer_auth(&token)
        .body("hello upstream")
        .send()
        .await
        .unwrap();
    let v = echoed(r).await;
    assert_eq!(v["method"], "POST");
    assert_eq!(v["body"], "hello upstream");

    let hits = echo.hits();
    // No bearer: 401 with the bare challenge, nothing upstream.
    let r = gw.http.get(gw.url("/api/things")).send().await.unwrap();
    assert_eq!(header(&r, "www-authenticate"), Some(WWW_AUTH_NO_TOKEN));
    assert_error(r, 401, "unauthorized").await;
    // A request matching no route needs a bearer token too (the default route).
    let r = gw.http.get(gw.url("/elsewhere")).send().await.unwrap();
    assert_eq!(header(&r, "www-authenticate"), Some(WWW_AUTH_NO_TOKEN));
    assert_eq!(r.status(), 401);
    // A forged token.
    let r = gw.get_bearer("/api/things", "oea_forged").await;
    assert_eq!(header(&r, "www-authenticate"), Some(WWW_AUTH_INVALID));
    assert_error(r, 401, "invalid_token").await;
    // Insufficient scope: 403.
    let r = gw.get_bearer("/api/admin/users", &token).await;
    assert_eq!(
        header(&r, "www-authenticate"),
        Some("Bearer realm=\"oauth-edge\", error=\"insufficient_scope\", error_description=\"the access token lacks a required scope\", scope=\"admin\"")
    );
    assert_error(r, 403, "insufficient_scope").await;
    assert_eq!(echo.hits(), hits, "a refused request reached the upstream");

    // With the scope it goes through.
    let admin = gw.client_token(SVC, Some("admin")).await;
    let v = echoed(gw.get_bearer("/api/admin/users", &admin).await).await;
    assert_eq!(v["headers"]["x-oauth-scope"], "admin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let (echo, gw) = standard().await;
    let token = gw.client_token(SVC, None).await;
    let spoof = |req: reqwest::RequestBuilder| {
        req.header("X-OAuth-Client-Id", "evil")
            .header(HeaderName::from_static("x_oauth_user"), "mallory")
            .header("X-OAUTH-SCOPE", "admin")
            .header("x-oauth-user", "mallory2")
            .header(HeaderName::from_static("x_oauth_client_id"), "evil2")
    };
    let check = |seen: &Seen, identity: Option<(&str, &str)>| {
        let spoofed = [
            "x_oauth_user",
            "x_oauth_client_id",
            "x_oauth_scope",
            "x-oauth-user",
        ];
        for name in spoofed {
            assert!(!seen.has(name), "{name} reached the upstream: {seen:?}");
        }
        match identity {
            Some((client, scope)) => {
                assert_eq!(seen.all("x-oauth-client-id"), vec![client], "{seen:?}");
                assert_eq!(seen.all("x-oauth-scope"), vec![scope], "{seen:?}");
            }
            None => {
                assert!(!seen.has("x-oauth-client-id"), "{seen:?}");
                assert!(!seen.has("x-oauth-scope"), "{seen:?}");
            }
        }
        for (_, v) in &seen.headers {
            assert!(!v.contains("evil") && !v.contains("mallory"), "{seen:?}");
        }
    };

    // A bearer route.
    let r = spoof(gw.http.get(gw.url("/api/x")).bearer_auth(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    check(&echo.last(), Some(("svc", "read")));

    // An anonymous route.
    let r = spoof(gw.http.get(gw.url("/public/x")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    check(&echo.last(), None);

    // A client route.
    let r = spoof(
        gw.http
            .get(gw.url("/client/x"))
            .basic_auth(OTHER.0, Some(OTHER.1)),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    check(&echo.last(), Some(("other", "read")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_bearer_tokens_are_not_forwarded() {
    let (echo, gw) = standard().await;
    let (id, secret) = SVC;

    // Basic on a client route.
    let r = gw
        .http
        .get(gw.url("/client/x?keep=1"))
        .basic_auth(id, Some(secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = echo.last();
    assert!(!seen.has("authorization"), "{seen:?}");
    assert_eq!(seen.uri, "/client/x?keep=1");
    assert_eq!(seen.one("x-oauth-client-id"), Some("svc"));

    // X-IBM headers.
    let r = gw
        .http
        .get(gw.url("/client/x"))
        .header("X-IBM-Client-Id", id)
        .header("X-IBM-Client-Secret", secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = echo.last();
    assert!(!seen.has("x-ibm-client-secret"), "{seen:?}");
    assert!(!seen.has("authorization"), "{seen:?}");
    assert_eq!(seen.one("x-oauth-client-id"), Some("svc"));

    // Query parameters: the secret is cut out, the rest kept as sent.
    let r = gw
        .http
        .get(gw.url(&format!(
            "/client/x?client_id={id}&client_secret={secret}&keep=1"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = echo.last();
    assert_eq!(seen.uri, format!("/client/x?client_id={id}&keep=1"));
    assert_eq!(seen.one("x-oauth-client-id"), Some("svc"));

    // A wrong secret on a client route: 401, nothing upstream.
    let hits = echo.hits();
    let r = gw
        .http
        .get(gw.url("/client/x"))
        .basic_auth(id, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&r, "www-authenticate"),
        Some("Basic realm=\"oauth-edge\"")
    );
    assert_error(r, 401, "invalid_client").await;
    let r = gw.http.get(gw.url("/client/x")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(echo.hits(), hits);

    // A bearer route drops the token; a forward_bearer route keeps it.
    let token = gw.client_token(SVC, None).await;
    assert_eq!(gw.get_bearer("/api/x", &token).await.status(), 200);
    assert!(!echo.last().has("authorization"));
    assert_eq!(gw.get_bearer("/keep/x", &token).await.status(), 200);
    let bearer = format!("Bearer {token}");
    assert_eq!(echo.last().all("authorization"), vec![bearer.as_str()]);
}

#[tokio::test]
async fn a_rate_limited_client_gets_quota_headers_and_then_429() {
    let echo = Echo::start("echo").await;
    let setup = Setup::new();
    let config = format!(
        r#"{head}
[[clients]]
id = "prototype"
secret = "prototype-secret-0123456789"
scopes = ["read"]
rate_limit = {{ requests = 2, per = "1d" }}

[[routes]]
path = "/api"
require = "bearer"
upstream = "echo"
{gateway}{upstream}"#,
        head = setup.head(),
        gateway = setup.gateway(""),
        upstream = upstream("echo", &[echo.addr], ""),
    );
    let gw = setup.launch(&config).await;
    let token = gw
        .client_token(("prototype", "prototype-secret-0123456789"), None)
        .await;
    for left in ["1", "0"] {
        let r = gw.get_bearer("/api/x", &token).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ratelimit-limit"], "2");
        assert_eq!(r.headers()["x-ratelimit-remaining"], left);
        let reset: u64 = r.headers()["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((86_390..=86_400).contains(&reset), "{reset}");
    }
    let hits = echo.hits();
    let r = gw.get_bearer("/api/x", &token).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        echo.hits(),
        hits,
        "a refused request never reaches the upstream"
    );
    // The quota headers are the gateway's, never the client's own copies passed upstream.
    assert!(!echo.last().has("x-ratelimit-limit"));
}
