//! Failure and restart, end to end: a store that cannot be reached (503, never a pass and
//! never a false 200), an SQLite file reopened by a new edge, and a process killed with
//! SIGKILL right after it acknowledged its writes.
//!
//! The kill test re-executes this test binary: the parent runs
//! `acknowledged_writes_survive_kill_9`, which starts the binary again filtered to
//! `child_issue_and_wait` with `OAUTH_EDGE_CHILD_DB` set; that child serves an edge on the
//! SQLite file until it is killed. Without the variable the child test returns at once.
mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::{basic, FlakyStore, TestServer, CONFIG};
use oauth_edge::store::{SqliteStore, Synchronous};
use oauth_edge::{Config, Edge};
use serde_json::Value;
use tokio::io::AsyncBufReadExt as _;

const CHILD_ENV: &str = "OAUTH_EDGE_CHILD_DB";

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// `CONFIG` with its memory store swapped for an SQLite file.
fn sqlite_config(path: &Path) -> String {
    let memory = "[store]\nkind = \"memory\"\n";
    assert!(
        CONFIG.contains(memory),
        "CONFIG no longer has a memory store"
    );
    CONFIG.replacen(
        memory,
        &format!(
            "[store]\nkind = \"sqlite\"\npath = '{}'\n",
            path.to_str().expect("a UTF-8 temp path")
        ),
        1,
    )
}

async fn svc_access(s: &TestServer) -> String {
    let t = s.client_token("svc", "svc-secret", None).await;
    str_of(&t, "access_token").to_string()
}

async fn alice_pair(s: &TestServer) -> (String, String) {
    let t = s
        .password_token("svc", "svc-secret", "alice", "wonderland")
        .await;
    (
        str_of(&t, "access_token").to_string(),
        str_of(&t, "refresh_token").to_string(),
    )
}

async fn refresh(s: &TestServer, token: &str) -> reqwest::Response {
    s.post_form(
        "/oauth2/token",
        &[("authorization", &basic("svc", "svc-secret"))],
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

async fn rotate(s: &TestServer, token: &str) -> (String, String) {
    let r = refresh(s, token).await;
    assert_eq!(r.status(), 200, "refresh");
    let v: Value = r.json().await.unwrap();
    (
        str_of(&v, "access_token").to_string(),
        str_of(&v, "refresh_token").to_string(),
    )
}

async fn assert_refresh_refused(s: &TestServer, token: &str) {
    let r = refresh(s, token).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_grant", "{v}");
}

async fn revoke(s: &TestServer, token: &str) -> reqwest::Response {
    s.post_form(
        "/oauth2/revoke",
        &[("authorization", &basic("svc", "svc-secret"))],
        &[("token", token)],
    )
    .await
}

/// Asserts a 503 `temporarily_unavailable` with `Retry-After`.
async fn assert_unavailable(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), 503, "{what}");
    let retry = r
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("{what}: no Retry-After"))
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        retry.parse::<u32>().is_ok_and(|s| s >= 1),
        "{what}: Retry-After {retry}"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "temporarily_unavailable", "{what}: {v}");
}

// ---------------------------------------------------------------------------------------
// A store that cannot be reached

#[tokio::test]
async fn a_failing_store_gives_503_and_never_a_false_answer() {
    let store = Arc::new(FlakyStore::default());
    let s = TestServer::with_store(CONFIG, store.clone()).await;
    // `cold` is issued, then forgotten by the cache; `warm` is cached at issuance.
    let cold = svc_access(&s).await;
    s.edge.cache().clear();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let warm = svc_access(&s).await;

    store.set_down(true);
    // The cache answers for the warm token without the store.
    assert_eq!(s.get_bearer("/api/things", &warm).await.status(), 200);
    // The cold token cannot be checked: 503, never a pass, never a 401.
    assert_unavailable(s.get_bearer("/api/things", &cold).await, "cold token").await;
    // A revocation that cannot be written is 503, never 200 (CVE-2020-15223).
    assert_unavailable(revoke(&s, &warm).await, "revoke warm").await;
    assert_unavailable(revoke(&s, &cold).await, "revoke cold").await;
    // No tokens can be issued.
    let r = s
        .post_form(
            "/oauth2/token",
            &[("authorization", &basic("svc", "svc-secret"))],
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_unavailable(r, "client_credentials").await;

    store.set_down(false);
    // The failed revocations claimed nothing: both tokens still work, the cold one now that
    // the store answers again (the error was not cached).
    assert_eq!(s.get_bearer("/api/things", &warm).await.status(), 200);
    assert_eq!(s.get_bearer("/api/things", &cold).await.status(), 200);
    // And now revoking works.
    assert_eq!(revoke(&s, &warm).await.status(), 200);
    assert_eq!(s.get_bearer("/api/things", &warm).await.status(), 401);
    assert_eq!(s.get_bearer("/api/things", &cold).await.status(), 200);
}

#[tokio::test]
async fn a_failing_store_gives_503_at_the_token_endpoint_for_every_grant() {
    let store = Arc::new(FlakyStore::default());
    let s = TestServer::with_store(CONFIG, store.clone()).await;
    let (_, r0) = alice_pair(&s).await;

    store.set_down(true);
    let basic_svc = basic("svc", "svc-secret");
    let auth = [("authorization", basic_svc.as_str())];
    for (what, form) in [
        (
            "password",
            vec![
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "wonderland"),
            ],
        ),
        (
            "refresh_token",
            vec![("grant_type", "refresh_token"), ("refresh_token", &r0)],
        ),
        ("temporary_user", vec![("grant_type", "temporary_user")]),
    ] {
        let r = s.post_form("/oauth2/token", &auth, &form).await;
        assert_unavailable(r, what).await;
    }

    store.set_down(false);
    // The refresh token was not consumed by the failed attempt.
    let (_, r1) = rotate(&s, &r0).await;
    assert_ne!(r1, r0);
}

// ---------------------------------------------------------------------------------------
// Restart on the same SQLite file

#[tokio::test]
async fn revocations_rotations_and_keys_survive_a_restart() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("edge.db");
    let config = sqlite_config(&path);

    // The first edge gets a store we hold only weakly, to see every clone of the edge go.
    let store = Arc::new(SqliteStore::open(&path, Synchronous::Full).unwrap());
    let weak = Arc::downgrade(&store);
    let s1 = TestServer::with_store(&config, store).await;
    // Family 1: revoked.
    let (a1, r1) = alice_pair(&s1).await;
    assert_eq!(revoke(&s1, &a1).await.status(), 200);
    // Family 2: rotated once.
    let (_, r2) = alice_pair(&s1).await;
    let (a2b, r2b) = rotate(&s1, &r2).await;
    // Family 3 and 4: untouched.
    let kept = svc_access(&s1).await;
    let (a4, r4) = alice_pair(&s1).await;
    for a in [&a2b, &kept, &a4] {
        assert_eq!(s1.get_bearer("/api/things", a).await.status(), 200);
    }

    drop(s1);
    // Wait for the server task and its connections to let go of the edge.
    for _ in 0..500 {
        if weak.upgrade().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        weak.upgrade().is_none(),
        "the first edge is still alive somewhere"
    );

    // A new edge on the same file, opened from the config as a deployment would.
    let s2 = TestServer::start(&config).await;
    // Keys came from the file: tokens minted before the restart verify.
    assert_eq!(s2.get_bearer("/api/things", &kept).await.status(), 200);
    assert_eq!(s2.get_bearer("/api/things", &a4).await.status(), 200);
    // The revocation held.
    let r = s2.get_bearer("/api/things", &a1).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));
    assert_refresh_refused(&s2, &r1).await;
    // The rotation held: the family's newest tokens work...
    assert_eq!(s2.get_bearer("/api/things", &a2b).await.status(), 200);
    // ...and the rotated-away token is a replay, which revokes the family.
    assert_refresh_refused(&s2, &r2).await;
    assert_eq!(s2.get_bearer("/api/things", &a2b).await.status(), 401);
    assert_refresh_refused(&s2, &r2b).await;
    // Untouched families are untouched.
    let (a4b, _) = rotate(&s2, &r4).await;
    assert_eq!(s2.get_bearer("/api/things", &a4b).await.status(), 200);
    assert_eq!(s2.get_bearer("/api/things", &kept).await.status(), 200);
}

// ---------------------------------------------------------------------------------------
// SIGKILL right after acknowledged writes

/// The child half of `acknowledged_writes_survive_kill_9`; returns at once unless
/// `OAUTH_EDGE_CHILD_DB` names a database.
#[test]
fn child_issue_and_wait() {
    let Some(db) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    // Should the parent die without killing us, its end of our stdin closes: leave then.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(3);
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let s = TestServer::start(&sqlite_config(Path::new(&db))).await;
        let mut out = std::io::stdout();
        writeln!(out, "ADDR={}", s.addr).unwrap();
        out.flush().unwrap();
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("edge.db");
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_issue_and_wait",
            "--nocapture",
            "--include-ignored",
        ])
        .env(CHILD_ENV, &db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("re-run the test binary");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(a) = line.strip_prefix("ADDR=") {
                return a.trim().to_string();
            }
        }
        panic!("the child exited without serving");
    })
    .await
    .expect("the child did not start in time");

    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{addr}{p}");
    let issue = || async {
        let r = http
            .post(url("/oauth2/token"))
            .header("authorization", basic("svc", "svc-secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        str_of(&v, "access_token").to_string()
    };
    let kept = issue().await;
    let doomed = issue().await;
    let r = http
        .post(url("/oauth2/revoke"))
        .header("authorization", basic("svc", "svc-secret"))
        .form(&[("token", doomed.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "revocation acknowledged");
    drop(http);

    // SIGKILL: no destructor, no checkpoint, no graceful close.
    child.kill().await.unwrap();
    let status = child.wait().await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
    #[cfg(not(unix))]
    assert!(!status.success());

    let config = Config::from_toml(&sqlite_config(&db)).unwrap();
    let edge = Edge::new(config).await.unwrap();
    let live = edge.token_status(&kept).await.unwrap();
    let live = live.expect("the issued token was lost");
    assert_eq!(&*live.client_id, "svc");
    assert!(edge.token_status(&doomed).await.unwrap().is_none());
    // Refused because it is revoked, not because it was never written.
    let rec = edge
        .store()
        .find(&edge.codec().verify(&doomed).unwrap().1)
        .await
        .unwrap()
        .expect("the revoked token's record was lost");
    assert!(rec.revoked, "the revocation was lost");
}
