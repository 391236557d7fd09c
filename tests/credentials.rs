//! Client authentication, end to end through a real server: every credential style the token
//! endpoint accepts (HTTP Basic with RFC 6749 2.3.1 form-encoding, form fields, `X-IBM-*`
//! headers, a public `client_id`, a client_credentials Bearer token at the revocation
//! endpoint), every ambiguity RFC 6749 2.3 forbids, malformed Basic, the uniform answer for
//! an unknown client and a wrong secret, throttling of secret guessing, repeated parameters,
//! malformed requests (method, content type, size) and the RFC 6749 5.1 cache headers.
mod common;

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use common::{basic, TestServer, CONFIG};
use reqwest::header::HeaderMap;
use serde_json::Value;

const TOKEN: &str = "/oauth2/token";
const FORM: &str = "application/x-www-form-urlencoded";

/// `common::CONFIG` plus a client whose id and secret need form-encoding in Basic, and
/// whatever `extra` adds.
fn config(extra: &str) -> String {
    format!(
        r#"{CONFIG}
[[clients]]
id = "my client"
secret = "p@ss:w+rd"
scopes = ["read"]

{extra}
"#
    )
}

async fn server() -> TestServer {
    TestServer::start(&config("")).await
}

/// A response, read in full.
struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Resp {
    async fn read(r: reqwest::Response) -> Resp {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.unwrap();
        Resp {
            status,
            headers,
            body,
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or("<no error code>")
            .to_string()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Every `WWW-Authenticate` value, in order.
    fn challenges(&self) -> Vec<&str> {
        self.headers
            .get_all("www-authenticate")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    /// Asserts the status and the JSON `error` code.
    #[track_caller]
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.error().as_str()),
            (status, code),
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
    }

    /// Asserts a 200 token response and returns it.
    #[track_caller]
    fn assert_token(&self) -> Value {
        assert_eq!(
            self.status,
            200,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let v = self.json();
        assert_eq!(v["token_type"], "Bearer");
        assert!(v["access_token"].as_str().is_some_and(|t| !t.is_empty()));
        v
    }

    #[track_caller]
    fn assert_no_store(&self) {
        assert_eq!(self.header("cache-control"), Some("no-store"), "{self:?}");
        assert_eq!(self.header("pragma"), Some("no-cache"), "{self:?}");
    }
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:?} {}",
            self.status,
            self.headers,
            String::from_utf8_lossy(&self.body)
        )
    }
}

/// POSTs a raw body to `path` (query included) with `headers`; the content type is form
/// unless `headers` set one.
async fn post_raw(s: &TestServer, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut req = s.http.post(s.url(path));
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req = req.header("content-type", FORM);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Resp::read(req.body(body.to_string()).send().await.unwrap()).await
}

async fn post_form(
    s: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> Resp {
    Resp::read(s.post_form(path, headers, form).await).await
}

/// `Basic` over raw bytes, with no encoding of the id or secret.
fn basic_raw(bytes: &[u8]) -> String {
    format!("Basic {}", STANDARD.encode(bytes))
}

/// Uses `token` at `/api` and returns the client id the upstream saw.
async fn api_client(s: &TestServer, token: &str) -> String {
    let r = s.get_bearer("/api/x", token).await;
    assert_eq!(r.status(), 200, "token refused at /api");
    let v: Value = r.json().await.unwrap();
    v["headers"]["x-oauth-client-id"]
        .as_str()
        .unwrap()
        .to_string()
}

const CC: &[(&str, &str)] = &[("grant_type", "client_credentials")];

// ---------------------------------------------------------------------------------------
// Every credential style

#[tokio::test]
async fn basic_succeeds() {
    let s = server().await;
    let r = post_form(
        &s,
        TOKEN,
        &[("authorization", &basic("svc", "svc-secret"))],
        CC,
    )
    .await;
    let t = r.assert_token();
    assert_eq!(t["scope"], "read");
    assert_eq!(
        api_client(&s, t["access_token"].as_str().unwrap()).await,
        "svc"
    );
}

#[tokio::test]
async fn basic_id_and_secret_are_form_urlencoded() {
    let s = server().await;
    // RFC 6749 2.3.1: id "my client", secret "p@ss:w+rd", each form-urlencoded, then base64.
    let encoded = basic_raw(b"my+client:p%40ss%3Aw%2Brd");
    let r = post_form(&s, TOKEN, &[("authorization", &encoded)], CC).await;
    let t = r.assert_token();
    assert_eq!(
        api_client(&s, t["access_token"].as_str().unwrap()).await,
        "my client"
    );
    // Sent without the encoding, '+' decodes to a space and the secret is wrong.
    let raw = basic_raw(b"my client:p@ss:w+rd");
    let r = post_form(&s, TOKEN, &[("authorization", &raw)], CC).await;
    r.assert_error(401, "invalid_client");
}

#[tokio::test]
async fn basic_scheme_is_case_insensitive() {
    let s = server().await;
    for scheme in ["basic", "BASIC", "bAsIc"] {
        let v = format!("{scheme} {}", STANDARD.encode("svc:svc-secret"));
        let r = post_form(&s, TOKEN, &[("authorization", &v)], CC).await;
        r.assert_token();
    }
}

#[tokio::test]
async fn form_fields_succeed() {
    let s = server().await;
    let r = post_form(
        &s,
        TOKEN,
        &[],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", "svc-secret"),
        ],
    )
    .await;
    let t = r.assert_token();
    assert_eq!(
        api_client(&s, t["access_token"].as_str().unwrap()).await,
        "svc"
    );
}

#[tokio::test]
async fn ibm_headers_succeed() {
    let s = server().await;
    let r = post_form(
        &s,
        TOKEN,
        &[
            ("x-ibm-client-id", "other"),
            ("x-ibm-client-secret", "other-secret"),
        ],
        CC,
    )
    .await;
    let t = r.assert_token();
    assert_eq!(
        api_client(&s, t["access_token"].as_str().unwrap()).await,
        "other"
    );
}

#[tokio::test]
async fn client_secret_in_the_query_is_refused() {
    let s = server().await;
    // RFC 6749 2.3.1: the secret must not be in the request URI. Right credentials anyway.
    let r = post_raw(
        &s,
        "/oauth2/token?client_id=svc&client_secret=svc-secret",
        &[],
        "grant_type=client_credentials",
    )
    .await;
    r.assert_error(400, "invalid_request");
    // The secret alone in the query, the id in the body: the same.
    let r = post_raw(
        &s,
        "/oauth2/token?client_secret=svc-secret",
        &[],
        "grant_type=client_credentials&client_id=svc",
    )
    .await;
    r.assert_error(400, "invalid_request");
    assert!(!String::from_utf8_lossy(&r.body).contains("svc-secret"));
}

#[tokio::test]
async fn public_client_with_client_id_alone_uses_password_grant() {
    let s = server().await;
    let r = post_form(
        &s,
        TOKEN,
        &[],
        &[
            ("grant_type", "password"),
            ("client_id", "app"),
            ("username", "alice"),
            ("password", "wonderland"),
        ],
    )
    .await;
    let t = r.assert_token();
    let echoed: Value = s
        .get_bearer("/api/x", t["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(echoed["headers"]["x-oauth-client-id"], "app");
    assert_eq!(echoed["headers"]["x-oauth-user"], "alice");
}

#[tokio::test]
async fn confidential_client_with_client_id_alone_is_refused() {
    let s = server().await;
    for grant in [
        &[("grant_type", "client_credentials"), ("client_id", "svc")][..],
        &[
            ("grant_type", "password"),
            ("client_id", "svc"),
            ("username", "alice"),
            ("password", "wonderland"),
        ][..],
    ] {
        let r = post_form(&s, TOKEN, &[], grant).await;
        r.assert_error(401, "invalid_client");
        // No Authorization header was used, but a 401 names the scheme the client could use
        // (RFC 9110 15.5.2).
        assert_eq!(r.challenges(), ["Basic realm=\"oauth-edge\""]);
    }
}

#[tokio::test]
async fn client_id_alone_does_not_tell_unknown_from_confidential() {
    let s = server().await;
    let confidential = post_form(
        &s,
        TOKEN,
        &[],
        &[("grant_type", "client_credentials"), ("client_id", "svc")],
    )
    .await;
    let unknown = post_form(
        &s,
        TOKEN,
        &[],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
        ],
    )
    .await;
    confidential.assert_error(401, "invalid_client");
    assert_eq!(confidential.status, unknown.status);
    assert_eq!(
        confidential.body, unknown.body,
        "an enumeration oracle: the body says whether the client exists"
    );
    assert_eq!(header_set(&confidential), header_set(&unknown));
}

#[tokio::test]
async fn client_credentials_bearer_authenticates_at_revoke() {
    let s = server().await;
    let auth = s.client_token("svc", "svc-secret", None).await;
    let auth = auth["access_token"].as_str().unwrap();
    let victim = s.client_token("svc", "svc-secret", None).await;
    let victim = victim["access_token"].as_str().unwrap();
    assert_eq!(api_client(&s, victim).await, "svc");

    let r = post_form(
        &s,
        "/oauth2/revoke",
        &[("authorization", &format!("Bearer {auth}"))],
        &[("token", victim)],
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.assert_no_store();

    let r = Resp::read(s.get_bearer("/api/x", victim).await).await;
    r.assert_error(401, "invalid_token");
    // The authenticating token itself is still good.
    assert_eq!(api_client(&s, auth).await, "svc");
}

#[tokio::test]
async fn user_token_as_bearer_client_auth_is_invalid_client() {
    let s = server().await;
    let user = s
        .password_token("svc", "svc-secret", "alice", "wonderland")
        .await;
    let user = user["access_token"].as_str().unwrap();
    let victim = s.client_token("svc", "svc-secret", None).await;
    let victim = victim["access_token"].as_str().unwrap();

    let r = post_form(
        &s,
        "/oauth2/revoke",
        &[("authorization", &format!("Bearer {user}"))],
        &[("token", victim)],
    )
    .await;
    r.assert_error(401, "invalid_client");
    // Revoke takes Basic and a client_credentials token: both are named, the token refused.
    assert_eq!(
        r.challenges(),
        [
            "Basic realm=\"oauth-edge\"",
            "Bearer realm=\"oauth-edge\", error=\"invalid_token\""
        ]
    );
    // Nothing was revoked.
    assert_eq!(api_client(&s, victim).await, "svc");
}

#[tokio::test]
async fn bearer_is_not_client_authentication_at_the_token_endpoint() {
    let s = server().await;
    let cc = s.client_token("svc", "svc-secret", None).await;
    let bearer = format!("Bearer {}", cc["access_token"].as_str().unwrap());
    // A token to get a token proves nothing new: the RFC profile does not accept it here.
    let r = post_form(&s, TOKEN, &[("authorization", &bearer)], CC).await;
    r.assert_error(401, "invalid_client");
    // The challenge names what the endpoint takes, not what was tried.
    assert_eq!(r.challenges(), ["Basic realm=\"oauth-edge\""]);
}

#[tokio::test]
async fn basic_only_client_cannot_use_form_fields() {
    let s = server().await;
    let r = post_form(
        &s,
        TOKEN,
        &[],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "basic-only"),
            ("client_secret", "basic-secret"),
        ],
    )
    .await;
    r.assert_error(401, "invalid_client");
    let r = post_form(
        &s,
        TOKEN,
        &[
            ("x-ibm-client-id", "basic-only"),
            ("x-ibm-client-secret", "basic-secret"),
        ],
        CC,
    )
    .await;
    r.assert_error(401, "invalid_client");
    // Basic works for it.
    let r = post_form(
        &s,
        TOKEN,
        &[("authorization", &basic("basic-only", "basic-secret"))],
        CC,
    )
    .await;
    r.assert_token();
}

// ---------------------------------------------------------------------------------------
// Ambiguity: one method per request (RFC 6749 2.3)

#[tokio::test]
async fn two_methods_or_two_ids_are_invalid_request() {
    let s = server().await;
    let b = basic("svc", "svc-secret");
    let cc_token = s.client_token("svc", "svc-secret", None).await;
    let bearer = format!("Bearer {}", cc_token["access_token"].as_str().unwrap());
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "Basic + form client_secret",
            vec![("authorization", b.as_str())],
            "grant_type=client_credentials&client_secret=svc-secret",
        ),
        (
            "Basic + form client_id and client_secret",
            vec![("authorization", b.as_str())],
            "grant_type=client_credentials&client_id=svc&client_secret=svc-secret",
        ),
        (
            "Basic + X-IBM-Client-Secret",
            vec![
                ("authorization", b.as_str()),
                ("x-ibm-client-secret", "svc-secret"),
            ],
            "grant_type=client_credentials",
        ),
        (
            "two Authorization headers",
            vec![("authorization", b.as_str()), ("authorization", b.as_str())],
            "grant_type=client_credentials",
        ),
        (
            "form client_id differs from the Basic id",
            vec![("authorization", b.as_str())],
            "grant_type=client_credentials&client_id=other",
        ),
        (
            "X-IBM-Client-Id differs from form client_id",
            vec![
                ("x-ibm-client-id", "svc"),
                ("x-ibm-client-secret", "svc-secret"),
            ],
            "grant_type=client_credentials&client_id=other",
        ),
        (
            "Bearer + form client_secret",
            vec![("authorization", bearer.as_str())],
            "grant_type=client_credentials&client_id=svc&client_secret=svc-secret",
        ),
    ];
    for (what, headers, body) in cases {
        let r = post_raw(&s, TOKEN, &headers, body).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "invalid_request"),
            "{what}: {r:?}"
        );
        r.assert_no_store();
        assert!(r.json().get("access_token").is_none(), "{what}");
    }
    // The same id in Basic and in the body is not ambiguous.
    let r = post_raw(
        &s,
        TOKEN,
        &[("authorization", b.as_str())],
        "grant_type=client_credentials&client_id=svc",
    )
    .await;
    r.assert_token();
}

// ---------------------------------------------------------------------------------------
// Malformed Basic

#[tokio::test]
async fn malformed_basic_is_invalid_client_and_never_echoed() {
    let s = server().await;
    let cases = [
        ("not base64", "Basic !!not*base64!!".to_string()),
        ("no colon", basic_raw(b"svcsvc-secret")),
        ("not UTF-8", basic_raw(&[0xff, 0x3a, 0x61])),
        ("not UTF-8 after form-decoding", basic_raw(b"svc:%ff%fe")),
        ("empty id", basic_raw(b":svc-secret")),
    ];
    for (what, value) in cases {
        let r = post_form(&s, TOKEN, &[("authorization", &value)], CC).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (401, "invalid_client"),
            "{what}: {r:?}"
        );
        let challenge = r.header("www-authenticate").unwrap_or("");
        assert!(
            challenge.starts_with("Basic realm="),
            "{what}: challenge {challenge:?}"
        );
        let body = String::from_utf8_lossy(&r.body);
        let encoded = value.trim_start_matches("Basic ");
        assert!(!body.contains(encoded), "{what}: echoed: {body}");
        assert!(
            !body.contains("svc"),
            "{what}: decoded bytes echoed: {body}"
        );
        for h in r.headers.values() {
            assert!(
                !h.to_str().unwrap_or("").contains(encoded),
                "{what}: echoed in a header"
            );
        }
    }
    // The server is still answering.
    s.client_token("svc", "svc-secret", None).await;
}

// ---------------------------------------------------------------------------------------
// Unknown client vs wrong secret

/// The response's headers as sorted `(name, value)` pairs, without `date`.
fn header_set(r: &Resp) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| k.as_str() != "date")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn unknown_client_and_wrong_secret_look_the_same() {
    let s = server().await;
    // With Basic.
    let wrong = post_form(
        &s,
        TOKEN,
        &[("authorization", &basic("svc", "not-the-secret"))],
        CC,
    )
    .await;
    let unknown = post_form(
        &s,
        TOKEN,
        &[("authorization", &basic("nobody", "not-the-secret"))],
        CC,
    )
    .await;
    wrong.assert_error(401, "invalid_client");
    assert!(wrong
        .header("www-authenticate")
        .is_some_and(|c| c.starts_with("Basic realm=")));
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(header_set(&wrong), header_set(&unknown));

    // With form fields.
    let form = |id: &'static str| {
        [
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", "not-the-secret"),
        ]
    };
    let wrong = post_form(&s, TOKEN, &[], &form("other")).await;
    let unknown = post_form(&s, TOKEN, &[], &form("nobody-else")).await;
    wrong.assert_error(401, "invalid_client");
    assert_eq!(wrong.challenges(), ["Basic realm=\"oauth-edge\""]);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(header_set(&wrong), header_set(&unknown));

    // A public client given a secret fails the same way too.
    let public = post_form(&s, TOKEN, &[], &form("app")).await;
    assert_eq!(public.status, unknown.status);
    assert_eq!(public.body, unknown.body);
    assert_eq!(header_set(&public), header_set(&unknown));
}

// ---------------------------------------------------------------------------------------
// Throttling

#[tokio::test]
async fn repeated_wrong_secrets_are_throttled_per_client() {
    let s = TestServer::start(&config("[limits]\nauth_failures = 3\n")).await;
    for i in 0..3 {
        let r = post_form(
            &s,
            TOKEN,
            &[("authorization", &basic("svc", &format!("guess-{i}")))],
            CC,
        )
        .await;
        r.assert_error(401, "invalid_client");
    }
    // The fourth attempt is refused even with the right secret.
    let r = post_form(
        &s,
        TOKEN,
        &[("authorization", &basic("svc", "svc-secret"))],
        CC,
    )
    .await;
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.error(), "invalid_client");
    assert_eq!(r.header("retry-after"), Some("60"));
    r.assert_no_store();
    // Every credential style for that client is throttled, not just Basic.
    let r = post_form(
        &s,
        TOKEN,
        &[],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "svc"),
            ("client_secret", "svc-secret"),
        ],
    )
    .await;
    assert_eq!(r.status, 429, "{r:?}");

    // Another client from the same source is unaffected.
    let r = post_form(
        &s,
        TOKEN,
        &[("authorization", &basic("other", "wrong"))],
        CC,
    )
    .await;
    r.assert_error(401, "invalid_client");
    let r = post_form(
        &s,
        TOKEN,
        &[("authorization", &basic("other", "other-secret"))],
        CC,
    )
    .await;
    r.assert_token();

    // No credentials at all: refused as missing.
    post_form(&s, TOKEN, &[], CC)
        .await
        .assert_error(401, "invalid_client");
    // Each failure was counted under its reason: the reason travels with the error.
    let failures: Vec<(&str, u64)> = s
        .edge
        .metrics()
        .auth_failures()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.as_str(), n))
        .collect();
    assert_eq!(
        failures,
        vec![
            ("missing", 1),
            ("bad_client_credentials", 4),
            ("throttled", 2)
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Repeated parameters

#[tokio::test]
async fn repeated_parameters_are_invalid_request() {
    let s = server().await;
    let b = basic("svc", "svc-secret");
    let r = post_raw(
        &s,
        TOKEN,
        &[("authorization", b.as_str())],
        "grant_type=client_credentials&grant_type=client_credentials",
    )
    .await;
    r.assert_error(400, "invalid_request");
    let r = post_raw(
        &s,
        TOKEN,
        &[("authorization", b.as_str())],
        "grant_type=client_credentials&grant_type=password",
    )
    .await;
    r.assert_error(400, "invalid_request");
    let r = post_raw(
        &s,
        "/oauth2/token?client_id=svc",
        &[],
        "grant_type=client_credentials&client_id=svc&client_secret=svc-secret",
    )
    .await;
    r.assert_error(400, "invalid_request");
    let r = post_raw(
        &s,
        "/oauth2/token?grant_type=client_credentials",
        &[("authorization", b.as_str())],
        "grant_type=client_credentials",
    )
    .await;
    r.assert_error(400, "invalid_request");
    // An empty repeat counts as absent (RFC 6749 3.2): not a repeat.
    let r = post_raw(
        &s,
        TOKEN,
        &[("authorization", b.as_str())],
        "grant_type=&grant_type=client_credentials",
    )
    .await;
    r.assert_token();
}

// ---------------------------------------------------------------------------------------
// Bad requests

#[tokio::test]
async fn get_on_the_token_endpoint_is_405() {
    let s = server().await;
    let r = Resp::read(
        s.http
            .get(s.url("/oauth2/token?grant_type=client_credentials"))
            .header("authorization", basic("svc", "svc-secret"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(405, "invalid_request");
    assert_eq!(r.header("allow"), Some("POST"));
    r.assert_no_store();
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
        let r = Resp::read(
            s.http
                .request(method.clone(), s.url(TOKEN))
                .header("authorization", basic("svc", "svc-secret"))
                .header("content-type", FORM)
                .body("grant_type=client_credentials")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("POST"), "{method}");
    }
}

#[tokio::test]
async fn form_content_type_with_parameters_is_accepted() {
    let s = server().await;
    let r = post_raw(
        &s,
        TOKEN,
        &[
            ("authorization", &basic("svc", "svc-secret")),
            (
                "content-type",
                "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
            ),
        ],
        "grant_type=client_credentials",
    )
    .await;
    r.assert_token();
}

#[tokio::test]
async fn json_and_multipart_bodies_are_400() {
    let s = server().await;
    let b = basic("svc", "svc-secret");
    let r = post_raw(
        &s,
        TOKEN,
        &[("authorization", &b), ("content-type", "application/json")],
        r#"{"grant_type":"client_credentials"}"#,
    )
    .await;
    r.assert_error(400, "invalid_request");
    r.assert_no_store();

    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\n\
                     client_credentials\r\n--XyZ--\r\n";
    let r = post_raw(
        &s,
        TOKEN,
        &[
            ("authorization", &b),
            ("content-type", "multipart/form-data; boundary=XyZ"),
        ],
        multipart,
    )
    .await;
    r.assert_error(400, "invalid_request");

    // No content type at all.
    let r = Resp::read(
        s.http
            .post(s.url(TOKEN))
            .header("authorization", &b)
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(400, "invalid_request");
}

/// A form a little over 16 KiB: a valid grant padded with an ignored parameter.
fn big_form() -> String {
    format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(17 * 1024)
    )
}

#[tokio::test]
async fn body_over_the_limit_with_content_length_is_413() {
    let s = server().await;
    let body = big_form();
    let r = Resp::read(
        s.http
            .post(s.url(TOKEN))
            .header("authorization", basic("svc", "svc-secret"))
            .header("content-type", FORM)
            .body(body.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(413, "invalid_request");
    r.assert_no_store();
    // Just under the limit is fine: the limit is the body size, not something smaller.
    let ok = format!("grant_type=client_credentials&pad={}", "a".repeat(16_000));
    let r = post_raw(
        &s,
        TOKEN,
        &[("authorization", &basic("svc", "svc-secret"))],
        &ok,
    )
    .await;
    r.assert_token();
}

/// A request body of `chunks` frames of 1 KiB with no declared length, so it goes chunked.
/// (`reqwest::Body::wrap_stream` needs reqwest's `stream` feature, which the dev-dependency
/// does not enable; `Body::wrap` over an `http_body::Body` without a size hint does the same.)
struct Chunked {
    first: Option<Bytes>,
    chunks: usize,
}

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(first))));
        }
        if self.chunks == 0 {
            return Poll::Ready(None);
        }
        self.chunks -= 1;
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![
            b'a';
            1024
        ])))))
    }
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let s = server().await;
    let body = reqwest::Body::wrap(Chunked {
        first: Some(Bytes::from_static(b"grant_type=client_credentials&pad=")),
        chunks: 20,
    });
    let resp = s
        .http
        .post(s.url(TOKEN))
        .header("authorization", basic("svc", "svc-secret"))
        .header("content-type", FORM)
        .body(body)
        .send()
        .await
        .unwrap();
    let r = Resp::read(resp).await;
    r.assert_error(413, "invalid_request");
    r.assert_no_store();

    // A small chunked body is read and served.
    let body = reqwest::Body::wrap(Chunked {
        first: Some(Bytes::from_static(b"grant_type=client_credentials&pad=")),
        chunks: 2,
    });
    let resp = s
        .http
        .post(s.url(TOKEN))
        .header("authorization", basic("svc", "svc-secret"))
        .header("content-type", FORM)
        .body(body)
        .send()
        .await
        .unwrap();
    Resp::read(resp).await.assert_token();
}

// ---------------------------------------------------------------------------------------
// Cache headers (RFC 6749 5.1)

#[tokio::test]
async fn every_endpoint_answer_is_no_store() {
    let s = server().await;
    let b = basic("svc", "svc-secret");
    let mut answers = Vec::new();

    // Token: success, 400, 401 with and without a challenge, 405, 413.
    let ok = post_form(&s, TOKEN, &[("authorization", b.as_str())], CC).await;
    let token = ok.assert_token()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    answers.push(("token 200", ok));
    answers.push((
        "token 400",
        post_form(
            &s,
            TOKEN,
            &[("authorization", b.as_str())],
            &[("grant_type", "nope")],
        )
        .await,
    ));
    answers.push((
        "token 401 Basic",
        post_form(&s, TOKEN, &[("authorization", &basic("svc", "x"))], CC).await,
    ));
    answers.push((
        "token 401 form",
        post_form(
            &s,
            TOKEN,
            &[],
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", "x"),
            ],
        )
        .await,
    ));
    answers.push((
        "token 405",
        Resp::read(s.http.get(s.url(TOKEN)).send().await.unwrap()).await,
    ));
    answers.push((
        "token 413",
        post_raw(&s, TOKEN, &[("authorization", b.as_str())], &big_form()).await,
    ));
    // Introspection and revocation.
    answers.push((
        "introspect 200",
        post_form(
            &s,
            "/oauth2/introspect",
            &[("authorization", b.as_str())],
            &[("token", token.as_str())],
        )
        .await,
    ));
    answers.push((
        "revoke 200",
        post_form(
            &s,
            "/oauth2/revoke",
            &[("authorization", b.as_str())],
            &[("token", token.as_str())],
        )
        .await,
    ));
    answers.push((
        "revoke 400",
        post_form(&s, "/oauth2/revoke", &[("authorization", b.as_str())], &[]).await,
    ));

    let statuses: Vec<(&str, u16)> = answers.iter().map(|(w, r)| (*w, r.status)).collect();
    assert_eq!(
        statuses,
        vec![
            ("token 200", 200),
            ("token 400", 400),
            ("token 401 Basic", 401),
            ("token 401 form", 401),
            ("token 405", 405),
            ("token 413", 413),
            ("introspect 200", 200),
            ("revoke 200", 200),
            ("revoke 400", 400),
        ]
    );
    for (what, r) in &answers {
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
        assert_eq!(r.header("pragma"), Some("no-cache"), "{what}");
    }
}
