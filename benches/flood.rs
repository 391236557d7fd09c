//! Passthrough latency under a password-guessing flood: what the argon2 gate
//! (`src/passwords.rs`) is for.
//!
//! One real server on 127.0.0.1 (axum behind `OAuthEdgeLayer`, memory store, a tokio runtime
//! with one worker per core), driven over HTTP by reqwest from the same process:
//!
//! 1. **quiet**: `PROBES` sequential bearer-token passthrough requests (cache warm), each timed;
//! 2. **cheap flood** (the control): `FLOODERS` concurrent tasks send requests with a forged
//!    bearer token as fast as answers come (401 at once), while `PROBES` passthrough requests
//!    are timed again: what any flood of that many requests costs;
//! 3. **password flood**: the same tasks send wrong passwords to the password grant instead.
//!
//! The gate runs argon2 on half the cores, so the password flood may cost the passthrough up
//! to about twice what the cheap flood does, and no more.
//!
//! The sign-in throttle is set out of reach (`max_failed_sign_ins_per_minute` very high), as an
//! attacker spread over many addresses would have it, so every guess reaches the gate. Prints
//! the passthrough p50/p99/max of both phases and their ratios, what the guesses got (401,
//! 503 with `Retry-After`, other), how many argon2 checks ran and were turned away, and the
//! process's peak RSS. Bounded in count and in time (`FLOOD_SECS` at most).
//!
//! `cargo bench --bench flood` (knobs: `FLOODERS`, default 40; `PROBES`, default 1000;
//! `FLOOD_SECS`, default 20).

#![allow(missing_docs)]

mod common;
use common::knob;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use oauth_edge::{Config, Edge, OAuthEdgeLayer};

const CONFIG: &str = r#"
[store]
kind = "memory"

[authorization]
max_failed_sign_ins_per_minute = 4000000000

[[clients]]
id = "svc"
secret = "svc-secret"
grants = ["client_credentials", "password"]
scopes = ["read"]

[[users]]
username = "alice"
password = "wonderland"

[[routes]]
path = "/api"
require = "bearer"
"#;

fn kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Clone, Copy)]
struct Summary {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn summary(mut v: Vec<Duration>) -> Summary {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    Summary {
        p50: at(0.5),
        p99: at(0.99),
        max: *v.last().unwrap(),
    }
}

async fn probe(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    n: u64,
    until: Instant,
) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        if Instant::now() > until {
            break;
        }
        let t = Instant::now();
        let r = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("passthrough");
        assert_eq!(r.status(), 200, "passthrough answered {}", r.status());
        r.bytes().await.expect("body");
        out.push(t.elapsed());
    }
    out
}

#[derive(Clone, Copy)]
enum Flood {
    /// Requests with a forged bearer token: refused at once (401), no password checked. The
    /// control: what any flood of that many requests costs the passthrough.
    Cheap,
    /// Wrong passwords at the password grant: each one an argon2 check, or a 503.
    Passwords,
}

impl Flood {
    fn name(self) -> &'static str {
        match self {
            Flood::Cheap => "cheap flood (forged bearer, 401)",
            Flood::Passwords => "password flood",
        }
    }
}

/// Runs `flooders` tasks of `kind` while `probes` passthrough requests are timed; returns
/// the probes done, their summary, and what the flood's requests got.
#[allow(clippy::too_many_arguments)]
async fn flood(
    kind: Flood,
    flooders: u64,
    base: &str,
    http: &reqwest::Client,
    api: &str,
    token: &str,
    probes: u64,
    secs: u64,
) -> (usize, Summary, String) {
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<[AtomicU64; 4]> = Arc::new(Default::default());
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for i in 0..flooders {
        let (http, base, stop, counts) = (
            reqwest::Client::new(),
            base.to_string(),
            stop.clone(),
            counts.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < until && n < 100_000 {
                n += 1;
                let guess = format!("guess-{i}-{n}");
                let req = match kind {
                    Flood::Cheap => http.get(format!("{base}/api/things")).bearer_auth(
                        "oea_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                    ),
                    Flood::Passwords => http
                        .post(format!("{base}/oauth2/token"))
                        .basic_auth("svc", Some("svc-secret"))
                        .form(&[
                            ("grant_type", "password"),
                            ("username", "alice"),
                            ("password", guess.as_str()),
                        ]),
                };
                let slot = match req.send().await {
                    Ok(r) => {
                        let slot = match r.status().as_u16() {
                            400 | 401 => 0,
                            503 if r.headers().contains_key("retry-after") => 1,
                            _ => 2,
                        };
                        let _ = r.bytes().await;
                        slot
                    }
                    Err(_) => 3,
                };
                counts[slot].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Let the flood fill the gate first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let times = probe(http, api, token, probes, until).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let c = |i: usize| counts[i].load(Ordering::Relaxed);
    let answers = format!(
        "{} refused, {} 503 + Retry-After, {} other, {} failed",
        c(0),
        c(1),
        c(2),
        c(3)
    );
    (times.len(), summary(times), answers)
}

fn main() {
    let flooders = knob("FLOODERS", 40);
    let probes = knob("PROBES", 1000);
    let flood_secs = knob("FLOOD_SECS", 20);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let edge = Edge::new(Config::from_toml(CONFIG).expect("config"))
            .await
            .expect("edge");
        let app = Router::new()
            .fallback(|| async { "ok" })
            .layer(OAuthEdgeLayer::new(edge));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let base = format!("http://{addr}");
        let http = reqwest::Client::new();
        let token = common::client_token(&base, "svc", "svc-secret").await;
        let api = format!("{base}/api/things");
        // Warm: the connection pool, the cache, the page faults.
        probe(
            &http,
            &api,
            &token,
            200,
            Instant::now() + Duration::from_secs(10),
        )
        .await;

        let rss_quiet = kib("VmRSS:");
        let quiet = probe(
            &http,
            &api,
            &token,
            probes,
            Instant::now() + Duration::from_secs(60),
        )
        .await;
        let quiet_n = quiet.len();
        let quiet = summary(quiet);

        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("passthrough under floods ({flooders} flooders, {cores} workers, client and server in one process)");
        println!("| phase | probes | p50 ms | p99 ms | max ms | flood answers |");
        println!("|---|---:|---:|---:|---:|---|");
        println!(
            "| quiet | {quiet_n} | {:.3} | {:.3} | {:.3} | |",
            ms(quiet.p50),
            ms(quiet.p99),
            ms(quiet.max)
        );
        let mut results = Vec::new();
        for kind in [Flood::Cheap, Flood::Passwords] {
            let checks_before = oauth_edge::passwords::checks();
            let (n, s, answers) =
                flood(kind, flooders, &base, &http, &api, &token, probes, flood_secs).await;
            let checks_after = oauth_edge::passwords::checks();
            println!(
                "| {} | {n} | {:.3} | {:.3} | {:.3} | {answers}; argon2 {} run, {} turned away; peak RSS so far {} MiB |",
                kind.name(),
                ms(s.p50),
                ms(s.p99),
                ms(s.max),
                checks_after.0 - checks_before.0,
                checks_after.1 - checks_before.1,
                kib("VmHWM:") / 1024
            );
            results.push(s);
        }
        let (cheap, pw) = (results[0], results[1]);
        println!(
            "p50 ratios: password flood / quiet {:.2}x, password flood / cheap flood {:.2}x",
            ms(pw.p50) / ms(quiet.p50),
            ms(pw.p50) / ms(cheap.p50)
        );
        println!(
            "p99 ratios: password flood / quiet {:.2}x, password flood / cheap flood {:.2}x",
            ms(pw.p99) / ms(quiet.p99),
            ms(pw.p99) / ms(cheap.p99)
        );
        println!(
            "RSS: {} MiB before the floods, peak {} MiB",
            rss_quiet / 1024,
            kib("VmHWM:") / 1024
        );
    });
}
