//! Route matching on the canonical path through the gateway: dot-segments, escapes and
//! doubled slashes cannot walk past a route's check, what stays ambiguous gets 400, and the
//! upstream receives exactly the path that was matched (a normalising upstream would serve
//! it unchanged). Raw TCP, because HTTP client libraries resolve dot-segments themselves.

mod common;

use std::time::Duration;

use common::{raw_exchange, raw_status, standard, Gateway, SVC};

async fn get(gw: &Gateway, target: &str, host: &str, token: Option<&str>) -> (u16, String) {
    let mut raw = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(t) = token {
        raw.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    raw.push_str("\r\n");
    let (resp, _) = raw_exchange(gw.listen(), raw.as_bytes(), Duration::from_secs(5)).await;
    let status = raw_status(&resp).unwrap_or_else(|| panic!("no status: {resp}"));
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn the_canonical_path_is_matched_and_forwarded() {
    let (echo, gw) = standard().await;
    let before = echo.hits();
    for target in [
        "/public/../api/x",
        "/public/%2e%2e/api/x",
        "/public/.%2E/api/x",
        "//api/x",
        "/%61pi/x",
    ] {
        let (status, body) = get(&gw, target, "gw.test", None).await;
        assert_eq!(status, 401, "{target}: {body}");
    }
    let token = gw.client_token(SVC, Some("read")).await;
    for target in ["/api/%61dmin/x", "/api//admin/x", "/api/x/../admin/x"] {
        let (status, body) = get(&gw, target, "gw.test", Some(&token)).await;
        assert_eq!(status, 403, "{target}: {body}");
    }
    for target in [
        "/public/%2f..%2fapi/x",
        "/public/%5C..%5Capi/x",
        "/public/..;/api/x",
        "/public/../../api/x",
        "/public/a%zz",
    ] {
        let (status, body) = get(&gw, target, "gw.test", None).await;
        assert_eq!(status, 400, "{target}: {body}");
        assert!(body.contains("invalid_request"), "{target}: {body}");
    }
    for host in ["gw.test:http", "gw..test"] {
        let (status, body) = get(&gw, "/public/x", host, None).await;
        assert_eq!(status, 400, "{host}: {body}");
    }
    assert_eq!(echo.hits(), before, "nothing refused reached the upstream");

    for (target, host, want) in [
        ("/public/./a//b", "gw.test", "/public/a/b"),
        ("/public/%7Euser/%41", "gw.test", "/public/~user/A"),
        (
            "/public/a/../b/?next=/x/../y",
            "GW.test.",
            "/public/b/?next=/x/../y",
        ),
        ("/api/../public/z", "gw.test", "/public/z"),
    ] {
        let (status, body) = get(&gw, target, host, None).await;
        assert_eq!(status, 200, "{target}: {body}");
        let seen = echo.last();
        assert_eq!(seen.uri, want, "{target}");
        if host == "GW.test." {
            assert_eq!(seen.one("host"), Some("gw.test"));
        }
    }
}
