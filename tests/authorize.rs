//! The authorization-code flow with PKCE and the device flow (RFC 6749 4.1, RFC 7636,
//! RFC 8628), end to end against a real listening server: the pages are driven as a browser
//! without JavaScript would drive them (GET, read the form, POST it back with the cookies),
//! the client side with plain token requests.

#[path = "support/browser.rs"]
mod browser;
mod common;

use oauth_edge::clock::ManualClock;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use browser::{Browser, Page};
use common::{basic, TestServer};
use oauth_edge::pkce::s256;
use serde_json::Value;

const CONFIG: &str = r#"
issuer = "http://auth.test"
[store]
kind = "memory"

[authorization]
code_ttl = "2s"

[device]
interval = "1s"
code_ttl = "20s"
max_wrong_codes_per_minute = 5

[[clients]]
id = "web"
name = "Web <App>"
secret = "web-secret"
grants = ["authorization_code", "refresh_token"]
scopes = ["read", "write"]
redirect_uris = ["https://web.example/cb", "https://web.example/cb2?keep=1"]

[[clients]]
id = "spa"
public = true
grants = ["authorization_code"]
scopes = ["read"]
redirect_uris = ["https://spa.example/cb"]

[[clients]]
id = "first"
secret = "first-secret"
grants = ["authorization_code"]
scopes = ["read"]
redirect_uris = ["https://first.example/cb"]
skip_consent = true
require_pkce = true

[[clients]]
id = "cc"
secret = "cc-secret"
grants = ["client_credentials"]
scopes = ["read"]
redirect_uris = ["https://cc.example/cb"]

[[clients]]
id = "tv"
public = true
grants = ["device_code", "refresh_token"]
scopes = ["read", "write"]
default_scopes = ["read"]

[[users]]
username = "alice"
password = "wonderland"

[[routes]]
path = "/api"
require = "bearer"
"#;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-0123456789";

fn authorize_url(client: &str, redirect: Option<&str>, extra: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code");
    q.append_pair("client_id", client);
    if let Some(r) = redirect {
        q.append_pair("redirect_uri", r);
    }
    for (k, v) in extra {
        q.append_pair(k, v);
    }
    format!("/oauth2/authorize?{}", q.finish())
}

/// Signs alice in and allows: returns the redirect back to the client.
async fn sign_in_and_allow(b: &mut Browser, url: &str) -> Page {
    let sign_in = b.get(url).await;
    assert_eq!(sign_in.status, 200, "{}", sign_in.body);
    let consent = b
        .submit(
            &sign_in,
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    b.submit(&consent, &[("decision", "allow")]).await
}

async fn exchange(
    s: &TestServer,
    client: (&str, Option<&str>),
    code: &str,
    redirect: Option<&str>,
    verifier: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![("grant_type", "authorization_code"), ("code", code)];
    if let Some(r) = redirect {
        form.push(("redirect_uri", r));
    }
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    let mut headers = Vec::new();
    let auth;
    match client.1 {
        Some(secret) => {
            auth = basic(client.0, secret);
            headers.push(("authorization", auth.as_str()));
        }
        None => form.push(("client_id", client.0)),
    }
    let r = s.post_form("/oauth2/token", &headers, &form).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

const WEB: (&str, Option<&str>) = ("web", Some("web-secret"));
const WEB_CB: &str = "https://web.example/cb";

async fn web_code(b: &mut Browser) -> String {
    let url = authorize_url(
        "web",
        Some(WEB_CB),
        &[
            ("state", "xyz"),
            ("scope", "read"),
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
        ],
    );
    let back = sign_in_and_allow(b, &url).await;
    assert_eq!(back.status, 303);
    back.query()["code"].clone()
}

// --- the happy path ---------------------------------------------------------------------

#[tokio::test]
async fn sign_in_consent_code_and_tokens() {
    let s = TestServer::start(CONFIG).await;
    let mut b = Browser::new(s.url(""));
    let url = authorize_url(
        "web",
        Some(WEB_CB),
        &[
            ("state", "xyz"),
            ("scope", "read write"),
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
        ],
    );
    let sign_in = b.get(&url).await;
    assert_eq!(sign_in.status, 200);
    assert!(
        sign_in.body.contains("Web &lt;App&gt;"),
        "the client name, escaped"
    );
    let csrf = sign_in.cookie("oauth_edge_csrf").expect("a CSRF cookie");
    assert!(csrf.contains("HttpOnly") && csrf.contains("SameSite=Strict"));
    assert!(!csrf.contains("Secure"), "plain http, issuer http: {csrf}");
    let fields = sign_in.fields();
    assert!(fields.contains_key("csrf") && fields.contains_key("request"));

    let consent = b
        .submit(
            &sign_in,
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert_eq!(consent.status, 200);
    let session = consent
        .cookie("oauth_edge_session")
        .expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    assert!(session.contains("Path=/oauth2") && session.contains("Max-Age="));
    assert!(consent.body.contains("alice") && consent.body.contains("write"));
    assert!(!consent.body.contains("wonderland"));

    let back = b.submit(&consent, &[("decision", "allow")]).await;
    assert_eq!(back.status, 303);
    let loc = back.location.clone().unwrap();
    assert!(loc.starts_with("https://web.example/cb?"), "{loc}");
    let q = back.query();
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], "http://auth.test");
    let code = &q["code"];
    assert!(code.starts_with("oec_"));

    let (status, tokens) = exchange(&s, WEB, code, Some(WEB_CB), Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "read write");
    assert!(tokens["refresh_token"].is_string());
    let access = tokens["access_token"].as_str().unwrap();
    let r = s.get_bearer("/api/me", access).await;
    assert_eq!(r.status(), 200);
    let echoed: Value = r.json().await.unwrap();
    assert_eq!(echoed["headers"]["x-oauth-user"], "alice");
    assert_eq!(echoed["headers"]["x-oauth-client-id"], "web");

    // Signed in now: the next request goes straight to consent.
    let again = b.get(&url).await;
    assert_eq!(again.status, 200);
    assert!(again.fields().contains_key("decision") || again.body.contains("value=\"allow\""));
    assert!(!again.fields().contains_key("password"));
}

#[tokio::test]
async fn a_registered_query_is_kept_and_the_sole_uri_may_be_omitted() {
    let s = TestServer::start(CONFIG).await;
    let mut b = Browser::new(s.url(""));
    let url = authorize_url(
        "web",
        Some("https://web.example/cb2?keep=1"),
        &[("state", "s")],
    );
    let back = sign_in_and_allow(&mut b, &url).await;
    let loc = back.location.clone().unwrap();
    assert!(
        loc.starts_with("https://web.example/cb2?keep=1&code="),
        "{loc}"
    );
    let code = back.query()["code"].clone();
    // Named in the request, so required at the token endpoint (a missing required
    // parameter: invalid_request).
    let (status, body) = exchange(&s, WEB, &code, None, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, _) = exchange(&s, WEB, &code, Some("https://web.example/cb2?keep=1"), None).await;
    assert_eq!(status, 200);

    // The public client has one registered URI: it may leave redirect_uri out.
    let url = authorize_url(
        "spa",
        None,
        &[
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
        ],
    );
    let back = sign_in_and_allow(&mut b, &url).await;
    assert!(back
        .location
        .unwrap()
        .starts_with("https://spa.example/cb?code="));
}

#[tokio::test]
async fn wrong_password_and_deny() {
    let s = TestServer::start(CONFIG).await;
    let mut b = Browser::new(s.url(""));
    let url = authorize_url("web", Some(WEB_CB), &[("state", "st")]);
    let sign_in = b.get(&url).await;
    let again = b
        .submit(&sign_in, &[("username", "alice"), ("password", "nope")])
        .await;
    // 400, not 401: no HTTP authentication scheme applies to the form.
    assert_eq!(again.status, 400);
    assert!(again.body.contains("role=\"alert\""));
    assert!(again.cookie("oauth_edge_session").is_none());
    assert!(!again.body.contains("nope"), "the password is never echoed");
    assert_eq!(again.fields()["username"], "alice");

    let consent = b
        .submit(&again, &[("username", "alice"), ("password", "wonderland")])
        .await;
    let back = b.submit(&consent, &[("decision", "deny")]).await;
    assert_eq!(back.status, 303);
    let q = back.query();
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st");
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn first_party_clients_skip_consent() {
    let s = TestServer::start(CONFIG).await;
    let mut b = Browser::new(s.url(""));
    let url = authorize_url(
        "first",
        None,
        &[
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
        ],
    );
    let sign_in = b.get(&url).await;
    let back = b
        .submit(
            &sign_in,
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert_eq!(back.status, 303, "{}", back.body);
    let code = back.query()["code"].clone();
    let (status, _) = exchange(
        &s,
        ("first", Some("first-secret")),
        &code,
        None,
        Some(VERIFIER),
    )
    .await;
    assert_eq!(status, 200);
    // Already signed in: straight back with a code, no page at all.
    let back = b.get(&url).await;
    assert_eq!(back.status, 302);
    assert!(back.query().contains_key("code"));
}

// --- errors: pages and redirects ------------------------------------------------------

fn is_error_page(p: &Page, code: &str) {
    assert!(p.location.is_none(), "never a redirect: {:?}", p.location);
    assert!(p.status >= 400, "status {}", p.status);
    assert!(p.body.contains("<!DOCTYPE html>") || p.body.contains("<!doctype html>"));
    assert!(p.body.contains(code), "{code} in {}", p.body);
}

#[tokio::test]
async fn errors_without_a_trustworthy_redirect_are_pages() {
    let s = TestServer::start(CONFIG).await;
    let mut b = Browser::new(s.url(""));
    let p = b.get("/oauth2/authorize?response_type=code").await;
    is_error_page(&p, "invalid_request");
    let p = b.get(&authorize_url("nobody", Some(WEB_CB), &[])).await;
    is_error_page(&p, "invalid_client");
    let p = b
        .get(&authorize_url("web", Some("https://evil.example/cb"), &[]))
        .await;
    is_error_page(&p, "invalid_request");
    // A prefix or a variant of a registered URI is not it.
    let p = b
        .get(&authorize_url(
            "web",
            Some("https://web.example/cb/../x"),
            &[],
        ))
        .await;
    is_error_page(&p, "invalid_request");
    let p = b
        .get(&authorize_url(
            "web",
            Some("https://web.example/cb?x=1"),
            &[],
        ))
        .await;
    is_error_page(&p, "invalid_request");
    // Two registered URIs: which one is not guessed.
    let p = b.get(&authorize_url("web", None, &[])).await;
    is_error_page(&p, "invalid_request");
    // A repeated parameter cannot be trusted to say where to redirect.
    let p = b
        .get(&format!(
            "{}&redirect_uri=https%3A%2F%2Fevil.example%2F",
            authorize_url("web", Some(WEB_CB), &[])
        ))
        .await;
    is_error_page(&p, "invalid_request");
    // The pages answer GET, HEAD and POST only.
    let r = s
        .http
        .delete(s.url("/oauth2/authorize"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // Security headers on every page.
    let r = s.http.get(s.url("/oauth2/authorize")).send().await.unwrap();
    let h = r.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(h["cache-control"], "no-store");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
}

#[tokio::test]
async fn errors_with_a_valid_redirect_go_back_to_the_client() {
    let s = TestServer::start(CONFIG).await;
    let mut b = Browser::new(s.url(""));
    let cases: Vec<(String, &str)> = vec![
        (
            format!(
                "/oauth2/authorize?client_id=web&redirect_uri={}&state=s1",
                "https%3A%2F%2Fweb.example%2Fcb"
            ),
            "invalid_request",
        ),
        (
            authorize_url("web", Some(WEB_CB), &[("state", "s1")])
                .replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_url("cc", None, &[("state", "s1")]),
            "unauthorized_client",
        ),
        (
            authorize_url(
                "web",
                Some(WEB_CB),
                &[("state", "s1"), ("scope", "read admin")],
            ),
            "invalid_scope",
        ),
        // A public client must use PKCE.
        (
            authorize_url("spa", None, &[("state", "s1")]),
            "invalid_request",
        ),
        // No downgrade: plain, or a challenge without a method (which means plain).
        (
            authorize_url(
                "spa",
                None,
                &[
                    ("state", "s1"),
                    ("code_challenge", VERIFIER),
                    ("code_challenge_method", "plain"),
                ],
            ),
            "invalid_request",
        ),
        (
            authorize_url(
                "spa",
                None,
                &[("state", "s1"), ("code_challenge", &s256(VERIFIER))],
            ),
            "invalid_request",
        ),
        (
            authorize_url(
                "spa",
                None,
                &[
                    ("state", "s1"),
                    ("code_challenge", "too-short"),
                    ("code_challenge_method", "S256"),
                ],
            ),
            "invalid_request",
        ),
    ];
    for (url, error) in cases {
        let p = b.get(&url).await;
        assert_eq!(p.status, 302, "{url}: {}", p.body);
        let q = p.query();
        assert_eq!(q["error"], error, "{url}");
        assert_eq!(q["state"], "s1", "{url}");
        assert_eq!(q["iss"], "http://auth.test");
        assert!(q.contains_key("error_description"));
        assert!(!q.contains_key("code"));
    }
}

#[tokio::test]
async fn forms_need_their_csrf_token_and_a_same_site_origin() {
    let s = TestServer::start(CONFIG).await;
    let mut b = Browser::new(s.url(""));
    let sign_in = b
        .get(&authorize_url("web", Some(WEB_CB), &[("state", "s")]))
        .await;
    let f = sign_in.fields();
    let login = |csrf: &'static str| {
        vec![
            ("request", f["request"].clone()),
            ("csrf", csrf.to_string()),
            ("username", "alice".to_string()),
            ("password", "wonderland".to_string()),
        ]
    };
    let as_refs = |v: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { v.clone() };
    // A wrong token.
    let form = as_refs(&login("forged"));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let p = b.post("/oauth2/authorize", &form).await;
    assert_eq!(p.status, 403);
    assert!(p.cookie("oauth_edge_session").is_none());
    // The right token, but posted from another site.
    let mut good: Vec<(&str, &str)> = form.clone();
    good.retain(|(k, _)| *k != "csrf");
    good.push(("csrf", f["csrf"].as_str()));
    let p = b
        .post_with(
            "/oauth2/authorize",
            &good,
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(p.status, 403);
    // The right token without the cookie it belongs to.
    let mut cookieless = Browser::new(s.url(""));
    let p = cookieless.post("/oauth2/authorize", &good).await;
    assert_eq!(p.status, 403);
    // A tampered request ticket.
    let mut tampered = good.clone();
    let t = format!("{}x", f["request"]);
    tampered.retain(|(k, _)| *k != "request");
    tampered.push(("request", t.as_str()));
    let p = b.post("/oauth2/authorize", &tampered).await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("expired"));
    // All in order.
    let origin = s.url("");
    let p = b
        .post_with(
            "/oauth2/authorize",
            &good,
            &[("origin", origin.trim_end_matches('/'))],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.cookie("oauth_edge_session").is_some());
    // A decision without a session is sent back to sign in.
    let mut fresh = Browser::new(s.url(""));
    let page = fresh
        .get(&authorize_url("web", Some(WEB_CB), &[("state", "s")]))
        .await;
    let p = fresh.submit(&page, &[("decision", "allow")]).await;
    assert_eq!(p.status, 200);
    assert!(p.fields().contains_key("password"));
}

#[tokio::test]
async fn cookies_are_secure_over_https() {
    let cfg = CONFIG.replace(
        "issuer = \"http://auth.test\"",
        "issuer = \"https://auth.test\"",
    );
    let s = TestServer::start(&cfg).await;
    let mut b = Browser::new(s.url(""));
    let sign_in = b
        .get(&authorize_url("web", Some(WEB_CB), &[("state", "s")]))
        .await;
    assert!(sign_in
        .cookie("oauth_edge_csrf")
        .unwrap()
        .contains("; Secure"));
    let consent = b
        .submit(
            &sign_in,
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert!(consent
        .cookie("oauth_edge_session")
        .unwrap()
        .contains("; Secure"));
}

// --- codes at the token endpoint --------------------------------------------------------

#[tokio::test]
async fn pkce_is_checked_at_the_token_endpoint() {
    let s = TestServer::start(CONFIG).await;
    let mut b = Browser::new(s.url(""));
    let code = web_code(&mut b).await;
    let wrong = "x".repeat(50);
    let (status, body) = exchange(&s, WEB, &code, Some(WEB_CB), Some(&wrong)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = exchange(&s, WEB, &code, Some(WEB_CB), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, body) = exchange(
        &s,
        WEB,
        &code,
        Some("https://web.example/cb2?keep=1"),
        Some(VERIFIER),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Another client cannot use it, and it is left for its own client.
    let (status, body) = exchange(
        &s,
        ("first", Some("first-secret")),
        &code,
        Some(WEB_CB),
        Some(VERIFIER),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = exchange(&s, WEB, &code, Some(WEB_CB), Some(VERIFIER)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_verifier_without_a_challenge_is_refused() {
    let s = TestServer::start(CONFIG).await;
    let mut b = Browser::new(s.url(""));
    let back = sign_in_and_allow(&mut b, &authorize_url("web", Some(WEB_CB), &[])).await;
    let code = back.query()["code"].clone();
    let (status, body) = exchange(&s, WEB, &code, Some(WEB_CB), Some(VERIFIER)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = exchange(&s, WEB, &code, Some(WEB_CB), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_code_redeemed_twice_revokes_what_it_issued() {
    let s = TestServer::start(CONFIG).await;
    let mut b = Browser::new(s.url(""));
    let code = web_code(&mut b).await;
    let (status, first) = exchange(&s, WEB, &code, Some(WEB_CB), Some(VERIFIER)).await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(s.get_bearer("/api/x", access).await.status(), 200);
    let (status, body) = exchange(&s, WEB, &code, Some(WEB_CB), Some(VERIFIER)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(s.get_bearer("/api/x", access).await.status(), 401);
    let r = s
        .post_form(
            "/oauth2/token",
            &[("authorization", &basic("web", "web-secret"))],
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_code_redeemed_concurrently_has_one_winner_whose_tokens_then_die() {
    let s = TestServer::start(CONFIG).await;
    let mut b = Browser::new(s.url(""));
    let code = web_code(&mut b).await;
    let attempts = (0..10).map(|_| exchange(&s, WEB, &code, Some(WEB_CB), Some(VERIFIER)));
    let results = futures_join_all(attempts).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(st, _)| *st == 200)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (st, v) in &results {
        if *st != 200 {
            assert_eq!(v["error"], "invalid_grant");
        }
    }
    let access = winners[0]["access_token"].as_str().unwrap();
    assert_eq!(s.get_bearer("/api/x", access).await.status(), 401);
}

#[tokio::test]
async fn codes_expire() {
    let clock = Arc::new(ManualClock::starting_now());
    let s = TestServer::with_clock(CONFIG, clock.clone()).await;
    let mut b = Browser::new(s.url(""));
    let code = web_code(&mut b).await;
    clock.advance(Duration::from_millis(2200));
    let (status, body) = exchange(&s, WEB, &code, Some(WEB_CB), Some(VERIFIER)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn metadata_names_the_new_endpoints() {
    let s = TestServer::start(CONFIG).await;
    let m: Value = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        m["authorization_endpoint"],
        "http://auth.test/oauth2/authorize"
    );
    assert_eq!(
        m["device_authorization_endpoint"],
        "http://auth.test/oauth2/device_authorization"
    );
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(grants.iter().any(|g| g == "authorization_code"));
    assert!(grants
        .iter()
        .any(|g| g == "urn:ietf:params:oauth:grant-type:device_code"));
}

// --- the device flow -------------------------------------------------------------------

const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

async fn start_device(s: &TestServer, scope: Option<&str>) -> Value {
    let mut form = vec![("client_id", "tv")];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    let r = s
        .post_form("/oauth2/device_authorization", &[], &form)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

async fn poll(s: &TestServer, device_code: &str) -> (u16, Value) {
    let r = s
        .post_form(
            "/oauth2/token",
            &[],
            &[
                ("grant_type", DEVICE),
                ("device_code", device_code),
                ("client_id", "tv"),
            ],
        )
        .await;
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Enters `user_code` on the verification page as alice and decides.
async fn approve(s: &TestServer, user_code: &str, decision: &str) -> Page {
    let mut b = Browser::new(s.url(""));
    let entry = b.get("/oauth2/device").await;
    assert_eq!(entry.status, 200);
    let sign_in = b.submit(&entry, &[("user_code", user_code)]).await;
    assert_eq!(sign_in.status, 200, "{}", sign_in.body);
    assert!(sign_in.fields().contains_key("password"));
    let confirm = b
        .submit(
            &sign_in,
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains(user_code), "the code to compare");
    b.submit(&confirm, &[("decision", decision)]).await
}

#[tokio::test]
async fn device_authorization_answers_rfc_8628_3_2() {
    let s = TestServer::start(CONFIG).await;
    let d = start_device(&s, Some("read write")).await;
    let user_code = d["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code
        .bytes()
        .all(|c| c == b'-' || b"BCDFGHJKLMNPQRSTVWXZ".contains(&c)));
    assert!(d["device_code"].as_str().unwrap().starts_with("oed_"));
    assert_eq!(d["verification_uri"], "http://auth.test/oauth2/device");
    assert_eq!(
        d["verification_uri_complete"],
        format!("http://auth.test/oauth2/device?user_code={user_code}")
    );
    assert_eq!(d["expires_in"], 20);
    assert_eq!(d["interval"], 1);
    // A client not allowed the device grant, and a bad scope.
    let r = s
        .post_form(
            "/oauth2/device_authorization",
            &[("authorization", &basic("web", "web-secret"))],
            &[],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    let r = s
        .post_form(
            "/oauth2/device_authorization",
            &[],
            &[("client_id", "tv"), ("scope", "admin")],
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
    // The page prefills a code from verification_uri_complete.
    let mut b = Browser::new(s.url(""));
    let page = b
        .get(&format!(
            "/oauth2/device?user_code={}",
            user_code.to_lowercase()
        ))
        .await;
    assert_eq!(page.fields()["user_code"], user_code);
}

#[tokio::test]
async fn device_polling_states() {
    let clock = Arc::new(ManualClock::starting_now());
    let s = TestServer::with_clock(CONFIG, clock.clone()).await;
    let d = start_device(&s, None).await;
    let dc = d["device_code"].as_str().unwrap();
    let (st, v) = poll(&s, dc).await;
    assert_eq!(
        (st, v["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    let (st, v) = poll(&s, dc).await;
    assert_eq!((st, v["error"].as_str()), (400, Some("slow_down")));
    // Remembered: 1.2 s later is on time for the old interval, not for the new one.
    clock.advance(Duration::from_millis(1200));
    let (_, v) = poll(&s, dc).await;
    assert_eq!(v["error"], "slow_down");

    // A device that keeps to the interval is never told to slow down.
    let d2 = start_device(&s, None).await;
    let dc2 = d2["device_code"].as_str().unwrap();
    for _ in 0..2 {
        let (_, v) = poll(&s, dc2).await;
        assert_eq!(v["error"], "authorization_pending");
        clock.advance(Duration::from_millis(1000));
    }
    // Approved on the page: the next poll gets tokens, once.
    let done = approve(&s, d2["user_code"].as_str().unwrap(), "allow").await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("Device connected"));
    let (st, tokens) = poll(&s, dc2).await;
    assert_eq!(st, 200, "{tokens}");
    assert_eq!(tokens["scope"], "read");
    assert!(tokens["refresh_token"].is_string());
    let r = s
        .get_bearer("/api/who", tokens["access_token"].as_str().unwrap())
        .await;
    let echoed: Value = r.json().await.unwrap();
    assert_eq!(echoed["headers"]["x-oauth-user"], "alice");
    clock.advance(Duration::from_millis(1000));
    let (_, v) = poll(&s, dc2).await;
    assert_eq!(v["error"], "invalid_grant");

    // Denied.
    let d3 = start_device(&s, None).await;
    let done = approve(&s, d3["user_code"].as_str().unwrap(), "deny").await;
    assert!(done.body.contains("denied"));
    let (_, v) = poll(&s, d3["device_code"].as_str().unwrap()).await;
    assert_eq!(v["error"], "access_denied");

    // Expired.
    let clock = Arc::new(ManualClock::starting_now());
    let short = TestServer::with_clock(
        &CONFIG.replace("code_ttl = \"20s\"", "code_ttl = \"1s\""),
        clock.clone(),
    )
    .await;
    let d4 = start_device(&short, None).await;
    assert_eq!(d4["expires_in"], 1);
    clock.advance(Duration::from_millis(1100));
    let (_, v) = poll(&short, d4["device_code"].as_str().unwrap()).await;
    assert_eq!(v["error"], "expired_token");
    // The page refuses an expired code too.
    let mut b = Browser::new(short.url(""));
    let entry = b.get("/oauth2/device").await;
    let p = b
        .submit(&entry, &[("user_code", d4["user_code"].as_str().unwrap())])
        .await;
    assert_eq!(p.status, 400);
    // Another client's device code, and garbage.
    let (_, v) = poll(&s, "oed_garbage").await;
    assert_eq!(v["error"], "invalid_grant");
}

#[tokio::test]
async fn two_pollers_of_an_approved_grant_get_one_set_of_tokens() {
    let s = TestServer::start(CONFIG).await;
    let d = start_device(&s, None).await;
    let dc = d["device_code"].as_str().unwrap().to_string();
    approve(&s, d["user_code"].as_str().unwrap(), "allow").await;
    let results = futures_join_all((0..8).map(|_| poll(&s, &dc))).await;
    let ok = results.iter().filter(|(st, _)| *st == 200).count();
    assert_eq!(ok, 1, "{results:?}");
}

#[tokio::test]
async fn wrong_user_codes_are_rate_limited() {
    let s = TestServer::start(CONFIG).await;
    let d = start_device(&s, None).await;
    let mut b = Browser::new(s.url(""));
    let entry = b.get("/oauth2/device").await;
    for i in 0..5 {
        let p = b.submit(&entry, &[("user_code", "BBBB-BBBB")]).await;
        assert_eq!(p.status, 400, "attempt {i}");
        assert!(p.body.contains("not valid"));
    }
    let p = b.submit(&entry, &[("user_code", "BBBB-BBBB")]).await;
    assert_eq!(p.status, 429);
    // Even the right code waits now.
    let p = b
        .submit(&entry, &[("user_code", d["user_code"].as_str().unwrap())])
        .await;
    assert_eq!(p.status, 429);
}

/// `join_all` without a futures dependency: spawn-free, on this task.
async fn futures_join_all<F, T>(futs: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out = Vec::new();
    // Drive them together so they really race at the store.
    let mut pending: Vec<Option<std::pin::Pin<Box<F>>>> = set.into_iter().map(Some).collect();
    let mut results: Vec<Option<T>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut left = 0;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => left += 1,
                }
            }
        }
        if left == 0 {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.unwrap()));
    out
}

// --- handing sign-in off to a login app ------------------------------------------------

#[tokio::test]
async fn sign_in_handed_off_to_a_login_app() {
    let cfg = CONFIG.replace(
        "[authorization]\n",
        "[authorization]\nlogin_url = \"https://login.example/login?lang=en\"\n",
    );
    let s = TestServer::start(&cfg).await;
    let mut b = Browser::new(s.url(""));
    let url = authorize_url("web", Some(WEB_CB), &[("state", "st"), ("scope", "read")]);
    let to_login = b.get(&url).await;
    assert_eq!(to_login.status, 302);
    let loc = to_login.location.clone().unwrap();
    assert!(
        loc.starts_with("https://login.example/login?lang=en&login_challenge="),
        "{loc}"
    );
    let challenge = to_login.query()["login_challenge"].clone();
    // The browser sent there gets a login cookie for the way back (Lax: that way back is a
    // navigation from the login app's site), and the challenge does not carry its value.
    let set = to_login.cookie("oauth_edge_login").expect("a login cookie");
    assert!(
        set.contains("SameSite=Lax") && set.contains("HttpOnly"),
        "{set}"
    );
    let value = set["oauth_edge_login=".len()..].split(';').next().unwrap();
    assert!(value.len() >= 16, "{set}");
    let opened = challenge.split('.').next().unwrap();
    let opened = String::from_utf8(URL_SAFE_NO_PAD.decode(opened).unwrap()).unwrap();
    assert!(!opened.contains(value), "{opened}");

    // The login app signs bob in and accepts the challenge (the gateway's admin API does
    // this call).
    let back = s.edge.accept_login(&challenge, "bob").unwrap();
    let path = back
        .strip_prefix("http://auth.test")
        .expect("under the issuer");
    assert!(!back.contains(value), "{back}");

    // The verifier works only in the browser that was sent to the login app: leaked (history,
    // logs, a Referer), it signs nobody in anywhere else.
    let mut elsewhere = Browser::new(s.url(""));
    let p = elsewhere.get(path).await;
    is_error_page(&p, "invalid_request");
    assert!(p.cookie("oauth_edge_session").is_none());
    let mut forged_cookie = Browser::new(s.url(""));
    forged_cookie.set_cookie("oauth_edge_login", "AAAAAAAAAAAAAAAAAAAAAA");
    let p = forged_cookie.get(path).await;
    is_error_page(&p, "invalid_request");
    assert!(p.cookie("oauth_edge_session").is_none());

    let consent = b.get(path).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("bob"));
    assert!(consent.cookie("oauth_edge_session").is_some());
    let done = b.submit(&consent, &[("decision", "allow")]).await;
    let q = done.query();
    assert_eq!(q["state"], "st");
    let (status, tokens) = exchange(&s, WEB, &q["code"], Some(WEB_CB), None).await;
    assert_eq!(status, 200);
    let echoed: Value = s
        .get_bearer("/api/me", tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(echoed["headers"]["x-oauth-user"], "bob");

    // Rejected: the browser goes back to the client with access_denied.
    let mut b2 = Browser::new(s.url(""));
    let challenge = b2.get(&url).await.query()["login_challenge"].clone();
    let back = s.edge.reject_login(&challenge).unwrap();
    assert!(
        back.starts_with("https://web.example/cb?error=access_denied"),
        "{back}"
    );
    assert!(back.contains("state=st"));

    // Forged or altered challenges and verifiers get nowhere.
    assert!(s.edge.accept_login("forged", "bob").is_err());
    assert!(s
        .edge
        .accept_login(&format!("{challenge}x"), "bob")
        .is_err());
    assert!(s.edge.reject_login("forged").is_err());
    let p = b2.get("/oauth2/authorize?login_verifier=forged").await;
    is_error_page(&p, "invalid_request");
    assert!(p.cookie("oauth_edge_session").is_none());
}

#[tokio::test]
async fn an_outage_at_the_redeeming_poll_answers_503_and_spends_nothing() {
    let store = std::sync::Arc::new(common::FlakyStore::default());
    let clock = Arc::new(ManualClock::starting_now());
    let s = TestServer::built(CONFIG, |b| b.store(store.clone()).clock(clock.clone())).await;
    let d = start_device(&s, None).await;
    let dc = d["device_code"].as_str().unwrap();
    approve(&s, d["user_code"].as_str().unwrap(), "allow").await;
    store.set_down(true);
    let (st, v) = poll(&s, dc).await;
    assert_eq!(st, 503, "{v}");
    assert_eq!(v["error"], "temporarily_unavailable");
    store.set_down(false);
    // Nothing was spent: the next poll (at the interval) gets the tokens.
    clock.advance(Duration::from_millis(1000));
    let (st, tokens) = poll(&s, dc).await;
    assert_eq!(st, 200, "{tokens}");
    assert_eq!(
        s.get_bearer("/api/x", tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_address() {
    let cfg = CONFIG.replace(
        "[authorization]\n",
        "[authorization]\nmax_failed_sign_ins_per_minute = 3\n",
    );
    let s = TestServer::start(&cfg).await;
    let mut b = Browser::new(s.url(""));
    let page = b
        .get(&authorize_url("web", Some(WEB_CB), &[("state", "s")]))
        .await;
    for i in 0..3 {
        let p = b
            .submit(&page, &[("username", "alice"), ("password", "guess")])
            .await;
        assert_eq!(p.status, 400, "attempt {i}");
    }
    // Now even the right password waits: the form is not checked at all.
    let p = b
        .submit(&page, &[("username", "alice"), ("password", "wonderland")])
        .await;
    assert_eq!(p.status, 429);
    assert_eq!(p.set_cookies.len(), 0, "{:?}", p.set_cookies);
    assert!(p.cookie("oauth_edge_session").is_none());
    // The device page's sign-in shares the count.
    let d = start_device(&s, None).await;
    let entry = b.get("/oauth2/device").await;
    let sign_in = b
        .submit(&entry, &[("user_code", d["user_code"].as_str().unwrap())])
        .await;
    let p = b
        .submit(
            &sign_in,
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert_eq!(p.status, 429);
    let metrics = s.edge.metrics().auth_failures();
    let bad = metrics
        .iter()
        .find(|(r, _)| r.as_str() == "bad_user_credentials")
        .map(|(_, n)| *n);
    assert_eq!(bad, Some(3));
}

#[tokio::test]
async fn the_device_page_hands_sign_in_off_to_the_login_app_too() {
    let cfg = CONFIG.replace(
        "[authorization]\n",
        "[authorization]\nlogin_url = \"https://login.example/login\"\n",
    );
    let s = TestServer::start(&cfg).await;
    let d = start_device(&s, None).await;
    let user_code = d["user_code"].as_str().unwrap();
    let mut b = Browser::new(s.url(""));
    let entry = b.get("/oauth2/device").await;
    let to_login = b.submit(&entry, &[("user_code", user_code)]).await;
    assert_eq!(to_login.status, 303, "{}", to_login.body);
    let loc = to_login.location.clone().unwrap();
    assert!(
        loc.starts_with("https://login.example/login?login_challenge="),
        "{loc}"
    );
    let challenge = to_login.query()["login_challenge"].clone();

    // Rejected: back to the page where codes are entered; the device keeps waiting.
    assert_eq!(
        s.edge.reject_login(&challenge).unwrap(),
        "http://auth.test/oauth2/device"
    );

    // Accepted: the confirm page for bob, then the device gets tokens for bob.
    let back = s.edge.accept_login(&challenge, "bob").unwrap();
    let path = back.strip_prefix("http://auth.test").unwrap();
    assert!(path.starts_with("/oauth2/device?login_verifier="), "{path}");
    // Only in the browser that was sent to the login app.
    let p = Browser::new(s.url("")).get(path).await;
    is_error_page(&p, "invalid_request");
    assert!(p.cookie("oauth_edge_session").is_none());
    let confirm = b.get(path).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("bob") && confirm.body.contains(user_code));
    let done = b.submit(&confirm, &[("decision", "allow")]).await;
    assert!(done.body.contains("Device connected"), "{}", done.body);
    let (st, tokens) = poll(&s, d["device_code"].as_str().unwrap()).await;
    assert_eq!(st, 200, "{tokens}");
    let echoed: Value = s
        .get_bearer("/api/me", tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(echoed["headers"]["x-oauth-user"], "bob");

    // A verifier made for the device page does not work on the authorize page, nor the
    // other way round.
    let p = b
        .get(&path.replace("/oauth2/device?", "/oauth2/authorize?"))
        .await;
    is_error_page(&p, "invalid_request");
}

// --- sessions: they end with their user, their password, the keys, or sign-out -----------

const ALICE: &str = "[[users]]\nusername = \"alice\"\npassword = \"wonderland\"\n";

fn web_authorize_url() -> String {
    authorize_url(
        "web",
        Some(WEB_CB),
        &[
            ("scope", "read"),
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
        ],
    )
}

fn is_sign_in(p: &Page) -> bool {
    p.status == 200 && p.body.contains("name=\"password\"")
}

fn is_consent(p: &Page) -> bool {
    p.status == 200 && p.body.contains("name=\"decision\"") && !p.body.contains("name=\"password\"")
}

/// Signs alice in at `s`; returns her session cookie's value.
async fn alice_session(s: &TestServer) -> String {
    let mut b = Browser::new(s.url(""));
    let sign_in = b.get(&web_authorize_url()).await;
    assert!(is_sign_in(&sign_in), "{}", sign_in.body);
    let consent = b
        .submit(
            &sign_in,
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert!(is_consent(&consent), "{}", consent.body);
    // Signed in: the next request goes straight to consent.
    assert!(is_consent(&b.get(&web_authorize_url()).await));
    let set = consent
        .cookie("oauth_edge_session")
        .expect("a session cookie");
    set.split(';').next().unwrap()["oauth_edge_session=".len()..].to_string()
}

/// What the authorize page shows a browser holding only `session`.
async fn with_session(s: &TestServer, session: &str) -> Page {
    let mut b = Browser::new(s.url(""));
    b.set_cookie("oauth_edge_session", session);
    b.get(&web_authorize_url()).await
}

#[tokio::test]
async fn a_session_ends_when_its_user_is_removed_or_gets_a_new_password() {
    let store: std::sync::Arc<dyn oauth_edge::store::Store> =
        std::sync::Arc::new(oauth_edge::store::MemoryStore::new());
    let a = TestServer::with_store(CONFIG, store.clone()).await;
    let session = alice_session(&a).await;
    // Another instance on the same store (so the same keys) with the same users takes it.
    let same = TestServer::with_store(CONFIG, store.clone()).await;
    assert!(is_consent(&with_session(&same, &session).await));

    // alice removed: her session ends.
    let removed = CONFIG.replace(
        ALICE,
        "[[users]]\nusername = \"bob\"\npassword = \"builder\"\n",
    );
    assert_ne!(removed, CONFIG);
    let removed = TestServer::with_store(&removed, store.clone()).await;
    assert!(is_sign_in(&with_session(&removed, &session).await));

    // alice with a new password: her session ends too.
    let moved = CONFIG.replace("password = \"wonderland\"", "password = \"looking-glass\"");
    let moved = TestServer::with_store(&moved, store.clone()).await;
    assert!(is_sign_in(&with_session(&moved, &session).await));

    // The cookie says nothing of the password.
    let json = URL_SAFE_NO_PAD
        .decode(session.split('.').next().unwrap())
        .unwrap();
    let json = String::from_utf8(json).unwrap();
    assert!(
        json.contains("alice") && !json.contains("wonderland"),
        "{json}"
    );
}

#[tokio::test]
async fn a_session_ends_when_the_keys_rotate() {
    let key = |b: u8| URL_SAFE_NO_PAD.encode([b; 32]);
    let one = format!(
        "{CONFIG}\n[tokens]\nkeys = [{{ id = 1, secret = \"{}\" }}]\n",
        key(1)
    );
    let rotated = format!(
        "{CONFIG}\n[tokens]\nsigning_key = 2\nkeys = [{{ id = 1, secret = \"{}\" }}, {{ id = 2, secret = \"{}\" }}]\n",
        key(1),
        key(2)
    );
    let a = TestServer::start(&one).await;
    let session = alice_session(&a).await;
    assert!(is_consent(
        &with_session(&TestServer::start(&one).await, &session).await
    ));
    let b = TestServer::start(&rotated).await;
    assert!(is_sign_in(&with_session(&b, &session).await));
}

#[tokio::test]
async fn sign_out_ends_the_session_and_every_copy_of_its_cookie() {
    let s = TestServer::start(CONFIG).await;
    let mut b = Browser::new(s.url(""));
    let sign_in = b.get(&web_authorize_url()).await;
    let consent = b
        .submit(
            &sign_in,
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert!(is_consent(&consent));
    let set = consent.cookie("oauth_edge_session").unwrap();
    let session = set.split(';').next().unwrap()["oauth_edge_session=".len()..].to_string();

    let page = b.get("/oauth2/sign-out").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Signed in as") && page.body.contains("alice"));
    // Without the form's CSRF token, nothing happens.
    let refused = b.post("/oauth2/sign-out", &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(is_consent(&b.get(&web_authorize_url()).await));

    let done = b.submit(&page, &[]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("You are signed out"), "{}", done.body);
    let cleared = done
        .cookie("oauth_edge_session")
        .expect("the cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(is_sign_in(&b.get(&web_authorize_url()).await));
    // A copy of the cookie kept from before is refused too.
    assert!(is_sign_in(&with_session(&s, &session).await));
    let again = b.get("/oauth2/sign-out").await;
    assert!(
        again.body.contains("You are not signed in"),
        "{}",
        again.body
    );
}
