//! The flows a person takes part in, in headless Chromium against the real `oauth-edge`
//! binary: sign-in → consent → back to the client with a code → token exchange; a denied
//! consent; signing out; and the device flow, approved in the browser while the device polls.
//!
//! The screenshots in `docs/screenshots/` (shown in `docs/pages.md`) are taken here.

mod browser;
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use browser::Browser;
use common::{upstream, Echo, Gateway, Setup};
use serde_json::Value;

const VERIFIER: &str = "chromium-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

fn shots(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/screenshots")
        .join(name)
}

/// The client application's redirect target: a page that says it got the answer.
async fn client_app() -> SocketAddr {
    let app = Router::new().route(
        "/cb",
        get(|| async {
            Html("<!doctype html><title>Example App</title><h1>Back in Example App</h1>")
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn launch(app: SocketAddr, echo: &Echo) -> Gateway {
    // The issuer is configured (the pages' URLs are absolute, the redirect carries `iss`), so
    // it names the listen port, chosen here.
    let setup = Setup::on_free_ports();
    let config = format!(
        r#"{head}
[device]
interval = "1s"

[[clients]]
id = "example-app"
name = "Example App"
secret = "example-app-secret-0123456789"
grants = ["authorization_code", "refresh_token"]
scopes = ["profile", "invoices.read", "invoices.write"]
redirect_uris = ["http://{app}/cb"]
require_pkce = true

[[clients]]
id = "living-room-tv"
name = "Living Room TV"
public = true
grants = ["device_code", "refresh_token"]
scopes = ["profile", "media.play"]
default_scopes = ["profile", "media.play"]

[[users]]
username = "alice"
password = "wonderland-pw-0123"

[[routes]]
path = "/api"
require = "bearer"
upstream = "echo"
{gateway}{upstream}"#,
        head = setup.head(),
        gateway = setup.gateway(""),
        upstream = upstream("echo", &[echo.addr], ""),
    );
    setup.launch(&config).await
}

fn authorize_url(gw: &Gateway, app: SocketAddr, state: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", "example-app")
        .append_pair("redirect_uri", &format!("http://{app}/cb"))
        .append_pair("scope", "profile invoices.read")
        .append_pair("state", state)
        .append_pair("code_challenge", &oauth_edge::pkce::s256(VERIFIER))
        .append_pair("code_challenge_method", "S256");
    gw.url(&format!("/oauth2/authorize?{}", q.finish()))
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

async fn sign_in(b: &Browser, shot: Option<&str>) {
    b.wait_text("h1", "Sign in").await;
    assert!(
        b.text("main").await.contains("Example App")
            || b.text("main").await.contains("Living Room TV")
    );
    if let Some(name) = shot {
        assert!(b.screenshot(shots(name)).await > 10_000);
    }
    b.fill("#username", "alice").await;
    b.fill("#password", "wonderland-pw-0123").await;
    b.click("button[type=submit]").await;
}

#[tokio::test]
async fn sign_in_consent_redirect_and_token_exchange() {
    let app = client_app().await;
    let echo = Echo::start("echo").await;
    let gw = launch(app, &echo).await;
    let b = Browser::start().await;

    b.goto(&authorize_url(&gw, app, "chromium-state")).await;
    sign_in(&b, Some("sign-in.png")).await;

    // The consent page: the client, the user, the scopes asked for.
    b.wait_text("h1", "Allow access?").await;
    let main = b.text("main").await;
    assert!(
        main.contains("Example App") && main.contains("alice"),
        "{main}"
    );
    assert!(
        main.contains("invoices.read") && !main.contains("invoices.write"),
        "{main}"
    );
    assert!(b.screenshot(shots("consent.png")).await > 10_000);
    b.click("button[value=allow]").await;

    // Back at the client with a code.
    b.wait_text("h1", "Back in Example App").await;
    let url = b.current_url().await;
    assert!(url.starts_with(&format!("http://{app}/cb?")), "{url}");
    let q = query_of(&url);
    assert_eq!(q["state"], "chromium-state");
    assert_eq!(q["iss"], gw.url("").trim_end_matches('/'));
    let code = &q["code"];

    // The client exchanges it, with its PKCE verifier.
    let tokens = gw
        .token(
            ("example-app", "example-app-secret-0123456789"),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &format!("http://{app}/cb")),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(tokens["scope"], "invoices.read profile");
    assert!(tokens["refresh_token"].is_string());
    let r = gw
        .get_bearer("/api/invoices", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), 200);
    let seen = echo.last();
    assert_eq!(seen.one("x-oauth-user"), Some("alice"));
    assert_eq!(seen.one("x-oauth-client-id"), Some("example-app"));

    // The code was single use.
    let r = gw
        .post_form(
            "/oauth2/token",
            Some(("example-app", "example-app-secret-0123456789")),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &format!("http://{app}/cb")),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(r.status(), 400);
    b.close().await;
}

#[tokio::test]
async fn a_denied_consent_goes_back_with_access_denied() {
    let app = client_app().await;
    let echo = Echo::start("echo").await;
    let gw = launch(app, &echo).await;
    let b = Browser::start().await;

    b.goto(&authorize_url(&gw, app, "deny-state")).await;
    sign_in(&b, None).await;
    b.wait_text("h1", "Allow access?").await;
    b.click("button[value=deny]").await;

    b.wait_text("h1", "Back in Example App").await;
    let q = query_of(&b.current_url().await);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "deny-state");
    assert!(!q.contains_key("code"));
    b.close().await;
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = client_app().await;
    let echo = Echo::start("echo").await;
    let gw = launch(app, &echo).await;
    let b = Browser::start().await;

    b.goto(&authorize_url(&gw, app, "s1")).await;
    sign_in(&b, None).await;
    b.wait_text("h1", "Allow access?").await;
    // Signed in: a second request goes straight to consent.
    b.goto(&authorize_url(&gw, app, "s2")).await;
    b.wait_text("h1", "Allow access?").await;

    b.goto(&gw.url("/oauth2/sign-out")).await;
    b.wait_text("h1", "Sign out").await;
    assert!(b.text("main").await.contains("alice"));
    assert!(b.screenshot(shots("sign-out.png")).await > 5_000);
    b.click("button[type=submit]").await;
    b.wait_text("h1", "Signed out").await;
    assert!(b.text("main").await.contains("You are signed out"));

    // The session is gone: the next request asks for the password again.
    b.goto(&authorize_url(&gw, app, "s3")).await;
    b.wait_text("h1", "Sign in").await;
    b.close().await;
}

#[tokio::test]
async fn device_flow_approved_in_the_browser_while_the_device_polls() {
    let app = client_app().await;
    let echo = Echo::start("echo").await;
    let gw = launch(app, &echo).await;

    // The device asks for codes...
    let r = gw
        .post_form(
            "/oauth2/device_authorization",
            None,
            &[("client_id", "living-room-tv")],
        )
        .await;
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    let interval = Duration::from_secs(d["interval"].as_u64().unwrap());

    // ...and polls at the interval it was given, as a second client, while the user acts.
    let device_code = d["device_code"].as_str().unwrap().to_string();
    let token_url = gw.url("/oauth2/token");
    let poller = tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut seen = Vec::new();
        let mut wait = interval;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            tokio::time::sleep(wait).await;
            let r = http
                .post(&token_url)
                .form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", device_code.as_str()),
                    ("client_id", "living-room-tv"),
                ])
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            if status == 200 {
                return (seen, Some(body));
            }
            let error = body["error"].as_str().unwrap_or("").to_string();
            if error == "slow_down" {
                wait += Duration::from_secs(5);
            } else if error != "authorization_pending" {
                seen.push(error);
                return (seen, None);
            }
            seen.push(error);
        }
        (seen, None)
    });

    // The user opens verification_uri_complete: the code is filled in.
    let b = Browser::start().await;
    b.goto(d["verification_uri_complete"].as_str().unwrap())
        .await;
    b.wait_text("h1", "Connect a device").await;
    let shown = d["user_code"].as_str().unwrap();
    let value = b
        .client()
        .find(fantoccini::Locator::Css("#user_code"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some(shown));
    assert!(b.screenshot(shots("device-entry.png")).await > 10_000);
    b.click("button[type=submit]").await;

    sign_in(&b, None).await;
    b.wait_text("h1", "Connect this device?").await;
    let main = b.text("main").await;
    assert!(
        main.contains(shown) && main.contains("Living Room TV"),
        "{main}"
    );
    assert!(b.screenshot(shots("device-confirm.png")).await > 10_000);
    b.click("button[value=allow]").await;
    b.wait_text("h1", "Device connected").await;
    assert!(b.screenshot(shots("device-done.png")).await > 5_000);
    b.close().await;

    let (seen, tokens) = tokio::time::timeout(Duration::from_secs(70), poller)
        .await
        .expect("the device got an answer")
        .unwrap();
    let tokens = tokens.unwrap_or_else(|| panic!("no tokens; polls said {seen:?}"));
    assert!(
        !seen.iter().any(|e| e == "slow_down"),
        "polling at the interval: {seen:?}"
    );
    assert!(
        seen.iter().all(|e| e == "authorization_pending"),
        "{seen:?}"
    );
    assert_eq!(tokens["scope"], "media.play profile");
    let r = gw
        .get_bearer("/api/play", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(echo.last().one("x-oauth-user"), Some("alice"));
}

/// A login app of the site's own: a sign-in page of its own that, on submit, accepts the
/// edge's `login_challenge` through the admin API and sends the browser where it is told.
async fn login_app(admin: SocketAddr, token: &'static str) -> SocketAddr {
    use axum::extract::Query;
    use axum::response::Redirect;
    use std::collections::HashMap;

    let page = |Query(q): Query<HashMap<String, String>>| async move {
        let challenge = q.get("login_challenge").cloned().unwrap_or_default();
        Html(format!(
            "<!doctype html><title>Corporate login</title><h1>Corporate login</h1>\
             <form method=post action=/login>\
             <input type=hidden name=login_challenge value=\"{challenge}\">\
             <input id=who name=who><button name=go value=in type=submit>In</button>\
             <button name=go value=out type=submit>Out</button></form>"
        ))
    };
    let submit = move |body: axum::body::Bytes| async move {
        let f: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
        let (route, body) = if f["go"] == "in" {
            (
                "accept",
                serde_json::json!({ "login_challenge": f["login_challenge"], "user": f["who"] }),
            )
        } else {
            (
                "reject",
                serde_json::json!({ "login_challenge": f["login_challenge"] }),
            )
        };
        let r: Value = reqwest::Client::new()
            .post(format!("http://{admin}/admin/login/{route}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Redirect::to(r["redirect_to"].as_str().unwrap())
    };
    let app = Router::new().route("/login", get(page).post(submit));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn sign_in_handed_off_to_the_sites_own_login_app() {
    const TOKEN: &str = "admin-token-for-the-login-app-0123456789";
    let app = client_app().await;
    let echo = Echo::start("echo").await;
    // The login app must know the admin address before the gateway starts, so the ports are
    // chosen here.
    let setup = Setup::on_free_ports();
    let login = login_app(setup.admin, TOKEN).await;
    let config = format!(
        r#"{head}
[authorization]
login_url = "http://{login}/login"

[[clients]]
id = "example-app"
name = "Example App"
secret = "example-app-secret-0123456789"
grants = ["authorization_code"]
scopes = ["profile", "invoices.read"]
redirect_uris = ["http://{app}/cb"]

[[routes]]
path = "/api"
require = "bearer"
upstream = "echo"

[gateway]
threads = 2

[gateway.admin]
address = "{admin}"
token = "{TOKEN}"

[[gateway.listeners]]
address = "{listen}"
{upstream}"#,
        head = setup.head(),
        admin = setup.admin,
        listen = setup.listen,
        upstream = upstream("echo", &[echo.addr], ""),
    );
    let gw = setup.launch(&config).await;
    let b = Browser::start().await;

    // Accepted: the login app's page, then the edge's consent page for its user.
    b.goto(&authorize_url(&gw, app, "handoff")).await;
    b.wait_text("h1", "Corporate login").await;
    b.fill("#who", "bob@corp.example").await;
    b.click("button[value=in]").await;
    b.wait_text("h1", "Allow access?").await;
    assert!(b.text("main").await.contains("bob@corp.example"));
    b.click("button[value=allow]").await;
    b.wait_text("h1", "Back in Example App").await;
    let q = query_of(&b.current_url().await);
    assert_eq!(q["state"], "handoff");
    let tokens = gw
        .token(
            ("example-app", "example-app-secret-0123456789"),
            &[
                ("grant_type", "authorization_code"),
                ("code", &q["code"]),
                ("redirect_uri", &format!("http://{app}/cb")),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    let r = gw
        .get_bearer("/api/x", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(echo.last().one("x-oauth-user"), Some("bob@corp.example"));
    b.close().await;

    // Rejected: straight back to the client with access_denied (a fresh browser, so no
    // session from the first run).
    let b = Browser::start().await;
    b.goto(&authorize_url(&gw, app, "no")).await;
    b.click("button[value=out]").await;
    b.wait_text("h1", "Back in Example App").await;
    let q = query_of(&b.current_url().await);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "no");
    b.close().await;

    // The admin API refuses forged challenges, and calls without its token.
    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{}/admin/login/accept", gw.setup.admin))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "login_challenge": "forged", "user": "eve" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http
        .post(format!("http://{}/admin/login/accept", gw.setup.admin))
        .json(&serde_json::json!({ "login_challenge": "forged", "user": "eve" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
