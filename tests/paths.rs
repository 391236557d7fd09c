//! Route matching on the canonical path through the tower layer: a request cannot walk past
//! a route's check by dot-segments, escapes or doubled slashes, and the app receives exactly
//! the path that was matched. Requests go over raw TCP, because HTTP client libraries resolve
//! dot-segments themselves before sending.

mod common;

use common::{TestServer, CONFIG};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `GET target` with an optional bearer token; returns the status and the body.
async fn get(s: &TestServer, target: &str, host: &str, token: Option<&str>) -> (u16, String) {
    let mut raw = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(t) = token {
        raw.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    raw.push_str("\r\n");
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    c.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The URI the app saw, from the echo app's JSON.
fn seen_uri(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    v["uri"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn dot_segments_and_escapes_cannot_walk_past_a_route() {
    let s = TestServer::start(CONFIG).await;
    // `/public` requires nothing, `/api` a token: walking from one into the other is
    // matched as `/api/…`, so no token means 401.
    for target in [
        "/public/../api/x",
        "/public/%2e%2e/api/x",
        "/public/%2E%2E/api/x",
        "/public/.%2e/api/x",
        "/public/./../api/x",
        "//api/x",
        "/%61pi/x",
    ] {
        let (status, body) = get(&s, target, "auth.test", None).await;
        assert_eq!(status, 401, "{target}: {body}");
    }
    // With a `read` token, the admin route still wants `admin`.
    let token = s.client_token("svc", "svc-secret", Some("read")).await;
    let token = token["access_token"].as_str().unwrap();
    for target in [
        "/api/%61dmin/x",
        "/api//admin/x",
        "/api/x/../admin/x",
        "//api/admin",
    ] {
        let (status, body) = get(&s, target, "auth.test", Some(token)).await;
        assert_eq!(status, 403, "{target}: {body}");
        assert!(body.contains("insufficient_scope"), "{target}: {body}");
    }
}

#[tokio::test]
async fn what_stays_ambiguous_is_refused_before_any_route() {
    let s = TestServer::start(CONFIG).await;
    for target in [
        "/public/%2f..%2fapi/x",
        "/public/%2F..%2Fapi/x",
        "/public/%5c..%5capi/x",
        "/public/..;/api/x",
        "/public;x/y",
        "/public/../../api/x",
        "/%2e%2e/api",
        "/public/a%00b",
        "/public/a%zz",
    ] {
        let (status, body) = get(&s, target, "auth.test", None).await;
        assert_eq!(status, 400, "{target}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "invalid_request", "{target}");
    }
    for host in ["auth.test:http", "auth..test", "auth.test:99999"] {
        let (status, body) = get(&s, "/public/x", host, None).await;
        assert_eq!(status, 400, "{host}: {body}");
    }
}

#[tokio::test]
async fn the_app_receives_the_path_that_was_matched() {
    let s = TestServer::start(CONFIG).await;
    for (target, want) in [
        ("/public/x", "/public/x"),
        ("/public/./a//b", "/public/a/b"),
        ("/public/%7Euser/%41", "/public/~user/A"),
        ("/public/a/../b/", "/public/b/"),
        ("/public/a%20b", "/public/a%20b"),
        (
            "/public/x?next=/a/../b&q=%2F",
            "/public/x?next=/a/../b&q=%2F",
        ),
    ] {
        let (status, body) = get(&s, target, "auth.test", None).await;
        assert_eq!(status, 200, "{target}: {body}");
        assert_eq!(seen_uri(&body), want, "{target}");
    }
}

#[tokio::test]
async fn endpoints_are_found_on_the_canonical_path() {
    let s = TestServer::start(CONFIG).await;
    let raw = "/oauth2/x/../token";
    let body = "grant_type=client_credentials&client_id=svc&client_secret=svc-secret";
    let req = format!(
        "POST {raw} HTTP/1.1\r\nHost: auth.test\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    c.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    c.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("access_token"), "{text}");
}
