//! Seeds: `/work/shared/seeds/000_44f497de361c62d8.txt` and `001_3fb84a532f4dfecb.txt` (NPR One),
//! `002_be24f1fa3803d95a.txt` (IBM API Connect), `003_c340f25d330ec403.txt` (KorAP Kustvakt).
//!
//! The four route profiles at once: one config mounts `rfc` at `/oauth2`, `npr` at
//! `/authorization/v2`, `ibm` at `/api` and `kustvakt` at `/api/v1.0/oauth2`, and one
//! `oauth-edge` process serves them all over one store. A token issued under one profile and
//! revoked under another is dead everywhere; each profile's revoke endpoint answers in its
//! own dialect; a client may use a profile only with the authentication that profile accepts.
//! The last test builds the same edge in process over a store that can be switched off, for
//! the 503 of each dialect.

mod common;

use std::sync::Arc;

use common::*;
use oauth_edge::store::testing::TestStore;
use oauth_edge::{Config, Edge, Target};
use serde_json::Value;

const RFC_REVOKE: &str = "/oauth2/revoke";
const NPR_REVOKE: &str = "/authorization/v2/token/revoke";
const IBM_REVOKE: &str = "/api/password/oauth2/revoke";
const KUSTVAKT_REVOKE: &str = "/api/v1.0/oauth2/revoke";

const PROFILES: &str = r#"
[[profiles]]
kind = "rfc"
base = "/oauth2"

[[profiles]]
kind = "npr"
base = "/authorization/v2"

[[profiles]]
kind = "ibm"
base = "/api"

[[profiles]]
kind = "kustvakt"
base = "/api/v1.0/oauth2"
"#;

/// Clients beside `CLIENTS`' `svc`, `other` and `rs`: one that may only use Basic, one that
/// may only use form fields, and a public one.
const MORE: &str = r#"
[limits]
auth_failures = 100

[[clients]]
id = "basic-only"
secret = "basic-only-secret-0123"
grants = ["client_credentials"]
scopes = ["read"]
auth_methods = ["client_secret_basic"]

[[clients]]
id = "form-only"
secret = "form-only-secret-0123"
grants = ["client_credentials"]
scopes = ["read"]
auth_methods = ["client_secret_post"]

[[clients]]
id = "pub"
public = true
grants = ["password", "refresh_token"]
scopes = ["read"]

[[routes]]
path = "/data"
require = "bearer"
upstream = "echo"
"#;

const BASIC_ONLY: (&str, &str) = ("basic-only", "basic-only-secret-0123");
const FORM_ONLY: (&str, &str) = ("form-only", "form-only-secret-0123");

async fn all() -> (Echo, Gateway) {
    Setup::launch_with_echo(&format!("{CLIENTS}{MORE}{PROFILES}")).await
}

/// How a request to a revoke endpoint authenticates its client.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Basic((&'a str, &'a str)),
    /// `X-IBM-Client-Id` and `X-IBM-Client-Secret` headers.
    Ibm((&'a str, &'a str)),
    /// `client_id` and `client_secret` form fields.
    Form((&'a str, &'a str)),
    /// `client_id` alone, in the form.
    Public(&'a str),
    Bearer(&'a str),
}

async fn post(
    gw: &Gateway,
    path: &str,
    auth: Auth<'_>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut req = gw.http.post(gw.url(path));
    match auth {
        Auth::Basic((id, secret)) => req = req.basic_auth(id, Some(secret)),
        Auth::Ibm((id, secret)) => {
            req = req
                .header("X-IBM-Client-Id", id)
                .header("X-IBM-Client-Secret", secret)
        }
        Auth::Form((id, secret)) => {
            form.push(("client_id", id));
            form.push(("client_secret", secret));
        }
        Auth::Public(id) => form.push(("client_id", id)),
        Auth::Bearer(t) => req = req.bearer_auth(t),
    }
    req.form(&form).send().await.unwrap()
}

/// Status and raw body.
async fn text(r: reqwest::Response) -> (u16, String) {
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

/// A `client_credentials` token from NPR's token endpoint (form credentials, as NPR shows).
async fn npr_client_token(gw: &Gateway, (id, secret): (&str, &str)) -> String {
    let r = post(
        gw,
        "/authorization/v2/token",
        Auth::Form((id, secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let (s, v) = status_json(r).await;
    assert_eq!(s, 200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

/// alice's access and refresh tokens for `svc`, from the token endpoint at `path`.
async fn pair(gw: &Gateway, path: &str) -> (String, String) {
    let r = post(
        gw,
        path,
        Auth::Form(SVC),
        &[
            ("grant_type", "password"),
            ("username", ALICE.0),
            ("password", ALICE.1),
        ],
    )
    .await;
    let (s, v) = status_json(r).await;
    assert_eq!(s, 200, "{v}");
    (
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
}

async fn data(gw: &Gateway, access: &str) -> u16 {
    gw.get_bearer("/data/x", access).await.status().as_u16()
}

async fn introspect(gw: &Gateway, token: &str) -> Value {
    let r = gw
        .post_form("/oauth2/introspect", Some(RS), &[("token", token)])
        .await;
    let (s, v) = status_json(r).await;
    assert_eq!(s, 200, "{v}");
    v
}

/// Asserts that `access` and `refresh` (one grant of `svc`) are dead under every profile:
/// refused by the API, inactive to introspection, refused by both token endpoints (each in
/// its dialect), and "nothing to revoke" to all four revoke endpoints.
async fn assert_dead_everywhere(gw: &Gateway, access: &str, refresh: &str) {
    assert_eq!(data(gw, access).await, 401);
    for t in [access, refresh] {
        assert_eq!(
            introspect(gw, t).await,
            serde_json::json!({"active": false})
        );
    }
    let grant = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let r = post(gw, "/oauth2/token", Auth::Basic(SVC), &grant).await;
    assert_error(r, 400, "invalid_grant").await;
    // NPR answers a bad grant with 401.
    let r = post(gw, "/authorization/v2/token", Auth::Form(SVC), &grant).await;
    assert_error(r, 401, "invalid_grant").await;

    let npr_token = npr_client_token(gw, SVC).await;
    for t in [access, refresh] {
        let answers = [
            post(gw, RFC_REVOKE, Auth::Basic(SVC), &[("token", t)]).await,
            post(gw, NPR_REVOKE, Auth::Bearer(&npr_token), &[("token", t)]).await,
            post(gw, IBM_REVOKE, Auth::Ibm(SVC), &[("token", t)]).await,
            post(gw, KUSTVAKT_REVOKE, Auth::Form(SVC), &[("token", t)]).await,
        ];
        let mut got = Vec::new();
        for r in answers {
            got.push(text(r).await);
        }
        let want: Vec<(u16, String)> = ["", "", r#"{"status":"success"}"#, ""]
            .iter()
            .map(|b| (200, b.to_string()))
            .collect();
        assert_eq!(got, want);
    }
}

// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_under_rfc_and_revoked_under_ibm_is_dead_everywhere() {
    let (_echo, gw) = all().await;
    let (access, refresh) = pair(&gw, "/oauth2/token").await;
    assert_eq!(data(&gw, &access).await, 200);
    assert_eq!(introspect(&gw, &refresh).await["active"], true);

    let r = post(&gw, IBM_REVOKE, Auth::Ibm(SVC), &[("token", &access)]).await;
    assert_eq!(text(r).await, (200, r#"{"status":"success"}"#.to_string()));
    assert_dead_everywhere(&gw, &access, &refresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_under_npr_and_revoked_under_kustvakt_is_dead_everywhere() {
    let (_echo, gw) = all().await;
    let (access, refresh) = pair(&gw, "/authorization/v2/token").await;
    assert_eq!(data(&gw, &access).await, 200);

    let r = post(
        &gw,
        KUSTVAKT_REVOKE,
        Auth::Form(SVC),
        &[("token", &refresh), ("token_type", "refresh_token")],
    )
    .await;
    assert_eq!(text(r).await, (200, String::new()));
    assert_dead_everywhere(&gw, &access, &refresh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_revoke_endpoint_answers_in_its_own_dialect() {
    let (echo, gw) = all().await;
    let npr_svc = npr_client_token(&gw, SVC).await;
    let npr_other = npr_client_token(&gw, OTHER).await;
    let hits = echo.hits();

    // Success: an empty 200, except IBM's `RevokeTokenResponse`.
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(gw.client_token(SVC, None).await);
    }
    let success = [
        (RFC_REVOKE, Auth::Basic(SVC), ""),
        (NPR_REVOKE, Auth::Bearer(&npr_svc), ""),
        (IBM_REVOKE, Auth::Ibm(SVC), r#"{"status":"success"}"#),
        (KUSTVAKT_REVOKE, Auth::Form(SVC), ""),
    ];
    for ((path, auth, body), t) in success.into_iter().zip(&tokens) {
        let r = post(&gw, path, auth, &[("token", t)]).await;
        assert_eq!(text(r).await, (200, body.to_string()), "{path}");
        assert_eq!(data(&gw, t).await, 401, "{path}");
    }

    // A client that does not prove itself: IBM's document has no `invalid_client`. Each 401
    // names the HTTP schemes its endpoint takes; Kustvakt's takes none, and answers 400.
    let invalid =
        r#"{"error":"invalid_client","error_description":"client authentication failed"}"#;
    let basic = r#"Basic realm="oauth-edge""#;
    let failed = [
        (
            RFC_REVOKE,
            Auth::Basic(("svc", "wrong")),
            401,
            invalid.to_string(),
            vec![basic, r#"Bearer realm="oauth-edge""#],
        ),
        (
            NPR_REVOKE,
            Auth::Bearer("oea_forged"),
            401,
            invalid.to_string(),
            vec![r#"Bearer realm="oauth-edge", error="invalid_token""#],
        ),
        (
            IBM_REVOKE,
            Auth::Ibm(("svc", "wrong")),
            401,
            invalid.replace("invalid_client", "unauthorized_client"),
            vec![basic],
        ),
        (
            KUSTVAKT_REVOKE,
            Auth::Form(("svc", "wrong")),
            400,
            invalid.to_string(),
            vec![],
        ),
    ];
    let victim = gw.client_token(SVC, None).await;
    for (path, auth, status, body, want) in failed {
        let r = post(&gw, path, auth, &[("token", &victim)]).await;
        assert_eq!(challenges(&r), want, "{path}");
        assert_eq!(text(r).await, (status, body), "{path}");
    }

    // Another client's token: NPR's 403, 400 elsewhere; the same code everywhere.
    let refused = r#"{"error":"unauthorized_client","error_description":"the token was not issued to this client"}"#;
    let other = [
        (RFC_REVOKE, Auth::Basic(OTHER), 400),
        (NPR_REVOKE, Auth::Bearer(&npr_other), 403),
        (IBM_REVOKE, Auth::Ibm(OTHER), 400),
        (KUSTVAKT_REVOKE, Auth::Form(OTHER), 400),
    ];
    for (path, auth, status) in other {
        let r = post(&gw, path, auth, &[("token", &victim)]).await;
        assert_eq!(text(r).await, (status, refused.to_string()), "{path}");
    }
    assert_eq!(data(&gw, &victim).await, 200);

    // The hint's name: `token_type` on Kustvakt, `token_type_hint` elsewhere. A value that is
    // no token kind is refused under the profile's name and ignored under the other.
    let unsupported = r#"{"error":"unsupported_token_type","error_description":"only access and refresh tokens can be revoked here"}"#;
    let hints = [
        (RFC_REVOKE, Auth::Basic(SVC), "token_type_hint"),
        (NPR_REVOKE, Auth::Bearer(&npr_svc), "token_type_hint"),
        (IBM_REVOKE, Auth::Ibm(SVC), "token_type_hint"),
        (KUSTVAKT_REVOKE, Auth::Form(SVC), "token_type"),
    ];
    for (path, auth, name) in hints {
        let r = post(&gw, path, auth, &[("token", &victim), (name, "id_token")]).await;
        assert_eq!(text(r).await, (400, unsupported.to_string()), "{path}");
    }
    assert_eq!(data(&gw, &victim).await, 200);
    let r = post(
        &gw,
        KUSTVAKT_REVOKE,
        Auth::Form(SVC),
        &[("token", &victim), ("token_type_hint", "id_token")],
    )
    .await;
    assert_eq!(text(r).await, (200, String::new()));
    assert_eq!(data(&gw, &victim).await, 401);

    // The upstream saw only the API calls that were let through.
    assert_eq!(echo.hits(), hits + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_revokes_only_where_its_authentication_is_accepted() {
    let (_echo, gw) = all().await;
    let ibm_refused =
        r#"{"error":"unauthorized_client","error_description":"client authentication failed"}"#;
    let not_here = "this authentication method is not allowed for this client here";

    // Basic only: IBM takes Basic; Kustvakt takes form fields only, no HTTP scheme, so its
    // refusals are 400.
    let t = gw.client_token(BASIC_ONLY, None).await;
    let r = post(
        &gw,
        KUSTVAKT_REVOKE,
        Auth::Form(BASIC_ONLY),
        &[("token", &t)],
    )
    .await;
    let v = assert_error(r, 400, "invalid_client").await;
    assert_eq!(v["error_description"], not_here);
    let r = post(
        &gw,
        KUSTVAKT_REVOKE,
        Auth::Basic(BASIC_ONLY),
        &[("token", &t)],
    )
    .await;
    assert_error(r, 400, "invalid_client").await;
    assert_eq!(data(&gw, &t).await, 200);
    let r = post(&gw, IBM_REVOKE, Auth::Basic(BASIC_ONLY), &[("token", &t)]).await;
    assert_eq!(text(r).await, (200, r#"{"status":"success"}"#.to_string()));
    assert_eq!(data(&gw, &t).await, 401);

    // Form only: Kustvakt takes it; IBM has no form credentials.
    let r = post(
        &gw,
        "/oauth2/token",
        Auth::Form(FORM_ONLY),
        &[("grant_type", "client_credentials")],
    )
    .await;
    let (s, v) = status_json(r).await;
    assert_eq!(s, 200, "{v}");
    let t = v["access_token"].as_str().unwrap().to_string();
    for auth in [
        Auth::Ibm(FORM_ONLY),
        Auth::Basic(FORM_ONLY),
        Auth::Form(FORM_ONLY),
    ] {
        let r = post(&gw, IBM_REVOKE, auth, &[("token", &t)]).await;
        let v = assert_error(r, 401, "unauthorized_client").await;
        assert_eq!(v["error_description"], not_here);
    }
    assert_eq!(data(&gw, &t).await, 200);
    let r = post(
        &gw,
        KUSTVAKT_REVOKE,
        Auth::Form(FORM_ONLY),
        &[("token", &t)],
    )
    .await;
    assert_eq!(text(r).await, (200, String::new()));
    assert_eq!(data(&gw, &t).await, 401);

    // A public client: Kustvakt (and rfc) take its id alone; IBM and NPR take no public
    // client.
    let r = post(
        &gw,
        "/oauth2/token",
        Auth::Public("pub"),
        &[
            ("grant_type", "password"),
            ("username", ALICE.0),
            ("password", ALICE.1),
        ],
    )
    .await;
    let (s, v) = status_json(r).await;
    assert_eq!(s, 200, "{v}");
    let t = v["access_token"].as_str().unwrap().to_string();
    let r = gw
        .http
        .post(gw.url(IBM_REVOKE))
        .header("X-IBM-Client-Id", "pub")
        .form(&[("token", &t)])
        .send()
        .await
        .unwrap();
    assert_eq!(text(r).await, (401, ibm_refused.to_string()));
    let r = post(&gw, IBM_REVOKE, Auth::Public("pub"), &[("token", &t)]).await;
    assert_error(r, 401, "unauthorized_client").await;
    let r = post(&gw, NPR_REVOKE, Auth::Public("pub"), &[("token", &t)]).await;
    assert_error(r, 401, "invalid_client").await;
    assert_eq!(data(&gw, &t).await, 200);
    let r = post(&gw, KUSTVAKT_REVOKE, Auth::Public("pub"), &[("token", &t)]).await;
    assert_eq!(text(r).await, (200, String::new()));
    assert_eq!(data(&gw, &t).await, 401);
}

// ---------------------------------------------------------------------------------------
// Every 401 carries a challenge

const ADMIN_TOKEN: &str = "admin-token-for-the-challenge-walk-0123";

/// The four profiles and a client route, with the admin API on.
async fn all_with_admin() -> (Echo, Gateway) {
    let echo = Echo::start("echo").await;
    let s = Setup::new();
    let gateway = s.gateway("").replace(
        "[gateway.admin]\n",
        &format!("[gateway.admin]\ntoken = \"{ADMIN_TOKEN}\"\n"),
    );
    let routes = "\n[[routes]]\npath = \"/client\"\nrequire = \"client\"\nupstream = \"echo\"\n";
    let config = format!(
        "{}{CLIENTS}{MORE}{routes}{PROFILES}{gateway}{}",
        s.head(),
        upstream("echo", &[echo.addr], "")
    );
    let gw = s.launch(&config).await;
    (echo, gw)
}

/// The walk of `tests/challenges.rs`, through the binary: each endpoint of each profile and a
/// client route, with each kind of failing credentials. Every 401 names the schemes its
/// endpoint accepts, one `WWW-Authenticate` line each, as the engine made them; Kustvakt's
/// revoke (form fields only) answers 400; the admin API's 401 names its Bearer realm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_401_through_the_gateway_carries_the_endpoints_challenges() {
    let (echo, gw) = all_with_admin().await;
    let hits = echo.hits();
    let revoked = gw.client_token(SVC, None).await;
    let r = post(&gw, RFC_REVOKE, Auth::Basic(SVC), &[("token", &revoked)]).await;
    assert_eq!(r.status(), 200);

    const BASIC: &str = r#"Basic realm="oauth-edge""#;
    const BEARER: &str = r#"Bearer realm="oauth-edge""#;
    const BEARER_INVALID: &str = r#"Bearer realm="oauth-edge", error="invalid_token""#;
    // (endpoint, form, status, error, challenges, challenges when a token was sent)
    type Row = (
        &'static str,
        &'static [(&'static str, &'static str)],
        u16,
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
    );
    let grant: &[(&str, &str)] = &[("grant_type", "client_credentials")];
    let token: &[(&str, &str)] = &[("token", "oea_not-a-token")];
    let rows: [Row; 9] = [
        (
            "/oauth2/token",
            grant,
            401,
            "invalid_client",
            &[BASIC],
            &[BASIC],
        ),
        (
            RFC_REVOKE,
            token,
            401,
            "invalid_client",
            &[BASIC, BEARER],
            &[BASIC, BEARER_INVALID],
        ),
        (
            "/oauth2/introspect",
            token,
            401,
            "invalid_client",
            &[BASIC, BEARER],
            &[BASIC, BEARER_INVALID],
        ),
        (
            "/oauth2/device_authorization",
            &[],
            401,
            "invalid_client",
            &[BASIC],
            &[BASIC],
        ),
        (
            "/authorization/v2/token",
            grant,
            401,
            "invalid_client",
            &[BASIC],
            &[BASIC],
        ),
        (
            NPR_REVOKE,
            token,
            401,
            "invalid_client",
            &[BEARER],
            &[BEARER_INVALID],
        ),
        (
            "/authorization/v2/device",
            &[],
            401,
            "invalid_client",
            &[BASIC],
            &[BASIC],
        ),
        (
            IBM_REVOKE,
            token,
            401,
            "unauthorized_client",
            &[BASIC],
            &[BASIC],
        ),
        (KUSTVAKT_REVOKE, token, 400, "invalid_client", &[], &[]),
    ];
    let mut mismatches = Vec::new();
    for (path, form, status, error, plain, with_token) in rows {
        let tries: [(&str, Option<Auth>, &[&str]); 6] = [
            ("wrong Basic", Some(Auth::Basic(("svc", "wrong"))), plain),
            (
                "wrong form secret",
                Some(Auth::Form(("svc", "wrong"))),
                plain,
            ),
            ("unknown client", Some(Auth::Form(("nobody", "x"))), plain),
            ("wrong X-IBM pair", Some(Auth::Ibm(("svc", "wrong"))), plain),
            ("revoked Bearer", Some(Auth::Bearer(&revoked)), with_token),
            ("nothing", None, plain),
        ];
        for (what, auth, want) in tries {
            let r = match auth {
                Some(a) => post(&gw, path, a, form).await,
                None => gw.http.post(gw.url(path)).form(form).send().await.unwrap(),
            };
            let got: Vec<String> = challenges(&r).iter().map(|c| c.to_string()).collect();
            let (s, v) = status_json(r).await;
            if (s, v["error"].as_str()) != (status, Some(error)) || got != want {
                mismatches.push(format!(
                    "{path} × {what}: {s} {v} {got:?}, expected {status} {error} {want:?}"
                ));
            }
        }
    }
    // A client route takes Basic, the X-IBM pair and a client_credentials token.
    for (what, r, want) in [
        (
            "client route, wrong Basic",
            gw.http
                .get(gw.url("/client/x"))
                .basic_auth("svc", Some("wrong"))
                .send()
                .await
                .unwrap(),
            [BASIC, BEARER],
        ),
        (
            "client route, revoked Bearer",
            gw.get_bearer("/client/x", &revoked).await,
            [BASIC, BEARER_INVALID],
        ),
    ] {
        let (s, got) = (r.status().as_u16(), challenges(&r));
        if (s, &got[..]) != (401, &want[..]) {
            mismatches.push(format!("{what}: {s} {got:?}, expected 401 {want:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(echo.hits(), hits, "a refused request reached the upstream");

    // The admin API: its own realm, a Bearer token.
    let url = format!("http://{}/admin/clients", gw.setup.admin);
    for r in [
        gw.http.get(&url).send().await.unwrap(),
        gw.http.get(&url).bearer_auth("wrong").send().await.unwrap(),
        gw.http
            .get(&url)
            .basic_auth("svc", Some("wrong"))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(r.status(), 401);
        assert_eq!(challenges(&r), [r#"Bearer realm="oauth-edge-admin""#]);
    }
    let r = gw
        .http
        .get(&url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

// ---------------------------------------------------------------------------------------
// In process: a store that cannot be reached

type Headers<'a> = Vec<(&'a str, &'a str)>;

/// One endpoint request to `edge`, as an adapter makes it; status, `Retry-After` and body.
async fn serve(
    edge: &Edge,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Option<String>, String) {
    let mut b = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let (head, ()) = b.body(()).unwrap().into_parts();
    let Target::Endpoint(ep) = edge.classify(&head) else {
        panic!("{path} is not an endpoint");
    };
    edge.precheck(ep, &head).expect("precheck");
    let r = edge.serve(ep, &head, body.as_bytes(), None).await;
    (
        r.status().as_u16(),
        r.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string()),
        String::from_utf8(r.body().to_vec()).unwrap(),
    )
}

fn basic_header((id, secret): (&str, &str)) -> String {
    // `id:secret` in base64, by hand: the gateway's tests have no base64 crate.
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let s = format!("{id}:{secret}");
    let mut out = String::from("Basic ");
    for c in s.as_bytes().chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                T[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_be_reached_is_503_in_every_dialect() {
    let config =
        Config::from_toml(&format!("[store]\nkind = \"memory\"\n{CLIENTS}{PROFILES}")).unwrap();
    let store = Arc::new(TestStore::default());
    let edge = Edge::builder(config)
        .store(store.clone())
        .build()
        .await
        .unwrap();

    let basic = basic_header(SVC);
    let issue = |path: &'static str| {
        let edge = edge.clone();
        let basic = basic.clone();
        async move {
            let (s, _, body) = serve(
                &edge,
                path,
                &[("authorization", &basic)],
                "grant_type=client_credentials",
            )
            .await;
            assert_eq!(s, 200, "{body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            v["access_token"].as_str().unwrap().to_string()
        }
    };
    let token = issue("/oauth2/token").await;
    // NPR's revoke authenticates with a client_credentials token; this one is cached now.
    let npr = issue("/authorization/v2/token").await;
    let npr_bearer = format!("Bearer {npr}");
    let (s, _, _) = serve(
        &edge,
        NPR_REVOKE,
        &[("authorization", &npr_bearer)],
        "token=not-a-token",
    )
    .await;
    assert_eq!(s, 200);

    store.set_down(true);
    let down = r#"{"error":"temporarily_unavailable","error_description":"the authorization store is unavailable; retry later"}"#;
    let form = format!("token={token}");
    let kustvakt_form = format!("client_id={}&client_secret={}&token={token}", SVC.0, SVC.1);
    let cases: [(&str, Headers, &str); 4] = [
        (RFC_REVOKE, vec![("authorization", &basic)], &form),
        (NPR_REVOKE, vec![("authorization", &npr_bearer)], &form),
        (
            IBM_REVOKE,
            vec![("x-ibm-client-id", SVC.0), ("x-ibm-client-secret", SVC.1)],
            &form,
        ),
        (KUSTVAKT_REVOKE, vec![], &kustvakt_form),
    ];
    for (path, headers, body) in &cases {
        // Never a 200: the client must know the token may still be valid (RFC 7009 2.2.1).
        assert_eq!(
            serve(&edge, path, headers, body).await,
            (503, Some("1".to_string()), down.to_string()),
            "{path}"
        );
    }

    // Back up: the same request revokes it.
    store.set_down(false);
    let (path, headers, body) = &cases[2];
    assert_eq!(
        serve(&edge, path, headers, body).await,
        (200, None, r#"{"status":"success"}"#.to_string())
    );
    assert!(edge.token_status(&token).await.unwrap().is_none());
}
