//! End-to-end tests of the real `oauth-edge` binary, continued: TLS and HTTP/2 listeners,
//! h2c, graceful shutdown, config errors and the `--demo` walk-through.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM into `dir`;
/// returns the certificate PEM and the two paths.
fn self_signed(dir: &std::path::Path) -> (String, String, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = ck.cert.pem();
    let (cp, kp) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cp, &cert).unwrap();
    std::fs::write(&kp, ck.signing_key.serialize_pem()).unwrap();
    (cert, cp.display().to_string(), kp.display().to_string())
}

async fn check_passthrough(http: &reqwest::Client, base: &str, want: reqwest::Version) {
    // An endpoint (the body is read by the gateway) …
    let r = http
        .post(format!("{base}/oauth2/token"))
        .basic_auth(SVC.0, Some(SVC.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), want);
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let token = t["access_token"].as_str().unwrap().to_string();
    // … and passthrough, with a body.
    let r = http
        .post(format!("{base}/api/things?x=1"))
        .bearer_auth(&token)
        .body("over the wire")
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), want);
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["uri"], "/api/things?x=1");
    assert_eq!(v["body"], "over the wire");
    assert_eq!(v["headers"]["x-oauth-client-id"], "svc");
    assert!(v["headers"].get("authorization").is_none(), "{v}");
    // Refusals too.
    let r = http.get(format!("{base}/api/things")).send().await.unwrap();
    assert_eq!(r.version(), want);
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_speaks_http1_and_http2() {
    let echo = Echo::start("echo").await;
    let s = Setup::new();
    let (cert, cert_path, key_path) = self_signed(s.dir.path());
    let config = format!(
        "{}\n[[gateway.listeners]]\naddress = \"{ANY_PORT}\"\ntls = {{ cert = {cert_path:?}, key = {key_path:?} }}\n",
        s.standard(&echo)
    );
    let gw = s.launch(&config).await;
    let tls = gw.setup.listeners[1];
    let root = reqwest::Certificate::from_pem(cert.as_bytes()).unwrap();
    let client = |h1: bool| {
        let b = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(root.clone())
            .resolve("localhost", tls)
            .timeout(Duration::from_secs(10));
        let b = if h1 { b.http1_only() } else { b };
        b.build().unwrap()
    };
    let base = format!("https://localhost:{}", tls.port());
    check_passthrough(&client(true), &base, reqwest::Version::HTTP_11).await;
    check_passthrough(&client(false), &base, reqwest::Version::HTTP_2).await;
    // The IP address is in the certificate too.
    let r = client(false)
        .get(format!("https://{tls}/public/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    // The plain listener still answers plain HTTP.
    let r = gw.http.get(gw.url("/public/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_listener_speaks_both_http1_and_prior_knowledge_http2() {
    let echo = Echo::start("echo").await;
    let s = Setup::new();
    let config = format!(
        "{}\n[[gateway.listeners]]\naddress = \"{ANY_PORT}\"\nh2c = true\n",
        s.standard(&echo)
    );
    let gw = s.launch(&config).await;
    let h2c = gw.setup.listeners[1];
    let base = format!("http://{h2c}");
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    check_passthrough(&h2, &base, reqwest::Version::HTTP_2).await;
    let h1 = reqwest::Client::builder()
        .http1_only()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    check_passthrough(&h1, &base, reqwest::Version::HTTP_11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let echo = Echo::start("echo").await;
    let s = Setup::new();
    let config = format!(
        "{}{CLIENTS}{ROUTES}{}{}",
        s.head(),
        s.gateway("grace_period = \"5s\""),
        upstream("echo", &[echo.addr], "")
    );
    let mut gw = s.launch(&config).await;
    let http = gw.http.clone();
    let url = gw.url("/public/slow");
    let slow = tokio::spawn(async move { http.get(url).send().await });
    // Wait until the upstream has the request, then ask the gateway to stop.
    let deadline = Instant::now() + Duration::from_secs(5);
    while echo.hits() == 0 {
        assert!(Instant::now() < deadline, "the slow request never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let term = Instant::now();
    gw.signal("-TERM");
    let r = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["uri"], "/public/slow");
    assert!(
        term.elapsed() < Duration::from_secs(4),
        "{:?}",
        term.elapsed()
    );

    // Pingora waits out the whole grace period before it stops its runtimes; allow a little
    // on top for that.
    let status = gw
        .wait_exit(Duration::from_secs(8))
        .await
        .unwrap_or_else(|| panic!("still running 8 s after SIGTERM\n{}", gw.output()));
    assert!(status.success(), "{status}\n{}", gw.output());
    let took = term.elapsed();
    assert!(
        took <= Duration::from_millis(7500),
        "exit {took:?} after SIGTERM with a 5 s grace period"
    );
}

// ---------------------------------------------------------------------------------------
// Config errors

fn bad_config(body: &str, key: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let admin = ANY_PORT;
    let config = format!(
        "[store]\nkind = \"sqlite\"\npath = {:?}\n{body}\n[gateway.admin]\naddress = \"{admin}\"\n",
        dir.path().join("edge.db").display().to_string()
    );
    write_private(&file, &config);
    let path = file.display().to_string();
    for args in [
        vec!["serve", "--config", &path],
        vec!["check-config", &path],
    ] {
        let (status, _out, err) = run_to_end(dir.path(), &args);
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(key),
            "{args:?}: stderr does not name {key}: {err}"
        );
    }
    // With --json the key is a field.
    let (status, out, _) = run_to_end(dir.path(), &["--json", "check-config", &path]);
    assert_eq!(status.code(), Some(2));
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["key"], key);
}

#[test]
fn a_misspelt_key_is_named() {
    bad_config(
        "[[gateway.listeners]]\nadress = \"127.0.0.1:1\"\n",
        "gateway.listeners[0].adress",
    );
}

#[test]
fn a_route_naming_no_upstream_is_named() {
    bad_config(
        "[[routes]]\npath = \"/api\"\nrequire = \"bearer\"\nupstream = \"nowhere\"\n\n[[gateway.upstreams]]\nname = \"echo\"\naddresses = [\"127.0.0.1:1\"]\n",
        "routes[0].upstream",
    );
}

#[test]
fn a_missing_tls_certificate_is_named() {
    bad_config(
        "[[gateway.listeners]]\naddress = \"127.0.0.1:1\"\ntls = { cert = \"/nonexistent/cert.pem\", key = \"/nonexistent/key.pem\" }\n",
        "gateway.listeners[0].tls.cert",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_listen_port_fails_the_start_by_name() {
    let echo = Echo::start("echo").await;
    // Held for the whole test, so the port stays taken.
    let taken = std::net::TcpListener::bind(ANY_PORT).unwrap();
    let addr = taken.local_addr().unwrap();
    let s = Setup::new();
    let config = format!(
        "{}\n[[gateway.listeners]]\naddress = \"{addr}\"\n",
        s.standard(&echo)
    );
    let file = s.path("oauth-edge.toml");
    write_private(&file, &config);
    let addresses = s.path("addresses.json");
    let (status, _out, err) = run_to_end(
        s.dir.path(),
        &[
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--address-file",
            addresses.to_str().unwrap(),
        ],
    );
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("gateway.listeners[1].address {addr}")),
        "the key and the address are named: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // Nothing was written for a reader to take as a running gateway.
    assert!(!addresses.exists());
}

#[test]
fn a_config_or_store_open_to_others_is_refused_by_name() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("edge.db");
    let file = dir.path().join("edge.toml");
    let admin = ANY_PORT;
    let config = format!(
        "[store]\nkind = \"sqlite\"\npath = {:?}\n[gateway.admin]\naddress = \"{admin}\"\ntoken = \"an-admin-token\"\n",
        db.display().to_string()
    );
    write_private(&file, &config);
    let path = file.display().to_string();
    let chmod = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    // The config holds the admin token: 0644 is refused, naming the file and the key.
    chmod(&file, 0o644);
    for args in [
        vec!["serve", "--config", &path],
        vec!["check-config", &path],
    ] {
        let (status, _, err) = run_to_end(dir.path(), &args);
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&path) && err.contains("0644"), "{err}");
        assert!(
            err.contains("gateway.admin.token") && err.contains("chmod 600"),
            "{err}"
        );
        assert!(
            !err.contains("an-admin-token"),
            "the secret itself is not printed: {err}"
        );
    }
    chmod(&file, 0o600);

    // `migrate` opens the store: the data dir is made 0700, the file 0600.
    let (status, _, err) = run_to_end(dir.path(), &["migrate", "--config", &path]);
    assert!(status.success(), "{err}");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);

    // A store file others can read is refused, by name.
    chmod(&db, 0o644);
    let (status, _, err) = run_to_end(dir.path(), &["serve", "--config", &path]);
    assert!(!status.success(), "{err}");
    assert!(
        err.contains(&db.display().to_string()) && err.contains("0644"),
        "{err}"
    );
    assert!(err.contains("server keys"), "{err}");
}

// ---------------------------------------------------------------------------------------
// The demo

/// Reads `oauth-edge-demo.env`: `export CLIENT_ID=… CLIENT_SECRET=… ADMIN_TOKEN=…`.
fn demo_env(dir: &std::path::Path) -> (String, String, String) {
    let text = std::fs::read_to_string(dir.join("oauth-edge-demo.env")).unwrap();
    let line = text.trim();
    let rest = line.strip_prefix("export ").expect(line);
    let mut id = None;
    let mut secret = None;
    let mut admin = None;
    for kv in rest.split_whitespace() {
        let (k, v) = kv.split_once('=').expect(kv);
        match k {
            "CLIENT_ID" => id = Some(v.to_string()),
            "CLIENT_SECRET" => secret = Some(v.to_string()),
            "ADMIN_TOKEN" => admin = Some(v.to_string()),
            other => panic!("unexpected {other} in {line}"),
        }
    }
    (id.unwrap(), secret.unwrap(), admin.unwrap())
}

async fn start_demo(data: &std::path::Path) -> Gateway {
    // The demo's issuer is its listen address, so the ports are chosen here.
    let s = Setup::on_free_ports();
    let args: Vec<String> = [
        "serve",
        "--demo",
        "--data-dir",
        &data.display().to_string(),
        "--listen",
        &s.listen.to_string(),
        "--admin-listen",
        &s.admin.to_string(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    Gateway::spawn(s, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_walk_through() {
    let data = tempfile::tempdir().unwrap();
    let mut gw = start_demo(data.path()).await;
    let (id, secret, admin_token) = demo_env(data.path());
    assert_eq!(id, "demo");
    assert!(secret.len() >= 32, "{secret}");
    assert!(!admin_token.is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join("oauth-edge-demo.env"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the env file is readable by others: {mode:o}"
        );
    }

    // 1. A token with Basic.
    let token = gw.client_token((id.as_str(), secret.as_str()), None).await;
    // 2. The API with it: the echo upstream sees who called.
    let r = gw.get_bearer("/api/things", &token).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["x-oauth-client-id"], "demo", "{v}");
    assert_eq!(v["uri"], "/api/things");
    assert!(v["headers"].get("authorization").is_none(), "{v}");
    // /public is open.
    let r = gw.http.get(gw.url("/public/hello")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // 3. Revoke.
    let r = gw
        .post_form(
            "/oauth2/revoke",
            Some((id.as_str(), secret.as_str())),
            &[("token", &token)],
        )
        .await;
    assert_eq!(r.status(), 200);
    // 4. Refused.
    let r = gw.get_bearer("/api/things", &token).await;
    assert_eq!(r.status(), 401);
    let r = gw
        .http
        .get(gw.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The banner shows the secret (that is its job), the log lines do not.
    let out = gw.output();
    assert!(out.contains(&secret), "{out}");
    let log = out.split("[stderr]").nth(1).unwrap();
    assert!(!log.contains(&secret) && !log.contains(&token), "{log}");

    // A restart on the same data directory gives the client a new secret.
    gw.kill();
    drop(gw);
    let gw = start_demo(data.path()).await;
    let (id2, secret2, _) = demo_env(data.path());
    assert_eq!(id2, "demo");
    assert_ne!(secret2, secret);
    let r = gw
        .post_form(
            "/oauth2/token",
            Some((id.as_str(), secret.as_str())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_error(r, 401, "invalid_client").await;
    let token2 = gw
        .client_token((id2.as_str(), secret2.as_str()), None)
        .await;
    assert_eq!(gw.get_bearer("/api/things", &token2).await.status(), 200);
    // The token revoked before the restart stays revoked.
    assert_eq!(gw.get_bearer("/api/things", &token).await.status(), 401);
}
