//! Shared harness for the end-to-end tests of the real `oauth-edge` binary: an echo upstream,
//! a config written into a temporary directory with its listeners on port 0, and a guard that
//! owns the gateway process (killed and reaped on drop; its output captured to files, printed
//! when a test fails). The gateway writes the addresses it got to `--address-file`, which the
//! guard reads back, so no port is chosen before the gateway binds it.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};
use tempfile::TempDir;

/// The gateway binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_oauth-edge");

/// How long a gateway may take to come up.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// Writes a config file the way operators must: `0600`, as it holds keys and tokens.
pub fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    oauth_edge::files::private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write the config");
}

/// A port nobody listens on (bound, read, dropped): for an address that must refuse
/// connections, or for the demo, whose issuer is its listen address.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `127.0.0.1:<a free port>`.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

// ---------------------------------------------------------------------------------------
// The echo upstream

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    /// Every header line, names as hyper gives them (lower case), in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    /// Every value of `name` (exact, lower-case name).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of `name`; panics when it is repeated.
    pub fn one(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "{name} repeated upstream: {all:?}");
        all.first().copied()
    }

    pub fn has(&self, name: &str) -> bool {
        !self.all(name).is_empty()
    }
}

/// An HTTP/1 server on 127.0.0.1 that answers every request with JSON
/// `{server, method, uri, headers, body}`, and counts and keeps what it saw. A path ending in
/// `/slow` is answered after two seconds.
pub struct Echo {
    pub addr: SocketAddr,
    pub name: &'static str,
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Echo {
    pub async fn start(name: &'static str) -> Echo {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (h, s) = (hits.clone(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (h, s) = (h.clone(), s.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        echo(name, req, h.clone(), s.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Echo {
            addr,
            name,
            hits,
            seen,
            task,
        }
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The last request received.
    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the upstream saw a request")
    }
}

async fn echo(
    name: &'static str,
    req: Request<Incoming>,
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    hits.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let s = Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: headers.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    seen.lock().unwrap().push(s.clone());
    if parts.uri.path().ends_with("/slow") {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let mut map = serde_json::Map::new();
    for (k, v) in &headers {
        map.insert(k.clone(), json!(v));
    }
    let out = json!({
        "server": name,
        "method": s.method,
        "uri": s.uri,
        "headers": map,
        "body": s.body,
    });
    let mut resp = Response::new(Full::new(Bytes::from(out.to_string())));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// An upstream that accepts connections and never answers.
pub struct Silent {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Silent {
    pub async fn start() -> Silent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Silent { addr, task }
    }
}

// ---------------------------------------------------------------------------------------
// Configs

/// Clients and users most tests use.
pub const CLIENTS: &str = r#"
[[clients]]
id = "svc"
secret = "svc-secret-0123456789"
grants = ["client_credentials", "password", "refresh_token"]
scopes = ["read", "write", "admin"]
default_scopes = ["read"]

[[clients]]
id = "other"
secret = "other-secret-0123456789"
grants = ["client_credentials"]
scopes = ["read"]

[[clients]]
id = "rs"
secret = "rs-secret-0123456789"
introspect = true
scopes = ["read"]

[[users]]
username = "alice"
password = "wonderland-pw-0123"
"#;

pub const SVC: (&str, &str) = ("svc", "svc-secret-0123456789");
pub const OTHER: (&str, &str) = ("other", "other-secret-0123456789");
pub const RS: (&str, &str) = ("rs", "rs-secret-0123456789");
pub const ALICE: (&str, &str) = ("alice", "wonderland-pw-0123");

/// Routes of every kind, all to the upstream named `echo`.
pub const ROUTES: &str = r#"
[[routes]]
path = "/api"
require = "bearer"
upstream = "echo"

[[routes]]
path = "/api/admin"
require = "bearer"
scopes = ["admin"]
upstream = "echo"

[[routes]]
path = "/client"
require = "client"
upstream = "echo"

[[routes]]
path = "/public"
require = "none"
upstream = "echo"

[[routes]]
path = "/keep"
require = "bearer"
forward_bearer = true
upstream = "echo"
"#;

/// Port 0 on the loopback: the address the configs ask for.
pub const ANY_PORT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Addresses and a directory for one gateway.
pub struct Setup {
    pub dir: TempDir,
    /// The first (plain HTTP/1) listener: port 0 until the gateway has started, then the
    /// address it is bound to.
    pub listen: SocketAddr,
    /// The admin listener, likewise.
    pub admin: SocketAddr,
    /// Every `[[gateway.listeners]]` as bound, in config order (empty until started).
    pub listeners: Vec<SocketAddr>,
}

impl Default for Setup {
    fn default() -> Self {
        Self::new()
    }
}

impl Setup {
    pub fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
            listen: ANY_PORT,
            admin: ANY_PORT,
            listeners: Vec::new(),
        }
    }

    /// As [`Setup::new`], with ports chosen in advance (a port can be taken between the
    /// choice and the bind): for a config whose `issuer` must name the listen address, and for
    /// the demo, whose issuer is its listen address.
    pub fn on_free_ports() -> Setup {
        Setup {
            listen: free_addr(),
            admin: free_addr(),
            ..Setup::new()
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `issuer` (only when the listen port is chosen in advance: see
    /// [`Setup::on_free_ports`]) and `[store]` (SQLite in the directory): the start of a
    /// config. On port 0 the issuer is the one derived from the request's `Host`.
    pub fn head(&self) -> String {
        let issuer = match self.listen.port() {
            0 => String::new(),
            _ => format!("issuer = \"http://{}\"\n\n", self.listen),
        };
        format!(
            "{issuer}[store]\nkind = \"sqlite\"\npath = {:?}\nsynchronous = \"normal\"\n",
            self.path("edge.db").display().to_string()
        )
    }

    /// `[gateway]` with `keys`, its admin address and the first listener. Add more
    /// `[[gateway.listeners]]`, `[[gateway.upstreams]]` or `[gateway.limits]` after it.
    pub fn gateway(&self, keys: &str) -> String {
        format!(
            "\n[gateway]\nthreads = 2\n{keys}\n\n[gateway.admin]\naddress = \"{}\"\n\n[[gateway.listeners]]\naddress = \"{}\"\n",
            self.admin, self.listen
        )
    }

    /// The usual config: the clients, the routes and one upstream `echo`.
    pub fn standard(&self, echo: &Echo) -> String {
        format!(
            "{}{CLIENTS}{ROUTES}{}{}",
            self.head(),
            self.gateway(""),
            upstream("echo", &[echo.addr], "")
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.listen, path)
    }

    /// A fresh set-up whose config is `body` (clients, profiles, routes) between the head and
    /// the gateway's part, with the upstream `echo` in front of a new echo server, launched.
    pub async fn launch_with_echo(body: &str) -> (Echo, Gateway) {
        let echo = Echo::start("echo").await;
        let s = Setup::new();
        let config = format!(
            "{}{body}{}{}",
            s.head(),
            s.gateway(""),
            upstream("echo", &[echo.addr], "")
        );
        let gw = s.launch(&config).await;
        (echo, gw)
    }

    /// Writes `config` and starts `oauth-edge serve --config …`; returns once the gateway
    /// has reported its addresses and the admin `/healthz` answers.
    pub async fn launch(self, config: &str) -> Gateway {
        self.launch_env(config, &[]).await
    }

    /// As [`Setup::launch`], with `env` set for the process (after `E2E_GATEWAY_LOG`, so an
    /// `OAUTH_EDGE_LOG` here wins).
    pub async fn launch_env(self, config: &str, env: &[(&str, &str)]) -> Gateway {
        let file = self.path("oauth-edge.toml");
        write_private(&file, config);
        let args = vec![
            "serve".to_string(),
            "--config".to_string(),
            file.display().to_string(),
        ];
        Gateway::spawn_env(self, &args, env).await
    }
}

/// `[[gateway.upstreams]]`.
pub fn upstream(name: &str, addrs: &[SocketAddr], extra: &str) -> String {
    let list: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "\n[[gateway.upstreams]]\nname = \"{name}\"\naddresses = [{}]\n{extra}\n",
        list.join(", ")
    )
}

// ---------------------------------------------------------------------------------------
// The gateway process

/// A running gateway. Killed and reaped on drop; on a panicking test its output is printed.
pub struct Gateway {
    child: Option<Child>,
    pub setup: Setup,
    pub http: reqwest::Client,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- gateway output ----\n{}", self.output());
        }
    }
}

/// Output files for a child process in `dir`.
fn output_files(dir: &Path, tag: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{tag}.stdout")),
        dir.join(format!("{tag}.stderr")),
    )
}

/// Runs the binary with `args` in `dir` to completion, with a deadline; returns the status
/// and stderr.
pub fn run_to_end(dir: &Path, args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("oauth-edge {args:?} did not exit within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Gateway {
    /// Starts `oauth-edge <args> --address-file …` in the setup's directory, reads the
    /// addresses it is bound to into the setup, and waits until the admin `/healthz` answers.
    pub async fn spawn(setup: Setup, args: &[String]) -> Gateway {
        Gateway::spawn_env(setup, args, &[]).await
    }

    /// As [`Gateway::spawn`], with `env` set for the process (after `E2E_GATEWAY_LOG`, so an
    /// `OAUTH_EDGE_LOG` here wins).
    pub async fn spawn_env(setup: Setup, args: &[String], env: &[(&str, &str)]) -> Gateway {
        let n = std::fs::read_dir(setup.dir.path()).unwrap().count();
        let (stdout, stderr) = output_files(setup.dir.path(), &format!("gateway-{n}"));
        let addresses = setup.dir.path().join(format!("gateway-{n}.addresses"));
        let mut cmd = Command::new(BIN);
        // The gateway's default log level unless E2E_GATEWAY_LOG says otherwise.
        match std::env::var("E2E_GATEWAY_LOG") {
            Ok(level) => cmd.env("OAUTH_EDGE_LOG", level),
            Err(_) => cmd.env_remove("OAUTH_EDGE_LOG"),
        };
        cmd.envs(env.iter().copied());
        let child = cmd
            .args(args)
            .arg("--address-file")
            .arg(&addresses)
            .current_dir(setup.dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start oauth-edge");
        let mut gw = Gateway {
            child: Some(child),
            setup,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            stdout,
            stderr,
        };
        gw.wait_ready(&addresses).await;
        gw
    }

    /// Waits for the address file, takes the addresses from it, then waits for `/healthz`
    /// (when the admin listener is enabled).
    async fn wait_ready(&mut self, addresses: &Path) {
        let deadline = Instant::now() + READY_WITHIN;
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let mut reported = false;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "oauth-edge exited during start-up with {status}\n{}",
                    self.output()
                );
            }
            if !reported {
                if let Ok(text) = std::fs::read_to_string(addresses) {
                    let v: Value = serde_json::from_str(&text).expect("the address file");
                    let addr = |v: &Value| v.as_str().unwrap().parse::<SocketAddr>().unwrap();
                    self.setup.listeners = v["listeners"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(addr)
                        .collect();
                    if let Some(first) = self.setup.listeners.first() {
                        self.setup.listen = *first;
                    }
                    if !v["admin"].is_null() {
                        self.setup.admin = addr(&v["admin"]);
                    }
                    reported = true;
                }
            }
            if reported {
                let healthz = format!("http://{}/healthz", self.setup.admin);
                if self.setup.admin == ANY_PORT
                    || matches!(probe.get(&healthz).send().await, Ok(r) if r.status() == 200)
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "oauth-edge not ready within {READY_WITHIN:?}\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn listen(&self) -> SocketAddr {
        self.setup.listen
    }

    pub fn url(&self, path: &str) -> String {
        self.setup.url(path)
    }

    /// What the gateway wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "[stdout]\n{}\n[stderr]\n{}",
            read(&self.stdout),
            read(&self.stderr)
        )
    }

    /// Sends a signal with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Waits up to `within` for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.as_mut().unwrap().try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Kills the process now and reaps it (the setup and its files stay).
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    // -----------------------------------------------------------------------------------
    // Requests

    /// POSTs a form to `path`, with Basic for `client` when given.
    pub async fn post_form(
        &self,
        path: &str,
        client: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = client {
            req = req.basic_auth(id, Some(secret));
        }
        req.send().await.unwrap()
    }

    /// A successful token request; the JSON answer.
    pub async fn token(&self, client: (&str, &str), form: &[(&str, &str)]) -> Value {
        let r = self.post_form("/oauth2/token", Some(client), form).await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "token request {form:?}: {body}");
        body
    }

    /// A `client_credentials` access token.
    pub async fn client_token(&self, client: (&str, &str), scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let t = self.token(client, &form).await;
        t["access_token"].as_str().unwrap().to_string()
    }

    /// The admin API's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.setup.admin);
        let r = self.http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    /// GET `path` with a bearer token.
    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// The status and JSON body of a response.
pub async fn status_json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
    (status, v)
}

/// Asserts an error answer: status and `error`.
pub async fn assert_error(r: reqwest::Response, status: u16, error: &str) -> Value {
    let (s, v) = status_json(r).await;
    assert_eq!((s, v["error"].as_str()), (status, Some(error)), "{v}");
    v
}

// ---------------------------------------------------------------------------------------
// Raw HTTP/1

/// Writes `raw` to `addr` and reads until the peer closes or `within` passes; returns what
/// was read and whether the peer closed.
pub async fn raw_exchange(addr: SocketAddr, raw: &[u8], within: Duration) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    let closed = loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => break false,
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// The status code of a raw HTTP/1 response.
pub fn raw_status(resp: &str) -> Option<u16> {
    resp.strip_prefix("HTTP/1.1 ")
        .or_else(|| resp.strip_prefix("HTTP/1.0 "))
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
}

// ---------------------------------------------------------------------------------------
// Common shapes

pub fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

/// Every `WWW-Authenticate` value, in order.
pub fn challenges(r: &reqwest::Response) -> Vec<&str> {
    r.headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

/// Asserts the RFC 6749 5.1 cache headers.
pub fn assert_no_store(r: &reqwest::Response) {
    assert_eq!(header(r, "cache-control"), Some("no-store"));
    assert_eq!(header(r, "pragma"), Some("no-cache"));
}

pub async fn standard() -> (Echo, Gateway) {
    let echo = Echo::start("echo").await;
    let s = Setup::new();
    let config = s.standard(&echo);
    let gw = s.launch(&config).await;
    (echo, gw)
}

/// The JSON the echo upstream answered with.
pub async fn echoed(r: reqwest::Response) -> Value {
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}
