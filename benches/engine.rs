//! Criterion benches of the engine's hot paths.
//!
//! - `admission/*`: admitting a passthrough request whose bearer token is in the cache
//!   (budget: ≤ 1 µs, no store call), and refusing a forged token.
//! - `sqlite/*`: `client_credentials` issuance and RFC 7009 revocation through the real
//!   endpoints on an SQLite file with `synchronous = full`, one at a time and 32 at once.
//!
//! Run: `cargo bench --bench engine`.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http::request::Parts;
use oauth_edge::{Admission, Config, Edge, Target};

const CLIENTS: &str = r#"
[[clients]]
id = "svc"
secret_hash = "SECRET_HASH"
grants = ["client_credentials"]
scopes = ["read", "write"]

[[routes]]
path = "/api"
require = "bearer"
scopes = ["read"]
"#;

fn config(store: &str) -> (Config, String) {
    let (secret, hash) = oauth_edge::clients::SecretHash::generate();
    let text = format!(
        "{store}\n{}",
        CLIENTS.replace("SECRET_HASH", &hash.encode().unwrap())
    );
    (
        Config::from_toml(&text).unwrap(),
        secret.expose().to_string(),
    )
}

fn head(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

/// Polls a future once: the warm-cache path must finish without waiting on anything.
fn poll_once<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the warm-cache path suspended"),
    }
}

struct Issuer {
    edge: Edge,
    token_head: Parts,
    revoke_head: Parts,
}

impl Issuer {
    fn new(edge: Edge, secret: &str) -> Self {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("svc:{secret}"))
        );
        let form = [
            ("authorization", basic.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        Issuer {
            token_head: head("POST", "/oauth2/token", &form),
            revoke_head: head("POST", "/oauth2/revoke", &form),
            edge,
        }
    }

    async fn issue(&self) -> String {
        let Target::Endpoint(ep) = self.edge.classify(&self.token_head) else {
            unreachable!()
        };
        let r = self
            .edge
            .serve(ep, &self.token_head, b"grant_type=client_credentials", None)
            .await;
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    async fn revoke(&self, token: &str) {
        let Target::Endpoint(ep) = self.edge.classify(&self.revoke_head) else {
            unreachable!()
        };
        let body = Bytes::from(format!("token={token}"));
        let r = self.edge.serve(ep, &self.revoke_head, &body, None).await;
        assert_eq!(r.status(), 200);
    }
}

fn admission(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A TTL longer than the whole run, so the warm entry stays warm.
    let (cfg, secret) = config("[cache]\nttl = \"1h\"\n[store]\nkind = \"memory\"");
    let edge = rt.block_on(Edge::new(cfg)).unwrap();
    let issuer = Issuer::new(edge.clone(), &secret);
    let token = rt.block_on(issuer.issue());
    let auth = format!("Bearer {token}");
    let req = head(
        "GET",
        "/api/things",
        &[("authorization", &auth), ("host", "api.test")],
    );
    let Target::Passthrough(route) = edge.classify(&req) else {
        unreachable!()
    };
    // Warm the cache, then make sure the path really is warm.
    let _guard = rt.enter();
    assert!(matches!(
        rt.block_on(edge.admit(route, &req, None)),
        Admission::Allow(Some(_))
    ));
    let misses = edge
        .cache()
        .stats
        .misses
        .load(std::sync::atomic::Ordering::Relaxed);

    let mut g = c.benchmark_group("admission");
    g.bench_function("warm_bearer", |b| {
        b.iter(|| {
            let Target::Passthrough(route) = edge.classify(black_box(&req)) else {
                unreachable!()
            };
            black_box(poll_once(edge.admit(route, &req, None)))
        })
    });
    // What the adapters do first on every request: the canonical-form check (a canonical
    // head, the usual case, needs no change), then the same admission as above.
    g.bench_function("canonical_check", |b| {
        b.iter(|| black_box(edge.canonical(black_box(&req)).is_ok()))
    });
    g.bench_function("canonical_then_warm_bearer", |b| {
        b.iter(|| {
            let Ok(_) = edge.canonical(black_box(&req)) else {
                unreachable!()
            };
            let Target::Passthrough(route) = edge.classify(&req) else {
                unreachable!()
            };
            black_box(poll_once(edge.admit(route, &req, None)))
        })
    });
    let dotted = head(
        "GET",
        "/api/./v1//things/../items?q=1",
        &[("host", "API.test.")],
    );
    g.bench_function("canonical_rewrite", |b| {
        b.iter(|| {
            black_box(
                edge.canonical(black_box(&dotted))
                    .ok()
                    .map(|c| c.uri.is_some()),
            )
        })
    });
    g.bench_function("clone_head_baseline", |b| b.iter(|| black_box(req.clone())));
    g.bench_function("warm_bearer_and_forward", |b| {
        b.iter(|| {
            let mut h = req.clone();
            let Target::Passthrough(route) = edge.classify(&h) else {
                unreachable!()
            };
            if let Admission::Allow(id) = poll_once(edge.admit(route, &h, None)) {
                edge.forward(route, id.as_ref(), &mut h);
            }
            black_box(h)
        })
    });
    g.bench_function("token_status_warm", |b| {
        b.iter(|| black_box(poll_once(edge.token_status(black_box(&token)))))
    });
    g.bench_function("verify_mac_and_hash", |b| {
        b.iter(|| black_box(edge.codec().verify(black_box(&token))))
    });
    let mut forged = token.clone().into_bytes();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let forged = format!("Bearer {}", String::from_utf8(forged).unwrap());
    let forged_req = head("GET", "/api/things", &[("authorization", &forged)]);
    g.bench_function("forged_bearer", |b| {
        b.iter(|| black_box(poll_once(edge.admit(route, black_box(&forged_req), None))))
    });
    g.finish();
    assert_eq!(
        edge.cache()
            .stats
            .misses
            .load(std::sync::atomic::Ordering::Relaxed),
        misses,
        "the benchmarked paths went to the store"
    );
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = format!(
        "[store]\nkind = \"sqlite\"\npath = \"{}\"\nsynchronous = \"full\"",
        dir.path().join("bench.db").display()
    );
    store_group(c, "sqlite", &store);
}

/// The same on PostgreSQL (`OAUTH_EDGE_TEST_POSTGRES`, default the local `test` database),
/// in a schema of its own, dropped afterwards.
#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion) {
    let url = std::env::var("OAUTH_EDGE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("bench_{}", std::process::id());
    let store = format!("[store]\nkind = \"postgres\"\nurl = \"{url}\"\nschema = \"{schema}\"");
    store_group(c, "postgres", &store);
    let _ = std::process::Command::new("psql")
        .args([
            &url,
            "-q",
            "-c",
            &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        ])
        .output();
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &mut Criterion) {}

/// Issuance and revocation throughput on one store, one at a time and 32 at once.
fn store_group(c: &mut Criterion, name: &str, store: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (cfg, secret) = config(store);
    let edge = rt.block_on(Edge::new(cfg)).unwrap();
    let issuer = std::sync::Arc::new(Issuer::new(edge, &secret));

    let mut g = c.benchmark_group(name);
    g.sample_size(20).measurement_time(Duration::from_secs(8));
    for concurrency in [1usize, 32] {
        g.throughput(Throughput::Elements(concurrency as u64));
        g.bench_with_input(
            BenchmarkId::new("client_credentials_issue", concurrency),
            &concurrency,
            |b, &n| {
                b.to_async(&rt).iter(|| {
                    let issuer = issuer.clone();
                    async move {
                        let mut set = tokio::task::JoinSet::new();
                        for _ in 0..n {
                            let issuer = issuer.clone();
                            set.spawn(async move { issuer.issue().await });
                        }
                        while let Some(t) = set.join_next().await {
                            black_box(t.unwrap());
                        }
                    }
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("revoke", concurrency),
            &concurrency,
            |b, &n| {
                b.to_async(&rt).iter_custom(|iters| {
                    let issuer = issuer.clone();
                    async move {
                        let mut tokens = Vec::new();
                        for _ in 0..iters as usize * n {
                            tokens.push(issuer.issue().await);
                        }
                        let start = Instant::now();
                        for chunk in tokens.chunks(n) {
                            let mut set = tokio::task::JoinSet::new();
                            for t in chunk {
                                let (issuer, t) = (issuer.clone(), t.clone());
                                set.spawn(async move { issuer.revoke(&t).await });
                            }
                            while let Some(r) = set.join_next().await {
                                r.unwrap();
                            }
                        }
                        start.elapsed()
                    }
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, admission, sqlite, postgres);
criterion_main!(benches);
