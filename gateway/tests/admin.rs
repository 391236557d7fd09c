//! The admin API and the `client`/`check-config` commands of the real `oauth-edge` binary.
//!
//! Each test starts the binary on a config file in a temporary directory (an SQLite store
//! there, a gateway listener and an admin listener on port 0, an echo upstream in the test)
//! and drives it over HTTP, as an operator would. The binary reports the ports it got through
//! `--address-file`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CACHE_CONTROL, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_oauth-edge");
const ADMIN_TOKEN: &str = "admin-token-for-the-tests-0123456789";
/// The plain-text secret of the client declared in the config file.
const CFG_SECRET: &str = "config-client-secret-0123456789";

/// An upstream that answers every request 200 with its request head as the body, so a test
/// can see what reached it.
fn echo_upstream() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the echo upstream");
    let addr = listener.local_addr().expect("echo addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || echo(stream));
        }
    });
    addr
}

fn echo(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{head}",
            head.len()
        );
        if writer.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// What a test's config file holds besides the listeners.
struct Setup {
    admin_token: Option<&'static str>,
}

/// A running `oauth-edge serve`; killed (and reaped) when dropped.
struct Gateway {
    child: Child,
    /// `http://127.0.0.1:<gateway port>`.
    base: String,
    /// `http://127.0.0.1:<admin port>`.
    admin: String,
    log: PathBuf,
    http: reqwest::Client,
    /// Removed after the child is gone.
    dir: Option<TempDir>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a config file `0600`, as a file holding keys and tokens must be.
fn write_private(path: &Path, text: &str) {
    oauth_edge::files::private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("write the config");
}

/// The config file of a test: an SQLite store in `dir`, a confidential client declared in
/// the file, a bearer route to the echo upstream, both listeners on port 0.
fn write_config(dir: &Path, upstream: SocketAddr, token: Option<&str>) -> PathBuf {
    let db = dir.join("oauth-edge.db");
    let token = token
        .map(|t| format!("token = \"{t}\""))
        .unwrap_or_default();
    let text = format!(
        r#"
[store]
kind = "sqlite"
path = {db:?}

[[clients]]
id = "cfg-client"
secret = "{CFG_SECRET}"
scopes = ["read"]

[[routes]]
path = "/api"
require = "bearer"

[gateway]
threads = 2
default_upstream = "echo"

[[gateway.listeners]]
address = "127.0.0.1:0"

[[gateway.upstreams]]
name = "echo"
addresses = ["{upstream}"]

[gateway.admin]
address = "127.0.0.1:0"
{token}
"#,
        db = db.display().to_string(),
    );
    let path = dir.join("oauth-edge.toml");
    write_private(&path, &text);
    path
}

impl Gateway {
    async fn start(setup: Setup) -> Gateway {
        Self::start_in(TempDir::new().expect("a temp dir"), setup).await
    }

    async fn start_in(dir: TempDir, setup: Setup) -> Gateway {
        let upstream = echo_upstream();
        let config = write_config(dir.path(), upstream, setup.admin_token);
        let log = dir.path().join("oauth-edge.log");
        let addresses = dir.path().join("addresses.json");
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--address-file")
            .arg(&addresses)
            .env("OAUTH_EDGE_LOG", "debug,pingora=info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).expect("log"))
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start oauth-edge");
        let logs = || std::fs::read_to_string(&log).unwrap_or_default();
        // The address file appears once both listeners are bound.
        let deadline = Instant::now() + Duration::from_secs(20);
        let reported: Value = loop {
            if let Ok(text) = std::fs::read_to_string(&addresses) {
                break serde_json::from_str(&text).expect("the address file");
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("oauth-edge exited with {status}:\n{}", logs());
            }
            assert!(
                Instant::now() < deadline,
                "no address file within 20 s:\n{}",
                logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut gw = Gateway {
            child,
            base: format!("http://{}", reported["listeners"][0].as_str().unwrap()),
            admin: format!("http://{}", reported["admin"].as_str().unwrap()),
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            dir: Some(dir),
        };
        gw.wait_ready().await;
        gw
    }

    /// Polls `/healthz` until it answers (at most 20 s); panics when the binary exited or
    /// hangs.
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("oauth-edge exited with {status}:\n{}", self.logs());
            }
            let admin = self.http.get(self.url_admin("/healthz")).send().await;
            if admin.is_ok_and(|r| r.status() == StatusCode::OK) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("oauth-edge did not answer within 20 s:\n{}", self.logs());
    }

    /// Stops the binary; the directory outlives it.
    fn stop(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take().expect("the directory")
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn url_admin(&self, path: &str) -> String {
        format!("{}{path}", self.admin)
    }

    /// An `/admin` request with the admin token.
    fn admin_req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url_admin(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    async fn create_client(&self, body: Value) -> (StatusCode, Value) {
        let r = self
            .admin_req(reqwest::Method::POST, "/admin/clients")
            .json(&body)
            .send()
            .await
            .expect("POST /admin/clients");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A confidential client created through the admin API; returns its secret.
    async fn new_client(&self, id: &str) -> String {
        let (status, body) = self
            .create_client(json!({ "id": id, "scopes": ["read", "write"] }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["client_secret"]
            .as_str()
            .expect("a confidential client gets a secret")
            .to_string()
    }

    /// `POST /admin/revoke`.
    async fn revoke(&self, body: Value) -> (StatusCode, Value) {
        let r = self
            .admin_req(reqwest::Method::POST, "/admin/revoke")
            .json(&body)
            .send()
            .await
            .expect("POST /admin/revoke");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `POST /oauth2/token` with `client_credentials` and HTTP Basic.
    async fn token_response(&self, id: &str, secret: &str) -> reqwest::Response {
        self.http
            .post(self.url("/oauth2/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("POST /oauth2/token")
    }

    async fn token(&self, id: &str, secret: &str) -> String {
        let r = self.token_response(id, secret).await;
        assert_eq!(r.status(), StatusCode::OK, "token for {id}");
        let body: Value = r.json().await.expect("a token response");
        body["access_token"]
            .as_str()
            .expect("an access token")
            .to_string()
    }

    /// `GET /api/things` with a bearer token: the status, and the body.
    async fn call_api(&self, token: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(self.url("/api/things"))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET /api/things");
        (r.status(), r.text().await.unwrap_or_default())
    }

    async fn metrics(&self) -> String {
        let r = self
            .http
            .get(self.url_admin("/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(r.status(), StatusCode::OK);
        let ct = r.headers()["content-type"].to_str().unwrap_or_default();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        r.text().await.expect("metrics text")
    }

    /// Asserts that nothing secret reached the binary's logs.
    fn assert_logs_free_of(&self, secrets: &[&str]) {
        let logs = self.logs();
        for s in secrets.iter().chain(&[ADMIN_TOKEN, CFG_SECRET]) {
            assert!(!logs.contains(s), "a secret is in the logs:\n{logs}");
        }
    }
}

fn with_token() -> Setup {
    Setup {
        admin_token: Some(ADMIN_TOKEN),
    }
}

/// The value of the sample `name` (with its labels, exactly) in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn admin_needs_the_token() {
    let gw = Gateway::start(with_token()).await;
    let url = gw.url_admin("/admin/clients");
    let unauthorized = |r: reqwest::Response| async move {
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()[WWW_AUTHENTICATE],
            r#"Bearer realm="oauth-edge-admin""#
        );
        let body: Value = r.json().await.expect("a JSON 401");
        assert_eq!(body, json!({ "error": "unauthorized" }));
    };
    unauthorized(gw.http.get(&url).send().await.unwrap()).await;
    unauthorized(gw.http.get(&url).bearer_auth("wrong").send().await.unwrap()).await;
    // The right token one byte short, one byte long, and under another scheme.
    let short = &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1];
    unauthorized(gw.http.get(&url).bearer_auth(short).send().await.unwrap()).await;
    let long = format!("{ADMIN_TOKEN}x");
    unauthorized(gw.http.get(&url).bearer_auth(long).send().await.unwrap()).await;
    let basic = gw.http.get(&url).basic_auth(ADMIN_TOKEN, Some(""));
    unauthorized(basic.send().await.unwrap()).await;
    let two = gw
        .http
        .get(&url)
        .header(AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .header(AUTHORIZATION, "Bearer wrong");
    unauthorized(two.send().await.unwrap()).await;
    // Every /admin route, and routes that do not exist: no hint of what is there.
    for (method, path) in [
        (reqwest::Method::POST, "/admin/clients"),
        (reqwest::Method::GET, "/admin/clients/cfg-client"),
        (reqwest::Method::DELETE, "/admin/clients/cfg-client"),
        (
            reqwest::Method::POST,
            "/admin/clients/cfg-client/rotate-secret",
        ),
        (reqwest::Method::POST, "/admin/revoke"),
        (reqwest::Method::GET, "/admin/nothing-here"),
        (reqwest::Method::GET, "/admin"),
    ] {
        let r = gw
            .http
            .request(method, gw.url_admin(path))
            .json(&json!({ "client_id": "cfg-client" }))
            .send()
            .await
            .unwrap();
        unauthorized(r).await;
    }
    // The scheme in any case is the same scheme.
    let r = gw
        .http
        .get(&url)
        .header(AUTHORIZATION, format!("bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    // The config-file client's tokens were not revoked by any of the refused requests.
    let t = gw.token("cfg-client", CFG_SECRET).await;
    assert_eq!(gw.call_api(&t).await.0, StatusCode::OK);
    // Unknown routes and methods, with the token: JSON 404 and 405.
    let r = gw
        .admin_req(reqwest::Method::GET, "/admin/nothing-here")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_found");
    let r = gw
        .admin_req(reqwest::Method::PUT, "/admin/clients")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    // The open routes stay open.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = gw.http.get(gw.url_admin(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    gw.assert_logs_free_of(&[]);
}

#[tokio::test]
async fn admin_is_off_without_a_token() {
    let gw = Gateway::start(Setup { admin_token: None }).await;
    for (method, path) in [
        (reqwest::Method::GET, "/admin/clients"),
        (reqwest::Method::POST, "/admin/clients"),
        (reqwest::Method::GET, "/admin/clients/cfg-client"),
        (reqwest::Method::DELETE, "/admin/clients/cfg-client"),
        (reqwest::Method::POST, "/admin/revoke"),
        (reqwest::Method::GET, "/admin/nothing-here"),
    ] {
        for token in [None, Some(""), Some("anything")] {
            let mut req = gw
                .http
                .request(method.clone(), gw.url_admin(path))
                .json(&json!({ "client_id": "cfg-client", "id": "x" }));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(
                body,
                json!({ "error": "admin API disabled: set gateway.admin.token" })
            );
        }
    }
    let r = gw.http.get(gw.url_admin("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = gw.http.get(gw.url_admin("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Nothing was revoked: the config-file client still works.
    let t = gw.token("cfg-client", CFG_SECRET).await;
    assert_eq!(gw.call_api(&t).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_client_from_create_to_delete() {
    let gw = Gateway::start(with_token()).await;

    // Created: its secret is answered once, and gets a token at the gateway.
    let (status, body) = gw
        .create_client(json!({
            "id": "billing",
            "name": "Billing",
            "scopes": ["invoices.read", "read"],
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["id"], "billing");
    let secret = body["client_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32, "a generated secret: {secret}");
    let token = gw.token("billing", &secret).await;
    let (status, seen) = gw.call_api(&token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        seen.to_ascii_lowercase()
            .contains("x-oauth-client-id: billing"),
        "{seen}"
    );

    // Listed and shown, never with a secret.
    let r = gw
        .admin_req(reqwest::Method::GET, "/admin/clients")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    for hidden in [
        secret.as_str(),
        CFG_SECRET,
        "secret_hash",
        "client_secret",
        "blake3$",
    ] {
        assert!(!text.contains(hidden), "{hidden} in {text}");
    }
    let list: Vec<Value> = serde_json::from_str(&text).unwrap();
    let find = |id: &str| list.iter().find(|c| c["id"] == id).cloned();
    let billing = find("billing").expect("the new client is listed");
    assert_eq!(billing["source"], "store");
    assert_eq!(billing["name"], "Billing");
    assert_eq!(billing["grants"], json!(["client_credentials"]));
    assert_eq!(billing["public"], false);
    let cfg = find("cfg-client").expect("the config-file client is listed");
    assert_eq!(cfg["source"], "config");
    assert_eq!(cfg["scopes"], json!(["read"]));
    assert_eq!(cfg["grants"], json!(["client_credentials"]));
    assert_eq!(cfg["public"], false);
    for path in ["/admin/clients/billing", "/admin/clients/cfg-client"] {
        let r = gw
            .admin_req(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let text = r.text().await.unwrap();
        for hidden in [secret.as_str(), CFG_SECRET, "secret_hash", "blake3$"] {
            assert!(!text.contains(hidden), "{hidden} in {text}");
        }
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(path.rsplit('/').next().unwrap(), v["id"]);
    }
    let r = gw
        .admin_req(reqwest::Method::GET, "/admin/clients/nobody")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // An id with a slash, percent-encoded in the path.
    let (status, _) = gw.create_client(json!({ "id": "team/a" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let r = gw
        .admin_req(reqwest::Method::GET, "/admin/clients/team%2Fa")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["id"], "team/a");

    // Refused creations.
    let (status, _) = gw.create_client(json!({ "id": "billing" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "an existing id");
    let (status, _) = gw.create_client(json!({ "id": "cfg-client" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "a config-file id");
    for bad in [
        json!({ "id": "x", "scopes": ["a\"b"] }),
        json!({ "id": "" }),
        json!({ "id": "x", "public": true, "grants": ["client_credentials"] }),
        json!({ "id": "x", "redirect_uris": ["not a uri"] }),
        json!({ "id": "x", "secret": "chosen" }),
        json!({ "id": 7 }),
        json!({ "name": "no id" }),
        json!(["id", "x"]),
    ] {
        let (status, body) = gw.create_client(bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_request", "{bad}");
        assert!(body["error_description"].is_string(), "{bad}");
    }
    for raw in ["{\"id\": ", "", "not json"] {
        let r = gw
            .admin_req(reqwest::Method::POST, "/admin/clients")
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{raw:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
    }
    let big = json!({ "id": "big", "name": "x".repeat(100_000) });
    let (status, _) = gw.create_client(big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = gw
        .admin_req(reqwest::Method::GET, "/admin/clients/x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "no refused creation was stored"
    );

    // A public client: no secret, and none to rotate.
    let (status, body) = gw
        .create_client(json!({ "id": "spa", "public": true, "grants": ["refresh_token"] }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body, json!({ "id": "spa" }));
    let r = gw
        .admin_req(reqwest::Method::POST, "/admin/clients/spa/rotate-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = gw
        .admin_req(reqwest::Method::POST, "/admin/clients/nobody/rotate-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = gw
        .admin_req(
            reqwest::Method::POST,
            "/admin/clients/cfg-client/rotate-secret",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "the config file holds its secret"
    );

    // Rotated: the old secret fails at once, the new one works.
    let r = gw
        .admin_req(
            reqwest::Method::POST,
            "/admin/clients/billing/rotate-secret",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], "billing");
    let new_secret = body["client_secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    let old = gw.token_response("billing", &secret).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED, "the old secret");
    let token2 = gw.token("billing", &new_secret).await;
    assert_eq!(gw.call_api(&token2).await.0, StatusCode::OK);

    // Deleted: its tokens stop at once, its secret with them; a second delete is 404.
    let (other_status, _) = gw.call_api(&gw.token("cfg-client", CFG_SECRET).await).await;
    assert_eq!(other_status, StatusCode::OK);
    let r = gw
        .admin_req(reqwest::Method::DELETE, "/admin/clients/billing")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for t in [&token, &token2] {
        let (status, _) = gw.call_api(t).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "a deleted client's token");
    }
    let r = gw.token_response("billing", &new_secret).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = gw
        .admin_req(reqwest::Method::GET, "/admin/clients/billing")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = gw
        .admin_req(reqwest::Method::DELETE, "/admin/clients/billing")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = gw
        .admin_req(reqwest::Method::DELETE, "/admin/clients/cfg-client")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("declared in the config file"),
        "{body}"
    );
    // ...and that refusal revoked nothing.
    let t = gw.token("cfg-client", CFG_SECRET).await;
    assert_eq!(gw.call_api(&t).await.0, StatusCode::OK);

    // The id is free again, with a new secret; the old tokens stay dead.
    let again = gw.new_client("billing").await;
    assert_ne!(again, new_secret);
    assert_eq!(gw.call_api(&token2).await.0, StatusCode::UNAUTHORIZED);
    let fresh = gw.token("billing", &again).await;
    assert_eq!(gw.call_api(&fresh).await.0, StatusCode::OK);

    gw.assert_logs_free_of(&[&secret, &new_secret, &again, &token, &token2, &fresh]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_of_one_id_make_one_client() {
    let gw = Gateway::start(with_token()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let req = gw
            .admin_req(reqwest::Method::POST, "/admin/clients")
            .json(&json!({ "id": "racer" }));
        tasks.spawn(async move {
            let r = req.send().await.expect("POST /admin/clients");
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let results = tasks.join_all().await;
    let created: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(created.len(), 1, "{results:?}");
    assert!(results
        .iter()
        .all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT));
    // The secret that was answered is the one that works.
    let secret = created[0]["client_secret"].as_str().unwrap();
    gw.token("racer", secret).await;
}

#[tokio::test]
async fn revoke_by_client_or_user_takes_effect_at_once() {
    let gw = Gateway::start(with_token()).await;
    let a = gw.new_client("alpha").await;
    let b = gw.new_client("beta").await;
    let a1 = gw.token("alpha", &a).await;
    let a2 = gw.token("alpha", &a).await;
    let b1 = gw.token("beta", &b).await;
    let c1 = gw.token("cfg-client", CFG_SECRET).await;
    // Each used once, so the gateway's cache holds them as good.
    for t in [&a1, &a2, &b1, &c1] {
        assert_eq!(gw.call_api(t).await.0, StatusCode::OK);
    }
    let (status, body) = gw.revoke(json!({ "client_id": "alpha" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "revoked_families": 2 }));
    for t in [&a1, &a2] {
        assert_eq!(gw.call_api(t).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(gw.call_api(&b1).await.0, StatusCode::OK);
    assert_eq!(gw.call_api(&c1).await.0, StatusCode::OK);
    // Again: nothing left to revoke. The client itself still gets new tokens.
    let (_, body) = gw.revoke(json!({ "client_id": "alpha" })).await;
    assert_eq!(body, json!({ "revoked_families": 0 }));
    let a3 = gw.token("alpha", &a).await;
    assert_eq!(gw.call_api(&a3).await.0, StatusCode::OK);
    // A config-file client's tokens can be revoked too.
    let (_, body) = gw.revoke(json!({ "client_id": "cfg-client" })).await;
    assert_eq!(body, json!({ "revoked_families": 1 }));
    assert_eq!(gw.call_api(&c1).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(gw.call_api(&b1).await.0, StatusCode::OK);
    // By user: client_credentials tokens have none.
    let (status, body) = gw.revoke(json!({ "user": "alice" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "revoked_families": 0 }));
    assert_eq!(gw.call_api(&b1).await.0, StatusCode::OK);
    // Neither, or something else: 400, nothing revoked.
    for bad in [
        json!({}),
        json!({ "client_id": "" }),
        json!({ "client": "beta" }),
        json!({ "client_id": 5 }),
        json!("beta"),
    ] {
        let (status, body) = gw.revoke(bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error"], "invalid_request");
    }
    assert_eq!(gw.call_api(&b1).await.0, StatusCode::OK);
    gw.assert_logs_free_of(&[&a, &b, &a1, &a2, &a3, &b1, &c1]);
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let gw = Gateway::start(with_token()).await;
    let r = gw.http.get(gw.url_admin("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let secret = gw.new_client("metered").await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(gw.token("metered", &secret).await);
    }
    tokens.push(gw.token("cfg-client", CFG_SECRET).await);
    for t in &tokens {
        assert_eq!(gw.call_api(t).await.0, StatusCode::OK);
    }
    let wrong = gw.token_response("metered", "not-the-secret").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let forged = gw.call_api("not-a-token").await;
    assert_eq!(forged.0, StatusCode::UNAUTHORIZED);
    let r = gw
        .admin_req(reqwest::Method::POST, "/admin/revoke")
        .json(&json!({ "client_id": "metered" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["revoked_families"], 3);
    assert_eq!(gw.call_api(&tokens[0]).await.0, StatusCode::UNAUTHORIZED);

    // The gateway counts a request in its logging phase, after the answer went out: wait
    // for the last one to be counted.
    let denied = r#"oauth_edge_requests_total{route="/api",outcome="denied",status="401"}"#;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut m = gw.metrics().await;
    let allowed = r#"oauth_edge_requests_total{route="/api",outcome="allowed",status="200"}"#;
    while (sample(&m, denied), sample(&m, allowed)) != (Some(2.0), Some(4.0))
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        m = gw.metrics().await;
    }
    assert_eq!(
        sample(
            &m,
            r#"oauth_edge_tokens_issued_total{grant_type="client_credentials"}"#
        ),
        Some(4.0),
        "{m}"
    );
    assert_eq!(sample(&m, "oauth_edge_revocations_total"), Some(3.0), "{m}");
    let hits = sample(&m, r#"oauth_edge_cache_lookups_total{result="hit"}"#);
    let misses = sample(&m, r#"oauth_edge_cache_lookups_total{result="miss"}"#);
    assert!(hits.unwrap_or(0.0) + misses.unwrap_or(0.0) >= 5.0, "{m}");
    let failures: f64 = m
        .lines()
        .filter(|l| l.starts_with("oauth_edge_auth_failures_total{reason="))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(failures >= 1.0, "the wrong secret is counted: {m}");
    assert_eq!(sample(&m, allowed), Some(4.0), "{m}");
    assert_eq!(sample(&m, denied), Some(2.0), "{m}");
    assert!(
        sample(
            &m,
            r#"oauth_edge_requests_total{route="(endpoint)",outcome="endpoint",status="200"}"#
        )
        .is_some_and(|n| n >= 4.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"oauth_edge_upstream_latency_seconds_bucket{upstream="echo",le="+Inf"}"#
        ),
        Some(4.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"oauth_edge_upstream_latency_seconds_count{upstream="echo"}"#
        ),
        Some(4.0),
        "{m}"
    );
    for family in [
        "oauth_edge_requests_total",
        "oauth_edge_tokens_issued_total",
        "oauth_edge_revocations_total",
        "oauth_edge_cache_lookups_total",
        "oauth_edge_auth_failures_total",
        "oauth_edge_upstream_latency_seconds",
    ] {
        assert!(m.contains(&format!("# TYPE {family} ")), "{family}: {m}");
    }
    for t in &tokens {
        assert!(!m.contains(t.as_str()));
    }
    gw.assert_logs_free_of(&[&secret]);
}

// ---- the commands -------------------------------------------------------------------

/// Runs the binary with `args`; panics if it cannot start or hangs.
fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("OAUTH_EDGE_LOG", "debug")
        .stdin(Stdio::null())
        .output()
        .expect("run oauth-edge")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn the_client_commands_share_the_store_with_the_gateway() {
    let dir = TempDir::new().unwrap();
    let config = write_config(
        dir.path(),
        "127.0.0.1:9".parse().unwrap(),
        Some(ADMIN_TOKEN),
    );
    let f = config.to_str().unwrap();

    let out = run(&[
        "client", "add", "--config", f, "--id", "x", "--scope", "read",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let secret = stdout
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .unwrap_or_else(|| panic!("a secret line: {stdout}"))
        .trim()
        .to_string();
    assert!(secret.len() >= 32);

    let out = run(&["client", "list", "--config", f, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains(&secret) && !stdout.contains("secret"),
        "{stdout}"
    );
    let list: Vec<Value> = serde_json::from_str(&stdout).expect("JSON");
    let x = list.iter().find(|c| c["id"] == "x").expect("x is listed");
    assert_eq!(x["scopes"], json!(["read"]));
    assert_eq!(x["source"], "store");
    assert!(list
        .iter()
        .any(|c| c["id"] == "cfg-client" && c["source"] == "config"));
    let out = run(&["client", "show", "x", "--config", f, "--json"]);
    assert!(out.status.success());
    assert!(
        !text(&out.stdout).contains("secret"),
        "{}",
        text(&out.stdout)
    );

    let out = run(&["client", "rotate-secret", "x", "--config", f, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rotated: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);

    // An authorization-code client with the two flags the admin API also takes.
    let out = run(&[
        "client",
        "add",
        "--config",
        f,
        "--id",
        "web",
        "--grant",
        "authorization_code",
        "--redirect-uri",
        "https://web.example/cb",
        "--require-pkce",
        "--skip-consent",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["client", "show", "web", "--config", f, "--json"]);
    let web: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(web["require_pkce"], true, "{web}");
    assert_eq!(web["skip_consent"], true, "{web}");
    let out = run(&["client", "show", "x", "--config", f, "--json"]);
    let x: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(x["require_pkce"], false, "{x}");
    assert_eq!(x["skip_consent"], false, "{x}");

    // Bad input exits 2 and stores nothing; so does an id that exists.
    let out = run(&[
        "client", "add", "--config", f, "--id", "y", "--scope", "a\"b",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("scopes"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["client", "add", "--config", f, "--id", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["client", "remove", "cfg-client", "--config", f]);
    assert_eq!(out.status.code(), Some(2), "a config-file client");
    let out = run(&["client", "show", "y", "--config", f]);
    assert_eq!(out.status.code(), Some(1), "y was not stored");

    // The gateway on the same file sees what the commands did.
    let gw = Gateway::start_in(dir, with_token()).await;
    assert_eq!(
        gw.token_response("x", &secret).await.status(),
        StatusCode::UNAUTHORIZED,
        "the rotated-out secret"
    );
    let t = gw.token("x", &new_secret).await;
    assert_eq!(gw.call_api(&t).await.0, StatusCode::OK);
    let r = gw
        .admin_req(reqwest::Method::GET, "/admin/clients/x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let _dir = gw.stop();

    let out = run(&["client", "remove", "x", "--config", f]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["client", "show", "x", "--config", f]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["client", "remove", "x", "--config", f]);
    assert_eq!(out.status.code(), Some(1), "no such client");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains(&new_secret) && !all.contains(ADMIN_TOKEN));
}

#[test]
fn check_config_names_the_bad_key() {
    let dir = TempDir::new().unwrap();
    let good = write_config(
        dir.path(),
        "127.0.0.1:9".parse().unwrap(),
        Some(ADMIN_TOKEN),
    );
    let out = run(&["check-config", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok"));

    let bad = dir.path().join("bad.toml");
    let typo = std::fs::read_to_string(&good).unwrap().replacen(
        "address = \"127.0.0.1:",
        "adress = \"127.0.0.1:",
        1,
    );
    write_private(&bad, &typo);
    let out = run(&["check-config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("gateway.listeners[0].adress"), "{stderr}");
    let out = run(&["--json", "check-config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], false);
    assert!(v["key"]
        .as_str()
        .unwrap()
        .starts_with("gateway.listeners[0].adress"));

    // An empty admin token is a mistake, not a way to turn /admin off.
    let empty = dir.path().join("empty.toml");
    let text_empty = std::fs::read_to_string(&good)
        .unwrap()
        .replace(&format!("token = \"{ADMIN_TOKEN}\""), "token = \"\"");
    write_private(&empty, &text_empty);
    let out = run(&["check-config", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("gateway.admin.token"));
}

#[tokio::test]
async fn maintenance_is_switched_through_the_admin_api() {
    let gw = Gateway::start(with_token()).await;
    let token = gw.token("cfg-client", CFG_SECRET).await;
    assert_eq!(gw.call_api(&token).await.0, StatusCode::OK);

    let r = gw
        .admin_req(reqwest::Method::PUT, "/admin/maintenance")
        .json(&json!({ "enabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "enabled": true }));

    // The API and the token endpoint both answer 503 with Retry-After (the default 300 s).
    let r = gw
        .http
        .get(gw.url("/api/things"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "300");
    let r = gw.token_response("cfg-client", CFG_SECRET).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let r = gw
        .admin_req(reqwest::Method::GET, "/admin/maintenance")
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({ "enabled": true }));

    // Without the admin token nothing changes.
    let r = gw
        .http
        .put(gw.url_admin("/admin/maintenance"))
        .json(&json!({ "enabled": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        gw.token_response("cfg-client", CFG_SECRET).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // A body that is not {"enabled": bool} is refused.
    let r = gw
        .admin_req(reqwest::Method::PUT, "/admin/maintenance")
        .json(&json!({ "enabled": "yes" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = gw
        .admin_req(reqwest::Method::PUT, "/admin/maintenance")
        .json(&json!({ "enabled": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(gw.call_api(&token).await.0, StatusCode::OK);
    gw.assert_logs_free_of(&[&token]);
}

#[tokio::test]
async fn a_client_created_through_the_api_can_require_pkce() {
    let gw = Gateway::start(with_token()).await;
    let (status, body) = gw
        .create_client(json!({
            "id": "spa-backend",
            "grants": ["authorization_code"],
            "scopes": ["read"],
            "redirect_uris": ["https://app.example/cb"],
            "require_pkce": true,
            "skip_consent": true,
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let shown: Value = gw
        .admin_req(reqwest::Method::GET, "/admin/clients/spa-backend")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["require_pkce"], true, "{shown}");
    assert_eq!(shown["skip_consent"], true, "{shown}");
    assert!(shown.get("secret_hash").is_none());

    // An authorization request without PKCE goes back to the client with invalid_request.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(gw.url(
            "/oauth2/authorize?response_type=code&client_id=spa-backend\
             &redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(
        loc.starts_with("https://app.example/cb?error=invalid_request"),
        "{loc}"
    );
    // An unknown field is refused, as before.
    let (status, _) = gw
        .create_client(json!({ "id": "x", "requires_pkce": true }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
