//! Secrets never reach the log output, at any level.
//!
//! The real `oauth-edge` binary at `OAUTH_EDGE_LOG=debug`, `trace` and `trace,pingora=trace`,
//! where pingora prints request heads (`Sending header to upstream RequestHeader {…}`) and the
//! bytes of requests it cannot parse (`Fail to proxy: … buf: …`). Every kind of credential
//! goes through it: a valid and a bogus bearer token (also on a route that forwards it), HTTP
//! Basic and a form `client_secret` at the token endpoint, `X-IBM-Client-Secret` as a header
//! and in the query, a cookie, a `code` and an `access_token` in a query, and malformed raw
//! requests carrying `Authorization: Bearer …`. Then none of them may be in what the gateway
//! wrote, while pingora's debug lines (the ones that printed them) must be.

mod common;

use std::time::Duration;

use common::*;

/// Distinctive values sent only in places the scrubber must hide.
const BOGUS_BEARER: &str = "BogusBearer7f3a9cLeak";
const IBM_HEADER: &str = "IbmHeaderSecret41Leak";
const IBM_QUERY: &str = "IbmQuerySecret42Leak";
const COOKIE: &str = "CookieSession43Leak";
const CODE: &str = "QueryCode44Leak";
const QUERY_TOKEN: &str = "QueryAccessToken45Leak";
const RAW_BEARER: &str = "RawMalformedBearer46Leak";
const RAW_BASIC: &str = "UmF3QmFzaWM0N0xlYWs6cHc=";
const TRUNCATED: &str = "Zq7Xw9TruncBearer48Leak";

async fn check(level: &str) {
    let echo = Echo::start("echo").await;
    let s = Setup::new();
    let config = s.standard(&echo);
    let gw = s.launch_env(&config, &[("OAUTH_EDGE_LOG", level)]).await;
    let mut secrets: Vec<String> = [
        BOGUS_BEARER,
        IBM_HEADER,
        IBM_QUERY,
        COOKIE,
        CODE,
        QUERY_TOKEN,
        RAW_BEARER,
        RAW_BASIC,
        // Only the start of it fits in what pingora prints.
        &TRUNCATED[..5],
        SVC.1,
        OTHER.1,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // HTTP Basic as reqwest sends it: base64 of `svc:…` and `other:…`.
    secrets.push("c3ZjOnN2Yy1zZWNyZXQtMDEyMzQ1Njc4OQ".into());
    secrets.push("b3RoZXI6b3RoZXItc2VjcmV0LTAxMjM0NTY3ODk".into());

    // A token with HTTP Basic; then used on a route that strips it and on one that forwards it.
    let token = gw.client_token(SVC, None).await;
    secrets.push(token.clone());
    assert_eq!(gw.get_bearer("/api/x", &token).await.status(), 200);
    assert_eq!(gw.get_bearer("/keep/x", &token).await.status(), 200);

    // A bogus bearer token.
    assert_eq!(gw.get_bearer("/api/x", BOGUS_BEARER).await.status(), 401);

    // A token with client_secret in the form.
    let r = gw
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", OTHER.0),
                ("client_secret", OTHER.1),
            ],
        )
        .await;
    let (status, body) = status_json(r).await;
    assert_eq!(status, 200, "{body}");
    secrets.push(body["access_token"].as_str().unwrap().to_string());

    // X-IBM-Client-Secret as a header and in the query, on a client route (which takes them
    // out) and on an anonymous one (which forwards everything), with a cookie and an
    // authorization code and an access token in the query.
    for q in [
        format!(
            "/client/x?client_id={}&X-IBM-Client-Secret={}",
            OTHER.0, OTHER.1
        ),
        "/client/x?x=1".to_string(),
    ] {
        let r = gw
            .http
            .get(gw.url(&q))
            .header("X-IBM-Client-Id", OTHER.0)
            .header("X-IBM-Client-Secret", OTHER.1)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{q}");
    }
    let r = gw
        .http
        .get(gw.url(&format!(
            "/public/x?X-IBM-Client-Secret={IBM_QUERY}&code={CODE}&access_token={QUERY_TOKEN}&keep=1"
        )))
        .header("X-IBM-Client-Secret", IBM_HEADER)
        .header("Cookie", format!("oe_session={COOKIE}; theme=dark"))
        .bearer_auth(BOGUS_BEARER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Malformed requests over raw TCP: a bad version (pingora prints the bytes escaped), a
    // bad header name (printed as a Debug string), and one cut off in the middle of the token.
    let bad_version =
        format!("GET /public/x HTTX/1.1\r\nHost: a\r\nAuthorization: Bearer {RAW_BEARER}\r\n\r\n");
    let bad_name = format!(
        "GET /public/x HTTP/1.1\r\nHost: a\r\nAuthorization: Basic {RAW_BASIC}\r\n\
         Cookie: oe_session=\"{COOKIE}\"\r\nBad\x01Name: y\r\n\r\n"
    );
    let head = "GET /public/x HTTP/1.1\r\nHost: a\r\nBad\x01Name: y\r\nX-Pad: ";
    let tail = "\r\nAuthorization: Bearer ";
    // pingora keeps 2048 bytes of a request it cannot parse: let them end in the token.
    let pad = "p".repeat(2048 - 5 - head.len() - tail.len());
    let truncated = format!("{head}{pad}{tail}{TRUNCATED}\r\n\r\n");
    for raw in [&bad_version, &bad_name, &truncated] {
        let (resp, _) = raw_exchange(gw.listen(), raw.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(raw_status(&resp), Some(400), "{raw:?}: {resp}");
    }

    // Pingora writes its lines as it goes; give the last ones a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = gw.output();
    // The test can fail: pingora printed the heads and the broken requests.
    for line in [
        "Sending header to upstream",
        "Fail to proxy",
        "Authorization",
    ] {
        assert!(out.contains(line), "no {line:?} at {level}:\n{out}");
    }
    for secret in &secrets {
        let leaked: Vec<&str> = out
            .lines()
            .filter(|l| l.contains(secret.as_str()))
            .collect();
        assert!(
            leaked.is_empty(),
            "{secret:?} in the log at {level}:\n{}",
            leaked.join("\n")
        );
    }
    // And they were there, hidden.
    assert!(out.contains("Bearer [redacted]"), "at {level}:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_debug_logs() {
    check("debug").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_trace_logs() {
    check("trace").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_with_pingora_at_trace() {
    check("trace,pingora=trace").await;
}
