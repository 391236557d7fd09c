//! Revocation propagation between two instances on one PostgreSQL database: two edges in this
//! process, each with its own `PostgresStore` (its own pool and its own `LISTEN` connection),
//! as two gateways would have. For each of `N` tokens: issue on A, make B cache it as valid,
//! revoke on A, and time until B refuses it. Prints p50, p99 and max.
//!
//! `cargo bench --features postgres --bench propagation` (PostgreSQL from
//! `OAUTH_EDGE_TEST_POSTGRES`, default the local `test` database; a schema of its own).

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::request::Parts;
use oauth_edge::{Config, Edge, Target};

const N: usize = 1000;

fn head(uri: &str, secret: &str) -> Parts {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("svc:{secret}"))
    );
    http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("authorization", basic)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

async fn serve(edge: &Edge, h: &Parts, body: &str) -> http::Response<Bytes> {
    let Target::Endpoint(ep) = edge.classify(h) else {
        unreachable!()
    };
    edge.serve(ep, h, body.as_bytes(), None).await
}

fn main() {
    let url = std::env::var("OAUTH_EDGE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("propagation_{}", std::process::id());
    let secret = "bench-secret-0123456789";
    let toml = format!(
        "[store]\nkind = \"postgres\"\nurl = \"{url}\"\nschema = \"{schema}\"\n\n[cache]\nttl = \"60s\"\n\n[[clients]]\nid = \"svc\"\nsecret = \"{secret}\"\nscopes = [\"read\"]\n"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut delays: Vec<Duration> = rt.block_on(async {
        let a = Edge::new(Config::from_toml(&toml).unwrap()).await.unwrap();
        let b = Edge::new(Config::from_toml(&toml).unwrap()).await.unwrap();
        let token_head = head("/oauth2/token", secret);
        let revoke_head = head("/oauth2/revoke", secret);
        let mut delays = Vec::with_capacity(N);
        for _ in 0..N {
            let r = serve(&a, &token_head, "grant_type=client_credentials").await;
            let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
            let token = v["access_token"].as_str().unwrap().to_string();
            assert!(b.token_status(&token).await.unwrap().is_some());
            let start = Instant::now();
            let r = serve(&a, &revoke_head, &format!("token={token}")).await;
            assert_eq!(r.status(), 200);
            loop {
                if b.token_status(&token).await.unwrap().is_none() {
                    break;
                }
                assert!(start.elapsed() < Duration::from_secs(5), "never propagated");
                tokio::task::yield_now().await;
            }
            delays.push(start.elapsed());
        }
        delays
    });
    let _ = std::process::Command::new("psql")
        .args([
            &url,
            "-q",
            "-c",
            &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        ])
        .output();
    delays.sort();
    let at = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)];
    println!(
        "revocation propagation A -> B over {N} revocations (from the revoke request's start, \
         so it includes the revocation's own commit): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        delays.last().unwrap().as_secs_f64() * 1e3
    );
    let p99 = at(0.99);
    println!(
        "budget p99 <= 50 ms: {}",
        if p99 <= Duration::from_millis(50) {
            "met"
        } else {
            "MISSED"
        }
    );
}
