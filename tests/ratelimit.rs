//! Per-client quotas on passthrough requests (NPR One's rate limits): `X-RateLimit-*` on every
//! answer to a limited client, 429 with `Retry-After` over the quota, nothing for others.

mod common;

use common::{basic, TestServer};

const CONFIG: &str = r#"
[store]
kind = "memory"

[[clients]]
id = "prototype"
secret = "prototype-secret"
scopes = ["read"]
rate_limit = { requests = 3, per = "1h" }

[[clients]]
id = "trusted"
secret = "trusted-secret"
scopes = ["read"]

[[routes]]
path = "/api"
require = "bearer"

[[routes]]
path = "/client"
require = "client"
"#;

fn rate(r: &reqwest::Response) -> Option<(u64, u64, u64)> {
    let h = |n: &str| {
        r.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().parse::<u64>().unwrap())
    };
    Some((
        h("x-ratelimit-limit")?,
        h("x-ratelimit-remaining")?,
        h("x-ratelimit-reset")?,
    ))
}

#[tokio::test]
async fn a_limited_client_counts_down_then_gets_429() {
    let s = TestServer::start(CONFIG).await;
    let token = s.client_token("prototype", "prototype-secret", None).await;
    let token = token["access_token"].as_str().unwrap();
    for remaining in [2, 1] {
        let r = s.get_bearer("/api/x", token).await;
        assert_eq!(r.status(), 200);
        let (limit, left, reset) = rate(&r).expect("the quota headers");
        assert_eq!((limit, left), (3, remaining));
        assert!((3590..=3600).contains(&reset), "{reset}");
    }
    // Client authentication on a client route counts against the same quota.
    let r = s
        .http
        .get(s.url("/client/x"))
        .header("authorization", basic("prototype", "prototype-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(rate(&r).map(|r| r.1), Some(0));

    let r = s.get_bearer("/api/x", token).await;
    assert_eq!(r.status(), 429);
    let (limit, left, reset) = rate(&r).expect("the quota headers on the 429");
    assert_eq!((limit, left), (3, 0));
    assert_eq!(
        r.headers()["retry-after"].to_str().unwrap(),
        reset.to_string()
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    // Refused requests do not count, and the token endpoint is not rate-limited.
    assert_eq!(s.get_bearer("/api/x", token).await.status(), 429);
    s.client_token("prototype", "prototype-secret", None).await;

    // Another client is not limited and gets no headers.
    let other = s.client_token("trusted", "trusted-secret", None).await;
    for _ in 0..5 {
        let r = s
            .get_bearer("/api/x", other["access_token"].as_str().unwrap())
            .await;
        assert_eq!(r.status(), 200);
        assert!(rate(&r).is_none());
    }
}

#[tokio::test]
async fn a_quota_must_allow_something() {
    let bad = CONFIG.replace("requests = 3", "requests = 0");
    let e = oauth_edge::Config::from_toml(&bad).unwrap_err();
    assert!(e.to_string().contains("rate_limit"), "{e}");
}
