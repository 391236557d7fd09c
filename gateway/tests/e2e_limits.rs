//! End-to-end tests of the real `oauth-edge` binary, continued: message framing, header and
//! body limits, the body deadline, upstream failures, load balancing, and what the logs hold.

mod common;

use std::time::{Duration, Instant};

use common::*;

// ---------------------------------------------------------------------------------------
// Framing and limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_is_refused_before_the_upstream() {
    let (echo, gw) = standard().await;
    // The gateway's own answer for the first three; pingora refuses differing lengths while
    // parsing, with its own bare 400.
    let cases: [(&str, &[u8]); 4] = [
        (
            "content-length and chunked",
            b"POST /public/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "chunked and content-length",
            b"POST /public/x HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "two equal content-lengths",
            b"POST /public/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        ),
        (
            "two different content-lengths",
            b"POST /public/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
    ];
    for (i, (what, raw)) in cases.into_iter().enumerate() {
        let (resp, closed) = raw_exchange(gw.listen(), raw, Duration::from_secs(5)).await;
        assert_eq!(raw_status(&resp), Some(400), "{what}: {resp}");
        assert!(closed, "{what}: the connection stays open");
        assert!(
            resp.to_ascii_lowercase()
                .contains("\r\nconnection: close\r\n"),
            "{what}: {resp}"
        );
        if i < 3 {
            assert!(
                resp.ends_with(
                    r#"{"error":"invalid_request","error_description":"ambiguous message framing"}"#
                ),
                "{what}: {resp}"
            );
        }
        assert_eq!(echo.hits(), 0, "{what} reached the upstream");
    }
    // The same on a bearer route with a good token, and on an endpoint.
    let token = gw.client_token(SVC, None).await;
    let raw = format!(
        "POST /api/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {token}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    let (resp, _) = raw_exchange(gw.listen(), raw.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(raw_status(&resp), Some(400), "{resp}");
    let raw = "POST /oauth2/token HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let (resp, _) = raw_exchange(gw.listen(), raw.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(raw_status(&resp), Some(400), "{resp}");
    assert_eq!(echo.hits(), 0);

    // A well-framed request on the same route goes through.
    let raw = b"POST /public/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let (resp, _) = raw_exchange(gw.listen(), raw, Duration::from_secs(5)).await;
    assert_eq!(raw_status(&resp), Some(200), "{resp}");
    assert_eq!(echo.hits(), 1);
    assert_eq!(echo.last().body, "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_70_kib_header_is_431() {
    let (echo, gw) = standard().await;
    let r = gw
        .http
        .get(gw.url("/public/x"))
        .header("x-big", "a".repeat(70 * 1024))
        .send()
        .await
        .unwrap();
    assert_error(r, 431, "invalid_request").await;
    let r = gw
        .http
        .post(gw.url("/oauth2/token"))
        .header("x-big", "a".repeat(70 * 1024))
        .form(&[("grant_type", "client_credentials")])
        .basic_auth(SVC.0, Some(SVC.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    assert_eq!(echo.hits(), 0);
    // Under the limit is fine.
    let r = gw
        .http
        .get(gw.url("/public/x"))
        .header("x-big", "a".repeat(30 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_body_is_cut_off_at_the_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let echo = Echo::start("echo").await;
    let s = Setup::new();
    let config = format!(
        "{}\n[gateway.limits]\nbody_timeout = \"2s\"\n",
        s.standard(&echo)
    );
    let gw = s.launch(&config).await;

    let stream = tokio::net::TcpStream::connect(gw.listen()).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(b"POST /oauth2/token HTTP/1.1\r\nHost: gw\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 40\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let dribble = tokio::spawn(async move {
        for _ in 0..15 {
            if wr.write_all(b"g").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    loop {
        match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
            Err(_) => panic!("no answer and no close after 8 s"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let elapsed = started.elapsed();
    dribble.abort();
    let resp = String::from_utf8_lossy(&out);
    assert!(
        elapsed < Duration::from_millis(4500),
        "cut off only after {elapsed:?}: {resp}"
    );
    assert!(
        elapsed >= Duration::from_millis(1500),
        "cut off too early ({elapsed:?}): {resp}"
    );
    // An answer, if any, is 408 in the endpoint's dialect.
    if !out.is_empty() {
        assert_eq!(raw_status(&resp), Some(408), "{resp}");
        assert!(resp.contains(r#""error":"invalid_request""#), "{resp}");
    }
    assert_eq!(echo.hits(), 0);
}

// ---------------------------------------------------------------------------------------
// Upstreams

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_is_502_and_silent_is_504() {
    let echo = Echo::start("echo").await;
    let silent = Silent::start().await;
    let dead = free_addr();
    let s = Setup::new();
    let config = format!(
        "{}{CLIENTS}{ROUTES}
[[routes]]
path = \"/dead\"
require = \"none\"
upstream = \"dead\"

[[routes]]
path = \"/hang\"
require = \"none\"
upstream = \"silent\"
{}{}{}{}",
        s.head(),
        s.gateway(""),
        upstream("echo", &[echo.addr], ""),
        upstream("dead", &[dead], "connect_timeout = \"1s\""),
        upstream("silent", &[silent.addr], "read_timeout = \"1s\""),
    );
    let gw = s.launch(&config).await;

    let r = gw.http.get(gw.url("/dead/x")).send().await.unwrap();
    // The connection is not kept after a failure, and the client is told so.
    assert_eq!(header(&r, "connection"), Some("close"));
    let v = assert_error(r, 502, "bad_gateway").await;
    assert_eq!(v["error_description"], "the upstream is unavailable");

    let started = Instant::now();
    let r = gw.http.get(gw.url("/hang/x")).send().await.unwrap();
    assert_eq!(header(&r, "connection"), Some("close"));
    let v = assert_error(r, 504, "gateway_timeout").await;
    assert_eq!(
        v["error_description"],
        "the upstream did not answer in time"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // The gateway is unharmed.
    assert_eq!(
        gw.http
            .get(gw.url("/public/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_upstream_addresses_take_turns() {
    let a = Echo::start("a").await;
    let b = Echo::start("b").await;
    let s = Setup::new();
    let config = format!(
        "{}{CLIENTS}{ROUTES}{}{}",
        s.head(),
        s.gateway(""),
        upstream("echo", &[a.addr, b.addr], "")
    );
    let gw = s.launch(&config).await;
    let mut servers = Vec::new();
    for _ in 0..6 {
        let v = echoed(gw.http.get(gw.url("/public/x")).send().await.unwrap()).await;
        servers.push(v["server"].as_str().unwrap().to_string());
    }
    for w in servers.windows(2) {
        assert_ne!(w[0], w[1], "not alternating: {servers:?}");
    }
    assert_eq!((a.hits(), b.hits()), (3, 3));
}

// ---------------------------------------------------------------------------------------
// Logs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs() {
    let echo = Echo::start("echo").await;
    let dead = free_addr();
    let s = Setup::new();
    let config = format!(
        "{}{CLIENTS}{ROUTES}
[[routes]]
path = \"/dead\"
require = \"client\"
upstream = \"dead\"
{}{}{}",
        s.head(),
        s.gateway(""),
        upstream("echo", &[echo.addr], ""),
        upstream("dead", &[dead], "connect_timeout = \"1s\""),
    );
    let gw = s.launch(&config).await;
    let query_secret = "q-secret-value-7f3a9c";

    let mut secrets: Vec<String> = vec![
        SVC.1.into(),
        OTHER.1.into(),
        ALICE.1.into(),
        query_secret.into(),
        "wrong-secret-5e1d".into(),
    ];
    let t = gw
        .token(
            SVC,
            &[
                ("grant_type", "password"),
                ("username", ALICE.0),
                ("password", ALICE.1),
            ],
        )
        .await;
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let t2 = gw
        .token(
            SVC,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    let access2 = t2["access_token"].as_str().unwrap().to_string();
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_string();
    // A replay, which revokes the family and is logged.
    let r = gw
        .post_form(
            "/oauth2/token",
            Some(SVC),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(r.status(), 400);
    let cc = gw.client_token(OTHER, None).await;
    assert_eq!(gw.get_bearer("/api/x", &cc).await.status(), 200);
    assert_eq!(gw.get_bearer("/api/x", &access2).await.status(), 401);
    let r = gw
        .post_form("/oauth2/introspect", Some(RS), &[("token", &cc)])
        .await;
    assert_eq!(r.status(), 200);
    let r = gw
        .post_form("/oauth2/revoke", Some(OTHER), &[("token", &cc)])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(gw.get_bearer("/api/x", &cc).await.status(), 401);
    // Wrong secrets, in Basic, in the form and in the query.
    let r = gw
        .post_form(
            "/oauth2/token",
            Some(("svc", "wrong-secret-5e1d")),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status(), 401);
    let r = gw
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "svc"),
                ("client_secret", "wrong-secret-5e1d"),
            ],
        )
        .await;
    assert_eq!(r.status(), 401);
    // The query secret on a client route, to a good upstream and to a dead one (an
    // upstream failure is logged with the request).
    for path in ["/client/x", "/dead/x"] {
        let r = gw
            .http
            .get(gw.url(&format!(
                "{path}?client_id=svc&client_secret={}&keep=1",
                SVC.1
            )))
            .send()
            .await
            .unwrap();
        assert!(r.status() == 200 || r.status() == 502, "{}", r.status());
        let r = gw
            .http
            .get(gw.url(&format!(
                "{path}?client_id=svc&client_secret={query_secret}"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = gw
            .http
            .get(gw.url(path))
            .header("X-IBM-Client-Id", "other")
            .header("X-IBM-Client-Secret", OTHER.1)
            .send()
            .await
            .unwrap();
        assert!(r.status() == 200 || r.status() == 502, "{}", r.status());
    }
    // A malformed request carrying a token.
    let raw = format!(
        "GET /api/x HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {access}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
    );
    raw_exchange(gw.listen(), raw.as_bytes(), Duration::from_secs(3)).await;

    secrets.extend([access, refresh, access2, refresh2, cc]);
    // Let the access log of the last requests land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = gw.output();
    assert!(log.contains("access"), "no access log at all?\n{log}");
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "{secret} appears in the gateway output:\n{log}"
        );
    }
}
