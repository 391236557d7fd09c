//! A fast static upstream for the load benchmark (`benches/load/run.sh`).
//!
//! ```text
//! cargo run --release -p oauth-edge-gateway --example load_upstream -- 127.0.0.1:18081 [threads]
//! ```
//!
//! Answers every request, on any path and method, `200` with a small fixed body over HTTP/1.1
//! keep-alive. It does as little as a server can, so the benchmark measures the proxy in front.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};

const BODY: &[u8] = b"hello from the load upstream\n";

async fn answer(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    Ok(resp)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:18081".into())
        .parse()?;
    let threads: usize = match args.next() {
        Some(t) => t.parse()?,
        None => 1,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        eprintln!("load_upstream: listening on {addr} with {threads} thread(s)");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, hyper::service::service_fn(answer))
                    .await;
            });
        }
    })
}
