//! Seed: `/work/shared/seeds/002_be24f1fa3803d95a.txt` (IBM API Connect "Revoke Token", Swagger 2.0).
//!
//! The `ibm` profile end to end: the real `oauth-edge` binary with `rfc` mounted at `/oauth2`
//! (to issue tokens) and `ibm` at `/api`, an echo upstream behind `require = "client"` and
//! `require = "bearer"` routes under `/api`, driven with reqwest. Every request the document
//! shows or describes: `POST /api/password/oauth2/revoke` with HTTP Basic and with
//! `X-IBM-Client-Id`/`X-IBM-Client-Secret` as headers or `client_id`/`client_secret` query
//! parameters in the four combinations of its `security` list, `{"status":"success"}`, its
//! `ErrorResponse`, and the access/refresh pairing ("if you pass access Token in the request,
//! the corresponding refresh token will also be revoked and vice-versa").

mod common;

use common::*;
use serde_json::Value;

const REVOKE: &str = "/api/password/oauth2/revoke";
/// `RevokeTokenResponse`, byte for byte.
const SUCCESS: &str = r#"{"status":"success"}"#;
/// The one answer to a client that did not prove itself (unknown id, wrong secret, a
/// confidential client's id alone).
const AUTH_FAILED: &str =
    r#"{"error":"unauthorized_client","error_description":"client authentication failed"}"#;
const BASIC_CHALLENGE: &str = "Basic realm=\"oauth-edge\"";

/// The profiles and routes of these tests: the APIs behind API Connect live under its base
/// path too, next to the revoke endpoint.
const IBM: &str = r#"
[limits]
auth_failures = 100

[[clients]]
id = "kiosk"
public = true
grants = ["password"]
scopes = ["read"]

[[profiles]]
kind = "rfc"
base = "/oauth2"

[[profiles]]
kind = "ibm"
base = "/api"

[[routes]]
path = "/api/accounts"
require = "client"
upstream = "echo"

[[routes]]
path = "/api/data"
require = "bearer"
upstream = "echo"
"#;

async fn ibm() -> (Echo, Gateway) {
    Setup::launch_with_echo(&format!("{CLIENTS}{IBM}")).await
}

/// POSTs `form` to `path?query` with `headers` (a form body, so the right content type).
async fn post(
    gw: &Gateway,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> reqwest::Response {
    let url = if query.is_empty() {
        gw.url(path)
    } else {
        gw.url(&format!("{path}?{query}"))
    };
    let mut req = gw.http.post(url).form(form);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

type Headers<'a> = Vec<(&'a str, &'a str)>;
/// A request's label, query string and headers.
type Case<'a> = (&'a str, &'a str, Headers<'a>);

/// A revoke request to the IBM endpoint.
async fn revoke(
    gw: &Gateway,
    query: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> reqwest::Response {
    post(gw, REVOKE, query, headers, form).await
}

/// `Authorization: Basic` for `(id, secret)`, as the document's example builds it.
fn basic((id, secret): (&str, &str)) -> String {
    format!("Basic {}", base64_encode(&format!("{id}:{secret}")))
}

/// Standard base64 (the gateway's dev-dependencies have no base64 crate).
fn base64_encode(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Asserts the document's 200: `{"status":"success"}` exactly, as JSON, not cached.
async fn assert_success(r: reqwest::Response, what: &str) {
    assert_eq!(
        header(&r, "content-type"),
        Some("application/json"),
        "{what}"
    );
    assert_no_store(&r);
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!((status, body.as_str()), (200, SUCCESS), "{what}");
}

/// Asserts an `ErrorResponse`: the status and the whole body.
async fn assert_body(r: reqwest::Response, status: u16, body: &str, what: &str) {
    assert_no_store(&r);
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!((s, text.as_str()), (status, body), "{what}");
}

/// An access token and a refresh token for alice, issued to `svc` under `rfc`.
async fn pair(gw: &Gateway) -> (String, String) {
    let t = gw
        .token(
            SVC,
            &[
                ("grant_type", "password"),
                ("username", ALICE.0),
                ("password", ALICE.1),
            ],
        )
        .await;
    (
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// The status of a call to the bearer-protected API with `token`.
async fn api_status(gw: &Gateway, token: &str) -> u16 {
    gw.get_bearer("/api/data/balance", token)
        .await
        .status()
        .as_u16()
}

/// The status and `error` of a refresh with `refresh`.
async fn refresh(gw: &Gateway, refresh: &str) -> (u16, Value) {
    let r = gw
        .post_form(
            "/oauth2/token",
            Some(SVC),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    status_json(r).await
}

// ---------------------------------------------------------------------------------------
// The endpoint

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_revokes_and_answers_status_success() {
    let (echo, gw) = ibm().await;
    // The document's example, `Base64(client_id:client_secret)`, with its parentheses.
    assert_eq!(
        basic(("(client_id", "client_secret)")),
        "Basic KGNsaWVudF9pZDpjbGllbnRfc2VjcmV0KQ=="
    );
    let token = gw.client_token(SVC, None).await;
    assert_eq!(api_status(&gw, &token).await, 200);
    let hits = echo.hits();

    // The document's own header: `Authorization: Basic Base64(client_id:client_secret)`,
    // `Content-Type: application/x-www-form-urlencoded`, the token in the body.
    let r = gw
        .http
        .post(gw.url(REVOKE))
        .header("Authorization", basic(SVC))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_success(r, "Basic").await;
    assert_eq!(api_status(&gw, &token).await, 401);
    // The edge answered both itself: neither reached the upstream.
    assert_eq!(echo.hits(), hits);

    // Revoking it again, with a correct hint: still success (RFC 7009 2.2).
    let r = revoke(
        &gw,
        "",
        &[("authorization", &basic(SVC))],
        &[("token", &token), ("token_type_hint", "access_token")],
    )
    .await;
    assert_success(r, "again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_x_ibm_combinations_each_revoke() {
    let (_echo, gw) = ibm().await;
    let (id, secret) = SVC;
    let q_id = format!("client_id={id}");
    let q_secret = format!("client_secret={secret}");
    let q_both = format!("client_id={id}&client_secret={secret}");
    // The document's `security` list, in its order.
    let combos: [Case; 4] = [
        ("query id, query secret", &q_both, vec![]),
        (
            "header id, query secret",
            &q_secret,
            vec![("X-IBM-Client-Id", id)],
        ),
        (
            "query id, header secret",
            &q_id,
            vec![("X-IBM-Client-Secret", secret)],
        ),
        (
            "header id, header secret",
            "",
            vec![("X-IBM-Client-Id", id), ("X-IBM-Client-Secret", secret)],
        ),
    ];
    for (what, query, headers) in combos {
        let token = gw.client_token(SVC, None).await;
        assert_eq!(api_status(&gw, &token).await, 200, "{what}");
        let r = revoke(&gw, query, &headers, &[("token", &token)]).await;
        assert_success(r, what).await;
        assert_eq!(api_status(&gw, &token).await, 401, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_prove_itself_gets_401_unauthorized_client_one_body() {
    let (_echo, gw) = ibm().await;
    let token = gw.client_token(SVC, None).await;
    let t = [("token", token.as_str())];

    // Wrong secrets and an unknown client, in every place: the same 401 and the same body.
    let wrong_basic = basic(("svc", "wrong-secret"));
    let unknown_basic = basic(("nobody", "whatever"));
    let cases: Vec<Case> = vec![
        (
            "Basic, wrong secret",
            "",
            vec![("Authorization", &wrong_basic)],
        ),
        (
            "Basic, unknown client",
            "",
            vec![("Authorization", &unknown_basic)],
        ),
        (
            "headers, wrong secret",
            "",
            vec![("X-IBM-Client-Id", "svc"), ("X-IBM-Client-Secret", "wrong")],
        ),
        (
            "headers, unknown client",
            "",
            vec![("X-IBM-Client-Id", "nobody"), ("X-IBM-Client-Secret", "x")],
        ),
        (
            "query, wrong secret",
            "client_id=svc&client_secret=wrong",
            vec![],
        ),
        (
            "header id, query secret, wrong",
            "client_secret=wrong",
            vec![("X-IBM-Client-Id", "svc")],
        ),
        (
            "query id, header secret, unknown",
            "client_id=nobody",
            vec![("X-IBM-Client-Secret", "x")],
        ),
        // A confidential client's id alone proves nothing.
        ("header id alone", "", vec![("X-IBM-Client-Id", "svc")]),
        ("query id alone", "client_id=svc", vec![]),
    ];
    // Every 401 names Basic, the document's `Authorization` parameter and the one HTTP
    // scheme here, whatever the request tried: the X-IBM pair has no scheme to name.
    for (what, query, headers) in &cases {
        let r = revoke(&gw, query, headers, &t).await;
        assert_eq!(challenges(&r), [BASIC_CHALLENGE], "{what}");
        assert_body(r, 401, AUTH_FAILED, what).await;
    }

    // A Bearer token is not one of the document's methods: the challenge is still Basic.
    let bearer = format!("Bearer {token}");
    let r = revoke(&gw, "", &[("Authorization", &bearer)], &t).await;
    assert_eq!(challenges(&r), [BASIC_CHALLENGE]);
    assert_body(r, 401, AUTH_FAILED, "Bearer").await;

    // No credentials at all.
    let r = revoke(&gw, "", &[], &t).await;
    assert_eq!(challenges(&r), [BASIC_CHALLENGE]);
    assert_body(
        r,
        401,
        r#"{"error":"unauthorized_client","error_description":"client authentication is required"}"#,
        "no credentials",
    )
    .await;

    // The form body is not one of the document's places: the right secret there is refused.
    let r = revoke(
        &gw,
        "",
        &[],
        &[
            ("client_id", SVC.0),
            ("client_secret", SVC.1),
            ("token", &token),
        ],
    )
    .await;
    assert_eq!(challenges(&r), [BASIC_CHALLENGE]);
    let (s, v) = status_json(r).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (401, Some("unauthorized_client")),
        "{v}"
    );

    // Two methods in one request, or two ids that disagree: 400 invalid_request.
    let r = revoke(
        &gw,
        "",
        &[
            ("Authorization", &basic(SVC)),
            ("X-IBM-Client-Secret", SVC.1),
        ],
        &t,
    )
    .await;
    assert_error(r, 400, "invalid_request").await;
    let r = revoke(
        &gw,
        "client_id=other",
        &[("X-IBM-Client-Id", SVC.0), ("X-IBM-Client-Secret", SVC.1)],
        &t,
    )
    .await;
    assert_error(r, 400, "invalid_request").await;

    // None of that touched the token.
    assert_eq!(api_status(&gw, &token).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_token_method_and_hint_are_checked() {
    let (_echo, gw) = ibm().await;
    let token = gw.client_token(SVC, None).await;
    let auth = basic(SVC);

    // `Content-Type` is required and must be the form type.
    let r = gw
        .http
        .post(gw.url(REVOKE))
        .header("Authorization", &auth)
        .header("Content-Type", "application/json")
        .body(format!(r#"{{"token":"{token}"}}"#))
        .send()
        .await
        .unwrap();
    assert_body(
        r,
        400,
        r#"{"error":"invalid_request","error_description":"the body must be application/x-www-form-urlencoded"}"#,
        "json",
    )
    .await;
    let r = gw
        .http
        .post(gw.url(REVOKE))
        .header("Authorization", &auth)
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;

    // No token.
    let r = revoke(&gw, "", &[("Authorization", &auth)], &[]).await;
    assert_body(
        r,
        400,
        r#"{"error":"invalid_request","error_description":"missing parameter: token"}"#,
        "no token",
    )
    .await;

    // Only POST.
    let r = gw
        .http
        .get(gw.url(REVOKE))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "allow"), Some("POST"));
    assert_error(r, 405, "invalid_request").await;

    // A hint naming a kind that cannot be revoked: the document's `unsupported_token_type`.
    let r = revoke(
        &gw,
        "",
        &[("Authorization", &auth)],
        &[("token", &token), ("token_type_hint", "id_token")],
    )
    .await;
    assert_body(
        r,
        400,
        r#"{"error":"unsupported_token_type","error_description":"only access and refresh tokens can be revoked here"}"#,
        "hint",
    )
    .await;
    assert_eq!(api_status(&gw, &token).await, 200);

    // `token_type` is Kustvakt's name for the hint, not IBM's: here it is an unknown
    // parameter, ignored. A wrong (but valid) hint still finds the token.
    let r = revoke(
        &gw,
        "",
        &[("Authorization", &auth)],
        &[
            ("token", &token),
            ("token_type", "bogus"),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_success(r, "token_type ignored").await;
    assert_eq!(api_status(&gw, &token).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clients_token_is_refused_and_keeps_working() {
    let (_echo, gw) = ibm().await;
    let token = gw.client_token(SVC, None).await;
    let (_, refresh_token) = pair(&gw).await;
    for t in [&token, &refresh_token] {
        let r = revoke(
            &gw,
            "",
            &[
                ("X-IBM-Client-Id", OTHER.0),
                ("X-IBM-Client-Secret", OTHER.1),
            ],
            &[("token", t)],
        )
        .await;
        // 400 with the document's code for "not allowed for this client"; nobody named.
        assert_body(
            r,
            400,
            r#"{"error":"unauthorized_client","error_description":"the token was not issued to this client"}"#,
            "other client",
        )
        .await;
    }
    assert_eq!(api_status(&gw, &token).await, 200);
    let (s, v) = refresh(&gw, &refresh_token).await;
    assert_eq!(s, 200, "{v}");

    // Its owner can.
    let r = revoke(
        &gw,
        "",
        &[("Authorization", &basic(SVC))],
        &[("token", &token)],
    )
    .await;
    assert_success(r, "owner").await;
    assert_eq!(api_status(&gw, &token).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_takes_its_refresh_token_with_it_and_the_reverse() {
    let (_echo, gw) = ibm().await;
    let auth = basic(SVC);

    // The access token, with the hint the document's prose implies.
    let (access, refresh_token) = pair(&gw).await;
    assert_eq!(api_status(&gw, &access).await, 200);
    let r = revoke(
        &gw,
        "",
        &[("Authorization", &auth)],
        &[("token", &access), ("token_type_hint", "access_token")],
    )
    .await;
    assert_success(r, "access").await;
    assert_eq!(api_status(&gw, &access).await, 401);
    let (s, v) = refresh(&gw, &refresh_token).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );

    // The refresh token (with X-IBM headers this time): the access token dies with it.
    let (access, refresh_token) = pair(&gw).await;
    assert_eq!(api_status(&gw, &access).await, 200);
    let r = revoke(
        &gw,
        "",
        &[("X-IBM-Client-Id", SVC.0), ("X-IBM-Client-Secret", SVC.1)],
        &[
            ("token", &refresh_token),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_success(r, "refresh").await;
    assert_eq!(api_status(&gw, &access).await, 401);
    let (s, v) = refresh(&gw, &refresh_token).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );

    // After a rotation, the whole grant goes: the first access token too.
    let (a0, r0) = pair(&gw).await;
    let (s, t1) = refresh(&gw, &r0).await;
    assert_eq!(s, 200, "{t1}");
    let a1 = t1["access_token"].as_str().unwrap();
    let r1 = t1["refresh_token"].as_str().unwrap();
    assert_eq!(api_status(&gw, &a0).await, 200);
    let r = revoke(&gw, "", &[("Authorization", &auth)], &[("token", a1)]).await;
    assert_success(r, "rotated").await;
    assert_eq!(api_status(&gw, &a0).await, 401);
    assert_eq!(api_status(&gw, a1).await, 401);
    let (s, v) = refresh(&gw, r1).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_token_is_success() {
    let (_echo, gw) = ibm().await;
    let auth = basic(SVC);
    // Not a token at all, one of ours in shape but forged, and one of ours already revoked:
    // nothing to revoke, and RFC 7009 2.2 says 200; the document's 200 is its success body.
    let revoked = gw.client_token(SVC, None).await;
    let r = revoke(&gw, "", &[("Authorization", &auth)], &[("token", &revoked)]).await;
    assert_success(r, "first").await;
    let forged = format!("oea_{}", "A".repeat(64));
    for t in ["not-a-token", forged.as_str(), revoked.as_str()] {
        let r = revoke(&gw, "", &[("Authorization", &auth)], &[("token", t)]).await;
        assert_success(r, t).await;
    }
}

// ---------------------------------------------------------------------------------------
// The APIs behind it

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_route_takes_every_ibm_identification_and_keeps_the_secrets() {
    let (echo, gw) = ibm().await;
    let (id, secret) = SVC;
    let basic_svc = basic(SVC);
    let q_id = format!("client_id={id}&view=full");
    let q_secret = format!("view=full&client_secret={secret}");
    let q_both = format!("client_id={id}&client_secret={secret}&view=full");
    // Label, query, headers, and the URI the upstream should see.
    let cases: [(&str, &str, Headers, &str); 5] = [
        (
            "Basic",
            "view=full",
            vec![("Authorization", &basic_svc)],
            "/api/accounts/42?view=full",
        ),
        (
            "query id, query secret",
            &q_both,
            vec![],
            "/api/accounts/42?client_id=svc&view=full",
        ),
        (
            "header id, query secret",
            &q_secret,
            vec![("X-IBM-Client-Id", id)],
            "/api/accounts/42?view=full",
        ),
        (
            "query id, header secret",
            &q_id,
            vec![("X-IBM-Client-Secret", secret)],
            "/api/accounts/42?client_id=svc&view=full",
        ),
        (
            "header id, header secret",
            "view=full",
            vec![("X-IBM-Client-Id", id), ("X-IBM-Client-Secret", secret)],
            "/api/accounts/42?view=full",
        ),
    ];
    for (what, query, headers, upstream_uri) in cases {
        let mut req = gw.http.get(gw.url(&format!("/api/accounts/42?{query}")));
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200, "{what}");
        let seen = echo.last();
        assert_eq!(seen.uri, upstream_uri, "{what}");
        assert_eq!(
            seen.one("x-oauth-client-id"),
            Some("svc"),
            "{what}: {seen:?}"
        );
        assert_eq!(
            seen.one("x-oauth-scope"),
            Some("admin read write"),
            "{what}: {seen:?}"
        );
        assert!(!seen.has("x-oauth-user"), "{what}: {seen:?}");
        assert!(!seen.has("x-ibm-client-secret"), "{what}: {seen:?}");
        assert!(!seen.has("authorization"), "{what}: {seen:?}");
        assert!(!seen.uri.contains("client_secret"), "{what}: {seen:?}");
        for (_, v) in &seen.headers {
            assert!(!v.contains(secret), "{what}: {seen:?}");
        }
        // The id is not a secret: the header goes on as sent.
        let sent_id = headers.iter().any(|(k, _)| *k == "X-IBM-Client-Id");
        assert_eq!(
            seen.one("x-ibm-client-id"),
            sent_id.then_some("svc"),
            "{what}"
        );
    }

    // A public client has no secret: its id alone identifies it, as API Connect's "client
    // ID only" security does; a confidential client's id alone does not (below).
    for (what, query, headers) in [
        ("X-IBM-Client-Id", "", vec![("X-IBM-Client-Id", "kiosk")]),
        ("client_id", "?client_id=kiosk", vec![]),
    ] {
        let mut req = gw.http.get(gw.url(&format!("/api/accounts/7{query}")));
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200, "{what}");
        let seen = echo.last();
        assert_eq!(seen.one("x-oauth-client-id"), Some("kiosk"), "{what}");
        assert_eq!(seen.one("x-oauth-scope"), Some("read"), "{what}");
    }

    // A wrong secret or none: 401 from the edge, nothing upstream. Passthrough routes belong
    // to no profile, so the answer is the RFC 6749 one.
    let hits = echo.hits();
    let r = gw
        .http
        .get(gw.url("/api/accounts/42?client_id=svc&client_secret=wrong"))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "invalid_client").await;
    let r = gw
        .http
        .get(gw.url("/api/accounts/42"))
        .header("X-IBM-Client-Id", "svc")
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "invalid_client").await;
    let r = gw
        .http
        .get(gw.url("/api/accounts/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(echo.hits(), hits);
}
