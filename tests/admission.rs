//! Passthrough admission, end to end: RFC 6750 challenges, scopes, the identity headers the
//! upstream sees (and the spoofed ones it must not see), what is stripped before forwarding,
//! route matching, and the forged-token flood that must never reach the store.
mod common;

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{basic, TestServer, CONFIG};
use oauth_edge::store::testing::TestStore;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn www(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .expect("a WWW-Authenticate header")
        .to_str()
        .unwrap()
        .to_string()
}

async fn svc_access(s: &TestServer, scope: Option<&str>) -> String {
    let t = s.client_token("svc", "svc-secret", scope).await;
    str_of(&t, "access_token").to_string()
}

/// GETs `path` with `headers`, expects 200 and returns the echo.
async fn echo(s: &TestServer, path: &str, headers: &[(HeaderName, &str)]) -> Value {
    let r = get(s, path, headers).await;
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

async fn get(s: &TestServer, path: &str, headers: &[(HeaderName, &str)]) -> reqwest::Response {
    let mut req = s.http.get(s.url(path));
    for (k, v) in headers {
        req = req.header(k.clone(), HeaderValue::from_str(v).unwrap());
    }
    req.send().await.unwrap()
}

fn h(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

/// Changes one character in the middle of a token, keeping it well shaped.
fn flip_one(token: &str) -> String {
    let mut b = token.as_bytes().to_vec();
    let i = b.len() / 2;
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

/// The echoed headers as `name: value` lines, for "appears nowhere" checks.
fn header_text(echo: &Value) -> String {
    echo["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", v.as_str().unwrap_or("")))
        .collect()
}

// ---------------------------------------------------------------------------------------
// RFC 6750 challenges

#[tokio::test]
async fn no_credentials_get_a_challenge_without_an_error_code() {
    let s = TestServer::start(CONFIG).await;
    let r = get(&s, "/api/things", &[]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(www(&r), "Bearer realm=\"oauth-edge\"");
    assert_eq!(r.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn a_forged_token_is_invalid_token() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s, None).await;
    let forged = flip_one(&access);
    assert_ne!(forged, access);
    let r = s.get_bearer("/api/things", &forged).await;
    assert_eq!(r.status(), 401);
    let w = www(&r);
    assert!(w.starts_with("Bearer realm=\"oauth-edge\""), "{w}");
    assert!(w.contains("error=\"invalid_token\""), "{w}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert!(!body.to_string().contains(&forged));
    // The real one still works.
    assert_eq!(s.get_bearer("/api/things", &access).await.status(), 200);
}

#[tokio::test]
async fn a_token_off_by_one_character_is_refused_right_after_the_real_one_passed() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s, None).await;
    // Twice, so that the real token is among this thread's recent ones.
    for _ in 0..2 {
        assert_eq!(s.get_bearer("/api/things", &access).await.status(), 200);
    }
    let n = access.len();
    for i in [4, n / 2, n - 1] {
        let mut b = access.as_bytes().to_vec();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        let near = String::from_utf8(b).unwrap();
        let r = s.get_bearer("/api/things", &near).await;
        assert_eq!(r.status(), 401, "character {i}");
        assert!(www(&r).contains("error=\"invalid_token\""), "{}", www(&r));
        assert_eq!(s.get_bearer("/api/things", &access).await.status(), 200);
    }
    // A prefix or an extension of it is no better.
    for near in [&access[..n - 1], &format!("{access}A")] {
        assert_eq!(s.get_bearer("/api/things", near).await.status(), 401);
    }
}

#[tokio::test]
async fn a_malformed_bearer_token_is_invalid_request() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s, None).await;
    let mut spaced = access.clone();
    spaced.replace_range(10..11, " ");
    let mut high = access.clone().into_bytes();
    high[10] = 0xe9;
    let values = [
        HeaderValue::from_str(&format!("Bearer {spaced}")).unwrap(),
        HeaderValue::from_static("Bearer a b"),
        HeaderValue::from_bytes(&[b"Bearer ".as_slice(), &high].concat()).unwrap(),
    ];
    // And the real token once, twice over.
    let twice = s
        .http
        .get(s.url("/api/things"))
        .header("authorization", format!("Bearer {access}"))
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    for (i, v) in values.into_iter().enumerate() {
        let r = s
            .http
            .get(s.url("/api/things"))
            .header("authorization", v)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "value {i}");
        assert!(www(&r).contains("error=\"invalid_request\""), "{}", www(&r));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
    assert_eq!(s.get_bearer("/api/things", &access).await.status(), 200);
}

#[tokio::test]
async fn an_unknown_scheme_gets_a_challenge_without_an_error_code() {
    let s = TestServer::start(CONFIG).await;
    let r = get(&s, "/api/things", &[(h("authorization"), "Digest x")]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(www(&r), "Bearer realm=\"oauth-edge\"");
}

#[tokio::test]
async fn a_refresh_token_is_not_a_bearer_token() {
    let s = TestServer::start(CONFIG).await;
    let t = s
        .password_token("svc", "svc-secret", "alice", "wonderland")
        .await;
    let refresh = str_of(&t, "refresh_token");
    let r = s.get_bearer("/api/things", refresh).await;
    assert_eq!(r.status(), 401);
    assert!(www(&r).contains("error=\"invalid_token\""), "{}", www(&r));
}

#[tokio::test]
async fn a_token_without_the_route_scope_is_insufficient_scope() {
    let s = TestServer::start(CONFIG).await;
    let read = svc_access(&s, None).await;
    let r = s.get_bearer("/api/admin/users", &read).await;
    assert_eq!(r.status(), 403);
    let w = www(&r);
    assert!(w.starts_with("Bearer realm=\"oauth-edge\""), "{w}");
    assert!(w.contains("error=\"insufficient_scope\""), "{w}");
    assert!(w.contains("scope=\"admin\""), "{w}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    // The same token is fine where no scope is required.
    assert_eq!(s.get_bearer("/api/things", &read).await.status(), 200);

    let admin = svc_access(&s, Some("admin")).await;
    let r = s.get_bearer("/api/admin/users", &admin).await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["headers"]["x-oauth-scope"], "admin");
    assert_eq!(e["uri"], "/api/admin/users");
    // The route itself, without a trailing segment.
    assert_eq!(s.get_bearer("/api/admin", &admin).await.status(), 200);
    assert_eq!(s.get_bearer("/api/admin", &read).await.status(), 403);
}

// ---------------------------------------------------------------------------------------
// What the upstream sees

#[tokio::test]
async fn identity_headers_reach_the_upstream() {
    let s = TestServer::start(CONFIG).await;
    let t = s
        .password_token("svc", "svc-secret", "alice", "wonderland")
        .await;
    let access = str_of(&t, "access_token");
    let r = s.get_bearer("/api/things?x=1", access).await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["method"], "GET");
    assert_eq!(e["uri"], "/api/things?x=1");
    assert_eq!(e["headers"]["x-oauth-client-id"], "svc");
    assert_eq!(e["headers"]["x-oauth-user"], "alice");
    assert_eq!(e["headers"]["x-oauth-scope"], "read");
    assert_eq!(e["identity"]["client_id"], "svc");
    assert_eq!(e["identity"]["user"], "alice");
    assert_eq!(e["identity"]["scope"], "read");

    // A client_credentials token has no user: no user header at all.
    let cc = svc_access(&s, Some("read write")).await;
    let e: Value = s.get_bearer("/api/things", &cc).await.json().await.unwrap();
    assert_eq!(e["headers"]["x-oauth-client-id"], "svc");
    assert!(e["headers"].get("x-oauth-user").is_none(), "{e}");
    assert_eq!(e["headers"]["x-oauth-scope"], "read write");
    assert_eq!(e["identity"]["user"], Value::Null);
}

fn spoofed_headers<'a>(extra: &[(HeaderName, &'a str)]) -> Vec<(HeaderName, &'a str)> {
    let mut v = vec![
        (h("x-oauth-client-id"), "evil"),
        (h("x_oauth_user"), "evil"),
        (h("x-oauth-scope"), "admin"),
    ];
    v.extend(extra.iter().cloned());
    v
}

/// Kong 8422, CVE-2025-64484: identity headers sent by the client never reach the upstream
/// as sent.
#[tokio::test]
async fn spoofed_identity_headers_are_replaced_on_bearer_routes() {
    let s = TestServer::start(CONFIG).await;
    let t = s
        .password_token("svc", "svc-secret", "alice", "wonderland")
        .await;
    let bearer = format!("Bearer {}", str_of(&t, "access_token"));
    // reqwest sends names in lower case; the upper-case spelling is the same header on the
    // wire, and the underscore spelling is a different name the edge must also catch.
    let e = echo(
        &s,
        "/api/things",
        &spoofed_headers(&[(h("authorization"), &bearer)]),
    )
    .await;
    let text = header_text(&e);
    assert!(!text.contains("evil"), "{text}");
    assert!(e["headers"].get("x_oauth_user").is_none(), "{text}");
    assert_eq!(e["headers"]["x-oauth-client-id"], "svc");
    assert_eq!(e["headers"]["x-oauth-user"], "alice");
    assert_eq!(e["headers"]["x-oauth-scope"], "read");

    // A client_credentials token has no user, so the spoofed user must simply vanish.
    let cc = format!("Bearer {}", svc_access(&s, None).await);
    let e = echo(
        &s,
        "/api/things",
        &spoofed_headers(&[(h("authorization"), &cc)]),
    )
    .await;
    let text = header_text(&e);
    assert!(!text.contains("evil"), "{text}");
    assert!(e["headers"].get("x-oauth-user").is_none(), "{text}");
    assert!(e["headers"].get("x_oauth_user").is_none(), "{text}");
    assert_eq!(e["headers"]["x-oauth-scope"], "read");
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_an_anonymous_route() {
    let s = TestServer::start(CONFIG).await;
    // A harmless underscored header does arrive: the server does not drop such names on its
    // own, so their absence below is the edge's doing.
    let e = echo(
        &s,
        "/public/page",
        &spoofed_headers(&[(h("x_unrelated_thing"), "kept")]),
    )
    .await;
    let text = header_text(&e);
    assert_eq!(e["headers"]["x_unrelated_thing"], "kept", "{text}");
    for name in [
        "x-oauth-client-id",
        "x-oauth-user",
        "x_oauth_user",
        "x-oauth-scope",
    ] {
        assert!(e["headers"].get(name).is_none(), "{name} reached: {text}");
    }
    assert!(!text.contains("evil"), "{text}");
    assert_eq!(e["identity"], Value::Null);
}

#[tokio::test]
async fn spoofed_identity_headers_are_replaced_on_client_routes() {
    let s = TestServer::start(CONFIG).await;
    let auth = basic("svc", "svc-secret");
    let e = echo(
        &s,
        "/client/x",
        &spoofed_headers(&[(h("authorization"), &auth)]),
    )
    .await;
    let text = header_text(&e);
    assert!(!text.contains("evil"), "{text}");
    assert_eq!(e["headers"]["x-oauth-client-id"], "svc");
    assert!(e["headers"].get("x-oauth-user").is_none(), "{text}");
    assert!(e["headers"].get("x_oauth_user").is_none(), "{text}");
    // A client stands for all of its scopes.
    assert_eq!(e["headers"]["x-oauth-scope"], "admin read write");
    assert_eq!(e["identity"]["client_id"], "svc");
}

#[tokio::test]
async fn the_bearer_token_is_stripped_unless_the_route_forwards_it() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s, None).await;
    let e: Value = s
        .get_bearer("/api/things", &access)
        .await
        .json()
        .await
        .unwrap();
    assert!(e["headers"].get("authorization").is_none(), "{e}");
    assert!(!header_text(&e).contains(&access));

    let r = s.get_bearer("/keep/things", &access).await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["headers"]["authorization"], format!("Bearer {access}"));
    assert_eq!(e["headers"]["x-oauth-client-id"], "svc");
}

// ---------------------------------------------------------------------------------------
// Client-credential routes

#[tokio::test]
async fn basic_credentials_pass_a_client_route_and_are_stripped() {
    let s = TestServer::start(CONFIG).await;
    let e = echo(
        &s,
        "/client/x",
        &[(h("authorization"), &basic("svc", "svc-secret"))],
    )
    .await;
    assert_eq!(e["identity"]["client_id"], "svc");
    assert_eq!(e["headers"]["x-oauth-client-id"], "svc");
    assert!(e["headers"].get("authorization").is_none(), "{e}");
    assert!(!header_text(&e).contains("svc-secret"));
}

#[tokio::test]
async fn ibm_headers_pass_a_client_route_and_the_secret_is_stripped() {
    let s = TestServer::start(CONFIG).await;
    let e = echo(
        &s,
        "/client/x",
        &[
            (h("x-ibm-client-id"), "svc"),
            (h("x-ibm-client-secret"), "svc-secret"),
        ],
    )
    .await;
    assert_eq!(e["identity"]["client_id"], "svc");
    assert_eq!(e["headers"]["x-ibm-client-id"], "svc");
    assert!(e["headers"].get("x-ibm-client-secret").is_none(), "{e}");
    assert!(!header_text(&e).contains("svc-secret"));
}

#[tokio::test]
async fn an_ibm_secret_in_the_query_is_stripped_like_its_header() {
    let s = TestServer::start(CONFIG).await;
    let e = echo(
        &s,
        "/client/x?a=1&X-IBM-Client-Secret=svc-secret&x_ibm_client_secret=svc-secret",
        &[
            (h("x-ibm-client-id"), "svc"),
            (h("x-ibm-client-secret"), "svc-secret"),
        ],
    )
    .await;
    assert_eq!(e["identity"]["client_id"], "svc");
    assert_eq!(e["uri"], "/client/x?a=1");
    assert!(!e.to_string().contains("svc-secret"), "{e}");
}

#[tokio::test]
async fn query_credentials_pass_a_client_route_and_the_secret_is_stripped() {
    let s = TestServer::start(CONFIG).await;
    let e = echo(
        &s,
        "/client?client_id=svc&client_secret=svc-secret&a=1",
        &[],
    )
    .await;
    assert_eq!(e["identity"]["client_id"], "svc");
    assert_eq!(e["uri"], "/client?client_id=svc&a=1");
}

#[tokio::test]
async fn a_wrong_secret_or_none_is_refused_on_a_client_route() {
    let s = TestServer::start(CONFIG).await;
    let r = get(
        &s,
        "/client/x",
        &[(h("authorization"), &basic("svc", "wrong"))],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(www(&r), "Basic realm=\"oauth-edge\"");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(!body.to_string().contains("wrong"));

    let r = get(
        &s,
        "/client/x",
        &[
            (h("x-ibm-client-id"), "svc"),
            (h("x-ibm-client-secret"), "wrong"),
        ],
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(www(&r), "Basic realm=\"oauth-edge\"");

    let r = get(&s, "/client/x", &[]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(www(&r), "Basic realm=\"oauth-edge\"");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn an_either_route_takes_a_bearer_token_or_client_credentials() {
    let s = TestServer::start(CONFIG).await;
    let access = svc_access(&s, None).await;
    let r = s.get_bearer("/either/x", &access).await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["identity"]["client_id"], "svc");
    assert!(e["headers"].get("authorization").is_none(), "{e}");

    let e = echo(
        &s,
        "/either/x",
        &[(h("authorization"), &basic("other", "other-secret"))],
    )
    .await;
    assert_eq!(e["identity"]["client_id"], "other");
    assert!(e["headers"].get("authorization").is_none(), "{e}");

    assert_eq!(get(&s, "/either/x", &[]).await.status(), 401);
    assert_eq!(
        s.get_bearer("/either/x", &flip_one(&access)).await.status(),
        401
    );
}

#[tokio::test]
async fn a_public_route_needs_nothing() {
    let s = TestServer::start(CONFIG).await;
    let e = echo(&s, "/public", &[]).await;
    assert_eq!(e["uri"], "/public");
    assert_eq!(e["identity"], Value::Null);
    let e = echo(&s, "/public/deep/page?q=1", &[]).await;
    assert_eq!(e["uri"], "/public/deep/page?q=1");
}

#[tokio::test]
async fn routes_match_on_segment_boundaries() {
    let s = TestServer::start(CONFIG).await;
    // `/apix` is not under `/api`: the default route (bearer) applies.
    let r = get(&s, "/apix", &[]).await;
    assert_eq!(r.status(), 401);
    assert_eq!(www(&r), "Bearer realm=\"oauth-edge\"");
    // `/publicity` is not under `/public` either, so it is not anonymous.
    assert_eq!(get(&s, "/publicity", &[]).await.status(), 401);
    // `/api/x` is under `/api`.
    assert_eq!(get(&s, "/api/x", &[]).await.status(), 401);
    let access = svc_access(&s, None).await;
    let e: Value = s.get_bearer("/api/x", &access).await.json().await.unwrap();
    assert_eq!(e["uri"], "/api/x");
    // `/api/administrator` is under `/api`, not `/api/admin`: no admin scope needed.
    assert_eq!(
        s.get_bearer("/api/administrator", &access).await.status(),
        200
    );
}

// ---------------------------------------------------------------------------------------
// Forged-token flood and the single-flight miss

/// A memory store that counts `find` calls, each slow enough that concurrent misses overlap.
fn counting_store() -> TestStore {
    TestStore::default().with_find_delay(Duration::from_millis(20))
}

/// A random token of the right shape, signed with the right key id, whose MAC is wrong.
fn forged_like(real: &str) -> String {
    let raw = URL_SAFE_NO_PAD.decode(&real[4..]).unwrap();
    let mut fake = vec![0u8; raw.len()];
    getrandom::fill(&mut fake).unwrap();
    fake[0] = raw[0];
    format!("{}{}", &real[..4], URL_SAFE_NO_PAD.encode(&fake))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_tokens_never_reach_the_store_and_one_miss_makes_one_lookup() {
    let store = Arc::new(counting_store());
    let s = TestServer::with_store(CONFIG, store.clone()).await;
    let access = svc_access(&s, None).await;
    store.reset_finds();

    // 200 forged tokens, sent concurrently: every one refused, none looked up.
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let forged = forged_like(&access);
        assert_eq!(forged.len(), access.len());
        assert!(s.edge.codec().verify(&forged).is_err());
        let (http, url) = (s.http.clone(), s.url("/api/things"));
        tasks.push(tokio::spawn(async move {
            let r = http.get(url).bearer_auth(&forged).send().await.unwrap();
            let status = r.status().as_u16();
            let www = r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_string();
            (status, www)
        }));
    }
    for t in tasks {
        let (status, www) = t.await.unwrap();
        assert_eq!(status, 401);
        assert!(www.contains("error=\"invalid_token\""), "{www}");
    }
    assert_eq!(store.finds(), 0, "forged tokens hit the store");
    // The hot entry is still there: the valid token needs no lookup either.
    assert_eq!(s.get_bearer("/api/things", &access).await.status(), 200);
    assert_eq!(store.finds(), 0);

    // One valid token the cache has never seen (issued, then the cache emptied).
    let cold = svc_access(&s, None).await;
    s.edge.cache().clear();
    tokio::time::sleep(Duration::from_millis(10)).await;
    store.reset_finds();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (http, url, cold) = (s.http.clone(), s.url("/api/things"), cold.clone());
        tasks.push(tokio::spawn(async move {
            http.get(url)
                .bearer_auth(&cold)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(
        store.finds(),
        1,
        "200 concurrent requests for one uncached token"
    );
}

// ---------------------------------------------------------------------------------------
// Admission without waiting

/// `admit_now` answers only what needs no wait, and then what `admit` answers: a cached token
/// (after one request has put it in this thread's front), a scope refusal for it, a route that
/// needs nothing; a cold token, a missing token and a client route wait for `admit`, and so does
/// a token revoked since it was cached.
#[tokio::test]
async fn admission_in_place_answers_what_admit_answers_or_defers() {
    use oauth_edge::{Admission, Target};
    let s = TestServer::start(CONFIG).await;
    let token = svc_access(&s, Some("read")).await;
    let head = |path: &str, auth: Option<&str>| {
        let mut b = http::Request::get(path).header("host", "api.test");
        if let Some(t) = auth {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(()).unwrap().into_parts().0
    };
    let route = |h: &http::request::Parts| match s.edge.classify(h) {
        Target::Passthrough(r) => r,
        Target::Endpoint(_) => panic!("not a passthrough route"),
    };
    let api = head("/api/things", Some(&token));
    let admin = head("/api/admin/users", Some(&token));
    assert!(
        s.edge.admit_now(route(&api), &api).is_none(),
        "cold: must wait"
    );
    let Admission::Allow(Some(first)) = s.edge.admit(route(&api), &api, None).await else {
        panic!("admit refused a good token")
    };
    let Some(Admission::Allow(Some(now))) = s.edge.admit_now(route(&api), &api) else {
        panic!("a cached token was not admitted in place")
    };
    assert_eq!(
        (&*now.client_id, now.scopes.to_string()),
        (&*first.client_id, first.scopes.to_string())
    );
    let Some(Admission::Deny(r)) = s.edge.admit_now(route(&admin), &admin) else {
        panic!("the admin scope was not refused in place")
    };
    let Admission::Deny(r2) = s.edge.admit(route(&admin), &admin, None).await else {
        panic!("admit let a read token into admin")
    };
    assert_eq!(
        (r.status(), r.headers().get("www-authenticate")),
        (r2.status(), r2.headers().get("www-authenticate"))
    );
    assert_eq!(r.status(), 403);
    let public = head("/public/x", None);
    assert!(matches!(
        s.edge.admit_now(route(&public), &public),
        Some(Admission::Allow(None))
    ));
    let missing = head("/api/things", None);
    assert!(s.edge.admit_now(route(&missing), &missing).is_none());
    let client = head("/client/x", None);
    assert!(s.edge.admit_now(route(&client), &client).is_none());
    // Revoked: the front no longer answers, and admit refuses.
    let r = s
        .http
        .post(s.url("/oauth2/revoke"))
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(s.edge.admit_now(route(&api), &api).is_none());
    assert!(matches!(
        s.edge.admit(route(&api), &api, None).await,
        Admission::Deny(_)
    ));
}
