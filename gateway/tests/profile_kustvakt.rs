//! Seed: `/work/shared/seeds/003_c340f25d330ec403.txt` (KorAP Kustvakt wiki, "Service: OAuth2 Token Revocation").
//!
//! The `kustvakt` profile end to end: the real `oauth-edge` binary with `rfc` mounted at
//! `/oauth2` (to issue tokens) and `kustvakt` at `/api/v1.0/oauth2` (the root of the page's
//! examples), an echo upstream behind a bearer route under the same root, driven with
//! reqwest. The page's two curl examples are sent as written, with the page's own client ids
//! and secret declared in the config and real tokens in place of its sample ones.

mod common;

use common::*;
use serde_json::Value;

const REVOKE: &str = "/api/v1.0/oauth2/revoke";
/// The page's public client (first example).
const PUBLIC: &str = "io8MvuTN3reflIaESwe5tGd";
/// The page's confidential client and its secret (second example).
const CONFIDENTIAL: (&str, &str) = ("YMirwQ-beCp5Rxiw4yH", "nS8cz9Fa5Wl2fbHrM");
const AUTH_FAILED: &str =
    r#"{"error":"invalid_client","error_description":"client authentication failed"}"#;

const KUSTVAKT: &str = r#"
[limits]
auth_failures = 100

[[clients]]
id = "io8MvuTN3reflIaESwe5tGd"
public = true
grants = ["password", "refresh_token"]
scopes = ["search"]

[[clients]]
id = "YMirwQ-beCp5Rxiw4yH"
secret = "nS8cz9Fa5Wl2fbHrM"
grants = ["password", "refresh_token"]
scopes = ["search"]

[[profiles]]
kind = "rfc"
base = "/oauth2"

[[profiles]]
kind = "kustvakt"
base = "/api/v1.0/oauth2"

[[routes]]
path = "/api/v1.0/search"
require = "bearer"
upstream = "echo"
"#;

async fn kustvakt() -> (Echo, Gateway) {
    Setup::launch_with_echo(&format!("{CLIENTS}{KUSTVAKT}")).await
}

/// What `curl -H 'Content-Type: application/x-www-form-urlencoded' -d '<body>' <url>` sends:
/// a POST with that header, curl's `Accept`, and the body as given.
async fn curl(gw: &Gateway, body: &str) -> reqwest::Response {
    gw.http
        .post(gw.url(REVOKE))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "*/*")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// A form POST to the revoke endpoint.
async fn revoke(gw: &Gateway, form: &[(&str, &str)]) -> reqwest::Response {
    gw.post_form(REVOKE, None, form).await
}

/// Asserts the page's success: 200 and an empty body.
async fn assert_revoked(r: reqwest::Response, what: &str) {
    assert_no_store(&r);
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!((status, body.as_str()), (200, ""), "{what}");
}

/// Asserts an RFC 6749 5.2 error: the status and the whole body.
async fn assert_body(r: reqwest::Response, status: u16, body: &str, what: &str) {
    assert_no_store(&r);
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!((s, text.as_str()), (status, body), "{what}");
}

/// The form credentials of the page's clients: the public one by its id alone.
fn creds(confidential: bool) -> Vec<(&'static str, &'static str)> {
    if confidential {
        vec![
            ("client_id", CONFIDENTIAL.0),
            ("client_secret", CONFIDENTIAL.1),
        ]
    } else {
        vec![("client_id", PUBLIC)]
    }
}

/// A token request at `/oauth2/token` with form credentials; status and JSON.
async fn token(gw: &Gateway, confidential: bool, form: &[(&str, &str)]) -> (u16, Value) {
    let mut f = creds(confidential);
    f.extend_from_slice(form);
    status_json(gw.post_form("/oauth2/token", None, &f).await).await
}

/// An access and a refresh token for alice, issued to one of the page's clients.
async fn pair(gw: &Gateway, confidential: bool) -> (String, String) {
    let (s, t) = token(
        gw,
        confidential,
        &[
            ("grant_type", "password"),
            ("username", ALICE.0),
            ("password", ALICE.1),
        ],
    )
    .await;
    assert_eq!(s, 200, "{t}");
    (
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// The status of a search with `access`.
async fn search(gw: &Gateway, access: &str) -> u16 {
    gw.get_bearer("/api/v1.0/search?q=Baum", access)
        .await
        .status()
        .as_u16()
}

/// Asserts `refresh` no longer refreshes.
async fn assert_refresh_refused(gw: &Gateway, confidential: bool, refresh: &str) {
    let (s, v) = token(
        gw,
        confidential,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_grant")),
        "{v}"
    );
}

// ---------------------------------------------------------------------------------------
// The page's examples

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_one_a_public_client_revokes_its_access_token_with_its_id_alone() {
    let (echo, gw) = kustvakt().await;
    let (access, refresh) = pair(&gw, false).await;
    assert_eq!(search(&gw, &access).await, 200);
    assert_eq!(echo.last().one("x-oauth-client-id"), Some(PUBLIC));
    let hits = echo.hits();

    // curl -H 'Content-Type: application/x-www-form-urlencoded'
    //      -d 'client_id=io8MvuTN3reflIaESwe5tGd&token=mPUkiQ86cT1YeblMqjr9'
    //      http://localhost:8089/api/v1.0/oauth2/revoke
    let r = curl(&gw, &format!("client_id={PUBLIC}&token={access}")).await;
    assert_revoked(r, "example 1").await;
    assert_eq!(search(&gw, &access).await, 401);
    assert_eq!(echo.hits(), hits);
    // The grant goes as a whole: its refresh token with it.
    assert_refresh_refused(&gw, false, &refresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_two_a_confidential_client_revokes_a_refresh_token_and_its_access_tokens() {
    let (_echo, gw) = kustvakt().await;
    // Two access tokens issued with one refresh grant: the first, then the one a refresh gave.
    let (a0, r0) = pair(&gw, true).await;
    let (s, t1) = token(
        &gw,
        true,
        &[("grant_type", "refresh_token"), ("refresh_token", &r0)],
    )
    .await;
    assert_eq!(s, 200, "{t1}");
    let a1 = t1["access_token"].as_str().unwrap();
    let r1 = t1["refresh_token"].as_str().unwrap();
    assert_eq!(search(&gw, &a0).await, 200);
    assert_eq!(search(&gw, a1).await, 200);

    // Pasted as the page prints it, the line break and indentation inside the quotes end up
    // in client_secret: that is another secret, and nothing is revoked.
    let (id, secret) = CONFIDENTIAL;
    let pasted = format!(
        "client_id={id}&client_secret={secret}\n         &token={r1}&token_type=refresh_token"
    );
    assert_body(curl(&gw, &pasted).await, 400, AUTH_FAILED, "pasted").await;
    assert_eq!(search(&gw, a1).await, 200);

    // curl -H 'Content-Type: application/x-www-form-urlencoded'
    //      -d 'client_id=YMirwQ-beCp5Rxiw4yH&client_secret=nS8cz9Fa5Wl2fbHrM
    //          &token=Q4lxNpch72FUwhO&token_type=refresh_token'
    //      http://localhost:8089/api/v1.0/oauth2/revoke
    let body = format!("client_id={id}&client_secret={secret}&token={r1}&token_type=refresh_token");
    assert_revoked(curl(&gw, &body).await, "example 2").await;
    assert_eq!(search(&gw, &a0).await, 401);
    assert_eq!(search(&gw, a1).await, 401);
    assert_refresh_refused(&gw, true, r1).await;
}

// ---------------------------------------------------------------------------------------
// Client authentication

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_client_must_send_its_secret_in_the_form() {
    let (_echo, gw) = kustvakt().await;
    let (access, _) = pair(&gw, true).await;
    let (id, secret) = CONFIDENTIAL;

    // Its id alone, a wrong secret, an unknown id: one 400 invalid_client, one body. The page
    // takes form fields only, which no HTTP scheme carries: with no challenge to name, the
    // answer is RFC 6749 5.2's 400 rather than a 401.
    for (what, form) in [
        ("no secret", vec![("client_id", id), ("token", &access)]),
        (
            "wrong secret",
            vec![
                ("client_id", id),
                ("client_secret", "wrong"),
                ("token", &access),
            ],
        ),
        (
            "unknown client",
            vec![
                ("client_id", "nobody"),
                ("client_secret", secret),
                ("token", &access),
            ],
        ),
    ] {
        let r = revoke(&gw, &form).await;
        assert_eq!(header(&r, "www-authenticate"), None, "{what}");
        assert_body(r, 400, AUTH_FAILED, what).await;
    }

    // No client_id: the page says it is required.
    let r = revoke(&gw, &[("token", &access)]).await;
    assert_eq!(header(&r, "www-authenticate"), None);
    assert_body(
        r,
        400,
        r#"{"error":"invalid_client","error_description":"client authentication is required"}"#,
        "no client_id",
    )
    .await;

    // HTTP Basic is not among the page's parameters: the right secret there is refused. A
    // Basic challenge would name a scheme this endpoint refuses, so there is none, and 400.
    let r = gw
        .post_form(REVOKE, Some(CONFIDENTIAL), &[("token", &access)])
        .await;
    assert_eq!(header(&r, "www-authenticate"), None);
    assert_body(
        r,
        400,
        r#"{"error":"invalid_client","error_description":"this authentication method is not allowed for this client here"}"#,
        "Basic",
    )
    .await;

    // Nor is the query string: a secret there is refused outright (RFC 6749 2.3.1).
    let r = gw
        .http
        .post(gw.url(&format!("{REVOKE}?client_id={id}&client_secret={secret}")))
        .form(&[("token", &access)])
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
    // ...and a client_id there identifies nobody, even a public client's.
    let (public_access, _) = pair(&gw, false).await;
    let r = gw
        .http
        .post(gw.url(&format!("{REVOKE}?client_id={PUBLIC}")))
        .form(&[("token", &public_access)])
        .send()
        .await
        .unwrap();
    let v = assert_error(r, 400, "invalid_client").await;
    assert_eq!(v["error_description"], "client authentication is required");

    assert_eq!(search(&gw, &access).await, 200);
    assert_eq!(search(&gw, &public_access).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clients_token_is_refused_and_keeps_working() {
    let (_echo, gw) = kustvakt().await;
    let (public_access, _) = pair(&gw, false).await;
    let (conf_access, conf_refresh) = pair(&gw, true).await;
    let refused = r#"{"error":"unauthorized_client","error_description":"the token was not issued to this client"}"#;

    // The public client at another client's tokens.
    for t in [&conf_access, &conf_refresh] {
        let r = revoke(&gw, &[("client_id", PUBLIC), ("token", t)]).await;
        assert_body(r, 400, refused, "public at confidential").await;
    }
    // The confidential client at the public client's token.
    let mut form = creds(true);
    form.push(("token", &public_access));
    assert_body(
        revoke(&gw, &form).await,
        400,
        refused,
        "confidential at public",
    )
    .await;

    assert_eq!(search(&gw, &conf_access).await, 200);
    assert_eq!(search(&gw, &public_access).await, 200);
    let (s, v) = token(
        &gw,
        true,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &conf_refresh),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

// ---------------------------------------------------------------------------------------
// Parameters

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_type_is_the_hint_and_token_type_hint_is_ignored() {
    let (_echo, gw) = kustvakt().await;

    // A value other than the page's two: unsupported_token_type, nothing revoked.
    let (access, _) = pair(&gw, false).await;
    for bad in ["bearer", "id_token", "ACCESS_TOKEN"] {
        let r = revoke(
            &gw,
            &[
                ("client_id", PUBLIC),
                ("token", &access),
                ("token_type", bad),
            ],
        )
        .await;
        assert_body(
            r,
            400,
            r#"{"error":"unsupported_token_type","error_description":"only access and refresh tokens can be revoked here"}"#,
            bad,
        )
        .await;
    }
    assert_eq!(search(&gw, &access).await, 200);

    // A wrong but valid hint still finds the token.
    let r = revoke(
        &gw,
        &[
            ("client_id", PUBLIC),
            ("token", &access),
            ("token_type", "refresh_token"),
        ],
    )
    .await;
    assert_revoked(r, "wrong hint").await;
    assert_eq!(search(&gw, &access).await, 401);

    // RFC 7009's name for the hint is just an unknown parameter here, whatever its value.
    let (access, _) = pair(&gw, false).await;
    let r = revoke(
        &gw,
        &[
            ("client_id", PUBLIC),
            ("token", &access),
            ("token_type_hint", "no_such_type"),
        ],
    )
    .await;
    assert_revoked(r, "token_type_hint").await;
    assert_eq!(search(&gw, &access).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_content_type_are_required_and_unknown_tokens_are_200() {
    let (_echo, gw) = kustvakt().await;
    let (access, _) = pair(&gw, false).await;

    let r = revoke(&gw, &[("client_id", PUBLIC)]).await;
    assert_body(
        r,
        400,
        r#"{"error":"invalid_request","error_description":"missing parameter: token"}"#,
        "no token",
    )
    .await;

    let r = gw
        .http
        .post(gw.url(REVOKE))
        .header("Content-Type", "application/json")
        .body(format!(r#"{{"client_id":"{PUBLIC}","token":"{access}"}}"#))
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
    assert_eq!(search(&gw, &access).await, 200);

    // Nothing to revoke is not an error (RFC 7009 2.2).
    let forged = format!("oer_{}", "A".repeat(64));
    for t in ["mPUkiQ86cT1YeblMqjr9", "Q4lxNpch72FUwhO", forged.as_str()] {
        let r = revoke(&gw, &[("client_id", PUBLIC), ("token", t)]).await;
        assert_revoked(r, t).await;
    }
}
