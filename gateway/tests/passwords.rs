//! The password grant against guessing and flooding: failures are throttled per source
//! address and per username (as on the sign-in page), and argon2 checks beyond what the
//! gate admits are turned away with 503 `temporarily_unavailable` while passthrough
//! traffic keeps being served.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::{header, standard, status_json, Gateway, ALICE, SVC};
use serde_json::Value;

const HERE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const ELSEWHERE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const THIRD: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// A password grant to `token_url` from `from` (a loopback address the client binds): the
/// status, the JSON body and `Retry-After`.
async fn password(
    token_url: String,
    from: IpAddr,
    user: &str,
    pw: &str,
) -> (u16, Value, Option<String>) {
    let http = reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap();
    let r = http
        .post(token_url)
        .basic_auth(SVC.0, Some(SVC.1))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", pw),
        ])
        .send()
        .await
        .unwrap();
    let retry = header(&r, "retry-after").map(str::to_string);
    let (status, body) = status_json(r).await;
    (status, body, retry)
}

fn token_url(gw: &Gateway) -> String {
    gw.url("/oauth2/token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_password_grants_are_throttled_per_address_and_per_username() {
    let (_echo, gw) = standard().await;
    // The default limit: 10 failures a minute.
    for i in 0..10 {
        let (status, body, _) =
            password(token_url(&gw), HERE, ALICE.0, &format!("guess-{i}")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{i}: {body}"
        );
    }
    // From this address: refused unchecked, even with the right password, and for others.
    for user in [ALICE, ("nobody", "x")] {
        let (status, body, retry) = password(token_url(&gw), HERE, user.0, user.1).await;
        assert_eq!(retry.as_deref(), Some("60"));
        assert_eq!(
            (status, body["error"].as_str()),
            (429, Some("invalid_grant")),
            "{body}"
        );
    }
    // For this username: refused from another address too.
    let (status, body, _) = password(token_url(&gw), ELSEWHERE, ALICE.0, ALICE.1).await;
    assert_eq!(status, 429, "{body}");
    // Another username from another address is checked as usual.
    let (status, body, _) = password(token_url(&gw), ELSEWHERE, "nobody", "x").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // The failures show in the metrics.
    let m = gw.metrics().await;
    assert!(
        m.contains("oauth_edge_auth_failures_total{reason=\"bad_user_credentials\"} 11"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_guesses_is_turned_away_and_passthrough_goes_on() {
    let (_echo, gw) = standard().await;
    let token = gw.client_token(SVC, Some("read")).await;
    assert_eq!(gw.get_bearer("/api/x", &token).await.status(), 200);
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let from = if i % 2 == 0 { ELSEWHERE } else { THIRD };
            let url = token_url(&gw);
            tokio::spawn(async move { password(url, from, &format!("user-{i}"), "guess").await })
        })
        .collect();
    // Passthrough with a cached token is served while the guesses are in flight.
    for _ in 0..5 {
        assert_eq!(gw.get_bearer("/api/x", &token).await.status(), 200);
    }
    let mut busy = 0;
    for g in guesses {
        let (status, body, retry) = g.await.unwrap();
        match status {
            400 | 429 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            503 => {
                assert_eq!(body["error"], "temporarily_unavailable", "{body}");
                assert_eq!(retry.as_deref(), Some("1"), "{body}");
                busy += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(busy > 0, "no guess was turned away");
    let m = gw.metrics().await;
    assert!(
        m.contains(&format!(
            "oauth_edge_password_checks_total{{outcome=\"turned_away\"}} {busy}"
        )),
        "{m}"
    );
}
