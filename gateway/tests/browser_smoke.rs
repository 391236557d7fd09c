//! Smoke test of the browser harness and the built-in pages: a tiny local server serves the
//! real sign-in page, headless Chromium fills and submits it (no JavaScript anywhere), and
//! the server must receive the posted fields.

mod browser;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use browser::Browser;
use oauth_edge::pages::{self, Done, SignIn};

/// Every form body the server received, decoded.
type Posted = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A client name with markup in it: the page must show it as text.
const CLIENT: &str = "Acme <Dashboard> & \"Co\"";

fn sign_in_page() -> SignIn {
    SignIn {
        title: "Sign in".into(),
        client: CLIENT.into(),
        action: "/sign-in".into(),
        csrf: "csrf-1234".into(),
        request: "ticket-5678".into(),
        username: None,
        error: None,
    }
}

async fn show() -> Html<String> {
    Html(pages::sign_in(&sign_in_page()))
}

async fn submit(State(posted): State<Posted>, body: Bytes) -> Html<String> {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let user = fields
        .iter()
        .find(|(k, _)| k == "username")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    posted.lock().unwrap().push(fields);
    Html(pages::done(&Done {
        title: "Signed in".into(),
        message: format!("Welcome back, {user}."),
        error: None,
        error_description: None,
    }))
}

/// Serves `GET /sign-in` (the page) and `POST /sign-in` (records the form) on 127.0.0.1.
async fn serve() -> (String, Posted) {
    let posted = Posted::default();
    let app = Router::new()
        .route("/sign-in", get(show).post(submit))
        .with_state(posted.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, posted)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_form_posts_without_javascript() {
    let (base, posted) = serve().await;
    let shots = tempfile::tempdir().unwrap();
    let browser = Browser::start().await;

    browser.goto(&format!("{base}/sign-in")).await;
    assert_eq!(browser.text("h1").await, "Sign in");
    assert_eq!(
        browser.text(".lede").await,
        format!("Sign in to continue to {CLIENT}"),
        "the client name is shown as text, not markup"
    );
    browser.fill("#username", "alice").await;
    browser.fill("#password", "correct horse").await;
    let shot = shots.path().join("sign-in.png");
    let size = browser.screenshot(&shot).await;
    assert!(size > 0 && std::fs::metadata(&shot).unwrap().len() == size as u64);

    browser.click("button[type=submit]").await;
    assert_eq!(browser.text("h1").await, "Signed in");
    assert_eq!(browser.text(".lede").await, "Welcome back, alice.");
    assert_eq!(browser.current_url().await, format!("{base}/sign-in"));
    let size = browser.screenshot(shots.path().join("signed-in.png")).await;
    assert!(size > 0);
    browser.close().await;

    let posted = posted.lock().unwrap().clone();
    assert_eq!(posted.len(), 1, "one form post: {posted:?}");
    let form = &posted[0];
    assert_eq!(field(form, "username"), Some("alice"));
    assert_eq!(field(form, "password"), Some("correct horse"));
    assert_eq!(field(form, "csrf"), Some("csrf-1234"));
    assert_eq!(field(form, "request"), Some("ticket-5678"));
    assert_eq!(form.len(), 4, "no other fields: {form:?}");
}

/// Dropping the `Browser` without `close()` ends chromedriver and every Chromium process it
/// started (its process group).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_browser_stops_chromedriver_and_chromium() {
    let browser = Browser::start().await;
    let group = browser.driver_pid();
    assert!(
        !group_members(group).is_empty(),
        "chromedriver runs in its own group"
    );
    drop(browser);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = group_members(group);
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left running: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The live (not zombie) processes in process group `group`, from /proc.
fn group_members(group: u32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == group.to_string() {
            found.push(format!("{})", head));
        }
    }
    found
}
