// Seeds: /work/shared/seeds/000_44f497de361c62d8.txt (NPR One Swagger) and /work/shared/seeds/001_3fb84a532f4dfecb.txt (NPR One docs text).
//! The NPR One profile (`kind = "npr"` at `/authorization/v2`) end to end against the real
//! `oauth-edge` binary: every request the two NPR documents show or describe, with the answer
//! they document (or, where they are silent, the answer we chose; see the NPR section of the
//! README). The rfc profile is mounted beside it at `/oauth2`, because the device verification
//! page lives there.
//!
//! The pages (sign-in, consent, the device page) are driven as a browser without JavaScript
//! would drive them: GET, read the form's inputs, POST them back with the cookies (kept per
//! `Path`, as a browser keeps them), never following a redirect by itself.

#[path = "../../tests/support/browser.rs"]
mod browser;
mod common;

use std::collections::HashMap;
use std::time::Duration;

use browser::{Browser, Page};
use common::{assert_error, assert_no_store, header, status_json, upstream, Echo, Gateway, Setup};
use serde_json::{json, Value};

const NPR: &str = "/authorization/v2";
const TOKEN: &str = "/authorization/v2/token";
const REVOKE: &str = "/authorization/v2/token/revoke";
const AUTHORIZE: &str = "/authorization/v2/authorize";
const DEVICE: &str = "/authorization/v2/device";

/// Every NPR scope ("It is generally suggested that you assume that you will need all of the
/// current scopes").
const ALL_SCOPES: &str =
    "identity.readonly identity.write listening.readonly listening.write localactivation";

/// NPR's own app: trusted, every grant including the custom ones.
const TRUSTED: (&str, &str) = ("npr-one", "npr-one-secret-0123456789");
/// A third-party developer's app: no `password`, no `temporary_user` / `anonymous_user`.
const THIRD: (&str, &str) = ("third-party", "third-party-secret-0123456789");
/// A back-end job: `client_credentials` only, no refresh tokens.
const BACKEND: (&str, &str) = ("backend", "backend-secret-0123456789");
/// "The email address of an NPR user."
const USER: (&str, &str) = ("alice@example.org", "wonderland-pw-0123");

const TRUSTED_CB: &str = "https://one.npr.example/cb";
const TRUSTED_CB2: &str = "https://one.npr.example/cb2";
const THIRD_CB: &str = "https://radio.example/callback";

/// NPR's denial text (`error=denied&message=…`).
const DENIED: &str = "The user has denied the login and access request";

const ADMIN_TOKEN: &str = "npr-admin-token-0123456789-abcdefghij";

// ---------------------------------------------------------------------------------------
// The gateway

/// The config: both profiles, the NPR clients and user, and two bearer routes standing for
/// NPR's Identity and Listening services. `extra` is added as more tables; `admin_token` sets
/// the admin API's token.
fn config(setup: &Setup, echo: &Echo, extra: &str, admin_token: Option<&str>) -> String {
    let token = admin_token
        .map(|t| format!("token = \"{t}\"\n"))
        .unwrap_or_default();
    format!(
        r#"{head}
[[profiles]]
kind = "npr"
base = "/authorization/v2"

[[profiles]]
kind = "rfc"
base = "/oauth2"

[device]
interval = "1s"
code_ttl = "60s"
{extra}
[[clients]]
id = "npr-one"
name = "NPR One"
secret = "{trusted_secret}"
grants = ["authorization_code", "client_credentials", "device_code", "password", "refresh_token", "temporary_user", "anonymous_user"]
scopes = ["identity.readonly", "identity.write", "listening.readonly", "listening.write", "localactivation"]
redirect_uris = ["{TRUSTED_CB}", "{TRUSTED_CB2}"]

[[clients]]
id = "third-party"
name = "Third Party Radio"
secret = "{third_secret}"
grants = ["authorization_code", "client_credentials", "device_code", "refresh_token"]
scopes = ["identity.readonly", "identity.write", "listening.readonly", "listening.write", "localactivation"]
default_scopes = ["identity.readonly", "listening.readonly"]
redirect_uris = ["{THIRD_CB}"]

[[clients]]
id = "backend"
secret = "{backend_secret}"
grants = ["client_credentials"]
scopes = ["listening.readonly"]

[[users]]
username = "{user}"
password = "{password}"

[[routes]]
path = "/identity"
require = "bearer"
scopes = ["identity.readonly"]
upstream = "echo"

[[routes]]
path = "/listening"
require = "bearer"
scopes = ["listening.readonly"]
upstream = "echo"

[gateway]
threads = 2

[gateway.admin]
address = "{admin}"
{token}
[[gateway.listeners]]
address = "{listen}"
{upstream}"#,
        head = setup.head(),
        trusted_secret = TRUSTED.1,
        third_secret = THIRD.1,
        backend_secret = BACKEND.1,
        user = USER.0,
        password = USER.1,
        admin = setup.admin,
        listen = setup.listen,
        upstream = upstream("echo", &[echo.addr], ""),
    )
}

async fn launch_with(extra: &str, admin_token: Option<&str>) -> (Echo, Gateway) {
    let echo = Echo::start("echo").await;
    let setup = Setup::new();
    let config = config(&setup, &echo, extra, admin_token);
    let gw = setup.launch(&config).await;
    (echo, gw)
}

async fn launch() -> (Echo, Gateway) {
    launch_with("", None).await
}

// ---------------------------------------------------------------------------------------
// Client-side requests

/// `POST /authorization/v2/token` with `client_id` and `client_secret` in the form, as NPR
/// documents them ("required for all grant types").
async fn token_req(gw: &Gateway, client: (&str, &str), form: &[(&str, &str)]) -> reqwest::Response {
    let mut f: Vec<(&str, &str)> = vec![("client_id", client.0), ("client_secret", client.1)];
    f.extend_from_slice(form);
    gw.post_form(TOKEN, None, &f).await
}

/// A successful token request: 200, `no-store`, the JSON.
async fn tokens(gw: &Gateway, client: (&str, &str), form: &[(&str, &str)]) -> Value {
    let r = token_req(gw, client, form).await;
    assert_no_store(&r);
    let (status, v) = status_json(r).await;
    assert_eq!(status, 200, "token request {form:?}: {v}");
    assert_eq!(v["token_type"], "Bearer", "{v}");
    assert!(v["access_token"].is_string(), "{v}");
    assert!(v["expires_in"].is_u64(), "{v}");
    v
}

/// A failed token request: the status, `error`, and RFC 6749's body (`error_description`).
async fn token_error(
    gw: &Gateway,
    client: (&str, &str),
    form: &[(&str, &str)],
    status: u16,
    error: &str,
) -> Value {
    let r = token_req(gw, client, form).await;
    assert!(header(&r, "content-type")
        .unwrap()
        .starts_with("application/json"));
    let v = assert_error(r, status, error).await;
    assert!(v["error_description"].is_string(), "{v}");
    v
}

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_string()
}

async fn client_credentials(gw: &Gateway, client: (&str, &str)) -> String {
    s(
        &tokens(gw, client, &[("grant_type", "client_credentials")]).await,
        "access_token",
    )
}

async fn password(gw: &Gateway, scope: Option<&str>) -> Value {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", USER.0),
        ("password", USER.1),
    ];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    tokens(gw, TRUSTED, &form).await
}

/// The status of a GET on a bearer passthrough route (NPR's services stand behind the edge).
async fn api(gw: &Gateway, path: &str, token: &str) -> u16 {
    gw.get_bearer(path, token).await.status().as_u16()
}

/// What the upstream saw of a GET with `token` (asserting it got through).
async fn api_seen(gw: &Gateway, echo: &Echo, path: &str, token: &str) -> HashMap<String, String> {
    let r = gw.get_bearer(path, token).await;
    assert_eq!(r.status(), 200, "{path}: {}", r.text().await.unwrap());
    echo.last().headers.into_iter().collect()
}

/// `POST /authorization/v2/token/revoke` with `Authorization: Bearer <bearer>` when given.
async fn revoke(gw: &Gateway, bearer: Option<&str>, form: &[(&str, &str)]) -> reqwest::Response {
    let mut req = gw.http.post(gw.url(REVOKE)).form(form);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    req.send().await.unwrap()
}

// ---------------------------------------------------------------------------------------
// A browser without JavaScript

/// An authorization request's query parameters.
type Query<'a> = &'a [(&'a str, &'a str)];

fn authorize_url(params: Query) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    format!("{AUTHORIZE}?{}", q.finish())
}

/// The third-party app's authorization request, as NPR documents it.
fn third_party_authorize(state: &str) -> String {
    authorize_url(&[
        ("client_id", THIRD.0),
        ("redirect_uri", THIRD_CB),
        ("response_type", "code"),
        ("scope", "identity.readonly listening.readonly"),
        ("state", state),
    ])
}

/// Signs the user in on the built-in page; returns the consent page.
async fn sign_in(b: &mut Browser, url: &str) -> Page {
    let page = b.get(url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.fields().contains_key("password"), "{}", page.body);
    let consent = b
        .submit(&page, &[("username", USER.0), ("password", USER.1)])
        .await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(
        consent.body.contains("Third Party Radio"),
        "{}",
        consent.body
    );
    consent
}

/// The redirect to `redirect_uri` carries `error`, NPR's `message` (not RFC 6749's
/// `error_description`) and the `state`.
fn assert_npr_error_redirect(p: &Page, target: &str, error: &str, state: &str) -> String {
    assert_eq!(p.target(), target, "{:?}", p.location);
    let q = p.query();
    assert_eq!(q.get("error").map(String::as_str), Some(error), "{q:?}");
    assert_eq!(q.get("state").map(String::as_str), Some(state), "{q:?}");
    assert!(!q.contains_key("error_description"), "{q:?}");
    assert!(!q.contains_key("code"), "{q:?}");
    q.get("message").cloned().expect("a message")
}

// ---------------------------------------------------------------------------------------
// POST /authorization/v2/token: client_credentials and the endpoint's generic refusals

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_ignores_what_npr_says_it_ignores() {
    let (echo, gw) = launch().await;
    // "you do not need to pass in any additional parameters beyond the basic requirements"
    let t = tokens(&gw, TRUSTED, &[("grant_type", "client_credentials")]).await;
    assert_eq!(t["scope"], ALL_SCOPES);
    assert!(t.get("refresh_token").is_none(), "{t}");
    let seen = api_seen(&gw, &echo, "/listening/v2/channels", &s(&t, "access_token")).await;
    assert_eq!(seen["x-oauth-client-id"], "npr-one");
    assert!(!seen.contains_key("x-oauth-user"), "{seen:?}");

    // "`code`, `redirect_uri`, `service`, `username` and `password` parameters will be
    // ignored" — even when they name a real user or are junk.
    let t = tokens(
        &gw,
        THIRD,
        &[
            ("grant_type", "client_credentials"),
            ("code", "junk-code"),
            ("redirect_uri", "https://evil.example/cb"),
            ("service", "facebook"),
            ("username", USER.0),
            ("password", "not-her-password"),
            ("token_type_hint", "access_token"),
            ("something_else", "x"),
        ],
    )
    .await;
    assert_eq!(t["scope"], "identity.readonly listening.readonly");
    let seen = api_seen(&gw, &echo, "/identity/v2/user", &s(&t, "access_token")).await;
    assert_eq!(seen["x-oauth-client-id"], "third-party");
    assert!(!seen.contains_key("x-oauth-user"), "no user: {seen:?}");

    // A scope within the client's narrows; one beyond it is invalid_scope (400).
    let t = tokens(
        &gw,
        THIRD,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "listening.readonly"),
        ],
    )
    .await;
    assert_eq!(t["scope"], "listening.readonly");
    assert_eq!(
        api(&gw, "/identity/v2/user", &s(&t, "access_token")).await,
        403
    );
    token_error(
        &gw,
        BACKEND,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "identity.write"),
        ],
        400,
        "invalid_scope",
    )
    .await;

    // HTTP Basic works too (RFC 6749 2.3.1).
    let r = gw
        .post_form(
            TOKEN,
            Some(TRUSTED),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_refusals() {
    let (_echo, gw) = launch().await;
    // "The client credentials were invalid (any grant type)": 401 invalid_client.
    for grant in ["client_credentials", "password", "refresh_token"] {
        token_error(
            &gw,
            ("npr-one", "wrong-secret"),
            &[("grant_type", grant)],
            401,
            "invalid_client",
        )
        .await;
    }
    token_error(
        &gw,
        ("nobody", "whatever"),
        &[("grant_type", "client_credentials")],
        401,
        "invalid_client",
    )
    .await;
    // The secret is "required for all grant types": an id alone is no client authentication.
    let r = gw
        .post_form(
            TOKEN,
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", TRUSTED.0),
            ],
        )
        .await;
    assert_error(r, 401, "invalid_client").await;
    // Nothing at all.
    let r = gw
        .post_form(TOKEN, None, &[("grant_type", "client_credentials")])
        .await;
    assert_error(r, 401, "invalid_client").await;
    // A Bearer token is not client authentication at the token endpoint.
    let cc = client_credentials(&gw, TRUSTED).await;
    let r = gw
        .http
        .post(gw.url(TOKEN))
        .bearer_auth(&cc)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "invalid_client").await;

    // No grant_type: 400 invalid_request; one we do not know: 400 unsupported_grant_type.
    token_error(&gw, TRUSTED, &[], 400, "invalid_request").await;
    token_error(
        &gw,
        TRUSTED,
        &[("grant_type", "implicit")],
        400,
        "unsupported_grant_type",
    )
    .await;
    // The Swagger says `consumes: application/json` but every parameter is `in: formData`;
    // the form it is (RFC 6749 4.1.3). A JSON body is 400 invalid_request.
    let r = gw
        .http
        .post(gw.url(TOKEN))
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": TRUSTED.0,
            "client_secret": TRUSTED.1,
        }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
    // GET is not the token endpoint's method.
    let r = gw.http.get(gw.url(TOKEN)).send().await.unwrap();
    assert_eq!(r.status(), 405);
}

// ---------------------------------------------------------------------------------------
// password

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_grant_with_and_without_service() {
    let (echo, gw) = launch().await;
    // "If you are logging in via a social service, you should also pass in the `service`
    // parameter": we have no social services, so it is ignored, as are code and redirect_uri.
    let t = tokens(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "password"),
            ("username", USER.0),
            ("password", USER.1),
            ("service", "facebook"),
            ("code", "junk"),
            ("redirect_uri", "https://evil.example/cb"),
        ],
    )
    .await;
    assert_eq!(t["scope"], ALL_SCOPES);
    assert!(t["refresh_token"].is_string(), "{t}");
    let seen = api_seen(&gw, &echo, "/identity/v2/user", &s(&t, "access_token")).await;
    assert_eq!(seen["x-oauth-user"], USER.0);
    assert_eq!(seen["x-oauth-client-id"], "npr-one");

    // Without service, with a narrower scope.
    let t = password(&gw, Some("listening.readonly listening.write")).await;
    assert_eq!(t["scope"], "listening.readonly listening.write");
    // And with Basic.
    let r = gw
        .post_form(
            TOKEN,
            Some(TRUSTED),
            &[
                ("grant_type", "password"),
                ("username", USER.0),
                ("password", USER.1),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);

    // "you are required to pass in the username and password parameters"
    for form in [
        [("grant_type", "password"), ("username", USER.0)],
        [("grant_type", "password"), ("password", USER.1)],
    ] {
        token_error(&gw, TRUSTED, &form, 400, "invalid_request").await;
    }
    // "the user credentials were invalid (password grant type)": 401.
    for (user, pw) in [(USER.0, "not-her-password"), ("bob@example.org", USER.1)] {
        token_error(
            &gw,
            TRUSTED,
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", pw),
            ],
            401,
            "invalid_grant",
        )
        .await;
    }
    // "Third-party developers do not have access to this grant type": 403.
    token_error(
        &gw,
        THIRD,
        &[
            ("grant_type", "password"),
            ("username", USER.0),
            ("password", USER.1),
        ],
        403,
        "unauthorized_client",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// refresh_token

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_narrows_never_widens_and_rotates() {
    let (echo, gw) = launch().await;
    let t0 = password(
        &gw,
        Some("identity.readonly listening.readonly listening.write"),
    )
    .await;
    let r0 = s(&t0, "refresh_token");

    // "you are required to pass in the refresh_token parameter"
    token_error(
        &gw,
        TRUSTED,
        &[("grant_type", "refresh_token")],
        400,
        "invalid_request",
    )
    .await;

    // Widening: "it cannot contain any scopes that were not previously requested". The
    // refresh token is not spent by the refusal.
    token_error(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r0),
            ("scope", "listening.readonly identity.write"),
        ],
        400,
        "invalid_scope",
    )
    .await;

    // Narrowing, with the junk NPR says is ignored.
    let t1 = tokens(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r0),
            ("scope", "listening.readonly"),
            ("code", "junk"),
            ("redirect_uri", "https://evil.example/cb"),
            ("service", "facebook"),
            ("username", "bob"),
            ("password", "x"),
        ],
    )
    .await;
    assert_eq!(t1["scope"], "listening.readonly");
    let a1 = s(&t1, "access_token");
    let r1 = s(&t1, "refresh_token");
    assert_ne!(r1, r0, "rotated");
    assert_eq!(api(&gw, "/identity/v2/user", &a1).await, 403);
    let seen = api_seen(&gw, &echo, "/listening/v2/channels", &a1).await;
    assert_eq!(seen["x-oauth-scope"], "listening.readonly");
    assert_eq!(seen["x-oauth-user"], USER.0);

    // "If not specified, then scope will be set to whichever scopes were used for the
    // original access token request" — the narrowing narrowed the access token only.
    // `token_type_hint=refresh_token` is the documented default, said out loud.
    let t2 = tokens(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &r1),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(
        t2["scope"],
        "identity.readonly listening.readonly listening.write"
    );
    let a2 = s(&t2, "access_token");
    assert_eq!(api(&gw, "/identity/v2/user", &a2).await, 200);

    // Another client's refresh token, and garbage: invalid_grant (401, "the authorization
    // server denied the request").
    token_error(
        &gw,
        THIRD,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &s(&t2, "refresh_token")),
        ],
        401,
        "invalid_grant",
    )
    .await;
    token_error(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "garbage"),
        ],
        401,
        "invalid_grant",
    )
    .await;

    // A spent refresh token replayed: refused, and the whole family is revoked.
    token_error(
        &gw,
        TRUSTED,
        &[("grant_type", "refresh_token"), ("refresh_token", &r0)],
        401,
        "invalid_grant",
    )
    .await;
    assert_eq!(api(&gw, "/identity/v2/user", &a2).await, 401);
    token_error(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &s(&t2, "refresh_token")),
        ],
        401,
        "invalid_grant",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// The trade: an old access token for a refresh-enabled pair

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_credentials_access_token_is_not_traded() {
    let (_echo, gw) = launch().await;
    // An access token with no refresh token, as NPR's "old non-expiring" ones are.
    let old = tokens(&gw, THIRD, &[("grant_type", "client_credentials")]).await;
    assert!(old.get("refresh_token").is_none());
    let a0 = s(&old, "access_token");

    // Refusals first; none of them spends the token.
    // Without the hint, `refresh_token` is taken for a refresh token (NPR: "If unspecified,
    // the default value is assumed to be refresh_token"): invalid_grant.
    token_error(
        &gw,
        THIRD,
        &[("grant_type", "refresh_token"), ("refresh_token", &a0)],
        401,
        "invalid_grant",
    )
    .await;
    // Another client's token.
    token_error(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &a0),
            ("token_type_hint", "access_token"),
        ],
        401,
        "invalid_grant",
    )
    .await;
    // A client that may not have refresh tokens cannot trade: 403.
    let backend_token = client_credentials(&gw, BACKEND).await;
    token_error(
        &gw,
        BACKEND,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &backend_token),
            ("token_type_hint", "access_token"),
        ],
        403,
        "unauthorized_client",
    )
    .await;
    assert_eq!(api(&gw, "/identity/v2/user", &a0).await, 200, "still good");

    // A client_credentials token is never traded for a refresh-enabled pair: it stands for
    // its client, and a pair that renews itself would outlive the client's secret rotation.
    // Refused as invalid_grant (401 in this profile), and not spent.
    let e = token_error(
        &gw,
        THIRD,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &a0),
            ("token_type_hint", "access_token"),
        ],
        401,
        "invalid_grant",
    )
    .await;
    assert!(
        e["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("client_credentials")),
        "{e}"
    );
    assert_eq!(api(&gw, "/identity/v2/user", &a0).await, 200, "still good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trading_a_password_access_token_may_narrow() {
    let (echo, gw) = launch().await;
    let t0 = password(&gw, Some("identity.readonly listening.readonly")).await;
    let a0 = s(&t0, "access_token");
    // A refresh token is not an access token: with the access_token hint it is refused.
    token_error(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &s(&t0, "refresh_token")),
            ("token_type_hint", "access_token"),
        ],
        401,
        "invalid_grant",
    )
    .await;
    // Widening is refused, and spends nothing.
    token_error(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &a0),
            ("token_type_hint", "access_token"),
            ("scope", "identity.readonly identity.write"),
        ],
        400,
        "invalid_scope",
    )
    .await;
    let pair = tokens(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &a0),
            ("token_type_hint", "access_token"),
            ("scope", "listening.readonly"),
        ],
    )
    .await;
    assert_eq!(pair["scope"], "listening.readonly");
    assert!(pair["refresh_token"].is_string());
    assert_eq!(api(&gw, "/listening/v2/channels", &a0).await, 401);
    let a1 = s(&pair, "access_token");
    assert_eq!(api(&gw, "/identity/v2/user", &a1).await, 403);
    let seen = api_seen(&gw, &echo, "/listening/v2/channels", &a1).await;
    assert_eq!(seen["x-oauth-user"], USER.0, "the same user");

    // The new refresh token refreshes.
    let t2 = tokens(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &s(&pair, "refresh_token")),
        ],
    )
    .await;
    let a2 = s(&t2, "access_token");
    assert_eq!(api(&gw, "/listening/v2/channels", &a2).await, 200);

    // Trading the same access token again is a replay: refused, and the family is revoked.
    token_error(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &a0),
            ("token_type_hint", "access_token"),
        ],
        401,
        "invalid_grant",
    )
    .await;
    assert_eq!(api(&gw, "/listening/v2/channels", &a2).await, 401);
    token_error(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &s(&t2, "refresh_token")),
        ],
        401,
        "invalid_grant",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// temporary_user and anonymous_user

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_and_anonymous_users_only_where_granted() {
    let (echo, gw) = launch().await;
    // "you do not need to pass in any additional parameters beyond the basic requirements.
    // code, redirect_uri, service, username and password parameters will be ignored."
    let junk = [
        ("code", "junk"),
        ("redirect_uri", "https://evil.example/cb"),
        ("service", "facebook"),
        ("username", USER.0),
        ("password", USER.1),
    ];
    let mut form = vec![("grant_type", "temporary_user")];
    form.extend_from_slice(&junk);
    let temp = tokens(&gw, TRUSTED, &form).await;
    assert!(
        temp["refresh_token"].is_string(),
        "a temporary account is kept: {temp}"
    );
    let seen = api_seen(&gw, &echo, "/identity/v2/user", &s(&temp, "access_token")).await;
    assert!(seen["x-oauth-user"].starts_with("temporary:"), "{seen:?}");
    assert_ne!(seen["x-oauth-user"], USER.0, "username was ignored");
    let again = tokens(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &s(&temp, "refresh_token")),
        ],
    )
    .await;
    let seen2 = api_seen(&gw, &echo, "/identity/v2/user", &s(&again, "access_token")).await;
    assert_eq!(
        seen2["x-oauth-user"], seen["x-oauth-user"],
        "the same account"
    );

    let mut form = vec![("grant_type", "anonymous_user")];
    form.extend_from_slice(&junk);
    let anon = tokens(&gw, TRUSTED, &form).await;
    assert!(anon.get("refresh_token").is_none(), "{anon}");
    let seen = api_seen(
        &gw,
        &echo,
        "/listening/v2/channels",
        &s(&anon, "access_token"),
    )
    .await;
    assert!(seen["x-oauth-user"].starts_with("anonymous:"), "{seen:?}");

    // "If you are a third-party developer, you will not have access to these grant types
    // unless we have explicitly given you permission": 403 unauthorized_client.
    for client in [THIRD, BACKEND] {
        for grant in ["temporary_user", "anonymous_user"] {
            token_error(
                &gw,
                client,
                &[("grant_type", grant)],
                403,
                "unauthorized_client",
            )
            .await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// GET /authorization/v2/authorize and the authorization_code grant

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_consent_code_and_token_exchange() {
    let (echo, gw) = launch().await;
    let mut b = Browser::new(gw.url(""));
    // Without `authorization.login_url`, the built-in sign-in page is served.
    let consent = sign_in(&mut b, &third_party_authorize("csrf-123")).await;
    let back = b.submit(&consent, &[("decision", "allow")]).await;
    // "{{YOUR_REDIRECT_URI}}?code={{AUTHORIZATION_CODE}}&state={{CSRF_TOKEN}}" (303: the
    // answer to a form post).
    assert_eq!(back.status, 303);
    assert_eq!(back.target(), THIRD_CB);
    let q = back.query();
    assert_eq!(q["state"], "csrf-123");
    assert!(!q.contains_key("error"), "{q:?}");
    let code = q["code"].clone();

    // "you will still need to call POST /authorization/v2/token in order to swap the code";
    // `code` is required.
    token_error(
        &gw,
        THIRD,
        &[
            ("grant_type", "authorization_code"),
            ("redirect_uri", THIRD_CB),
        ],
        400,
        "invalid_request",
    )
    .await;
    // A redirect_uri other than the request's: invalid_grant, and the code survives.
    token_error(
        &gw,
        THIRD,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://radio.example/other"),
        ],
        401,
        "invalid_grant",
    )
    .await;
    // Another client cannot redeem it.
    token_error(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", THIRD_CB),
        ],
        401,
        "invalid_grant",
    )
    .await;
    // "service, username and password parameters will be ignored".
    let t = tokens(
        &gw,
        THIRD,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", THIRD_CB),
            ("service", "facebook"),
            ("username", "bob@example.org"),
            ("password", "x"),
        ],
    )
    .await;
    assert_eq!(t["scope"], "identity.readonly listening.readonly");
    assert!(t["refresh_token"].is_string(), "{t}");
    let a = s(&t, "access_token");
    let seen = api_seen(&gw, &echo, "/identity/v2/user", &a).await;
    assert_eq!(seen["x-oauth-user"], USER.0);
    assert_eq!(seen["x-oauth-client-id"], "third-party");

    // A code is single use; its reuse also revokes what it issued (RFC 6749 4.1.2).
    token_error(
        &gw,
        THIRD,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", THIRD_CB),
        ],
        401,
        "invalid_grant",
    )
    .await;
    assert_eq!(api(&gw, "/identity/v2/user", &a).await, 401);

    // Signed in already (the session cookie, Path=/authorization/v2): straight to consent.
    let consent = b.get(&third_party_authorize("second")).await;
    assert_eq!(consent.status, 200);
    assert!(
        !consent.fields().contains_key("password"),
        "no second sign-in"
    );
    let back = b.submit(&consent, &[("decision", "allow")]).await;
    assert_eq!(back.query()["state"], "second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_code_requires_redirect_uri() {
    let (_echo, gw) = launch().await;
    let mut b = Browser::new(gw.url(""));
    let consent = sign_in(&mut b, &third_party_authorize("s")).await;
    let code = b.submit(&consent, &[("decision", "allow")]).await.query()["code"].clone();
    // "For the authorization_code grant type, you are required to pass in the code and
    // redirect_uri parameters": a missing one is invalid_request (400).
    token_error(
        &gw,
        THIRD,
        &[("grant_type", "authorization_code"), ("code", &code)],
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_redirects_with_nprs_error_and_message() {
    let (_echo, gw) = launch().await;
    let mut b = Browser::new(gw.url(""));
    let consent = sign_in(&mut b, &third_party_authorize("csrf-deny")).await;
    let back = b.submit(&consent, &[("decision", "deny")]).await;
    assert_eq!(back.status, 303);
    // "{{YOUR_REDIRECT_URI}}?error=denied&message=The%20user%20has%20denied%20the%20login%20and%20access%20request&state={{CSRF_TOKEN}}"
    let message = assert_npr_error_redirect(&back, THIRD_CB, "denied", "csrf-deny");
    assert_eq!(message, DENIED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_errors_go_back_to_a_valid_redirect_uri() {
    let (_echo, gw) = launch().await;
    let mut b = Browser::new(gw.url(""));
    // "If the parameters passed in are NOT correct and the client passed in a valid
    // redirect_uri parameter, the request will be redirected to
    // {{YOUR_REDIRECT_URI}}?error={{ERROR_TYPE}}&message={{ERROR_DESCRIPTION}}" (302).
    let cases: [(Query, &str); 4] = [
        // "The type of response; currently, only code is supported"
        (
            &[
                ("client_id", THIRD.0),
                ("redirect_uri", THIRD_CB),
                ("response_type", "token"),
                ("state", "st"),
            ],
            "unsupported_response_type",
        ),
        (
            &[
                ("client_id", THIRD.0),
                ("redirect_uri", THIRD_CB),
                ("state", "st"),
            ],
            "invalid_request",
        ),
        // A scope NPR does not have.
        (
            &[
                ("client_id", THIRD.0),
                ("redirect_uri", THIRD_CB),
                ("response_type", "code"),
                ("scope", "identity.readonly stations.admin"),
                ("state", "st"),
            ],
            "invalid_scope",
        ),
        // A malformed PKCE challenge (the edge checks it when one is sent).
        (
            &[
                ("client_id", TRUSTED.0),
                ("redirect_uri", TRUSTED_CB2),
                ("response_type", "code"),
                ("code_challenge", "short"),
                ("code_challenge_method", "S256"),
                ("state", "st"),
            ],
            "invalid_request",
        ),
    ];
    for (params, error) in cases {
        let p = b.get(&authorize_url(params)).await;
        assert_eq!(p.status, 302, "{params:?}: {}", p.body);
        let target = params.iter().find(|(k, _)| *k == "redirect_uri").unwrap().1;
        let message = assert_npr_error_redirect(&p, target, error, "st");
        assert!(!message.is_empty());
    }
    // A client with a single registered redirect_uri that sends none: the registered one is
    // used (RFC 6749 3.1.2.3), so the error goes there too.
    let p = b
        .get(&authorize_url(&[
            ("client_id", THIRD.0),
            ("response_type", "id_token"),
            ("state", "st"),
        ]))
        .await;
    assert_eq!(p.status, 302);
    assert_npr_error_redirect(&p, THIRD_CB, "unsupported_response_type", "st");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_errors_without_a_valid_redirect_uri_are_json() {
    let (_echo, gw) = launch().await;
    let mut b = Browser::new(gw.url(""));
    // "this endpoint will return the errors encoded as JSON objects (along with the
    // corresponding HTTP status code – usually 400)"
    let cases: [(Query, u16, &str); 5] = [
        // No client_id: 400.
        (
            &[("redirect_uri", THIRD_CB), ("response_type", "code")],
            400,
            "invalid_request",
        ),
        // An unknown client: invalid_client ("The client credentials were invalid"). NPR says
        // 401; a 401 must carry a challenge, and a page a browser opens takes no HTTP scheme
        // (a Basic challenge would have the browser ask for a password): 400.
        (
            &[
                ("client_id", "nobody"),
                ("redirect_uri", THIRD_CB),
                ("response_type", "code"),
            ],
            400,
            "invalid_client",
        ),
        // "The client credentials were invalid (i.e., the redirect_uri does not match what we
        // have stored for this client)": invalid_client, 400 as above.
        (
            &[
                ("client_id", THIRD.0),
                ("redirect_uri", "https://evil.example/cb"),
                ("response_type", "code"),
                ("state", "st"),
            ],
            400,
            "invalid_client",
        ),
        // Another client's redirect_uri.
        (
            &[
                ("client_id", THIRD.0),
                ("redirect_uri", TRUSTED_CB),
                ("response_type", "code"),
            ],
            400,
            "invalid_client",
        ),
        // No redirect_uri and two registered: nowhere to send the error.
        (
            &[("client_id", TRUSTED.0), ("response_type", "code")],
            400,
            "invalid_request",
        ),
    ];
    for (params, status, error) in cases {
        let p = b.get(&authorize_url(params)).await;
        assert_eq!(p.status, status, "{params:?}: {}", p.body);
        assert!(p.location.is_none(), "{params:?}: never redirected");
        let v: Value = serde_json::from_str(&p.body).unwrap_or_else(|_| panic!("{}", p.body));
        assert_eq!(v["error"], error, "{params:?}: {v}");
        assert!(v["error_description"].is_string(), "{v}");
    }
}

/// The login hand-off: NPR "will redirect to npr.org/oauth2/login for the user to complete the
/// sign-in"; ours goes to `authorization.login_url` with a `login_challenge`, and the login
/// app settles it through the admin API.
const LOGIN_URL: &str = "http://127.0.0.1:9/oauth2/login";

async fn login_app_call(gw: &Gateway, route: &str, body: Value) -> String {
    let r = reqwest::Client::new()
        .post(format!("http://{}/admin/login/{route}", gw.setup.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, v) = status_json(r).await;
    assert_eq!(status, 200, "{v}");
    s(&v, "redirect_to")
}

/// GET authorize with `login_url` set: 302 to the login page; returns the challenge.
async fn handed_off(b: &mut Browser, state: &str) -> String {
    let p = b.get(&third_party_authorize(state)).await;
    assert_eq!(p.status, 302, "{}", p.body);
    assert_eq!(p.target(), LOGIN_URL);
    p.query()
        .remove("login_challenge")
        .expect("a login_challenge")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_redirects_to_the_login_url() {
    let extra = format!("\n[authorization]\nlogin_url = \"{LOGIN_URL}\"\n");
    let (echo, gw) = launch_with(&extra, Some(ADMIN_TOKEN)).await;
    let mut b = Browser::new(gw.url(""));
    let challenge = handed_off(&mut b, "handoff").await;
    // Errors are still answered by the edge, not handed off.
    let p = b
        .get(&authorize_url(&[
            ("client_id", THIRD.0),
            ("redirect_uri", THIRD_CB),
            ("response_type", "token"),
            ("state", "x"),
        ]))
        .await;
    assert_npr_error_redirect(&p, THIRD_CB, "unsupported_response_type", "x");

    // The login app accepts: back to the edge, which asks for consent.
    let to = login_app_call(
        &gw,
        "accept",
        json!({ "login_challenge": challenge, "user": USER.0 }),
    )
    .await;
    let path = to.strip_prefix(&gw.url("")).unwrap_or(&to).to_string();
    assert!(path.starts_with(NPR), "{to}");
    let consent = b.get(&path).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let back = b.submit(&consent, &[("decision", "allow")]).await;
    assert_eq!(back.target(), THIRD_CB);
    let q = back.query();
    assert_eq!(q["state"], "handoff");
    let t = tokens(
        &gw,
        THIRD,
        &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", THIRD_CB),
        ],
    )
    .await;
    let seen = api_seen(&gw, &echo, "/identity/v2/user", &s(&t, "access_token")).await;
    assert_eq!(seen["x-oauth-user"], USER.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_rejected_at_the_login_url_is_nprs_denial() {
    let extra = format!("\n[authorization]\nlogin_url = \"{LOGIN_URL}\"\n");
    let (_echo, gw) = launch_with(&extra, Some(ADMIN_TOKEN)).await;
    let mut b = Browser::new(gw.url(""));
    let challenge = handed_off(&mut b, "rejected").await;
    let to = login_app_call(&gw, "reject", json!({ "login_challenge": challenge })).await;
    // "If the user DENIES the application, they will be redirected to
    // {{YOUR_REDIRECT_URI}}?error=denied&message=The user has denied the login and access
    // request&state={{CSRF_TOKEN}}" — a request made through the NPR profile is answered in
    // NPR's words wherever it ends.
    let p = Page {
        status: 302,
        location: Some(to),
        set_cookies: Vec::new(),
        body: String::new(),
    };
    let message = assert_npr_error_redirect(&p, THIRD_CB, "denied", "rejected");
    assert_eq!(message, DENIED);
}

// ---------------------------------------------------------------------------------------
// POST /authorization/v2/device and the device_code grant

async fn start_device(gw: &Gateway, client: (&str, &str), scope: Option<&str>) -> Value {
    let mut form = vec![("client_id", client.0), ("client_secret", client.1)];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    let r = gw.post_form(DEVICE, None, &form).await;
    assert_no_store(&r);
    let (status, v) = status_json(r).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// NPR's poll: `grant_type=device_code`, the device code in `code`.
async fn poll(gw: &Gateway, client: (&str, &str), device_code: &str) -> reqwest::Response {
    token_req(
        gw,
        client,
        &[("grant_type", "device_code"), ("code", device_code)],
    )
    .await
}

/// Opens `verification_uri_complete`, signs in, and decides; returns the last page.
async fn decide_on_the_device_page(gw: &Gateway, device: &Value, decision: &str) -> Page {
    let mut b = Browser::new(gw.url(""));
    let complete = s(device, "verification_uri_complete");
    let path = complete
        .strip_prefix(&gw.url(""))
        .unwrap_or_else(|| panic!("{complete} is not on this gateway"));
    let entry = b.get(path).await;
    assert_eq!(entry.status, 200, "{}", entry.body);
    assert_eq!(entry.fields()["user_code"], s(device, "user_code"));
    let sign_in = b.submit(&entry, &[]).await;
    assert_eq!(sign_in.status, 200, "{}", sign_in.body);
    assert!(
        sign_in.fields().contains_key("password"),
        "{}",
        sign_in.body
    );
    let confirm = b
        .submit(&sign_in, &[("username", USER.0), ("password", USER.1)])
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(
        confirm.body.contains(&s(device, "user_code")),
        "{}",
        confirm.body
    );
    b.submit(&confirm, &[("decision", decision)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_flow_end_to_end() {
    let (echo, gw) = launch().await;
    // "The client's ID", "The client's secret key", "A space-separated list of scope(s)".
    let d = start_device(&gw, THIRD, Some("identity.readonly listening.readonly")).await;
    let dc = s(&d, "device_code");
    let user_code = s(&d, "user_code");
    assert_eq!(user_code.len(), 9, "{d}");
    // The verification page is the rfc profile's, under the issuer.
    assert_eq!(d["verification_uri"], gw.url("/oauth2/device"));
    assert_eq!(
        d["verification_uri_complete"],
        gw.url(&format!("/oauth2/device?user_code={user_code}"))
    );
    assert_eq!(d["expires_in"], 60);
    assert_eq!(d["interval"], 1);

    // "the user has not yet logged in ... (device_code grant type)": 401.
    let r = poll(&gw, THIRD, &dc).await;
    let v = assert_error(r, 401, "authorization_pending").await;
    assert!(v["error_description"].is_string());
    // NPR's parameter is `code`; RFC 8628's `device_code` is not read here.
    token_error(
        &gw,
        THIRD,
        &[("grant_type", "device_code"), ("device_code", &dc)],
        400,
        "invalid_request",
    )
    .await;

    let done = decide_on_the_device_page(&gw, &d, "allow").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Device connected"), "{}", done.body);

    // Keep to the interval, then the tokens, once. "redirect_uri, service, username and
    // password parameters will be ignored".
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = tokens(
        &gw,
        THIRD,
        &[
            ("grant_type", "device_code"),
            ("code", &dc),
            ("redirect_uri", "https://evil.example/cb"),
            ("service", "facebook"),
            ("username", "bob@example.org"),
            ("password", "x"),
        ],
    )
    .await;
    assert_eq!(t["scope"], "identity.readonly listening.readonly");
    assert!(t["refresh_token"].is_string(), "{t}");
    let seen = api_seen(&gw, &echo, "/identity/v2/user", &s(&t, "access_token")).await;
    assert_eq!(seen["x-oauth-user"], USER.0);
    assert_eq!(seen["x-oauth-client-id"], "third-party");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = poll(&gw, THIRD, &dc).await;
    assert_error(r, 401, "invalid_grant").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_denied_and_refused() {
    let (_echo, gw) = launch().await;
    // The trusted app, with no scope: its default scopes.
    let d = start_device(&gw, TRUSTED, None).await;
    let done = decide_on_the_device_page(&gw, &d, "deny").await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("denied"), "{}", done.body);
    // "... or has purposely denied the request (device_code grant type)": 401.
    let r = poll(&gw, TRUSTED, &s(&d, "device_code")).await;
    assert_error(r, 401, "access_denied").await;

    // Another client's device code, and garbage: invalid_grant.
    let d2 = start_device(&gw, TRUSTED, None).await;
    let r = poll(&gw, THIRD, &s(&d2, "device_code")).await;
    assert_error(r, 401, "invalid_grant").await;
    let r = poll(&gw, THIRD, "oed_garbage").await;
    assert_error(r, 401, "invalid_grant").await;

    // A client not allowed the device flow: 403; bad credentials: 401; a scope beyond the
    // client's: 400.
    let r = gw
        .post_form(
            DEVICE,
            None,
            &[("client_id", BACKEND.0), ("client_secret", BACKEND.1)],
        )
        .await;
    assert_error(r, 403, "unauthorized_client").await;
    let r = gw
        .post_form(
            DEVICE,
            None,
            &[("client_id", THIRD.0), ("client_secret", "wrong")],
        )
        .await;
    assert_error(r, 401, "invalid_client").await;
    let r = gw
        .post_form(
            DEVICE,
            None,
            &[
                ("client_id", THIRD.0),
                ("client_secret", THIRD.1),
                ("scope", "stations.admin"),
            ],
        )
        .await;
    assert_error(r, 400, "invalid_scope").await;
    // The device grant is not open to a client without it.
    token_error(
        &gw,
        BACKEND,
        &[
            ("grant_type", "device_code"),
            ("code", &s(&d2, "device_code")),
        ],
        403,
        "unauthorized_client",
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// POST /authorization/v2/token/revoke

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_either_token_of_a_pair_revokes_both() {
    let (_echo, gw) = launch().await;
    // "A client_credentials access token from the same client application as the token
    // being revoked."
    let cc = client_credentials(&gw, TRUSTED).await;

    // An access token, with no hint ("If unspecified, the default value is assumed to be
    // access_token"): 200, and its refresh token dies with it.
    let p = password(&gw, None).await;
    let r = revoke(&gw, Some(&cc), &[("token", &s(&p, "access_token"))]).await;
    assert_eq!(r.status(), 200);
    assert_no_store(&r);
    assert!(r.text().await.unwrap().is_empty());
    assert_eq!(
        api(&gw, "/identity/v2/user", &s(&p, "access_token")).await,
        401
    );
    token_error(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &s(&p, "refresh_token")),
        ],
        401,
        "invalid_grant",
    )
    .await;
    // Revoking it again is still 200.
    let r = revoke(&gw, Some(&cc), &[("token", &s(&p, "access_token"))]).await;
    assert_eq!(r.status(), 200);

    // "and vice-versa": a refresh token, hinted.
    let p = password(&gw, None).await;
    let r = revoke(
        &gw,
        Some(&cc),
        &[
            ("token", &s(&p, "refresh_token")),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        api(&gw, "/identity/v2/user", &s(&p, "access_token")).await,
        401
    );

    // A refresh token sent with no hint (so "access_token"): the hint is only a hint.
    let p = password(&gw, None).await;
    let r = revoke(&gw, Some(&cc), &[("token", &s(&p, "refresh_token"))]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        api(&gw, "/listening/v2/channels", &s(&p, "access_token")).await,
        401
    );

    // A temporary user's pair revokes the same way.
    let temp = tokens(&gw, TRUSTED, &[("grant_type", "temporary_user")]).await;
    let r = revoke(&gw, Some(&cc), &[("token", &s(&temp, "access_token"))]).await;
    assert_eq!(r.status(), 200);
    token_error(
        &gw,
        TRUSTED,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &s(&temp, "refresh_token")),
        ],
        401,
        "invalid_grant",
    )
    .await;

    // A token we never issued: 200 (RFC 7009 2.2), well-formed or not.
    let r = revoke(&gw, Some(&cc), &[("token", "not-a-token-of-ours")]).await;
    assert_eq!(r.status(), 200);
    // No token: 400.
    let r = revoke(&gw, Some(&cc), &[]).await;
    assert_error(r, 400, "invalid_request").await;
    // A hint naming something else: 400 unsupported_token_type (RFC 7009 2.2.1).
    let p = password(&gw, None).await;
    let r = revoke(
        &gw,
        Some(&cc),
        &[
            ("token", &s(&p, "access_token")),
            ("token_type_hint", "id_token"),
        ],
    )
    .await;
    assert_error(r, 400, "unsupported_token_type").await;
    assert_eq!(
        api(&gw, "/identity/v2/user", &s(&p, "access_token")).await,
        200
    );
    // The Bearer token itself can be revoked (logging the install out); then it is no
    // longer client authentication.
    let r = revoke(&gw, Some(&cc), &[("token", &cc)]).await;
    assert_eq!(r.status(), 200);
    let r = revoke(&gw, Some(&cc), &[("token", &s(&p, "access_token"))]).await;
    assert_error(r, 401, "invalid_client").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_is_authenticated_only_by_a_client_credentials_bearer_token() {
    let (_echo, gw) = launch().await;
    let p = password(&gw, None).await;
    let victim = s(&p, "access_token");

    // "The client associated with the access token in the header does not own the access
    // token that this request is attempting to revoke": 403, and nothing is revoked.
    let third_cc = client_credentials(&gw, THIRD).await;
    let r = revoke(&gw, Some(&third_cc), &[("token", &victim)]).await;
    assert_error(r, 403, "unauthorized_client").await;
    let r = revoke(&gw, Some(&third_cc), &[("token", &s(&p, "refresh_token"))]).await;
    assert_error(r, 403, "unauthorized_client").await;
    assert_eq!(api(&gw, "/identity/v2/user", &victim).await, 200);

    // No Authorization header: 401.
    let r = revoke(&gw, None, &[("token", &victim)]).await;
    assert_error(r, 401, "invalid_client").await;
    // Basic (the right id and secret) instead of Bearer: 401. (Its WWW-Authenticate is
    // checked in `revoke_challenges_name_bearer`.)
    let r = gw
        .post_form(REVOKE, Some(TRUSTED), &[("token", &victim)])
        .await;
    assert_error(r, 401, "invalid_client").await;
    // The id and secret in the form: 401.
    let r = gw
        .post_form(
            REVOKE,
            None,
            &[
                ("token", &victim),
                ("client_id", TRUSTED.0),
                ("client_secret", TRUSTED.1),
            ],
        )
        .await;
    assert_error(r, 401, "invalid_client").await;
    // A Bearer token that is not a client_credentials token (the user's own): 401.
    let r = revoke(&gw, Some(&victim), &[("token", &victim)]).await;
    assert!(header(&r, "www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    assert_error(r, 401, "invalid_client").await;
    // A forged Bearer token: 401.
    let r = revoke(&gw, Some("oea_forged"), &[("token", &victim)]).await;
    assert_error(r, 401, "invalid_client").await;
    assert_eq!(
        api(&gw, "/identity/v2/user", &victim).await,
        200,
        "untouched"
    );

    // The owner's client_credentials token: 200.
    let cc = client_credentials(&gw, TRUSTED).await;
    let r = revoke(
        &gw,
        Some(&cc),
        &[("token", &victim), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(api(&gw, "/identity/v2/user", &victim).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_challenges_name_bearer() {
    let (_echo, gw) = launch().await;
    let victim = s(&password(&gw, None).await, "access_token");
    // The revoke endpoint takes only `Authorization: Bearer <client_credentials token>`, so
    // its 401s challenge with Bearer whatever was (or was not) sent.
    let none = revoke(&gw, None, &[("token", &victim)]).await;
    let basic = gw
        .post_form(REVOKE, Some(TRUSTED), &[("token", &victim)])
        .await;
    for r in [none, basic] {
        assert_eq!(r.status(), 401);
        let challenge = header(&r, "www-authenticate").map(str::to_string);
        assert!(
            challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer")),
            "{challenge:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_message_is_encoded_as_npr_shows_it() {
    let (_echo, gw) = launch().await;
    let mut b = Browser::new(gw.url(""));
    let consent = sign_in(&mut b, &third_party_authorize("csrf")).await;
    let back = b.submit(&consent, &[("decision", "deny")]).await;
    // "…?error=denied&message=The%20user%20has%20denied%20the%20login%20and%20access%20request&state={{CSRF_TOKEN}}"
    assert_eq!(
        back.location.as_deref(),
        Some(
            "https://radio.example/callback?error=denied\
             &message=The%20user%20has%20denied%20the%20login%20and%20access%20request&state=csrf"
        )
    );
}

// ---------------------------------------------------------------------------------------
// The documented statuses of the APIs behind the edge: 429 with X-RateLimit-*, 503 with
// Retry-After

/// "The client has exceeded the number of daily calls as per their rate limit. For now, this
/// only applies to prototype applications and untrusted clients": every answer carries
/// `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`, and over the quota the
/// answer is 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_client_sees_its_quota_and_then_429() {
    let extra = r#"
[[clients]]
id = "prototype"
secret = "prototype-secret-0123456789"
grants = ["client_credentials"]
scopes = ["listening.readonly"]
rate_limit = { requests = 2, per = "1d" }
"#;
    let (echo, gw) = launch_with(extra, None).await;
    let token = client_credentials(&gw, ("prototype", "prototype-secret-0123456789")).await;
    for left in ["1", "0"] {
        let r = gw.get_bearer("/listening/v2/channels", &token).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-ratelimit-limit"), Some("2"));
        assert_eq!(header(&r, "x-ratelimit-remaining"), Some(left));
        assert!(header(&r, "x-ratelimit-reset").is_some());
    }
    let hits = echo.hits();
    let r = gw.get_bearer("/listening/v2/channels", &token).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "x-ratelimit-remaining"), Some("0"));
    assert!(header(&r, "retry-after").is_some());
    assert_eq!(echo.hits(), hits);
    // A trusted client is never rate-limited and sees no quota headers.
    let trusted = client_credentials(&gw, TRUSTED).await;
    let r = gw.get_bearer("/listening/v2/channels", &trusted).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-ratelimit-limit"), None);
}

/// "The system is undergoing maintenance and we are unable to fulfill this request. Look for a
/// Retry-After header": switched on through the admin API, the token endpoint and the APIs
/// answer 503 with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_answers_503_with_retry_after() {
    let (_echo, gw) = launch_with("", Some(ADMIN_TOKEN)).await;
    let token = client_credentials(&gw, BACKEND).await;
    let switch = |on: bool| {
        gw.http
            .put(format!("http://{}/admin/maintenance", gw.setup.admin))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({ "enabled": on }))
            .send()
    };
    assert_eq!(switch(true).await.unwrap().status(), 200);
    let r = token_req(&gw, BACKEND, &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.status(), 503);
    assert_eq!(header(&r, "retry-after"), Some("300"));
    let (_, v) = status_json(r).await;
    assert_eq!(v["error"], "temporarily_unavailable");
    let r = gw.get_bearer("/listening/v2/channels", &token).await;
    assert_eq!(r.status(), 503);
    assert_eq!(header(&r, "retry-after"), Some("300"));
    assert_eq!(switch(false).await.unwrap().status(), 200);
    assert_eq!(
        gw.get_bearer("/listening/v2/channels", &token)
            .await
            .status(),
        200
    );
}
