#![cfg(feature = "postgres")]
//! A fleet: two `oauth-edge` processes on one PostgreSQL database (each test its own schema).
//! A revocation on one is refused on the other within the bound; a code or a refresh token
//! presented to both at once has one winner; a client created, rotated or removed through one
//! instance's admin API is seen at once by the other, and two creations of one id have one
//! winner; `kill -9` loses nothing acknowledged; PostgreSQL connections killed mid-traffic give
//! 503s, never a wrongful 200, and the instances recover.
//!
//! PostgreSQL comes from `OAUTH_EDGE_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{upstream, Echo, Gateway, Setup};
use serde_json::Value;

const SVC: (&str, &str) = ("svc", "svc-secret-0123456789");
const WEB: (&str, &str) = ("web", "web-secret-0123456789");
const WEB_CB: &str = "https://web.example/cb";
const ADMIN_TOKEN: &str = "fleet-admin-token-0123456789";

fn pg_url() -> String {
    std::env::var("OAUTH_EDGE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema of its own for each test (dropped at the end, best effort).
struct Schema(String);

impl Schema {
    fn new() -> Schema {
        let mut b = [0u8; 6];
        getrandom_fill(&mut b);
        Schema(format!(
            "fleet_{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ))
    }
}

fn getrandom_fill(b: &mut [u8]) {
    // Test-only randomness: the time and the process id are enough to keep schemas apart.
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let seed = t ^ (u128::from(std::process::id()) << 64);
    for (i, x) in b.iter_mut().enumerate() {
        *x = (seed >> (i * 8)) as u8 ^ (seed >> (i * 8 + 48)) as u8;
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                &pg_url(),
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0),
            ])
            .output();
    }
}

fn psql(sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([&pg_url(), "-qAt", "-c", sql])
        .output()
        .expect("psql");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn config(setup: &Setup, schema: &Schema, echo: &Echo) -> String {
    format!(
        r#"[store]
kind = "postgres"
url = "{url}"
schema = "{schema}"
pool_size = 4
timeout = "1s"

[cache]
ttl = "30s"

[[clients]]
id = "{svc}"
secret = "{svc_secret}"
grants = ["client_credentials", "password", "refresh_token"]
scopes = ["read"]

[[clients]]
id = "{web}"
secret = "{web_secret}"
grants = ["authorization_code", "refresh_token"]
scopes = ["read"]
redirect_uris = ["{WEB_CB}"]

[[users]]
username = "alice"
password = "wonderland-0123"

[[routes]]
path = "/api"
require = "bearer"
upstream = "echo"

[gateway]
threads = 2

[gateway.admin]
address = "{admin}"
token = "{ADMIN_TOKEN}"

[[gateway.listeners]]
address = "{listen}"
{upstream}"#,
        listen = setup.listen,
        admin = setup.admin,
        url = pg_url(),
        schema = schema.0,
        svc = SVC.0,
        svc_secret = SVC.1,
        web = WEB.0,
        web_secret = WEB.1,
        upstream = upstream("echo", &[echo.addr], ""),
    )
}

async fn instance(schema: &Schema, echo: &Echo) -> Gateway {
    let setup = Setup::new();
    let cfg = config(&setup, schema, echo);
    setup.launch(&cfg).await
}

async fn password_pair(gw: &Gateway) -> Value {
    gw.token(
        SVC,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wonderland-0123"),
        ],
    )
    .await
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} in {v}"))
        .to_string()
}

async fn revoke(gw: &Gateway, token: &str) -> u16 {
    gw.post_form("/oauth2/revoke", Some(SVC), &[("token", token)])
        .await
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_on_one_instance_is_refused_on_the_other_within_the_bound() {
    let schema = Schema::new();
    let echo = Echo::start("echo").await;
    let a = instance(&schema, &echo).await;
    let b = instance(&schema, &echo).await;
    for _ in 0..5 {
        let token = a.client_token(SVC, None).await;
        // B reads it from PostgreSQL and caches it.
        assert_eq!(b.get_bearer("/api/x", &token).await.status(), 200);
        assert_eq!(b.get_bearer("/api/x", &token).await.status(), 200);
        let start = Instant::now();
        assert_eq!(revoke(&a, &token).await, 200);
        loop {
            let st = b.get_bearer("/api/x", &token).await.status();
            if st == 401 {
                break;
            }
            assert_eq!(st, 200);
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "B still admits a token revoked on A after 1 s (cache TTL is 30 s)"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let m = b.metrics().await;
    let count: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("oauth_edge_revocation_propagation_seconds_count "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the propagation histogram");
    assert!(count >= 5, "{count}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_refresh_token_at_both_instances_has_one_winner() {
    let schema = Schema::new();
    let echo = Echo::start("echo").await;
    let a = instance(&schema, &echo).await;
    let b = instance(&schema, &echo).await;
    for _ in 0..5 {
        let pair = password_pair(&a).await;
        let rt = s(&pair, "refresh_token");
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
        ];
        let (ra, rb) = tokio::join!(
            a.post_form("/oauth2/token", Some(SVC), &form),
            b.post_form("/oauth2/token", Some(SVC), &form)
        );
        let statuses = [ra.status().as_u16(), rb.status().as_u16()];
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert!(statuses.contains(&400), "{statuses:?}");
    }
}

/// Signs alice in on `gw`'s pages and allows: the code.
async fn code_from(gw: &Gateway) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", WEB.0)
        .append_pair("redirect_uri", WEB_CB)
        .append_pair("state", "s");
    let url = gw.url(&format!("/oauth2/authorize?{}", q.finish()));
    let mut cookies: HashMap<String, String> = HashMap::new();
    let jar = |c: &HashMap<String, String>| {
        c.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let keep = |r: &reqwest::Response, c: &mut HashMap<String, String>| {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let kv = v.split(';').next().unwrap();
            let (k, val) = kv.split_once('=').unwrap();
            c.insert(k.into(), val.into());
        }
    };
    let field = |body: &str, name: &str| {
        let key = format!("name=\"{name}\" value=\"");
        let i = body
            .find(&key)
            .unwrap_or_else(|| panic!("{name} in {body}"))
            + key.len();
        body[i..i + body[i..].find('"').unwrap()].replace("&amp;", "&")
    };
    let r = http.get(&url).send().await.unwrap();
    keep(&r, &mut cookies);
    let page = r.text().await.unwrap();
    let r = http
        .post(gw.url("/oauth2/authorize"))
        .header("cookie", jar(&cookies))
        .form(&[
            ("csrf", field(&page, "csrf")),
            ("request", field(&page, "request")),
            ("username", "alice".into()),
            ("password", "wonderland-0123".into()),
        ])
        .send()
        .await
        .unwrap();
    keep(&r, &mut cookies);
    let consent = r.text().await.unwrap();
    let r = http
        .post(gw.url("/oauth2/authorize"))
        .header("cookie", jar(&cookies))
        .form(&[
            ("csrf", field(&consent, "csrf")),
            ("request", field(&consent, "request")),
            ("decision", "allow".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let q = loc.split_once('?').unwrap().1;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_code_at_both_instances_has_one_winner() {
    let schema = Schema::new();
    let echo = Echo::start("echo").await;
    let a = instance(&schema, &echo).await;
    let b = instance(&schema, &echo).await;
    for _ in 0..3 {
        let code = code_from(&a).await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", WEB_CB),
        ];
        let (ra, rb) = tokio::join!(
            a.post_form("/oauth2/token", Some(WEB), &form),
            b.post_form("/oauth2/token", Some(WEB), &form)
        );
        let statuses = [ra.status().as_u16(), rb.status().as_u16()];
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_an_instance_loses_nothing_acknowledged() {
    let schema = Schema::new();
    let echo = Echo::start("echo").await;
    let mut a = instance(&schema, &echo).await;
    let b = instance(&schema, &echo).await;
    let mut issued = Vec::new();
    let mut revoked = Vec::new();
    for i in 0..20 {
        let t = a.client_token(SVC, None).await;
        if i % 2 == 0 {
            assert_eq!(revoke(&a, &t).await, 200);
            revoked.push(t);
        } else {
            issued.push(t);
        }
    }
    a.signal("-KILL");
    assert!(a.wait_exit(Duration::from_secs(5)).await.is_some());
    for t in &issued {
        assert_eq!(b.get_bearer("/api/x", t).await.status(), 200);
    }
    for t in &revoked {
        assert_eq!(b.get_bearer("/api/x", t).await.status(), 401);
    }
    // And a new instance on the same database sees the same.
    let c = instance(&schema, &echo).await;
    for t in &issued {
        assert_eq!(c.get_bearer("/api/x", t).await.status(), 200);
    }
    for t in &revoked {
        assert_eq!(c.get_bearer("/api/x", t).await.status(), 401);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_give_503_never_a_wrongful_200_and_the_instance_recovers() {
    let schema = Schema::new();
    let echo = Echo::start("echo").await;
    let a = instance(&schema, &echo).await;
    let revoked = a.client_token(SVC, None).await;
    assert_eq!(revoke(&a, &revoked).await, 200);
    let b = instance(&schema, &echo).await;
    let valid = a.client_token(SVC, None).await;

    let start = Instant::now();
    let mut seen: HashMap<(bool, u16), usize> = HashMap::new();
    let mut kills = 0;
    while start.elapsed() < Duration::from_secs(4) {
        if kills < 3 && start.elapsed() > Duration::from_millis(500 + 1000 * kills) {
            // Every connection of this test's instances (the store names them by schema),
            // the pools' and the listeners'.
            let killed = psql(&format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = 'oauth-edge/{}'",
                schema.0
            ));
            assert_ne!(
                killed.trim(),
                "0",
                "no connection of this test was found to kill"
            );
            kills += 1;
        }
        // A fresh token each round on B: uncached, so B must ask PostgreSQL. Issuing it may
        // itself meet a killed connection: 503, never a token that was not written.
        let r = a
            .post_form(
                "/oauth2/token",
                Some(SVC),
                &[("grant_type", "client_credentials")],
            )
            .await;
        let st = r.status().as_u16();
        assert!([200, 503].contains(&st), "issuance answered {st}");
        if st == 503 {
            *seen.entry((false, 0)).or_default() += 1;
            continue;
        }
        let fresh = s(&r.json::<Value>().await.unwrap(), "access_token");
        for (is_revoked, t) in [(true, &revoked), (false, &valid), (false, &fresh)] {
            let t: &str = t;
            let st = b.get_bearer("/api/x", t).await.status().as_u16();
            if is_revoked {
                assert_ne!(st, 200, "a revoked token admitted");
            }
            assert!([200, 401, 503].contains(&st), "unexpected status {st}");
            *seen.entry((is_revoked, st)).or_default() += 1;
        }
    }
    // Recovery: within a few seconds everything answers as it should again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = a
            .post_form(
                "/oauth2/token",
                Some(SVC),
                &[("grant_type", "client_credentials")],
            )
            .await;
        let fresh = if r.status() == 200 {
            s(&r.json::<Value>().await.unwrap(), "access_token")
        } else {
            String::new()
        };
        let ok = !fresh.is_empty()
            && b.get_bearer("/api/x", &fresh).await.status() == 200
            && b.get_bearer("/api/x", &revoked).await.status() == 401;
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("statuses during the kills (revoked?, status) -> count: {seen:?}");
}

/// A request to an instance's admin API.
fn admin(gw: &Gateway, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    gw.http
        .request(method, format!("http://{}{path}", gw.setup.admin))
        .bearer_auth(ADMIN_TOKEN)
}

/// `POST /admin/clients` for a confidential client_credentials client `id`: the status, and
/// the secret when created.
async fn create_client(gw: &Gateway, id: &str) -> (u16, Option<String>) {
    let r = admin(gw, reqwest::Method::POST, "/admin/clients")
        .json(&serde_json::json!({ "id": id, "scopes": ["read"] }))
        .send()
        .await
        .expect("POST /admin/clients");
    let status = r.status().as_u16();
    let v: Value = r.json().await.expect("JSON");
    (status, v["client_secret"].as_str().map(str::to_string))
}

/// How `B` answers a client_credentials request of `id` with `secret`, until it answers
/// `want`; fails when that takes a second (the client cache's lifetime is 5 s, so a second
/// means the change was not heard).
async fn answered_within(gw: &Gateway, id: &str, secret: &str, want: u16) -> Duration {
    let start = Instant::now();
    loop {
        let st = gw
            .post_form(
                "/oauth2/token",
                Some((id, secret)),
                &[("grant_type", "client_credentials")],
            )
            .await
            .status()
            .as_u16();
        if st == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "B still answers {st} (not {want}) a second after the change on A"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_changed_on_one_instance_is_seen_on_the_other_at_once() {
    let schema = Schema::new();
    let echo = Echo::start("echo").await;
    let a = instance(&schema, &echo).await;
    let b = instance(&schema, &echo).await;
    // B looks the client up first, and caches that there is none.
    let st = b
        .post_form(
            "/oauth2/token",
            Some(("late", "not-yet-a-secret-0123456789")),
            &[("grant_type", "client_credentials")],
        )
        .await
        .status();
    assert_eq!(st, 401);

    let (status, secret) = create_client(&a, "late").await;
    assert_eq!(status, 201);
    let secret = secret.expect("a secret");
    let created = answered_within(&b, "late", &secret, 200).await;

    // A rotation: the old secret stops working on B, the new one works there.
    let r = admin(
        &a,
        reqwest::Method::POST,
        "/admin/clients/late/rotate-secret",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let rotated = s(&r.json::<Value>().await.unwrap(), "client_secret");
    let old_refused = answered_within(&b, "late", &secret, 401).await;
    answered_within(&b, "late", &rotated, 200).await;

    // A removal: B refuses the client's secret and its tokens.
    let token = b.client_token(("late", &rotated), None).await;
    assert_eq!(b.get_bearer("/api/x", &token).await.status(), 200);
    let r = admin(&a, reqwest::Method::DELETE, "/admin/clients/late")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let removed = answered_within(&b, "late", &rotated, 401).await;
    assert_eq!(b.get_bearer("/api/x", &token).await.status(), 401);
    eprintln!(
        "seen on B after: creation {created:?}, rotation {old_refused:?}, removal {removed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_creations_of_one_id_on_two_instances_have_one_winner() {
    let schema = Schema::new();
    let echo = Echo::start("echo").await;
    let a = instance(&schema, &echo).await;
    let b = instance(&schema, &echo).await;
    for round in 0..10 {
        let id = format!("twin-{round}");
        let ((sa, ka), (sb, kb)) = tokio::join!(create_client(&a, &id), create_client(&b, &id));
        let mut statuses = [sa, sb];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {round}");
        // The winner's secret is the one that works, on both instances.
        let secret = ka.or(kb).expect("the winner's secret");
        for gw in [&a, &b] {
            answered_within(gw, &id, &secret, 200).await;
        }
    }
}

/// `/readyz` asks the store a question and writes nothing: with the stored MAC keys gone from
/// under it, a probe does not put a new one in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_probes_write_nothing() {
    let schema = Schema::new();
    let echo = Echo::start("echo").await;
    let a = instance(&schema, &echo).await;
    let keys = format!("SELECT count(*) FROM {}.server_keys", schema.0);
    assert_ne!(
        psql(&keys).trim(),
        "0",
        "the instance made its key at start"
    );
    psql(&format!("DELETE FROM {}.server_keys", schema.0));
    let url = format!("http://{}/readyz", a.setup.admin);
    for _ in 0..3 {
        let r = a.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(psql(&keys).trim(), "0", "a readiness probe wrote a key");
}
