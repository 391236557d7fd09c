//! The tower layer's cost in a real server: axum alone against axum behind `OAuthEdgeLayer`.
//!
//! Two servers in this process, each on its own thread with a single-threaded tokio runtime,
//! listening on 127.0.0.1, with the same handler (`"ok"`) on `/api/things`:
//!
//! - **axum**: the router alone;
//! - **axum + layer**: the same router behind the layer, `/api` requiring a bearer token
//!   (a `client_credentials` token, cache warm), identity headers set for the handler.
//!
//! A load thread (hyper's HTTP/1.1 client, `CONNS` keep-alive connections) sends the same
//! request to both, `Authorization: Bearer …` included, for `DURATION` seconds per run,
//! `ROUNDS` rounds, the order flipped every round (A B, B A, …) so that a slow minute weighs on
//! both. Per run it records requests/s and the server thread's CPU time per request (utime +
//! stime of that thread, from `/proc`): the CPU figure is the server's own cost, whether or not
//! the load thread is what limits the rate. It prints the medians and the ratios; the goal is
//! axum + layer ≥ 0.97× axum.
//!
//! `cargo bench --bench layer` (knobs: `ROUNDS`, default 5; `DURATION`, default 5 s; `CONNS`,
//! default 32). Every run is bounded by its duration.

#![allow(missing_docs)]

mod common;
use common::knob;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use axum::Router;
use bytes::Bytes;
use http::{header, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use oauth_edge::{Config, Edge, OAuthEdgeLayer};

const CONFIG: &str = r#"
[store]
kind = "memory"

[[clients]]
id = "bench"
secret = "bench-secret-bench-secret"
grants = ["client_credentials"]
scopes = ["read"]

[[routes]]
path = "/api"
require = "bearer"
"#;

/// A server thread: its address and the `/proc` file of its CPU time.
struct Server {
    addr: SocketAddr,
    stat: String,
}

impl Server {
    /// The thread's user + system CPU time so far.
    fn cpu(&self) -> Duration {
        let s = std::fs::read_to_string(&self.stat).expect("thread stat");
        // Fields after the command name (which is in parentheses): state is field 3, utime 14,
        // stime 15, in clock ticks (100 per second on Linux).
        let rest = &s[s.rfind(')').expect("stat") + 2..];
        let f: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|v| v.parse().expect("ticks"))
            .collect();
        Duration::from_millis((f[0] + f[1]) * 10)
    }
}

/// Starts a server thread with its own single-threaded runtime; `layered` puts the router
/// behind the layer. Returns once it listens.
fn start(layered: bool) -> Server {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(if layered { "axum+layer" } else { "axum" }.into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let router =
                    Router::new().route("/api/things", axum::routing::get(|| async { "ok" }));
                let app = if layered {
                    let edge = Edge::new(Config::from_toml(CONFIG).expect("config"))
                        .await
                        .expect("edge");
                    router.layer(OAuthEdgeLayer::new(edge))
                } else {
                    router
                };
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let me = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
                let stat = format!("/proc/{}/stat", me.display());
                tx.send(Server {
                    addr: listener.local_addr().unwrap(),
                    stat,
                })
                .unwrap();
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await
                .unwrap();
            });
        })
        .expect("server thread");
    rx.recv().expect("server started")
}

/// A `client_credentials` token from the layered server.
fn token(addr: SocketAddr) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(common::client_token(
        &format!("http://{addr}"),
        "bench",
        "bench-secret-bench-secret",
    ))
}

/// One run: `conns` keep-alive connections send `GET /api/things` as fast as the answers come
/// for `secs`; returns the requests answered 200 (any other answer fails the run).
fn load(addr: SocketAddr, token: &str, conns: u64, secs: u64) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let auth = format!("Bearer {token}");
    rt.block_on(async move {
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (done, stop, auth) = (done.clone(), stop.clone(), auth.clone());
            tasks.push(tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                stream.set_nodelay(true).unwrap();
                let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
                tokio::spawn(conn);
                while !stop.load(Ordering::Relaxed) {
                    let req = Request::get("/api/things")
                        .header(header::HOST, "127.0.0.1")
                        .header(header::AUTHORIZATION, &auth)
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let resp = send.send_request(req).await.expect("request");
                    assert_eq!(resp.status(), 200, "the server answered {}", resp.status());
                    resp.into_body().collect().await.expect("body");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.expect("load task");
        }
        done.load(Ordering::Relaxed)
    })
}

struct Run {
    rps: f64,
    cpu_us: f64,
}

fn measure(s: &Server, token: &str, conns: u64, secs: u64) -> Run {
    let cpu = s.cpu();
    let t = Instant::now();
    let n = load(s.addr, token, conns, secs);
    let elapsed = t.elapsed().as_secs_f64();
    let used = s.cpu() - cpu;
    Run {
        rps: n as f64 / elapsed,
        cpu_us: used.as_secs_f64() * 1e6 / n as f64,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let rounds = knob("ROUNDS", 5).max(1);
    let secs = knob("DURATION", 5).max(1);
    let conns = knob("CONNS", 32).max(1);
    let plain = start(false);
    let layered = start(true);
    let token = token(layered.addr);
    // Warm both: connections, the cache, the page faults.
    measure(&plain, &token, conns, 1);
    measure(&layered, &token, conns, 1);

    println!(
        "axum alone vs axum + OAuthEdgeLayer (bearer, warm cache): {rounds} rounds x {secs} s, \
         {conns} connections, one server thread each"
    );
    println!("| round | axum req/s | axum CPU µs/req | +layer req/s | +layer CPU µs/req | req/s ratio | CPU ratio |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (ra, rb) = if round % 2 == 1 {
            let ra = measure(&plain, &token, conns, secs);
            (ra, measure(&layered, &token, conns, secs))
        } else {
            let rb = measure(&layered, &token, conns, secs);
            (measure(&plain, &token, conns, secs), rb)
        };
        println!(
            "| {round} | {:.0} | {:.1} | {:.0} | {:.1} | {:.3} | {:.3} |",
            ra.rps,
            ra.cpu_us,
            rb.rps,
            rb.cpu_us,
            rb.rps / ra.rps,
            ra.cpu_us / rb.cpu_us
        );
        a.push(ra);
        b.push(rb);
    }
    let med = |v: &[Run], f: fn(&Run) -> f64| median(v.iter().map(f).collect());
    let (a_rps, b_rps) = (med(&a, |r| r.rps), med(&b, |r| r.rps));
    let (a_cpu, b_cpu) = (med(&a, |r| r.cpu_us), med(&b, |r| r.cpu_us));
    let paired_rps = median(a.iter().zip(&b).map(|(x, y)| y.rps / x.rps).collect());
    let paired_cpu = median(a.iter().zip(&b).map(|(x, y)| x.cpu_us / y.cpu_us).collect());
    println!(
        "| median | {a_rps:.0} | {a_cpu:.1} | {b_rps:.0} | {b_cpu:.1} | {:.3} (paired {paired_rps:.3}) | {:.3} (paired {paired_cpu:.3}) |",
        b_rps / a_rps,
        a_cpu / b_cpu
    );
    println!(
        "axum + layer / axum: {:.3} by req/s, {:.3} by server CPU per request (goal >= 0.97)",
        b_rps / a_rps,
        a_cpu / b_cpu
    );
}
